/*
 * FUSE handlers.  Each returns 0 or -errno; cloud errors go through
 * fs/errmap.c.  A value is read into a handle at open and written back
 * once, all or nothing, at flush/fsync.  Values are never logged.
 */
#include "ops.h"

#include "audit.h"
#include "core/crypto.h"
#include "errmap.h"
#include "core/log.h"
#include "core/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define XATTR_MAX 65536

/* What reached the daemon (reads served by the page cache do not). */
static struct {
	uint64_t opens, reads, writes, commits, commit_errors;
} ctr;

#define CTR_INC(f) __atomic_add_fetch(&ctr.f, 1, __ATOMIC_RELAXED)
#define CTR_GET(f) __atomic_load_n(&ctr.f, __ATOMIC_RELAXED)

struct kf_pending {
	char *path;
	int refs;
	struct kf_pending *next;
};

struct kf_fh {
	struct kf_provider *p;
	char *path;		/* the FUSE path, for logs and pending */
	const char *rel;	/* provider-relative, points into path */
	int created;		/* made by create(): commit creates */
	int pending;		/* listed in kf_fs.pending until release */
	int append;
	pthread_mutex_t lock;
	struct kf_secret *val;	/* protected by lock */
	int dirty;		/* protected by lock */
	int changes;		/* protected by lock: writes/ftruncates since
				 * the last commit (O_TRUNC alone is none) */
	int committed_once;	/* a commit happened (for the audit line) */
	uid_t uid;		/* who opened it, for audit lines written */
	gid_t gid;		/* at release, which has no caller */
	pid_t pid;
	int failed;		/* protected by lock: errno of a failed write;
				 * the value is then never committed */
};

static struct kf_fs *fsctx(void)
{
	return fuse_get_context()->private_data;
}

void kf_fs_init(struct kf_fs *fs)
{
	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->pending_lock, NULL);
	fs->mount_time = time(NULL);
}

/* Log the access to the audit trail (when on) and pass rc through. */
static int audited(const char *op, const char *path, int rc)
{
	struct fuse_context *ctx = fuse_get_context();
	struct kf_fs *fs = ctx->private_data;

	if (fs->audit)
		kf_audit_log(fs->audit, ctx->uid, ctx->gid, ctx->pid, op, path,
			     rc < 0 ? rc : 0);
	return rc;
}

void kf_fs_release(struct kf_fs *fs)
{
	kf_cache_release(&fs->cache);
	while (fs->pending) {
		struct kf_pending *n = fs->pending->next;

		free(fs->pending->path);
		free(fs->pending);
		fs->pending = n;
	}
	pthread_mutex_destroy(&fs->pending_lock);
}

static void pending_add(struct kf_fs *fs, const char *path)
{
	struct kf_pending *e;

	pthread_mutex_lock(&fs->pending_lock);
	for (e = fs->pending; e; e = e->next)
		if (!strcmp(e->path, path))
			break;
	if (e) {
		e->refs++;
	} else {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->path = strdup(path);
			if (!e->path) {
				free(e);
			} else {
				e->refs = 1;
				e->next = fs->pending;
				fs->pending = e;
			}
		}
	}
	pthread_mutex_unlock(&fs->pending_lock);
}

static void pending_del(struct kf_fs *fs, const char *path)
{
	struct kf_pending **pp;

	pthread_mutex_lock(&fs->pending_lock);
	for (pp = &fs->pending; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->path, path))
			continue;
		if (--(*pp)->refs == 0) {
			struct kf_pending *e = *pp;

			*pp = e->next;
			free(e->path);
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&fs->pending_lock);
}

static int pending_has(struct kf_fs *fs, const char *path)
{
	int found = 0;

	pthread_mutex_lock(&fs->pending_lock);
	for (struct kf_pending *e = fs->pending; e; e = e->next)
		if (!strcmp(e->path, path))
			found = 1;
	pthread_mutex_unlock(&fs->pending_lock);
	return found;
}

static void fill_stat(const struct kf_fs *fs, const struct kf_attr *a,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	if (a->kind == KF_KIND_DIR) {
		st->st_mode = S_IFDIR | (0777 & ~fs->umask);
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (0666 & ~fs->umask);
		st->st_nlink = 1;
		st->st_size = a->size_known ? (off_t)a->size : 0;
		st->st_blocks = (st->st_size + 511) / 512;
	}
	st->st_blksize = 4096;
	st->st_mtime = a->mtime ? a->mtime : fs->mount_time;
	st->st_ctime = st->st_mtime;
	st->st_atime = st->st_mtime;
}

static int route(const char *path, struct kf_provider **p, const char **rel)
{
	return kf_tree_route(&fsctx()->tree, path, p, rel);
}

static int kf_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct kf_fs *fs = fsctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };
	struct kf_provider *p;
	const char *rel;
	int rc;

	if (fi && fi->fh) {
		struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;

		pthread_mutex_lock(&h->lock);
		a.kind = KF_KIND_FILE;
		a.size_known = 1;
		a.size = h->val->len;
		pthread_mutex_unlock(&h->lock);
		fill_stat(fs, &a, st);
		return 0;
	}
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (p && *rel &&
	    kf_cache_getattr(&fs->cache, p, path, rel, fs->no_open, &a,
			     &err) < 0) {
		if (err.code == KF_E_NOTFOUND && pending_has(fs, path)) {
			memset(&a, 0, sizeof(a));
			a.kind = KF_KIND_FILE;
			a.size_known = 1;
		} else {
			return kf_errmap_report("getattr", path, &err);
		}
	}
	fill_stat(fs, &a, st);
	return 0;
}

struct list_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	const struct kf_fs *fs;
};

static int list_one(void *vctx, const char *name, const struct kf_attr *a)
{
	struct list_ctx *c = vctx;
	struct stat st;

	if (!a)
		return c->filler(c->buf, name, NULL, 0, 0);
	fill_stat(c->fs, a, &st);
	return c->filler(c->buf, name, &st, 0, 0);
}

static int kf_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct kf_fs *fs = fsctx();
	struct list_ctx c = { buf, filler, fs };
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf token, next;
	const char *rel;
	int rc, pages = 0;

	(void)off;
	(void)fi;
	(void)flags;
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (!p) {
		for (size_t i = 0; i < fs->tree.n; i++)
			filler(buf, fs->tree.providers[i]->name, NULL, 0, 0);
		return 0;
	}
	kf_buf_init(&token, 8192);
	kf_buf_init(&next, 8192);
	rc = 0;
	do {
		kf_buf_reset(&next);
		if (p->ops->list(p, rel, pages ? kf_buf_str(&token) : NULL,
				 list_one, &c, &next, &err) < 0) {
			rc = kf_errmap_report("readdir", path, &err);
			break;
		}
		pages++;
		kf_buf_reset(&token);
		if (kf_buf_add(&token, next.data, next.len) < 0) {
			rc = -ENOMEM;
			break;
		}
	} while (next.len > 0 && pages < 100000);
	kf_buf_release(&token);
	kf_buf_release(&next);
	return audited("readdir", path, rc);
}

static int kf_mkdir(const char *path, mode_t mode)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	const char *rel;
	int rc;

	(void)mode;	/* modes come from -o umask */
	if (fsctx()->read_only)
		return -EROFS;
	rc = route(path, &p, &rel);
	if (rc == -ENOENT)
		return -EPERM;	/* new top-level names are providers */
	if (rc)
		return rc;
	if (!p || !*rel)
		return audited("mkdir", path, -EEXIST);
	kf_cache_forget(&fsctx()->cache, path);
	if (p->ops->mkdir(p, rel, &err) < 0)
		return audited("mkdir", path,
			       kf_errmap_report("mkdir", path, &err));
	kf_cache_forget(&fsctx()->cache, path);
	kf_log(KF_LOG_DEBUG, "mkdir %s", path);
	return audited("mkdir", path, 0);
}

/*
 * rmdir and unlink: refused on the root and provider directories (with
 * root_errno), else the provider's removal; the cache forgets the path
 * whatever the outcome.
 */
static int remove_path(const char *path, const char *op, int root_errno,
		       int (*fn)(struct kf_provider *, const char *,
				 struct kf_err *))
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	const char *rel;
	int rc;

	if (fsctx()->read_only)
		return -EROFS;
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || !*rel)
		return audited(op, path, -root_errno);
	rc = fn(p, rel, &err) < 0 ? kf_errmap_report(op, path, &err) : 0;
	kf_cache_forget(&fsctx()->cache, path);
	return audited(op, path, rc);
}

static int provider_rmdir(struct kf_provider *p, const char *rel,
			  struct kf_err *err)
{
	return p->ops->rmdir(p, rel, err);
}

static int provider_unlink(struct kf_provider *p, const char *rel,
			   struct kf_err *err)
{
	return p->ops->unlink(p, rel, err);
}

static int kf_rmdir(const char *path)
{
	return remove_path(path, "rmdir", EPERM, provider_rmdir);
}

static int kf_unlink(const char *path)
{
	return remove_path(path, "unlink", EISDIR, provider_unlink);
}

static void fh_free(struct kf_fh *h)
{
	if (!h)
		return;
	kf_secret_free(h->val);
	pthread_mutex_destroy(&h->lock);
	free(h->path);
	free(h);
}

static struct kf_fh *fh_new(struct kf_provider *p, const char *path,
			    const char *rel)
{
	struct kf_fh *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->p = p;
	h->uid = fuse_get_context()->uid;
	h->gid = fuse_get_context()->gid;
	h->pid = fuse_get_context()->pid;
	h->path = strdup(path);
	h->val = kf_secret_new(p->max_value);
	if (!h->path || !h->val) {
		fh_free(h);
		return NULL;
	}
	h->rel = h->path + (rel - path);
	return h;
}

static int writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

static int open_handle(const char *path, struct fuse_file_info *fi)
{
	struct kf_fs *fs = fsctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;
	struct kf_provider *p;
	struct kf_secret *v = NULL;
	struct kf_fh *h;
	const char *rel;
	int rc;

	if (writable(fi->flags) && fs->read_only)
		return -EROFS;
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EISDIR;
	if (kf_cache_getattr(&fs->cache, p, path, rel, 0, &a, &err) < 0)
		return kf_errmap_report("open", path, &err);
	if (a.kind != KF_KIND_FILE)
		return -EISDIR;
	h = fh_new(p, path, rel);
	if (!h)
		return -ENOMEM;
	h->append = !!(fi->flags & O_APPEND);
	if (writable(fi->flags) && (fi->flags & O_TRUNC)) {
		h->dirty = 1;	/* `: > file` sets the empty value */
	} else {
		if (kf_cache_read(&fs->cache, p, path, rel, &v, &err) < 0) {
			fh_free(h);
			return kf_errmap_report("open", path, &err);
		}
		if (kf_secret_set(h->val, v->data, v->len) < 0) {
			kf_secret_free(v);
			fh_free(h);
			return -EFBIG;
		}
		kf_secret_free(v);
	}
	/*
	 * Opens that reach keyfs read and write their handle's copy, never
	 * the kernel's page cache: a writer's uncommitted bytes (and the
	 * i_size its O_TRUNC and writes set) must not be seen by readers of
	 * the same file, and a reader keeps the snapshot it opened.  The
	 * page-cache fast path is the read-only mount's zero-message opens.
	 */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int kf_open(const char *path, struct fuse_file_info *fi)
{
	/* Zero-message opens: the kernel stops sending opens and serves
	 * reads of cached pages itself (read-only, unaudited mounts). */
	CTR_INC(opens);
	if (fsctx()->no_open && !writable(fi->flags))
		return -ENOSYS;
	return audited("open", path, open_handle(path, fi));
}

static int kf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct kf_fs *fs = fsctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_fh *h;
	const char *rel;
	int rc;

	(void)mode;
	if (fs->read_only)
		return -EROFS;
	rc = route(path, &p, &rel);
	if (rc == -ENOENT)
		return -EPERM;
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EEXIST;
	if (p->ops->can_create(p, rel, &err) < 0)
		return audited("create", path,
			       kf_errmap_report("create", path, &err));
	kf_cache_forget(&fs->cache, path);
	h = fh_new(p, path, rel);
	if (!h)
		return -ENOMEM;
	h->created = 1;
	h->pending = 1;
	h->dirty = 1;	/* `touch` alone creates the object */
	h->append = !!(fi->flags & O_APPEND);
	pending_add(fs, path);
	fi->direct_io = 1;	/* see open_handle */
	fi->fh = (uint64_t)(uintptr_t)h;
	return audited("create", path, 0);
}

/* A read without a handle (zero-message opens): serve from the cache. */
static int read_path(const char *path, char *buf, size_t size, off_t off)
{
	struct kf_fs *fs = fsctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_secret *v = NULL;
	const char *rel;
	size_t n = 0;
	int rc;

	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EISDIR;
	if (kf_cache_read(&fs->cache, p, path, rel, &v, &err) < 0)
		return kf_errmap_report("read", path, &err);
	if ((size_t)off < v->len) {
		n = v->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, v->data + off, n);
	}
	kf_secret_free(v);
	return (int)n;
}

static int kf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	size_t n = 0;

	if (off < 0)
		return -EINVAL;
	CTR_INC(reads);
	if (!h)
		return audited("read", path, read_path(path, buf, size, off));
	pthread_mutex_lock(&h->lock);
	if ((size_t)off < h->val->len) {
		n = h->val->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, h->val->data + off, n);
	}
	pthread_mutex_unlock(&h->lock);
	if (fsctx()->audit)
		audited("read", h->path, 0);
	return (int)n;
}

static int kf_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	int rc = (int)size;

	(void)path;
	if (!h)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	CTR_INC(writes);
	pthread_mutex_lock(&h->lock);
	if (h->append)
		off = (off_t)h->val->len;
	if (kf_secret_write(h->val, (size_t)off, buf, size) < 0) {
		rc = -EFBIG;
		h->failed = EFBIG;	/* a partial value never becomes one */
	} else {
		h->dirty = 1;
		h->changes++;
	}
	pthread_mutex_unlock(&h->lock);
	if (fsctx()->audit)
		audited("write", h->path, rc < 0 ? rc : 0);
	return rc;
}

/*
 * Whether the process that is closing the file is being killed by a
 * signal: then its data is an interrupted write and must not be committed.
 * In /proc/PID/stat, field 9 holds the task flags (PF_EXITING = 0x4) and
 * field 52 the exit code, both set before the kernel closes its files.
 */
static int writer_killed(pid_t pid, int *sig)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	long code = 0;
	ssize_t n;
	int fd, field;

	if (pid <= 0 || snprintf(path, sizeof(path), "/proc/%d/stat",
				 (int)pid) >= (int)sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* p + 2 is field 3 (state). */
	p += 2;
	for (field = 3; *p && field <= 52; field++) {
		if (field == 9)
			flags = strtoul(p, NULL, 10);
		if (field == 52)
			code = strtol(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	if (!(flags & 0x4) || (code & 0x7f) == 0)
		return 0;
	*sig = (int)(code & 0x7f);
	return 1;
}

/*
 * Commit the handle's value if it changed.  Caller holds h->lock.
 * A flush that follows no write at all (the close of a dup'ed descriptor
 * right after open(O_TRUNC), as shells do for `>`) leaves the commit to a
 * later flush or to release (final), so no empty intermediate version is
 * ever made; a new file is still created at its first flush.
 */
static int commit_locked(struct kf_fh *h, pid_t closer, int final)
{
	struct kf_err err = KF_ERR_INIT;
	char token[37];
	int rc, sig;

	if (h->failed) {
		rc = -h->failed;
		if (h->dirty)
			kf_log(KF_LOG_WARN, "%s: a write failed (%s); the value "
			       "was not changed", h->path, strerror(h->failed));
		h->dirty = 0;
		return rc;
	}
	if (!h->dirty)
		return 0;
	if (!final && !h->created && h->changes == 0)
		return 0;
	h->dirty = 0;	/* reported once, whatever the outcome */
	h->changes = 0;
	if (writer_killed(closer, &sig)) {
		kf_log(KF_LOG_WARN, "%s: the writer was killed by signal %d; "
		       "the value was not changed", h->path, sig);
		return -EINTR;
	}
	if (kf_uuid4(token, &err) < 0)
		return kf_errmap_report("commit", h->path, &err);
	CTR_INC(commits);
	rc = h->p->ops->commit(h->p, h->rel, h->val->data, h->val->len, token,
			       h->created ? KF_COMMIT_CREATE : 0, &err);
	if (rc < 0)
		CTR_INC(commit_errors);
	if (rc < 0) {
		kf_cache_forget(&fsctx()->cache, h->path);
		return kf_errmap_report("commit", h->path, &err);
	}
	kf_cache_put(&fsctx()->cache, h->p, h->path, h->rel, h->val->data,
		     h->val->len);
	h->created = 0;
	h->committed_once = 1;
	kf_log(KF_LOG_DEBUG, "committed %s [REDACTED %zu bytes]", h->path,
	       h->val->len);
	return 0;
}

static int flush_common(const char *path, struct fuse_file_info *fi,
			int final)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	int rc, did;

	(void)path;
	if (!h)	/* zero-message opens: nothing is ever buffered, so the
		 * kernel may stop sending flushes (ENOSYS) */
		return fsctx()->no_open ? -ENOSYS : 0;
	pthread_mutex_lock(&h->lock);
	rc = commit_locked(h, fuse_get_context()->pid, final);
	did = h->committed_once;
	h->committed_once = 0;
	pthread_mutex_unlock(&h->lock);
	if (rc != 0 || did)
		audited("commit", h->path, rc);
	return rc;
}

static int kf_flush(const char *path, struct fuse_file_info *fi)
{
	return flush_common(path, fi, 0);
}

/* fsync asks for the change now, even a bare O_TRUNC. */
static int kf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return flush_common(path, fi, 1);
}

static int kf_release(const char *path, struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	int rc;

	(void)path;
	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	/* Normally a no-op; commits a bare O_TRUNC (`: > file`). */
	rc = commit_locked(h, 0, 1);
	if (rc < 0)
		kf_log(KF_LOG_WARN, "%s: the change was not saved", h->path);
	if ((rc < 0 || h->committed_once) && fsctx()->audit)
		kf_audit_log(fsctx()->audit, h->uid, h->gid, h->pid, "commit",
			     h->path, rc);
	pthread_mutex_unlock(&h->lock);
	if (h->pending)
		pending_del(fsctx(), h->path);
	fh_free(h);
	return 0;
}

static int truncate_path(const char *path, off_t size,
			 struct fuse_file_info *fi);

static int kf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int rc = truncate_path(path, size, fi);

	/* ftruncate on an open handle is a write, committed later. */
	if (!(fi && fi->fh) || rc < 0)
		audited("truncate", path, rc);
	return rc;
}

static int truncate_path(const char *path, off_t size,
			 struct fuse_file_info *fi)
{
	struct kf_fs *fs = fsctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_secret *v = NULL, *nv = NULL;
	const char *rel;
	char token[37];
	int rc;

	if (size < 0)
		return -EINVAL;
	if (fs->read_only)
		return -EROFS;
	if (fi && fi->fh) {
		struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;

		pthread_mutex_lock(&h->lock);
		rc = kf_secret_truncate(h->val, (size_t)size) < 0 ? -EFBIG : 0;
		if (rc == 0) {
			h->dirty = 1;
			h->changes++;
		}
		pthread_mutex_unlock(&h->lock);
		return rc;
	}
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EISDIR;
	if ((size_t)size > p->max_value)
		return -EFBIG;
	nv = kf_secret_new(p->max_value);
	if (!nv)
		return -ENOMEM;
	if (size > 0) {
		if (kf_cache_read(&fs->cache, p, path, rel, &v, &err) < 0) {
			rc = kf_errmap_report("truncate", path, &err);
			goto out;
		}
		kf_secret_set(nv, v->data, v->len);
	}
	kf_secret_truncate(nv, (size_t)size);
	if (kf_uuid4(token, &err) < 0 ||
	    p->ops->commit(p, rel, nv->data, nv->len, token, 0, &err) < 0) {
		kf_cache_forget(&fs->cache, path);
		rc = kf_errmap_report("truncate", path, &err);
		goto out;
	}
	kf_cache_put(&fs->cache, p, path, rel, nv->data, nv->len);
	rc = 0;
out:
	kf_secret_free(v);
	kf_secret_free(nv);
	return rc;
}

/* The operators' counters, as JSON (getfattr -n user.keyfs.stats). */
static int stats_json(struct kf_fs *fs, struct kf_buf *out)
{
	struct kf_cache_stats c;
	int rc = 0;

	kf_cache_stats(&fs->cache, &c);
	rc |= kf_buf_addf(out, "{\"uptime_s\":%lld,\"mode\":\"%s\",",
			  (long long)(time(NULL) - fs->mount_time),
			  fs->no_open ? "read-only, page cache" :
			  fs->direct_io ? "direct_io" :
			  fs->read_only ? "read-only" : "read-write");
	rc |= kf_buf_addf(out,
			  "\"fuse\":{\"opens\":%llu,\"reads\":%llu,"
			  "\"writes\":%llu,\"commits\":%llu,"
			  "\"commit_errors\":%llu},",
			  (unsigned long long)CTR_GET(opens),
			  (unsigned long long)CTR_GET(reads),
			  (unsigned long long)CTR_GET(writes),
			  (unsigned long long)CTR_GET(commits),
			  (unsigned long long)CTR_GET(commit_errors));
	rc |= kf_buf_addf(out,
			  "\"cache\":{\"hits\":%llu,\"misses\":%llu,"
			  "\"waits\":%llu,\"stale\":%llu,\"attr_hits\":%llu,"
			  "\"attr_misses\":%llu,\"negative_hits\":%llu,"
			  "\"refreshes\":%llu,\"prefetched\":%llu,"
			  "\"changes\":%llu,"
			  "\"evictions\":%llu,\"errors\":%llu,"
			  "\"entries\":%llu,\"bytes\":%llu},\"api\":",
			  (unsigned long long)c.hits,
			  (unsigned long long)c.misses,
			  (unsigned long long)c.waits,
			  (unsigned long long)c.stale,
			  (unsigned long long)c.attr_hits,
			  (unsigned long long)c.attr_misses,
			  (unsigned long long)c.neg_hits,
			  (unsigned long long)c.refreshes,
			  (unsigned long long)c.prefetched,
			  (unsigned long long)c.changes,
			  (unsigned long long)c.evictions,
			  (unsigned long long)c.errors,
			  (unsigned long long)c.entries,
			  (unsigned long long)c.bytes);
	rc |= kf_stats_json(out);
	rc |= kf_buf_adds(out, "}\n");
	return rc ? -1 : 0;
}

static int kf_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf out;
	const char *rel;
	int rc;

	if (strncmp(name, "user.", 5) != 0)
		return -ENODATA;
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p && strcmp(name, "user.keyfs.stats") != 0)
		return -ENODATA;
	kf_buf_init(&out, XATTR_MAX);
	if (!p) {
		if (stats_json(fsctx(), &out) < 0)
			rc = -ENOMEM;
		else
			rc = size == 0 ? (int)out.len :
			     out.len > size ? -ERANGE :
			     (memcpy(value, kf_buf_str(&out), out.len),
			      (int)out.len);
	} else if (p->ops->getxattr(p, rel, name, &out, &err) < 0) {
		rc = kf_errmap_report("getxattr", path, &err);
	} else if (size == 0) {
		rc = (int)out.len;
	} else if (out.len > size) {
		rc = -ERANGE;
	} else {
		memcpy(value, kf_buf_str(&out), out.len);
		rc = (int)out.len;
	}
	kf_buf_release(&out);
	return rc;
}

static int kf_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	const char *rel;
	int rc;

	(void)flags;
	if (fsctx()->read_only)
		return -EROFS;
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP;
	if (size > XATTR_MAX)
		return -E2BIG;
	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p)
		return -ENOTSUP;
	rc = p->ops->setxattr(p, rel, name, value, size, &err) < 0 ?
		     kf_errmap_report("setxattr", path, &err) : 0;
	kf_cache_forget(&fsctx()->cache, path);
	return audited("setxattr", path, rc);
}

static int kf_listxattr(const char *path, char *list, size_t size)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf out;
	const char *rel;
	int rc;

	rc = route(path, &p, &rel);
	if (rc)
		return rc;
	kf_buf_init(&out, XATTR_MAX);
	if (!p)
		kf_buf_add(&out, "user.keyfs.stats", sizeof("user.keyfs.stats"));
	if (p && p->ops->listxattr(p, rel, &out, &err) < 0)
		rc = kf_errmap_report("listxattr", path, &err);
	else if (size == 0)
		rc = (int)out.len;
	else if (out.len > size)
		rc = -ERANGE;
	else {
		memcpy(list, kf_buf_str(&out), out.len);
		rc = (int)out.len;
	}
	kf_buf_release(&out);
	return rc;
}

static int kf_removexattr(const char *path, const char *name)
{
	(void)path;
	(void)name;
	return fsctx()->read_only ? -EROFS : -ENOTSUP;
}

static int kf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

static int kf_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	(void)path;
	(void)uid;
	(void)gid;
	(void)fi;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

/* Times come from the provider; accepting utimens keeps `touch` working. */
static int kf_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	(void)path;
	(void)tv;
	(void)fi;
	return fsctx()->read_only ? -EROFS : 0;
}

static int kf_rename(const char *from, const char *to, unsigned int flags)
{
	(void)from;
	(void)to;
	(void)flags;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

static int kf_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

static int kf_symlink(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

static int kf_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)path;
	(void)mode;
	(void)dev;
	return fsctx()->read_only ? -EROFS : -EPERM;
}

static int kf_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_namemax = 255;
	return 0;
}

static void *kf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct kf_fs *fs = fuse_get_context()->private_data;
	double t = fs->ttl / 2.0;

	if (fs->no_open && !(conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
		fs->no_open = 0;
	if (fs->no_open) {
		/* Read-only: the kernel may keep names, attributes and pages
		 * for half a ttl; the refresher invalidates them on change. */
		cfg->entry_timeout = t < 1 ? 1 : t;
		cfg->attr_timeout = t < 1 ? 1 : t;
		cfg->negative_timeout = 1;
	} else {
		/* Writable: sizes change with every commit and a stale i_size
		 * would cut reads short, so the kernel asks every time (the
		 * value cache keeps that cheap). */
		cfg->entry_timeout = 0;
		cfg->attr_timeout = 0;
		cfg->negative_timeout = 0;
	}
	cfg->hard_remove = 1;	/* no .fuse_hidden renames: rename is EPERM */
	cfg->use_ino = 0;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	return fs;
}

static pthread_t refresher;
static pthread_mutex_t refresher_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refresher_cond = PTHREAD_COND_INITIALIZER;
static int refresher_stop;	/* protected by refresher_lock */
static int refresher_on;

static void invalidate(void *ctx, const char *path)
{
	struct kf_fs *fs = ctx;

	if (fs->fuse && fs->no_open)
		(void)fuse_invalidate_path(fs->fuse, path);
}

static void *refresher_main(void *arg)
{
	struct kf_fs *fs = arg;
	struct timespec ts;

	pthread_mutex_lock(&refresher_lock);
	while (!refresher_stop) {
		pthread_mutex_unlock(&refresher_lock);
		kf_cache_refresh_once(&fs->cache, invalidate, fs);
		pthread_mutex_lock(&refresher_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!refresher_stop)
			pthread_cond_timedwait(&refresher_cond, &refresher_lock,
					       &ts);
	}
	pthread_mutex_unlock(&refresher_lock);
	return NULL;
}

int kf_fs_start_refresher(struct kf_fs *fs)
{
	if (pthread_create(&refresher, NULL, refresher_main, fs) != 0)
		return -1;
	refresher_on = 1;
	return 0;
}

void kf_fs_stop_refresher(struct kf_fs *fs)
{
	(void)fs;
	if (!refresher_on)
		return;
	pthread_mutex_lock(&refresher_lock);
	refresher_stop = 1;
	pthread_cond_signal(&refresher_cond);
	pthread_mutex_unlock(&refresher_lock);
	pthread_join(refresher, NULL);
	refresher_on = 0;
}

const struct fuse_operations kf_fs_ops = {
	.init = kf_init,
	.getattr = kf_getattr,
	.readdir = kf_readdir,
	.mkdir = kf_mkdir,
	.rmdir = kf_rmdir,
	.unlink = kf_unlink,
	.open = kf_open,
	.create = kf_create,
	.read = kf_read,
	.write = kf_write,
	.flush = kf_flush,
	.fsync = kf_fsync,
	.release = kf_release,
	.truncate = kf_truncate,
	.getxattr = kf_getxattr,
	.setxattr = kf_setxattr,
	.listxattr = kf_listxattr,
	.removexattr = kf_removexattr,
	.chmod = kf_chmod,
	.chown = kf_chown,
	.utimens = kf_utimens,
	.rename = kf_rename,
	.link = kf_link,
	.symlink = kf_symlink,
	.mknod = kf_mknod,
	.statfs = kf_statfs,
};
