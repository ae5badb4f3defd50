/*
 * Unit tests for fs/cache.c and fs/cache_refresh.c: a fake provider that
 * counts calls and returns scripted values and errors, and the kf clock
 * seam for time.  Covers expiry, refresh-ahead, single flight,
 * stale-if-error, the negative cache and the generation check.
 */
#include "kt.h"

#include "cache.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PATH "/fake/r/v"
#define REL "r/v"

/* The test clock: milliseconds set by the test. */
static uint64_t fake_ms;

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(&fake_ms, __ATOMIC_SEQ_CST);
}

static void set_time(uint64_t ms)
{
	__atomic_store_n(&fake_ms, ms, __ATOMIC_SEQ_CST);
}

struct fake {
	struct kf_provider p;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int reads, getattrs;   /* protected by lock: calls made */
	char value[64];	       /* protected by lock: what read gives */
	enum kf_code read_err; /* protected by lock: KF_OK: value */
	enum kf_code attr_err; /* protected by lock: KF_OK: a file */
	int hold;	       /* protected by lock: reads block */
	int in_read;	       /* protected by lock: reads blocked */
	/* Called inside read, no lock held (a write racing a fetch). */
	void (*during_read)(struct fake *f);
	struct kf_cache *cache;
};

static struct fake *fake_of(struct kf_provider *p)
{
	return p->priv;
}

static int fake_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err)
{
	struct fake *f = fake_of(p);
	enum kf_code code;
	int rc = 0;

	KT_EQ_STR(path, REL);
	pthread_mutex_lock(&f->lock);
	f->reads++;
	f->in_read++;
	pthread_cond_broadcast(&f->cond);
	while (f->hold)
		pthread_cond_wait(&f->cond, &f->lock);
	f->in_read--;
	code = f->read_err;
	if (code == KF_OK) {
		*value = kf_secret_dup(f->value, strlen(f->value));
		if (!*value)
			rc = kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	pthread_mutex_unlock(&f->lock);
	if (f->during_read)
		f->during_read(f);
	if (code != KF_OK)
		return kf_fail(err, code, "scripted failure");
	return rc;
}

static int fake_getattr(struct kf_provider *p, const char *path,
			struct kf_attr *attr, struct kf_err *err)
{
	struct fake *f = fake_of(p);
	enum kf_code code;

	(void)path;
	pthread_mutex_lock(&f->lock);
	f->getattrs++;
	code = f->attr_err;
	pthread_mutex_unlock(&f->lock);
	if (code != KF_OK)
		return kf_fail(err, code, "scripted failure");
	memset(attr, 0, sizeof(*attr));
	attr->kind = KF_KIND_FILE;
	return 0;
}

static const struct kf_provider_ops fake_ops = {
	.getattr = fake_getattr,
	.read = fake_read,
};

static void fake_init(struct fake *f, struct kf_cache *c, const char *value)
{
	struct kf_clock clk = { fake_now, NULL, NULL };

	memset(f, 0, sizeof(*f));
	f->p.ops = &fake_ops;
	f->p.name = "fake";
	f->p.max_value = 4096;
	f->p.priv = f;
	f->cache = c;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	/* test strings fit: truncation harmless */
	(void)snprintf(f->value, sizeof(f->value), "%s", value);
	set_time(1000000);
	kf_clock_set(&clk);
}

static void fake_release(struct fake *f)
{
	kf_clock_set(NULL);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
}

/* Script the next answers (value NULL keeps the value). */
static void script(struct fake *f, const char *value, enum kf_code read_err)
{
	pthread_mutex_lock(&f->lock);
	if (value)
		(void)snprintf(f->value, sizeof(f->value), "%s", value);
	f->read_err = read_err;
	pthread_mutex_unlock(&f->lock);
}

static int reads(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->reads;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/*
 * Read PATH through the cache; returns 0 with the value in out (size n,
 * NUL-terminated) or -1 with the error code in *code.
 */
static int cread(struct fake *f, char *out, size_t n, enum kf_code *code)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;

	out[0] = '\0';
	if (kf_cache_read(f->cache, &f->p, PATH, REL, &v, &err) < 0) {
		if (code)
			*code = err.code;
		return -1;
	}
	if (v->len < n) {
		memcpy(out, v->data, v->len);
		out[v->len] = '\0';
	}
	kf_secret_free(v);
	return 0;
}

KT_TEST(cache_value_expires_at_ttl)
{
	struct kf_cache c;
	struct fake f;
	char buf[64];

	KT_EQ_INT(kf_cache_init(&c, 10, 100, 30), 0);
	fake_init(&f, &c, "one");
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "one");
	KT_EQ_INT(reads(&f), 1);
	script(&f, "two", KF_OK);
	set_time(1000000 + 9999); /* 1 ms before ttl: still held */
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "one");
	KT_EQ_INT(reads(&f), 1);
	set_time(1000000 + 10000); /* at ttl: fetched again */
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "two");
	KT_EQ_INT(reads(&f), 2);
	kf_cache_release(&c);
	fake_release(&f);
}

struct changed_log {
	int n;
	char last[64];
};

static void on_changed(void *ctx, const char *path)
{
	struct changed_log *l = ctx;

	l->n++;
	(void)snprintf(l->last, sizeof(l->last), "%s", path); /* fits */
}

KT_TEST(cache_refresh_ahead_refetches_values_being_read)
{
	struct changed_log log = { 0, "" };
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;
	char buf[64];

	KT_EQ_INT(kf_cache_init(&c, 8, 100, 30), 0); /* 3/4 ttl: 6 s */
	fake_init(&f, &c, "old");
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	script(&f, "new!", KF_OK);
	set_time(1000000 + 5999);
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0); /* a reader */
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 1); /* not yet 3/4 of ttl old */
	set_time(1000000 + 6000);
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 2); /* refreshed ahead */
	KT_EQ_INT(log.n, 1);
	KT_EQ_STR(log.last, PATH);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.refreshes, 1);
	KT_EQ_INT(st.changes, 1);
	/* The reader gets the new value from memory, past the old ttl. */
	set_time(1000000 + 8500);
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "new!");
	KT_EQ_INT(reads(&f), 2);
	/* Refreshed again with the same bytes: no change reported. */
	set_time(1000000 + 12000);
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 3);
	KT_EQ_INT(log.n, 1);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.refreshes, 2);
	KT_EQ_INT(st.changes, 1);
	kf_cache_release(&c);
	fake_release(&f);
}

KT_TEST(cache_refresh_leaves_unread_values_to_expire)
{
	struct changed_log log = { 0, "" };
	struct kf_cache c;
	struct fake f;
	char buf[64];

	KT_EQ_INT(kf_cache_init(&c, 8, 10, 30), 0);
	fake_init(&f, &c, "v");
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	/* Nobody read it within the last ttl: not refreshed ahead. */
	set_time(1000000 + 8000);
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 1);
	KT_EQ_INT(log.n, 0);
	/* Past ttl + max_stale it is dropped, and the kernel told. */
	set_time(1000000 + 18000);
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 1);
	KT_EQ_INT(log.n, 1);
	KT_EQ_STR(log.last, PATH);
	kf_cache_release(&c);
	fake_release(&f);
}

#define READERS 8

struct reader {
	pthread_t t;
	struct fake *f;
	int rc;
	char buf[64];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->rc = cread(r->f, r->buf, sizeof(r->buf), NULL);
	return NULL;
}

KT_TEST(cache_single_flight_one_call_for_concurrent_cold_reads)
{
	struct reader r[READERS];
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;

	KT_EQ_INT(kf_cache_init(&c, 10, 100, 30), 0);
	fake_init(&f, &c, "shared");
	f.hold = 1;
	for (int i = 0; i < READERS; i++) {
		r[i].f = &f;
		r[i].rc = -2;
		KT_EQ_INT(pthread_create(&r[i].t, NULL, reader_main, &r[i]), 0);
	}
	/* One reader is in the provider; wait until the others queue. */
	pthread_mutex_lock(&f.lock);
	while (f.in_read == 0)
		pthread_cond_wait(&f.cond, &f.lock);
	pthread_mutex_unlock(&f.lock);
	for (int ms = 0; ms < 10000; ms++) { /* at most 10 s */
		kf_cache_stats(&c, &st);
		if (st.waits == READERS - 1)
			break;
		kf_clock_sleep_ms(1); /* real sleep: sleep_ms not faked */
	}
	KT_EQ_INT(st.waits, READERS - 1);
	pthread_mutex_lock(&f.lock);
	f.hold = 0;
	pthread_cond_broadcast(&f.cond);
	pthread_mutex_unlock(&f.lock);
	for (int i = 0; i < READERS; i++) {
		pthread_join(r[i].t, NULL);
		KT_EQ_INT(r[i].rc, 0);
		KT_EQ_STR(r[i].buf, "shared");
	}
	KT_EQ_INT(reads(&f), 1);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.misses, 1);
	KT_EQ_INT(st.hits, READERS - 1);
	kf_cache_release(&c);
	fake_release(&f);
}

static int cgetattr(struct fake *f, enum kf_code *code)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr a;

	if (kf_cache_getattr(f->cache, &f->p, PATH, REL, 0, &a, &err) < 0) {
		*code = err.code;
		return -1;
	}
	return 0;
}

static int getattrs(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->getattrs;
	pthread_mutex_unlock(&f->lock);
	return n;
}

KT_TEST(cache_stale_if_error_serves_the_old_value_up_to_max_stale)
{
	static const enum kf_code outages[] = {
		KF_E_UNAVAILABLE,
		KF_E_TIMEOUT,
		KF_E_IO,
	};

	for (size_t i = 0; i < sizeof(outages) / sizeof(outages[0]); i++) {
		struct kf_cache_stats st;
		struct kf_cache c;
		struct fake f;
		enum kf_code code = KF_OK;
		char buf[64];

		KT_EQ_INT(kf_cache_init(&c, 10, 100, 30), 0);
		fake_init(&f, &c, "last known");
		KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
		script(&f, NULL, outages[i]);
		set_time(1000000 + 10000); /* expired */
		KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
		KT_EQ_STR(buf, "last known");
		KT_EQ_INT(reads(&f), 2);    /* it did ask */
		set_time(1000000 + 109999); /* ttl + max_stale - 1 */
		KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
		KT_EQ_STR(buf, "last known");
		set_time(1000000 + 110000); /* ttl + max_stale */
		KT_EQ_INT(cread(&f, buf, sizeof(buf), &code), -1);
		KT_EQ_INT(code, outages[i]);
		kf_cache_stats(&c, &st);
		KT_CHECK(st.stale >= 2);
		kf_cache_release(&c);
		fake_release(&f);
	}
}

KT_TEST(cache_stale_if_error_not_for_notfound_or_denied)
{
	static const enum kf_code answers[] = { KF_E_NOTFOUND, KF_E_DENIED };

	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		struct kf_cache c;
		struct fake f;
		enum kf_code code = KF_OK;
		char buf[64];

		KT_EQ_INT(kf_cache_init(&c, 10, 100, 30), 0);
		fake_init(&f, &c, "gone");
		KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
		script(&f, NULL, answers[i]);
		set_time(1000000 + 10000);
		KT_EQ_INT(cread(&f, buf, sizeof(buf), &code), -1);
		KT_EQ_INT(code, answers[i]);
		KT_EQ_INT(reads(&f), 2);
		/* An absent value is remembered as an absent name. */
		if (answers[i] == KF_E_NOTFOUND) {
			KT_EQ_INT(cgetattr(&f, &code), -1);
			KT_EQ_INT(code, KF_E_NOTFOUND);
			KT_EQ_INT(getattrs(&f), 0);
		}
		kf_cache_release(&c);
		fake_release(&f);
	}
}

/* An absent name is answered from memory for min(ttl, 2 s). */
static void check_negative(unsigned ttl_s, uint64_t neg_ms)
{
	struct kf_cache c;
	struct fake f;
	enum kf_code code = KF_OK;

	KT_EQ_INT(kf_cache_init(&c, ttl_s, 100, 30), 0);
	fake_init(&f, &c, "");
	f.attr_err = KF_E_NOTFOUND;
	KT_EQ_INT(cgetattr(&f, &code), -1);
	KT_EQ_INT(code, KF_E_NOTFOUND);
	KT_EQ_INT(getattrs(&f), 1);
	set_time(1000000 + neg_ms - 1);
	code = KF_OK;
	KT_EQ_INT(cgetattr(&f, &code), -1);
	KT_EQ_INT(code, KF_E_NOTFOUND);
	KT_EQ_INT(getattrs(&f), 1); /* from memory */
	set_time(1000000 + neg_ms);
	KT_EQ_INT(cgetattr(&f, &code), -1);
	KT_EQ_INT(getattrs(&f), 2); /* asked again */
	kf_cache_release(&c);
	fake_release(&f);
}

KT_TEST(cache_negative_entries_last_min_ttl_2s)
{
	check_negative(300, 2000);
	check_negative(1, 1000);
}

KT_TEST(cache_negative_entry_forgotten_by_create)
{
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;
	enum kf_code code = KF_OK;

	KT_EQ_INT(kf_cache_init(&c, 300, 100, 30), 0);
	fake_init(&f, &c, "");
	f.attr_err = KF_E_NOTFOUND;
	KT_EQ_INT(cgetattr(&f, &code), -1);
	KT_EQ_INT(cgetattr(&f, &code), -1);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.neg_hits, 1);
	/* create() forgets the name; the file now exists. */
	kf_cache_forget(&c, PATH);
	f.attr_err = KF_OK;
	KT_EQ_INT(cgetattr(&f, &code), 0);
	KT_EQ_INT(getattrs(&f), 2);
	kf_cache_release(&c);
	fake_release(&f);
}

/* A commit lands while the fetch is in the provider. */
static void commit_meanwhile(struct fake *f)
{
	static const unsigned char v[] = "committed";

	kf_cache_put(f->cache, &f->p, PATH, REL, v, sizeof(v) - 1);
}

KT_TEST(cache_fetch_older_than_a_put_does_not_overwrite_it)
{
	struct changed_log log = { 0, "" };
	struct kf_cache c;
	struct fake f;
	char buf[64];

	KT_EQ_INT(kf_cache_init(&c, 8, 100, 30), 0);
	fake_init(&f, &c, "fetched before the commit");
	f.during_read = commit_meanwhile;
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_INT(reads(&f), 1);
	f.during_read = NULL;
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "committed");
	KT_EQ_INT(reads(&f), 1);
	/* The same for a refresh-ahead fetch. */
	f.during_read = commit_meanwhile;
	script(&f, "refetched before the commit", KF_OK);
	set_time(1000000 + 6000);
	kf_cache_refresh_once(&c, on_changed, &log);
	KT_EQ_INT(reads(&f), 2);
	f.during_read = NULL;
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "committed");
	KT_EQ_INT(reads(&f), 2);
	kf_cache_release(&c);
	fake_release(&f);
}
