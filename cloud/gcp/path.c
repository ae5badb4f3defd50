/*
 * The gcp provider's path form: PROJECT/LOCATION/RING/KEY/NAME, the
 * syntax of each component, and the Cloud KMS resource name and store
 * path a path stands for.  Pure syntax: never touches the network or the
 * disk.
 */
#include "gcp/tree_int.h"

#include <stdio.h>
#include <string.h>

int kf_gcp_valid_value_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255 || name[0] == '.')
		return 0;
	return strspn(name,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789._+=@,-") == n;
}

/* Locations: [a-z0-9-]{1,63}. */
int kf_gcp_valid_location(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Project ids (also domain-scoped ones): [A-Za-z0-9.:_-]{1,100}. */
int kf_gcp_valid_project(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 100 && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789.:_-") == n;
}

int kf_gcp_path_split(const char *path, struct kf_gcp_path *g,
		      struct kf_err *err)
{
	const char *p = path;

	g->depth = 0;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);

		if (g->depth == 5)
			return kf_fail(err, KF_E_NOTDIR, "not a directory");
		if (n == 0)
			return kf_fail(err, KF_E_NOTFOUND, "no such entry");
		if (n >= sizeof(g->c[0]))
			return kf_fail(err, KF_E_INVALID,
				       "name too long "
				       "(ids: 63, value names: 255 characters)");
		memcpy(g->c[g->depth], p, n);
		g->c[g->depth][n] = '\0';
		g->depth++;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Resource name of the first depth components (1..4). */
int kf_gcp_path_resource(const struct kf_gcp_path *g, int depth, char *out,
			 size_t n)
{
	static const char *const seg[] = { "projects", "locations", "keyRings",
					   "cryptoKeys" };
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < depth && i < 4; i++) {
		int w = snprintf(out + len, n - len, "%s%s/%s", i ? "/" : "",
				 seg[i], g->c[i]);

		if (w < 0 || (size_t)w >= n - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

/* Store path of the first depth components (1..5), "" for depth 0. */
int kf_gcp_path_store(const struct kf_gcp *s, const struct kf_gcp_path *g,
		      int depth, char *out, size_t n)
{
	size_t len;
	int w = snprintf(out, n, "%s", s->store);

	if (w < 0 || (size_t)w >= n)
		return -1;
	len = (size_t)w;
	for (int i = 0; i < depth; i++) {
		w = snprintf(out + len, n - len, "/%s", g->c[i]);
		if (w < 0 || (size_t)w >= n - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

/* Parse a value path: depth 5 with a valid name, else an error. */
int kf_gcp_path_value(const struct kf_gcp *s, const char *path,
		      struct kf_gcp_path *g, char *sp, size_t splen,
		      struct kf_err *err)
{
	if (kf_gcp_path_split(path, g, err) < 0)
		return -1;
	if (g->depth < 4)
		return kf_fail(err, g->depth == 0 ? KF_E_ISDIR : KF_E_PERM,
			       "value files live below a crypto key "
			       "(PROJECT/LOCATION/RING/KEY/NAME)");
	if (g->depth == 4)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (!kf_gcp_valid_value_name(g->c[4]))
		return kf_fail(err, KF_E_INVALID,
			       "invalid value name (allowed: 1-255 of "
			       "[A-Za-z0-9._+=@,-], not starting with '.')");
	if (kf_gcp_path_store(s, g, 5, sp, splen) < 0)
		return kf_fail(err, KF_E_INVALID, "path too long");
	return 0;
}
