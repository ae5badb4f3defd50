/*
 * The provider interface: the only view fs/ has of a secret store; each
 * provider owns one top-level directory (local/, aws/, gcp/), interprets
 * the paths below it and is thread-safe.  Values cross this interface only
 * in struct kf_secret (locked memory) or as borrowed pointers into one.
 */
#ifndef KF_PROVIDER_H
#define KF_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/secret.h"

struct kf_provider;

enum kf_kind {
	KF_KIND_NONE = 0,
	KF_KIND_DIR,  /* lists children (region, ring, key, ...) */
	KF_KIND_FILE, /* holds a value */
};

struct kf_attr {
	enum kf_kind kind;
	int size_known; /* 1 when size is the exact value length */
	uint64_t size;	/* value bytes (files, when size_known) */
	int64_t mtime;	/* epoch seconds of last change; 0 unknown */
};

/*
 * Called once per directory entry.  name is a single component (no '/').
 * attr may be NULL when the kind is not known without another call.
 * Return 0 to go on, non-zero to stop listing.
 */
typedef int (*kf_list_fn)(void *ctx, const char *name,
			  const struct kf_attr *attr);

/* Flags for commit. */
#define KF_COMMIT_CREATE 1 /* the object may not exist yet: create it */

/*
 * All paths are relative to the provider's directory: "" is the provider
 * root, components are separated by single '/', never "." or "..", no
 * leading or trailing '/'.  Every function returns 0, or -1 with *err
 * filled (err->code is what fs/errmap.c maps to errno).  None may block
 * past the configured timeout.
 */
struct kf_provider_ops {
	/* Kind, size and time of path.  KF_E_NOTFOUND when absent. */
	int (*getattr)(struct kf_provider *p, const char *path,
		       struct kf_attr *attr, struct kf_err *err);

	/*
	 * One page of the directory at path.  page is NULL for the first
	 * page, else the token the previous call left in next; next is left
	 * empty after the last page.
	 */
	int (*list)(struct kf_provider *p, const char *path, const char *page,
		    kf_list_fn fn, void *ctx, struct kf_buf *next,
		    struct kf_err *err);

	int (*mkdir)(struct kf_provider *p, const char *path,
		     struct kf_err *err);
	int (*rmdir)(struct kf_provider *p, const char *path,
		     struct kf_err *err);
	int (*unlink)(struct kf_provider *p, const char *path,
		      struct kf_err *err);

	/*
	 * Check, without changing anything, that a value file may be created
	 * at path (valid name, parent exists, not a directory).  The object is
	 * created by the first commit with KF_COMMIT_CREATE.
	 */
	int (*can_create)(struct kf_provider *p, const char *path,
			  struct kf_err *err);

	/*
	 * Optional: check, without changing anything, that a value can be
	 * written at path now, so an open for writing reports what a commit
	 * would meet: the store read-only (KF_E_ROFS) or full (KF_E_NOSPC),
	 * the key or the cloud not answering (KF_E_UNAVAILABLE, KF_E_TIMEOUT),
	 * access refused (KF_E_DENIED), the name in a state that refuses
	 * writes (KF_E_STATE, with a warning line saying why).  flags is
	 * KF_COMMIT_CREATE for a new file.  At most one cheap network call.
	 * NULL when there is nothing to check.
	 */
	int (*check_write)(struct kf_provider *p, const char *path, int flags,
			   struct kf_err *err);

	/* The current value, in a new kf_secret the caller frees. */
	int (*read)(struct kf_provider *p, const char *path,
		    struct kf_secret **value, struct kf_err *err);

	/*
	 * Optional: as read, and in the same API call the values of up to
	 * max - 1 files next to path (siblings the provider knows from its
	 * listings, for which want(ctx, rel) says yes: not cached already).
	 * fn gets each sibling's provider-relative path and value (fn takes
	 * ownership).  Lets `ls -l` learn exact sizes at one call
	 * per many files.  NULL when the provider cannot batch.
	 */
	int (*read_nearby)(struct kf_provider *p, const char *path, size_t max,
			   int (*want)(void *ctx, const char *rel),
			   void (*fn)(void *ctx, const char *rel,
				      struct kf_secret *value),
			   void *ctx, struct kf_secret **value,
			   struct kf_err *err);

	/*
	 * Make value (n bytes, borrowed) the new value of path, all or
	 * nothing.  token identifies this one commit: every retry of it reuses
	 * the token, so a retried commit makes exactly one version.  With
	 * KF_COMMIT_CREATE the object is created if it does not exist.  When
	 * version is not NULL, the store's name of the version made is
	 * appended to it (what a read of it would set in value->version),
	 * where the provider knows it without another call.
	 */
	int (*commit)(struct kf_provider *p, const char *path,
		      const unsigned char *value, size_t n, const char *token,
		      int flags, struct kf_buf *version, struct kf_err *err);

	/*
	 * Optional: whether the n bytes written so far to path (data,
	 * borrowed; the writer may add more) can still become its value.
	 * Called at every write(), so bytes the store can never hold fail
	 * there (KF_E_INVALID), not only at close(), which shells ignore.
	 * Must be cheap for the common case; never logs the bytes.  Also
	 * asked with n == 0 when a new file is closed with no data: a store
	 * that cannot hold an empty value at path answers KF_E_INVALID (as
	 * ssm/ everywhere, gcp/ for Secret Manager secrets).
	 */
	int (*check_bytes)(struct kf_provider *p, const char *path,
			   const unsigned char *data, size_t n,
			   struct kf_err *err);

	/*
	 * Views (see fs/view.h): NAME:VERSION and NAME#FIELD are parsed by
	 * fs/, never by providers; these three give fs/ what a provider's
	 * store knows of versions.  All optional (NULL: the provider has no
	 * versions, or no cheaper change check than reading the value).
	 *
	 * read_version: the value of path at version, a label or an id as
	 * the store names them ("AWSPREVIOUS", a VersionId, "3"), or the
	 * current value when version is NULL.  path is a value file, or a
	 * directory that is one JSON secret (an aws/ field secret): then the
	 * value is the whole JSON object.  *immutable is set to 1 when
	 * version names one fixed value forever (an id, a number: cached
	 * without expiry), 0 for a label that may move.  KF_E_NOTFOUND when
	 * path or the version does not exist; KF_E_ISDIR when path is a
	 * directory that holds no value.  (*value)->version is set.
	 */
	int (*read_version)(struct kf_provider *p, const char *path,
			    const char *version, struct kf_secret **value,
			    int *immutable, struct kf_err *err);

	/*
	 * versions: every version of path (a value file or a JSON-secret
	 * directory), including those without a label, each passed to fn
	 * in any order (fs/ sorts them).  created is epoch milliseconds (0
	 * unknown); labels is a comma-separated list, "" for none.  fn
	 * returns non-zero to stop.  All pages of the store's listing.
	 */
	int (*versions)(struct kf_provider *p, const char *path,
			int (*fn)(void *ctx, const char *version,
				  int64_t created, const char *labels),
			void *ctx, struct kf_err *err);

	/*
	 * stamp: a short text (appended to out, no value bytes and nothing
	 * derived from them) that changes whenever the current value of path
	 * may have changed, from the cheapest call that shows it (aws/:
	 * DescribeSecret's AWSCURRENT VersionId, not GetSecretValue).  Equal
	 * to the version a read of path sets in (*value)->version, where the
	 * provider sets one.  KF_E_NOTFOUND when path is gone.
	 */
	int (*stamp)(struct kf_provider *p, const char *path,
		     struct kf_buf *out, struct kf_err *err);

	/* Extended attributes; value/names are appended to out. listxattr
	 * appends NUL-terminated names.  KF_E_NODATA for an unknown name. */
	int (*getxattr)(struct kf_provider *p, const char *path,
			const char *name, struct kf_buf *out,
			struct kf_err *err);
	int (*setxattr)(struct kf_provider *p, const char *path,
			const char *name, const void *value, size_t n,
			struct kf_err *err);
	int (*listxattr)(struct kf_provider *p, const char *path,
			 struct kf_buf *out, struct kf_err *err);

	/* Optional: start background work; called after daemonizing. */
	int (*start)(struct kf_provider *p, struct kf_err *err);

	/* Stop background work and free everything.  Accepts NULL. */
	void (*free)(struct kf_provider *p);
};

struct kf_provider {
	const struct kf_provider_ops *ops;
	const char *name; /* top-level directory name */
	size_t max_value; /* larger values get KF_E_TOOBIG */
	void *priv;	  /* the provider's own state */
};

/* One provider-specific -o option, for parsing and --help. */
struct kf_provider_opt {
	const char *name; /* "aws_region" */
	const char *arg;  /* "R[:R...]", or NULL for a flag */
	const char *help; /* one line, including the default */
};

struct kf_provider_desc {
	const char *name;
	const struct kf_provider_opt *opts; /* ends with {NULL} */
	/*
	 * Options of other providers this one reads too (ssm/ reads
	 * aws_region and aws_profile), NULL-terminated; may be NULL.  They
	 * are not "unused" while this provider is mounted.
	 */
	const char *const *shares;
	/*
	 * 1: the provider acts as the role of cfg->aws_chain when one is
	 * given (aws/, ssm/); the Kubernetes provider builds such providers
	 * per role.  0: it always uses its own credentials.
	 */
	int assumes_role;
	/*
	 * Whether the provider is on when -o providers= is not given:
	 * configuration or credentials exist.  No network I/O.
	 */
	int (*detect)(const struct kf_config *cfg);
	/*
	 * Create the provider and check its configuration and credentials
	 * (may use the network, within cfg->timeout), before the process
	 * daemonizes; must not start threads (see ops->start).
	 */
	int (*create)(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err);
};

/* Every provider built in, NULL-terminated, in top-level listing order. */
extern const struct kf_provider_desc *const kf_provider_table[];

/* The descriptor named name, or NULL. */
const struct kf_provider_desc *kf_provider_find(const char *name);

/* The descriptor declaring option key, or NULL. */
const struct kf_provider_desc *kf_provider_for_option(const char *key);

/*
 * The descriptor whose option namespace key is in, or NULL: provider
 * options are named after their provider ("aws_region" belongs to aws),
 * so a key with that prefix but no declaration is a misspelt option.
 */
const struct kf_provider_desc *kf_provider_for_prefix(const char *key);

#endif
