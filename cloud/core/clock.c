/*
 * The one clock (see clock.h).  No other file calls clock_gettime for
 * deadlines or nanosleep for pauses.
 */
#include "core/clock.h"

#include <errno.h>
#include <time.h>

static struct kf_clock test_clock; /* set only by tests, before threads */

static uint64_t system_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void system_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

uint64_t kf_clock_now_ms(void)
{
	return test_clock.now_ms ? test_clock.now_ms(test_clock.ctx) :
				   system_now_ms();
}

void kf_clock_sleep_ms(unsigned ms)
{
	if (test_clock.sleep_ms)
		test_clock.sleep_ms(test_clock.ctx, ms);
	else
		system_sleep_ms(ms);
}

void kf_clock_set(const struct kf_clock *c)
{
	if (c) {
		test_clock = *c;
	} else {
		test_clock.now_ms = NULL;
		test_clock.sleep_ms = NULL;
		test_clock.ctx = NULL;
	}
}
