/*
 * AWS Secrets Manager API client (JSON 1.1 over HTTPS, SigV4-signed): one
 * function per operation keyfs uses, bounded retries within one deadline,
 * errors classified by the normalised __type, never by HTTP status alone.
 * Request bodies holding values live in sensitive buffers; nothing here
 * logs or puts into an error message a value, a key or a request body.
 *
 * Every function returns 0, or -1 with *err filled.  Two states have no
 * error type of their own and carry a reason (kf_err_is()): a secret
 * scheduled for deletion (KF_E_STATE, KF_R_DELETING) and, from GetSecretValue
 * only, a secret without a current value (KF_E_NOTFOUND, KF_R_NO_VALUE:
 * kf_aws_sm_get_value() itself reads that as an empty value).
 */
#ifndef KF_AWS_SM_H
#define KF_AWS_SM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/creds.h"
#include "core/err.h"
#include "core/secret.h"

/* Largest SecretString / SecretBinary the service accepts (bytes). */
#define KF_AWS_SM_MAX_VALUE 65536

struct kf_aws_sm_cfg {
	const char *endpoint; /* "https://secretsmanager.R.amazonaws.com" */
	const char *region;   /* signing region */
	struct kf_aws_chain *chain; /* borrowed; must outlive the client */
	unsigned timeout_ms;	    /* deadline of one operation, all retries */
	unsigned attempts;	    /* 0 = 5 */
	unsigned backoff_base_ms;   /* 0 = 100 */
	/*
	 * Another service on the same JSON 1.1 protocol (Parameter Store):
	 * the SigV4 service name (NULL = "secretsmanager"), the
	 * X-Amz-Target prefix (NULL = "secretsmanager"), and the provider
	 * name its calls are counted under in the API statistics and that
	 * starts its log lines and messages (NULL = "aws"; a static string:
	 * the statistics keep the pointer).
	 */
	const char *service;
	const char *target_prefix;
	const char *stats_name;
};

struct kf_aws_sm;

struct kf_aws_sm_tag {
	char *key;
	char *value;
};

/* Metadata of one secret (DescribeSecret, or one ListSecrets entry). */
struct kf_aws_sm_meta {
	char *name;
	char *arn;
	char *description;     /* NULL when none */
	char *current_version; /* VersionId labelled AWSCURRENT, or NULL */
	struct kf_aws_sm_tag *tags;
	size_t ntags;
	int64_t created; /* epoch seconds, 0 when unknown */
	int64_t changed; /* LastChangedDate, 0 when unknown */
	int64_t deleted; /* DeletedDate: scheduled for deletion; else 0 */
};

struct kf_aws_sm_page {
	struct kf_aws_sm_meta *v;
	size_t n;
	char *next_token; /* NULL after the last page */
};

/*
 * Create a client.  The strings in cfg are copied; cfg->chain is borrowed.
 * KF_E_INVALID for a malformed or refused endpoint URL.
 */
int kf_aws_sm_new(const struct kf_aws_sm_cfg *cfg, struct kf_aws_sm **out,
		  struct kf_err *err);
/* Accepts NULL. */
void kf_aws_sm_free(struct kf_aws_sm *sm);

/* Free the contents of meta / page (not the struct).  Accept NULL. */
void kf_aws_sm_meta_release(struct kf_aws_sm_meta *meta);
void kf_aws_sm_page_release(struct kf_aws_sm_page *page);

/* The value of tag key on meta, or NULL. */
const char *kf_aws_sm_meta_tag(const struct kf_aws_sm_meta *meta,
			       const char *key);

/*
 * ListSecrets: one page of at most max (1..100) secrets whose names start
 * with prefix (NULL = all; a server-side "name" filter, checked again
 * here), sorted by name where the service supports it.  token is NULL for
 * the first page.  Secrets scheduled for deletion are not listed.
 */
int kf_aws_sm_list(struct kf_aws_sm *sm, const char *prefix, const char *token,
		   unsigned max, struct kf_aws_sm_page *page,
		   struct kf_err *err);

/* DescribeSecret. */
int kf_aws_sm_describe(struct kf_aws_sm *sm, const char *id,
		       struct kf_aws_sm_meta *meta, struct kf_err *err);

/*
 * GetSecretValue of AWSCURRENT into a new *value (SecretString bytes, or
 * the decoded SecretBinary).  A secret that exists without a value yields
 * an empty *value.  version (may be NULL) receives the VersionId ("" when
 * there is no value), cut to versionlen - 1 bytes.
 */
int kf_aws_sm_get_value(struct kf_aws_sm *sm, const char *id,
			struct kf_secret **value, char *version,
			size_t versionlen, struct kf_err *err);

/*
 * GetSecretValue of one version: by label (stage, a VersionStage) or by
 * id (version_id, a VersionId); exactly one is non-NULL.  A new *value as
 * kf_aws_sm_get_value gives, with (*value)->version set to the VersionId
 * that answered.  Unlike kf_aws_sm_get_value, a version without a value
 * is not read as empty: it fails with KF_E_NOTFOUND.
 */
int kf_aws_sm_get_version(struct kf_aws_sm *sm, const char *id,
			  const char *stage, const char *version_id,
			  struct kf_secret **value, struct kf_err *err);

/* One version of a secret, from ListSecretVersionIds. */
struct kf_aws_sm_version {
	char *id;	    /* VersionId */
	char *stages;	    /* VersionStages joined with ",", "" for none */
	int64_t created_ms; /* CreatedDate, epoch milliseconds; 0 unknown */
};

struct kf_aws_sm_versions {
	struct kf_aws_sm_version *v;
	size_t n;
	char *next_token; /* NULL after the last page */
};

/*
 * ListSecretVersionIds with IncludeDeprecated: one page of at most max
 * (1..100) versions of id, in the service's order; token is NULL for the
 * first page.  Entries without a VersionId are skipped, and so are
 * labels that a line of text could not show (holding ',', spaces or
 * control characters).
 */
int kf_aws_sm_list_versions(struct kf_aws_sm *sm, const char *id,
			    const char *token, unsigned max,
			    struct kf_aws_sm_versions *page,
			    struct kf_err *err);
/* Free the contents of page (not the struct).  Accepts NULL. */
void kf_aws_sm_versions_release(struct kf_aws_sm_versions *page);

/*
 * CreateSecret name with ClientRequestToken token (required, reused by
 * the caller on every retry of one logical write).  value may be NULL
 * (no value: n must be 0).  tags may be NULL.  KF_E_TOOBIG past
 * KF_AWS_SM_MAX_VALUE, before any request.
 */
int kf_aws_sm_create(struct kf_aws_sm *sm, const char *name, const char *token,
		     const unsigned char *value, size_t n,
		     const struct kf_aws_sm_tag *tags, size_t ntags,
		     struct kf_err *err);

/*
 * PutSecretValue: value (1..KF_AWS_SM_MAX_VALUE bytes) becomes AWSCURRENT.
 * token is reused on every retry, so one call makes at most one version.
 * KF_E_INVALID for an empty value, KF_E_TOOBIG past the limit, both before
 * any request.
 */
int kf_aws_sm_put_value(struct kf_aws_sm *sm, const char *id, const char *token,
			const unsigned char *value, size_t n,
			struct kf_err *err);

/* UpdateSecret of the Description only (a fresh token is generated). */
int kf_aws_sm_update_description(struct kf_aws_sm *sm, const char *id,
				 const char *description, struct kf_err *err);

/* TagResource. */
int kf_aws_sm_tag(struct kf_aws_sm *sm, const char *id,
		  const struct kf_aws_sm_tag *tags, size_t ntags,
		  struct kf_err *err);

/*
 * DeleteSecret with RecoveryWindowInDays = recovery_days (7..30), or
 * ForceDeleteWithoutRecovery when recovery_days is 0.
 */
int kf_aws_sm_delete(struct kf_aws_sm *sm, const char *id,
		     unsigned recovery_days, struct kf_err *err);

/*
 * RestoreSecret: cancel the scheduled deletion of id, which keeps its
 * versions and tags.  KF_E_NOTFOUND when there is no such secret.
 */
int kf_aws_sm_restore(struct kf_aws_sm *sm, const char *id, struct kf_err *err);

/*
 * Whether n bytes go out as SecretString: valid UTF-8 (shortest forms, no
 * surrogates) without NUL bytes.  Everything else is sent as SecretBinary.
 */
int kf_aws_sm_is_text(const unsigned char *p, size_t n);
/* Whether n bytes can begin a text value: kf_aws_sm_is_text of all but a
 * last character that is unfinished (more bytes may follow). */
int kf_aws_sm_is_text_prefix(const unsigned char *p, size_t n);

/* What the retry loop does with one failed response (exposed for tests). */
enum kf_aws_sm_action {
	KF_AWS_SM_FAIL = 0, /* final: return the error */
	KF_AWS_SM_RETRY,    /* transient: back off and retry */
	KF_AWS_SM_REFRESH,  /* credentials expired: refresh, retry once */
};

/*
 * Classify a non-2xx response: fills err (code, HTTP status, provider code
 * = the normalised __type, or the <Code> of an XML error body; a message
 * naming op; the reason, see above) and says what to do.  The service's
 * message is copied only for codes whose text never echoes input, and
 * sanitised.
 */
enum kf_aws_sm_action kf_aws_sm_classify(const char *op, long status,
					 const char *body, size_t len,
					 struct kf_err *err);

/* Normalise an error code in place: cut at ':', keep the part after '#'. */
void kf_aws_sm_normalise_type(char *type);

/*
 * A date member of an answer (CreatedDate, DeletedDate, ...) as epoch
 * seconds: a JSON number or a numeric string.  0 when absent, null, not a
 * number, NaN, infinite or far outside any date.  o may be NULL.
 */
int64_t kf_aws_sm_parse_date(const json_t *o, const char *key);

/*
 * The same date in epoch milliseconds, its fraction kept (1523477145.713
 * is 1523477145713).  0 when absent or not a date, as there (the range
 * kept is +-1e12 seconds).
 */
int64_t kf_aws_sm_parse_date_ms(const json_t *o, const char *key);

/* Test seam: the clock used for SigV4 dates (NULL restores time()). */
void kf_aws_sm_set_clock(time_t (*fn)(void));

/*
 * BatchGetSecretValue for 1..20 names: fn(ctx, name, value) for each
 * value returned (fn owns value).  Names the service reports in Errors,
 * or that have no current value, are simply not passed to fn.
 */
int kf_aws_sm_batch_get(struct kf_aws_sm *sm, const char *const *ids, size_t n,
			void (*fn)(void *ctx, const char *name,
				   struct kf_secret *value),
			void *ctx, struct kf_err *err);

#endif
