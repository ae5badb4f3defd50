/*
 * The kernel's view of each value file of a writable mount (see kview.h).
 * A small table under one lock, bounded by KF_KVIEW_MAX; it never calls
 * the kernel or a provider itself and never holds a value.
 */
#include "kview.h"

#include "cache.h"
#include "core/clock.h"
#include "core/crypto.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096
#define EVICT_BATCH 64

struct kv_ent {
	char *path;
	uint64_t stamp;	  /* the value the kernel's copy is of; 0: none */
	size_t size;	  /* its size */
	int readers;	  /* page-cache opens of that value */
	int writers;	  /* writer opens */
	uint64_t changed; /* ms: last commit or writer */
	struct kv_ent *next;
};

/* Written within the last KF_KVIEW_QUIET_MS. */
static int busy(const struct kv_ent *e, uint64_t t)
{
	return e->changed && t - e->changed < KF_KVIEW_QUIET_MS;
}

/* An entry that nothing pins may be forgotten at any time. */
static int pinned(const struct kv_ent *e)
{
	return e->readers > 0 || e->writers > 0 || busy(e, kf_clock_now_ms());
}

int kf_kview_init(struct kf_kview *kv)
{
	struct kf_err err = KF_ERR_INIT;

	memset(kv, 0, sizeof(*kv));
	kv->nbuckets = NBUCKETS;
	kv->buckets = calloc(kv->nbuckets, sizeof(*kv->buckets));
	if (!kv->buckets || kf_rand_bytes(kv->key, sizeof(kv->key), &err) < 0)
		return -1;
	pthread_mutex_init(&kv->lock, NULL);
	pthread_cond_init(&kv->idle, NULL);
	return 0;
}

static void ent_free(struct kv_ent *e)
{
	free(e->path);
	free(e);
}

void kf_kview_release(struct kf_kview *kv)
{
	if (!kv->buckets)
		return;
	for (size_t i = 0; i < kv->nbuckets; i++)
		while (kv->buckets[i]) {
			struct kv_ent *e = kv->buckets[i];

			kv->buckets[i] = e->next;
			ent_free(e);
		}
	free(kv->buckets);
	kv->buckets = NULL;
	pthread_mutex_destroy(&kv->lock);
	pthread_cond_destroy(&kv->idle);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13) ^ v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17) ^ v[2];
	v[2] = ROTL(v[2], 32);
}

static void sip_word(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

/* SipHash-2-4 of p under kv->key. */
uint64_t kf_kview_stamp(const struct kf_kview *kv, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t v[4] = { kv->key[0] ^ 0x736f6d6570736575ULL,
			  kv->key[1] ^ 0x646f72616e646f6dULL,
			  kv->key[0] ^ 0x6c7967656e657261ULL,
			  kv->key[1] ^ 0x7465646279746573ULL };
	uint64_t m, last = (uint64_t)n << 56;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&m, s + i, 8);
		sip_word(v, m);
	}
	for (size_t j = 0; i + j < n; j++)
		last |= (uint64_t)s[i + j] << (8 * j);
	sip_word(v, last);
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	m = v[0] ^ v[1] ^ v[2] ^ v[3];
	return m ? m : 1; /* 0 means "no version" */
}

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h % NBUCKETS;
}

static struct kv_ent **find_locked(struct kf_kview *kv, const char *path)
{
	struct kv_ent **pp = &kv->buckets[hash(path)];

	while (*pp && strcmp((*pp)->path, path))
		pp = &(*pp)->next;
	return pp;
}

static void unlink_locked(struct kf_kview *kv, struct kv_ent **pp)
{
	struct kv_ent *e = *pp;

	*pp = e->next;
	ent_free(e);
	kv->n--;
}

/* Forget up to EVICT_BATCH entries without writers, from a rotating
 * bucket: bounded work per insert once the table is full. */
static void evict_locked(struct kf_kview *kv)
{
	int dropped = 0;

	for (size_t scanned = 0;
	     scanned < kv->nbuckets && dropped < EVICT_BATCH; scanned++) {
		struct kv_ent **pp = &kv->buckets[kv->clock++ % kv->nbuckets];

		while (*pp && dropped < EVICT_BATCH) {
			if (pinned(*pp)) {
				pp = &(*pp)->next;
				continue;
			}
			unlink_locked(kv, pp);
			dropped++;
		}
	}
}

/* The entry of path, made when missing; NULL when out of memory. */
static struct kv_ent *get_locked(struct kf_kview *kv, const char *path)
{
	struct kv_ent **pp = find_locked(kv, path), *e;

	if (*pp)
		return *pp;
	if (kv->n >= KF_KVIEW_MAX) {
		evict_locked(kv);
		pp = find_locked(kv, path);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	if (!e->path) {
		free(e);
		return NULL;
	}
	*pp = e;
	kv->n++;
	return e;
}

enum kf_kview_use kf_kview_open(struct kf_kview *kv, const char *path,
				uint64_t stamp, size_t size)
{
	enum kf_kview_use use = KF_KVIEW_DIRECT;
	struct kv_ent *e;

	pthread_mutex_lock(&kv->lock);
	e = get_locked(kv, path);
	if (!e || e->writers || busy(e, kf_clock_now_ms())) {
		/* out of memory, or being written: direct */
	} else if (e->stamp == stamp) {
		use = KF_KVIEW_KEEP;
		e->readers++;
	} else if (!e->readers) {
		use = KF_KVIEW_INVAL;
		e->stamp = stamp;
		e->size = size;
		e->readers++;
	}
	pthread_mutex_unlock(&kv->lock);
	return use;
}

void kf_kview_reader_done(struct kf_kview *kv, const char *path)
{
	struct kv_ent **pp;

	pthread_mutex_lock(&kv->lock);
	pp = find_locked(kv, path);
	if (*pp && (*pp)->readers > 0 && --(*pp)->readers == 0)
		pthread_cond_broadcast(&kv->idle);
	pthread_mutex_unlock(&kv->lock);
}

int kf_kview_wait_readers(struct kf_kview *kv, const char *path, unsigned ms)
{
	struct timespec ts;
	struct kv_ent **pp;
	int rc = 0;

	kf_cache_abstime(ms, &ts); /* a real wait: real time */
	pthread_mutex_lock(&kv->lock);
	for (;;) {
		pp = find_locked(kv, path); /* the entry may go meanwhile */
		if (!*pp || !(*pp)->readers)
			break;
		if (pthread_cond_timedwait(&kv->idle, &kv->lock, &ts)) {
			rc = -1;
			break;
		}
	}
	pthread_mutex_unlock(&kv->lock);
	return rc;
}

int kf_kview_size(struct kf_kview *kv, const char *path, size_t *size)
{
	struct kv_ent **pp;
	int live;

	pthread_mutex_lock(&kv->lock);
	pp = find_locked(kv, path);
	live = *pp && (*pp)->readers > 0;
	if (live)
		*size = (*pp)->size;
	pthread_mutex_unlock(&kv->lock);
	return live;
}

/* Forget the version of path's entry; the entry goes unless pinned. */
static void forget_locked(struct kf_kview *kv, const char *path)
{
	struct kv_ent **pp = find_locked(kv, path);

	if (*pp && !pinned(*pp))
		unlink_locked(kv, pp);
}

void kf_kview_forget(struct kf_kview *kv, const char *path)
{
	pthread_mutex_lock(&kv->lock);
	forget_locked(kv, path);
	pthread_mutex_unlock(&kv->lock);
}

void kf_kview_changed(struct kf_kview *kv, const char *path)
{
	struct kv_ent *e;

	pthread_mutex_lock(&kv->lock);
	e = get_locked(kv, path);
	if (e) {
		e->changed = kf_clock_now_ms();
		if (!e->readers)
			e->stamp = 0; /* no version held */
	}
	/* Readers pin their version: new opens of the new value read
	 * directly until they close, then take the page cache over. */
	pthread_mutex_unlock(&kv->lock);
}

void kf_kview_writer(struct kf_kview *kv, const char *path, int delta)
{
	struct kv_ent *e;

	pthread_mutex_lock(&kv->lock);
	e = get_locked(kv, path);
	if (e) {
		e->changed = kf_clock_now_ms();
		e->writers += delta;
		if (e->writers < 0)
			e->writers = 0;
		/* Its writes may have moved the kernel's size: unless
		 * readers pin a version, the next open starts afresh. */
		if (!e->readers)
			e->stamp = 0;
	}
	pthread_mutex_unlock(&kv->lock);
}

size_t kf_kview_count(struct kf_kview *kv)
{
	size_t n;

	pthread_mutex_lock(&kv->lock);
	n = kv->n;
	pthread_mutex_unlock(&kv->lock);
	return n;
}
