/*
 * Value and attribute cache (see cache.h).  The lock guards the table
 * only: provider calls happen outside it, and a fetch result is inserted
 * only if the entry's generation did not move meanwhile (sshfs's write
 * counter), so an old value never overwrites a newer write.
 */
#include "cache.h"

#include "core/http.h"
#include "core/log.h"
#include "core/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kf_centry {
	char *path;			/* key */
	struct kf_provider *p;
	char *rel;
	struct kf_centry *next;		/* hash chain */
	/* attributes */
	int attr_state;			/* 0 none, 1 attr, 2 absent */
	struct kf_attr attr;
	uint64_t attr_at;
	/* value */
	struct kf_secret *val;		/* NULL when not held */
	uint64_t val_at;		/* when val was fetched */
	uint64_t last_read;		/* last time a reader used val */
	int64_t changed_at;		/* epoch s when val last changed */
	int loading;			/* a fetch is in flight */
	int stale_logged;		/* said once per outage */
	uint64_t gen;			/* bumped by writes and forgets */
};

static uint64_t (*clock_fn)(void);

void kf_cache_set_clock(uint64_t (*now_ms)(void))
{
	clock_fn = now_ms;
}

static uint64_t now(void)
{
	return clock_fn ? clock_fn() : kf_clock_now_ms();
}

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

int kf_cache_init(struct kf_cache *c, unsigned ttl_s, unsigned max_stale_s,
		  unsigned timeout_s)
{
	memset(c, 0, sizeof(*c));
	c->nbuckets = 4096;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
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

static void drop_value_locked(struct kf_cache *c, struct kf_centry *e)
{
	if (!e->val)
		return;
	c->st.bytes -= e->val->len;
	kf_secret_free(e->val);
	e->val = NULL;
}

static void entry_free(struct kf_centry *e)
{
	free(e->path);
	free(e->rel);
	free(e);
}

void kf_cache_release(struct kf_cache *c)
{
	if (!c->buckets)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct kf_centry *e = c->buckets[i];

			c->buckets[i] = e->next;
			drop_value_locked(c, e);
			entry_free(e);
		}
	}
	free(c->buckets);
	c->buckets = NULL;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
}

static struct kf_centry *find_locked(struct kf_cache *c, const char *path)
{
	struct kf_centry *e = c->buckets[hash(path) % c->nbuckets];

	while (e && strcmp(e->path, path))
		e = e->next;
	return e;
}

static struct kf_centry *get_locked(struct kf_cache *c, struct kf_provider *p,
				    const char *path, const char *rel)
{
	struct kf_centry *e = find_locked(c, path);
	size_t b;

	if (e)
		return e;
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
	b = hash(path) % c->nbuckets;
	e->next = c->buckets[b];
	c->buckets[b] = e;
	c->st.entries++;
	return e;
}

static void unlink_locked(struct kf_cache *c, struct kf_centry *e)
{
	struct kf_centry **pp = &c->buckets[hash(e->path) % c->nbuckets];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	drop_value_locked(c, e);
	entry_free(e);
	c->st.entries--;
}

/* Errors for which the last value may be served. */
static int outage(enum kf_code code)
{
	return code == KF_E_UNAVAILABLE || code == KF_E_TIMEOUT ||
	       code == KF_E_IO;
}

/*
 * After an outage error the provider is treated as down for a few seconds:
 * what can be served stale is served at once instead of after a full
 * round of retries per path component.  Uncached data still asks.
 */
#define DOWN_MS 5000

static int is_down_locked(struct kf_cache *c, const struct kf_provider *p,
			  uint64_t t)
{
	for (size_t i = 0; i < sizeof(c->down) / sizeof(c->down[0]); i++)
		if (c->down[i].p == p)
			return t < c->down[i].until;
	return 0;
}

static void set_down_locked(struct kf_cache *c, const struct kf_provider *p,
			    uint64_t until)
{
	size_t free_slot = sizeof(c->down) / sizeof(c->down[0]);

	for (size_t i = 0; i < sizeof(c->down) / sizeof(c->down[0]); i++) {
		if (c->down[i].p == p) {
			c->down[i].until = until;
			return;
		}
		if (!c->down[i].p && free_slot == sizeof(c->down) / sizeof(c->down[0]))
			free_slot = i;
	}
	if (free_slot < sizeof(c->down) / sizeof(c->down[0]) && until) {
		c->down[free_slot].p = p;
		c->down[free_slot].until = until;
	}
}

static int copy_out(struct kf_secret *v, struct kf_secret **out,
		    struct kf_err *err)
{
	*out = kf_secret_dup(v->data, v->len);
	if (!*out)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

/* Wait for an in-flight fetch; 0 when it finished, -1 on timeout. */
static int wait_locked(struct kf_cache *c, struct kf_centry *e)
{
	struct timespec ts;
	uint64_t ms = c->timeout_ms ? c->timeout_ms : 30000;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	c->st.waits++;
	while (e->loading)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			return e->loading ? -1 : 0;
	return 0;
}

struct sibling_ctx {
	struct kf_cache *c;
	struct kf_provider *p;
	const char *path;	/* the FUSE path of the file asked for */
	const char *rel;	/* its provider-relative path (inside path) */
};

/* A sibling's value from a batched read: cache it unless a fresher one
 * (or a fetch in flight) is already there.  Not marked as being read, so
 * it is not refreshed ahead and simply expires. */
static void sibling_value(void *vctx, const char *rel, struct kf_secret *v)
{
	struct sibling_ctx *sc = vctx;
	size_t base = (size_t)(sc->rel - sc->path);
	char full[4096];
	struct kf_centry *e;
	uint64_t t;

	if (base + strlen(rel) >= sizeof(full)) {
		kf_secret_free(v);
		return;
	}
	memcpy(full, sc->path, base);
	memcpy(full + base, rel, strlen(rel) + 1);
	pthread_mutex_lock(&sc->c->lock);
	e = get_locked(sc->c, sc->p, full, rel);
	t = now();
	if (e && !e->loading && (!e->val || t - e->val_at >= sc->c->ttl_ms)) {
		if (!e->val || !kf_secret_equal(e->val, v))
			e->changed_at = time(NULL);
		drop_value_locked(sc->c, e);
		e->val = v;
		v = NULL;
		e->val_at = t;
		sc->c->st.bytes += e->val->len;
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
	size_t base = (size_t)(sc->rel - sc->path);
	char full[4096];
	struct kf_centry *e;
	int want;

	if (base + strlen(rel) >= sizeof(full))
		return 0;
	memcpy(full, sc->path, base);
	memcpy(full + base, rel, strlen(rel) + 1);
	pthread_mutex_lock(&sc->c->lock);
	e = find_locked(sc->c, full);
	want = !e || (!e->loading &&
		      (!e->val || now() - e->val_at >= sc->c->ttl_ms));
	pthread_mutex_unlock(&sc->c->lock);
	return want;
}

static int cache_read(struct kf_cache *c, struct kf_provider *p,
		      const char *path, const char *rel, int nearby,
		      struct kf_secret **out, struct kf_err *err)
{
	struct kf_secret *v = NULL;
	struct kf_centry *e;
	uint64_t t, gen;
	int rc = -1;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = get_locked(c, p, path, rel);
		if (!e) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		t = now();
		if (e->val && t - e->val_at < c->ttl_ms) {
			c->st.hits++;
			e->last_read = t;
			rc = copy_out(e->val, out, err);
			goto out;
		}
		if (e->val && is_down_locked(c, p, t) &&
		    t - e->val_at < c->ttl_ms + c->max_stale_ms) {
			c->st.stale++;
			e->last_read = t;
			if (!e->stale_logged)
				kf_log(KF_LOG_WARN, "%s: provider unavailable; "
				       "serving the value fetched %llu s ago",
				       path, (unsigned long long)((t - e->val_at) /
								  1000));
			e->stale_logged = 1;
			rc = copy_out(e->val, out, err);
			goto out;
		}
		if (!e->loading)
			break;
		if (wait_locked(c, e) < 0) {
			kf_fail(err, KF_E_TIMEOUT, "timed out waiting for a fetch");
			goto out;
		}
	}
	e->loading = 1;
	gen = e->gen;
	c->st.misses++;
	pthread_mutex_unlock(&c->lock);

	if (nearby && p->ops->read_nearby) {
		struct sibling_ctx sc = { c, p, path, rel };

		rc = p->ops->read_nearby(p, rel, 20, sibling_wanted,
					 sibling_value, &sc, &v, err);
	} else {
		rc = p->ops->read(p, rel, &v, err);
	}

	pthread_mutex_lock(&c->lock);
	e = find_locked(c, path);	/* still there: loading pins it */
	e->loading = 0;
	pthread_cond_broadcast(&c->cond);
	t = now();
	if (rc < 0 && outage(err->code))
		set_down_locked(c, p, t + DOWN_MS);
	else if (rc == 0)
		set_down_locked(c, p, 0);
	if (rc < 0) {
		c->st.errors++;
		if (outage(err->code) && e->val &&
		    t - e->val_at < c->ttl_ms + c->max_stale_ms) {
			c->st.stale++;
			e->last_read = t;
			e->stale_logged = 1;
			kf_log(KF_LOG_WARN, "%s: provider unavailable (%s); "
			       "serving the value fetched %llu s ago", path,
			       err->msg, (unsigned long long)((t - e->val_at) / 1000));
			rc = copy_out(e->val, out, err);
			goto out;
		}
		if (err->code == KF_E_NOTFOUND && e->gen == gen) {
			drop_value_locked(c, e);
			e->attr_state = 2;
			e->attr_at = t;
		}
		goto out;
	}
	rc = copy_out(v, out, err);
	if (rc == 0 && e->gen == gen) {
		if (!e->val || !kf_secret_equal(e->val, v))
			e->changed_at = time(NULL);
		drop_value_locked(c, e);
		e->val = v;
		v = NULL;
		e->val_at = t;
		e->last_read = t;
		e->stale_logged = 0;
		c->st.bytes += e->val->len;
		if (e->attr_state == 2)
			e->attr_state = 0;
	}
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

int kf_cache_getattr(struct kf_cache *c, struct kf_provider *p,
		     const char *path, const char *rel, int fetch_size,
		     struct kf_attr *a, struct kf_err *err)
{
	struct kf_centry *e;
	struct kf_secret *v = NULL;
	uint64_t t, gen;
	int rc;

	pthread_mutex_lock(&c->lock);
	e = get_locked(c, p, path, rel);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	t = now();
	if (e->attr_state == 2 && t - e->attr_at < c->neg_ttl_ms) {
		c->st.neg_hits++;
		pthread_mutex_unlock(&c->lock);
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	}
	if (e->attr_state == 1 && (t - e->attr_at < c->attr_ttl_ms ||
				   (is_down_locked(c, p, t) &&
				    t - e->attr_at < c->attr_ttl_ms +
							c->max_stale_ms))) {
		c->st.attr_hits++;
		*a = e->attr;
		rc = 0;
		goto size;
	}
	gen = e->gen;
	c->st.attr_misses++;
	pthread_mutex_unlock(&c->lock);

	rc = p->ops->getattr(p, rel, a, err);

	pthread_mutex_lock(&c->lock);
	e = get_locked(c, p, path, rel);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return rc < 0 ? -1 : 0;
	}
	t = now();
	if (rc < 0 && outage(err->code))
		set_down_locked(c, p, t + DOWN_MS);
	if (rc < 0) {
		if (err->code == KF_E_NOTFOUND && e->gen == gen) {
			e->attr_state = 2;
			e->attr_at = t;
		}
		/* Provider down: what was known stays usable as long as a
		 * value would (the names above a cached value must resolve). */
		if (outage(err->code) && e->attr_state == 1 &&
		    t - e->attr_at < c->attr_ttl_ms + c->max_stale_ms) {
			c->st.stale++;
			*a = e->attr;
			kf_err_clear(err);
			goto size;
		}
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	if (e->gen == gen) {
		e->attr = *a;
		e->attr_state = 1;
		e->attr_at = t;
	}
size:
	if (a->kind == KF_KIND_FILE) {
		if (e->val && t - e->val_at < c->ttl_ms) {
			a->size = e->val->len;
			a->size_known = 1;
			/* With kernel caching, a stat is how a reader shows
			 * itself: keep its value refreshed ahead. */
			if (fetch_size)
				e->last_read = t;
		}
		if (e->changed_at && !a->mtime)
			a->mtime = e->changed_at;
	}
	pthread_mutex_unlock(&c->lock);
	if (a->kind == KF_KIND_FILE && !a->size_known && fetch_size) {
		/* A stat wants the size: fetch this value, and its listed
		 * neighbours in the same call where the provider can, so
		 * `ls -l` costs one call per many files, not one each. */
		if (cache_read(c, p, path, rel, 1, &v, err) < 0)
			return -1;
		a->size = v->len;
		a->size_known = 1;
		kf_secret_free(v);
		pthread_mutex_lock(&c->lock);
		e = find_locked(c, path);
		if (e && e->changed_at && !a->mtime)
			a->mtime = e->changed_at;
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

void kf_cache_put(struct kf_cache *c, struct kf_provider *p, const char *path,
		  const char *rel, const unsigned char *v, size_t n)
{
	struct kf_centry *e;
	struct kf_secret *s = kf_secret_dup(v, n);

	pthread_mutex_lock(&c->lock);
	e = get_locked(c, p, path, rel);
	if (e) {
		e->gen++;
		drop_value_locked(c, e);
		e->attr_state = 0;
		if (s) {
			e->val = s;
			s = NULL;
			e->val_at = now();
			e->changed_at = time(NULL);
			c->st.bytes += n;
		}
	}
	pthread_mutex_unlock(&c->lock);
	kf_secret_free(s);
}

static void forget_one_locked(struct kf_cache *c, const char *path)
{
	struct kf_centry *e = find_locked(c, path);

	if (!e)
		return;
	e->gen++;
	e->attr_state = 0;
	drop_value_locked(c, e);
	if (!e->loading)
		unlink_locked(c, e);
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

struct todo {
	char *path;
	int refetch;		/* 1: refresh-ahead, 0: dropped */
	struct todo *next;
};

void kf_cache_refresh_once(struct kf_cache *c,
			   void (*changed)(void *ctx, const char *path),
			   void *ctx)
{
	struct todo *list = NULL, *t;
	uint64_t tn;

	pthread_mutex_lock(&c->lock);
	tn = now();
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct kf_centry *e = c->buckets[i], *next;

		for (; e; e = next) {
			uint64_t age = tn - e->val_at;
			int drop = 0, ahead = 0;

			next = e->next;
			if (e->loading)
				continue;
			if (e->val) {
				if (age >= c->ttl_ms + c->max_stale_ms)
					drop = 1;
				else if (age >= c->ttl_ms * 3 / 4 &&
					 tn - e->last_read < c->ttl_ms &&
					 e->last_read >= e->val_at)
					ahead = 1;
			} else if (tn - e->attr_at >= c->attr_ttl_ms +
							    c->max_stale_ms &&
				   tn - e->attr_at >= c->neg_ttl_ms) {
				/* Attributes are kept as long as a stale value
				 * would be: they are what leads to it. */
				unlink_locked(c, e);
				continue;
			}
			if (!drop && !ahead)
				continue;
			t = calloc(1, sizeof(*t));
			if (!t || !(t->path = strdup(e->path))) {
				free(t);
				continue;
			}
			t->refetch = ahead;
			t->next = list;
			list = t;
			if (drop) {
				c->st.evictions++;
				unlink_locked(c, e);
			} else {
				e->loading = 1;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);

	while (list) {
		t = list;
		list = t->next;
		if (t->refetch) {
			struct kf_err err = KF_ERR_INIT;
			struct kf_secret *v = NULL;
			struct kf_centry *e;
			uint64_t gen;
			int rc, diff = 0;

			pthread_mutex_lock(&c->lock);
			e = find_locked(c, t->path);
			gen = e->gen;
			c->st.refreshes++;
			pthread_mutex_unlock(&c->lock);
			rc = e->p->ops->read(e->p, e->rel, &v, &err);
			pthread_mutex_lock(&c->lock);
			e->loading = 0;
			pthread_cond_broadcast(&c->cond);
			if (rc < 0 && outage(err.code))
				set_down_locked(c, e->p, now() + DOWN_MS);
			if (rc < 0) {
				c->st.errors++;
				if (err.code == KF_E_NOTFOUND && e->gen == gen) {
					drop_value_locked(c, e);
					e->attr_state = 2;
					e->attr_at = now();
					diff = 1;
				}
				/* else: keep the value; stale rules apply */
			} else if (e->gen == gen) {
				diff = !e->val || !kf_secret_equal(e->val, v);
				if (diff) {
					c->st.changes++;
					e->changed_at = time(NULL);
				}
				drop_value_locked(c, e);
				e->val = v;
				v = NULL;
				e->val_at = now();
				c->st.bytes += e->val->len;
				if (diff)
					e->attr_state = 0;
			}
			pthread_mutex_unlock(&c->lock);
			kf_secret_free(v);
			if (diff && changed)
				changed(ctx, t->path);
		} else if (changed) {
			changed(ctx, t->path);
		}
		free(t->path);
		free(t);
	}
}

void kf_cache_stats(struct kf_cache *c, struct kf_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}
