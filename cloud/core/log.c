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

void kf_log(enum kf_log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	va_list ap;

	if ((int)lvl > atomic_load(&level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_load(&use_syslog)) {
		syslog(prio[lvl], "%s", line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "keyfs: %s %s: %s\n", when, names[lvl], line);
	}
}
