/*
 * Google Secret Manager REST v1 client (global secrets): list, get,
 * create and delete secrets, add, access and list versions.  Every
 * request goes through kf_gcp_kms_call (the generic Google REST caller:
 * auth header, error answers, retries) pointed at the Secret Manager
 * endpoint.  Values cross this module only in sensitive buffers and
 * kf_secret, and nothing here logs a body or puts a value in a message.
 * gsm.c holds the set-up, the answer parsers and the secret methods,
 * gsm_value.c adding, accessing and checking values.
 *
 * Answers name a project by its NUMBER (projects/123456789012/secrets/x)
 * whatever the request said, so names are never compared whole: only
 * their last components (secret id, version number) are.
 *
 * addVersion has no idempotency token.  After an ambiguous failure (no
 * answer, a timeout, a 5xx) kf_gsm_add checks whether the version landed
 * before it sends the value again: it lists the versions (newest first)
 * and accesses the newest ENABLED one created at or after the call began
 * (less KF_GSM_LANDED_SLACK_MS for clock skew); if its bytes equal the
 * value, that version is the result.  The window that remains: a request
 * the server applies only after the check ran (still in flight), a
 * version disabled or overtaken by another writer's newer version between
 * the add and the check, or a clock skew larger than the slack, each
 * leave one more version holding the same value; and a version with the
 * very same bytes made by anyone within the slack before the call is
 * taken for ours (the latest value is then the one asked for, but no new
 * version was made).  A value is never lost, and never replaced by
 * anything but itself.
 */
#ifndef KF_GCP_GSM_H
#define KF_GCP_GSM_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"
#include "gcp/auth.h"
#include "gcp/kms.h"

#define KF_GSM_ENDPOINT "https://secretmanager.googleapis.com/"
#define KF_GSM_MAX_VALUE 65536 /* the API's payload limit */
#define KF_GSM_MAX_ID 255      /* secret ids: [A-Za-z0-9_-]{1,255} */
#define KF_GSM_LANDED_SLACK_MS 2000

struct kf_gsm {
	/* Endpoint (Secret Manager's), borrowed auth and retry knobs. */
	struct kf_gcp_kms rest;
	unsigned check_attempts; /* access answers failing their CRC32C */
};

/*
 * Set up g (no allocation).  Endpoint: opt (-o gsm_endpoint=) if set, else
 * CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER, else KF_GSM_ENDPOINT.
 * KF_E_INVALID for a URL http.c refuses.  auth is borrowed; timeout_ms
 * bounds one operation with its retries (0 = 30 s).
 */
int kf_gsm_init(struct kf_gsm *g, const char *endpoint_opt,
		struct kf_gcp_auth *auth, unsigned timeout_ms,
		struct kf_err *err);

/* Whether s is a valid secret id: [A-Za-z0-9_-]{1,255}. */
int kf_gsm_valid_id(const char *s);

/* A secret as an answer describes it. */
struct kf_gsm_secret {
	char id[KF_GSM_MAX_ID + 1];
	char project[64];    /* as the answer names it: a number */
	long long create_ms; /* epoch ms, -1 when absent */
	char etag[96];	     /* with its quotes, "" when absent */
	int user_managed;    /* replication: 0 automatic, 1 user-managed */
	char kms_key[512];   /* CMEK key (the first replica's), or "" */
	json_t *labels;	     /* object or NULL; kf_gsm_secret_release */
	json_t *annotations; /* object or NULL */
};

void kf_gsm_secret_release(struct kf_gsm_secret *s);

enum kf_gsm_state {
	KF_GSM_STATE_UNKNOWN = 0,
	KF_GSM_ENABLED,
	KF_GSM_DISABLED,
	KF_GSM_DESTROYED,
};

/* A secret version as an answer describes it. */
struct kf_gsm_version {
	long long number; /* >= 1 */
	enum kf_gsm_state state;
	long long create_ms;  /* epoch ms, -1 when absent */
	long long destroy_ms; /* epoch ms, -1 when absent */
	char etag[96];
};

/*
 * The parsers of answers (also the fuzz targets' entry points).  Each
 * returns 0, or -1 with KF_E_IO (malformed answer) and *out left empty.
 * parse_secret fills *s (release it, also after -1); parse_version
 * needs a name ending in /versions/NUMBER and a known state.
 */
int kf_gsm_parse_secret(const json_t *j, struct kf_gsm_secret *s,
			struct kf_err *err);
int kf_gsm_parse_version(const json_t *j, struct kf_gsm_version *v,
			 struct kf_err *err);
/*
 * An access answer for secret id: name .../secrets/ID/versions/N (only
 * the last components are compared), payload.data (base64; absent =
 * empty) and payload.dataCrc32c, which must be present and match the
 * bytes.  On 0 *val is a new kf_secret (caller frees) whose version is
 * "N", and *number is N (may be NULL).  KF_E_INTEGRITY when the checksum
 * or the name does not match, KF_E_IO when malformed; nothing of the
 * bytes survives a failure.
 */
int kf_gsm_parse_access(const json_t *j, const char *id, struct kf_secret **val,
			long long *number, struct kf_err *err);
/* RFC 3339 UTC or with an offset, any fraction, as epoch ms; -1 if bad. */
long long kf_gsm_parse_time(const char *s);

typedef int (*kf_gsm_secret_fn)(void *ctx, const struct kf_gsm_secret *s);
typedef int (*kf_gsm_version_fn)(void *ctx, const struct kf_gsm_version *v);

/*
 * One page of the project's secrets (by id): page_size 0 = the API's
 * default, page NULL or "" = the first page; next (may be NULL) receives
 * nextPageToken, "" after the last page.  fn gets each secret (borrowed
 * for the call); non-zero stops.  A malformed item fails the page.
 */
int kf_gsm_list_secrets(struct kf_gsm *g, const char *project,
			unsigned page_size, const char *page,
			kf_gsm_secret_fn fn, void *ctx, struct kf_buf *next,
			struct kf_err *err);

/* secrets.get: fills *s (release it).  KF_E_NOTFOUND when absent. */
int kf_gsm_get(struct kf_gsm *g, const char *project, const char *id,
	       struct kf_gsm_secret *s, struct kf_err *err);

/*
 * secrets.create with automatic replication, and kms_key (NULL or "") as
 * its customer-managed encryption key.  The id is checked before any
 * call (KF_E_INVALID).  KF_E_EXISTS when it exists (unless an earlier
 * attempt of this call made it).  The new secret's etag is copied to
 * etag (may be NULL; "" when unknown).
 */
int kf_gsm_create(struct kf_gsm *g, const char *project, const char *id,
		  const char *kms_key, char *etag, size_t etaglen,
		  struct kf_err *err);

/*
 * secrets.delete, only while the secret's etag is etag (NULL or "": any).
 * A wrong etag is KF_E_STATE (FAILED_PRECONDITION); NOT_FOUND after an
 * attempt that got no answer counts as deleted.
 */
int kf_gsm_delete(struct kf_gsm *g, const char *project, const char *id,
		  const char *etag, struct kf_err *err);

/*
 * addVersion of n bytes (1..KF_GSM_MAX_VALUE: KF_E_INVALID for an empty
 * value, KF_E_TOOBIG over the limit, both before any call), sent with its
 * CRC32C.  After an ambiguous failure the landed check above runs before
 * the value is sent again.  The new version's number goes to *number
 * (may be NULL).  The value is only read, and only through sensitive
 * buffers.
 */
int kf_gsm_add(struct kf_gsm *g, const char *project, const char *id,
	       const void *val, size_t n, long long *number,
	       struct kf_err *err);

/*
 * Access version ("latest" or a decimal number; else KF_E_INVALID).  The
 * answer's CRC32C is checked; a mismatch is asked again, up to
 * check_attempts answers in all, then KF_E_INTEGRITY.  *val as
 * kf_gsm_parse_access.  A DISABLED or DESTROYED version is KF_E_STATE.
 */
int kf_gsm_access(struct kf_gsm *g, const char *project, const char *id,
		  const char *version, struct kf_secret **val,
		  long long *number, struct kf_err *err);

/*
 * One page of the secret's versions, newest first (as list_secrets).
 */
int kf_gsm_list_versions(struct kf_gsm *g, const char *project, const char *id,
			 unsigned page_size, const char *page,
			 kf_gsm_version_fn fn, void *ctx, struct kf_buf *next,
			 struct kf_err *err);

/*
 * A new secret holding a value, or nothing: create (as kf_gsm_create),
 * then add (as kf_gsm_add).  When the add fails, the secret just made is
 * deleted (with its etag), so no empty secret remains; the add's error
 * is returned.  If that delete fails too, the error says so and an empty
 * secret may remain.
 */
int kf_gsm_create_with_value(struct kf_gsm *g, const char *project,
			     const char *id, const char *kms_key,
			     const void *val, size_t n, long long *number,
			     struct kf_err *err);

/*
 * What gsm_value.c shares with gsm.c: the path "projects/P/secrets/ID"
 * plus suffix into out (KF_E_INVALID for a bad project or id), and
 * err's "Cloud KMS" wording (the shared caller's) made "Secret Manager".
 */
int kf_gsm_path(struct kf_buf *out, const char *project, const char *id,
		const char *suffix, struct kf_err *err);
void kf_gsm_relabel(struct kf_err *err);

/* Test seam: the wall clock (epoch ms) of the landed check; NULL
 * restores the system's. */
void kf_gsm_set_clock(long long (*now_ms)(void));
long long kf_gsm_now_ms(void);

#endif
