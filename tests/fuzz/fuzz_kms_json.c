/*
 * libFuzzer target for the Cloud KMS response handling in
 * cloud/gcp/kms.c, driven through the kf_http_set_transport seam: the
 * input picks an operation and an HTTP status, and the rest of it is the
 * response body every KMS call receives (the OAuth token endpoint always
 * answers a valid token).  Properties: 0 or -1 with a known error code;
 * decrypt only hands out plaintext that matches the body's base64 and
 * CRC32C; encrypt only appends ciphertext that matches the body's.
 *
 * Input: byte 0 = operation, byte 1 = status index, rest = body.
 */
#include "core/crypto.h"
#include "gcp/auth.h"
#include "gcp/kms.h"
#include "core/http.h"
#include "core/log.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define KEY "projects/p/locations/global/keyRings/r/cryptoKeys/k"

static const long statuses[] = { 200, 200, 200, 400, 401, 403, 404,
				 409, 429, 500, 503, 204, 302, 599 };
static const uint8_t *resp_body;
static size_t resp_len;
static long resp_status;
static unsigned calls;
static struct kf_gcp_auth *auth;

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	(void)err;
	if (strstr(req->url, "oauth2.googleapis.com/token")) {
		resp->status = 200;
		return kf_buf_adds(&resp->body,
				   "{\"access_token\":\"fuzz-token\","
				   "\"expires_in\":3600,"
				   "\"token_type\":\"Bearer\"}");
	}
	calls++;
	resp->status = resp_status;
	if (resp_len && kf_buf_add(&resp->body, resp_body, resp_len) < 0)
		return kf_fail(err, KF_E_TOOBIG, "response too large");
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char cred[] =
		"{\"type\":\"authorized_user\",\"client_id\":\"fuzz.apps\","
		"\"client_secret\":\"fuzz-client-secret\","
		"\"refresh_token\":\"fuzz-refresh\","
		"\"quota_project_id\":\"fuzz-project\"}";
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_err err = KF_ERR_INIT;
	char path[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;

	(void)argc;
	(void)argv;
	kf_log_set_level(KF_LOG_ERROR);
	if (snprintf(path, sizeof(path), "%s/kf-fuzz-gcp-XXXXXX",
		     tmp && *tmp ? tmp : "/tmp") >= (int)sizeof(path))
		abort();
	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		abort();
	fputs(cred, f);
	fclose(f);
	kf_http_set_transport(fake);
	kf_gcp_auth_set_backoff_ms(0);
	cfg.credentials = path;
	if (kf_gcp_auth_new(&cfg, &auth, &err) < 0) {
		fprintf(stderr, "fuzz_kms_json: auth: %s\n", err.msg);
		abort();
	}
	unlink(path);
	return 0;
}

static int count_item(void *ctx, const char *id, json_t *item)
{
	if (!id || !item)
		abort();
	(*(unsigned *)ctx)++;
	return 0;
}

/* The plaintext the body claims, if it is a consistent decrypt answer. */
static void check_plaintext(const struct kf_secret *pt)
{
	json_t *j = json_loadb((const char *)resp_body, resp_len, 0, NULL);
	const char *b64 = json_string_value(json_object_get(j, "plaintext"));
	struct kf_buf raw;

	if (!j)
		abort(); /* success from a body that is not JSON */
	kf_buf_init_sensitive(&raw, 1 << 20);
	if (b64 && kf_base64_decode(b64, strlen(b64), &raw) < 0)
		abort();
	if (pt->len != raw.len ||
	    (raw.len && memcmp(pt->data, raw.data, raw.len) != 0))
		abort();
	kf_buf_release(&raw);
	json_decref(j);
}

static void check_ciphertext(const struct kf_buf *ct)
{
	json_t *j = json_loadb((const char *)resp_body, resp_len, 0, NULL);
	const char *b64 = json_string_value(json_object_get(j, "ciphertext"));
	struct kf_buf raw;

	if (!j || !b64)
		abort();
	kf_buf_init(&raw, 1 << 20);
	if (kf_base64_decode(b64, strlen(b64), &raw) < 0 || !raw.len ||
	    raw.len != ct->len || memcmp(raw.data, ct->data, raw.len) != 0)
		abort();
	kf_buf_release(&raw);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *pt = NULL;
	struct kf_buf ct, next;
	json_t *out = NULL;
	char ver[300];
	unsigned n = 0;
	int rc = -1, op;

	if (size < 2 || size > 262144)
		return 0;
	op = data[0] % 9;
	resp_status =
		statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	resp_body = data + 2;
	resp_len = size - 2;
	calls = 0;
	if (kf_gcp_kms_init(&k, "http://127.0.0.1:9", auth, 2000, &err) < 0)
		abort();
	k.backoff_ms = 0;
	k.backoff_429_ms = 0;
	k.max_attempts = 3;
	kf_buf_init(&ct, 1 << 20);
	kf_buf_init(&next, 4096);
	switch (op) {
	case 0:
		rc = kf_gcp_kms_decrypt(&k, KEY, "\x4b\x45\x45\x01", 4, &pt,
					&err);
		if (rc == 0)
			check_plaintext(pt);
		break;
	case 1:
		rc = kf_gcp_kms_encrypt(&k, KEY, "value", 5, &ct, ver,
					sizeof(ver), &err);
		if (rc == 0)
			check_ciphertext(&ct);
		else if (ct.len)
			abort(); /* unchanged on error */
		break;
	case 2:
		rc = kf_gcp_kms_list(&k, "projects/p/locations/global",
				     "keyRings", NULL, count_item, &n, &next,
				     &err);
		break;
	case 3:
		rc = kf_gcp_kms_list(&k,
				     "projects/p/locations/global/"
				     "keyRings/r",
				     "cryptoKeys", "tok", count_item, &n, &next,
				     &err);
		break;
	case 4:
		rc = kf_gcp_kms_get(&k, KEY, &out, &err);
		if (rc == 0 && !json_is_object(out))
			abort();
		break;
	case 5:
		rc = kf_gcp_kms_create_ring(&k, "projects/p/locations/global",
					    "r", &err);
		break;
	case 6:
		rc = kf_gcp_kms_create_key(&k,
					   "projects/p/locations/global/"
					   "keyRings/r",
					   "k", 86400, &err);
		break;
	case 7:
		rc = kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err);
		break;
	case 8:
		rc = kf_gcp_kms_list(&k, "projects/p", "locations", NULL,
				     count_item, &n, NULL, &err);
		break;
	}
	if (rc != 0 && rc != -1)
		abort();
	if (rc == -1 && (err.code <= KF_OK || err.code >= KF_E__COUNT))
		abort();
	if (!memchr(err.msg, '\0', sizeof(err.msg)) ||
	    !memchr(err.provider_code, '\0', sizeof(err.provider_code)))
		abort();
	if (next.len && !next.data)
		abort();
	json_decref(out);
	kf_secret_free(pt);
	kf_buf_release(&ct);
	kf_buf_release(&next);
	return 0;
}
