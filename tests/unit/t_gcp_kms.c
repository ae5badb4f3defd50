/* Unit tests for the Cloud KMS client (cloud/gcp/kms.c, kms_keys.c,
 * kms_crypt.c) through the HTTP transport seam: the CRC32C integrity
 * checks of encrypt/decrypt, retry classification and behaviour (attempts,
 * deadline, token refresh), version creation never retried,
 * ALREADY_EXISTS after an ambiguous retry, refused ciphertexts. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "core/clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- KMS */

static char enc_ok[512];

/* A well-formed encrypt answer for ciphertext "CT-bytes". */
static const char *encrypt_answer(const char *name, const char *crc,
				  const char *vp, const char *va)
{
	char c[16];

	if (!crc) {
		/* A 32-bit number fits; enc_ok fits every case's answer. */
		(void)snprintf(c, sizeof(c), "%u", kf_crc32c(0, "CT-bytes", 8));
		crc = c;
	}
	(void)snprintf(enc_ok, sizeof(enc_ok),
		       "{\"name\":\"%s\",\"ciphertext\":\"Q1QtYnl0ZXM=\","
		       "\"ciphertextCrc32c\":\"%s\"%s%s%s%s,"
		       "\"protectionLevel\":\"SOFTWARE\"}",
		       name, crc, vp ? ",\"verifiedPlaintextCrc32c\":" : "",
		       vp ? vp : "",
		       va ? ",\"verifiedAdditionalAuthenticatedDataCrc32c\":" :
			    "",
		       va ? va : "");
	return enc_ok;
}

KT_TEST(gcp_kms_encrypt_verifies_response)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_buf ct;
	struct kf_err err = KF_ERR_INIT;
	char used[300];
	static const struct {
		const char *name, *crc, *vp, *va;
		int ok;
	} cases[] = {
		{ KEY "/cryptoKeyVersions/1", NULL, "true", "true", 1 },
		{ KEY "/cryptoKeyVersions/1", "12345", "true", "true", 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, "false", "true", 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, "true", NULL, 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, NULL, NULL, 0 },
		{ KEY "2/cryptoKeyVersions/1", NULL, "true", "true", 0 },
		{ KEY "/cryptoKeyVersions/", NULL, "true", "true", 0 },
		{ "projects/p1/locations/global/keyRings/r/cryptoKeys/x"
		  "/cryptoKeyVersions/1",
		  NULL, "true", "true", 0 },
	};
	json_t *body;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	kf_buf_init(&ct, 65536);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *ans = encrypt_answer(cases[i].name, cases[i].crc,
						 cases[i].vp, cases[i].va);

		gf_reset();
		for (int r = 0; r < 3; r++)
			gf_push(200, ans);
		kf_buf_reset(&ct);
		used[0] = '\0';
		if (cases[i].ok) {
			KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "hello", 5, &ct,
						     used, sizeof(used), &err),
				  0);
			KT_EQ_INT(ct.len, 8);
			KT_EQ_MEM(ct.data, "CT-bytes", 8);
			KT_EQ_STR(used, KEY "/cryptoKeyVersions/1");
			KT_EQ_INT(gf_nreq, 1);
		} else {
			KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "hello", 5, &ct,
						     used, sizeof(used), &err),
				  -1);
			KT_EQ_INT(err.code, KF_E_INTEGRITY);
			KT_EQ_INT(ct.len, 0);
			KT_EQ_STR(used, "");
			/* Discarded and retried, as gcloud does. */
			KT_EQ_INT(gf_nreq, 3);
		}
		KT_EQ_STR(gf_req_url[0],
			  "http://127.0.0.1:9/v1/" KEY ":encrypt");
		KT_EQ_STR(gf_req_method[0], "POST");
		body = json_loads(gf_req_body[0], 0, NULL);
		KT_EQ_STR(json_string_value(json_object_get(body, "plaintext")),
			  "aGVsbG8=");
		KT_EQ_STR(json_string_value(
				  json_object_get(body, "plaintextCrc32c")),
			  "2591144780");
		KT_EQ_STR(json_string_value(json_object_get(
				  body, "additionalAuthenticatedDataCrc32c")),
			  "0");
		json_decref(body);
	}
	/* Limits, before any call. */
	gf_reset();
	KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "x", 65537, &ct, NULL, 0, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(gf_nreq, 0);
	kf_buf_release(&ct);
	gf_done(a);
}

KT_TEST(gcp_kms_decrypt_verifies_plaintext_crc)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_secret *pt = NULL;
	struct kf_err err = KF_ERR_INIT;
	json_t *body;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_push(200,
		"{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"2591144780\","
		"\"usedPrimary\":true}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), 0);
	KT_CHECK(pt != NULL);
	KT_EQ_INT(pt->len, 5);
	KT_EQ_MEM(pt->data, "hello", 5);
	kf_secret_free(pt);
	pt = NULL;
	KT_EQ_STR(gf_req_url[0], "http://127.0.0.1:9/v1/" KEY ":decrypt");
	body = json_loads(gf_req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(json_object_get(body, "ciphertext")),
		  "Q1QtYnl0ZXM=");
	KT_EQ_INT(strtoul(json_string_value(
				  json_object_get(body, "ciphertextCrc32c")),
			  NULL, 10),
		  kf_crc32c(0, "CT-bytes", 8));
	json_decref(body);

	/* Wrong CRC (every attempt): never returned. */
	gf_reset();
	for (int i = 0; i < 3; i++)
		gf_push(200, "{\"plaintext\":\"aGVsbG8=\","
			     "\"plaintextCrc32c\":\"2591144781\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(pt == NULL);
	KT_EQ_INT(gf_nreq, 3);

	/* Missing CRC with non-empty plaintext: 0 != CRC("hello"). */
	gf_reset();
	for (int i = 0; i < 3; i++)
		gf_push(200, "{\"plaintext\":\"aGVsbG8=\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(pt == NULL);

	/* One corrupted answer, then a good one: retried. */
	gf_reset();
	gf_push(200, "{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"1\"}");
	gf_push(200,
		"{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"2591144780\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), 0);
	KT_EQ_INT(gf_nreq, 2);
	kf_secret_free(pt);
	pt = NULL;

	/* Invalid ciphertext: INTEGRITY, not retried. */
	gf_reset();
	gf_push(400, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\","
		     "\"message\":\"Decryption failed: the ciphertext is "
		     "invalid.\"}}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "garbage!", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_STR(err.provider_code, "INVALID_ARGUMENT");
	KT_EQ_INT(gf_nreq, 1);
	KT_CHECK(pt == NULL);
	gf_done(a);
}

KT_TEST(gcp_kms_retry_classification)
{
	static const struct {
		const char *status;
		long http;
		const char *msg;
		int cls;
		enum kf_code code;
	} v[] = {
		{ "UNAVAILABLE", 503, "", 1, KF_E_UNAVAILABLE },
		{ "DEADLINE_EXCEEDED", 504, "", 1, KF_E_TIMEOUT },
		{ "RESOURCE_EXHAUSTED", 429, "", 2, KF_E_UNAVAILABLE },
		{ "", 429, "", 2, KF_E_UNAVAILABLE },
		{ "", 503, "", 1, KF_E_UNAVAILABLE },
		{ "INTERNAL", 500, "", 1, KF_E_IO },
		{ "NOT_FOUND", 404, "", 0, KF_E_NOTFOUND },
		{ "ALREADY_EXISTS", 409, "", 0, KF_E_EXISTS },
		{ "PERMISSION_DENIED", 403, "", 0, KF_E_DENIED },
		{ "UNAUTHENTICATED", 401, "", 0, KF_E_DENIED },
		{ "INVALID_ARGUMENT", 400, "bad id", 0, KF_E_INVALID },
		{ "INVALID_ARGUMENT", 400,
		  "The checksum in field plaintext_crc32c did not match the "
		  "data in field plaintext.",
		  1, KF_E_INVALID },
		{ "FAILED_PRECONDITION", 400, "", 0, KF_E_STATE },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		KT_EQ_INT(kf_gcp_kms_retry_class(v[i].status, v[i].http,
						 v[i].msg),
			  v[i].cls);
		KT_EQ_INT(kf_gcp_kms_map(v[i].status, v[i].http), v[i].code);
	}
}

KT_TEST(gcp_kms_retries_transient_only)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	json_t *j = NULL;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}");
	gf_push(0, NULL);
	gf_push(429,
		"{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}");
	gf_push(200, "{\"name\":\"" KEY "\"}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, &j, &err), 0);
	KT_EQ_INT(gf_nreq, 4);
	KT_EQ_STR(json_string_value(json_object_get(j, "name")), KEY);
	json_decref(j);

	gf_reset();
	gf_push(403,
		"{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\","
		"\"message\":\"Permission denied (or it may not exist).\"}}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "PERMISSION_DENIED");
	KT_EQ_INT(err.http_status, 403);
	KT_EQ_INT(gf_nreq, 1);

	/* A 500 INTERNAL is transient: retried, then the answer counts. */
	gf_reset();
	gf_push(500, "{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(gf_nreq, 2);

	/* Bounded: persistent UNAVAILABLE gives up after max_attempts. */
	gf_reset();
	for (int i = 0; i < 10; i++)
		gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(gf_nreq, (int)k.max_attempts);

	/* 401: one token refresh, then the call again with the new token. */
	gf_reset();
	gf_token_calls = 5;
	gf_push(401,
		"{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(gf_token_calls, 6);
	KT_EQ_STR(gf_req_auth[0], "Authorization: Bearer tok1");
	KT_EQ_STR(gf_req_auth[1], "Authorization: Bearer tok6");
	/* ...but only once. */
	gf_reset();
	gf_push(401,
		"{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	gf_push(401,
		"{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(gf_nreq, 2);
	gf_done(a);
}

KT_TEST(gcp_kms_version_create_never_retried)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	char ver[300];

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}");
	gf_push(200, "{\"name\":\"" KEY "/cryptoKeyVersions/2\"}");
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(gf_nreq, 1);

	gf_reset();
	gf_push(0, NULL);
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), -1);
	KT_EQ_INT(gf_nreq, 1);

	/* Success: create, then updatePrimaryVersion with its id. */
	gf_reset();
	gf_push(200, "{\"name\":\"" KEY
		     "/cryptoKeyVersions/2\",\"state\":\"ENABLED\"}");
	gf_push(200, "{\"name\":\"" KEY "\"}");
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), 0);
	KT_EQ_INT(gf_nreq, 2);
	KT_EQ_STR(gf_req_url[0],
		  "http://127.0.0.1:9/v1/" KEY "/cryptoKeyVersions");
	KT_EQ_STR(gf_req_url[1],
		  "http://127.0.0.1:9/v1/" KEY ":updatePrimaryVersion");
	KT_EQ_STR(gf_req_body[1], "{\"cryptoKeyVersionId\":\"2\"}");
	KT_EQ_STR(ver, KEY "/cryptoKeyVersions/2");
	gf_done(a);
}

KT_TEST(gcp_kms_create_already_exists_after_ambiguous_retry)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	const char *exists = "{\"error\":{\"code\":409,\"status\":"
			     "\"ALREADY_EXISTS\",\"message\":\"KeyRing "
			     "exists.\"}}";
	json_t *body;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_push(0, NULL);
	gf_push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "r1", &err),
		  0);
	KT_EQ_INT(gf_nreq, 2);
	KT_EQ_STR(gf_req_url[0], "http://127.0.0.1:9/v1/projects/p1/locations/"
				 "global/keyRings?keyRingId=r1");

	/* Plain ALREADY_EXISTS (no earlier attempt): EXISTS. */
	gf_reset();
	gf_push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "r1", &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);

	/* 429 is not ambiguous (refused before acting). */
	gf_reset();
	gf_push(429, "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\"}}");
	gf_push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_key(&k,
					"projects/p1/locations/global/"
					"keyRings/r1",
					"k1", 100000, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);

	/* Key: ENCRYPT_DECRYPT with a rotation schedule. */
	gf_reset();
	gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	gf_push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_key(&k,
					"projects/p1/locations/global/"
					"keyRings/r1",
					"k1", 100000, &err),
		  0);
	body = json_loads(gf_req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(json_object_get(body, "purpose")),
		  "ENCRYPT_DECRYPT");
	KT_EQ_STR(json_string_value(json_object_get(body, "rotationPeriod")),
		  "100000s");
	KT_CHECK(json_is_string(json_object_get(body, "nextRotationTime")));
	json_decref(body);

	/* Invalid ids never reach the network. */
	gf_reset();
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "bad.id", &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_nreq, 0);
	gf_done(a);
}

static char listed[256];

static int collect(void *ctx, const char *id, json_t *item)
{
	size_t n = strlen(listed);

	(void)snprintf(listed + n, sizeof(listed) - n, "%s,",
		       id); /* checked by KT_EQ_STR */
	return 0;
}

KT_TEST(gcp_kms_list_pages_and_endpoint)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf next;

	gf_reset();
	a = gf_make_auth();
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS", "http://localhost:7",
	       1);
	KT_EQ_INT(kf_gcp_kms_init(&k, NULL, a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, "http://localhost:7/");
	KT_EQ_INT(kf_gcp_kms_init(&k, "http://127.0.0.1:8/", a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, "http://127.0.0.1:8/");
	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS");
	KT_EQ_INT(kf_gcp_kms_init(&k, NULL, a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, KF_GCP_KMS_ENDPOINT);
	KT_EQ_INT(kf_gcp_kms_init(&k, "http://example.com/", a, 5000, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);

	gf_make_kms(&k, a);
	kf_buf_init(&next, 4096);
	listed[0] = '\0';
	gf_push(200, "{\"keyRings\":[{\"name\":\"projects/p1/locations/global/"
		     "keyRings/a\"},{\"name\":\"projects/p1/locations/global/"
		     "keyRings/b\"}],\"nextPageToken\":\"t+/=\"}");
	KT_EQ_INT(kf_gcp_kms_list(&k, "projects/p1/locations/global",
				  "keyRings", "prev tok", collect, NULL, &next,
				  &err),
		  0);
	KT_EQ_STR(listed, "a,b,");
	KT_EQ_STR(kf_buf_str(&next), "t+/=");
	KT_EQ_STR(gf_req_url[0],
		  "http://127.0.0.1:9/v1/projects/p1/locations/"
		  "global/keyRings?pageSize=1000&pageToken=prev%20tok");
	/* Last page: next left empty. */
	gf_push(200, "{\"locations\":[{\"name\":\"projects/p1/locations/us\","
		     "\"locationId\":\"us\"}]}");
	listed[0] = '\0';
	KT_EQ_INT(kf_gcp_kms_list(&k, "projects/p1", "locations", NULL, collect,
				  NULL, &next, &err),
		  0);
	KT_EQ_STR(listed, "us,");
	KT_EQ_INT(next.len, 0);
	kf_buf_release(&next);
	gf_done(a);
}

KT_TEST(gcp_kms_refused_ciphertext_has_reason)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_secret *pt = NULL;
	struct kf_err err = KF_ERR_INIT;
	static const struct {
		long http;
		const char *body;
		enum kf_code code;
		int reason;
	} v[] = {
		{ 400,
		  "{\"error\":{\"status\":\"INVALID_ARGUMENT\",\"message\":"
		  "\"Decryption failed: the ciphertext is invalid.\"}}",
		  KF_E_INVALID, 1 },
		{ 400,
		  "{\"error\":{\"status\":\"INVALID_ARGUMENT\",\"message\":"
		  "\"The ciphertext is invalid.\"}}",
		  KF_E_INVALID, 1 },
		{ 400, "{\"error\":{\"message\":\"Decryption failed\"}}",
		  KF_E_INVALID, 1 },
		{ 400,
		  "{\"error\":{\"status\":\"INVALID_ARGUMENT\",\"message\":"
		  "\"bad id\"}}",
		  KF_E_INVALID, 0 },
		{ 404,
		  "{\"error\":{\"status\":\"NOT_FOUND\",\"message\":"
		  "\"Decryption failed\"}}",
		  KF_E_NOTFOUND, 0 },
		{ 403, "{\"error\":{\"status\":\"PERMISSION_DENIED\"}}",
		  KF_E_DENIED, 0 },
	};

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		gf_reset();
		gf_push(v[i].http, v[i].body);
		KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
		KT_EQ_INT(err.code, v[i].code);
		KT_EQ_INT(kf_err_is(&err, KF_R_BAD_CIPHERTEXT), v[i].reason);
		/* decrypt turns exactly those into INTEGRITY. */
		gf_reset();
		gf_push(v[i].http, v[i].body);
		KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT", 2, &pt, &err), -1);
		KT_EQ_INT(err.code, v[i].reason ? KF_E_INTEGRITY : v[i].code);
		KT_CHECK(pt == NULL);
		KT_EQ_INT(gf_nreq, 1);
	}
	gf_done(a);
}

KT_TEST(gcp_kms_retry_policy_from_knobs)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	KT_EQ_INT(k.max_attempts, 5);
	KT_EQ_INT(k.timeout_ms, 5000);
	gf_clock_start();
	/* Pauses: equal jitter on 100, 200 ms; 429 on the 1 s schedule. */
	k.backoff_ms = 100;
	k.backoff_429_ms = 1000;
	gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	gf_push(429, "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(gf_nreq, 4);
	KT_EQ_INT(gf_nsleeps, 3);
	KT_CHECK(gf_sleeps[0] >= 50 && gf_sleeps[0] <= 100);
	KT_CHECK(gf_sleeps[1] >= 100 && gf_sleeps[1] <= 200);
	KT_CHECK(gf_sleeps[2] >= 2000 && gf_sleeps[2] <= 4000);
	/* The pauses never pass the cap (32 x the base). */
	gf_reset();
	gf_nsleeps = 0;
	k.max_attempts = 9;
	k.timeout_ms = 1000000;
	for (int i = 0; i < 9; i++)
		gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(gf_nreq, 9);
	KT_CHECK(gf_sleeps[7] >= 1600 && gf_sleeps[7] <= 3200);
	/* max_attempts 2: two requests, and the final code is the last's. */
	gf_reset();
	k.max_attempts = 2;
	gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	gf_push(500, "{\"error\":{\"status\":\"INTERNAL\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_EQ_STR(err.provider_code, "INTERNAL");
	KT_EQ_INT(gf_nreq, 2);
	gf_clock_stop();
	gf_done(a);
}

KT_TEST(gcp_kms_deadline_keeps_last_attempts_code)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_clock_start();
	/* The next pause would pass the deadline: stop, with the code of
	 * the attempt made, not TIMEOUT. */
	k.timeout_ms = 1000;
	k.backoff_ms = 5000;
	gf_push(500, "{\"error\":{\"status\":\"INTERNAL\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_EQ_INT(err.http_status, 500);
	KT_EQ_INT(gf_nreq, 1);
	KT_EQ_INT(gf_nsleeps, 0);
	/* Throttling uses its own, longer schedule. */
	gf_reset();
	k.backoff_ms = 1;
	k.backoff_429_ms = 5000;
	gf_push(429, "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_STR(err.provider_code, "RESOURCE_EXHAUSTED");
	KT_EQ_INT(gf_nreq, 1);
	gf_reset();
	gf_push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	gf_push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(gf_nreq, 2);
	gf_clock_stop();
	gf_done(a);
}

KT_TEST(gcp_kms_token_refresh_even_without_retry)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	char ver[300];

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(&k, a);
	gf_token_calls = 10;
	/* Version creation is never retried, but a 401 still refreshes. */
	gf_push(401, "{\"error\":{\"status\":\"UNAUTHENTICATED\"}}");
	gf_push(200, "{\"name\":\"" KEY "/cryptoKeyVersions/4\"}");
	gf_push(200, "{\"name\":\"" KEY "\"}");
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), 0);
	KT_EQ_INT(gf_token_calls, 11);
	KT_EQ_INT(gf_nreq, 3);
	KT_EQ_STR(gf_req_auth[1], "Authorization: Bearer tok11");
	KT_EQ_STR(ver, KEY "/cryptoKeyVersions/4");
	gf_done(a);
}
