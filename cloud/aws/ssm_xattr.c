/*
 * Extended attributes of the ssm/ provider's parameters, all read-only:
 * user.keyfs.id (the ARN), user.keyfs.version, user.keyfs.type,
 * user.keyfs.description and user.keyfs.tier, from one
 * DescribeParameters (the ARN, when its answer has none, from what a
 * read learnt or one GetParameter).  A description changes only with a
 * new version, so setting one is refused.  Never touches a value beyond
 * dropping the one GetParameter returns.
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

#define XA_ID "user.keyfs.id"
#define XA_VERSION "user.keyfs.version"
#define XA_TYPE "user.keyfs.type"
#define XA_DESC "user.keyfs.description"
#define XA_TIER "user.keyfs.tier"

/*
 * The parameter an xattr call is about, described now into *m: 1, or 0
 * when path is no parameter (the root, a region, a directory).
 */
static int describe_target(struct ssm_priv *s, const char *path, size_t *ri,
			   char *rest_out, struct kf_aws_ssm_meta *m,
			   struct kf_err *err)
{
	struct ssm_res res;
	const char *rest;
	int rc;

	memset(m, 0, sizeof(*m));
	if (kf_ssm_tree_split(s, path, ri, &rest, err))
		return -1;
	if (*ri == SSM_NO_REGION || !rest[0])
		return 0;
	if (kf_ssm_tree_resolve(s, *ri, rest, &res, err))
		return -1;
	if (res.kind == SK_NONE) {
		kf_ssm_tree_res_release(&res);
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	rc = res.kind == SK_FILE;
	if (rc)
		rc = kf_aws_ssm_describe(s->regions[*ri].ssm, res.name, m, err);
	if (rc == 0 && res.kind == SK_FILE) {
		kf_ssm_index_del(s->idx, *ri, rest);
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	/* fits: rest_out has KF_SSM_PATH_MAX + 1 bytes */
	(void)snprintf(rest_out, KF_SSM_PATH_MAX + 1, "%s", rest);
	if (rc > 0 && !m->arn) {
		m->arn = res.meta.arn; /* what a read learnt; taken over */
		res.meta.arn = NULL;
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}

/* The ARN from GetParameter (its value is dropped at once). */
static int arn_by_get(struct ssm_priv *s, size_t ri, const char *rest,
		      struct kf_aws_ssm_meta *m, struct kf_err *err)
{
	struct kf_aws_ssm_meta g;
	struct kf_secret *v = NULL;

	if (kf_aws_ssm_get(s->regions[ri].ssm, m->name, NULL, &v, &g, err))
		return -1;
	kf_secret_free(v);
	m->arn = g.arn; /* taken over */
	g.arn = NULL;
	kf_aws_ssm_meta_release(&g);
	if (m->arn)
		kf_ssm_index_put_arn(s->idx, ri, rest, m->arn);
	return 0;
}

int kf_ssm_tree_getxattr(struct kf_provider *p, const char *path,
			 const char *name, struct kf_buf *out,
			 struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char rest[KF_SSM_PATH_MAX + 1];
	struct kf_aws_ssm_meta m;
	const char *v = NULL;
	char num[24];
	size_t ri;
	int rc;

	if (strcmp(name, XA_ID) && strcmp(name, XA_VERSION) &&
	    strcmp(name, XA_TYPE) && strcmp(name, XA_DESC) &&
	    strcmp(name, XA_TIER))
		return kf_fail(err, KF_E_NODATA, "ssm: no such attribute");
	rc = describe_target(s, path, &ri, rest, &m, err);
	if (rc <= 0) {
		kf_aws_ssm_meta_release(&m);
		return rc < 0 ? -1 :
				kf_fail(err, KF_E_NODATA,
					"ssm: no such attribute");
	}
	rc = 0;
	if (!strcmp(name, XA_ID)) {
		if (!m.arn)
			rc = arn_by_get(s, ri, rest, &m, err);
		v = m.arn;
	} else if (!strcmp(name, XA_VERSION)) {
		(void)snprintf(num, sizeof(num), "%lld", (long long)m.version);
		v = m.version > 0 ? num : NULL;
	} else if (!strcmp(name, XA_TYPE)) {
		v = m.type;
	} else if (!strcmp(name, XA_DESC)) {
		v = m.description && m.description[0] ? m.description : NULL;
	} else {
		v = m.tier;
	}
	if (rc == 0 && !v)
		rc = kf_fail(err, KF_E_NODATA, "ssm: no such attribute");
	else if (rc == 0 && kf_buf_adds(out, v))
		rc = kf_fail(err, KF_E_RANGE, "ssm: attribute too long");
	kf_aws_ssm_meta_release(&m);
	return rc;
}

int kf_ssm_tree_setxattr(struct kf_provider *p, const char *path,
			 const char *name, const void *value, size_t n,
			 struct kf_err *err)
{
	(void)p;
	(void)value;
	(void)n;
	if (!strcmp(name, XA_DESC))
		kf_log(KF_LOG_WARN,
		       "ssm: %s: a description changes only with a new "
		       "version: use aws ssm put-parameter --description",
		       path);
	else if (!strncmp(name, "user.keyfs.", 11))
		kf_log(KF_LOG_WARN, "ssm: %s: %s is read-only", path, name);
	return kf_fail(err, KF_E_NOTSUP, "ssm: attributes are read-only");
}

/* Append name and its NUL to out when present. */
static int list_one(struct kf_buf *out, const char *name, int present)
{
	return present ? kf_buf_add(out, name, strlen(name) + 1) : 0;
}

int kf_ssm_tree_listxattr(struct kf_provider *p, const char *path,
			  struct kf_buf *out, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char rest[KF_SSM_PATH_MAX + 1];
	struct kf_aws_ssm_meta m;
	size_t ri;
	int rc = describe_target(s, path, &ri, rest, &m, err);

	/* Only what getxattr can return: getfattr -d reads every name. */
	if (rc > 0 &&
	    (list_one(out, XA_ID, 1) ||
	     list_one(out, XA_VERSION, m.version > 0) ||
	     list_one(out, XA_TYPE, m.type != NULL) ||
	     list_one(out, XA_DESC, m.description && m.description[0]) ||
	     list_one(out, XA_TIER, m.tier != NULL)))
		rc = kf_fail(err, KF_E_RANGE, "ssm: attribute list too long");
	kf_aws_ssm_meta_release(&m);
	return rc < 0 ? -1 : 0;
}
