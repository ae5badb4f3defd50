/*
 * Open files and the one commit function (see handle.h).  A handle's value
 * lives in locked memory and reaches the provider only through
 * kf_fh_commit_locked; a partial value (failed write, killed writer) is
 * never committed and no value is ever logged.
 */
#include "handle.h"

#include "audit.h"
#include "core/crypto.h"
#include "core/log.h"
#include "errmap.h"
#include "ops.h"
#include "view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kf_pending {
	char *path;
	int refs;
	int made; /* a handle on it committed: the object exists */
	struct kf_pending *next;
};

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

int kf_fh_pending_has(struct kf_fs *fs, const char *path)
{
	int found = 0;

	pthread_mutex_lock(&fs->pending_lock);
	for (struct kf_pending *e = fs->pending; e; e = e->next)
		if (!strcmp(e->path, path))
			found = 1;
	pthread_mutex_unlock(&fs->pending_lock);
	return found;
}

/* Note that path's object now exists (made), or ask whether it does. */
static int pending_made(struct kf_fs *fs, const char *path, int set)
{
	int made = 0;

	pthread_mutex_lock(&fs->pending_lock);
	for (struct kf_pending *e = fs->pending; e; e = e->next)
		if (!strcmp(e->path, path)) {
			if (set)
				e->made = 1;
			made = e->made;
		}
	pthread_mutex_unlock(&fs->pending_lock);
	return made;
}

#define NFRESH                                \
	(sizeof(((struct kf_fs *)0)->fresh) / \
	 sizeof(((struct kf_fs *)0)->fresh[0]))

void kf_fh_fresh_add(struct kf_fs *fs, struct kf_fh *h, pid_t tid)
{
	pthread_mutex_lock(&fs->pending_lock);
	fs->fresh[fs->fresh_next % NFRESH].h = h;
	fs->fresh[fs->fresh_next % NFRESH].tid = tid;
	fs->fresh_next++;
	pthread_mutex_unlock(&fs->pending_lock);
}

struct kf_fh *kf_fh_fresh_take(struct kf_fs *fs, const char *path, pid_t tid)
{
	struct kf_fh *h = NULL;

	pthread_mutex_lock(&fs->pending_lock);
	for (size_t i = 0; i < NFRESH && !h; i++) {
		struct kf_fresh *f = &fs->fresh[i];

		if (f->h && f->tid == tid && !strcmp(f->h->path, path)) {
			h = f->h;
			f->h = NULL;
		}
	}
	pthread_mutex_unlock(&fs->pending_lock);
	return h;
}

void kf_fh_fresh_del(struct kf_fs *fs, struct kf_fh *h)
{
	pthread_mutex_lock(&fs->pending_lock);
	for (size_t i = 0; i < NFRESH; i++)
		if (fs->fresh[i].h == h)
			fs->fresh[i].h = NULL;
	pthread_mutex_unlock(&fs->pending_lock);
}

void kf_fh_pending_release(struct kf_fs *fs)
{
	while (fs->pending) {
		struct kf_pending *n = fs->pending->next;

		free(fs->pending->path);
		free(fs->pending);
		fs->pending = n;
	}
}

void kf_fh_free(struct kf_fh *h)
{
	if (!h)
		return;
	kf_secret_free(h->val);
	pthread_mutex_destroy(&h->lock);
	free(h->path);
	free(h);
}

struct kf_fh *kf_fh_new(struct kf_provider *p, const char *path,
			const char *rel, const struct kf_who *who)
{
	struct kf_fh *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->p = p;
	h->who = *who;
	h->path = strdup(path);
	h->val = kf_secret_new(p->max_value);
	if (!h->path || !h->val) {
		kf_fh_free(h);
		return NULL;
	}
	h->rel = h->path + (rel - path);
	return h;
}

/* Fill h with path's current value (through the cache); 0 or -errno. */
static int load(struct kf_fs *fs, struct kf_fh *h, const char *op)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	int rc = 0;

	/* A reader's value is a read (watched for changes); a writer's is
	 * only what its writes start from. */
	if (!h->writer) {
		rc = kf_fs_value(fs, h->p, h->path, h->rel, op, &v);
		if (rc < 0)
			return rc;
	} else if (kf_cache_read(&fs->cache, h->p, h->path, h->rel, &v, &err) <
		   0) {
		return kf_errmap_report(op, h->path, &err);
	}
	if (kf_secret_set(h->val, v->data, v->len) < 0)
		rc = -EFBIG;
	h->base_len = v->len;
	(void)snprintf(h->version, sizeof(h->version), "%s", v->version);
	kf_secret_free(v);
	return rc;
}

/*
 * An open for writing asks the provider what a commit would meet now
 * (store full or read-only, cloud not answering, name being deleted), so
 * the failure reaches open() and not only close(), which shells ignore.
 */
static int check_write(struct kf_provider *p, const char *path, const char *rel,
		       int flags, const char *op)
{
	struct kf_err err = KF_ERR_INIT;

	if (!p->ops->check_write ||
	    p->ops->check_write(p, rel, flags, &err) == 0)
		return 0;
	return kf_errmap_report(op, path, &err);
}

/* A handle on a name created by a handle not yet released: new, empty. */
static int open_pending(struct kf_fs *fs, struct kf_provider *p,
			const char *path, const char *rel, int flags,
			const struct kf_who *who, struct kf_fh **out)
{
	struct kf_fh *h;
	int rc = 0;

	if (kf_fh_writable(flags))
		rc = check_write(p, path, rel, KF_COMMIT_CREATE, "open");
	if (rc < 0)
		return rc;
	h = kf_fh_new(p, path, rel, who);
	if (!h)
		return -ENOMEM;
	h->created = 1;
	h->pending = 1;
	h->append = !!(flags & O_APPEND);
	h->writer = kf_fh_writable(flags);
	pending_add(fs, path);
	*out = h;
	return 0;
}

int kf_fh_open(struct kf_fs *fs, struct kf_provider *p, const char *path,
	       const char *rel, int flags, const struct kf_who *who,
	       struct kf_fh **out)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;
	struct kf_fh *h;
	int rc;

	*out = NULL;
	if (kf_cache_getattr(&fs->cache, p, path, rel, 0, &a, &err) < 0) {
		if (err.code == KF_E_NOTFOUND && kf_fh_pending_has(fs, path))
			return open_pending(fs, p, path, rel, flags, who, out);
		return kf_errmap_report("open", path, &err);
	}
	if (a.kind != KF_KIND_FILE)
		return -EISDIR;
	if (kf_fh_writable(flags)) {
		rc = check_write(p, path, rel, 0, "open");
		if (rc < 0)
			return rc;
	}
	h = kf_fh_new(p, path, rel, who);
	if (!h)
		return -ENOMEM;
	h->append = !!(flags & O_APPEND);
	h->writer = kf_fh_writable(flags);
	if (kf_fh_writable(flags) && (flags & O_TRUNC)) {
		h->dirty = 1; /* `: > file` sets the empty value */
	} else {
		rc = load(fs, h, "open");
		if (rc < 0) {
			kf_fh_free(h);
			return rc;
		}
	}
	*out = h;
	return 0;
}

int kf_fh_create(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, int flags, const struct kf_who *who,
		 struct kf_fh **out)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_fh *h;
	int rc;

	*out = NULL;
	if (p->ops->can_create(p, rel, &err) < 0)
		return kf_errmap_report("create", path, &err);
	rc = check_write(p, path, rel, KF_COMMIT_CREATE, "create");
	if (rc < 0)
		return rc;
	kf_cache_forget(&fs->cache, path);
	h = kf_fh_new(p, path, rel, who);
	if (!h)
		return -ENOMEM;
	h->created = 1;
	h->pending = 1;
	h->dirty = 1; /* `touch` alone creates the object, at release */
	h->append = !!(flags & O_APPEND);
	h->writer = 1;
	pending_add(fs, path);
	*out = h;
	return 0;
}

size_t kf_fh_copy(const struct kf_secret *v, off_t off, char *buf, size_t size)
{
	size_t n = 0;

	if (off >= 0 && (size_t)off < v->len) {
		n = v->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, v->data + off, n);
	}
	return n;
}

size_t kf_fh_read(struct kf_fh *h, char *buf, size_t size, off_t off)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = kf_fh_copy(h->val, off, buf, size);
	pthread_mutex_unlock(&h->lock);
	return n;
}

/*
 * Bytes the provider can never store fail at the write() that brings
 * them (shells ignore close()); the value is then never committed.
 */
static int check_bytes_locked(struct kf_fh *h, int rc)
{
	struct kf_err err = KF_ERR_INIT;

	if (!h->p->ops->check_bytes ||
	    h->p->ops->check_bytes(h->p, h->rel, h->val->data, h->val->len,
				   &err) == 0)
		return rc;
	rc = kf_errmap_report("write", h->path, &err);
	h->failed = -rc;
	return rc;
}

/*
 * The process (thread group) of thread tid: FUSE names the calling
 * thread, and a killed process may close its files from another thread
 * than the one that wrote.  tid itself when /proc does not say.
 */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (tid <= 0 || (size_t)snprintf(path, sizeof(path), "/proc/%d/status",
					 (int)tid) >= sizeof(path))
		return tid;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tid;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return tid;
	buf[n] = '\0';
	p = strstr(buf, "\nTgid:");
	if (!p)
		return tid;
	n = strtol(p + 6, NULL, 10);
	return n > 0 ? (pid_t)n : tid;
}

/* Remember process pid as a writer since the last commit.  Caller holds
 * h->lock. */
static void note_writer(struct kf_fh *h, pid_t pid)
{
	for (int i = 0; i < h->nwriters && i < KF_FH_WRITERS; i++)
		if (h->writers[i] == pid)
			return;
	if (h->nwriters < KF_FH_WRITERS)
		h->writers[h->nwriters] = pid;
	if (h->nwriters <= KF_FH_WRITERS)
		h->nwriters++;
}

/* Whether pid wrote since the last commit (unknown pids: when too many
 * wrote to remember).  Caller holds h->lock. */
static int wrote(const struct kf_fh *h, pid_t pid)
{
	if (h->nwriters > KF_FH_WRITERS)
		return 1;
	for (int i = 0; i < h->nwriters; i++)
		if (h->writers[i] == pid)
			return 1;
	return 0;
}

int kf_fh_write(struct kf_fh *h, pid_t pid, const char *buf, size_t size,
		off_t off)
{
	pid_t tgid = tgid_of(pid);
	int rc = (int)size;

	pthread_mutex_lock(&h->lock);
	note_writer(h, tgid);
	if (h->append)
		off = (off_t)h->val->len;
	if (kf_secret_write(h->val, (size_t)off, buf, size) < 0) {
		rc = -EFBIG;
		h->failed = EFBIG; /* a partial value never becomes one */
	} else {
		h->dirty = 1;
		h->changes++;
		rc = check_bytes_locked(h, rc);
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kf_fh_truncate(struct kf_fh *h, pid_t pid, off_t size)
{
	pid_t tgid = tgid_of(pid);
	int rc;

	pthread_mutex_lock(&h->lock);
	note_writer(h, tgid);
	rc = kf_secret_truncate(h->val, (size_t)size) < 0 ? -EFBIG : 0;
	if (rc == 0) {
		h->dirty = 1;
		/* Emptying a file nobody wrote to yet is how O_TRUNC reaches
		 * keyfs on page-cache mounts: like O_TRUNC, it is committed
		 * at the last close unless writes follow (`echo v > f` makes
		 * one version, never an empty one first). */
		if (size > 0 || h->changes > 0)
			h->changes++;
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

	if (pid <= 0 || (size_t)snprintf(path, sizeof(path), "/proc/%d/stat",
					 (int)pid) >= sizeof(path))
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
 * Whether h has something to commit now; when not, *rc is what the commit
 * reports (0, or the -errno of a failed write).
 */
static int commit_due_locked(struct kf_fh *h, int final, int *rc)
{
	*rc = 0;
	if (h->failed) {
		*rc = -h->failed;
		if (h->dirty)
			kf_log(KF_LOG_WARN,
			       "%s: a write failed (%s); the value "
			       "was not changed",
			       h->path, strerror(h->failed));
		h->dirty = 0;
		return 0;
	}
	if (!h->dirty)
		return 0;
	if (!final && h->changes == 0)
		return 0;
	h->dirty = 0; /* reported once, whatever the outcome */
	h->changes = 0;
	h->nwriters = 0;
	return 1;
}

/*
 * A closer killed by a signal that wrote since the last commit: its data
 * is an interrupted write, so nothing of this handle is committed any
 * more and every later flush reports EINTR (the processes sharing the
 * file learn of it).  0 when closer is not such a writer.
 */
static int cancel_killed_writer(struct kf_fh *h, pid_t closer)
{
	int sig;

	if (closer <= 0 || !h->dirty || !writer_killed(closer, &sig) ||
	    !wrote(h, tgid_of(closer)))
		return 0;
	kf_log(KF_LOG_WARN,
	       "%s: a writer (pid %d) was killed by signal %d; "
	       "the value was not changed",
	       h->path, (int)closer, sig);
	h->failed = EINTR;
	h->dirty = 0;
	h->nwriters = 0;
	return -EINTR;
}

int kf_fh_commit_locked(struct kf_fs *fs, struct kf_fh *h, pid_t closer,
			int final, const char *op)
{
	struct kf_err err = KF_ERR_INIT;
	int untouched = h->changes == 0; /* e.g. `touch NEW` */
	char token[37];
	struct kf_buf made;
	int rc;

	rc = cancel_killed_writer(h, closer);
	if (rc < 0 || !commit_due_locked(h, final, &rc))
		return rc;
	/* A created file never written, released after another handle made
	 * it: the empty creation must not replace that value. */
	if (h->created && untouched && h->pending &&
	    pending_made(fs, h->path, 0))
		return 0;
	if (kf_uuid4(token, &err) < 0)
		return kf_errmap_report(op, h->path, &err);
	KF_FS_COUNT(fs, commits);
	kf_buf_init(&made, KF_SECRET_VERSION_MAX - 1);
	if (h->p->ops->commit(h->p, h->rel, h->val->data, h->val->len, token,
			      h->created ? KF_COMMIT_CREATE : 0, &made,
			      &err) < 0) {
		kf_buf_release(&made);
		KF_FS_COUNT(fs, commit_errors);
		/* the previous value stays cached and served (max_stale) */
		return kf_errmap_report(op, h->path, &err);
	}
	kf_cache_put(&fs->cache, h->p, h->path, h->rel, h->val->data,
		     h->val->len, kf_buf_str(&made));
	(void)snprintf(h->version, sizeof(h->version), "%s", kf_buf_str(&made));
	kf_buf_release(&made);
	h->base_len = h->val->len;
	kf_fs_invalidate(fs, h->path);
	if (h->pending)
		pending_made(fs, h->path, 1);
	h->created = 0;
	h->committed_once = 1;
	kf_log(KF_LOG_DEBUG, "committed %s [REDACTED %zu bytes]", h->path,
	       h->val->len);
	return 0;
}

/*
 * A new file closed before it got any data, on a store that cannot hold
 * an empty value: close() says so (EINVAL), so `touch` reports it.
 * Nothing is committed and the handle stays as it is: a shell's
 * `cmd > NEW` closes its first descriptor before cmd writes through the
 * second, and that data still commits.
 */
static int empty_refused(const struct kf_fh *h, int final)
{
	struct kf_err err = KF_ERR_INIT;

	if (final || !h->created || h->changes != 0 || h->failed ||
	    (h->val && h->val->len != 0))
		return 0;
	/* Per path: the store refuses 0 bytes (KF_E_INVALID). */
	return (h->p->ops->check_bytes &&
		h->p->ops->check_bytes(h->p, h->rel, (const unsigned char *)"",
				       0, &err) < 0 &&
		err.code == KF_E_INVALID);
}

int kf_fh_flush(struct kf_fs *fs, struct kf_fh *h, pid_t closer, int final,
		int *did)
{
	int rc;

	pthread_mutex_lock(&h->lock);
	if (empty_refused(h, final)) {
		kf_log(KF_LOG_DEBUG,
		       "%s: closed with no data: %s/ cannot hold "
		       "an empty value",
		       h->path, h->p->name);
		*did = 0;
		pthread_mutex_unlock(&h->lock);
		return -EINVAL;
	}
	rc = kf_fh_commit_locked(fs, h, closer, final, "commit");
	*did = h->committed_once;
	h->committed_once = 0;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void kf_fh_release(struct kf_fs *fs, struct kf_fh *h)
{
	int rc;

	pthread_mutex_lock(&h->lock);
	/* Normally a no-op; commits a bare O_TRUNC (`: > file`). */
	rc = kf_fh_commit_locked(fs, h, 0, 1, "commit");
	if (rc < 0)
		kf_log(KF_LOG_WARN, "%s: the change was not saved", h->path);
	if ((rc < 0 || h->committed_once) && fs->audit)
		kf_audit_log(fs->audit, h->who.uid, h->who.gid, h->who.pid,
			     "commit", h->path, rc, NULL);
	pthread_mutex_unlock(&h->lock);
	if (h->pending)
		pending_del(fs, h->path);
	kf_fh_free(h);
}

int kf_fh_truncate_path(struct kf_fs *fs, struct kf_provider *p,
			const char *path, const char *rel, off_t size)
{
	static const struct kf_who nobody = { 0, 0, 0 };
	struct kf_fh *h;
	int rc = 0;

	if ((size_t)size > p->max_value)
		return -EFBIG;
	h = kf_fh_new(p, path, rel, &nobody);
	if (!h)
		return -ENOMEM;
	if (size > 0)
		rc = load(fs, h, "truncate");
	pthread_mutex_lock(&h->lock);
	if (rc == 0) {
		kf_secret_truncate(h->val, (size_t)size);
		h->dirty = 1;
		h->changes = 1;
		rc = kf_fh_commit_locked(fs, h, 0, 1, "truncate");
	}
	pthread_mutex_unlock(&h->lock);
	kf_fh_free(h);
	return rc;
}
