/*
 * Extended attributes on the mount: the provider's user.* attributes on
 * its paths, user.keyfs.stale on value files, and the user.keyfs.stats
 * document on the root.  Only the
 * user namespace is served; no attribute value is ever logged.
 */
#include "xattr.h"
#include "view.h"

#include "errmap.h"
#include "ops.h"
#include "statsdoc.h"

#include <errno.h>
#include <string.h>

#define XATTR_MAX 65536
#define STATS_XATTR "user.keyfs.stats"
#define STALE_XATTR "user.keyfs.stale"

/* Whether path is a value file (its attributes, through the cache). */
static int is_value(const char *path)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;
	struct kf_provider *p;
	const char *rel;

	if (kf_fs_route(path, &p, &rel) || !p || !*rel ||
	    kf_view_refuse(path) || kf_held_has(&kf_fs_ctx()->held, path))
		return 0;
	return kf_cache_getattr(&kf_fs_ctx()->cache, p, path, rel, 0, &a,
				&err) == 0 &&
	       a.kind == KF_KIND_FILE;
}

/* user.keyfs.stale: "1" while a stale value of path is served. */
static int stale_reply(const char *path, char *value, size_t size)
{
	if (size == 0)
		return 1;
	value[0] = kf_cache_stale(&kf_fs_ctx()->cache, path) ? '1' : '0';
	return 1;
}

/* Hand a getxattr/listxattr answer to FUSE: its size when size is 0. */
static int xattr_reply(const struct kf_buf *out, char *value, size_t size)
{
	if (size == 0)
		return (int)out->len;
	if (out->len > size)
		return -ERANGE;
	memcpy(value, kf_buf_str(out), out->len);
	return (int)out->len;
}

int kf_fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf out;
	const char *rel;
	int rc;

	if (strncmp(name, "user.", 5) != 0 || kf_events_node(path))
		return -ENODATA;
	if (!strcmp(name, STALE_XATTR) && is_value(path))
		return stale_reply(path, value, size);
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p && strcmp(name, STATS_XATTR) != 0)
		return -ENODATA;
	if (p && kf_held_has(&kf_fs_ctx()->held, path))
		return -ENODATA; /* held temporary files have none */
	kf_buf_init(&out, XATTR_MAX);
	rc = kf_view_getxattr(p, path, rel, name, &out);
	if (rc <= 0)
		rc = rc ? rc : xattr_reply(&out, value, size);
	else if (!p && kf_statsdoc_json(kf_fs_ctx(), &out) < 0)
		rc = -ENOMEM;
	else if (p && p->ops->getxattr(p, rel, name, &out, &err) < 0)
		rc = kf_errmap_report("getxattr", path, &err);
	else
		rc = xattr_reply(&out, value, size);
	kf_buf_release(&out);
	return rc;
}

int kf_fs_setxattr(const char *path, const char *name, const char *value,
		   size_t size, int flags)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	const char *rel;
	int rc;

	(void)flags;
	if (kf_fs_ctx()->read_only)
		return -EROFS;
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP;
	if (size > XATTR_MAX)
		return -E2BIG;
	if (kf_events_fs_refuse(kf_fs_ctx(), path))
		return kf_events_fs_refuse(kf_fs_ctx(), path);
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	if (!p || kf_held_has(&kf_fs_ctx()->held, path))
		return -ENOTSUP;
	if (kf_view_refuse(path))
		return -EROFS;
	rc = p->ops->setxattr(p, rel, name, value, size, &err) < 0 ?
		     kf_errmap_report("setxattr", path, &err) :
		     0;
	kf_cache_forget(&kf_fs_ctx()->cache, path);
	return kf_fs_audited("setxattr", path, rc);
}

/* Whether path is a value file of a provider that keeps versions. */
static int versioned(struct kf_provider *p, const char *path, const char *rel)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;

	return p->ops->versions &&
	       kf_cache_getattr(&kf_fs_ctx()->cache, p, path, rel, 0, &a,
				&err) == 0 &&
	       a.kind == KF_KIND_FILE;
}

int kf_fs_listxattr(const char *path, char *list, size_t size)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p;
	struct kf_buf out;
	const char *rel;
	int rc;

	if (kf_events_node(path))
		return 0;
	rc = kf_fs_route(path, &p, &rel);
	if (rc)
		return rc;
	if (p && kf_held_has(&kf_fs_ctx()->held, path))
		return 0; /* held temporary files have none */
	kf_buf_init(&out, XATTR_MAX);
	if (!p)
		kf_buf_add(&out, STATS_XATTR, sizeof(STATS_XATTR));
	if (p && *rel && kf_view_refuse(path))
		rc = 0; /* views carry no attributes */
	else if (p && p->ops->listxattr(p, rel, &out, &err) < 0)
		rc = kf_errmap_report("listxattr", path, &err);
	else if (p && *rel && versioned(p, path, rel) &&
		 kf_buf_add(&out, KF_VERSIONS_XATTR,
			    sizeof(KF_VERSIONS_XATTR)) < 0)
		rc = -ENOMEM;
	if (rc == 0 && p && *rel && !kf_view_refuse(path) && is_value(path) &&
	    kf_buf_add(&out, STALE_XATTR, sizeof(STALE_XATTR)) < 0)
		rc = -ENOMEM;
	if (rc == 0)
		rc = xattr_reply(&out, list, size);
	kf_buf_release(&out);
	return rc;
}

int kf_fs_removexattr(const char *path, const char *name)
{
	(void)path;
	(void)name;
	return kf_fs_ctx()->read_only ? -EROFS : -ENOTSUP;
}
