/*
 * The only file that talks to libcurl: one easy handle per request (the
 * connections are shared), TLS always verified, plain http only to
 * loopback, bounded responses, every libcurl buffer wiped when freed.  It
 * never logs or quotes a body, a header value or a URL query, and never
 * turns on curl's verbose output.
 */
#include "core/http.h"

#include "core/crypto.h"
#include "core/secret.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define KF_HTTP_MAX_HEADERS (256u << 10)
#define KF_HTTP_HOSTLEN 256

static kf_http_transport_fn transport; /* atomic loads/stores only */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

/*
 * One connection cache (plus DNS cache and TLS sessions) shared by every
 * request: each request has its own easy handle (below), and a cold read
 * on any thread still finds a kept-alive connection.  libcurl calls these
 * locks around its use of the shared data.
 */
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h;
	(void)a;
	(void)u;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h;
	(void)u;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&share_locks[d]);
}

/*
 * libcurl allocates through these: every block is wiped when freed or
 * moved, so its request buffer (headers with tokens and the body),
 * upload buffer (a copy of the request over TLS), receive buffer and
 * header buffers leave nothing behind when a request's handle is
 * cleaned up.
 */
static void *curl_mem_malloc(size_t n)
{
	return malloc(n);
}

static void *curl_mem_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static char *curl_mem_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static void init_once_fn(void)
{
	/* Thread-safe in libcurl >= 7.84; main() should still call
	 * kf_http_global_init before threads start. */
	global_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_mem_malloc,
					 kf_wipe_usable_free,
					 kf_wipe_usable_realloc,
					 curl_mem_strdup, curl_mem_calloc);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	share = curl_share_init();
	if (share &&
	    (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) ||
	     curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	     curl_share_setopt(share, CURLSHOPT_SHARE,
			       CURL_LOCK_DATA_CONNECT) ||
	     curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	     curl_share_setopt(share, CURLSHOPT_SHARE,
			       CURL_LOCK_DATA_SSL_SESSION))) {
		/* Without sharing no connection outlives its request. */
		curl_share_cleanup(share);
		share = NULL;
	}
}

int kf_http_global_init(struct kf_err *err)
{
	pthread_once(&init_once, init_once_fn);
	if (global_rc != CURLE_OK)
		return kf_fail(err, KF_E_IO,
			       "libcurl initialisation failed: %s",
			       curl_easy_strerror(global_rc));
	return 0;
}

void kf_http_thread_cleanup(void)
{
	/* Nothing is kept per thread: each request has its own handle. */
}

void kf_http_set_transport(kf_http_transport_fn fn)
{
	__atomic_store_n(&transport, fn, __ATOMIC_SEQ_CST);
}

void kf_http_resp_init(struct kf_http_resp *r)
{
	r->status = 0;
	kf_buf_init_sensitive(&r->body, KF_HTTP_MAX_RESPONSE_DEFAULT);
	kf_buf_init(&r->headers, KF_HTTP_MAX_HEADERS);
}

void kf_http_resp_release(struct kf_http_resp *r)
{
	if (!r)
		return;
	kf_buf_release(&r->body);
	kf_buf_release(&r->headers);
	r->status = 0;
}

int kf_http_resp_header(const struct kf_http_resp *r, const char *name,
			char *out, size_t outlen)
{
	const char *p = kf_buf_str(&r->headers);
	const char *end = p + r->headers.len;
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v, *ve;
		size_t n;

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			v = p + nlen + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' ||
					  ve[-1] == '\t'))
				ve--;
			if (outlen) {
				n = (size_t)(ve - v);
				if (n >= outlen)
					n = outlen - 1;
				memcpy(out, v, n);
				out[n] = '\0';
			}
			return 1;
		}
		p = eol + 1;
	}
	return 0;
}

/*
 * Scheme and host of url as libcurl will see them (its own parser, so the
 * policy cannot be fooled by a parser differential).  host receives the
 * host name without brackets.
 */
static int url_parts(const char *url, char *scheme, size_t slen, char *host,
		     size_t hlen)
{
	CURLU *u = curl_url();
	char *s = NULL, *h = NULL;
	size_t n;
	int rc = -1;

	if (!u)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
		goto out;
	if (snprintf(scheme, slen, "%s", s) >= (int)slen)
		goto out;
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		if (n - 2 >= hlen)
			goto out;
		memcpy(host, h + 1, n - 2);
		host[n - 2] = '\0';
	} else if (snprintf(host, hlen, "%s", h) >= (int)hlen) {
		goto out;
	}
	rc = 0;
out:
	curl_free(s);
	curl_free(h);
	curl_url_cleanup(u);
	return rc;
}

static int host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

/* The link-local metadata endpoints of EC2, ECS and EKS: literal
 * addresses only, never names. */
static int host_is_metadata(const char *host)
{
	static const char *const v4[] = { "169.254.169.254", "169.254.170.2",
					  "169.254.170.23", NULL };
	static const char *const v6[] = { "fd00:ec2::254", "fd00:ec2::23",
					  NULL };
	struct in_addr a4, w4;
	struct in6_addr a6, w6;
	char h[64];
	size_t n = strlen(host);

	if (inet_pton(AF_INET, host, &a4) == 1) {
		for (size_t i = 0; v4[i]; i++)
			if (inet_pton(AF_INET, v4[i], &w4) == 1 &&
			    a4.s_addr == w4.s_addr)
				return 1;
		return 0;
	}
	if (n >= 2 && n < sizeof(h) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
		host = h;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1)
		for (size_t i = 0; v6[i]; i++)
			if (inet_pton(AF_INET6, v6[i], &w6) == 1 &&
			    !memcmp(&a6, &w6, sizeof(a6)))
				return 1;
	return 0;
}

/* The policy check; *loopback tells whether the host is a loopback one
 * (or an allowed metadata address: both bypass proxies). */
static int check_url_ex(const char *url, int allow_metadata, char *host,
			size_t hlen, int *loopback, struct kf_err *err)
{
	char scheme[16];

	if (!url || url_parts(url, scheme, sizeof(scheme), host, hlen) < 0)
		return kf_fail(err, KF_E_INVALID, "malformed URL");
	*loopback = host_is_loopback(host) ||
		    (allow_metadata && host_is_metadata(host));
	if (strcasecmp(scheme, "https") == 0)
		return 0;
	if (strcasecmp(scheme, "http") != 0)
		return kf_fail(err, KF_E_INVALID,
			       "URL scheme %.15s not allowed (https only)",
			       scheme);
	if (!*loopback)
		return kf_fail(err, KF_E_INVALID,
			       "plain http to %.200s refused: https is required "
			       "except for loopback hosts",
			       host);
	return 0;
}

static int check_url(const char *url, char *host, size_t hlen, int *loopback,
		     struct kf_err *err)
{
	return check_url_ex(url, 0, host, hlen, loopback, err);
}

int kf_http_check_url(const char *url, struct kf_err *err)
{
	char host[KF_HTTP_HOSTLEN];
	int loopback;

	return check_url(url, host, sizeof(host), &loopback, err);
}

struct xfer {
	struct kf_http_resp *resp;
	size_t max;
	int toobig;
	int nomem;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (n > x->max || x->resp->body.len > x->max - n) {
		x->toobig = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (kf_buf_add(&x->resp->body, p, n) < 0) {
		x->nomem = 1;
		return 0;
	}
	/* p points into libcurl's receive buffer: the body may be a value
	 * (or its base64), now in the sensitive body buffer only. */
	explicit_bzero(p, n);
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	/* A status line starts a new response (1xx, proxy CONNECT):
	 * only the final response's headers are kept. */
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		kf_buf_reset(&x->resp->headers);
		return n;
	}
	if (n <= 2 && (p[0] == '\r' || p[0] == '\n'))
		return n;
	if (kf_buf_add(&x->resp->headers, p, n) < 0) {
		x->toobig = 1;
		return 0;
	}
	explicit_bzero(p, n);
	return n;
}

/* curl_slist copies header lines, which may hold tokens: wipe them. */
static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int is_ssl_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return 1;
	default:
		return 0;
	}
}

/* Messages name the host and curl's fixed error text, never the URL. */
static int map_curl_error(CURLcode c, const struct xfer *x, const char *host,
			  const char *errbuf, struct kf_err *err)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
	case CURLE_AGAIN:
		return kf_fail(err, KF_E_UNAVAILABLE, "%.200s: %s", host,
			       curl_easy_strerror(c));
	case CURLE_OPERATION_TIMEDOUT:
		return kf_fail(err, KF_E_TIMEOUT, "%.200s: request timed out",
			       host);
	case CURLE_WRITE_ERROR:
		if (x->toobig)
			return kf_fail(err, KF_E_TOOBIG,
				       "%.200s: response larger than %zu bytes",
				       host, x->max);
		if (x->nomem)
			return kf_fail(err, KF_E_NOMEM,
				       "%.200s: out of memory for response",
				       host);
		break;
	case CURLE_OUT_OF_MEMORY:
		return kf_fail(err, KF_E_NOMEM, "%.200s: out of memory", host);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		/* errbuf: curl's TLS text (certificate problem), no URL. */
		return kf_fail(err, KF_E_DENIED,
			       "TLS certificate verification failed for %.200s"
			       "%s%.120s",
			       host, errbuf[0] ? ": " : "", errbuf);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return kf_fail(err, KF_E_INVALID, "%.200s: %s", host,
			       curl_easy_strerror(c));
	default:
		break;
	}
	if (is_ssl_error(c))
		return kf_fail(err, KF_E_DENIED, "TLS failure with %.200s: %s",
			       host, curl_easy_strerror(c));
	if (x->toobig)
		return kf_fail(err, KF_E_TOOBIG,
			       "%.200s: response headers too large", host);
	return kf_fail(err, KF_E_IO, "%.200s: %s", host, curl_easy_strerror(c));
}

static int valid_method(const char *m)
{
	if (!m || !*m || strlen(m) > 16)
		return 0;
	for (; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return 0;
	return 1;
}

#define SETOPT(h, o, v)                                          \
	do {                                                     \
		if (curl_easy_setopt((h), (o), (v)) != CURLE_OK) \
			return kf_fail(err, KF_E_IO,             \
				       "%.200s: libcurl "        \
				       "option %d refused",      \
				       host, (int)(o));          \
	} while (0)

/* The request's headers, plus "Expect:" (no 100-continue round trip)
 * unless the caller set one.  *out is freed with slist_free_wiped. */
static int build_headers(const struct kf_http_req *req, const char *host,
			 struct curl_slist **out, struct kf_err *err)
{
	struct curl_slist *tmp;
	int has_expect = 0;

	for (const char *const *p = req->headers; p && *p; p++) {
		if (strncasecmp(*p, "Expect:", 7) == 0)
			has_expect = 1;
		tmp = curl_slist_append(*out, *p);
		if (!tmp)
			return kf_fail(err, KF_E_NOMEM, "%.200s: out of memory",
				       host);
		*out = tmp;
	}
	if (!has_expect) {
		tmp = curl_slist_append(*out, "Expect:");
		if (!tmp)
			return kf_fail(err, KF_E_NOMEM, "%.200s: out of memory",
				       host);
		*out = tmp;
	}
	return 0;
}

/* Every TLS context libcurl makes: see kf_crypto_tls_harden. */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *u)
{
	(void)h;
	(void)u;
	kf_crypto_tls_harden(ssl_ctx);
	return CURLE_OK;
}

/* Transport options every request gets: TLS verified and hardened, no
 * redirects, no signals, timeouts, keep-alive, HTTP/1.1 (HTTP/2 would
 * keep header values, tokens among them, in the connection's HPACK
 * table and nghttp2's buffers, outside this process's wiping
 * allocator), the body and header callbacks. */
static int set_transport(CURL *h, const struct kf_http_req *req,
			 struct curl_slist *hdrs, struct xfer *x, char *errbuf,
			 const char *host, int loopback, struct kf_err *err)
{
	unsigned timeout = req->timeout_ms ? req->timeout_ms : 30000;
	unsigned ctimeout = req->connect_timeout_ms ?
				    req->connect_timeout_ms :
				    (timeout < 10000 ? timeout : 10000);

	SETOPT(h, CURLOPT_URL, req->url);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	if (share)
		SETOPT(h, CURLOPT_SHARE, share);
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(h, CURLOPT_TIMEOUT_MS, (long)timeout);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout);
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->fresh_connect)
		SETOPT(h, CURLOPT_FRESH_CONNECT, 1L);
	SETOPT(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
	/* A loopback request never goes through a proxy; otherwise the
	 * environment's proxy settings apply (libcurl's default). */
	if (loopback)
		SETOPT(h, CURLOPT_NOPROXY, "*");
	SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
	SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(h, CURLOPT_WRITEDATA, x);
	SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(h, CURLOPT_HEADERDATA, x);
	return 0;
}

static int set_method(CURL *h, const struct kf_http_req *req, const char *host,
		      struct kf_err *err)
{
	if (strcmp(req->method, "GET") == 0 && req->body_len == 0) {
		SETOPT(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "HEAD") == 0) {
		SETOPT(h, CURLOPT_NOBODY, 1L);
	} else {
		/* POSTFIELDS does not copy: the body stays in the caller's
		 * (possibly sensitive) memory. */
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE,
		       (curl_off_t)req->body_len);
		SETOPT(h, CURLOPT_POSTFIELDS,
		       req->body_len ? (const char *)req->body : "");
		if (strcmp(req->method, "POST") != 0)
			SETOPT(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return 0;
}

static int do_curl(const struct kf_http_req *req, struct kf_http_resp *resp,
		   const char *host, int loopback, struct kf_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct xfer x = { resp, 0, 0, 0 };
	char errbuf[CURL_ERROR_SIZE];
	int rc = -1;
	CURLcode c;
	CURL *h;

	pthread_once(&init_once, init_once_fn);
	if (global_rc != CURLE_OK)
		return kf_fail(err, KF_E_IO, "%.200s: libcurl not initialised",
			       host);
	/* A handle per request: its cleanup frees (and so wipes) every
	 * buffer that held this request or its answer.  Connections live
	 * on in the shared cache, so keep-alive survives. */
	h = curl_easy_init();
	if (!h)
		return kf_fail(err, KF_E_NOMEM, "%.200s: no libcurl handle",
			       host);
	errbuf[0] = '\0';
	x.max = req->max_response ? req->max_response :
				    KF_HTTP_MAX_RESPONSE_DEFAULT;
	resp->body.max = x.max;
	if (build_headers(req, host, &hdrs, err) < 0 ||
	    set_transport(h, req, hdrs, &x, errbuf, host, loopback, err) < 0 ||
	    set_method(h, req, host, err) < 0)
		goto out;
	c = curl_easy_perform(h);
	if (c != CURLE_OK) {
		map_curl_error(c, &x, host, errbuf, err);
		kf_buf_reset(&resp->body);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	rc = 0;
out:
	curl_easy_cleanup(h);
	slist_free_wiped(hdrs);
	return rc;
}

int kf_http_do(const struct kf_http_req *req, struct kf_http_resp *resp,
	       struct kf_err *err)
{
	char host[KF_HTTP_HOSTLEN];
	kf_http_transport_fn fn;
	int loopback;

	if (check_url_ex(req->url, req->allow_metadata_ip, host, sizeof(host),
			 &loopback, err) < 0)
		return -1;
	if (!valid_method(req->method))
		return kf_fail(err, KF_E_INVALID, "%.200s: bad HTTP method",
			       host);
	if (req->body_len && !req->body)
		return kf_fail(err, KF_E_INVALID, "%.200s: body missing", host);
	resp->status = 0;
	kf_buf_reset(&resp->body);
	kf_buf_reset(&resp->headers);
	fn = __atomic_load_n(&transport, __ATOMIC_SEQ_CST);
	if (fn)
		return fn(req, resp, err);
	return do_curl(req, resp, host, loopback, err);
}
