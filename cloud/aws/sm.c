/*
 * The AWS Secrets Manager client: JSON 1.1 requests signed with SigV4, a
 * bounded retry loop inside one deadline, and error classification by the
 * normalised __type.  Request bodies are built in sensitive buffers and
 * parsed responses live in jansson memory that main() makes wipe-on-free.
 * Never logs or quotes a value, a credential or a body.
 */
#include "aws/sm.h"
#include "core/stats.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/retry.h"

#define SM_BODY_MAX (512u << 10)	/* escaped 64 KiB value + members */
#define SM_RESP_MAX (4u << 20)
#define SM_DEFAULT_ATTEMPTS 5
#define SM_DEFAULT_BACKOFF_MS 100
#define SM_BACKOFF_CAP_MS 5000
#define SM_MIN_ATTEMPT_MS 2000

struct kf_aws_sm {
	char *url;		/* endpoint as given */
	char *host;		/* signed and sent Host: lower case [:port] */
	char *path;		/* "/" or the endpoint's path */
	char *region;
	struct kf_aws_chain *chain;	/* borrowed */
	unsigned timeout_ms;
	unsigned attempts;
	unsigned backoff_base_ms;
};

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

/* ---- small helpers ---------------------------------------------------- */

int kf_aws_sm_is_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Append s (n bytes) as a JSON string literal. */
static int js_str(struct kf_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (kf_buf_add(b, "\"", 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 0;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			elen = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			elen = 2;
		} else if (c == '\r') {
			memcpy(esc, "\\r", 2);
			elen = 2;
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (elen) {
			if (kf_buf_add(b, esc, elen))
				return -1;
			explicit_bzero(esc, sizeof(esc));
		} else if (kf_buf_add(b, &s[i], 1)) {
			return -1;
		}
	}
	return kf_buf_add(b, "\"", 1);
}

static int js_member(struct kf_buf *b, int *first, const char *key)
{
	if (!*first && kf_buf_add(b, ",", 1))
		return -1;
	*first = 0;
	if (js_str(b, key, strlen(key)))
		return -1;
	return kf_buf_add(b, ":", 1);
}

static int js_member_str(struct kf_buf *b, int *first, const char *key,
			 const char *val)
{
	if (js_member(b, first, key))
		return -1;
	return js_str(b, val, strlen(val));
}

/* "SecretString": "..." or "SecretBinary": "<base64>". */
static int js_member_value(struct kf_buf *b, int *first,
			   const unsigned char *v, size_t n)
{
	struct kf_buf b64;
	int rc = -1;

	if (kf_aws_sm_is_text(v, n)) {
		if (js_member(b, first, "SecretString"))
			return -1;
		return js_str(b, (const char *)v, n);
	}
	kf_buf_init_sensitive(&b64, SM_BODY_MAX);
	if (kf_base64_encode(v, n, &b64))
		goto out;
	if (js_member(b, first, "SecretBinary"))
		goto out;
	rc = js_str(b, kf_buf_str(&b64), b64.len);
out:
	kf_buf_release(&b64);
	return rc;
}

static int js_member_tags(struct kf_buf *b, int *first,
			  const struct kf_aws_sm_tag *tags, size_t ntags)
{
	if (js_member(b, first, "Tags") || kf_buf_add(b, "[", 1))
		return -1;
	for (size_t i = 0; i < ntags; i++) {
		int f = 1;

		if ((i && kf_buf_add(b, ",", 1)) || kf_buf_add(b, "{", 1) ||
		    js_member_str(b, &f, "Key", tags[i].key) ||
		    js_member_str(b, &f, "Value",
				  tags[i].value ? tags[i].value : "") ||
		    kf_buf_add(b, "}", 1))
			return -1;
	}
	return kf_buf_add(b, "]", 1);
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * A double as epoch seconds.  NaN, infinities and values far outside any
 * date count as absent (0): converting them to an integer is undefined
 * behaviour (found by fuzz_aws_sm_json with "CreatedDate": 7.7e131).
 */
static int64_t epoch_of(double d)
{
	if (!(d > -1e15 && d < 1e15))
		return 0;
	return (int64_t)d;
}

/* Epoch seconds from a number or a numeric string; 0 when absent/null. */
static int64_t jtime(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return epoch_of(json_real_value(v));
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		double d;

		errno = 0;
		d = strtod(s, &end);
		if (errno == 0 && end != s && *end == '\0')
			return epoch_of(d);
	}
	return 0;
}

static char *xstrdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- client lifecycle -------------------------------------------------- */

static int parse_endpoint(struct kf_aws_sm *sm, const char *url,
			  struct kf_err *err)
{
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
			       "aws endpoint must be an http(s) URL");
	}
	end = auth + strcspn(auth, "/?#");
	alen = (size_t)(end - auth);
	if (alen == 0 || memchr(auth, '@', alen))
		return kf_fail(err, KF_E_INVALID, "aws endpoint: bad host");
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
	if (*end == '/') {
		size_t plen = strcspn(end, "?#");

		sm->path = strndup(end, plen);
	} else {
		sm->path = strdup("/");
	}
	if (!sm->path)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

int kf_aws_sm_new(const struct kf_aws_sm_cfg *cfg, struct kf_aws_sm **out,
		  struct kf_err *err)
{
	struct kf_aws_sm *sm = NULL;
	int rc = -1;

	*out = NULL;
	if (!cfg->endpoint || !cfg->region || !cfg->chain) {
		kf_fail(err, KF_E_INVALID, "aws: endpoint, region and "
			"credentials are required");
		goto out;
	}
	if (kf_http_check_url(cfg->endpoint, err))
		goto out;
	sm = calloc(1, sizeof(*sm));
	if (!sm) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	sm->url = strdup(cfg->endpoint);
	sm->region = strdup(cfg->region);
	if (!sm->url || !sm->region) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (parse_endpoint(sm, cfg->endpoint, err))
		goto out;
	sm->chain = cfg->chain;
	sm->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
	sm->attempts = cfg->attempts ? cfg->attempts : SM_DEFAULT_ATTEMPTS;
	sm->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms
						   : SM_DEFAULT_BACKOFF_MS;
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
	free(sm);
}

void kf_aws_sm_meta_release(struct kf_aws_sm_meta *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->arn);
	free(m->description);
	free(m->current_version);
	for (size_t i = 0; i < m->ntags; i++) {
		free(m->tags[i].key);
		free(m->tags[i].value);
	}
	free(m->tags);
	memset(m, 0, sizeof(*m));
}

void kf_aws_sm_page_release(struct kf_aws_sm_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		kf_aws_sm_meta_release(&page->v[i]);
	free(page->v);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

const char *kf_aws_sm_meta_tag(const struct kf_aws_sm_meta *m,
			       const char *key)
{
	for (size_t i = 0; i < m->ntags; i++)
		if (m->tags[i].key && strcmp(m->tags[i].key, key) == 0)
			return m->tags[i].value ? m->tags[i].value : "";
	return NULL;
}

/* ---- error classification --------------------------------------------- */

void kf_aws_sm_normalise_type(char *type)
{
	char *p = strchr(type, ':');
	char *h;

	if (p)
		*p = '\0';
	h = strchr(type, '#');
	if (h)
		memmove(type, h + 1, strlen(h + 1) + 1);
}

struct sm_errdef {
	const char *type;
	enum kf_code code;
	enum kf_aws_sm_action action;
	int quote;		/* the service message never echoes input */
};

/*
 * LimitExceededException is a quota (too many secrets or versions), not a
 * rate: retrying does not help, so it fails at once as UNAVAILABLE (EIO)
 * with the code in the log.  EncryptionFailure/DecryptionFailure almost
 * always mean the KMS key refuses this principal: DENIED.
 */
static const struct sm_errdef sm_errdefs[] = {
	{ "ResourceNotFoundException", KF_E_NOTFOUND, KF_AWS_SM_FAIL, 1 },
	{ "ResourceExistsException", KF_E_EXISTS, KF_AWS_SM_FAIL, 1 },
	{ "InvalidRequestException", KF_E_STATE, KF_AWS_SM_FAIL, 1 },
	{ "PreconditionNotMetException", KF_E_STATE, KF_AWS_SM_FAIL, 1 },
	{ "InvalidParameterException", KF_E_INVALID, KF_AWS_SM_FAIL, 0 },
	{ "ValidationException", KF_E_INVALID, KF_AWS_SM_FAIL, 0 },
	{ "InvalidNextTokenException", KF_E_INVALID, KF_AWS_SM_FAIL, 0 },
	{ "MalformedPolicyDocumentException", KF_E_INVALID, KF_AWS_SM_FAIL, 0 },
	{ "LimitExceededException", KF_E_UNAVAILABLE, KF_AWS_SM_FAIL, 1 },
	{ "EncryptionFailure", KF_E_DENIED, KF_AWS_SM_FAIL, 1 },
	{ "DecryptionFailure", KF_E_DENIED, KF_AWS_SM_FAIL, 1 },
	{ "AccessDeniedException", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "AccessDenied", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "UnrecognizedClientException", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "InvalidClientTokenId", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "SignatureDoesNotMatch", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "InvalidSignatureException", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "IncompleteSignature", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "IncompleteSignatureException", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "MissingAuthenticationToken", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "MissingAuthenticationTokenException", KF_E_DENIED, KF_AWS_SM_FAIL,
	  0 },
	{ "OptInRequired", KF_E_DENIED, KF_AWS_SM_FAIL, 0 },
	{ "ExpiredTokenException", KF_E_DENIED, KF_AWS_SM_REFRESH, 0 },
	{ "ExpiredToken", KF_E_DENIED, KF_AWS_SM_REFRESH, 0 },
	{ "RequestExpired", KF_E_DENIED, KF_AWS_SM_REFRESH, 0 },
	{ "ThrottlingException", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "Throttling", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "TooManyRequestsException", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "RequestLimitExceeded", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "InternalServiceError", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "InternalFailure", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "InternalServiceFailure", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "ServiceUnavailable", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "ServiceUnavailableException", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "RequestTimeout", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "RequestTimeoutException", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
	{ "PriorRequestNotComplete", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0 },
};

/* Printable ASCII only, bounded, so a message cannot smuggle anything. */
static void sanitise(char *out, size_t outlen, const char *in)
{
	size_t j = 0;

	for (size_t i = 0; in && in[i] && j + 1 < outlen && i < 160; i++) {
		unsigned char c = (unsigned char)in[i];

		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
	}
	out[j] = '\0';
}

/* Text between <tag> and </tag> in an XML body, into out. */
static int xml_elem(const char *body, size_t len, const char *tag, char *out,
		    size_t outlen)
{
	char open[32], close[32];
	const char *s, *e;
	size_t n;

	if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open) ||
	    snprintf(close, sizeof(close), "</%s>", tag) >= (int)sizeof(close))
		return 0;
	s = memmem(body, len, open, strlen(open));
	if (!s)
		return 0;
	s += strlen(open);
	e = memmem(s, len - (size_t)(s - body), close, strlen(close));
	if (!e)
		return 0;
	n = (size_t)(e - s);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

static enum kf_aws_sm_action classify(const char *op, long status,
				      const char *body, size_t len,
				      const char *hdr_type,
				      struct kf_err *err)
{
	char type[128] = "", smsg[192] = "", quoted[200] = "";
	json_t *j = NULL;
	const struct sm_errdef *def = NULL;
	enum kf_code code;
	enum kf_aws_sm_action action;
	size_t skip = 0;

	while (skip < len && isspace((unsigned char)body[skip]))
		skip++;
	if (skip < len && body[skip] == '{') {
		j = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
		if (json_is_object(j)) {
			const char *t = jstr(j, "__type");
			const char *m = jstr(j, "message");

			if (!t)
				t = jstr(j, "code");
			if (!m)
				m = jstr(j, "Message");
			if (t)
				snprintf(type, sizeof(type), "%s", t);
			if (m)
				sanitise(smsg, sizeof(smsg), m);
		}
		json_decref(j);
	} else if (skip < len && body[skip] == '<') {
		/* moto (and some front ends) answer signature errors in XML */
		char m[256];

		xml_elem(body + skip, len - skip, "Code", type, sizeof(type));
		if (xml_elem(body + skip, len - skip, "Message", m, sizeof(m)))
			sanitise(smsg, sizeof(smsg), m);
		explicit_bzero(m, sizeof(m));
	}
	if (!type[0] && hdr_type && hdr_type[0])
		snprintf(type, sizeof(type), "%s", hdr_type);
	kf_aws_sm_normalise_type(type);
	/* the type goes into err and the log as the service sent it */
	sanitise(type, sizeof(type), type);
	for (size_t i = 0; type[0] && i < sizeof(sm_errdefs) /
					      sizeof(sm_errdefs[0]); i++)
		if (strcmp(type, sm_errdefs[i].type) == 0)
			def = &sm_errdefs[i];
	if (def) {
		code = def->code;
		action = def->action;
		if (def->quote && smsg[0])
			snprintf(quoted, sizeof(quoted), ": %s", smsg);
	} else if (status >= 500 || status == 429 || status == 509) {
		code = KF_E_UNAVAILABLE;
		action = KF_AWS_SM_RETRY;
	} else if (!type[0] && (status == 401 || status == 403)) {
		code = KF_E_DENIED;
		action = KF_AWS_SM_FAIL;
	} else {
		code = KF_E_IO;
		action = KF_AWS_SM_FAIL;
	}
	kf_fail_provider(err, code, (int)status, type[0] ? type : NULL,
			 "%s: %s (HTTP %ld)%s", op,
			 type[0] ? type : "error", status, quoted);
	return action;
}

enum kf_aws_sm_action kf_aws_sm_classify(const char *op, long status,
					 const char *body, size_t len,
					 struct kf_err *err)
{
	return classify(op, status, body ? body : "", body ? len : 0, NULL,
			err);
}

/* ---- one signed call with retries -------------------------------------- */

/* One attempt: sign with fresh time and credentials, send. */
static int sm_attempt(struct kf_aws_sm *sm, const char *op,
		      const struct kf_buf *body, unsigned timeout_ms,
		      struct kf_http_resp *resp, struct kf_err *err)
{
	struct kf_aws_creds creds;
	struct kf_buf auth, tokhdr, authhdr, hosthdr, tgthdr, datehdr;
	struct kf_sigv4_header sh[5];
	struct kf_sigv4_creds sc;
	struct kf_sigv4_req sr;
	struct kf_http_req hr;
	const char *hdrs[10];
	char amzdate[17], target[96];
	size_t nh = 0, nsh = 0;
	int rc = -1;

	memset(&creds, 0, sizeof(creds));
	kf_buf_init_sensitive(&auth, 4096);
	kf_buf_init_sensitive(&tokhdr, 16384);
	kf_buf_init_sensitive(&authhdr, 4096);
	kf_buf_init(&hosthdr, 1024);
	kf_buf_init(&tgthdr, 256);
	kf_buf_init(&datehdr, 64);
	if (snprintf(target, sizeof(target), "secretsmanager.%s", op) >=
	    (int)sizeof(target)) {
		kf_fail(err, KF_E_INVALID, "operation name too long");
		goto out;
	}
	if (kf_aws_chain_get(sm->chain, &creds, err))
		goto out;
	memset(&sr, 0, sizeof(sr));
	sr.now = sm_now();
	kf_sigv4_amz_date(sr.now, amzdate);
	sh[nsh++] = (struct kf_sigv4_header){ "content-type",
					      "application/x-amz-json-1.1" };
	sh[nsh++] = (struct kf_sigv4_header){ "host", sm->host };
	sh[nsh++] = (struct kf_sigv4_header){ "x-amz-date", amzdate };
	if (creds.session_token)
		sh[nsh++] = (struct kf_sigv4_header){
			"x-amz-security-token",
			(const char *)creds.session_token->data };
	sh[nsh++] = (struct kf_sigv4_header){ "x-amz-target", target };
	sr.method = "POST";
	sr.path = sm->path;
	sr.query = NULL;
	sr.headers = sh;
	sr.nheaders = nsh;
	sr.body = body->data ? body->data : "";
	sr.body_len = body->len;
	sr.region = sm->region;
	sr.service = "secretsmanager";
	sc.access_key = creds.access_key;
	sc.secret_key = (const char *)creds.secret_key->data;
	sc.session_token = creds.session_token
				   ? (const char *)creds.session_token->data
				   : NULL;
	if (kf_sigv4_authorization(&sr, &sc, &auth, err))
		goto out;
	if (kf_buf_addf(&hosthdr, "Host: %s", sm->host) ||
	    kf_buf_addf(&tgthdr, "X-Amz-Target: %s", target) ||
	    kf_buf_addf(&datehdr, "X-Amz-Date: %s", amzdate) ||
	    kf_buf_addf(&authhdr, "Authorization: %s", kf_buf_str(&auth))) {
		kf_fail(err, KF_E_NOMEM, "request headers too long");
		goto out;
	}
	hdrs[nh++] = "Content-Type: application/x-amz-json-1.1";
	hdrs[nh++] = kf_buf_str(&hosthdr);
	hdrs[nh++] = kf_buf_str(&datehdr);
	hdrs[nh++] = kf_buf_str(&tgthdr);
	if (creds.session_token) {
		if (kf_buf_addf(&tokhdr, "X-Amz-Security-Token: %s",
				sc.session_token)) {
			kf_fail(err, KF_E_NOMEM, "session token too long");
			goto out;
		}
		hdrs[nh++] = kf_buf_str(&tokhdr);
	}
	hdrs[nh++] = kf_buf_str(&authhdr);
	hdrs[nh++] = "Expect:";
	hdrs[nh] = NULL;
	memset(&hr, 0, sizeof(hr));
	hr.method = "POST";
	hr.url = sm->url;
	hr.headers = hdrs;
	hr.body = body->data;
	hr.body_len = body->len;
	hr.timeout_ms = timeout_ms;
	hr.max_response = SM_RESP_MAX;
	rc = kf_http_do(&hr, resp, err);
out:
	explicit_bzero(&sc, sizeof(sc));
	kf_aws_creds_release(&creds);
	kf_buf_release(&auth);
	kf_buf_release(&tokhdr);
	kf_buf_release(&authhdr);
	kf_buf_release(&hosthdr);
	kf_buf_release(&tgthdr);
	kf_buf_release(&datehdr);
	return rc;
}

/*
 * POST body as operation op; *out receives the parsed JSON object of a
 * 2xx answer (caller decrefs).  Retries transient failures with jittered
 * backoff until sm->attempts or the deadline; ExpiredToken refreshes the
 * credentials and retries once.
 */
static int sm_call(struct kf_aws_sm *sm, const char *op,
		   const struct kf_buf *body, json_t **out,
		   struct kf_err *err)
{
	uint64_t deadline = kf_clock_now_ms() + sm->timeout_ms;
	struct kf_err last = KF_ERR_INIT;
	int refreshed = 0;
	int rc = -1;

	*out = NULL;
	for (unsigned attempt = 0;; attempt++) {
		struct kf_http_resp resp;
		enum kf_aws_sm_action act;
		uint64_t now = kf_clock_now_ms();
		unsigned left, slice, pause;
		char hdr_type[128] = "";
		uint64_t t0;
		int arc;

		if (now >= deadline) {
			if (last.code != KF_OK)
				kf_fail_provider(err, KF_E_TIMEOUT,
						 last.http_status,
						 last.provider_code,
						 "%s: deadline passed after "
						 "%u attempts (last: %s)",
						 op, attempt, last.msg);
			else
				kf_fail(err, KF_E_TIMEOUT,
					"%s: deadline passed", op);
			return -1;
		}
		left = (unsigned)(deadline - now);
		/* Keep time for a retry unless this is the last attempt. */
		slice = left;
		if (attempt + 1 < sm->attempts) {
			unsigned part = sm->timeout_ms / 2;

			if (part < SM_MIN_ATTEMPT_MS)
				part = SM_MIN_ATTEMPT_MS;
			if (slice > part)
				slice = part;
		}
		kf_http_resp_init(&resp);
		kf_err_clear(&last);
		t0 = kf_clock_now_ms();
		arc = sm_attempt(sm, op, body, slice, &resp, &last);
		kf_stats_api("aws", op, (unsigned)(kf_clock_now_ms() - t0),
			     arc == 0 && resp.status >= 200 &&
				     resp.status < 300,
			     attempt > 0);
		if (arc) {
			kf_http_resp_release(&resp);
			if (last.code != KF_E_UNAVAILABLE &&
			    last.code != KF_E_TIMEOUT) {
				*err = last;
				return -1;
			}
			act = KF_AWS_SM_RETRY;
		} else if (resp.status >= 200 && resp.status < 300) {
			json_t *j = NULL;

			if (resp.body.len == 0) {
				j = json_object();
			} else {
				j = json_loadb(resp.body.data, resp.body.len,
					       JSON_ALLOW_NUL, NULL);
			}
			kf_http_resp_release(&resp);
			if (!json_is_object(j)) {
				json_decref(j);
				return kf_fail_provider(err, KF_E_IO, 200,
							NULL,
							"%s: malformed "
							"response", op);
			}
			*out = j;
			rc = 0;
			return rc;
		} else {
			kf_http_resp_header(&resp, "x-amzn-ErrorType",
					    hdr_type, sizeof(hdr_type));
			act = classify(op, resp.status,
				       resp.body.data ? resp.body.data : "",
				       resp.body.len, hdr_type, &last);
			kf_http_resp_release(&resp);
		}
		if (act == KF_AWS_SM_FAIL) {
			*err = last;
			return -1;
		}
		if (act == KF_AWS_SM_REFRESH) {
			if (refreshed) {
				*err = last;
				return -1;
			}
			refreshed = 1;
			kf_log(KF_LOG_INFO, "aws: %s: %s, refreshing "
			       "credentials", op, last.provider_code);
			kf_aws_chain_invalidate(sm->chain);
			continue;
		}
		if (attempt + 1 >= sm->attempts) {
			kf_fail_provider(err, KF_E_UNAVAILABLE,
					 last.http_status, last.provider_code,
					 "%s: failed after %u attempts (%s)",
					 op, attempt + 1, last.msg);
			return -1;
		}
		kf_log(KF_LOG_DEBUG, "aws: %s attempt %u: %s; retrying", op,
		       attempt + 1, last.msg);
		pause = kf_retry_backoff_ms(attempt, sm->backoff_base_ms,
				      SM_BACKOFF_CAP_MS);
		now = kf_clock_now_ms();
		if (now + pause >= deadline)
			pause = now < deadline ? (unsigned)(deadline - now) : 0;
		kf_clock_sleep_ms(pause);
	}
	return rc;
}

/* ---- response parsing -------------------------------------------------- */

static int parse_tags(const json_t *o, struct kf_aws_sm_meta *m)
{
	const json_t *tags = json_object_get(o, "Tags");
	size_t n, i;

	if (!json_is_array(tags) || json_array_size(tags) == 0)
		return 0;
	n = json_array_size(tags);
	m->tags = calloc(n, sizeof(*m->tags));
	if (!m->tags)
		return -1;
	for (i = 0; i < n; i++) {
		const json_t *t = json_array_get(tags, i);
		const char *k = jstr(t, "Key"), *v = jstr(t, "Value");

		if (!k)
			continue;
		m->tags[m->ntags].key = strdup(k);
		m->tags[m->ntags].value = strdup(v ? v : "");
		m->ntags++;
		if (!m->tags[m->ntags - 1].key || !m->tags[m->ntags - 1].value)
			return -1;
	}
	return 0;
}

static int parse_meta(const json_t *o, struct kf_aws_sm_meta *m)
{
	const json_t *vs;
	const char *k;
	json_t *labels;

	memset(m, 0, sizeof(*m));
	if (!jstr(o, "Name"))
		return -1;
	m->name = strdup(jstr(o, "Name"));
	m->arn = xstrdup_or_null(jstr(o, "ARN"));
	m->description = xstrdup_or_null(jstr(o, "Description"));
	if (!m->name || (jstr(o, "ARN") && !m->arn) ||
	    (jstr(o, "Description") && !m->description))
		return -1;
	m->created = jtime(o, "CreatedDate");
	m->changed = jtime(o, "LastChangedDate");
	m->deleted = jtime(o, "DeletedDate");
	vs = json_object_get(o, "VersionIdsToStages");
	if (!json_is_object(vs))
		vs = json_object_get(o, "SecretVersionsToStages");
	if (json_is_object(vs)) {
		json_object_foreach((json_t *)vs, k, labels) {
			size_t i;
			json_t *l;

			if (!json_is_array(labels))
				continue;
			json_array_foreach(labels, i, l) {
				if (json_is_string(l) &&
				    strcmp(json_string_value(l),
					   "AWSCURRENT") == 0) {
					free(m->current_version);
					m->current_version = strdup(k);
					if (!m->current_version)
						return -1;
				}
			}
		}
	}
	return parse_tags(o, m);
}

/* ---- operations -------------------------------------------------------- */

int kf_aws_sm_list(struct kf_aws_sm *sm, const char *prefix,
		   const char *token, unsigned max, struct kf_aws_sm_page *page,
		   struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	const json_t *list;
	size_t n, i;
	int first = 1, rc = -1;

	memset(page, 0, sizeof(*page));
	kf_buf_init(&body, 16384);
	if (max < 1 || max > 100)
		max = 100;
	if (kf_buf_add(&body, "{", 1) ||
	    js_member(&body, &first, "MaxResults") ||
	    kf_buf_addf(&body, "%u", max) ||
	    js_member_str(&body, &first, "SortBy", "name") ||
	    js_member_str(&body, &first, "SortOrder", "asc") ||
	    (token && token[0] &&
	     js_member_str(&body, &first, "NextToken", token)))
		goto toolong;
	if (prefix && prefix[0]) {
		if (js_member(&body, &first, "Filters") ||
		    kf_buf_adds(&body, "[{\"Key\":\"name\",\"Values\":[") ||
		    js_str(&body, prefix, strlen(prefix)) ||
		    kf_buf_adds(&body, "]}]"))
			goto toolong;
	}
	if (kf_buf_add(&body, "}", 1))
		goto toolong;
	if (sm_call(sm, "ListSecrets", &body, &j, err))
		goto out;
	list = json_object_get(j, "SecretList");
	n = json_is_array(list) ? json_array_size(list) : 0;
	if (n) {
		page->v = calloc(n, sizeof(*page->v));
		if (!page->v)
			goto nomem;
	}
	for (i = 0; i < n; i++) {
		const json_t *e = json_array_get(list, i);
		struct kf_aws_sm_meta m;

		if (!json_is_object(e))
			continue;
		if (parse_meta(e, &m)) {
			kf_aws_sm_meta_release(&m);
			if (!jstr(e, "Name"))
				continue;
			goto nomem;
		}
		if (m.deleted || (prefix && strncmp(m.name, prefix,
						    strlen(prefix)) != 0)) {
			kf_aws_sm_meta_release(&m);
			continue;
		}
		page->v[page->n++] = m;
	}
	if (jstr(j, "NextToken") && jstr(j, "NextToken")[0]) {
		page->next_token = strdup(jstr(j, "NextToken"));
		if (!page->next_token)
			goto nomem;
	}
	rc = 0;
	goto out;
toolong:
	kf_fail(err, KF_E_INVALID, "ListSecrets: request too long");
	goto out;
nomem:
	kf_fail(err, KF_E_NOMEM, "out of memory");
out:
	if (rc)
		kf_aws_sm_page_release(page);
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

/* {"SecretId": id} */
static int body_id(struct kf_buf *body, const char *id, int *first,
		   struct kf_err *err)
{
	if (kf_buf_add(body, "{", 1) ||
	    js_member_str(body, first, "SecretId", id))
		return kf_fail(err, KF_E_INVALID, "secret id too long");
	return 0;
}

int kf_aws_sm_describe(struct kf_aws_sm *sm, const char *id,
		       struct kf_aws_sm_meta *meta, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int first = 1, rc = -1;

	memset(meta, 0, sizeof(*meta));
	kf_buf_init(&body, 8192);
	if (body_id(&body, id, &first, err))
		goto out;
	if (kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_INVALID, "secret id too long");
		goto out;
	}
	if (sm_call(sm, "DescribeSecret", &body, &j, err))
		goto out;
	if (parse_meta(j, meta)) {
		kf_aws_sm_meta_release(meta);
		kf_fail(err, KF_E_IO, "DescribeSecret: malformed response");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

/* The value in a GetSecretValue-shaped object (SecretString bytes, or
 * SecretBinary decoded; none = empty), in a new secret; NULL + err. */
static struct kf_secret *value_of(const json_t *o, struct kf_buf *bin,
				  const char *op, struct kf_err *err)
{
	const json_t *v = json_object_get(o, "SecretString");
	struct kf_secret *s;

	kf_buf_reset(bin);
	if (json_is_string(v)) {
		s = kf_secret_dup(json_string_value(v), json_string_length(v));
	} else {
		v = json_object_get(o, "SecretBinary");
		if (json_is_string(v)) {
			if (kf_base64_decode(json_string_value(v),
					     json_string_length(v), bin)) {
				kf_fail(err, KF_E_IO, "%s: bad SecretBinary "
					"encoding", op);
				return NULL;
			}
			s = kf_secret_dup(bin->data ? bin->data : "", bin->len);
		} else {
			s = kf_secret_new(0);
		}
	}
	if (!s)
		kf_fail(err, KF_E_NOMEM, "out of memory");
	return s;
}

int kf_aws_sm_batch_get(struct kf_aws_sm *sm, const char *const *ids,
			size_t n,
			void (*fn)(void *ctx, const char *name,
				   struct kf_secret *value),
			void *ctx, struct kf_err *err)
{
	struct kf_buf body, bin;
	json_t *j = NULL, *e;
	size_t i;
	int rc = -1;

	if (n < 1 || n > 20)
		return kf_fail(err, KF_E_INVALID,
			       "BatchGetSecretValue takes 1 to 20 ids");
	kf_buf_init(&body, 20 * 2100 + 64);
	kf_buf_init_sensitive(&bin, KF_AWS_SM_MAX_VALUE * 2);
	if (kf_buf_adds(&body, "{\"SecretIdList\":["))
		goto toolong;
	for (i = 0; i < n; i++)
		if ((i && kf_buf_adds(&body, ",")) ||
		    js_str(&body, ids[i], strlen(ids[i])))
			goto toolong;
	if (kf_buf_adds(&body, "]}"))
		goto toolong;
	if (sm_call(sm, "BatchGetSecretValue", &body, &j, err))
		goto out;
	json_array_foreach(json_object_get(j, "SecretValues"), i, e) {
		const char *name = jstr(e, "Name");
		struct kf_secret *s;

		if (!name)
			continue;
		s = value_of(e, &bin, "BatchGetSecretValue", err);
		if (!s)
			goto out;
		fn(ctx, name, s);
	}
	rc = 0;
	goto out;
toolong:
	kf_fail(err, KF_E_INVALID, "BatchGetSecretValue: request too long");
out:
	json_decref(j);
	kf_buf_release(&bin);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_get_value(struct kf_aws_sm *sm, const char *id,
			struct kf_secret **value, char *version,
			size_t versionlen, struct kf_err *err)
{
	struct kf_buf body, bin;
	struct kf_secret *s = NULL;
	json_t *j = NULL;
	int first = 1, rc = -1;

	*value = NULL;
	if (version && versionlen)
		version[0] = '\0';
	kf_buf_init(&body, 8192);
	kf_buf_init_sensitive(&bin, KF_AWS_SM_MAX_VALUE * 2);
	if (body_id(&body, id, &first, err))
		goto out;
	if (kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_INVALID, "secret id too long");
		goto out;
	}
	if (sm_call(sm, "GetSecretValue", &body, &j, err)) {
		/*
		 * A secret without a version labelled AWSCURRENT (created
		 * without a value) answers ResourceNotFoundException "can't
		 * find the specified secret value for staging label"; it
		 * exists and reads empty.
		 */
		if (err->code == KF_E_NOTFOUND &&
		    strstr(err->msg, "secret value for")) {
			s = kf_secret_new(0);
			if (!s) {
				kf_fail(err, KF_E_NOMEM, "out of memory");
				goto out;
			}
			kf_err_clear(err);
			*value = s;
			s = NULL;
			rc = 0;
		}
		goto out;
	}
	s = value_of(j, &bin, "GetSecretValue", err);
	if (!s)
		goto out;
	if (version && versionlen && jstr(j, "VersionId"))
		snprintf(version, versionlen, "%s", jstr(j, "VersionId"));
	*value = s;
	s = NULL;
	rc = 0;
out:
	kf_secret_free(s);
	json_decref(j);
	kf_buf_release(&bin);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_create(struct kf_aws_sm *sm, const char *name,
		     const char *token, const unsigned char *value, size_t n,
		     const struct kf_aws_sm_tag *tags, size_t ntags,
		     struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int first = 1, rc = -1;

	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "CreateSecret: value of %zu "
			       "bytes is over the %d-byte limit", n,
			       KF_AWS_SM_MAX_VALUE);
	kf_buf_init_sensitive(&body, SM_BODY_MAX);
	if (kf_buf_add(&body, "{", 1) ||
	    js_member_str(&body, &first, "Name", name) ||
	    js_member_str(&body, &first, "ClientRequestToken", token) ||
	    (value && n && js_member_value(&body, &first, value, n)) ||
	    (tags && ntags && js_member_tags(&body, &first, tags, ntags)) ||
	    kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_NOMEM, "CreateSecret: request too large");
		goto out;
	}
	if (sm_call(sm, "CreateSecret", &body, &j, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_put_value(struct kf_aws_sm *sm, const char *id,
			const char *token, const unsigned char *value,
			size_t n, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int first = 1, rc = -1;

	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "PutSecretValue: value of %zu "
			       "bytes is over the %d-byte limit", n,
			       KF_AWS_SM_MAX_VALUE);
	if (n == 0)
		return kf_fail(err, KF_E_INVALID, "PutSecretValue: Secrets "
			       "Manager cannot store an empty value");
	kf_buf_init_sensitive(&body, SM_BODY_MAX);
	if (body_id(&body, id, &first, err))
		goto out;
	if (js_member_str(&body, &first, "ClientRequestToken", token) ||
	    js_member_value(&body, &first, value, n) ||
	    kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_NOMEM, "PutSecretValue: request too large");
		goto out;
	}
	if (sm_call(sm, "PutSecretValue", &body, &j, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_update_description(struct kf_aws_sm *sm, const char *id,
				 const char *description, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	char token[37];
	int first = 1, rc = -1;

	kf_buf_init(&body, 16384);
	if (kf_uuid4(token, err) || body_id(&body, id, &first, err))
		goto out;
	/* moto rejects UpdateSecret without a token; AWS accepts one. */
	if (js_member_str(&body, &first, "ClientRequestToken", token) ||
	    js_member_str(&body, &first, "Description", description) ||
	    kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_INVALID, "UpdateSecret: description too "
			"long");
		goto out;
	}
	if (sm_call(sm, "UpdateSecret", &body, &j, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_tag(struct kf_aws_sm *sm, const char *id,
		  const struct kf_aws_sm_tag *tags, size_t ntags,
		  struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int first = 1, rc = -1;

	kf_buf_init(&body, 65536);
	if (body_id(&body, id, &first, err))
		goto out;
	if (js_member_tags(&body, &first, tags, ntags) ||
	    kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_INVALID, "TagResource: request too long");
		goto out;
	}
	if (sm_call(sm, "TagResource", &body, &j, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}

int kf_aws_sm_delete(struct kf_aws_sm *sm, const char *id,
		     unsigned recovery_days, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int first = 1, rc = -1, bad;

	kf_buf_init(&body, 8192);
	if (body_id(&body, id, &first, err))
		goto out;
	if (recovery_days == 0)
		bad = js_member(&body, &first, "ForceDeleteWithoutRecovery") ||
		      kf_buf_adds(&body, "true");
	else
		bad = js_member(&body, &first, "RecoveryWindowInDays") ||
		      kf_buf_addf(&body, "%u", recovery_days);
	if (bad || kf_buf_add(&body, "}", 1)) {
		kf_fail(err, KF_E_INVALID, "DeleteSecret: request too long");
		goto out;
	}
	if (sm_call(sm, "DeleteSecret", &body, &j, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&body);
	return rc;
}
