/*
 * Names and paths of the local/ provider: RING/KEY/NAME validation and
 * the mapping to files under STORE/local.  Every name is checked here
 * before it reaches the file system; nothing here touches a file.
 */
#include "local/priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int kf_local_valid_id(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int kf_local_valid_name(const char *s, size_t n)
{
	if (n < 1 || n > 255 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._+=@-", c)))
			return 0;
	}
	return 1;
}

int kf_local_split(const char *path, struct kf_local_parts *pp)
{
	const char *p = path;

	pp->n = 0;
	if (!*p)
		return 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (pp->n == 3)
			return -1;
		pp->c[pp->n] = p;
		pp->len[pp->n] = n;
		pp->n++;
		p += n;
		if (*p == '/')
			p++;
	}
	return pp->n;
}

int kf_local_parse(const char *path, struct kf_local_parts *pp, int strict,
		   struct kf_err *err)
{
	enum kf_code bad = strict ? KF_E_INVALID : KF_E_NOTFOUND;

	if (kf_local_split(path, pp) < 0)
		return kf_fail(err, strict ? KF_E_PERM : KF_E_NOTFOUND,
			       "local/ has only RING/KEY/NAME levels");
	if (pp->n >= 1 && !kf_local_valid_id(pp->c[0], pp->len[0]))
		return kf_fail(err, bad,
			       "invalid key ring id (use "
			       "[A-Za-z0-9_-], 1-63 characters)");
	if (pp->n >= 2 && !kf_local_valid_id(pp->c[1], pp->len[1]))
		return kf_fail(err, bad,
			       "invalid key id (use [A-Za-z0-9_-], "
			       "1-63 characters)");
	if (pp->n == 3 && !kf_local_valid_name(pp->c[2], pp->len[2]))
		return kf_fail(err, bad,
			       "invalid value name (use "
			       "[A-Za-z0-9._+=@-], 1-255 characters, not "
			       "starting with '.')");
	return 0;
}

void kf_local_ringkey(const struct kf_local_parts *pp,
		      char out[KF_LOCAL_RINGKEY_MAX])
{
	/* Both ids were validated (at most 63 characters): it fits. */
	(void)snprintf(out, KF_LOCAL_RINGKEY_MAX, "%.*s/%.*s", (int)pp->len[0],
		       pp->c[0], (int)pp->len[1], pp->c[1]);
}

int kf_local_fspath(const struct local *l, const char *rel, const char *leaf,
		    char *out, size_t outlen, struct kf_err *err)
{
	int n = snprintf(out, outlen, "%s%s%s%s%s", l->root, *rel ? "/" : "",
			 rel, leaf ? "/" : "", leaf ? leaf : "");

	if (n < 0 || (size_t)n >= outlen)
		return kf_fail(err, KF_E_INVALID, "path too long");
	return 0;
}

int kf_local_value_path(const struct local *l, const char *path, int strict,
			struct kf_local_vpath *v, struct kf_err *err)
{
	struct kf_local_parts pp;
	int n;

	if (kf_local_parse(path, &pp, strict, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	kf_local_ringkey(&pp, v->rk);
	if (kf_local_fspath(l, path, NULL, v->fp, sizeof(v->fp), err) < 0 ||
	    kf_local_fspath(l, v->rk, NULL, v->dir, sizeof(v->dir), err) < 0)
		return -1;
	n = snprintf(v->vdir, sizeof(v->vdir),
		     "%s/" KF_LOCAL_VERSIONS_DIR "/%.*s", v->dir,
		     (int)pp.len[2], pp.c[2]);
	if (n < 0 || (size_t)n >= sizeof(v->vdir))
		return kf_fail(err, KF_E_INVALID, "path too long");
	return 0;
}

int kf_local_errno_fail(struct kf_err *err, int e, const char *what,
			const char *rel)
{
	enum kf_code c = KF_E_IO;

	switch (e) {
	case ENOENT:
		c = KF_E_NOTFOUND;
		break;
	case EEXIST:
		c = KF_E_EXISTS;
		break;
	case ENOTEMPTY:
		c = KF_E_NOTEMPTY;
		break;
	case EACCES:
	case EPERM:
		c = KF_E_DENIED;
		break;
	case EROFS:
		c = KF_E_ROFS;
		break;
	case ENOSPC:
	case EDQUOT:
		c = KF_E_NOSPC;
		break;
	case ENOMEM:
		c = KF_E_NOMEM;
		break;
	case ENOTDIR:
		c = KF_E_NOTDIR;
		break;
	}
	return kf_fail(err, c, "%s local/%s: %s", what, rel, strerror(e));
}
