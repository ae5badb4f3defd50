/*
 * Files of the on-disk store (STORE/local, STORE/gcp): atomic replacement
 * and bounded reads.  Only ciphertext and wrapped keys go through here;
 * never plaintext.
 */
#ifndef KF_STORE_H
#define KF_STORE_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/err.h"

/* Temporary files in the store start with this (never a valid name). */
#define KF_STORE_TMP_PREFIX ".kf-tmp."

/*
 * Replace dir/name with n bytes, all or nothing: a 0600 temporary file in
 * dir, fsync, rename over name, fsync of dir.  On failure the old file is
 * untouched and the temporary file removed.
 */
int kf_store_replace(const char *dir, const char *name, const void *data,
		     size_t n, struct kf_err *err);

/*
 * Open a store file for reading, never blocking: O_NONBLOCK | O_NOFOLLOW
 * | O_CLOEXEC, and the descriptor must be a regular file (st filled from
 * it).  The descriptor, or -1 with KF_E_NOTFOUND when absent, or KF_E_IO
 * naming the path and what is there instead (a symbolic link, a FIFO, a
 * directory, a device, a socket: never opened, so never a hang).
 */
int kf_store_open(const char *path, struct stat *st, struct kf_err *err);

/*
 * Fail with KF_E_IO: path (of mode m, from lstat) is a symbolic link or
 * something else than a regular file; the message names both.
 */
int kf_store_not_regular(const char *path, mode_t m, struct kf_err *err);

/*
 * Append the whole store file at path (opened as kf_store_open does) to
 * out; larger than max bytes is KF_E_INTEGRITY (no valid store file is
 * that large), refused from its size before reading.  KF_E_NOTFOUND when
 * absent, else KF_E_IO; messages name the path, never the contents.
 */
int kf_store_read(const char *path, size_t max, struct kf_buf *out,
		  struct kf_err *err);

/* fsync a directory (after a rename or unlink in it); 0 or -1. */
int kf_store_sync_dir(const char *dir);

/*
 * The code of a failed store call's errno: KF_E_NOTFOUND, KF_E_NOSPC
 * (ENOSPC, EDQUOT), KF_E_ROFS (EROFS), KF_E_DENIED (EACCES, EPERM), else
 * KF_E_IO.
 */
enum kf_code kf_store_code(int e);

/*
 * Whether a file can be written in dir now, without writing: dir, or its
 * nearest existing parent when dir is not made yet, is writable
 * (KF_E_ROFS, KF_E_DENIED) on a file system with a free block and a free
 * inode (KF_E_NOSPC).  One statvfs and one access call.
 */
int kf_store_check(const char *dir, struct kf_err *err);

#endif
