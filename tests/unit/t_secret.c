/* Unit tests for cloud/core/secret.c: locked allocation, bounds, wiping. */
#include "kt.h"
#include "core/secret.h"

#include <stdint.h>
#include <stdlib.h>

KT_TEST(secret_bounds_and_ops)
{
	struct kf_secret *s = kf_secret_new(10), *t;

	KT_CHECK(s != NULL);
	KT_EQ_INT(kf_secret_set(s, "0123456789", 10), 0);
	KT_EQ_INT(kf_secret_set(s, "0123456789A", 11), -1);
	KT_EQ_INT(s->len, 10);
	KT_EQ_INT(kf_secret_write(s, 8, "xyz", 3), -1);
	KT_EQ_INT(kf_secret_truncate(s, 4), 0);
	KT_EQ_INT(s->data[5], 0); /* dropped bytes are wiped */
	KT_EQ_INT(kf_secret_write(s, 6, "ab", 2), 0);
	KT_EQ_INT(s->len, 8);
	KT_EQ_MEM(s->data, "0123\0\0ab", 8);
	t = kf_secret_dup(s->data, s->len);
	KT_CHECK(kf_secret_equal(s, t));
	t->data[7] = 'c';
	KT_CHECK(!kf_secret_equal(s, t));
	kf_secret_free(s);
	kf_secret_free(t);
	kf_secret_free(NULL);
}

KT_TEST(secret_is_locked)
{
	size_t before = kf_secret_locked_bytes();
	struct kf_secret *s = kf_secret_new(100);

	/* Root (as in CI) may lock; otherwise the limit allows 64 KiB+. */
	KT_CHECK(kf_secret_locked_bytes() > before);
	kf_secret_free(s);
	KT_EQ_INT(kf_secret_locked_bytes(), before);
}

static size_t released, dirty_bytes;

static void check_wiped(const void *p, size_t n)
{
	const unsigned char *b = p;

	released += n;
	for (size_t i = 0; i < n; i++)
		dirty_bytes += b[i] != 0;
}

KT_TEST(secret_wiped_before_release)
{
	struct kf_secret *s = kf_secret_new(5000);
	unsigned char *p;

	released = dirty_bytes = 0;
	kf_secret_set_release_hook(check_wiped);
	memset(s->data, 0xAB, 5000);
	s->len = 5000;
	kf_secret_free(s);
	KT_CHECK(released >= 5000);
	KT_EQ_INT(dirty_bytes, 0);

	/* The jansson allocator wipes each block, header included. */
	released = dirty_bytes = 0;
	p = kf_wipe_malloc(64);
	KT_CHECK(p != NULL);
	memset(p, 0xCD, 64);
	kf_wipe_free(p);
	KT_EQ_INT(released, 64 + 16);
	KT_EQ_INT(dirty_bytes, 0);
	kf_wipe_free(NULL);
	kf_secret_set_release_hook(NULL);
}

KT_TEST(secret_relock_after_fork_semantics)
{
	struct kf_secret *s = kf_secret_new(10);
	size_t before = kf_secret_locked_bytes();

	/* Relocking recounts every live secret exactly once. */
	kf_secret_relock_all();
	KT_EQ_INT(kf_secret_locked_bytes(), before);
	kf_secret_free(s);
}

KT_TEST(secret_wipe_usable_free_and_realloc)
{
	char *p = malloc(100), *q;

	KT_CHECK(p != NULL);
	memset(p, 0xCD, 100);
	released = dirty_bytes = 0;
	kf_secret_set_release_hook(check_wiped);
	/* Growing moves the bytes and wipes the old block. */
	q = kf_wipe_usable_realloc(p, 5000);
	KT_CHECK(q != NULL);
	KT_CHECK(released >= 100);
	KT_EQ_INT(dirty_bytes, 0);
	KT_EQ_INT((unsigned char)q[99], 0xCD);
	/* Shrinking keeps the block. */
	KT_CHECK(kf_wipe_usable_realloc(q, 10) == q);
	released = 0;
	kf_wipe_usable_free(q);
	KT_CHECK(released >= 5000);
	KT_EQ_INT(dirty_bytes, 0);
	kf_wipe_usable_free(NULL);
	KT_CHECK(kf_wipe_usable_realloc(kf_wipe_usable_realloc(NULL, 8), 0) ==
		 NULL);
	kf_secret_set_release_hook(NULL);
}
