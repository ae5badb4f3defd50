/*
 * Google credentials and access tokens, found as google-auth finds them.
 * Access tokens live in locked memory and are refreshed before they
 * expire; nothing here logs a private key, client secret, refresh token
 * or access token (logs and errors name only the source).
 *
 * Sources, in order: a key file named by -o gcp_credentials= or
 * GOOGLE_APPLICATION_CREDENTIALS (service account: RS256 JWT bearer grant
 * to the file's token_uri; authorized_user: refresh-token grant), the
 * gcloud ADC file, then the GCE metadata server.  Unlike google-auth, a
 * token_uri field in an authorized_user file is honoured (default
 * https://oauth2.googleapis.com/token): that is keyfs's knob for pointing
 * user credentials at another token endpoint.  auth.c holds the object
 * and the refresher, cred.c key files and grants, token.c the token
 * fetch, adc.c where credentials and the project are found.
 */
#ifndef KF_GCP_AUTH_H
#define KF_GCP_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"

#define KF_GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define KF_GCP_TOKEN_URI "https://oauth2.googleapis.com/token"
/* Refresh when less than this many seconds remain (google-auth's value). */
#define KF_GCP_REFRESH_MARGIN 225

enum kf_gcp_cred_kind {
	KF_GCP_CRED_NONE = 0,
	KF_GCP_CRED_SERVICE_ACCOUNT,
	KF_GCP_CRED_AUTHORIZED_USER,
	KF_GCP_CRED_METADATA,
};

struct kf_gcp_auth_cfg {
	const char *credentials; /* -o gcp_credentials=FILE, or NULL */
	unsigned timeout_ms;	 /* per token fetch (0 = 10 s) */
};

struct kf_gcp_auth;

/*
 * Resolve the credential source (option, GOOGLE_APPLICATION_CREDENTIALS,
 * gcloud ADC file, metadata server if it answers within a short timeout)
 * and fetch the first access token, so bad credentials are reported before
 * the process daemonizes.  Errors: KF_E_NOTFOUND "no Google credentials
 * found: tried ...", KF_E_INVALID (unreadable or malformed key file),
 * KF_E_DENIED (token endpoint refused the credentials), KF_E_UNAVAILABLE /
 * KF_E_TIMEOUT (token endpoint unreachable).  *out is freed with
 * kf_gcp_auth_free.
 */
int kf_gcp_auth_new(const struct kf_gcp_auth_cfg *cfg, struct kf_gcp_auth **out,
		    struct kf_err *err);

/*
 * The header line "Authorization: Bearer TOKEN" (NUL-terminated) in a new
 * kf_secret the caller frees, and the token's generation for
 * kf_gcp_auth_invalidate.  When the token has less than
 * KF_GCP_REFRESH_MARGIN seconds left, one caller refreshes it (network, no
 * lock held) while the others go on with the still-valid token; callers
 * wait only when no valid token exists.  Thread-safe.
 */
int kf_gcp_auth_header(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       uint64_t *gen, struct kf_err *err);

/*
 * The API answered 401 to a request made with token generation gen: the
 * next kf_gcp_auth_header fetches a new token (once per generation, however
 * many threads report it).
 */
void kf_gcp_auth_invalidate(struct kf_gcp_auth *a, uint64_t gen);

/* "service account key FILE", "authorized_user FILE", "metadata server
 * HOST".  Never NULL. */
const char *kf_gcp_auth_source(const struct kf_gcp_auth *a);

/* Quota project (quota_project_id or GOOGLE_CLOUD_QUOTA_PROJECT) or "". */
const char *kf_gcp_auth_quota_project(const struct kf_gcp_auth *a);

/*
 * Default project as google-auth and gcloud find it: GOOGLE_CLOUD_PROJECT,
 * GCLOUD_PROJECT, the key file's project_id, gcloud's configuration
 * (CLOUDSDK_CORE_PROJECT, else [core] project of the active configuration
 * under CLOUDSDK_CONFIG), then the metadata server (only when the
 * credentials come from it or GCE_METADATA_HOST is set).  a may be NULL
 * (no key file, no metadata).  KF_E_NOTFOUND when none is set.
 */
int kf_gcp_auth_project(struct kf_gcp_auth *a, char *out, size_t outlen,
			struct kf_err *err);

void kf_gcp_auth_free(struct kf_gcp_auth *a);

/*
 * Whether Google credentials are configured, without network I/O: the
 * option or GOOGLE_APPLICATION_CREDENTIALS set, the gcloud ADC file
 * present, or GCE_METADATA_HOST set.
 */
int kf_gcp_auth_present(const char *credentials);

/*
 * Build the signed JWT for the bearer grant (RFC 7523, as Google's token
 * endpoint takes it for a service account): header
 * {"alg":"RS256","typ":"JWT","kid":kid}, claims iss=email, scope, aud,
 * iat=now, exp=now+3600, base64url without padding.  The assertion is
 * appended to out (use a sensitive buffer).  kid may be NULL or "".
 * Errors never quote the key.
 */
int kf_gcp_jwt_assertion(const char *pem, size_t pemlen, const char *kid,
			 const char *email, const char *aud, const char *scope,
			 int64_t now, struct kf_buf *out, struct kf_err *err);

/* Test seams: the wall clock used for token expiry and JWT times (NULL
 * restores time()), and the token endpoint's retry backoff base. */
void kf_gcp_auth_set_clock(time_t (*now)(time_t *));
void kf_gcp_auth_set_backoff_ms(unsigned base_ms);

#endif
