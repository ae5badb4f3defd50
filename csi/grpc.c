/*
 * The gRPC server's HTTP/2 side: one thread per connection runs that
 * connection's nghttp2 session (the only file that includes nghttp2).
 * Request bytes are gathered in kf_secret memory and answers are written
 * from kf_secret memory straight to the socket (NGHTTP2_DATA_FLAG_NO_COPY),
 * so no copy of a message sits in nghttp2's or libc's buffers; never logs
 * a message byte.
 */
#include "grpc_int.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"

#define RBUF_SIZE (64u * 1024)
#define MAX_STREAMS 256
#define STREAM_WINDOW (1u << 20)
#define REQ_MAX (KF_GRPC_MAX_REQUEST + 5u)

void kf_grpc_call_free(struct kf_grpc_call *call)
{
	struct kf_grpc_conn *c;

	if (!call)
		return;
	c = call->c;
	if (call->all_prev)
		call->all_prev->all_next = call->all_next;
	else
		c->all = call->all_next;
	if (call->all_next)
		call->all_next->all_prev = call->all_prev;
	kf_secret_free(call->req);
	kf_secret_free(call->resp);
	free(call);
}

/* Send all iov bytes, across partial writes and EINTR.  0 or -1. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = { 0 };
		ssize_t w;

		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static ssize_t on_send(nghttp2_session *sess, const uint8_t *data, size_t len,
		       int flags, void *user)
{
	struct kf_grpc_conn *c = user;
	struct iovec iov = { (void *)data, len };

	if (send_iov(c->fd, &iov, 1) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

/* The DATA frame: header, then prefix and answer bytes from the secret. */
static int on_send_data(nghttp2_session *sess, nghttp2_frame *frame,
			const uint8_t *framehd, size_t length,
			nghttp2_data_source *src, void *user)
{
	struct kf_grpc_conn *c = user;
	struct kf_grpc_call *call = src->ptr;
	struct iovec iov[3];
	size_t off = call->wr_off, left = length;
	int n = 0;

	if (frame->data.padlen > 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE; /* never asked for */
	iov[n].iov_base = (void *)framehd;
	iov[n++].iov_len = 9;
	if (off < 5 && left) {
		size_t k = 5 - off < left ? 5 - off : left;

		iov[n].iov_base = call->prefix + off;
		iov[n++].iov_len = k;
		off += k;
		left -= k;
	}
	if (left) {
		iov[n].iov_base = call->resp->data + (off - 5);
		iov[n++].iov_len = left;
	}
	if (send_iov(c->fd, iov, n) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	call->wr_off += length;
	return 0;
}

static nghttp2_nv nv(const char *name, const char *value)
{
	nghttp2_nv v = { (uint8_t *)name, (uint8_t *)value, strlen(name),
			 strlen(value), NGHTTP2_NV_FLAG_NONE };

	return v;
}

static ssize_t on_read(nghttp2_session *sess, int32_t stream_id, uint8_t *buf,
		       size_t length, uint32_t *flags, nghttp2_data_source *src,
		       void *user)
{
	struct kf_grpc_call *call = src->ptr;
	size_t total = 5 + call->resp->len, n = total - call->rd_off;
	nghttp2_nv trailer = nv("grpc-status", "0");

	if (n > length)
		n = length;
	call->rd_off += n;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (call->rd_off == total) {
		*flags |= NGHTTP2_DATA_FLAG_EOF |
			  NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(sess, stream_id, &trailer, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* grpc-message: percent-encoded (gRPC's rules: printable ASCII but %). */
static void pct_encode(const char *in, char *out, size_t outn)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *in && k + 4 < outn; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch >= 0x20 && ch < 0x7f && ch != '%') {
			out[k++] = (char)ch;
		} else {
			out[k++] = '%';
			out[k++] = hex[ch >> 4];
			out[k++] = hex[ch & 15];
		}
	}
	out[k] = 0;
}

/* Submit the answer of a call that is no longer at a worker. */
static int submit_answer(struct kf_grpc_conn *c, struct kf_grpc_call *call)
{
	nghttp2_session *sess = c->session;
	char code[16], msg[3 * sizeof(call->msg)];
	nghttp2_nv h[4];
	nghttp2_data_provider prd;
	size_t n = 0, len;

	h[n++] = nv(":status", "200");
	h[n++] = nv("content-type", "application/grpc");
	if (call->code == KF_GRPC_OK && call->resp) {
		len = call->resp->len;
		call->prefix[0] = 0;
		call->prefix[1] = (unsigned char)(len >> 24);
		call->prefix[2] = (unsigned char)(len >> 16);
		call->prefix[3] = (unsigned char)(len >> 8);
		call->prefix[4] = (unsigned char)len;
		prd.source.ptr = call;
		prd.read_callback = on_read;
		return nghttp2_submit_response(sess, call->stream_id, h, n,
					       &prd);
	}
	if (call->code == KF_GRPC_OK)
		call->code = KF_GRPC_INTERNAL;
	(void)snprintf(code, sizeof(code), "%d", call->code);
	h[n++] = nv("grpc-status", code);
	if (call->msg[0]) {
		pct_encode(call->msg, msg, sizeof(msg));
		h[n++] = nv("grpc-message", msg);
	}
	return nghttp2_submit_response(sess, call->stream_id, h, n, NULL);
}

/* An error answered by the conn thread itself (no worker). */
static void answer_now(struct kf_grpc_conn *c, struct kf_grpc_call *call,
		       int code, const char *msg)
{
	kf_secret_free(call->req);
	call->req = NULL;
	call->code = code;
	(void)snprintf(call->msg, sizeof(call->msg), "%s", msg);
	if (submit_answer(c, call) != 0)
		(void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
						call->stream_id,
						NGHTTP2_INTERNAL_ERROR);
}

static uint32_t declared_len(const struct kf_secret *req)
{
	return (uint32_t)req->data[1] << 24 | (uint32_t)req->data[2] << 16 |
	       (uint32_t)req->data[3] << 8 | req->data[4];
}

/* The request is complete (END_STREAM): check it, hand it to a worker. */
static void request_done(struct kf_grpc_conn *c, struct kf_grpc_call *call)
{
	if (call->bad)
		return answer_now(c, call, KF_GRPC_INTERNAL,
				  "not a gRPC request");
	if (!call->m)
		return answer_now(c, call, KF_GRPC_UNIMPLEMENTED,
				  "unknown method");
	if (call->too_big)
		return answer_now(c, call, KF_GRPC_RESOURCE_EXHAUSTED,
				  "request over 4 MiB");
	if (!call->req || call->req->len < 5)
		return answer_now(c, call, KF_GRPC_INTERNAL, "no message");
	if (call->req->data[0] != 0)
		return answer_now(c, call, KF_GRPC_INTERNAL,
				  "compressed messages are not supported");
	if (declared_len(call->req) != call->req->len - 5)
		return answer_now(c, call, KF_GRPC_INTERNAL,
				  "not exactly one message");
	pthread_mutex_lock(&c->mu);
	call->at_worker = 1;
	c->inflight++;
	pthread_mutex_unlock(&c->mu);
	kf_grpc_enqueue(c->s, call);
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame,
			    void *user)
{
	struct kf_grpc_conn *c = user;
	struct kf_grpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = calloc(1, sizeof(*call));
	if (!call)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	call->c = c;
	call->stream_id = frame->hd.stream_id;
	call->bad = 2; /* no content-type yet */
	call->all_next = c->all;
	if (c->all)
		c->all->all_prev = call;
	c->all = call;
	if (nghttp2_session_set_stream_user_data(sess, call->stream_id, call) !=
	    0) {
		kf_grpc_call_free(call);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int is(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame,
		     const uint8_t *name, size_t namelen, const uint8_t *value,
		     size_t valuelen, uint8_t flags, void *user)
{
	struct kf_grpc_conn *c = user;
	struct kf_grpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
	if (!call)
		return 0;
	if (is(name, namelen, ":path")) {
		call->m = NULL;
		for (const struct kf_grpc_method *m = c->s->methods; m->path;
		     m++)
			if (is(value, valuelen, m->path))
				call->m = m;
	} else if (is(name, namelen, ":method")) {
		if (!is(value, valuelen, "POST"))
			call->bad |= 1;
	} else if (is(name, namelen, "content-type")) {
		if (valuelen >= 16 &&
		    memcmp(value, "application/grpc", 16) == 0 &&
		    (valuelen == 16 || value[16] == '+' || value[16] == ';'))
			call->bad &= ~2;
	}
	return 0;
}

/* Append request bytes to the call's secret, growing it by copying. */
static int on_data(nghttp2_session *sess, uint8_t flags, int32_t stream_id,
		   const uint8_t *data, size_t len, void *user)
{
	struct kf_grpc_call *call;
	struct kf_secret *req, *bigger;
	size_t need, cap;

	call = nghttp2_session_get_stream_user_data(sess, stream_id);
	if (!call || call->at_worker || call->too_big)
		return 0;
	req = call->req;
	need = (req ? req->len : 0) + len;
	if (need > REQ_MAX ||
	    (req && req->len >= 5 && declared_len(req) > KF_GRPC_MAX_REQUEST)) {
		call->too_big = 1;
		kf_secret_free(call->req);
		call->req = NULL;
		return 0;
	}
	if (!req || need > req->cap) {
		cap = req ? req->cap * 2 : 16384;
		if (cap < need)
			cap = need;
		if (cap > REQ_MAX)
			cap = REQ_MAX;
		bigger = kf_secret_new(cap);
		if (!bigger)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (req)
			(void)kf_secret_set(bigger, req->data, req->len);
		kf_secret_free(req);
		call->req = req = bigger;
	}
	(void)kf_secret_write(req, req->len, data, len);
	return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame,
			 void *user)
{
	struct kf_grpc_call *call;

	if ((frame->hd.type != NGHTTP2_DATA &&
	     frame->hd.type != NGHTTP2_HEADERS) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	call = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
	if (call && !call->at_worker && !call->code)
		request_done(user, call);
	return 0;
}

/* A stream closed (answered, reset or the connection going): a call at a
 * worker is orphaned, its answer dropped when it comes back. */
static int on_stream_close(nghttp2_session *sess, int32_t stream_id,
			   uint32_t error_code, void *user)
{
	struct kf_grpc_conn *c = user;
	struct kf_grpc_call *call;
	int at_worker;

	call = nghttp2_session_get_stream_user_data(sess, stream_id);
	if (!call)
		return 0;
	(void)nghttp2_session_set_stream_user_data(sess, stream_id, NULL);
	pthread_mutex_lock(&c->mu);
	at_worker = call->at_worker;
	if (at_worker)
		call->orphan = 1;
	pthread_mutex_unlock(&c->mu);
	if (!at_worker)
		kf_grpc_call_free(call);
	return 0;
}

/* Answers the workers finished: submit them, or drop orphans. */
static void take_done(struct kf_grpc_conn *c)
{
	struct kf_grpc_call *list, *next;
	char b[64];

	while (read(c->wake[0], b, sizeof(b)) > 0)
		;
	pthread_mutex_lock(&c->mu);
	list = c->done;
	c->done = NULL;
	for (struct kf_grpc_call *p = list; p; p = p->next)
		p->at_worker = 0;
	pthread_mutex_unlock(&c->mu);
	for (; list; list = next) {
		next = list->next;
		list->next = NULL;
		if (list->orphan) /* at_worker is 0: only this thread now */
			kf_grpc_call_free(list);
		else if (submit_answer(c, list) != 0)
			(void)nghttp2_submit_rst_stream(c->session,
							NGHTTP2_FLAG_NONE,
							list->stream_id,
							NGHTTP2_INTERNAL_ERROR);
	}
}

static int session_new(struct kf_grpc_conn *c)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_session *sess = NULL;
	nghttp2_settings_entry iv[2] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
	};
	int rc = -1;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		goto out;
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
								on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
							       on_stream_close);
	if (nghttp2_session_server_new(&sess, cb, c) != 0)
		goto out;
	if (nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
		nghttp2_session_del(sess);
		goto out;
	}
	c->session = sess;
	rc = 0;
out:
	nghttp2_session_callbacks_del(cb);
	return rc;
}

/* Read once from the socket into locked memory; 0, or -1 to close. */
static int read_some(struct kf_grpc_conn *c)
{
	ssize_t n = recv(c->fd, c->rbuf->data, c->rbuf->cap, 0);
	ssize_t used;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	used = nghttp2_session_mem_recv(c->session, c->rbuf->data, (size_t)n);
	explicit_bzero(c->rbuf->data, (size_t)n);
	return used < 0 ? -1 : 0;
}

static void serve(struct kf_grpc_conn *c)
{
	nghttp2_session *sess = c->session;
	struct pollfd pfd[2];
	int closing;

	for (;;) {
		if (nghttp2_session_send(sess) != 0)
			return;
		pthread_mutex_lock(&c->mu);
		closing = c->closing;
		pthread_mutex_unlock(&c->mu);
		if (closing) {
			(void)nghttp2_session_terminate_session(sess,
								NGHTTP2_NO_ERROR);
			(void)nghttp2_session_send(sess);
			return;
		}
		if (!nghttp2_session_want_read(sess) &&
		    !nghttp2_session_want_write(sess))
			return;
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = c->wake[0];
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (pfd[1].revents)
			take_done(c);
		if (pfd[0].revents && read_some(c) < 0)
			return;
	}
}

/* Wait until no worker holds a call of c, then free every call. */
static void drain_calls(struct kf_grpc_conn *c)
{
	pthread_mutex_lock(&c->mu);
	for (struct kf_grpc_call *p = c->all; p; p = p->all_next)
		if (p->at_worker)
			p->orphan = 1;
	while (c->inflight)
		pthread_cond_wait(&c->cv, &c->mu);
	c->done = NULL; /* every call on it is also on c->all */
	pthread_mutex_unlock(&c->mu);
	if (c->session)
		nghttp2_session_del(c->session);
	c->session = NULL;
	while (c->all)
		kf_grpc_call_free(c->all);
}

void *kf_grpc_conn_main(void *arg)
{
	struct kf_grpc_conn *c = arg;
	struct kf_grpc_server *s = c->s;
	struct timeval tv = { 30, 0 };

	/* A client that stops reading cannot hold a writer forever. */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->rbuf = kf_secret_new(RBUF_SIZE);
	if (c->rbuf && session_new(c) == 0)
		serve(c);
	else
		kf_log(KF_LOG_ERROR, "grpc: out of memory for a connection");
	drain_calls(c);
	kf_secret_free(c->rbuf);
	c->rbuf = NULL;
	(void)shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&s->mu);
	c->finished = 1;
	kf_grpc_poke(s->ctl[1], 'R');
	pthread_mutex_unlock(&s->mu);
	return NULL;
}
