/*
 * The user.keyfs.stats document (see statsdoc.h): uptime and mode, FUSE
 * requests, cache counters and per-API call statistics.  Counts only:
 * never a path, a name or a value.
 */
#include "statsdoc.h"

#include "core/stats.h"
#include "ops.h"
#include "watch.h"

#include <stddef.h>
#include <string.h>

#define CTR_GET(fs, f) \
	((unsigned long long)__atomic_load_n(&(fs)->ctr.f, __ATOMIC_RELAXED))

static const char *mode_name(const struct kf_fs *fs)
{
	if (fs->no_open)
		return "read-only, page cache";
	if (fs->direct_io)
		return "direct_io";
	if (fs->page_cache)
		return "read-write, page cache";
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

/* The cache counters, in the document's order, as data. */
static const struct {
	const char *name;
	size_t off;
} cache_fields[] = {
#define F(json, field)                                       \
	{                                                    \
		json, offsetof(struct kf_cache_stats, field) \
	}
	F("hits", hits),
	F("misses", misses),
	F("waits", waits),
	F("stale", stale),
	F("attr_hits", attr_hits),
	F("attr_misses", attr_misses),
	F("negative_hits", neg_hits),
	F("refreshes", refreshes),
	F("prefetched", prefetched),
	F("changes", changes),
	F("evictions", evictions),
	F("errors", errors),
	F("entries", entries),
	F("bytes", bytes),
#undef F
};

static int cache_part(struct kf_fs *fs, struct kf_buf *out)
{
	struct kf_cache_stats c;
	int rc;

	kf_cache_stats(&fs->cache, &c);
	rc = kf_buf_adds(out, "\"cache\":{");
	for (size_t i = 0; i < sizeof(cache_fields) / sizeof(cache_fields[0]);
	     i++) {
		uint64_t v;

		memcpy(&v, (const char *)&c + cache_fields[i].off, sizeof(v));
		rc |= kf_buf_addf(out, "%s\"%s\":%llu", i ? "," : "",
				  cache_fields[i].name, (unsigned long long)v);
	}
	return rc | kf_buf_adds(out, "},");
}

/* The change watcher's counters (all 0 when watching is off). */
static int watch_part(struct kf_fs *fs, struct kf_buf *out)
{
	struct kf_watch_stats w;

	kf_watch_stats(fs, &w);
	return kf_buf_addf(out,
			   "\"watch\":{\"watched\":%llu,\"rounds\":%llu,"
			   "\"stamps\":%llu,\"refetches\":%llu,"
			   "\"changes\":%llu,\"gone\":%llu},",
			   (unsigned long long)w.watched,
			   (unsigned long long)w.rounds,
			   (unsigned long long)w.stamps,
			   (unsigned long long)w.refetches,
			   (unsigned long long)w.changes,
			   (unsigned long long)w.gone);
}

int kf_statsdoc_json(struct kf_fs *fs, struct kf_buf *out)
{
	int rc = 0;

	rc |= kf_buf_addf(out, "{\"uptime_s\":%lld,\"mode\":\"%s\",",
			  (long long)(time(NULL) - fs->mount_time),
			  mode_name(fs));
	rc |= fuse_part(fs, out);
	rc |= cache_part(fs, out);
	rc |= watch_part(fs, out);
	rc |= kf_buf_adds(out, "\"api\":");
	rc |= kf_stats_json(out);
	rc |= kf_buf_adds(out, "}\n");
	return rc ? -1 : 0;
}
