/*
 * What the files of the local/ provider share and nothing outside
 * cloud/local/ may include: the provider's state, path parsing, the master
 * key and the key files.  Nothing declared here logs a value or a key.
 */
#ifndef KF_LOCAL_PRIV_H
#define KF_LOCAL_PRIV_H

#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct kf_provider;

#define KF_LOCAL_KEYFILE ".key.json"
/* STORE/local/.master-check: proves which master key wraps the keys. */
#define KF_LOCAL_CHECKFILE ".master-check"
/* "RING/KEY": two ids of at most 63 characters, a slash and a NUL. */
#define KF_LOCAL_RINGKEY_MAX 128
/* STORE/local/RING/KEY/.versions/NAME/N: the kept versions of NAME. */
#define KF_LOCAL_VERSIONS_DIR ".versions"
/* How many versions of a name are kept, the current one included. */
#define KF_LOCAL_KEEP 10
/* Stripes of the per-name lock (commits and removals of one name). */
#define KF_LOCAL_NAME_LOCKS 16

struct local {
	char *root;	   /* STORE/local */
	char *master_path; /* the master key file */
	int read_only;
	pthread_mutex_t master_lock;
	struct kf_secret *master; /* protected by master_lock; NULL until
					 * first use */
	int checked; /* protected by master_lock: the check file is known
		      * to hold master's check value */
	int tagged;  /* protected by master_lock: the check file says every
		      * key file carries a tag (an untagged one is refused) */
	/*
	 * Structural changes (mkdir/rmdir of keys, rotation) take it for
	 * writing; value reads and commits take it for reading, so a key
	 * cannot vanish under a commit.
	 */
	pthread_rwlock_t tree_lock;
	/*
	 * A commit or removal of a name numbers versions from what the store
	 * holds, so two of them on one name must not interleave: they take
	 * the stripe of the name (kf_local_name_lock), inside tree_lock.
	 */
	pthread_mutex_t name_lock[KF_LOCAL_NAME_LOCKS];
};

/* A value path RING/KEY/NAME: its file, its key's directory, "RING/KEY",
 * the directory of its versions. */
struct kf_local_vpath {
	char fp[PATH_MAX];
	char dir[PATH_MAX];
	char rk[KF_LOCAL_RINGKEY_MAX];
	char vdir[PATH_MAX];
};

/* ---- path.c: names and paths in STORE/local */

/*
 * A provider path split into at most 3 components (RING, KEY, NAME);
 * the components point into the path, their lengths in len[].
 */
struct kf_local_parts {
	const char *c[3];
	size_t len[3];
	int n;
};

/* Ring and key ids: [A-Za-z0-9_-]{1,63}, as Cloud KMS. */
int kf_local_valid_id(const char *s, size_t n);
/* Value names: [A-Za-z0-9._+=@-]{1,255}, not starting with '.'. */
int kf_local_valid_name(const char *s, size_t n);

/* Split path; returns the number of components, or -1 when deeper. */
int kf_local_split(const char *path, struct kf_local_parts *pp);

/*
 * Split and validate path.  strict (a creating operation) reports bad
 * names as KF_E_INVALID and depth as KF_E_PERM; otherwise both are
 * KF_E_NOTFOUND.
 */
int kf_local_parse(const char *path, struct kf_local_parts *pp, int strict,
		   struct kf_err *err);

/* "RING/KEY" of a path with at least two components. */
void kf_local_ringkey(const struct kf_local_parts *pp,
		      char out[KF_LOCAL_RINGKEY_MAX]);

/*
 * ROOT/rel[/leaf] into out; KF_E_INVALID "path too long" when it does
 * not fit.  err may be NULL.
 */
int kf_local_fspath(const struct local *l, const char *rel, const char *leaf,
		    char *out, size_t outlen, struct kf_err *err);

/*
 * The files of the value path (RING/KEY/NAME); KF_E_ISDIR for a
 * shallower path (see kf_local_parse for strict).
 */
int kf_local_value_path(const struct local *l, const char *path, int strict,
			struct kf_local_vpath *v, struct kf_err *err);

/* Fail with the code matching errno e: "WHAT local/REL: strerror". */
int kf_local_errno_fail(struct kf_err *err, int e, const char *what,
			const char *rel);

/* ---- master.c */

/*
 * Copy the master key into key (the caller wipes it).  Loaded into
 * locked memory on first use; when create, a missing master key file is
 * created 0600 with its check file (KF_E_ROFS on a read-only mount).  A
 * key that does not match the check file, or a missing key while the
 * store holds wrapped keys or a check file, is KF_E_INTEGRITY (never a
 * new key).  Takes master_lock.
 */
int kf_local_master_get(struct local *l, int create, unsigned char key[32],
			struct kf_err *err);

/*
 * A key file unwrapped with the loaded master key: write the check file
 * when the store has none yet (stores made before it existed).  Best
 * effort for the caller; 0 or -1 with err.
 */
int kf_local_master_proven(struct local *l, struct kf_err *err);

/*
 * Whether every key file of the store must carry a tag (the check file
 * says the store's key files were tagged).  Takes master_lock.
 */
int kf_local_master_tags_required(struct local *l);

/*
 * The master key file is absent: KF_E_INTEGRITY when the store needs it
 * (it holds a check file or wrapped keys), else 0.
 */
int kf_local_master_missing(const struct local *l, struct kf_err *err);

/* ---- keys.c: key files; the caller holds tree_lock as each says */

/*
 * Tag every key file of the store that has none yet (a store made before
 * tags) with master, which the caller has proven.  0, or -1 with err at
 * the first failure.  The caller holds master_lock, and tree_lock (or is
 * the mount, before any request): key files are only written under
 * tree_lock for writing, and a reader sees the old file or the tagged one.
 */
int kf_local_keys_tag_all(const struct local *l, const unsigned char master[32],
			  struct kf_err *err);

/* Does RING/KEY have a key file?  Never fails. */
int kf_local_key_exists(const struct local *l, const char *ringkey);

/*
 * The data key of RING/KEY's `version` (0 = the primary) into key (the
 * caller wipes it), its version number in *got.  KF_E_NOTFOUND without
 * a key file, KF_E_INTEGRITY when the version is missing or does not
 * unwrap.  Caller holds tree_lock (read or write).
 */
int kf_local_key_get(struct local *l, const char *ringkey, long version,
		     unsigned char key[32], long *got, struct kf_err *err);

/*
 * Add a fresh version to RING/KEY and make it primary; with create the
 * key file is new (the master key is created when missing).  The new
 * version number in *newver.  Caller holds tree_lock for writing.
 */
int kf_local_key_add_locked(struct local *l, const char *ringkey, int create,
			    long *newver, struct kf_err *err);

/*
 * Destroy RING/KEY's key material: KF_E_NOTFOUND when it is not a key,
 * KF_E_NOTEMPTY while values remain; removes the key file and stray
 * temporary files, leaving the empty directory to the caller.  Caller
 * holds tree_lock for writing.
 */
int kf_local_key_remove_locked(struct local *l, const char *ringkey,
			       struct kf_err *err);

/* ---- versions.c: the kept versions of values */

/* The lock of path's stripe (see name_lock). */
pthread_mutex_t *kf_local_name_lock(struct local *l, const char *path);

/*
 * Read the value file fp as path's value: its header into *h, the value
 * into a new kf_secret in *value (the caller frees it) with its version
 * number set.  want, when not 0, is the version number the file must
 * carry (KF_E_INTEGRITY otherwise: a file copied to another number).
 * Caller holds tree_lock for reading.
 */
int kf_local_read_file(struct local *l, const struct kf_local_vpath *v,
		       const char *fp, const char *path, uint32_t want,
		       struct kf_secret **value, struct kf_err *err);

/*
 * Before a commit of v's name replaces its current file: the number the
 * new value gets in *number (one past every number the name has had),
 * and the current file kept as a version.  Caller holds tree_lock for
 * reading and the name's lock.
 */
int kf_local_versions_prepare(const struct kf_local_vpath *v, const char *path,
			      uint32_t *number, struct kf_err *err);

/*
 * After a commit of number: versions older than the newest
 * KF_LOCAL_KEEP and removal markers go.  Best effort (a later commit
 * finishes it; readers never show what is past the newest ten).
 */
void kf_local_versions_prune(const struct kf_local_vpath *v, uint32_t number);

/*
 * Remove v's name: a marker keeping its last number (so a new value
 * under the name goes on counting), its versions, then its current
 * file.  Caller holds tree_lock for reading and the name's lock.
 */
int kf_local_versions_unlink(const struct kf_local_vpath *v, const char *path,
			     struct kf_err *err);

/*
 * Remove what KF_LOCAL_VERSIONS_DIR holds in the key directory dir and
 * the directory itself (the key is being removed).  0, or -1 with err.
 */
int kf_local_versions_drop_key(const char *dir, const char *ringkey,
			       struct kf_err *err);

/* The view operations of cloud/provider.h. */
int kf_local_read_version(struct kf_provider *p, const char *path,
			  const char *version, struct kf_secret **value,
			  int *immutable, struct kf_err *err);
int kf_local_versions(struct kf_provider *p, const char *path,
		      int (*fn)(void *ctx, const char *version, int64_t created,
				const char *labels),
		      void *ctx, struct kf_err *err);
int kf_local_stamp(struct kf_provider *p, const char *path, struct kf_buf *out,
		   struct kf_err *err);

#endif
