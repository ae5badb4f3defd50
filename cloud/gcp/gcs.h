/*
 * Cloud Storage JSON API v1 client: object stat, media read (CRC32C of
 * the bytes checked against x-goog-hash and the object resource), write
 * by multipart upload with generation preconditions, delete, and one page
 * of a listing.  Object bytes cross this module only in sensitive
 * buffers; nothing here logs a body, a header value or a token (messages
 * name the bucket, the object and the server's error text).
 */
#ifndef KF_GCP_GCS_H
#define KF_GCP_GCS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "gcp/auth.h"

#define KF_GCS_ENDPOINT "https://storage.googleapis.com/"
#define KF_GCS_MAX_NAME 1024		     /* bytes of an object name */
#define KF_GCS_MAX_OBJECT_DEFAULT (1u << 20) /* largest object read */

struct kf_gcs {
	char endpoint[512];	  /* ends with '/' */
	struct kf_gcp_auth *auth; /* borrowed */
	unsigned timeout_ms;	  /* one operation, retries included */
	unsigned backoff_ms;	  /* first delay after a 5xx or network error */
	unsigned backoff_429_ms;  /* first delay after a 429 */
	unsigned max_attempts;	  /* per request */
	size_t max_object;	  /* largest object read or written */
};

/*
 * Set up g (no allocation).  Endpoint: opt (-o gcs_endpoint=) if set,
 * else CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE, else KF_GCS_ENDPOINT; a
 * missing trailing '/' is added.  KF_E_INVALID for a URL http.c refuses.
 */
int kf_gcs_init(struct kf_gcs *g, const char *endpoint_opt,
		struct kf_gcp_auth *auth, unsigned timeout_ms,
		struct kf_err *err);

/* An object resource (one generation), as objects.get / list give it. */
struct kf_gcs_object {
	char name[KF_GCS_MAX_NAME + 1];
	long long generation;	  /* > 0 */
	long long metageneration; /* > 0 */
	long long size;		  /* bytes */
	uint32_t crc32c;	  /* valid when has_crc32c */
	int has_crc32c;
	int live;		 /* no timeDeleted */
	char md5[32];		 /* md5Hash as given (base64) or "" */
	char updated[40];	 /* RFC 3339 or "" */
	char cache_control[128]; /* "" when unset */
	char content_type[128];	 /* "" when unset */
	json_t *metadata;	 /* the custom metadata map or NULL */
};

/* Free o->metadata (o itself is the caller's).  Accepts NULL. */
void kf_gcs_object_release(struct kf_gcs_object *o);

/* metadata[key] when it is a string, else NULL. */
const char *kf_gcs_meta(const struct kf_gcs_object *o, const char *key);

/*
 * Parse an object resource (JSON object j) into *o (released first on
 * error, so *o is always safe to release).  int64 fields are decimal
 * strings, crc32c the base64 of 4 big-endian bytes.  KF_E_IO when a field
 * is missing or malformed (name, generation, metageneration, size).
 */
int kf_gcs_parse_object(json_t *j, struct kf_gcs_object *o, struct kf_err *err);
/* The same from n bytes of JSON text. */
int kf_gcs_parse_object_text(const char *p, size_t n, struct kf_gcs_object *o,
			     struct kf_err *err);

/*
 * Called for each item of a list page (o is released after the call) and
 * each prefix (o NULL, prefix set).  Return non-zero to stop.
 */
typedef int (*kf_gcs_list_fn)(void *ctx, const struct kf_gcs_object *o,
			      const char *prefix);

/*
 * Parse one list page (n bytes of JSON): items[], prefixes[],
 * nextPageToken (copied into next when not NULL; "" after the last
 * page).  KF_E_IO when the page or an item is malformed.
 */
int kf_gcs_parse_list(const char *p, size_t n, kf_gcs_list_fn fn, void *ctx,
		      struct kf_buf *next, struct kf_err *err);

/*
 * objects.get of generation gen (0: the live one) into *o (caller
 * releases).  KF_E_NOTFOUND when there is none.
 */
int kf_gcs_stat(struct kf_gcs *g, const char *bucket, const char *object,
		long long gen, struct kf_gcs_object *o, struct kf_err *err);

/*
 * The bytes of generation gen (0: the live one), appended to out (a
 * sensitive buffer; unchanged on error).  CRC32C(bytes) must equal the
 * crc32c of the x-goog-hash answer header (required) and, when expect is
 * given, expect->crc32c and expect->size; x-goog-generation must be gen
 * when gen is given.  A mismatch is retried twice (3 answers in all), then
 * KF_E_INTEGRITY.  *got_gen (may be NULL) receives the generation read.
 */
int kf_gcs_read(struct kf_gcs *g, const char *bucket, const char *object,
		long long gen, const struct kf_gcs_object *expect,
		struct kf_buf *out, long long *got_gen, struct kf_err *err);

/* What a write sets and requires. */
struct kf_gcs_write {
	const char *content_type;    /* NULL: application/octet-stream */
	const char *cache_control;   /* NULL: unset */
	const char *const *metadata; /* key, value, ..., NULL; may be NULL */
	long long if_generation;     /* -1: none; 0: must not exist */
	long long if_metageneration; /* -1: none */
};

/* A write with no conditions and no metadata. */
void kf_gcs_write_init(struct kf_gcs_write *w);

/*
 * objects.insert by multipart upload: a JSON part (name, metadata,
 * cacheControl, contentType, crc32c of the bytes, which the server
 * checks) and the bytes.  The answer's resource goes into *o (may be NULL)
 * after its size and crc32c were checked against what was sent.  A
 * failed precondition is KF_E_STATE with http_status 412
 * (kf_gcs_conflict() says so).
 *
 * Retries (429, 5xx, network errors) are safe even with preconditions:
 * when an attempt went unanswered or failed ambiguously and a later one
 * answers 412, the first may have landed, so the object is stat'ed and,
 * when its size and crc32c equal what was written, its bytes are read
 * and compared; equal bytes mean this write landed (success, its
 * generation returned), anything else is the 412.  Without a
 * precondition a repeated upload only makes another generation.
 */
int kf_gcs_write(struct kf_gcs *g, const char *bucket, const char *object,
		 const void *data, size_t n, const struct kf_gcs_write *w,
		 struct kf_gcs_object *o, struct kf_err *err);

/*
 * objects.delete of the live object, with ifGenerationMatch when
 * if_generation > 0.  A 404 after an ambiguous attempt counts as done.
 */
int kf_gcs_delete(struct kf_gcs *g, const char *bucket, const char *object,
		  long long if_generation, struct kf_err *err);

/* One page of objects.list. */
struct kf_gcs_list_req {
	const char *prefix;    /* NULL or "" for the whole bucket */
	const char *delimiter; /* "/" for one level, NULL for none */
	const char *page;      /* NULL or "" for the first page */
	int versions;	       /* list noncurrent generations too */
	unsigned max_results;  /* 0: the server's default (1000) */
};

int kf_gcs_list(struct kf_gcs *g, const char *bucket,
		const struct kf_gcs_list_req *rq, kf_gcs_list_fn fn, void *ctx,
		struct kf_buf *next, struct kf_err *err);

/* Did this error come from a failed precondition (HTTP 412)? */
int kf_gcs_conflict(const struct kf_err *err);

/* KF_E_* for an HTTP status of the JSON API. */
enum kf_code kf_gcs_map(long http);

/* Whether s is a bucket name the JSON API accepts ([a-z0-9._-]{3,222}). */
int kf_gcs_valid_bucket(const char *s);
/* Whether s is a valid object name (1..1024 bytes, no CR or LF). */
int kf_gcs_valid_object(const char *s);

#endif
