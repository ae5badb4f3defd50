/*
 * The core of the Cloud Storage JSON API client: the endpoint, what an
 * error answer means, gcs_call (the one place a request goes out, retried
 * through kf_retry_run), object resources and list pages.  Never logs a
 * body or a header: bodies hold object bytes, headers the access token;
 * messages quote only names and the server's error text.  gcs_io.c holds
 * the media read, the upload and the delete.
 */
#include "gcp/gcs.h"
#include "gcp/gcs_int.h"
#include "gcp/kms.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Retries as Google's client libraries do for Cloud Storage: 5 attempts,
 * 100 ms doubling up to 3.2 s, a 429 from 1 s up to 16 s.
 */
static const struct kf_retry_policy gcs_policy = {
	.attempts = 5,
	.base_ms = 100,
	.cap_ms = 3200,
	.throttle_base_ms = 1000,
	.throttle_cap_ms = 16000,
};

int kf_gcs_init(struct kf_gcs *g, const char *endpoint_opt,
		struct kf_gcp_auth *auth, unsigned timeout_ms,
		struct kf_err *err)
{
	if (kf_gcp_endpoint(endpoint_opt,
			    "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE",
			    KF_GCS_ENDPOINT, "Cloud Storage", g->endpoint,
			    sizeof(g->endpoint), err) < 0)
		return -1;
	g->auth = auth;
	g->timeout_ms = timeout_ms ? timeout_ms : 30000;
	g->backoff_ms = gcs_policy.base_ms;
	g->backoff_429_ms = gcs_policy.throttle_base_ms;
	g->max_attempts = gcs_policy.attempts;
	g->max_object = KF_GCS_MAX_OBJECT_DEFAULT;
	return 0;
}

enum kf_code kf_gcs_map(long http)
{
	switch (http) {
	case 400:
		return KF_E_INVALID;
	case 401:
	case 403:
		return KF_E_DENIED;
	case 404:
		return KF_E_NOTFOUND;
	case 409:
		return KF_E_EXISTS;
	case 412:
		return KF_E_STATE;
	case 413:
		return KF_E_TOOBIG;
	case 408:
	case 504:
		return KF_E_TIMEOUT;
	case 429:
	case 500:
	case 502:
	case 503:
		return KF_E_UNAVAILABLE;
	default:
		return KF_E_IO;
	}
}

int kf_gcs_conflict(const struct kf_err *err)
{
	return err && err->code == KF_E_STATE && err->http_status == 412;
}

int kf_gcs_valid_bucket(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 3 || n > 222)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

int kf_gcs_valid_object(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= KF_GCS_MAX_NAME && !strpbrk(s, "\r\n");
}

/* Retry class of an error answer: 0 never, 1 normal, 2 throttled. */
static int retry_class(long http, const char *msg)
{
	if (http == 429)
		return 2;
	if (http == 408 || http == 500 || http == 502 || http == 503 ||
	    http == 504)
		return 1;
	/* The server found the upload's CRC32C wrong: damaged on the way. */
	if (http == 400 && msg && strstr(msg, "CRC32C"))
		return 1;
	return 0;
}

/* Turn an error answer into *err; returns its retry class. */
static int answer_error(const struct gcs_call *c, const struct kf_http_resp *r,
			struct kf_err *err)
{
	json_t *j = kf_json_object(r->body.data, r->body.len);
	json_t *e = j ? json_object_get(j, "error") : NULL;
	json_t *e0 = json_array_get(json_object_get(e, "errors"), 0);
	const char *msg = kf_json_str(e, "message");
	const char *reason = kf_json_str(e0, "reason");
	char code[32];
	int cls;

	if (!msg)
		msg = "";
	if (!reason || !*reason) {
		(void)snprintf(code, sizeof(code), "HTTP %ld", r->status);
		reason = code;
	}
	kf_fail_provider(err, kf_gcs_map(r->status), (int)r->status, reason,
			 "Cloud Storage %s %s: %ld %s: %.120s", c->op,
			 c->target, r->status, reason, msg);
	cls = retry_class(r->status, msg);
	json_decref(j);
	return cls;
}

static enum kf_retry_verdict verdict(const struct gcs_call *c, int cls)
{
	if (!cls || !c->retry)
		return KF_RETRY_FAIL;
	return cls == 2 ? KF_RETRY_THROTTLED : KF_RETRY_AGAIN;
}

/* Send the request once with the current token. */
static enum kf_retry_verdict send_once(struct gcs_call *c,
				       const struct kf_retry_attempt *at,
				       struct kf_err *err)
{
	struct kf_http_req req = { 0 };
	struct kf_secret *auth = NULL;
	const char *hdrs[6];
	uint64_t gen = 0, t0;
	enum kf_retry_verdict v = KF_RETRY_FAIL;
	int h = 0, hrc, cls;

	if (kf_gcp_auth_header(c->g->auth, &auth, &gen, err) < 0)
		goto out;
	hdrs[h++] = (const char *)auth->data;
	if (c->accept_json)
		hdrs[h++] = "Accept: application/json";
	if (c->ctype)
		hdrs[h++] = c->ctype;
	if (c->quota_hdr)
		hdrs[h++] = c->quota_hdr;
	hdrs[h] = NULL;
	req.method = c->method;
	req.url = c->url;
	req.headers = hdrs;
	req.body = c->body;
	req.body_len = c->body_len;
	req.timeout_ms = at->timeout_ms;
	req.max_response = c->max_response;
	t0 = kf_clock_now_ms();
	hrc = kf_http_do(&req, c->resp, err);
	kf_stats_api("gcs", c->op, (unsigned)(kf_clock_now_ms() - t0),
		     hrc == 0 && c->resp->status / 100 == 2, at->n > 0);
	if (hrc < 0) {
		if (err->code != KF_E_UNAVAILABLE && err->code != KF_E_TIMEOUT)
			goto out;
		c->ambiguous = 1; /* the server may have acted on it */
		v = verdict(c, 1);
		goto out;
	}
	if (c->resp->status / 100 == 2) {
		v = KF_RETRY_OK;
		goto out;
	}
	cls = answer_error(c, c->resp, err);
	if (c->resp->status == 401 && !c->refreshed) {
		c->refreshed = 1;
		kf_gcp_auth_invalidate(c->g->auth, gen);
		v = KF_RETRY_NOW;
		goto out;
	}
	if (c->resp->status >= 500 && cls)
		c->ambiguous = 1;
	v = verdict(c, cls);
out:
	kf_secret_free(auth);
	return v;
}

static enum kf_retry_verdict
call_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct gcs_call *c = ctx;
	enum kf_retry_verdict v;

	kf_http_resp_release(c->resp);
	kf_http_resp_init(c->resp);
	v = send_once(c, at, err);
	c->final = v == KF_RETRY_FAIL;
	if (v == KF_RETRY_AGAIN || v == KF_RETRY_THROTTLED)
		c->counted++;
	if (v != KF_RETRY_OK)
		c->last = *err;
	return v;
}

int gcs_call(struct gcs_call *c, struct kf_err *err)
{
	struct kf_gcs *g = c->g;
	struct kf_retry_policy p = gcs_policy;
	const char *q = kf_gcp_auth_quota_project(g->auth);
	struct kf_buf qp;
	char what[64];
	int rc = -1;

	p.attempts = g->max_attempts;
	p.base_ms = g->backoff_ms;
	p.cap_ms = g->backoff_ms * 32;
	p.throttle_base_ms = g->backoff_429_ms;
	p.throttle_cap_ms = g->backoff_429_ms * 16;
	kf_buf_init(&qp, 256);
	if (q[0] && kf_buf_addf(&qp, "x-goog-user-project: %s", q) < 0) {
		kf_fail(err, KF_E_INVALID, "quota project too long");
		goto out;
	}
	c->quota_hdr = qp.len ? kf_buf_str(&qp) : NULL;
	c->refreshed = c->ambiguous = c->final = 0;
	c->counted = 0;
	/* Only names log lines: truncation is harmless. */
	(void)snprintf(what, sizeof(what), "Cloud Storage %s", c->op);
	rc = kf_retry_run(&p, what, g->timeout_ms, call_attempt, c, err);
	if (rc < 0 && !c->final && c->counted) {
		/* Out of attempts or time after a failed attempt: the caller
		 * sees that attempt's code, status and reason. */
		err->code = c->last.code;
		err->http_status = c->last.http_status;
		err->reason = c->last.reason;
	}
out:
	kf_buf_release(&qp);
	return rc;
}

int gcs_url(struct kf_gcs *g, struct kf_buf *url, const char *base,
	    const char *bucket, const char *object, struct kf_err *err)
{
	if (!kf_gcs_valid_bucket(bucket))
		return kf_fail(err, KF_E_INVALID, "invalid bucket name");
	if (object && !kf_gcs_valid_object(object))
		return kf_fail(err, KF_E_INVALID, "invalid object name");
	if (kf_buf_addf(url, "%s%sstorage/v1/b/%s/o", g->endpoint, base,
			bucket) < 0 ||
	    (object && (kf_buf_adds(url, "/") < 0 ||
			kf_buf_add_pct(url, object, strlen(object), NULL) < 0)))
		return kf_fail(err, KF_E_INVALID, "object URL too long");
	return 0;
}

void gcs_target(char *out, size_t n, const char *bucket, const char *object)
{
	/* A message label only: truncation is harmless. */
	(void)snprintf(out, n, "gs://%s/%.200s", bucket, object ? object : "");
}

/* ---- object resources */

void kf_gcs_object_release(struct kf_gcs_object *o)
{
	if (!o)
		return;
	json_decref(o->metadata);
	o->metadata = NULL;
}

const char *kf_gcs_meta(const struct kf_gcs_object *o, const char *key)
{
	return o ? kf_json_str(o->metadata, key) : NULL;
}

/* o[key] as an int64 >= min, given as a decimal string or a number. */
static int get_i64(json_t *o, const char *key, long long min, long long *out)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char *end = NULL;
	long long x;

	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (s) {
		if (s[0] < '0' || s[0] > '9' || strlen(s) > 19)
			return -1;
		errno = 0;
		x = strtoll(s, &end, 10);
		if (errno || *end)
			return -1;
	} else {
		return -1;
	}
	if (x < min)
		return -1;
	*out = x;
	return 0;
}

int gcs_crc32c_b64(const char *s, uint32_t *out)
{
	struct kf_buf b;
	int rc = -1;

	kf_buf_init(&b, 8);
	if (s && *s && kf_base64_decode(s, strlen(s), &b) == 0 && b.len == 4) {
		const unsigned char *p = (const unsigned char *)b.data;

		*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
		rc = 0;
	}
	kf_buf_release(&b);
	return rc;
}

/* Copy o[key] (an optional string) into out; -1 when too long or not a
 * string. */
static int get_str(json_t *o, const char *key, char *out, size_t n)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	size_t len;

	out[0] = '\0';
	if (!v)
		return 0;
	if (!s)
		return -1;
	len = strlen(s);
	if (len >= n)
		return -1;
	memcpy(out, s, len + 1);
	return 0;
}

static int parse_fields(json_t *j, struct kf_gcs_object *o)
{
	json_t *meta = json_object_get(j, "metadata");
	const char *crc = kf_json_str(j, "crc32c");
	const char *k;
	json_t *v;

	if (!json_is_object(j) ||
	    get_str(j, "name", o->name, sizeof(o->name)) < 0 || !o->name[0] ||
	    get_i64(j, "generation", 1, &o->generation) < 0 ||
	    get_i64(j, "metageneration", 1, &o->metageneration) < 0 ||
	    get_i64(j, "size", 0, &o->size) < 0 ||
	    get_str(j, "md5Hash", o->md5, sizeof(o->md5)) < 0 ||
	    get_str(j, "updated", o->updated, sizeof(o->updated)) < 0 ||
	    get_str(j, "cacheControl", o->cache_control,
		    sizeof(o->cache_control)) < 0 ||
	    get_str(j, "contentType", o->content_type,
		    sizeof(o->content_type)) < 0)
		return -1;
	if (json_object_get(j, "crc32c")) {
		if (gcs_crc32c_b64(crc, &o->crc32c) < 0)
			return -1;
		o->has_crc32c = 1;
	}
	o->live = json_object_get(j, "timeDeleted") == NULL;
	if (!meta)
		return 0;
	if (!json_is_object(meta))
		return -1;
	json_object_foreach(meta, k, v) if (!json_is_string(v)) return -1;
	o->metadata = json_incref(meta);
	return 0;
}

int kf_gcs_parse_object(json_t *j, struct kf_gcs_object *o, struct kf_err *err)
{
	memset(o, 0, sizeof(*o));
	if (parse_fields(j, o) == 0)
		return 0;
	kf_gcs_object_release(o);
	memset(o, 0, sizeof(*o));
	return kf_fail(err, KF_E_IO,
		       "Cloud Storage: malformed object resource");
}

int kf_gcs_parse_object_text(const char *p, size_t n, struct kf_gcs_object *o,
			     struct kf_err *err)
{
	json_t *j = kf_json_object(p, n);
	int rc = kf_gcs_parse_object(j, o, err);

	json_decref(j);
	return rc;
}

/* Hand each item and prefix of page j to fn; 1 when fn stopped. */
static int walk_page(json_t *j, kf_gcs_list_fn fn, void *ctx,
		     struct kf_err *err)
{
	json_t *items = json_object_get(j, "items");
	json_t *prefixes = json_object_get(j, "prefixes");
	struct kf_gcs_object o;
	size_t i;
	json_t *v;

	if ((items && !json_is_array(items)) ||
	    (prefixes && !json_is_array(prefixes)))
		return kf_fail(err, KF_E_IO,
			       "Cloud Storage: malformed list page");
	json_array_foreach(prefixes, i, v)
	{
		const char *s = json_string_value(v);

		if (!s || !*s)
			return kf_fail(err, KF_E_IO,
				       "Cloud Storage: malformed prefix");
		if (fn(ctx, NULL, s))
			return 1;
	}
	json_array_foreach(items, i, v)
	{
		int stop;

		if (kf_gcs_parse_object(v, &o, err) < 0)
			return -1;
		stop = fn(ctx, &o, NULL);
		kf_gcs_object_release(&o);
		if (stop)
			return 1;
	}
	return 0;
}

int kf_gcs_parse_list(const char *p, size_t n, kf_gcs_list_fn fn, void *ctx,
		      struct kf_buf *next, struct kf_err *err)
{
	json_t *j = kf_json_object(p, n);
	json_t *tok = j ? json_object_get(j, "nextPageToken") : NULL;
	int rc = -1;

	if (!j || (tok && !json_is_string(tok))) {
		kf_fail(err, KF_E_IO, "Cloud Storage: malformed list page");
		goto out;
	}
	if (walk_page(j, fn, ctx, err) < 0)
		goto out;
	if (next) {
		kf_buf_reset(next);
		if (tok && kf_buf_adds(next, json_string_value(tok)) < 0) {
			kf_fail(err, KF_E_IO,
				"Cloud Storage: page token too long");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* ---- stat and list */

int kf_gcs_stat(struct kf_gcs *g, const char *bucket, const char *object,
		long long gen, struct kf_gcs_object *o, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct gcs_call c = { .g = g, .method = "GET", .op = "objects.get" };
	struct kf_buf url;
	int rc = -1;

	memset(o, 0, sizeof(*o));
	kf_http_resp_init(&resp);
	kf_buf_init(&url, 8192);
	gcs_target(c.target, sizeof(c.target), bucket, object);
	if (gcs_url(g, &url, "", bucket, object, err) < 0)
		goto out;
	if (gen > 0 && kf_buf_addf(&url, "?generation=%lld", gen) < 0) {
		kf_fail(err, KF_E_INVALID, "object URL too long");
		goto out;
	}
	c.url = kf_buf_str(&url);
	c.accept_json = 1;
	c.retry = 1;
	c.resp = &resp;
	if (gcs_call(&c, err) < 0)
		goto out;
	if (kf_gcs_parse_object_text(resp.body.data, resp.body.len, o, err) < 0)
		goto out;
	if (strcmp(o->name, object) != 0 || (gen > 0 && o->generation != gen)) {
		kf_gcs_object_release(o);
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud Storage objects.get %s: the answer describes "
			"another object",
			c.target);
		goto out;
	}
	rc = 0;
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	return rc;
}

/* The query of a list request. */
static int list_query(struct kf_buf *url, const struct kf_gcs_list_req *rq)
{
	const char *sep = "?";

	if (rq->prefix && *rq->prefix) {
		if (kf_buf_adds(url, "?prefix=") < 0 ||
		    kf_buf_add_pct(url, rq->prefix, strlen(rq->prefix), NULL) <
			    0)
			return -1;
		sep = "&";
	}
	if (rq->delimiter && *rq->delimiter) {
		if (kf_buf_addf(url, "%sdelimiter=", sep) < 0 ||
		    kf_buf_add_pct(url, rq->delimiter, strlen(rq->delimiter),
				   NULL) < 0)
			return -1;
		sep = "&";
	}
	if (rq->page && *rq->page) {
		if (kf_buf_addf(url, "%spageToken=", sep) < 0 ||
		    kf_buf_add_pct(url, rq->page, strlen(rq->page), NULL) < 0)
			return -1;
		sep = "&";
	}
	if (rq->versions) {
		if (kf_buf_addf(url, "%sversions=true", sep) < 0)
			return -1;
		sep = "&";
	}
	if (rq->max_results &&
	    kf_buf_addf(url, "%smaxResults=%u", sep, rq->max_results) < 0)
		return -1;
	return 0;
}

int kf_gcs_list(struct kf_gcs *g, const char *bucket,
		const struct kf_gcs_list_req *rq, kf_gcs_list_fn fn, void *ctx,
		struct kf_buf *next, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct gcs_call c = { .g = g, .method = "GET", .op = "objects.list" };
	struct kf_buf url;
	int rc = -1;

	kf_http_resp_init(&resp);
	kf_buf_init(&url, 8192);
	gcs_target(c.target, sizeof(c.target), bucket, rq->prefix);
	if (gcs_url(g, &url, "", bucket, NULL, err) < 0)
		goto out;
	if (list_query(&url, rq) < 0) {
		kf_fail(err, KF_E_INVALID, "list URL too long");
		goto out;
	}
	c.url = kf_buf_str(&url);
	c.accept_json = 1;
	c.retry = 1;
	c.resp = &resp;
	if (gcs_call(&c, err) < 0)
		goto out;
	rc = kf_gcs_parse_list(resp.body.data, resp.body.len, fn, ctx, next,
			       err) < 0 ?
		     -1 :
		     0;
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	return rc;
}
