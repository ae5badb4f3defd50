/*
 * The mountpoint before mounting: a directory, not a live keyfs mount
 * (two daemons on one store), not a dead FUSE mount (after kill -9: its
 * stat answers ENOTCONN), which needs clearing first.
 */
#ifndef KF_MOUNTPOINT_H
#define KF_MOUNTPOINT_H

#include <stddef.h>

/*
 * 0 when keyfs may mount on mnt; -1 with a one-line message in msg (no
 * "keyfs: " prefix, no newline) saying why and what to do.  mountinfo is
 * the text of /proc/self/mountinfo (NULL: read it).
 */
int kf_mountpoint_check(const char *mnt, const char *mountinfo, char *msg,
			size_t msglen);

/*
 * The type of the topmost mount at the absolute path abs in mountinfo
 * ("fuse.keyfs", "ext4", ...) into type; 0, or -1 when nothing is
 * mounted exactly there.
 */
int kf_mountpoint_type(const char *mountinfo, const char *abs, char *type,
		       size_t typelen);

#endif
