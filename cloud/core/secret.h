/*
 * Locked memory for secret values and keys: an anonymous mapping that is
 * mlock'ed (a warning, once, if the limit refuses), excluded from core
 * dumps, and wiped with explicit_bzero before it is unmapped.  Nothing in
 * here ever logs a byte of the contents.
 */
#ifndef KF_SECRET_H
#define KF_SECRET_H

#include <stddef.h>

/* Longest version name kept with a value, with its NUL. */
#define KF_SECRET_VERSION_MAX 72

struct kf_secret {
	unsigned char *data; /* cap bytes of locked memory, never NULL */
	size_t len;	     /* bytes in use */
	size_t cap;	     /* usable capacity */
	size_t maplen;	     /* length of the mapping (page multiple) */
	int locked;	     /* mlock succeeded */
	/* The store's name of the version this value is ("" unknown): an
	 * aws/ VersionId, a local/ version number.  Not secret. */
	char version[KF_SECRET_VERSION_MAX];
	struct kf_secret *prev, *next; /* registry of live secrets */
};

/*
 * Allocate a secret able to hold cap bytes (cap may be 0), len 0.
 * Returns NULL when out of memory.  Safe from any thread.
 */
struct kf_secret *kf_secret_new(size_t cap);

/* A new secret holding a copy of n bytes at p (NULL if out of memory). */
struct kf_secret *kf_secret_dup(const void *p, size_t n);

/* Set s->version to v (truncated to fit; NULL clears it). */
void kf_secret_set_version(struct kf_secret *s, const char *v);

/* Wipe, unlock and unmap.  Accepts NULL. */
void kf_secret_free(struct kf_secret *s);

/*
 * Replace the contents with n bytes from p.  Returns 0, or -1 when n is
 * larger than the capacity (contents unchanged).
 */
int kf_secret_set(struct kf_secret *s, const void *p, size_t n);

/*
 * Write n bytes at offset off, growing len (gap filled with zeros).
 * Returns 0, or -1 when off + n passes the capacity (unchanged).
 */
int kf_secret_write(struct kf_secret *s, size_t off, const void *p, size_t n);

/* Set len to n (new bytes zero, dropped bytes wiped); -1 if n > cap. */
int kf_secret_truncate(struct kf_secret *s, size_t n);

/* Constant-time equality of contents (1 equal, 0 not). */
int kf_secret_equal(const struct kf_secret *a, const struct kf_secret *b);

/*
 * Lock every live secret again.  Memory locks are not inherited across
 * fork(), so main() calls this right after daemonizing.
 */
void kf_secret_relock_all(void);

/* Bytes of live secrets held in locked memory (for tests/stats).  Freed
 * secrets' pages may be kept, wiped and still locked, for reuse. */
size_t kf_secret_locked_bytes(void);

/*
 * Test seam: fn is called with each block just before it is returned to
 * the system (munmap for secrets, free for kf_wipe_malloc blocks), after
 * wiping, so a test can check that nothing is left.  NULL turns it off.
 */
void kf_secret_set_release_hook(void (*fn)(const void *p, size_t n));

/* malloc/free pair that wipes on free; core/json.c gives it to jansson. */
void *kf_wipe_malloc(size_t n);
void kf_wipe_free(void *p);

/*
 * Drop-in replacements for free and realloc on plain malloc blocks that
 * wipe every byte of a block (its malloc_usable_size) before it goes back
 * to the allocator; realloc never moves data without wiping the old
 * block.  For libraries that take allocation functions: libcurl
 * (core/http.c) and OpenSSL (core/crypto.c).
 */
void kf_wipe_usable_free(void *p);
void *kf_wipe_usable_realloc(void *p, size_t n);

#endif
