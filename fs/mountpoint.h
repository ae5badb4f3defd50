/*
 * The mountpoint before mounting: a directory, not a live keyfs mount
 * (two daemons on one store), not a dead FUSE mount (after kill -9: its
 * stat answers ENOTCONN), which needs clearing first.  "/dev/fd/N" is no
 * path: it names a /dev/fuse descriptor the caller has already mounted.
 */
#ifndef KF_MOUNTPOINT_H
#define KF_MOUNTPOINT_H

#include <stddef.h>

/*
 * 0 when keyfs may mount on mnt; -1 with a one-line message in msg (no
 * "keyfs: " prefix, no newline) saying why and what to do.  mountinfo is
 * the text of /proc/self/mountinfo (NULL: read it).  For "/dev/fd/N" it
 * checks only that N is an open descriptor of /dev/fuse: where the
 * caller mounted it is unknown here, and never stat'ed.
 */
int kf_mountpoint_check(const char *mnt, const char *mountinfo, char *msg,
			size_t msglen);

/*
 * N when mnt is exactly "/dev/fd/N" (N decimal digits only, nothing
 * after), as libfuse's fuse_mount() reads it; -1 for any other string.
 * Touches nothing: no stat, no descriptor check.
 */
int kf_mountpoint_fd(const char *mnt);

/*
 * The type of the topmost mount at the absolute path abs in mountinfo
 * ("fuse.keyfs", "ext4", ...) into type; 0, or -1 when nothing is
 * mounted exactly there.
 */
int kf_mountpoint_type(const char *mountinfo, const char *abs, char *type,
		       size_t typelen);

#endif
