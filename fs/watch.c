/*
 * The change watcher (see watch.h): a bounded set of watched paths (a
 * hash and a most-recently-read order) with a keyed fingerprint of the
 * value last seen and the provider's stamp of it, and a thread that
 * re-checks them every ttl.  Never holds or logs a value; provider calls
 * are made with no lock held.
 */
#include "watch.h"

#include "cache.h"
#include "core/log.h"
#include "onchange.h"
#include "ops.h"
#include "view.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct went {
	char *path;	/* FUSE path: the key */
	char *base;	/* provider-relative value its stamp is of */
	char *keypath;	/* FUSE path of its cache entry (no #FIELD) */
	char *basepath; /* FUSE path of base */
	struct kf_provider *p;
	char stamp[KF_SECRET_VERSION_MAX]; /* "" none yet */
	uint64_t fp;			   /* keyed fingerprint of the value */
	struct went *hnext, *older, *newer;
};

struct kf_watch {
	pthread_mutex_t lock;
	struct went **buckets; /* protected by lock */
	size_t nbuckets;
	struct went *oldest, *newest; /* protected by lock */
	size_t max;
	struct kf_watch_stats st; /* protected by lock */
	pthread_cond_t cond;	  /* stop */
	int stop;		  /* protected by lock */
	int started;		  /* main thread only */
	pthread_t thread;
};

/* Set on the watcher's own thread: its reads are not a user's. */
static __thread int in_round;

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static void went_free(struct went *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->base);
	free(e->keypath);
	free(e->basepath);
	free(e);
}

static struct went **find_locked(struct kf_watch *w, const char *path)
{
	struct went **pp = &w->buckets[hash(path) & (w->nbuckets - 1)];

	while (*pp && strcmp((*pp)->path, path))
		pp = &(*pp)->hnext;
	return pp;
}

static void unlist_locked(struct kf_watch *w, struct went *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		w->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		w->newest = e->older;
	e->older = e->newer = NULL;
}

static void list_newest_locked(struct kf_watch *w, struct went *e)
{
	e->older = w->newest;
	e->newer = NULL;
	if (w->newest)
		w->newest->newer = e;
	else
		w->oldest = e;
	w->newest = e;
}

/* Unwatch path (if watched). */
static void remove_locked(struct kf_watch *w, const char *path)
{
	struct went **pp = find_locked(w, path), *e = *pp;

	if (!e)
		return;
	*pp = e->hnext;
	unlist_locked(w, e);
	w->st.watched--;
	went_free(e);
}

/* "/PROVIDER/rel" into a new string. */
static char *fuse_path(const struct kf_provider *p, const char *rel)
{
	size_t n = strlen(p->name) + strlen(rel) + 3;
	char *s = malloc(n);

	if (s && (size_t)snprintf(s, n, "/%s/%s", p->name, rel) >= n) {
		free(s);
		s = NULL;
	}
	return s;
}

/* A new entry for path (not yet in the set); NULL when out of memory or
 * rel is not a well-formed path. */
static struct went *went_new(struct kf_fs *fs, struct kf_provider *p,
			     const char *path, const char *rel,
			     const struct kf_secret *v)
{
	struct kf_view *view = malloc(sizeof(*view));
	struct went *e = calloc(1, sizeof(*e));

	if (!view || !e || kf_view_parse(rel, view) < 0)
		goto fail;
	e->p = p;
	e->path = strdup(path);
	/* A plain name is its own base and cache key. */
	e->base = strdup(view->is_view ? view->base : rel);
	e->keypath = fuse_path(p, view->is_view ? view->key : rel);
	e->basepath = fuse_path(p, view->is_view ? view->base : rel);
	if (!e->path || !e->base || !e->keypath || !e->basepath)
		goto fail;
	e->fp = kf_kview_stamp(&fs->kview, v->data, v->len);
	/* The current value, whole or a field of it: its version is what
	 * the stamp of its base says now. */
	if (!view->is_view || !view->version)
		memcpy(e->stamp, v->version, sizeof(e->stamp));
	e->stamp[sizeof(e->stamp) - 1] = '\0';
	free(view);
	return e;
fail:
	free(view);
	went_free(e);
	return NULL;
}

void kf_watch_note(struct kf_fs *fs, struct kf_provider *p, const char *path,
		   const char *rel, const struct kf_secret *v)
{
	struct kf_watch *w = fs->watch;
	struct went **pp, *e;

	if (!w || in_round || !p || !v)
		return;
	pthread_mutex_lock(&w->lock);
	e = *find_locked(w, path);
	if (e) { /* read again: the most recent now */
		unlist_locked(w, e);
		list_newest_locked(w, e);
	}
	pthread_mutex_unlock(&w->lock);
	if (e)
		return;
	e = went_new(fs, p, path, rel, v);
	if (!e)
		return;
	pthread_mutex_lock(&w->lock);
	pp = find_locked(w, path);
	if (*pp) { /* another reader added it meanwhile */
		pthread_mutex_unlock(&w->lock);
		went_free(e);
		return;
	}
	*pp = e;
	list_newest_locked(w, e);
	w->st.watched++;
	while (w->st.watched > w->max)
		remove_locked(w, w->oldest->path);
	pthread_mutex_unlock(&w->lock);
}

int kf_watch_init(struct kf_fs *fs, unsigned max)
{
	struct kf_watch *w;

	fs->watch = NULL;
	if (max == 0)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->max = max;
	w->nbuckets = 64;
	while (w->nbuckets < max && w->nbuckets < 65536)
		w->nbuckets *= 2;
	w->buckets = calloc(w->nbuckets, sizeof(*w->buckets));
	if (!w->buckets) {
		free(w);
		return -1;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	fs->watch = w;
	return 0;
}

void kf_watch_free(struct kf_fs *fs)
{
	struct kf_watch *w = fs->watch;

	if (!w)
		return;
	kf_watch_stop(fs);
	while (w->oldest)
		remove_locked(w, w->oldest->path);
	free(w->buckets);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	fs->watch = NULL;
}

int kf_watch_has(struct kf_fs *fs, const char *path)
{
	int has;

	if (!fs->watch)
		return 0;
	pthread_mutex_lock(&fs->watch->lock);
	has = *find_locked(fs->watch, path) != NULL;
	pthread_mutex_unlock(&fs->watch->lock);
	return has;
}

void kf_watch_stats(struct kf_fs *fs, struct kf_watch_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!fs->watch)
		return;
	pthread_mutex_lock(&fs->watch->lock);
	*st = fs->watch->st;
	pthread_mutex_unlock(&fs->watch->lock);
}

/* A watched path as a round sees it (copied: the set may change). */
struct item {
	char *path, *base, *keypath, *basepath;
	struct kf_provider *p;
	char stamp[KF_SECRET_VERSION_MAX];
	int refetched; /* its cache entry was refetched this round */
};

static void items_free(struct item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(it[i].path);
		free(it[i].base);
		free(it[i].keypath);
		free(it[i].basepath);
	}
	free(it);
}

/* Copy the set; 0, or -1 when out of memory. */
static int snapshot(struct kf_watch *w, struct item **out, size_t *nout)
{
	struct item *it;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	it = calloc(w->st.watched ? w->st.watched : 1, sizeof(*it));
	for (struct went *e = w->newest; it && e; e = e->older, n++) {
		it[n].path = strdup(e->path);
		it[n].base = strdup(e->base);
		it[n].keypath = strdup(e->keypath);
		it[n].basepath = strdup(e->basepath);
		it[n].p = e->p;
		memcpy(it[n].stamp, e->stamp, sizeof(it[n].stamp));
		if (!it[n].path || !it[n].base || !it[n].keypath ||
		    !it[n].basepath)
			rc = -1;
	}
	pthread_mutex_unlock(&w->lock);
	if (!it || rc < 0) {
		items_free(it, it ? n : 0);
		return -1;
	}
	*out = it;
	*nout = n;
	return 0;
}

/* Order by provider, then value: one stamp per group. */
static int by_value(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	int c = strcmp(x->p->name, y->p->name);

	return c ? c : strcmp(x->base, y->base);
}

/* Tell everyone that path changed (or is gone). */
static void report(struct kf_fs *fs, const struct item *it)
{
	time_t t = time(NULL);
	char abs[2 * 4096 + 8];

	kf_fs_invalidate(fs, it->path);
	if (strcmp(it->keypath, it->path))
		kf_fs_invalidate(fs, it->keypath);
	if (strcmp(it->basepath, it->path) && strcmp(it->basepath, it->keypath))
		kf_fs_invalidate(fs, it->basepath);
	if ((size_t)snprintf(abs, sizeof(abs), "%s%s", fs->mnt, it->path) >=
	    sizeof(abs))
		return;
	kf_log(KF_LOG_INFO, "%s: the value changed", it->path);
	if (kf_events_append(&fs->events, t, abs) < 0)
		kf_log(KF_LOG_WARN, "%s: change not logged: out of memory",
		       it->path);
	if (fs->onchange)
		(void)kf_onchange_run(fs->onchange, abs, t);
}

/* path's value is gone: one report, then it is no longer watched. */
static void gone(struct kf_fs *fs, const struct item *it)
{
	struct kf_watch *w = fs->watch;

	pthread_mutex_lock(&w->lock);
	remove_locked(w, it->path);
	w->st.gone++;
	pthread_mutex_unlock(&w->lock);
	report(fs, it);
}

/*
 * The value a read of it serves now, refetched from the provider (once
 * per cache entry per round).  0; 1 when it is gone; -1 on any other
 * failure (unreachable: try next round).
 */
static int refetch(struct kf_fs *fs, struct item *it, int done,
		   struct kf_secret **v)
{
	const char *keyrel = it->keypath + strlen(it->p->name) + 2;
	struct kf_err err = KF_ERR_INIT;
	int rc;

	*v = NULL;
	if (!done) {
		pthread_mutex_lock(&fs->watch->lock);
		fs->watch->st.refetches++;
		pthread_mutex_unlock(&fs->watch->lock);
		rc = kf_cache_refetch(&fs->cache, it->p, it->keypath, keyrel, v,
				      &err);
		if (rc < 0)
			return err.code == KF_E_NOTFOUND ? 1 : -1;
		it->refetched = 1;
		if (!strcmp(it->keypath, it->path))
			return 0;
		kf_secret_free(*v);
		*v = NULL;
	}
	/* A field: what a read of it serves, from the fresh entry (rel
	 * must point into path, as the kernel's requests have it). */
	rc = kf_fs_value(fs, it->p, it->path,
			 it->path + strlen(it->p->name) + 2, "watch", v);
	if (rc == -ENOENT)
		return 1;
	return rc < 0 ? -1 : 0;
}

/* Check one path whose stamp moved (now: the new stamp, or NULL). */
static void check_one(struct kf_fs *fs, struct item *g, size_t k,
		      const char *now)
{
	struct kf_watch *w = fs->watch;
	struct kf_secret *v = NULL;
	struct went *e;
	int done = 0, rc, changed = 0;
	uint64_t fp;

	for (size_t i = 0; i < k; i++)
		if (g[i].refetched && !strcmp(g[i].keypath, g[k].keypath))
			done = 1;
	rc = refetch(fs, &g[k], done, &v);
	if (rc > 0)
		gone(fs, &g[k]);
	if (rc != 0)
		return;
	fp = kf_kview_stamp(&fs->kview, v->data, v->len);
	kf_secret_free(v);
	pthread_mutex_lock(&w->lock);
	e = *find_locked(w, g[k].path);
	if (e) {
		changed = e->fp != fp;
		e->fp = fp;
		if (now)
			(void)snprintf(e->stamp, sizeof(e->stamp), "%s", now);
		w->st.changes += (uint64_t)changed;
	}
	pthread_mutex_unlock(&w->lock);
	if (changed)
		report(fs, &g[k]);
}

/* The paths of one value (same provider and base): one stamp for all. */
static void check_group(struct kf_fs *fs, struct item *g, size_t n)
{
	struct kf_provider *p = g[0].p;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf stamp;
	const char *now = NULL;

	kf_buf_init(&stamp, KF_SECRET_VERSION_MAX - 1);
	if (p->ops->stamp) {
		pthread_mutex_lock(&fs->watch->lock);
		fs->watch->st.stamps++;
		pthread_mutex_unlock(&fs->watch->lock);
		if (p->ops->stamp(p, g[0].base, &stamp, &err) < 0) {
			for (size_t k = 0; err.code == KF_E_NOTFOUND && k < n;
			     k++)
				gone(fs, &g[k]);
			if (err.code != KF_E_NOTFOUND)
				kf_log(KF_LOG_DEBUG,
				       "/%s/%s: change check failed: %s",
				       p->name, g[0].base, err.msg);
			goto out;
		}
		now = kf_buf_str(&stamp);
	}
	for (size_t k = 0; k < n; k++)
		if (!now || strcmp(g[k].stamp, now))
			check_one(fs, g, k, now);
out:
	kf_buf_release(&stamp);
}

void kf_watch_round(struct kf_fs *fs)
{
	struct item *it = NULL;
	size_t n = 0;

	if (!fs->watch || snapshot(fs->watch, &it, &n) < 0)
		return;
	qsort(it, n, sizeof(*it), by_value);
	in_round = 1;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && !by_value(&it[i], &it[j]); j++)
			;
		check_group(fs, it + i, j - i);
	}
	in_round = 0;
	items_free(it, n);
	pthread_mutex_lock(&fs->watch->lock);
	fs->watch->st.rounds++;
	pthread_mutex_unlock(&fs->watch->lock);
}

static void *watch_main(void *arg)
{
	struct kf_fs *fs = arg;
	struct kf_watch *w = fs->watch;
	/* ttl=0 caches nothing, and every read asks the provider; the
	 * watcher's round then comes every KF_WATCH_TTL0_S, not in a
	 * loop of questions. */
	unsigned period = (fs->ttl ? fs->ttl : KF_WATCH_TTL0_S) * 1000;
	struct timespec ts;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		kf_cache_abstime(period, &ts);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock,
							  &ts) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		kf_watch_round(fs);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int kf_watch_start(struct kf_fs *fs)
{
	struct kf_watch *w = fs->watch;

	if (!w || w->started)
		return 0;
	if (pthread_create(&w->thread, NULL, watch_main, fs) != 0)
		return -1;
	w->started = 1;
	return 0;
}

void kf_watch_stop(struct kf_fs *fs)
{
	struct kf_watch *w = fs->watch;

	if (!w || !w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->started = 0;
}
