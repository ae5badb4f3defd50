/*
 * The FUSE operations: generic over struct kf_provider, nothing
 * provider-specific.  Values live in locked memory in file handles and are
 * committed once, at flush (close) or fsync.
 */
#ifndef KF_OPS_H
#define KF_OPS_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "tree.h"

struct fuse;
struct kf_audit;

struct kf_pending;

struct kf_fs {
	struct kf_tree tree;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int read_only;
	int direct_io;		/* -o direct_io: values bypass the page cache */
	int no_open;		/* read-only and not audited: opens and reads
				 * are served by the kernel's page cache */
	unsigned ttl;		/* seconds */
	struct kf_cache cache;
	struct kf_audit *audit;	/* NULL when off */
	struct fuse *fuse;	/* for invalidating the kernel's copy */
	time_t mount_time;
	pthread_mutex_t pending_lock;
	struct kf_pending *pending;	/* protected by pending_lock: files
					 * created but not yet committed */
};

/* The operations table; private data must be a struct kf_fs. */
extern const struct fuse_operations kf_fs_ops;

void kf_fs_init(struct kf_fs *fs);
void kf_fs_release(struct kf_fs *fs);

/*
 * Start / stop the refresher thread (refresh-ahead, expiry, kernel cache
 * invalidation).  Start after daemonizing.
 */
int kf_fs_start_refresher(struct kf_fs *fs);
void kf_fs_stop_refresher(struct kf_fs *fs);

#endif
