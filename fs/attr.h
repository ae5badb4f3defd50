/*
 * The attributes keyfs shows the kernel (see attr.c).
 */
#ifndef KF_ATTR_H
#define KF_ATTR_H

#include <sys/stat.h>

#include "provider.h"

struct kf_fs;

/*
 * The size shown for a file whose value is not cached (stat never
 * fetches one): 0 on a writable mount, the provider's largest value on a
 * read-only one.  Leaves directories and known sizes alone.
 */
void kf_attr_unknown_size(const struct kf_fs *fs, const struct kf_provider *p,
			  struct kf_attr *a);

/* On page-cache mounts: the size the kernel's readers of path share. */
void kf_attr_shared_size(struct kf_fs *fs, const char *path, struct kf_attr *a);

/* a as a struct stat with the mount's owner, group and umask. */
void kf_attr_fill_stat(const struct kf_fs *fs, const struct kf_attr *a,
		       struct stat *st);

/* Whether provider-relative rel is a view (fs/view.h). */
int kf_attr_is_view(const char *rel);

/* The errno of creating view rel: -EROFS in a version directory, else
 * -EINVAL (':' and '#' are in no valid name). */
int kf_attr_view_create_errno(const char *rel);

/* The stat of view path (rel under p); 0 or -errno. */
int kf_attr_view_stat(struct kf_fs *fs, struct kf_provider *p, const char *path,
		      const char *rel, struct stat *st);

#endif
