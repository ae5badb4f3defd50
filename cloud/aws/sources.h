/*
 * The credential sources behind the AWS chain (cloud/aws only): the
 * settings resolved for the chosen source and one fetch function per
 * source.  A fetch never logs and never puts a key or token in *err.
 */
#ifndef KF_AWS_SOURCES_H
#define KF_AWS_SOURCES_H

#include <stddef.h>
#include <time.h>

#include "aws/creds.h"
#include "core/err.h"

/* What the chain resolved for its source; read-only once resolved. */
struct kf_aws_source_cfg {
	char label[160];     /* "environment", "profile dev", ... */
	unsigned timeout_ms; /* per STS request; 0: 10 s */
	char *profile;	     /* profile name in use */
	char *cred_path;     /* shared credentials file */
	char *config_path;   /* shared config file */
	int from_config;     /* profile keys: config file, not credentials */
	char *role_arn;	     /* web identity */
	char *session_name;
	char *token_file;
	char *sts_url; /* STS endpoint, no trailing slash */
	char *url;     /* container endpoint or IMDS base URL */
};

/* Free the strings.  Accepts NULL. */
void kf_aws_source_cfg_release(struct kf_aws_source_cfg *s);

/*
 * Fetch functions: 0 with *out filled (caller releases), or -1 with *err
 * naming the problem but not the source (the chain adds the label).
 */
typedef int (*kf_aws_fetch_fn)(const struct kf_aws_source_cfg *s,
			       struct kf_aws_creds *out, struct kf_err *err);

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or
 * AWS_SECURITY_TOKEN), AWS_CREDENTIAL_EXPIRATION. */
int kf_aws_fetch_env(const struct kf_aws_source_cfg *s,
		     struct kf_aws_creds *out, struct kf_err *err);
/* Static keys of s->profile, re-read from its file at every fetch. */
int kf_aws_fetch_profile(const struct kf_aws_source_cfg *s,
			 struct kf_aws_creds *out, struct kf_err *err);
/* STS AssumeRoleWithWebIdentity with the token file's current contents;
 * 3 attempts on UNAVAILABLE/TIMEOUT. */
int kf_aws_fetch_web_identity(const struct kf_aws_source_cfg *s,
			      struct kf_aws_creds *out, struct kf_err *err);
/*
 * STS AssumeRoleWithWebIdentity of s->role_arn (s->session_name, at
 * s->sts_url) with the token (n bytes, in memory; not kept, never in
 * *err); 3 attempts on UNAVAILABLE/TIMEOUT.  -1 with KF_E_INVALID (empty
 * or over 20000 bytes), KF_E_DENIED (STS refused: AccessDenied,
 * InvalidIdentityToken, ExpiredTokenException, IDPRejectedClaim, ...),
 * KF_E_UNAVAILABLE (network, 5xx, throttling), KF_E_TIMEOUT, KF_E_IO.
 */
int kf_aws_sts_web_identity(const struct kf_aws_source_cfg *s, const void *tok,
			    size_t n, struct kf_aws_creds *out,
			    struct kf_err *err);
/* The ECS/EKS container endpoint s->url; 3 attempts on UNAVAILABLE. */
int kf_aws_fetch_container(const struct kf_aws_source_cfg *s,
			   struct kf_aws_creds *out, struct kf_err *err);
/* EC2 IMDSv2 at s->url; AWS_METADATA_SERVICE_NUM_ATTEMPTS attempts. */
int kf_aws_fetch_imds(const struct kf_aws_source_cfg *s,
		      struct kf_aws_creds *out, struct kf_err *err);

/*
 * Fill *out (memset first) from text: ak copied, sk and tok (may be
 * NULL) into secret memory.  what names the origin in errors.  -1 with
 * KF_E_INVALID (bad key id length, empty secret) or KF_E_NOMEM.
 */
int kf_aws_creds_set(struct kf_aws_creds *out, const char *ak, const char *sk,
		     size_t sklen, const char *tok, size_t toklen, time_t exp,
		     const char *what, struct kf_err *err);

/* A copy of src into *dst (caller releases). */
int kf_aws_creds_copy(struct kf_aws_creds *dst, const struct kf_aws_creds *src,
		      struct kf_err *err);

/*
 * "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" as epoch seconds; -1 when
 * malformed.
 */
time_t kf_aws_iso8601(const char *s);

#endif
