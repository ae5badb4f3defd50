/* Unit tests for the gcp provider (cloud/gcp/tree.c, path.c, xattr.c):
 * ids, value names and durations, the path form, and the crypto key
 * attributes read from Cloud KMS through the HTTP transport seam. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "gcp/tree_int.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The stamp of path, or "" with the code in *code. */
static void stamp_of(struct kf_provider *p, const char *path, char *out,
		     size_t n, int *code)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;

	kf_buf_init(&b, 128);
	*code = kf_gcp_stamp(p, path, &b, &err) < 0 ? (int)err.code : 0;
	gf_path(out, n, "%s", *code ? "" : kf_buf_str(&b));
	kf_buf_release(&b);
}

/* A read of path: 0 and its version text in out, or the code. */
static int read_version_of(struct kf_provider *p, const char *path, char *out,
			   size_t n, const char *want)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;

	if (kf_gcp_read(p, path, &v, &err) < 0)
		return (int)err.code;
	KT_CHECK(v && v->len == strlen(want) &&
		 kf_memeq(v->data, want, v->len));
	gf_path(out, n, "%s", v ? v->version : "");
	kf_secret_free(v);
	return 0;
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	KT_CHECK(f != NULL);
	if (f) {
		KT_EQ_INT(fwrite(text, 1, strlen(text), f), strlen(text));
		KT_EQ_INT(fclose(f), 0);
	}
}

KT_TEST(gcp_stamp_changes_on_every_rewrite_and_matches_reads)
{
	static const char hello[] =
		"{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"2591144780\"}";
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_gcp *s;
	struct timespec t[2] = { { 1000, 0 }, { 1000, 0 } };
	char dir[PATH_MAX], fp[PATH_MAX], tmp[PATH_MAX];
	char s1[128], s2[128], s3[128], s4[128], s5[128], ver[128];
	const char *v = "p1/global/r/k/v";
	int code;

	gf_reset();
	a = gf_make_auth();
	p = xattr_provider(a);
	s = p->priv;
	gf_path(dir, sizeof(dir), "%s/p1/global/r/k", s->store);
	gf_path(fp, sizeof(fp), "%s/v", dir);
	gf_path(tmp, sizeof(tmp), "%s/.kf-tmp.x", dir);
	for (char *c = dir + strlen(kt_tmpdir()) + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		(void)mkdir(dir, 0700);
		*c = '/';
	}
	KT_EQ_INT(mkdir(dir, 0700), 0);
	put_file(fp, "");
	stamp_of(p, v, s1, sizeof(s1), &code);
	KT_EQ_INT(code, 0);
	KT_EQ_INT(read_version_of(p, v, ver, sizeof(ver), ""), 0);
	KT_EQ_STR(ver, s1);
	stamp_of(p, v, s2, sizeof(s2), &code);
	KT_EQ_STR(s2, s1); /* nothing written: the same */
	/* Replaced by a rename over it (same size, new inode). */
	put_file(tmp, "");
	KT_EQ_INT(rename(tmp, fp), 0);
	stamp_of(p, v, s2, sizeof(s2), &code);
	KT_CHECK(strcmp(s2, s1) != 0);
	KT_EQ_INT(read_version_of(p, v, ver, sizeof(ver), ""), 0);
	KT_EQ_STR(ver, s2);
	/* Rewritten in place: a new size, then only a new time. */
	put_file(fp, "CT-bytes");
	stamp_of(p, v, s3, sizeof(s3), &code);
	KT_CHECK(strcmp(s3, s2) != 0);
	gf_push(200, hello);
	KT_EQ_INT(read_version_of(p, v, ver, sizeof(ver), "hello"), 0);
	KT_EQ_STR(ver, s3);
	KT_EQ_INT(utimensat(AT_FDCWD, fp, t, 0), 0);
	stamp_of(p, v, s4, sizeof(s4), &code);
	KT_CHECK(strcmp(s4, s3) != 0);
	t[1].tv_nsec = 1;
	KT_EQ_INT(utimensat(AT_FDCWD, fp, t, 0), 0);
	stamp_of(p, v, s5, sizeof(s5), &code);
	KT_CHECK(strcmp(s5, s4) != 0);
	/* Gone, or never a value: not found. */
	KT_EQ_INT(unlink(fp), 0);
	stamp_of(p, v, s5, sizeof(s5), &code);
	KT_EQ_INT(code, KF_E_NOTFOUND);
	stamp_of(p, "p1/global/r/k/.kf-tmp.x", s5, sizeof(s5), &code);
	KT_EQ_INT(code, KF_E_NOTFOUND);
	xattr_provider_free(p);
	gf_done(a);
}
