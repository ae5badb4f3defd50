/*
 * The refresher thread (see refresh.h).  It only drives the cache's pass
 * and tells the kernel what changed; it never calls a provider itself (the
 * cache's workers do, started by the first pass that needs one) and never
 * runs before the process has daemonized.
 */
#include "refresh.h"

#include "ops.h"

#include <fuse.h>

#define PERIOD_MS 250

static pthread_t refresher;
static pthread_mutex_t refresher_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refresher_cond = PTHREAD_COND_INITIALIZER;
static int refresher_stop; /* protected by refresher_lock */
static int refresher_on;   /* main thread only */

static void invalidate(void *ctx, const char *path)
{
	kf_fs_invalidate(ctx, path);
}

static void *refresher_main(void *arg)
{
	struct kf_fs *fs = arg;
	struct timespec ts;

	pthread_mutex_lock(&refresher_lock);
	while (!refresher_stop) {
		pthread_mutex_unlock(&refresher_lock);
		/* Returns at once: refetches run on the cache's workers,
		 * so a slow provider does not stretch the period. */
		kf_cache_refresh_tick(&fs->cache, invalidate, fs);
		pthread_mutex_lock(&refresher_lock);
		kf_cache_abstime(PERIOD_MS, &ts);
		if (!refresher_stop)
			pthread_cond_timedwait(&refresher_cond, &refresher_lock,
					       &ts);
	}
	pthread_mutex_unlock(&refresher_lock);
	return NULL;
}

int kf_fs_start_refresher(struct kf_fs *fs)
{
	if (pthread_create(&refresher, NULL, refresher_main, fs) != 0)
		return -1;
	refresher_on = 1;
	return 0;
}

void kf_fs_stop_refresher(struct kf_fs *fs)
{
	if (!refresher_on)
		return;
	pthread_mutex_lock(&refresher_lock);
	refresher_stop = 1;
	pthread_cond_signal(&refresher_cond);
	pthread_mutex_unlock(&refresher_lock);
	pthread_join(refresher, NULL);
	refresher_on = 0;
	/* Before the providers go: no refetch may still be using one. */
	kf_cache_refresh_stop(&fs->cache);
}
