/*
 * The audit trail: who did what to which path and how it ended.  A value
 * never reaches this file, and paths and process names are escaped so a
 * crafted name cannot forge a line.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

struct kf_audit {
	int fd; /* -1 for syslog */
};

int kf_audit_open(const char *spec, struct kf_audit **out, char *errbuf,
		  size_t errlen)
{
	struct kf_audit *a = calloc(1, sizeof(*a));

	/* Messages for the terminal: cut to errlen, still readable. */
	if (!a) {
		(void)snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	a->fd = -1;
	if (strcmp(spec, "syslog") != 0) {
		if (spec[0] != '/') {
			(void)snprintf(errbuf, errlen,
				       "audit=%s: use an "
				       "absolute file path or syslog",
				       spec);
			free(a);
			return -1;
		}
		a->fd = open(spec,
			     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
				     O_NOFOLLOW,
			     0600);
		if (a->fd < 0) {
			(void)snprintf(errbuf, errlen, "audit file %s: %s",
				       spec, strerror(errno));
			free(a);
			return -1;
		}
	}
	*out = a;
	return 0;
}

/* Copy s into out with control characters, quotes and backslashes
 * escaped; always terminates. */
static void esc(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *s && o + 5 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
					      c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void comm_of(pid_t pid, char *out, size_t outlen)
{
	char p[64], buf[64];
	ssize_t n = -1;
	int fd;

	(void)snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid); /* fits */
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0) {
		(void)snprintf(out, outlen, "?"); /* fits */
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	esc(buf, out, outlen);
}

/* One line: time, who (already escaped), op, path, result, version. */
static void audit_line(struct kf_audit *a, const char *who, const char *op,
		       const char *path, int result, const char *version)
{
	char line[6000], epath[4200], when[32], res[48], ever[300];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	esc(path, epath, sizeof(epath));
	if (version && *version) {
		char e[260];

		esc(version, e, sizeof(e));
		(void)snprintf(ever, sizeof(ever), " version=\"%s\"", e);
	} else {
		ever[0] = '\0';
	}
	/* Log text: an errno name cut short is still a name. */
	if (result == 0)
		(void)snprintf(res, sizeof(res), "ok");
	else
		(void)snprintf(res, sizeof(res), "error errno=%d (%s)", -result,
			       strerrorname_np(-result) ?
				       strerrorname_np(-result) :
				       "?");
	n = snprintf(line, sizeof(line),
		     "%s.%03ldZ %s op=%s path=\"%s\" result=%s%s\n", when,
		     ts.tv_nsec / 1000000, who, op, epath, res, ever);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (a->fd < 0) {
		line[n - 1] = '\0'; /* syslog adds its own newline */
		syslog(LOG_AUTHPRIV | LOG_INFO, "audit: %s", line);
	} else if (write(a->fd, line, (size_t)n) < 0) {
		/* Nothing sensible to do; the daemon's log would say it. */
	}
}

void kf_audit_log(struct kf_audit *a, uid_t uid, gid_t gid, pid_t pid,
		  const char *op, const char *path, int result,
		  const char *version)
{
	char who[200], comm[80];

	if (!a)
		return;
	comm_of(pid, comm, sizeof(comm));
	(void)snprintf(who, sizeof(who), "uid=%u gid=%u pid=%d comm=\"%s\"",
		       (unsigned)uid, (unsigned)gid, (int)pid, comm);
	audit_line(a, who, op, path, result, version);
}

void kf_audit_log_pod(struct kf_audit *a, const char *ns, const char *pod,
		      const char *op, const char *path, int result,
		      const char *version)
{
	char who[600], ens[260], epod[260];

	if (!a)
		return;
	esc(ns ? ns : "", ens, sizeof(ens));
	esc(pod ? pod : "", epod, sizeof(epod));
	(void)snprintf(who, sizeof(who), "namespace=\"%s\" pod=\"%s\"", ens,
		       epod);
	audit_line(a, who, op, path, result, version);
}

void kf_audit_close(struct kf_audit *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}
