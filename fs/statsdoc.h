/*
 * The document behind `getfattr -n user.keyfs.stats` on the mount root:
 * the operators' counters as one JSON object.  Counts and modes only,
 * never a path or a value.
 */
#ifndef KF_STATSDOC_H
#define KF_STATSDOC_H

#include "core/buf.h"

struct kf_fs;

/* Append the document to out; 0, or -1 when out is full. */
int kf_statsdoc_json(struct kf_fs *fs, struct kf_buf *out);

#endif
