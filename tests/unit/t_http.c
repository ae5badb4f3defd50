/* Unit tests for cloud/core/http.c: URL policy, backoff bounds, header lookup,
 * the transport seam, and real exchanges with a tiny loopback server
 * thread (127.0.0.1, ephemeral port, plain sockets, no network). */
#include "kt.h"
#include "core/http.h"
#include "core/clock.h"
#include "core/retry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct {
	const char *url;
	int ok;
} url_cases[] = {
	{ "https://secretsmanager.us-east-1.amazonaws.com/", 1 },
	{ "https://cloudkms.googleapis.com/v1/projects/p?alt=json", 1 },
	{ "HTTPS://example.com/", 1 },
	{ "https://10.0.0.1:8443/", 1 },
	{ "http://127.0.0.1:8080", 1 },
	{ "http://127.0.0.1:8080/a?b=c", 1 },
	{ "http://127.1.2.3/", 1 },
	{ "http://localhost", 1 },
	{ "http://LOCALHOST:9/x", 1 },
	{ "http://[::1]:9/", 1 },
	{ "http://[0:0:0:0:0:0:0:1]/", 1 },
	{ "http://example.com", 0 },
	{ "http://example.com/?next=http://127.0.0.1/", 0 },
	{ "http://10.0.0.1", 0 },
	{ "http://128.0.0.1/", 0 },
	{ "http://[::2]/", 0 },
	{ "http://[::ffff:10.0.0.1]/", 0 },
	{ "http://127.0.0.1.evil.com", 0 },
	{ "http://localhost.evil.com/", 0 },
	{ "http://127.0.0.1@evil.com/", 0 },
	{ "http://evil.com#@127.0.0.1/", 0 },
	{ "ftp://127.0.0.1/", 0 },
	{ "ftp://example.com/", 0 },
	{ "file:///etc/passwd", 0 },
	{ "gopher://127.0.0.1/", 0 },
	{ "127.0.0.1:80/", 0 },
	{ "", 0 },
	{ "not a url", 0 },
};

KT_TEST(http_url_policy)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		struct kf_err err = KF_ERR_INIT;
		int rc = kf_http_check_url(url_cases[i].url, &err);

		if (url_cases[i].ok) {
			if (rc != 0)
				kt_fail(__FILE__, __LINE__, "refused %s: %s",
					url_cases[i].url, err.msg);
		} else if (rc != -1 || err.code != KF_E_INVALID) {
			kt_fail(__FILE__, __LINE__, "allowed %s",
				url_cases[i].url);
		}
	}
}

KT_TEST(http_resp_header_lookup)
{
	struct kf_http_resp r;
	char v[64];

	kf_http_resp_init(&r);
	KT_EQ_INT(kf_http_resp_header(&r, "Content-Type", v, sizeof(v)), 0);
	kf_buf_adds(&r.headers, "Content-Type:  application/json \r\n"
				"X-Amzn-RequestId: abc-123\r\n"
				"X-Empty:\r\n"
				"Content-Length: 12\r\n");
	KT_EQ_INT(kf_http_resp_header(&r, "content-type", v, sizeof(v)), 1);
	KT_EQ_STR(v, "application/json");
	KT_EQ_INT(kf_http_resp_header(&r, "X-AMZN-REQUESTID", v, sizeof(v)), 1);
	KT_EQ_STR(v, "abc-123");
	KT_EQ_INT(kf_http_resp_header(&r, "x-empty", v, sizeof(v)), 1);
	KT_EQ_STR(v, "");
	/* A prefix of a name is not the name. */
	KT_EQ_INT(kf_http_resp_header(&r, "Content", v, sizeof(v)), 0);
	KT_EQ_INT(kf_http_resp_header(&r, "Length", v, sizeof(v)), 0);
	/* Truncated to the buffer. */
	KT_EQ_INT(kf_http_resp_header(&r, "x-amzn-requestid", v, 4), 1);
	KT_EQ_STR(v, "abc");
	kf_http_resp_release(&r);
	kf_http_resp_release(NULL);
}

static int seam_calls;

static int fake_transport(const struct kf_http_req *req,
			  struct kf_http_resp *resp, struct kf_err *err)
{
	seam_calls++;
	if (strcmp(req->url, "https://unavailable.example/") == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "fake outage");
	resp->status = 418;
	kf_buf_adds(&resp->headers, "X-Fake: yes\r\n");
	kf_buf_add(&resp->body, req->body, req->body_len);
	return 0;
}

KT_TEST(http_transport_seam)
{
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	char v[16];

	kf_http_resp_init(&resp);
	kf_http_set_transport(fake_transport);
	seam_calls = 0;

	req.method = "POST";
	req.url = "https://fake.example/";
	req.body = "hello";
	req.body_len = 5;
	KT_EQ_INT(kf_http_do(&req, &resp, &err), 0);
	KT_EQ_INT(resp.status, 418);
	KT_EQ_STR(kf_buf_str(&resp.body), "hello");
	KT_EQ_INT(kf_http_resp_header(&resp, "x-fake", v, sizeof(v)), 1);

	req.url = "https://unavailable.example/";
	KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(seam_calls, 2);

	/* The URL policy runs before the transport. */
	req.url = "http://example.com/";
	KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(seam_calls, 2);

	kf_http_set_transport(NULL);
	kf_http_resp_release(&resp);
}

/* ---- a tiny loopback server: one connection, one canned behaviour ---- */

enum srv_mode {
	SRV_ECHO,
	SRV_BIG,
	SRV_SILENT
};

struct srv {
	int lfd;
	int port;
	enum srv_mode mode;
	pthread_t th;
	unsigned char *got; /* received body (ECHO) */
	size_t got_len;
	char method[16];
	int ok; /* the server saw a well-formed request */
};

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read a request head and a Content-Length body; 0 on success. */
static int read_request(int fd, struct srv *s)
{
	size_t cap = 1 << 20, len = 0, hend = 0, clen = 0;
	char *buf = malloc(cap);
	const char *cl;
	int rc = -1;

	if (!buf)
		return -1;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (hend && len >= hend + clen)
			break;
		if (len == cap || poll(&pfd, 1, 5000) <= 0)
			goto out;
		r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			goto out;
		len += (size_t)r;
		if (!hend) {
			char *e = memmem(buf, len, "\r\n\r\n", 4);

			if (!e)
				continue;
			hend = (size_t)(e - buf) + 4;
			buf[hend - 1] = '\0';
			cl = strcasestr(buf, "\r\nContent-Length:");
			if (cl)
				clen = strtoul(cl + 17, NULL, 10);
			sscanf(buf, "%15s", s->method);
		}
	}
	s->got = malloc(clen + 1);
	if (!s->got)
		goto out;
	memcpy(s->got, buf + hend, clen);
	s->got_len = clen;
	rc = 0;
out:
	free(buf);
	return rc;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd pfd = { s->lfd, POLLIN, 0 };
	int fd = -1;

	if (poll(&pfd, 1, 5000) <= 0)
		return NULL;
	fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (s->mode == SRV_SILENT) {
		char b[4096];
		struct pollfd cp = { fd, POLLIN, 0 };

		/* Read and never answer, until the client gives up. */
		while (poll(&cp, 1, 5000) > 0 && recv(fd, b, sizeof(b), 0) > 0)
			;
		s->ok = 1;
	} else if (read_request(fd, s) == 0) {
		char head[512];
		int n;

		s->ok = 1;
		if (s->mode == SRV_ECHO) {
			/* An interim response with its own header first:
			 * only the final response's headers must remain. */
			n = snprintf(head, sizeof(head),
				     "HTTP/1.1 100 Continue\r\n"
				     "X-Interim: yes\r\n\r\n"
				     "HTTP/1.1 201 Created\r\n"
				     "Content-Type: application/octet-stream\r\n"
				     "x-final:  ok \r\n"
				     "Content-Length: %zu\r\n"
				     "Connection: close\r\n\r\n",
				     s->got_len);
			if (n > 0 && (size_t)n < sizeof(head) &&
			    send_all(fd, head, (size_t)n) == 0)
				send_all(fd, s->got, s->got_len);
		} else {
			static char chunk[65536];
			size_t total = 4u << 20;

			memset(chunk, 'x', sizeof(chunk));
			n = snprintf(head, sizeof(head),
				     "HTTP/1.1 200 OK\r\n"
				     "Content-Length: %zu\r\n\r\n",
				     total);
			if (n > 0 && (size_t)n < sizeof(head) &&
			    send_all(fd, head, (size_t)n) == 0)
				for (size_t i = 0; i < total / sizeof(chunk);
				     i++)
					if (send_all(fd, chunk, sizeof(chunk)) <
					    0)
						break;
		}
	}
	close(fd);
	return NULL;
}

static int listen_loopback(int *port)
{
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int srv_start(struct srv *s, enum srv_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->lfd = listen_loopback(&s->port);
	if (s->lfd < 0)
		return -1;
	if (pthread_create(&s->th, NULL, srv_main, s) != 0) {
		close(s->lfd);
		return -1;
	}
	return 0;
}

static void srv_stop(struct srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* A proxy in the environment must never see loopback traffic. */
static void set_dead_proxy(int on)
{
	if (on) {
		setenv("http_proxy", "http://127.0.0.1:1", 1);
		setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
		setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
	} else {
		unsetenv("http_proxy");
		unsetenv("HTTPS_PROXY");
		unsetenv("ALL_PROXY");
	}
}

KT_TEST(http_loopback_post_echo)
{
	struct srv s;
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	const char *hdrs[] = { "Content-Type: application/x-amz-json-1.1",
			       NULL };
	size_t n = 200000;
	unsigned char *body = malloc(n);
	char url[64], v[32];

	KT_CHECK(body != NULL);
	if (!body)
		return;
	for (size_t i = 0; i < n; i++)
		body[i] = (unsigned char)(i * 7 + (i >> 8));
	KT_EQ_INT(kf_http_global_init(&err), 0);
	KT_EQ_INT(srv_start(&s, SRV_ECHO), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo?x=1", s.port);
	set_dead_proxy(1);
	kf_http_resp_init(&resp);
	req.method = "POST";
	req.url = url;
	req.headers = hdrs;
	req.body = body;
	req.body_len = n;
	req.timeout_ms = 5000;
	if (kf_http_do(&req, &resp, &err) != 0)
		kt_fail(__FILE__, __LINE__, "kf_http_do: %s %s",
			kf_code_name(err.code), err.msg);
	set_dead_proxy(0);
	srv_stop(&s);
	KT_CHECK(s.ok);
	KT_EQ_STR(s.method, "POST");
	KT_EQ_INT(s.got_len, n);
	if (s.got_len == n)
		KT_EQ_MEM(s.got, body, n);
	KT_EQ_INT(resp.status, 201);
	KT_EQ_INT(resp.body.len, n);
	if (resp.body.len == n)
		KT_EQ_MEM(resp.body.data, body, n);
	KT_EQ_INT(kf_http_resp_header(&resp, "X-Final", v, sizeof(v)), 1);
	KT_EQ_STR(v, "ok");
	KT_EQ_INT(kf_http_resp_header(&resp, "x-interim", v, sizeof(v)), 0);
	kf_http_resp_release(&resp);
	free(s.got);
	free(body);
}

KT_TEST(http_loopback_response_cap)
{
	struct srv s;
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	char url[64];

	KT_EQ_INT(srv_start(&s, SRV_BIG), 0);
	snprintf(url, sizeof(url), "http://localhost:%d/big", s.port);
	kf_http_resp_init(&resp);
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 5000;
	req.max_response = 100000;
	KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_CHECK(strstr(err.msg, "localhost") != NULL);
	KT_EQ_INT(resp.body.len, 0);
	srv_stop(&s);
	free(s.got);
	kf_http_resp_release(&resp);
}

KT_TEST(http_loopback_timeout)
{
	struct srv s;
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	char url[64];
	uint64_t t0, dt;

	KT_EQ_INT(srv_start(&s, SRV_SILENT), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow?token=SECRET",
		 s.port);
	kf_http_resp_init(&resp);
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 400;
	t0 = kf_clock_now_ms();
	KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	dt = kf_clock_now_ms() - t0;
	KT_EQ_INT(err.code, KF_E_TIMEOUT);
	KT_CHECK(dt >= 350);
	KT_CHECK(dt < 3000);
	/* Messages name the host, never the query. */
	KT_CHECK(strstr(err.msg, "127.0.0.1") != NULL);
	KT_CHECK(strstr(err.msg, "SECRET") == NULL);
	/* Close our end so the silent server sees EOF. */
	kf_http_thread_cleanup();
	srv_stop(&s);
	KT_CHECK(s.ok);
	kf_http_resp_release(&resp);
}

KT_TEST(http_loopback_refused)
{
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	char url[64];
	int port, fd = listen_loopback(&port);

	KT_CHECK(fd >= 0);
	close(fd); /* nothing listens there now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	kf_http_resp_init(&resp);
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 3000;
	KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(resp.status, 0);
	kf_http_resp_release(&resp);
}

static int seam_ok(const struct kf_http_req *req, struct kf_http_resp *resp,
		   struct kf_err *err)
{
	(void)req;
	(void)err;
	resp->status = 200;
	return 0;
}

KT_TEST(http_metadata_addresses_need_the_flag)
{
	static const char *const ok[] = {
		"http://169.254.169.254/latest/api/token",
		"http://169.254.170.2/v2/credentials/x",
		"http://169.254.170.23/v1/credentials",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[fd00:ec2::23]/v1/credentials",
	};
	static const char *const never[] = {
		"http://169.254.169.253/",
		"http://169.254.170.22/",
		"http://metadata.internal/",
		"http://10.0.0.1/",
	};
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;

	kf_http_resp_init(&resp);
	kf_http_set_transport(seam_ok);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct kf_http_req req = { .method = "GET", .url = ok[i] };

		KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
		KT_EQ_INT(err.code, KF_E_INVALID);
		req.allow_metadata_ip = 1;
		KT_EQ_INT(kf_http_do(&req, &resp, &err), 0);
	}
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		struct kf_http_req req = { .method = "GET",
					   .url = never[i],
					   .allow_metadata_ip = 1 };

		KT_EQ_INT(kf_http_do(&req, &resp, &err), -1);
	}
	kf_http_set_transport(NULL);
	kf_http_resp_release(&resp);
}
