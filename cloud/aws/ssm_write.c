/*
 * Writes in the ssm/ provider: commit a value (PutParameter: a new name
 * with the configured type, key and tier; an existing one keeping its
 * own), mkdir as a directory held in memory, unlink as DeleteParameter,
 * rmdir of a held directory.  Every write is refused on a read-only
 * mount; logs never hold a value.
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sm.h"
#include "core/clock.h"
#include "core/log.h"

#define SECURE "SecureString"

static int rofs(const struct ssm_priv *s, struct kf_err *err)
{
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "ssm: read-only mount");
	return 0;
}

static int tier_big(const char *tier)
{
	return tier && (!strcmp(tier, "Advanced") ||
			!strcmp(tier, "Intelligent-Tiering"));
}

/*
 * The Tier a put of n bytes sends (have: the parameter's, NULL for a new
 * one): none up to 4 KB (a new one: -o ssm_tier=, if set); above, the
 * parameter's own when it is Advanced, else -o ssm_tier= when that
 * allows 8 KB.  -1 with KF_E_TOOBIG when no tier holds n bytes.
 */
static int tier_for(const struct ssm_priv *s, int existing, const char *have,
		    size_t n, const char **tier, struct kf_err *err)
{
	*tier = existing ? NULL : s->tier;
	if (n <= KF_AWS_SSM_STANDARD_MAX)
		return 0;
	if (existing && tier_big(have))
		*tier = have;
	else if (tier_big(s->tier))
		*tier = s->tier;
	else
		return kf_fail(err, KF_E_TOOBIG,
			       "ssm: %zu bytes is over the %d-byte limit of "
			       "Standard parameters (-o ssm_tier=Advanced "
			       "allows %d)",
			       n, KF_AWS_SSM_STANDARD_MAX,
			       KF_AWS_SSM_ADVANCED_MAX);
	return 0;
}

/* The name rule a path that names nothing breaks (NULL: none, or the
 * path is no name's path form). */
static const char *rule_of(const struct ssm_res *res)
{
	return res->name[0] ? kf_ssm_tree_name_rule(res->name) : NULL;
}

/* Record this process's write of name (version made) in the index. */
static void noted(struct ssm_priv *s, size_t ri, const char *name,
		  const struct kf_aws_ssm_meta *was,
		  const struct kf_aws_ssm_put *o, int64_t made)
{
	struct kf_aws_ssm_meta m;

	memset(&m, 0, sizeof(m));
	m.name = (char *)name;
	m.arn = was ? was->arn : NULL;
	m.type = (char *)o->type;
	m.key_id = (char *)o->key_id;
	m.description = was ? was->description : NULL;
	m.tier = (char *)(o->tier ? o->tier : was ? was->tier : NULL);
	m.version = made;
	m.changed = (int64_t)time(NULL);
	kf_ssm_index_note(s->idx, ri, &m, 0);
	kf_log(KF_LOG_DEBUG, "ssm: %s: %s: version %lld made (over %lld)",
	       s->regions[ri].name, name, (long long)made,
	       (long long)o->prev_version);
}

/* PutParameter over existing parameter m: its own type and key. */
static int put_existing(struct ssm_priv *s, size_t ri,
			const struct kf_aws_ssm_meta *m,
			const unsigned char *value, size_t n, int64_t *made,
			struct kf_err *err)
{
	struct kf_aws_ssm_put o;
	int landed = 0;

	memset(&o, 0, sizeof(o));
	if (tier_for(s, 1, m->tier, n, &o.tier, err))
		return -1;
	o.overwrite = 1;
	o.type = m->type;
	o.key_id = m->type && !strcmp(m->type, SECURE) ? m->key_id : NULL;
	o.prev_version = m->version;
	if (kf_aws_ssm_put(s->regions[ri].ssm, m->name, value, n, &o, made,
			   &landed, err))
		return -1;
	if (landed)
		kf_log(KF_LOG_INFO,
		       "ssm: %s: %s: a retried write found its first "
		       "attempt made version %lld",
		       s->regions[ri].name, m->name, (long long)*made);
	noted(s, ri, m->name, m, &o, *made);
	return 0;
}

/* The parameter name as the service describes it now: 1, 0 absent. */
static int describe_now(struct ssm_priv *s, size_t ri, const char *name,
			struct kf_aws_ssm_meta *m, struct kf_err *err)
{
	int rc = kf_aws_ssm_describe(s->regions[ri].ssm, name, m, err);

	if (rc > 0)
		kf_ssm_tree_seen(s, ri, m);
	return rc;
}

/* A new parameter name (hierarchical, checked): -o ssm_type=, ssm_kms_key=
 * and ssm_tier=.  Made meanwhile by someone else: overwritten. */
static int put_new(struct ssm_priv *s, size_t ri, const char *rest,
		   const char *name, const unsigned char *value, size_t n,
		   int64_t *made, struct kf_err *err)
{
	struct kf_aws_ssm_meta m;
	struct kf_aws_ssm_put o;
	int rc;

	if (kf_ssm_tree_name_rule(name))
		return kf_ssm_tree_bad_name(s, ri, rest,
					    kf_ssm_tree_name_rule(name), err);
	memset(&o, 0, sizeof(o));
	if (tier_for(s, 0, NULL, n, &o.tier, err))
		return -1;
	o.type = s->type;
	o.key_id = !strcmp(s->type, SECURE) ? s->kms_key : NULL;
	if (kf_aws_ssm_put(s->regions[ri].ssm, name, value, n, &o, made, NULL,
			   err) == 0) {
		noted(s, ri, name, NULL, &o, *made);
		return 0;
	}
	if (err->code != KF_E_EXISTS)
		return -1;
	kf_err_clear(err);
	rc = describe_now(s, ri, name, &m, err);
	if (rc == 0)
		kf_fail(err, KF_E_EXISTS, "ssm: made and gone meanwhile");
	if (rc > 0)
		rc = put_existing(s, ri, &m, value, n, made, err) ? -1 : 1;
	kf_aws_ssm_meta_release(&m);
	return rc > 0 ? 0 : -1;
}

/* Commit to parameter res (its metadata as the index or a lookup has
 * it; described again when its type is unknown). */
static int commit_file(struct ssm_priv *s, size_t ri, const char *rest,
		       const struct ssm_res *res, const unsigned char *value,
		       size_t n, int64_t *made, struct kf_err *err)
{
	struct kf_aws_ssm_meta m;
	int rc;

	if (res->meta.type && res->meta.name)
		return put_existing(s, ri, &res->meta, value, n, made, err);
	rc = describe_now(s, ri, res->name, &m, err);
	if (rc > 0)
		rc = put_existing(s, ri, &m, value, n, made, err);
	else if (rc == 0)
		rc = put_new(s, ri, rest, res->name, value, n, made, err);
	kf_aws_ssm_meta_release(&m);
	return rc;
}

/* What no parameter can hold: refused before any call, with a log line
 * for the case shells hide (an empty value only shows at close()). */
static int value_ok(const struct ssm_priv *s, size_t ri, const char *rest,
		    const unsigned char *value, size_t n, struct kf_err *err)
{
	if (n == 0) {
		kf_log(KF_LOG_WARN,
		       "ssm: %s/%s: Parameter Store cannot hold an empty "
		       "value; nothing was created or changed",
		       s->regions[ri].name, rest);
		return kf_fail(err, KF_E_INVALID,
			       "ssm: empty values cannot "
			       "be stored");
	}
	if (!kf_aws_sm_is_text(value, n))
		return kf_fail(err, KF_E_INVALID,
			       "ssm: a parameter holds UTF-8 "
			       "text without NUL bytes");
	if (n > KF_AWS_SSM_ADVANCED_MAX)
		return kf_fail(err, KF_E_TOOBIG,
			       "ssm: %zu bytes is over the "
			       "%d-byte Parameter Store limit",
			       n, KF_AWS_SSM_ADVANCED_MAX);
	return 0;
}

int kf_ssm_tree_commit(struct kf_provider *p, const char *path,
		       const unsigned char *value, size_t n, const char *token,
		       int flags, struct kf_buf *version, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	int64_t made = 0;
	size_t ri;
	int rc;

	(void)token; /* PutParameter takes none: see kf_aws_ssm_put */
	(void)flags; /* absent or not, a put makes it */
	if (rofs(s, err) || kf_ssm_tree_split_value(s, path, &ri, &rest, err) ||
	    value_ok(s, ri, rest, value, n, err) ||
	    kf_ssm_tree_resolve(s, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case SK_FILE:
		rc = commit_file(s, ri, rest, &res, value, n, &made, err);
		break;
	case SK_DIR:
	case SK_HELD:
		rc = kf_fail(err, KF_E_ISDIR, "ssm: a directory");
		break;
	default:
		if (res.bad_path)
			rc = kf_ssm_tree_bad_name(s, ri, rest, rule_of(&res),
						  err);
		else
			rc = put_new(s, ri, rest, res.name, value, n, &made,
				     err);
	}
	kf_ssm_tree_res_release(&res);
	if (rc == 0 && version)
		(void)kf_buf_addf(version, "%lld", (long long)made);
	return rc;
}

/* The parent of rest (a path with a '/') must be a directory. */
static int parent_dir(struct ssm_priv *s, size_t ri, const char *rest,
		      struct kf_err *err)
{
	char parent[KF_SSM_PATH_MAX + 1];
	const char *slash = strrchr(rest, '/');
	struct ssm_res res;
	enum ssm_kind kind;

	if (!slash)
		return 0; /* the region */
	if ((size_t)(slash - rest) > KF_SSM_PATH_MAX)
		return kf_fail(err, KF_E_INVALID, "ssm: path too long");
	memcpy(parent, rest, (size_t)(slash - rest));
	parent[slash - rest] = '\0';
	if (kf_ssm_tree_resolve(s, ri, parent, &res, err))
		return -1;
	kind = res.kind;
	kf_ssm_tree_res_release(&res);
	if (kind == SK_FILE)
		return kf_fail(err, KF_E_NOTDIR,
			       "ssm: a path component is "
			       "a parameter");
	if (kind == SK_NONE)
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such directory");
	return 0;
}

/*
 * Where a write below region ri lands: refused (root_code) for the
 * provider root or a region directory, and on a read-only mount; else
 * rest resolved into *res.
 */
static int write_at(struct ssm_priv *s, const char *path, size_t *ri,
		    const char **rest, enum kf_code root_code,
		    const char *root_msg, struct ssm_res *res,
		    struct kf_err *err)
{
	if (kf_ssm_tree_split(s, path, ri, rest, err))
		return -1;
	if (*ri == SSM_NO_REGION || !(*rest)[0])
		return kf_fail(err, root_code, "ssm: %s", root_msg);
	if (rofs(s, err) || kf_ssm_tree_resolve(s, *ri, *rest, res, err))
		return -1;
	return 0;
}

int kf_ssm_tree_can_create(struct kf_provider *p, const char *path,
			   struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc = 0;

	if (write_at(s, path, &ri, &rest, KF_E_PERM,
		     "files live in a region directory", &res, err))
		return -1;
	switch (res.kind) {
	case SK_FILE:
		break;
	case SK_DIR:
	case SK_HELD:
		rc = kf_fail(err, KF_E_ISDIR, "ssm: a directory");
		break;
	default:
		if (res.bad_path || kf_ssm_tree_name_rule(res.name))
			rc = kf_ssm_tree_bad_name(s, ri, rest, rule_of(&res),
						  err);
		else
			rc = parent_dir(s, ri, rest, err);
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}

/*
 * A new directory is held in memory, with no API call, until a
 * parameter is written below it; left empty, it creates nothing.
 */
int kf_ssm_tree_mkdir(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc;

	if (kf_ssm_tree_split(s, path, &ri, &rest, err)) {
		if (err->code == KF_E_NOTFOUND && !strchr(path, '/'))
			return kf_fail(err, KF_E_PERM,
				       "ssm: regions are set "
				       "with -o ssm_region=");
		return -1;
	}
	if (write_at(s, path, &ri, &rest, KF_E_EXISTS, "exists", &res, err))
		return -1;
	if (res.kind != SK_NONE)
		rc = kf_fail(err, KF_E_EXISTS, "ssm: exists");
	else if (res.bad_path || kf_ssm_tree_name_rule(res.name))
		rc = kf_ssm_tree_bad_name(s, ri, rest, rule_of(&res), err);
	else if (kf_ssm_depth(res.name) >= KF_AWS_SSM_DEPTH_MAX)
		/* nothing could be made in it */
		rc = kf_ssm_tree_bad_name(s, ri, rest, "at most 15 levels",
					  err);
	else
		rc = parent_dir(s, ri, rest, err);
	if (rc == 0 && kf_ssm_index_hold(s->idx, ri, rest))
		rc = kf_fail(err, KF_E_NOMEM, "out of memory");
	kf_ssm_tree_res_release(&res);
	return rc;
}

/* rmdir of a held directory: forgotten when nothing lies below it. */
static int rmdir_held(struct ssm_priv *s, size_t ri, const char *rest,
		      const char *name, struct kf_err *err)
{
	char *next = NULL;
	size_t found = 0;

	if (kf_ssm_index_held_below(s->idx, ri, rest))
		return kf_fail(err, KF_E_NOTEMPTY, "ssm: directory not empty");
	if (!kf_ssm_index_below_known(s->idx, ri, rest) &&
	    kf_ssm_tree_path_filter_ok(name)) {
		if (kf_ssm_tree_probe(s, ri, rest, NULL, kf_clock_now_ms(),
				      &next, &found, err))
			return -1;
		free(next);
		if (found)
			return kf_fail(err, KF_E_NOTEMPTY,
				       "ssm: directory not empty");
	}
	kf_ssm_index_unhold(s->idx, ri, rest);
	return 0;
}

int kf_ssm_tree_rmdir(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc;

	if (write_at(s, path, &ri, &rest, KF_E_PERM,
		     "regions are set with -o ssm_region=", &res, err))
		return -1;
	switch (res.kind) {
	case SK_HELD:
		rc = rmdir_held(s, ri, rest, res.name, err);
		break;
	case SK_DIR:
		rc = kf_fail(err, KF_E_NOTEMPTY, "ssm: directory not empty");
		break;
	case SK_FILE:
		rc = kf_fail(err, KF_E_NOTDIR, "ssm: not a directory");
		break;
	default:
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such directory");
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}

int kf_ssm_tree_unlink(struct kf_provider *p, const char *path,
		       struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct kf_aws_ssm_meta gone;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc;

	if (write_at(s, path, &ri, &rest, KF_E_ISDIR, "a directory", &res, err))
		return -1;
	switch (res.kind) {
	case SK_FILE:
		memset(&gone, 0, sizeof(gone));
		gone.name = res.name;
		rc = kf_aws_ssm_delete(s->regions[ri].ssm, res.name, err);
		if (rc == 0)
			kf_ssm_index_note(s->idx, ri, &gone, 1);
		else if (err->code == KF_E_NOTFOUND)
			kf_ssm_index_del(s->idx, ri, rest);
		break;
	case SK_DIR:
	case SK_HELD:
		rc = kf_fail(err, KF_E_ISDIR, "ssm: a directory");
		break;
	default:
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}
