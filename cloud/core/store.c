/*
 * Store files: atomic replacement (temp, fsync, rename, fsync dir) and
 * bounded reads.  Callers pass ciphertext only; nothing here logs data.
 */
#include "core/store.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

		return kf_fail(err, e == ENOENT ? KF_E_NOTFOUND : KF_E_IO,
			       "cannot create a file in the store: %s",
			       strerror(e));
	}
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			kf_fail(err, KF_E_IO, "store write failed: %s",
				strerror(errno));
			goto out;
		}
		p += k;
		n -= (size_t)k;
	}
	if (fsync(fd) < 0) {
		kf_fail(err, KF_E_IO, "store fsync failed: %s",
			strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		kf_fail(err, KF_E_IO, "store close failed: %s",
			strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, dst) < 0) {
		kf_fail(err, KF_E_IO, "store rename failed: %s",
			strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	if (kf_store_sync_dir(dir) < 0) {
		kf_fail(err, KF_E_IO, "store directory fsync failed: %s",
			strerror(errno));
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

int kf_store_read(const char *path, size_t max, struct kf_buf *out,
		  struct kf_err *err)
{
	size_t cap = out->max;
	int rc;

	if (max < cap)
		out->max = max;
	rc = kf_file_read(path, O_NOFOLLOW, out, err);
	out->max = cap;
	if (rc == 0 || !err)
		return rc;
	if (err->code == KF_E_TOOBIG)
		return kf_fail(err, KF_E_INTEGRITY,
			       "store file is larger than any valid one");
	if (err->code != KF_E_NOTFOUND)
		err->code = KF_E_IO;
	return rc;
}
