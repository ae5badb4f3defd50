/*
 * Versions in the aws/ provider: the value of a secret (or of one field
 * of a field secret) at a stage label or a VersionId, every version of a
 * secret (ListSecretVersionIds, deprecated ones included, all pages), and
 * the change stamp (DescribeSecret's AWSCURRENT VersionId, one call,
 * never the value).  Views' syntax is parsed by fs/; this only answers
 * for one path and one version name.  Never logs a value.
 */
#include "aws/tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/fields.h"
#include "core/log.h"

/* Pages of ListSecretVersionIds followed for one answer: the service
 * keeps about 100 versions, so more pages than this is a loop. */
#define VERSIONS_PAGES 64
/* Longest label Secrets Manager accepts (VersionStage). */
#define STAGE_MAX 256

/* Whether v has a VersionId's shape: 32..64 of [A-Za-z0-9-]. */
static int id_shaped(const char *v)
{
	size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
			     "uvwxyz0123456789-");

	return v[n] == '\0' && n >= 32 && n <= 64;
}

/* Whether v can name a version at all (else no request is made). */
static int version_ok(const char *v)
{
	size_t n = strlen(v);

	if (n < 1 || n > STAGE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * GetSecretValue of name at version: an id-shaped version is tried as a
 * VersionId first (*immutable = 1), then as a label when the service
 * has no such id; anything else is a label.  Every failure meaning "no
 * such version" is KF_E_NOTFOUND.
 */
static int get_at(struct aws_region *r, const char *name, const char *version,
		  struct kf_secret **value, int *immutable, struct kf_err *err)
{
	int rc;

	if (!version_ok(version))
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such version");
	if (id_shaped(version)) {
		rc = kf_aws_sm_get_version(r->sm, name, NULL, version, value,
					   err);
		if (rc == 0) {
			*immutable = 1;
			return 0;
		}
		if (err->code != KF_E_NOTFOUND && err->code != KF_E_INVALID)
			return -1;
		kf_err_clear(err);
	}
	rc = kf_aws_sm_get_version(r->sm, name, version, NULL, value, err);
	if (rc == 0)
		return 0;
	/* a name the service refuses as a label names no version */
	if (err->code == KF_E_INVALID || kf_err_is(err, KF_R_DELETING)) {
		err->code = KF_E_NOTFOUND;
		err->reason = KF_R_NONE;
	}
	return -1;
}

/* The secret's value: current (version NULL, as a read gives it) or at
 * version. */
int kf_aws_tree_secret_value(struct aws_priv *a, size_t ri, const char *name,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	int rc;

	if (version)
		return get_at(r, name, version, value, immutable, err);
	rc = kf_aws_sm_get_value(r->sm, name, value, NULL, 0, err);
	if (rc && kf_err_is(err, KF_R_DELETING))
		err->code = KF_E_NOTFOUND; /* deleted elsewhere */
	if (rc && err->code == KF_E_NOTFOUND)
		kf_aws_index_del(a->idx, ri, name);
	if (rc == 0 && !(*value)->version[0])
		kf_secret_set_version(*value, AWS_NO_VERSION);
	return rc;
}

/*
 * Replace *value (a field secret's JSON object) by its member field, as
 * a field file shows it, keeping the version.  KF_E_NOTFOUND when there
 * is no such member or the value is no JSON object.
 */
static int field_of(struct kf_secret **value, const char *field,
		    struct kf_err *err)
{
	struct kf_secret *s = NULL;
	json_t *obj = NULL, *v;
	int rc = -1;

	if (kf_aws_fields_parse(*value, &obj, err)) {
		if (kf_err_is(err, KF_R_NOT_OBJECT)) {
			kf_log(KF_LOG_DEBUG,
			       "aws: version %s is not a JSON "
			       "object: no fields",
			       (*value)->version);
			kf_err_clear(err);
			kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
		}
		goto out;
	}
	v = json_object_get(obj, field);
	if (!v) {
		kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
		goto out;
	}
	s = kf_aws_fields_bytes(v);
	if (!s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	kf_secret_set_version(s, (*value)->version);
	kf_secret_free(*value);
	*value = s;
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

int kf_aws_tree_read_version(struct kf_provider *p, const char *path,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err)
{
	char name[AWS_NAME_MAX + 1];
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;
	int rc = -1;

	*value = NULL;
	*immutable = 0;
	if (kf_aws_tree_split_value(a, path, &ri, &rest, err))
		return -1;
	if (a->direct_reads && kf_aws_tree_unknown(a, ri, rest, name)) {
		rc = kf_aws_tree_secret_value(a, ri, name, version, value,
					      immutable, err);
		if (rc == 0 || err->code != KF_E_NOTFOUND)
			return rc;
		kf_err_clear(err); /* no such secret: resolve the path */
		rc = -1;
	}
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
	case AK_FIELDSEC:
		return kf_aws_tree_secret_value(a, ri, res.name, version, value,
						immutable, err);
	case AK_FIELD:
		if (res.pending)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such field");
		if (kf_aws_tree_secret_value(a, ri, res.name, version, value,
					     immutable, err) == 0)
			rc = field_of(value, res.field, err);
		if (rc) {
			kf_secret_free(*value);
			*value = NULL;
			*immutable = 0;
		}
		return rc;
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}

/* The secret whose versions path has: a secret, or a field's secret. */
static int versions_target(struct aws_priv *a, const char *path, size_t *ri,
			   struct aws_res *res, struct kf_err *err)
{
	const char *rest;

	if (kf_aws_tree_split(a, path, ri, &rest, err))
		return -1;
	if (*ri == AWS_NO_REGION || !rest[0])
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	if (kf_aws_tree_resolve(a, *ri, rest, res, err))
		return -1;
	switch (res->kind) {
	case AK_PLAIN:
	case AK_FIELDSEC:
		return 0;
	case AK_FIELD:
		if (!res->pending)
			return 0;
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}

int kf_aws_tree_versions(struct kf_provider *p, const char *path,
			 int (*fn)(void *ctx, const char *version,
				   int64_t created, const char *labels),
			 void *ctx, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct kf_aws_sm_versions pg;
	struct aws_res res;
	char *token = NULL;
	size_t ri;
	int rc = -1, stop = 0;

	if (versions_target(a, path, &ri, &res, err))
		return -1;
	for (unsigned page = 0; !stop; page++) {
		if (page == VERSIONS_PAGES) {
			kf_fail(err, KF_E_IO,
				"ListSecretVersionIds: more than %d pages",
				VERSIONS_PAGES);
			goto out;
		}
		if (kf_aws_sm_list_versions(a->regions[ri].sm, res.name, token,
					    100, &pg, err)) {
			if (kf_err_is(err, KF_R_DELETING))
				err->code = KF_E_NOTFOUND;
			goto out;
		}
		for (size_t i = 0; i < pg.n && !stop; i++)
			stop = fn(ctx, pg.v[i].id, pg.v[i].created_ms,
				  pg.v[i].stages);
		free(token);
		token = pg.next_token; /* taken over */
		pg.next_token = NULL;
		kf_aws_sm_versions_release(&pg);
		if (!token)
			stop = 1;
	}
	rc = 0;
out:
	free(token);
	return rc;
}

/*
 * One DescribeSecret of name: 1 and its AWSCURRENT VersionId appended to
 * out ("-" without a value), 0 when there is no such live secret (or,
 * with fields, no such field secret), -1 on failure.
 */
static int stamp_of(struct aws_priv *a, size_t ri, const char *name, int fields,
		    struct kf_buf *out, struct kf_err *err)
{
	struct kf_aws_sm_meta m;
	int rc = 0, is_fields;

	if (kf_aws_sm_describe(a->regions[ri].sm, name, &m, err)) {
		if (err->code != KF_E_NOTFOUND)
			return -1;
		kf_err_clear(err);
		kf_aws_index_del(a->idx, ri, name);
		return 0;
	}
	is_fields = kf_aws_tree_meta_fields(&m);
	if (m.deleted) {
		kf_aws_index_del(a->idx, ri, name);
	} else if (!fields || is_fields) {
		/* Not kf_aws_index_put: the index's record of what name is
		 * ages from the listing or lookup that made it, so a prefix
		 * made elsewhere still wins within ttl while it is watched. */
		rc = 1;
		if (kf_buf_adds(out, m.current_version ? m.current_version :
							 AWS_NO_VERSION))
			rc = kf_fail(err, KF_E_RANGE, "aws: stamp too long");
	}
	kf_aws_sm_meta_release(&m);
	return rc;
}

/*
 * The change stamp: the secret's own, or for a field file its field
 * secret's.  One call when the index knows which the path is, else the
 * path as a secret first, then its parent as a field secret.
 */
int kf_aws_tree_stamp(struct kf_provider *p, const char *path,
		      struct kf_buf *out, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	char name[AWS_NAME_MAX + 1], parent[AWS_NAME_MAX + 1];
	char ppath[AWS_PATH_MAX + 1];
	const char *rest, *slash;
	int fields = 0, rc = 0;
	size_t ri;

	if (kf_aws_tree_split_value(a, path, &ri, &rest, err))
		return -1;
	parent[0] = '\0';
	slash = strrchr(rest, '/');
	if (slash && (size_t)(slash - rest) <= AWS_PATH_MAX) {
		memcpy(ppath, rest, (size_t)(slash - rest));
		ppath[slash - rest] = '\0';
		if (kf_aws_tree_path_name(ppath, parent))
			parent[0] = '\0';
	}
	if (kf_aws_tree_path_name(rest, name) || !kf_aws_tree_name_ok(name, 1))
		name[0] = '\0';
	/* a field file the index knows (a field secret's fields win over
	 * secrets named below it): only its secret is asked */
	if (parent[0] && kf_aws_index_get(a->idx, ri, parent, &fields, NULL) &&
	    fields)
		name[0] = '\0';
	if (name[0])
		rc = stamp_of(a, ri, name, 0, out, err);
	if (rc == 0 && parent[0] && kf_aws_tree_name_ok(parent, 1))
		rc = stamp_of(a, ri, parent, 1, out, err);
	if (rc == 0)
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	return rc < 0 ? -1 : 0;
}
