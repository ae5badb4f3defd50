/*
 * AWS credentials resolved as the AWS SDKs do: the credential chain
 * (environment, shared config/credentials files and profiles, web identity
 * via STS, container credentials, EC2 IMDSv2), refreshed before they
 * expire without stalling readers; region and endpoints come with
 * aws/config.h.  Nothing here logs a secret key, session token or
 * web-identity token; logs name only the source.
 */
#ifndef KF_AWS_CREDS_H
#define KF_AWS_CREDS_H

#include <stddef.h>
#include <time.h>

#include "aws/config.h"
#include "core/err.h"
#include "core/secret.h"

/* One set of credentials, owned by the caller after kf_aws_chain_get. */
struct kf_aws_creds {
	char access_key[128];
	struct kf_secret *secret_key;	 /* NUL-terminated text */
	struct kf_secret *session_token; /* NULL when none */
	time_t expiration;		 /* 0 = does not expire */
};

/* Free the secret parts.  Accepts NULL. */
void kf_aws_creds_release(struct kf_aws_creds *c);

struct kf_aws_chain_cfg {
	const char *profile; /* -o aws_profile=, else NULL (AWS_PROFILE,
				 * then "default") */
	unsigned timeout_ms; /* per credential fetch */
};

struct kf_aws_chain;

/*
 * Resolve the chain and fetch the first credentials (network for STS,
 * container or IMDS sources).  -1 with KF_E_DENIED / KF_E_NOTFOUND ("no
 * AWS credentials found: tried ...") / KF_E_UNAVAILABLE.
 */
int kf_aws_chain_new(const struct kf_aws_chain_cfg *cfg,
		     struct kf_aws_chain **out, struct kf_err *err);

/*
 * Copy the current credentials into *out (caller releases).  Refreshes
 * temporary credentials before they expire; concurrent callers do not all
 * wait on one refresh while the old credentials are still valid.
 * Thread-safe.
 */
int kf_aws_chain_get(struct kf_aws_chain *c, struct kf_aws_creds *out,
		     struct kf_err *err);

/* Force a refresh at the next get (after ExpiredTokenException). */
void kf_aws_chain_invalidate(struct kf_aws_chain *c);

/* Name of the source in use: "environment", "profile NAME", ... */
const char *kf_aws_chain_source(const struct kf_aws_chain *c);

void kf_aws_chain_free(struct kf_aws_chain *c);

/* A role assumed with web identity tokens handed over in memory. */
struct kf_aws_role_cfg {
	const char *role_arn;	  /* "arn:aws:iam::123456789012:role/x" */
	const char *session_name; /* NULL: "keyfs-csi-<epoch seconds>" */
	const char *profile;	  /* for the STS endpoint; NULL: default */
	unsigned timeout_ms;	  /* per STS request; 0: 10 s */
};

/*
 * A chain whose credentials come from STS AssumeRoleWithWebIdentity of
 * cfg->role_arn with tokens given to kf_aws_chain_offer_token (there is
 * no token file).  The STS endpoint is resolved as for the web identity
 * source (AWS_ENDPOINT_URL_STS, the profile, the region).  No network
 * I/O; kf_aws_chain_get fails with KF_E_DENIED until a token was
 * accepted.  -1 with KF_E_INVALID (not a role ARN) or KF_E_NOMEM.
 */
int kf_aws_chain_new_role(const struct kf_aws_role_cfg *cfg,
			  struct kf_aws_chain **out, struct kf_err *err);

/*
 * Prove that token (n bytes, e.g. a pod's projected service-account
 * token) may act as the chain's role.  0 at once when this token (known
 * by its SHA-256, never kept in clear outside locked memory) was accepted
 * by STS and the credentials it got are more than 5 minutes from expiry;
 * else one AssumeRoleWithWebIdentity with it (concurrent offers of the
 * same token share that one call).  On success the chain's credentials
 * become the ones just obtained and later refreshes use this token (the
 * newest accepted).  -1 with KF_E_DENIED (STS refused the token or the
 * role: AccessDenied, InvalidIdentityToken, ExpiredTokenException, ...),
 * KF_E_UNAVAILABLE or KF_E_TIMEOUT; *err never holds the token.
 * Only for chains made by kf_aws_chain_new_role (else KF_E_INVALID).
 * Thread-safe.
 */
int kf_aws_chain_offer_token(struct kf_aws_chain *c, const void *token,
			     size_t n, struct kf_err *err);

#endif
