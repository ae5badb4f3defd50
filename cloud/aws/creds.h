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

#endif
