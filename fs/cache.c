/*
 * Value and attribute cache (see cache.h).  The lock guards the table
 * only and no provider call is ever made while holding it; a fetch result
 * is inserted only if the entry's generation did not move meanwhile
 * (sshfs's write counter), so an old value never overwrites a newer write.
 * Never logs a value.
 */
#include "cache.h"
#include "centry.h"
#include "view.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How many sibling values one batched read may bring. */
#define NEARBY_MAX 20

#define NDOWN                                   \
	(sizeof(((struct kf_cache *)0)->down) / \
	 sizeof(((struct kf_cache *)0)->down[0]))

static uint64_t now(void)
{
	return kf_clock_now_ms();
}

void kf_cache_abstime(unsigned ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int kf_cache_init(struct kf_cache *c, unsigned ttl_s, unsigned max_stale_s,
		  unsigned timeout_s)
{
	memset(c, 0, sizeof(*c));
	c->nbuckets = 1024; /* doubles as entries come */
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->pool.work, NULL);
	pthread_cond_init(&c->pool.idle, NULL);
	c->pool.tail = &c->pool.head;
	c->max_negative = KF_CACHE_MAX_NEGATIVE;
	c->max_entries = KF_CACHE_MAX_ENTRIES;
	c->ttl_ms = (uint64_t)ttl_s * 1000;
	c->max_stale_ms = (uint64_t)max_stale_s * 1000;
	/* Absent names: short, so a name created elsewhere shows soon. */
	c->neg_ttl_ms = c->ttl_ms < 2000 ? c->ttl_ms : 2000;
	/* Attributes: as long as values, but at most 60 s (listings are not
	 * cached, so this only spares repeated lookups). */
	c->attr_ttl_ms = c->ttl_ms < 60000 ? c->ttl_ms : 60000;
	c->timeout_ms = timeout_s * 1000;
	return 0;
}

void kf_cache_release(struct kf_cache *c)
{
	if (!c->buckets)
		return;
	kf_cache_refresh_stop(c);
	kf_centry_free_all_locked(c);
	free(c->buckets);
	c->buckets = NULL;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->pool.work);
	pthread_cond_destroy(&c->pool.idle);
}

int kf_cache_outage(enum kf_code code)
{
	return code == KF_E_UNAVAILABLE || code == KF_E_TIMEOUT ||
	       code == KF_E_IO;
}

static int is_down_locked(struct kf_cache *c, const struct kf_provider *p,
			  uint64_t t)
{
	for (size_t i = 0; i < NDOWN; i++)
		if (c->down[i].p == p)
			return t < c->down[i].until;
	return 0;
}

void kf_cache_set_down_locked(struct kf_cache *c, const struct kf_provider *p,
			      uint64_t until)
{
	size_t free_slot = NDOWN;

	for (size_t i = 0; i < NDOWN; i++) {
		if (c->down[i].p == p) {
			c->down[i].until = until;
			return;
		}
		if (!c->down[i].p && free_slot == NDOWN)
			free_slot = i;
	}
	if (free_slot < NDOWN && until) {
		c->down[free_slot].p = p;
		c->down[free_slot].until = until;
	}
}

/* Whether a value fetched at `at` may still be served stale at t. */
static int within_stale(const struct kf_cache *c, uint64_t at, uint64_t t)
{
	return t - at < c->ttl_ms + c->max_stale_ms;
}

static int copy_out(struct kf_secret *v, struct kf_secret **out,
		    struct kf_err *err)
{
	*out = kf_secret_dup(v->data, v->len);
	if (!*out)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	kf_secret_set_version(*out, v->version);
	return 0;
}

/* Wait for an in-flight fetch until the reader's deadline (set on the
 * first wait); 0 when it finished, -1 on timeout.  The deadline is real
 * time: the waiter really sleeps. */
static int wait_locked(struct kf_cache *c, struct kf_centry *e,
		       struct timespec *deadline)
{
	if (!deadline->tv_sec)
		kf_cache_abstime(c->timeout_ms ? c->timeout_ms : 30000,
				 deadline);
	c->st.waits++;
	while (e->loading)
		if (pthread_cond_timedwait(&c->cond, &c->lock, deadline) ==
		    ETIMEDOUT)
			return e->loading ? -1 : 0;
	return 0;
}

/* Serve e's held value stale (the provider is slow or down); 1 when
 * served (*rc is the result), 0 when no value younger than ttl +
 * max_stale is held. */
static int serve_stale_locked(struct kf_cache *c, struct kf_centry *e,
			      uint64_t t, struct kf_secret **out,
			      struct kf_err *err, int *rc)
{
	if (!e->val || !within_stale(c, e->val_at, t))
		return 0;
	c->st.stale++;
	e->last_read = t;
	*rc = copy_out(e->val, out, err);
	return 1;
}

struct sibling_ctx {
	struct kf_cache *c;
	struct kf_provider *p;
	const char *path; /* the FUSE path of the file asked for */
	const char *rel;  /* its provider-relative path (inside path) */
};

/* The FUSE path of sibling rel into full (size n); -1 when too long. */
static int sibling_path(const struct sibling_ctx *sc, const char *rel,
			char *full, size_t n)
{
	size_t base = (size_t)(sc->rel - sc->path);

	if (base + strlen(rel) >= n)
		return -1;
	memcpy(full, sc->path, base);
	memcpy(full + base, rel, strlen(rel) + 1);
	return 0;
}

/* A sibling's value from a batched read: cache it unless a fresher one
 * (or a fetch in flight) is already there.  Not marked as being read, so
 * it is not refreshed ahead and simply expires. */
static void sibling_value(void *vctx, const char *rel, struct kf_secret *v)
{
	struct sibling_ctx *sc = vctx;
	char full[4096];
	struct kf_centry *e;
	uint64_t t;

	if (sibling_path(sc, rel, full, sizeof(full)) < 0) {
		kf_secret_free(v);
		return;
	}
	pthread_mutex_lock(&sc->c->lock);
	e = kf_centry_get_locked(sc->c, sc->p, full, rel);
	t = now();
	if (e && !e->loading && (!e->val || t - e->val_at >= sc->c->ttl_ms)) {
		kf_centry_set_value_locked(sc->c, e, &v, t);
		kf_centry_refile_locked(sc->c, e);
		sc->c->st.prefetched++;
	}
	pthread_mutex_unlock(&sc->c->lock);
	kf_secret_free(v);
}

/* Whether a batched read should bring rel's value: not held fresh, not
 * being fetched. */
static int sibling_wanted(void *vctx, const char *rel)
{
	struct sibling_ctx *sc = vctx;
	char full[4096];
	struct kf_centry *e;
	int want;

	if (sibling_path(sc, rel, full, sizeof(full)) < 0)
		return 0;
	pthread_mutex_lock(&sc->c->lock);
	e = kf_centry_find_locked(sc->c, full);
	want = !e ||
	       (!e->loading && (!e->val || now() - e->val_at >= sc->c->ttl_ms));
	pthread_mutex_unlock(&sc->c->lock);
	return want;
}

/*
 * Serve e's value from memory when it is fresh, or when its provider is
 * known to be down and the value is within max_stale.  Returns 1 when
 * served (*rc is the result), 0 when a fetch is needed.
 */
static int serve_held_locked(struct kf_cache *c, struct kf_centry *e,
			     uint64_t t, struct kf_secret **out,
			     struct kf_err *err, int *rc)
{
	if (!e->val)
		return 0;
	if (e->immutable || t - e->val_at < c->ttl_ms) {
		c->st.hits++;
	} else if (is_down_locked(c, e->p, t) &&
		   within_stale(c, e->val_at, t)) {
		c->st.stale++;
		if (!e->stale_logged)
			kf_log(KF_LOG_WARN,
			       "%s: provider unavailable; "
			       "serving the value fetched %llu s ago",
			       e->path,
			       (unsigned long long)((t - e->val_at) / 1000));
		e->stale_logged = 1;
	} else {
		return 0;
	}
	e->last_read = t;
	*rc = copy_out(e->val, out, err);
	return 1;
}

/* Record whether the provider answered (outage errors mark it down). */
static void note_outcome_locked(struct kf_cache *c, const struct kf_provider *p,
				int rc, const struct kf_err *err, uint64_t t)
{
	if (rc < 0 && kf_cache_outage(err->code))
		kf_cache_set_down_locked(c, p, t + KF_DOWN_MS);
	else if (rc == 0)
		kf_cache_set_down_locked(c, p, 0);
}

/*
 * A fetch of e's value failed with *err: serve the held value stale on an
 * outage, remember an absent name (unless a write came meanwhile), else
 * return the error as it is.
 */
static int fetch_failed_locked(struct kf_cache *c, struct kf_centry *e,
			       uint64_t gen, uint64_t t, struct kf_secret **out,
			       struct kf_err *err)
{
	c->st.errors++;
	if (kf_cache_outage(err->code) && e->val &&
	    within_stale(c, e->val_at, t)) {
		c->st.stale++;
		e->last_read = t;
		e->stale_logged = 1;
		kf_log(KF_LOG_WARN,
		       "%s: provider unavailable (%s); serving "
		       "the value fetched %llu s ago",
		       e->path, err->msg,
		       (unsigned long long)((t - e->val_at) / 1000));
		return copy_out(e->val, out, err);
	}
	if (err->code == KF_E_NOTFOUND && e->gen == gen) {
		kf_centry_drop_value_locked(c, e);
		e->attr_state = KF_ATTR_ABSENT;
		e->attr_at = t;
		kf_centry_refile_locked(c, e);
	}
	return -1;
}

/* The provider call of a fetch (no lock held); *immutable as for
 * kf_view_fetch (rel may name a version). */
static int fetch_value(struct kf_cache *c, struct kf_provider *p,
		       const char *path, const char *rel, int nearby,
		       struct kf_secret **v, int *immutable, struct kf_err *err)
{
	struct sibling_ctx sc = { c, p, path, rel };

	*immutable = 0;
	if (nearby && p->ops->read_nearby)
		return p->ops->read_nearby(p, rel, NEARBY_MAX, sibling_wanted,
					   sibling_value, &sc, v, err);
	return kf_view_fetch(p, rel, v, immutable, err);
}

/* Take the outcome of the fetch that started at generation gen. */
static int fetched_locked(struct kf_cache *c, struct kf_centry *e, uint64_t gen,
			  int rc, int immutable, struct kf_secret **v,
			  struct kf_secret **out, struct kf_err *err)
{
	uint64_t t = now();

	note_outcome_locked(c, e->p, rc, err, t);
	if (rc < 0)
		return fetch_failed_locked(c, e, gen, t, out, err);
	rc = copy_out(*v, out, err);
	if (rc == 0 && e->gen == gen) {
		kf_centry_set_value_locked(c, e, v, t);
		e->immutable = immutable;
		e->last_read = t;
		e->stale_logged = 0;
		if (e->attr_state == KF_ATTR_ABSENT)
			e->attr_state = KF_ATTR_NONE;
		kf_centry_refile_locked(c, e);
	}
	return rc;
}

static int cache_read(struct kf_cache *c, struct kf_provider *p,
		      const char *path, const char *rel, int nearby,
		      struct kf_secret **out, struct kf_err *err)
{
	struct timespec deadline = { 0, 0 };
	struct kf_secret *v = NULL;
	struct kf_centry *e;
	uint64_t gen;
	int rc = -1, immutable = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = kf_centry_get_locked(c, p, path, rel);
		if (!e) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		if (serve_held_locked(c, e, now(), out, err, &rc))
			goto out;
		if (!e->loading)
			break;
		if (wait_locked(c, e, &deadline) < 0) {
			/* Still in flight at the deadline: what is held
			 * serves, else the reader fails. */
			if (!serve_stale_locked(c, e, now(), out, err, &rc))
				kf_fail(err, KF_E_TIMEOUT,
					"timed out waiting for a fetch");
			goto out;
		}
	}
	e->loading = 1;
	gen = e->gen;
	c->st.misses++;
	pthread_mutex_unlock(&c->lock);

	rc = fetch_value(c, p, path, rel, nearby, &v, &immutable, err);

	pthread_mutex_lock(&c->lock);
	e = kf_centry_find_locked(c, path); /* pinned by loading */
	e->loading = 0;
	pthread_cond_broadcast(&c->cond);
	rc = fetched_locked(c, e, gen, rc, immutable, &v, out, err);
out:
	pthread_mutex_unlock(&c->lock);
	kf_secret_free(v);
	return rc;
}

int kf_cache_read(struct kf_cache *c, struct kf_provider *p, const char *path,
		  const char *rel, struct kf_secret **out, struct kf_err *err)
{
	return cache_read(c, p, path, rel, 0, out, err);
}

/*
 * Attributes held for e: 1 with *a filled, -1 for a name known absent
 * (*err filled), 0 when the provider must be asked.
 */
static int attr_held_locked(struct kf_cache *c, struct kf_centry *e, uint64_t t,
			    struct kf_attr *a, struct kf_err *err)
{
	if (e->attr_state == KF_ATTR_ABSENT && t - e->attr_at < c->neg_ttl_ms) {
		c->st.neg_hits++;
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	}
	if (e->attr_state == KF_ATTR_HELD &&
	    (t - e->attr_at < c->attr_ttl_ms ||
	     (is_down_locked(c, e->p, t) &&
	      t - e->attr_at < c->attr_ttl_ms + c->max_stale_ms))) {
		c->st.attr_hits++;
		*a = e->attr;
		return 1;
	}
	return 0;
}

/*
 * Take the outcome of a provider getattr that started at generation gen.
 * Returns 0 with *a usable (fresh, or stale during an outage), or -1.
 */
static int attr_fetched_locked(struct kf_cache *c, struct kf_centry *e,
			       uint64_t gen, uint64_t t, int rc,
			       struct kf_attr *a, struct kf_err *err)
{
	if (rc == 0) {
		if (e->gen == gen) {
			e->attr = *a;
			e->attr_state = KF_ATTR_HELD;
			e->attr_at = t;
			kf_centry_refile_locked(c, e);
		}
		return 0;
	}
	if (kf_cache_outage(err->code))
		kf_cache_set_down_locked(c, e->p, t + KF_DOWN_MS);
	if (err->code == KF_E_NOTFOUND && e->gen == gen) {
		e->attr_state = KF_ATTR_ABSENT;
		e->attr_at = t;
		kf_centry_refile_locked(c, e);
	}
	/* Provider down: what was known stays usable as long as a value
	 * would (the names above a cached value must resolve). */
	if (kf_cache_outage(err->code) && e->attr_state == KF_ATTR_HELD &&
	    t - e->attr_at < c->attr_ttl_ms + c->max_stale_ms) {
		c->st.stale++;
		*a = e->attr;
		kf_err_clear(err);
		return 0;
	}
	return -1;
}

/* A file's exact size and change time from the value held, if fresh. */
static void attr_from_value_locked(struct kf_cache *c, struct kf_centry *e,
				   uint64_t t, int fetch_size,
				   struct kf_attr *a)
{
	if (a->kind != KF_KIND_FILE)
		return;
	if (e->val && t - e->val_at < c->ttl_ms) {
		a->size = e->val->len;
		a->size_known = 1;
		/* With kernel caching, a stat is how a reader shows itself:
		 * keep its value refreshed ahead. */
		if (fetch_size)
			e->last_read = t;
	}
	if (e->changed_at && !a->mtime)
		a->mtime = e->changed_at;
}

/*
 * A stat wants the size: fetch this value, and its listed neighbours in
 * the same call where the provider can, so `ls -l` costs one call per
 * many files, not one each.
 */
static int read_for_size(struct kf_cache *c, struct kf_provider *p,
			 const char *path, const char *rel, struct kf_attr *a,
			 struct kf_err *err)
{
	struct kf_secret *v = NULL;
	struct kf_centry *e;

	if (cache_read(c, p, path, rel, 1, &v, err) < 0)
		return -1;
	a->size = v->len;
	a->size_known = 1;
	kf_secret_free(v);
	pthread_mutex_lock(&c->lock);
	e = kf_centry_find_locked(c, path);
	if (e && e->changed_at && !a->mtime)
		a->mtime = e->changed_at;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int kf_cache_getattr(struct kf_cache *c, struct kf_provider *p,
		     const char *path, const char *rel, int fetch_size,
		     struct kf_attr *a, struct kf_err *err)
{
	struct kf_centry *e;
	uint64_t t, gen;
	int rc;

	pthread_mutex_lock(&c->lock);
	e = kf_centry_get_locked(c, p, path, rel);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	t = now();
	rc = attr_held_locked(c, e, t, a, err);
	if (rc == 0) {
		gen = e->gen;
		c->st.attr_misses++;
		e->busy++; /* pinned: neither forgotten nor evicted */
		pthread_mutex_unlock(&c->lock);
		rc = p->ops->getattr(p, rel, a, err);
		pthread_mutex_lock(&c->lock);
		e->busy--;
		t = now();
		rc = attr_fetched_locked(c, e, gen, t, rc, a, err);
	} else if (rc > 0) {
		rc = 0;
	}
	if (rc == 0)
		attr_from_value_locked(c, e, t, fetch_size, a);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return -1;
	if (a->kind == KF_KIND_FILE && !a->size_known && fetch_size)
		return read_for_size(c, p, path, rel, a, err);
	return 0;
}

void kf_cache_put(struct kf_cache *c, struct kf_provider *p, const char *path,
		  const char *rel, const unsigned char *v, size_t n,
		  const char *version)
{
	struct kf_centry *e;
	struct kf_secret *s = kf_secret_dup(v, n);

	kf_secret_set_version(s, version);
	pthread_mutex_lock(&c->lock);
	e = kf_centry_get_locked(c, p, path, rel);
	if (e) {
		e->gen++;
		kf_centry_drop_value_locked(c, e);
		e->attr_state = KF_ATTR_NONE;
		if (s) /* none held now: counts as a change */
			kf_centry_set_value_locked(c, e, &s, now());
		kf_centry_refile_locked(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	kf_secret_free(s);
}

static void forget_one_locked(struct kf_cache *c, const char *path)
{
	struct kf_centry *e = kf_centry_find_locked(c, path);

	if (!e)
		return;
	e->gen++;
	e->attr_state = KF_ATTR_NONE;
	kf_centry_drop_value_locked(c, e);
	if (kf_centry_pinned(e))
		kf_centry_refile_locked(c, e);
	else
		kf_centry_unlink_locked(c, e);
}

void kf_cache_forget(struct kf_cache *c, const char *path)
{
	char parent[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	pthread_mutex_lock(&c->lock);
	forget_one_locked(c, path);
	if (n > 0 && n < sizeof(parent)) {
		memcpy(parent, path, n);
		parent[n] = '\0';
		forget_one_locked(c, parent);
	}
	pthread_mutex_unlock(&c->lock);
}

void kf_cache_forget_versions(struct kf_cache *c, const char *path)
{
	size_t n = strlen(path);

	pthread_mutex_lock(&c->lock);
	for (size_t b = 0; b < c->nbuckets; b++) {
		struct kf_centry *e = c->buckets[b], *next;

		for (; e; e = next) {
			next = e->next;
			if (!strncmp(e->path, path, n) && e->path[n] == ':')
				forget_one_locked(c, e->path);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void kf_cache_stats(struct kf_cache *c, struct kf_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

int kf_cache_refetch(struct kf_cache *c, struct kf_provider *p,
		     const char *path, const char *rel, struct kf_secret **out,
		     struct kf_err *err)
{
	struct timespec deadline = { 0, 0 };
	struct kf_secret *v = NULL;
	struct kf_centry *e;
	uint64_t gen, t;
	int rc, immutable = 0;

	if (out)
		*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = kf_centry_get_locked(c, p, path, rel);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	/* A fetch in flight is as fresh as ours would be: wait for it. */
	if (e->loading) {
		rc = wait_locked(c, e, &deadline);
		if (rc == 0 && e->val && out)
			rc = copy_out(e->val, out, err);
		else if (rc < 0 || !e->val)
			rc = kf_fail(err, rc < 0 ? KF_E_TIMEOUT : KF_E_NOTFOUND,
				     "no value after a concurrent fetch");
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	e->loading = 1;
	gen = e->gen;
	pthread_mutex_unlock(&c->lock);

	rc = fetch_value(c, p, path, rel, 0, &v, &immutable, err);

	pthread_mutex_lock(&c->lock);
	e = kf_centry_find_locked(c, path); /* pinned by loading */
	e->loading = 0;
	pthread_cond_broadcast(&c->cond);
	t = now();
	note_outcome_locked(c, p, rc, err, t);
	if (rc < 0) {
		c->st.errors++;
		if (err->code == KF_E_NOTFOUND && e->gen == gen) {
			kf_centry_drop_value_locked(c, e);
			e->attr_state = KF_ATTR_ABSENT;
			e->attr_at = t;
		}
	} else {
		if (out)
			rc = copy_out(v, out, err);
		/* Nothing held (dropped, or never read whole): nothing to
		 * replace.  The same bytes: the held value keeps its age, so
		 * watching never keeps a value in memory longer than reads
		 * would. */
		if (e->gen == gen && e->val && !kf_secret_equal(e->val, v)) {
			if (kf_centry_set_value_locked(c, e, &v, t)) {
				c->st.changes++;
				e->attr_state = KF_ATTR_NONE;
			}
			e->immutable = immutable;
			e->stale_logged = 0;
		}
	}
	kf_centry_refile_locked(c, e);
	pthread_mutex_unlock(&c->lock);
	kf_secret_free(v);
	return rc;
}

int kf_cache_stale(struct kf_cache *c, const char *path)
{
	struct kf_centry *e;
	uint64_t t = now();
	int stale = 0;

	pthread_mutex_lock(&c->lock);
	e = kf_centry_find_locked(c, path);
	if (e && e->val && !e->immutable && t - e->val_at >= c->ttl_ms &&
	    within_stale(c, e->val_at, t))
		stale = is_down_locked(c, e->p, t) || e->stale_logged;
	pthread_mutex_unlock(&c->lock);
	return stale;
}
