/*
 * The Secret Manager v1 client's set-up, the parsers of its answers and
 * the secret methods (list, get, create, delete).  Requests go through
 * kf_gcp_kms_call; nothing here sees a value (gsm_value.c does), and
 * answers are trusted only after parsing, names by their last components.
 */
#include "gcp/gsm.h"
#include "core/crypto.h"
#include "core/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int kf_gsm_init(struct kf_gsm *g, const char *endpoint_opt,
		struct kf_gcp_auth *auth, unsigned timeout_ms,
		struct kf_err *err)
{
	const char *env =
		getenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER");
	const char *ep = KF_GSM_ENDPOINT;

	if (endpoint_opt && *endpoint_opt)
		ep = endpoint_opt;
	else if (env && *env)
		ep = env;
	g->check_attempts = 3;
	if (kf_gcp_kms_init(&g->rest, ep, auth, timeout_ms, err) < 0) {
		kf_gsm_relabel(err);
		return -1;
	}
	return 0;
}

int kf_gsm_valid_id(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-')))
			return 0;
	}
	return n >= 1 && n <= KF_GSM_MAX_ID;
}

/* A project id or number as it may sit in a path (domain-scoped ids
 * carry '.' and ':'). */
static int valid_project(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!(isascii(c) && (islower(c) || isdigit(c) || c == '-' ||
				     c == '.' || c == ':')))
			return 0;
	}
	return n >= 1 && n <= 63;
}

int kf_gsm_path(struct kf_buf *out, const char *project, const char *id,
		const char *suffix, struct kf_err *err)
{
	if (!valid_project(project))
		return kf_fail(err, KF_E_INVALID, "invalid project id");
	if (!kf_gsm_valid_id(id))
		return kf_fail(err, KF_E_INVALID,
			       "invalid secret id (allowed: "
			       "[A-Za-z0-9_-]{1,255})");
	if (kf_buf_addf(out, "projects/%s/secrets/%s%s", project, id,
			suffix ? suffix : "") < 0)
		return kf_fail(err, KF_E_INVALID, "request path too long");
	return 0;
}

void kf_gsm_relabel(struct kf_err *err)
{
	static const char from[] = "Cloud KMS", to[] = "Secret Manager";
	char out[sizeof(err->msg)];
	const char *p, *at;
	size_t o = 0;

	if (!err || !strstr(err->msg, from))
		return;
	for (p = err->msg; *p && o + 1 < sizeof(out);
	     p = at + sizeof(from) - 1) {
		size_t n;

		at = strstr(p, from);
		n = at ? (size_t)(at - p) : strlen(p);
		if (n > sizeof(out) - 1 - o)
			n = sizeof(out) - 1 - o;
		memcpy(out + o, p, n);
		o += n;
		if (!at)
			break;
		n = sizeof(to) - 1;
		if (n > sizeof(out) - 1 - o)
			n = sizeof(out) - 1 - o;
		memcpy(out + o, to, n);
		o += n;
	}
	out[o] = '\0';
	memcpy(err->msg, out, o + 1);
}

/* ---- the wall clock of the landed check */

static long long sys_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long (*wall_now)(void) = sys_now_ms;

void kf_gsm_set_clock(long long (*now_ms)(void))
{
	wall_now = now_ms ? now_ms : sys_now_ms;
}

long long kf_gsm_now_ms(void)
{
	return wall_now();
}

/* ---- parsers */

/* n decimal digits at *p into *v; advances *p.  -1 when not digits. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

/* The time zone of an RFC 3339 time at p, as seconds east of UTC. */
static int zone(const char *p, long *off)
{
	int h, m, sign;

	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
		*off = 0;
		return 0;
	}
	if (p[0] != '+' && p[0] != '-')
		return -1;
	sign = p[0] == '-' ? -1 : 1;
	p++;
	if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 ||
	    *p || h > 23 || m > 59)
		return -1;
	*off = (h * 3600L + m * 60L) * sign;
	return 0;
}

long long kf_gsm_parse_time(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, ms = 0, scale = 100;
	const char *p = s;
	long off;
	time_t t;

	if (!s || digits(&p, 4, &y) < 0 || *p++ != '-' ||
	    digits(&p, 2, &mo) < 0 || *p++ != '-' || digits(&p, 2, &d) < 0 ||
	    (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &h) < 0 ||
	    *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' ||
	    digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -1;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	if (zone(p, &off) < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 && y != 1969)
		return -1;
	return ((long long)t - off) * 1000 + ms;
}

/* The component after "/key/" in name (up to the next '/'), or NULL. */
static const char *component(const char *name, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	const char *p = name, *at = NULL;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == name || p[-1] == '/') && p[kl] == '/')
			at = p + kl + 1;
		p += kl;
	}
	if (!at)
		return NULL;
	*len = strcspn(at, "/");
	return *len ? at : NULL;
}

/* Copy a component into out; -1 when absent or too long. */
static int copy_comp(const char *name, const char *key, char *out, size_t n)
{
	size_t len;
	const char *c = name ? component(name, key, &len) : NULL;

	if (!c || len >= n)
		return -1;
	memcpy(out, c, len);
	out[len] = '\0';
	return 0;
}

/* A time field as epoch ms: -1 when absent, -2 when malformed. */
static long long time_field(const json_t *j, const char *key)
{
	const char *s = kf_json_str(j, key);
	long long t;

	if (!json_object_get(j, key))
		return -1;
	t = s ? kf_gsm_parse_time(s) : -1;
	return t < 0 ? -2 : t;
}

static int etag_field(const json_t *j, char *out, size_t n)
{
	const char *e = kf_json_str(j, "etag");

	out[0] = '\0';
	if (!json_object_get(j, "etag"))
		return 0;
	if (!e || snprintf(out, n, "%s", e) >= (int)n) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* The CMEK key of a customerManagedEncryption holder (may be NULL). */
static int cmek(const json_t *holder, char *out, size_t n)
{
	const json_t *c = json_object_get(holder, "customerManagedEncryption");
	const char *k = kf_json_str(c, "kmsKeyName");

	if (!c)
		return 0;
	if (!k || snprintf(out, n, "%s", k) >= (int)n)
		return -1;
	return 0;
}

static int replication(const json_t *j, struct kf_gsm_secret *s)
{
	const json_t *rep = json_object_get(j, "replication");
	const json_t *a = json_object_get(rep, "automatic");
	const json_t *u = json_object_get(rep, "userManaged");
	const json_t *r;
	size_t i;

	if (!rep)
		return 0;
	if (!json_is_object(rep) || (a && !json_is_object(a)) ||
	    (u && !json_is_object(u)))
		return -1;
	if (a)
		return cmek(a, s->kms_key, sizeof(s->kms_key));
	if (!u)
		return 0;
	s->user_managed = 1;
	json_array_foreach(json_object_get(u, "replicas"), i, r)
	{
		if (!s->kms_key[0] &&
		    cmek(r, s->kms_key, sizeof(s->kms_key)) < 0)
			return -1;
	}
	return 0;
}

/* An object field as a new reference; -1 when present and not one. */
static int object_field(const json_t *j, const char *key, json_t **out)
{
	json_t *o = json_object_get(j, key);

	*out = NULL;
	if (!o)
		return 0;
	if (!json_is_object(o))
		return -1;
	*out = json_incref(o);
	return 0;
}

void kf_gsm_secret_release(struct kf_gsm_secret *s)
{
	if (!s)
		return;
	json_decref(s->labels);
	json_decref(s->annotations);
	s->labels = s->annotations = NULL;
}

int kf_gsm_parse_secret(const json_t *j, struct kf_gsm_secret *s,
			struct kf_err *err)
{
	const char *name = kf_json_str(j, "name");

	memset(s, 0, sizeof(*s));
	if (!json_is_object(j) ||
	    copy_comp(name, "secrets", s->id, sizeof(s->id)) < 0 ||
	    !kf_gsm_valid_id(s->id) ||
	    copy_comp(name, "projects", s->project, sizeof(s->project)) < 0 ||
	    strncmp(name, "projects/", 9) != 0)
		goto bad;
	s->create_ms = time_field(j, "createTime");
	if (s->create_ms == -2 || etag_field(j, s->etag, sizeof(s->etag)) < 0 ||
	    replication(j, s) < 0 ||
	    object_field(j, "labels", &s->labels) < 0 ||
	    object_field(j, "annotations", &s->annotations) < 0)
		goto bad;
	return 0;
bad:
	kf_gsm_secret_release(s);
	memset(s, 0, sizeof(*s));
	return kf_fail(err, KF_E_IO, "Secret Manager: malformed secret");
}

/* The version number at the end of name (.../versions/N); -1 if none. */
static long long version_number(const char *name)
{
	const char *p;
	long long v = 0;
	size_t len;

	p = name ? component(name, "versions", &len) : NULL;
	if (!p || p[len] != '\0' || len > 18 || *p == '0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int kf_gsm_parse_version(const json_t *j, struct kf_gsm_version *v,
			 struct kf_err *err)
{
	static const struct {
		const char *name;
		enum kf_gsm_state state;
	} states[] = { { "ENABLED", KF_GSM_ENABLED },
		       { "DISABLED", KF_GSM_DISABLED },
		       { "DESTROYED", KF_GSM_DESTROYED } };
	const char *st = kf_json_str(j, "state");

	memset(v, 0, sizeof(*v));
	v->number = version_number(kf_json_str(j, "name"));
	for (size_t i = 0; st && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(st, states[i].name) == 0)
			v->state = states[i].state;
	v->create_ms = time_field(j, "createTime");
	v->destroy_ms = time_field(j, "destroyTime");
	if (v->number < 1 || v->state == KF_GSM_STATE_UNKNOWN ||
	    v->create_ms == -2 || v->destroy_ms == -2 ||
	    etag_field(j, v->etag, sizeof(v->etag)) < 0) {
		memset(v, 0, sizeof(*v));
		return kf_fail(err, KF_E_IO,
			       "Secret Manager: malformed version");
	}
	return 0;
}

/* The secret id and version number an access answer names. */
static int access_name(const char *name, char *id, size_t idlen, long long *num)
{
	*num = version_number(name);
	if (*num < 1 || copy_comp(name, "secrets", id, idlen) < 0)
		return -1;
	return 0;
}

int kf_gsm_parse_access(const json_t *j, const char *id, struct kf_secret **val,
			long long *number, struct kf_err *err)
{
	const json_t *pl = json_object_get(j, "payload");
	const char *b64 = kf_json_str(pl, "data");
	char got[KF_GSM_MAX_ID + 1], num[24];
	struct kf_buf raw;
	long long n;
	uint32_t want;
	int rc = -1;

	*val = NULL;
	kf_buf_init_sensitive(&raw, KF_GSM_MAX_VALUE + 16);
	if (!json_is_object(pl) || !json_object_get(pl, "dataCrc32c") ||
	    kf_json_u32(pl, "dataCrc32c", &want) < 0 ||
	    (json_object_get(pl, "data") && !b64) ||
	    (b64 && kf_base64_decode(b64, strlen(b64), &raw) < 0)) {
		kf_fail(err, KF_E_IO,
			"Secret Manager access: malformed answer");
		goto out;
	}
	if (access_name(kf_json_str(j, "name"), got, sizeof(got), &n) < 0 ||
	    strcmp(got, id) != 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"Secret Manager access: the answer names another "
			"secret version");
		goto out;
	}
	if (kf_crc32c(0, raw.data, raw.len) != want) {
		kf_fail(err, KF_E_INTEGRITY,
			"Secret Manager access: response corrupted in transit "
			"(dataCrc32c mismatch)");
		goto out;
	}
	*val = kf_secret_dup(raw.len ? raw.data : "", raw.len);
	if (!*val) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	(void)snprintf(num, sizeof(num), "%lld", n);
	kf_secret_set_version(*val, num);
	if (number)
		*number = n;
	rc = 0;
out:
	kf_buf_release(&raw);
	return rc;
}

/* ---- secrets */

int kf_gsm_list_secrets(struct kf_gsm *g, const char *project,
			unsigned page_size, const char *page,
			kf_gsm_secret_fn fn, void *ctx, struct kf_buf *next,
			struct kf_err *err)
{
	struct kf_buf path;
	struct kf_gsm_secret s;
	json_t *j = NULL, *it;
	const char *tok;
	size_t i;
	int rc = -1;

	kf_buf_init(&path, 4096);
	if (next)
		kf_buf_reset(next);
	if (!valid_project(project)) {
		kf_fail(err, KF_E_INVALID, "invalid project id");
		goto out;
	}
	if (kf_buf_addf(&path, "projects/%s/secrets?pageSize=%u", project,
			page_size) < 0 ||
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
	it = json_object_get(j, "secrets");
	if (it && !json_is_array(it)) {
		kf_fail(err, KF_E_IO, "Secret Manager: malformed secret list");
		goto out;
	}
	json_array_foreach(json_object_get(j, "secrets"), i, it)
	{
		int stop;

		if (kf_gsm_parse_secret(it, &s, err) < 0)
			goto out;
		stop = fn(ctx, &s);
		kf_gsm_secret_release(&s);
		if (stop)
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

int kf_gsm_get(struct kf_gsm *g, const char *project, const char *id,
	       struct kf_gsm_secret *s, struct kf_err *err)
{
	struct kf_buf path;
	json_t *j = NULL;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	kf_buf_init(&path, 4096);
	if (kf_gsm_path(&path, project, id, NULL, err) < 0)
		goto out;
	if (kf_gcp_kms_call(&g->rest, "GET", kf_buf_str(&path), NULL,
			    KF_GCP_RETRY, &j, err) < 0) {
		kf_gsm_relabel(err);
		goto out;
	}
	rc = kf_gsm_parse_secret(j, s, err);
out:
	json_decref(j);
	kf_buf_release(&path);
	return rc;
}

/* The body of secrets.create: automatic replication, CMEK when given. */
static json_t *create_body(const char *kms_key)
{
	json_t *a = json_object(), *o;

	if (a && kms_key && *kms_key &&
	    json_object_set_new(a, "customerManagedEncryption",
				json_pack("{s:s}", "kmsKeyName", kms_key)) <
		    0) {
		json_decref(a);
		return NULL;
	}
	o = a ? json_pack("{s:{s:o}}", "replication", "automatic", a) : NULL;
	return o;
}

/* The created secret's etag, from the answer or (after a create that an
 * unanswered attempt made) a get. */
static void created_etag(struct kf_gsm *g, const char *project, const char *id,
			 json_t *j, char *etag, size_t n)
{
	struct kf_gsm_secret s;
	struct kf_err e = KF_ERR_INIT;

	etag[0] = '\0';
	if (j) {
		(void)etag_field(j, etag, n);
		return;
	}
	if (kf_gsm_get(g, project, id, &s, &e) == 0)
		(void)snprintf(etag, n, "%s", s.etag);
	kf_gsm_secret_release(&s);
}

int kf_gsm_create(struct kf_gsm *g, const char *project, const char *id,
		  const char *kms_key, char *etag, size_t etaglen,
		  struct kf_err *err)
{
	struct kf_buf path, body;
	json_t *o = NULL, *j = NULL;
	char *s = NULL;
	int rc = -1;

	kf_buf_init(&path, 4096);
	kf_buf_init(&body, 4096);
	if (etag && etaglen)
		etag[0] = '\0';
	/* Project and id are checked before any call. */
	if (kf_gsm_path(&path, project, id, NULL, err) < 0)
		goto out;
	kf_buf_reset(&path);
	o = create_body(kms_key);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!s || kf_buf_adds(&body, s) < 0 ||
	    kf_buf_addf(&path, "projects/%s/secrets?secretId=%s", project, id) <
		    0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	if (kf_gcp_kms_call(&g->rest, "POST", kf_buf_str(&path), &body,
			    KF_GCP_RETRY | KF_GCP_CREATE, &j, err) < 0) {
		kf_gsm_relabel(err);
		goto out;
	}
	if (etag && etaglen)
		created_etag(g, project, id, j, etag, etaglen);
	rc = 0;
out:
	kf_json_free(s);
	json_decref(o);
	json_decref(j);
	kf_buf_release(&path);
	kf_buf_release(&body);
	return rc;
}
