/*
 * The JSON accessors every client shares, and the jansson allocator that
 * wipes every block it frees (installed once, before any JSON is parsed,
 * because API responses hold secret values).  Never logs a document.
 */
#ifndef KF_JSON_H
#define KF_JSON_H

#include <jansson.h>
#include <stdint.h>

/* Install the wiping allocator.  Call once, before any thread parses. */
void kf_json_init(void);

/* Free memory jansson allocated for the caller (json_dumps strings). */
void kf_json_free(void *p);

/* o[key] when it is a string, else NULL.  o may be NULL. */
const char *kf_json_str(const json_t *o, const char *key);

/*
 * o[key] as an unsigned 32-bit number, given as a JSON integer or as a
 * decimal string (proto3's int64 mapping).  A missing key gives 0.
 * Returns 0, or -1 when the value is of another type or out of range.
 */
int kf_json_u32(const json_t *o, const char *key, uint32_t *out);

/*
 * Parse n bytes as a JSON object (NULs allowed inside strings); an empty
 * body is an empty object.  NULL when it is not one.  Caller decrefs.
 */
json_t *kf_json_object(const char *p, size_t n);

#endif
