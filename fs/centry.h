/*
 * The cache's entries and the table operations shared by fs/cache.c
 * (lookups) and fs/cache_refresh.c (the refresher's pass); no other file
 * includes this.  Every _locked function expects kf_cache.lock held and
 * never calls a provider.
 */
#ifndef KF_CENTRY_H
#define KF_CENTRY_H

#include "cache.h"

struct kf_centry {
	char *path; /* key */
	struct kf_provider *p;
	char *rel;
	struct kf_centry *next; /* hash chain */
	/* Its place in c->neg or c->lru (list: which one, or none). */
	struct kf_centry *older, *newer;
	int list;      /* KF_LIST_* */
	unsigned walk; /* the refresher pass that last visited it */
	int busy;      /* attribute fetches in flight (pin e) */
	int queued;    /* a refresh-ahead job waits for it */
	/* attributes */
	int attr_state; /* KF_ATTR_* */
	struct kf_attr attr;
	uint64_t attr_at;
	/* value */
	struct kf_secret *val; /* NULL when not held */
	uint64_t val_at;       /* when val was fetched */
	uint64_t last_read;    /* last time a reader used val */
	int64_t changed_at;    /* epoch s when val last changed */
	int loading;	       /* a fetch is in flight (pins e) */
	int immutable;	       /* val is one fixed version: never expires */
	int stale_logged;      /* said once per outage */
	uint64_t gen;	       /* bumped by writes and forgets */
};			       /* every field protected by kf_cache.lock */

enum {
	KF_LIST_NONE,
	KF_LIST_NEG,
	KF_LIST_LRU
};

enum {
	KF_ATTR_NONE,
	KF_ATTR_HELD,
	KF_ATTR_ABSENT
};

/*
 * After an outage error the provider is treated as down for a few seconds:
 * what can be served stale is served at once instead of after a full
 * round of retries per path component.  Uncached data still asks.
 */
#define KF_DOWN_MS 5000

/*
 * The table: a hash that doubles when it holds as many entries as
 * buckets, and two lists.  c->neg holds names known absent (no value) in
 * the order they were found absent, which is the order they expire in;
 * c->lru holds every other entry, least recently used first.  Past
 * c->max_negative absent names or c->max_entries in all, the oldest
 * entries that are not pinned (loading or busy) and hold no value read
 * within ttl are evicted; an evicted value's path goes on c->gone for the
 * refresher to report.
 */

/* Whether e may not be freed: a fetch holds a pointer to it. */
int kf_centry_pinned(const struct kf_centry *e);

/* The entry for path, or NULL. */
struct kf_centry *kf_centry_find_locked(struct kf_cache *c, const char *path);

/* The entry for path, created when missing (NULL: out of memory); a use:
 * it becomes the most recently used. */
struct kf_centry *kf_centry_get_locked(struct kf_cache *c,
				       struct kf_provider *p, const char *path,
				       const char *rel);

/* Put e on the list its state calls for, as its newest entry; call after
 * every change of e's value or attributes.  May evict other entries. */
void kf_centry_refile_locked(struct kf_cache *c, struct kf_centry *e);

/* Free every entry (the cache is being released). */
void kf_centry_free_all_locked(struct kf_cache *c);

/* Remove e from the table and free it (its value wiped). */
void kf_centry_unlink_locked(struct kf_cache *c, struct kf_centry *e);

/* Wipe and free e's value, if any. */
void kf_centry_drop_value_locked(struct kf_cache *c, struct kf_centry *e);

/*
 * Make *v (taken; *v becomes NULL) the held value of e, fetched at t.
 * Returns 1 when it differs from the value held before, or none was.
 */
int kf_centry_set_value_locked(struct kf_cache *c, struct kf_centry *e,
			       struct kf_secret **v, uint64_t t);

/* Whether code is an outage, for which the last value may be served. */
int kf_cache_outage(enum kf_code code);

/* Treat p as down until `until` (ms on the kf clock); 0: up. */
void kf_cache_set_down_locked(struct kf_cache *c, const struct kf_provider *p,
			      uint64_t until);

#endif
