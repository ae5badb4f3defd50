/*
 * What the files of the aws/ provider share (tree.c: the vtable and its
 * creation; resolve.c: paths; list.c: listings; read.c, write.c, xattr.c:
 * the operations; fieldsec.c: field secrets; versions.c: versions and
 * change stamps).  Private to them: nothing
 * outside cloud/aws/ includes it.  Nothing here holds a value.
 */
#ifndef KF_AWS_TREE_PRIV_H
#define KF_AWS_TREE_PRIV_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/index.h"
#include "aws/sm.h"
#include "aws/tree.h"

#define AWS_NAME_MAX 512
#define AWS_PATH_MAX (AWS_NAME_MAX * 3) /* a name's escaped path form */
#define AWS_FIELD_MAX 255
#define AWS_NO_REGION ((size_t)-1) /* the provider root */
/* The version of a secret without a value: what reads set and stamps
 * give (no VersionId has this form). */
#define AWS_NO_VERSION "-"

enum aws_kind {
	AK_NONE = 0,
	AK_PLAIN,     /* a secret shown as a file */
	AK_FIELDSEC,  /* a secret tagged keyfs:layout=fields */
	AK_FIELD,     /* NAME/FIELD below a field secret */
	AK_PREFIX,    /* a directory made by '/' in names */
	AK_SCHEDULED, /* a secret scheduled for deletion */
	AK_HELD,      /* a directory made by mkdir, held in memory only */
};

struct aws_region {
	char name[64];
	struct kf_aws_sm *sm;
};

struct aws_priv {
	struct aws_region *regions;
	size_t nregions;
	struct kf_aws_chain *chain; /* own_chain: ours, else borrowed */
	int own_chain;
	struct kf_aws_index *idx; /* names known without asking */
	unsigned recovery_days;
	int read_only;
	int direct_reads; /* cfg->direct_reads (see core/config.h) */
	/*
	 * Serialises read-modify-write of field secrets in this process.
	 * Held across network calls on purpose: it is never taken by
	 * readers, only by field writers, which must not interleave.
	 */
	pthread_mutex_t field_lock;
	int no_batch; /* atomic: BatchGetSecretValue was refused */
};

/* What a path below a region is. */
struct aws_res {
	enum aws_kind kind;
	int parent_plain; /* AK_NONE and the parent is a plain secret */
	int bad_path;	  /* AK_NONE: the path is no name's escaped form */
	int pending;	  /* AK_FIELD: in a held directory, no secret yet */
	/* the secret (FIELD: its parent; NONE, PREFIX: the path's name) */
	char name[AWS_NAME_MAX + 1];
	const char *field; /* AK_FIELD: points into the caller's path */
	int64_t mtime;
};

/* ---- resolve.c: names and paths ---------------------------------------- */

/*
 * Secrets Manager's NameType: 1..512 of [A-Za-z0-9/_+=.@-].  Existing
 * names (existing = 1) may also hold '!' (service-managed secrets such as
 * rds!...), or need escaping as paths (see kf_aws_tree_name_path), but
 * keyfs never creates one.
 */
int kf_aws_tree_name_ok(const char *s, int existing);
/* A field name: 1..255 bytes of UTF-8 text. */
int kf_aws_tree_field_ok(const char *s);

/*
 * The path form of secret name (at most AWS_NAME_MAX bytes) into out
 * (AWS_PATH_MAX + 1 bytes): its '/' separate components, except a '/'
 * that would make an empty component (leading, trailing, doubled), which
 * is written %2F; a component "." or ".." is written %2E or %2E%2E.
 * Names never hold '%', so the escapes are unambiguous.
 */
void kf_aws_tree_name_path(const char *name, char *out);
/*
 * The secret name whose path form is path, into out (AWS_NAME_MAX + 1
 * bytes): 0, or -1 when path is no name's path form (another spelling of
 * an escape, a stray '%', too long).
 */
int kf_aws_tree_path_name(const char *path, char *out);
/*
 * The same two for names of up to max bytes (at most AWS_ESC_NAME_MAX;
 * out holds max * 3 + 1 and max + 1 bytes): ssm/ shows Parameter Store
 * names the same way.
 */
#define AWS_ESC_NAME_MAX 2048
void kf_aws_tree_name_path_n(const char *name, size_t max, char *out);
int kf_aws_tree_path_name_n(const char *path, size_t max, char *out);

/*
 * Split path into a region index and the rest.  *ri = AWS_NO_REGION for
 * the provider root; *rest is "" for a region directory.  KF_E_NOTFOUND
 * for a region that is not configured.
 */
int kf_aws_tree_split(struct aws_priv *a, const char *path, size_t *ri,
		      const char **rest, struct kf_err *err);

/* As kf_aws_tree_split, for a path that must name something in a region:
 * KF_E_ISDIR for the provider root and region directories. */
int kf_aws_tree_split_value(struct aws_priv *a, const char *path, size_t *ri,
			    const char **rest, struct kf_err *err);

/* Whether m is tagged as a field secret; its modification time. */
int kf_aws_tree_meta_fields(const struct kf_aws_sm_meta *m);
int64_t kf_aws_tree_meta_mtime(const struct kf_aws_sm_meta *m);

/*
 * DescribeSecret name: 1 found (kind in *kind), 0 not found, -1 error.
 * Live secrets found go into the index.
 */
int kf_aws_tree_describe(struct aws_priv *a, size_t ri, const char *name,
			 enum aws_kind *kind, int64_t *mtime,
			 struct kf_err *err);

/* 1 when a live secret's name lies below directory name, 0 when none,
 * -1 when the call failed. */
int kf_aws_tree_prefix_exists(struct aws_priv *a, size_t ri, const char *name,
			      struct kf_err *err);

/*
 * What rest (a path below region ri, in path form) is, into *res (kind
 * AK_NONE when nothing); res->name is the secret name it stands for.
 * Asks the index first, then the service.  A directory of names (a
 * prefix) wins over a plain secret of the same name.  -1 only when a
 * call failed.
 */
/*
 * Whether the index knows nothing of rest, nor of its parent: a read may
 * then ask for the secret named as the path says (name, AWS_NAME_MAX + 1
 * bytes) before resolving the path, one call instead of a lookup's
 * DescribeSecret and ListSecrets (what a read with no lookup before it,
 * the Kubernetes provider's, would otherwise cost).  0 or 1; no I/O.
 */
int kf_aws_tree_unknown(struct aws_priv *a, size_t ri, const char *rest,
			char *name);

/*
 * The value of secret name (the current one, or version: a label or a
 * VersionId) into a new *value; *immutable says a VersionId answered.
 * A secret deleted or being deleted is KF_E_NOTFOUND (and leaves the
 * index).
 */
int kf_aws_tree_secret_value(struct aws_priv *a, size_t ri, const char *name,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err);

int kf_aws_tree_resolve(struct aws_priv *a, size_t ri, const char *rest,
			struct aws_res *res, struct kf_err *err);

/* ---- fieldsec.c: field secrets ----------------------------------------- */

/*
 * The JSON object held by field secret name (an empty value is {}); the
 * caller decrefs *obj.  version (NULL, or KF_SECRET_VERSION_MAX bytes)
 * receives the VersionId read (AWS_NO_VERSION: none).  Field names and
 * sizes go into the index.
 */
int kf_aws_tree_fields_load(struct aws_priv *a, size_t ri, const char *name,
			    json_t **obj, char *version, struct kf_err *err);

/*
 * Field res->field of field secret res->name: its bytes into a new *value
 * and/or its size into *size (either may be NULL).  KF_E_NOTFOUND when
 * the secret has no such field.
 */
int kf_aws_tree_field_read(struct aws_priv *a, size_t ri,
			   const struct aws_res *res, struct kf_secret **value,
			   uint64_t *size, struct kf_err *err);

/*
 * Set (value != NULL) or remove field of field secret name: read the
 * object, change it, PutSecretValue the whole object with token.  Takes
 * a->field_lock.
 */
int kf_aws_tree_field_change(struct aws_priv *a, size_t ri, const char *name,
			     const char *field, const unsigned char *value,
			     size_t n, const char *token, struct kf_err *err);

/*
 * The first file made in held directory name: CreateSecret of the JSON
 * object {field: value} (UTF-8 text only, else KF_E_INVALID), tagged as
 * a field secret; the directory is no longer held.  When the secret
 * exists already (made meanwhile), sets the field in it.  Takes
 * a->field_lock.
 */
int kf_aws_tree_field_first(struct aws_priv *a, size_t ri, const char *name,
			    const char *field, const unsigned char *value,
			    size_t n, const char *token, struct kf_err *err);

/* fn for each field of field secret name that can be a file name. */
int kf_aws_tree_list_fields(struct aws_priv *a, size_t ri, const char *name,
			    kf_list_fn fn, void *ctx, struct kf_err *err);

/* ---- write.c: states met by writes ------------------------------------- */

/* KF_E_STATE (with KF_R_DELETING) and a log line saying what to do:
 * region/name is scheduled for deletion. */
int kf_aws_tree_scheduled_fail(const char *region, const char *name,
			       struct kf_err *err);
/* After a failed write: -1, with the scheduled-for-deletion error when
 * that is the reason. */
int kf_aws_tree_state_fail(const char *region, const char *name,
			   struct kf_err *err);

/* ---- the operations (see provider.h) ----------------------------------- */

/* list.c */
int kf_aws_tree_list(struct kf_provider *p, const char *path, const char *page,
		     kf_list_fn fn, void *ctx, struct kf_buf *next,
		     struct kf_err *err);

/* read.c */
int kf_aws_tree_getattr(struct kf_provider *p, const char *path,
			struct kf_attr *attr, struct kf_err *err);
int kf_aws_tree_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err);
int kf_aws_tree_read_nearby(struct kf_provider *p, const char *path, size_t max,
			    int (*want)(void *ctx, const char *rel),
			    void (*fn)(void *ctx, const char *rel,
				       struct kf_secret *v),
			    void *ctx, struct kf_secret **value,
			    struct kf_err *err);

/* write.c */
int kf_aws_tree_commit(struct kf_provider *p, const char *path,
		       const unsigned char *value, size_t n, const char *token,
		       int flags, struct kf_buf *version, struct kf_err *err);
int kf_aws_tree_can_create(struct kf_provider *p, const char *path,
			   struct kf_err *err);

/* fieldsec.c */
int kf_aws_tree_check_bytes(struct kf_provider *p, const char *path,
			    const unsigned char *data, size_t n,
			    struct kf_err *err);
int kf_aws_tree_mkdir(struct kf_provider *p, const char *path,
		      struct kf_err *err);
int kf_aws_tree_rmdir(struct kf_provider *p, const char *path,
		      struct kf_err *err);
int kf_aws_tree_unlink(struct kf_provider *p, const char *path,
		       struct kf_err *err);

/* check.c */
int kf_aws_tree_check_write(struct kf_provider *p, const char *path, int flags,
			    struct kf_err *err);

/* versions.c */
int kf_aws_tree_read_version(struct kf_provider *p, const char *path,
			     const char *version, struct kf_secret **value,
			     int *immutable, struct kf_err *err);
int kf_aws_tree_versions(struct kf_provider *p, const char *path,
			 int (*fn)(void *ctx, const char *version,
				   int64_t created, const char *labels),
			 void *ctx, struct kf_err *err);
int kf_aws_tree_stamp(struct kf_provider *p, const char *path,
		      struct kf_buf *out, struct kf_err *err);

/* xattr.c */
int kf_aws_tree_getxattr(struct kf_provider *p, const char *path,
			 const char *name, struct kf_buf *out,
			 struct kf_err *err);
int kf_aws_tree_setxattr(struct kf_provider *p, const char *path,
			 const char *name, const void *value, size_t n,
			 struct kf_err *err);
int kf_aws_tree_listxattr(struct kf_provider *p, const char *path,
			  struct kf_buf *out, struct kf_err *err);

#endif
