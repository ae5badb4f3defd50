/*
 * Held files (see held.h): temporary and editor files kept in locked
 * memory on this host, and the rename that turns one into a real value
 * through the one commit function.  Nothing here sends a held value to a
 * provider except that commit, and no value is ever logged.
 */
#include "held.h"

#include "core/log.h"
#include "errmap.h"
#include "handle.h"
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kf_held_file {
	char *path;	       /* the FUSE path while named */
	struct kf_secret *val; /* capacity: the provider's max_value */
	int64_t mtime;	       /* wall clock, for stat */
	int opens;	       /* open handles */
	int named;	       /* in kf_held.files */
	struct kf_held_file *next;
};

static const char *last_component(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* n is prefix followed by exactly six letters or digits (mkstemp's). */
static int six_random_after(const char *n, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);

	if (len != pl + 6 || strncmp(n, prefix, pl) != 0)
		return 0;
	for (size_t i = pl; i < len; i++)
		if (!ascii_alnum(n[i]))
			return 0;
	return 1;
}

int kf_held_name_rule(const char *path)
{
	const char *n = last_component(path);
	size_t len = strlen(n);

	if (len == 0 || !strcmp(n, ".") || !strcmp(n, ".."))
		return 0;
	if (n[0] == '.' || n[len - 1] == '~' || !strcmp(n, "4913"))
		return 1; /* .NAME.XXXXXX, .NAME.swp, .#NAME, NAME~, vim's probe */
	if (len >= 3 && n[0] == '#' && n[len - 1] == '#')
		return 1; /* emacs's auto-save file */
	/* sed -i's sedXXXXXX; perl -i's work file, mkstemp("XXXXXXXX"),
	 * which keeps the first two X. */
	return six_random_after(n, len, "sed") ||
	       six_random_after(n, len, "XX");
}

void kf_held_init(struct kf_held *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
}

static void file_free(struct kf_held_file *f)
{
	if (!f)
		return;
	kf_secret_free(f->val);
	free(f->path);
	free(f);
}

void kf_held_release(struct kf_held *h)
{
	while (h->files) {
		struct kf_held_file *n = h->files->next;

		file_free(h->files);
		h->files = n;
	}
	h->n = 0;
	pthread_mutex_destroy(&h->lock);
}

static struct kf_held_file *find_locked(struct kf_held *h, const char *path)
{
	for (struct kf_held_file *f = h->files; f; f = f->next)
		if (!strcmp(f->path, path))
			return f;
	return NULL;
}

/* Take f's name away; the caller frees f when this returns 1 (unused). */
static int unname_locked(struct kf_held *h, struct kf_held_file *f)
{
	for (struct kf_held_file **pp = &h->files; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			f->named = 0;
			h->n--;
			break;
		}
	}
	return f->opens == 0;
}

int kf_held_has(struct kf_held *h, const char *path)
{
	int found;

	pthread_mutex_lock(&h->lock);
	found = find_locked(h, path) != NULL;
	pthread_mutex_unlock(&h->lock);
	return found;
}

int kf_held_stat(struct kf_held *h, const char *path, struct kf_attr *a)
{
	struct kf_held_file *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&h->lock);
	f = find_locked(h, path);
	if (f) {
		memset(a, 0, sizeof(*a));
		a->kind = KF_KIND_FILE;
		a->size_known = 1;
		a->size = f->val->len;
		a->mtime = f->mtime;
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kf_held_create(struct kf_held *h, struct kf_provider *p, const char *path,
		   int flags, struct kf_held_fh **out)
{
	struct kf_held_file *f = calloc(1, sizeof(*f));
	struct kf_held_fh *fh = calloc(1, sizeof(*fh));
	int rc = -ENOMEM;

	*out = NULL;
	if (!f || !fh)
		goto out;
	f->path = strdup(path);
	f->val = kf_secret_new(p->max_value);
	if (!f->path || !f->val)
		goto out;
	f->mtime = (int64_t)time(NULL);
	f->opens = 1;
	f->named = 1;
	fh->f = f;
	fh->append = !!(flags & O_APPEND);
	pthread_mutex_lock(&h->lock);
	if (find_locked(h, path)) {
		rc = -EEXIST;
	} else if (h->n >= KF_HELD_MAX) {
		rc = -ENOSPC;
	} else {
		f->next = h->files;
		h->files = f;
		h->n++;
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
out:
	if (rc == 0) {
		*out = fh;
	} else {
		file_free(f);
		free(fh);
	}
	return rc;
}

int kf_held_open(struct kf_held *h, const char *path, int flags,
		 struct kf_held_fh **out)
{
	struct kf_held_fh *fh = calloc(1, sizeof(*fh));
	struct kf_held_file *f;

	*out = NULL;
	if (!fh)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	f = find_locked(h, path);
	if (f) {
		f->opens++;
		if (kf_fh_writable(flags) && (flags & O_TRUNC)) {
			kf_secret_truncate(f->val, 0);
			f->mtime = (int64_t)time(NULL);
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (!f) {
		free(fh);
		return -ENOENT;
	}
	fh->f = f;
	fh->append = !!(flags & O_APPEND);
	*out = fh;
	return 0;
}

void kf_held_close(struct kf_held *h, struct kf_held_fh *fh)
{
	struct kf_held_file *gone = NULL;

	if (!fh)
		return;
	pthread_mutex_lock(&h->lock);
	if (--fh->f->opens == 0 && !fh->f->named)
		gone = fh->f;
	pthread_mutex_unlock(&h->lock);
	file_free(gone);
	free(fh);
}

size_t kf_held_read(struct kf_held *h, struct kf_held_fh *fh, char *buf,
		    size_t size, off_t off)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = kf_fh_copy(fh->f->val, off, buf, size);
	pthread_mutex_unlock(&h->lock);
	return n;
}

int kf_held_write(struct kf_held *h, struct kf_held_fh *fh, const char *buf,
		  size_t size, off_t off)
{
	int rc = (int)size;

	pthread_mutex_lock(&h->lock);
	if (fh->append)
		off = (off_t)fh->f->val->len;
	if (kf_secret_write(fh->f->val, (size_t)off, buf, size) < 0)
		rc = -EFBIG;
	else
		fh->f->mtime = (int64_t)time(NULL);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kf_held_truncate(struct kf_held *h, struct kf_held_fh *fh, const char *path,
		     off_t size)
{
	struct kf_held_file *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&h->lock);
	f = fh ? fh->f : find_locked(h, path);
	if (f) {
		rc = kf_secret_truncate(f->val, (size_t)size) < 0 ? -EFBIG : 0;
		if (rc == 0)
			f->mtime = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

size_t kf_held_size(struct kf_held *h, struct kf_held_fh *fh)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = fh->f->val->len;
	pthread_mutex_unlock(&h->lock);
	return n;
}

int kf_held_unlink(struct kf_held *h, const char *path)
{
	struct kf_held_file *f, *gone = NULL;

	pthread_mutex_lock(&h->lock);
	f = find_locked(h, path);
	if (f && unname_locked(h, f))
		gone = f;
	pthread_mutex_unlock(&h->lock);
	file_free(gone);
	return f ? 0 : -ENOENT;
}

/* Whether path is directly inside the directory dir (FUSE paths). */
static int in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = strlen(dir);

	if (!slash)
		return 0;
	if (dlen == 1 && dir[0] == '/')
		return slash == path;
	return (size_t)(slash - path) == dlen && !strncmp(path, dir, dlen);
}

struct listed {
	char *name;
	struct kf_attr a;
};

void kf_held_list(struct kf_held *h, const char *dir,
		  int (*fn)(void *ctx, const char *name,
			    const struct kf_attr *a),
		  void *ctx)
{
	struct listed *l = NULL;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	if (h->n)
		l = calloc(h->n, sizeof(*l));
	for (struct kf_held_file *f = h->files; l && f; f = f->next) {
		if (!in_dir(f->path, dir))
			continue;
		l[n].name = strdup(last_component(f->path));
		if (!l[n].name)
			break;
		l[n].a.kind = KF_KIND_FILE;
		l[n].a.size_known = 1;
		l[n].a.size = f->val->len;
		l[n].a.mtime = f->mtime;
		n++;
	}
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < n; i++) {
		if (fn(ctx, l[i].name, &l[i].a))
			break;
	}
	for (size_t i = 0; i < n; i++)
		free(l[i].name);
	free(l);
}

int kf_held_copy(struct kf_held *h, const char *path, struct kf_secret *dst,
		 const struct kf_held_file **file)
{
	struct kf_held_file *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&h->lock);
	f = find_locked(h, path);
	if (f) {
		rc = kf_secret_set(dst, f->val->data, f->val->len) < 0 ?
			     -EFBIG :
			     0;
		*file = f;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void kf_held_drop(struct kf_held *h, const char *path,
		  const struct kf_held_file *file)
{
	struct kf_held_file *f, *gone = NULL;

	pthread_mutex_lock(&h->lock);
	f = find_locked(h, path);
	if (f && f == file && unname_locked(h, f))
		gone = f;
	pthread_mutex_unlock(&h->lock);
	file_free(gone);
}

int kf_held_move(struct kf_held *h, const char *from, const char *to)
{
	char *name = strdup(to);
	struct kf_held_file *f, *t, *gone = NULL;

	if (!name)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	f = find_locked(h, from);
	if (f) {
		t = find_locked(h, to);
		if (t && t != f && unname_locked(h, t))
			gone = t;
		free(f->path);
		f->path = name;
		name = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	file_free(gone);
	free(name);
	return f ? 0 : -ENOENT;
}

/* ---- the FUSE side: creating held files, renaming them ---------------- */

int kf_held_try_create(struct kf_fs *fs, struct kf_provider *p,
		       const char *path, const char *rel, int flags,
		       struct kf_held_fh **out)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;

	*out = NULL;
	if (!kf_held_name_rule(rel))
		return 1;
	if (kf_held_has(&fs->held, path))
		return -EEXIST;
	if (kf_cache_getattr(&fs->cache, p, path, rel, 0, &a, &err) == 0)
		return 1; /* an existing cloud name: as any other name */
	if (err.code != KF_E_NOTFOUND)
		return kf_errmap_report("create", path, &err);
	kf_log(KF_LOG_DEBUG, "%s: a temporary name, held in memory", path);
	return kf_held_create(&fs->held, p, path, flags, out);
}

/* Whether a and b (FUSE paths) are in the same directory. */
static int same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	return sa && sb && sa - a == sb - b && !strncmp(a, b, (size_t)(sa - a));
}

/* Commit the held value of from as the value of to (rel under p). */
static int commit_onto(struct kf_fs *fs, struct kf_provider *p,
		       const char *from, const char *to, const char *rel,
		       int create, const struct kf_who *who)
{
	const struct kf_held_file *file = NULL;
	struct kf_fh *h = kf_fh_new(p, to, rel, who);
	int rc;

	if (!h)
		return -ENOMEM;
	rc = kf_held_copy(&fs->held, from, h->val, &file);
	if (rc == 0) {
		pthread_mutex_lock(&h->lock);
		h->created = create;
		h->dirty = 1;
		h->changes = 1;
		rc = kf_fh_commit_locked(fs, h, 0, 1, "rename");
		pthread_mutex_unlock(&h->lock);
	}
	kf_fh_free(h);
	if (rc == 0)
		kf_held_drop(&fs->held, from, file);
	return rc;
}

int kf_held_rename(struct kf_fs *fs, const char *from, const char *to,
		   unsigned int flags, const struct kf_who *who)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p, *q;
	const char *rel, *qrel;
	struct kf_attr a;
	int rc;

	if (flags)
		return -EINVAL; /* not supported: tools fall back to rename */
	if (!kf_held_has(&fs->held, from))
		return -EPERM;
	if (!same_dir(from, to))
		return -EXDEV; /* mv copies, then removes the held file */
	rc = kf_tree_route(&fs->tree, to, &p, &rel);
	if (rc == 0)
		rc = kf_tree_route(&fs->tree, from, &q, &qrel);
	if (rc)
		return rc;
	if (!p || !*rel || p != q)
		return -EPERM;
	if (kf_held_has(&fs->held, to))
		return kf_held_move(&fs->held, from, to);
	if (kf_cache_getattr(&fs->cache, p, to, rel, 0, &a, &err) == 0) {
		if (a.kind != KF_KIND_FILE)
			return -EISDIR;
		return commit_onto(fs, p, from, to, rel, 0, who);
	}
	if (err.code != KF_E_NOTFOUND)
		return kf_errmap_report("rename", to, &err);
	if (kf_held_name_rule(rel))
		return kf_held_move(&fs->held, from, to);
	kf_cache_forget(&fs->cache, to);
	return commit_onto(fs, p, from, to, rel, 1, who);
}
