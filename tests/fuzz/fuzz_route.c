/*
 * libFuzzer target for fs/tree.c: arbitrary bytes as a FUSE path, routed
 * over a fixed provider list.  Besides memory safety it checks what
 * kf_tree_route promises on success: the provider named by the first
 * component, and a relative path in the canonical form providers expect
 * (no leading, trailing or doubled '/', no "." or ".." component).
 */
#include "tree.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int canonical_rel(const char *rel)
{
	const char *c = rel;

	if (!*rel)
		return 1;
	for (;;) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
		if (!*c)
			return 1;
		c++; /* past '/': a component must follow */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kf_provider local = { .name = "local" };
	static struct kf_provider aws = { .name = "aws" };
	static struct kf_provider gcp = { .name = "gcp" };
	static struct kf_provider *list[] = { &local, &aws, &gcp };
	struct kf_tree t = { list, 3 };
	struct kf_provider *p = (struct kf_provider *)1;
	const char *rel = NULL;
	char *path;
	int r;

	if (size > 2 * KF_MAX_PATH)
		return 0;
	path = malloc(size + 1);
	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	r = kf_tree_route(&t, path, &p, &rel);
	if (r != 0 && r != -ENOENT && r != -EINVAL && r != -ENAMETOOLONG)
		abort();
	if (r == 0) {
		size_t len = strlen(path);

		if (!rel || path[0] != '/' || len >= KF_MAX_PATH)
			abort();
		if (!p) {
			if (strcmp(path, "/") != 0 || *rel)
				abort();
		} else {
			size_t n = strlen(p->name);

			if (strncmp(path + 1, p->name, n) != 0 ||
			    (path[n + 1] != '/' && path[n + 1] != '\0'))
				abort();
			if (*rel && rel != path + n + 2)
				abort();
			if (!canonical_rel(rel))
				abort();
		}
	}
	free(path);
	return 0;
}
