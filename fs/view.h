/*
 * Views: versions and fields as paths.  Every value file NAME also
 * answers NAME:VERSION (a version the store names: a label or an id) and
 * NAME#FIELD (one top-level field of a JSON object value), composed as
 * NAME:VERSION#FIELD; a JSON secret's directory answers NAME:VERSION as
 * a read-only directory of that version's fields.  Looked up, never
 * listed, never written.  ':' and '#' are valid in no store's names, so
 * no name is shadowed.
 *
 * The cache holds a view's whole value under the path without #FIELD
 * ("/aws/r/db:AWSPREVIOUS", or "/aws/r/db" itself), so every field of
 * one version costs one fetch.
 */
#ifndef KF_VIEW_H
#define KF_VIEW_H

#include <stddef.h>

#include "provider.h"

struct kf_fs;

/* A path split into its view parts (pointers into buf). */
struct kf_view {
	int is_view;	     /* the path names a view */
	const char *version; /* NULL: the current value (points into buf) */
	const char *field;   /* NULL: the whole value (points into buf) */
	int in_dir;	     /* DIR/NAME:VERSION/FIELD: a file of a JSON
				 secret's version directory */
	char base[4096];     /* provider-relative path of the value:
				 NAME (or DIR/FIELD of a JSON secret) */
	char key[4096];	     /* provider-relative cache key: base, or
				 base:VERSION (no field) */
	char buf[4096];
};

/*
 * Parse the provider-relative path rel.  Returns 0 (v->is_view says
 * whether it is a view), or -EINVAL for a malformed view (empty VERSION
 * or FIELD, a second ':' or '#').  Pure string work.
 */
int kf_view_parse(const char *rel, struct kf_view *v);

/*
 * The cache's fetch: the value of the provider-relative cache key (a
 * path, or path:VERSION) from the provider.  *immutable is 1 when the
 * version names one fixed value (never expires from the cache).
 */
int kf_view_fetch(struct kf_provider *p, const char *key,
		  struct kf_secret **value, int *immutable, struct kf_err *err);

/*
 * The value a read of path (rel under p; rel must point into path, at
 * its provider-relative part, as kf_fs_route gives it) serves: through the cache, a
 * view's version and field applied; every successful read is noted for
 * the change watcher.  0, or -errno (reported once, as op).
 */
int kf_fs_value(struct kf_fs *fs, struct kf_provider *p, const char *path,
		const char *rel, const char *op, struct kf_secret **out);

/*
 * The FUSE side of a view path v (rel under p): its attributes (a
 * version of a JSON secret's directory is a directory; anything else a
 * file, its size exact: a view's value is fetched when it is looked up,
 * since views are never listed) and in *modes the path whose owner and
 * mode it shows (its base file; write bits are the caller's to clear).
 * 0 or -errno (-ENOENT for a version, field or base that does not exist).
 */
int kf_view_attr(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v, struct kf_attr *a,
		 char *modes, size_t n);

/* List the fields of the version directory v through fn. 0 or -errno. */
int kf_view_list(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v, kf_list_fn fn,
		 void *ctx);

/*
 * The kernel's copy of path (a cache key: a value or a version) is to be
 * dropped: drop its copies of the field views of it looked up recently
 * too (invalidate(ctx, view_path) for each).
 */
void kf_view_invalidate(const char *path,
			void (*invalidate)(void *ctx, const char *path),
			void *ctx);

/* The attribute listing a value's versions, one per line
 * "VERSION CREATED LABELS", newest first. */
#define KF_VERSIONS_XATTR "user.keyfs.versions"

/*
 * getxattr of name on path (rel under p) where views decide it: a view
 * has no attributes (-ENODATA), KF_VERSIONS_XATTR is formatted into out
 * from ops->versions.  1 when the caller should ask the provider as
 * usual, else 0 or -errno.
 */
struct kf_buf;
int kf_view_getxattr(struct kf_provider *p, const char *path, const char *rel,
		     const char *name, struct kf_buf *out);

/* -EROFS when path (a FUSE path) is a view, which nothing writes; else 0. */
int kf_view_refuse(const char *path);

/*
 * Open view v of path for reading: a handle holding its value (-EISDIR
 * for a version directory).  0 or -errno.
 */
struct kf_who;
struct kf_fh;
int kf_view_open(struct kf_fs *fs, struct kf_provider *p, const char *path,
		 const char *rel, const struct kf_view *v,
		 const struct kf_who *who, struct kf_fh **out);

#endif
