/*
 * What the files of the ssm/ provider share (ssm_tree.c: the vtable and
 * its creation; ssm_resolve.c: paths; ssm_list.c: listings; ssm_read.c,
 * ssm_write.c, ssm_views.c, ssm_xattr.c: the operations).  Private to
 * them: nothing outside cloud/aws/ includes it.  Nothing here holds a
 * value.
 */
#ifndef KF_SSM_TREE_PRIV_H
#define KF_SSM_TREE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"
#include "aws/ssm.h"
#include "aws/ssm_index.h"
#include "aws/ssm_tree.h"

#define SSM_NO_REGION ((size_t)-1) /* the provider root */

struct ssm_region {
	char name[64];
	struct kf_aws_ssm *ssm;
};

struct ssm_priv {
	struct ssm_region *regions;
	size_t nregions;
	struct kf_aws_chain *chain; /* own_chain: ours, else borrowed */
	int own_chain;
	struct kf_ssm_index *idx; /* names known without asking */
	const char *type;	  /* new parameters' Type (a static string) */
	char *kms_key;		  /* their KeyId; NULL: the account default */
	const char *tier;	  /* their Tier; NULL: the service default */
	int read_only;
	int direct_reads; /* cfg->direct_reads (see core/config.h) */
	int no_batch;	  /* atomic: GetParameters was refused */
};

enum ssm_kind {
	SK_NONE = 0,
	SK_FILE, /* a parameter */
	SK_DIR,	 /* parameters below it (it may be one too) */
	SK_HELD, /* a directory made by mkdir, held in memory only */
};

/* What a path below a region is. */
struct ssm_res {
	enum ssm_kind kind;
	int bad_path; /* SK_NONE: no parameter can have this path */
	/* SK_FILE: the name as the service spells it; else "/" + the path
	 * ("" when the path is no name's path form) */
	char name[KF_SSM_NAME_MAX + 1];
	struct kf_aws_ssm_meta meta; /* SK_FILE: what is known of it */
};

/* ---- ssm_resolve.c: regions, names and paths ---------------------------- */

/*
 * Split path into a region index and the rest.  *ri = SSM_NO_REGION for
 * the provider root; *rest is "" for a region directory.  KF_E_NOTFOUND
 * for a region that is not configured.
 */
int kf_ssm_tree_split(struct ssm_priv *s, const char *path, size_t *ri,
		      const char **rest, struct kf_err *err);
/* As kf_ssm_tree_split, for a path that must name something in a region:
 * KF_E_ISDIR for the provider root and region directories. */
int kf_ssm_tree_split_value(struct ssm_priv *s, const char *path, size_t *ri,
			    const char **rest, struct kf_err *err);

/*
 * The Parameter Store rule name ("/a/b") breaks for keyfs to create it
 * ("characters A-Z a-z 0-9 _ . -", ...), or NULL when it may be created.
 */
const char *kf_ssm_tree_name_rule(const char *name);

/* KF_E_INVALID, and a warning naming rule (NULL: the characters) that
 * the name of rest breaks. */
int kf_ssm_tree_bad_name(const struct ssm_priv *s, size_t ri, const char *rest,
			 const char *rule, struct kf_err *err);

/* Record m as seen (logs once when a name is hidden by its hierarchical
 * twin).  1 when recorded, 0 when this process deleted it just now. */
int kf_ssm_tree_seen(struct ssm_priv *s, size_t ri,
		     const struct kf_aws_ssm_meta *m);

/*
 * One DescribeParameters page (at most KF_AWS_SSM_PAGE_MAX) of the
 * parameters below rest ("" for every parameter in the region), from
 * token (NULL: the first page), recorded in the index; *found counts
 * those below rest.  *next receives the next page's token (malloc'd), or
 * NULL after the last page: then the subtree is complete as of since
 * (when the listing began).  -1 when the call failed.
 */
int kf_ssm_tree_probe(struct ssm_priv *s, size_t ri, const char *rest,
		      const char *token, uint64_t since, char **next,
		      size_t *found, struct kf_err *err);

/* Whether rest's name can be a DescribeParameters Path filter. */
int kf_ssm_tree_path_filter_ok(const char *name);

/*
 * What rest (a path below region ri, in path form) is, into *res (kind
 * SK_NONE when nothing); release it with kf_ssm_tree_res_release.  Asks
 * the index first, then the service.  A directory wins over a parameter
 * of the same name.  -1 only when a call failed.
 */
/*
 * Whether the index knows nothing of what rest is: a read may then ask
 * for the parameter the path names (name, KF_SSM_NAME_MAX + 1 bytes)
 * before resolving the path (see kf_config.direct_reads).  No I/O.
 */
int kf_ssm_tree_unknown(struct ssm_priv *s, size_t ri, const char *rest,
			char *name);

int kf_ssm_tree_resolve(struct ssm_priv *s, size_t ri, const char *rest,
			struct ssm_res *res, struct kf_err *err);
void kf_ssm_tree_res_release(struct ssm_res *res);

/* ---- the operations (see provider.h) ----------------------------------- */

/* ssm_list.c */
int kf_ssm_tree_list(struct kf_provider *p, const char *path, const char *page,
		     kf_list_fn fn, void *ctx, struct kf_buf *next,
		     struct kf_err *err);

/* ssm_read.c */
int kf_ssm_tree_getattr(struct kf_provider *p, const char *path,
			struct kf_attr *attr, struct kf_err *err);
int kf_ssm_tree_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err);
int kf_ssm_tree_read_nearby(struct kf_provider *p, const char *path, size_t max,
			    int (*want)(void *ctx, const char *rel),
			    void (*fn)(void *ctx, const char *rel,
				       struct kf_secret *v),
			    void *ctx, struct kf_secret **value,
			    struct kf_err *err);
int kf_ssm_tree_check_write(struct kf_provider *p, const char *path, int flags,
			    struct kf_err *err);
int kf_ssm_tree_check_bytes(struct kf_provider *p, const char *path,
			    const unsigned char *data, size_t n,
			    struct kf_err *err);

/* ssm_write.c */
int kf_ssm_tree_commit(struct kf_provider *p, const char *path,
		       const unsigned char *value, size_t n, const char *token,
		       int flags, struct kf_buf *version, struct kf_err *err);
int kf_ssm_tree_can_create(struct kf_provider *p, const char *path,
			   struct kf_err *err);
int kf_ssm_tree_mkdir(struct kf_provider *p, const char *path,
		      struct kf_err *err);
int kf_ssm_tree_rmdir(struct kf_provider *p, const char *path,
		      struct kf_err *err);
int kf_ssm_tree_unlink(struct kf_provider *p, const char *path,
		       struct kf_err *err);

/* ssm_views.c */
int kf_ssm_tree_read_version(struct kf_provider *p, const char *path,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err);
int kf_ssm_tree_versions(struct kf_provider *p, const char *path,
			 int (*fn)(void *ctx, const char *version,
				   int64_t created, const char *labels),
			 void *ctx, struct kf_err *err);
int kf_ssm_tree_stamp(struct kf_provider *p, const char *path,
		      struct kf_buf *out, struct kf_err *err);

/* ssm_xattr.c */
int kf_ssm_tree_getxattr(struct kf_provider *p, const char *path,
			 const char *name, struct kf_buf *out,
			 struct kf_err *err);
int kf_ssm_tree_setxattr(struct kf_provider *p, const char *path,
			 const char *name, const void *value, size_t n,
			 struct kf_err *err);
int kf_ssm_tree_listxattr(struct kf_provider *p, const char *path,
			  struct kf_buf *out, struct kf_err *err);

#endif
