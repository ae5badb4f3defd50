/*
 * Extended attributes of the aws/ provider's secrets: user.keyfs.id (the
 * ARN) and user.keyfs.version (AWSCURRENT's VersionId), read-only, and
 * user.keyfs.description, which UpdateSecret changes (user.keyfs.versions
 * is read-only too; fs/ answers it from the versions op).  Never touches a
 * value.
 */
#include "aws/tree_priv.h"

#include <stdlib.h>
#include <string.h>

#define XA_ID "user.keyfs.id"
#define XA_VERSION "user.keyfs.version"
#define XA_DESC "user.keyfs.description"
/* Answered by fs/ from the versions op; read-only like the others. */
#define XA_VERSIONS "user.keyfs.versions"
#define AWS_DESC_MAX 2048

/* The secret an xattr call is about (kind AK_NONE for the root and
 * region directories); NOTFOUND when there is none at path. */
static int xattr_target(struct aws_priv *a, const char *path, size_t *ri,
			struct aws_res *res, struct kf_err *err)
{
	const char *rest;

	if (kf_aws_tree_split(a, path, ri, &rest, err))
		return -1;
	if (*ri == AWS_NO_REGION || !rest[0]) {
		res->kind = AK_NONE;
		return 0;
	}
	if (kf_aws_tree_resolve(a, *ri, rest, res, err))
		return -1;
	if (res->kind == AK_NONE || res->kind == AK_SCHEDULED)
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	return 0;
}

/* Whether the node has the keyfs attributes: a secret, not a field. */
static int has_xattrs(const struct aws_res *res)
{
	return res->kind == AK_PLAIN || res->kind == AK_FIELDSEC;
}

int kf_aws_tree_getxattr(struct kf_provider *p, const char *path,
			 const char *name, struct kf_buf *out,
			 struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct kf_aws_sm_meta m;
	struct aws_res res;
	const char *v = NULL;
	size_t ri;
	int rc = -1;

	if (xattr_target(a, path, &ri, &res, err))
		return -1;
	if (!has_xattrs(&res) ||
	    (strcmp(name, XA_ID) && strcmp(name, XA_VERSION) &&
	     strcmp(name, XA_DESC)))
		return kf_fail(err, KF_E_NODATA, "aws: no such attribute");
	if (kf_aws_sm_describe(a->regions[ri].sm, res.name, &m, err))
		return -1;
	if (strcmp(name, XA_ID) == 0)
		v = m.arn;
	else if (strcmp(name, XA_VERSION) == 0)
		v = m.current_version;
	else
		v = m.description ? m.description : "";
	if (!v)
		kf_fail(err, KF_E_NODATA, "aws: no such attribute");
	else if (kf_buf_adds(out, v))
		kf_fail(err, KF_E_RANGE, "aws: attribute too long");
	else
		rc = 0;
	kf_aws_sm_meta_release(&m);
	return rc;
}

int kf_aws_tree_setxattr(struct kf_provider *p, const char *path,
			 const char *name, const void *value, size_t n,
			 struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	char *desc = NULL;
	size_t ri;
	int rc;

	if (a->read_only)
		return kf_fail(err, KF_E_ROFS, "aws: read-only mount");
	if (xattr_target(a, path, &ri, &res, err))
		return -1;
	if (!has_xattrs(&res))
		return kf_fail(err, KF_E_NOTSUP, "aws: no attributes here");
	if (strcmp(name, XA_ID) == 0 || strcmp(name, XA_VERSION) == 0 ||
	    strcmp(name, XA_VERSIONS) == 0)
		return kf_fail(err, KF_E_PERM, "aws: %s is read-only", name);
	if (strcmp(name, XA_DESC) != 0)
		return kf_fail(err, KF_E_NOTSUP, "aws: unsupported attribute");
	if (n > AWS_DESC_MAX || (n && !kf_aws_sm_is_text(value, n)))
		return kf_fail(err, KF_E_INVALID,
			       "aws: a description is up "
			       "to %d bytes of UTF-8 text",
			       AWS_DESC_MAX);
	desc = strndup(value, n);
	if (!desc)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	rc = kf_aws_sm_update_description(a->regions[ri].sm, res.name, desc,
					  err);
	free(desc);
	return rc ? kf_aws_tree_state_fail(a->regions[ri].name, res.name, err) :
		    0;
}

int kf_aws_tree_listxattr(struct kf_provider *p, const char *path,
			  struct kf_buf *out, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct kf_aws_sm_meta m;
	struct aws_res res;
	size_t ri;
	int rc = 0;

	if (xattr_target(a, path, &ri, &res, err))
		return -1;
	if (!has_xattrs(&res))
		return 0;
	/* Only what getxattr can return: a secret without a value has no
	 * user.keyfs.version (getfattr -d reads every name listed). */
	if (kf_aws_sm_describe(a->regions[ri].sm, res.name, &m, err))
		return -1;
	if ((m.arn && kf_buf_add(out, XA_ID, sizeof(XA_ID))) ||
	    (m.current_version &&
	     kf_buf_add(out, XA_VERSION, sizeof(XA_VERSION))) ||
	    kf_buf_add(out, XA_DESC, sizeof(XA_DESC)))
		rc = kf_fail(err, KF_E_RANGE, "aws: attribute list too long");
	kf_aws_sm_meta_release(&m);
	return rc;
}
