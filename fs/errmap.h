/*
 * The one place where cloud errors become errno values: codes only, never
 * the text of a message.
 */
#ifndef KF_ERRMAP_H
#define KF_ERRMAP_H

#include "core/err.h"

/* The positive errno for code (EIO for anything unknown). */
int kf_errmap(enum kf_code code);

/*
 * Log err once for operation op on path (never a value), at a level that
 * suits the code, and return -errno for a FUSE handler.
 */
int kf_errmap_report(const char *op, const char *path,
		     const struct kf_err *err);

#endif
