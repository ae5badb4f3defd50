/*
 * The ssm/ provider's memory of names: per region, one array of nodes
 * sorted by path form (binary search for a path, and for everything below
 * one, which is a contiguous run).  A node is a parameter, a held
 * directory, or only a record of what a listing or lookup established
 * about its path.  A cache of hints: an entry lost to out-of-memory costs
 * an API call, never a wrong answer.  Holds no value; does no I/O.
 */
#include "aws/ssm_index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/tree_priv.h"
#include "core/clock.h"

#define NEVER UINT64_MAX
/* Nodes looked at for one batch of siblings. */
#define SIBLINGS_SCAN 1000

struct ssm_node {
	char *path;
	struct kf_aws_ssm_meta m; /* when param */
	int param;     /* a parameter, seen (or written) at seen_ms */
	int confirmed; /* m.name was shown by the service */
	int told;      /* its hidden twin was logged */
	int held;      /* a directory made by mkdir */
	uint64_t seen_ms;
	uint64_t own_ms;   /* written here then */
	uint64_t gone_ms;  /* deleted here then */
	uint64_t below_ms; /* every parameter below it known as of then */
	uint64_t self_ms;  /* whether it is a parameter known as of then */
};

struct ssm_rgn {
	struct ssm_node *v; /* sorted by path */
	size_t n, cap;
};

struct kf_ssm_index {
	pthread_mutex_t lock;
	uint64_t ttl_ms;
	uint64_t overlay_ms; /* ttl, at most KF_SSM_OVERLAY_MS, at least 1 s */
	size_t nregions;
	struct ssm_rgn *regions; /* protected by lock */
};

/* ---- names and paths ---------------------------------------------------- */

void kf_ssm_name_path(const char *name, char *out)
{
	if (name[0] == '/' && name[1])
		name++;
	kf_aws_tree_name_path_n(name, KF_SSM_NAME_MAX, out);
}

int kf_ssm_path_name(const char *path, char *out)
{
	out[0] = '/';
	out[1] = '\0';
	if (!path[0])
		return -1;
	return kf_aws_tree_path_name_n(path, KF_SSM_NAME_MAX - 1, out + 1);
}

size_t kf_ssm_depth(const char *s)
{
	size_t n = 0;

	while (*s) {
		size_t len = strcspn(s, "/");

		n += len > 0;
		s += len;
		if (*s)
			s++;
	}
	return n;
}

/* ---- nodes --------------------------------------------------------------- */

struct kf_ssm_index *kf_ssm_index_new(size_t nregions, uint64_t ttl_ms)
{
	struct kf_ssm_index *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->regions = calloc(nregions ? nregions : 1, sizeof(*x->regions));
	if (!x->regions) {
		free(x);
		return NULL;
	}
	x->nregions = nregions;
	x->ttl_ms = ttl_ms;
	x->overlay_ms = ttl_ms < KF_SSM_OVERLAY_MS ? ttl_ms : KF_SSM_OVERLAY_MS;
	if (x->overlay_ms < 1000)
		x->overlay_ms = 1000;
	pthread_mutex_init(&x->lock, NULL);
	return x;
}

static void node_release(struct ssm_node *k)
{
	kf_aws_ssm_meta_release(&k->m);
	free(k->path);
}

void kf_ssm_index_free(struct kf_ssm_index *x)
{
	if (!x)
		return;
	for (size_t r = 0; r < x->nregions; r++) {
		for (size_t i = 0; i < x->regions[r].n; i++)
			node_release(&x->regions[r].v[i]);
		free(x->regions[r].v);
	}
	free(x->regions);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static int fresh(const struct kf_ssm_index *x, uint64_t t, uint64_t now)
{
	return t != NEVER && (now < t || now - t < x->ttl_ms);
}

static int recent(const struct kf_ssm_index *x, uint64_t t, uint64_t now)
{
	return t != NEVER && (now < t || now - t < x->overlay_ms);
}

/* A parameter the index may answer for now. */
static int param_fresh(const struct kf_ssm_index *x, const struct ssm_node *k,
		       uint64_t now)
{
	return k->param &&
	       (fresh(x, k->seen_ms, now) || recent(x, k->own_ms, now));
}

/* An empty node: nothing recorded in it is of use any more. */
static int node_idle(const struct kf_ssm_index *x, const struct ssm_node *k,
		     uint64_t now)
{
	return !k->param && !k->held && !fresh(x, k->below_ms, now) &&
	       !fresh(x, k->self_ms, now) && !recent(x, k->gone_ms, now);
}

static size_t lower_locked(const struct ssm_rgn *r, const char *path)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->v[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ssm_node *find_locked(struct ssm_rgn *r, const char *path)
{
	size_t i = lower_locked(r, path);

	return i < r->n && strcmp(r->v[i].path, path) == 0 ? &r->v[i] : NULL;
}

/* The node of path, made when absent; NULL when out of memory. */
static struct ssm_node *node_locked(struct ssm_rgn *r, const char *path)
{
	size_t i = lower_locked(r, path);
	struct ssm_node *k;

	if (i < r->n && strcmp(r->v[i].path, path) == 0)
		return &r->v[i];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct ssm_node *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(*r->v));
	k = &r->v[i];
	memset(k, 0, sizeof(*k));
	k->path = strdup(path);
	if (!k->path) {
		memmove(&r->v[i], &r->v[i + 1], (r->n - i) * sizeof(*r->v));
		return NULL;
	}
	k->seen_ms = k->own_ms = k->gone_ms = NEVER;
	k->below_ms = k->self_ms = NEVER;
	r->n++;
	return k;
}

/*
 * The run of nodes strictly below path ("": every node but the root's):
 * [*lo, *hi).  prefix is scratch of KF_SSM_PATH_MAX + 2 bytes.
 */
static void range_locked(const struct ssm_rgn *r, const char *path,
			 char *prefix, size_t *lo, size_t *hi)
{
	size_t plen = strnlen(path, KF_SSM_PATH_MAX);

	if (plen == 0) {
		*lo = r->n && r->v[0].path[0] == '\0';
		*hi = r->n;
		return;
	}
	memcpy(prefix, path, plen);
	prefix[plen++] = '/';
	prefix[plen] = '\0';
	*lo = lower_locked(r, prefix);
	for (*hi = *lo; *hi < r->n; (*hi)++)
		if (strncmp(r->v[*hi].path, prefix, plen) != 0)
			break;
}

static void meta_copy(struct kf_aws_ssm_meta *d,
		      const struct kf_aws_ssm_meta *s)
{
	memset(d, 0, sizeof(*d));
	d->name = s->name ? strdup(s->name) : NULL;
	d->arn = s->arn ? strdup(s->arn) : NULL;
	d->type = s->type ? strdup(s->type) : NULL;
	d->key_id = s->key_id ? strdup(s->key_id) : NULL;
	d->description = s->description ? strdup(s->description) : NULL;
	d->tier = s->tier ? strdup(s->tier) : NULL;
	d->version = s->version;
	d->changed = s->changed;
}

/* k's parameter becomes m (copied), keeping an ARN m does not give. */
static void meta_set(struct ssm_node *k, const struct kf_aws_ssm_meta *m)
{
	char *arn = NULL;

	if (!m->arn && k->m.arn && k->m.name && m->name &&
	    strcmp(k->m.name, m->name) == 0) {
		arn = k->m.arn;
		k->m.arn = NULL;
	}
	kf_aws_ssm_meta_release(&k->m);
	meta_copy(&k->m, m);
	if (arn && !k->m.arn)
		k->m.arn = arn;
	else
		free(arn);
	k->param = 1;
}

static void param_drop(struct ssm_node *k)
{
	kf_aws_ssm_meta_release(&k->m);
	memset(&k->m, 0, sizeof(k->m));
	k->param = 0;
	k->confirmed = 0;
	k->told = 0;
	k->seen_ms = k->own_ms = NEVER;
}

/* Whether a strict ancestor of path had its subtree listed in full. */
static int ancestor_listed_locked(const struct kf_ssm_index *x,
				  struct ssm_rgn *r, const char *path,
				  uint64_t now)
{
	char buf[KF_SSM_PATH_MAX + 1];
	size_t n = strnlen(path, KF_SSM_PATH_MAX);
	struct ssm_node *k;

	memcpy(buf, path, n);
	buf[n] = '\0';
	while (n > 0) {
		while (n > 0 && buf[n - 1] != '/')
			n--;
		buf[n ? n - 1 : 0] = '\0';
		k = find_locked(r, buf);
		if (k && fresh(x, k->below_ms, now))
			return 1;
		if (n)
			n--;
	}
	return 0;
}

/* ---- questions ---------------------------------------------------------- */

enum kf_ssm_known kf_ssm_index_lookup(struct kf_ssm_index *x, size_t ri,
				      const char *path,
				      struct kf_aws_ssm_meta *meta)
{
	char prefix[KF_SSM_PATH_MAX + 2];
	uint64_t now = kf_clock_now_ms();
	enum kf_ssm_known rc = KF_SSM_UNKNOWN;
	struct ssm_node *k;
	struct ssm_rgn *r;
	size_t lo, hi;
	int dir = 0, held = 0, up, children, self;

	if (meta)
		memset(meta, 0, sizeof(*meta));
	if (ri >= x->nregions)
		return KF_SSM_UNKNOWN;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	range_locked(r, path, prefix, &lo, &hi);
	for (size_t i = lo; i < hi && !dir; i++) {
		dir = param_fresh(x, &r->v[i], now);
		held |= r->v[i].held;
	}
	k = find_locked(r, path);
	held |= k && k->held;
	up = ancestor_listed_locked(x, r, path, now);
	children = up || (k && fresh(x, k->below_ms, now));
	self = up || (k && fresh(x, k->self_ms, now));
	if (dir)
		rc = KF_SSM_DIR;
	else if (held)
		rc = KF_SSM_HELD;
	else if (!children)
		rc = KF_SSM_UNKNOWN;
	else if (k && param_fresh(x, k, now))
		rc = KF_SSM_FILE;
	else
		rc = self ? KF_SSM_NONE : KF_SSM_NOT_DIR;
	if (rc == KF_SSM_FILE && meta)
		meta_copy(meta, &k->m);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

int kf_ssm_index_meta(struct kf_ssm_index *x, size_t ri, const char *path,
		      struct kf_aws_ssm_meta *meta)
{
	struct ssm_node *k;
	int rc = 0;

	memset(meta, 0, sizeof(*meta));
	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], path);
	if (k && k->param) {
		meta_copy(meta, &k->m);
		rc = 1;
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

int kf_ssm_index_below_known(struct kf_ssm_index *x, size_t ri,
			     const char *path)
{
	uint64_t now = kf_clock_now_ms();
	struct ssm_node *k;
	int rc;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], path);
	rc = (k && fresh(x, k->below_ms, now)) ||
	     ancestor_listed_locked(x, &x->regions[ri], path, now);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

int kf_ssm_index_held_below(struct kf_ssm_index *x, size_t ri, const char *path)
{
	char prefix[KF_SSM_PATH_MAX + 2];
	struct ssm_rgn *r;
	size_t lo, hi;
	int held = 0;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	range_locked(r, path, prefix, &lo, &hi);
	for (size_t i = lo; i < hi && !held; i++)
		held = r->v[i].held;
	pthread_mutex_unlock(&x->lock);
	return held;
}

/* ---- what was seen or done ---------------------------------------------- */

/* Which of two names of one path stays; *rc what to tell. */
static int twin_keeps_old(struct ssm_node *k, const char *name, int *rc)
{
	int old_slash = k->m.name[0] == '/', new_slash = name[0] == '/';

	if (!k->confirmed || old_slash == new_slash)
		return 0; /* only written here, or a rename: the new one */
	*rc = k->told ? KF_SSM_PUT_HIDDEN_AGAIN : KF_SSM_PUT_HIDDEN;
	k->told = 1;
	return old_slash;
}

int kf_ssm_index_put(struct kf_ssm_index *x, size_t ri,
		     const struct kf_aws_ssm_meta *m)
{
	char path[KF_SSM_PATH_MAX + 1];
	uint64_t now = kf_clock_now_ms();
	struct ssm_node *k;
	int rc = KF_SSM_PUT_OK;

	if (ri >= x->nregions || !m->name || !m->name[0])
		return rc;
	kf_ssm_name_path(m->name, path);
	pthread_mutex_lock(&x->lock);
	k = node_locked(&x->regions[ri], path);
	if (k && recent(x, k->gone_ms, now)) {
		rc = KF_SSM_PUT_GONE;
	} else if (k) {
		if (k->param && k->m.name && strcmp(k->m.name, m->name) != 0 &&
		    twin_keeps_old(k, m->name, &rc)) {
			k->seen_ms = now;
		} else {
			meta_set(k, m);
			k->confirmed = 1;
			k->seen_ms = now;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

void kf_ssm_index_put_arn(struct kf_ssm_index *x, size_t ri, const char *path,
			  const char *arn)
{
	struct ssm_node *k;
	char *copy;

	if (ri >= x->nregions || !arn)
		return;
	copy = strdup(arn);
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], path);
	if (k && k->param && copy) {
		free(k->m.arn);
		k->m.arn = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&x->lock);
	free(copy);
}

void kf_ssm_index_del(struct kf_ssm_index *x, size_t ri, const char *path)
{
	struct ssm_node *k;

	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], path);
	if (k)
		param_drop(k);
	pthread_mutex_unlock(&x->lock);
}

/* Held directories at and above path are real now. */
static void unhold_up_locked(struct ssm_rgn *r, const char *path)
{
	char buf[KF_SSM_PATH_MAX + 1];
	size_t n = strnlen(path, KF_SSM_PATH_MAX);
	struct ssm_node *k;

	memcpy(buf, path, n);
	buf[n] = '\0';
	while (n > 0) {
		k = find_locked(r, buf);
		if (k)
			k->held = 0;
		while (n > 0 && buf[n - 1] != '/')
			n--;
		if (n)
			n--;
		buf[n] = '\0';
	}
}

void kf_ssm_index_note(struct kf_ssm_index *x, size_t ri,
		       const struct kf_aws_ssm_meta *m, int deleted)
{
	char path[KF_SSM_PATH_MAX + 1];
	uint64_t now = kf_clock_now_ms();
	struct ssm_node *k;

	if (ri >= x->nregions || !m->name || !m->name[0])
		return;
	kf_ssm_name_path(m->name, path);
	pthread_mutex_lock(&x->lock);
	k = node_locked(&x->regions[ri], path);
	if (k && deleted) {
		param_drop(k);
		k->gone_ms = now;
		k->self_ms = now;
	} else if (k) {
		int same = k->param && k->m.name && !strcmp(k->m.name, m->name);

		meta_set(k, m);
		k->confirmed = same && k->confirmed;
		k->seen_ms = k->own_ms = now;
		k->gone_ms = NEVER;
		unhold_up_locked(&x->regions[ri], path);
	}
	pthread_mutex_unlock(&x->lock);
}

/* Drop nodes in [lo, hi) that hold nothing of use any more. */
static void compact_locked(const struct kf_ssm_index *x, struct ssm_rgn *r,
			   size_t lo, size_t hi, uint64_t now)
{
	size_t w = lo;

	for (size_t i = lo; i < hi; i++) {
		if (node_idle(x, &r->v[i], now)) {
			node_release(&r->v[i]);
			continue;
		}
		if (w != i)
			r->v[w] = r->v[i];
		w++;
	}
	if (w == hi)
		return;
	memmove(&r->v[w], &r->v[hi], (r->n - hi) * sizeof(*r->v));
	r->n -= hi - w;
}

/* A parameter recorded before since that a listing since did not see. */
static void drop_unseen(const struct kf_ssm_index *x, struct ssm_node *k,
			uint64_t since, uint64_t now)
{
	if (k->param && k->seen_ms < since && !recent(x, k->own_ms, now))
		param_drop(k);
}

void kf_ssm_index_complete(struct kf_ssm_index *x, size_t ri, const char *path,
			   int what, uint64_t since_ms)
{
	char prefix[KF_SSM_PATH_MAX + 2];
	uint64_t now = kf_clock_now_ms();
	struct ssm_node *k;
	struct ssm_rgn *r;
	size_t lo, hi;

	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	k = node_locked(r, path);
	if (k && (what & KF_SSM_SELF)) {
		if (k->self_ms == NEVER || k->self_ms < since_ms)
			k->self_ms = since_ms;
		drop_unseen(x, k, since_ms, now);
	}
	if (k && (what & KF_SSM_BELOW)) {
		if (k->below_ms == NEVER || k->below_ms < since_ms)
			k->below_ms = since_ms;
		range_locked(r, path, prefix, &lo, &hi);
		for (size_t i = lo; i < hi; i++)
			drop_unseen(x, &r->v[i], since_ms, now);
		compact_locked(x, r, lo, hi, now);
	}
	pthread_mutex_unlock(&x->lock);
}

int kf_ssm_index_hold(struct kf_ssm_index *x, size_t ri, const char *path)
{
	struct ssm_node *k;

	if (ri >= x->nregions)
		return -1;
	pthread_mutex_lock(&x->lock);
	k = node_locked(&x->regions[ri], path);
	if (k)
		k->held = 1;
	pthread_mutex_unlock(&x->lock);
	return k ? 0 : -1;
}

void kf_ssm_index_unhold(struct kf_ssm_index *x, size_t ri, const char *path)
{
	struct ssm_node *k;

	if (ri >= x->nregions)
		return;
	pthread_mutex_lock(&x->lock);
	k = find_locked(&x->regions[ri], path);
	if (k)
		k->held = 0;
	pthread_mutex_unlock(&x->lock);
}

/* ---- listings ----------------------------------------------------------- */

struct child {
	char *name;
	int is_dir;
	int64_t mtime;
};

static int child_cmp(const void *a, const void *b)
{
	return strcmp(((const struct child *)a)->name,
		      ((const struct child *)b)->name);
}

/* The entries below dir a listing since since shows, one per node. */
static int collect_locked(struct kf_ssm_index *x, struct ssm_rgn *r,
			  const char *dir, uint64_t since, struct child **out,
			  size_t *n)
{
	char prefix[KF_SSM_PATH_MAX + 2];
	uint64_t now = kf_clock_now_ms();
	size_t lo, hi, plen = strlen(dir);

	range_locked(r, dir, prefix, &lo, &hi);
	*out = calloc(hi > lo ? hi - lo : 1, sizeof(**out));
	if (!*out)
		return -1;
	for (size_t i = lo; i < hi; i++) {
		const struct ssm_node *k = &r->v[i];
		const char *c = k->path + plen + (plen > 0);
		size_t len = strcspn(c, "/");
		struct child *e = &(*out)[*n];

		if (!k->held && !(k->param && (k->seen_ms >= since ||
					       recent(x, k->own_ms, now))))
			continue;
		e->name = strndup(c, len);
		if (!e->name)
			return -1;
		e->is_dir = c[len] == '/' || k->held;
		e->mtime = k->param ? k->m.changed : 0;
		(*n)++;
	}
	return 0;
}

int kf_ssm_index_children(struct kf_ssm_index *x, size_t ri, const char *dir,
			  uint64_t since_ms,
			  int (*fn)(void *ctx, const char *name, int is_dir,
				    int64_t mtime),
			  void *ctx)
{
	struct child *v = NULL;
	size_t n = 0, i = 0;
	int rc, stop = 0;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	rc = collect_locked(x, &x->regions[ri], dir, since_ms, &v, &n);
	pthread_mutex_unlock(&x->lock);
	if (rc == 0 && n > 1)
		qsort(v, n, sizeof(*v), child_cmp);
	while (rc == 0 && i < n && !stop) {
		size_t j = i + 1;
		int is_dir = v[i].is_dir;
		int64_t mtime = v[i].mtime;

		/* one entry per name: a directory wins over a parameter */
		for (; j < n && strcmp(v[j].name, v[i].name) == 0; j++) {
			is_dir |= v[j].is_dir;
			if (v[j].mtime > mtime)
				mtime = v[j].mtime;
		}
		stop = fn(ctx, v[i].name, is_dir, is_dir ? 0 : mtime);
		i = j;
	}
	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return rc;
}

/* Whether a fresh parameter lies below path. */
static int below_any_locked(const struct kf_ssm_index *x, struct ssm_rgn *r,
			    const char *path, uint64_t now)
{
	char prefix[KF_SSM_PATH_MAX + 2];
	size_t lo, hi;

	range_locked(r, path, prefix, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		if (param_fresh(x, &r->v[i], now))
			return 1;
	return 0;
}

size_t kf_ssm_index_siblings(struct kf_ssm_index *x, size_t ri,
			     const char *path, size_t max, char **out)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0, n = 0;
	uint64_t now = kf_clock_now_ms();
	struct ssm_rgn *r;
	size_t i, scan = 0;

	if (ri >= x->nregions)
		return 0;
	pthread_mutex_lock(&x->lock);
	r = &x->regions[ri];
	i = lower_locked(r, path);
	for (; i < r->n && n < max && scan < SIBLINGS_SCAN; i++, scan++) {
		const struct ssm_node *k = &r->v[i];

		if (strncmp(k->path, path, dlen) != 0)
			break; /* left the directory */
		if (!strcmp(k->path, path) || strchr(k->path + dlen, '/') ||
		    !param_fresh(x, k, now) ||
		    below_any_locked(x, r, k->path, now))
			continue;
		out[n] = strdup(k->m.name);
		if (out[n])
			n++;
	}
	pthread_mutex_unlock(&x->lock);
	return n;
}
