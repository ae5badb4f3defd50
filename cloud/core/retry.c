/*
 * The retry driver (see retry.h).  Owns no state but a per-thread jitter
 * seed; never logs an error's secret text because errors never hold any.
 */
#include "core/retry.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"

#include <stdint.h>
#include <stdlib.h>

static __thread unsigned jitter_seed;
static __thread int jitter_seeded;

unsigned kf_retry_backoff_ms(unsigned attempt, unsigned base_ms,
			     unsigned cap_ms)
{
	unsigned d = base_ms, lo, r;

	for (unsigned i = 0; i < attempt && d < cap_ms; i++)
		d = d > cap_ms / 2 ? cap_ms : d * 2;
	if (d > cap_ms)
		d = cap_ms;
	if (d == 0)
		return 0;
	if (!jitter_seeded) {
		if (kf_rand_bytes(&jitter_seed, sizeof(jitter_seed), NULL) < 0)
			jitter_seed = (unsigned)kf_clock_now_ms() ^
				      (unsigned)(uintptr_t)&jitter_seed;
		jitter_seeded = 1;
	}
	lo = d / 2;
	r = (unsigned)rand_r(&jitter_seed);
	return lo + r % (d - lo + 1);
}

/* The time the next attempt may take; 0 = unbounded (no deadline). */
static unsigned slice_for(const struct kf_retry_policy *p, unsigned timeout,
			  uint64_t deadline, uint64_t now, int last)
{
	unsigned left, part;

	if (!timeout)
		return 0;
	left = (unsigned)(deadline - now);
	if (last || !p->min_slice_ms)
		return left;
	part = timeout / 2;
	if (part < p->min_slice_ms)
		part = p->min_slice_ms;
	return left < part ? left : part;
}

static unsigned pause_for(const struct kf_retry_policy *p, unsigned pauses,
			  int throttled)
{
	unsigned base = p->base_ms, cap = p->cap_ms ? p->cap_ms : p->base_ms;

	if (throttled) {
		base = p->throttle_base_ms ? p->throttle_base_ms : base;
		cap = p->throttle_cap_ms ? p->throttle_cap_ms : base * 16;
	}
	return kf_retry_backoff_ms(pauses, base, cap);
}

static int timed_out(const char *what, unsigned n, const struct kf_err *last,
		     struct kf_err *err)
{
	if (!n || last->code == KF_OK)
		return kf_fail(err, KF_E_TIMEOUT, "%s: deadline passed", what);
	kf_fail_provider(err, KF_E_TIMEOUT, last->http_status,
			 last->provider_code,
			 "%s: deadline passed after %u attempts (last: %s)",
			 what, n, last->msg);
	err->reason = last->reason;
	return -1;
}

static int exhausted(unsigned n, const struct kf_err *last, struct kf_err *err)
{
	kf_fail_provider(err, last->code, last->http_status,
			 last->provider_code, "%s (%u attempts)", last->msg, n);
	err->reason = last->reason;
	return -1;
}

int kf_retry_run(const struct kf_retry_policy *p, const char *what,
		 unsigned timeout_ms, kf_retry_fn fn, void *ctx,
		 struct kf_err *err)
{
	unsigned max = p->attempts ? p->attempts : 1;
	uint64_t deadline = kf_clock_now_ms() + timeout_ms;
	struct kf_err last = KF_ERR_INIT;
	unsigned counted = 0, n = 0, pause;
	int nows = 0;

	for (;; n++) {
		struct kf_retry_attempt at = { n, 0 };
		enum kf_retry_verdict v;
		uint64_t now = kf_clock_now_ms();

		if (timeout_ms && now >= deadline)
			return timed_out(what, n, &last, err);
		at.timeout_ms = slice_for(p, timeout_ms, deadline, now,
					  counted + 1 >= max);
		kf_err_clear(&last);
		v = fn(ctx, &at, &last);
		if (v == KF_RETRY_OK)
			return 0;
		if (v == KF_RETRY_FAIL || (v == KF_RETRY_NOW && nows)) {
			*err = last;
			return -1;
		}
		if (v == KF_RETRY_NOW) {
			nows = 1;
			continue;
		}
		if (++counted >= max)
			return exhausted(n + 1, &last, err);
		pause = pause_for(p, counted - 1, v == KF_RETRY_THROTTLED);
		if (timeout_ms && kf_clock_now_ms() + pause >= deadline)
			return timed_out(what, n + 1, &last, err);
		kf_log(KF_LOG_DEBUG,
		       "%s: attempt %u failed (%s); retrying in "
		       "%u ms",
		       what, n + 1, last.msg, pause);
		kf_clock_sleep_ms(pause);
	}
}
