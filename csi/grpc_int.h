/*
 * What csi/grpc.c (the HTTP/2 sessions, the only nghttp2 user) and
 * csi/grpc_server.c (the socket, the accept loop, the worker pool) share.
 * Not for other files.  A call's message bytes live in kf_secret memory
 * only and are never logged.
 */
#ifndef KF_CSI_GRPC_INT_H
#define KF_CSI_GRPC_INT_H

#include <pthread.h>
#include <stdint.h>

#include "grpc.h"

struct kf_grpc_conn;

/* One unary call: a stream of a connection. */
struct kf_grpc_call {
	struct kf_grpc_conn *c;
	int32_t stream_id;
	const struct kf_grpc_method *m; /* NULL: unknown method */
	struct kf_secret *req;		/* prefix + message as received */
	int too_big;			/* more than KF_GRPC_MAX_REQUEST */
	int bad;			/* :method or content-type refused */
	int code;			/* gRPC status of the answer */
	char msg[256];			/* grpc-message, no secret text */
	struct kf_secret *resp;		/* answer message (no prefix) */
	unsigned char prefix[5];	/* gRPC prefix of resp */
	size_t rd_off, wr_off;		/* of prefix + resp: queued, sent */
	/* Set once the call went to the worker pool: the conn thread then
	 * leaves it alone until it comes back on the done list. */
	int at_worker; /* protected by c->mu */
	int orphan;    /* stream gone: drop the answer; protected by c->mu */
	struct kf_grpc_call *next;		  /* queue or done list */
	struct kf_grpc_call *all_prev, *all_next; /* conn thread only */
};

/* One client connection, run by its own thread. */
struct kf_grpc_conn {
	struct kf_grpc_server *s;
	int fd;
	int wake[2]; /* workers and free() write a byte to wake the thread */
	pthread_t th;
	void *session;		  /* nghttp2_session, conn thread only */
	struct kf_grpc_call *all; /* every live call, conn thread only */
	struct kf_secret *rbuf;	  /* socket reads, wiped after use */
	pthread_mutex_t mu;
	pthread_cond_t cv;	   /* inflight dropped */
	struct kf_grpc_call *done; /* answered calls; protected by mu */
	unsigned inflight;	   /* calls at workers; protected by mu */
	int closing;		   /* free() asks to stop; protected by mu */
	int finished; /* the thread is about to return; protected by s->mu */
	struct kf_grpc_conn *next; /* protected by s->mu */
};

struct kf_grpc_server {
	char *path;
	const struct kf_grpc_method *methods;
	void *ctx;
	unsigned nworkers, max_conns;
	int lfd;
	int ctl[2]; /* 'S' stop (signal-safe), 'R' a connection finished */
	pthread_t *workers;
	unsigned started; /* worker threads running */
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	struct kf_grpc_call *q_head, *q_tail; /* protected by mu */
	int quit;		    /* workers exit; protected by mu */
	struct kf_grpc_conn *conns; /* protected by mu */
	unsigned nconns;	    /* protected by mu */
};

/* grpc.c: the connection thread (arg: a kf_grpc_conn). */
void *kf_grpc_conn_main(void *arg);

/* grpc_server.c: hand a complete call to the worker pool. */
void kf_grpc_enqueue(struct kf_grpc_server *s, struct kf_grpc_call *call);

/* grpc_server.c: write one byte to a non-blocking pipe (signal-safe). */
void kf_grpc_poke(int fd, char ch);

/* grpc.c: free a call (wiping its request and answer). */
void kf_grpc_call_free(struct kf_grpc_call *call);

#endif
