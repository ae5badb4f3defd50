/*
 * The cache's table (see centry.h): a hash that grows, the list of absent
 * names in expiry order and the least-recently-used list of the others,
 * and eviction past the caps.  Every function expects kf_cache.lock held,
 * does work bounded by a constant (a doubling of the hash aside, which is
 * bounded by the cap on entries) and never calls a provider.
 */
#include "cache.h"
#include "centry.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

/* How many pinned or busy entries eviction steps over before it gives up
 * (the cap is then exceeded until a later insertion). */
#define EVICT_SCAN 16

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct kf_centry **bucket(struct kf_cache *c, const char *path)
{
	return &c->buckets[hash(path) & (c->nbuckets - 1)];
}

int kf_centry_pinned(const struct kf_centry *e)
{
	return e->loading || e->busy;
}

void kf_centry_drop_value_locked(struct kf_cache *c, struct kf_centry *e)
{
	if (!e->val)
		return;
	c->st.bytes -= e->val->len;
	kf_secret_free(e->val);
	e->val = NULL;
}

int kf_centry_set_value_locked(struct kf_cache *c, struct kf_centry *e,
			       struct kf_secret **v, uint64_t t)
{
	int diff = !e->val || !kf_secret_equal(e->val, *v);

	if (diff)
		e->changed_at = time(NULL);
	kf_centry_drop_value_locked(c, e);
	e->val = *v;
	*v = NULL;
	e->val_at = t;
	c->st.bytes += e->val->len;
	return diff;
}

static void entry_free(struct kf_centry *e)
{
	free(e->path);
	free(e->rel);
	free(e);
}

static struct kf_clist *list_of(struct kf_cache *c, int which)
{
	return which == KF_LIST_NEG ? &c->neg : &c->lru;
}

static void list_remove(struct kf_cache *c, struct kf_centry *e)
{
	struct kf_clist *l;

	if (e->list == KF_LIST_NONE)
		return;
	l = list_of(c, e->list);
	if (c->walk == e)
		c->walk = e->newer;
	if (e->older)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	e->older = e->newer = NULL;
	e->list = KF_LIST_NONE;
	l->n--;
}

static void list_append(struct kf_cache *c, struct kf_centry *e, int which)
{
	struct kf_clist *l = list_of(c, which);

	e->list = which;
	e->older = l->newest;
	e->newer = NULL;
	if (l->newest)
		l->newest->newer = e;
	else
		l->oldest = e;
	l->newest = e;
	l->n++;
}

struct kf_centry *kf_centry_find_locked(struct kf_cache *c, const char *path)
{
	struct kf_centry *e = *bucket(c, path);

	while (e && strcmp(e->path, path))
		e = e->next;
	return e;
}

/* A value someone read within ttl: evicting it would cost them a fetch. */
static int in_use(const struct kf_cache *c, const struct kf_centry *e,
		  uint64_t t)
{
	return e->val && t - e->last_read < c->ttl_ms;
}

/* Evict e; a value's path is kept for the refresher to report. */
static void evict(struct kf_cache *c, struct kf_centry *e)
{
	if (e->val) {
		struct kf_cpath *g = calloc(1, sizeof(*g));

		if (g)
			g->path = strdup(e->path);
		if (g && g->path) {
			g->next = c->gone;
			c->gone = g;
		} else {
			free(g);
		}
	}
	c->st.evictions++;
	kf_centry_unlink_locked(c, e);
}

/* Evict from l's oldest end, never keep, until n <= max; 0 when done. */
static int trim_list(struct kf_cache *c, struct kf_clist *l, size_t n,
		     size_t max, const struct kf_centry *keep)
{
	struct kf_centry *e = l->oldest, *next;
	uint64_t t = kf_clock_now_ms();
	int scanned = 0;

	while (e && n > max && scanned < EVICT_SCAN) {
		next = e->newer;
		if (e == keep || kf_centry_pinned(e) || in_use(c, e, t)) {
			scanned++;
		} else {
			evict(c, e);
			n--;
		}
		e = next;
	}
	return n > max;
}

/* Keep the caps, with room for `room` more entries: absent names go
 * first, they are the cheapest to lose. */
static void trim_locked(struct kf_cache *c, size_t room,
			const struct kf_centry *keep)
{
	size_t max = c->max_entries > room ? c->max_entries - room : 0;

	trim_list(c, &c->neg, c->neg.n, c->max_negative, keep);
	if (c->st.entries > max &&
	    trim_list(c, &c->neg, c->st.entries, max, keep))
		trim_list(c, &c->lru, c->st.entries, max, keep);
}

/* Double the buckets; on failure the chains just grow longer. */
static void grow(struct kf_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct kf_centry **nb = calloc(n, sizeof(*nb)), **old = c->buckets;
	size_t oldn = c->nbuckets;

	if (!nb)
		return;
	c->buckets = nb;
	c->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		while (old[i]) {
			struct kf_centry *e = old[i], **b = bucket(c, e->path);

			old[i] = e->next;
			e->next = *b;
			*b = e;
		}
	}
	free(old);
}

struct kf_centry *kf_centry_get_locked(struct kf_cache *c,
				       struct kf_provider *p, const char *path,
				       const char *rel)
{
	struct kf_centry *e = kf_centry_find_locked(c, path), **b;

	if (e) {
		if (e->list == KF_LIST_LRU && c->lru.newest != e) {
			list_remove(c, e);
			list_append(c, e, KF_LIST_LRU);
		}
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	e->rel = strdup(rel);
	if (!e->path || !e->rel) {
		entry_free(e);
		return NULL;
	}
	e->p = p;
	trim_locked(c, 1, NULL);
	if (c->st.entries >= c->nbuckets)
		grow(c);
	b = bucket(c, path);
	e->next = *b;
	*b = e;
	c->st.entries++;
	list_append(c, e, KF_LIST_LRU);
	return e;
}

void kf_centry_refile_locked(struct kf_cache *c, struct kf_centry *e)
{
	int which = e->attr_state == KF_ATTR_ABSENT && !e->val ? KF_LIST_NEG :
								 KF_LIST_LRU;

	list_remove(c, e);
	list_append(c, e, which);
	if (which == KF_LIST_NEG)
		trim_locked(c, 0, e);
}

void kf_centry_unlink_locked(struct kf_cache *c, struct kf_centry *e)
{
	struct kf_centry **pp = bucket(c, e->path);

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	list_remove(c, e);
	kf_centry_drop_value_locked(c, e);
	entry_free(e);
	c->st.entries--;
}

void kf_centry_free_all_locked(struct kf_cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct kf_centry *e = c->buckets[i];

			c->buckets[i] = e->next;
			kf_centry_drop_value_locked(c, e);
			entry_free(e);
		}
	}
	c->neg = (struct kf_clist){ NULL, NULL, 0 };
	c->lru = c->neg;
	c->walk = NULL;
	while (c->gone) {
		struct kf_cpath *g = c->gone;

		c->gone = g->next;
		free(g->path);
		free(g);
	}
}
