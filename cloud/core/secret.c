/*
 * Secret memory: mmap'ed, mlock'ed, MADV_DONTDUMP, wiped before munmap.
 * Never logs contents; the only message here is the one-time mlock warning.
 */
#include "core/secret.h"
#include "core/log.h"
#include "core/crypto.h"

#include <malloc.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void (*release_hook)(const void *p, size_t n);

void kf_secret_set_release_hook(void (*fn)(const void *p, size_t n))
{
	release_hook = fn;
}

static atomic_size_t locked_bytes;
static atomic_int warned;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kf_secret *reg_head; /* protected by reg_lock */

static void reg_add(struct kf_secret *s)
{
	pthread_mutex_lock(&reg_lock);
	s->prev = NULL;
	s->next = reg_head;
	if (reg_head)
		reg_head->prev = s;
	reg_head = s;
	pthread_mutex_unlock(&reg_lock);
}

static void reg_del(struct kf_secret *s)
{
	pthread_mutex_lock(&reg_lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		reg_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&reg_lock);
}

/*
 * Freed mappings of up to POOL_MAX_MAP bytes are wiped and kept, still
 * locked and excluded from dumps, for the next secret of the same size:
 * a cache hit then costs no mmap/mlock/munlock/munmap system calls.
 */
#define POOL_MAX_MAP (68u << 10)
#define POOL_MAX_BYTES (2u << 20)

struct pooled {
	void *m;
	size_t maplen;
	int locked;
	struct pooled *next;
};

static struct pooled *pool; /* protected by reg_lock */
static size_t pool_bytes;   /* protected by reg_lock */

static void lock_pages(struct kf_secret *s)
{
	if (s->locked || mlock(s->data, s->maplen) == 0) {
		s->locked = 1;
		atomic_fetch_add(&locked_bytes, s->maplen);
	} else if (atomic_exchange(&warned, 1) == 0) {
		kf_log(KF_LOG_WARN,
		       "could not lock secret memory (RLIMIT_MEMLOCK?); "
		       "values may be swapped out");
	}
}

void kf_secret_relock_all(void)
{
	pthread_mutex_lock(&reg_lock);
	atomic_store(&locked_bytes, 0);
	for (struct kf_secret *s = reg_head; s; s = s->next) {
		s->locked = 0;
		lock_pages(s);
	}
	for (struct pooled *q = pool; q; q = q->next)
		q->locked = mlock(q->m, q->maplen) == 0;
	pthread_mutex_unlock(&reg_lock);
}

/* A kept mapping of exactly maplen bytes, or NULL. */
static struct pooled *pool_take(size_t maplen)
{
	struct pooled **pp, *q = NULL;

	pthread_mutex_lock(&reg_lock);
	for (pp = &pool; *pp; pp = &(*pp)->next) {
		if ((*pp)->maplen == maplen) {
			q = *pp;
			*pp = q->next;
			pool_bytes -= maplen;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return q;
}

/* Keep a wiped mapping for reuse; 0 when kept, -1 when the pool is full. */
static int pool_put(void *m, size_t maplen, int locked)
{
	struct pooled *q;
	int rc = -1;

	if (maplen > POOL_MAX_MAP)
		return -1;
	q = malloc(sizeof(*q));
	if (!q)
		return -1;
	pthread_mutex_lock(&reg_lock);
	if (pool_bytes + maplen <= POOL_MAX_BYTES) {
		q->m = m;
		q->maplen = maplen;
		q->locked = locked;
		q->next = pool;
		pool = q;
		pool_bytes += maplen;
		rc = 0;
	}
	pthread_mutex_unlock(&reg_lock);
	if (rc < 0)
		free(q);
	return rc;
}

struct kf_secret *kf_secret_new(size_t cap)
{
	struct kf_secret *s;
	struct pooled *q;
	long page = sysconf(_SC_PAGESIZE);
	size_t maplen;
	void *m;

	if (page <= 0)
		page = 4096;
	if (cap > SIZE_MAX - (size_t)page)
		return NULL;
	maplen = (cap + 1 + (size_t)page - 1) / (size_t)page * (size_t)page;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	q = pool_take(maplen);
	if (q) {
		m = q->m;
		s->locked = q->locked;
		free(q);
	} else {
		m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			free(s);
			return NULL;
		}
		(void)madvise(m, maplen, MADV_DONTDUMP);
	}
	s->data = m;
	s->cap = cap;
	s->maplen = maplen;
	s->len = 0;
	lock_pages(s);
	reg_add(s);
	return s;
}

struct kf_secret *kf_secret_dup(const void *p, size_t n)
{
	struct kf_secret *s = kf_secret_new(n);

	if (s && n) {
		memcpy(s->data, p, n);
		s->len = n;
	}
	return s;
}

void kf_secret_set_version(struct kf_secret *s, const char *v)
{
	if (s)
		(void)snprintf(s->version, sizeof(s->version), "%s",
			       v ? v : "");
}

void kf_secret_free(struct kf_secret *s)
{
	if (!s)
		return;
	reg_del(s);
	explicit_bzero(s->data, s->maplen);
	if (release_hook)
		release_hook(s->data, s->maplen);
	if (s->locked)
		atomic_fetch_sub(&locked_bytes, s->maplen);
	if (pool_put(s->data, s->maplen, s->locked) < 0) {
		if (s->locked)
			munlock(s->data, s->maplen);
		munmap(s->data, s->maplen);
	}
	free(s);
}

int kf_secret_set(struct kf_secret *s, const void *p, size_t n)
{
	if (n > s->cap)
		return -1;
	if (n)
		memmove(s->data, p, n);
	if (s->len > n)
		explicit_bzero(s->data + n, s->len - n);
	s->len = n;
	return 0;
}

int kf_secret_write(struct kf_secret *s, size_t off, const void *p, size_t n)
{
	if (off > s->cap || n > s->cap - off)
		return -1;
	if (off > s->len)
		memset(s->data + s->len, 0, off - s->len);
	if (n)
		memcpy(s->data + off, p, n);
	if (off + n > s->len)
		s->len = off + n;
	return 0;
}

int kf_secret_truncate(struct kf_secret *s, size_t n)
{
	if (n > s->cap)
		return -1;
	if (n > s->len)
		memset(s->data + s->len, 0, n - s->len);
	else
		explicit_bzero(s->data + n, s->len - n);
	s->len = n;
	return 0;
}

int kf_secret_equal(const struct kf_secret *a, const struct kf_secret *b)
{
	if (a->len != b->len)
		return 0;
	return kf_memeq(a->data, b->data, a->len);
}

size_t kf_secret_locked_bytes(void)
{
	return atomic_load(&locked_bytes);
}

/* Each block carries its size in front so free can wipe it. */
#define HDR 16

void *kf_wipe_malloc(size_t n)
{
	unsigned char *p;

	if (n > SIZE_MAX - HDR)
		return NULL;
	p = malloc(n + HDR);
	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + HDR;
}

void kf_wipe_free(void *v)
{
	unsigned char *p;
	size_t n;

	if (!v)
		return;
	p = (unsigned char *)v - HDR;
	memcpy(&n, p, sizeof(n));
	explicit_bzero(p, n + HDR);
	if (release_hook)
		release_hook(p, n + HDR);
	free(p);
}

void kf_wipe_usable_free(void *p)
{
	size_t n;

	if (!p)
		return;
	n = malloc_usable_size(p);
	explicit_bzero(p, n);
	if (release_hook)
		release_hook(p, n);
	free(p);
}

void *kf_wipe_usable_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);
	if (n == 0) {
		kf_wipe_usable_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (n <= old)
		return p; /* still a valid block of at least n bytes */
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	kf_wipe_usable_free(p);
	return q;
}
