/*
 * Field secrets in the aws/ provider: a secret tagged keyfs:layout=fields
 * is a directory whose files are the members of its JSON value; this
 * reads them and changes one by rewriting the whole object.  Values live
 * only in kf_secret or jansson memory; logs name fields, never values.
 */
#include "aws/tree_priv.h"

#include <stdlib.h>
#include <string.h>

#include "aws/fields.h"
#include "core/log.h"

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
		json_object_foreach((json_t *)obj, key, v)
		{
			names[i] = key;
			sizes[i++] = kf_aws_fields_size(v);
		}
		kf_aws_index_fields_set(a->idx, ri, name, names, sizes, i);
	}
	free(names);
	free(sizes);
}

int kf_aws_tree_fields_load(struct aws_priv *a, size_t ri, const char *name,
			    json_t **obj, char *version, struct kf_err *err)
{
	struct kf_secret *v = NULL;
	int rc;

	*obj = NULL;
	if (kf_aws_sm_get_value(a->regions[ri].sm, name, &v, NULL, 0, err))
		return -1;
	if (version)
		memcpy(version, v->version[0] ? v->version : AWS_NO_VERSION,
		       KF_SECRET_VERSION_MAX);
	rc = kf_aws_fields_parse(v, obj, err);
	kf_secret_free(v);
	if (rc && kf_err_is(err, KF_R_NOT_OBJECT))
		kf_log(KF_LOG_WARN,
		       "aws: %s/%s is tagged %s=%s but its value "
		       "is not a JSON object",
		       a->regions[ri].name, name, KF_AWS_LAYOUT_TAG,
		       KF_AWS_LAYOUT_FIELDS);
	if (rc == 0)
		fields_note(a, ri, name, *obj);
	return rc;
}

int kf_aws_tree_field_read(struct aws_priv *a, size_t ri,
			   const struct aws_res *res, struct kf_secret **value,
			   uint64_t *size, struct kf_err *err)
{
	char version[KF_SECRET_VERSION_MAX];
	json_t *obj = NULL, *v;
	int rc = -1;

	if (kf_aws_tree_fields_load(a, ri, res->name, &obj, version, err))
		goto out;
	v = json_object_get(obj, res->field);
	if (!v) {
		kf_fail(err, KF_E_NOTFOUND, "aws: no such field");
		goto out;
	}
	if (size)
		*size = kf_aws_fields_size(v);
	if (value) {
		*value = kf_aws_fields_bytes(v);
		if (!*value) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		kf_secret_set_version(*value, version);
	}
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

/* KF_E_INVALID, logged, unless value (n bytes) is UTF-8 text. */
static int text_only(struct aws_priv *a, size_t ri, const char *name,
		     const char *field, const unsigned char *value, size_t n,
		     struct kf_err *err)
{
	if (!value || kf_aws_sm_is_text(value, n))
		return 0;
	kf_log(KF_LOG_WARN,
	       "aws: %s/%s/%s: a field holds UTF-8 text "
	       "only (write binary values to a plain secret)",
	       a->regions[ri].name, name, field);
	return kf_fail(err, KF_E_INVALID,
		       "aws: field values must "
		       "be UTF-8 text");
}

int kf_aws_tree_field_change(struct aws_priv *a, size_t ri, const char *name,
			     const char *field, const unsigned char *value,
			     size_t n, const char *token, struct kf_err *err)
{
	struct kf_secret *s = NULL;
	json_t *obj = NULL;
	int rc = -1;

	if (text_only(a, ri, name, field, value, n, err))
		return -1;
	pthread_mutex_lock(&a->field_lock);
	if (kf_aws_tree_fields_load(a, ri, name, &obj, NULL, err) ||
	    kf_aws_fields_change(obj, field, value, n, err) ||
	    kf_aws_fields_encode(obj, KF_AWS_SM_MAX_VALUE, &s, err))
		goto out;
	rc = kf_aws_sm_put_value(a->regions[ri].sm, name, token, s->data,
				 s->len, err);
	if (rc)
		kf_aws_tree_state_fail(a->regions[ri].name, name, err);
	else
		fields_note(a, ri, name, obj);
out:
	pthread_mutex_unlock(&a->field_lock);
	kf_secret_free(s);
	json_decref(obj);
	return rc;
}

int kf_aws_tree_list_fields(struct aws_priv *a, size_t ri, const char *name,
			    kf_list_fn fn, void *ctx, struct kf_err *err)
{
	json_t *obj = NULL, *v;
	const char *key;

	if (kf_aws_tree_fields_load(a, ri, name, &obj, NULL, err))
		return -1;
	json_object_foreach(obj, key, v)
	{
		struct kf_attr at = { KF_KIND_FILE, 1, kf_aws_fields_size(v),
				      0 };

		if (!key[0] || strchr(key, '/') || strcmp(key, ".") == 0 ||
		    strcmp(key, "..") == 0)
			continue;
		if (fn(ctx, key, &at))
			break;
	}
	json_decref(obj);
	return 0;
}

/* CreateSecret name holding obj, tagged as a field secret: 1 when it
 * exists already. */
static int create_fields(struct aws_priv *a, size_t ri, const char *name,
			 const json_t *obj, const char *token,
			 struct kf_err *err)
{
	static const struct kf_aws_sm_tag tag = {
		(char *)KF_AWS_LAYOUT_TAG, (char *)KF_AWS_LAYOUT_FIELDS
	};
	struct aws_region *r = &a->regions[ri];
	struct kf_secret *s = NULL;
	int rc = -1;

	if (kf_aws_fields_encode(obj, KF_AWS_SM_MAX_VALUE, &s, err))
		return -1;
	if (kf_aws_sm_create(r->sm, name, token, s->data, s->len, &tag, 1,
			     err) == 0)
		rc = 0;
	else if (err->code == KF_E_EXISTS)
		rc = 1;
	else
		kf_aws_tree_state_fail(r->name, name, err);
	kf_secret_free(s);
	return rc;
}

int kf_aws_tree_field_first(struct aws_priv *a, size_t ri, const char *name,
			    const char *field, const unsigned char *value,
			    size_t n, const char *token, struct kf_err *err)
{
	const unsigned char *v = value ? value : (const unsigned char *)"";
	json_t *obj = NULL;
	int rc = -1;

	if (text_only(a, ri, name, field, v, n, err))
		return -1;
	pthread_mutex_lock(&a->field_lock);
	if (kf_aws_index_held(a->idx, ri, name) != KF_AWS_HELD_OPEN) {
		rc = 1; /* another writer made it meanwhile */
		goto out;
	}
	obj = json_object();
	if (!obj) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_aws_fields_change(obj, field, v, n, err))
		goto out;
	rc = create_fields(a, ri, name, obj, token, err);
	if (rc < 0)
		goto out;
	kf_err_clear(err);
	kf_aws_index_unhold(a->idx, ri, name);
	kf_aws_index_note(a->idx, ri, name, 0, 1);
	if (rc == 0) {
		fields_note(a, ri, name, obj);
		kf_log(KF_LOG_INFO, "aws: %s/%s created as a field secret",
		       a->regions[ri].name, name);
	}
out:
	pthread_mutex_unlock(&a->field_lock);
	json_decref(obj);
	if (rc > 0)
		return kf_aws_tree_field_change(a, ri, name, field, value, n,
						token, err);
	return rc;
}

/*
 * Text costs nothing to accept; only bytes that are not text (so far)
 * are looked at further: refused when path is a field.  Anything
 * unclear is left to the commit, which checks again.
 */
int kf_aws_tree_check_bytes(struct kf_provider *p, const char *path,
			    const unsigned char *data, size_t n,
			    struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	if (kf_aws_sm_is_text_prefix(data, n))
		return 0;
	if (kf_aws_tree_split(a, path, &ri, &rest, err) ||
	    ri == AWS_NO_REGION || !rest[0] ||
	    kf_aws_tree_resolve(a, ri, rest, &res, err)) {
		kf_err_clear(err);
		return 0;
	}
	if (res.kind != AK_FIELD)
		return 0;
	return text_only(a, ri, res.name, res.field, data, n, err);
}
