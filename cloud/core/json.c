/*
 * JSON accessors and the wiping allocator (see json.h).  Values parsed
 * here may be secrets: nothing in this file copies or prints them.
 */
#include "core/json.h"
#include "core/secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

void kf_json_init(void)
{
	json_set_alloc_funcs(kf_wipe_malloc, kf_wipe_free);
}

void kf_json_free(void *p)
{
	json_malloc_t m;
	json_free_t f;

	if (!p)
		return;
	json_get_alloc_funcs(&m, &f);
	f(p);
}

const char *kf_json_str(const json_t *o, const char *key)
{
	json_t *v = o ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int kf_json_u32(const json_t *o, const char *key, uint32_t *out)
{
	json_t *v = o ? json_object_get(o, key) : NULL;
	unsigned long long x;
	char *end;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > 0xffffffffLL)
			return -1;
		*out = (uint32_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) ||
	    !isdigit((unsigned char)*json_string_value(v)))
		return -1;
	errno = 0;
	x = strtoull(json_string_value(v), &end, 10);
	if (errno || *end || x > 0xffffffffULL)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

json_t *kf_json_object(const char *p, size_t n)
{
	json_t *j;

	if (!n)
		return json_object();
	j = json_loadb(p, n, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}
