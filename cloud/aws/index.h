/*
 * What the aws provider knows about secret names without asking the
 * service: names seen in listings or DescribeSecret answers (fresh for
 * ttl), this process's own recent creates and deletes (ListSecrets is
 * eventually consistent, so they overlay listings for the ttl, at most
 * KF_AWS_OVERLAY_MS: a name restored or deleted elsewhere shows within
 * the ttl),
 * and the field names and sizes of field secrets.  Never holds a value.
 * Thread-safe: one mutex, held only inside these functions (no I/O).
 */
#ifndef KF_AWS_INDEX_H
#define KF_AWS_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* The longest this process's own creates/deletes overlay ListSecrets. */
#define KF_AWS_OVERLAY_MS (5u * 60u * 1000u)

struct kf_aws_index;

/* An index for regions 0..nregions-1; names stay fresh for ttl_ms.
 * NULL when out of memory. */
struct kf_aws_index *kf_aws_index_new(size_t nregions, uint64_t ttl_ms);
/* Accepts NULL. */
void kf_aws_index_free(struct kf_aws_index *x);

/* 1 (with *fields, *mtime; either may be NULL) when name is a secret seen
 * within ttl, else 0. */
int kf_aws_index_get(struct kf_aws_index *x, size_t ri, const char *name,
		     int *fields, int64_t *mtime);

/* Record (or refresh) a live secret.  Out of memory only loses a hint. */
void kf_aws_index_put(struct kf_aws_index *x, size_t ri, const char *name,
		      int fields, int64_t mtime);

/* Forget name (it was found gone). */
void kf_aws_index_del(struct kf_aws_index *x, size_t ri, const char *name);

/* 1 when a name seen within ttl, or created here recently, starts with
 * prefix. */
int kf_aws_index_has_prefix(struct kf_aws_index *x, size_t ri,
			    const char *prefix);

/* This process created (deleted = 0) or deleted (1) name just now. */
void kf_aws_index_note(struct kf_aws_index *x, size_t ri, const char *name,
		       int deleted, int fields);

/* 1 when this process deleted name within the overlay window. */
int kf_aws_index_deleted(struct kf_aws_index *x, size_t ri, const char *name);

/*
 * fn(ctx, name, fields) for every secret this process created within the
 * overlay window whose name starts with prefix.  Called with the index
 * lock held: fn must not call back into the index.
 */
void kf_aws_index_created(struct kf_aws_index *x, size_t ri, const char *prefix,
			  void (*fn)(void *ctx, const char *name, int fields),
			  void *ctx);

/* Field names and sizes of field secret name, as just read or written. */
void kf_aws_index_fields_set(struct kf_aws_index *x, size_t ri,
			     const char *name, const char *const *names,
			     const uint64_t *sizes, size_t n);

/*
 * Size of field of field secret name from the cache: 1 (with *size) when
 * present, 0 when the fresh cache says absent, -1 when it cannot say.
 */
int kf_aws_index_field(struct kf_aws_index *x, size_t ri, const char *name,
		       const char *field, uint64_t *size);

/*
 * Up to max plain-secret names that follow name (not name itself) in the
 * same directory ('/'-separated prefix), fresh in the index, in name
 * order; malloc'd into out[], count in *n.  For batched reads.
 */
void kf_aws_index_siblings(struct kf_aws_index *x, size_t ri, const char *name,
			   size_t max, char **out, size_t *n);

/*
 * Directories made by mkdir and held in this process's memory only (no
 * API call; gone at unmount) until something is created in them.  OPEN:
 * nothing decided yet (a file created in it makes it a field secret);
 * PREFIX: a directory was made in it, so it holds secrets' names.
 */
enum kf_aws_held {
	KF_AWS_HELD_NO = 0,
	KF_AWS_HELD_OPEN,
	KF_AWS_HELD_PREFIX,
};

/* Hold name (again), as OPEN or PREFIX.  -1 when out of memory. */
int kf_aws_index_hold(struct kf_aws_index *x, size_t ri, const char *name,
		      enum kf_aws_held how);
/* What name is held as: PREFIX also when a held directory is below it. */
enum kf_aws_held kf_aws_index_held(struct kf_aws_index *x, size_t ri,
				   const char *name);
/* Forget held directory name (removed, or it became a secret). */
void kf_aws_index_unhold(struct kf_aws_index *x, size_t ri, const char *name);
/*
 * fn(ctx, name, 1) for every held directory whose name starts with
 * prefix.  Called with the index lock held: fn must not call back into
 * the index.
 */
void kf_aws_index_held_each(struct kf_aws_index *x, size_t ri,
			    const char *prefix,
			    void (*fn)(void *ctx, const char *name, int fields),
			    void *ctx);

#endif
