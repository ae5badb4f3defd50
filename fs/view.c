/*
 * Views (see view.h): parsing NAME:VERSION#FIELD, fetching a version
 * through the provider, picking one field of a JSON object, and the
 * FUSE side of view paths (attributes, the version directory of a JSON
 * secret, opens).  Field values are cut from the cached whole value, so
 * every field of one version costs one fetch.  Never logs a value.
 */
#include "view.h"

#include "cache.h"
#include "errmap.h"
#include "handle.h"
#include "ops.h"
#include "watch.h"

#include "core/json.h"
#include "core/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Split component c (len n) at its first ':' / '#'; 0 when it holds
 * none, 1 when it is a well-formed view component, -1 when malformed. */
static int split_component(const char *c, size_t n, size_t *name_len,
			   const char **ver, size_t *ver_len, const char **fld,
			   size_t *fld_len)
{
	const char *colon = memchr(c, ':', n), *hash = memchr(c, '#', n);
	const char *end = c + n;

	*ver = *fld = NULL;
	*ver_len = *fld_len = 0;
	if (!colon && !hash)
		return 0;
	if (colon && hash && hash < colon)
		colon = NULL; /* a ':' inside FIELD is part of the field */
	*name_len = (size_t)((colon ? colon : hash) - c);
	if (*name_len == 0 || c[0] == '.')
		return -1; /* "#x#", ".#x": editors' names, not views */
	if (colon) {
		*ver = colon + 1;
		*ver_len = (size_t)((hash ? hash : end) - *ver);
		if (*ver_len == 0 || memchr(*ver, ':', *ver_len))
			return -1;
	}
	if (hash) {
		*fld = hash + 1;
		*fld_len = (size_t)(end - *fld);
		if (*fld_len == 0)
			return -1;
	}
	return 1;
}

/* Copy n bytes of s and a NUL to *w (inside v->buf); the copy. */
static const char *keep(struct kf_view *v, char **w, const char *s, size_t n)
{
	char *at = *w;

	memcpy(at, s, n);
	at[n] = '\0';
	*w = at + n + 1;
	return at;
}

static int set_key(struct kf_view *v, const char *dirs, size_t dlen,
		   const char *name, size_t nlen)
{
	int n = snprintf(v->base, sizeof(v->base), "%.*s%.*s", (int)dlen, dirs,
			 (int)nlen, name);

	if (n < 0 || (size_t)n >= sizeof(v->base))
		return -1;
	n = v->version ? snprintf(v->key, sizeof(v->key), "%s:%s", v->base,
				  v->version) :
			 snprintf(v->key, sizeof(v->key), "%s", v->base);
	return n < 0 || (size_t)n >= sizeof(v->key) ? -1 : 0;
}

int kf_view_parse(const char *rel, struct kf_view *v)
{
	const char *last = strrchr(rel, '/'), *ver, *fld, *prev;
	size_t nl, vl, fl, dlen;
	char *w;
	int r;

	memset(v, 0, offsetof(struct kf_view, base));
	w = v->buf;
	v->base[0] = v->key[0] = '\0';
	last = last ? last + 1 : rel;
	if (strlen(rel) >= sizeof(v->buf) / 2)
		return 0;
	r = split_component(last, strlen(last), &nl, &ver, &vl, &fld, &fl);
	if (r < 0)
		return 0; /* not a view: the provider judges the name */
	dlen = (size_t)(last - rel);
	if (r == 1) {
		v->version = ver ? keep(v, &w, ver, vl) : NULL;
		v->field = fld ? keep(v, &w, fld, fl) : NULL;
		v->is_view = set_key(v, rel, dlen, last, nl) == 0;
		return 0;
	}
	/* DIR/NAME:VERSION/FIELD: a file of a JSON secret's version. */
	if (dlen < 2)
		return 0;
	for (prev = last - 1; prev > rel && prev[-1] != '/'; prev--)
		;
	r = split_component(prev, (size_t)(last - 1 - prev), &nl, &ver, &vl,
			    &fld, &fl);
	if (r != 1 || fld)
		return 0;
	v->version = keep(v, &w, ver, vl);
	v->field = keep(v, &w, last, strlen(last));
	v->in_dir = 1;
	v->is_view = set_key(v, rel, (size_t)(prev - rel), prev, nl) == 0;
	return 0;
}

int kf_view_fetch(struct kf_provider *p, const char *key,
		  struct kf_secret **value, int *immutable, struct kf_err *err)
{
	const char *last = strrchr(key, '/');
	const char *colon = strchr(last ? last : key, ':');
	char base[4096];

	*immutable = 0;
	if (!colon)
		return p->ops->read(p, key, value, err);
	if (!p->ops->read_version)
		return kf_fail(err, KF_E_NOTFOUND, "%s keeps no versions",
			       p->name);
	if ((size_t)(colon - key) >= sizeof(base))
		return kf_fail(err, KF_E_INVALID, "path too long");
	memcpy(base, key, (size_t)(colon - key));
	base[colon - key] = '\0';
	return p->ops->read_version(p, base, colon + 1, value, immutable, err);
}

/*
 * Field `field` of the JSON object in whole, into a new secret: a
 * string's raw bytes, any other value's compact JSON text.  1 when there
 * is no such field (or whole is not an object), 0 done, -1 out of memory.
 */
static int field_of(const struct kf_secret *whole, const char *field,
		    struct kf_secret **out)
{
	json_t *o = kf_json_object((const char *)whole->data, whole->len);
	json_t *f = o ? json_object_get(o, field) : NULL;
	char *text;
	int rc = 1;

	*out = NULL;
	if (f && json_is_string(f)) {
		*out = kf_secret_dup(json_string_value(f),
				     json_string_length(f));
		rc = *out ? 0 : -1;
	} else if (f) {
		text = json_dumps(f, JSON_COMPACT | JSON_ENCODE_ANY);
		*out = text ? kf_secret_dup(text, strlen(text)) : NULL;
		kf_json_free(text);
		rc = *out ? 0 : -1;
	}
	if (*out)
		kf_secret_set_version(*out, whole->version);
	json_decref(o);
	return rc;
}

/* The FUSE path of provider-relative rel2, for path (whose rel is rel). */
static int full_path(const char *path, const char *rel, const char *rel2,
		     char *out, size_t n)
{
	int m = snprintf(out, n, "%.*s%s", (int)(rel - path), path, rel2);

	return m < 0 || (size_t)m >= n ? -ENAMETOOLONG : 0;
}

/* The whole value of v's key (through the cache); 0 or -errno. */
static int whole_value(struct kf_fs *fs, struct kf_provider *p,
		       const char *path, const char *rel,
		       const struct kf_view *v, const char *op,
		       struct kf_secret **out)
{
	struct kf_err err = KF_ERR_INIT;
	char key[4096];
	int rc = full_path(path, rel, v->key, key, sizeof(key));

	if (rc)
		return rc;
	if (kf_cache_read(&fs->cache, p, key, v->key, out, &err) < 0) {
		if (err.code == KF_E_ISDIR)
			return -ENOENT; /* no value under that name */
		return kf_errmap_report(op, path, &err);
	}
	return 0;
}

/* v's value: the whole value, or the field of it; 0 or -errno. */
static int view_value(struct kf_fs *fs, struct kf_provider *p, const char *path,
		      const char *rel, const struct kf_view *v, const char *op,
		      struct kf_secret **out)
{
	struct kf_secret *whole = NULL;
	int rc = whole_value(fs, p, path, rel, v, op, &whole);

	if (rc < 0 || !v->field) {
		*out = whole;
		return rc;
	}
	rc = field_of(whole, v->field, out);
	kf_secret_free(whole);
	if (rc > 0) {
		kf_log(KF_LOG_DEBUG,
		       "%s: no such field (or the value is not a JSON object)",
		       path);
		return -ENOENT;
	}
	return rc < 0 ? -ENOMEM : 0;
}

int kf_fs_value(struct kf_fs *fs, struct kf_provider *p, const char *path,
		const char *rel, const char *op, struct kf_secret **out)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_view v;
	int rc;

	*out = NULL;
	kf_view_parse(rel, &v);
	if (v.is_view) {
		rc = view_value(fs, p, path, rel, &v, op, out);
	} else if (kf_cache_read(&fs->cache, p, path, rel, out, &err) < 0) {
		rc = kf_errmap_report(op, path, &err);
	} else {
		rc = 0;
	}
	if (rc == 0)
		kf_watch_note(fs, p, path, rel, *out);
	return rc;
}

/*
 * Field views looked up recently, by the cache key they are cut from, so
 * a change of that value drops the kernel's copies of them too (it keeps
 * pages of read-only mounts' files until told).  A ring: the oldest is
 * overwritten; one forgotten only keeps its pages until the kernel's
 * attribute timeout.
 */
#define VREG_MAX 512

static struct {
	pthread_mutex_t lock;
	char *view[VREG_MAX], *key[VREG_MAX];
	unsigned next;
} vreg = { PTHREAD_MUTEX_INITIALIZER, { NULL }, { NULL }, 0 };

static void vreg_note(const char *view, const char *key)
{
	char *a, *b;

	pthread_mutex_lock(&vreg.lock);
	for (unsigned i = 0; i < VREG_MAX; i++)
		if (vreg.view[i] && !strcmp(vreg.view[i], view)) {
			pthread_mutex_unlock(&vreg.lock);
			return;
		}
	a = strdup(view);
	b = strdup(key);
	if (a && b) {
		unsigned i = vreg.next++ % VREG_MAX;

		free(vreg.view[i]);
		free(vreg.key[i]);
		vreg.view[i] = a;
		vreg.key[i] = b;
		a = b = NULL;
	}
	pthread_mutex_unlock(&vreg.lock);
	free(a);
	free(b);
}

void kf_view_invalidate(const char *path,
			void (*invalidate)(void *ctx, const char *path),
			void *ctx)
{
	char *hit[16];
	size_t n = 0;

	pthread_mutex_lock(&vreg.lock);
	for (unsigned i = 0; i < VREG_MAX && n < 16; i++)
		if (vreg.key[i] && !strcmp(vreg.key[i], path))
			hit[n++] = strdup(vreg.view[i]);
	pthread_mutex_unlock(&vreg.lock);
	for (size_t i = 0; i < n; i++) {
		if (hit[i])
			invalidate(ctx, hit[i]);
		free(hit[i]);
	}
}

/* The directory of v's base as the provider sees it. */
static int base_attr(struct kf_fs *fs, struct kf_provider *p, const char *path,
		     const char *rel, const struct kf_view *v,
		     struct kf_attr *a, char *full, size_t n)
{
	struct kf_err err = KF_ERR_INIT;
	int rc = full_path(path, rel, v->base, full, n);

	if (rc)
		return rc;
	if (kf_cache_getattr(&fs->cache, p, full, v->base, 0, a, &err) < 0)
		return kf_errmap_report("getattr", path, &err);
	return 0;
}

/* Whether whole is a JSON object (a version directory's value). */
static int is_object(const struct kf_secret *whole)
{
	json_t *o = kf_json_object((const char *)whole->data, whole->len);
	int yes = o != NULL;

	json_decref(o);
	return yes;
}

int kf_view_attr(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v, struct kf_attr *a,
		 char *modes, size_t n)
{
	struct kf_secret *val = NULL;
	struct kf_attr ba;
	int rc = base_attr(fs, p, path, rel, v, &ba, modes, n);
	int want_dir = ba.kind == KF_KIND_DIR;

	if (rc)
		return rc;
	memset(a, 0, sizeof(*a));
	a->mtime = ba.mtime;
	if (v->in_dir && !want_dir)
		return -ENOENT; /* NAME:V/F of a file NAME */
	if (v->field && !v->in_dir && want_dir)
		return -ENOENT; /* NAME#F of a directory: use NAME/F */
	if (v->in_dir) {
		size_t m = strlen(modes);
		int k = snprintf(modes + m, n - m, "/%s", v->field);

		if (k < 0 || (size_t)k >= n - m)
			return -ENAMETOOLONG;
	}
	rc = want_dir && !v->in_dir ?
		     whole_value(fs, p, path, rel, v, "getattr", &val) :
		     view_value(fs, p, path, rel, v, "getattr", &val);
	if (rc)
		return rc;
	/* A version of a directory: a JSON object is a directory of its
	 * fields; any other value (a secret that a prefix of the same name
	 * hides) is a file. */
	if (want_dir && !v->in_dir && !is_object(val))
		want_dir = 0;
	a->kind = want_dir && !v->in_dir ? KF_KIND_DIR : KF_KIND_FILE;
	a->size_known = 1;
	a->size = a->kind == KF_KIND_FILE ? val->len : 0;
	kf_secret_free(val);
	if (v->field) {
		char key[4096];

		if (full_path(path, rel, v->key, key, sizeof(key)) == 0)
			vreg_note(path, key);
	}
	return 0;
}

/* A field name that can be a file name. */
static int listable(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

int kf_view_list(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v, kf_list_fn fn,
		 void *ctx)
{
	struct kf_secret *whole = NULL;
	struct kf_attr a = { KF_KIND_FILE, 1, 0, 0 };
	const char *name;
	json_t *o, *f;
	int rc = whole_value(fs, p, path, rel, v, "readdir", &whole);

	if (rc)
		return rc;
	o = kf_json_object((const char *)whole->data, whole->len);
	json_object_foreach(o, name, f)
	{
		if (!listable(name))
			continue;
		a.size = json_is_string(f) ? json_string_length(f) : 0;
		if (!json_is_string(f)) {
			char *t = json_dumps(f, JSON_COMPACT | JSON_ENCODE_ANY);

			a.size = t ? strlen(t) : 0;
			kf_json_free(t);
		}
		if (fn(ctx, name, &a))
			break;
	}
	rc = o ? 0 : -ENOTDIR;
	json_decref(o);
	kf_secret_free(whole);
	return rc;
}

int kf_view_open(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v,
		 const struct kf_who *who, struct kf_fh **out)
{
	struct kf_secret *val = NULL;
	struct kf_attr a;
	char modes[4096];
	struct kf_fh *h;
	int rc = kf_view_attr(fs, p, path, rel, v, &a, modes, sizeof(modes));

	*out = NULL;
	if (rc)
		return rc;
	if (a.kind != KF_KIND_FILE)
		return -EISDIR;
	rc = kf_fs_value(fs, p, path, rel, "open", &val);
	if (rc)
		return rc;
	h = kf_fh_new(p, path, rel, who);
	if (!h || kf_secret_set(h->val, val->data, val->len) < 0) {
		kf_fh_free(h);
		kf_secret_free(val);
		return h ? -EFBIG : -ENOMEM;
	}
	h->base_len = val->len;
	(void)snprintf(h->version, sizeof(h->version), "%s", val->version);
	kf_secret_free(val);
	*out = h;
	return 0;
}

int kf_view_refuse(const char *path)
{
	struct kf_provider *p;
	const char *rel;
	struct kf_view v;

	if (kf_fs_route(path, &p, &rel) || !p || !*rel)
		return 0;
	kf_view_parse(rel, &v);
	return v.is_view ? -EROFS : 0;
}

/* user.keyfs.versions: the versions a provider reports, newest first. */
struct vers {
	struct ver {
		char *id, *labels;
		int64_t created;
	} * v;
	size_t n, cap;
	int oom;
};

static int vers_add(void *ctx, const char *version, int64_t created,
		    const char *labels)
{
	struct vers *vs = ctx;
	struct ver *nv;

	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 16;

		nv = realloc(vs->v, cap * sizeof(*nv));
		if (!nv) {
			vs->oom = 1;
			return 1;
		}
		vs->v = nv;
		vs->cap = cap;
	}
	nv = &vs->v[vs->n];
	nv->id = strdup(version);
	nv->labels = strdup(labels ? labels : "");
	nv->created = created;
	if (!nv->id || !nv->labels) {
		free(nv->id);
		free(nv->labels);
		vs->oom = 1;
		return 1;
	}
	vs->n++;
	return 0;
}

/* Newest first; equal times: the larger version number (or name). */
static int ver_cmp(const void *a, const void *b)
{
	const struct ver *x = a, *y = b;
	size_t lx = strlen(x->id), ly = strlen(y->id);

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	if (lx != ly && strspn(x->id, "0123456789") == lx &&
	    strspn(y->id, "0123456789") == ly)
		return lx < ly ? 1 : -1;
	return -strcmp(x->id, y->id);
}

static int vers_format(struct vers *vs, struct kf_buf *out)
{
	char when[32], line[512];
	int rc = 0;

	if (vs->n > 1) /* none: vs->v is NULL, which qsort may not get */
		qsort(vs->v, vs->n, sizeof(*vs->v), ver_cmp);
	for (size_t i = 0; i < vs->n && rc == 0; i++) {
		time_t t = (time_t)(vs->v[i].created / 1000);
		struct tm tm;
		int n;

		if (vs->v[i].created > 0 && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		else
			(void)snprintf(when, sizeof(when), "-");
		n = snprintf(line, sizeof(line), "%s %s %s\n", vs->v[i].id,
			     when, *vs->v[i].labels ? vs->v[i].labels : "-");
		if (n < 0 || (size_t)n >= sizeof(line) ||
		    kf_buf_add(out, line, (size_t)n) < 0)
			rc = -E2BIG;
	}
	return rc;
}

int kf_view_getxattr(struct kf_provider *p, const char *path, const char *rel,
		     const char *name, struct kf_buf *out)
{
	struct kf_err err = KF_ERR_INIT;
	struct vers vs = { NULL, 0, 0, 0 };
	struct kf_view v;
	int rc;

	if (!p || !*rel)
		return 1;
	kf_view_parse(rel, &v);
	if (v.is_view)
		return -ENODATA; /* views carry no attributes */
	if (strcmp(name, KF_VERSIONS_XATTR) != 0)
		return 1;
	if (!p->ops->versions)
		return -ENODATA;
	rc = p->ops->versions(p, rel, vers_add, &vs, &err);
	if (rc < 0 && err.code == KF_E_ISDIR)
		rc = -ENODATA; /* a directory that is no JSON secret */
	else if (rc < 0)
		rc = kf_errmap_report("getxattr", path, &err);
	else if (vs.oom)
		rc = -ENOMEM;
	else
		rc = vers_format(&vs, out);
	for (size_t i = 0; i < vs.n; i++) {
		free(vs.v[i].id);
		free(vs.v[i].labels);
	}
	free(vs.v);
	return rc;
}
