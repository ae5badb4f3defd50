/*
 * Cloud KMS resources: ids and durations, listing, getting and creating
 * key rings and crypto keys, rotation schedules, primary versions and
 * manual rotation.  Every request goes through kf_gcp_kms_call; nothing
 * here sees plaintext, and a request that would make a second resource if
 * repeated (version creation) is never retried.
 */
#include "gcp/kms.h"
#include "core/json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* The last '/' component of s. */
static const char *last_comp(const char *s)
{
	const char *p = strrchr(s, '/');

	return p ? p + 1 : s;
}

int kf_gcp_kms_list(struct kf_gcp_kms *k, const char *parent,
		    const char *collection, const char *page, kf_gcp_item_fn fn,
		    void *ctx, struct kf_buf *next, struct kf_err *err)
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
			strcmp(collection, "locations") == 0 ? 100 : 1000) <
		    0 ||
	    (page && *page &&
	     (kf_buf_adds(&path, "&pageToken=") < 0 ||
	      kf_buf_add_pct(&path, page, strlen(page), NULL) < 0))) {
		kf_fail(err, KF_E_INVALID, "list request too long");
		goto out;
	}
	if (kf_gcp_kms_call(k, "GET", kf_buf_str(&path), NULL, KF_GCP_RETRY, &j,
			    err) < 0)
		goto out;
	arr = json_object_get(j, collection);
	json_array_foreach(arr, i, it)
	{
		const char *name = kf_json_str(it, "name");
		const char *id = NULL;

		if (strcmp(collection, "locations") == 0)
			id = kf_json_str(it, "locationId");
		if (!id && name)
			id = last_comp(name);
		if (!id || !*id)
			continue;
		if (fn(ctx, id, it))
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

int kf_gcp_kms_get(struct kf_gcp_kms *k, const char *name, json_t **out,
		   struct kf_err *err)
{
	return kf_gcp_kms_call(k, "GET", name, NULL, KF_GCP_RETRY, out, err);
}

/*
 * METHOD on the path fmt formats, with o (NULL: an empty object) as the
 * JSON body: every request below but list and get.  As kf_gcp_kms_call;
 * KF_E_INVALID when the path does not fit, KF_E_NOMEM when the body
 * cannot be built.
 */
static int call_json(struct kf_gcp_kms *k, const char *method, int flags,
		     json_t *o, json_t **out, struct kf_err *err,
		     const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static int call_json(struct kf_gcp_kms *k, const char *method, int flags,
		     json_t *o, json_t **out, struct kf_err *err,
		     const char *fmt, ...)
{
	struct kf_buf path, body;
	char *s = NULL;
	va_list ap;
	int rc = -1, w;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 4096);
	va_start(ap, fmt);
	w = kf_buf_vaddf(&path, fmt, ap);
	va_end(ap);
	if (w < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if ((o && !s) || kf_buf_adds(&body, s ? s : "{}") < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	rc = kf_gcp_kms_call(k, method, kf_buf_str(&path), &body, flags, out,
			     err);
out:
	kf_json_free(s);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}

int kf_gcp_kms_create_ring(struct kf_gcp_kms *k, const char *parent,
			   const char *id, struct kf_err *err)
{
	if (!kf_gcp_valid_id(id))
		return kf_fail(err, KF_E_INVALID,
			       "invalid key ring id "
			       "(allowed: [a-zA-Z0-9_-]{1,63})");
	return call_json(k, "POST", KF_GCP_RETRY | KF_GCP_CREATE, NULL, NULL,
			 err, "%s/keyRings?keyRingId=%s", parent, id);
}

static int rfc3339(long long add, char *out, size_t n)
{
	time_t t = time(NULL) + (time_t)add;
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
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

int kf_gcp_kms_create_key(struct kf_gcp_kms *k, const char *ring,
			  const char *id, long long rotation_s,
			  struct kf_err *err)
{
	json_t *o;
	int rc = -1;

	if (!kf_gcp_valid_id(id))
		return kf_fail(err, KF_E_INVALID,
			       "invalid crypto key id "
			       "(allowed: [a-zA-Z0-9_-]{1,63})");
	o = json_pack("{s:s}", "purpose", "ENCRYPT_DECRYPT");
	if (!o || (rotation_s > 0 && rotation_fields(o, rotation_s) < 0))
		kf_fail(err, KF_E_NOMEM, "cannot build request");
	else
		rc = call_json(k, "POST", KF_GCP_RETRY | KF_GCP_CREATE, o, NULL,
			       err, "%s/cryptoKeys?cryptoKeyId=%s", ring, id);
	json_decref(o);
	return rc;
}

int kf_gcp_kms_set_rotation(struct kf_gcp_kms *k, const char *key,
			    long long rotation_s, struct kf_err *err)
{
	json_t *o = json_object();
	int rc = -1;

	if (!o || rotation_fields(o, rotation_s) < 0)
		kf_fail(err, KF_E_NOMEM, "cannot build request");
	else
		rc = call_json(k, "PATCH", KF_GCP_RETRY, o, NULL, err,
			       "%s?updateMask=rotationPeriod,nextRotationTime",
			       key);
	json_decref(o);
	return rc;
}

int kf_gcp_kms_set_primary(struct kf_gcp_kms *k, const char *key,
			   const char *version_id, struct kf_err *err)
{
	json_t *o;
	int rc = -1;

	if (!*version_id || strlen(version_id) > 20 ||
	    strspn(version_id, "0123456789") != strlen(version_id))
		return kf_fail(err, KF_E_INVALID,
			       "invalid crypto key version id");
	o = json_pack("{s:s}", "cryptoKeyVersionId", version_id);
	if (!o)
		kf_fail(err, KF_E_NOMEM, "cannot build request");
	else
		rc = call_json(k, "POST", KF_GCP_RETRY, o, NULL, err,
			       "%s:updatePrimaryVersion", key);
	json_decref(o);
	return rc;
}

int kf_gcp_kms_rotate(struct kf_gcp_kms *k, const char *key, char *ver,
		      size_t verlen, struct kf_err *err)
{
	json_t *j = NULL;
	const char *name;
	char id[32];
	int rc = -1;

	/* Never retried: a repeat would make a second version. */
	if (call_json(k, "POST", 0, NULL, &j, err, "%s/cryptoKeyVersions",
		      key) < 0)
		goto out;
	name = kf_json_str(j, "name");
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
	return rc;
}
