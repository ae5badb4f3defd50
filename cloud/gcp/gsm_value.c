/*
 * Secret Manager values: addVersion with its landed check, access with
 * its CRC32C check, the version list, delete, and a create whose value
 * fails deleting what it created.  Requests that must not be repeated
 * blindly (addVersion, delete) are sent once per attempt and retried
 * here, where an ambiguous failure is known.  Values live in sensitive
 * buffers and kf_secret only; no message or log line formats one.
 */
#include "gcp/gsm.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"

#include <stdio.h>
#include <string.h>

/* ---- one request, sent once per attempt */

struct once {
	struct kf_gsm *g;
	const char *what; /* "Secret Manager addVersion" */
	const char *method, *path;
	const struct kf_buf *body;
	json_t *j;     /* the answer of the attempt that succeeded */
	int ambiguous; /* an attempt may have been applied */
	/* addVersion only (val NULL otherwise) */
	const char *project, *id;
	const void *val;
	size_t n;
	long long start_ms; /* wall clock before the first attempt */
	long long number;   /* the version made */
};

/* The retry policy of one operation, from the client's knobs. */
static struct kf_retry_policy policy_of(const struct kf_gcp_kms *k)
{
	struct kf_retry_policy p = { 0 };

	p.attempts = k->max_attempts;
	p.base_ms = k->backoff_ms;
	p.cap_ms = k->backoff_ms * 32;
	p.throttle_base_ms = k->backoff_429_ms;
	p.throttle_cap_ms = k->backoff_429_ms * 16;
	return p;
}

/*
 * A failed attempt: 0 final, 1 worth another, 2 throttled; *amb set when
 * the server may have acted on it (no answer, or a 5xx).  The server
 * refusing a damaged request (its checksum did not match) acted on
 * nothing.
 */
static int failure_class(const struct kf_err *err, int *amb)
{
	int cls;

	*amb = 0;
	if (err->http_status == 0) {
		*amb = err->code == KF_E_UNAVAILABLE ||
		       err->code == KF_E_TIMEOUT;
		return *amb;
	}
	cls = kf_gcp_kms_retry_class(err->provider_code, err->http_status,
				     err->msg);
	if (!cls && err->code == KF_E_INVALID &&
	    strstr(err->msg, "hecksum mismatch"))
		return 1;
	*amb = cls && err->http_status >= 500;
	return cls;
}

static int verify_version(struct once *o, long long num, struct kf_err *err);
static int landed(struct once *o, struct kf_err *err);

/* A 200 to addVersion: the version's number, and whether the server
 * checked our CRC32C (else the stored bytes are read back). */
static enum kf_retry_verdict added(struct once *o, struct kf_err *err)
{
	struct kf_gsm_version v;
	json_t *j = o->j;
	int r;

	if (kf_gsm_parse_version(j, &v, err) < 0) {
		/* Made, but which?  As after no answer. */
		o->ambiguous = 1;
		r = landed(o, err);
	} else if (!json_is_true(
			   json_object_get(j,
					   "clientSpecifiedPayloadChecksum"))) {
		r = verify_version(o, v.number, err);
	} else {
		o->number = v.number;
		return KF_RETRY_OK;
	}
	if (r < 0)
		return KF_RETRY_FAIL;
	if (r > 0)
		return KF_RETRY_OK;
	kf_fail(err, KF_E_INTEGRITY,
		"%s: the stored value differs from the one sent", o->what);
	return KF_RETRY_AGAIN;
}

static enum kf_retry_verdict
once_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct once *o = ctx;
	struct kf_gcp_kms k = o->g->rest;
	struct kf_err first;
	int cls, amb, r;

	json_decref(o->j);
	o->j = NULL;
	if (at->timeout_ms)
		k.timeout_ms = at->timeout_ms;
	/* addVersion has no idempotency token: sent once per attempt. */
	if (kf_gcp_kms_call(&k, o->method, o->path, o->body,
			    o->val ? KF_GCP_FRESH : 0, &o->j, err) == 0)
		return o->val ? added(o, err) : KF_RETRY_OK;
	kf_gsm_relabel(err);
	cls = failure_class(err, &amb);
	o->ambiguous |= amb;
	if (!o->val && err->code == KF_E_NOTFOUND && o->ambiguous) {
		kf_err_clear(err); /* an unanswered delete did it */
		return KF_RETRY_OK;
	}
	if (!cls)
		return KF_RETRY_FAIL;
	if (o->val && amb) {
		first = *err;
		r = landed(o, err);
		if (r > 0)
			return KF_RETRY_OK;
		if (r < 0) {
			kf_log(KF_LOG_WARN,
			       "gcp: %s: whether the value landed is unknown: "
			       "%s",
			       o->what, err->msg);
			*err = first;
			return KF_RETRY_FAIL;
		}
		*err = first;
	}
	return cls == 2 ? KF_RETRY_THROTTLED : KF_RETRY_AGAIN;
}

static int run_once(struct once *o, struct kf_err *err)
{
	struct kf_retry_policy p = policy_of(&o->g->rest);
	int rc;

	o->start_ms = kf_gsm_now_ms();
	rc = kf_retry_run(&p, o->what, o->g->rest.timeout_ms, once_attempt, o,
			  err);
	json_decref(o->j);
	o->j = NULL;
	return rc;
}

/* ---- access */

struct accessed {
	struct kf_gsm *g;
	const char *path, *id;
	struct kf_secret **val;
	long long *number;
};

static enum kf_retry_verdict
access_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct accessed *a = ctx;
	json_t *j = NULL;
	enum kf_retry_verdict v = KF_RETRY_FAIL;

	if (kf_gcp_kms_call(&a->g->rest, "GET", a->path, NULL, KF_GCP_RETRY, &j,
			    err) < 0) {
		kf_gsm_relabel(err);
		goto out;
	}
	if (kf_gsm_parse_access(j, a->id, a->val, a->number, err) == 0) {
		v = KF_RETRY_OK;
		goto out;
	}
	if (err->code == KF_E_IO)
		err->code = KF_E_INTEGRITY; /* a damaged answer */
	if (err->code == KF_E_INTEGRITY) {
		kf_log(KF_LOG_WARN, "gcp: %s (attempt %u)", err->msg,
		       at->n + 1);
		v = KF_RETRY_AGAIN;
	}
out:
	json_decref(j);
	return v;
}

static int valid_version(const char *v)
{
	size_t n;

	if (!v)
		return 0;
	if (strcmp(v, "latest") == 0)
		return 1;
	n = strspn(v, "0123456789");
	return n && n <= 18 && v[n] == '\0' && v[0] != '0';
}

int kf_gsm_access(struct kf_gsm *g, const char *project, const char *id,
		  const char *version, struct kf_secret **val,
		  long long *number, struct kf_err *err)
{
	struct kf_retry_policy p = { .attempts = g->check_attempts };
	struct accessed a = { g, NULL, id, val, number };
	struct kf_buf path;
	int rc = -1;

	*val = NULL;
	kf_buf_init(&path, 4096);
	if (!valid_version(version)) {
		kf_fail(err, KF_E_INVALID,
			"invalid secret version (\"latest\" or a number)");
		goto out;
	}
	if (kf_gsm_path(&path, project, id, "/versions/", err) < 0 ||
	    kf_buf_addf(&path, "%s:access", version) < 0)
		goto out;
	a.path = kf_buf_str(&path);
	rc = kf_retry_run(&p, "Secret Manager access", 0, access_attempt, &a,
			  err);
out:
	kf_buf_release(&path);
	return rc;
}

/* ---- the version list */

int kf_gsm_list_versions(struct kf_gsm *g, const char *project, const char *id,
			 unsigned page_size, const char *page,
			 kf_gsm_version_fn fn, void *ctx, struct kf_buf *next,
			 struct kf_err *err)
{
	struct kf_buf path;
	struct kf_gsm_version v;
	json_t *j = NULL, *arr, *it;
	const char *tok;
	size_t i;
	int rc = -1;

	kf_buf_init(&path, 4096);
	if (next)
		kf_buf_reset(next);
	if (kf_gsm_path(&path, project, id, "/versions", err) < 0)
		goto out;
	if (kf_buf_addf(&path, "?pageSize=%u", page_size) < 0 ||
	    (page && *page &&
	     (kf_buf_adds(&path, "&pageToken=") < 0 ||
	      kf_buf_add_pct(&path, page, strlen(page), NULL) < 0))) {
		kf_fail(err, KF_E_INVALID, "list request too long");
		goto out;
	}
	if (kf_gcp_kms_call(&g->rest, "GET", kf_buf_str(&path), NULL,
			    KF_GCP_RETRY, &j, err) < 0) {
		kf_gsm_relabel(err);
		goto out;
	}
	arr = json_object_get(j, "versions");
	if (arr && !json_is_array(arr)) {
		kf_fail(err, KF_E_IO, "Secret Manager: malformed version list");
		goto out;
	}
	json_array_foreach(arr, i, it)
	{
		if (kf_gsm_parse_version(it, &v, err) < 0)
			goto out;
		if (fn(ctx, &v))
			break;
	}
	tok = kf_json_str(j, "nextPageToken");
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

/* ---- add, and whether an add landed */

/* 1 when version num holds our bytes, 0 when not, -1 (*err) unknown. */
static int verify_version(struct once *o, long long num, struct kf_err *err)
{
	struct kf_secret *got = NULL;
	char v[24];
	int same;

	(void)snprintf(v, sizeof(v), "%lld", num);
	if (kf_gsm_access(o->g, o->project, o->id, v, &got, NULL, err) < 0)
		return err->code == KF_E_STATE ? 0 : -1;
	same = got->len == o->n && kf_memeq(got->data, o->val, o->n);
	kf_secret_free(got);
	if (same)
		o->number = num;
	return same;
}

struct newest {
	long long since_ms, number;
};

static int pick_newest(void *ctx, const struct kf_gsm_version *v)
{
	struct newest *nw = ctx;

	if (v->state == KF_GSM_ENABLED && v->create_ms >= nw->since_ms &&
	    v->number > nw->number)
		nw->number = v->number;
	return 0;
}

/*
 * After an ambiguous addVersion: does the newest ENABLED version created
 * since the call began (less the slack) hold our bytes?  1 yes (its
 * number in o->number), 0 no, -1 (*err) the check failed.
 */
static int landed(struct once *o, struct kf_err *err)
{
	struct newest nw = { o->start_ms - KF_GSM_LANDED_SLACK_MS, 0 };
	int r;

	if (kf_gsm_list_versions(o->g, o->project, o->id, 16, NULL, pick_newest,
				 &nw, NULL, err) < 0)
		return -1;
	r = nw.number ? verify_version(o, nw.number, err) : 0;
	kf_log(KF_LOG_INFO, "gcp: %s after an ambiguous failure: %s", o->what,
	       r > 0  ? "it landed" :
	       r == 0 ? "it did not land" :
			"unknown");
	return r;
}

/* The value's limits, checked before any call. */
static int check_value(size_t n, struct kf_err *err)
{
	if (n == 0)
		return kf_fail(err, KF_E_INVALID,
			       "Secret Manager refuses an empty value");
	if (n > KF_GSM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "Secret Manager values are at most %d bytes",
			       KF_GSM_MAX_VALUE);
	return 0;
}

int kf_gsm_add(struct kf_gsm *g, const char *project, const char *id,
	       const void *val, size_t n, long long *number, struct kf_err *err)
{
	struct once o = { .g = g,
			  .what = "Secret Manager addVersion",
			  .method = "POST",
			  .project = project,
			  .id = id,
			  .val = val,
			  .n = n };
	struct kf_buf path, body;
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init_sensitive(&body, 4 * KF_GSM_MAX_VALUE / 3 + 128);
	if (check_value(n, err) < 0 ||
	    kf_gsm_path(&path, project, id, ":addVersion", err) < 0)
		goto out;
	if (kf_buf_adds(&body, "{\"payload\":{\"data\":\"") < 0 ||
	    kf_base64_encode(val, n, &body) < 0 ||
	    kf_buf_addf(&body, "\",\"dataCrc32c\":\"%u\"}}",
			(unsigned)kf_crc32c(0, val, n)) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	o.path = kf_buf_str(&path);
	o.body = &body;
	rc = run_once(&o, err);
	if (rc == 0 && number)
		*number = o.number;
out:
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

/* ---- delete, and create with a value */

int kf_gsm_delete(struct kf_gsm *g, const char *project, const char *id,
		  const char *etag, struct kf_err *err)
{
	struct once o = { .g = g,
			  .what = "Secret Manager delete",
			  .method = "DELETE" };
	struct kf_buf path;
	int rc = -1;

	kf_buf_init(&path, 4096);
	if (kf_gsm_path(&path, project, id, NULL, err) < 0)
		goto out;
	if (etag && *etag &&
	    (kf_buf_adds(&path, "?etag=") < 0 ||
	     kf_buf_add_pct(&path, etag, strlen(etag), NULL) < 0)) {
		kf_fail(err, KF_E_INVALID, "etag too long");
		goto out;
	}
	o.path = kf_buf_str(&path);
	rc = run_once(&o, err);
out:
	kf_buf_release(&path);
	return rc;
}

int kf_gsm_create_with_value(struct kf_gsm *g, const char *project,
			     const char *id, const char *kms_key,
			     const void *val, size_t n, long long *number,
			     struct kf_err *err)
{
	struct kf_err de = KF_ERR_INIT;
	char etag[96], m[sizeof(err->msg)];

	if (check_value(n, err) < 0 ||
	    kf_gsm_create(g, project, id, kms_key, etag, sizeof(etag), err) < 0)
		return -1;
	if (kf_gsm_add(g, project, id, val, n, number, err) == 0)
		return 0;
	/* The value failed: no empty secret may stay behind. */
	if (kf_gsm_delete(g, project, id, etag, &de) == 0 ||
	    de.code == KF_E_NOTFOUND)
		return -1;
	kf_log(KF_LOG_WARN,
	       "gcp: secret %s was created but its value failed, and "
	       "deleting it failed too: %s",
	       id, de.msg);
	(void)snprintf(m, sizeof(m), "%.200s; the new empty secret remains",
		       err->msg);
	memcpy(err->msg, m, sizeof(m));
	return -1;
}
