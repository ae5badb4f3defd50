/*
 * fs/watch.c: the bounded set of watched paths (most recently read kept),
 * and rounds against a fake provider: one stamp per value, a change
 * reported once per changed path (not for an unchanged field of the same
 * secret), the cache refetched, a deleted value reported once and
 * dropped, an unreachable provider reporting nothing, and providers
 * without stamps compared by value.
 */
#include "kt.h"

#include "cache.h"
#include "ops.h"
#include "view.h"
#include "watch.h"

#include <stdio.h>
#include <string.h>

struct wfake {
	struct kf_provider p;
	char db[128], db_version[16];
	int api_gone, down;
	int reads, stamps;
};

static int wf_read(struct kf_provider *p, const char *path,
		   struct kf_secret **value, struct kf_err *err)
{
	struct wfake *f = p->priv;

	f->reads++;
	if (f->down)
		return kf_fail(err, KF_E_UNAVAILABLE, "down");
	if (!strcmp(path, "db")) {
		*value = kf_secret_dup(f->db, strlen(f->db));
		kf_secret_set_version(*value, f->db_version);
	} else if (!strncmp(path, "api", 3) && !f->api_gone) {
		*value = kf_secret_dup("k-1", 3);
		kf_secret_set_version(*value, "1");
	} else {
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	}
	return *value ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
}

static int wf_stamp(struct kf_provider *p, const char *path, struct kf_buf *out,
		    struct kf_err *err)
{
	struct wfake *f = p->priv;

	f->stamps++;
	if (f->down)
		return kf_fail(err, KF_E_UNAVAILABLE, "down");
	if (!strcmp(path, "db"))
		return kf_buf_adds(out, f->db_version);
	if (!strncmp(path, "api", 3) && !f->api_gone)
		return kf_buf_adds(out, "1");
	return kf_fail(err, KF_E_NOTFOUND, "no such entry");
}

static const struct kf_provider_ops wf_ops = {
	.read = wf_read,
	.stamp = wf_stamp,
};

static const struct kf_provider_ops wf_ops_nostamp = {
	.read = wf_read,
};

static struct kf_fs fs;

static void setup(struct wfake *f, unsigned max, int with_stamp)
{
	memset(f, 0, sizeof(*f));
	f->p.ops = with_stamp ? &wf_ops : &wf_ops_nostamp;
	f->p.name = "wf";
	f->p.max_value = 4096;
	f->p.priv = f;
	(void)snprintf(f->db, sizeof(f->db), "%s",
		       "{\"user\":\"u\",\"password\":\"p1\"}");
	(void)snprintf(f->db_version, sizeof(f->db_version), "v1");
	kf_fs_init(&fs);
	kf_cache_init(&fs.cache, 300, 3600, 5);
	kf_kview_init(&fs.kview);
	kf_watch_init(&fs, max);
	(void)snprintf(fs.mnt, sizeof(fs.mnt), "/mnt/k");
}

static void teardown(void)
{
	kf_watch_free(&fs);
	kf_fs_release(&fs);
}

/* A read through the mount's value path (which notes it). */
static int read_path(struct wfake *f, const char *path)
{
	struct kf_secret *v = NULL;
	int rc = kf_fs_value(&fs, &f->p, path, path + 4, "read", &v);

	kf_secret_free(v);
	return rc;
}

/* The events file as text (at most n - 1 bytes). */
static const char *events_text(char *buf, size_t n)
{
	size_t got = kf_events_read(&fs.events, NULL, buf, n - 1, 0);

	buf[got] = '\0';
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int c = 0;

	for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
		c++;
	return c;
}

KT_TEST(watch_keeps_the_most_recently_read_up_to_max)
{
	struct kf_secret *v = kf_secret_dup("x", 1);
	struct kf_watch_stats st;
	char path[32];
	struct wfake f;

	setup(&f, 3, 1);
	for (int i = 0; i < 5; i++) {
		(void)snprintf(path, sizeof(path), "/wf/api%d", i);
		kf_watch_note(&fs, &f.p, path, path + 4, v);
	}
	KT_CHECK(!kf_watch_has(&fs, "/wf/api0") &&
		 !kf_watch_has(&fs, "/wf/api1"));
	KT_CHECK(kf_watch_has(&fs, "/wf/api2") &&
		 kf_watch_has(&fs, "/wf/api4"));
	/* Read again: the most recent; the least recently read goes. */
	kf_watch_note(&fs, &f.p, "/wf/api2", "api2", v);
	kf_watch_note(&fs, &f.p, "/wf/api5", "api5", v);
	KT_CHECK(kf_watch_has(&fs, "/wf/api2") &&
		 !kf_watch_has(&fs, "/wf/api3"));
	kf_watch_stats(&fs, &st);
	KT_EQ_INT(st.watched, 3);
	kf_secret_free(v);
	teardown();
}

KT_TEST(watch_off_when_max_is_zero)
{
	struct kf_secret *v = kf_secret_dup("x", 1);
	struct wfake f;

	setup(&f, 0, 1);
	KT_CHECK(fs.watch == NULL);
	kf_watch_note(&fs, &f.p, "/wf/api", "api", v);
	KT_CHECK(!kf_watch_has(&fs, "/wf/api"));
	kf_secret_free(v);
	teardown();
}

KT_TEST(watch_reports_a_change_once_and_not_an_unchanged_field)
{
	struct kf_secret *v = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_watch_stats st;
	struct wfake f;
	char ev[4096];
	int reads;

	setup(&f, 10, 1);
	KT_EQ_INT(read_path(&f, "/wf/db"), 0);
	KT_EQ_INT(read_path(&f, "/wf/db#user"), 0);
	KT_EQ_INT(read_path(&f, "/wf/db#password"), 0);
	KT_EQ_INT(read_path(&f, "/wf/api"), 0);
	kf_watch_round(&fs);
	KT_EQ_INT(f.stamps, 2); /* one per value: db and api */
	KT_EQ_STR(events_text(ev, sizeof(ev)), "");
	/* Rotated elsewhere: the password changes, the user does not. */
	(void)snprintf(f.db, sizeof(f.db), "%s",
		       "{\"user\":\"u\",\"password\":\"p2\"}");
	(void)snprintf(f.db_version, sizeof(f.db_version), "v2");
	kf_watch_round(&fs);
	events_text(ev, sizeof(ev));
	KT_EQ_INT(count(ev, "\n"), 2);
	KT_EQ_INT(count(ev, " /mnt/k/wf/db\n"), 1);
	KT_EQ_INT(count(ev, " /mnt/k/wf/db#password\n"), 1);
	KT_EQ_INT(count(ev, "#user"), 0);
	KT_CHECK(strstr(ev, "p2") == NULL && strstr(ev, "p1") == NULL);
	/* The cache holds the new value: a read asks nobody. */
	reads = f.reads;
	KT_EQ_INT(kf_cache_read(&fs.cache, &f.p, "/wf/db", "db", &v, &err), 0);
	KT_CHECK(v && v->len == strlen(f.db) && !memcmp(v->data, f.db, v->len));
	kf_secret_free(v);
	KT_EQ_INT(f.reads, reads);
	/* Nothing more changed: nothing more reported, no value fetched. */
	kf_watch_round(&fs);
	KT_EQ_INT(count(events_text(ev, sizeof(ev)), "\n"), 2);
	KT_EQ_INT(f.reads, reads);
	kf_watch_stats(&fs, &st);
	KT_EQ_INT(st.changes, 2);
	KT_EQ_INT(st.rounds, 3);
	teardown();
}

KT_TEST(watch_reports_a_deleted_value_once_then_forgets_it)
{
	struct wfake f;
	char ev[1024];

	setup(&f, 10, 1);
	KT_EQ_INT(read_path(&f, "/wf/api"), 0);
	f.api_gone = 1;
	kf_watch_round(&fs);
	kf_watch_round(&fs);
	KT_EQ_INT(count(events_text(ev, sizeof(ev)), " /mnt/k/wf/api\n"), 1);
	KT_CHECK(!kf_watch_has(&fs, "/wf/api"));
	teardown();
}

KT_TEST(watch_unreachable_provider_reports_nothing)
{
	struct wfake f;
	char ev[1024];

	setup(&f, 10, 1);
	KT_EQ_INT(read_path(&f, "/wf/db"), 0);
	f.down = 1;
	(void)snprintf(f.db_version, sizeof(f.db_version), "v9");
	kf_watch_round(&fs);
	KT_EQ_STR(events_text(ev, sizeof(ev)), "");
	KT_CHECK(kf_watch_has(&fs, "/wf/db"));
	teardown();
}

KT_TEST(watch_without_stamps_compares_values)
{
	struct wfake f;
	char ev[1024];

	setup(&f, 10, 0);
	KT_EQ_INT(read_path(&f, "/wf/db"), 0);
	kf_watch_round(&fs);
	KT_EQ_STR(events_text(ev, sizeof(ev)), "");
	(void)snprintf(f.db, sizeof(f.db), "%s", "{\"user\":\"v\"}");
	kf_watch_round(&fs);
	kf_watch_round(&fs);
	KT_EQ_INT(count(events_text(ev, sizeof(ev)), " /mnt/k/wf/db\n"), 1);
	KT_EQ_INT(f.stamps, 0);
	teardown();
}
