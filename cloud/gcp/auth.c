/*
 * Google credentials and access tokens.  Key files are read into sensitive
 * buffers, private keys, client secrets, refresh tokens and access tokens
 * live only in kf_secret memory; logs and error messages name the source
 * (file path, host), never a credential.
 */
#include "gcp/auth.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/retry.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX (1u << 20)
#define TOKEN_MAX 8192
#define MD_DEFAULT_HOST "169.254.169.254"

struct kf_gcp_auth {
	enum kf_gcp_cred_kind kind;
	char source[600];
	char token_uri[512];
	char client_email[256];
	char key_id[128];
	char client_id[256];
	char project_id[128];		/* from the key file, or "" */
	char quota_project[128];
	char md_host[256];
	struct kf_secret *private_key;	/* PEM, NUL-terminated */
	struct kf_secret *client_secret;
	struct kf_secret *refresh_token;
	unsigned timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kf_secret *hdr;		/* protected by mu */
	time_t expiry;			/* protected by mu; 0 = invalid */
	uint64_t gen;			/* protected by mu */
	uint64_t seq;			/* protected by mu; refreshes done */
	int refreshing;			/* protected by mu */
	struct kf_err last_err;		/* protected by mu */
};

static time_t (*clock_fn)(time_t *) = time;
static unsigned backoff_base_ms = 1000;

void kf_gcp_auth_set_clock(time_t (*now)(time_t *))
{
	clock_fn = now ? now : time;
}

void kf_gcp_auth_set_backoff_ms(unsigned base_ms)
{
	backoff_base_ms = base_ms;
}

static time_t now_s(void)
{
	return clock_fn(NULL);
}

/* Copy src (NULL = "") into dst; -1 (dst empty) when it does not fit. */
static int copy_str(char *dst, size_t n, const char *src)
{
	size_t len = src ? strlen(src) : 0;

	if (len >= n) {
		dst[0] = '\0';
		return -1;
	}
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* Read a small file into a sensitive buffer (it may hold a private key). */
static int read_file(const char *path, struct kf_buf *out, struct kf_err *err)
{
	char chunk[4096];
	int fd = -1, rc = -1;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		kf_fail(err, errno == ENOENT ? KF_E_NOTFOUND : KF_E_INVALID,
			"cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kf_fail(err, KF_E_INVALID, "cannot read %s: %s", path,
				strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (kf_buf_add(out, chunk, (size_t)n) < 0) {
			kf_fail(err, KF_E_INVALID, "%s is too large", path);
			goto out;
		}
	}
	rc = 0;
out:
	explicit_bzero(chunk, sizeof(chunk));
	if (fd >= 0)
		close(fd);
	return rc;
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

static struct kf_secret *secret_str(const char *s)
{
	size_t n = strlen(s);
	struct kf_secret *x = kf_secret_new(n + 1);

	if (!x)
		return NULL;
	memcpy(x->data, s, n);
	x->data[n] = '\0';
	x->len = n;
	return x;
}

/* application/x-www-form-urlencoded value. */
static int form_add(struct kf_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			if (kf_buf_add(b, s, 1) < 0)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (kf_buf_add(b, e, 3) < 0)
			return -1;
	}
	return 0;
}

static int load_key_file(struct kf_gcp_auth *a, const char *path,
			 const char *why, struct kf_err *err)
{
	struct kf_buf raw;
	json_t *j = NULL;
	json_error_t jerr;
	const char *type, *s;
	int rc = -1;

	kf_buf_init_sensitive(&raw, KEYFILE_MAX);
	if (read_file(path, &raw, err) < 0)
		goto out;
	j = json_loadb(kf_buf_str(&raw), raw.len, 0, &jerr);
	if (!json_is_object(j)) {
		/* jerr.text may quote file content: do not pass it on. */
		kf_fail(err, KF_E_INVALID,
			"%s (%s) is not a JSON credentials file", path, why);
		goto out;
	}
	type = jstr(j, "type");
	if (!type) {
		kf_fail(err, KF_E_INVALID, "%s (%s) has no \"type\"", path, why);
		goto out;
	}
	s = jstr(j, "quota_project_id");
	if (s && copy_str(a->quota_project, sizeof(a->quota_project), s) < 0)
		a->quota_project[0] = '\0';
	s = jstr(j, "token_uri");
	if (copy_str(a->token_uri, sizeof(a->token_uri),
		     s && *s ? s : KF_GCP_TOKEN_URI) < 0) {
		kf_fail(err, KF_E_INVALID, "%s: token_uri too long", path);
		goto out;
	}
	if (strcmp(type, "service_account") == 0) {
		const char *email = jstr(j, "client_email");
		const char *pem = jstr(j, "private_key");

		if (!email || !*email || !pem || !*pem) {
			kf_fail(err, KF_E_INVALID,
				"%s: service account key needs client_email "
				"and private_key", path);
			goto out;
		}
		if (copy_str(a->client_email, sizeof(a->client_email), email) ||
		    copy_str(a->key_id, sizeof(a->key_id),
			     jstr(j, "private_key_id")) ||
		    copy_str(a->project_id, sizeof(a->project_id),
			     jstr(j, "project_id"))) {
			kf_fail(err, KF_E_INVALID, "%s: field too long", path);
			goto out;
		}
		a->private_key = secret_str(pem);
		if (!a->private_key) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		a->kind = KF_GCP_CRED_SERVICE_ACCOUNT;
		snprintf(a->source, sizeof(a->source),
			 "service account key %s (%s)", path, why);
	} else if (strcmp(type, "authorized_user") == 0) {
		const char *cid = jstr(j, "client_id");
		const char *cs = jstr(j, "client_secret");
		const char *rt = jstr(j, "refresh_token");

		if (!cid || !cs || !rt || !*rt) {
			kf_fail(err, KF_E_INVALID,
				"%s: authorized_user needs client_id, "
				"client_secret and refresh_token", path);
			goto out;
		}
		if (copy_str(a->client_id, sizeof(a->client_id), cid) < 0) {
			kf_fail(err, KF_E_INVALID, "%s: client_id too long",
				path);
			goto out;
		}
		a->client_secret = secret_str(cs);
		a->refresh_token = secret_str(rt);
		if (!a->client_secret || !a->refresh_token) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		a->kind = KF_GCP_CRED_AUTHORIZED_USER;
		snprintf(a->source, sizeof(a->source), "authorized_user %s (%s)",
			 path, why);
	} else {
		kf_fail(err, KF_E_NOTSUP,
			"%s: credential type \"%.40s\" is not supported "
			"(service_account, authorized_user)", path, type);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&raw);
	return rc;
}

int kf_gcp_jwt_assertion(const char *pem, size_t pemlen, const char *kid,
			 const char *email, const char *aud, const char *scope,
			 int64_t now, struct kf_buf *out, struct kf_err *err)
{
	json_t *hdr = NULL, *claims = NULL;
	char *hs = NULL, *cs = NULL;
	struct kf_buf input, sig;
	size_t start = out->len;
	int rc = -1;

	kf_buf_init(&input, 64 * 1024);
	kf_buf_init(&sig, 4096);
	hdr = json_pack("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", email, "scope",
			   scope, "aud", aud, "iat", (json_int_t)now, "exp",
			   (json_int_t)(now + 3600));
	if (!hdr || !claims) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	if (kid && *kid && json_object_set_new(hdr, "kid", json_string(kid))) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	hs = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cs = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!hs || !cs || kf_base64url_encode(hs, strlen(hs), &input) < 0 ||
	    kf_buf_add(&input, ".", 1) < 0 ||
	    kf_base64url_encode(cs, strlen(cs), &input) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	if (kf_rsa_sha256_sign(pem, pemlen, input.data, input.len, &sig,
			       err) < 0)
		goto out;
	if (kf_buf_add(out, input.data, input.len) < 0 ||
	    kf_buf_add(out, ".", 1) < 0 ||
	    kf_base64url_encode(sig.data, sig.len, out) < 0) {
		kf_fail(err, KF_E_NOMEM, "JWT too large");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	json_str_free(hs);
	json_str_free(cs);
	json_decref(hdr);
	json_decref(claims);
	kf_buf_release(&input);
	kf_buf_release(&sig);
	return rc;
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
	tok = j ? jstr(j, "access_token") : NULL;
	if (!tok || !*tok) {
		kf_fail(err, KF_E_IO, "%s: response holds no access_token", what);
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
	*expiry = now_s() + (time_t)secs;
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
	const char *e = j ? jstr(j, "error") : NULL;
	const char *d = j ? jstr(j, "error_description") : NULL;
	enum kf_code code = KF_E_DENIED;

	if (!e && j && json_is_object(json_object_get(j, "error")))
		e = jstr(json_object_get(j, "error"), "status");
	if (r->status == 404 && !e)
		code = KF_E_NOTFOUND;
	kf_fail_provider(err, code, (int)r->status, e ? e : "",
			 "%s refused the credentials (HTTP %ld%s%.32s%s%.80s)",
			 what, r->status, e ? " " : "", e ? e : "",
			 d ? ": " : "", d ? d : "");
	json_decref(j);
	return -1;
}

static int fetch_token(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       time_t *expiry, struct kf_err *err_out)
{
	struct kf_err e = KF_ERR_INIT, *err = &e;
	struct kf_buf body, url;
	struct kf_http_resp resp;
	struct kf_http_req req = { 0 };
	const char *form_hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", NULL
	};
	const char *md_hdrs[] = { "Metadata-Flavor: Google", NULL };
	char what[600], flavor[64];
	unsigned attempt;
	int rc = -1;

	kf_buf_init_sensitive(&body, 64 * 1024);
	kf_buf_init(&url, 1024);
	kf_http_resp_init(&resp);
	req.timeout_ms = a->timeout_ms;
	req.max_response = 64 * 1024;

	if (a->kind == KF_GCP_CRED_SERVICE_ACCOUNT) {
		if (kf_buf_adds(&body, "grant_type=urn%3Aietf%3Aparams%3Aoauth"
				       "%3Agrant-type%3Ajwt-bearer&assertion=") <
		    0) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		if (kf_gcp_jwt_assertion((const char *)a->private_key->data,
					 a->private_key->len, a->key_id,
					 a->client_email, a->token_uri,
					 KF_GCP_SCOPE, (int64_t)now_s(), &body,
					 err) < 0)
			goto out;
	} else if (a->kind == KF_GCP_CRED_AUTHORIZED_USER) {
		if (kf_buf_adds(&body, "grant_type=refresh_token&client_id=") ||
		    form_add(&body, a->client_id) ||
		    kf_buf_adds(&body, "&client_secret=") ||
		    form_add(&body, (const char *)a->client_secret->data) ||
		    kf_buf_adds(&body, "&refresh_token=") ||
		    form_add(&body, (const char *)a->refresh_token->data)) {
			kf_fail(err, KF_E_NOMEM, "token request too large");
			goto out;
		}
	}
	if (a->kind == KF_GCP_CRED_METADATA) {
		if (kf_buf_addf(&url,
				"http://%s/computeMetadata/v1/instance/"
				"service-accounts/default/token",
				a->md_host) < 0) {
			kf_fail(err, KF_E_INVALID, "metadata host too long");
			goto out;
		}
		req.method = "GET";
		req.headers = md_hdrs;
		req.allow_metadata_ip = 1;	/* 169.254.169.254 is plain http */
		snprintf(what, sizeof(what), "metadata server %s", a->md_host);
	} else {
		if (kf_buf_adds(&url, a->token_uri) < 0) {
			kf_fail(err, KF_E_INVALID, "token_uri too long");
			goto out;
		}
		req.method = "POST";
		req.headers = form_hdrs;
		req.body = body.data;
		req.body_len = body.len;
		snprintf(what, sizeof(what), "token endpoint %s", a->token_uri);
	}
	req.url = kf_buf_str(&url);

	for (attempt = 0;; attempt++) {
		kf_http_resp_release(&resp);
		kf_http_resp_init(&resp);
		rc = kf_http_do(&req, &resp, err);
		if (rc == 0 && resp.status == 200) {
			if (a->kind == KF_GCP_CRED_METADATA &&
			    (!kf_http_resp_header(&resp, "Metadata-Flavor",
						  flavor, sizeof(flavor)) ||
			     strcmp(flavor, "Google") != 0)) {
				rc = kf_fail(err, KF_E_UNAVAILABLE,
					     "%s is not a GCE metadata server",
					     what);
				goto out;
			}
			rc = parse_token(&resp, what, hdr, expiry, err);
			goto out;
		}
		if (rc == 0 && !retryable_status(resp.status)) {
			rc = token_refused(&resp, what, err);
			goto out;
		}
		if (rc == 0)
			kf_fail_provider(err, KF_E_UNAVAILABLE,
					 (int)resp.status, "",
					 "%s answered HTTP %ld", what,
					 resp.status);
		else if (err->code != KF_E_UNAVAILABLE &&
			 err->code != KF_E_TIMEOUT)
			goto out;
		rc = -1;
		if (attempt >= 2)
			goto out;
		kf_log(KF_LOG_DEBUG, "gcp: %s failed (%s), retrying", what,
		       kf_code_name(err->code));
		kf_clock_sleep_ms(kf_retry_backoff_ms(attempt, backoff_base_ms,
						      backoff_base_ms * 4));
	}
out:
	if (rc < 0 && err_out)
		*err_out = e;
	kf_http_resp_release(&resp);
	kf_buf_release(&body);
	kf_buf_release(&url);
	return rc;
}

/* $CLOUDSDK_CONFIG, else ~/.config/gcloud. */
static int gcloud_dir(char *out, size_t n)
{
	const char *d = getenv("CLOUDSDK_CONFIG");
	const char *home;
	int w;

	if (d && *d)
		return copy_str(out, n, d);
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return -1;
	w = snprintf(out, n, "%s/.config/gcloud", home);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static int adc_path(char *out, size_t n)
{
	char dir[512];
	int w;

	if (gcloud_dir(dir, sizeof(dir)) < 0)
		return -1;
	w = snprintf(out, n, "%s/application_default_credentials.json", dir);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static void md_host(char *out, size_t n)
{
	const char *h = getenv("GCE_METADATA_HOST");

	if (!h || !*h)
		h = getenv("GCE_METADATA_ROOT");
	if (copy_str(out, n, h && *h ? h : MD_DEFAULT_HOST) < 0)
		copy_str(out, n, MD_DEFAULT_HOST);
}

int kf_gcp_auth_present(const char *credentials)
{
	const char *g = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *m = getenv("GCE_METADATA_HOST");
	char adc[600];

	if ((credentials && *credentials) || (g && *g) || (m && *m))
		return 1;
	return adc_path(adc, sizeof(adc)) == 0 && access(adc, R_OK) == 0;
}

void kf_gcp_auth_free(struct kf_gcp_auth *a)
{
	if (!a)
		return;
	kf_secret_free(a->private_key);
	kf_secret_free(a->client_secret);
	kf_secret_free(a->refresh_token);
	kf_secret_free(a->hdr);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

int kf_gcp_auth_new(const struct kf_gcp_auth_cfg *cfg,
		    struct kf_gcp_auth **out, struct kf_err *err)
{
	struct kf_gcp_auth *a = NULL;
	const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *q = getenv("GOOGLE_CLOUD_QUOTA_PROJECT");
	char adc[600];
	int rc = -1;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;

	if (cfg->credentials && *cfg->credentials) {
		if (load_key_file(a, cfg->credentials, "gcp_credentials",
				  err) < 0)
			goto out;
	} else if (env && *env) {
		if (load_key_file(a, env, "GOOGLE_APPLICATION_CREDENTIALS",
				  err) < 0)
			goto out;
	} else if (adc_path(adc, sizeof(adc)) == 0 && access(adc, F_OK) == 0) {
		if (load_key_file(a, adc, "gcloud ADC file", err) < 0)
			goto out;
	} else {
		unsigned t = a->timeout_ms;
		struct kf_err merr = KF_ERR_INIT;

		md_host(a->md_host, sizeof(a->md_host));
		a->kind = KF_GCP_CRED_METADATA;
		snprintf(a->source, sizeof(a->source), "metadata server %s",
			 a->md_host);
		/* Only if it answers quickly: off GCE nothing listens. */
		a->timeout_ms = t < 2000 ? t : 2000;
		if (fetch_token(a, &a->hdr, &a->expiry, &merr) < 0) {
			if (merr.code == KF_E_DENIED ||
			    merr.code == KF_E_NOTFOUND) {
				kf_fail_provider(err, KF_E_DENIED,
						 merr.http_status,
						 merr.provider_code, "%s",
						 merr.msg);
				goto out;
			}
			kf_fail(err, KF_E_NOTFOUND,
				"no Google credentials found: tried "
				"gcp_credentials, GOOGLE_APPLICATION_CREDENTIALS, "
				"%s, metadata server %s (%s)",
				adc, a->md_host, kf_code_name(merr.code));
			goto out;
		}
		a->timeout_ms = t;
		a->gen = 1;
	}
	if (q && *q)
		copy_str(a->quota_project, sizeof(a->quota_project), q);
	if (!a->hdr) {
		if (fetch_token(a, &a->hdr, &a->expiry, err) < 0)
			goto out;
		a->gen = 1;
	}
	kf_log(KF_LOG_INFO, "gcp: using %s", a->source);
	*out = a;
	a = NULL;
	rc = 0;
out:
	kf_gcp_auth_free(a);
	return rc;
}

static int copy_hdr_locked(struct kf_gcp_auth *a, struct kf_secret **hdr,
			   uint64_t *gen, struct kf_err *err)
{
	*hdr = kf_secret_dup(a->hdr->data, a->hdr->len + 1);
	if (!*hdr)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	(*hdr)->len = a->hdr->len;
	if (gen)
		*gen = a->gen;
	return 0;
}

int kf_gcp_auth_header(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       uint64_t *gen, struct kf_err *err)
{
	struct kf_secret *nh = NULL;
	time_t exp = 0, now;
	uint64_t seq;
	struct kf_err ferr = KF_ERR_INIT;
	int rc = -1, frc;

	*hdr = NULL;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		now = now_s();
		if (a->hdr && now + KF_GCP_REFRESH_MARGIN < a->expiry) {
			rc = copy_hdr_locked(a, hdr, gen, err);
			goto unlock;
		}
		if (a->hdr && now < a->expiry && a->refreshing) {
			/* Someone refreshes; the old token is still good. */
			rc = copy_hdr_locked(a, hdr, gen, err);
			goto unlock;
		}
		if (!a->refreshing)
			break;
		seq = a->seq;
		while (a->refreshing && a->seq == seq)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->seq != seq && !(a->hdr && now_s() < a->expiry)) {
			/* The refresh we waited for failed: share its error. */
			if (err)
				*err = a->last_err;
			rc = -1;
			goto unlock;
		}
	}
	a->refreshing = 1;
	pthread_mutex_unlock(&a->mu);

	frc = fetch_token(a, &nh, &exp, &ferr);

	pthread_mutex_lock(&a->mu);
	a->refreshing = 0;
	a->seq++;
	if (frc == 0) {
		kf_secret_free(a->hdr);
		a->hdr = nh;
		nh = NULL;
		a->expiry = exp;
		a->gen++;
		kf_err_clear(&a->last_err);
		rc = copy_hdr_locked(a, hdr, gen, err);
	} else {
		a->last_err = ferr;
		if (a->hdr && now_s() < a->expiry) {
			kf_log(KF_LOG_WARN,
			       "gcp: token refresh failed (%s), using the "
			       "current token until it expires",
			       kf_code_name(ferr.code));
			rc = copy_hdr_locked(a, hdr, gen, err);
		} else {
			if (err)
				*err = ferr;
			rc = -1;
		}
	}
	pthread_cond_broadcast(&a->cv);
unlock:
	pthread_mutex_unlock(&a->mu);
	kf_secret_free(nh);
	return rc;
}

void kf_gcp_auth_invalidate(struct kf_gcp_auth *a, uint64_t gen)
{
	pthread_mutex_lock(&a->mu);
	if (gen == a->gen)
		a->expiry = 0;
	pthread_mutex_unlock(&a->mu);
}

const char *kf_gcp_auth_source(const struct kf_gcp_auth *a)
{
	return a && a->source[0] ? a->source : "none";
}

const char *kf_gcp_auth_quota_project(const struct kf_gcp_auth *a)
{
	return a ? a->quota_project : "";
}

static void trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
			 s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
}

/* [core] project from gcloud's active configuration. */
static int gcloud_project(char *out, size_t outlen)
{
	char dir[512], path[700], name[128] = "default", line[512];
	const char *env = getenv("CLOUDSDK_ACTIVE_CONFIG_NAME");
	FILE *f = NULL;
	int in_core = 0, rc = -1, w;

	if (gcloud_dir(dir, sizeof(dir)) < 0)
		return -1;
	if (env && *env) {
		copy_str(name, sizeof(name), env);
	} else {
		w = snprintf(path, sizeof(path), "%s/active_config", dir);
		if (w > 0 && (size_t)w < sizeof(path)) {
			f = fopen(path, "re");
			if (f && fgets(line, sizeof(line), f)) {
				trim(line);
				if (*line)
					copy_str(name, sizeof(name), line);
			}
			if (f)
				fclose(f);
			f = NULL;
		}
	}
	if (strchr(name, '/'))
		return -1;
	w = snprintf(path, sizeof(path), "%s/configurations/config_%s", dir,
		     name);
	if (w < 0 || (size_t)w >= sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *eq;

		trim(line);
		if (line[0] == '[') {
			in_core = strcmp(line, "[core]") == 0;
			continue;
		}
		if (!in_core || line[0] == '#' || line[0] == ';')
			continue;
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		trim(line);
		trim(eq + 1);
		if (strcmp(line, "project") == 0 && eq[1]) {
			rc = copy_str(out, outlen, eq + 1);
			break;
		}
	}
	fclose(f);
	return rc;
}

static int md_project(struct kf_gcp_auth *a, char *out, size_t outlen)
{
	const char *hdrs[] = { "Metadata-Flavor: Google", NULL };
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err e = KF_ERR_INIT;
	char host[256], url[400], flavor[64];
	int rc = -1;

	if (a && a->md_host[0])
		copy_str(host, sizeof(host), a->md_host);
	else
		md_host(host, sizeof(host));
	if (snprintf(url, sizeof(url),
		     "http://%s/computeMetadata/v1/project/project-id",
		     host) >= (int)sizeof(url))
		return -1;
	kf_http_resp_init(&resp);
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.timeout_ms = 2000;
	req.max_response = 4096;
	req.allow_metadata_ip = 1;
	if (kf_http_do(&req, &resp, &e) == 0 && resp.status == 200 &&
	    kf_http_resp_header(&resp, "Metadata-Flavor", flavor,
				sizeof(flavor)) &&
	    strcmp(flavor, "Google") == 0 && resp.body.len > 0 &&
	    resp.body.len < outlen) {
		copy_str(out, outlen, kf_buf_str(&resp.body));
		trim(out);
		rc = *out ? 0 : -1;
	}
	kf_http_resp_release(&resp);
	return rc;
}

int kf_gcp_auth_project(struct kf_gcp_auth *a, char *out, size_t outlen,
			struct kf_err *err)
{
	static const char *const envs[] = { "GOOGLE_CLOUD_PROJECT",
					    "GCLOUD_PROJECT",
					    NULL };
	const char *v;
	const char *m = getenv("GCE_METADATA_HOST");

	for (size_t i = 0; envs[i]; i++) {
		v = getenv(envs[i]);
		if (v && *v)
			return copy_str(out, outlen, v) < 0 ?
				       kf_fail(err, KF_E_INVALID,
					       "%s too long", envs[i]) :
				       0;
	}
	if (a && a->project_id[0])
		return copy_str(out, outlen, a->project_id);
	v = getenv("CLOUDSDK_CORE_PROJECT");
	if (v && *v)
		return copy_str(out, outlen, v) < 0 ?
			       kf_fail(err, KF_E_INVALID,
				       "CLOUDSDK_CORE_PROJECT too long") :
			       0;
	if (gcloud_project(out, outlen) == 0)
		return 0;
	if (((a && a->kind == KF_GCP_CRED_METADATA) || (m && *m)) &&
	    md_project(a, out, outlen) == 0)
		return 0;
	return kf_fail(err, KF_E_NOTFOUND,
		       "no Google Cloud project: set -o gcp_project= or "
		       "GOOGLE_CLOUD_PROJECT");
}
