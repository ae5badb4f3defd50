/*
 * libFuzzer target for the Secret Manager answer parsers (cloud/gcp/
 * gsm.c): the secret, version and access parsers on the input as JSON,
 * and the list and access calls driven through the kf_http_set_transport
 * seam with the input as every answer's body.  Properties: 0 or -1 with
 * a known error code; a parsed secret has a valid id and a project; a
 * parsed version has a number and a known state; an access hands out
 * only bytes whose CRC32C is the answer's dataCrc32c.
 *
 * Input: byte 0 = what to do, byte 1 = status index, rest = body.
 */
#include "core/crypto.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "gcp/auth.h"
#include "gcp/gsm.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const long statuses[] = { 200, 200, 200, 400, 401, 403,
				 404, 409, 429, 500, 503, 599 };
static const uint8_t *resp_body;
static size_t resp_len;
static long resp_status;
static struct kf_gcp_auth *auth;

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	if (strstr(req->url, "oauth2.googleapis.com/token")) {
		resp->status = 200;
		return kf_buf_adds(&resp->body,
				   "{\"access_token\":\"fuzz-token\","
				   "\"expires_in\":3600,"
				   "\"token_type\":\"Bearer\"}");
	}
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
		"\"refresh_token\":\"fuzz-refresh\"}";
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_err err = KF_ERR_INIT;
	char path[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;

	(void)argc;
	(void)argv;
	kf_log_set_level(KF_LOG_ERROR);
	if (snprintf(path, sizeof(path), "%s/kf-fuzz-gsm-XXXXXX",
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
		fprintf(stderr, "fuzz_gsm: auth: %s\n", err.msg);
		abort();
	}
	unlink(path);
	return 0;
}

static void check_secret(const struct kf_gsm_secret *s)
{
	if (!kf_gsm_valid_id(s->id) || !s->project[0] ||
	    !memchr(s->etag, '\0', sizeof(s->etag)) ||
	    !memchr(s->kms_key, '\0', sizeof(s->kms_key)) ||
	    (s->labels && !json_is_object(s->labels)) || s->create_ms < -1)
		abort();
}

static void check_version(const struct kf_gsm_version *v)
{
	if (v->number < 1 || v->state == KF_GSM_STATE_UNKNOWN ||
	    v->state > KF_GSM_DESTROYED || v->create_ms < -1 ||
	    v->destroy_ms < -1)
		abort();
}

static int on_secret(void *ctx, const struct kf_gsm_secret *s)
{
	(void)ctx;
	check_secret(s);
	return 0;
}

static int on_version(void *ctx, const struct kf_gsm_version *v)
{
	(void)ctx;
	check_version(v);
	return 0;
}

/* The bytes an access handed out carry the answer's checksum. */
static void check_value(const struct kf_secret *val)
{
	json_t *j = json_loadb((const char *)resp_body, resp_len, 0, NULL);
	uint32_t want;

	if (!j ||
	    kf_json_u32(json_object_get(j, "payload"), "dataCrc32c", &want) <
		    0 ||
	    kf_crc32c(0, val->data, val->len) != want || !val->version[0])
		abort();
	json_decref(j);
}

/* The parsers directly, on the body as JSON. */
static void parse_direct(int op)
{
	json_t *j = json_loadb((const char *)resp_body, resp_len, 0, NULL);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gsm_secret s;
	struct kf_gsm_version v;
	struct kf_secret *val = NULL;
	long long n = 0;

	if (op == 0 && kf_gsm_parse_secret(j, &s, &err) == 0)
		check_secret(&s);
	if (op == 0)
		kf_gsm_secret_release(&s);
	if (op == 1 && kf_gsm_parse_version(j, &v, &err) == 0)
		check_version(&v);
	if (op == 2 && kf_gsm_parse_access(j, "db", &val, &n, &err) == 0) {
		check_value(val);
		if (n < 1)
			abort();
	}
	if (op == 3) {
		char t[64];

		if (snprintf(t, sizeof(t), "%.*s", (int)resp_len,
			     (const char *)resp_body) >= 0)
			(void)kf_gsm_parse_time(t);
	}
	kf_secret_free(val);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_gsm g;
	struct kf_gsm_secret s;
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *val = NULL;
	struct kf_buf next;
	long long n = 0;
	int rc = 0, op;

	if (size < 2 || size > 262144)
		return 0;
	op = data[0] % 8;
	resp_status =
		statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	resp_body = data + 2;
	resp_len = size - 2;
	if (op < 4) {
		parse_direct(op);
		return 0;
	}
	if (kf_gsm_init(&g, "http://127.0.0.1:9", auth, 2000, &err) < 0)
		abort();
	g.rest.backoff_ms = 0;
	g.rest.backoff_429_ms = 0;
	g.rest.max_attempts = 2;
	g.check_attempts = 2;
	kf_buf_init(&next, 4096);
	switch (op) {
	case 4:
		rc = kf_gsm_list_secrets(&g, "p", 10, "tok", on_secret, NULL,
					 &next, &err);
		break;
	case 5:
		rc = kf_gsm_list_versions(&g, "p", "db", 0, NULL, on_version,
					  NULL, &next, &err);
		break;
	case 6:
		rc = kf_gsm_access(&g, "p", "db", "latest", &val, &n, &err);
		if (rc == 0)
			check_value(val);
		break;
	case 7:
		rc = kf_gsm_get(&g, "p", "db", &s, &err);
		if (rc == 0)
			check_secret(&s);
		kf_gsm_secret_release(&s);
		break;
	}
	if (rc != 0 && rc != -1)
		abort();
	if (rc == -1 && (err.code <= KF_OK || err.code >= KF_E__COUNT))
		abort();
	if (!memchr(err.msg, '\0', sizeof(err.msg)))
		abort();
	kf_secret_free(val);
	kf_buf_release(&next);
	return 0;
}
