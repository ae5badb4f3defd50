/*
 * The FUSE operations: each handler routes the path, calls the cache, a
 * handle or the provider, and returns 0 or -errno (cloud errors through
 * fs/errmap.c only).  Nothing here is provider-specific, and no value is
 * ever logged.
 */
#include "ops.h"
#include "attr.h"
#include "view.h"

#include "audit.h"
#include "core/log.h"
#include "errmap.h"
#include "handle.h"
#include "iobuf.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct kf_fs *kf_fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

/* How long a write waits for page-cache readers to close. */
#define KF_WRITE_WAIT_MS 200

static struct kf_fh *fh_of(const struct fuse_file_info *fi)
{
	if (!fi || kf_held_fh_of(fi->fh))
		return NULL;
	return (struct kf_fh *)(uintptr_t)fi->fh;
}

/* An open held file (temporary names, fs/held.c), or NULL. */
static struct kf_held_fh *held_of(const struct fuse_file_info *fi)
{
	return fi ? kf_held_fh_of(fi->fh) : NULL;
}

static struct kf_who caller(void)
{
	struct fuse_context *ctx = fuse_get_context();
	struct kf_who who = { ctx->uid, ctx->gid, ctx->pid };

	return who;
}

void kf_fs_init(struct kf_fs *fs)
{
	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->pending_lock, NULL);
	kf_modes_init(&fs->modes);
	kf_held_init(&fs->held);
	kf_events_init(&fs->events);
	fs->mount_time = time(NULL);
}

void kf_fs_release(struct kf_fs *fs)
{
	kf_cache_release(&fs->cache);
	kf_fh_pending_release(fs);
	kf_modes_release(&fs->modes);
	kf_held_release(&fs->held);
	kf_kview_release(&fs->kview);
	kf_events_release(&fs->events);
	pthread_mutex_destroy(&fs->pending_lock);
}

int kf_fs_audited_version(const char *op, const char *path, int rc,
			  const char *version)
{
	struct fuse_context *ctx = fuse_get_context();
	struct kf_fs *fs = ctx->private_data;

	if (fs->audit)
		kf_audit_log(fs->audit, ctx->uid, ctx->gid, ctx->pid, op, path,
			     rc < 0 ? rc : 0, version);
	return rc;
}

int kf_fs_audited(const char *op, const char *path, int rc)
{
	return kf_fs_audited_version(op, path, rc, NULL);
}

/* A field view of a changed value (kf_view_invalidate). */
static void invalidate_view(void *ctx, const char *path)
{
	struct kf_fs *fs = ctx;

	if (fs->page_cache)
		kf_kview_changed(&fs->kview, path);
	if (fs->fuse)
		(void)fuse_invalidate_path(fs->fuse, path);
}

void kf_fs_invalidate(struct kf_fs *fs, const char *path)
{
	if (!fs->no_open && !fs->page_cache)
		return;	    /* every read reaches keyfs: nothing is kept */
	if (fs->page_cache) /* read-only mounts have no opens to steer */
		kf_kview_changed(&fs->kview, path);
	if (fs->fuse)
		(void)fuse_invalidate_path(fs->fuse, path);
	kf_view_invalidate(path, invalidate_view, fs);
}

int kf_fs_route(const char *path, struct kf_provider **p, const char **rel)
{
	return kf_tree_route(&kf_fs_ctx()->tree, path, p, rel);
}

/* Route to a value file: -EISDIR for the root and provider directories. */
static int route_file(const char *path, struct kf_provider **p,
		      const char **rel)
{
	int rc = kf_fs_route(path, p, rel);

	if (rc == 0 && (!*p || !**rel))
		rc = -EISDIR;
	return rc;
}

static int kf_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };
	struct kf_fh *h = fh_of(fi);
	struct kf_provider *p;
	const char *rel;
	int rc = kf_events_fs_getattr(fs, path, st);

	if (rc != 1)
		return rc;
	if (h && !h->view) {
		pthread_mutex_lock(&h->lock);
		a.kind = KF_KIND_FILE;
		a.size_known = 1;
		a.size = h->writer && fs->page_cache ? h->base_len :
						       h->val->len;
		pthread_mutex_unlock(&h->lock);
		kf_attr_shared_size(fs, h->path, &a);
		kf_attr_fill_stat(fs, &a, st);
		kf_modes_apply(&fs->modes, h->path, st);
		return 0;
	}
	if (held_of(fi) || kf_held_stat(&fs->held, path, &a) == 0) {
		if (held_of(fi)) {
			a.kind = KF_KIND_FILE;
			a.size_known = 1;
			a.size = kf_held_size(&fs->held, held_of(fi));
		}
		kf_attr_fill_stat(fs, &a, st);
		return 0;
	}
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	if (p && *rel && kf_attr_is_view(rel))
		return kf_attr_view_stat(fs, p, path, rel, st);
	if (p && *rel &&
	    kf_cache_getattr(&fs->cache, p, path, rel, fs->exact_sizes, &a,
			     &err) < 0) {
		/* Created and not yet committed: an empty file. */
		if (err.code != KF_E_NOTFOUND || !kf_fh_pending_has(fs, path))
			return kf_errmap_report("getattr", path, &err);
		memset(&a, 0, sizeof(a));
		a.kind = KF_KIND_FILE;
		a.size_known = 1;
	}
	kf_attr_unknown_size(fs, p, &a);
	if (a.kind == KF_KIND_FILE)
		kf_attr_shared_size(fs, path, &a);
	kf_attr_fill_stat(fs, &a, st);
	kf_modes_apply(&fs->modes, path, st);
	return 0;
}

struct list_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	const struct kf_fs *fs;
	const struct kf_provider *p;
};

static int list_one(void *vctx, const char *name, const struct kf_attr *a)
{
	struct list_ctx *c = vctx;
	struct kf_attr known;
	struct stat st;

	if (!a)
		return c->filler(c->buf, name, NULL, 0, 0);
	known = *a;
	kf_attr_unknown_size(c->fs, c->p, &known);
	kf_attr_fill_stat(c->fs, &known, &st);
	return c->filler(c->buf, name, &st, 0, 0);
}

static int kf_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct list_ctx c = { buf, filler, fs, NULL };
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf token, next;
	const char *rel;
	int rc, pages = 0;

	(void)off;
	(void)fi;
	(void)flags;
	rc = kf_events_fs_readdir(path, buf, filler);
	if (rc != 1)
		return rc;
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	c.p = p;
	if (p && *rel && kf_attr_is_view(rel)) {
		struct kf_view v;

		kf_view_parse(rel, &v);
		return kf_fs_audited("readdir", path,
				     kf_view_list(fs, p, path, rel, &v,
						  list_one, &c));
	}
	if (!p) {
		for (size_t i = 0; i < fs->tree.n; i++)
			filler(buf, fs->tree.providers[i]->name, NULL, 0, 0);
		filler(buf, &KF_EVENTS_DIR[1], NULL, 0, 0); /* no "/" */
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
	if (rc == 0)
		kf_held_list(&fs->held, path, list_one, &c);
	kf_buf_release(&token);
	kf_buf_release(&next);
	return kf_fs_audited("readdir", path, rc);
}

static int kf_mkdir(const char *path, mode_t mode)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	const char *rel;
	int rc;

	(void)mode; /* modes come from -o umask */
	if (kf_fs_ctx()->read_only)
		return -EROFS;
	rc = kf_events_fs_refuse(kf_fs_ctx(), path);
	if (rc)
		return rc;
	rc = kf_fs_route(path, &p, &rel);
	if (rc == -ENOENT)
		return -EPERM; /* new top-level names are providers */
	if (rc)
		return rc;
	if (!p || !*rel)
		return kf_fs_audited("mkdir", path, -EEXIST);
	if (kf_attr_is_view(rel))
		return kf_fs_audited("mkdir", path,
				     kf_attr_view_create_errno(rel));
	kf_cache_forget(&kf_fs_ctx()->cache, path);
	if (p->ops->mkdir(p, rel, &err) < 0)
		return kf_fs_audited("mkdir", path,
				     kf_errmap_report("mkdir", path, &err));
	kf_cache_forget(&kf_fs_ctx()->cache, path);
	kf_modes_forget(&kf_fs_ctx()->modes, path); /* new: the defaults */
	kf_log(KF_LOG_DEBUG, "mkdir %s", path);
	return kf_fs_audited("mkdir", path, 0);
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

	if (kf_fs_ctx()->read_only || kf_view_refuse(path))
		return -EROFS;
	rc = kf_events_fs_refuse(kf_fs_ctx(), path);
	if (rc)
		return rc;
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || !*rel)
		return kf_fs_audited(op, path, -root_errno);
	rc = fn(p, rel, &err) < 0 ? kf_errmap_report(op, path, &err) : 0;
	kf_cache_forget(&kf_fs_ctx()->cache, path);
	if (rc == 0) {
		kf_modes_forget(&kf_fs_ctx()->modes, path);
		kf_cache_forget_versions(&kf_fs_ctx()->cache, path);
	}
	return kf_fs_audited(op, path, rc);
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
	if (kf_held_unlink(&kf_fs_ctx()->held, path) == 0)
		return kf_fs_audited("unlink", path, 0);
	return remove_path(path, "unlink", EISDIR, provider_unlink);
}

/*
 * How an open of a page-cache mount reads.  Writers use direct I/O: their
 * uncommitted bytes never enter the page cache, and the size the kernel
 * shows readers stays the committed one (keyfs answers it, and O_TRUNC
 * reaches keyfs as a truncate, not as an emptied inode).  Readers use the
 * page cache when no writer is open: pages kept from an earlier open are
 * reused when they hold the very value this open reads; otherwise the
 * kernel's pages and attributes of the file are dropped before the open
 * returns, so its first read asks keyfs for both.
 */
static void choose_cache(struct kf_fs *fs, struct kf_fh *h,
			 struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (!fs->page_cache)
		return;
	if (h->writer) {
		kf_kview_writer(&fs->kview, h->path, 1);
		kf_fh_fresh_add(fs, h, fuse_get_context()->pid);
		return;
	}
	fi->noflush = 1; /* nothing to commit: close need not ask keyfs */
	h->stamp = kf_kview_stamp(&fs->kview, h->val->data, h->val->len);
	switch (kf_kview_open(&fs->kview, h->path, h->stamp, h->val->len)) {
	case KF_KVIEW_DIRECT:
		return;
	case KF_KVIEW_KEEP:
		fi->keep_cache = 1;
		break;
	case KF_KVIEW_INVAL:
		if (!fs->fuse || fuse_invalidate_path(fs->fuse, h->path) < 0) {
			kf_kview_reader_done(&fs->kview, h->path);
			return;
		}
		break;
	}
	h->cached = 1;
	fi->direct_io = 0;
}

static int open_handle(const char *path, struct fuse_file_info *fi)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_who who = caller();
	struct kf_provider *p;
	struct kf_fh *h;
	const char *rel;
	int rc;

	if (kf_fh_writable(fi->flags) && fs->read_only)
		return -EROFS;
	rc = route_file(path, &p, &rel);
	if (rc == 0 && kf_attr_is_view(rel)) {
		struct kf_view v;

		kf_view_parse(rel, &v);
		rc = kf_fh_writable(fi->flags) ?
			     -EROFS :
			     kf_view_open(fs, p, path, rel, &v, &who, &h);
		if (rc == 0)
			h->view = 1;
	} else if (rc == 0) {
		rc = kf_fh_open(fs, p, path, rel, fi->flags, &who, &h);
	}
	if (rc)
		return rc;
	/*
	 * Elsewhere, opens that reach keyfs read and write their handle's
	 * copy, never the kernel's page cache (the read-only mount's fast
	 * path is its zero-message opens).
	 */
	choose_cache(fs, h, fi);
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

/* Open a held file (fs/held.c): 1 when path is not held, else 0 or
 * -errno. */
static int open_held(const char *path, struct fuse_file_info *fi)
{
	struct kf_held_fh *fh;
	int rc = kf_held_open(&kf_fs_ctx()->held, path, fi->flags, &fh);

	if (rc == -ENOENT)
		return 1;
	if (rc == 0) {
		fi->direct_io = 1; /* see open_handle */
		fi->fh = kf_held_fh_tag(fh);
	}
	return rc;
}

static int kf_open(const char *path, struct fuse_file_info *fi)
{
	int rc;

	/* Zero-message opens: the kernel stops sending opens and serves
	 * reads of cached pages itself (read-only, unaudited mounts). */
	KF_FS_COUNT(kf_fs_ctx(), opens);
	if (kf_fs_ctx()->no_open && !kf_fh_writable(fi->flags))
		return -ENOSYS;
	rc = kf_events_fs_open(kf_fs_ctx(), path, fi);
	if (rc != 1)
		return rc;
	rc = open_held(path, fi);
	if (rc != 1)
		return kf_fs_audited("open", path, rc);
	rc = open_handle(path, fi);
	return kf_fs_audited_version("open", path, rc,
				     rc == 0 ? fh_of(fi)->version : NULL);
}

/* A new temporary name is held in memory (fs/held.c): 1 when path is not
 * for holding, else 0 or -errno. */
static int create_held(struct kf_fs *fs, struct kf_provider *p,
		       const char *path, const char *rel,
		       struct fuse_file_info *fi)
{
	struct kf_held_fh *fh;
	int rc = kf_held_try_create(fs, p, path, rel, fi->flags, &fh);

	if (rc == 0) {
		fi->direct_io = 1; /* see open_handle */
		fi->fh = kf_held_fh_tag(fh);
	}
	return rc;
}

static int kf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_who who = caller();
	struct kf_provider *p;
	struct kf_fh *h;
	const char *rel;
	int rc;

	(void)mode;
	if (fs->read_only)
		return -EROFS;
	rc = kf_events_fs_refuse(fs, path);
	if (rc)
		return rc;
	rc = kf_fs_route(path, &p, &rel);
	if (rc == -ENOENT)
		return -EPERM;
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EEXIST;
	if (kf_attr_is_view(rel))
		return kf_fs_audited("create", path,
				     kf_attr_view_create_errno(rel));
	rc = create_held(fs, p, path, rel, fi);
	if (rc != 1)
		return kf_fs_audited("create", path, rc);
	rc = kf_fh_create(fs, p, path, rel, fi->flags, &who, &h);
	if (rc == 0) {
		kf_modes_forget(&fs->modes, path); /* new: the defaults */
		choose_cache(fs, h, fi);	   /* a writer */
		fi->fh = (uint64_t)(uintptr_t)h;
	}
	return kf_fs_audited("create", path, rc);
}

/* A read without a handle (zero-message opens): serve from the cache. */
static int read_path(const char *path, char *buf, size_t size, off_t off)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_provider *p;
	struct kf_secret *v = NULL;
	const char *rel;
	size_t n;
	int rc;

	rc = route_file(path, &p, &rel);
	if (rc)
		return rc;
	rc = kf_fs_value(fs, p, path, rel, "read", &v);
	if (rc < 0)
		return rc;
	n = kf_fh_copy(v, off, buf, size);
	kf_secret_free(v);
	return (int)n;
}

static int kf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct kf_fh *h = fh_of(fi);
	size_t n;
	int rc = kf_events_fs_read(kf_fs_ctx(), path, buf, size, off, fi);

	if (rc != 1)
		return rc;
	if (off < 0)
		return -EINVAL;
	KF_FS_COUNT(kf_fs_ctx(), reads);
	if (held_of(fi))
		return kf_fs_audited("read", path,
				     (int)kf_held_read(&kf_fs_ctx()->held,
						       held_of(fi), buf, size,
						       off));
	if (!h)
		return kf_fs_audited("read", path,
				     read_path(path, buf, size, off));
	n = kf_fh_read(h, buf, size, off);
	if (kf_fs_ctx()->audit)
		kf_fs_audited_version("read", h->path, 0, h->version);
	return (int)n;
}

static int kf_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct kf_fh *h = fh_of(fi);
	int rc;

	(void)path;
	if (off < 0)
		return -EINVAL;
	if (held_of(fi))
		return kf_fs_audited("write", path,
				     kf_held_write(&kf_fs_ctx()->held,
						   held_of(fi), buf, size,
						   off));
	if (!h)
		return -EBADF;
	KF_FS_COUNT(kf_fs_ctx(), writes);
	/* The kernel grows its size of the file when this returns: let
	 * page-cache readers of it finish first (see kview.h). */
	if (kf_fs_ctx()->page_cache)
		(void)kf_kview_wait_readers(&kf_fs_ctx()->kview, h->path,
					    KF_WRITE_WAIT_MS);
	rc = kf_fh_write(h, fuse_get_context()->pid, buf, size, off);
	if (kf_fs_ctx()->audit)
		kf_fs_audited("write", h->path, rc < 0 ? rc : 0);
	return rc;
}

static int flush_common(struct fuse_file_info *fi, int final)
{
	struct kf_fh *h = fh_of(fi);
	int rc, did;

	if (held_of(fi)) /* in memory: nothing to commit */
		return 0;
	if (!h) /* zero-message opens: nothing is ever buffered, so the
		 * kernel may stop sending flushes (ENOSYS) */
		return kf_fs_ctx()->no_open ? -ENOSYS : 0;
	rc = kf_fh_flush(kf_fs_ctx(), h, fuse_get_context()->pid, final, &did);
	if (rc != 0 || did)
		kf_fs_audited("commit", h->path, rc);
	return rc;
}

static int kf_flush(const char *path, struct fuse_file_info *fi)
{
	if (kf_events_node(path))
		return 0;
	return flush_common(fi, 0);
}

/* fsync asks for the change now, even a bare O_TRUNC. */
static int kf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	if (kf_events_node(path))
		return 0;
	return flush_common(fi, 1);
}

static int kf_release(const char *path, struct fuse_file_info *fi)
{
	struct kf_fh *h = fh_of(fi);

	if (kf_events_fs_release(kf_fs_ctx(), path, fi) != 1)
		return 0;
	if (h && h->cached)
		kf_kview_reader_done(&kf_fs_ctx()->kview, h->path);
	if (h && h->writer && kf_fs_ctx()->page_cache) {
		kf_fh_fresh_del(kf_fs_ctx(), h);
		/* Its writes may have grown the kernel's size. */
		kf_kview_writer(&kf_fs_ctx()->kview, h->path, -1);
		kf_fs_invalidate(kf_fs_ctx(), h->path);
	}
	if (h)
		kf_fh_release(kf_fs_ctx(), h);
	kf_held_close(&kf_fs_ctx()->held, held_of(fi));
	return 0;
}

static int truncate_path(const char *path, off_t size,
			 struct fuse_file_info *fi)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_provider *p;
	const char *rel;
	int rc;

	if (size < 0)
		return -EINVAL;
	if (fs->read_only || kf_view_refuse(path))
		return -EROFS;
	rc = kf_events_fs_refuse(fs, path);
	if (rc)
		return rc;
	if (fh_of(fi))
		return kf_fh_truncate(fh_of(fi), fuse_get_context()->pid, size);
	rc = kf_held_truncate(&fs->held, held_of(fi), path, size);
	if (rc != -ENOENT || held_of(fi))
		return rc;
	if (size == 0 && fs->page_cache) {
		/* O_TRUNC of a writer just opened (see kf_fh_fresh_add). */
		struct kf_fh *h =
			kf_fh_fresh_take(fs, path, fuse_get_context()->pid);

		if (h)
			return kf_fh_truncate(h, fuse_get_context()->pid, 0);
	}
	rc = route_file(path, &p, &rel);
	if (rc)
		return rc;
	return kf_fh_truncate_path(fs, p, path, rel, size);
}

static int kf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int rc = truncate_path(path, size, fi);

	/* ftruncate on an open handle is a write, committed later. */
	if (!fh_of(fi) || rc < 0)
		kf_fs_audited("truncate", path, rc);
	return rc;
}

/* What keyfs refuses: EROFS on a read-only mount, else err (0 accepts).
 * These handlers ignore their arguments. */
static int refuse(int err)
{
	return kf_fs_ctx()->read_only ? -EROFS : err;
}

/* chmod (uid and gid -1) or chown (mode -1) of path or an open file:
 * kept per path on this host (fs/modes.c); the kernel has checked who
 * may (default_permissions). */
static int change_owner_or_mode(const char *op, const char *path,
				struct fuse_file_info *fi, mode_t mode,
				uid_t uid, gid_t gid)
{
	struct kf_fs *fs = kf_fs_ctx();
	struct kf_fh *h = fh_of(fi);
	const char *name = h ? h->path : path;
	struct stat st;
	int rc;

	if (fs->read_only || kf_view_refuse(path))
		return -EROFS;
	rc = kf_events_fs_refuse(fs, path);
	if (rc)
		return rc;
	rc = kf_getattr(path, &st, fi);
	if (rc == 0 && mode != (mode_t)-1)
		rc = kf_modes_chmod(&fs->modes, name, &st, mode);
	else if (rc == 0)
		rc = kf_modes_chown(&fs->modes, name, &st, uid, gid,
				    caller().uid);
	return kf_fs_audited(op, name, rc);
}

static int kf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return change_owner_or_mode("chmod", path, fi, mode, (uid_t)-1,
				    (gid_t)-1);
}

static int kf_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	return change_owner_or_mode("chown", path, fi, (mode_t)-1, uid, gid);
}

/* Times come from the provider; accepting utimens keeps `touch` working. */
static int kf_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	int rc;

	(void)tv;
	(void)fi;
	rc = kf_events_fs_refuse(kf_fs_ctx(), path);
	if (rc)
		return rc;
	return kf_view_refuse(path) ? -EROFS : refuse(0);
}

/* Only a held file may be renamed (fs/held.c): onto a name in its
 * directory, which then gets its value. */
static int kf_rename(const char *from, const char *to, unsigned int flags)
{
	struct kf_who who = caller();
	int rc;

	if (kf_fs_ctx()->read_only || kf_view_refuse(from) ||
	    kf_view_refuse(to))
		return -EROFS;
	if (kf_events_fs_refuse(kf_fs_ctx(), from) ||
	    kf_events_fs_refuse(kf_fs_ctx(), to))
		return -EPERM;
	rc = kf_held_rename(kf_fs_ctx(), from, to, flags, &who);
	if (rc == -EPERM || rc == -EINVAL)
		return rc; /* refused before any provider is asked */
	if (rc == 0)	   /* the mode set on the temporary file moves along */
		kf_modes_rename(&kf_fs_ctx()->modes, from, to);
	return kf_fs_audited("rename", to, rc);
}

static int kf_link(const char *from, const char *to)
{
	return refuse(-EPERM);
}

static int kf_symlink(const char *from, const char *to)
{
	return refuse(-EPERM);
}

static int kf_mknod(const char *path, mode_t mode, dev_t dev)
{
	return refuse(-EPERM);
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
	} else if (fs->page_cache) {
		/* Writable with the page cache: keyfs invalidates what it
		 * changes; a second bounds what changes elsewhere. */
		cfg->entry_timeout = 1;
		cfg->attr_timeout = 1;
		cfg->negative_timeout = 0;
	} else {
		/* Every read reaches keyfs: the kernel asks every time (the
		 * value cache keeps that cheap). */
		cfg->entry_timeout = 0;
		cfg->attr_timeout = 0;
		cfg->negative_timeout = 0;
	}
	cfg->hard_remove = 1; /* no .fuse_hidden renames: values are not
			       * renamed */
	cfg->use_ino = 0;
	/* On page-cache mounts O_TRUNC must reach keyfs as a truncate of
	 * the writer's handle, not as an inode the kernel empties itself
	 * (its size is the one page-cache readers see). */
	if (fs->page_cache)
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	else if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	return fs;
}

/* read_buf and write_buf: kf_read and kf_write through buffers that
 * leave no copy of a value in libfuse's memory (fs/iobuf.c). */
struct io_call {
	const char *path;
	off_t off;
	struct fuse_file_info *fi;
};

static int read_fill(char *buf, size_t size, void *ctx)
{
	struct io_call *c = ctx;

	return kf_read(c->path, buf, size, c->off, c->fi);
}

static int kf_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct io_call c = { path, off, fi };

	return kf_iobuf_reply(bufp, size, read_fill, &c);
}

static int write_put(const char *data, size_t n, void *ctx)
{
	struct io_call *c = ctx;

	return kf_write(c->path, data, n, c->off, c->fi);
}

static int kf_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
			struct fuse_file_info *fi)
{
	struct io_call c = { path, off, fi };

	return kf_iobuf_take(buf, write_put, &c);
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
	.read_buf = kf_read_buf,
	.write_buf = kf_write_buf,
	.flush = kf_flush,
	.fsync = kf_fsync,
	.release = kf_release,
	.truncate = kf_truncate,
	.getxattr = kf_fs_getxattr,
	.setxattr = kf_fs_setxattr,
	.listxattr = kf_fs_listxattr,
	.removexattr = kf_fs_removexattr,
	.chmod = kf_chmod,
	.chown = kf_chown,
	.utimens = kf_utimens,
	.rename = kf_rename,
	.link = kf_link,
	.symlink = kf_symlink,
	.mknod = kf_mknod,
	.statfs = kf_statfs,
	.poll = kf_events_fs_poll,
};
