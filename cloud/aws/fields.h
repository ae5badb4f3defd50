/*
 * Values of field secrets (tagged keyfs:layout=fields): a JSON object
 * whose top-level members are the files of the secret's directory.  Pure
 * functions over jansson (whose allocator main() makes wipe-on-free) and
 * kf_secret; they never log, and errors never quote a value.
 */
#ifndef KF_AWS_FIELDS_H
#define KF_AWS_FIELDS_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"
#include "core/secret.h"

/* Parse value into a new object (*obj; an empty value is {}).
 * KF_E_STATE with KF_R_NOT_OBJECT when the value is not a JSON object. */
int kf_aws_fields_parse(const struct kf_secret *value, json_t **obj,
			struct kf_err *err);

/* A field's file content: a string's bytes, else its compact JSON. */
struct kf_secret *kf_aws_fields_bytes(const json_t *v);
/* Length of kf_aws_fields_bytes(v), without building it. */
size_t kf_aws_fields_size(const json_t *v);

/*
 * Set field to the n bytes at value (UTF-8 text only, else KF_E_INVALID),
 * or remove it when value is NULL (KF_E_NOTFOUND when absent).
 */
int kf_aws_fields_change(json_t *obj, const char *field,
			 const unsigned char *value, size_t n,
			 struct kf_err *err);

/* Compact JSON of obj in a new *out; KF_E_TOOBIG when over max bytes. */
int kf_aws_fields_encode(const json_t *obj, size_t max, struct kf_secret **out,
			 struct kf_err *err);

#endif
