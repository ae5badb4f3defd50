/* Unit tests for the gcp provider (cloud/gcp/tree.c, path.c, xattr.c):
 * ids, value names and durations, the path form, and the crypto key
 * attributes read from Cloud KMS through the HTTP transport seam. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "gcp/tree_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KT_TEST(gcp_ids_names_durations)
{
	KT_CHECK(kf_gcp_valid_id("a"));
	KT_CHECK(kf_gcp_valid_id("Ring_1-x"));
	KT_CHECK(!kf_gcp_valid_id(""));
	KT_CHECK(!kf_gcp_valid_id("a.b"));
	KT_CHECK(!kf_gcp_valid_id("a/b"));
	KT_CHECK(!kf_gcp_valid_id("\xc3\xa9"));
	KT_CHECK(kf_gcp_valid_id(
		"123456789012345678901234567890123456789012345678901234567890123"));
	KT_CHECK(!kf_gcp_valid_id(
		"1234567890123456789012345678901234567890123456789012345678901234"));
	KT_CHECK(kf_gcp_valid_value_name("openai"));
	KT_CHECK(kf_gcp_valid_value_name("api.key+v2@x=1,2"));
	KT_CHECK(!kf_gcp_valid_value_name(".hidden"));
	KT_CHECK(!kf_gcp_valid_value_name(".kf-tmp.abc"));
	KT_CHECK(!kf_gcp_valid_value_name("a b"));
	KT_CHECK(!kf_gcp_valid_value_name(""));
	KT_EQ_INT(kf_gcp_parse_duration("100000s"), 100000);
	KT_EQ_INT(kf_gcp_parse_duration("100000"), 100000);
	KT_EQ_INT(kf_gcp_parse_duration("90d"), 7776000);
	KT_EQ_INT(kf_gcp_parse_duration("2h"), 7200);
	KT_EQ_INT(kf_gcp_parse_duration("s"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("10x"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("10ss"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("-5s"), -1);
}

KT_TEST(gcp_path_form)
{
	struct kf_gcp *s = calloc(1, sizeof(*s));
	struct kf_gcp_path g;
	struct kf_err err = KF_ERR_INIT;
	char out[700], name300[300];
	static const struct {
		const char *path;
		enum kf_code code; /* of kf_gcp_path_value */
	} bad[] = {
		{ "", KF_E_ISDIR },
		{ "p1/global", KF_E_PERM },
		{ "p1/global/r/k", KF_E_ISDIR },
		{ "p1/global/r/k/.kf-tmp.x", KF_E_INVALID },
		{ "p1/global/r/k/a b", KF_E_INVALID },
		{ "p1/global/r/k/v/x", KF_E_NOTDIR },
		{ "p1//r", KF_E_NOTFOUND },
	};

	KT_CHECK(s != NULL);
	gf_path(s->store, sizeof(s->store), "/st/gcp");
	KT_EQ_INT(kf_gcp_path_split("p1/global/r/k/v", &g, &err), 0);
	KT_EQ_INT(g.depth, 5);
	KT_EQ_STR(g.c[4], "v");
	KT_EQ_INT(kf_gcp_path_resource(&g, 4, out, sizeof(out)), 0);
	KT_EQ_STR(out, KEY);
	KT_EQ_INT(kf_gcp_path_resource(&g, 2, out, sizeof(out)), 0);
	KT_EQ_STR(out, "projects/p1/locations/global");
	KT_EQ_INT(kf_gcp_path_resource(&g, 4, out, 20), -1);
	KT_EQ_INT(kf_gcp_path_store(s, &g, 5, out, sizeof(out)), 0);
	KT_EQ_STR(out, "/st/gcp/p1/global/r/k/v");
	KT_EQ_INT(kf_gcp_path_store(s, &g, 0, out, sizeof(out)), 0);
	KT_EQ_STR(out, "/st/gcp");
	KT_EQ_INT(kf_gcp_path_value(s, "p1/global/r/k/v", &g, out, sizeof(out),
				    &err),
		  0);
	KT_EQ_STR(out, "/st/gcp/p1/global/r/k/v");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		KT_EQ_INT(kf_gcp_path_value(s, bad[i].path, &g, out,
					    sizeof(out), &err),
			  -1);
		KT_EQ_INT(err.code, bad[i].code);
	}
	memset(name300, 'a', sizeof(name300) - 1);
	name300[sizeof(name300) - 1] = '\0';
	gf_path(out, sizeof(out), "p1/global/r/k/%s", name300);
	KT_EQ_INT(kf_gcp_path_split(out, &g, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(kf_gcp_valid_location("us-east1"));
	KT_CHECK(!kf_gcp_valid_location("US"));
	KT_CHECK(kf_gcp_valid_project("example.com:p-1"));
	KT_CHECK(!kf_gcp_valid_project(".p"));
	free(s);
}

/* A provider on the fake transport, for the xattr operations. */
static struct kf_provider *xattr_provider(struct kf_gcp_auth *a)
{
	struct kf_provider *p = calloc(1, sizeof(*p));
	struct kf_gcp *s = calloc(1, sizeof(*s));

	KT_CHECK(p && s);
	pthread_mutex_init(&s->mu, NULL);
	gf_make_kms(&s->kms, a);
	s->projects[0] = strdup("p1");
	s->nprojects = 1;
	gf_path(s->store, sizeof(s->store), "%s/gcp", kt_tmpdir());
	p->priv = s;
	return p;
}

static void xattr_provider_free(struct kf_provider *p)
{
	struct kf_gcp *s = p->priv;

	free(s->projects[0]);
	pthread_mutex_destroy(&s->mu);
	free(s);
	free(p);
}

KT_TEST(gcp_key_xattrs_read_from_kms)
{
	static const char key[] =
		"{\"name\":\"" KEY "\",\"rotationPeriod\":\"100000s\","
		"\"primary\":{\"name\":\"" KEY "/cryptoKeyVersions/3\"}}";
	static const char bare[] = "{\"name\":\"" KEY "\",\"primary\":{}}";
	static const char list[] = "user.keyfs.id\0user.keyfs.rotation_period"
				   "\0user.keyfs.primary";
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf out, small;
	const char *k = "p1/global/r/k";

	gf_reset();
	a = gf_make_auth();
	p = xattr_provider(a);
	kf_buf_init(&out, 4096);
	kf_buf_init(&small, 5);
	/* One get for the key's existence, one for its attributes. */
	gf_push(200, key);
	gf_push(200, key);
	KT_EQ_INT(kf_gcp_listxattr(p, k, &out, &err), 0);
	KT_EQ_INT(out.len, sizeof(list));
	KT_EQ_MEM(out.data, list, sizeof(list));
	KT_EQ_INT(gf_nreq, 2);
	gf_reset();
	gf_push(200, key);
	gf_push(200, key);
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.rotation_period", &out,
				  &err),
		  0);
	KT_EQ_STR(kf_buf_str(&out), "100000s");
	gf_reset();
	gf_push(200, key);
	gf_push(200, key);
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.primary", &out, &err), 0);
	KT_EQ_STR(kf_buf_str(&out), KEY "/cryptoKeyVersions/3");
	/* The id needs no second get; other names no get at all. */
	gf_reset();
	gf_push(200, key);
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.id", &out, &err), 0);
	KT_EQ_STR(kf_buf_str(&out), KEY);
	gf_push(200, key);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.other", &out, &err), -1);
	KT_EQ_INT(err.code, KF_E_NODATA);
	KT_EQ_INT(gf_nreq, 2);
	/* A primary without a name is listed but has no value. */
	gf_reset();
	gf_push(200, bare);
	gf_push(200, bare);
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcp_listxattr(p, k, &out, &err), 0);
	KT_EQ_INT(out.len,
		  sizeof("user.keyfs.id") + sizeof("user.keyfs.primary"));
	gf_push(200, bare);
	gf_push(200, bare);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.primary", &out, &err), -1);
	KT_EQ_INT(err.code, KF_E_NODATA);
	gf_push(200, bare);
	gf_push(200, bare);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.rotation_period", &out,
				  &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NODATA);
	/* Buffers too small: RANGE. */
	gf_push(200, key);
	gf_push(200, key);
	KT_EQ_INT(kf_gcp_getxattr(p, k, "user.keyfs.rotation_period", &small,
				  &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_RANGE);
	gf_push(200, key);
	KT_EQ_INT(kf_gcp_listxattr(p, k, &small, &err), -1);
	KT_EQ_INT(err.code, KF_E_RANGE);
	kf_buf_release(&out);
	kf_buf_release(&small);
	xattr_provider_free(p);
	gf_done(a);
}
