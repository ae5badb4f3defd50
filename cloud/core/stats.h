/*
 * Counters for operators: cloud API calls by provider and operation, with
 * errors, retries and latency percentiles.  Providers record each HTTP
 * attempt; fs/ renders the counters (getfattr -n user.keyfs.stats on the
 * mount root).  Holds no values, names or tokens, only operation names.
 */
#ifndef KF_STATS_H
#define KF_STATS_H

#include "core/buf.h"

/*
 * Record one attempt of an API call.  provider and op are static strings
 * ("aws", "GetSecretValue"); ok is 1 on success; retry is 1 when this
 * attempt repeats an earlier one.  Thread-safe, no allocation.
 */
void kf_stats_api(const char *provider, const char *op, unsigned latency_ms,
		  int ok, int retry);

/*
 * Append {"PROVIDER":{"OP":{"calls":N,"errors":N,"retries":N,
 * "p50_ms":N,"p90_ms":N,"p99_ms":N},...},...} to out.
 */
int kf_stats_json(struct kf_buf *out);

/* Zero everything (tests). */
void kf_stats_reset(void);

#endif
