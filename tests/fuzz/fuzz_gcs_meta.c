/*
 * libFuzzer target for the Cloud Storage answer parsers in
 * cloud/gcp/gcs.c: an object resource (objects.get, upload answers) and a
 * list page (items, prefixes, nextPageToken).  Properties: 0 or -1 with
 * KF_E_IO; an accepted object has a non-empty name of at most 1024 bytes,
 * generation and metageneration > 0, size >= 0, string metadata values;
 * the page token is a NUL-terminated copy; nothing leaks (ASan).
 *
 * Input: byte 0 picks the parser (even: object, odd: list), rest = JSON.
 */
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "gcp/gcs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kf_log_set_level(KF_LOG_ERROR);
	return 0;
}

static void check_object(const struct kf_gcs_object *o)
{
	const char *k;
	json_t *v;
	size_t n = strnlen(o->name, sizeof(o->name));

	if (n == 0 || n > KF_GCS_MAX_NAME || o->generation <= 0 ||
	    o->metageneration <= 0 || o->size < 0 ||
	    !memchr(o->md5, '\0', sizeof(o->md5)) ||
	    !memchr(o->updated, '\0', sizeof(o->updated)) ||
	    !memchr(o->cache_control, '\0', sizeof(o->cache_control)) ||
	    !memchr(o->content_type, '\0', sizeof(o->content_type)))
		abort();
	json_object_foreach(o->metadata, k, v) if (!json_is_string(v) ||
						   kf_gcs_meta(o, k) == NULL)
		abort();
}

static int item(void *ctx, const struct kf_gcs_object *o, const char *prefix)
{
	(*(unsigned *)ctx)++;
	if (o)
		check_object(o);
	else if (!prefix || !*prefix)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_object o;
	struct kf_buf next;
	unsigned n = 0;
	int rc;

	if (size < 1 || size > 262144)
		return 0;
	kf_buf_init(&next, 8192);
	if (data[0] % 2 == 0) {
		rc = kf_gcs_parse_object_text((const char *)data + 1, size - 1,
					      &o, &err);
		if (rc == 0)
			check_object(&o);
		else if (o.metadata)
			abort();
		kf_gcs_object_release(&o);
	} else {
		rc = kf_gcs_parse_list((const char *)data + 1, size - 1, item,
				       &n, &next, &err);
		if (rc == 0 && next.len && strlen(next.data) != next.len)
			abort();
	}
	if (rc != 0 && (rc != -1 || err.code != KF_E_IO))
		abort();
	kf_buf_release(&next);
	return 0;
}
