/*
 * Versions in the ssm/ provider: the value of a parameter at a version
 * number or a label (GetParameter "name:3", "name:label"), every version
 * of it (GetParameterHistory, all pages, never a value kept), and the
 * change stamp (DescribeParameters' Version, one call, never the value).
 * A directory that is also a parameter answers for the parameter here.
 * Views' syntax is parsed by fs/; this only answers for one path and one
 * version name.  Never logs a value.
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pages of GetParameterHistory followed for one answer: the service keeps
 * 100 versions, so more pages than this is a loop. */
#define HISTORY_PAGES 64
/* The longest label Parameter Store accepts. */
#define LABEL_MAX 100

/* Whether v can name a version (a number or a label) at all. */
static int selector_ok(const char *v)
{
	size_t n = strlen(v);

	return n >= 1 && n <= LABEL_MAX &&
	       strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == n;
}

/*
 * The parameter path stands for: a parameter, or a directory that may
 * also be one (its hierarchical name).  *dir says which.
 */
static int target(struct ssm_priv *s, const char *path, size_t *ri, char *name,
		  int *dir, struct kf_err *err)
{
	struct ssm_res res;
	const char *rest;
	int rc = 0;

	if (kf_ssm_tree_split_value(s, path, ri, &rest, err) ||
	    kf_ssm_tree_resolve(s, *ri, rest, &res, err))
		return -1;
	*dir = res.kind == SK_DIR;
	if (res.kind == SK_FILE || res.kind == SK_DIR)
		/* fits: both have KF_SSM_NAME_MAX + 1 bytes */
		(void)snprintf(name, KF_SSM_NAME_MAX + 1, "%s", res.name);
	else if (res.kind == SK_HELD)
		rc = kf_fail(err, KF_E_ISDIR, "ssm: a directory");
	else
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	kf_ssm_tree_res_release(&res);
	return rc;
}

int kf_ssm_tree_read_version(struct kf_provider *p, const char *path,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char name[KF_SSM_NAME_MAX + 1];
	size_t ri;
	int dir;

	*value = NULL;
	*immutable = 0;
	if (target(s, path, &ri, name, &dir, err))
		return -1;
	if (version && !selector_ok(version))
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such version");
	if (kf_aws_ssm_get(s->regions[ri].ssm, name, version, value, NULL,
			   err)) {
		if (dir && !version && err->code == KF_E_NOTFOUND)
			return kf_fail(err, KF_E_ISDIR, "ssm: a directory");
		/* a label the service refuses names no version */
		if (version && err->code == KF_E_INVALID)
			err->code = KF_E_NOTFOUND;
		return -1;
	}
	/* a number names one value forever; a label may move */
	*immutable = version &&
		     strspn(version, "0123456789") == strlen(version);
	return 0;
}

int kf_ssm_tree_versions(struct kf_provider *p, const char *path,
			 int (*fn)(void *ctx, const char *version,
				   int64_t created, const char *labels),
			 void *ctx, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char name[KF_SSM_NAME_MAX + 1], num[24];
	struct kf_aws_ssm_versions pg;
	char *token = NULL;
	size_t ri;
	int rc = -1, stop = 0, dir;

	if (target(s, path, &ri, name, &dir, err))
		return -1;
	for (unsigned page = 0; !stop; page++) {
		if (page == HISTORY_PAGES) {
			kf_fail(err, KF_E_IO,
				"GetParameterHistory: more than %d pages",
				HISTORY_PAGES);
			goto out;
		}
		if (kf_aws_ssm_history(s->regions[ri].ssm, name, token,
				       KF_AWS_SSM_PAGE_MAX, &pg, err)) {
			if (dir && err->code == KF_E_NOTFOUND)
				kf_fail(err, KF_E_ISDIR, "ssm: a directory");
			goto out;
		}
		for (size_t i = 0; i < pg.n && !stop; i++) {
			(void)snprintf(num, sizeof(num), "%lld",
				       (long long)pg.v[i].version);
			stop = fn(ctx, num, pg.v[i].changed_ms,
				  pg.v[i].labels ? pg.v[i].labels : "");
		}
		free(token);
		token = pg.next_token; /* taken over */
		pg.next_token = NULL;
		kf_aws_ssm_versions_release(&pg);
		if (!token)
			stop = 1;
	}
	rc = 0;
out:
	free(token);
	return rc;
}

/*
 * One DescribeParameters of the name the index knows for path (else its
 * hierarchical name, and for one level the name without '/'): the
 * decimal Version, as a read sets it.
 */
int kf_ssm_tree_stamp(struct kf_provider *p, const char *path,
		      struct kf_buf *out, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char name[KF_SSM_NAME_MAX + 1];
	struct kf_aws_ssm_meta m;
	const char *rest;
	size_t ri;
	int rc, known;

	if (kf_ssm_tree_split_value(s, path, &ri, &rest, err))
		return -1;
	known = kf_ssm_index_meta(s->idx, ri, rest, &m) && m.name;
	if (known)
		/* fits: names in the index are at most that long */
		(void)snprintf(name, sizeof(name), "%s", m.name);
	kf_aws_ssm_meta_release(&m);
	if (!known && kf_ssm_path_name(rest, name))
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	rc = kf_aws_ssm_describe(s->regions[ri].ssm, name, &m, err);
	if (rc == 0 && !known && !strchr(rest, '/') && !strchr(rest, '%'))
		rc = kf_aws_ssm_describe(s->regions[ri].ssm, rest, &m, err);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		kf_ssm_index_del(s->idx, ri, rest);
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	rc = kf_buf_addf(out, "%lld", (long long)m.version) ?
		     kf_fail(err, KF_E_RANGE, "ssm: stamp too long") :
		     0;
	kf_aws_ssm_meta_release(&m);
	return rc;
}
