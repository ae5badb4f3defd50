/*
 * What gcs.c and gcs_io.c share: one request with its retries.  Not for
 * other modules.
 */
#ifndef KF_GCP_GCS_INT_H
#define KF_GCP_GCS_INT_H

#include "core/http.h"
#include "gcp/gcs.h"

/* One request of the JSON API and what its attempts share. */
struct gcs_call {
	struct kf_gcs *g;
	const char *method; /* "GET", "POST", "DELETE" */
	const char *op;	    /* "objects.get": counters, messages */
	const char *url;
	const char *ctype; /* "Content-Type: ..." line or NULL */
	const void *body;  /* may be NULL */
	size_t body_len;
	size_t max_response;	   /* 0: http.c's default */
	int accept_json;	   /* send Accept: application/json */
	int retry;		   /* may be repeated after a transient error */
	struct kf_http_resp *resp; /* the 2xx answer on success */
	char target[240];	   /* "gs://bucket/object", for messages */
	/* Filled by gcs_call: */
	const char *quota_hdr;
	int refreshed;	    /* the one token refresh was used */
	int ambiguous;	    /* an attempt may have been acted on */
	int final;	    /* the last verdict was FAIL */
	unsigned counted;   /* failed attempts that count */
	struct kf_err last; /* the last failed attempt's error */
};

/*
 * Send c with retries (429 and 5xx, network errors when c->retry; one
 * token refresh after a 401).  0 with the 2xx answer in c->resp, or -1
 * with *err (http_status and provider_code = errors[0].reason set for an
 * error answer).
 */
int gcs_call(struct gcs_call *c, struct kf_err *err);

/* ENDPOINT BASE storage/v1/b/BUCKET/o[/OBJECT] appended to url; base is
 * "" or "upload/".  Checks both names. */
int gcs_url(struct kf_gcs *g, struct kf_buf *url, const char *base,
	    const char *bucket, const char *object, struct kf_err *err);

/* "gs://bucket/object" (object may be NULL), for messages. */
void gcs_target(char *out, size_t n, const char *bucket, const char *object);

/* A crc32c field (base64 of 4 big-endian bytes); -1 when malformed. */
int gcs_crc32c_b64(const char *s, uint32_t *out);

#endif
