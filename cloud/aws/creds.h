/*
 * AWS credentials and configuration resolved as the AWS SDKs do: the
 * credential chain (environment, shared config/credentials files and
 * profiles, web identity via STS, container credentials, EC2 IMDSv2),
 * region and endpoint resolution.  Temporary credentials are refreshed
 * before they expire without stalling readers.  Nothing here logs a secret
 * key, session token or web-identity token; logs name only the source.
 */
#ifndef KF_AWS_CREDS_H
#define KF_AWS_CREDS_H

#include <stddef.h>
#include <time.h>

#include "core/err.h"
#include "core/secret.h"

/* One set of credentials, owned by the caller after kf_aws_chain_get. */
struct kf_aws_creds {
	char access_key[128];
	struct kf_secret *secret_key;	/* NUL-terminated text */
	struct kf_secret *session_token;	/* NULL when none */
	time_t expiration;		/* 0 = does not expire */
};

/* Free the secret parts.  Accepts NULL. */
void kf_aws_creds_release(struct kf_aws_creds *c);

struct kf_aws_chain_cfg {
	const char *profile;	/* -o aws_profile=, else NULL (AWS_PROFILE,
				 * then "default") */
	unsigned timeout_ms;	/* per credential fetch */
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

/*
 * Whether any AWS configuration or credentials exist without network I/O
 * (env keys, AWS_PROFILE, config/credentials files, web identity or
 * container env vars, an explicit region).  Used to enable aws/ by default.
 */
int kf_aws_config_present(const char *profile);

/*
 * Region as the SDKs resolve it: AWS_REGION, AWS_DEFAULT_REGION, then the
 * profile's `region` in the config file.  0 when found, else -1 with
 * KF_E_NOTFOUND.
 */
int kf_aws_default_region(const char *profile, char *out, size_t outlen,
			  struct kf_err *err);

/*
 * The Secrets Manager endpoint URL for region: opt (-o aws_endpoint=) if
 * set, else AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else
 * the profile's endpoint_url settings, else
 * https://secretsmanager.REGION.amazonaws.com  (.com.cn for cn-*).
 */
int kf_aws_endpoint(const char *opt, const char *profile, const char *region,
		    char *out, size_t outlen, struct kf_err *err);

#endif
