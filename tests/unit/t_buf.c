/* Unit tests for cloud/core/buf.c: bounded growth, formatting, failure keeps
 * the buffer valid. */
#include "kt.h"
#include "core/buf.h"

KT_TEST(buf_add_and_cap)
{
	struct kf_buf b;

	kf_buf_init(&b, 8);
	KT_EQ_STR(kf_buf_str(&b), "");
	KT_EQ_INT(kf_buf_adds(&b, "abcd"), 0);
	KT_EQ_INT(kf_buf_adds(&b, "efgh"), 0);
	KT_EQ_INT(b.len, 8);
	/* One byte past the maximum fails and changes nothing. */
	KT_EQ_INT(kf_buf_adds(&b, "i"), -1);
	KT_EQ_STR(kf_buf_str(&b), "abcdefgh");
	kf_buf_reset(&b);
	KT_EQ_STR(kf_buf_str(&b), "");
	kf_buf_release(&b);
	kf_buf_release(NULL);
}

KT_TEST(buf_addf_and_truncation)
{
	struct kf_buf b;

	kf_buf_init_sensitive(&b, 10);
	KT_EQ_INT(kf_buf_addf(&b, "%d-%s", 42, "xy"), 0);
	KT_EQ_STR(kf_buf_str(&b), "42-xy");
	KT_EQ_INT(kf_buf_addf(&b, "%s", "123456"), -1);
	KT_EQ_STR(kf_buf_str(&b), "42-xy");
	KT_EQ_INT(kf_buf_addf(&b, "%s", "12345"), 0);
	KT_EQ_INT(b.len, 10);
	kf_buf_release(&b);
}

KT_TEST(buf_binary_and_growth)
{
	struct kf_buf b;
	unsigned char blob[1000];

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)i;
	kf_buf_init_sensitive(&b, 1 << 20);
	for (int i = 0; i < 100; i++)
		KT_EQ_INT(kf_buf_add(&b, blob, sizeof(blob)), 0);
	KT_EQ_INT(b.len, 100000);
	KT_EQ_MEM(b.data + 99000, blob, sizeof(blob));
	KT_EQ_INT(b.data[b.len], 0);
	kf_buf_release(&b);
}
