/*
 * Store files: atomic replacement (temp, fsync, rename, fsync dir) and
 * bounded reads.  Callers pass ciphertext only; nothing here logs data.
 */
#include "core/store.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int kf_store_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

enum kf_code kf_store_code(int e)
{
	switch (e) {
	case ENOENT:
		return KF_E_NOTFOUND;
	case ENOSPC:
	case EDQUOT:
		return KF_E_NOSPC;
	case EROFS:
		return KF_E_ROFS;
	case EACCES:
	case EPERM:
		return KF_E_DENIED;
	default:
		return KF_E_IO;
	}
}

int kf_store_check(const char *dir, struct kf_err *err)
{
	char d[PATH_MAX];
	struct statvfs st;

	if ((size_t)snprintf(d, sizeof(d), "%s", dir) >= sizeof(d))
		return kf_fail(err, KF_E_INVALID, "path too long");
	/* the nearest directory that exists */
	while (statvfs(d, &st) < 0) {
		char *slash = strrchr(d, '/');

		if (errno != ENOENT || !slash || slash == d)
			return kf_fail(err, kf_store_code(errno),
				       "cannot check the store: %s",
				       strerror(errno));
		*slash = '\0';
	}
	if (st.f_flag & ST_RDONLY)
		return kf_fail(err, KF_E_ROFS, "the store is read-only");
	if (st.f_bavail == 0 || (st.f_files > 0 && st.f_favail == 0))
		return kf_fail(err, KF_E_NOSPC, "the store is full");
	if (access(d, W_OK | X_OK) < 0)
		return kf_fail(err, kf_store_code(errno),
			       "cannot write in the store: %s",
			       strerror(errno));
	return 0;
}

int kf_store_replace(const char *dir, const char *name, const void *data,
		     size_t n, struct kf_err *err)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const unsigned char *p = data;
	int fd = -1, rc = -1, w;

	w = snprintf(tmp, sizeof(tmp), "%s/" KF_STORE_TMP_PREFIX "XXXXXX", dir);
	if (w < 0 || (size_t)w >= sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return kf_fail(err, KF_E_INVALID, "path too long");
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		int e = errno;

		return kf_fail(err, kf_store_code(e),
			       "cannot create a file in the store: %s",
			       strerror(e));
	}
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			kf_fail(err, kf_store_code(errno),
				"store write failed: %s", strerror(errno));
			goto out;
		}
		p += k;
		n -= (size_t)k;
	}
	if (fsync(fd) < 0) {
		kf_fail(err, kf_store_code(errno), "store fsync failed: %s",
			strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		kf_fail(err, kf_store_code(errno), "store close failed: %s",
			strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, dst) < 0) {
		kf_fail(err, kf_store_code(errno), "store rename failed: %s",
			strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	if (kf_store_sync_dir(dir) < 0) {
		kf_fail(err, kf_store_code(errno),
			"store directory fsync failed: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

static const char *kind_name(mode_t m)
{
	return S_ISDIR(m)  ? "a directory" :
	       S_ISFIFO(m) ? "a FIFO" :
	       S_ISLNK(m)  ? "a symbolic link" :
	       S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m)  ? "a character device" :
	       S_ISBLK(m)  ? "a block device" :
			     "not a plain file";
}

int kf_store_not_regular(const char *path, mode_t m, struct kf_err *err)
{
	if (S_ISLNK(m))
		return kf_fail(err, KF_E_IO,
			       "%s is a symbolic link: keyfs refuses links in "
			       "its store",
			       path);
	return kf_fail(err, KF_E_IO, "%s is not a regular file (%s)", path,
		       kind_name(m));
}

int kf_store_open(const char *path, struct stat *st, struct kf_err *err)
{
	int fd, e;

	/* lstat first: a device or FIFO is never opened at all. */
	if (lstat(path, st) == 0 && !S_ISREG(st->st_mode))
		return kf_store_not_regular(path, st->st_mode, err);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP && lstat(path, st) == 0 && S_ISLNK(st->st_mode))
			return kf_store_not_regular(path, st->st_mode, err);
		return kf_fail(err,
			       e == ENOENT || e == ENOTDIR ? KF_E_NOTFOUND :
							     KF_E_IO,
			       "cannot open %s: %s", path, strerror(e));
	}
	/* Replaced between the lstat and the open: the descriptor decides. */
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		e = errno;
		close(fd);
		if (!S_ISREG(st->st_mode))
			return kf_store_not_regular(path, st->st_mode, err);
		return kf_fail(err, KF_E_IO, "cannot stat %s: %s", path,
			       strerror(e));
	}
	return fd;
}

int kf_store_read(const char *path, size_t max, struct kf_buf *out,
		  struct kf_err *err)
{
	size_t cap = out->max;
	struct stat st;
	int fd, rc;

	fd = kf_store_open(path, &st, err);
	if (fd < 0)
		return -1;
	if ((uintmax_t)st.st_size > (uintmax_t)max) {
		close(fd);
		return kf_fail(err, KF_E_INTEGRITY,
			       "store file %s is larger than any valid one",
			       path);
	}
	if (max < cap)
		out->max = max;
	rc = kf_file_read_fd(fd, out, err);
	out->max = cap;
	close(fd);
	if (rc == 0 || !err)
		return rc;
	if (err->code == KF_E_TOOBIG)
		return kf_fail(err, KF_E_INTEGRITY,
			       "store file %s is larger than any valid one",
			       path);
	err->code = KF_E_IO;
	return rc;
}
