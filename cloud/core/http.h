/*
 * HTTP for the cloud layer: the only module that talks to libcurl.  One
 * easy handle per request, connections shared (keep-alive reuse), every
 * libcurl buffer wiped when freed, connect and total timeouts,
 * capped response sizes, TLS always verified, plain http only to loopback
 * hosts.  Bodies go into sensitive buffers; nothing here logs a body, a
 * header value or a URL query.  One call = one attempt: retry policy
 * belongs to the caller (core/retry.h drives it), because only the caller
 * knows which errors are safe to retry.
 */
#ifndef KF_HTTP_H
#define KF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define KF_HTTP_MAX_RESPONSE_DEFAULT (4u << 20)

struct kf_http_req {
	const char *method;	    /* "GET", "POST", "PUT", "DELETE" */
	const char *url;	    /* absolute http(s) URL */
	const char *const *headers; /* "Name: value" lines, NULL-ended;
					 * may be NULL */
	const void *body;	    /* may be NULL when body_len is 0 */
	size_t body_len;
	unsigned timeout_ms;	     /* whole attempt; 0 = 30 s */
	unsigned connect_timeout_ms; /* 0 = min(timeout, 10 s) */
	size_t max_response;	     /* 0 = KF_HTTP_MAX_RESPONSE_DEFAULT */
	/*
	 * Send on a new connection.  libcurl silently sends a request again
	 * when a kept-alive connection it reused dies before any answer; a
	 * call that has no idempotency token (and would make a second
	 * version) asks for a fresh connection, so it is sent once per
	 * attempt and its caller decides about retries.
	 */
	unsigned fresh_connect : 1;
	unsigned allow_metadata_ip : 1; /* also allow plain http to the
					 * cloud metadata addresses
					 * 169.254.169.254, 169.254.170.2,
					 * 169.254.170.23, fd00:ec2::254 and
					 * fd00:ec2::23 (never via a proxy) */
};

struct kf_http_resp {
	long status;	       /* HTTP status, 0 before a response */
	struct kf_buf body;    /* sensitive; NUL-terminated */
	struct kf_buf headers; /* raw "Name: value\r\n" lines of the
					 * final response */
};

/* Initialise an empty response (no allocation). */
void kf_http_resp_init(struct kf_http_resp *r);
/* Free (and wipe) the contents.  Accepts NULL. */
void kf_http_resp_release(struct kf_http_resp *r);

/*
 * The value of response header name (case-insensitive) copied into out
 * (NUL-terminated, truncated to outlen).  Returns 1 if found, else 0.
 */
int kf_http_resp_header(const struct kf_http_resp *r, const char *name,
			char *out, size_t outlen);

/*
 * One HTTP exchange.  Returns 0 when a response arrived (any status: the
 * caller classifies it), or -1 with err: KF_E_INVALID for a refused URL
 * (bad scheme, http to a non-loopback host), KF_E_UNAVAILABLE for
 * connection failures and resets, KF_E_TIMEOUT when the deadline passed,
 * KF_E_TOOBIG when the response passed max_response, KF_E_DENIED for TLS
 * verification failures.  Thread-safe; uses this thread's handle.
 */
int kf_http_do(const struct kf_http_req *req, struct kf_http_resp *resp,
	       struct kf_err *err);

/* Check the URL policy alone (https, or http to 127.0.0.0/8, ::1,
 * localhost).  0 when allowed, else -1 with KF_E_INVALID. */
int kf_http_check_url(const char *url, struct kf_err *err);

/*
 * Test seam: route every kf_http_do through fn instead of libcurl (NULL
 * restores libcurl).  Not for production code.
 */
typedef int (*kf_http_transport_fn)(const struct kf_http_req *req,
				    struct kf_http_resp *resp,
				    struct kf_err *err);
void kf_http_set_transport(kf_http_transport_fn fn);

/* curl_global_init; call once from main() before threads start. */
int kf_http_global_init(struct kf_err *err);
/* Kept for callers from when handles were per thread: nothing to free. */
void kf_http_thread_cleanup(void);

#endif
