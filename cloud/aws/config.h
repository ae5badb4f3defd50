/*
 * AWS configuration as the SDKs read it: the shared config and credentials
 * files, profile selection, region and endpoint resolution.  No network
 * I/O; never logs or returns a value read from a file other than the
 * setting asked for.
 */
#ifndef KF_AWS_CONFIG_H
#define KF_AWS_CONFIG_H

#include <stddef.h>

#include "core/ini.h"
#include "core/err.h"

/*
 * Is s[0..n-1] a plausible region name: 1 to 63 characters, each a-z, 0-9
 * or '-'?  (No list of regions: new ones must work.)  s need not be
 * NUL-terminated.
 */
int kf_aws_region_valid(const char *s, size_t n);

/*
 * Whether any AWS configuration or credentials exist without network I/O
 * (env keys, AWS_PROFILE, config/credentials files, web identity or
 * container env vars, an explicit region).  Used to enable aws/ by default.
 */
int kf_aws_config_present(const char *profile);

/*
 * Region as the SDKs resolve it: AWS_REGION, AWS_DEFAULT_REGION, then the
 * profile's `region` in the config file.  0 when found, else -1 with
 * KF_E_NOTFOUND, KF_E_INVALID (not a region name) or KF_E_RANGE.
 */
int kf_aws_default_region(const char *profile, char *out, size_t outlen,
			  struct kf_err *err);

/*
 * The Secrets Manager endpoint URL for region: opt (-o aws_endpoint=) if
 * set, else AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else
 * the profile's endpoint_url settings, else
 * https://secretsmanager.REGION.amazonaws.com  (.com.cn for cn-*).
 * Trailing slashes are removed.
 */
int kf_aws_endpoint(const char *opt, const char *profile, const char *region,
		    char *out, size_t outlen, struct kf_err *err);

/*
 * The Parameter Store endpoint URL for region, in the same order: opt
 * (-o ssm_endpoint=) if set, else AWS_ENDPOINT_URL_SSM, else
 * AWS_ENDPOINT_URL, else the profile's `services` ssm endpoint_url or its
 * endpoint_url, else https://ssm.REGION.amazonaws.com (.com.cn for cn-*).
 */
int kf_aws_ssm_endpoint(const char *opt, const char *profile,
			const char *region, char *out, size_t outlen,
			struct kf_err *err);

/*
 * The STS endpoint as the chain uses it: a configured one
 * (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile), else the
 * regional one, else (no region anywhere) https://sts.amazonaws.com.
 */
int kf_aws_sts_endpoint(const char *profile, char *out, size_t outlen,
			struct kf_err *err);

/* ---- for the credential chain (cloud/aws only) ---- */

/* getenv, with an empty value read as unset. */
const char *kf_aws_env(const char *name);
/* Is the variable set to "true" (any case)? */
int kf_aws_env_true(const char *name);
/* The variable as a decimal number in lo..hi, else def. */
unsigned kf_aws_env_uint(const char *name, unsigned lo, unsigned hi,
			 unsigned def);

/* Length of url without its trailing slashes. */
size_t kf_aws_url_len(const char *url);

/* "~/x" as "$HOME/x" (malloc'd); NULL when out of memory or no home. */
char *kf_aws_expand_home(const char *path);
/* The credentials and config file paths (malloc'd; NULL as above). */
char *kf_aws_cred_file_path(void);
char *kf_aws_config_file_path(void);

/*
 * The profile in use: profile (-o aws_profile=) when set, else
 * AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default".  *explicit_ says
 * whether one was named.  Returns profile, an environment string or a
 * static string.
 */
const char *kf_aws_profile_name(const char *profile, int *explicit_);

/*
 * The config-file section of profile name: "profile NAME" (also for
 * default, where it takes precedence) or, for default, "default".  A
 * pointer into ini or a static string; NULL when absent.
 */
const char *kf_aws_config_section(const struct kf_ini *ini, const char *name);

#endif
