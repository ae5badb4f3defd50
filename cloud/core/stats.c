/*
 * API call counters in a fixed table (no allocation on the hot path).
 * Latencies go into power-of-two buckets; percentiles are bucket upper
 * bounds, which is precise enough to tell 2 ms from 200 ms.
 */
#include "core/stats.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 128
#define BUCKETS 24 /* 1 ms .. 2^23 ms */

struct slot {
	const char *provider;
	const char *op;
	uint64_t calls, errors, retries;
	uint64_t hist[BUCKETS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS]; /* protected by lock */
static size_t nslots;		 /* protected by lock */

void kf_stats_api(const char *provider, const char *op, unsigned latency_ms,
		  int ok, int retry)
{
	struct slot *s = NULL;
	unsigned b = 0;

	while (b + 1 < BUCKETS && (1u << b) < latency_ms)
		b++;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nslots; i++)
		if (!strcmp(slots[i].provider, provider) &&
		    !strcmp(slots[i].op, op))
			s = &slots[i];
	if (!s && nslots < SLOTS) {
		s = &slots[nslots++];
		s->provider = provider;
		s->op = op;
	}
	if (s) {
		s->calls++;
		s->errors += !ok;
		s->retries += !!retry;
		s->hist[b]++;
	}
	pthread_mutex_unlock(&lock);
}

static unsigned pct(const struct slot *s, unsigned p)
{
	uint64_t want = (s->calls * p + 99) / 100, seen = 0;

	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += s->hist[b];
		if (seen >= want && seen > 0)
			return 1u << b;
	}
	return 0;
}

int kf_stats_json(struct kf_buf *out)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	rc |= kf_buf_adds(out, "{");
	for (size_t i = 0; i < nslots; i++) {
		int first_of_provider = 1;

		for (size_t k = 0; k < i; k++)
			if (!strcmp(slots[k].provider, slots[i].provider))
				first_of_provider = 0;
		if (!first_of_provider)
			continue;
		rc |= kf_buf_addf(out, "%s\"%s\":{", i ? "," : "",
				  slots[i].provider);
		for (size_t k = i, n = 0; k < nslots; k++) {
			const struct slot *s = &slots[k];

			if (strcmp(s->provider, slots[i].provider))
				continue;
			rc |= kf_buf_addf(out,
					  "%s\"%s\":{\"calls\":%llu,\"errors\":%llu,"
					  "\"retries\":%llu,\"p50_ms\":%u,"
					  "\"p90_ms\":%u,\"p99_ms\":%u}",
					  n++ ? "," : "", s->op,
					  (unsigned long long)s->calls,
					  (unsigned long long)s->errors,
					  (unsigned long long)s->retries,
					  pct(s, 50), pct(s, 90), pct(s, 99));
		}
		rc |= kf_buf_adds(out, "}");
	}
	rc |= kf_buf_adds(out, "}");
	pthread_mutex_unlock(&lock);
	return rc ? -1 : 0;
}

void kf_stats_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(slots, 0, sizeof(slots));
	nslots = 0;
	pthread_mutex_unlock(&lock);
}
