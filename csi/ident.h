/*
 * The Kubernetes provider's identities: the node's (its own credentials,
 * every configured provider) and one per IAM role (aws/ and ssm/ acting
 * as the role, with tokens pods present).  Each identity has its own
 * providers and value cache (fs/cache.c through fs/view.c), so a value
 * read as one identity never serves another.  Never logs a token.
 */
#ifndef KF_CSI_IDENT_H
#define KF_CSI_IDENT_H

#include <pthread.h>
#include <stdint.h>

#include "ops.h"
#include "opts.h"

/* Roles kept at once; an idle one is dropped to make room. */
#define KF_CSI_MAX_ROLES 64
#define KF_CSI_MAX_PROVIDERS 16

enum kf_csi_state {
	KF_CSI_CREATING, /* its creator is proving the first token */
	KF_CSI_READY,
	KF_CSI_FAILED, /* creation failed; unlisted, freed by the last ref */
};

struct kf_csi_ident {
	char *role;		    /* NULL: the node */
	struct kf_aws_chain *chain; /* the role's; NULL for the node */
	struct kf_provider *provs[KF_CSI_MAX_PROVIDERS];
	size_t np;
	struct kf_fs fs; /* its tree and cache; nothing of FUSE is used */
	int cache_on;	 /* fs.cache was initialised */
	enum kf_csi_state state; /* protected by the set's lock */
	unsigned refs;		 /* protected by the set's lock */
	uint64_t used_ms;	 /* protected by the set's lock */
};

struct kf_csi_idents {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* an identity left CREATING; uses lock */
	const struct kf_opts *o;
	struct kf_config cfg; /* the node's; roles copy it with a chain */
	char role_list[256];  /* providers acting as roles: "aws,ssm" */
	struct kf_csi_ident *node;
	struct kf_csi_ident *roles[KF_CSI_MAX_ROLES]; /* protected by lock */
	size_t nroles;				      /* protected by lock */
	pthread_t refresher;
	int refresher_on;
	int stop;	     /* protected by lock */
	pthread_cond_t wake; /* stop was set; uses lock */
};

/*
 * Create the node's identity from options o and the checked store (both
 * borrowed until release): its providers created and checked, as keyfs
 * does before mounting.  No thread yet.  0, or -1 with *err ("NAME: why").
 */
int kf_csi_idents_init(struct kf_csi_idents *s, const struct kf_opts *o,
		       const char *store, struct kf_err *err);

/* Start the node's providers and the refresher thread (refresh-ahead and
 * expiry for every identity's cache; drops roles idle past their
 * values' lifetime).  0, or -1 with *err. */
int kf_csi_idents_start(struct kf_csi_idents *s, struct kf_err *err);

/* Stop the refresher, free every identity.  Callers must be done. */
void kf_csi_idents_release(struct kf_csi_idents *s);

/* The node's identity (never NULL after init; no reference needed). */
struct kf_csi_ident *kf_csi_idents_node(struct kf_csi_idents *s);

/*
 * The identity of role, with token (n bytes, borrowed) proven for it by
 * STS (kf_aws_chain_offer_token: cached per token), created on first use.
 * A reference the caller drops with kf_csi_ident_put.  -1 with *err:
 * KF_E_DENIED (token refused), KF_E_INVALID (bad role ARN, no provider
 * of this node acts as a role), KF_E_UNAVAILABLE / KF_E_TIMEOUT (STS),
 * KF_E_NOMEM, or KF_E_UNAVAILABLE when KF_CSI_MAX_ROLES roles are all
 * busy.
 */
int kf_csi_ident_role(struct kf_csi_idents *s, const char *role,
		      const char *token, size_t n, struct kf_csi_ident **out,
		      struct kf_err *err);

/* Drop a reference from kf_csi_ident_role.  Accepts NULL. */
void kf_csi_ident_put(struct kf_csi_idents *s, struct kf_csi_ident *id);

/* Whether the provider that path ("/aws/...") names acts as a role. */
int kf_csi_path_assumes_role(const char *path);

/*
 * The value path ("/PROVIDER/REL", views included) serves as identity
 * id: through its cache, fetched once for all concurrent readers.  0
 * with *out (caller frees), or -errno: -ENOENT (no such provider, value,
 * version or field), -EISDIR (a directory), -EACCES, -EINVAL, -EIO
 * (unreachable) ... as keyfs's reads.
 */
int kf_csi_ident_read(struct kf_csi_ident *id, const char *path,
		      struct kf_secret **out);

#endif
