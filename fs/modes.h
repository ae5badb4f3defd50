/*
 * Owner, group and mode per path, kept on this host in STORE/modes: what
 * chmod and chown set survives remounts.  A path without an entry has the
 * mount's defaults (-o uid=, gid=, umask=).  The file is replaced as a
 * whole (temporary file, fsync, rename) on every change.
 */
#ifndef KF_MODES_H
#define KF_MODES_H

#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"

/* The file's name in the store. */
#define KF_MODES_FILE "modes"

struct kf_mode_ent {
	char *path; /* the mount path, "/local/r/k/v" */
	uid_t uid;
	gid_t gid;
	mode_t mode; /* permission bits only (07777) */
};

struct kf_modes {
	pthread_mutex_t lock;
	char *dir;		  /* the store; NULL: nothing is kept */
	struct kf_mode_ent *ents; /* protected by lock */
	size_t n, cap;		  /* protected by lock */
};

/* An empty table that keeps nothing (until kf_modes_load). */
void kf_modes_init(struct kf_modes *m);

/*
 * Load dir/modes (absent: no entries) and keep changes there from now
 * on.  A damaged file is KF_E_INTEGRITY: keyfs will not guess who may
 * read a key.
 */
int kf_modes_load(struct kf_modes *m, const char *dir, struct kf_err *err);
void kf_modes_release(struct kf_modes *m);

/* Put path's owner, group and permission bits into st (when kept). */
void kf_modes_apply(struct kf_modes *m, const char *path, struct stat *st);

/*
 * chmod and chown of path whose attributes are now cur: 0, or -errno.
 * Setting what cur already holds always succeeds without writing.  chown
 * to another owner needs caller uid 0 (the kernel checks it first with
 * default_permissions; this is the same rule again); (uid_t)-1 and
 * (gid_t)-1 keep the current value.  A failed write of the file keeps
 * the old entry and returns its errno (ENOSPC, EROFS, EIO).
 */
int kf_modes_chmod(struct kf_modes *m, const char *path, const struct stat *cur,
		   mode_t mode);
int kf_modes_chown(struct kf_modes *m, const char *path, const struct stat *cur,
		   uid_t uid, gid_t gid, uid_t caller_uid);

/*
 * path is gone or new (unlink, rmdir, create, mkdir): drop its entry and
 * those of every name under it.  Best effort: a failed write is logged.
 */
void kf_modes_forget(struct kf_modes *m, const char *path);

/* from was renamed to to: to takes from's entry (or none). */
void kf_modes_rename(struct kf_modes *m, const char *from, const char *to);

/* The file's text for the current entries, and its parser (for tests). */
int kf_modes_format(struct kf_modes *m, struct kf_buf *out);
int kf_modes_parse(struct kf_modes *m, const char *text, size_t len,
		   struct kf_err *err);

#endif
