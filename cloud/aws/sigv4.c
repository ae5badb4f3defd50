/*
 * AWS Signature Version 4 as pure functions (canonical request, string to
 * sign, signing key, Authorization).  Never logs.  The secret key, every
 * derived key and every buffer that held a header value (a session token
 * is one) are wiped before returning, error paths included.
 */
#include "aws/sigv4.h"

#include "core/crypto.h"

#include <stdlib.h>
#include <string.h>

#define KF_SIGV4_MAX (16u << 20) /* internal buffers */

void kf_sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		memcpy(out, "19700101T000000Z", 17);
}

/*
 * The path with each '/'-separated segment encoded once (the non-S3 rule
 * for an unencoded path): kf_buf_add_pct keeps the slashes and encodes
 * every other byte outside the unreserved set, which is the same thing;
 * an empty path is "/".
 */
static int canonical_uri(struct kf_buf *out, const char *path)
{
	const char *p = path ? path : "";

	if (*p != '/' && kf_buf_add(out, "/", 1) < 0)
		return -1;
	return kf_buf_add_pct(out, p, strlen(p), "/");
}

struct qparam {
	char *name;  /* encoded */
	char *value; /* encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* n bytes percent-encoded into a new string ("" for none). */
static char *encoded_dup(const char *s, size_t n)
{
	struct kf_buf b;
	char *r;

	kf_buf_init(&b, KF_SIGV4_MAX);
	if (kf_buf_add_pct(&b, s, n, NULL) < 0) {
		kf_buf_release(&b);
		return NULL;
	}
	r = kf_buf_detach(&b, NULL);
	return r ? r : strdup("");
}

/*
 * name=value pairs split on '&' (empty pieces skipped), each side encoded,
 * sorted by encoded name then value; "a" alone becomes "a=".
 */
static int canonical_query(struct kf_buf *out, const char *query)
{
	struct qparam *v = NULL;
	size_t n = 0, cap = 0;
	const char *p = query ? query : "";
	int rc = -1;

	while (*p) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;

		if (len) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct qparam *t =
					realloc(v, ncap * sizeof(*v));

				if (!t)
					goto out;
				v = t;
				cap = ncap;
			}
			v[n].name = encoded_dup(p, nlen);
			v[n].value = encoded_dup(eq ? eq + 1 : "",
						 eq ? len - nlen - 1 : 0);
			n++;
			if (!v[n - 1].name || !v[n - 1].value)
				goto out;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (n)
		qsort(v, n, sizeof(*v), qparam_cmp);
	for (size_t i = 0; i < n; i++)
		if (kf_buf_addf(out, "%s%s=%s", i ? "&" : "", v[i].name,
				v[i].value) < 0)
			goto out;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	return rc;
}

struct chdr {
	char *name;  /* lower-cased, trimmed */
	char *value; /* trimmed, folded; may hold a token: wiped */
	size_t idx;  /* original order, for duplicates */
};

static int chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void chdrs_free(struct chdr *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		if (h[i].value) {
			explicit_bzero(h[i].value, strlen(h[i].value));
			free(h[i].value);
		}
	}
	free(h);
}

static int chdr_bad(struct kf_err *err)
{
	/* Names are not secret; values are never quoted. */
	return kf_fail(err, KF_E_INVALID,
		       "sigv4: invalid header name or value");
}

/* vl trimmed, each inner run of spaces/tabs folded to one, into dst
 * (strlen(vl) + 1 bytes); -1 on a line break. */
static int chdr_fold(char *dst, const char *vl)
{
	size_t k = 0;
	int sp = 0;

	for (const char *s = vl; *s; s++) {
		if (*s == '\r' || *s == '\n')
			return -1;
		if (is_space(*s)) {
			sp = k > 0;
			continue;
		}
		if (sp)
			dst[k++] = ' ';
		sp = 0;
		dst[k++] = *s;
	}
	dst[k] = '\0';
	return 0;
}

/* One header normalised into *h: name trimmed and lower-cased, value
 * folded.  On -1, h may hold parts (chdrs_free frees them). */
static int chdr_set(struct chdr *h, const struct kf_sigv4_header *in,
		    struct kf_err *err)
{
	const char *nm = in->name;
	const char *vl = in->value ? in->value : "";
	size_t a, b;

	if (!nm)
		return chdr_bad(err);
	for (a = 0; is_space(nm[a]); a++)
		;
	for (b = strlen(nm); b > a && is_space(nm[b - 1]); b--)
		;
	if (a == b)
		return chdr_bad(err);
	h->name = malloc(b - a + 1);
	/* Zeroed: chdrs_free may wipe it before it is complete. */
	h->value = calloc(strlen(vl) + 1, 1);
	if (!h->name || !h->value)
		return kf_fail(err, KF_E_NOMEM, "sigv4: out of memory");
	for (size_t j = a; j < b; j++) {
		char c = nm[j];

		if ((unsigned char)c <= ' ' || c == ':' || c == 127)
			return chdr_bad(err);
		h->name[j - a] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	h->name[b - a] = '\0';
	return chdr_fold(h->value, vl) < 0 ? chdr_bad(err) : 0;
}

/* Normalised, sorted copies of the headers; -1 on a bad header. */
static int chdrs_build(const struct kf_sigv4_req *req, struct chdr **outp,
		       struct kf_err *err)
{
	struct chdr *h = NULL;
	size_t n = req->nheaders;

	*outp = NULL;
	if (n == 0)
		return kf_fail(err, KF_E_INVALID, "sigv4: no headers to sign");
	h = calloc(n, sizeof(*h));
	if (!h)
		return kf_fail(err, KF_E_NOMEM, "sigv4: out of memory");
	for (size_t i = 0; i < n; i++) {
		h[i].idx = i;
		if (chdr_set(&h[i], &req->headers[i], err) < 0) {
			chdrs_free(h, n);
			return -1;
		}
	}
	qsort(h, n, sizeof(*h), chdr_cmp);
	*outp = h;
	return 0;
}

static int signed_headers(struct kf_buf *out, const struct chdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(h[i].name, h[i - 1].name) == 0)
			continue;
		if (kf_buf_addf(out, "%s%s", i ? ";" : "", h[i].name) < 0)
			return -1;
	}
	return 0;
}

static int has_header(const struct chdr *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0)
			return 1;
	return 0;
}

static int check_req(const struct kf_sigv4_req *req, struct kf_err *err)
{
	if (!req->method || !*req->method || !req->region || !*req->region ||
	    !req->service || !*req->service || (!req->headers && req->nheaders))
		return kf_fail(err, KF_E_INVALID, "sigv4: incomplete request");
	if (req->body_len && !req->body)
		return kf_fail(err, KF_E_INVALID, "sigv4: body missing");
	if (strchr(req->region, '/') || strchr(req->service, '/'))
		return kf_fail(err, KF_E_INVALID,
			       "sigv4: bad region or service name");
	return 0;
}

int kf_sigv4_canonical_request(const struct kf_sigv4_req *req,
			       struct kf_buf *out, struct kf_err *err)
{
	struct chdr *h = NULL;
	struct kf_buf tmp;
	char body_hash[65];
	int rc = -1;

	/* It holds header values (tokens): sensitive, and copied to out
	 * only when complete. */
	kf_buf_init_sensitive(&tmp, KF_SIGV4_MAX);
	if (check_req(req, err) < 0 || chdrs_build(req, &h, err) < 0)
		goto out;
	kf_sha256_hex(req->body_len ? req->body : "", req->body_len, body_hash);
	if (kf_buf_adds(&tmp, req->method) < 0 ||
	    kf_buf_add(&tmp, "\n", 1) < 0 ||
	    canonical_uri(&tmp, req->path) < 0 ||
	    kf_buf_add(&tmp, "\n", 1) < 0 ||
	    canonical_query(&tmp, req->query) < 0 ||
	    kf_buf_add(&tmp, "\n", 1) < 0)
		goto nomem;
	for (size_t i = 0; i < req->nheaders; i++) {
		int first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
		int last = i + 1 == req->nheaders ||
			   strcmp(h[i].name, h[i + 1].name) != 0;

		if (first && kf_buf_addf(&tmp, "%s:", h[i].name) < 0)
			goto nomem;
		if (!first && kf_buf_add(&tmp, ",", 1) < 0)
			goto nomem;
		if (kf_buf_adds(&tmp, h[i].value) < 0 ||
		    (last && kf_buf_add(&tmp, "\n", 1) < 0))
			goto nomem;
	}
	if (kf_buf_add(&tmp, "\n", 1) < 0 ||
	    signed_headers(&tmp, h, req->nheaders) < 0 ||
	    kf_buf_addf(&tmp, "\n%s", body_hash) < 0 ||
	    kf_buf_add(out, tmp.data, tmp.len) < 0)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	kf_fail(err, KF_E_NOMEM, "sigv4: canonical request too large");
out:
	chdrs_free(h, req->nheaders);
	kf_buf_release(&tmp);
	return rc;
}

static int scope(struct kf_buf *out, const struct kf_sigv4_req *req)
{
	char date[17];

	kf_sigv4_amz_date(req->now, date);
	return kf_buf_addf(out, "%.8s/%s/%s/aws4_request", date, req->region,
			   req->service);
}

int kf_sigv4_string_to_sign(const struct kf_sigv4_req *req, struct kf_buf *out,
			    struct kf_err *err)
{
	struct kf_buf cr, tmp;
	char date[17], hash[65];
	int rc = -1;

	kf_buf_init_sensitive(&cr, KF_SIGV4_MAX);
	kf_buf_init(&tmp, 4096);
	if (kf_sigv4_canonical_request(req, &cr, err) < 0)
		goto out;
	kf_sha256_hex(cr.data, cr.len, hash);
	kf_sigv4_amz_date(req->now, date);
	if (kf_buf_addf(&tmp, "AWS4-HMAC-SHA256\n%s\n", date) < 0 ||
	    scope(&tmp, req) < 0 || kf_buf_addf(&tmp, "\n%s", hash) < 0 ||
	    kf_buf_add(out, tmp.data, tmp.len) < 0) {
		kf_fail(err, KF_E_NOMEM, "sigv4: string to sign too large");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&cr);
	kf_buf_release(&tmp);
	return rc;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 * "aws4_request").  Every intermediate is wiped. */
static int signing_key(const struct kf_sigv4_req *req, const char *secret,
		       unsigned char out[32], struct kf_err *err)
{
	unsigned char k1[32], k2[32], k3[32];
	size_t slen = strlen(secret);
	char date[17];
	char *ksecret = malloc(slen + 5);

	if (!ksecret)
		return kf_fail(err, KF_E_NOMEM, "sigv4: out of memory");
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, slen + 1);
	kf_sigv4_amz_date(req->now, date);
	kf_hmac_sha256(ksecret, slen + 4, date, 8, k1);
	kf_hmac_sha256(k1, 32, req->region, strlen(req->region), k2);
	kf_hmac_sha256(k2, 32, req->service, strlen(req->service), k3);
	kf_hmac_sha256(k3, 32, "aws4_request", 12, out);
	explicit_bzero(ksecret, slen + 5);
	free(ksecret);
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	explicit_bzero(k3, sizeof(k3));
	return 0;
}

int kf_sigv4_authorization(const struct kf_sigv4_req *req,
			   const struct kf_sigv4_creds *creds,
			   struct kf_buf *out, struct kf_err *err)
{
	struct kf_buf sts, sh, tmp;
	struct chdr *h = NULL;
	unsigned char key[32], sig[32];
	char sighex[65];
	int rc = -1;

	kf_buf_init(&sts, KF_SIGV4_MAX);
	kf_buf_init(&sh, KF_SIGV4_MAX);
	kf_buf_init(&tmp, KF_SIGV4_MAX);
	if (!creds || !creds->access_key || !*creds->access_key ||
	    !creds->secret_key || !*creds->secret_key) {
		kf_fail(err, KF_E_INVALID, "sigv4: missing credentials");
		goto out;
	}
	if (strchr(creds->access_key, '/') ||
	    strpbrk(creds->access_key, " ,\r\n")) {
		kf_fail(err, KF_E_INVALID, "sigv4: malformed access key id");
		goto out;
	}
	if (kf_sigv4_string_to_sign(req, &sts, err) < 0 ||
	    chdrs_build(req, &h, err) < 0)
		goto out;
	if (creds->session_token && *creds->session_token &&
	    !has_header(h, req->nheaders, "x-amz-security-token")) {
		kf_fail(err, KF_E_INVALID,
			"sigv4: X-Amz-Security-Token must be a signed header");
		goto out;
	}
	if (signing_key(req, creds->secret_key, key, err) < 0)
		goto out;
	kf_hmac_sha256(key, sizeof(key), sts.data, sts.len, sig);
	kf_hex(sig, sizeof(sig), sighex);
	if (signed_headers(&sh, h, req->nheaders) < 0 ||
	    kf_buf_addf(&tmp, "AWS4-HMAC-SHA256 Credential=%s/",
			creds->access_key) < 0 ||
	    scope(&tmp, req) < 0 ||
	    kf_buf_addf(&tmp, ", SignedHeaders=%s, Signature=%s",
			kf_buf_str(&sh), sighex) < 0 ||
	    kf_buf_add(out, tmp.data, tmp.len) < 0) {
		kf_fail(err, KF_E_NOMEM, "sigv4: authorization too large");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	explicit_bzero(sig, sizeof(sig));
	chdrs_free(h, req->nheaders);
	kf_buf_release(&sts);
	kf_buf_release(&sh);
	kf_buf_release(&tmp);
	return rc;
}
