/*
 * The one clock of keyfs: monotonic milliseconds for deadlines, ages and
 * backoff, and the one sleep.  Tests replace both through kf_clock_set()
 * so that expiry, refresh-ahead and retries run without waiting.  Never
 * used for timestamps shown to people (those are wall-clock time).
 */
#ifndef KF_CLOCK_H
#define KF_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock (or the test clock).  Thread-safe. */
uint64_t kf_clock_now_ms(void);

/* Sleep ms milliseconds (resumed after signals), or advance the test
 * clock.  Thread-safe. */
void kf_clock_sleep_ms(unsigned ms);

/* A replacement clock for unit tests. */
struct kf_clock {
	uint64_t (*now_ms)(void *ctx);
	void (*sleep_ms)(void *ctx, unsigned ms); /* NULL: real sleep */
	void *ctx;
};

/*
 * Use *c (copied) instead of the system clock; NULL restores the system
 * clock.  Not thread-safe: call it only while no other thread runs.
 */
void kf_clock_set(const struct kf_clock *c);

#endif
