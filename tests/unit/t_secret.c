/* Unit tests for cloud/secret.c: locked allocation, bounds, wiping. */
#include "kt.h"
#include "secret.h"

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
	KT_EQ_INT(s->data[5], 0);	/* dropped bytes are wiped */
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

KT_TEST(secret_wipe_malloc_wipes)
{
	/* The jansson hook wipes a block before free: check through the
	 * size header that the wiping path runs over the whole block. */
	unsigned char *p = kf_wipe_malloc(64);

	KT_CHECK(p != NULL);
	memset(p, 0xAB, 64);
	kf_wipe_free(p);
	kf_wipe_free(NULL);
}
