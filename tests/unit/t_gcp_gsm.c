/* Unit tests for the Secret Manager client (cloud/gcp/gsm.c, gsm_value.c)
 * through the HTTP transport seam: the answer parsers (project numbers
 * in names, times, states), request shapes (base64 + decimal CRC32C,
 * etags, CMEK), limits checked before any call, the access CRC32C check,
 * addVersion's landed check after an ambiguous failure, delete after an
 * unanswered attempt, and create-with-value cleaning up after itself. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "gcp/gsm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC "projects/p1/secrets/db"
#define NUM_SEC "projects/480213377105/secrets/db"
#define URL "http://127.0.0.1:9/v1/"

static long long fixed_ms = 1700000000000LL; /* 2023-11-14T22:13:20Z */

static long long fixed_now(void)
{
	return fixed_ms;
}

static struct kf_gcp_auth *setup(struct kf_gsm *g)
{
	struct kf_gcp_auth *a;
	struct kf_err err = KF_ERR_INIT;

	gf_reset();
	a = gf_make_auth();
	KT_EQ_INT(kf_gsm_init(g, "http://127.0.0.1:9", a, 5000, &err), 0);
	g->rest.backoff_ms = 1;
	g->rest.backoff_429_ms = 2;
	kf_gsm_set_clock(fixed_now);
	return a;
}

static void teardown(struct kf_gcp_auth *a)
{
	kf_gsm_set_clock(NULL);
	gf_done(a);
}

/* An access answer naming secret db, version v, holding s (CRC ok when
 * crc is NULL). */
static char answers[8][512];
static const char *access_answer(int slot, const char *v, const char *s,
				 const char *crc)
{
	struct kf_buf b64;
	char c[16];

	kf_buf_init(&b64, 1024);
	KT_EQ_INT(kf_base64_encode(s, strlen(s), &b64), 0);
	(void)snprintf(c, sizeof(c), "%u", kf_crc32c(0, s, strlen(s)));
	gf_path(answers[slot], sizeof(answers[slot]),
		"{\"name\":\"%s/versions/%s\",\"payload\":{\"data\":\"%s\","
		"\"dataCrc32c\":\"%s\"}}",
		NUM_SEC, v, kf_buf_str(&b64), crc ? crc : c);
	kf_buf_release(&b64);
	return answers[slot];
}

/* A version list with one version n created at ms. */
static const char *list_answer(int slot, int n, long long ms, const char *state)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char ts[40];

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	gf_path(answers[slot], sizeof(answers[slot]),
		"{\"versions\":[{\"name\":\"%s/versions/%d\",\"createTime\":"
		"\"%s.%03lldZ\",\"state\":\"%s\",\"etag\":\"\\\"e%d\\\"\"}],"
		"\"totalSize\":1}",
		NUM_SEC, n, ts, ms % 1000, state, n);
	return answers[slot];
}

#define ADDED(n)                                                                   \
	"{\"name\":\"" NUM_SEC "/versions/" #n "\",\"createTime\":"                \
	"\"2023-11-14T22:13:21.5Z\",\"state\":\"ENABLED\",\"etag\":\"\\\"x\\\"\"," \
	"\"clientSpecifiedPayloadChecksum\":true}"

static int count_posts(const char *suffix)
{
	int n = 0;

	for (int i = 0; i < gf_nreq && i < 32; i++) {
		size_t ul = strlen(gf_req_url[i]), sl = strlen(suffix);

		if (!strcmp(gf_req_method[i], "POST") && ul >= sl &&
		    !strcmp(gf_req_url[i] + ul - sl, suffix))
			n++;
	}
	return n;
}

KT_TEST(gsm_endpoint_and_ids)
{
	struct kf_gsm g;
	struct kf_err err = KF_ERR_INIT;
	char long_id[300];

	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER");
	KT_EQ_INT(kf_gsm_init(&g, NULL, NULL, 0, &err), 0);
	KT_EQ_STR(g.rest.endpoint, "https://secretmanager.googleapis.com/");
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
	       "http://localhost:7", 1);
	KT_EQ_INT(kf_gsm_init(&g, NULL, NULL, 0, &err), 0);
	KT_EQ_STR(g.rest.endpoint, "http://localhost:7/");
	KT_EQ_INT(kf_gsm_init(&g, "http://127.0.0.1:8/", NULL, 0, &err), 0);
	KT_EQ_STR(g.rest.endpoint, "http://127.0.0.1:8/");
	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER");
	KT_EQ_INT(kf_gsm_init(&g, "http://example.com/", NULL, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "Cloud KMS") == NULL);
	KT_EQ_INT(kf_gsm_valid_id("a-b_C9"), 1);
	KT_EQ_INT(kf_gsm_valid_id(""), 0);
	KT_EQ_INT(kf_gsm_valid_id("a.b"), 0);
	KT_EQ_INT(kf_gsm_valid_id("a/b"), 0);
	memset(long_id, 'a', 255);
	long_id[255] = '\0';
	KT_EQ_INT(kf_gsm_valid_id(long_id), 1);
	long_id[255] = 'a';
	long_id[256] = '\0';
	KT_EQ_INT(kf_gsm_valid_id(long_id), 0);
}

KT_TEST(gsm_parse_time)
{
	static const struct {
		const char *s;
		long long ms;
	} cases[] = {
		{ "2023-11-14T22:13:20Z", 1700000000000LL },
		{ "2023-11-14T22:13:20.5Z", 1700000000500LL },
		{ "2023-11-14T22:13:20.123456789Z", 1700000000123LL },
		{ "2023-11-14T23:13:20+01:00", 1700000000000LL },
		{ "2023-11-14T21:13:20.001-01:00", 1700000000001LL },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2023-11-14T22:13:20", -1 },
		{ "2023-11-14 22:13:20Z", -1 },
		{ "2023-13-14T22:13:20Z", -1 },
		{ "2023-11-14T22:13:20.Z", -1 },
		{ "2023-11-14T22:13:20Zx", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		KT_EQ_INT(kf_gsm_parse_time(cases[i].s), cases[i].ms);
	KT_EQ_INT(kf_gsm_parse_time(NULL), -1);
}

KT_TEST(gsm_parse_secret_and_version)
{
	struct kf_gsm_secret s;
	struct kf_gsm_version v;
	struct kf_err err = KF_ERR_INIT;
	json_t *j;
	static const char *bad_secrets[] = {
		"{}",
		"{\"name\":\"db\"}",
		"{\"name\":\"projects/1/secrets/\"}",
		"{\"name\":\"projects/1/secrets/a.b\"}",
		"{\"name\":\"projects/1/secrets/db\",\"createTime\":\"x\"}",
		"{\"name\":\"projects/1/secrets/db\",\"labels\":[]}",
		"{\"name\":\"projects/1/secrets/db\",\"etag\":5}",
		"{\"name\":\"projects/1/secrets/db\",\"replication\":"
		"{\"automatic\":{\"customerManagedEncryption\":{}}}}",
	};
	static const char *bad_versions[] = {
		"{\"name\":\"" NUM_SEC "/versions/0\",\"state\":\"ENABLED\"}",
		"{\"name\":\"" NUM_SEC "/versions/x\",\"state\":\"ENABLED\"}",
		"{\"name\":\"" NUM_SEC "/versions/1\",\"state\":\"GONE\"}",
		"{\"name\":\"" NUM_SEC "/versions/1\"}",
		"{\"name\":\"" NUM_SEC "/versions/1/x\",\"state\":\"ENABLED\"}",
		"{\"name\":\"" NUM_SEC "/versions/1\",\"state\":\"ENABLED\","
		"\"createTime\":7}",
	};

	j = json_loads("{\"name\":\"projects/480213377105/secrets/db\","
		       "\"createTime\":\"2023-11-14T22:13:20.250Z\","
		       "\"etag\":\"\\\"abc\\\"\",\"labels\":{\"team\":\"x\"},"
		       "\"annotations\":{\"a\":\"b\"},\"replication\":{"
		       "\"automatic\":{\"customerManagedEncryption\":{"
		       "\"kmsKeyName\":\"projects/p1/locations/global/"
		       "keyRings/r/cryptoKeys/k\"}}}}",
		       0, NULL);
	KT_EQ_INT(kf_gsm_parse_secret(j, &s, &err), 0);
	KT_EQ_STR(s.id, "db");
	KT_EQ_STR(s.project, "480213377105");
	KT_EQ_INT(s.create_ms, 1700000000250LL);
	KT_EQ_STR(s.etag, "\"abc\"");
	KT_EQ_INT(s.user_managed, 0);
	KT_EQ_STR(s.kms_key, "projects/p1/locations/global/keyRings/r/"
			     "cryptoKeys/k");
	KT_EQ_STR(json_string_value(json_object_get(s.labels, "team")), "x");
	KT_EQ_STR(json_string_value(json_object_get(s.annotations, "a")), "b");
	kf_gsm_secret_release(&s);
	json_decref(j);
	j = json_loads("{\"name\":\"projects/1/secrets/u\",\"replication\":{"
		       "\"userManaged\":{\"replicas\":[{\"location\":\"a\"},"
		       "{\"location\":\"b\",\"customerManagedEncryption\":{"
		       "\"kmsKeyName\":\"K2\"}}]}}}",
		       0, NULL);
	KT_EQ_INT(kf_gsm_parse_secret(j, &s, &err), 0);
	KT_EQ_INT(s.user_managed, 1);
	KT_EQ_STR(s.kms_key, "K2");
	KT_EQ_INT(s.create_ms, -1);
	kf_gsm_secret_release(&s);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad_secrets) / sizeof(bad_secrets[0]);
	     i++) {
		j = json_loads(bad_secrets[i], 0, NULL);
		KT_EQ_INT(kf_gsm_parse_secret(j, &s, &err), -1);
		KT_EQ_INT(err.code, KF_E_IO);
		KT_CHECK(s.labels == NULL);
		json_decref(j);
	}
	j = json_loads("{\"name\":\"" NUM_SEC "/versions/12\",\"state\":"
		       "\"DESTROYED\",\"createTime\":\"2023-11-14T22:13:20Z\","
		       "\"destroyTime\":\"2023-11-14T22:13:21Z\"}",
		       0, NULL);
	KT_EQ_INT(kf_gsm_parse_version(j, &v, &err), 0);
	KT_EQ_INT(v.number, 12);
	KT_EQ_INT(v.state, KF_GSM_DESTROYED);
	KT_EQ_INT(v.create_ms, 1700000000000LL);
	KT_EQ_INT(v.destroy_ms, 1700000001000LL);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]);
	     i++) {
		j = json_loads(bad_versions[i], 0, NULL);
		KT_EQ_INT(kf_gsm_parse_version(j, &v, &err), -1);
		KT_EQ_INT(err.code, KF_E_IO);
		json_decref(j);
	}
}

KT_TEST(gsm_access_checks_crc_and_name)
{
	struct kf_gcp_auth *a;
	struct kf_gsm g;
	struct kf_secret *val = NULL;
	struct kf_err err = KF_ERR_INIT;
	long long num = 0;

	a = setup(&g);
	gf_push(200, access_answer(0, "3", "hunter2", NULL));
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "latest", &val, &num, &err), 0);
	KT_EQ_INT(val->len, 7);
	KT_EQ_MEM(val->data, "hunter2", 7);
	KT_EQ_STR(val->version, "3");
	KT_EQ_INT(num, 3);
	KT_EQ_STR(gf_req_url[0], URL SEC "/versions/latest:access");
	KT_EQ_STR(gf_req_method[0], "GET");
	kf_secret_free(val);
	/* A corrupted checksum is asked again, then given up. */
	gf_reset();
	for (int i = 0; i < 3; i++)
		gf_push(200, access_answer(0, "3", "hunter2", "12345"));
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "3", &val, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(val == NULL);
	KT_EQ_INT(gf_nreq, 3);
	KT_CHECK(strstr(err.msg, "dataCrc32c") != NULL);
	gf_reset();
	gf_push(200, access_answer(0, "3", "hunter2", "12345"));
	gf_push(200, access_answer(1, "3", "hunter2", NULL));
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "3", &val, &num, &err), 0);
	KT_EQ_INT(gf_nreq, 2);
	kf_secret_free(val);
	/* An answer about another secret is not ours. */
	gf_reset();
	for (int i = 0; i < 3; i++)
		gf_push(200,
			"{\"name\":\"projects/1/secrets/other/versions/1\","
			"\"payload\":{\"data\":\"eA==\",\"dataCrc32c\":"
			"\"2717587590\"}}");
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "1", &val, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	/* A disabled version: FAILED_PRECONDITION, not retried. */
	gf_reset();
	gf_push(400, "{\"error\":{\"code\":400,\"status\":"
		     "\"FAILED_PRECONDITION\",\"message\":\"Secret Version "
		     "[x] is in DISABLED state.\"}}");
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "2", &val, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_EQ_INT(gf_nreq, 1);
	KT_CHECK(strstr(err.msg, "Cloud KMS") == NULL);
	KT_CHECK(strstr(err.msg, "Secret Manager") != NULL);
	/* Bad versions and ids: no call. */
	gf_reset();
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "01", &val, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_gsm_access(&g, "p1", "db", "x/y", &val, &num, &err), -1);
	KT_EQ_INT(kf_gsm_access(&g, "p1", "d.b", "1", &val, &num, &err), -1);
	KT_EQ_INT(kf_gsm_access(&g, "P/1", "db", "1", &val, &num, &err), -1);
	KT_EQ_INT(gf_nreq, 0);
	teardown(a);
}

KT_TEST(gsm_add_request_and_limits)
{
	struct kf_gcp_auth *a;
	struct kf_gsm g;
	struct kf_err err = KF_ERR_INIT;
	long long num = 0;
	static char big[KF_GSM_MAX_VALUE + 1];
	json_t *b;

	a = setup(&g);
	gf_push(200, ADDED(4));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "hello", 5, &num, &err), 0);
	KT_EQ_INT(num, 4);
	KT_EQ_STR(gf_req_url[0], URL SEC ":addVersion");
	b = json_loads(gf_req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(
			  json_object_get(json_object_get(b, "payload"),
					  "data")),
		  "aGVsbG8=");
	KT_EQ_STR(json_string_value(
			  json_object_get(json_object_get(b, "payload"),
					  "dataCrc32c")),
		  "2591144780");
	json_decref(b);
	gf_reset();
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "", 0, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", big, sizeof(big), &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_gsm_add(&g, "p1", "no.dots", "x", 1, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_nreq, 0);
	/* The largest value goes out. */
	gf_push(200, ADDED(5));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", big, KF_GSM_MAX_VALUE, &num, &err),
		  0);
	/* A refused value is not retried; a damaged request is. */
	gf_reset();
	gf_push(403, "{\"error\":{\"code\":403,\"status\":"
		     "\"PERMISSION_DENIED\",\"message\":\"no\"}}");
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "x", 1, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(gf_nreq, 1);
	gf_reset();
	gf_push(400,
		"{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\","
		"\"message\":\"Checksum mismatch: payload.data_crc32c\"}}");
	gf_push(200, ADDED(6));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "x", 1, &num, &err), 0);
	KT_EQ_INT(num, 6);
	KT_EQ_INT(gf_nreq, 2);
	teardown(a);
}

KT_TEST(gsm_add_ambiguous_landed)
{
	struct kf_gcp_auth *a;
	struct kf_gsm g;
	struct kf_err err = KF_ERR_INIT;
	long long num = 0;

	a = setup(&g);
	/* No answer; the check finds version 7, created after the start,
	 * holding our bytes: no second addVersion. */
	gf_push(0, "");
	gf_push(200, list_answer(0, 7, fixed_ms + 300, "ENABLED"));
	gf_push(200, access_answer(1, "7", "s3cret", NULL));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), 0);
	KT_EQ_INT(num, 7);
	KT_EQ_INT(count_posts(":addVersion"), 1);
	KT_EQ_INT(gf_nreq, 3);
	KT_CHECK(strncmp(gf_req_url[1], URL SEC "/versions?pageSize=", 40) ==
		 0);
	KT_EQ_STR(gf_req_url[2], URL SEC "/versions/7:access");
	/* A 503: the check finds only an older version: sent again. */
	gf_reset();
	gf_push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\","
		     "\"message\":\"try later\"}}");
	gf_push(200, list_answer(0, 2, fixed_ms - 60000, "ENABLED"));
	gf_push(200, ADDED(3));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), 0);
	KT_EQ_INT(num, 3);
	KT_EQ_INT(count_posts(":addVersion"), 2);
	/* New version with other bytes (another writer): sent again. */
	gf_reset();
	gf_push(0, "");
	gf_push(200, list_answer(0, 8, fixed_ms + 10, "ENABLED"));
	gf_push(200, access_answer(1, "8", "theirs", NULL));
	gf_push(200, ADDED(9));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), 0);
	KT_EQ_INT(num, 9);
	KT_EQ_INT(count_posts(":addVersion"), 2);
	/* A disabled new version is not taken for ours. */
	gf_reset();
	gf_push(0, "");
	gf_push(200, list_answer(0, 8, fixed_ms + 10, "DISABLED"));
	gf_push(200, ADDED(9));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), 0);
	KT_EQ_INT(count_posts(":addVersion"), 2);
	/* The check cannot answer: the first error stands, nothing resent. */
	gf_reset();
	gf_push(0, "");
	gf_push(403, "{\"error\":{\"code\":403,\"status\":"
		     "\"PERMISSION_DENIED\",\"message\":\"no list\"}}");
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(count_posts(":addVersion"), 1);
	/* The server did not say it checked our CRC32C: read it back. */
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "/versions/4\",\"state\":"
		     "\"ENABLED\"}");
	gf_push(200, access_answer(0, "4", "s3cret", NULL));
	KT_EQ_INT(kf_gsm_add(&g, "p1", "db", "s3cret", 6, &num, &err), 0);
	KT_EQ_INT(num, 4);
	KT_EQ_INT(gf_nreq, 2);
	teardown(a);
}

KT_TEST(gsm_create_delete_and_cleanup)
{
	struct kf_gcp_auth *a;
	struct kf_gsm g;
	struct kf_err err = KF_ERR_INIT;
	char etag[96];
	long long num = 0;
	json_t *b;

	a = setup(&g);
	gf_push(200, "{\"name\":\"" NUM_SEC "\",\"etag\":\"\\\"e1\\\"\"}");
	KT_EQ_INT(kf_gsm_create(&g, "p1", "db", NULL, etag, sizeof(etag), &err),
		  0);
	KT_EQ_STR(etag, "\"e1\"");
	KT_EQ_STR(gf_req_url[0], URL "projects/p1/secrets?secretId=db");
	b = json_loads(gf_req_body[0], 0, NULL);
	KT_CHECK(json_is_object(
		json_object_get(json_object_get(b, "replication"),
				"automatic")));
	KT_EQ_INT(json_object_size(
			  json_object_get(json_object_get(b, "replication"),
					  "automatic")),
		  0);
	json_decref(b);
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "\"}");
	KT_EQ_INT(kf_gsm_create(&g, "p1", "db",
				"projects/p1/locations/global/"
				"keyRings/r/cryptoKeys/k",
				NULL, 0, &err),
		  0);
	b = json_loads(gf_req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(json_object_get(
			  json_object_get(
				  json_object_get(json_object_get(b,
								  "replication"),
						  "automatic"),
				  "customerManagedEncryption"),
			  "kmsKeyName")),
		  "projects/p1/locations/global/keyRings/r/cryptoKeys/k");
	json_decref(b);
	gf_reset();
	gf_push(409, "{\"error\":{\"code\":409,\"status\":\"ALREADY_EXISTS\","
		     "\"message\":\"exists\"}}");
	KT_EQ_INT(kf_gsm_create(&g, "p1", "db", NULL, NULL, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);
	KT_EQ_INT(kf_gsm_create(&g, "p1", "bad id", NULL, NULL, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_nreq, 1);
	/* Delete with an etag; a stale one is FAILED_PRECONDITION. */
	gf_reset();
	gf_push(200, "{}");
	KT_EQ_INT(kf_gsm_delete(&g, "p1", "db", "\"e1\"", &err), 0);
	KT_EQ_STR(gf_req_url[0], URL SEC "?etag=%22e1%22");
	KT_EQ_STR(gf_req_method[0], "DELETE");
	gf_reset();
	gf_push(400, "{\"error\":{\"code\":400,\"status\":"
		     "\"FAILED_PRECONDITION\",\"message\":\"etag\"}}");
	KT_EQ_INT(kf_gsm_delete(&g, "p1", "db", "\"old\"", &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_EQ_INT(gf_nreq, 1);
	/* Unanswered, then NOT_FOUND: it was deleted. */
	gf_reset();
	gf_push(0, "");
	gf_push(404, "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\","
		     "\"message\":\"gone\"}}");
	KT_EQ_INT(kf_gsm_delete(&g, "p1", "db", NULL, &err), 0);
	gf_reset();
	gf_push(404, "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\","
		     "\"message\":\"gone\"}}");
	KT_EQ_INT(kf_gsm_delete(&g, "p1", "db", NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* Create then a failing value: the secret is deleted again. */
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "\",\"etag\":\"\\\"e2\\\"\"}");
	gf_push(403, "{\"error\":{\"code\":403,\"status\":"
		     "\"PERMISSION_DENIED\",\"message\":\"no add\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gsm_create_with_value(&g, "p1", "db", NULL, "v", 1, &num,
					   &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(gf_nreq, 3);
	KT_EQ_STR(gf_req_method[2], "DELETE");
	KT_EQ_STR(gf_req_url[2], URL SEC "?etag=%22e2%22");
	/* ... and when that delete fails too, the error says so. */
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "\",\"etag\":\"\\\"e3\\\"\"}");
	gf_push(403, "{\"error\":{\"code\":403,\"status\":"
		     "\"PERMISSION_DENIED\",\"message\":\"no add\"}}");
	gf_push(403, "{\"error\":{\"code\":403,\"status\":"
		     "\"PERMISSION_DENIED\",\"message\":\"no delete\"}}");
	KT_EQ_INT(kf_gsm_create_with_value(&g, "p1", "db", NULL, "v", 1, &num,
					   &err),
		  -1);
	KT_CHECK(strstr(err.msg, "empty secret remains") != NULL);
	/* Success: create + add, nothing deleted; limits before any call. */
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "\",\"etag\":\"\\\"e4\\\"\"}");
	gf_push(200, ADDED(1));
	KT_EQ_INT(kf_gsm_create_with_value(&g, "p1", "db", NULL, "v", 1, &num,
					   &err),
		  0);
	KT_EQ_INT(num, 1);
	KT_EQ_INT(gf_nreq, 2);
	gf_reset();
	KT_EQ_INT(kf_gsm_create_with_value(&g, "p1", "db", NULL, "", 0, &num,
					   &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_nreq, 0);
	teardown(a);
}

struct seen {
	char ids[4][64];
	long long ms[4];
	int n;
};

static int see_secret(void *ctx, const struct kf_gsm_secret *s)
{
	struct seen *x = ctx;

	if (x->n < 4) {
		gf_path(x->ids[x->n], sizeof(x->ids[0]), "%s", s->id);
		x->ms[x->n] = s->create_ms;
	}
	x->n++;
	return 0;
}

static int see_version(void *ctx, const struct kf_gsm_version *v)
{
	struct seen *x = ctx;

	if (x->n < 4) {
		gf_path(x->ids[x->n], sizeof(x->ids[0]), "%lld:%d", v->number,
			(int)v->state);
		x->ms[x->n] = v->create_ms;
	}
	x->n++;
	return 0;
}

KT_TEST(gsm_lists_and_errors)
{
	struct kf_gcp_auth *a;
	struct kf_gsm g;
	struct kf_gsm_secret s;
	struct kf_err err = KF_ERR_INIT;
	struct seen x = { 0 };
	struct kf_buf next;

	a = setup(&g);
	kf_buf_init(&next, 4096);
	gf_push(200, "{\"secrets\":[{\"name\":\"projects/480213377105/"
		     "secrets/a\",\"createTime\":\"2023-11-14T22:13:20Z\"},"
		     "{\"name\":\"projects/480213377105/secrets/b\"}],"
		     "\"nextPageToken\":\"t+/=\",\"totalSize\":3}");
	KT_EQ_INT(kf_gsm_list_secrets(&g, "p1", 2, "abc=", see_secret, &x,
				      &next, &err),
		  0);
	KT_EQ_STR(gf_req_url[0],
		  URL "projects/p1/secrets?pageSize=2&pageToken=abc%3D");
	KT_EQ_INT(x.n, 2);
	KT_EQ_STR(x.ids[0], "a");
	KT_EQ_INT(x.ms[0], 1700000000000LL);
	KT_EQ_STR(x.ids[1], "b");
	KT_EQ_STR(kf_buf_str(&next), "t+/=");
	gf_reset();
	gf_push(200, "{}");
	KT_EQ_INT(kf_gsm_list_secrets(&g, "p1", 0, NULL, see_secret, &x, &next,
				      &err),
		  0);
	KT_EQ_STR(kf_buf_str(&next), "");
	gf_reset();
	gf_push(200, "{\"secrets\":[{\"name\":\"nonsense\"}]}");
	KT_EQ_INT(kf_gsm_list_secrets(&g, "p1", 0, NULL, see_secret, &x, &next,
				      &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_IO);
	/* Versions: newest first, states, times. */
	gf_reset();
	memset(&x, 0, sizeof(x));
	gf_push(200, "{\"versions\":[{\"name\":\"" NUM_SEC "/versions/2\","
		     "\"state\":\"DISABLED\",\"createTime\":"
		     "\"2023-11-14T22:13:21Z\"},{\"name\":\"" NUM_SEC
		     "/versions/1\",\"state\":\"ENABLED\",\"createTime\":"
		     "\"2023-11-14T22:13:20Z\"}]}");
	KT_EQ_INT(kf_gsm_list_versions(&g, "p1", "db", 10, NULL, see_version,
				       &x, NULL, &err),
		  0);
	KT_EQ_STR(gf_req_url[0], URL SEC "/versions?pageSize=10");
	KT_EQ_INT(x.n, 2);
	KT_EQ_STR(x.ids[0], "2:2");
	KT_EQ_STR(x.ids[1], "1:1");
	KT_EQ_INT(x.ms[0], 1700000001000LL);
	/* get: names by number; errors mapped. */
	gf_reset();
	gf_push(200, "{\"name\":\"" NUM_SEC "\",\"etag\":\"\\\"e\\\"\","
		     "\"replication\":{\"automatic\":{}}}");
	KT_EQ_INT(kf_gsm_get(&g, "p1", "db", &s, &err), 0);
	KT_EQ_STR(s.id, "db");
	KT_EQ_STR(s.project, "480213377105");
	kf_gsm_secret_release(&s);
	gf_reset();
	gf_push(404, "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\","
		     "\"message\":\"Secret [" NUM_SEC "] not found.\"}}");
	KT_EQ_INT(kf_gsm_get(&g, "p1", "db", &s, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_STR(err.provider_code, "NOT_FOUND");
	gf_reset();
	gf_push(429, "{\"error\":{\"code\":429,\"status\":"
		     "\"RESOURCE_EXHAUSTED\",\"message\":\"quota\"}}");
	gf_push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\","
		     "\"message\":\"later\"}}");
	gf_push(200, "{\"name\":\"" NUM_SEC "\"}");
	KT_EQ_INT(kf_gsm_get(&g, "p1", "db", &s, &err), 0);
	KT_EQ_INT(gf_nreq, 3);
	kf_gsm_secret_release(&s);
	kf_buf_release(&next);
	teardown(a);
}

KT_TEST(gsm_relabel)
{
	struct kf_err err = KF_ERR_INIT;

	kf_fail(&err, KF_E_IO, "Cloud KMS POST x: INTERNAL (last: Cloud KMS)");
	kf_gsm_relabel(&err);
	KT_EQ_STR(err.msg,
		  "Secret Manager POST x: INTERNAL (last: Secret Manager)");
	kf_fail(&err, KF_E_IO, "nothing to do");
	kf_gsm_relabel(&err);
	KT_EQ_STR(err.msg, "nothing to do");
	memset(err.msg, 'a', sizeof(err.msg) - 1);
	memcpy(err.msg + sizeof(err.msg) - 10, "Cloud KMS", 10);
	kf_gsm_relabel(&err);
	KT_EQ_INT(strlen(err.msg), sizeof(err.msg) - 1);
}
