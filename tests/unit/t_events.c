/*
 * fs/events.c: the line format, a size that counts every byte ever
 * appended, the window of the last KF_EVENTS_KEEP lines (older bytes read
 * as '\n'), poll readiness per open, and which paths are .keyfs nodes.
 */
#include "kt.h"

#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KT_TEST(events_nodes_under_keyfs_only)
{
	KT_EQ_INT(kf_events_node("/.keyfs"), KF_EVENTS_NODE_DIR);
	KT_EQ_INT(kf_events_node("/.keyfs/events"), KF_EVENTS_NODE_FILE);
	KT_EQ_INT(kf_events_node("/.keyfs/other"), KF_EVENTS_NODE_MISSING);
	KT_EQ_INT(kf_events_node("/.keyfsx"), KF_EVENTS_NONE);
	KT_EQ_INT(kf_events_node("/local/.keyfs"), KF_EVENTS_NONE);
	KT_EQ_INT(kf_events_node("/"), KF_EVENTS_NONE);
	/* Handlers get no path for an open file whose name is gone. */
	KT_EQ_INT(kf_events_node(NULL), KF_EVENTS_NONE);
}

KT_TEST(events_line_format_and_growing_size)
{
	struct kf_events ev;
	char buf[256];
	uint64_t size;
	time_t mtime;
	size_t n;

	kf_events_init(&ev);
	kf_events_stat(&ev, &size, &mtime);
	KT_EQ_INT(size, 0);
	KT_EQ_INT(kf_events_append(&ev, 1796565787, "/mnt/k/aws/r/db"), 0);
	kf_events_stat(&ev, &size, &mtime);
	n = kf_events_read(&ev, NULL, buf, sizeof(buf) - 1, 0);
	buf[n] = '\0';
	KT_EQ_STR(buf, "2026-12-06T14:03:07Z /mnt/k/aws/r/db\n");
	KT_EQ_INT(size, n);
	/* A name's control characters never split a line. */
	kf_events_append(&ev, 1796565787, "/mnt/k/a\nb");
	n = kf_events_read(&ev, NULL, buf, sizeof(buf) - 1, size);
	buf[n] = '\0';
	KT_EQ_STR(buf, "2026-12-06T14:03:07Z /mnt/k/a?b\n");
	KT_EQ_INT(kf_events_read(&ev, NULL, buf, sizeof(buf), size + n), 0);
	kf_events_release(&ev);
}

KT_TEST(events_keeps_the_last_lines_and_blanks_older_bytes)
{
	struct kf_events ev;
	uint64_t size, total = 0;
	size_t n, line, extra = 5;
	time_t mtime;
	char path[64], *all;

	kf_events_init(&ev);
	for (size_t i = 0; i < KF_EVENTS_KEEP + extra; i++) {
		(void)snprintf(path, sizeof(path), "/m/local/r/k/v%zu", i);
		kf_events_append(&ev, 1796565787, path);
		total += strlen("2026-12-06T14:03:07Z ") + strlen(path) + 1;
	}
	kf_events_stat(&ev, &size, &mtime);
	KT_EQ_INT(size, total); /* every byte ever appended */
	KT_EQ_INT(ev.n, KF_EVENTS_KEEP);
	all = calloc(1, size + 1);
	KT_CHECK(all != NULL);
	if (!all)
		return;
	n = kf_events_read(&ev, NULL, all, size, 0);
	KT_EQ_INT(n, size);
	/* The dropped lines' bytes are blank lines ... */
	line = strlen("2026-12-06T14:03:07Z /m/local/r/k/v0\n");
	for (size_t i = 0; i < extra * line; i++)
		if (all[i] != '\n') {
			kt_fail(__FILE__, __LINE__, "byte %zu is not a newline",
				i);
			break;
		}
	/* ... the kept ones are intact, from v5 to the last. */
	KT_CHECK(!strncmp(all + extra * line,
			  "2026-12-06T14:03:07Z /m/local/r/k/v5\n", line));
	KT_CHECK(strstr(all, "/m/local/r/k/v4\n") == NULL);
	(void)snprintf(path, sizeof(path), " /m/local/r/k/v%zu\n",
		       KF_EVENTS_KEEP + extra - 1);
	KT_CHECK(strlen(all) >= strlen(path) &&
		 !strcmp(all + strlen(all) - strlen(path), path));
	/* A read across the edge of the window. */
	n = kf_events_read(&ev, NULL, all, 10, extra * line - 3);
	KT_CHECK(n == 10 && !memcmp(all, "\n\n\n2026-12", 10));
	free(all);
	kf_events_release(&ev);
}

KT_TEST(events_poll_is_ready_past_what_an_open_read)
{
	struct kf_events ev;
	struct kf_events_fh *fh;
	char buf[256];

	kf_events_init(&ev);
	fh = kf_events_open(&ev);
	KT_CHECK(fh != NULL);
	if (!fh)
		return;
	KT_EQ_INT(kf_events_poll(&ev, fh, NULL), 0);
	kf_events_append(&ev, 1796565787, "/m/local/a");
	KT_EQ_INT(kf_events_poll(&ev, fh, NULL), 1);
	kf_events_read(&ev, fh, buf, 10, 0); /* part of the line */
	KT_EQ_INT(kf_events_poll(&ev, fh, NULL), 1);
	kf_events_read(&ev, fh, buf, sizeof(buf), 10);
	KT_EQ_INT(kf_events_poll(&ev, fh, NULL), 0);
	kf_events_close(&ev, fh);
	kf_events_release(&ev);
}
