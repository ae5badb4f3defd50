/*
 * FUSE handlers.  Each returns 0 or -errno; cloud errors go through
 * fs/errmap.c.  A value is read into a handle at open and written back
 * once, all or nothing, at flush/fsync.  Values are never logged.
 */
#include "ops.h"

#include "crypto.h"
#include "errmap.h"
#include "log.h"

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

void kf_fs_release(struct kf_fs *fs)
{
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
	if (p && *rel && p->ops->getattr(p, rel, &a, &err) < 0) {
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
	return rc;
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
		return -EEXIST;
	if (p->ops->mkdir(p, rel, &err) < 0)
		return kf_errmap_report("mkdir", path, &err);
	kf_log(KF_LOG_DEBUG, "mkdir %s", path);
	return 0;
}

static int kf_rmdir(const char *path)
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
		return -EPERM;
	if (p->ops->rmdir(p, rel, &err) < 0)
		return kf_errmap_report("rmdir", path, &err);
	return 0;
}

static int kf_unlink(const char *path)
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
		return -EISDIR;
	if (p->ops->unlink(p, rel, &err) < 0)
		return kf_errmap_report("unlink", path, &err);
	return 0;
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

static int kf_open(const char *path, struct fuse_file_info *fi)
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
	if (p->ops->getattr(p, rel, &a, &err) < 0)
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
		if (p->ops->read(p, rel, &v, &err) < 0) {
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
	/* Unknown sizes cannot go through the page cache (it trusts i_size). */
	fi->direct_io = fs->direct_io || !a.size_known;
	fi->keep_cache = 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
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
		return kf_errmap_report("create", path, &err);
	h = fh_new(p, path, rel);
	if (!h)
		return -ENOMEM;
	h->created = 1;
	h->pending = 1;
	h->dirty = 1;	/* `touch` alone creates the object */
	h->append = !!(fi->flags & O_APPEND);
	pending_add(fs, path);
	fi->direct_io = fs->direct_io;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int kf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	size_t n = 0;

	(void)path;
	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if ((size_t)off < h->val->len) {
		n = h->val->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, h->val->data + off, n);
	}
	pthread_mutex_unlock(&h->lock);
	return (int)n;
}

static int kf_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	int rc = (int)size;

	(void)path;
	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->append)
		off = (off_t)h->val->len;
	if (kf_secret_write(h->val, (size_t)off, buf, size) < 0) {
		rc = -EFBIG;
		h->failed = EFBIG;	/* a partial value never becomes one */
	} else {
		h->dirty = 1;
	}
	pthread_mutex_unlock(&h->lock);
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

/* Commit the handle's value if it changed.  Caller holds h->lock. */
static int commit_locked(struct kf_fh *h, pid_t closer)
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
	h->dirty = 0;	/* reported once, whatever the outcome */
	if (writer_killed(closer, &sig)) {
		kf_log(KF_LOG_WARN, "%s: the writer was killed by signal %d; "
		       "the value was not changed", h->path, sig);
		return -EINTR;
	}
	if (kf_uuid4(token, &err) < 0)
		return kf_errmap_report("commit", h->path, &err);
	rc = h->p->ops->commit(h->p, h->rel, h->val->data, h->val->len, token,
			       h->created ? KF_COMMIT_CREATE : 0, &err);
	if (rc < 0)
		return kf_errmap_report("commit", h->path, &err);
	h->created = 0;
	kf_log(KF_LOG_DEBUG, "committed %s [REDACTED %zu bytes]", h->path,
	       h->val->len);
	return 0;
}

static int kf_flush(const char *path, struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;
	int rc;

	(void)path;
	pthread_mutex_lock(&h->lock);
	rc = commit_locked(h, fuse_get_context()->pid);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int kf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return kf_flush(path, fi);
}

static int kf_release(const char *path, struct fuse_file_info *fi)
{
	struct kf_fh *h = (struct kf_fh *)(uintptr_t)fi->fh;

	(void)path;
	pthread_mutex_lock(&h->lock);
	(void)commit_locked(h, 0);	/* normally a no-op after flush */
	pthread_mutex_unlock(&h->lock);
	if (h->pending)
		pending_del(fsctx(), h->path);
	fh_free(h);
	return 0;
}

static int kf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
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
		if (rc == 0)
			h->dirty = 1;
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
		if (p->ops->read(p, rel, &v, &err) < 0) {
			rc = kf_errmap_report("truncate", path, &err);
			goto out;
		}
		kf_secret_set(nv, v->data, v->len);
	}
	kf_secret_truncate(nv, (size_t)size);
	if (kf_uuid4(token, &err) < 0 ||
	    p->ops->commit(p, rel, nv->data, nv->len, token, 0, &err) < 0) {
		rc = kf_errmap_report("truncate", path, &err);
		goto out;
	}
	rc = 0;
out:
	kf_secret_free(v);
	kf_secret_free(nv);
	return rc;
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
	if (!p)
		return -ENODATA;
	kf_buf_init(&out, XATTR_MAX);
	if (p->ops->getxattr(p, rel, name, &out, &err) < 0) {
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
	if (p->ops->setxattr(p, rel, name, value, size, &err) < 0)
		return kf_errmap_report("setxattr", path, &err);
	return 0;
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
	if (!p)
		return 0;
	kf_buf_init(&out, XATTR_MAX);
	if (p->ops->listxattr(p, rel, &out, &err) < 0)
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
	/* Attributes are never cached: sizes change with every commit and a
	 * stale i_size would cut reads short.  The value cache (ttl) keeps
	 * this cheap. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 1;	/* no .fuse_hidden renames: rename is EPERM */
	cfg->use_ino = 0;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	return fuse_get_context()->private_data;
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
