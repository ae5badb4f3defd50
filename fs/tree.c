/*
 * Path routing (see tree.h).  Pure string work: no I/O, no provider calls,
 * and nothing but canonical paths gets through.
 */
#include "tree.h"

#include <errno.h>
#include <string.h>

int kf_tree_route(const struct kf_tree *t, const char *path,
		  struct kf_provider **p, const char **rel)
{
	size_t len = strlen(path), depth = 0, n;
	const char *name;

	*p = NULL;
	*rel = "";
	if (len >= KF_MAX_PATH)
		return -ENAMETOOLONG;
	if (path[0] != '/')
		return -EINVAL;
	if (len == 1)
		return 0;
	/* The kernel sends canonical paths; refuse anything else. */
	for (const char *c = path; *c; c++) {
		if (*c != '/')
			continue;
		depth++;
		if (c[1] == '/' || c[1] == '\0')
			return -EINVAL;
		if (c[1] == '.' &&
		    (c[2] == '/' || c[2] == '\0' ||
		     (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			return -EINVAL;
	}
	if (depth > KF_MAX_DEPTH)
		return -ENAMETOOLONG;
	name = path + 1;
	n = strcspn(name, "/");
	for (size_t i = 0; i < t->n; i++) {
		if (strlen(t->providers[i]->name) == n &&
		    memcmp(t->providers[i]->name, name, n) == 0) {
			*p = t->providers[i];
			*rel = name[n] ? name + n + 1 : "";
			return 0;
		}
	}
	return -ENOENT;
}
