/*
 * Inside Google auth only (auth.c, cred.c, adc.c, token.c): the
 * credential object and what those files share.  Included nowhere else;
 * nothing declared here logs or returns a credential in a message.
 */
#ifndef KF_GCP_AUTH_INT_H
#define KF_GCP_AUTH_INT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "gcp/auth.h"

struct kf_gcp_auth {
	enum kf_gcp_cred_kind kind;
	char source[600];
	char token_uri[512];
	char client_email[256];
	char key_id[128];
	char client_id[256];
	char project_id[128]; /* from the key file, or "" */
	char quota_project[128];
	char md_host[256];
	struct kf_secret *private_key; /* PEM, NUL-terminated */
	struct kf_secret *client_secret;
	struct kf_secret *refresh_token;
	unsigned timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kf_secret *hdr;	/* protected by mu */
	time_t expiry;		/* protected by mu; 0 = invalid */
	uint64_t gen;		/* protected by mu */
	uint64_t seq;		/* protected by mu; refreshes done */
	int refreshing;		/* protected by mu */
	struct kf_err last_err; /* protected by mu */
};

/* Wall-clock seconds for token expiry and JWT times (a test seam). */
time_t kf_gcp_auth_now(void);

/* Copy src (NULL = "") into dst; -1 (dst empty) when it does not fit. */
int kf_gcp_copy_str(char *dst, size_t n, const char *src);

/*
 * Load a JSON key file (service_account or authorized_user) into a: kind,
 * source, token_uri, the key or refresh credentials in kf_secret memory.
 * why names where the path came from, for messages.  KF_E_NOTFOUND when
 * the file is absent, KF_E_INVALID when unreadable or malformed,
 * KF_E_NOTSUP for another credential type.  Errors never quote content.
 */
int kf_gcp_cred_load(struct kf_gcp_auth *a, const char *path, const char *why,
		     struct kf_err *err);

/*
 * Append the form body of a's token grant (JWT bearer for a service
 * account, refresh_token for authorized_user) to body, a sensitive buffer.
 */
int kf_gcp_cred_grant(const struct kf_gcp_auth *a, struct kf_buf *body,
		      struct kf_err *err);

/* gcloud's ADC file path; -1 when no home or config directory is known. */
int kf_gcp_adc_path(char *out, size_t n);

/* The metadata server: GCE_METADATA_HOST, GCE_METADATA_ROOT or the IP. */
void kf_gcp_md_host(char *out, size_t n);

/*
 * Fetch an access token for a (token endpoint or metadata server), with
 * up to 3 attempts on transient failures: the header line in a new
 * kf_secret and its wall-clock expiry.  Takes no lock; *err is written
 * only on failure.
 */
int kf_gcp_token_fetch(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       time_t *expiry, struct kf_err *err);

#endif
