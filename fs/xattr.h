/*
 * The extended-attribute handlers of the FUSE operations table (the
 * provider's user.* attributes, and user.keyfs.stats on the root).  FUSE
 * handlers: 0 or a length, or -errno; never log an attribute value.
 */
#ifndef KF_XATTR_H
#define KF_XATTR_H

#include <stddef.h>

int kf_fs_getxattr(const char *path, const char *name, char *value,
		   size_t size);
int kf_fs_setxattr(const char *path, const char *name, const char *value,
		   size_t size, int flags);
int kf_fs_listxattr(const char *path, char *list, size_t size);
int kf_fs_removexattr(const char *path, const char *name);

#endif
