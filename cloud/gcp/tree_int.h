/*
 * Inside the gcp provider only (tree.c, path.c, values.c, xattr.c, and
 * their unit tests): the provider's state, its path form and what those
 * files share.  Nothing declared here handles plaintext but the value
 * operations, which never write it to disk or log it.
 */
#ifndef KF_GCP_TREE_INT_H
#define KF_GCP_TREE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "gcp/auth.h"
#include "gcp/gcs.h"
#include "gcp/gsm.h"
#include "gcp/kms.h"
#include "gcp/tree.h"

#define KF_GCP_MAX_PROJECTS 32
#define KF_GCP_DIR_CACHE 512
#define KF_GCP_MIN_ROTATION 86400LL

/* A path split into its components (project, location, ring, key, name). */
struct kf_gcp_path {
	int depth;
	char c[5][256];
};

struct kf_gcp_dir_ent {
	char name[640]; /* resource name known to exist */
	uint64_t until_ms;
};

/*
 * What this mount last saw of an object (bucket store): the write
 * preconditions, and for at most KF_GCP_SEEN_FRESH_MS after a getattr or
 * stamp (at_ms != 0) what a read of the live value may use instead of
 * another objects.get; a read consumes it (sets at_ms to 0).
 */
#define KF_GCP_SEEN 64
#define KF_GCP_SEEN_FRESH_MS 1000
struct kf_gcp_seen {
	char object[KF_GCS_MAX_NAME + 1]; /* "" for a free slot */
	long long gen, metagen, size;
	uint32_t crc32c;
	int has_crc32c;
	char kms_key[320]; /* berglas-kms-key, "" when absent */
	uint64_t at_ms;
};

struct kf_gcp {
	struct kf_gcp_auth *auth;
	struct kf_gcp_kms kms;
	char *projects[KF_GCP_MAX_PROJECTS];
	size_t nprojects;
	char store[PATH_MAX]; /* CFG_STORE/gcp */
	/* Values in a Cloud Storage bucket (-o gcp_bucket=BUCKET[/PREFIX]),
	 * in berglas's format; bucket[0] == '\0': the local store. */
	struct kf_gcs gcs;
	char bucket[256];
	char prefix[512]; /* "" or "a/b" (no leading or trailing '/') */
	/* Secret Manager under gcp/PROJECT/secrets/ (-o gsm_endpoint=,
	 * -o gsm_kms_key= for CMEK of new secrets, "" for Google's keys). */
	struct kf_gsm gsm;
	char gsm_kms_key[512];
	long long rotation_s;
	unsigned ttl;
	int read_only;
	pthread_mutex_t mu;
	struct kf_gcp_dir_ent dirs[KF_GCP_DIR_CACHE]; /* protected by mu */
	size_t next_dir;			      /* protected by mu */
	struct kf_gcp_seen seen[KF_GCP_SEEN];	      /* protected by mu */
	size_t next_seen;			      /* protected by mu */
};

static inline struct kf_gcp *kf_gcp_of(struct kf_provider *p)
{
	return p->priv;
}

/* ---- path.c: the path form, nothing but syntax */

/* Split path into up to 5 components; NOTDIR past a value, NOTFOUND for
 * an empty component, INVALID for one of 256 bytes or more. */
int kf_gcp_path_split(const char *path, struct kf_gcp_path *g,
		      struct kf_err *err);

/* "projects/P/locations/L/keyRings/R/cryptoKeys/K" cut to depth 1..4;
 * -1 when it does not fit. */
int kf_gcp_path_resource(const struct kf_gcp_path *g, int depth, char *out,
			 size_t n);

/* STORE/gcp/P/L/R/K/NAME cut to depth 0..5; -1 when it does not fit. */
int kf_gcp_path_store(const struct kf_gcp *s, const struct kf_gcp_path *g,
		      int depth, char *out, size_t n);

/* Split a value path (depth 5, valid name) and give its store path. */
int kf_gcp_path_value(const struct kf_gcp *s, const char *path,
		      struct kf_gcp_path *g, char *sp, size_t splen,
		      struct kf_err *err);

/* Locations: [a-z0-9-]{1,63}.  Project ids: [A-Za-z0-9.:_-]{1,100}. */
int kf_gcp_valid_location(const char *s);
int kf_gcp_valid_project(const char *s);

/* ---- tree.c: projects and the directories Cloud KMS holds */

int kf_gcp_project_known(const struct kf_gcp *s, const char *p);

/* Does the directory at depth 1..4 exist?  Syntax, the cache, one get. */
int kf_gcp_dir_exists(struct kf_gcp *s, const struct kf_gcp_path *g, int depth,
		      struct kf_err *err);

/* getattr on the provider's state (xattr.c checks targets with it). */
int kf_gcp_getattr_s(struct kf_gcp *s, const char *path, struct kf_attr *attr,
		     struct kf_err *err);

/* ---- values.c: the ciphertext store (struct kf_provider_ops entries) */

int kf_gcp_list_store(struct kf_gcp *s, const struct kf_gcp_path *g,
		      kf_list_fn fn, void *ctx, struct kf_err *err);
int kf_gcp_unlink(struct kf_provider *p, const char *path, struct kf_err *err);
int kf_gcp_can_create(struct kf_provider *p, const char *path,
		      struct kf_err *err);
int kf_gcp_check_write(struct kf_provider *p, const char *path, int flags,
		       struct kf_err *err);
int kf_gcp_read(struct kf_provider *p, const char *path,
		struct kf_secret **value, struct kf_err *err);
int kf_gcp_commit(struct kf_provider *p, const char *path,
		  const unsigned char *value, size_t n, const char *token,
		  int flags, struct kf_buf *version, struct kf_err *err);
/*
 * The value file's stamp "INODE:SIZE:MTIME_NS" from one stat (no KMS
 * call): every rewrite, in place or by rename-over, changes it.  The
 * same text a read sets as the value's version.  KF_E_NOTFOUND when the
 * file is gone.
 */
int kf_gcp_stamp(struct kf_provider *p, const char *path, struct kf_buf *out,
		 struct kf_err *err);

/*
 * Views of a value (struct kf_provider_ops read_version / versions): in
 * the bucket store NAME:GEN reads that generation (immutable) and the
 * versions are the object's generations; the local store keeps no
 * versions (read_version answers the current value for version NULL,
 * else KF_E_NOTFOUND; versions answers KF_E_ISDIR, which fs/ shows as
 * no versions attribute).
 */
int kf_gcp_read_version(struct kf_provider *p, const char *path,
			const char *version, struct kf_secret **value,
			int *immutable, struct kf_err *err);
int kf_gcp_versions(struct kf_provider *p, const char *path,
		    int (*fn)(void *ctx, const char *version, int64_t created,
			      const char *labels),
		    void *ctx, struct kf_err *err);

/* ---- bucket.c: values in a Cloud Storage bucket (s->bucket[0]) */

/* "[PREFIX/]P/L/R/K/" for a path of depth >= 4; -1 when it does not fit. */
int kf_gcp_bucket_dir(const struct kf_gcp *s, const struct kf_gcp_path *g,
		      char *out, size_t n);
/* The object of a value path (depth 5): the directory and NAME's object
 * name form (kf_berglas_path_to_name).  KF_E_INVALID when there is none. */
int kf_gcp_bucket_object(const struct kf_gcp *s, const struct kf_gcp_path *g,
			 char *out, size_t n, struct kf_err *err);
/* Parse -o gcp_bucket=BUCKET[/PREFIX] into s->bucket and s->prefix. */
int kf_gcp_bucket_config(struct kf_gcp *s, const char *opt, struct kf_err *err);
/* One objects.list (maxResults=1) under the prefix: the bucket exists
 * and this account may list it, else the mount fails saying which. */
int kf_gcp_bucket_probe(struct kf_gcp *s, struct kf_err *err);
/* The key directory's values: objects.list prefix/delimiter, all pages. */
int kf_gcp_bucket_list(struct kf_gcp *s, const struct kf_gcp_path *g,
		       kf_list_fn fn, void *ctx, struct kf_err *err);
/* getattr of a value (depth 5): one objects.get. */
int kf_gcp_bucket_attr(struct kf_gcp *s, const char *path, struct kf_attr *attr,
		       struct kf_err *err);
/* The value at generation gen (0: the live one); version = generation. */
int kf_gcp_bucket_read(struct kf_gcp *s, const char *path, long long gen,
		       struct kf_secret **value, struct kf_err *err);
/* The live generation, from one objects.get (metadata only). */
int kf_gcp_bucket_stamp(struct kf_gcp *s, const char *path, struct kf_buf *out,
			struct kf_err *err);
/*
 * Write a whole value with the preconditions this mount last saw (0 for
 * a new name); a 412 re-stats and puts again, at most 3 rounds, then
 * KF_E_STATE (EBUSY) with a log line.  Appends the generation made.
 */
int kf_gcp_bucket_commit(struct kf_gcp *s, const char *path,
			 const unsigned char *value, size_t n, int flags,
			 struct kf_buf *version, struct kf_err *err);
/* Delete with ifGenerationMatch of the live generation. */
int kf_gcp_bucket_unlink(struct kf_gcp *s, const char *path,
			 struct kf_err *err);
int kf_gcp_bucket_can_create(struct kf_gcp *s, const char *path,
			     struct kf_err *err);
/* One objects.get: NOTFOUND only passes with KF_COMMIT_CREATE. */
int kf_gcp_bucket_check_write(struct kf_gcp *s, const char *path, int flags,
			      struct kf_err *err);
int kf_gcp_bucket_versions(struct kf_gcp *s, const char *path,
			   int (*fn)(void *ctx, const char *version,
				     int64_t created, const char *labels),
			   void *ctx, struct kf_err *err);

/* ---- xattr.c: user.keyfs.* attributes */

int kf_gcp_getxattr(struct kf_provider *p, const char *path, const char *xname,
		    struct kf_buf *out, struct kf_err *err);
int kf_gcp_listxattr(struct kf_provider *p, const char *path,
		     struct kf_buf *out, struct kf_err *err);
int kf_gcp_setxattr(struct kf_provider *p, const char *path, const char *xname,
		    const void *value, size_t n, struct kf_err *err);

#endif
