/*
 * The one retry driver: every client's call with retries runs through
 * kf_retry_run().  What differs per API (how many attempts, the pauses,
 * what a throttling answer costs) is data, a struct kf_retry_policy;
 * which answers are worth another attempt is the attempt function's
 * verdict.  Pauses are jittered exponential backoff on the one clock
 * (core/clock.h), so tests run them without waiting.  Never sleeps past
 * the caller's deadline and never holds a lock.
 */
#ifndef KF_RETRY_H
#define KF_RETRY_H

#include "core/err.h"

/* What an attempt found. */
enum kf_retry_verdict {
	KF_RETRY_OK,	    /* the call succeeded: stop, return 0 */
	KF_RETRY_FAIL,	    /* a final error in *err: stop, return -1 */
	KF_RETRY_AGAIN,	    /* a transient error in *err: pause, retry */
	KF_RETRY_THROTTLED, /* throttled: pause on the throttle schedule */
	KF_RETRY_NOW,	    /* retry at once, not counted as an attempt
				 * (credentials were refreshed); allowed once
				 * per run, a second NOW is a FAIL */
};

struct kf_retry_policy {
	unsigned attempts;	   /* at most this many (0 counts as 1) */
	unsigned base_ms;	   /* first pause; doubles, jittered */
	unsigned cap_ms;	   /* pauses never longer (0: base_ms) */
	unsigned throttle_base_ms; /* first pause after THROTTLED (0: base) */
	unsigned throttle_cap_ms;  /* (0: throttle_base_ms * 16) */
	/* With a deadline: an attempt that is not the last may take at most
	 * max(timeout / 2, min_slice_ms), keeping time for another one;
	 * 0 lets every attempt use all the time left. */
	unsigned min_slice_ms;
};

/* What the attempt function is told. */
struct kf_retry_attempt {
	unsigned n;	     /* attempts made before this one (NOW ones too) */
	unsigned timeout_ms; /* time this attempt may take; 0: no deadline */
};

typedef enum kf_retry_verdict (*kf_retry_fn)(void *ctx,
					     const struct kf_retry_attempt *at,
					     struct kf_err *err);

/*
 * Call fn until it answers OK or FAIL, the policy's attempts are used, or
 * timeout_ms passes (0: no overall deadline; each attempt then bounds
 * itself).  Returns 0 after OK, else -1 with *err filled: fn's final
 * error as it is; after the last attempt, the last error with
 * "(N attempts)" added to its message; when the deadline passed, or
 * would pass during the next pause, KF_E_TIMEOUT naming the last error.
 * The last error's provider code, HTTP status and reason are kept.
 * what ("aws: GetSecretValue") starts log lines and messages; it never
 * holds secret text.  err must not be NULL.
 */
int kf_retry_run(const struct kf_retry_policy *p, const char *what,
		 unsigned timeout_ms, kf_retry_fn fn, void *ctx,
		 struct kf_err *err);

/*
 * The pause before retry number attempt+1: base_ms doubled attempt times,
 * at most cap_ms, then a uniform pick in [half of it, all of it] (equal
 * jitter).  0 when base_ms is 0.  Thread-safe.
 */
unsigned kf_retry_backoff_ms(unsigned attempt, unsigned base_ms,
			     unsigned cap_ms);

#endif
