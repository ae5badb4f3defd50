/*
 * The `aws` provider: maps aws/REGION/NAME paths onto Secrets Manager
 * calls (cloud/aws_sm).  It keeps no values: what it knows about names
 * (so `ls -l` costs list calls only, and its own creates and deletes show
 * before ListSecrets catches up) lives in cloud/aws_index.  Never logs a
 * value.
 *
 * Decisions where Secrets Manager and files disagree:
 * - An empty value cannot be stored (SecretString/SecretBinary min 1):
 *   committing 0 bytes to an existing secret fails with KF_E_INVALID
 *   (EINVAL) and a log line, the value is unchanged; 0 bytes on a new name
 *   (`touch`) creates the secret without a value, which reads empty.
 * - Valid UTF-8 without NUL goes out as SecretString, anything else as
 *   SecretBinary.  Fields of a field secret hold UTF-8 text only.
 * - A name scheduled for deletion: KF_E_STATE (EBUSY) on create/write with
 *   a log line; reads and lookups see it as absent.
 * - A directory wins over a file of the same name (secret "a" and "a/b");
 *   a field secret's fields win over secrets named below it.
 * - Listings ask for SortBy=name so a prefix directory spanning pages is
 *   listed once; a service that ignores SortBy may list it twice.
 */
#include "aws/tree.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "aws/fields.h"
#include "aws/index.h"
#include "aws/sm.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"

#define AWS_NAME_MAX 512
#define AWS_FIELD_MAX 255
#define AWS_DESC_MAX 2048
#define AWS_LIST_PAGE 100

enum aws_kind {
	AK_NONE = 0,
	AK_PLAIN,		/* a secret shown as a file */
	AK_FIELDSEC,		/* a secret tagged keyfs:layout=fields */
	AK_FIELD,		/* NAME/FIELD below a field secret */
	AK_PREFIX,		/* a directory made by '/' in names */
	AK_SCHEDULED,		/* a secret scheduled for deletion */
};

struct aws_region {
	char name[64];
	struct kf_aws_sm *sm;
};

struct aws_priv {
	struct aws_region *regions;
	size_t nregions;
	struct kf_aws_chain *chain;
	struct kf_aws_index *idx;	/* names known without asking */
	unsigned recovery_days;
	int read_only;
	/*
	 * Serialises read-modify-write of field secrets in this process.
	 * Held across network calls on purpose: it is never taken by
	 * readers, only by field writers, which must not interleave.
	 */
	pthread_mutex_t field_lock;
	int no_batch;		/* atomic: BatchGetSecretValue was refused */
};

struct aws_res {
	enum aws_kind kind;
	int parent_plain;	/* AK_NONE and the parent is a plain secret */
	char name[AWS_NAME_MAX + 1];	/* the secret (FIELD: its parent) */
	const char *field;	/* AK_FIELD: points into the caller's path */
	int64_t mtime;
};

static const struct kf_aws_sm_tag fields_tag = {
	(char *)KF_AWS_LAYOUT_TAG, (char *)KF_AWS_LAYOUT_FIELDS
};

/* ---- names and paths --------------------------------------------------- */

/*
 * Secrets Manager's NameType: 1..512 of [A-Za-z0-9/_+=.@-].  Existing
 * names may also hold '!' (service-managed secrets such as rds!...), but
 * keyfs never creates one.
 */
static int name_ok(const char *s, int existing)
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

static int valid_name(const char *s)
{
	return name_ok(s, 0);
}

static int valid_field(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= AWS_FIELD_MAX &&
	       kf_aws_sm_is_text((const unsigned char *)s, n);
}

/*
 * Split path into a region index and the rest.  *ri = (size_t)-1 for the
 * provider root.  *rest is "" for a region directory.
 */
static int split_path(struct aws_priv *a, const char *path, size_t *ri,
		      const char **rest, struct kf_err *err)
{
	size_t n = strcspn(path, "/");

	*ri = (size_t)-1;
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
	return kf_fail(err, KF_E_NOTFOUND, "aws: region not configured "
		       "(see -o aws_region=)");
}

static int meta_is_fields(const struct kf_aws_sm_meta *m)
{
	const char *v = kf_aws_sm_meta_tag(m, KF_AWS_LAYOUT_TAG);

	return v && strcmp(v, KF_AWS_LAYOUT_FIELDS) == 0;
}

static int64_t meta_mtime(const struct kf_aws_sm_meta *m)
{
	return m->changed ? m->changed : m->created;
}

/*
 * DescribeSecret name: 1 found (kind in *kind), 0 not found, -1 error.
 * Found secrets go into the index.
 */
static int describe_kind(struct aws_priv *a, size_t ri, const char *name,
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
	fields = meta_is_fields(&m);
	*mtime = meta_mtime(&m);
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
		if (kf_aws_index_deleted(a->idx, ri, page.v[i].name))
			continue;
		kf_aws_index_put(a->idx, ri, page.v[i].name,
				 meta_is_fields(&page.v[i]),
				 meta_mtime(&page.v[i]));
		found = 1;
	}
	kf_aws_sm_page_release(&page);
	return found;
}

/*
 * What rest (a path below a region) is.  Order: the index, then
 * DescribeSecret (strongly consistent), then the parent as a field
 * secret, then a name prefix.  A field secret's files win over secrets
 * whose names continue below it.
 */
static int resolve(struct aws_priv *a, size_t ri, const char *rest,
		   struct aws_res *res, struct kf_err *err)
{
	const char *slash = strrchr(rest, '/');
	char parent[AWS_NAME_MAX + 1] = "";
	char prefix[AWS_NAME_MAX + 2];
	enum aws_kind kind = AK_NONE;
	int64_t mtime = 0;
	int parent_known = 0, fields = 0, rc;
	size_t rlen = strlen(rest);

	memset(res, 0, sizeof(*res));
	res->kind = AK_NONE;
	if (slash && (size_t)(slash - rest) <= AWS_NAME_MAX) {
		memcpy(parent, rest, (size_t)(slash - rest));
		parent[slash - rest] = '\0';
	}
	if (rlen <= AWS_NAME_MAX &&
	    kf_aws_index_get(a->idx, ri, rest, &fields, &mtime)) {
		res->kind = fields ? AK_FIELDSEC : AK_PLAIN;
		res->mtime = mtime;
		snprintf(res->name, sizeof(res->name), "%s", rest);
	} else if (parent[0] &&
		   kf_aws_index_get(a->idx, ri, parent, &fields, &mtime)) {
		if (fields) {
			res->kind = AK_FIELD;
			res->mtime = mtime;
			snprintf(res->name, sizeof(res->name), "%s", parent);
			res->field = slash + 1;
		} else {
			parent_known = 1;	/* a plain secret */
		}
	}
	if (res->kind == AK_NONE && !parent_known && rlen < AWS_NAME_MAX) {
		/* a directory of names seen in a recent listing */
		snprintf(prefix, sizeof(prefix), "%s/", rest);
		if (kf_aws_index_has_prefix(a->idx, ri, prefix))
			res->kind = AK_PREFIX;
	}
	mtime = 0;
	if (res->kind != AK_NONE)
		return 0;
	if (name_ok(rest, 1)) {
		rc = describe_kind(a, ri, rest, &kind, &mtime, err);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			res->kind = kind;
			res->mtime = mtime;
			snprintf(res->name, sizeof(res->name), "%s", rest);
			return 0;
		}
	}
	if (parent[0]) {
		if (parent_known) {
			kind = AK_PLAIN;
		} else if (!name_ok(parent, 1)) {
			kind = AK_NONE;
		} else {
			rc = describe_kind(a, ri, parent, &kind, &mtime, err);
			if (rc < 0)
				return -1;
			if (rc == 0)
				kind = AK_NONE;
		}
		if (kind == AK_FIELDSEC) {
			res->kind = AK_FIELD;
			res->mtime = mtime;
			snprintf(res->name, sizeof(res->name), "%s", parent);
			res->field = slash + 1;
			return 0;
		}
		if (kind == AK_PLAIN) {
			res->parent_plain = 1;
			return 0;
		}
	}
	if (rlen > AWS_NAME_MAX - 1 || !name_ok(rest, 1))
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", rest);
	rc = prefix_exists(a, ri, prefix, err);
	if (rc < 0)
		return -1;
	if (rc > 0)
		res->kind = AK_PREFIX;
	return 0;
}

/* After a failed write: say why when the secret awaits deletion. */
static int scheduled_fail(const char *region, const char *name,
			  struct kf_err *err)
{
	kf_log(KF_LOG_WARN, "aws: %s/%s is scheduled for deletion: restore "
	       "it (aws secretsmanager restore-secret) or use another name",
	       region, name);
	return kf_fail_provider(err, KF_E_STATE, err->http_status,
				err->provider_code[0] ? err->provider_code
						      : NULL,
				"aws: %s/%s is scheduled for deletion",
				region, name);
}

static int state_fail(const char *region, const char *name,
		      struct kf_err *err)
{
	if (err->code == KF_E_STATE && strstr(err->msg, "delet"))
		return scheduled_fail(region, name, err);
	return -1;
}

/* ---- field secrets ----------------------------------------------------- */

/* Remember the field names and sizes of obj (field secret name). */
static void fields_note(struct aws_priv *a, size_t ri, const char *name,
			const json_t *obj)
{
	size_t n = json_object_size(obj), i = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));
	uint64_t *sizes = calloc(n ? n : 1, sizeof(*sizes));
	const char *key;
	json_t *v;

	if (names && sizes) {
		json_object_foreach((json_t *)obj, key, v) {
			names[i] = key;
			sizes[i++] = kf_aws_fields_size(v);
		}
		kf_aws_index_fields_set(a->idx, ri, name, names, sizes, i);
	}
	free(names);
	free(sizes);
}

/* The JSON object held by field secret name (an empty value is {}). */
static int fields_load(struct aws_priv *a, size_t ri, const char *name,
		       json_t **obj, struct kf_err *err)
{
	struct kf_secret *v = NULL;
	int rc;

	*obj = NULL;
	if (kf_aws_sm_get_value(a->regions[ri].sm, name, &v, NULL, 0, err))
		return -1;
	rc = kf_aws_fields_parse(v, obj, err);
	kf_secret_free(v);
	if (rc && err->code == KF_E_STATE)
		kf_log(KF_LOG_WARN, "aws: %s/%s is tagged %s=%s but its value "
		       "is not a JSON object", a->regions[ri].name, name,
		       KF_AWS_LAYOUT_TAG, KF_AWS_LAYOUT_FIELDS);
	if (rc == 0)
		fields_note(a, ri, name, *obj);
	return rc;
}

/*
 * Set (value != NULL) or remove field of field secret name: read the
 * object, change it, PutSecretValue the whole object with token.
 */
static int field_change(struct aws_priv *a, size_t ri, const char *name,
			const char *field, const unsigned char *value,
			size_t n, const char *token, struct kf_err *err)
{
	struct kf_secret *s = NULL;
	json_t *obj = NULL;
	int rc = -1;

	if (value && !kf_aws_sm_is_text(value, n)) {
		kf_log(KF_LOG_WARN, "aws: %s/%s/%s: a field holds UTF-8 text "
		       "only (write binary values to a plain secret)",
		       a->regions[ri].name, name, field);
		return kf_fail(err, KF_E_INVALID, "aws: field values must "
			       "be UTF-8 text");
	}
	pthread_mutex_lock(&a->field_lock);
	if (fields_load(a, ri, name, &obj, err) ||
	    kf_aws_fields_change(obj, field, value, n, err) ||
	    kf_aws_fields_encode(obj, KF_AWS_SM_MAX_VALUE, &s, err))
		goto out;
	rc = kf_aws_sm_put_value(a->regions[ri].sm, name, token, s->data,
				 s->len, err);
	if (rc)
		state_fail(a->regions[ri].name, name, err);
	else
		fields_note(a, ri, name, obj);
out:
	pthread_mutex_unlock(&a->field_lock);
	kf_secret_free(s);
	json_decref(obj);
	return rc;
}

/* ---- vtable ------------------------------------------------------------ */

static int aws_getattr(struct kf_provider *p, const char *path,
		       struct kf_attr *attr, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	json_t *obj = NULL, *v;
	size_t ri;
	int rc = -1;

	memset(attr, 0, sizeof(*attr));
	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0]) {
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (resolve(a, ri, rest, &res, err))
		return -1;
	attr->mtime = res.mtime;
	switch (res.kind) {
	case AK_PLAIN:
		attr->kind = KF_KIND_FILE;
		return 0;
	case AK_FIELDSEC:
	case AK_PREFIX:
		attr->kind = KF_KIND_DIR;
		return 0;
	case AK_FIELD:
		rc = kf_aws_index_field(a->idx, ri, res.name, res.field,
					&attr->size);
		if (rc == 0)
			return kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
		if (rc == 1) {
			attr->kind = KF_KIND_FILE;
			attr->size_known = 1;
			return 0;
		}
		rc = -1;
		if (fields_load(a, ri, res.name, &obj, err))
			goto out;
		v = json_object_get(obj, res.field);
		if (!v) {
			kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
			goto out;
		}
		attr->kind = KF_KIND_FILE;
		attr->size_known = 1;
		attr->size = kf_aws_fields_size(v);
		rc = 0;
		goto out;
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
out:
	json_decref(obj);
	return rc;
}

static int list_fields(struct aws_priv *a, size_t ri, const char *name,
		       kf_list_fn fn, void *ctx, struct kf_err *err)
{
	json_t *obj = NULL, *v;
	const char *key;

	if (fields_load(a, ri, name, &obj, err))
		return -1;
	json_object_foreach(obj, key, v) {
		struct kf_attr at = { KF_KIND_FILE, 1, kf_aws_fields_size(v), 0 };

		if (!key[0] || strchr(key, '/') || strcmp(key, ".") == 0 ||
		    strcmp(key, "..") == 0)
			continue;
		if (fn(ctx, key, &at))
			break;
	}
	json_decref(obj);
	return 0;
}

/* One directory entry being collected for a listing page. */
struct aws_ent {
	char *name;
	struct kf_attr attr;
};

struct aws_ents {
	struct aws_ent *v;
	size_t n, cap;
};

static int ents_find(const struct aws_ents *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->v[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Add name (n bytes) as dir or file; a directory wins over a file. */
static int ents_add(struct aws_ents *e, const char *name, size_t n,
		    int dir, int64_t mtime)
{
	char *copy = strndup(name, n);
	int i;

	if (!copy)
		return -1;
	i = ents_find(e, copy);
	if (i >= 0) {
		if (dir)
			e->v[i].attr.kind = KF_KIND_DIR;
		free(copy);
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		struct aws_ent *v = realloc(e->v, cap * sizeof(*v));

		if (!v) {
			free(copy);
			return -1;
		}
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n].name = copy;
	e->v[e->n].attr = (struct kf_attr){
		dir ? KF_KIND_DIR : KF_KIND_FILE, 0, 0, mtime };
	e->n++;
	return 0;
}

static void ents_release(struct aws_ents *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/*
 * The entry a secret name contributes to the directory prefix (plen
 * bytes, "" or ending in '/'): its next component, a directory when more
 * follows or it is a field secret.  0 when it contributes nothing.
 */
static size_t component(const char *name, size_t plen, int fields, int *dir)
{
	const char *c = name + plen;
	size_t n = strcspn(c, "/");

	*dir = c[n] == '/' || fields;
	return n;
}

struct overlay_ctx {
	struct aws_ents *ents;
	size_t plen;
};

static void overlay_one(void *vctx, const char *name, int fields)
{
	struct overlay_ctx *oc = vctx;
	size_t n;
	int dir;

	n = component(name, oc->plen, fields, &dir);
	if (n)
		ents_add(oc->ents, name + oc->plen, n, dir,
			 (int64_t)time(NULL));
}

static int aws_list(struct kf_provider *p, const char *path,
		    const char *page, kf_list_fn fn, void *ctx,
		    struct kf_buf *next, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_ents over = { 0 }, ents = { 0 };
	struct overlay_ctx oc;
	struct kf_aws_sm_page pg = { 0 };
	char prefix[AWS_NAME_MAX + 2] = "";
	char last[AWS_NAME_MAX + 1] = "", carried[AWS_NAME_MAX + 1] = "";
	const char *rest, *token = NULL;
	size_t ri, plen;
	struct aws_res res;
	int rc = -1, stop = 0;

	kf_buf_reset(next);
	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1) {
		for (size_t i = 0; i < a->nregions; i++) {
			struct kf_attr at = { KF_KIND_DIR, 0, 0, 0 };

			if (fn(ctx, a->regions[i].name, &at))
				break;
		}
		return 0;
	}
	if (rest[0] && !page) {
		if (resolve(a, ri, rest, &res, err))
			return -1;
		switch (res.kind) {
		case AK_FIELDSEC:
			return list_fields(a, ri, res.name, fn, ctx, err);
		case AK_PREFIX:
			break;
		case AK_PLAIN:
		case AK_FIELD:
			return kf_fail(err, KF_E_NOTDIR, "aws: not a "
				       "directory");
		default:
			return kf_fail(err, KF_E_NOTFOUND, "aws: no such "
				       "directory");
		}
	}
	if (rest[0] && snprintf(prefix, sizeof(prefix), "%s/", rest) >=
			       (int)sizeof(prefix))
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
	plen = strlen(prefix);
	/* Our token: "<last entry of the previous page>\n<NextToken>". */
	if (page && page[0]) {
		const char *nl = strchr(page, '\n');

		if (!nl || (size_t)(nl - page) > AWS_NAME_MAX)
			return kf_fail(err, KF_E_INVALID, "aws: bad page "
				       "token");
		memcpy(carried, page, (size_t)(nl - page));
		carried[nl - page] = '\0';
		memcpy(last, carried, sizeof(last));
		token = nl + 1;
	}
	if (kf_aws_sm_list(a->regions[ri].sm, plen ? prefix : NULL, token,
			   AWS_LIST_PAGE, &pg, err))
		goto out;
	/* This process's recent creates: listed on the first page only. */
	oc.ents = &over;
	oc.plen = plen;
	kf_aws_index_created(a->idx, ri, prefix, overlay_one, &oc);
	if (!page) {
		for (size_t i = 0; i < over.n; i++)
			if (ents_add(&ents, over.v[i].name,
				     strlen(over.v[i].name),
				     over.v[i].attr.kind == KF_KIND_DIR,
				     over.v[i].attr.mtime))
				break;
	}
	for (size_t i = 0; i < pg.n; i++) {
		const struct kf_aws_sm_meta *m = &pg.v[i];
		int fields = meta_is_fields(m), dir;
		size_t n;
		char *c;

		if (kf_aws_index_deleted(a->idx, ri, m->name))
			continue;
		kf_aws_index_put(a->idx, ri, m->name, fields, meta_mtime(m));
		n = component(m->name, plen, fields, &dir);
		if (!n)
			continue;
		c = strndup(m->name + plen, n);
		if (!c)
			break;
		/*
		 * Skip what earlier pages gave: the overlay (first page) and
		 * the previous page's last entry (names come sorted, so a
		 * directory spanning pages shows once).
		 */
		if (!(page && ents_find(&over, c) >= 0) &&
		    !(carried[0] && strcmp(c, carried) == 0))
			ents_add(&ents, c, n, dir, meta_mtime(m));
		snprintf(last, sizeof(last), "%s", c);
		free(c);
	}
	if (pg.next_token && (kf_buf_adds(next, last) ||
			      kf_buf_add(next, "\n", 1) ||
			      kf_buf_adds(next, pg.next_token))) {
		kf_buf_reset(next);
		kf_fail(err, KF_E_NOMEM, "aws: page token too long");
		goto out;
	}
	if (rest[0] && !page && !pg.next_token && ents.n == 0) {
		kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
		goto out;
	}
	for (size_t i = 0; i < ents.n && !stop; i++)
		stop = fn(ctx, ents.v[i].name, &ents.v[i].attr);
	rc = 0;
out:
	ents_release(&ents);
	ents_release(&over);
	kf_aws_sm_page_release(&pg);
	return rc;
}

static int rofs(const struct aws_priv *a, struct kf_err *err)
{
	if (a->read_only)
		return kf_fail(err, KF_E_ROFS, "aws: read-only mount");
	return 0;
}

/* Create secret name (value may be NULL: no value). */
static int create_secret(struct aws_priv *a, size_t ri, const char *name,
			 const char *token, const unsigned char *value,
			 size_t n, int fields, struct kf_err *err)
{
	struct aws_region *r = &a->regions[ri];
	enum aws_kind kind;
	int64_t mtime;
	int rc;

	if (!valid_name(name)) {
		kf_log(KF_LOG_WARN, "aws: %s/%s: invalid secret name (1..512 "
		       "of A-Z a-z 0-9 / _ + = . @ -)", r->name, name);
		return kf_fail(err, KF_E_INVALID, "aws: invalid secret name");
	}
	rc = kf_aws_sm_create(r->sm, name, token, n ? value : NULL, n,
			      fields ? &fields_tag : NULL, fields ? 1 : 0,
			      err);
	if (rc && err->code == KF_E_EXISTS) {
		/*
		 * resolve() found nothing a moment ago, so this is our own
		 * create whose answer was lost, a concurrent create, or (moto)
		 * a name scheduled for deletion.
		 */
		struct kf_err derr = KF_ERR_INIT;
		int drc = describe_kind(a, ri, name, &kind, &mtime, &derr);

		if (drc > 0 && kind == AK_SCHEDULED)
			return scheduled_fail(r->name, name, err);
		if (drc > 0 && fields && kind == AK_FIELDSEC) {
			rc = 0;
		} else if (drc > 0 && !fields && kind == AK_PLAIN) {
			kf_err_clear(err);
			rc = n ? kf_aws_sm_put_value(r->sm, name, token, value,
						     n, err)
			       : 0;
		}
	}
	if (rc)
		return state_fail(r->name, name, err);
	kf_aws_index_note(a->idx, ri, name, 0, fields);
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

static int aws_commit(struct kf_provider *p, const char *path,
		      const unsigned char *value, size_t n, const char *token,
		      int flags, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest, *tok;
	char tokbuf[37];
	size_t ri;
	int rc;

	if (rofs(a, err) || split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "aws: value of %zu bytes is "
			       "over the %d-byte Secrets Manager limit", n,
			       KF_AWS_SM_MAX_VALUE);
	tok = pick_token(token, tokbuf, err);
	if (!tok)
		return -1;
	if (resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_FIELD:
		if (!valid_field(res.field))
			return kf_fail(err, KF_E_INVALID, "aws: invalid field "
				       "name");
		return field_change(a, ri, res.name, res.field, value, n, tok,
				    err);
	case AK_FIELDSEC:
	case AK_PREFIX:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	case AK_SCHEDULED:
		return scheduled_fail(a->regions[ri].name, rest, err);
	case AK_PLAIN:
		if (n == 0) {
			kf_log(KF_LOG_WARN, "aws: %s/%s: Secrets Manager "
			       "cannot store an empty value; the current "
			       "value is unchanged", a->regions[ri].name,
			       rest);
			return kf_fail(err, KF_E_INVALID, "aws: empty values "
				       "cannot be stored");
		}
		rc = kf_aws_sm_put_value(a->regions[ri].sm, rest, tok, value,
					 n, err);
		if (rc == 0) {
			kf_aws_index_note(a->idx, ri, rest, 0, 0);
			return 0;
		}
		if (err->code != KF_E_NOTFOUND || !(flags & KF_COMMIT_CREATE))
			return state_fail(a->regions[ri].name, rest, err);
		/* deleted behind our back: create it again */
		break;
	default:
		if (!(flags & KF_COMMIT_CREATE))
			return kf_fail(err, KF_E_NOTFOUND, "aws: no such "
				       "secret");
		if (res.parent_plain)
			return kf_fail(err, KF_E_NOTDIR, "aws: a path "
				       "component is a secret");
		break;
	}
	kf_err_clear(err);
	return create_secret(a, ri, rest, tok, value, n, 0, err);
}

static int aws_can_create(struct kf_provider *p, const char *path,
			  struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	if (rofs(a, err) || split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_PERM, "aws: files live in a region "
			       "directory");
	if (resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		return 0;
	case AK_FIELD:
		if (!valid_field(res.field))
			return kf_fail(err, KF_E_INVALID, "aws: invalid field "
				       "name");
		return 0;
	case AK_FIELDSEC:
	case AK_PREFIX:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	case AK_SCHEDULED:
		return scheduled_fail(a->regions[ri].name, rest, err);
	default:
		if (res.parent_plain)
			return kf_fail(err, KF_E_NOTDIR, "aws: a path "
				       "component is a secret");
		if (!valid_name(rest)) {
			kf_log(KF_LOG_WARN, "aws: %s/%s: invalid secret name "
			       "(1..512 of A-Z a-z 0-9 / _ + = . @ -)",
			       a->regions[ri].name, rest);
			return kf_fail(err, KF_E_INVALID, "aws: invalid "
				       "secret name");
		}
		return 0;
	}
}

static int aws_read(struct kf_provider *p, const char *path,
		    struct kf_secret **value, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	json_t *obj = NULL, *v;
	size_t ri;
	int rc = -1;

	*value = NULL;
	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	if (resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		rc = kf_aws_sm_get_value(a->regions[ri].sm, rest, value, NULL,
					 0, err);
		if (rc && err->code == KF_E_STATE && strstr(err->msg, "delet"))
			err->code = KF_E_NOTFOUND;	/* deleted elsewhere */
		if (rc && err->code == KF_E_NOTFOUND) {
			kf_aws_index_del(a->idx, ri, rest);
		}
		return rc;
	case AK_FIELD:
		if (fields_load(a, ri, res.name, &obj, err))
			goto out;
		v = json_object_get(obj, res.field);
		if (!v) {
			kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
			goto out;
		}
		*value = kf_aws_fields_bytes(v);
		if (!*value) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	case AK_FIELDSEC:
	case AK_PREFIX:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
out:
	json_decref(obj);
	return rc;
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
		    describe_kind(a, ri, name, &kind, &mtime, &derr) <= 0 ||
		    kind != AK_SCHEDULED)
			return -1;
		kf_err_clear(err);
	}
	kf_aws_index_note(a->idx, ri, name, 1, 0);
	if (a->recovery_days)
		kf_log(KF_LOG_INFO, "aws: %s/%s scheduled for deletion in %u "
		       "days", r->name, name, a->recovery_days);
	return 0;
}

static int aws_mkdir(struct kf_provider *p, const char *path,
		     struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	char token[37];
	size_t ri;

	if (split_path(a, path, &ri, &rest, err)) {
		if (err->code == KF_E_NOTFOUND && !strchr(path, '/'))
			return kf_fail(err, KF_E_PERM, "aws: regions are set "
				       "with -o aws_region=");
		return -1;
	}
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_EXISTS, "aws: exists");
	if (rofs(a, err) || resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
	case AK_FIELDSEC:
	case AK_PREFIX:
		return kf_fail(err, KF_E_EXISTS, "aws: exists");
	case AK_FIELD:
		return kf_fail(err, KF_E_PERM, "aws: a field secret holds "
			       "files only");
	case AK_SCHEDULED:
		return scheduled_fail(a->regions[ri].name, rest, err);
	default:
		if (res.parent_plain)
			return kf_fail(err, KF_E_NOTDIR, "aws: a path "
				       "component is a secret");
		break;
	}
	if (kf_uuid4(token, err))
		return -1;
	return create_secret(a, ri, rest, token, NULL, 0, 1, err);
}

static int aws_rmdir(struct kf_provider *p, const char *path,
		     struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	struct kf_secret *v = NULL;
	json_t *obj = NULL;
	const char *rest;
	size_t ri;
	int rc = -1;

	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_PERM, "aws: regions are set with "
			       "-o aws_region=");
	if (rofs(a, err) || resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_FIELDSEC:
		break;
	case AK_PREFIX:
		return kf_fail(err, KF_E_NOTEMPTY, "aws: directory not "
			       "empty");
	case AK_PLAIN:
	case AK_FIELD:
		return kf_fail(err, KF_E_NOTDIR, "aws: not a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
	}
	if (kf_aws_sm_get_value(a->regions[ri].sm, rest, &v, NULL, 0, err))
		goto out;
	if (v->len) {
		obj = json_loadb((const char *)v->data, v->len, JSON_ALLOW_NUL,
				 NULL);
		if (!json_is_object(obj) || json_object_size(obj) > 0) {
			kf_fail(err, KF_E_NOTEMPTY, "aws: directory not "
				"empty");
			goto out;
		}
	}
	rc = delete_secret(a, ri, rest, err);
out:
	json_decref(obj);
	kf_secret_free(v);
	return rc;
}

static int aws_unlink(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	char token[37];
	size_t ri;

	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0])
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	if (rofs(a, err) || resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		return delete_secret(a, ri, rest, err);
	case AK_FIELD:
		if (kf_uuid4(token, err))
			return -1;
		return field_change(a, ri, res.name, res.field, NULL, 0,
				    token, err);
	case AK_FIELDSEC:
	case AK_PREFIX:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}

#define XA_ID "user.keyfs.id"
#define XA_VERSION "user.keyfs.version"
#define XA_DESC "user.keyfs.description"

/* The secret an xattr call is about, or -1 (NODATA for other nodes). */
static int xattr_target(struct aws_priv *a, const char *path, size_t *ri,
			struct aws_res *res, struct kf_err *err)
{
	const char *rest;

	if (split_path(a, path, ri, &rest, err))
		return -1;
	if (*ri == (size_t)-1 || !rest[0]) {
		res->kind = AK_NONE;
		return 0;
	}
	if (resolve(a, *ri, rest, res, err))
		return -1;
	if (res->kind == AK_NONE || res->kind == AK_SCHEDULED)
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	return 0;
}

static int aws_getxattr(struct kf_provider *p, const char *path,
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
	if ((res.kind != AK_PLAIN && res.kind != AK_FIELDSEC) ||
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

static int aws_setxattr(struct kf_provider *p, const char *path,
			const char *name, const void *value, size_t n,
			struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	char *desc = NULL;
	size_t ri;
	int rc;

	if (rofs(a, err) || xattr_target(a, path, &ri, &res, err))
		return -1;
	if (res.kind != AK_PLAIN && res.kind != AK_FIELDSEC)
		return kf_fail(err, KF_E_NOTSUP, "aws: no attributes here");
	if (strcmp(name, XA_ID) == 0 || strcmp(name, XA_VERSION) == 0)
		return kf_fail(err, KF_E_PERM, "aws: %s is read-only", name);
	if (strcmp(name, XA_DESC) != 0)
		return kf_fail(err, KF_E_NOTSUP, "aws: unsupported attribute");
	if (n > AWS_DESC_MAX ||
	    (n && !kf_aws_sm_is_text(value, n)))
		return kf_fail(err, KF_E_INVALID, "aws: a description is up "
			       "to %d bytes of UTF-8 text", AWS_DESC_MAX);
	desc = strndup(value, n);
	if (!desc)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	rc = kf_aws_sm_update_description(a->regions[ri].sm, res.name, desc,
					  err);
	free(desc);
	return rc ? state_fail(a->regions[ri].name, res.name, err) : 0;
}

static int aws_listxattr(struct kf_provider *p, const char *path,
			 struct kf_buf *out, struct kf_err *err)
{
	static const char names[] = XA_ID "\0" XA_VERSION "\0" XA_DESC;
	struct aws_priv *a = p->priv;
	struct aws_res res;
	size_t ri;

	if (xattr_target(a, path, &ri, &res, err))
		return -1;
	if (res.kind != AK_PLAIN && res.kind != AK_FIELDSEC)
		return 0;
	if (kf_buf_add(out, names, sizeof(names)))
		return kf_fail(err, KF_E_RANGE, "aws: attribute list too "
			       "long");
	return 0;
}

static void aws_free(struct kf_provider *p)
{
	struct aws_priv *a;

	if (!p)
		return;
	a = p->priv;
	if (a) {
		for (size_t i = 0; i < a->nregions; i++) {
			struct aws_region *r = &a->regions[i];

			kf_aws_sm_free(r->sm);
		}
		free(a->regions);
		kf_aws_index_free(a->idx);
		kf_aws_chain_free(a->chain);
		pthread_mutex_destroy(&a->field_lock);
		free(a);
	}
	free(p);
}

/* Listed neighbours looked at for one batch (those already cached are
 * skipped, so the batch holds up to 20 values nobody has yet). */
#define NEARBY_SCAN 200

struct nearby {
	const char *region;	/* the region component of paths */
	const char *want;	/* the name asked for */
	struct kf_secret *value;	/* its value, when returned */
	void (*fn)(void *ctx, const char *rel, struct kf_secret *v);
	void *ctx;
};

static void nearby_one(void *vctx, const char *name, struct kf_secret *v)
{
	struct nearby *n = vctx;
	char rel[AWS_NAME_MAX + 80];

	if (!strcmp(name, n->want) && !n->value) {
		n->value = v;
		return;
	}
	if (snprintf(rel, sizeof(rel), "%s/%s", n->region, name) >=
	    (int)sizeof(rel)) {
		kf_secret_free(v);
		return;
	}
	n->fn(n->ctx, rel, v);
}

/*
 * A plain secret's value and, in the same BatchGetSecretValue, up to
 * max - 1 secrets listed after it in its directory: `ls -l` learns sizes
 * at one call per 20 files.  Anything unusual takes the one-secret path.
 */
static int aws_read_nearby(struct kf_provider *p, const char *path,
			   size_t max, int (*want)(void *ctx, const char *rel),
			   void (*fn)(void *ctx, const char *rel,
				      struct kf_secret *v),
			   void *ctx, struct kf_secret **value,
			   struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	struct nearby nb;
	const char *rest;
	char *sib[NEARBY_SCAN], region[128], rel[AWS_NAME_MAX + 130];
	const char *ids[20];
	size_t ri, ns = 0, nids = 0;
	int rc;

	*value = NULL;
	if (split_path(a, path, &ri, &rest, err))
		return -1;
	if (ri == (size_t)-1 || !rest[0] || resolve(a, ri, rest, &res, err) ||
	    res.kind != AK_PLAIN || max < 2 ||
	    (size_t)(rest - path) >= sizeof(region) ||
	    __atomic_load_n(&a->no_batch, __ATOMIC_RELAXED))
		return aws_read(p, path, value, err);
	if (max > 20)
		max = 20;
	kf_aws_index_siblings(a->idx, ri, rest, NEARBY_SCAN, sib, &ns);
	memcpy(region, path, (size_t)(rest - path - 1));
	region[rest - path - 1] = '\0';
	ids[nids++] = rest;
	for (size_t i = 0; i < ns && nids < max; i++)
		if (snprintf(rel, sizeof(rel), "%s/%s", region, sib[i]) <
			    (int)sizeof(rel) &&
		    want(ctx, rel))
			ids[nids++] = sib[i];
	if (nids == 1) {
		for (size_t i = 0; i < ns; i++)
			free(sib[i]);
		return aws_read(p, path, value, err);
	}
	memset(&nb, 0, sizeof(nb));
	nb.region = region;
	nb.want = rest;
	nb.fn = fn;
	nb.ctx = ctx;
	rc = kf_aws_sm_batch_get(a->regions[ri].sm, ids, nids, nearby_one,
				 &nb, err);
	for (size_t i = 0; i < ns; i++)
		free(sib[i]);
	if (rc == 0 && nb.value) {
		*value = nb.value;
		return 0;
	}
	kf_secret_free(nb.value);
	if (rc < 0 && err->code == KF_E_DENIED &&
	    !__atomic_exchange_n(&a->no_batch, 1, __ATOMIC_RELAXED))
		kf_log(KF_LOG_WARN, "aws: BatchGetSecretValue refused (%s); "
		       "sizes for ls -l will cost one GetSecretValue each",
		       err->provider_code);
	/* Not in the answer (no current value, an error entry) or the call
	 * failed: the one-secret read gives the exact answer and errno. */
	kf_err_clear(err);
	return aws_read(p, path, value, err);
}

static const struct kf_provider_ops aws_ops = {
	.getattr = aws_getattr,
	.list = aws_list,
	.mkdir = aws_mkdir,
	.rmdir = aws_rmdir,
	.unlink = aws_unlink,
	.can_create = aws_can_create,
	.read = aws_read,
	.read_nearby = aws_read_nearby,
	.commit = aws_commit,
	.getxattr = aws_getxattr,
	.setxattr = aws_setxattr,
	.listxattr = aws_listxattr,
	.start = NULL,
	.free = aws_free,
};

/* ---- configuration ----------------------------------------------------- */

static const struct kf_provider_opt aws_opts[] = {
	{ "aws_region", "R[:R...]",
	  "AWS regions shown under aws/ (default: AWS_REGION, "
	  "AWS_DEFAULT_REGION, then the profile's region)" },
	{ "aws_profile", "NAME",
	  "AWS profile for credentials and settings (default: AWS_PROFILE, "
	  "else \"default\")" },
	{ "aws_endpoint", "URL",
	  "Secrets Manager endpoint (default: AWS_ENDPOINT_URL_SECRETS_"
	  "MANAGER, AWS_ENDPOINT_URL, the profile, else AWS)" },
	{ "aws_recovery_window", "DAYS",
	  "days a deleted secret can be restored, 7..30, 0 = delete at once "
	  "(default: 30)" },
	{ NULL, NULL, NULL },
};

static int aws_detect(const struct kf_config *cfg)
{
	const char *profile = kf_config_get(cfg, "aws_profile");

	if (profile && !profile[0])
		profile = NULL;
	return kf_aws_config_present(profile) ||
	       kf_config_get(cfg, "aws_region") != NULL;
}

static int valid_region(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int parse_regions(struct aws_priv *a, const char *list,
			 struct kf_err *err)
{
	const char *s = list;

	while (*s) {
		size_t n = strcspn(s, ":,");
		int dup = 0;

		if (!valid_region(s, n))
			return kf_fail(err, KF_E_INVALID, "aws: bad region "
				       "in aws_region=%.64s", list);
		for (size_t i = 0; i < a->nregions; i++)
			if (strlen(a->regions[i].name) == n &&
			    strncmp(a->regions[i].name, s, n) == 0)
				dup = 1;
		if (!dup) {
			struct aws_region *r = realloc(a->regions,
				(a->nregions + 1) * sizeof(*r));

			if (!r)
				return kf_fail(err, KF_E_NOMEM, "out of "
					       "memory");
			a->regions = r;
			memset(&r[a->nregions], 0, sizeof(*r));
			memcpy(r[a->nregions].name, s, n);
			a->nregions++;
		}
		s += n;
		if (*s)
			s++;
	}
	if (a->nregions == 0)
		return kf_fail(err, KF_E_INVALID, "aws: empty aws_region=");
	return 0;
}

static int parse_days(const char *s, unsigned *out, struct kf_err *err)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || (v != 0 && (v < 7 || v > 30)))
		return kf_fail(err, KF_E_INVALID, "aws: aws_recovery_window "
			       "must be 0 or 7..30 days");
	*out = (unsigned)v;
	return 0;
}

/*
 * One cheap call per region so an unreachable endpoint is reported on the
 * terminal.  Credentials refused for ListSecrets only warn: a host may
 * be allowed GetSecretValue on its own secrets and nothing else.
 */
static int probe(struct aws_priv *a, struct kf_err *err)
{
	for (size_t i = 0; i < a->nregions; i++) {
		struct aws_region *r = &a->regions[i];
		struct kf_aws_sm_page pg;

		if (kf_aws_sm_list(r->sm, NULL, NULL, 1, &pg, err) == 0) {
			kf_aws_sm_page_release(&pg);
			continue;
		}
		if (err->code == KF_E_DENIED || err->code == KF_E_STATE ||
		    err->code == KF_E_INVALID) {
			kf_log(KF_LOG_WARN, "aws: %s: ListSecrets refused "
			       "(%s): listing directories will fail",
			       r->name, err->provider_code[0]
						 ? err->provider_code
						 : kf_code_name(err->code));
			kf_err_clear(err);
			continue;
		}
		return kf_fail_provider(err, err->code, err->http_status,
					err->provider_code[0]
						? err->provider_code
						: NULL,
					"aws: region %s: Secrets Manager "
					"endpoint not usable: %.160s",
					r->name, err->msg);
	}
	return 0;
}

static int aws_create(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err)
{
	struct kf_provider *p = NULL;
	struct aws_priv *a = NULL;
	struct kf_aws_chain_cfg ccfg;
	const char *profile, *regions, *endpoint, *days;
	char region[64];
	unsigned timeout_ms;
	int rc = -1;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	a = calloc(1, sizeof(*a));
	if (!p || !a) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		free(p);
		free(a);
		return -1;
	}
	pthread_mutex_init(&a->field_lock, NULL);
	p->ops = &aws_ops;
	p->name = "aws";
	p->max_value = KF_AWS_SM_MAX_VALUE;
	p->priv = a;
	a->recovery_days = 30;
	a->read_only = cfg->read_only;
	timeout_ms = (cfg->timeout ? cfg->timeout : 30) * 1000u;

	profile = kf_config_get(cfg, "aws_profile");
	if (profile && !profile[0])
		profile = NULL;
	regions = kf_config_get(cfg, "aws_region");
	endpoint = kf_config_get(cfg, "aws_endpoint");
	if (endpoint && !endpoint[0])
		endpoint = NULL;
	days = kf_config_get(cfg, "aws_recovery_window");
	if (days && parse_days(days, &a->recovery_days, err))
		goto out;
	if (!regions || !regions[0]) {
		if (kf_aws_default_region(profile, region, sizeof(region),
					  err)) {
			kf_fail(err, KF_E_INVALID, "aws: no region: set -o "
				"aws_region=REGION or AWS_REGION");
			goto out;
		}
		regions = region;
	}
	if (parse_regions(a, regions, err))
		goto out;
	a->idx = kf_aws_index_new(a->nregions, (uint64_t)cfg->ttl * 1000u);
	if (!a->idx) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	ccfg.profile = profile;
	ccfg.timeout_ms = timeout_ms;
	if (kf_aws_chain_new(&ccfg, &a->chain, err)) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		kf_fail_provider(err, err->code, err->http_status,
				 err->provider_code[0] ? err->provider_code
						       : NULL,
				 "aws: credentials: %.200s", msg);
		goto out;
	}
	for (size_t i = 0; i < a->nregions; i++) {
		struct kf_aws_sm_cfg scfg;
		char url[1024];

		if (kf_aws_endpoint(endpoint, profile, a->regions[i].name, url,
				    sizeof(url), err))
			goto out;
		memset(&scfg, 0, sizeof(scfg));
		scfg.endpoint = url;
		scfg.region = a->regions[i].name;
		scfg.chain = a->chain;
		scfg.timeout_ms = timeout_ms;
		if (kf_aws_sm_new(&scfg, &a->regions[i].sm, err))
			goto out;
	}
	if (probe(a, err))
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	aws_free(p);
	return rc;
}

const struct kf_provider_desc kf_aws_desc = {
	.name = "aws",
	.opts = aws_opts,
	.detect = aws_detect,
	.create = aws_create,
};
