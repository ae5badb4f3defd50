/*
 * The credential chain's insides, shared by chain.c (sources, refresh)
 * and role.c (role chains fed with web identity tokens); cloud/aws only.
 * Nothing here does network I/O under a lock or holds a token in clear
 * outside locked memory.
 */
#ifndef KF_AWS_CHAIN_PRIV_H
#define KF_AWS_CHAIN_PRIV_H

#include <pthread.h>
#include <time.h>

#include "aws/creds.h"
#include "aws/sources.h"
#include "core/err.h"

struct kf_aws_source; /* chain.c: one entry of the source table */
struct kf_aws_role;   /* role.c: the tokens of a role chain */

struct kf_aws_chain {
	/* Set when the chain is made, read-only afterwards. */
	const struct kf_aws_source *src; /* NULL for a role chain */
	struct kf_aws_source_cfg cfg;
	struct kf_aws_role *role; /* NULL unless a role chain */

	pthread_mutex_t lock;
	pthread_cond_t cond;	 /* refresh finished; uses lock */
	struct kf_aws_creds cur; /* protected by lock */
	int have;		 /* protected by lock */
	int invalid;		 /* protected by lock */
	int refreshing;		 /* protected by lock */
	unsigned long gen;	 /* protected by lock: refreshes done */
	struct kf_err last_err;	 /* protected by lock */
	time_t retry_after;	 /* protected by lock */
};

/* A zeroed chain with its lock and condition ready; NULL without memory. */
struct kf_aws_chain *kf_aws_chain_alloc(void);

/*
 * Make *fresh the chain's current credentials (ownership moves; *fresh is
 * zeroed), as a finished refresh would.  Takes c->lock.
 */
void kf_aws_chain_install(struct kf_aws_chain *c, struct kf_aws_creds *fresh);

/*
 * A role chain's refresh: STS with the newest accepted token (copied out
 * under the role's lock, the call made without it).  -1 with KF_E_DENIED
 * when no token was accepted yet.  Called without c->lock.
 */
int kf_aws_role_fetch(struct kf_aws_chain *c, struct kf_aws_creds *out,
		      struct kf_err *err);

/* Free a role chain's token state.  Accepts NULL. */
void kf_aws_role_free(struct kf_aws_role *r);

#endif
