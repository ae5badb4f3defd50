/*
 * The change watcher: every value read through the mount since it was
 * mounted (at most -o watch_max, most recent first) is re-checked every
 * ttl with the provider's cheapest change check (ops->stamp), whether or
 * not it is read again.  A value that changed is refetched into the
 * cache, the kernel's copy dropped, one line appended to .keyfs/events
 * and -o on_change run.  Holds fingerprints of values, never a value.
 */
#ifndef KF_WATCH_H
#define KF_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"

/* The watcher's period when -o ttl=0 (seconds). */
#define KF_WATCH_TTL0_S 60

struct kf_fs;

/*
 * A read of path (rel under p; rel may be a view) served value v: watch
 * path from now on (v gives the first fingerprint, and v->version the
 * first stamp when rel is not a view).  Cheap: no I/O, no provider call.
 */
void kf_watch_note(struct kf_fs *fs, struct kf_provider *p, const char *path,
		   const char *rel, const struct kf_secret *v);

/* Counters (tests, stats). */
struct kf_watch_stats {
	uint64_t watched; /* paths watched now */
	uint64_t rounds, stamps, refetches, changes, gone;
};

/*
 * Set up fs->watch for at most max paths (0: watching is off, fs->watch
 * stays NULL).  No thread yet.  0, or -1 when out of memory.
 */
int kf_watch_init(struct kf_fs *fs, unsigned max);

/* Stop the thread if running and free everything.  Accepts fs->watch
 * NULL. */
void kf_watch_free(struct kf_fs *fs);

/*
 * Start the thread that runs kf_watch_round() every fs->ttl seconds (at
 * least 1); after daemonizing.  0, or -1.  kf_watch_stop() stops and
 * joins it (a round in progress finishes its provider call first).
 */
int kf_watch_start(struct kf_fs *fs);
void kf_watch_stop(struct kf_fs *fs);

/*
 * One round: one ops->stamp per (provider, value) watched; each path
 * whose stamp moved (or that has no stamp) is refetched into the cache
 * and, when its value's fingerprint differs, reported as changed:
 * kernel copy invalidated, event appended, on_change queued.  A path
 * whose value is gone is reported once and no longer watched.  Makes
 * provider calls with no lock held.
 */
void kf_watch_round(struct kf_fs *fs);

/* Whether path is watched; a snapshot of the counters. */
int kf_watch_has(struct kf_fs *fs, const char *path);
void kf_watch_stats(struct kf_fs *fs, struct kf_watch_stats *st);

#endif
