/* The shared fixtures of the gcp unit tests (see t_gcp_fake.h). */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a test RSA key, made once */

static char *test_pem;
EVP_PKEY *gf_test_key;

const char *gf_pem(void)
{
	BIO *b;
	char *d;
	long n;

	if (test_pem)
		return test_pem;
	gf_test_key = EVP_RSA_gen(2048);
	if (!gf_test_key)
		return NULL;
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, gf_test_key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &d);
	test_pem = calloc(1, (size_t)n + 1);
	memcpy(test_pem, d, (size_t)n);
	BIO_free(b);
	return test_pem;
}

/* ---- the scripted transport */

struct step {
	long status; /* 0 = network error */
	const char *body;
};

static struct step script[32];
static int nscript, spos;
char gf_req_url[32][600];
char gf_req_method[32][8];
char gf_req_auth[32][128];
char *gf_req_body[32];
int gf_nreq, gf_token_calls, gf_token_status = 200, gf_token_fail;
char gf_token_body[8192];
char gf_token_url[600];

void gf_reset(void)
{
	for (int i = 0; i < gf_nreq; i++)
		free(gf_req_body[i]);
	nscript = spos = gf_nreq = gf_token_calls = 0;
	gf_token_status = 200;
	gf_token_fail = 0;
	gf_token_body[0] = '\0';
}

void gf_push(long status, const char *body)
{
	script[nscript].status = status;
	script[nscript].body = body;
	nscript++;
}

unsigned gf_token_delay_ms;

int gf_fake(const struct kf_http_req *req, struct kf_http_resp *resp,
	    struct kf_err *err)
{
	struct step s = { 500, "{}" };

	if (strstr(req->url, "/token")) {
		char b[128];

		if (gf_token_delay_ms)
			usleep(gf_token_delay_ms * 1000u);
		gf_token_calls++;
		/* Records for the checks: truncation is harmless. */
		(void)snprintf(gf_token_url, sizeof(gf_token_url), "%s",
			       req->url);
		(void)snprintf(gf_token_body, sizeof(gf_token_body), "%.*s",
			       (int)req->body_len, (const char *)req->body);
		resp->status = gf_token_status;
		if (gf_token_fail > 0) {
			gf_token_fail--;
			resp->status = 503;
		}
		if (resp->status != 200)
			return kf_buf_adds(&resp->body,
					   "{\"error\":\"invalid_grant\","
					   "\"error_description\":\"bad "
					   "signature\"}");
		(void)snprintf(b, sizeof(b),
			       "{\"access_token\":\"tok%d\",\"expires_in\":3600,"
			       "\"token_type\":\"Bearer\"}",
			       gf_token_calls);
		return kf_buf_adds(&resp->body, b);
	}
	if (gf_nreq < 32) {
		(void)snprintf(gf_req_url[gf_nreq], sizeof(gf_req_url[0]), "%s",
			       req->url);
		(void)snprintf(gf_req_method[gf_nreq], sizeof(gf_req_method[0]),
			       "%s", req->method);
		gf_req_auth[gf_nreq][0] = '\0';
		for (const char *const *h = req->headers; h && *h; h++)
			if (strncmp(*h, "Authorization:", 14) == 0)
				(void)snprintf(gf_req_auth[gf_nreq],
					       sizeof(gf_req_auth[0]), "%s",
					       *h);
		gf_req_body[gf_nreq] =
			req->body_len ? strndup(req->body, req->body_len) :
					NULL;
		gf_nreq++;
	}
	if (spos < nscript)
		s = script[spos++];
	if (s.status == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "connection reset");
	resp->status = s.status;
	return kf_buf_adds(&resp->body, s.body);
}

time_t gf_now = 1700000000;

time_t gf_clock_now(time_t *t)
{
	if (t)
		*t = gf_now;
	return gf_now;
}

void gf_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

void gf_path(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= n)
		kt_fail(__FILE__, __LINE__, "test path too long");
}

unsigned gf_sleeps[16];
int gf_nsleeps;
static uint64_t test_ms;

static uint64_t test_now(void *ctx)
{
	return test_ms;
}

static void test_sleep(void *ctx, unsigned ms)
{
	if (gf_nsleeps < 16)
		gf_sleeps[gf_nsleeps] = ms;
	gf_nsleeps++;
	test_ms += ms;
}

void gf_clock_start(void)
{
	static const struct kf_clock c = { test_now, test_sleep, NULL };

	test_ms = 1000000;
	gf_nsleeps = 0;
	kf_clock_set(&c);
}

void gf_clock_stop(void)
{
	kf_clock_set(NULL);
}

char gf_sa_path[512];

void gf_write_sa(void)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type",
			      "service_account", "project_id", "p1",
			      "private_key_id", "kid1", "private_key", gf_pem(),
			      "client_email", "sa@p1.iam.gserviceaccount.com",
			      "token_uri", TOKEN_URI);

	gf_path(gf_sa_path, sizeof(gf_sa_path), "%s/sa.json", kt_tmpdir());
	json_dump_file(j, gf_sa_path, 0);
	json_decref(j);
}

struct kf_gcp_auth *gf_make_auth(void)
{
	struct kf_gcp_auth_cfg cfg = { gf_sa_path, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;

	gf_write_sa();
	kf_http_set_transport(gf_fake);
	kf_gcp_auth_set_clock(gf_clock_now);
	kf_gcp_auth_set_backoff_ms(1);
	if (kf_gcp_auth_new(&cfg, &a, &err) < 0)
		kt_fail(__FILE__, __LINE__, "auth: %s", err.msg);
	return a;
}

void gf_done(struct kf_gcp_auth *a)
{
	kf_gcp_auth_free(a);
	kf_http_set_transport(NULL);
	kf_gcp_auth_set_clock(NULL);
	gf_reset();
}

void gf_make_kms(struct kf_gcp_kms *k, struct kf_gcp_auth *a)
{
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_gcp_kms_init(k, "http://127.0.0.1:9", a, 5000, &err), 0);
	k->backoff_ms = 1;
	k->backoff_429_ms = 2;
}
