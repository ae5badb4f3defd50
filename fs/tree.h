/*
 * Path routing: "/PROVIDER/rest" -> the provider and its relative path.
 * Pure string work: never I/O, never a provider call.
 */
#ifndef KF_TREE_H
#define KF_TREE_H

#include <stddef.h>

#include "provider.h"

#define KF_MAX_PATH 4096
#define KF_MAX_DEPTH 64

struct kf_tree {
	struct kf_provider **providers; /* mounted, in listing order */
	size_t n;
};

/*
 * Route an absolute FUSE path.  On success *p is the provider (NULL for
 * the root "/") and *rel points into path (or at "" for "/PROVIDER").
 * Returns 0, or -ENOENT for an unknown top-level name, -ENAMETOOLONG /
 * -EINVAL for paths longer than KF_MAX_PATH, deeper than KF_MAX_DEPTH, or
 * not in canonical form.
 */
int kf_tree_route(const struct kf_tree *t, const char *path,
		  struct kf_provider **p, const char **rel);

#endif
