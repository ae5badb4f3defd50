/*
 * Access tokens from the OAuth token endpoint (the grant a key file
 * makes) or the GCE metadata server, with bounded retries through
 * kf_retry_run.  Tokens and request bodies live only in sensitive buffers
 * and kf_secret; logs and messages name the endpoint, never a credential.
 */
#include "gcp/auth_int.h"
#include "core/http.h"
#include "core/json.h"
#include "core/retry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * 3 attempts on network errors, timeouts and 408/429/5xx answers, pauses
 * from 1 s up to 4 times that; each attempt bounded by the auth object's
 * timeout.  Tests shorten the pauses with kf_gcp_auth_set_backoff_ms.
 */
#define TOKEN_BACKOFF_MS 1000
#define TOKEN_CAP_FACTOR 4
static const struct kf_retry_policy token_policy = {
	.attempts = 3,
	.base_ms = TOKEN_BACKOFF_MS,
	.cap_ms = TOKEN_BACKOFF_MS * TOKEN_CAP_FACTOR,
};
static unsigned backoff_base_ms = TOKEN_BACKOFF_MS;

void kf_gcp_auth_set_backoff_ms(unsigned base_ms)
{
	backoff_base_ms = base_ms;
}

/* Turn a token response body into the header secret and its expiry. */
static int parse_token(const struct kf_http_resp *r, const char *what,
		       struct kf_secret **hdr, time_t *expiry,
		       struct kf_err *err)
{
	static const char pre[] = "Authorization: Bearer ";
	json_t *j = NULL, *ei;
	const char *tok;
	long long secs = 3600;
	size_t n;
	struct kf_secret *h = NULL;
	int rc = -1;

	j = json_loadb(kf_buf_str(&r->body), r->body.len, 0, NULL);
	tok = kf_json_str(j, "access_token");
	if (!tok || !*tok) {
		kf_fail(err, KF_E_IO, "%s: response holds no access_token",
			what);
		goto out;
	}
	for (n = 0; tok[n]; n++)
		if ((unsigned char)tok[n] <= ' ' || tok[n] == 0x7f) {
			kf_fail(err, KF_E_IO, "%s: malformed access_token",
				what);
			goto out;
		}
	ei = json_object_get(j, "expires_in");
	if (json_is_integer(ei)) {
		secs = json_integer_value(ei);
	} else if (json_is_string(ei)) {
		char *end;

		secs = strtoll(json_string_value(ei), &end, 10);
		if (*end)
			secs = 3600;
	}
	if (secs <= 0 || secs > 86400 * 7)
		secs = 3600;
	h = kf_secret_new(sizeof(pre) + n);
	if (!h) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	memcpy(h->data, pre, sizeof(pre) - 1);
	memcpy(h->data + sizeof(pre) - 1, tok, n);
	h->len = sizeof(pre) - 1 + n;
	h->data[h->len] = '\0';
	*hdr = h;
	*expiry = kf_gcp_auth_now() + (time_t)secs;
	rc = 0;
out:
	json_decref(j);
	return rc;
}

static int retryable_status(long st)
{
	return st == 500 || st == 503 || st == 408 || st == 429 || st == 502 ||
	       st == 504;
}

/* The OAuth error of a refused grant, as a short provider code. */
static int token_refused(const struct kf_http_resp *r, const char *what,
			 struct kf_err *err)
{
	json_t *j = json_loadb(kf_buf_str(&r->body), r->body.len, 0, NULL);
	const char *e = kf_json_str(j, "error");
	const char *d = kf_json_str(j, "error_description");
	enum kf_code code = KF_E_DENIED;

	if (!e && j && json_is_object(json_object_get(j, "error")))
		e = kf_json_str(json_object_get(j, "error"), "status");
	if (r->status == 404 && !e)
		code = KF_E_NOTFOUND;
	kf_fail_provider(err, code, (int)r->status, e ? e : "",
			 "%s refused the credentials (HTTP %ld%s%.32s%s%.80s)",
			 what, r->status, e ? " " : "", e ? e : "",
			 d ? ": " : "", d ? d : "");
	json_decref(j);
	return -1;
}

/* One token fetch: what its attempts share. */
struct fetch {
	struct kf_gcp_auth *a;
	struct kf_http_req req;
	char what[600]; /* "token endpoint URL", for messages */
	struct kf_secret **hdr;
	time_t *expiry;
};

/* The request: the metadata server's GET, or the grant's POST. */
static int token_request(struct fetch *f, struct kf_buf *body,
			 struct kf_buf *url, struct kf_err *err)
{
	static const char *const form_hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", NULL
	};
	static const char *const md_hdrs[] = { "Metadata-Flavor: Google",
					       NULL };
	struct kf_gcp_auth *a = f->a;

	f->req.timeout_ms = a->timeout_ms;
	f->req.max_response = 64 * 1024;
	if (a->kind == KF_GCP_CRED_METADATA) {
		if (kf_buf_addf(url,
				"http://%s/computeMetadata/v1/instance/"
				"service-accounts/default/token",
				a->md_host) < 0)
			return kf_fail(err, KF_E_INVALID,
				       "metadata host too long");
		f->req.method = "GET";
		f->req.headers = md_hdrs;
		f->req.allow_metadata_ip = 1; /* 169.254.169.254: http */
		/* Names the source in messages: a cut name is harmless. */
		(void)snprintf(f->what, sizeof(f->what), "metadata server %s",
			       a->md_host);
	} else {
		if (kf_gcp_cred_grant(a, body, err) < 0)
			return -1;
		if (kf_buf_adds(url, a->token_uri) < 0)
			return kf_fail(err, KF_E_INVALID, "token_uri too long");
		f->req.method = "POST";
		f->req.headers = form_hdrs;
		f->req.body = body->data;
		f->req.body_len = body->len;
		(void)snprintf(f->what, sizeof(f->what), "token endpoint %s",
			       a->token_uri);
	}
	f->req.url = kf_buf_str(url);
	return 0;
}

/* A 200 answer: from a real metadata server, holding a token. */
static int token_answer(struct fetch *f, const struct kf_http_resp *r,
			struct kf_err *err)
{
	char flavor[64];

	if (f->a->kind == KF_GCP_CRED_METADATA &&
	    (!kf_http_resp_header(r, "Metadata-Flavor", flavor,
				  sizeof(flavor)) ||
	     strcmp(flavor, "Google") != 0))
		return kf_fail(err, KF_E_UNAVAILABLE,
			       "%s is not a GCE metadata server", f->what);
	return parse_token(r, f->what, f->hdr, f->expiry, err);
}

static enum kf_retry_verdict
token_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct fetch *f = ctx;
	struct kf_http_resp resp;
	enum kf_retry_verdict v = KF_RETRY_FAIL;

	kf_http_resp_init(&resp);
	if (kf_http_do(&f->req, &resp, err) < 0) {
		if (err->code == KF_E_UNAVAILABLE || err->code == KF_E_TIMEOUT)
			v = KF_RETRY_AGAIN;
	} else if (resp.status == 200) {
		if (token_answer(f, &resp, err) == 0)
			v = KF_RETRY_OK;
	} else if (!retryable_status(resp.status)) {
		token_refused(&resp, f->what, err);
	} else {
		kf_fail_provider(err, KF_E_UNAVAILABLE, (int)resp.status, "",
				 "%s answered HTTP %ld", f->what, resp.status);
		v = KF_RETRY_AGAIN;
	}
	kf_http_resp_release(&resp);
	return v;
}

int kf_gcp_token_fetch(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       time_t *expiry, struct kf_err *err_out)
{
	struct kf_retry_policy policy = token_policy;
	struct fetch f = { .a = a, .hdr = hdr, .expiry = expiry };
	struct kf_err e = KF_ERR_INIT;
	struct kf_buf body, url;
	int rc;

	policy.base_ms = backoff_base_ms;
	policy.cap_ms = backoff_base_ms * TOKEN_CAP_FACTOR;
	kf_buf_init_sensitive(&body, 64 * 1024);
	kf_buf_init(&url, 1024);
	rc = token_request(&f, &body, &url, &e);
	if (rc == 0)
		rc = kf_retry_run(&policy, f.what, 0, token_attempt, &f, &e);
	if (rc < 0 && err_out)
		*err_out = e;
	kf_buf_release(&body);
	kf_buf_release(&url);
	return rc;
}
