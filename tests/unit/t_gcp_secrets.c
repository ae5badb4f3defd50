/* Unit tests for Secret Manager under gcp/PROJECT/secrets/ (cloud/gcp/
 * secrets.c) through the HTTP transport seam: the path form, listing
 * (pages, a refused list shows empty), stat after a listing without a
 * call, reads and views, writes (add, create with CMEK, a name made
 * meanwhile, refused values and ids before any call), rm with the etag,
 * versions and their labels, the stamp, attributes, and the routers
 * sending every other path to the ciphertext store. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "gcp/secrets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM "projects/480213377105/secrets/"
#define NOT_FOUND                                                    \
	"{\"error\":{\"code\":404,\"message\":\"Secret not found\"," \
	"\"status\":\"NOT_FOUND\"}}"
#define DENIED                                                        \
	"{\"error\":{\"code\":403,\"message\":\"Permission denied\"," \
	"\"status\":\"PERMISSION_DENIED\"}}"
#define EXISTS                                                            \
	"{\"error\":{\"code\":409,\"message\":\"Secret already exists\"," \
	"\"status\":\"ALREADY_EXISTS\"}}"
#define SECRET(id, etag)                                                    \
	"{\"name\":\"" NUM id "\",\"createTime\":\"2023-11-14T22:13:20Z\"," \
	"\"etag\":\"\\\"" etag "\\\"\",\"replication\":{\"automatic\":{}}}"
#define VERSION(id, n, state)                                             \
	"{\"name\":\"" NUM id "/versions/" #n "\",\"createTime\":"        \
	"\"2023-11-14T22:13:2" #n "Z\",\"state\":\"" state "\",\"etag\":" \
	"\"\\\"v\\\"\",\"clientSpecifiedPayloadChecksum\":true}"

/* A provider with project p1 whose Secret Manager is the fake. */
static struct kf_provider *make(struct kf_gcp_auth *a, unsigned ttl)
{
	struct kf_provider *p = calloc(1, sizeof(*p));
	struct kf_gcp *s = calloc(1, sizeof(*s));
	struct kf_err err = KF_ERR_INIT;

	KT_CHECK(p && s);
	pthread_mutex_init(&s->mu, NULL);
	gf_make_kms(&s->kms, a);
	KT_EQ_INT(kf_gsm_init(&s->gsm, "http://127.0.0.1:9", a, 5000, &err), 0);
	s->gsm.rest.backoff_ms = 1;
	s->gsm.rest.backoff_429_ms = 2;
	s->projects[0] = strdup("p1");
	s->nprojects = 1;
	s->ttl = ttl;
	gf_path(s->store, sizeof(s->store), "%s/gcp", kt_tmpdir());
	p->priv = s;
	p->name = "gcp";
	return p;
}

static void unmake(struct kf_provider *p)
{
	struct kf_gcp *s = p->priv;

	free(s->projects[0]);
	pthread_mutex_destroy(&s->mu);
	free(s);
	free(p);
}

/* An access answer for secret id, version n, holding text. */
static char answer[4][1024];
static const char *access_of(int slot, const char *id, int n, const char *text)
{
	struct kf_buf b64;

	kf_buf_init(&b64, 1024);
	KT_EQ_INT(kf_base64_encode(text, strlen(text), &b64), 0);
	gf_path(answer[slot], sizeof(answer[slot]),
		"{\"name\":\"%s%s/versions/%d\",\"payload\":{\"data\":\"%s\","
		"\"dataCrc32c\":\"%u\"}}",
		NUM, id, n, kf_buf_str(&b64), kf_crc32c(0, text, strlen(text)));
	kf_buf_release(&b64);
	return answer[slot];
}

struct names {
	char all[512];
	int n, files;
};

static int collect(void *ctx, const char *name, const struct kf_attr *a)
{
	struct names *nm = ctx;
	size_t l = strlen(nm->all);

	gf_path(nm->all + l, sizeof(nm->all) - l, "%s%s", l ? "," : "", name);
	nm->n++;
	nm->files += a && a->kind == KF_KIND_FILE;
	return 0;
}

KT_TEST(gcp_secrets_path_form)
{
	KT_CHECK(kf_gcp_is_secrets("p1/secrets"));
	KT_CHECK(kf_gcp_is_secrets("p1/secrets/db"));
	KT_CHECK(kf_gcp_is_secrets("p1/secrets/db/x"));
	KT_CHECK(!kf_gcp_is_secrets("secrets"));
	KT_CHECK(!kf_gcp_is_secrets("p1"));
	KT_CHECK(!kf_gcp_is_secrets("p1/secretsx"));
	KT_CHECK(!kf_gcp_is_secrets("p1/global/secrets"));
	KT_CHECK(!kf_gcp_is_secrets("/secrets"));
}

KT_TEST(gcp_secrets_list_pages_and_stat_without_a_call)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_gcp *s;
	struct kf_err err = KF_ERR_INIT;
	struct names nm = { "", 0, 0 };
	struct kf_attr at;
	struct kf_buf next;

	gf_reset();
	a = gf_make_auth();
	p = make(a, 60);
	s = p->priv;
	kf_buf_init(&next, 512);
	gf_push(200, "{\"secrets\":[" SECRET("db", "e1") "," SECRET(
			     "api", "e2") "],\"nextPageToken\":\"pg2\"}");
	KT_EQ_INT(kf_gcp_secrets_list(s, "p1/secrets", NULL, collect, &nm,
				      &next, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&next), "pg2");
	gf_push(200, "{\"secrets\":[" SECRET("web", "e3") "]}");
	KT_EQ_INT(kf_gcp_secrets_list(s, "p1/secrets", "pg2", collect, &nm,
				      &next, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&next), "");
	KT_EQ_STR(nm.all, "db,api,web");
	KT_EQ_INT(nm.files, 3);
	KT_CHECK(strstr(gf_req_url[1], "pageToken=pg2") != NULL);
	/* Listed: a stat costs nothing; an unlisted name one get. */
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets/api", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_FILE);
	KT_EQ_INT(gf_nreq, 2);
	gf_push(404, NOT_FOUND);
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets/gone", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(gf_nreq, 3);
	/* The directory, bad ids, other projects, below a secret. */
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_DIR);
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets/a.b", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p9/secrets", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets/db/x", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTDIR);
	KT_EQ_INT(kf_gcp_secrets_list(s, "p1/secrets/db", NULL, collect, &nm,
				      &next, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTDIR);
	KT_EQ_INT(gf_nreq, 3);
	/* Secret Manager refusing the list: empty, not an error. */
	nm.n = 0;
	gf_push(403, DENIED);
	KT_EQ_INT(kf_gcp_secrets_list(s, "p1/secrets", NULL, collect, &nm,
				      &next, &err),
		  0);
	KT_EQ_INT(nm.n, 0);
	/* Unreachable is an error. */
	gf_push(0, NULL);
	gf_push(0, NULL);
	gf_push(0, NULL);
	gf_push(0, NULL);
	gf_push(0, NULL);
	KT_EQ_INT(kf_gcp_secrets_list(s, "p1/secrets", NULL, collect, &nm,
				      &next, &err),
		  -1);
	KT_CHECK(err.code == KF_E_UNAVAILABLE || err.code == KF_E_TIMEOUT);
	kf_buf_release(&next);
	unmake(p);
	gf_done(a);
}

KT_TEST(gcp_secrets_reads_and_views)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	int imm = -1;

	gf_reset();
	a = gf_make_auth();
	p = make(a, 0);
	gf_push(200, access_of(0, "db", 3, "three"));
	KT_EQ_INT(kf_gcp_route_read(p, "p1/secrets/db", &v, &err), 0);
	KT_CHECK(v && v->len == 5 && kf_memeq(v->data, "three", 5));
	KT_EQ_STR(v->version, "3");
	KT_CHECK(strstr(gf_req_url[0], "/secrets/db/versions/latest:access"));
	kf_secret_free(v);
	gf_push(200, access_of(0, "db", 2, "two"));
	KT_EQ_INT(kf_gcp_route_read_version(p, "p1/secrets/db", "2", &v, &imm,
					    &err),
		  0);
	KT_EQ_INT(imm, 1);
	KT_EQ_STR(v->version, "2");
	kf_secret_free(v);
	gf_push(200, access_of(0, "db", 3, "three"));
	KT_EQ_INT(kf_gcp_route_read_version(p, "p1/secrets/db", "latest", &v,
					    &imm, &err),
		  0);
	KT_EQ_INT(imm, 0);
	kf_secret_free(v);
	/* A label Secret Manager does not have: NOTFOUND, no call. */
	gf_reset();
	KT_EQ_INT(kf_gcp_route_read_version(p, "p1/secrets/db", "AWSCURRENT",
					    &v, &imm, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(gf_nreq, 0);
	gf_push(404, NOT_FOUND);
	KT_EQ_INT(kf_gcp_route_read(p, "p1/secrets/nope", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_route_read(p, "p1/secrets", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_ISDIR);
	/* A version whose checksum is wrong never becomes a value. */
	gf_reset();
	for (int i = 0; i < 4; i++)
		gf_push(200, "{\"name\":\"" NUM "db/versions/3\",\"payload\":"
			     "{\"data\":\"eA==\",\"dataCrc32c\":\"1\"}}");
	KT_EQ_INT(kf_gcp_route_read(p, "p1/secrets/db", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(v == NULL);
	/* Non-secrets paths stay with the ciphertext store. */
	KT_EQ_INT(kf_gcp_route_read_version(p, "p1/global/r/k/v", "7", &v, &imm,
					    &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	unmake(p);
	gf_done(a);
}

/* The version a commit of text at path made, or "" and the code. */
static int commit_of(struct kf_provider *p, const char *path, const char *text,
		     size_t n, int flags, char *made, size_t mlen)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf ver;
	int rc;

	kf_buf_init(&ver, 64);
	rc = kf_gcp_route_commit(p, path, (const unsigned char *)text, n, "tok",
				 flags, &ver, &err);
	gf_path(made, mlen, "%s", kf_buf_str(&ver));
	kf_buf_release(&ver);
	if (rc == 0)
		return 0;
	/* A message never carries the value. */
	KT_CHECK(n < 8 || !memmem(err.msg, strlen(err.msg), text, 8));
	return (int)err.code;
}

KT_TEST(gcp_secrets_writes)
{
	static char big[KF_GSM_MAX_VALUE + 1];
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_gcp *s;
	char made[64];
	const char *canary = "KEYFS-CANARY-5b1e0d1b8c2f4a9e";

	gf_reset();
	a = gf_make_auth();
	p = make(a, 60);
	s = p->priv;
	/* An existing secret: one addVersion; the number made. */
	gf_push(200, VERSION("db", 4, "ENABLED"));
	KT_EQ_INT(commit_of(p, "p1/secrets/db", canary, strlen(canary), 0, made,
			    sizeof(made)),
		  0);
	KT_EQ_STR(made, "4");
	KT_EQ_INT(gf_nreq, 1);
	KT_CHECK(strstr(gf_req_url[0], "/secrets/db:addVersion") != NULL);
	KT_CHECK(gf_req_body[0] && !strstr(gf_req_body[0], canary));
	/* A new one: created (with the CMEK key), then its value. */
	gf_reset();
	gf_path(s->gsm_kms_key, sizeof(s->gsm_kms_key), "%s", KEY);
	gf_push(200, SECRET("new", "e1"));
	gf_push(200, VERSION("new", 1, "ENABLED"));
	KT_EQ_INT(commit_of(p, "p1/secrets/new", "v1", 2, KF_COMMIT_CREATE,
			    made, sizeof(made)),
		  0);
	KT_EQ_STR(made, "1");
	KT_EQ_INT(gf_nreq, 2);
	KT_CHECK(strstr(gf_req_url[0], "secrets?secretId=new") != NULL);
	KT_CHECK(gf_req_body[0] && strstr(gf_req_body[0], KEY) != NULL);
	/* Created meanwhile by someone else: a version is added. */
	gf_reset();
	gf_push(409, EXISTS);
	gf_push(200, VERSION("new", 2, "ENABLED"));
	KT_EQ_INT(commit_of(p, "p1/secrets/new", "v2", 2, KF_COMMIT_CREATE,
			    made, sizeof(made)),
		  0);
	KT_EQ_STR(made, "2");
	/* Removed meanwhile: created again. */
	gf_reset();
	gf_push(404, NOT_FOUND);
	gf_push(200, SECRET("db", "e9"));
	gf_push(200, VERSION("db", 1, "ENABLED"));
	KT_EQ_INT(commit_of(p, "p1/secrets/db", "v", 1, 0, made, sizeof(made)),
		  0);
	KT_EQ_STR(made, "1");
	KT_EQ_INT(gf_nreq, 3);
	/* Refused before any call: empty, too big, bad ids, directory. */
	gf_reset();
	memset(big, 'x', sizeof(big));
	KT_EQ_INT(commit_of(p, "p1/secrets/db", "", 0, 0, made, sizeof(made)),
		  KF_E_INVALID);
	KT_EQ_INT(commit_of(p, "p1/secrets/db", big, sizeof(big), 0, made,
			    sizeof(made)),
		  KF_E_TOOBIG);
	KT_EQ_INT(commit_of(p, "p1/secrets/a.b", "v", 1, KF_COMMIT_CREATE, made,
			    sizeof(made)),
		  KF_E_INVALID);
	KT_EQ_INT(commit_of(p, "p1/secrets", "v", 1, KF_COMMIT_CREATE, made,
			    sizeof(made)),
		  KF_E_ISDIR);
	s->read_only = 1;
	KT_EQ_INT(commit_of(p, "p1/secrets/db", "v", 1, 0, made, sizeof(made)),
		  KF_E_ROFS);
	s->read_only = 0;
	KT_EQ_INT(gf_nreq, 0);
	unmake(p);
	gf_done(a);
}

KT_TEST(gcp_secrets_write_checks)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_err err = KF_ERR_INIT;
	static unsigned char big[KF_GSM_MAX_VALUE + 1];

	gf_reset();
	a = gf_make_auth();
	p = make(a, 0);
	/* check_write: one get; absent is fine (a write creates it). */
	gf_push(200, SECRET("db", "e1"));
	KT_EQ_INT(kf_gcp_route_check_write(p, "p1/secrets/db", 0, &err), 0);
	gf_push(404, NOT_FOUND);
	KT_EQ_INT(kf_gcp_route_check_write(p, "p1/secrets/db", KF_COMMIT_CREATE,
					   &err),
		  0);
	gf_push(403, DENIED);
	KT_EQ_INT(kf_gcp_route_check_write(p, "p1/secrets/db", 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(gf_nreq, 3);
	KT_EQ_INT(kf_gcp_route_check_write(p, "p1/secrets/a b", 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	/* can_create: syntax only. */
	KT_EQ_INT(kf_gcp_route_can_create(p, "p1/secrets/ok_id-1", &err), 0);
	KT_EQ_INT(kf_gcp_route_can_create(p, "p1/secrets/caf\xc3\xa9", &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_nreq, 3);
	/* check_bytes: 0 bytes and over 64 KiB refused for secrets only. */
	KT_EQ_INT(kf_gcp_route_check_bytes(p, "p1/secrets/db", big, 0, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_gcp_route_check_bytes(p, "p1/secrets/db", big,
					   KF_GSM_MAX_VALUE, &err),
		  0);
	KT_EQ_INT(kf_gcp_route_check_bytes(p, "p1/secrets/db", big, sizeof(big),
					   &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_gcp_route_check_bytes(p, "p1/global/r/k/v", big, 0, &err),
		  0);
	unmake(p);
	gf_done(a);
}

KT_TEST(gcp_secrets_rm_dirs_and_attributes)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_gcp *s;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf out;
	struct kf_attr at;
	static const char list[] = "user.keyfs.id\0user.keyfs.version";

	gf_reset();
	a = gf_make_auth();
	p = make(a, 60);
	s = p->priv;
	kf_buf_init(&out, 512);
	/* rm: a get for the etag, a delete with it. */
	gf_push(200, SECRET("db", "e7"));
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_route_unlink(p, "p1/secrets/db", &err), 0);
	KT_EQ_INT(gf_nreq, 2);
	KT_EQ_STR(gf_req_method[1], "DELETE");
	KT_CHECK(strstr(gf_req_url[1], "/secrets/db?etag=") != NULL);
	KT_CHECK(strstr(gf_req_url[1], "e7") != NULL);
	/* A stat after the rm asks again. */
	gf_push(404, NOT_FOUND);
	KT_EQ_INT(kf_gcp_secrets_getattr(s, "p1/secrets/db", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* No hierarchy in Secret Manager. */
	KT_EQ_INT(kf_gcp_secrets_mkdir(s, "p1/secrets/dir", &err), -1);
	KT_EQ_INT(err.code, KF_E_PERM);
	KT_EQ_INT(kf_gcp_secrets_mkdir(s, "p1/secrets", &err), -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);
	KT_EQ_INT(kf_gcp_secrets_rmdir(s, "p1/secrets", &err), -1);
	KT_EQ_INT(err.code, KF_E_PERM);
	/* user.keyfs.id names the project by number, as answered. */
	gf_reset();
	gf_push(200, SECRET("api", "e1"));
	gf_push(200, SECRET("api", "e1"));
	KT_EQ_INT(kf_gcp_route_getxattr(p, "p1/secrets/api", "user.keyfs.id",
					&out, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&out), NUM "api");
	/* user.keyfs.version: the newest ENABLED version. */
	kf_buf_reset(&out);
	gf_push(200,
		"{\"versions\":[" VERSION("api", 3,
					  "DISABLED") "," VERSION("api", 2,
								  "ENABLED") "]}");
	KT_EQ_INT(kf_gcp_route_getxattr(p, "p1/secrets/api",
					"user.keyfs.version", &out, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&out), "2");
	kf_buf_reset(&out);
	gf_push(200, SECRET("api", "e1"));
	gf_push(200, "{\"versions\":[" VERSION("api", 1, "ENABLED") "]}");
	KT_EQ_INT(kf_gcp_route_listxattr(p, "p1/secrets/api", &out, &err), 0);
	KT_EQ_INT(out.len, sizeof(list));
	KT_EQ_MEM(out.data, list, sizeof(list));
	KT_EQ_INT(kf_gcp_route_setxattr(p, "p1/secrets/api", "user.keyfs.id",
					"x", 1, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_PERM);
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcp_route_listxattr(p, "p1/secrets", &out, &err), 0);
	KT_EQ_INT(out.len, 0);
	kf_buf_release(&out);
	unmake(p);
	gf_done(a);
}

struct rows {
	char all[512];
};

static int row(void *ctx, const char *version, int64_t created,
	       const char *labels)
{
	struct rows *r = ctx;
	size_t l = strlen(r->all);

	gf_path(r->all + l, sizeof(r->all) - l, "%s%s@%lld[%s]", l ? " " : "",
		version, (long long)(created % 100000), labels);
	return 0;
}

KT_TEST(gcp_secrets_versions_and_stamp)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p;
	struct kf_err err = KF_ERR_INIT;
	struct rows r = { "" };
	struct kf_buf out;

	gf_reset();
	a = gf_make_auth();
	p = make(a, 0);
	kf_buf_init(&out, 64);
	/* Two pages; "latest" on the newest ENABLED one, states named. */
	gf_push(200, "{\"versions\":[" VERSION("db", 4, "DISABLED") "," VERSION(
			     "db", 3, "ENABLED") "],\"nextPageToken\":\"n\"}");
	gf_push(200, "{\"versions\":[" VERSION("db", 2, "ENABLED") "," VERSION(
			     "db", 1, "DESTROYED") "]}");
	KT_EQ_INT(kf_gcp_route_versions(p, "p1/secrets/db", row, &r, &err), 0);
	KT_EQ_STR(r.all, "4@4000[disabled] 3@3000[latest] 2@2000[] "
			 "1@1000[destroyed]");
	KT_EQ_INT(gf_nreq, 2);
	KT_CHECK(strstr(gf_req_url[1], "pageToken=n") != NULL);
	/* The stamp: the newest ENABLED version, from one page. */
	gf_reset();
	gf_push(200, "{\"versions\":[" VERSION("db", 4, "DISABLED") "," VERSION(
			     "db", 3, "ENABLED") "],\"nextPageToken\":\"n\"}");
	KT_EQ_INT(kf_gcp_route_stamp(p, "p1/secrets/db", &out, &err), 0);
	KT_EQ_STR(kf_buf_str(&out), "3");
	KT_EQ_INT(gf_nreq, 1);
	gf_push(404, NOT_FOUND);
	KT_EQ_INT(kf_gcp_route_stamp(p, "p1/secrets/gone", &out, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	kf_buf_release(&out);
	unmake(p);
	gf_done(a);
}
