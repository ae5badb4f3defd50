/*
 * What the AWS client unit tests share: a scripted HTTP transport
 * (answers queued in fk.resp, or made per request by fk.handler), the
 * requests it saw, a SigV4 clock that ticks one second per reading, and
 * environment credentials with a fresh credential chain on them.  Test
 * code only; the keys here are AWS's documentation examples.
 */
#ifndef T_AWS_FAKE_H
#define T_AWS_FAKE_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "aws/creds.h"
#include "core/buf.h"
#include "core/http.h"

#define MAXREQ 16

struct fake_resp {
	long status; /* 0 = transport failure (UNAVAILABLE),
				 * -1 = transport timeout (TIMEOUT) */
	const char *body;
};

/*
 * A per-request answer instead of the queue: target is the X-Amz-Target
 * ("" when none), body the request body; the answer's body goes into
 * out, its status is returned (0 and -1 as in struct fake_resp).
 */
typedef long (*fake_handler_fn)(void *ctx, const char *target, const char *body,
				size_t len, struct kf_buf *out);

struct fake_state {
	struct fake_resp resp[MAXREQ];
	size_t nresp;
	size_t nreq; /* requests seen; the first MAXREQ are kept below */
	char url[MAXREQ][256];
	char headers[MAXREQ][4096]; /* "line\n" per header */
	char body[MAXREQ][300000];
	size_t body_len[MAXREQ];
	unsigned timeout_ms[MAXREQ];
	fake_handler_fn handler; /* NULL: answer from resp[] */
	void *handler_ctx;
};

extern struct fake_state fk;

/* Forget every request and handler; queue n answers (the last repeats);
 * the clock starts again. */
void fake_reset(size_t n, const struct fake_resp *resp);
int fake_transport(const struct kf_http_req *req, struct kf_http_resp *resp,
		   struct kf_err *err);
/* 2015-08-30T12:36:00Z after fake_reset, one second later at each call. */
time_t fake_clock(void);

/*
 * Environment credentials (AKIDEXAMPLE; a session token when token is
 * not NULL), HOME in the test's directory, no metadata service; returns
 * a new chain on them (fails the test when it cannot).
 */
struct kf_aws_chain *fake_env_chain(const char *token);
/* Unset what fake_env_chain set. */
void fake_env_clear(void);

/* Whether request i carried header line "Name: value" exactly. */
int has_header(size_t i, const char *line);
/* Request i's body parsed (caller decrefs). */
json_t *req_json(size_t i);
/* The value of header name ("Name: ") of request i, into out. */
const char *hdr_value(size_t i, const char *name, char *out, size_t outlen);

#endif
