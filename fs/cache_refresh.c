/*
 * The refresher's pass over the value cache: expiry of absent names after
 * neg_ttl and of values past max_stale, refresh-ahead of values being
 * read, and the list of paths whose kernel copy is out of date.  The pass
 * holds the cache lock for at most SLICE entries at a time; refetches run
 * on a few worker threads owned by the cache, each marking its entry as
 * loading only when its own fetch starts.  Like every cache function it
 * never calls a provider with the cache lock held.
 */
#include "cache.h"
#include "centry.h"
#include "view.h"

#include "core/clock.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Entries looked at per hold of the lock. */
#define SLICE 256

enum verdict {
	KEEP,
	DROP,
	AHEAD,
	FORGET
};

/* Whether e's value is due for a refresh-ahead at tn: 3/4 of ttl old,
 * read within the last ttl and since it was fetched. */
static int due_ahead(const struct kf_cache *c, const struct kf_centry *e,
		     uint64_t tn)
{
	return e->val && !e->immutable && tn - e->val_at >= c->ttl_ms * 3 / 4 &&
	       tn - e->val_at < c->ttl_ms + c->max_stale_ms &&
	       tn - e->last_read < c->ttl_ms && e->last_read >= e->val_at;
}

/* What a refresher pass at tn does with e. */
static enum verdict verdict_locked(const struct kf_cache *c,
				   const struct kf_centry *e, uint64_t tn)
{
	if (kf_centry_pinned(e))
		return KEEP;
	if (!e->val) {
		/* Absent names last neg_ttl; attributes as long as a stale
		 * value would (they are what leads to it); an entry with
		 * neither is a failed lookup's leftover. */
		if (e->attr_state == KF_ATTR_ABSENT)
			return tn - e->attr_at >= c->neg_ttl_ms ? FORGET : KEEP;
		if (e->attr_state == KF_ATTR_HELD)
			return tn - e->attr_at >= c->attr_ttl_ms +
							  c->max_stale_ms ?
				       FORGET :
				       KEEP;
		return FORGET;
	}
	if (!e->immutable && tn - e->val_at >= c->ttl_ms + c->max_stale_ms)
		return DROP;
	if (due_ahead(c, e, tn) && !e->queued)
		return AHEAD;
	return KEEP;
}

/* Push path on *list; 0, or -1 when out of memory (nothing pushed). */
static int push(struct kf_cpath **list, const char *path)
{
	struct kf_cpath *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->path = strdup(path);
	if (!t->path) {
		free(t);
		return -1;
	}
	t->next = *list;
	*list = t;
	return 0;
}

static void cpath_free(struct kf_cpath *t)
{
	free(t->path);
	free(t);
}

static int start_workers_locked(struct kf_cache *c);

/* Queue a refetch of e for the workers (started by the first one). */
static void queue_locked(struct kf_cache *c, struct kf_centry *e)
{
	struct kf_cpath *job = NULL;

	if (!c->pool.started && (c->pool.stop || start_workers_locked(c) < 0))
		return;
	if (push(&job, e->path) < 0)
		return;
	*c->pool.tail = job;
	c->pool.tail = &job->next;
	e->queued = 1;
	pthread_cond_signal(&c->pool.work);
}

static void act_locked(struct kf_cache *c, struct kf_centry *e, enum verdict v,
		       struct kf_cpath **report)
{
	if (v == FORGET) {
		kf_centry_unlink_locked(c, e);
	} else if (v == DROP) {
		if (push(report, e->path) == 0) {
			c->st.evictions++;
			kf_centry_unlink_locked(c, e);
		}
	} else if (v == AHEAD) {
		queue_locked(c, e);
	}
}

/* Absent names, oldest first, until one is not yet expired; at most
 * SLICE of them.  1 when there may be more. */
static int expire_negative_locked(struct kf_cache *c, uint64_t tn)
{
	struct kf_centry *e = c->neg.oldest, *next;
	int n = 0;

	for (; e && n < SLICE; e = next, n++) {
		next = e->newer;
		if (tn - e->attr_at < c->neg_ttl_ms)
			return 0;
		if (!kf_centry_pinned(e))
			kf_centry_unlink_locked(c, e);
	}
	c->walked.visited += (uint64_t)n;
	if ((uint64_t)n > c->walked.max_hold)
		c->walked.max_hold = (uint64_t)n;
	return e != NULL;
}

/* The next SLICE entries of the other list from the pass's cursor.  1
 * when there may be more.  Entries moved to the newest end (used)
 * meanwhile come round again and are skipped by their pass number. */
static int walk_slice_locked(struct kf_cache *c, uint64_t tn,
			     struct kf_cpath **report)
{
	uint64_t n = 0;

	while (c->walk && n < SLICE) {
		struct kf_centry *e = c->walk;

		c->walk = e->newer;
		n++;
		if (e->walk == c->walk_pass)
			continue;
		e->walk = c->walk_pass;
		act_locked(c, e, verdict_locked(c, e, tn), report);
	}
	c->walked.visited += n;
	if (n > c->walked.max_hold)
		c->walked.max_hold = n;
	return c->walk != NULL;
}

/* Refetch the entry of path if it is still due; 1 when its value
 * changed or vanished.  Called with the lock held, drops it around the
 * provider call. */
static int refetch_locked(struct kf_cache *c, const char *path)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct kf_centry *e = kf_centry_find_locked(c, path);
	uint64_t gen;
	int rc, diff = 0, immutable = 0;

	if (e)
		e->queued = 0;
	/* A reader may have fetched it, or be fetching it, meanwhile. */
	if (!e || kf_centry_pinned(e) || !due_ahead(c, e, kf_clock_now_ms()))
		return 0;
	e->loading = 1;
	gen = e->gen;
	c->st.refreshes++;
	c->pool.running++;
	pthread_mutex_unlock(&c->lock);
	rc = kf_view_fetch(e->p, e->rel, &v, &immutable, &err);
	pthread_mutex_lock(&c->lock);
	c->pool.running--;
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
	kf_centry_refile_locked(c, e);
	kf_secret_free(v);
	return diff;
}

static void *worker_main(void *arg)
{
	struct kf_cache *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->pool.stop) {
		struct kf_cpath *job = c->pool.head;

		if (!job) {
			pthread_cond_wait(&c->pool.work, &c->lock);
			continue;
		}
		c->pool.head = job->next;
		if (!c->pool.head)
			c->pool.tail = &c->pool.head;
		if (refetch_locked(c, job->path) && c->pool.changed) {
			void (*changed)(void *, const char *) = c->pool.changed;
			void *ctx = c->pool.ctx;

			pthread_mutex_unlock(&c->lock);
			changed(ctx, job->path);
			pthread_mutex_lock(&c->lock);
		}
		cpath_free(job);
		if (!c->pool.head && !c->pool.running)
			pthread_cond_broadcast(&c->pool.idle);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Start the workers once; on failure the pass refetches nothing. */
static int start_workers_locked(struct kf_cache *c)
{
	if (c->pool.started)
		return 0;
	for (int i = 0; i < KF_CACHE_REFRESH_FETCHES; i++) {
		if (pthread_create(&c->pool.t[i], NULL, worker_main, c) != 0) {
			c->pool.stop = 1; /* those started exit */
			pthread_cond_broadcast(&c->pool.work);
			c->pool.started = i;
			return -1;
		}
	}
	c->pool.started = KF_CACHE_REFRESH_FETCHES;
	return 0;
}

/* One pass's walk, slice by slice; returns the paths to report. */
static struct kf_cpath *walk_all(struct kf_cache *c, uint64_t tn)
{
	struct kf_cpath *report = NULL;
	int more;

	pthread_mutex_lock(&c->lock);
	c->walked.visited = 0;
	c->walked.max_hold = 0;
	while (expire_negative_locked(c, tn)) {
		pthread_mutex_unlock(&c->lock);
		sched_yield();
		pthread_mutex_lock(&c->lock);
	}
	c->walk_pass++;
	c->walk = c->lru.oldest;
	do {
		more = walk_slice_locked(c, tn, &report);
		pthread_mutex_unlock(&c->lock);
		if (more)
			sched_yield();
		pthread_mutex_lock(&c->lock);
	} while (more);
	/* Values evicted since the last pass are out of date as well. */
	while (c->gone) {
		struct kf_cpath *g = c->gone;

		c->gone = g->next;
		g->next = report;
		report = g;
	}
	pthread_mutex_unlock(&c->lock);
	return report;
}

void kf_cache_refresh_tick(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx)
{
	struct kf_cpath *report;

	pthread_mutex_lock(&c->lock);
	c->pool.changed = changed;
	c->pool.ctx = ctx;
	pthread_mutex_unlock(&c->lock);
	report = walk_all(c, kf_clock_now_ms());
	while (report) {
		struct kf_cpath *t = report;

		report = t->next;
		if (changed)
			changed(ctx, t->path);
		cpath_free(t);
	}
}

void kf_cache_refresh_once(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx)
{
	kf_cache_refresh_tick(c, changed, ctx);
	pthread_mutex_lock(&c->lock);
	while (c->pool.started && !c->pool.stop &&
	       (c->pool.head || c->pool.running))
		pthread_cond_wait(&c->pool.idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void kf_cache_refresh_stop(struct kf_cache *c)
{
	int n;

	pthread_mutex_lock(&c->lock);
	c->pool.stop = 1;
	pthread_cond_broadcast(&c->pool.work);
	pthread_cond_broadcast(&c->pool.idle);
	n = c->pool.started;
	c->pool.started = 0;
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < n; i++)
		pthread_join(c->pool.t[i], NULL);
	pthread_mutex_lock(&c->lock);
	while (c->pool.head) {
		struct kf_cpath *job = c->pool.head;
		struct kf_centry *e = kf_centry_find_locked(c, job->path);

		if (e)
			e->queued = 0;
		c->pool.head = job->next;
		cpath_free(job);
	}
	c->pool.tail = &c->pool.head;
	pthread_mutex_unlock(&c->lock);
}
