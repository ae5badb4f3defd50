/*
 * The value and attribute cache of the FUSE side: single flight,
 * refresh-ahead, stale-if-error and a short negative cache.  Values live
 * in locked memory and are wiped when dropped; no provider call is ever
 * made with the cache lock held.
 */
#ifndef KF_CACHE_H
#define KF_CACHE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "provider.h"

struct kf_centry;

struct kf_cache_stats {
	uint64_t hits;	 /* value served from cache */
	uint64_t misses; /* value fetched from the provider */
	uint64_t waits;	 /* reader waited on another's fetch */
	uint64_t stale;	 /* value served stale (provider down) */
	uint64_t attr_hits;
	uint64_t attr_misses;
	uint64_t neg_hits;   /* absent name answered from cache */
	uint64_t refreshes;  /* refresh-ahead fetches */
	uint64_t prefetched; /* sibling values from batched reads */
	uint64_t changes;    /* refreshes that found a new value */
	uint64_t evictions;
	uint64_t errors;  /* provider errors seen by the cache */
	uint64_t entries; /* current */
	uint64_t bytes;	  /* current value bytes */
};

/* At most this many refresh-ahead fetches run at once. */
#define KF_CACHE_REFRESH_FETCHES 4

/* Entries kept at most: names known absent, and in all. */
#define KF_CACHE_MAX_NEGATIVE 4096
#define KF_CACHE_MAX_ENTRIES 65536

/* A path waiting for the refresher (to refetch, or to report). */
struct kf_cpath {
	char *path;
	struct kf_cpath *next;
};

/* Entries from oldest to newest (see centry.h for the order). */
struct kf_clist {
	struct kf_centry *oldest, *newest;
	size_t n;
};

struct kf_cache {
	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* a fetch finished */
	struct kf_centry **buckets; /* protected by lock */
	size_t nbuckets;	    /* protected by lock; a power of 2 */
	struct kf_clist neg;	    /* protected by lock: absent names */
	struct kf_clist lru;	    /* protected by lock: every other entry */
	struct kf_centry *walk;	    /* protected by lock: the pass's cursor */
	unsigned walk_pass;	    /* protected by lock */
	struct kf_cpath *gone; /* protected by lock: evicted values to report */
	size_t max_negative, max_entries;
	struct kf_cache_stats st; /* protected by lock */
	/* The last refresher pass: entries visited, and the most visited
	 * in one hold of the lock (tests read it). Protected by lock. */
	struct {
		uint64_t visited, max_hold;
	} walked;
	uint64_t ttl_ms;
	uint64_t max_stale_ms;
	uint64_t neg_ttl_ms;
	uint64_t attr_ttl_ms;
	unsigned timeout_ms; /* a waiter gives up after this */
	struct {
		const struct kf_provider *p;
		uint64_t until; /* ms: serve stale without asking */
	} down[16];		/* protected by lock */
	/* The refresh-ahead workers (started by the first pass that has
	 * work; every field protected by lock). */
	struct {
		pthread_t t[KF_CACHE_REFRESH_FETCHES];
		int started, stop;
		pthread_cond_t work; /* a job was queued, or stop */
		pthread_cond_t idle; /* no job queued or running */
		struct kf_cpath *head, **tail;
		int running;
		void (*changed)(void *ctx, const char *path);
		void *ctx;
	} pool;
};

int kf_cache_init(struct kf_cache *c, unsigned ttl_s, unsigned max_stale_s,
		  unsigned timeout_s);
/* Wipe and free every entry. */
void kf_cache_release(struct kf_cache *c);

/*
 * Attributes of rel (under provider p; path is the full FUSE path, the
 * cache key).  A file's size is exact when the provider knows it or the
 * value is cached.  With fetch_size, a file of unknown size is read
 * through the cache to learn it.  Remembers absent names for a short time.
 */
int kf_cache_getattr(struct kf_cache *c, struct kf_provider *p,
		     const char *path, const char *rel, int fetch_size,
		     struct kf_attr *a, struct kf_err *err);

/*
 * A copy of the value of path (caller frees), from the cache when fresh,
 * else fetched once for all concurrent callers.  When the provider is
 * unreachable and a value younger than ttl + max_stale is held, that value
 * is returned (counted as stale).
 */
int kf_cache_read(struct kf_cache *c, struct kf_provider *p, const char *path,
		  const char *rel, struct kf_secret **out, struct kf_err *err);

/* After a successful commit: the new value becomes the cached one (its
 * version as the provider named it, "" when unknown). */
void kf_cache_put(struct kf_cache *c, struct kf_provider *p, const char *path,
		  const char *rel, const unsigned char *v, size_t n,
		  const char *version);

/* Forget path (after mkdir/create/unlink/rmdir/setxattr of it), and
 * its parent's attributes. */
void kf_cache_forget(struct kf_cache *c, const char *path);

/*
 * One pass of the refresher: refetch values read within the last ttl once
 * they are 3/4 of ttl old, drop values older than ttl + max_stale, forget
 * absent names after neg_ttl.  For every path whose value changed or was
 * dropped, calls changed(ctx, path) with no lock held (to invalidate the
 * kernel's copy).  The lock is held for a bounded slice of entries at a
 * time; refetches run on the cache's workers, at most
 * KF_CACHE_REFRESH_FETCHES at once, each entry marked as loading only
 * when its own fetch starts.  kf_cache_refresh_once() returns when the
 * pass's refetches are done; kf_cache_refresh_tick() returns at once
 * (the workers call changed()), so a slow provider never delays the next
 * pass.
 */
void kf_cache_refresh_once(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx);
void kf_cache_refresh_tick(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx);

/* Stop and join the refresh workers (queued refetches are dropped). */
void kf_cache_refresh_stop(struct kf_cache *c);

/* Forget every version of path held ("path:VERSION" entries), after it
 * was removed: a whole-table walk, for removals only. */
void kf_cache_forget_versions(struct kf_cache *c, const char *path);

/* A snapshot of the counters. */
void kf_cache_stats(struct kf_cache *c, struct kf_cache_stats *out);

/*
 * The absolute wall-clock time ms milliseconds from now, for
 * pthread_cond_timedwait (whose deadlines are CLOCK_REALTIME).  Ages and
 * expiry use kf_clock_now_ms(), which unit tests replace; a thread that
 * really waits uses this.
 */
void kf_cache_abstime(unsigned ms, struct timespec *ts);

#endif

/*
 * For the change watcher: fetch the value of path from the provider now
 * (whatever its age; one fetch for all concurrent callers) and make it
 * the cached one when a different value is held, keeping the old value
 * when the fetch fails (an absent name drops it); a value not held stays
 * so, and an unchanged one keeps its age.  With out, a copy of the new value (caller frees).  Does
 * not count as a read: no refresh-ahead follows.  0, or -1 with *err.
 */
int kf_cache_refetch(struct kf_cache *c, struct kf_provider *p,
		     const char *path, const char *rel, struct kf_secret **out,
		     struct kf_err *err);

/*
 * Whether the value of path the cache would serve now is stale: older
 * than ttl and served because its provider is unreachable.  1 or 0.
 */
int kf_cache_stale(struct kf_cache *c, const char *path);
