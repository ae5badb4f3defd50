/*
 * Cloud KMS REST v1 over cloud/core/http.c.  Plaintext travels only in
 * sensitive buffers and kf_secret; response bodies are never logged, and
 * error messages quote only the server's error text and resource names.
 */
#include "gcp/kms.h"
#include "core/stats.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/retry.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define INTEGRITY_ATTEMPTS 3

int kf_gcp_kms_init(struct kf_gcp_kms *k, const char *endpoint_opt,
		    struct kf_gcp_auth *auth, unsigned timeout_ms,
		    struct kf_err *err)
{
	const char *env = getenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS");
	const char *ep = KF_GCP_KMS_ENDPOINT;
	size_t n;
	int w;

	if (endpoint_opt && *endpoint_opt)
		ep = endpoint_opt;
	else if (env && *env)
		ep = env;
	n = strlen(ep);
	w = snprintf(k->endpoint, sizeof(k->endpoint), "%s%s", ep,
		     n && ep[n - 1] == '/' ? "" : "/");
	if (w < 0 || (size_t)w >= sizeof(k->endpoint))
		return kf_fail(err, KF_E_INVALID, "Cloud KMS endpoint too long");
	if (strncmp(k->endpoint, "http://", 7) != 0 &&
	    strncmp(k->endpoint, "https://", 8) != 0)
		return kf_fail(err, KF_E_INVALID,
			       "Cloud KMS endpoint %s is not an http(s) URL",
			       k->endpoint);
	if (kf_http_check_url(k->endpoint, err) < 0)
		return -1;
	k->auth = auth;
	k->timeout_ms = timeout_ms ? timeout_ms : 30000;
	k->backoff_ms = 100;
	k->backoff_429_ms = 1000;
	k->max_attempts = 5;
	return 0;
}

int kf_gcp_valid_id(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-')))
			return 0;
	}
	return n >= 1 && n <= 63;
}

long long kf_gcp_parse_duration(const char *s)
{
	long long v = 0, mul = 1;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > 100000000000LL)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (*p == 's' || *p == '\0')
		mul = 1;
	else if (*p == 'm')
		mul = 60;
	else if (*p == 'h')
		mul = 3600;
	else if (*p == 'd')
		mul = 86400;
	else
		return -1;
	if (*p && p[1])
		return -1;
	return v * mul;
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
	case 400: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 403: return "PERMISSION_DENIED";
	case 404: return "NOT_FOUND";
	case 409: return "ALREADY_EXISTS";
	case 429: return "RESOURCE_EXHAUSTED";
	case 499: return "CANCELLED";
	case 501: return "UNIMPLEMENTED";
	case 502:
	case 503: return "UNAVAILABLE";
	case 504: return "DEADLINE_EXCEEDED";
	default: return http >= 500 ? "INTERNAL" : "UNKNOWN";
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

int kf_gcp_kms_retry_class(const char *status, long http,
			   const char *message)
{
	if (!status || !*status)
		status = status_of_http(http);
	/* INTERNAL too (protocols.md C.6: "yes (limited)"): a 500 from a
	 * front end is transient; the attempt budget bounds it, and calls
	 * that must never repeat (version creation) are not retried. */
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

/* Percent-encode a query value. */
static int query_add(struct kf_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (isascii(c) && (isalnum(c) || c == '-' || c == '.' ||
				   c == '_' || c == '~')) {
			if (kf_buf_add(b, s, 1) < 0)
				return -1;
		} else if (kf_buf_add(b, e, 3) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Strings from json_dumps come from jansson's (wiping) allocator. */
static void json_str_free(char *s)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	if (s)
		f(s);
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An int64 field (JSON string per proto3, or number); missing = 0. */
static int juint32(json_t *o, const char *k, uint32_t *out)
{
	json_t *v = json_object_get(o, k);
	unsigned long long x;
	char *end;

	if (!v) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > 0xffffffffLL)
			return -1;
		*out = (uint32_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || !isdigit((unsigned char)*json_string_value(v)))
		return -1;
	errno = 0;
	x = strtoull(json_string_value(v), &end, 10);
	if (errno || *end || x > 0xffffffffULL)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* Turn an error answer into *err.  Returns the retry class. */
static int answer_error(const struct kf_http_resp *r, const char *method,
			const char *path, struct kf_err *err)
{
	json_t *j = json_loadb(kf_buf_str(&r->body), r->body.len, 0, NULL);
	json_t *e = j ? json_object_get(j, "error") : NULL;
	const char *status = e ? jstr(e, "status") : NULL;
	const char *msg = e ? jstr(e, "message") : NULL;
	char what[96];
	int cls;

	if (!status || !*status)
		status = status_of_http(r->status);
	if (!msg)
		msg = "";
	snprintf(what, sizeof(what), "%s", path);
	what[strcspn(what, "?")] = '\0';
	kf_fail_provider(err, kf_gcp_kms_map(status, r->status),
			 (int)r->status, status, "Cloud KMS %s %s: %s: %.120s",
			 method, what, status, msg);
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
			o = (size_t)(at - path) + nl == plen ? t[i].list
							       : t[i].get;
		else
			o = !strcmp(method, "POST") ? t[i].post : t[i].patch;
		return o ? o : "other";
	}
	return "other";
}

int kf_gcp_kms_call(struct kf_gcp_kms *k, const char *method,
		    const char *path, const struct kf_buf *body, int flags,
		    json_t **out, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct kf_http_req req = { 0 };
	struct kf_secret *auth = NULL;
	struct kf_buf url, qp;
	const char *hdrs[6];
	uint64_t deadline = kf_clock_now_ms() + k->timeout_ms, now, gen = 0, t0;
	int hrc;
	unsigned attempt = 0, delay;
	int refreshed = 0, ambiguous = 0, rc = -1, cls, h;
	json_t *j = NULL;
	struct kf_err local = KF_ERR_INIT;

	if (!err)
		err = &local;
	if (out)
		*out = NULL;
	kf_buf_init(&url, 4096);
	kf_buf_init(&qp, 256);
	kf_http_resp_init(&resp);
	if (kf_buf_addf(&url, "%sv1/%s", k->endpoint, path) < 0) {
		kf_fail(err, KF_E_INVALID, "resource name too long");
		goto out;
	}
	if (kf_gcp_auth_quota_project(k->auth)[0] &&
	    kf_buf_addf(&qp, "x-goog-user-project: %s",
			kf_gcp_auth_quota_project(k->auth)) < 0) {
		kf_fail(err, KF_E_INVALID, "quota project too long");
		goto out;
	}
	req.method = method;
	req.url = kf_buf_str(&url);
	req.body = body ? body->data : NULL;
	req.body_len = body ? body->len : 0;

	for (;;) {
		kf_secret_free(auth);
		auth = NULL;
		if (kf_gcp_auth_header(k->auth, &auth, &gen, err) < 0)
			goto out;
		h = 0;
		hdrs[h++] = (const char *)auth->data;
		hdrs[h++] = "Accept: application/json";
		if (body)
			hdrs[h++] = "Content-Type: application/json";
		if (qp.len)
			hdrs[h++] = kf_buf_str(&qp);
		hdrs[h] = NULL;
		req.headers = hdrs;
		now = kf_clock_now_ms();
		if (now >= deadline) {
			if (!attempt)
				kf_fail(err, KF_E_TIMEOUT,
					"Cloud KMS %s: deadline passed", method);
			goto out;
		}
		req.timeout_ms = (unsigned)(deadline - now);
		kf_http_resp_release(&resp);
		kf_http_resp_init(&resp);
		t0 = kf_clock_now_ms();
		hrc = kf_http_do(&req, &resp, err);
		kf_stats_api("gcp", op_name(method, path),
			     (unsigned)(kf_clock_now_ms() - t0),
			     hrc == 0 && resp.status >= 200 && resp.status < 300,
			     attempt > 0 || refreshed);
		if (hrc < 0) {
			if (err->code != KF_E_UNAVAILABLE &&
			    err->code != KF_E_TIMEOUT)
				goto out;
			/* The server may have acted on it. */
			ambiguous = 1;
			cls = 1;
		} else if (resp.status >= 200 && resp.status < 300) {
			if (out) {
				j = resp.body.len ?
					    json_loadb(resp.body.data,
						       resp.body.len, 0, NULL) :
					    json_object();
				if (!json_is_object(j)) {
					kf_fail(err, KF_E_IO,
						"Cloud KMS %s: malformed response",
						method);
					goto out;
				}
				*out = j;
				j = NULL;
			}
			rc = 0;
			goto out;
		} else {
			cls = answer_error(&resp, method, path, err);
			if (resp.status == 401 && !refreshed) {
				/* Expired or revoked token: one refresh. */
				refreshed = 1;
				kf_gcp_auth_invalidate(k->auth, gen);
				continue;
			}
			if (err->code == KF_E_EXISTS &&
			    (flags & KF_GCP_CREATE) && ambiguous) {
				kf_log(KF_LOG_DEBUG,
				       "gcp: %s answered ALREADY_EXISTS after "
				       "an unanswered attempt: created",
				       method);
				kf_err_clear(err);
				rc = 0;
				goto out;
			}
			if (resp.status >= 500 && cls)
				ambiguous = 1;
		}
		if (!cls || !(flags & KF_GCP_RETRY))
			goto out;
		if (++attempt >= k->max_attempts)
			goto out;
		delay = cls == 2 ? kf_retry_backoff_ms(attempt - 1, k->backoff_429_ms,
						 k->backoff_429_ms * 16) :
				   kf_retry_backoff_ms(attempt - 1, k->backoff_ms,
						 k->backoff_ms * 32);
		now = kf_clock_now_ms();
		if (now + delay >= deadline)
			goto out;
		kf_log(KF_LOG_DEBUG, "gcp: %s retry %u after %s (%u ms)", method,
		       attempt, kf_code_name(err->code), delay);
		kf_clock_sleep_ms(delay);
	}
out:
	json_decref(j);
	kf_secret_free(auth);
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	kf_buf_release(&qp);
	return rc;
}

/* The last '/' component of s. */
static const char *last_comp(const char *s)
{
	const char *p = strrchr(s, '/');

	return p ? p + 1 : s;
}

int kf_gcp_kms_list(struct kf_gcp_kms *k, const char *parent,
		    const char *collection, const char *page,
		    kf_gcp_item_fn fn, void *ctx, struct kf_buf *next,
		    struct kf_err *err)
{
	struct kf_buf path;
	json_t *j = NULL, *arr, *it;
	const char *tok;
	size_t i;
	int rc = -1;

	kf_buf_init(&path, 4096);
	if (next)
		kf_buf_reset(next);
	if (kf_buf_addf(&path, "%s/%s?pageSize=%d", parent, collection,
			strcmp(collection, "locations") == 0 ? 100 : 1000) < 0 ||
	    (page && *page && (kf_buf_adds(&path, "&pageToken=") < 0 ||
			       query_add(&path, page) < 0))) {
		kf_fail(err, KF_E_INVALID, "list request too long");
		goto out;
	}
	if (kf_gcp_kms_call(k, "GET", kf_buf_str(&path), NULL, KF_GCP_RETRY,
			    &j, err) < 0)
		goto out;
	arr = json_object_get(j, collection);
	json_array_foreach(arr, i, it) {
		const char *name = jstr(it, "name");
		const char *id = NULL;

		if (strcmp(collection, "locations") == 0)
			id = jstr(it, "locationId");
		if (!id && name)
			id = last_comp(name);
		if (!id || !*id)
			continue;
		if (fn(ctx, id, it))
			break;
	}
	tok = jstr(j, "nextPageToken");
	if (next && tok && *tok && kf_buf_adds(next, tok) < 0) {
		kf_fail(err, KF_E_IO, "page token too long");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&path);
	return rc;
}

int kf_gcp_kms_get(struct kf_gcp_kms *k, const char *name, json_t **out,
		   struct kf_err *err)
{
	return kf_gcp_kms_call(k, "GET", name, NULL, KF_GCP_RETRY, out, err);
}

int kf_gcp_kms_create_ring(struct kf_gcp_kms *k, const char *parent,
			   const char *id, struct kf_err *err)
{
	struct kf_buf path, body;
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 16);
	if (!kf_gcp_valid_id(id)) {
		kf_fail(err, KF_E_INVALID,
			"invalid key ring id (allowed: [a-zA-Z0-9_-]{1,63})");
		goto out;
	}
	if (kf_buf_addf(&path, "%s/keyRings?keyRingId=%s", parent, id) < 0 ||
	    kf_buf_adds(&body, "{}") < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	rc = kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body,
			     KF_GCP_RETRY | KF_GCP_CREATE, NULL, err);
out:
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

static int rfc3339(long long add, char *out, size_t n)
{
	time_t t = time(NULL) + (time_t)add;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -1;
	return 0;
}

static int rotation_fields(json_t *o, long long secs)
{
	char per[32], next[40];

	if (snprintf(per, sizeof(per), "%llds", secs) >= (int)sizeof(per) ||
	    rfc3339(secs, next, sizeof(next)) < 0)
		return -1;
	if (json_object_set_new(o, "rotationPeriod", json_string(per)) ||
	    json_object_set_new(o, "nextRotationTime", json_string(next)))
		return -1;
	return 0;
}

/* Serialise a (non-secret) JSON object into a buffer for a request. */
static int json_body(json_t *o, struct kf_buf *b)
{
	char *s = json_dumps(o, JSON_COMPACT);
	int rc = -1;

	if (s && kf_buf_adds(b, s) == 0)
		rc = 0;
	json_str_free(s);
	return rc;
}

int kf_gcp_kms_create_key(struct kf_gcp_kms *k, const char *ring,
			  const char *id, long long rotation_s,
			  struct kf_err *err)
{
	struct kf_buf path, body;
	json_t *o = NULL;
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 4096);
	if (!kf_gcp_valid_id(id)) {
		kf_fail(err, KF_E_INVALID,
			"invalid crypto key id (allowed: [a-zA-Z0-9_-]{1,63})");
		goto out;
	}
	o = json_pack("{s:s}", "purpose", "ENCRYPT_DECRYPT");
	if (!o || (rotation_s > 0 && rotation_fields(o, rotation_s) < 0) ||
	    json_body(o, &body) < 0 ||
	    kf_buf_addf(&path, "%s/cryptoKeys?cryptoKeyId=%s", ring, id) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	rc = kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body,
			     KF_GCP_RETRY | KF_GCP_CREATE, NULL, err);
out:
	json_decref(o);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

int kf_gcp_kms_set_rotation(struct kf_gcp_kms *k, const char *key,
			    long long rotation_s, struct kf_err *err)
{
	struct kf_buf path, body;
	json_t *o = json_object();
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 4096);
	if (!o || rotation_fields(o, rotation_s) < 0 || json_body(o, &body) < 0 ||
	    kf_buf_addf(&path, "%s?updateMask=rotationPeriod,nextRotationTime",
			key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	rc = kf_gcp_kms_call(k, "PATCH", kf_buf_str(&path), &body,
			     KF_GCP_RETRY, NULL, err);
out:
	json_decref(o);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

int kf_gcp_kms_set_primary(struct kf_gcp_kms *k, const char *key,
			   const char *version_id, struct kf_err *err)
{
	struct kf_buf path, body;
	json_t *o = NULL;
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 256);
	if (!*version_id || strlen(version_id) > 20 ||
	    strspn(version_id, "0123456789") != strlen(version_id)) {
		kf_fail(err, KF_E_INVALID, "invalid crypto key version id");
		goto out;
	}
	o = json_pack("{s:s}", "cryptoKeyVersionId", version_id);
	if (!o || json_body(o, &body) < 0 ||
	    kf_buf_addf(&path, "%s:updatePrimaryVersion", key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	rc = kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body,
			     KF_GCP_RETRY, NULL, err);
out:
	json_decref(o);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

int kf_gcp_kms_rotate(struct kf_gcp_kms *k, const char *key, char *ver,
		      size_t verlen, struct kf_err *err)
{
	struct kf_buf path, body;
	json_t *j = NULL;
	const char *name;
	char id[32];
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 16);
	if (kf_buf_addf(&path, "%s/cryptoKeyVersions", key) < 0 ||
	    kf_buf_adds(&body, "{}") < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	/* Never retried: a repeat would make a second version. */
	if (kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body, 0, &j,
			    err) < 0)
		goto out;
	name = jstr(j, "name");
	if (!name || snprintf(id, sizeof(id), "%s", last_comp(name)) >=
			     (int)sizeof(id)) {
		kf_fail(err, KF_E_IO,
			"Cloud KMS cryptoKeyVersions.create: no version name");
		goto out;
	}
	if (kf_gcp_kms_set_primary(k, key, id, err) < 0)
		goto out;
	if (ver && snprintf(ver, verlen, "%s", name) >= (int)verlen)
		ver[0] = '\0';
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

/* Does name denote key or one of its versions? */
static int name_matches(const char *name, const char *key)
{
	size_t n = strlen(key);

	if (!name)
		return 0;
	if (strcmp(name, key) == 0)
		return 1;
	return strncmp(name, key, n) == 0 &&
	       strncmp(name + n, "/cryptoKeyVersions/", 19) == 0 &&
	       name[n + 19] != '\0';
}

static int check_encrypt(json_t *j, const char *key, struct kf_buf *ct,
			 struct kf_err *err)
{
	const char *name = jstr(j, "name");
	const char *b64 = jstr(j, "ciphertext");
	uint32_t want;

	if (!name_matches(name, key))
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: response names another key");
	if (!json_is_true(json_object_get(j, "verifiedPlaintextCrc32c")) ||
	    !json_is_true(json_object_get(
		    j, "verifiedAdditionalAuthenticatedDataCrc32c")))
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: request checksums not "
			       "verified by the server");
	if (!b64 || !*b64 || kf_base64_decode(b64, strlen(b64), ct) < 0 ||
	    ct->len == 0)
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: malformed ciphertext");
	if (juint32(j, "ciphertextCrc32c", &want) < 0 ||
	    !json_object_get(j, "ciphertextCrc32c") ||
	    kf_crc32c(0, ct->data, ct->len) != want)
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: response corrupted in "
			       "transit (ciphertextCrc32c mismatch)");
	return 0;
}

/*
 * The body of an encrypt or decrypt request as gcloud sends it: field
 * (base64) with its CRC32C and the CRC32C of the empty AAD, so the server
 * checks both (protocols.md C.5).
 */
static int crc_request(struct kf_buf *body, const char *field,
		       const unsigned char *data, size_t n)
{
	if (kf_buf_addf(body, "{\"%s\":\"", field) < 0 ||
	    kf_base64_encode(data, n, body) < 0 ||
	    kf_buf_addf(body,
			"\",\"%sCrc32c\":\"%u\","
			"\"additionalAuthenticatedDataCrc32c\":\"0\"}",
			field, (unsigned)kf_crc32c(0, data, n)) < 0)
		return -1;
	return 0;
}

int kf_gcp_kms_encrypt(struct kf_gcp_kms *k, const char *key,
		       const void *pt, size_t n, struct kf_buf *ct, char *used,
		       size_t usedlen, struct kf_err *err)
{
	struct kf_buf body, path, raw;
	json_t *j = NULL;
	int rc = -1;
	struct kf_err local = KF_ERR_INIT;

	if (!err)
		err = &local;
	kf_buf_init_sensitive(&body, 4 * KF_GCP_KMS_MAX_PLAINTEXT);
	kf_buf_init(&path, 4096);
	kf_buf_init(&raw, 4 * KF_GCP_KMS_MAX_PLAINTEXT);
	if (n == 0 || n > KF_GCP_KMS_MAX_PLAINTEXT) {
		kf_fail(err, n ? KF_E_TOOBIG : KF_E_INVALID,
			"Cloud KMS encrypt: plaintext must be 1..%d bytes",
			KF_GCP_KMS_MAX_PLAINTEXT);
		goto out;
	}
	if (crc_request(&body, "plaintext", pt, n) < 0 ||
	    kf_buf_addf(&path, "%s:encrypt", key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	for (int attempt = 0; attempt < INTEGRITY_ATTEMPTS; attempt++) {
		json_decref(j);
		j = NULL;
		kf_buf_reset(&raw);
		if (kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body,
				    KF_GCP_RETRY, &j, err) < 0)
			goto out;
		if (check_encrypt(j, key, &raw, err) == 0) {
			rc = 0;
			break;
		}
		kf_log(KF_LOG_WARN, "gcp: %s (attempt %d)", err->msg,
		       attempt + 1);
	}
	if (rc < 0)
		goto out;
	if (kf_buf_add(ct, raw.data, raw.len) < 0) {
		rc = kf_fail(err, KF_E_NOMEM, "ciphertext too large");
		goto out;
	}
	if (used && snprintf(used, usedlen, "%s", jstr(j, "name")) >=
			    (int)usedlen)
		used[0] = '\0';
out:
	json_decref(j);
	kf_buf_release(&body);
	kf_buf_release(&path);
	kf_buf_release(&raw);
	return rc;
}

/* Decode and verify a decrypt answer; on any failure nothing survives. */
static int check_decrypt(json_t *j, struct kf_secret **pt, struct kf_err *err)
{
	const char *b64 = jstr(j, "plaintext");
	struct kf_buf raw;
	uint32_t want;
	int rc = -1;

	kf_buf_init_sensitive(&raw, KF_GCP_KMS_MAX_PLAINTEXT + 16);
	if (json_object_get(j, "plaintext") && !b64) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: malformed plaintext");
		goto out;
	}
	/*
	 * KMS only encrypts 1..65536 bytes (an empty value never reaches it),
	 * so an answer without plaintext or checksum ("{}", an empty 200
	 * body) is damaged, not an empty secret.  Found by fuzz_kms_json.
	 */
	if (!b64 || !*b64 || !json_object_get(j, "plaintextCrc32c") ||
	    kf_base64_decode(b64, strlen(b64), &raw) < 0 || raw.len == 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: malformed plaintext");
		goto out;
	}
	if (juint32(j, "plaintextCrc32c", &want) < 0 ||
	    kf_crc32c(0, raw.data, raw.len) != want) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: response corrupted in transit "
			"(plaintextCrc32c mismatch)");
		goto out;
	}
	*pt = kf_secret_dup(raw.data, raw.len);
	if (!*pt) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&raw);
	return rc;
}

int kf_gcp_kms_decrypt(struct kf_gcp_kms *k, const char *key,
		       const void *ct, size_t n, struct kf_secret **pt,
		       struct kf_err *err)
{
	struct kf_buf body, path;
	json_t *j = NULL;
	int rc = -1;
	struct kf_err local = KF_ERR_INIT;

	if (!err)
		err = &local;
	*pt = NULL;
	kf_buf_init(&body, 4 * KF_GCP_KMS_MAX_CIPHERTEXT);
	kf_buf_init(&path, 4096);
	if (n == 0 || n > KF_GCP_KMS_MAX_CIPHERTEXT) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: ciphertext of %zu bytes is not "
			"valid", n);
		goto out;
	}
	if (crc_request(&body, "ciphertext", ct, n) < 0 ||
	    kf_buf_addf(&path, "%s:decrypt", key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	for (int attempt = 0; attempt < INTEGRITY_ATTEMPTS; attempt++) {
		json_decref(j);
		j = NULL;
		if (kf_gcp_kms_call(k, "POST", kf_buf_str(&path), &body,
				    KF_GCP_RETRY, &j, err) < 0) {
			if (err->code == KF_E_INVALID &&
			    (strstr(err->msg, "ciphertext is invalid") ||
			     strstr(err->msg, "Decryption failed")))
				err->code = KF_E_INTEGRITY;
			goto out;
		}
		if (check_decrypt(j, pt, err) == 0) {
			rc = 0;
			break;
		}
		kf_log(KF_LOG_WARN, "gcp: %s (attempt %d)", err->msg,
		       attempt + 1);
	}
out:
	json_decref(j);
	kf_buf_release(&body);
	kf_buf_release(&path);
	return rc;
}
