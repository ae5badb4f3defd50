/* Unit tests for fs/kview.c: which opens of a writable mount may use the
 * page cache, the size replies carry while readers pin a version, and the
 * table's bound. */
#include "kt.h"

#include "core/clock.h"
#include "kview.h"

#include <stdio.h>

static uint64_t fake_now;

static uint64_t fake_ms(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static const struct kf_clock fake_clock = { fake_ms, NULL, NULL };

static void setup(struct kf_kview *kv)
{
	fake_now = 1000000;
	kf_clock_set(&fake_clock);
	KT_CHECK(kf_kview_init(kv) == 0);
}

static void teardown(struct kf_kview *kv)
{
	kf_kview_release(kv);
	kf_clock_set(NULL);
}

KT_TEST(kview_stamp_is_keyed_and_tells_values_apart)
{
	struct kf_kview a, b;

	setup(&a);
	KT_CHECK(kf_kview_init(&b) == 0);
	KT_CHECK(kf_kview_stamp(&a, "v1", 2) == kf_kview_stamp(&a, "v1", 2));
	KT_CHECK(kf_kview_stamp(&a, "v1", 2) != kf_kview_stamp(&a, "v2", 2));
	KT_CHECK(kf_kview_stamp(&a, "", 0) != 0); /* 0 means "none" */
	/* another mount, another key */
	KT_CHECK(kf_kview_stamp(&a, "v1", 2) != kf_kview_stamp(&b, "v1", 2));
	kf_kview_release(&b);
	teardown(&a);
}

KT_TEST(kview_first_open_invalidates_then_same_value_keeps)
{
	struct kf_kview kv;
	size_t size = 0;

	setup(&kv);
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	KT_CHECK(kf_kview_size(&kv, "/a", &size) && size == 5);
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_KEEP);
	/* readers of version 11 pin it: another version reads directly */
	KT_EQ_INT(kf_kview_open(&kv, "/a", 22, 9), KF_KVIEW_DIRECT);
	kf_kview_reader_done(&kv, "/a");
	kf_kview_reader_done(&kv, "/a");
	KT_CHECK(!kf_kview_size(&kv, "/a", &size));
	/* no reader left: the new version takes the page cache over */
	KT_EQ_INT(kf_kview_open(&kv, "/a", 22, 9), KF_KVIEW_INVAL);
	KT_CHECK(kf_kview_size(&kv, "/a", &size) && size == 9);
	kf_kview_reader_done(&kv, "/a");
	teardown(&kv);
}

KT_TEST(kview_writers_and_recent_commits_read_directly)
{
	struct kf_kview kv;

	setup(&kv);
	kf_kview_writer(&kv, "/a", 1);
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_DIRECT);
	kf_kview_writer(&kv, "/a", -1);
	/* within the quiet time after the writer: still direct */
	fake_now += KF_KVIEW_QUIET_MS - 1;
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_DIRECT);
	fake_now += 2;
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	kf_kview_reader_done(&kv, "/a");
	/* a commit: the kernel's version is no longer the value */
	kf_kview_changed(&kv, "/a");
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_DIRECT);
	fake_now += KF_KVIEW_QUIET_MS + 1;
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	kf_kview_reader_done(&kv, "/a");
	teardown(&kv);
}

KT_TEST(kview_a_reply_with_another_size_forgets_the_version)
{
	struct kf_kview kv;

	setup(&kv);
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	kf_kview_forget(&kv, "/a"); /* pinned by its reader: kept */
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_KEEP);
	kf_kview_reader_done(&kv, "/a");
	kf_kview_reader_done(&kv, "/a");
	kf_kview_forget(&kv, "/a");
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	kf_kview_reader_done(&kv, "/a");
	teardown(&kv);
}

KT_TEST(kview_table_is_bounded_and_keeps_pinned_entries)
{
	struct kf_kview kv;
	char path[32];

	setup(&kv);
	kf_kview_writer(&kv, "/writer", 1);
	for (int i = 0; i < 3 * KF_KVIEW_MAX; i++) {
		(void)snprintf(path, sizeof(path), "/f%d", i); /* fits */
		KT_CHECK(kf_kview_open(&kv, path, 7, 1) == KF_KVIEW_INVAL);
		kf_kview_reader_done(&kv, path);
	}
	KT_CHECK(kf_kview_count(&kv) <= KF_KVIEW_MAX);
	/* the writer's entry survived every eviction */
	KT_EQ_INT(kf_kview_open(&kv, "/writer", 7, 1), KF_KVIEW_DIRECT);
	kf_kview_writer(&kv, "/writer", -1);
	teardown(&kv);
}

KT_TEST(kview_write_waits_for_page_cache_readers)
{
	struct kf_kview kv;

	setup(&kv);
	KT_EQ_INT(kf_kview_wait_readers(&kv, "/a", 10), 0); /* none */
	KT_EQ_INT(kf_kview_open(&kv, "/a", 11, 5), KF_KVIEW_INVAL);
	KT_EQ_INT(kf_kview_wait_readers(&kv, "/a", 20), -1); /* timed out */
	kf_kview_reader_done(&kv, "/a");
	KT_EQ_INT(kf_kview_wait_readers(&kv, "/a", 10), 0);
	teardown(&kv);
}
