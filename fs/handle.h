/*
 * Open files: a handle holds its own copy of the value in locked memory,
 * and the one commit function writes it back all or nothing.  Never
 * commits a partial value (a failed write, a killed writer) and never
 * logs a value.
 */
#ifndef KF_HANDLE_H
#define KF_HANDLE_H

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "provider.h"

struct kf_fs;

/* Writers a handle remembers between commits; more count as "any". */
#define KF_FH_WRITERS 8

/* Who opened a file: audit lines written at release have no caller. */
struct kf_who {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

struct kf_fh {
	struct kf_provider *p;
	char *path;	 /* the FUSE path, for logs and pending */
	const char *rel; /* provider-relative, points into path */
	int created;	 /* made by create(): commit creates */
	int pending;	 /* listed in kf_fs.pending until release */
	int append;
	int writer;	/* opened for writing (or created) */
	int cached;	/* reads through the page cache (fs/kview.h) */
	int view;	/* a view (fs/view.h): read-only */
	uint64_t stamp; /* fingerprint of the value read at open */
	char version[KF_SECRET_VERSION_MAX]; /* the version read at open */
	struct kf_who who;
	pthread_mutex_t lock;
	struct kf_secret *val; /* protected by lock */
	size_t base_len;       /* protected by lock: the size of the value
				* last loaded or committed */
	int dirty;	       /* protected by lock */
	int changes;	       /* protected by lock: writes/ftruncates since
				 * the last commit (O_TRUNC alone is none) */
	int committed_once;    /* protected by lock: a commit happened since
				 * the last audit line */
	int failed;	       /* protected by lock: errno of a failed write;
				 * the value is then never committed */
	/* protected by lock: the processes that wrote since the last
	 * commit (nwriters > KF_FH_WRITERS: more than fit) */
	pid_t writers[KF_FH_WRITERS];
	int nwriters;
};

static inline int kf_fh_writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/*
 * A handle on path (rel points into path) with an empty value of capacity
 * p->max_value.  NULL when out of memory.
 */
struct kf_fh *kf_fh_new(struct kf_provider *p, const char *path,
			const char *rel, const struct kf_who *who);

/* Wipe the value and free h.  Accepts NULL. */
void kf_fh_free(struct kf_fh *h);

/*
 * open(2) of an existing value file with open flags: its value read
 * through the cache, or none with O_TRUNC on a writable open (the empty
 * value is then committed at release).  An open for writing first asks
 * the provider's check_write, so what a commit would meet (cloud down,
 * store full or read-only, name being deleted) fails the open.  A name
 * created by a handle not yet released opens as a new empty file.
 * Returns 0 with *out set, or -errno (-EISDIR for a directory).
 */
int kf_fh_open(struct kf_fs *fs, struct kf_provider *p, const char *path,
	       const char *rel, int flags, const struct kf_who *who,
	       struct kf_fh **out);

/*
 * create(2): the provider checks the name (can_create, then check_write);
 * the object itself is made by the first commit: the first flush after a
 * write, fsync, or release (so `touch` alone creates it, and a first
 * write that fails creates nothing).  Until release the path is listed
 * as pending so getattr finds it.  Returns 0 or -errno.
 */
int kf_fh_create(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, int flags, const struct kf_who *who,
		 struct kf_fh **out);

/* Copy up to size bytes of v from off into buf; the count copied. */
size_t kf_fh_copy(const struct kf_secret *v, off_t off, char *buf, size_t size);

/* read(2) from the handle's copy.  Takes h->lock. */
size_t kf_fh_read(struct kf_fh *h, char *buf, size_t size, off_t off);

/*
 * write(2) by process pid into the handle's copy (at the end with
 * O_APPEND).  Returns size, or -EFBIG past the provider's limit, after
 * which the handle never commits.  Takes h->lock.
 */
int kf_fh_write(struct kf_fh *h, pid_t pid, const char *buf, size_t size,
		off_t off);

/* ftruncate(2) of the handle's copy by pid: 0 or -EFBIG.  Takes h->lock. */
int kf_fh_truncate(struct kf_fh *h, pid_t pid, off_t size);

/*
 * Without atomic O_TRUNC, the kernel opens a file and then empties it by
 * path, without the handle.  kf_fh_fresh_add remembers a writer just
 * opened by thread tid; kf_fh_fresh_take returns it (once) when tid then
 * truncates that path before writing, so the truncate lands in the handle
 * like O_TRUNC; kf_fh_fresh_del forgets h (at release).
 */
void kf_fh_fresh_add(struct kf_fs *fs, struct kf_fh *h, pid_t tid);
struct kf_fh *kf_fh_fresh_take(struct kf_fs *fs, const char *path, pid_t tid);
void kf_fh_fresh_del(struct kf_fs *fs, struct kf_fh *h);

/*
 * The one commit: write the handle's value back if it changed, all or
 * nothing, with one idempotency token.  closer is the pid closing the
 * file (0: none).  A closer killed by a signal that wrote since the last
 * commit cancels the uncommitted data: nothing from this handle is
 * committed any more and every later flush reports -EINTR, so processes
 * sharing the file learn of it; a killed closer that did not write is an
 * ordinary flush and commits the others' data.  A failed write is
 * reported (its -errno) and nothing is committed.  With final 0 (a bare
 * flush) a handle with no write since open(O_TRUNC) or create waits for
 * release, so no empty intermediate version is ever made.  A failed
 * commit leaves the cached value in place.  Errors are logged under op.
 * Caller holds h->lock.  Returns 0 or -errno.
 */
int kf_fh_commit_locked(struct kf_fs *fs, struct kf_fh *h, pid_t closer,
			int final, const char *op);

/*
 * flush(2)/fsync(2): commit (final as for kf_fh_commit_locked).  *did is
 * set when a commit happened since the last call.  Takes h->lock.
 */
int kf_fh_flush(struct kf_fs *fs, struct kf_fh *h, pid_t closer, int final,
		int *did);

/*
 * release: the last commit (normally a no-op; commits a bare O_TRUNC and
 * a created file never written, as `touch` makes), its audit line under
 * the opener's ids, then h is freed.
 */
void kf_fh_release(struct kf_fs *fs, struct kf_fh *h);

/*
 * truncate(2) of a path without a handle: the value cut or zero-extended
 * to size and committed at once, through kf_fh_commit_locked.  Returns 0
 * or -errno (-EFBIG past the provider's limit).
 */
int kf_fh_truncate_path(struct kf_fs *fs, struct kf_provider *p,
			const char *path, const char *rel, off_t size);

/* Whether path was created by a handle not yet released.  Thread-safe. */
int kf_fh_pending_has(struct kf_fs *fs, const char *path);

/* Free the pending list (at unmount). */
void kf_fh_pending_release(struct kf_fs *fs);

#endif
