/*
 * Unit tests for fs/cache.c and fs/cache_refresh.c: a fake provider that
 * counts calls and returns scripted values and errors, and the kf clock
 * seam for time.  Covers expiry, refresh-ahead, single flight,
 * stale-if-error, the negative cache and the generation check.
 */
#include "kt.h"

#include "cache.h"
#include "core/clock.h"

#include <malloc.h>
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

	kf_cache_put(f->cache, &f->p, PATH, REL, v, sizeof(v) - 1, "");
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

/*
 * A slow provider with many names: every read takes delay_ms of real
 * time and gives "v:" + the name; it records how many reads overlap.
 */
struct slow {
	struct kf_provider p;
	pthread_mutex_t lock;
	int delay_ms;	   /* protected by lock */
	int reads;	   /* protected by lock */
	int in_flight;	   /* protected by lock */
	int max_in_flight; /* protected by lock */
};

static int slow_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err)
{
	struct slow *s = p->priv;
	char v[64];
	int delay;

	pthread_mutex_lock(&s->lock);
	s->reads++;
	if (++s->in_flight > s->max_in_flight)
		s->max_in_flight = s->in_flight;
	delay = s->delay_ms;
	pthread_mutex_unlock(&s->lock);
	if (delay)
		kf_clock_sleep_ms((unsigned)delay); /* real: not faked */
	(void)snprintf(v, sizeof(v), "v:%s", path); /* fits */
	*value = kf_secret_dup(v, strlen(v));
	pthread_mutex_lock(&s->lock);
	s->in_flight--;
	pthread_mutex_unlock(&s->lock);
	return *value ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
}

static const struct kf_provider_ops slow_ops = {
	.getattr = fake_getattr,
	.read = slow_read,
};

#define SLOW_N 10

static void slow_init(struct slow *s)
{
	struct kf_clock clk = { fake_now, NULL, NULL };

	memset(s, 0, sizeof(*s));
	s->p.ops = &slow_ops;
	s->p.name = "slow";
	s->p.max_value = 4096;
	s->p.priv = s;
	pthread_mutex_init(&s->lock, NULL);
	set_time(1000000);
	kf_clock_set(&clk);
}

static void slow_set(struct slow *s, int delay_ms)
{
	pthread_mutex_lock(&s->lock);
	s->delay_ms = delay_ms;
	s->max_in_flight = s->in_flight;
	pthread_mutex_unlock(&s->lock);
}

static int slow_get(struct slow *s, int *field)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = *field;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Read name i through the cache; 1 when it gave exactly its value. */
static int slow_cread(struct kf_cache *c, struct slow *s, int i)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	char path[64], want[64];
	int ok;

	(void)snprintf(path, sizeof(path), "/slow/n%02d", i); /* fits */
	(void)snprintf(want, sizeof(want), "v:%s", path + 6); /* fits */
	if (kf_cache_read(c, &s->p, path, path + 6, &v, &err) < 0)
		return 0;
	ok = v->len == strlen(want) && !memcmp(v->data, want, v->len);
	kf_secret_free(v);
	return ok;
}

/* SLOW_N values fetched at 1,000 s and read again at 3/4 of a 4 s ttl:
 * all are due for refresh-ahead together. */
static void slow_all_due(struct kf_cache *c, struct slow *s)
{
	for (int i = 0; i < SLOW_N; i++)
		KT_CHECK(slow_cread(c, s, i));
	set_time(1000000 + 3000);
	for (int i = 0; i < SLOW_N; i++)
		KT_CHECK(slow_cread(c, s, i));
	KT_EQ_INT(slow_get(s, &s->reads), SLOW_N);
}

struct slow_reader {
	pthread_t t;
	struct kf_cache *c;
	struct slow *s;
	int i;
	int ok;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *r = arg;

	r->ok = slow_cread(r->c, r->s, r->i);
	return NULL;
}

static void *refresh_main(void *arg)
{
	kf_cache_refresh_once(arg, NULL, NULL);
	return NULL;
}

KT_TEST(cache_refresh_of_a_slow_provider_fails_no_reader)
{
	struct slow_reader r[SLOW_N];
	struct kf_cache c;
	struct slow s;
	pthread_t refresher;

	/* ttl 4 s, timeout 1 s; every fetch takes 400 ms. */
	KT_EQ_INT(kf_cache_init(&c, 4, 100, 1), 0);
	slow_init(&s);
	slow_all_due(&c, &s);
	slow_set(&s, 400);
	KT_EQ_INT(pthread_create(&refresher, NULL, refresh_main, &c), 0);
	for (int ms = 0; ms < 5000 && !slow_get(&s, &s.in_flight); ms++)
		kf_clock_sleep_ms(1);
	/* Past ttl, well within max_stale: every reader must get a value. */
	set_time(1000000 + 4500);
	for (int i = 0; i < SLOW_N; i++) {
		r[i] = (struct slow_reader){ .c = &c, .s = &s, .i = i };
		KT_EQ_INT(pthread_create(&r[i].t, NULL, slow_reader_main,
					 &r[i]),
			  0);
	}
	for (int i = 0; i < SLOW_N; i++) {
		pthread_join(r[i].t, NULL);
		KT_CHECK(r[i].ok);
	}
	pthread_join(refresher, NULL);
	kf_cache_release(&c);
	kf_clock_set(NULL);
	pthread_mutex_destroy(&s.lock);
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

KT_TEST(cache_refresh_fetches_in_parallel_within_a_bound)
{
	struct changed_log log = { 0, "" };
	struct kf_cache c;
	struct slow s;
	uint64_t t0;

	KT_EQ_INT(kf_cache_init(&c, 4, 100, 1), 0);
	slow_init(&s);
	slow_all_due(&c, &s);
	slow_set(&s, 200);
	t0 = real_ms();
	kf_cache_refresh_once(&c, on_changed, &log);
	/* Every due value refetched, at most 4 at a time, and the pass
	 * took well under one fetch after another (10 x 200 ms). */
	KT_EQ_INT(slow_get(&s, &s.reads), 2 * SLOW_N);
	KT_CHECK(slow_get(&s, &s.max_in_flight) <= 4);
	KT_CHECK(slow_get(&s, &s.max_in_flight) >= 2);
	KT_CHECK(real_ms() - t0 < 1600);
	KT_EQ_INT(log.n, 0); /* same bytes: nothing changed */
	kf_cache_release(&c);
	kf_clock_set(NULL);
	pthread_mutex_destroy(&s.lock);
}

struct bg_read {
	struct fake *f;
	int rc;
};

static void *bg_read_main(void *arg)
{
	struct bg_read *b = arg;
	char buf[64];

	b->rc = cread(b->f, buf, sizeof(buf), NULL);
	return NULL;
}

KT_TEST(cache_reader_past_its_deadline_is_served_the_held_value)
{
	struct kf_cache_stats st;
	struct bg_read b;
	struct kf_cache c;
	struct fake f;
	pthread_t t;
	char buf[64];

	KT_EQ_INT(kf_cache_init(&c, 10, 100, 1), 0); /* timeout 1 s */
	fake_init(&f, &c, "held");
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	script(&f, "next", KF_OK);
	f.hold = 1;		   /* the next fetch hangs until released */
	set_time(1000000 + 10000); /* past ttl, within max_stale */
	b.f = &f;
	b.rc = -2;
	KT_EQ_INT(pthread_create(&t, NULL, bg_read_main, &b), 0);
	pthread_mutex_lock(&f.lock);
	while (f.in_read == 0)
		pthread_cond_wait(&f.cond, &f.lock);
	pthread_mutex_unlock(&f.lock);
	/* Another reader finds the fetch in flight: after its deadline it
	 * gets the held value rather than an error. */
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "held");
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.stale, 1);
	pthread_mutex_lock(&f.lock);
	f.hold = 0;
	pthread_cond_broadcast(&f.cond);
	pthread_mutex_unlock(&f.lock);
	pthread_join(t, NULL);
	KT_EQ_INT(b.rc, 0);
	KT_EQ_INT(cread(&f, buf, sizeof(buf), NULL), 0);
	KT_EQ_STR(buf, "next");
	KT_EQ_INT(reads(&f), 2);
	kf_cache_release(&c);
	fake_release(&f);
}

/* Look up the distinct name /fake/r/<prefix>NNNNNN. */
static int cgetattr_n(struct fake *f, const char *prefix, int i)
{
	struct kf_err err = KF_ERR_INIT;
	char path[64];
	struct kf_attr a;

	(void)snprintf(path, sizeof(path), "/fake/r/%s%06d", prefix,
		       i); /* fits */
	return kf_cache_getattr(f->cache, &f->p, path, path + 6, 0, &a, &err);
}

/* Heap bytes in use (0 under valgrind, which keeps its own heap). */
static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

KT_TEST(cache_absent_names_are_bounded)
{
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;
	size_t at_10k = 0;

	KT_EQ_INT(kf_cache_init(&c, 300, 3600, 30), 0);
	fake_init(&f, &c, "");
	f.attr_err = KF_E_NOTFOUND;
	for (int i = 0; i < 100000; i++) {
		KT_EQ_INT(cgetattr_n(&f, "m", i), -1);
		if (i == 10000)
			at_10k = heap_in_use();
	}
	kf_cache_stats(&c, &st);
	KT_CHECK(st.entries <= 4096);
	/* 90,000 more absent names cost no memory that stays. */
	KT_CHECK(heap_in_use() < at_10k + 256 * 1024);
	/* Existing names are capped too (65,536 entries in all). */
	f.attr_err = KF_OK;
	for (int i = 0; i < 70000; i++)
		KT_EQ_INT(cgetattr_n(&f, "e", i), 0);
	kf_cache_stats(&c, &st);
	KT_CHECK(st.entries <= 65536);
	KT_CHECK(st.evictions > 0);
	kf_cache_release(&c);
	fake_release(&f);
}

KT_TEST(cache_absent_name_is_forgotten_after_2s)
{
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;
	enum kf_code code = KF_OK;

	KT_EQ_INT(kf_cache_init(&c, 300, 3600, 30), 0);
	fake_init(&f, &c, "");
	f.attr_err = KF_E_NOTFOUND;
	KT_EQ_INT(cgetattr(&f, &code), -1);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.entries, 1);
	set_time(1000000 + 1999);
	kf_cache_refresh_once(&c, NULL, NULL);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.entries, 1);
	set_time(1000000 + 2000);
	kf_cache_refresh_once(&c, NULL, NULL);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.entries, 0);
	kf_cache_release(&c);
	fake_release(&f);
}

KT_TEST(cache_refresher_holds_the_lock_for_a_bounded_slice)
{
	struct kf_cache_stats st;
	struct kf_cache c;
	struct fake f;

	KT_EQ_INT(kf_cache_init(&c, 300, 3600, 30), 0);
	fake_init(&f, &c, "");
	for (int i = 0; i < 20000; i++)
		KT_EQ_INT(cgetattr_n(&f, "e", i), 0);
	f.attr_err = KF_E_NOTFOUND;
	for (int i = 0; i < 3000; i++)
		KT_EQ_INT(cgetattr_n(&f, "m", i), -1);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.entries, 23000);
	/* The table grew instead of chaining thousands per bucket. */
	KT_CHECK(c.nbuckets >= st.entries / 2);
	set_time(1000000 + 2000); /* the absent names expire */
	kf_cache_refresh_once(&c, NULL, NULL);
	kf_cache_stats(&c, &st);
	KT_EQ_INT(st.entries, 20000);
	/* Every entry looked at, never more than 256 per hold. */
	KT_CHECK(c.walked.visited >= 23000);
	KT_CHECK(c.walked.max_hold <= 256);
	kf_cache_release(&c);
	fake_release(&f);
}
