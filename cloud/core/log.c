/*
 * The log sink.  Formats only what callers pass; it must never be given a
 * secret, and it adds none of its own.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static atomic_int level = KF_LOG_INFO;
static atomic_int use_syslog;

static const char *const names[] = { "error", "warn", "info", "debug" };

void kf_log_set_level(enum kf_log_level lvl)
{
	atomic_store(&level, (int)lvl);
}

enum kf_log_level kf_log_get_level(void)
{
	return (enum kf_log_level)atomic_load(&level);
}

/* The program name that starts each line (set once, before threads). */
static const char *prog = "keyfs";

void kf_log_set_prog(const char *name)
{
	prog = name;
}

void kf_log_use_syslog(void)
{
	openlog("keyfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&use_syslog, 1);
}

int kf_log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

size_t kf_log_escape(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!outlen)
		return 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		int esc = *p < 0x20 || *p == 0x7f || *p == '\\';

		if (o + (esc ? 4 : 1) >= outlen)
			break;
		if (esc) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return o;
}

void kf_log(enum kf_log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char raw[1024], line[4 * sizeof(raw)];
	va_list ap;

	if ((int)lvl > atomic_load(&level))
		return;
	va_start(ap, fmt);
	/* A longer message is cut; it stays one line. */
	(void)vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Names come from users: a newline in one must not forge a line. */
	kf_log_escape(raw, line, sizeof(line));
	if (atomic_load(&use_syslog)) {
		syslog(prio[lvl], "%s", line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s: %s %s: %s\n", prog, when, names[lvl],
			line);
	}
}
