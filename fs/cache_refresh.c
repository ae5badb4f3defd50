/*
 * The refresher's pass over the value cache: refresh-ahead of values being
 * read, expiry past max_stale, and the list of paths whose kernel copy is
 * out of date.  Like every cache function it never calls a provider with
 * the cache lock held.
 */
#include "cache.h"
#include "centry.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

/* What one refresher pass does to a path, decided under the lock. */
struct todo {
	char *path;
	int refetch; /* 1: refresh-ahead, 0: dropped */
	struct todo *next;
};

enum verdict {
	KEEP,
	DROP,
	AHEAD,
	FORGET
};

/* What a refresher pass at tn does with e. */
static enum verdict verdict_locked(const struct kf_cache *c,
				   const struct kf_centry *e, uint64_t tn)
{
	uint64_t age = tn - e->val_at;

	if (e->loading)
		return KEEP;
	if (!e->val) {
		/* Attributes are kept as long as a stale value would be:
		 * they are what leads to it. */
		if (tn - e->attr_at >= c->attr_ttl_ms + c->max_stale_ms &&
		    tn - e->attr_at >= c->neg_ttl_ms)
			return FORGET;
		return KEEP;
	}
	if (age >= c->ttl_ms + c->max_stale_ms)
		return DROP;
	/* Read within the last ttl, and since it was fetched. */
	if (age >= c->ttl_ms * 3 / 4 && tn - e->last_read < c->ttl_ms &&
	    e->last_read >= e->val_at)
		return AHEAD;
	return KEEP;
}

/* Push path on *list; 0, or -1 when out of memory (nothing pushed). */
static int todo_push(struct todo **list, const char *path, int refetch)
{
	struct todo *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->path = strdup(path);
	if (!t->path) {
		free(t);
		return -1;
	}
	t->refetch = refetch;
	t->next = *list;
	*list = t;
	return 0;
}

/* Decide every entry's fate; pins the entries to refetch (loading). */
static struct todo *collect_locked(struct kf_cache *c, uint64_t tn)
{
	struct todo *list = NULL;

	for (size_t i = 0; i < c->nbuckets; i++) {
		struct kf_centry *e = c->buckets[i], *next;

		for (; e; e = next) {
			enum verdict v = verdict_locked(c, e, tn);

			next = e->next;
			if (v == FORGET)
				kf_centry_unlink_locked(c, e);
			if (v == KEEP || v == FORGET ||
			    todo_push(&list, e->path, v == AHEAD) < 0)
				continue;
			if (v == DROP) {
				c->st.evictions++;
				kf_centry_unlink_locked(c, e);
			} else {
				e->loading = 1;
			}
		}
	}
	return list;
}

/* Refetch one pinned entry; 1 when its value changed or vanished. */
static int refetch(struct kf_cache *c, const char *path)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct kf_centry *e;
	uint64_t gen;
	int rc, diff = 0;

	pthread_mutex_lock(&c->lock);
	e = kf_centry_find_locked(c, path); /* pinned by loading */
	gen = e->gen;
	c->st.refreshes++;
	pthread_mutex_unlock(&c->lock);
	rc = e->p->ops->read(e->p, e->rel, &v, &err);
	pthread_mutex_lock(&c->lock);
	e->loading = 0;
	pthread_cond_broadcast(&c->cond);
	if (rc < 0 && kf_cache_outage(err.code))
		kf_cache_set_down_locked(c, e->p,
					 kf_clock_now_ms() + KF_DOWN_MS);
	if (rc < 0) {
		c->st.errors++;
		if (err.code == KF_E_NOTFOUND && e->gen == gen) {
			kf_centry_drop_value_locked(c, e);
			e->attr_state = KF_ATTR_ABSENT;
			e->attr_at = kf_clock_now_ms();
			diff = 1;
		}
		/* else: keep the value; stale rules apply */
	} else if (e->gen == gen) {
		diff = kf_centry_set_value_locked(c, e, &v, kf_clock_now_ms());
		if (diff) {
			c->st.changes++;
			e->attr_state = KF_ATTR_NONE;
		}
	}
	pthread_mutex_unlock(&c->lock);
	kf_secret_free(v);
	return diff;
}

void kf_cache_refresh_once(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx)
{
	struct todo *list, *t;

	pthread_mutex_lock(&c->lock);
	list = collect_locked(c, kf_clock_now_ms());
	pthread_mutex_unlock(&c->lock);

	while (list) {
		t = list;
		list = t->next;
		if ((!t->refetch || refetch(c, t->path)) && changed)
			changed(ctx, t->path);
		free(t->path);
		free(t);
	}
}
