/*
 * The liveness probe (see probe.h): an HTTP/2 handshake, no gRPC call, no
 * nghttp2.  Reads at most one frame header and never logs.
 */
#include "probe.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define FRAME_SETTINGS 4

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Read exactly n bytes before the deadline; 0 or -1 (errno set). */
static int read_all(int fd, unsigned char *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t t = now_ms();
		ssize_t r;

		if (t >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&pfd, 1, (int)(deadline - t)) <= 0) {
			if (errno == EINTR)
				continue;
			errno = errno ? errno : ETIMEDOUT;
			return -1;
		}
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r == 0 ? ECONNRESET : errno;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int say(char *msg, size_t n, const char *what, int e)
{
	(void)snprintf(msg, n, "%s: %s", what, strerror(e));
	return -1;
}

int kf_csi_probe(const char *path, unsigned timeout_ms, char *msg, size_t n)
{
	static const unsigned char settings[9] = { 0, 0, 0, FRAME_SETTINGS };
	uint64_t deadline = now_ms() + timeout_ms;
	struct sockaddr_un sa;
	unsigned char hd[9];
	int fd, rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return say(msg, n, "socket path", ENAMETOOLONG);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return say(msg, n, "socket", errno);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		say(msg, n, "connect", errno);
		goto out;
	}
	if (send(fd, PREFACE, sizeof(PREFACE) - 1, MSG_NOSIGNAL) < 0 ||
	    send(fd, settings, sizeof(settings), MSG_NOSIGNAL) < 0) {
		say(msg, n, "send", errno);
		goto out;
	}
	errno = 0;
	if (read_all(fd, hd, sizeof(hd), deadline) < 0) {
		say(msg, n, "no HTTP/2 answer", errno);
		goto out;
	}
	if (hd[3] != FRAME_SETTINGS) {
		(void)snprintf(msg, n, "the first frame is not SETTINGS");
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}
