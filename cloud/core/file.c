/*
 * Whole-file reads (see file.h).  Never logs; the contents may be a key.
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kf_file_read_fd(int fd, struct kf_buf *out, struct kf_err *err)
{
	char chunk[4096];
	int rc = -1;

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kf_fail(err, KF_E_IO, "read failed: %s",
				strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (kf_buf_add(out, chunk, (size_t)n) < 0) {
			kf_fail(err, KF_E_TOOBIG, "larger than %zu bytes",
				out->max);
			goto out;
		}
	}
	rc = 0;
out:
	explicit_bzero(chunk, sizeof(chunk));
	return rc;
}

int kf_file_read(const char *path, int extra_flags, struct kf_buf *out,
		 struct kf_err *err)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | extra_flags);
	if (fd < 0) {
		int e = errno;
		enum kf_code code = e == ENOENT || e == ENOTDIR ?
					    KF_E_NOTFOUND :
				    e == EACCES || e == EPERM ? KF_E_DENIED :
								KF_E_IO;

		return kf_fail(err, code, "cannot open %s: %s", path,
			       strerror(e));
	}
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		close(fd);
		return kf_fail(err, KF_E_IO, "%s is a FIFO, not a file", path);
	}
	rc = kf_file_read_fd(fd, out, err);
	if (rc < 0 && err) {
		char msg[sizeof(err->msg)];

		(void)snprintf(msg, sizeof(msg), "%s",
			       err->msg); /* same size */
		kf_fail(err, err->code, "%s: %s", path, msg);
	}
	close(fd);
	return rc;
}
