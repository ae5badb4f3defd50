/*
 * Reading a whole small file into a buffer: the one loop for credentials
 * files, configuration and store files.  The buffer's maximum bounds the
 * read; a sensitive buffer keeps key material out of unwiped memory.
 */
#ifndef KF_FILE_H
#define KF_FILE_H

#include "core/buf.h"
#include "core/err.h"

/*
 * Append everything fd holds (from its current offset) to out.  0, or -1
 * with KF_E_TOOBIG when out's maximum is reached, KF_E_IO on a read
 * error.  The stack chunk is wiped.  Does not close fd.
 */
int kf_file_read_fd(int fd, struct kf_buf *out, struct kf_err *err);

/*
 * Open path (O_RDONLY | O_NONBLOCK | O_CLOEXEC | extra_flags, e.g.
 * O_NOFOLLOW) and append it to out.  O_NONBLOCK, then a FIFO is refused
 * (KF_E_IO): never a hang on an open or read no writer will
 * finish.  Store files go through kf_store_read, which accepts regular
 * files only.  0, or -1 with KF_E_NOTFOUND (absent, or a path
 * component is not a directory), KF_E_DENIED (EACCES/EPERM), KF_E_IO
 * (any other failure, strerror in the message) or KF_E_TOOBIG.  Messages
 * name the path, never the contents.
 */
int kf_file_read(const char *path, int extra_flags, struct kf_buf *out,
		 struct kf_err *err);

#endif
