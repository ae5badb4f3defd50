/*
 * The gRPC server's frame: the unix socket (a stale one replaced, a live
 * one refused), the accept loop, the connection threads' lifecycle and
 * the worker pool that runs the methods.  Never touches an HTTP/2
 * session (csi/grpc.c does) and never logs a message byte.
 */
#include "grpc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

void kf_grpc_poke(int fd, char ch)
{
	ssize_t r = write(fd, &ch, 1);

	(void)r; /* a full pipe already holds a wake-up */
}

/* A stale socket (nothing accepts) is removed; a live one, or anything
 * that is not a socket, is KF_E_EXISTS. */
static int clear_stale(const char *path, const struct sockaddr_un *sa,
		       struct kf_err *err)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return kf_fail(err, KF_E_EXISTS, "grpc: %s: not a socket",
			       path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kf_fail(err, KF_E_IO, "grpc: socket: %s",
			       strerror(errno));
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (rc == 0) {
		close(fd);
		return kf_fail(err, KF_E_EXISTS, "grpc: %s: already serving",
			       path);
	}
	rc = errno;
	close(fd);
	if (rc == ECONNREFUSED) {
		kf_log(KF_LOG_INFO, "grpc: replacing stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return kf_fail(err, KF_E_IO, "grpc: unlink %s: %s",
				       path, strerror(errno));
		return 0;
	}
	if (rc == ENOENT)
		return 0;
	return kf_fail(err, KF_E_EXISTS, "grpc: %s: %s", path, strerror(rc));
}

static int listen_on(struct kf_grpc_server *s, unsigned mode,
		     struct kf_err *err)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(s->path) >= sizeof(sa.sun_path))
		return kf_fail(err, KF_E_INVALID, "grpc: socket path too long");
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	if (clear_stale(s->path, &sa, err) < 0)
		return -1;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return kf_fail(err, KF_E_IO, "grpc: socket: %s",
			       strerror(errno));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kf_fail(err, errno == EADDRINUSE ? KF_E_EXISTS : KF_E_IO,
			       "grpc: bind %s: %s", s->path, strerror(errno));
	if (chmod(s->path, mode) < 0 || listen(s->lfd, 128) < 0) {
		kf_fail(err, KF_E_IO, "grpc: %s: %s", s->path, strerror(errno));
		(void)unlink(s->path);
		return -1;
	}
	return 0;
}

int kf_grpc_server_new(const struct kf_grpc_cfg *cfg,
		       struct kf_grpc_server **out, struct kf_err *err)
{
	struct kf_grpc_server *s;
	int rc = -1;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return kf_fail(err, KF_E_NOMEM, "grpc: out of memory");
	s->lfd = s->ctl[0] = s->ctl[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	s->methods = cfg->methods;
	s->ctx = cfg->ctx;
	s->nworkers = cfg->workers ? cfg->workers : 16;
	s->max_conns = cfg->max_conns ? cfg->max_conns : 64;
	s->path = strdup(cfg->socket_path ? cfg->socket_path : "");
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (!s->path || !s->workers) {
		kf_fail(err, KF_E_NOMEM, "grpc: out of memory");
		goto out;
	}
	if (pipe2(s->ctl, O_CLOEXEC | O_NONBLOCK) < 0) {
		kf_fail(err, KF_E_IO, "grpc: pipe: %s", strerror(errno));
		goto out;
	}
	if (listen_on(s, cfg->socket_mode ? cfg->socket_mode : 0660, err) < 0)
		goto out;
	*out = s;
	rc = 0;
out:
	if (rc < 0) {
		if (s->lfd >= 0)
			close(s->lfd);
		s->lfd = -1;
		free(s->path);
		s->path = NULL; /* nothing of ours to unlink */
		kf_grpc_server_free(s);
	}
	return rc;
}

void kf_grpc_enqueue(struct kf_grpc_server *s, struct kf_grpc_call *call)
{
	pthread_mutex_lock(&s->mu);
	call->next = NULL;
	if (s->q_tail)
		s->q_tail->next = call;
	else
		s->q_head = call;
	s->q_tail = call;
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Run one call (unless its stream is gone) and hand the answer back. */
static void run_call(struct kf_grpc_server *s, struct kf_grpc_call *call)
{
	struct kf_grpc_conn *c = call->c;
	struct kf_secret *resp = NULL;
	int orphan, code = KF_GRPC_CANCELLED;

	pthread_mutex_lock(&c->mu);
	orphan = call->orphan;
	pthread_mutex_unlock(&c->mu);
	if (!orphan) {
		call->msg[0] = 0;
		code = call->m->fn(s->ctx, call->req->data + 5,
				   call->req->len - 5, &resp, call->msg,
				   sizeof(call->msg));
		call->msg[sizeof(call->msg) - 1] = 0;
		if (code == KF_GRPC_OK && !resp) {
			code = KF_GRPC_INTERNAL;
			(void)snprintf(call->msg, sizeof(call->msg),
				       "no answer");
		}
		if (code != KF_GRPC_OK) {
			kf_secret_free(resp);
			resp = NULL;
		}
	}
	kf_secret_free(call->req);
	call->req = NULL;
	pthread_mutex_lock(&c->mu);
	call->code = code;
	call->resp = resp;
	call->next = c->done;
	c->done = call;
	c->inflight--;
	/* Under c->mu: the conn thread frees c only once inflight is 0. */
	kf_grpc_poke(c->wake[1], 'w');
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void *worker_main(void *arg)
{
	struct kf_grpc_server *s = arg;
	struct kf_grpc_call *call;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->q_head && !s->quit)
			pthread_cond_wait(&s->work_cv, &s->mu);
		call = s->q_head;
		if (!call)
			break;
		s->q_head = call->next;
		if (!s->q_head)
			s->q_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		run_call(s, call);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void conn_free(struct kf_grpc_conn *c)
{
	pthread_join(c->th, NULL);
	close(c->fd);
	close(c->wake[0]);
	close(c->wake[1]);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* Join the connection threads that finished (all of them when all). */
static void reap(struct kf_grpc_server *s, int all)
{
	struct kf_grpc_conn **pp, *c, *gone = NULL;

	pthread_mutex_lock(&s->mu);
	for (pp = &s->conns; (c = *pp);) {
		if (all || c->finished) {
			*pp = c->next;
			c->next = gone;
			gone = c;
			s->nconns--;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&s->mu);
	for (; gone; gone = c) {
		c = gone->next;
		conn_free(gone);
	}
}

static void conn_start(struct kf_grpc_server *s, int fd)
{
	struct kf_grpc_conn *c = calloc(1, sizeof(*c));

	if (!c || pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		kf_log(KF_LOG_ERROR, "grpc: cannot take a connection: %s",
		       c ? strerror(errno) : "out of memory");
		free(c);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_mutex_lock(&s->mu);
	if (pthread_create(&c->th, NULL, kf_grpc_conn_main, c) != 0) {
		pthread_mutex_unlock(&s->mu);
		kf_log(KF_LOG_ERROR, "grpc: cannot start a connection thread");
		close(c->wake[0]);
		close(c->wake[1]);
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	pthread_mutex_unlock(&s->mu);
}

static int start_workers(struct kf_grpc_server *s, struct kf_err *err)
{
	for (; s->started < s->nworkers; s->started++)
		if (pthread_create(&s->workers[s->started], NULL, worker_main,
				   s) != 0)
			return kf_fail(err, KF_E_NOMEM,
				       "grpc: cannot start worker threads");
	return 0;
}

/* Read the control pipe: 1 when a stop was asked. */
static int ctl_stop(struct kf_grpc_server *s)
{
	char b[64];
	ssize_t n;
	int stop = 0;

	while ((n = read(s->ctl[0], b, sizeof(b))) > 0)
		stop |= memchr(b, 'S', (size_t)n) != NULL;
	return stop;
}

int kf_grpc_server_run(struct kf_grpc_server *s, struct kf_err *err)
{
	struct pollfd pfd[2];
	unsigned n;
	int fd;

	if (start_workers(s, err) < 0)
		return -1;
	for (;;) {
		reap(s, 0);
		pthread_mutex_lock(&s->mu);
		n = s->nconns;
		pthread_mutex_unlock(&s->mu);
		pfd[0].fd = s->ctl[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = s->lfd;
		pfd[1].events = n < s->max_conns ? POLLIN : 0;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return kf_fail(err, KF_E_IO, "grpc: poll: %s",
				       strerror(errno));
		if ((pfd[0].revents & POLLIN) && ctl_stop(s))
			return 0;
		if (!(pfd[1].revents & POLLIN))
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_start(s, fd);
		} else if (errno == EMFILE || errno == ENFILE ||
			   errno == ENOBUFS || errno == ENOMEM) {
			kf_log(KF_LOG_WARN, "grpc: accept: %s",
			       strerror(errno));
			(void)poll(NULL, 0, 100);
		} else if (errno != EINTR && errno != EAGAIN &&
			   errno != ECONNABORTED) {
			return kf_fail(err, KF_E_IO, "grpc: accept: %s",
				       strerror(errno));
		}
	}
}

void kf_grpc_server_stop(struct kf_grpc_server *s)
{
	int saved = errno;

	if (s)
		kf_grpc_poke(s->ctl[1], 'S');
	errno = saved;
}

void kf_grpc_server_free(struct kf_grpc_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	for (struct kf_grpc_conn *c = s->conns; c; c = c->next) {
		pthread_mutex_lock(&c->mu);
		c->closing = 1;
		kf_grpc_poke(c->wake[1], 'c');
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&s->mu);
	reap(s, 1);
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->workers[i], NULL);
	if (s->lfd >= 0) {
		close(s->lfd);
		if (s->path)
			(void)unlink(s->path);
	}
	if (s->ctl[0] >= 0)
		close(s->ctl[0]);
	if (s->ctl[1] >= 0)
		close(s->ctl[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->work_cv);
	free(s->workers);
	free(s->path);
	free(s);
}
