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
	char base[4096];     /* provider-relative path of the value:
				 NAME (or DIR/FIELD of a JSON secret) */
	const char *version; /* NULL: the current value */
	const char *field;   /* NULL: the whole value */
	int dir;	     /* NAME:VERSION of a JSON secret directory
				 (listing its fields) */
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
 * The value a read of path (rel under p) serves: through the cache, a
 * view's version and field applied; every successful read is noted for
 * the change watcher.  0, or -errno (reported once, as op).
 */
int kf_fs_value(struct kf_fs *fs, struct kf_provider *p, const char *path,
		const char *rel, const char *op, struct kf_secret **out);

#endif
