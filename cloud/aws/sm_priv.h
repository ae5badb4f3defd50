/*
 * What the three files of the Secrets Manager client share (sm.c: the
 * client and its signed calls, sm_ops.c: the operations, sm_parse.c:
 * responses and errors), and with the Parameter Store client (ssm*.c),
 * which makes its calls through the same core.  Private to them: nothing
 * outside cloud/aws/sm*.c and cloud/aws/ssm*.c includes it.  Never holds a value outside sensitive buffers.
 */
#ifndef KF_AWS_SM_PRIV_H
#define KF_AWS_SM_PRIV_H

#include <jansson.h>

#include "aws/sm.h"
#include "core/buf.h"
#include "core/retry.h"

#define SM_BODY_MAX (512u << 10) /* escaped 64 KiB value + members */

struct kf_aws_sm {
	char *url;  /* endpoint as given */
	char *host; /* signed and sent Host: lower case [:port] */
	char *path; /* "/" or the endpoint's path */
	char *region;
	char *service;		       /* SigV4 service name */
	char *target_prefix;	       /* X-Amz-Target is "PREFIX.Op" */
	const char *stats_name;	       /* static: statistics and log lines */
	struct kf_aws_chain *chain;    /* borrowed */
	unsigned timeout_ms;	       /* one operation, all its attempts */
	struct kf_retry_policy policy; /* from the config, at creation */
};

/*
 * POST body as operation op ("ListSecrets"); *out receives the parsed
 * JSON object of a 2xx answer (caller decrefs).  Retries transient
 * failures within sm->timeout_ms; ExpiredToken refreshes the credentials
 * and retries once at once.  Every retry sends the same body, so an
 * idempotency token in it is reused.
 */
int kf_aws_sm_call(struct kf_aws_sm *sm, const char *op,
		   const struct kf_buf *body, json_t **out, struct kf_err *err);

/*
 * Whether an earlier attempt of a call without an idempotency token
 * landed: 1 yes (*out may receive what stands for the lost answer, a
 * JSON object the caller decrefs; NULL: an empty one), 0 no (send it
 * again), -1 cannot tell (err filled: the call fails with it).
 */
typedef int (*kf_aws_sm_landed_fn)(void *ctx, json_t **out, struct kf_err *err);

/*
 * kf_aws_sm_call for an operation that must not be sent twice once it
 * landed: before every retry that follows an attempt which may have
 * taken effect (no answer, or a 5xx answer), landed(ctx) is asked first;
 * so it is once more when the last attempt failed that way.  A retry
 * after an answer that refused the request (throttled, credentials
 * expired) is sent without asking.  *checks (may be NULL) receives how
 * many times landed was asked.
 */
int kf_aws_sm_call_checked(struct kf_aws_sm *sm, const char *op,
			   const struct kf_buf *body,
			   kf_aws_sm_landed_fn landed, void *ctx,
			   unsigned *checks, json_t **out, struct kf_err *err);

/* kf_aws_sm_classify with the x-amzn-ErrorType header (may be NULL). */
enum kf_aws_sm_action kf_aws_sm_classify_hdr(const char *op, long status,
					     const char *body, size_t len,
					     const char *hdr_type,
					     struct kf_err *err);

/* Fill *m from a DescribeSecret answer or ListSecrets entry.  -1 when it
 * has no Name or memory ran out (release *m either way). */
int kf_aws_sm_parse_meta(const json_t *o, struct kf_aws_sm_meta *m);

/*
 * The value in a GetSecretValue-shaped object (SecretString bytes, or
 * SecretBinary decoded through bin; neither = empty) in a new secret,
 * its version set to the object's VersionId, or NULL with err (KF_E_IO
 * for bad base64 naming op, KF_E_NOMEM).
 */
struct kf_secret *kf_aws_sm_value_of(const json_t *o, struct kf_buf *bin,
				     const char *op, struct kf_err *err);

/*
 * The versions of a ListSecretVersionIds answer j into page (appended;
 * next_token replaced).  -1 when out of memory.
 */
int kf_aws_sm_parse_versions(const json_t *j, struct kf_aws_sm_versions *page);

/* ---- the Parameter Store client (ssm.c, ssm_ops.c) ---- */

struct kf_aws_ssm {
	struct kf_aws_sm *sm; /* the signed-call core */
};

/*
 * req (consumed; NULL when building it failed: KF_E_INVALID) as the body
 * of op; *out (NULL: dropped) receives the answer.  landed, when not
 * NULL, makes the call a checked one (kf_aws_sm_call_checked, *checks as
 * there).
 */
int kf_aws_ssm_call(struct kf_aws_ssm *ssm, const char *op, json_t *req,
		    kf_aws_sm_landed_fn landed, void *ctx, unsigned *checks,
		    json_t **out, struct kf_err *err);

/* o[key] as a positive integer (a JSON integer or decimal string), else
 * 0. */
int64_t kf_aws_ssm_int_of(const json_t *o, const char *key);

#endif
