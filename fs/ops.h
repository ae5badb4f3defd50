/*
 * The mount's shared state and the FUSE operations table: generic over
 * struct kf_provider, nothing provider-specific.  Handlers never block on
 * the network with a lock held and never log a value.
 */
#ifndef KF_OPS_H
#define KF_OPS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "events.h"
#include "modes.h"
#include "held.h"
#include "kview.h"
#include "tree.h"

struct fuse;
struct kf_audit;
struct kf_pending;
struct kf_watch;
struct kf_onchange;

/* What reached the daemon (reads served by the page cache do not).
 * Atomic: updated with KF_FS_COUNT, read with __atomic_load_n. */
struct kf_fs_counters {
	uint64_t opens, reads, writes, commits, commit_errors;
};

#define KF_FS_COUNT(fs, f) \
	((void)__atomic_add_fetch(&(fs)->ctr.f, 1, __ATOMIC_RELAXED))

struct kf_fs {
	struct kf_tree tree;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int read_only;
	int direct_io;	 /* -o direct_io: values bypass the page cache */
	int no_open;	 /* read-only and not audited: opens and reads
				 * are served by the kernel's page cache */
	int page_cache;	 /* writable and not audited: opens for reading
			 * use the page cache (see kview.h) */
	int exact_sizes; /* -o exact_sizes: stat fetches values */
	unsigned ttl;	 /* seconds */
	struct kf_cache cache;
	struct kf_audit *audit; /* NULL when off */
	struct fuse *fuse;	/* for invalidating the kernel's copy */
	time_t mount_time;
	struct kf_fs_counters ctr;
	pthread_mutex_t pending_lock;
	struct kf_fresh {
		struct kf_fh *h;
		pid_t tid;
	} fresh[32];		    /* protected by pending_lock: writers just
			  * opened, whose O_TRUNC may follow (handle.c) */
	unsigned fresh_next;	    /* protected by pending_lock */
	struct kf_pending *pending; /* protected by pending_lock: files
					 * created but not yet committed */
	struct kf_modes modes;	    /* chmod and chown, per path */
	struct kf_held held;   /* temporary files kept in memory (held.h) */
	struct kf_kview kview; /* what the kernel holds (page_cache) */
	/* The change signal (watch.h, events.h, onchange.h). */
	char mnt[4096];		      /* the mountpoint's absolute path */
	struct kf_watch *watch;	      /* NULL: -o watch_max=0 */
	struct kf_events events;      /* .keyfs/events */
	struct kf_onchange *onchange; /* NULL: no -o on_change */
};

/* The operations table; private data must be a struct kf_fs. */
extern const struct fuse_operations kf_fs_ops;

/* Zero fs and set what needs no configuration (lock, mount time). */
void kf_fs_init(struct kf_fs *fs);

/* Free the cache and the pending list; fs itself is the caller's. */
void kf_fs_release(struct kf_fs *fs);

/*
 * The value of path changed (a commit, or the refresher saw a new one):
 * drop the kernel's pages and attributes of it, if it may hold any.
 */
void kf_fs_invalidate(struct kf_fs *fs, const char *path);

/* For FUSE handlers only (they run with a FUSE context): */

/* The mount's state, from the FUSE context. */
struct kf_fs *kf_fs_ctx(void);

/* kf_tree_route on the mount's providers: 0 or -errno. */
int kf_fs_route(const char *path, struct kf_provider **p, const char **rel);

/* Log the access to the audit trail (when on), as the calling process;
 * returns rc unchanged. */
int kf_fs_audited(const char *op, const char *path, int rc);

/* As kf_fs_audited, naming the version of the value that was served. */
int kf_fs_audited_version(const char *op, const char *path, int rc,
			  const char *version);

#endif
