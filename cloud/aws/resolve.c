/*
 * Paths of the aws/ provider: which region a path is in, and what the
 * rest names (a secret, a field of a field secret, a directory made by
 * '/' in names), from the index when it knows, else from the service.
 * Only reads: never creates, changes or deletes a secret.
 */
#include "aws/tree_priv.h"
#include "core/log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int kf_aws_tree_name_ok(const char *s, int existing)
{
	char path[AWS_PATH_MAX + 1];
	size_t n = strlen(s);

	if (n < 1 || n > AWS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && !strchr("/_+=.@-", c) &&
		    !(existing && c == '!'))
			return 0;
	}
	if (existing)
		return 1;
	/* a new name is never one that needs escaping */
	kf_aws_tree_name_path(s, path);
	return strcmp(path, s) == 0;
}

int kf_aws_tree_field_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= AWS_FIELD_MAX &&
	       kf_aws_sm_is_text((const unsigned char *)s, n);
}

/* Close the component that started at out[from] and ends at out[*o]. */
static void dots_escape(char *out, size_t from, size_t *o)
{
	size_t n = *o - from;

	if ((n == 1 || n == 2) && strncmp(out + from, "..", n) == 0) {
		*o = from;
		for (size_t i = 0; i < n; i++, *o += 3)
			memcpy(out + *o, "%2E", 3);
	}
}

void kf_aws_tree_name_path(const char *name, char *out)
{
	kf_aws_tree_name_path_n(name, AWS_NAME_MAX, out);
}

void kf_aws_tree_name_path_n(const char *name, size_t max, char *out)
{
	size_t n = strnlen(name, max), o = 0, from = 0;

	for (size_t i = 0; i < n; i++) {
		if (name[i] != '/') {
			out[o++] = name[i];
			continue;
		}
		if (o > from && i + 1 < n && name[i + 1] != '/') {
			dots_escape(out, from, &o);
			out[o++] = '/';
			from = o;
		} else {
			memcpy(out + o, "%2F", 3);
			o += 3;
		}
	}
	dots_escape(out, from, &o);
	out[o] = '\0';
}

int kf_aws_tree_path_name(const char *path, char *out)
{
	return kf_aws_tree_path_name_n(path, AWS_NAME_MAX, out);
}

int kf_aws_tree_path_name_n(const char *path, size_t max, char *out)
{
	char back[AWS_ESC_NAME_MAX * 3 + 1];
	size_t o = 0;

	if (max > AWS_ESC_NAME_MAX)
		return -1;
	for (const char *s = path; *s; s++) {
		if (o >= max)
			return -1;
		if (*s != '%') {
			out[o++] = *s;
		} else if (strncmp(s, "%2F", 3) == 0 ||
			   strncmp(s, "%2E", 3) == 0) {
			out[o++] = s[2] == 'F' ? '/' : '.';
			s += 2;
		} else {
			return -1;
		}
	}
	out[o] = '\0';
	kf_aws_tree_name_path_n(out, max, back);
	return strcmp(back, path) == 0 ? 0 : -1;
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

int kf_aws_tree_split_value(struct aws_priv *a, const char *path, size_t *ri,
			    const char **rest, struct kf_err *err)
{
	if (kf_aws_tree_split(a, path, ri, rest, err))
		return -1;
	if (*ri == AWS_NO_REGION || !(*rest)[0])
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	return 0;
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

/*
 * Whether some live secret lies below the directory of name (its path
 * form is name's followed by '/'): the index first, then one ListSecrets
 * filtered on "name/" (a case-insensitive prefix match, so answers are
 * checked).
 */
int kf_aws_tree_prefix_exists(struct aws_priv *a, size_t ri, const char *name,
			      struct kf_err *err)
{
	char prefix[AWS_NAME_MAX + 2], dir[AWS_PATH_MAX + 2];
	char path[AWS_PATH_MAX + 1];
	struct kf_aws_sm_page page;
	size_t dlen;
	int found = 0;

	if (strlen(name) >= AWS_NAME_MAX)
		return 0;
	/* fits: name is shorter than AWS_NAME_MAX */
	(void)snprintf(prefix, sizeof(prefix), "%s/", name);
	if (kf_aws_index_has_prefix(a->idx, ri, prefix))
		return 1;
	kf_aws_tree_name_path(name, dir);
	dlen = strlen(dir);
	dir[dlen++] = '/';
	dir[dlen] = '\0';
	if (kf_aws_sm_list(a->regions[ri].sm, prefix, NULL, 10, &page, err))
		return -1;
	for (size_t i = 0; i < page.n; i++) {
		const struct kf_aws_sm_meta *m = &page.v[i];

		if (kf_aws_index_deleted(a->idx, ri, m->name))
			continue;
		kf_aws_index_put(a->idx, ri, m->name,
				 kf_aws_tree_meta_fields(m),
				 kf_aws_tree_meta_mtime(m));
		kf_aws_tree_name_path(m->name, path);
		if (strncmp(path, dir, dlen) == 0)
			found = 1;
	}
	kf_aws_sm_page_release(&page);
	return found;
}

/*
 * kf_aws_tree_prefix_exists for a name DescribeSecret found: a role that
 * may read its own secrets but not list (ListSecrets cannot be scoped to
 * some secrets, so least-privilege policies leave it out) still reads
 * them; the directory of the same name, if any, stays out of its sight.
 */
static int prefix_beside_secret(struct aws_priv *a, size_t ri, const char *name,
				struct kf_err *err)
{
	int rc = kf_aws_tree_prefix_exists(a, ri, name, err);

	if (rc < 0 && err->code == KF_E_DENIED) {
		kf_log(KF_LOG_DEBUG,
		       "aws: ListSecrets refused; %s is read as the secret",
		       name);
		kf_err_clear(err);
		rc = 0;
	}
	return rc;
}

/* Whether the index knows a secret named below name/. */
static int index_prefix(struct aws_priv *a, size_t ri, const char *name)
{
	char prefix[AWS_NAME_MAX + 2];

	return strlen(name) < AWS_NAME_MAX &&
	       (size_t)snprintf(prefix, sizeof(prefix), "%s/", name) <
		       sizeof(prefix) &&
	       kf_aws_index_has_prefix(a->idx, ri, prefix);
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
 * What the index alone says about name (parent: its parent secret's name
 * or "", field: what follows the parent in the path).  Returns 1 when the
 * parent is known to be a plain secret (and not a directory).
 */
static int from_index(struct aws_priv *a, size_t ri, const char *name,
		      const char *parent, const char *field,
		      struct aws_res *res)
{
	int64_t mtime = 0;
	int fields = 0;

	if (kf_aws_index_held(a->idx, ri, name) != KF_AWS_HELD_NO) {
		res_set(res, AK_HELD, name, 0);
		return 0;
	}
	if (parent[0] &&
	    kf_aws_index_held(a->idx, ri, parent) == KF_AWS_HELD_OPEN) {
		/* the first file made in it makes it a field secret */
		res_set(res, AK_FIELD, parent, 0);
		res->field = field;
		res->pending = 1;
		return 0;
	}
	if (kf_aws_index_get(a->idx, ri, name, &fields, &mtime)) {
		if (!fields && index_prefix(a, ri, name))
			res_set(res, AK_PREFIX, name, 0);
		else
			res_set(res, fields ? AK_FIELDSEC : AK_PLAIN, name,
				mtime);
		return 0;
	}
	if (parent[0] &&
	    kf_aws_index_get(a->idx, ri, parent, &fields, &mtime)) {
		if (fields) {
			res_set(res, AK_FIELD, parent, mtime);
			res->field = field;
			return 0;
		}
		if (!index_prefix(a, ri, parent))
			return 1;
	}
	/* a directory of names seen in a recent listing */
	if (index_prefix(a, ri, name))
		res_set(res, AK_PREFIX, name, 0);
	return 0;
}

/*
 * The kind of parent (plain_known: the index says a plain secret); a
 * plain secret that is also a directory of names is AK_PREFIX.
 */
static int parent_kind(struct aws_priv *a, size_t ri, const char *parent,
		       int plain_known, enum aws_kind *kind, int64_t *mtime,
		       struct kf_err *err)
{
	int rc;

	*kind = AK_NONE;
	if (plain_known) {
		*kind = AK_PLAIN;
	} else {
		if (!kf_aws_tree_name_ok(parent, 1))
			return 0;
		rc = kf_aws_tree_describe(a, ri, parent, kind, mtime, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			*kind = AK_NONE;
	}
	if (*kind != AK_PLAIN)
		return 0;
	rc = prefix_beside_secret(a, ri, parent, err);
	if (rc > 0)
		*kind = AK_PREFIX;
	return rc < 0 ? -1 : 0;
}

/* name as a secret: DescribeSecret, a directory of names winning over
 * anything but a field secret.  1 when *res is set. */
static int as_secret(struct aws_priv *a, size_t ri, const char *name,
		     struct aws_res *res, struct kf_err *err)
{
	enum aws_kind kind = AK_NONE;
	int64_t mtime = 0;
	int rc;

	if (!kf_aws_tree_name_ok(name, 1))
		return 0;
	rc = kf_aws_tree_describe(a, ri, name, &kind, &mtime, err);
	if (rc <= 0)
		return rc;
	if (kind != AK_FIELDSEC) {
		rc = prefix_beside_secret(a, ri, name, err);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			kind = AK_PREFIX;
			mtime = 0;
		}
	}
	res_set(res, kind, name, mtime);
	return 1;
}

/*
 * rest's name and its parent's (both from the path form; parent "" at
 * the top), *field the path's last component.  -1: no name's path.
 */
static int names_of(const char *rest, char *name, char *parent,
		    const char **field)
{
	const char *slash = strrchr(rest, '/');
	char ppath[AWS_PATH_MAX + 1];

	parent[0] = '\0';
	*field = slash ? slash + 1 : "";
	if (kf_aws_tree_path_name(rest, name))
		return -1;
	if (!slash)
		return 0;
	if ((size_t)(slash - rest) > AWS_PATH_MAX)
		return -1;
	memcpy(ppath, rest, (size_t)(slash - rest));
	ppath[slash - rest] = '\0';
	return kf_aws_tree_path_name(ppath, parent);
}

int kf_aws_tree_unknown(struct aws_priv *a, size_t ri, const char *rest,
			char *name)
{
	char parent[AWS_NAME_MAX + 1];
	struct aws_res res;
	const char *field;

	memset(&res, 0, sizeof(res));
	if (names_of(rest, name, parent, &field) ||
	    !kf_aws_tree_name_ok(name, 1))
		return 0;
	if (from_index(a, ri, name, parent, field, &res) || res.kind != AK_NONE)
		return 0;
	return 1;
}

/*
 * Order: directories held in memory, the index, then DescribeSecret
 * (strongly consistent), then the parent as a field secret, then a name
 * prefix.  A field secret's files
 * win over secrets whose names continue below it; a directory of names
 * wins over a plain secret of the same name.
 */
int kf_aws_tree_resolve(struct aws_priv *a, size_t ri, const char *rest,
			struct aws_res *res, struct kf_err *err)
{
	char name[AWS_NAME_MAX + 1], parent[AWS_NAME_MAX + 1];
	enum aws_kind kind = AK_NONE;
	const char *field;
	int64_t mtime = 0;
	int plain_known, rc;

	memset(res, 0, sizeof(*res));
	if (names_of(rest, name, parent, &field)) {
		res->bad_path = 1;
		return 0;
	}
	plain_known = from_index(a, ri, name, parent, field, res);
	if (res->kind != AK_NONE)
		return 0;
	rc = as_secret(a, ri, name, res, err);
	if (rc)
		return rc < 0 ? -1 : 0;
	res_set(res, AK_NONE, name, 0);
	if (parent[0]) {
		if (parent_kind(a, ri, parent, plain_known, &kind, &mtime, err))
			return -1;
		if (kind == AK_FIELDSEC) {
			res_set(res, AK_FIELD, parent, mtime);
			res->field = field;
			return 0;
		}
		if (kind == AK_PLAIN) {
			res->parent_plain = 1;
			return 0;
		}
	}
	if (!kf_aws_tree_name_ok(name, 1))
		return 0;
	rc = kf_aws_tree_prefix_exists(a, ri, name, err);
	if (rc < 0)
		return -1;
	if (rc > 0)
		res->kind = AK_PREFIX;
	return 0;
}
