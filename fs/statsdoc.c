/*
 * The user.keyfs.stats document (see statsdoc.h): uptime and mode, FUSE
 * requests, cache counters and per-API call statistics.  Counts only:
 * never a path, a name or a value.
 */
#include "statsdoc.h"

#include "core/stats.h"
#include "ops.h"

#define CTR_GET(fs, f) \
	((unsigned long long)__atomic_load_n(&(fs)->ctr.f, __ATOMIC_RELAXED))

static const char *mode_name(const struct kf_fs *fs)
{
	if (fs->no_open)
		return "read-only, page cache";
	if (fs->direct_io)
		return "direct_io";
	return fs->read_only ? "read-only" : "read-write";
}

static int fuse_part(struct kf_fs *fs, struct kf_buf *out)
{
	return kf_buf_addf(out,
			   "\"fuse\":{\"opens\":%llu,\"reads\":%llu,"
			   "\"writes\":%llu,\"commits\":%llu,"
			   "\"commit_errors\":%llu},",
			   CTR_GET(fs, opens), CTR_GET(fs, reads),
			   CTR_GET(fs, writes), CTR_GET(fs, commits),
			   CTR_GET(fs, commit_errors));
}

static int cache_part(struct kf_fs *fs, struct kf_buf *out)
{
	struct kf_cache_stats c;

	kf_cache_stats(&fs->cache, &c);
	return kf_buf_addf(out,
			   "\"cache\":{\"hits\":%llu,\"misses\":%llu,"
			   "\"waits\":%llu,\"stale\":%llu,\"attr_hits\":%llu,"
			   "\"attr_misses\":%llu,\"negative_hits\":%llu,"
			   "\"refreshes\":%llu,\"prefetched\":%llu,"
			   "\"changes\":%llu,"
			   "\"evictions\":%llu,\"errors\":%llu,"
			   "\"entries\":%llu,\"bytes\":%llu},",
			   (unsigned long long)c.hits,
			   (unsigned long long)c.misses,
			   (unsigned long long)c.waits,
			   (unsigned long long)c.stale,
			   (unsigned long long)c.attr_hits,
			   (unsigned long long)c.attr_misses,
			   (unsigned long long)c.neg_hits,
			   (unsigned long long)c.refreshes,
			   (unsigned long long)c.prefetched,
			   (unsigned long long)c.changes,
			   (unsigned long long)c.evictions,
			   (unsigned long long)c.errors,
			   (unsigned long long)c.entries,
			   (unsigned long long)c.bytes);
}

int kf_statsdoc_json(struct kf_fs *fs, struct kf_buf *out)
{
	int rc = 0;

	rc |= kf_buf_addf(out, "{\"uptime_s\":%lld,\"mode\":\"%s\",",
			  (long long)(time(NULL) - fs->mount_time),
			  mode_name(fs));
	rc |= fuse_part(fs, out);
	rc |= cache_part(fs, out);
	rc |= kf_buf_adds(out, "\"api\":");
	rc |= kf_stats_json(out);
	rc |= kf_buf_adds(out, "}\n");
	return rc ? -1 : 0;
}
