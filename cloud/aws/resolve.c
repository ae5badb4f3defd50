/*
 * Paths of the aws/ provider: which region a path is in, and what the
 * rest names (a secret, a field of a field secret, a directory made by
 * '/' in names), from the index when it knows, else from the service.
 * Only reads: never creates, changes or deletes a secret.
 */
#include "aws/tree_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int kf_aws_tree_name_ok(const char *s, int existing)
{
	size_t n = strlen(s);

	if (n < 1 || n > AWS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && !strchr("/_+=.@-", c) &&
		    !(existing && c == '!'))
			return 0;
	}
	return 1;
}

int kf_aws_tree_field_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= AWS_FIELD_MAX &&
	       kf_aws_sm_is_text((const unsigned char *)s, n);
}

int kf_aws_tree_split(struct aws_priv *a, const char *path, size_t *ri,
		      const char **rest, struct kf_err *err)
{
	size_t n = strcspn(path, "/");

	*ri = AWS_NO_REGION;
	*rest = "";
	if (!path[0])
		return 0;
	for (size_t i = 0; i < a->nregions; i++) {
		if (strlen(a->regions[i].name) == n &&
		    strncmp(a->regions[i].name, path, n) == 0) {
			*ri = i;
			*rest = path[n] ? path + n + 1 : "";
			return 0;
		}
	}
	return kf_fail(err, KF_E_NOTFOUND,
		       "aws: region not configured "
		       "(see -o aws_region=)");
}

int kf_aws_tree_meta_fields(const struct kf_aws_sm_meta *m)
{
	const char *v = kf_aws_sm_meta_tag(m, KF_AWS_LAYOUT_TAG);

	return v && strcmp(v, KF_AWS_LAYOUT_FIELDS) == 0;
}

int64_t kf_aws_tree_meta_mtime(const struct kf_aws_sm_meta *m)
{
	return m->changed ? m->changed : m->created;
}

int kf_aws_tree_describe(struct aws_priv *a, size_t ri, const char *name,
			 enum aws_kind *kind, int64_t *mtime,
			 struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	struct kf_aws_sm_meta m;
	int fields;

	if (kf_aws_sm_describe(r->sm, name, &m, err)) {
		if (err->code == KF_E_NOTFOUND) {
			kf_err_clear(err);
			return 0;
		}
		return -1;
	}
	fields = kf_aws_tree_meta_fields(&m);
	*mtime = kf_aws_tree_meta_mtime(&m);
	if (m.deleted) {
		*kind = AK_SCHEDULED;
	} else {
		*kind = fields ? AK_FIELDSEC : AK_PLAIN;
		kf_aws_index_put(a->idx, ri, name, fields, *mtime);
	}
	kf_aws_sm_meta_release(&m);
	return 1;
}

/* Whether some live secret's name starts with prefix (ends in '/'). */
static int prefix_exists(struct aws_priv *a, size_t ri, const char *prefix,
			 struct kf_err *err)
{
	struct kf_aws_sm_page page;
	int found = 0;

	if (kf_aws_index_has_prefix(a->idx, ri, prefix))
		return 1;
	if (kf_aws_sm_list(a->regions[ri].sm, prefix, NULL, 10, &page, err))
		return -1;
	for (size_t i = 0; i < page.n; i++) {
		const struct kf_aws_sm_meta *m = &page.v[i];

		if (kf_aws_index_deleted(a->idx, ri, m->name))
			continue;
		kf_aws_index_put(a->idx, ri, m->name,
				 kf_aws_tree_meta_fields(m),
				 kf_aws_tree_meta_mtime(m));
		found = 1;
	}
	kf_aws_sm_page_release(&page);
	return found;
}

/* *res is the secret name (at most AWS_NAME_MAX bytes) of this kind. */
static void res_set(struct aws_res *res, enum aws_kind kind, const char *name,
		    int64_t mtime)
{
	res->kind = kind;
	res->mtime = mtime;
	/* name fits: callers check its length against AWS_NAME_MAX */
	(void)snprintf(res->name, sizeof(res->name), "%s", name);
}

/*
 * What the index alone says about rest (parent: its parent secret's name
 * or "", field: what follows the parent).  Returns 1 when the parent is
 * known to be a plain secret.
 */
static int from_index(struct aws_priv *a, size_t ri, const char *rest,
		      const char *parent, const char *field,
		      struct aws_res *res)
{
	char prefix[AWS_NAME_MAX + 2];
	size_t rlen = strlen(rest);
	int64_t mtime = 0;
	int fields = 0;

	if (rlen <= AWS_NAME_MAX &&
	    kf_aws_index_get(a->idx, ri, rest, &fields, &mtime)) {
		res_set(res, fields ? AK_FIELDSEC : AK_PLAIN, rest, mtime);
		return 0;
	}
	if (parent[0] &&
	    kf_aws_index_get(a->idx, ri, parent, &fields, &mtime)) {
		if (!fields)
			return 1;
		res_set(res, AK_FIELD, parent, mtime);
		res->field = field;
		return 0;
	}
	/* a directory of names seen in a recent listing */
	if (rlen < AWS_NAME_MAX &&
	    (size_t)snprintf(prefix, sizeof(prefix), "%s/", rest) <
		    sizeof(prefix) &&
	    kf_aws_index_has_prefix(a->idx, ri, prefix))
		res->kind = AK_PREFIX;
	return 0;
}

/* The kind of parent (plain_known: the index says a plain secret). */
static int parent_kind(struct aws_priv *a, size_t ri, const char *parent,
		       int plain_known, enum aws_kind *kind, int64_t *mtime,
		       struct kf_err *err)
{
	int rc;

	*kind = AK_NONE;
	if (plain_known) {
		*kind = AK_PLAIN;
		return 0;
	}
	if (!kf_aws_tree_name_ok(parent, 1))
		return 0;
	rc = kf_aws_tree_describe(a, ri, parent, kind, mtime, err);
	if (rc == 0)
		*kind = AK_NONE;
	return rc < 0 ? -1 : 0;
}

/*
 * Order: the index, then DescribeSecret (strongly consistent), then the
 * parent as a field secret, then a name prefix.  A field secret's files
 * win over secrets whose names continue below it.
 */
int kf_aws_tree_resolve(struct aws_priv *a, size_t ri, const char *rest,
			struct aws_res *res, struct kf_err *err)
{
	const char *slash = strrchr(rest, '/');
	char parent[AWS_NAME_MAX + 1] = "";
	char prefix[AWS_NAME_MAX + 2];
	enum aws_kind kind = AK_NONE;
	int64_t mtime = 0;
	int plain_known, rc;

	memset(res, 0, sizeof(*res));
	if (slash && (size_t)(slash - rest) <= AWS_NAME_MAX) {
		memcpy(parent, rest, (size_t)(slash - rest));
		parent[slash - rest] = '\0';
	}
	plain_known =
		from_index(a, ri, rest, parent, slash ? slash + 1 : "", res);
	if (res->kind != AK_NONE)
		return 0;
	if (kf_aws_tree_name_ok(rest, 1)) {
		rc = kf_aws_tree_describe(a, ri, rest, &kind, &mtime, err);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			res_set(res, kind, rest, mtime);
			return 0;
		}
	}
	if (parent[0]) {
		if (parent_kind(a, ri, parent, plain_known, &kind, &mtime, err))
			return -1;
		if (kind == AK_FIELDSEC) {
			res_set(res, AK_FIELD, parent, mtime);
			res->field = slash + 1;
			return 0;
		}
		if (kind == AK_PLAIN) {
			res->parent_plain = 1;
			return 0;
		}
	}
	if (strlen(rest) > AWS_NAME_MAX - 1 || !kf_aws_tree_name_ok(rest, 1))
		return 0;
	/* fits: rest is shorter than AWS_NAME_MAX */
	(void)snprintf(prefix, sizeof(prefix), "%s/", rest);
	rc = prefix_exists(a, ri, prefix, err);
	if (rc < 0)
		return -1;
	if (rc > 0)
		res->kind = AK_PREFIX;
	return 0;
}
