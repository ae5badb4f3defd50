/*
 * AWS Signature Version 4 as pure functions: canonical request, string to
 * sign, signing key and Authorization header, with the time passed in (the
 * settable clock).  Never logs; the secret key and derived keys are wiped
 * from the stack before returning.
 */
#ifndef KF_SIGV4_H
#define KF_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"

struct kf_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL when none */
};

struct kf_sigv4_header {
	const char *name;  /* any case; trimmed and lowered */
	const char *value; /* spaces folded as SigV4 requires */
};

struct kf_sigv4_req {
	const char *method; /* "POST" */
	const char *path;   /* raw path, e.g. "/" (not yet encoded) */
	const char *query;  /* raw query without '?', or NULL */
	const struct kf_sigv4_header *headers; /* headers to sign, incl.
						 * host; count in nheaders */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *region;  /* "us-east-1" */
	const char *service; /* "secretsmanager" */
	time_t now;	     /* request time (UTC seconds) */
};

/* "YYYYMMDDTHHMMSSZ" for t, into out[17]. */
void kf_sigv4_amz_date(time_t t, char out[17]);

/* The canonical request (appended to out). */
int kf_sigv4_canonical_request(const struct kf_sigv4_req *req,
			       struct kf_buf *out, struct kf_err *err);

/* The string to sign (appended to out). */
int kf_sigv4_string_to_sign(const struct kf_sigv4_req *req, struct kf_buf *out,
			    struct kf_err *err);

/*
 * The complete Authorization header value ("AWS4-HMAC-SHA256
 * Credential=..., SignedHeaders=..., Signature=...") appended to out.
 * The caller must send X-Amz-Date (kf_sigv4_amz_date(req->now)) and, when
 * a session token is set, X-Amz-Security-Token, and should include both
 * among req->headers so they are signed.
 */
int kf_sigv4_authorization(const struct kf_sigv4_req *req,
			   const struct kf_sigv4_creds *creds,
			   struct kf_buf *out, struct kf_err *err);

#endif
