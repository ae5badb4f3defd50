/*
 * Logging to stderr (foreground) or syslog (daemon), with levels.  Callers
 * never pass a value, key, token or credential.  Every message is escaped
 * (control characters and backslashes as \xHH) and written as one line.
 */
#ifndef KF_LOG_H
#define KF_LOG_H

#include <stddef.h>

enum kf_log_level {
	KF_LOG_ERROR = 0,
	KF_LOG_WARN,
	KF_LOG_INFO,
	KF_LOG_DEBUG,
};

/* Set the threshold (default KF_LOG_INFO) and the sink. */
void kf_log_set_level(enum kf_log_level lvl);
enum kf_log_level kf_log_get_level(void);
/* The name each stderr line starts with (default "keyfs"); call once,
 * before any thread logs.  name must outlive the process's logging. */
void kf_log_set_prog(const char *name);
/* Switch from stderr to syslog (ident "keyfs"); called after daemonizing. */
void kf_log_use_syslog(void);

void kf_log(enum kf_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Copy in to out (outlen bytes, NUL included), writing control characters
 * and backslashes as \xHH, so that a path name holding a newline cannot
 * forge a log line.  kf_log() applies it to every message.  Returns the
 * length written (cut at a whole character when out is too small).
 */
size_t kf_log_escape(const char *in, char *out, size_t outlen);

/* Parse "error|warn|info|debug"; -1 when unknown. */
int kf_log_level_parse(const char *s);

#endif
