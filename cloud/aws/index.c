/*
 * The aws provider's memory of names: a sorted array of names per region
 * (binary search for names and prefixes), a short list of this process's
 * own creates and deletes, and field names and sizes of field secrets.
 * A cache of hints only: losing an entry to out-of-memory costs an API
 * call, never correctness.  Holds no value; does no I/O.
 */
#include "aws/index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http.h"
#include "core/clock.h"

struct idx_field {
	char *name;
	uint64_t size;
};

struct idx_name {
	char *name;
	int fields;
	int64_t mtime;
	uint64_t seen_ms;
	struct idx_field *fv; /* field secrets: as of fv_ms */
	size_t nf;
	uint64_t fv_ms; /* 0 = not known */
};

struct idx_region {
	struct idx_name *v; /* sorted by name */
	size_t n, cap;
};

struct idx_change {
	struct idx_change *next;
	size_t region;
	char *name;
	int deleted;
	int fields;
	uint64_t at_ms;
};

struct idx_held {
	struct idx_held *next;
	size_t region;
	char *name;
	enum kf_aws_held how;
};

struct kf_aws_index {
	pthread_mutex_t lock;
	uint64_t ttl_ms;
	uint64_t overlay_ms; /* ttl, at most KF_AWS_OVERLAY_MS, at least 1 s */
	size_t nregions;
	struct idx_region *regions; /* protected by lock */
	struct idx_change *changes; /* protected by lock */
	struct idx_held *held;	    /* protected by lock */
};

struct kf_aws_index *kf_aws_index_new(size_t nregions, uint64_t ttl_ms)
{
	struct kf_aws_index *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->regions = calloc(nregions ? nregions : 1, sizeof(*x->regions));
	if (!x->regions) {
		free(x);
		return NULL;
	}
	x->nregions = nregions;
	x->ttl_ms = ttl_ms;
	x->overlay_ms = ttl_ms < KF_AWS_OVERLAY_MS ? ttl_ms : KF_AWS_OVERLAY_MS;
	if (x->overlay_ms < 1000)
		x->overlay_ms = 1000;
	pthread_mutex_init(&x->lock, NULL);
	return x;
}

static void fields_clear(struct idx_name *k)
{
	for (size_t i = 0; i < k->nf; i++)
		free(k->fv[i].name);
	free(k->fv);
	k->fv = NULL;
	k->nf = 0;
	k->fv_ms = 0;
}

void kf_aws_index_free(struct kf_aws_index *x)
{
	if (!x)
		return;
	for (size_t r = 0; r < x->nregions; r++) {
		for (size_t i = 0; i < x->regions[r].n; i++) {
			fields_clear(&x->regions[r].v[i]);
			free(x->regions[r].v[i].name);
		}
		free(x->regions[r].v);
	}
	while (x->changes) {
		struct idx_change *c = x->changes;

		x->changes = c->next;
		free(c->name);
		free(c);
	}
	while (x->held) {
		struct idx_held *h = x->held;

		x->held = h->next;
		free(h->name);
		free(h);
	}
	free(x->regions);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static size_t lower_locked(const struct idx_region *r, const char *name)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct idx_name *find_locked(struct idx_region *r, const char *name)
{
	size_t i = lower_locked(r, name);

	if (i < r->n && strcmp(r->v[i].name, name) == 0)
		return &r->v[i];
	return NULL;
}

static int fresh(const struct kf_aws_index *x, uint64_t seen, uint64_t now)
{
	return now - seen < x->ttl_ms;
}

static struct idx_name *put_locked(struct kf_aws_index *x, size_t ri,
				   const char *name, int fields, int64_t mtime,
				   uint64_t now)
{
	struct idx_region *r = &x->regions[ri];
	size_t i = lower_locked(r, name);
	char *copy;

	if (i < r->n && strcmp(r->v[i].name, name) == 0) {
		if (r->v[i].fields != fields)
			fields_clear(&r->v[i]);
		r->v[i].fields = fields;
		if (mtime)
			r->v[i].mtime = mtime;
		r->v[i].seen_ms = now;
		return &r->v[i];
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct idx_name *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return NULL;
	memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(*r->v));
	memset(&r->v[i], 0, sizeof(r->v[i]));
	r->v[i].name = copy;
	r->v[i].fields = fields;
	r->v[i].mtime = mtime;
	r->v[i].seen_ms = now;
	r->n++;
	return &r->v[i];
}

static void del_locked(struct kf_aws_index *x, size_t ri, const char *name)
{
	struct idx_region *r = &x->regions[ri];
	size_t i = lower_locked(r, name);

	if (i < r->n && strcmp(r->v[i].name, name) == 0) {
		fields_clear(&r->v[i]);
		free(r->v[i].name);
		memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(*r->v));
		r->n--;
	}
}

static void prune_locked(struct kf_aws_index *x, uint64_t now)
{
	struct idx_change **pp = &x->changes;

	while (*pp) {
		struct idx_change *c = *pp;

		if (now - c->at_ms >= x->overlay_ms) {
			*pp = c->next;
			free(c->name);
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

static struct idx_change *change_locked(struct kf_aws_index *x, size_t ri,
					const char *name)
{
	for (struct idx_change *c = x->changes; c; c = c->next)
		if (c->region == ri && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int kf_aws_index_get(struct kf_aws_index *x, size_t ri, const char *name,
		     int *fields, int64_t *mtime)
{
	uint64_t now = kf_clock_now_ms();
	struct idx_name *k;
	int rc = 0;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], name);
	if (k && fresh(x, k->seen_ms, now)) {
		if (fields)
			*fields = k->fields;
		if (mtime)
			*mtime = k->mtime;
		rc = 1;
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

void kf_aws_index_put(struct kf_aws_index *x, size_t ri, const char *name,
		      int fields, int64_t mtime)
{
	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	put_locked(x, ri, name, fields, mtime, kf_clock_now_ms());
	pthread_mutex_unlock(&x->lock);
}

void kf_aws_index_del(struct kf_aws_index *x, size_t ri, const char *name)
{
	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	del_locked(x, ri, name);
	pthread_mutex_unlock(&x->lock);
}

int kf_aws_index_has_prefix(struct kf_aws_index *x, size_t ri,
			    const char *prefix)
{
	uint64_t now = kf_clock_now_ms();
	size_t plen = strlen(prefix);
	struct idx_region *r;
	int found = 0;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	for (size_t i = lower_locked(r, prefix); i < r->n && !found; i++) {
		if (strncmp(r->v[i].name, prefix, plen) != 0)
			break;
		found = fresh(x, r->v[i].seen_ms, now);
	}
	prune_locked(x, now);
	for (struct idx_change *c = x->changes; c && !found; c = c->next)
		found = c->region == ri && !c->deleted &&
			strncmp(c->name, prefix, plen) == 0;
	pthread_mutex_unlock(&x->lock);
	return found;
}

void kf_aws_index_note(struct kf_aws_index *x, size_t ri, const char *name,
		       int deleted, int fields)
{
	uint64_t now = kf_clock_now_ms();
	struct idx_change *c;

	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	prune_locked(x, now);
	c = change_locked(x, ri, name);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->name = strdup(name);
			if (!c->name) {
				free(c);
				c = NULL;
			}
		}
		if (c) {
			c->region = ri;
			c->next = x->changes;
			x->changes = c;
		}
	}
	if (c) {
		c->deleted = deleted;
		c->fields = fields;
		c->at_ms = now;
	}
	if (deleted)
		del_locked(x, ri, name);
	else
		put_locked(x, ri, name, fields, (int64_t)time(NULL), now);
	pthread_mutex_unlock(&x->lock);
}

int kf_aws_index_deleted(struct kf_aws_index *x, size_t ri, const char *name)
{
	struct idx_change *c;
	int rc;

	pthread_mutex_lock(&x->lock);
	prune_locked(x, kf_clock_now_ms());
	c = change_locked(x, ri, name);
	rc = c && c->deleted;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

void kf_aws_index_created(struct kf_aws_index *x, size_t ri, const char *prefix,
			  void (*fn)(void *ctx, const char *name, int fields),
			  void *ctx)
{
	size_t plen = strlen(prefix);

	pthread_mutex_lock(&x->lock);
	prune_locked(x, kf_clock_now_ms());
	for (struct idx_change *c = x->changes; c; c = c->next)
		if (c->region == ri && !c->deleted &&
		    strncmp(c->name, prefix, plen) == 0)
			fn(ctx, c->name, c->fields);
	pthread_mutex_unlock(&x->lock);
}

void kf_aws_index_fields_set(struct kf_aws_index *x, size_t ri,
			     const char *name, const char *const *names,
			     const uint64_t *sizes, size_t n)
{
	struct idx_field *fv = NULL;
	struct idx_name *k;
	uint64_t now = kf_clock_now_ms();
	size_t i;

	if (ri >= x->nregions)
		return;
	if (n) {
		fv = calloc(n, sizeof(*fv));
		if (!fv)
			return;
	}
	for (i = 0; i < n; i++) {
		fv[i].name = strdup(names[i]);
		fv[i].size = sizes[i];
		if (!fv[i].name)
			goto drop;
	}
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], name);
	if (!k)
		k = put_locked(x, ri, name, 1, (int64_t)time(NULL), now);
	if (k) {
		fields_clear(k);
		k->fields = 1;
		k->seen_ms = now;
		k->fv = fv;
		k->nf = n;
		k->fv_ms = now;
		fv = NULL;
	}
	pthread_mutex_unlock(&x->lock);
drop:
	for (i = 0; fv && i < n; i++)
		free(fv[i].name);
	free(fv);
}

int kf_aws_index_field(struct kf_aws_index *x, size_t ri, const char *name,
		       const char *field, uint64_t *size)
{
	uint64_t now = kf_clock_now_ms();
	struct idx_name *k;
	int rc = -1;

	if (ri >= x->nregions)
		return -1;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], name);
	if (k && k->fields && k->fv_ms && fresh(x, k->fv_ms, now) &&
	    fresh(x, k->seen_ms, now)) {
		rc = 0;
		for (size_t i = 0; i < k->nf && rc == 0; i++) {
			if (strcmp(k->fv[i].name, field) == 0) {
				*size = k->fv[i].size;
				rc = 1;
			}
		}
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

void kf_aws_index_siblings(struct kf_aws_index *x, size_t ri, const char *name,
			   size_t max, char **out, size_t *n)
{
	const char *slash = strrchr(name, '/');
	size_t dlen = slash ? (size_t)(slash - name) + 1 : 0;
	uint64_t now = kf_clock_now_ms();
	struct idx_region *r;

	*n = 0;
	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	for (size_t i = lower_locked(r, name); i < r->n && *n < max; i++) {
		const char *o = r->v[i].name;

		if (strncmp(o, name, dlen) != 0)
			break; /* left the directory */
		if (!strcmp(o, name) || strchr(o + dlen, '/') ||
		    r->v[i].fields || !fresh(x, r->v[i].seen_ms, now))
			continue;
		out[*n] = strdup(o);
		if (out[*n])
			(*n)++;
	}
	pthread_mutex_unlock(&x->lock);
}

static struct idx_held *held_locked(struct kf_aws_index *x, size_t ri,
				    const char *name)
{
	for (struct idx_held *h = x->held; h; h = h->next)
		if (h->region == ri && strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

int kf_aws_index_hold(struct kf_aws_index *x, size_t ri, const char *name,
		      enum kf_aws_held how)
{
	struct idx_held *h;
	int rc = 0;

	if (ri >= x->nregions)
		return -1;
	pthread_mutex_lock(&x->lock);
	h = held_locked(x, ri, name);
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (h)
			h->name = strdup(name);
		if (h && h->name) {
			h->region = ri;
			h->next = x->held;
			x->held = h;
		} else {
			free(h);
			h = NULL;
			rc = -1;
		}
	}
	if (h && how > h->how)
		h->how = how;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

enum kf_aws_held kf_aws_index_held(struct kf_aws_index *x, size_t ri,
				   const char *name)
{
	size_t n = strlen(name);
	enum kf_aws_held how = KF_AWS_HELD_NO;
	struct idx_held *h;

	if (ri >= x->nregions)
		return KF_AWS_HELD_NO;
	pthread_mutex_lock(&x->lock);
	h = held_locked(x, ri, name);
	if (h)
		how = h->how;
	for (h = x->held; h && how == KF_AWS_HELD_OPEN; h = h->next)
		if (h->region == ri && strncmp(h->name, name, n) == 0 &&
		    h->name[n] == '/')
			how = KF_AWS_HELD_PREFIX;
	pthread_mutex_unlock(&x->lock);
	return how;
}

void kf_aws_index_unhold(struct kf_aws_index *x, size_t ri, const char *name)
{
	pthread_mutex_lock(&x->lock);
	for (struct idx_held **pp = &x->held; *pp; pp = &(*pp)->next) {
		struct idx_held *h = *pp;

		if (h->region == ri && strcmp(h->name, name) == 0) {
			*pp = h->next;
			free(h->name);
			free(h);
			break;
		}
	}
	pthread_mutex_unlock(&x->lock);
}

void kf_aws_index_held_each(struct kf_aws_index *x, size_t ri,
			    const char *prefix,
			    void (*fn)(void *ctx, const char *name, int fields),
			    void *ctx)
{
	size_t plen = strlen(prefix);

	pthread_mutex_lock(&x->lock);
	for (struct idx_held *h = x->held; h; h = h->next)
		if (h->region == ri && strncmp(h->name, prefix, plen) == 0)
			fn(ctx, h->name, 1);
	pthread_mutex_unlock(&x->lock);
}
