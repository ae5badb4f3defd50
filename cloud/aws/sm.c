/*
 * The Secrets Manager client itself: its lifecycle, and one JSON 1.1 call
 * signed with SigV4 and retried by the shared driver (core/retry.h) within
 * one deadline.  The same core serves Parameter Store (aws/ssm.c): the
 * service name, target prefix and statistics name come from the
 * configuration.  Never logs or quotes a value, a credential or a body.
 */
#include "aws/sm_priv.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/stats.h"

#define SM_RESP_MAX (4u << 20)
#define SM_DEFAULT_TIMEOUT_MS 30000
#define SM_DEFAULT_ATTEMPTS 5
#define SM_DEFAULT_BACKOFF_MS 100
#define SM_BACKOFF_CAP_MS 5000
#define SM_MIN_ATTEMPT_MS 2000
#define SM_JSON_TYPE "application/x-amz-json-1.1"

static _Atomic(time_t (*)(void)) sm_clock;

void kf_aws_sm_set_clock(time_t (*fn)(void))
{
	atomic_store(&sm_clock, fn);
}

static time_t sm_now(void)
{
	time_t (*fn)(void) = atomic_load(&sm_clock);

	return fn ? fn() : time(NULL);
}

/* ---- client lifecycle -------------------------------------------------- */

static int parse_endpoint(struct kf_aws_sm *sm, const char *url,
			  struct kf_err *err)
{
	const char *what = sm->stats_name;
	const char *p, *auth, *end;
	int https;
	size_t alen;
	char *host = NULL;

	if (strncmp(url, "https://", 8) == 0) {
		https = 1;
		auth = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		https = 0;
		auth = url + 7;
	} else {
		return kf_fail(err, KF_E_INVALID,
			       "%s endpoint must be an http(s) URL", what);
	}
	end = auth + strcspn(auth, "/?#");
	alen = (size_t)(end - auth);
	if (alen == 0 || memchr(auth, '@', alen))
		return kf_fail(err, KF_E_INVALID, "%s endpoint: bad host",
			       what);
	host = malloc(alen + 1);
	if (!host)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	for (size_t i = 0; i < alen; i++)
		host[i] = (char)tolower((unsigned char)auth[i]);
	host[alen] = '\0';
	/* SigV4 signs the Host as sent: without the scheme's default port. */
	p = strrchr(host, ':');
	if (p && !strchr(p, ']') &&
	    ((https && strcmp(p, ":443") == 0) ||
	     (!https && strcmp(p, ":80") == 0)))
		host[p - host] = '\0';
	sm->host = host;
	if (*end == '/')
		sm->path = strndup(end, strcspn(end, "?#"));
	else
		sm->path = strdup("/");
	if (!sm->path)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

/*
 * The retry policy of every call: attempts and first pause from the
 * configuration; an attempt that is not the last may take half the
 * deadline (at least SM_MIN_ATTEMPT_MS), keeping time for another.
 */
static void policy_init(struct kf_retry_policy *p,
			const struct kf_aws_sm_cfg *cfg)
{
	memset(p, 0, sizeof(*p));
	p->attempts = cfg->attempts ? cfg->attempts : SM_DEFAULT_ATTEMPTS;
	p->base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms :
					    SM_DEFAULT_BACKOFF_MS;
	p->cap_ms = SM_BACKOFF_CAP_MS;
	p->min_slice_ms = SM_MIN_ATTEMPT_MS;
}

int kf_aws_sm_new(const struct kf_aws_sm_cfg *cfg, struct kf_aws_sm **out,
		  struct kf_err *err)
{
	struct kf_aws_sm *sm = NULL;
	int rc = -1;

	*out = NULL;
	if (!cfg->endpoint || !cfg->region || !cfg->chain) {
		kf_fail(err, KF_E_INVALID,
			"%s: endpoint, region and "
			"credentials are required",
			cfg->stats_name ? cfg->stats_name : "aws");
		goto out;
	}
	if (kf_http_check_url(cfg->endpoint, err))
		goto out;
	sm = calloc(1, sizeof(*sm));
	if (!sm) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	sm->stats_name = cfg->stats_name ? cfg->stats_name : "aws";
	sm->url = strdup(cfg->endpoint);
	sm->region = strdup(cfg->region);
	sm->service = strdup(cfg->service ? cfg->service : "secretsmanager");
	sm->target_prefix = strdup(cfg->target_prefix ? cfg->target_prefix :
							"secretsmanager");
	if (!sm->url || !sm->region || !sm->service || !sm->target_prefix) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (parse_endpoint(sm, cfg->endpoint, err))
		goto out;
	sm->chain = cfg->chain;
	sm->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms :
					   SM_DEFAULT_TIMEOUT_MS;
	policy_init(&sm->policy, cfg);
	*out = sm;
	sm = NULL;
	rc = 0;
out:
	kf_aws_sm_free(sm);
	return rc;
}

void kf_aws_sm_free(struct kf_aws_sm *sm)
{
	if (!sm)
		return;
	free(sm->url);
	free(sm->host);
	free(sm->path);
	free(sm->region);
	free(sm->service);
	free(sm->target_prefix);
	free(sm);
}

/* ---- one signed attempt ------------------------------------------------- */

/* The header lines of one attempt; those holding credentials are in
 * sensitive buffers. */
struct sm_hdrs {
	struct kf_buf auth; /* the Authorization value */
	struct kf_buf host, date, target, token, authz;
	const char *lines[10]; /* NULL-ended, for kf_http_req */
};

static void hdrs_init(struct sm_hdrs *h)
{
	kf_buf_init_sensitive(&h->auth, 4096);
	kf_buf_init(&h->host, 1024);
	kf_buf_init(&h->date, 64);
	kf_buf_init(&h->target, 256);
	kf_buf_init_sensitive(&h->token, 16384);
	kf_buf_init_sensitive(&h->authz, 4096);
	h->lines[0] = NULL;
}

static void hdrs_release(struct sm_hdrs *h)
{
	kf_buf_release(&h->auth);
	kf_buf_release(&h->host);
	kf_buf_release(&h->date);
	kf_buf_release(&h->target);
	kf_buf_release(&h->token);
	kf_buf_release(&h->authz);
}

/* The Authorization value for POSTing body as target at now. */
static int sign(const struct kf_aws_sm *sm, const char *target,
		const char *amzdate, time_t now, const struct kf_buf *body,
		const struct kf_aws_creds *creds, struct kf_buf *auth,
		struct kf_err *err)
{
	const char *token = creds->session_token ?
				    (const char *)creds->session_token->data :
				    NULL;
	struct kf_sigv4_header sh[5];
	struct kf_sigv4_creds sc;
	struct kf_sigv4_req sr;
	size_t nsh = 0;
	int rc;

	sh[nsh++] = (struct kf_sigv4_header){ "content-type", SM_JSON_TYPE };
	sh[nsh++] = (struct kf_sigv4_header){ "host", sm->host };
	sh[nsh++] = (struct kf_sigv4_header){ "x-amz-date", amzdate };
	if (token)
		sh[nsh++] = (struct kf_sigv4_header){ "x-amz-security-token",
						      token };
	sh[nsh++] = (struct kf_sigv4_header){ "x-amz-target", target };
	memset(&sr, 0, sizeof(sr));
	sr.method = "POST";
	sr.path = sm->path;
	sr.headers = sh;
	sr.nheaders = nsh;
	sr.body = body->data ? body->data : "";
	sr.body_len = body->len;
	sr.region = sm->region;
	sr.service = sm->service;
	sr.now = now;
	sc.access_key = creds->access_key;
	sc.secret_key = (const char *)creds->secret_key->data;
	sc.session_token = token;
	rc = kf_sigv4_authorization(&sr, &sc, auth, err);
	explicit_bzero(&sc, sizeof(sc));
	explicit_bzero(sh, sizeof(sh));
	return rc;
}

/* The header lines sent with a signed request. */
static int hdrs_fill(struct sm_hdrs *h, const struct kf_aws_sm *sm,
		     const char *target, const char *amzdate,
		     const struct kf_aws_creds *creds, struct kf_err *err)
{
	size_t n = 0;

	if (kf_buf_addf(&h->host, "Host: %s", sm->host) ||
	    kf_buf_addf(&h->target, "X-Amz-Target: %s", target) ||
	    kf_buf_addf(&h->date, "X-Amz-Date: %s", amzdate) ||
	    kf_buf_addf(&h->authz, "Authorization: %s", kf_buf_str(&h->auth)))
		return kf_fail(err, KF_E_NOMEM, "request headers too long");
	h->lines[n++] = "Content-Type: " SM_JSON_TYPE;
	h->lines[n++] = kf_buf_str(&h->host);
	h->lines[n++] = kf_buf_str(&h->date);
	h->lines[n++] = kf_buf_str(&h->target);
	if (creds->session_token) {
		if (kf_buf_addf(&h->token, "X-Amz-Security-Token: %s",
				(const char *)creds->session_token->data))
			return kf_fail(err, KF_E_NOMEM,
				       "session token too "
				       "long");
		h->lines[n++] = kf_buf_str(&h->token);
	}
	h->lines[n++] = kf_buf_str(&h->authz);
	h->lines[n++] = "Expect:";
	h->lines[n] = NULL;
	return 0;
}

/* One attempt: sign with fresh time and credentials, send. */
static int sm_attempt(struct kf_aws_sm *sm, const char *op,
		      const struct kf_buf *body, unsigned timeout_ms, int fresh,
		      struct kf_http_resp *resp, struct kf_err *err)
{
	struct kf_aws_creds creds;
	struct kf_http_req hr;
	struct sm_hdrs h;
	char amzdate[17], target[96];
	time_t now;
	int rc = -1;

	memset(&creds, 0, sizeof(creds));
	hdrs_init(&h);
	if ((size_t)snprintf(target, sizeof(target), "%s.%s", sm->target_prefix,
			     op) >= sizeof(target)) {
		kf_fail(err, KF_E_INVALID, "operation name too long");
		goto out;
	}
	if (kf_aws_chain_get(sm->chain, &creds, err))
		goto out;
	now = sm_now();
	kf_sigv4_amz_date(now, amzdate);
	if (sign(sm, target, amzdate, now, body, &creds, &h.auth, err) ||
	    hdrs_fill(&h, sm, target, amzdate, &creds, err))
		goto out;
	memset(&hr, 0, sizeof(hr));
	hr.method = "POST";
	hr.url = sm->url;
	hr.headers = h.lines;
	hr.body = body->data;
	hr.body_len = body->len;
	hr.timeout_ms = timeout_ms;
	hr.max_response = SM_RESP_MAX;
	hr.fresh_connect = fresh ? 1 : 0;
	rc = kf_http_do(&hr, resp, err);
out:
	kf_aws_creds_release(&creds);
	hdrs_release(&h);
	return rc;
}

/* ---- one call with retries ---------------------------------------------- */

struct sm_call {
	struct kf_aws_sm *sm;
	const char *op;
	const struct kf_buf *body;
	json_t *out;   /* the 2xx answer */
	int refreshed; /* credentials were refreshed once */
	/* calls without an idempotency token (kf_aws_sm_call_checked) */
	kf_aws_sm_landed_fn landed;
	void *landed_ctx;
	int may_have_landed; /* the last attempt may have reached it */
	unsigned checks;     /* times landed was asked */
};

/* What a non-2xx answer means for the retry driver. */
static enum kf_retry_verdict answer_failed(struct sm_call *c,
					   const struct kf_http_resp *resp,
					   struct kf_err *err)
{
	char hdr_type[128] = "";

	kf_http_resp_header(resp, "x-amzn-ErrorType", hdr_type,
			    sizeof(hdr_type));
	switch (kf_aws_sm_classify_hdr(c->op, resp->status,
				       resp->body.data ? resp->body.data : "",
				       resp->body.len, hdr_type, err)) {
	case KF_AWS_SM_RETRY:
		/* a 4xx (throttled, busy) was refused before any effect */
		if (resp->status >= 500)
			c->may_have_landed = 1;
		return KF_RETRY_AGAIN;
	case KF_AWS_SM_REFRESH:
		if (c->refreshed)
			return KF_RETRY_FAIL;
		c->refreshed = 1;
		kf_log(KF_LOG_INFO, "%s: %s: %s, refreshing credentials",
		       c->sm->stats_name, c->op, err->provider_code);
		kf_aws_chain_invalidate(c->sm->chain);
		return KF_RETRY_NOW;
	default:
		return KF_RETRY_FAIL;
	}
}

/*
 * Before a retry of a call without an idempotency token: did the attempt
 * that failed land after all?  KF_RETRY_AGAIN when the call is to be sent
 * again, else the verdict that ends the run.
 */
static enum kf_retry_verdict check_landed(struct sm_call *c, struct kf_err *err)
{
	struct kf_err cerr = KF_ERR_INIT;
	json_t *got = NULL;
	int r;

	c->may_have_landed = 0;
	c->checks++;
	r = c->landed(c->landed_ctx, &got, &cerr);
	if (r < 0) {
		json_decref(got);
		*err = cerr;
		return KF_RETRY_FAIL;
	}
	if (r == 0) {
		json_decref(got);
		return KF_RETRY_AGAIN;
	}
	c->out = got ? got : json_object();
	if (!c->out) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		return KF_RETRY_FAIL;
	}
	return KF_RETRY_OK;
}

static enum kf_retry_verdict
sm_try(void *vctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct sm_call *c = vctx;
	struct kf_http_resp resp;
	enum kf_retry_verdict v;
	uint64_t t0;
	int rc, ok;

	if (c->landed && c->may_have_landed) {
		v = check_landed(c, err);
		if (v != KF_RETRY_AGAIN)
			return v;
	}
	kf_http_resp_init(&resp);
	t0 = kf_clock_now_ms();
	/* a checked call has no idempotency token: never resent unseen */
	rc = sm_attempt(c->sm, c->op, c->body, at->timeout_ms,
			c->landed != NULL, &resp, err);
	ok = rc == 0 && resp.status >= 200 && resp.status < 300;
	kf_stats_api(c->sm->stats_name, c->op,
		     (unsigned)(kf_clock_now_ms() - t0), ok, at->n > 0);
	if (rc) {
		/* A transport timeout is retried as the service being away:
		 * after the last attempt it stays UNAVAILABLE. */
		v = KF_RETRY_FAIL;
		if (err->code == KF_E_UNAVAILABLE ||
		    err->code == KF_E_TIMEOUT) {
			err->code = KF_E_UNAVAILABLE;
			c->may_have_landed = 1;
			v = KF_RETRY_AGAIN;
		}
	} else if (ok) {
		c->out = kf_json_object(resp.body.data, resp.body.len);
		v = KF_RETRY_OK;
		if (!c->out) {
			kf_fail_provider(err, KF_E_IO, 200, NULL,
					 "%s: malformed response", c->op);
			v = KF_RETRY_FAIL;
		}
	} else {
		v = answer_failed(c, &resp, err);
	}
	kf_http_resp_release(&resp);
	return v;
}

static int run_call(struct sm_call *c, json_t **out, struct kf_err *err)
{
	struct kf_err last;
	char what[96];

	*out = NULL;
	/* truncation only shortens log and error text */
	(void)snprintf(what, sizeof(what), "%s: %s", c->sm->stats_name, c->op);
	if (kf_retry_run(&c->sm->policy, what, c->sm->timeout_ms, sm_try, c,
			 err)) {
		json_decref(c->out);
		c->out = NULL;
		/* the last attempt may have landed too: ask once more (the
		 * call's own error stays when that cannot tell) */
		if (!c->landed || !c->may_have_landed)
			return -1;
		last = *err;
		if (check_landed(c, err) != KF_RETRY_OK) {
			*err = last;
			return -1;
		}
		kf_err_clear(err);
	}
	*out = c->out;
	return 0;
}

int kf_aws_sm_call(struct kf_aws_sm *sm, const char *op,
		   const struct kf_buf *body, json_t **out, struct kf_err *err)
{
	struct sm_call c;

	memset(&c, 0, sizeof(c));
	c.sm = sm;
	c.op = op;
	c.body = body;
	return run_call(&c, out, err);
}

int kf_aws_sm_call_checked(struct kf_aws_sm *sm, const char *op,
			   const struct kf_buf *body,
			   kf_aws_sm_landed_fn landed, void *ctx,
			   unsigned *checks, json_t **out, struct kf_err *err)
{
	struct sm_call c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.sm = sm;
	c.op = op;
	c.body = body;
	c.landed = landed;
	c.landed_ctx = ctx;
	rc = run_call(&c, out, err);
	if (checks)
		*checks = c.checks;
	return rc;
}
