/*
 * A small gRPC server for unary calls over a unix socket: HTTP/2 without
 * TLS ("h2c" with prior knowledge, as gRPC's insecure channels speak it),
 * framed by nghttp2, the HTTP/2 library libcurl already links.  Requests
 * and answers pass through locked memory only: a request's bytes are
 * gathered in a kf_secret, an answer is written to the socket straight
 * from the handler's kf_secret, and both are wiped when done.  Never logs
 * a message's bytes.
 *
 * Threads: one per connection runs that connection's HTTP/2 session;
 * complete requests go to a fixed pool of workers (a slow call never
 * stops another stream or connection), whose answers the connection's
 * thread sends.
 */
#ifndef KF_CSI_GRPC_H
#define KF_CSI_GRPC_H

#include <stddef.h>

#include "core/err.h"
#include "core/secret.h"

/* gRPC status codes the server and handlers use. */
enum kf_grpc_code {
	KF_GRPC_OK = 0,
	KF_GRPC_CANCELLED = 1,
	KF_GRPC_UNKNOWN = 2,
	KF_GRPC_INVALID_ARGUMENT = 3,
	KF_GRPC_NOT_FOUND = 5,
	KF_GRPC_PERMISSION_DENIED = 7,
	KF_GRPC_RESOURCE_EXHAUSTED = 8,
	KF_GRPC_UNIMPLEMENTED = 12,
	KF_GRPC_INTERNAL = 13,
	KF_GRPC_UNAVAILABLE = 14,
};

/* The most a request message may hold (answers are not limited). */
#define KF_GRPC_MAX_REQUEST (4u << 20)

/*
 * A unary method: msg/len is the request message (without gRPC's 5-byte
 * prefix; borrowed, wiped after the call).  Returns a gRPC status code;
 * with KF_GRPC_OK *resp is the answer message (a new secret the server
 * sends and frees), else *resp stays NULL and why (no secret text: it is
 * sent as grpc-message) may be written to status_msg (n bytes).  Runs on
 * a worker thread; handlers of different calls run concurrently.
 */
typedef int (*kf_grpc_fn)(void *ctx, const unsigned char *msg, size_t len,
			  struct kf_secret **resp, char *status_msg, size_t n);

struct kf_grpc_method {
	const char *path; /* "/v1alpha1.CSIDriverProvider/Mount" */
	kf_grpc_fn fn;
};

struct kf_grpc_cfg {
	const char *socket_path;
	const struct kf_grpc_method *methods; /* ends with { NULL, NULL } */
	void *ctx;			      /* passed to every method */
	unsigned workers;		      /* 0: 16 */
	unsigned max_conns;		      /* 0: 64; more wait in listen */
	unsigned socket_mode;		      /* 0: 0660 */
};

struct kf_grpc_server;

/*
 * Bind and listen on cfg->socket_path: a stale socket left by a dead
 * server (nothing accepts on it) is replaced; a live one, or anything
 * that is not a socket, is an error (KF_E_EXISTS).  The parent directory
 * must exist.  Starts no thread.  0 or -1 with *err.
 */
int kf_grpc_server_new(const struct kf_grpc_cfg *cfg,
		       struct kf_grpc_server **out, struct kf_err *err);

/*
 * Serve until kf_grpc_server_stop (from a signal handler or any thread):
 * accept, run sessions, dispatch calls.  An unknown method gets
 * UNIMPLEMENTED, a request over KF_GRPC_MAX_REQUEST RESOURCE_EXHAUSTED,
 * a compressed or malformed message INTERNAL (with the stream reset
 * where HTTP/2 requires it).  Returns 0 after a stop, -1 with *err when
 * the listening socket fails.
 */
int kf_grpc_server_run(struct kf_grpc_server *s, struct kf_err *err);

/* Ask run() to return: async-signal-safe (writes to a pipe). */
void kf_grpc_server_stop(struct kf_grpc_server *s);

/*
 * After run() returned: close connections (calls in flight are
 * finished first, their answers dropped), join threads, unlink the
 * socket, free.  Accepts NULL.
 */
void kf_grpc_server_free(struct kf_grpc_server *s);

#endif
