/*
 * Held files: new names shaped like temporary or editor files (sed -i's
 * sedXXXXXX, rsync's .NAME.XXXXXX, vim's .NAME.swp and 4913, NAME~) live
 * only in this process's locked memory until they are renamed onto a real
 * name or removed.  Never sent to a provider, never logged, gone at
 * unmount.
 */
#ifndef KF_HELD_H
#define KF_HELD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "provider.h"

/* At most this many held files per mount: more fail with ENOSPC. */
#define KF_HELD_MAX 256

struct kf_held_file;

/* One open of a held file (fuse_file_info.fh, tagged: see below). */
struct kf_held_fh {
	struct kf_held_file *f;
	int append;
};

struct kf_held {
	pthread_mutex_t lock;
	struct kf_held_file *files; /* protected by lock: the named ones */
	size_t n;		    /* protected by lock */
};

/*
 * Whether the last component of path looks like a temporary or editor
 * file: it begins with '.', ends with '~', is "#NAME#", is "4913", or is
 * "sed" or "XX" followed by exactly six letters or digits (sed -i's and
 * perl -i's work files).  Pure.
 */
int kf_held_name_rule(const char *path);

void kf_held_init(struct kf_held *h);

/* Wipe and free every held file (at unmount; no handle may be open). */
void kf_held_release(struct kf_held *h);

/* Whether path is a held file now.  Takes the lock. */
int kf_held_has(struct kf_held *h, const char *path);

/*
 * Size and time of the held file at path: 0, or -ENOENT when path is not
 * held.  Takes the lock.
 */
int kf_held_stat(struct kf_held *h, const char *path, struct kf_attr *a);

/*
 * Create the held file path (rel points into path) for provider p: an
 * empty value of capacity p->max_value, opened.  -EEXIST when already
 * held, -ENOSPC past KF_HELD_MAX, -ENOMEM.  The caller has checked that
 * the name is new to the provider.
 */
int kf_held_create(struct kf_held *h, struct kf_provider *p, const char *path,
		   int flags, struct kf_held_fh **out);

/*
 * open(2) of a held file with open flags (O_TRUNC empties it): 0, or
 * -ENOENT when path is not held.
 */
int kf_held_open(struct kf_held *h, const char *path, int flags,
		 struct kf_held_fh **out);

/* The last close of fh: freed, and the file too once unnamed and unused. */
void kf_held_close(struct kf_held *h, struct kf_held_fh *fh);

/* read(2) from the shared value; bytes copied. */
size_t kf_held_read(struct kf_held *h, struct kf_held_fh *fh, char *buf,
		    size_t size, off_t off);

/* write(2) into the shared value: size, or -EFBIG past the capacity. */
int kf_held_write(struct kf_held *h, struct kf_held_fh *fh, const char *buf,
		  size_t size, off_t off);

/* ftruncate(2) (fh) or truncate(2) (path, fh NULL): 0, -EFBIG, -ENOENT. */
int kf_held_truncate(struct kf_held *h, struct kf_held_fh *fh, const char *path,
		     off_t size);

/* The size of the file behind fh. */
size_t kf_held_size(struct kf_held *h, struct kf_held_fh *fh);

/* unlink(2): 0, or -ENOENT when path is not held. */
int kf_held_unlink(struct kf_held *h, const char *path);

/*
 * Call fn(ctx, name, attr) for each held file directly in the directory
 * dir (a FUSE path).  The names are copied first: fn runs without the
 * lock.
 */
void kf_held_list(struct kf_held *h, const char *dir,
		  int (*fn)(void *ctx, const char *name,
			    const struct kf_attr *a),
		  void *ctx);

/*
 * Copy the value held at path into dst, for a rename; *file identifies
 * the held file for kf_held_drop.  -ENOENT when not held, -EFBIG when dst
 * is too small.
 */
int kf_held_copy(struct kf_held *h, const char *path, struct kf_secret *dst,
		 const struct kf_held_file **file);

/* Remove the name path if it still names file (after its value moved). */
void kf_held_drop(struct kf_held *h, const char *path,
		  const struct kf_held_file *file);

/* Rename the held file from to the new held name to, replacing a held to:
 * 0, -ENOENT, -ENOMEM. */
int kf_held_move(struct kf_held *h, const char *from, const char *to);

struct kf_fs;
struct kf_who;

/*
 * create(2) of path (rel points into path) under provider p: a name that
 * matches kf_held_name_rule and does not exist in the provider is
 * created held.  Returns 1 when the name is not for holding (the caller
 * creates it as usual), 0 with *out set, or -errno (the provider's answer
 * when it cannot tell whether the name exists).
 */
int kf_held_try_create(struct kf_fs *fs, struct kf_provider *p,
		       const char *path, const char *rel, int flags,
		       struct kf_held_fh **out);

/*
 * rename(2) with a held source: onto a name in the same directory, that
 * name's value becomes the held value through the one commit function
 * (one new version; a new name is created), then the held file is gone;
 * onto a held name or a new name of the held shape, an in-memory rename.
 * -EINVAL for rename flags, -EPERM for any other source, -EXDEV for a held
 * source and another directory, -EISDIR onto a directory; a failed commit
 * returns its -errno and keeps the held file.
 */
int kf_held_rename(struct kf_fs *fs, const char *from, const char *to,
		   unsigned int flags, const struct kf_who *who);

/*
 * Open held files travel in fuse_file_info.fh with the low bit set, which
 * struct kf_fh pointers (malloc'ed, so aligned) never have.
 */
static inline uint64_t kf_held_fh_tag(struct kf_held_fh *fh)
{
	return (uint64_t)(uintptr_t)fh | 1u;
}

/* The held open behind a fuse_file_info.fh value, or NULL. */
static inline struct kf_held_fh *kf_held_fh_of(uint64_t fh)
{
	return (fh & 1u) ? (struct kf_held_fh *)(uintptr_t)(fh & ~(uint64_t)1) :
			   NULL;
}

#endif
