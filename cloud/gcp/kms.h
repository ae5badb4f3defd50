/*
 * Google Cloud KMS REST v1 client: locations, key rings, crypto keys,
 * versions, encrypt and decrypt.  Retries only what is safe to repeat;
 * plaintext crosses this module only in sensitive buffers and kf_secret,
 * and nothing here logs a body.
 *
 * Encrypt and decrypt follow gcloud's CRC32C integrity procedure: the
 * request carries the checksums of its data, the server's verified flags
 * and the answer's checksum are checked.  kms.c holds the call, kms_keys.c
 * the resource methods, kms_crypt.c encrypt and decrypt.
 */
#ifndef KF_GCP_KMS_H
#define KF_GCP_KMS_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "gcp/auth.h"
#include "core/secret.h"

#define KF_GCP_KMS_ENDPOINT "https://cloudkms.googleapis.com/"
#define KF_GCP_KMS_MAX_PLAINTEXT 65536
#define KF_GCP_KMS_MAX_CIPHERTEXT 131072 /* gcloud's decrypt limit */
#define KF_GCP_KMS_MAX_AAD 65536

struct kf_gcp_kms {
	char endpoint[512];	  /* ends with '/' */
	struct kf_gcp_auth *auth; /* borrowed */
	unsigned timeout_ms;	  /* one operation, retries included */
	unsigned backoff_ms;	  /* first delay after UNAVAILABLE etc. */
	unsigned backoff_429_ms;  /* first delay after RESOURCE_EXHAUSTED */
	unsigned max_attempts;	  /* per operation */
};

/*
 * Set up k (no allocation).  Endpoint: opt (-o gcp_endpoint=) if set, else
 * CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS, else KF_GCP_KMS_ENDPOINT; a
 * missing trailing '/' is added.  KF_E_INVALID for a URL http.c refuses
 * (not https, http to a non-loopback host).
 */
/*
 * The base URL of a Google API into out (ending with '/'): opt when set,
 * else the environment variable env_name (gcloud's
 * CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>), else def.  KF_E_INVALID (naming
 * what, "Cloud KMS") for a URL that is too long or that http.c refuses.
 */
int kf_gcp_endpoint(const char *opt, const char *env_name, const char *def,
		    const char *what, char *out, size_t outlen,
		    struct kf_err *err);

int kf_gcp_kms_init(struct kf_gcp_kms *k, const char *endpoint_opt,
		    struct kf_gcp_auth *auth, unsigned timeout_ms,
		    struct kf_err *err);

/* Flags for kf_gcp_kms_call. */
#define KF_GCP_RETRY 1	/* the call may be repeated after a transient error */
#define KF_GCP_CREATE 2 /* ALREADY_EXISTS after an ambiguous attempt = ok */
#define KF_GCP_FRESH \
	4 /* a new connection: never re-sent by libcurl when a
			 * reused one dies (calls without idempotency) */

/*
 * One API method with retries: METHOD base/v1/path (path may carry a
 * query), JSON body (may be NULL), response object in *out (caller
 * json_decref's; may be NULL when the caller does not want it, and is NULL
 * after a CREATE that succeeded through ALREADY_EXISTS).  A 401 refreshes
 * the token and repeats once, whatever the flags.  With KF_GCP_RETRY it
 * retries UNAVAILABLE, DEADLINE_EXCEEDED, network errors, server checksum
 * mismatches and (with a longer backoff) RESOURCE_EXHAUSTED / 429, within
 * k->timeout_ms.  Errors carry the canonical status in provider_code;
 * an INVALID_ARGUMENT answer refusing a ciphertext also carries
 * KF_R_BAD_CIPHERTEXT.
 */
int kf_gcp_kms_call(struct kf_gcp_kms *k, const char *method, const char *path,
		    const struct kf_buf *body, int flags, json_t **out,
		    struct kf_err *err);

/*
 * Retry class of an error answer: 0 never, 1 retry with the normal
 * backoff, 2 retry with the long backoff (quota).  status is the
 * canonical code ("" when the body had none), message the error text.
 */
int kf_gcp_kms_retry_class(const char *status, long http, const char *message);

/* KF_E_* for a canonical status (http used when status is ""). */
enum kf_code kf_gcp_kms_map(const char *status, long http);

/* Whether s is a valid key ring / crypto key id: [a-zA-Z0-9_-]{1,63}. */
int kf_gcp_valid_id(const char *s);

/*
 * Called for each item of a list page: id is the last component of the
 * item's name (locationId for locations), item the JSON object.  Return
 * non-zero to stop.
 */
typedef int (*kf_gcp_item_fn)(void *ctx, const char *id, json_t *item);

/*
 * One page of parent's collection ("locations", "keyRings",
 * "cryptoKeys"): GET v1/PARENT/COLLECTION?pageSize=..&pageToken=PAGE.
 * page NULL or "" = first page; next receives nextPageToken ("" after the
 * last page).  next may be NULL.
 */
int kf_gcp_kms_list(struct kf_gcp_kms *k, const char *parent,
		    const char *collection, const char *page, kf_gcp_item_fn fn,
		    void *ctx, struct kf_buf *next, struct kf_err *err);

/* GET any resource by full name (key ring, crypto key, location). */
int kf_gcp_kms_get(struct kf_gcp_kms *k, const char *name, json_t **out,
		   struct kf_err *err);

/* keyRings.create under parent "projects/P/locations/L". */
int kf_gcp_kms_create_ring(struct kf_gcp_kms *k, const char *parent,
			   const char *id, struct kf_err *err);

/*
 * cryptoKeys.create (ENCRYPT_DECRYPT) under ring; rotation_s > 0 sets
 * rotationPeriod and nextRotationTime = now + rotation_s.
 */
int kf_gcp_kms_create_key(struct kf_gcp_kms *k, const char *ring,
			  const char *id, long long rotation_s,
			  struct kf_err *err);

/* cryptoKeys.patch rotationPeriod + nextRotationTime (now + period). */
int kf_gcp_kms_set_rotation(struct kf_gcp_kms *k, const char *key,
			    long long rotation_s, struct kf_err *err);

/* cryptoKeys.updatePrimaryVersion to version id (decimal string). */
int kf_gcp_kms_set_primary(struct kf_gcp_kms *k, const char *key,
			   const char *version_id, struct kf_err *err);

/*
 * Manual rotation: cryptoKeyVersions.create (never retried: each call makes
 * a version) then updatePrimaryVersion.  The new version's full name is
 * copied to ver (may be NULL).
 */
int kf_gcp_kms_rotate(struct kf_gcp_kms *k, const char *key, char *ver,
		      size_t verlen, struct kf_err *err);

/*
 * Encrypt n bytes (1..65536) with key (its primary version), no AAD.
 * The response is verified (name, both verified flags, ciphertextCrc32c);
 * a failed check is retried a few times, then KF_E_INTEGRITY.  The raw
 * ciphertext is appended to ct (unchanged on error); the version used is
 * copied to used (may be NULL).
 */
int kf_gcp_kms_encrypt(struct kf_gcp_kms *k, const char *key, const void *pt,
		       size_t n, struct kf_buf *ct, char *used, size_t usedlen,
		       struct kf_err *err);

/*
 * As kf_gcp_kms_encrypt, binding the ciphertext to aadlen (0..65536) bytes
 * of additional authenticated data (aad may be NULL when aadlen is 0):
 * the request carries additionalAuthenticatedData with its CRC32C, and
 * the answer must say the server verified both checksums.  Decrypting
 * needs the same AAD.  The AAD is not secret but is never logged either.
 */
int kf_gcp_kms_encrypt_aad(struct kf_gcp_kms *k, const char *key,
			   const void *pt, size_t n, const void *aad,
			   size_t aadlen, struct kf_buf *ct, char *used,
			   size_t usedlen, struct kf_err *err);

/*
 * Decrypt raw ciphertext with key.  *pt receives a new kf_secret (caller
 * frees) only when CRC32C(plaintext) equals the response's
 * plaintextCrc32c; otherwise the bytes are wiped and the result is
 * KF_E_INTEGRITY, as when Cloud KMS refuses the ciphertext (the error
 * then also carries KF_R_BAD_CIPHERTEXT).
 */
int kf_gcp_kms_decrypt(struct kf_gcp_kms *k, const char *key, const void *ct,
		       size_t n, struct kf_secret **pt, struct kf_err *err);

/*
 * As kf_gcp_kms_decrypt with the additional authenticated data the
 * ciphertext was made with (sent with its CRC32C; a mismatching AAD is
 * refused by Cloud KMS: KF_E_INTEGRITY with KF_R_BAD_CIPHERTEXT).
 */
int kf_gcp_kms_decrypt_aad(struct kf_gcp_kms *k, const char *key,
			   const void *ct, size_t n, const void *aad,
			   size_t aadlen, struct kf_secret **pt,
			   struct kf_err *err);

/* Parse "N", "Ns", "Nm", "Nh", "Nd" into seconds; -1 when malformed. */
long long kf_gcp_parse_duration(const char *s);

#endif
