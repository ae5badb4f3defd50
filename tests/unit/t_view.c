/*
 * fs/view.c: parsing NAME:VERSION#FIELD, the fetch of a version through a
 * fake provider, immutable versions in the cache (never refetched, never
 * expired), fields cut from one cached value, and the user.keyfs.versions
 * text (newest first).
 */
#include "kt.h"

#include "cache.h"
#include "ops.h"
#include "view.h"

#include "core/buf.h"
#include "core/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

KT_TEST(view_parse_plain_names_are_not_views)
{
	static const char *plain[] = { "db",  "a/b/db", "#db#", ".#db", "db:",
				       "db#", "db:a:b", ":v",	"#f" };
	struct kf_view v;

	for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
		KT_EQ_INT(kf_view_parse(plain[i], &v), 0);
		if (v.is_view)
			kt_fail(__FILE__, __LINE__, "%s parsed as a view",
				plain[i]);
	}
}

KT_TEST(view_parse_version_field_and_both)
{
	struct kf_view v;

	kf_view_parse("db:AWSPREVIOUS", &v);
	KT_CHECK(v.is_view && !v.field && !v.in_dir);
	KT_EQ_STR(v.base, "db");
	KT_EQ_STR(v.version, "AWSPREVIOUS");
	KT_EQ_STR(v.key, "db:AWSPREVIOUS");

	kf_view_parse("team/db#password", &v);
	KT_CHECK(v.is_view && !v.version);
	KT_EQ_STR(v.base, "team/db");
	KT_EQ_STR(v.field, "password");
	KT_EQ_STR(v.key, "team/db"); /* the plain value's cache entry */

	kf_view_parse("a/db:3#user", &v);
	KT_EQ_STR(v.base, "a/db");
	KT_EQ_STR(v.version, "3");
	KT_EQ_STR(v.field, "user");
	KT_EQ_STR(v.key, "a/db:3");

	kf_view_parse("db#a:b#c", &v); /* ':' and '#' inside FIELD */
	KT_CHECK(v.is_view && !v.version);
	KT_EQ_STR(v.field, "a:b#c");
}

KT_TEST(view_parse_file_of_a_version_directory)
{
	struct kf_view v;

	kf_view_parse("pfx/apiSecret:AWSPREVIOUS/api_key", &v);
	KT_CHECK(v.is_view && v.in_dir);
	KT_EQ_STR(v.base, "pfx/apiSecret");
	KT_EQ_STR(v.version, "AWSPREVIOUS");
	KT_EQ_STR(v.field, "api_key");
	KT_EQ_STR(v.key, "pfx/apiSecret:AWSPREVIOUS");

	kf_view_parse("s#f/x", &v); /* a field is no directory */
	KT_CHECK(!v.is_view);
}

/* A provider with versions: "db" holds a JSON object per version. */
struct vfake {
	struct kf_provider p;
	int reads, vreads;
	char last_version[32];
};

static const char *const VALUES[] = {
	"{\"user\":\"u1\",\"password\":\"p1\"}",
	"{\"user\":\"u2\",\"password\":\"p2\",\"port\":5432,\"o\":{\"a\":[1]}}",
};

static int vf_read(struct kf_provider *p, const char *path,
		   struct kf_secret **value, struct kf_err *err)
{
	struct vfake *f = p->priv;

	f->reads++;
	if (strcmp(path, "db") != 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	*value = kf_secret_dup(VALUES[1], strlen(VALUES[1]));
	kf_secret_set_version(*value, "v2");
	return 0;
}

static int vf_read_version(struct kf_provider *p, const char *path,
			   const char *version, struct kf_secret **value,
			   int *immutable, struct kf_err *err)
{
	struct vfake *f = p->priv;
	int i;

	f->vreads++;
	(void)snprintf(f->last_version, sizeof(f->last_version), "%s",
		       version ? version : "(null)");
	if (strcmp(path, "db") != 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (version && !strcmp(version, "v1"))
		i = 0, *immutable = 1;
	else if (!version || !strcmp(version, "CURRENT"))
		i = 1, *immutable = 0;
	else
		return kf_fail(err, KF_E_NOTFOUND, "no such version");
	*value = kf_secret_dup(VALUES[i], strlen(VALUES[i]));
	kf_secret_set_version(*value, i ? "v2" : "v1");
	return 0;
}

static int vf_getattr(struct kf_provider *p, const char *path,
		      struct kf_attr *a, struct kf_err *err)
{
	(void)p;
	memset(a, 0, sizeof(*a));
	if (strcmp(path, "db") != 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	a->kind = KF_KIND_FILE;
	return 0;
}

static int vf_versions(struct kf_provider *p, const char *path,
		       int (*fn)(void *ctx, const char *version,
				 int64_t created, const char *labels),
		       void *ctx, struct kf_err *err)
{
	(void)p;
	(void)path;
	(void)err;
	/* Any order: the caller sorts by time, newest first. */
	fn(ctx, "9", 1700000000000, "");
	fn(ctx, "11", 1800000000500, "latest,pinned");
	fn(ctx, "10", 1800000000500, "");
	return 0;
}

static const struct kf_provider_ops vf_ops = {
	.getattr = vf_getattr,
	.read = vf_read,
	.read_version = vf_read_version,
	.versions = vf_versions,
};

static void vf_init(struct vfake *f)
{
	memset(f, 0, sizeof(*f));
	f->p.ops = &vf_ops;
	f->p.name = "vf";
	f->p.max_value = 4096;
	f->p.priv = f;
}

KT_TEST(view_fetch_routes_versions_to_read_version)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = NULL;
	struct vfake f;
	int imm = -1;

	vf_init(&f);
	KT_EQ_INT(kf_view_fetch(&f.p, "db", &s, &imm, &err), 0);
	KT_CHECK(f.reads == 1 && f.vreads == 0 && imm == 0);
	KT_EQ_STR(s->version, "v2");
	kf_secret_free(s);
	KT_EQ_INT(kf_view_fetch(&f.p, "db:v1", &s, &imm, &err), 0);
	KT_CHECK(f.vreads == 1 && imm == 1);
	KT_EQ_STR(f.last_version, "v1");
	KT_CHECK(s->len == strlen(VALUES[0]) &&
		 !memcmp(s->data, VALUES[0], s->len));
	kf_secret_free(s);
	KT_EQ_INT(kf_view_fetch(&f.p, "db:nope", &s, &imm, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
}

KT_TEST(view_fetch_without_versions_is_not_found)
{
	static const struct kf_provider_ops plain = { .read = vf_read };
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = NULL;
	struct vfake f;
	int imm;

	vf_init(&f);
	f.p.ops = &plain;
	KT_EQ_INT(kf_view_fetch(&f.p, "db:1", &s, &imm, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(s == NULL && f.reads == 0);
}

static uint64_t clock_ms;
static uint64_t test_now(void *ctx)
{
	(void)ctx;
	return clock_ms;
}

KT_TEST(view_immutable_versions_never_expire_labels_do)
{
	struct kf_clock clk = { test_now, NULL, NULL };
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = NULL;
	struct kf_cache c;
	struct vfake f;

	vf_init(&f);
	clock_ms = 1000000;
	kf_clock_set(&clk);
	KT_EQ_INT(kf_cache_init(&c, 10, 0, 5), 0);
	KT_EQ_INT(kf_cache_read(&c, &f.p, "/vf/db:v1", "db:v1", &s, &err), 0);
	KT_EQ_STR(s->version, "v1"); /* the version travels with copies */
	kf_secret_free(s);
	KT_EQ_INT(kf_cache_read(&c, &f.p, "/vf/db:CURRENT", "db:CURRENT", &s,
				&err),
		  0);
	kf_secret_free(s);
	KT_EQ_INT(f.vreads, 2);
	clock_ms += 3600 * 1000; /* far past ttl + max_stale */
	kf_cache_refresh_once(&c, NULL, NULL);
	KT_EQ_INT(kf_cache_read(&c, &f.p, "/vf/db:v1", "db:v1", &s, &err), 0);
	kf_secret_free(s);
	KT_EQ_INT(f.vreads, 2); /* the immutable version: still held */
	KT_EQ_INT(kf_cache_read(&c, &f.p, "/vf/db:CURRENT", "db:CURRENT", &s,
				&err),
		  0);
	kf_secret_free(s);
	KT_EQ_INT(f.vreads, 3); /* the label: fetched again */
	kf_cache_refresh_stop(&c);
	kf_cache_release(&c);
	kf_clock_set(NULL);
}

KT_TEST(view_versions_text_is_sorted_newest_first)
{
	struct kf_buf out;
	struct vfake f;

	vf_init(&f);
	kf_buf_init(&out, 4096);
	KT_EQ_INT(kf_view_getxattr(&f.p, "/vf/db", "db", KF_VERSIONS_XATTR,
				   &out),
		  0);
	KT_EQ_STR(kf_buf_str(&out), "11 2027-01-15T08:00:00Z latest,pinned\n"
				    "10 2027-01-15T08:00:00Z -\n"
				    "9 2023-11-14T22:13:20Z -\n");
	/* Other names are the provider's; views have none. */
	KT_EQ_INT(kf_view_getxattr(&f.p, "/vf/db", "db", "user.x", &out), 1);
	KT_EQ_INT(kf_view_getxattr(&f.p, "/vf/db:1", "db:1", KF_VERSIONS_XATTR,
				   &out),
		  -ENODATA);
	kf_buf_release(&out);
}

static int no_versions(struct kf_provider *p, const char *path,
		       int (*fn)(void *ctx, const char *version,
				 int64_t created, const char *labels),
		       void *ctx, struct kf_err *err)
{
	(void)p;
	(void)path;
	(void)fn;
	(void)ctx;
	(void)err;
	return 0; /* a secret that never held a value */
}

KT_TEST(view_versions_text_of_a_value_without_versions_is_empty)
{
	static const struct kf_provider_ops none = { .versions = no_versions };
	struct kf_buf out;
	struct vfake f;

	vf_init(&f);
	f.p.ops = &none;
	kf_buf_init(&out, 4096);
	KT_EQ_INT(kf_view_getxattr(&f.p, "/vf/db", "db", KF_VERSIONS_XATTR,
				   &out),
		  0);
	KT_EQ_INT(out.len, 0);
	kf_buf_release(&out);
}
