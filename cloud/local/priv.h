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

#include <pthread.h>
#include <stddef.h>

#define KF_LOCAL_KEYFILE ".key.json"
/* STORE/local/.master-check: proves which master key wraps the keys. */
#define KF_LOCAL_CHECKFILE ".master-check"
/* "RING/KEY": two ids of at most 63 characters, a slash and a NUL. */
#define KF_LOCAL_RINGKEY_MAX 128

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

#endif
