/*
 * Field secrets' JSON objects: parse, read one member as file bytes,
 * change one member, encode within the size limit.  Values only ever
 * live in kf_secret or jansson memory; nothing here logs.
 */
#include "aws/fields.h"

#include "aws/sm.h"
#include "core/json.h"

int kf_aws_fields_parse(const struct kf_secret *value, json_t **obj,
			struct kf_err *err)
{
	json_t *j = kf_json_object((const char *)value->data, value->len);

	*obj = NULL;
	if (!j && value->len == 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	if (!j)
		return kf_fail_reason(err, KF_E_STATE, KF_R_NOT_OBJECT,
				      "aws: the value of a field secret is "
				      "not a JSON object");
	*obj = j;
	return 0;
}

struct kf_secret *kf_aws_fields_bytes(const json_t *v)
{
	struct kf_secret *s;
	size_t n;

	if (json_is_string(v))
		return kf_secret_dup(json_string_value(v),
				     json_string_length(v));
	n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	s = kf_secret_new(n);
	if (!s)
		return NULL;
	if (n && json_dumpb(v, (char *)s->data, n,
			    JSON_COMPACT | JSON_ENCODE_ANY) != n) {
		kf_secret_free(s);
		return NULL;
	}
	s->len = n;
	return s;
}

size_t kf_aws_fields_size(const json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v);
	return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

int kf_aws_fields_change(json_t *obj, const char *field,
			 const unsigned char *value, size_t n,
			 struct kf_err *err)
{
	json_t *sv;

	if (!value) {
		if (json_object_del(obj, field))
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such "
				       "field");
		return 0;
	}
	if (!kf_aws_sm_is_text(value, n))
		return kf_fail(err, KF_E_INVALID,
			       "aws: field values must be "
			       "UTF-8 text");
	sv = json_stringn((const char *)value, n);
	if (!sv || json_object_set_new(obj, field, sv))
		return kf_fail(err, KF_E_INVALID, "aws: cannot set field");
	return 0;
}

int kf_aws_fields_encode(const json_t *obj, size_t max, struct kf_secret **out,
			 struct kf_err *err)
{
	size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	struct kf_secret *s;

	*out = NULL;
	if (n > max)
		return kf_fail(err, KF_E_TOOBIG,
			       "aws: the fields would take "
			       "%zu bytes of JSON, over the %zu-byte limit",
			       n, max);
	s = kf_secret_new(n);
	if (!s)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	if (n && json_dumpb(obj, (char *)s->data, n, JSON_COMPACT) != n) {
		kf_secret_free(s);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	s->len = n;
	*out = s;
	return 0;
}
