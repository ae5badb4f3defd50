/*
 * Writes in the aws/ provider: commit a value (creating the secret when
 * absent, restoring one scheduled for deletion), mkdir as a directory
 * held in memory, unlink and rmdir as DeleteSecret,
 * and what a write says when it meets a secret scheduled for deletion.
 * Every write is refused on a read-only mount; logs never hold a value.
 */
#include "aws/tree_priv.h"

#include <string.h>

#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"

#define NAME_RULE "1..512 of A-Z a-z 0-9 / _ + = . @ -"

int kf_aws_tree_scheduled_fail(const char *region, const char *name,
			       struct kf_err *err)
{
	struct kf_err was = *err; /* the call's status and code */

	kf_log(KF_LOG_WARN,
	       "aws: %s/%s is scheduled for deletion: restore "
	       "it (aws secretsmanager restore-secret) or use another name",
	       region, name);
	kf_fail_provider(err, KF_E_STATE, was.http_status,
			 was.provider_code[0] ? was.provider_code : NULL,
			 "aws: %s/%s is scheduled for deletion", region, name);
	err->reason = KF_R_DELETING;
	return -1;
}

int kf_aws_tree_state_fail(const char *region, const char *name,
			   struct kf_err *err)
{
	if (kf_err_is(err, KF_R_DELETING))
		return kf_aws_tree_scheduled_fail(region, name, err);
	return -1;
}

static int rofs(const struct aws_priv *a, struct kf_err *err)
{
	if (a->read_only)
		return kf_fail(err, KF_E_ROFS, "aws: read-only mount");
	return 0;
}

/*
 * Where a write below region ri lands: refused (root_code) for the
 * provider root or a region directory, and on a read-only mount; else
 * rest resolved into *res.
 */
static int write_at(struct aws_priv *a, size_t ri, const char *rest,
		    enum kf_code root_code, const char *root_msg,
		    struct aws_res *res, struct kf_err *err)
{
	if (ri == AWS_NO_REGION || !rest[0])
		return kf_fail(err, root_code, "aws: %s", root_msg);
	if (rofs(a, err) || kf_aws_tree_resolve(a, ri, rest, res, err))
		return -1;
	return 0;
}

static int bad_name(const char *region, const char *name, struct kf_err *err)
{
	kf_log(KF_LOG_WARN, "aws: %s/%s: invalid secret name (" NAME_RULE ")",
	       region, name);
	return kf_fail(err, KF_E_INVALID, "aws: invalid secret name");
}

static int parent_is_file(struct kf_err *err)
{
	return kf_fail(err, KF_E_NOTDIR, "aws: a path component is a secret");
}

/*
 * name is scheduled for deletion and a write asks for it: RestoreSecret,
 * then the value (n bytes; none for `touch`) as one new version.  A
 * restored field secret is a directory again: KF_E_ISDIR, restored.
 */
static int restore_write(struct aws_priv *a, size_t ri, const char *name,
			 const unsigned char *value, size_t n, const char *tok,
			 struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	enum aws_kind kind = AK_NONE;
	int64_t mtime;
	int found;

	if (kf_aws_sm_restore(r->sm, name, err))
		return kf_aws_tree_state_fail(r->name, name, err);
	kf_log(KF_LOG_INFO, "aws: %s/%s restored: a write asked for the name",
	       r->name, name);
	found = kf_aws_tree_describe(a, ri, name, &kind, &mtime, err);
	if (found < 0)
		return -1;
	if (found == 0)
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	kf_aws_index_note(a->idx, ri, name, 0, kind == AK_FIELDSEC);
	if (kind == AK_FIELDSEC)
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	if (n == 0)
		return 0;
	return kf_aws_sm_put_value(r->sm, name, tok, value, n, err) ?
		       kf_aws_tree_state_fail(r->name, name, err) :
		       0;
}

/*
 * CreateSecret name answered "exists" although resolve found nothing a
 * moment ago: our own create whose answer was lost, a concurrent create,
 * or (moto) a name scheduled for deletion (restored, then written).  0
 * when the plain secret now holds what the create meant to store.
 */
static int create_exists(struct aws_priv *a, size_t ri, const char *name,
			 const char *token, const unsigned char *value,
			 size_t n, struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	struct kf_err derr = KF_ERR_INIT;
	enum aws_kind kind;
	int64_t mtime;
	int found = kf_aws_tree_describe(a, ri, name, &kind, &mtime, &derr);

	if (found > 0 && kind == AK_SCHEDULED) {
		kf_err_clear(err);
		return restore_write(a, ri, name, value, n, token, err);
	}
	if (found > 0 && kind == AK_PLAIN) {
		kf_err_clear(err);
		if (!n)
			return 0;
		if (!kf_aws_sm_put_value(r->sm, name, token, value, n, err))
			return 0;
	}
	return kf_aws_tree_state_fail(r->name, name, err);
}

/* Create plain secret name (value may be NULL: no value). */
static int create_secret(struct aws_priv *a, size_t ri, const char *name,
			 const char *token, const unsigned char *value,
			 size_t n, struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];

	if (!kf_aws_tree_name_ok(name, 0))
		return bad_name(r->name, name, err);
	if (kf_aws_sm_create(r->sm, name, token, n ? value : NULL, n, NULL, 0,
			     err)) {
		if (err->code != KF_E_EXISTS)
			return kf_aws_tree_state_fail(r->name, name, err);
		if (create_exists(a, ri, name, token, value, n, err))
			return -1;
	}
	kf_aws_index_note(a->idx, ri, name, 0, 0);
	return 0;
}

/* A 32..64-character idempotency token: the caller's, or a new UUID. */
static const char *pick_token(const char *given, char buf[37],
			      struct kf_err *err)
{
	size_t n = given ? strlen(given) : 0;

	if (n >= 32 && n <= 64)
		return given;
	if (kf_uuid4(buf, err))
		return NULL;
	return buf;
}

/* Commit to plain secret rest: 1 when it must be created again. */
static int commit_plain(struct aws_priv *a, size_t ri, const char *rest,
			const unsigned char *value, size_t n, const char *tok,
			struct kf_err *err)
{
	const char *region = a->regions[ri].name;

	if (n == 0) {
		kf_log(KF_LOG_WARN,
		       "aws: %s/%s: Secrets Manager cannot store "
		       "an empty value; the current value is unchanged",
		       region, rest);
		return kf_fail(err, KF_E_INVALID,
			       "aws: empty values cannot "
			       "be stored");
	}
	if (kf_aws_sm_put_value(a->regions[ri].sm, rest, tok, value, n, err) ==
	    0) {
		kf_aws_index_note(a->idx, ri, rest, 0, 0);
		return 0;
	}
	if (kf_err_is(err, KF_R_DELETING)) { /* deleted elsewhere */
		kf_err_clear(err);
		return restore_write(a, ri, rest, value, n, tok, err);
	}
	if (err->code != KF_E_NOTFOUND)
		return kf_aws_tree_state_fail(region, rest, err);
	/* deleted elsewhere at once, whatever the index or the cache
	 * believed: the write creates it again */
	kf_aws_index_del(a->idx, ri, rest);
	return 1;
}

/* A commit with token tok; *field says it was a field secret's field. */
static int commit_with(struct aws_priv *a, const char *path,
		       const unsigned char *value, size_t n, const char *tok,
		       int *field, struct kf_err *err)
{
	struct aws_res res;
	const char *rest;
	size_t ri;
	int rc;

	if (rofs(a, err) || kf_aws_tree_split_value(a, path, &ri, &rest, err))
		return -1;
	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "aws: value of %zu bytes is "
			       "over the %d-byte Secrets Manager limit",
			       n, KF_AWS_SM_MAX_VALUE);
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_FIELD:
		*field = 1;
		if (!kf_aws_tree_field_ok(res.field))
			return kf_fail(err, KF_E_INVALID,
				       "aws: invalid field "
				       "name");
		if (res.pending)
			return kf_aws_tree_field_first(a, ri, res.name,
						       res.field, value, n, tok,
						       err);
		return kf_aws_tree_field_change(a, ri, res.name, res.field,
						value, n, tok, err);
	case AK_FIELDSEC:
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	case AK_SCHEDULED:
		return restore_write(a, ri, res.name, value, n, tok, err);
	case AK_PLAIN:
		rc = commit_plain(a, ri, res.name, value, n, tok, err);
		if (rc <= 0)
			return rc;
		break;
	default:
		/* absent, even if the file was opened as existing: a
		 * write creates it (again) */
		if (res.bad_path)
			return bad_name(a->regions[ri].name, rest, err);
		if (res.parent_plain)
			return parent_is_file(err);
		break;
	}
	kf_err_clear(err);
	return create_secret(a, ri, res.name, tok, value, n, err);
}

int kf_aws_tree_commit(struct kf_provider *p, const char *path,
		       const unsigned char *value, size_t n, const char *token,
		       int flags, struct kf_buf *version, struct kf_err *err)
{
	char tokbuf[37];
	const char *tok = pick_token(token, tokbuf, err);
	int field = 0;

	(void)flags;
	if (!tok || commit_with(p->priv, path, value, n, tok, &field, err))
		return -1;
	/* The ClientRequestToken becomes the new version's VersionId; a
	 * secret created without a value has none. */
	if (version)
		(void)kf_buf_adds(version, n || field ? tok : AWS_NO_VERSION);
	return 0;
}

int kf_aws_tree_can_create(struct kf_provider *p, const char *path,
			   struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	if (rofs(a, err) || kf_aws_tree_split(a, path, &ri, &rest, err))
		return -1;
	if (ri == AWS_NO_REGION || !rest[0])
		return kf_fail(err, KF_E_PERM,
			       "aws: files live in a region "
			       "directory");
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		return 0;
	case AK_FIELD:
		if (!kf_aws_tree_field_ok(res.field))
			return kf_fail(err, KF_E_INVALID,
				       "aws: invalid field "
				       "name");
		return 0;
	case AK_FIELDSEC:
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	case AK_SCHEDULED:
		return 0; /* the commit restores it */
	default:
		if (res.parent_plain)
			return parent_is_file(err);
		if (res.bad_path || !kf_aws_tree_name_ok(res.name, 0))
			return bad_name(a->regions[ri].name, rest, err);
		return 0;
	}
}

/* DeleteSecret; a retry that finds it already scheduled succeeded. */
static int delete_secret(struct aws_priv *a, size_t ri, const char *name,
			 struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	enum aws_kind kind;
	int64_t mtime;

	if (kf_aws_sm_delete(r->sm, name, a->recovery_days, err)) {
		struct kf_err derr = KF_ERR_INIT;

		if (err->code != KF_E_STATE ||
		    kf_aws_tree_describe(a, ri, name, &kind, &mtime, &derr) <=
			    0 ||
		    kind != AK_SCHEDULED)
			return -1;
		kf_err_clear(err);
	}
	kf_aws_index_note(a->idx, ri, name, 1, 0);
	if (a->recovery_days)
		kf_log(KF_LOG_INFO,
		       "aws: %s/%s scheduled for deletion in %u "
		       "days",
		       r->name, name, a->recovery_days);
	return 0;
}

/*
 * mkdir in a held directory not yet decided (res: AK_FIELD, pending): it
 * becomes a directory of names, and the new one is held in it.
 */
static int mkdir_in_held(struct aws_priv *a, size_t ri,
			 const struct aws_res *res, struct kf_err *err)
{
	char name[AWS_NAME_MAX + 2];

	if ((size_t)snprintf(name, sizeof(name), "%s/%s", res->name,
			     res->field) >= sizeof(name) ||
	    !kf_aws_tree_name_ok(name, 0))
		return bad_name(a->regions[ri].name, res->field, err);
	if (kf_aws_index_hold(a->idx, ri, res->name, KF_AWS_HELD_PREFIX) ||
	    kf_aws_index_hold(a->idx, ri, name, KF_AWS_HELD_OPEN))
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

/*
 * A new directory is held in memory, with no API call: the first thing
 * made in it decides what it becomes (a file: a field secret; a
 * directory: a directory of names).  Left empty, it creates nothing.
 */
int kf_aws_tree_mkdir(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	if (kf_aws_tree_split(a, path, &ri, &rest, err)) {
		if (err->code == KF_E_NOTFOUND && !strchr(path, '/'))
			return kf_fail(err, KF_E_PERM,
				       "aws: regions are set "
				       "with -o aws_region=");
		return -1;
	}
	if (write_at(a, ri, rest, KF_E_EXISTS, "exists", &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
	case AK_FIELDSEC:
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_EXISTS, "aws: exists");
	case AK_FIELD:
		if (res.pending)
			return mkdir_in_held(a, ri, &res, err);
		return kf_fail(err, KF_E_PERM,
			       "aws: a field secret holds "
			       "files only");
	case AK_SCHEDULED:
		return kf_aws_tree_scheduled_fail(a->regions[ri].name, res.name,
						  err);
	default:
		if (res.bad_path)
			return bad_name(a->regions[ri].name, rest, err);
		if (res.parent_plain)
			return parent_is_file(err);
		break;
	}
	if (!kf_aws_tree_name_ok(res.name, 0))
		return bad_name(a->regions[ri].name, res.name, err);
	if (kf_aws_index_hold(a->idx, ri, res.name, KF_AWS_HELD_OPEN))
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

static void count_one(void *ctx, const char *name, int fields)
{
	(void)name;
	(void)fields;
	(*(size_t *)ctx)++;
}

/* rmdir of a held directory: forgotten when nothing lies below it. */
static int rmdir_held(struct aws_priv *a, size_t ri, const char *name,
		      struct kf_err *err)
{
	char prefix[AWS_NAME_MAX + 2];
	size_t below = 0;
	int rc;

	/* fits: a held name is a valid name */
	(void)snprintf(prefix, sizeof(prefix), "%s/", name);
	kf_aws_index_held_each(a->idx, ri, prefix, count_one, &below);
	rc = below ? 1 : kf_aws_tree_prefix_exists(a, ri, name, err);
	if (rc < 0)
		return -1;
	if (rc > 0)
		return kf_fail(err, KF_E_NOTEMPTY, "aws: directory not empty");
	kf_aws_index_unhold(a->idx, ri, name);
	return 0;
}

/* Delete field secret name when it holds no field. */
static int rmdir_fields(struct aws_priv *a, size_t ri, const char *name,
			struct kf_err *err)
{
	struct kf_secret *v = NULL;
	json_t *obj = NULL;
	int rc = -1;

	if (kf_aws_sm_get_value(a->regions[ri].sm, name, &v, NULL, 0, err))
		goto out;
	if (v->len) {
		obj = kf_json_object((const char *)v->data, v->len);
		if (!obj || json_object_size(obj) > 0) {
			kf_fail(err, KF_E_NOTEMPTY,
				"aws: directory not "
				"empty");
			goto out;
		}
	}
	rc = delete_secret(a, ri, name, err);
out:
	json_decref(obj);
	kf_secret_free(v);
	return rc;
}

int kf_aws_tree_rmdir(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	if (kf_aws_tree_split(a, path, &ri, &rest, err) ||
	    write_at(a, ri, rest, KF_E_PERM,
		     "regions are set with "
		     "-o aws_region=",
		     &res, err))
		return -1;
	switch (res.kind) {
	case AK_FIELDSEC:
		return rmdir_fields(a, ri, res.name, err);
	case AK_HELD:
		return rmdir_held(a, ri, res.name, err);
	case AK_PREFIX:
		return kf_fail(err, KF_E_NOTEMPTY,
			       "aws: directory not "
			       "empty");
	case AK_PLAIN:
	case AK_FIELD:
		if (res.pending)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such directory");
		return kf_fail(err, KF_E_NOTDIR, "aws: not a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
	}
}

int kf_aws_tree_unlink(struct kf_provider *p, const char *path,
		       struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	char token[37];
	size_t ri;

	if (kf_aws_tree_split(a, path, &ri, &rest, err) ||
	    write_at(a, ri, rest, KF_E_ISDIR, "a directory", &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		return delete_secret(a, ri, res.name, err);
	case AK_FIELD:
		if (res.pending)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such secret");
		if (kf_uuid4(token, err))
			return -1;
		return kf_aws_tree_field_change(a, ri, res.name, res.field,
						NULL, 0, token, err);
	case AK_FIELDSEC:
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}
