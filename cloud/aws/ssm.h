/*
 * AWS Systems Manager Parameter Store client: the operations the ssm/
 * provider uses, each one AWS JSON 1.1 request (X-Amz-Target
 * "AmazonSSM.<Op>") signed with SigV4 for service "ssm", on the same
 * signed-call core, credential chain and retry driver as the Secrets
 * Manager client (aws/sm_priv.h), counted in the API statistics under
 * "ssm".  Values are read with decryption (SecureString comes back as
 * plaintext) into locked memory; request bodies holding values live in
 * sensitive buffers; nothing here logs or quotes a value, a credential
 * or a body.
 *
 * Every function returns 0 (or what it documents), or -1 with *err
 * filled.  Error types map as Secrets Manager's do, plus Parameter
 * Store's own: ParameterNotFound and ParameterVersionNotFound are
 * KF_E_NOTFOUND, ParameterAlreadyExists KF_E_EXISTS, the name rules
 * (ValidationException, HierarchyLevelLimitExceededException,
 * HierarchyTypeMismatchException, UnsupportedParameterType, InvalidKeyId,
 * ParameterPatternMismatchException) KF_E_INVALID,
 * ParameterLimitExceeded KF_E_NOSPC, ParameterMaxVersionLimitExceeded
 * KF_E_STATE, TooManyUpdates and InternalServerError retried.
 */
#ifndef KF_AWS_SSM_H
#define KF_AWS_SSM_H

#include <stddef.h>
#include <stdint.h>

#include "aws/creds.h"
#include "core/err.h"
#include "core/secret.h"

/* Value limits as AWS states them (bytes). */
#define KF_AWS_SSM_STANDARD_MAX 4096
#define KF_AWS_SSM_ADVANCED_MAX 8192
/* A parameter name, hierarchy included, is at most this long ... */
#define KF_AWS_SSM_NAME_MAX 1011
/* ... and at most this many levels deep (/l1/.../l15). */
#define KF_AWS_SSM_DEPTH_MAX 15
/* Pages: DescribeParameters and GetParameterHistory give at most 50. */
#define KF_AWS_SSM_PAGE_MAX 50
/* GetParameters takes at most 10 names. */
#define KF_AWS_SSM_BATCH_MAX 10

struct kf_aws_ssm_cfg {
	const char *endpoint;	    /* "https://ssm.R.amazonaws.com" */
	const char *region;	    /* signing region */
	struct kf_aws_chain *chain; /* borrowed; must outlive the client */
	unsigned timeout_ms;	    /* deadline of one operation, all retries */
	unsigned attempts;	    /* 0 = 5 */
	unsigned backoff_base_ms;   /* 0 = 100 */
};

struct kf_aws_ssm;

/* What Parameter Store says of one parameter, never its value. */
struct kf_aws_ssm_meta {
	char *name;	   /* as the service spells it ("/a/b", "foo") */
	char *arn;	   /* NULL when the answer had none */
	char *type;	   /* "String", "StringList", "SecureString" */
	char *key_id;	   /* SecureString's KMS key; NULL when none given */
	char *description; /* NULL when none */
	char *tier;	   /* "Standard", "Advanced"; NULL when not given */
	int64_t version;   /* 0 when unknown */
	int64_t changed;   /* LastModifiedDate, epoch seconds; 0 unknown */
};

struct kf_aws_ssm_page {
	struct kf_aws_ssm_meta *v;
	size_t n;
	char *next_token; /* NULL after the last page */
};

/* Create a client (strings copied, chain borrowed).  KF_E_INVALID for a
 * malformed endpoint URL. */
int kf_aws_ssm_new(const struct kf_aws_ssm_cfg *cfg, struct kf_aws_ssm **out,
		   struct kf_err *err);
/* Accepts NULL. */
void kf_aws_ssm_free(struct kf_aws_ssm *ssm);

/* Free the contents (not the struct).  Accept NULL. */
void kf_aws_ssm_meta_release(struct kf_aws_ssm_meta *m);
void kf_aws_ssm_page_release(struct kf_aws_ssm_page *page);

/*
 * DescribeParameters: one page of at most max (1..50) parameters, no
 * values.  path NULL: every parameter (no filter); else a
 * ParameterFilters Path filter on path ("/a/b", no trailing '/'), Option
 * "Recursive" when recursive, else "OneLevel".  token is NULL for the
 * first page.
 */
int kf_aws_ssm_list(struct kf_aws_ssm *ssm, const char *path, int recursive,
		    const char *token, unsigned max,
		    struct kf_aws_ssm_page *page, struct kf_err *err);

/*
 * DescribeParameters with a Name Equals filter: 1 with *meta filled when
 * the parameter exists, 0 when not (*meta zeroed), -1 on error.  The
 * cheapest call that tells a parameter's version.
 */
int kf_aws_ssm_describe(struct kf_aws_ssm *ssm, const char *name,
			struct kf_aws_ssm_meta *meta, struct kf_err *err);

/*
 * GetParameter with decryption of name, or of one of its versions when
 * selector is not NULL (a version number "3" or a label, sent as
 * "name:selector").  A new *value with (*value)->version set to the
 * decimal Version that answered; meta (may be NULL) receives name, arn,
 * type, version and changed.  KF_E_NOTFOUND when the parameter or the
 * version does not exist.
 */
int kf_aws_ssm_get(struct kf_aws_ssm *ssm, const char *name,
		   const char *selector, struct kf_secret **value,
		   struct kf_aws_ssm_meta *meta, struct kf_err *err);

/*
 * GetParameters with decryption for 1..10 names: fn(ctx, name, value)
 * for each one found (fn owns value; value->version is set); names in
 * InvalidParameters are simply not passed to fn.
 */
int kf_aws_ssm_get_batch(struct kf_aws_ssm *ssm, const char *const *names,
			 size_t n,
			 void (*fn)(void *ctx, const char *name,
				    struct kf_secret *value),
			 void *ctx, struct kf_err *err);

/* How PutParameter is asked to write. */
struct kf_aws_ssm_put {
	int overwrite;	  /* Overwrite: 1 to replace an existing value */
	const char *type; /* Type, or NULL to leave it out */
	const char *key_id;
	const char *tier; /* Tier, or NULL to leave it out */
	/*
	 * The version current before this write (0: the name did not
	 * exist).  PutParameter has no idempotency token: before any retry
	 * the client reads the parameter (GetParameter with decryption),
	 * and when its version is above prev_version and its value is the
	 * one being written, the earlier attempt landed: the write succeeds
	 * without another PutParameter.
	 */
	int64_t prev_version;
};

/*
 * PutParameter name = value (n bytes of UTF-8 text, 1..8192: checked
 * before any request: KF_E_INVALID for empty or not text, KF_E_TOOBIG
 * above KF_AWS_SSM_ADVANCED_MAX).  *version (may be NULL) receives the
 * version made.  *landed_by_check (may be NULL) is set to 1 when an
 * earlier attempt was found to have landed (see prev_version).
 */
int kf_aws_ssm_put(struct kf_aws_ssm *ssm, const char *name,
		   const unsigned char *value, size_t n,
		   const struct kf_aws_ssm_put *opt, int64_t *version,
		   int *landed_by_check, struct kf_err *err);

/*
 * DeleteParameter.  A retry that finds the parameter gone (an earlier
 * attempt landed) succeeds; KF_E_NOTFOUND only when the first answer
 * says so.
 */
int kf_aws_ssm_delete(struct kf_aws_ssm *ssm, const char *name,
		      struct kf_err *err);

/* One version, from GetParameterHistory (never its value). */
struct kf_aws_ssm_version {
	int64_t version;
	char *labels;	    /* Labels joined with ",", "" for none */
	int64_t changed_ms; /* LastModifiedDate, epoch milliseconds */
};

struct kf_aws_ssm_versions {
	struct kf_aws_ssm_version *v;
	size_t n;
	char *next_token; /* NULL after the last page */
};

/*
 * GetParameterHistory without decryption: one page of at most max
 * (1..50) versions; token NULL for the first page.  Values in the
 * answer are never kept or copied.  KF_E_NOTFOUND when no such
 * parameter.
 */
int kf_aws_ssm_history(struct kf_aws_ssm *ssm, const char *name,
		       const char *token, unsigned max,
		       struct kf_aws_ssm_versions *page, struct kf_err *err);
/* Free the contents of page (not the struct).  Accepts NULL. */
void kf_aws_ssm_versions_release(struct kf_aws_ssm_versions *page);

/*
 * Whether s is a name keyfs may create: "/" then 1..15 components of
 * [A-Za-z0-9_.-]+ (not "." or "..", which no path can name) separated by
 * single '/', at most KF_AWS_SSM_NAME_MAX bytes, the first component not
 * beginning with "aws" or "ssm" (any case).  Names that exist already
 * are taken as the service lists them.
 */
int kf_aws_ssm_name_ok(const char *s);

#endif
