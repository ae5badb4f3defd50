/*
 * The refresher thread: every 250 ms one kf_cache_refresh_tick() pass
 * (refresh-ahead, expiry) and invalidation of the kernel's copy of what
 * changed.  Started after daemonizing (threads do not survive fork);
 * never holds a lock while the pass runs.
 */
#ifndef KF_REFRESH_H
#define KF_REFRESH_H

struct kf_fs;

/* Start the thread; 0, or -1 when it cannot be created. */
int kf_fs_start_refresher(struct kf_fs *fs);

/* Stop and join it; a no-op when it was never started. */
void kf_fs_stop_refresher(struct kf_fs *fs);

#endif
