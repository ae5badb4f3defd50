/*
 * -o on_change=COMMAND: run COMMAND with the path of a value that changed
 * appended as its last argument.  No shell: COMMAND is an absolute
 * program path and space-separated words.  The child's environment is
 * built from scratch (PATH, KEYFS_PATH, KEYFS_EVENT_TIME), its stdin is
 * /dev/null and no descriptor above 2 reaches it.  At most a few run at
 * once, each within a time limit; failures are logged with the program's
 * name, the path and the status.  Never passes or logs a value.
 */
#ifndef KF_ONCHANGE_H
#define KF_ONCHANGE_H

#include <stddef.h>
#include <time.h>

#define KF_ONCHANGE_RUNNING 4	   /* commands at once */
#define KF_ONCHANGE_QUEUE 1000	   /* waiting past this are dropped */
#define KF_ONCHANGE_LIMIT_MS 60000 /* then SIGTERM */
#define KF_ONCHANGE_KILL_MS 5000   /* then SIGKILL */
#define KF_ONCHANGE_STOP_MS 5000   /* unmount waits this long at most */

struct kf_onchange;

/* Limits (the defaults above; unit tests shorten them). */
struct kf_onchange_limits {
	unsigned running, queue, limit_ms, kill_ms, stop_ms;
};

/*
 * Check COMMAND's form: an absolute path to an executable regular file,
 * then words without control characters.  0, or -1 with why in msg.
 */
int kf_onchange_check(const char *command, char *msg, size_t n);

/*
 * A runner for command (checked), with lim (NULL: the defaults).  Its
 * supervisor thread starts here: call after daemonizing.  NULL on
 * failure.
 */
struct kf_onchange *kf_onchange_new(const char *command,
				    const struct kf_onchange_limits *lim);

/* Queue one run for path (copied), changed at t.  -1 when dropped (queue
 * full, logged at warning, or out of memory). */
int kf_onchange_run(struct kf_onchange *oc, const char *path, time_t t);

/* Counters for tests: runs started, finished, the most running at once,
 * runs that failed (non-zero, signal, timeout, exec failure). */
struct kf_onchange_stats {
	unsigned long started, finished, peak, failed, dropped;
};
void kf_onchange_stats(struct kf_onchange *oc, struct kf_onchange_stats *st);

/* Wait until nothing is queued or running, at most ms; 0 when idle. */
int kf_onchange_drain(struct kf_onchange *oc, unsigned ms);

/*
 * Stop: queued runs are dropped, running ones waited for at most
 * stop_ms (then killed), the thread joined, everything freed.  Accepts
 * NULL.
 */
void kf_onchange_free(struct kf_onchange *oc);

#endif
