/*
 * What the ssm/ provider knows about Parameter Store names without
 * asking: parameters seen in listings and lookups (their metadata, never
 * a value), subtrees whose every parameter is known (a complete listing),
 * whether a path is itself a parameter, this process's own writes and
 * deletes, and directories made by mkdir and held in memory.  Everything
 * is keyed by path form (see kf_ssm_name_path) and stays fresh for the
 * ttl.  Thread-safe: one mutex, held only inside these functions; no I/O.
 */
#ifndef KF_SSM_INDEX_H
#define KF_SSM_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "aws/ssm.h"

/* The longest name the service may list, and its path form. */
#define KF_SSM_NAME_MAX 2048
#define KF_SSM_PATH_MAX (KF_SSM_NAME_MAX * 3)
/* The longest this process's own writes and deletes overlay listings
 * (DescribeParameters is eventually consistent). */
#define KF_SSM_OVERLAY_MS (5u * 60u * 1000u)

/*
 * The path form of parameter name (at most KF_SSM_NAME_MAX bytes) into out
 * (KF_SSM_PATH_MAX + 1 bytes): the name without its leading '/' ("/a/b"
 * is a/b, "foo" is foo), escaped as aws/ escapes secret names (an empty
 * component's '/' is %2F, a component "." or ".." is %2E or %2E%2E).
 */
void kf_ssm_name_path(const char *name, char *out);

/*
 * The hierarchical name ("/" and the unescaped path) whose path form is
 * path, into out (KF_SSM_NAME_MAX + 1 bytes): 0, or -1 when path is no
 * name's path form (a stray '%', another spelling of an escape, too
 * long).
 */
int kf_ssm_path_name(const char *path, char *out);

/* Levels of a path or name: its non-empty '/'-separated components. */
size_t kf_ssm_depth(const char *s);

/* What the index says about a path. */
enum kf_ssm_known {
	KF_SSM_UNKNOWN = 0, /* nothing fresh: ask the service */
	KF_SSM_NOT_DIR,	    /* nothing below it; whether it is one: ask */
	KF_SSM_NONE,	    /* nothing at or below it */
	KF_SSM_FILE,	    /* a parameter with nothing below it */
	KF_SSM_DIR,	    /* parameters below it (it may be one too) */
	KF_SSM_HELD,	    /* a directory held in memory, nothing below */
};

struct kf_ssm_index;

/* An index for regions 0..nregions-1; what it learns stays fresh for
 * ttl_ms.  NULL when out of memory. */
struct kf_ssm_index *kf_ssm_index_new(size_t nregions, uint64_t ttl_ms);
/* Accepts NULL. */
void kf_ssm_index_free(struct kf_ssm_index *x);

/*
 * What path is (see enum kf_ssm_known).  For KF_SSM_FILE, *meta (may be
 * NULL) receives a copy of what is known of the parameter, which the
 * caller releases (kf_aws_ssm_meta_release); else it is zeroed.
 */
enum kf_ssm_known kf_ssm_index_lookup(struct kf_ssm_index *x, size_t ri,
				      const char *path,
				      struct kf_aws_ssm_meta *meta);

/*
 * The metadata last recorded for the parameter at path, of any age
 * (things that change only with a new version: type, key, tier): 1 with
 * a copy in *meta (the caller releases it), 0 when none.
 */
int kf_ssm_index_meta(struct kf_ssm_index *x, size_t ri, const char *path,
		      struct kf_aws_ssm_meta *meta);

/* Results of kf_ssm_index_put. */
#define KF_SSM_PUT_OK 0
#define KF_SSM_PUT_GONE 1 /* deleted here a moment ago: not recorded */
#define KF_SSM_PUT_HIDDEN \
	2			  /* the name lost to a hierarchical one of the
			     * same path: tell it once (first time only) */
#define KF_SSM_PUT_HIDDEN_AGAIN 3 /* the same, told already */

/*
 * Record parameter m as seen in the service just now (copied).  Of two
 * names with one path ("/foo" and "foo"), the hierarchical one wins once
 * the service has shown it.  Out of memory only loses a hint.
 */
int kf_ssm_index_put(struct kf_ssm_index *x, size_t ri,
		     const struct kf_aws_ssm_meta *m);

/* Keep arn for the parameter at path (from GetParameter). */
void kf_ssm_index_put_arn(struct kf_ssm_index *x, size_t ri, const char *path,
			  const char *arn);

/* Forget the parameter at path (found gone). */
void kf_ssm_index_del(struct kf_ssm_index *x, size_t ri, const char *path);

/*
 * This process wrote m (deleted = 0: created it or made a new version) or
 * deleted it (1) just now.  A write also makes every held directory
 * above it real (no longer held).
 */
void kf_ssm_index_note(struct kf_ssm_index *x, size_t ri,
		       const struct kf_aws_ssm_meta *m, int deleted);

/* What a listing or lookup established (kf_ssm_index_complete). */
#define KF_SSM_BELOW 1 /* every parameter below the path */
#define KF_SSM_SELF 2  /* whether the path itself is a parameter */

/*
 * A listing or lookup begun at since_ms (kf_clock_now_ms) saw what `what`
 * says of path ("" for the region: every parameter).  Parameters
 * recorded before since_ms that it should have seen and did not are
 * dropped (deleted elsewhere), except this process's own recent writes.
 */
void kf_ssm_index_complete(struct kf_ssm_index *x, size_t ri, const char *path,
			   int what, uint64_t since_ms);

/* 1 when the parameters below path are all known (fresh), else 0. */
int kf_ssm_index_below_known(struct kf_ssm_index *x, size_t ri,
			     const char *path);

/*
 * The entries of directory dir ("" for the region) as a complete listing
 * begun at since_ms left them: parameters seen since then or written
 * here recently, and held directories, each next component once (a
 * directory wins over a parameter of the same name).  fn gets its name,
 * whether it is a directory, and the parameter's time; it is called
 * without the lock held and returns non-zero to stop.  -1 when out of
 * memory.
 */
int kf_ssm_index_children(struct kf_ssm_index *x, size_t ri, const char *dir,
			  uint64_t since_ms,
			  int (*fn)(void *ctx, const char *name, int is_dir,
				    int64_t mtime),
			  void *ctx);

/*
 * Up to max names (as the service spells them, malloc'd into out[]) of
 * fresh parameters in the same directory as path that follow it in path
 * order and are files (nothing below them).  For batched reads.
 */
size_t kf_ssm_index_siblings(struct kf_ssm_index *x, size_t ri,
			     const char *path, size_t max, char **out);

/* Hold directory path in memory (no API call).  -1 when out of memory. */
int kf_ssm_index_hold(struct kf_ssm_index *x, size_t ri, const char *path);
/* Forget held directory path. */
void kf_ssm_index_unhold(struct kf_ssm_index *x, size_t ri, const char *path);
/* 1 when a held directory lies strictly below path, else 0. */
int kf_ssm_index_held_below(struct kf_ssm_index *x, size_t ri,
			    const char *path);

#endif
