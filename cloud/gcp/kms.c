/*
 * The core of the Cloud KMS REST v1 client: the endpoint, what an error
 * answer means (canonical status -> KF_E_*, retry class) and
 * kf_gcp_kms_call, the one place a request goes out, retried through
 * kf_retry_run.  Never logs a body or a header: bodies may hold plaintext,
 * headers the access token; error messages quote only the server's error
 * text and resource names.
 */
#include "gcp/kms.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The retry policy of every KMS method, as data: 5 attempts, pauses from
 * 100 ms doubling up to 32 times that, RESOURCE_EXHAUSTED from 1 s up to
 * 16 times that, every attempt allowed the whole time left.
 * kf_gcp_kms_init copies it into the knobs of struct kf_gcp_kms (tests
 * shorten them); each call builds its policy from those knobs.
 */
#define BACKOFF_CAP_FACTOR 32
#define THROTTLE_CAP_FACTOR 16
static const struct kf_retry_policy kms_policy = {
	.attempts = 5,
	.base_ms = 100,
	.cap_ms = 100 * BACKOFF_CAP_FACTOR,
	.throttle_base_ms = 1000,
	.throttle_cap_ms = 1000 * THROTTLE_CAP_FACTOR,
	.min_slice_ms = 0,
};

int kf_gcp_endpoint(const char *opt, const char *env_name, const char *def,
		    const char *what, char *out, size_t outlen,
		    struct kf_err *err)
{
	const char *env = getenv(env_name);
	const char *ep = def;
	size_t n;
	int w;

	if (opt && *opt)
		ep = opt;
	else if (env && *env)
		ep = env;
	n = strlen(ep);
	w = snprintf(out, outlen, "%s%s", ep, n && ep[n - 1] == '/' ? "" : "/");
	if (w < 0 || (size_t)w >= outlen)
		return kf_fail(err, KF_E_INVALID, "%s endpoint too long", what);
	if (strncmp(out, "http://", 7) != 0 && strncmp(out, "https://", 8) != 0)
		return kf_fail(err, KF_E_INVALID,
			       "%s endpoint %s is not an http(s) URL", what,
			       out);
	return kf_http_check_url(out, err);
}

int kf_gcp_kms_init(struct kf_gcp_kms *k, const char *endpoint_opt,
		    struct kf_gcp_auth *auth, unsigned timeout_ms,
		    struct kf_err *err)
{
	if (kf_gcp_endpoint(endpoint_opt,
			    "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
			    KF_GCP_KMS_ENDPOINT, "Cloud KMS", k->endpoint,
			    sizeof(k->endpoint), err) < 0)
		return -1;
	k->auth = auth;
	k->timeout_ms = timeout_ms ? timeout_ms : 30000;
	k->backoff_ms = kms_policy.base_ms;
	k->backoff_429_ms = kms_policy.throttle_base_ms;
	k->max_attempts = kms_policy.attempts;
	return 0;
}

static const struct {
	const char *status;
	enum kf_code code;
} status_map[] = {
	{ "NOT_FOUND", KF_E_NOTFOUND },
	{ "ALREADY_EXISTS", KF_E_EXISTS },
	{ "PERMISSION_DENIED", KF_E_DENIED },
	{ "UNAUTHENTICATED", KF_E_DENIED },
	{ "INVALID_ARGUMENT", KF_E_INVALID },
	{ "OUT_OF_RANGE", KF_E_INVALID },
	{ "FAILED_PRECONDITION", KF_E_STATE },
	{ "UNIMPLEMENTED", KF_E_NOTSUP },
	{ "RESOURCE_EXHAUSTED", KF_E_UNAVAILABLE },
	{ "UNAVAILABLE", KF_E_UNAVAILABLE },
	{ "ABORTED", KF_E_UNAVAILABLE },
	{ "DEADLINE_EXCEEDED", KF_E_TIMEOUT },
	{ "CANCELLED", KF_E_IO },
	{ "INTERNAL", KF_E_IO },
	{ "UNKNOWN", KF_E_IO },
	{ "DATA_LOSS", KF_E_IO },
};

/* The canonical status google.rpc.Code gives for an HTTP status. */
static const char *status_of_http(long http)
{
	switch (http) {
	case 400:
		return "INVALID_ARGUMENT";
	case 401:
		return "UNAUTHENTICATED";
	case 403:
		return "PERMISSION_DENIED";
	case 404:
		return "NOT_FOUND";
	case 409:
		return "ALREADY_EXISTS";
	case 429:
		return "RESOURCE_EXHAUSTED";
	case 499:
		return "CANCELLED";
	case 501:
		return "UNIMPLEMENTED";
	case 502:
	case 503:
		return "UNAVAILABLE";
	case 504:
		return "DEADLINE_EXCEEDED";
	default:
		return http >= 500 ? "INTERNAL" : "UNKNOWN";
	}
}

enum kf_code kf_gcp_kms_map(const char *status, long http)
{
	if (!status || !*status)
		status = status_of_http(http);
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (strcmp(status_map[i].status, status) == 0)
			return status_map[i].code;
	return KF_E_IO;
}

int kf_gcp_kms_retry_class(const char *status, long http, const char *message)
{
	if (!status || !*status)
		status = status_of_http(http);
	/* INTERNAL too: Google's guidance retries it a limited number of
	 * times, as a 500 from a front end is transient; the attempt budget
	 * bounds it, and calls that must never repeat (version creation)
	 * are not retried. */
	if (strcmp(status, "UNAVAILABLE") == 0 ||
	    strcmp(status, "DEADLINE_EXCEEDED") == 0 ||
	    strcmp(status, "INTERNAL") == 0)
		return 1;
	if (strcmp(status, "RESOURCE_EXHAUSTED") == 0 || http == 429)
		return 2;
	/* Server-side checksum mismatch: the request was damaged on the way. */
	if (strcmp(status, "INVALID_ARGUMENT") == 0 && message &&
	    strstr(message, "checksum in field"))
		return 1;
	return 0;
}

/*
 * Cloud KMS refuses a ciphertext it cannot decrypt with INVALID_ARGUMENT
 * and one of these texts; the text of the answer is the only place the
 * protocol says so, so it is read here, once, into err->reason.
 */
static int bad_ciphertext(enum kf_code code, const char *msg)
{
	return code == KF_E_INVALID && (strstr(msg, "ciphertext is invalid") ||
					strstr(msg, "Decryption failed"));
}

/* Turn an error answer into *err.  Returns the retry class. */
static int answer_error(const struct kf_http_resp *r, const char *method,
			const char *path, struct kf_err *err)
{
	json_t *j = json_loadb(kf_buf_str(&r->body), r->body.len, 0, NULL);
	json_t *e = j ? json_object_get(j, "error") : NULL;
	const char *status = kf_json_str(e, "status");
	const char *msg = kf_json_str(e, "message");
	size_t plen = strcspn(path, "?");
	enum kf_code code;
	int cls;

	if (!status || !*status)
		status = status_of_http(r->status);
	if (!msg)
		msg = "";
	code = kf_gcp_kms_map(status, r->status);
	kf_fail_provider(err, code, (int)r->status, status,
			 "Cloud KMS %s %.*s: %s: %.120s", method,
			 (int)(plen < 95 ? plen : 95), path, status, msg);
	if (bad_ciphertext(code, msg))
		err->reason = KF_R_BAD_CIPHERTEXT;
	cls = kf_gcp_kms_retry_class(status, r->status, msg);
	json_decref(j);
	return cls;
}

/* The API method a request path names, for the operators' counters. */
static const char *op_name(const char *method, const char *path)
{
	static const struct {
		const char *needle;
		const char *list, *get, *post, *patch;
	} t[] = {
		/* Secret Manager (its calls run on this core too); first, as
		 * a secret id may be "locations".  DELETE is in the last
		 * column. */
		{ ":access", "versions.access", "versions.access", NULL, NULL },
		{ ":addVersion", NULL, NULL, "secrets.addVersion", NULL },
		{ "/versions", "versions.list", "versions.get", NULL, NULL },
		{ "/secrets", "secrets.list", "secrets.get", "secrets.create",
		  "secrets.delete" },
		{ ":encrypt", NULL, NULL, "cryptoKeys.encrypt", NULL },
		{ ":decrypt", NULL, NULL, "cryptoKeys.decrypt", NULL },
		{ ":updatePrimaryVersion", NULL, NULL,
		  "cryptoKeys.updatePrimaryVersion", NULL },
		{ "/cryptoKeyVersions", "cryptoKeyVersions.list",
		  "cryptoKeyVersions.get", "cryptoKeyVersions.create", NULL },
		{ "/cryptoKeys", "cryptoKeys.list", "cryptoKeys.get",
		  "cryptoKeys.create", "cryptoKeys.patch" },
		{ "/keyRings", "keyRings.list", "keyRings.get",
		  "keyRings.create", NULL },
		{ "/locations", "locations.list", "locations.get", NULL, NULL },
	};
	size_t plen = strcspn(path, "?");

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t nl = strlen(t[i].needle);
		const char *at = strstr(path, t[i].needle), *o;

		if (!at || (size_t)(at - path) >= plen)
			continue;
		if (!strcmp(method, "GET"))
			o = (size_t)(at - path) + nl == plen ? t[i].list :
							       t[i].get;
		else
			o = !strcmp(method, "POST") ? t[i].post : t[i].patch;
		return o ? o : "other";
	}
	return "other";
}

/* One kf_gcp_kms_call: what its attempts share. */
struct call {
	struct kf_gcp_kms *k;
	const char *method, *path, *op;
	const struct kf_http_req *req; /* method, URL and body */
	const char *quota_hdr;	       /* x-goog-user-project line or NULL */
	int has_body;
	int flags; /* KF_GCP_RETRY, KF_GCP_CREATE */
	json_t **out;
	int refreshed;	    /* the one token refresh was used */
	int ambiguous;	    /* an attempt may have been acted on */
	unsigned counted;   /* failed attempts that count */
	int final;	    /* the last verdict was FAIL */
	struct kf_err last; /* the last failed attempt's error */
};

/* The verdict on a failure of retry class cls. */
static enum kf_retry_verdict class_verdict(const struct call *c, int cls)
{
	if (!cls || !(c->flags & KF_GCP_RETRY))
		return KF_RETRY_FAIL;
	return cls == 2 ? KF_RETRY_THROTTLED : KF_RETRY_AGAIN;
}

/* The transport failed: only an unanswered request is worth another. */
static enum kf_retry_verdict transport_verdict(struct call *c,
					       const struct kf_err *err)
{
	if (err->code != KF_E_UNAVAILABLE && err->code != KF_E_TIMEOUT)
		return KF_RETRY_FAIL;
	c->ambiguous = 1; /* the server may have acted on it */
	return class_verdict(c, 1);
}

/* A 2xx answer: the response object, when the caller wants it. */
static enum kf_retry_verdict
take_answer(struct call *c, const struct kf_http_resp *r, struct kf_err *err)
{
	json_t *j;

	if (!c->out)
		return KF_RETRY_OK;
	j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) :
			  json_object();
	if (!json_is_object(j)) {
		json_decref(j);
		kf_fail(err, KF_E_IO, "Cloud KMS %s: malformed response",
			c->method);
		return KF_RETRY_FAIL;
	}
	*c->out = j;
	return KF_RETRY_OK;
}

/* An error answer: refresh once on 401, accept a created resource. */
static enum kf_retry_verdict answer_verdict(struct call *c,
					    const struct kf_http_resp *r,
					    uint64_t gen, struct kf_err *err)
{
	int cls = answer_error(r, c->method, c->path, err);

	if (r->status == 401 && !c->refreshed) {
		/* Expired or revoked token: one refresh, whatever the flags. */
		c->refreshed = 1;
		kf_gcp_auth_invalidate(c->k->auth, gen);
		return KF_RETRY_NOW;
	}
	if (err->code == KF_E_EXISTS && (c->flags & KF_GCP_CREATE) &&
	    c->ambiguous) {
		kf_log(KF_LOG_DEBUG,
		       "gcp: %s answered ALREADY_EXISTS after "
		       "an unanswered attempt: created",
		       c->method);
		kf_err_clear(err);
		return KF_RETRY_OK;
	}
	if (r->status >= 500 && cls)
		c->ambiguous = 1;
	return class_verdict(c, cls);
}

/*
 * The time this attempt's request may take once the token is in hand
 * (0: no deadline); -1 with *err filled when the token fetch used it all:
 * the previous attempt's error, or TIMEOUT when none failed yet.
 */
static long request_time(const struct call *c,
			 const struct kf_retry_attempt *at, uint64_t t0,
			 struct kf_err *err)
{
	uint64_t used = kf_clock_now_ms() - t0;

	if (!at->timeout_ms)
		return 0;
	if (used < at->timeout_ms)
		return (long)(at->timeout_ms - used);
	if (c->counted)
		*err = c->last;
	else
		kf_fail(err, KF_E_TIMEOUT, "Cloud KMS %s: deadline passed",
			c->method);
	return -1;
}

/* Send the request once, with the current token. */
static enum kf_retry_verdict send_once(struct call *c,
				       const struct kf_retry_attempt *at,
				       struct kf_http_resp *resp,
				       struct kf_err *err)
{
	struct kf_http_req req = *c->req;
	struct kf_secret *auth = NULL;
	const char *hdrs[6];
	uint64_t gen = 0, t0 = kf_clock_now_ms();
	enum kf_retry_verdict v = KF_RETRY_FAIL;
	long left;
	int h = 0, hrc;

	if (kf_gcp_auth_header(c->k->auth, &auth, &gen, err) < 0)
		goto out;
	left = request_time(c, at, t0, err);
	if (left < 0)
		goto out;
	hdrs[h++] = (const char *)auth->data;
	hdrs[h++] = "Accept: application/json";
	if (c->has_body)
		hdrs[h++] = "Content-Type: application/json";
	if (c->quota_hdr)
		hdrs[h++] = c->quota_hdr;
	hdrs[h] = NULL;
	req.headers = hdrs;
	req.timeout_ms = (unsigned)left;
	t0 = kf_clock_now_ms();
	hrc = kf_http_do(&req, resp, err);
	kf_stats_api("gcp", c->op, (unsigned)(kf_clock_now_ms() - t0),
		     hrc == 0 && resp->status >= 200 &&
			     resp->status<300, at->n> 0);
	if (hrc < 0)
		v = transport_verdict(c, err);
	else if (resp->status >= 200 && resp->status < 300)
		v = take_answer(c, resp, err);
	else
		v = answer_verdict(c, resp, gen, err);
out:
	kf_secret_free(auth);
	return v;
}

static enum kf_retry_verdict
call_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct call *c = ctx;
	struct kf_http_resp resp;
	enum kf_retry_verdict v;

	kf_http_resp_init(&resp);
	v = send_once(c, at, &resp, err);
	kf_http_resp_release(&resp);
	c->final = v == KF_RETRY_FAIL;
	if (v == KF_RETRY_AGAIN || v == KF_RETRY_THROTTLED)
		c->counted++;
	if (v != KF_RETRY_OK)
		c->last = *err;
	return v;
}

/* The policy of one call, built from k's knobs. */
static struct kf_retry_policy call_policy(const struct kf_gcp_kms *k)
{
	struct kf_retry_policy p = kms_policy;

	p.attempts = k->max_attempts;
	p.base_ms = k->backoff_ms;
	p.cap_ms = k->backoff_ms * BACKOFF_CAP_FACTOR;
	p.throttle_base_ms = k->backoff_429_ms;
	p.throttle_cap_ms = k->backoff_429_ms * THROTTLE_CAP_FACTOR;
	return p;
}

/* The request's URL and the quota project header (empty when unset). */
static int request_init(struct kf_gcp_kms *k, const char *path,
			struct kf_buf *url, struct kf_buf *qp,
			struct kf_err *err)
{
	const char *q = kf_gcp_auth_quota_project(k->auth);

	if (kf_buf_addf(url, "%sv1/%s", k->endpoint, path) < 0)
		return kf_fail(err, KF_E_INVALID, "resource name too long");
	if (q[0] && kf_buf_addf(qp, "x-goog-user-project: %s", q) < 0)
		return kf_fail(err, KF_E_INVALID, "quota project too long");
	return 0;
}

int kf_gcp_kms_call(struct kf_gcp_kms *k, const char *method, const char *path,
		    const struct kf_buf *body, int flags, json_t **out,
		    struct kf_err *err)
{
	struct kf_retry_policy policy = call_policy(k);
	struct kf_http_req req = { 0 };
	struct kf_err local = KF_ERR_INIT;
	struct call c = { 0 };
	struct kf_buf url, qp;
	char what[64];
	int rc = -1;

	if (!err)
		err = &local;
	if (out)
		*out = NULL;
	kf_buf_init(&url, 4096);
	kf_buf_init(&qp, 256);
	if (request_init(k, path, &url, &qp, err) < 0)
		goto out;
	req.method = method;
	req.url = kf_buf_str(&url);
	req.body = body ? body->data : NULL;
	req.body_len = body ? body->len : 0;
	req.fresh_connect = (flags & KF_GCP_FRESH) != 0;
	c.k = k;
	c.method = method;
	c.path = path;
	c.op = op_name(method, path);
	c.req = &req;
	c.quota_hdr = qp.len ? kf_buf_str(&qp) : NULL;
	c.has_body = body != NULL;
	c.flags = flags;
	c.out = out;
	/* Only names log lines and messages: truncation is harmless. */
	(void)snprintf(what, sizeof(what), "Cloud KMS %s",
		       strcmp(c.op, "other") ? c.op : method);
	rc = kf_retry_run(&policy, what, k->timeout_ms, call_attempt, &c, err);
	if (rc < 0 && !c.final && c.counted) {
		/* Out of attempts or of time after a failed attempt: the
		 * caller sees that attempt's code and reason, not TIMEOUT. */
		err->code = c.last.code;
		err->reason = c.last.reason;
	}
out:
	kf_buf_release(&url);
	kf_buf_release(&qp);
	return rc;
}
