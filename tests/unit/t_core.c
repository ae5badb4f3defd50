/* Unit tests for the shared helpers of cloud/core: the retry driver (on a
 * test clock, so no test waits), the clock seam, the percent-encoder,
 * whole-file reads, the JSON accessors and error reasons. */
#include "kt.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fake_clock {
	uint64_t now;
	unsigned sleeps;
	uint64_t slept;
};

static uint64_t fake_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->now;
}

static void fake_sleep(void *ctx, unsigned ms)
{
	struct fake_clock *f = ctx;

	f->now += ms;
	f->sleeps++;
	f->slept += ms;
}

static void use_fake(struct fake_clock *f)
{
	struct kf_clock c = { fake_now, fake_sleep, f };

	memset(f, 0, sizeof(*f));
	f->now = 1000000;
	kf_clock_set(&c);
}

/* A scripted attempt function: verdicts[i] for attempt i, each attempt
 * taking cost_ms of test time. */
struct script {
	const enum kf_retry_verdict *v;
	unsigned nv, calls, cost_ms;
	unsigned timeouts[16];
	struct fake_clock *clock;
};

static enum kf_retry_verdict
scripted(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct script *s = ctx;
	enum kf_retry_verdict v = s->v[s->calls < s->nv ? s->calls : s->nv - 1];

	KT_EQ_INT(at->n, s->calls);
	if (s->calls < 16)
		s->timeouts[s->calls] = at->timeout_ms;
	s->calls++;
	s->clock->now += s->cost_ms;
	if (v != KF_RETRY_OK) {
		kf_fail_provider(err, KF_E_UNAVAILABLE, 503,
				 "ServiceUnavailable", "try %u failed",
				 s->calls);
		err->reason = KF_R_BAD_CIPHERTEXT; /* any: it must survive */
	}
	return v;
}

KT_TEST(retry_succeeds_after_transient_failures)
{
	static const enum kf_retry_verdict v[] = { KF_RETRY_AGAIN,
						   KF_RETRY_THROTTLED,
						   KF_RETRY_OK };
	struct kf_retry_policy p = { .attempts = 5,
				     .base_ms = 100,
				     .cap_ms = 1000,
				     .throttle_base_ms = 500 };
	struct fake_clock f;
	struct script s = { v, 3, 0, 0, { 0 }, &f };
	struct kf_err err = KF_ERR_INIT;

	use_fake(&f);
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 0, scripted, &s, &err), 0);
	KT_EQ_INT(s.calls, 3);
	KT_EQ_INT(f.sleeps, 2);
	/* 50..100 ms after the first, 250..500 ms (throttle schedule,
	 * doubled once: 1000 capped at 16 x 500) after the second. */
	KT_CHECK(f.slept >= 50 + 500 && f.slept <= 100 + 1000);
	KT_EQ_INT(s.timeouts[0],
		  0); /* no deadline: attempts bound themselves */
	kf_clock_set(NULL);
}

KT_TEST(retry_stops_on_fail_and_keeps_the_error)
{
	static const enum kf_retry_verdict v[] = { KF_RETRY_AGAIN,
						   KF_RETRY_FAIL };
	struct kf_retry_policy p = { .attempts = 5, .base_ms = 10 };
	struct fake_clock f;
	struct script s = { v, 2, 0, 0, { 0 }, &f };
	struct kf_err err = KF_ERR_INIT;

	use_fake(&f);
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 0, scripted, &s, &err), -1);
	KT_EQ_INT(s.calls, 2);
	KT_EQ_STR(err.msg, "try 2 failed");
	KT_EQ_INT(err.http_status, 503);
	kf_clock_set(NULL);
}

KT_TEST(retry_is_bounded_by_attempts)
{
	static const enum kf_retry_verdict v[] = { KF_RETRY_AGAIN };
	struct kf_retry_policy p = { .attempts = 3,
				     .base_ms = 10,
				     .cap_ms = 40 };
	struct fake_clock f;
	struct script s = { v, 1, 0, 0, { 0 }, &f };
	struct kf_err err = KF_ERR_INIT;

	use_fake(&f);
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 0, scripted, &s, &err), -1);
	KT_EQ_INT(s.calls, 3);
	KT_EQ_INT(f.sleeps, 2);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_STR(err.provider_code, "ServiceUnavailable");
	KT_CHECK(strstr(err.msg, "(3 attempts)") != NULL);
	KT_CHECK(kf_err_is(&err, KF_R_BAD_CIPHERTEXT));
	kf_clock_set(NULL);
}

KT_TEST(retry_now_is_allowed_once_and_not_counted)
{
	static const enum kf_retry_verdict once[] = { KF_RETRY_NOW,
						      KF_RETRY_OK };
	static const enum kf_retry_verdict twice[] = { KF_RETRY_NOW,
						       KF_RETRY_NOW };
	struct kf_retry_policy p = { .attempts = 1, .base_ms = 10 };
	struct fake_clock f;
	struct script s = { once, 2, 0, 0, { 0 }, &f };
	struct kf_err err = KF_ERR_INIT;

	use_fake(&f);
	/* One attempt allowed, yet the refresh-and-retry still happens. */
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 0, scripted, &s, &err), 0);
	KT_EQ_INT(s.calls, 2);
	KT_EQ_INT(f.sleeps, 0);
	s.v = twice;
	s.calls = 0;
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 0, scripted, &s, &err), -1);
	KT_EQ_INT(s.calls, 2);
	kf_clock_set(NULL);
}

KT_TEST(retry_respects_the_deadline)
{
	static const enum kf_retry_verdict v[] = { KF_RETRY_AGAIN };
	struct kf_retry_policy p = { .attempts = 10,
				     .base_ms = 100,
				     .cap_ms = 100,
				     .min_slice_ms = 1000 };
	struct fake_clock f;
	struct script s = { v, 1, 0, 900, { 0 }, &f };
	struct kf_err err = KF_ERR_INIT;

	use_fake(&f);
	/* 3 s: attempts of 900 ms plus pauses of 50..100 ms fit three
	 * times; the driver never sleeps past the deadline. */
	KT_EQ_INT(kf_retry_run(&p, "test: Op", 3000, scripted, &s, &err), -1);
	KT_EQ_INT(err.code, KF_E_TIMEOUT);
	KT_CHECK(strstr(err.msg, "deadline passed after") != NULL);
	KT_CHECK(s.calls >= 3 && s.calls <= 4);
	KT_CHECK(f.now <= 1000000 + 3000 + 900);
	/* Not the last attempt: max(timeout / 2, min_slice) = 1500 ms. */
	KT_EQ_INT(s.timeouts[0], 1500);
	kf_clock_set(NULL);
}

KT_TEST(retry_backoff_is_jittered_and_capped)
{
	unsigned seen_lo = ~0u, seen_hi = 0;

	for (unsigned a = 0; a < 40; a++) {
		for (int i = 0; i < 200; i++) {
			unsigned d = 100;
			unsigned v;

			for (unsigned k = 0; k < a && d < 5000; k++)
				d *= 2;
			if (d > 5000)
				d = 5000;
			v = kf_retry_backoff_ms(a, 100, 5000);
			if (v < d / 2 || v > d)
				kt_fail(__FILE__, __LINE__,
					"attempt %u: %u not in [%u, %u]", a, v,
					d / 2, d);
			if (a == 0) {
				seen_lo = v < seen_lo ? v : seen_lo;
				seen_hi = v > seen_hi ? v : seen_hi;
			}
		}
	}
	/* Jitter really varies. */
	KT_CHECK(seen_hi > seen_lo);
	KT_EQ_INT(kf_retry_backoff_ms(3, 0, 1000), 0);
	KT_CHECK(kf_retry_backoff_ms(100, 1000, 2000) >= 1000);
	KT_CHECK(kf_retry_backoff_ms(100, 1000, 2000) <= 2000);
	KT_CHECK(kf_retry_backoff_ms(31, 0x80000000u, 0xffffffffu) >=
		 0x7fffffffu);
}

KT_TEST(clock_seam_replaces_now_and_sleep)
{
	struct fake_clock f;
	uint64_t t0;

	use_fake(&f);
	KT_EQ_INT(kf_clock_now_ms(), 1000000);
	kf_clock_sleep_ms(250);
	KT_EQ_INT(kf_clock_now_ms(), 1000250);
	kf_clock_set(NULL);
	t0 = kf_clock_now_ms();
	kf_clock_sleep_ms(5);
	KT_CHECK(kf_clock_now_ms() >= t0 + 5);
}

KT_TEST(buf_pct_encodes_with_a_keep_set)
{
	struct kf_buf b;

	kf_buf_init(&b, 64);
	KT_EQ_INT(kf_buf_add_pct(&b, "a b/c~%\xff", 8, NULL), 0);
	KT_EQ_STR(kf_buf_str(&b), "a%20b%2Fc~%25%FF");
	kf_buf_reset(&b);
	KT_EQ_INT(kf_buf_add_pct(&b, "x/y=\0z", 6, "/"), 0);
	KT_EQ_STR(kf_buf_str(&b), "x/y%3D%00z");
	kf_buf_release(&b);
	kf_buf_init(&b, 4);
	KT_EQ_INT(kf_buf_add_pct(&b, "  ", 2, NULL), -1);
	kf_buf_release(&b);
}

KT_TEST(file_read_whole_bounded_and_errors)
{
	char path[512];
	struct kf_buf b;
	struct kf_err err = KF_ERR_INIT;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/f", kt_tmpdir());
	fp = fopen(path, "w");
	KT_CHECK(fp != NULL);
	for (int i = 0; i < 1000; i++)
		fputs("0123456789", fp);
	fclose(fp);
	kf_buf_init(&b, 20000);
	KT_EQ_INT(kf_file_read(path, 0, &b, &err), 0);
	KT_EQ_INT(b.len, 10000);
	kf_buf_release(&b);
	kf_buf_init(&b, 9999);
	KT_EQ_INT(kf_file_read(path, 0, &b, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	kf_buf_release(&b);
	snprintf(path, sizeof(path), "%s/missing", kt_tmpdir());
	kf_buf_init(&b, 10);
	KT_EQ_INT(kf_file_read(path, 0, &b, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	kf_buf_release(&b);
}

KT_TEST(json_accessors)
{
	static const char doc[] = "{\"s\":\"v\",\"n\":7,\"q\":\"42\","
				  "\"neg\":-1,\"big\":\"4294967296\"}";
	json_t *o = kf_json_object(doc, sizeof(doc) - 1);
	uint32_t u;

	KT_CHECK(o != NULL);
	KT_EQ_STR(kf_json_str(o, "s"), "v");
	KT_CHECK(kf_json_str(o, "n") == NULL);
	KT_CHECK(kf_json_str(NULL, "s") == NULL);
	KT_EQ_INT(kf_json_u32(o, "n", &u), 0);
	KT_EQ_INT(u, 7);
	KT_EQ_INT(kf_json_u32(o, "q", &u), 0);
	KT_EQ_INT(u, 42);
	KT_EQ_INT(kf_json_u32(o, "missing", &u), 0);
	KT_EQ_INT(u, 0);
	KT_EQ_INT(kf_json_u32(o, "neg", &u), -1);
	KT_EQ_INT(kf_json_u32(o, "big", &u), -1);
	json_decref(o);
	KT_CHECK(kf_json_object("[1]", 3) == NULL);
	o = kf_json_object("", 0);
	KT_CHECK(json_is_object(o));
	json_decref(o);
}

KT_TEST(err_reasons_are_set_and_cleared)
{
	struct kf_err err = KF_ERR_INIT;

	KT_CHECK(kf_err_is(&err, KF_R_NONE));
	kf_fail_reason(&err, KF_E_STATE, KF_R_DELETING, "s is %s", "going");
	KT_CHECK(kf_err_is(&err, KF_R_DELETING));
	KT_EQ_INT(err.code, KF_E_STATE);
	kf_fail(&err, KF_E_STATE, "other");
	KT_CHECK(kf_err_is(&err, KF_R_NONE));
	KT_CHECK(!kf_err_is(NULL, KF_R_DELETING));
}

KT_TEST(log_escapes_control_characters_and_backslashes)
{
	char out[64];

	KT_EQ_INT(kf_log_escape("a\nb\\c\x7f\td", out, sizeof(out)), 20);
	KT_EQ_STR(out, "a\\x0ab\\x5cc\\x7f\\x09d");
	/* Cut at a whole character, always terminated. */
	KT_EQ_INT(kf_log_escape("ab\n", out, 5), 2);
	KT_EQ_STR(out, "ab");
	KT_EQ_INT(kf_log_escape("plain", out, sizeof(out)), 5);
}

KT_TEST(log_line_with_newline_in_a_name_stays_one_line)
{
	char path[512], buf[512];
	int saved, fd;
	ssize_t n;
	int lines = 0;

	snprintf(path, sizeof(path), "%s/log", kt_tmpdir());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	KT_CHECK(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	kf_log(KF_LOG_ERROR, "local: %s: not found",
	       "r/k/x\nkeyfs: 2026-01-01T00:00:00Z error: forged");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	KT_CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	KT_EQ_INT(lines, 1);
	KT_CHECK(strstr(buf, "x\\x0akeyfs:") != NULL);
}

KT_TEST(err_long_message_is_cut_at_a_word)
{
	struct kf_err err = KF_ERR_INIT;
	char word[40];
	size_t n;

	memset(word, 'w', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	kf_fail(&err, KF_E_IO, "%s %s %s %s %s %s %s %s", word, word, word,
		word, word, word, word, word);
	n = strlen(err.msg);
	KT_CHECK(n < sizeof(err.msg));
	KT_CHECK(n >= 4 && !strcmp(err.msg + n - 3, "..."));
	/* Whole words of 39 'w' before the dots. */
	KT_CHECK((n - 3) % 40 == 39);
	kf_fail(&err, KF_E_IO, "short");
	KT_EQ_STR(err.msg, "short");
}

KT_TEST(err_within_says_a_shared_prefix_once)
{
	struct kf_err err = KF_ERR_INIT;

	kf_fail_provider(&err, KF_E_TIMEOUT, 503, "Throttled",
			 "aws: ListSecrets: deadline passed");
	err.reason = KF_R_NO_VALUE;
	KT_EQ_INT(kf_fail_within(&err, "aws: region r: endpoint not usable"),
		  -1);
	KT_EQ_STR(err.msg, "aws: region r: endpoint not usable: "
			   "ListSecrets: deadline passed");
	KT_EQ_INT(err.code, KF_E_TIMEOUT);
	KT_EQ_INT(err.http_status, 503);
	KT_EQ_STR(err.provider_code, "Throttled");
	KT_EQ_INT(err.reason, KF_R_NO_VALUE);
	kf_fail(&err, KF_E_IO, "127.0.0.1: refused");
	kf_fail_within(&err, "aws: region r: endpoint not usable");
	KT_EQ_STR(err.msg,
		  "aws: region r: endpoint not usable: 127.0.0.1: refused");
}

KT_TEST(store_errors_keep_full_and_read_only_apart)
{
	char dir[] = "/tmp/kt-store-XXXXXX", sub[64];
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_store_code(ENOSPC), KF_E_NOSPC);
	KT_EQ_INT(kf_store_code(EDQUOT), KF_E_NOSPC);
	KT_EQ_INT(kf_store_code(EROFS), KF_E_ROFS);
	KT_EQ_INT(kf_store_code(ENOENT), KF_E_NOTFOUND);
	KT_EQ_INT(kf_store_code(EIO), KF_E_IO);
	KT_CHECK(mkdtemp(dir) != NULL);
	KT_EQ_INT(kf_store_check(dir, &err), 0);
	/* a directory not made yet: its nearest existing parent counts */
	KT_CHECK((size_t)snprintf(sub, sizeof(sub), "%s/a/b", dir) <
		 sizeof(sub));
	KT_EQ_INT(kf_store_check(sub, &err), 0);
	rmdir(dir);
}

/*
 * Read path as a store file in a child that SIGALRM kills after 5 s (a
 * blocking open of a FIFO would hang the test itself): the child's exit
 * status is the error code, 0 on success, 100 when it hung.  *msg_ok
 * tells whether the message holds want.
 */
static int store_read_in_child(const char *path, size_t max, const char *want,
			       int *msg_ok)
{
	int pfd[2], status = 0;
	char ok = 0;
	pid_t pid;

	KT_EQ_INT(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		struct kf_err err = KF_ERR_INIT;
		struct kf_buf b;
		int rc;

		close(pfd[0]);
		alarm(5);
		kf_buf_init(&b, 1 << 20);
		rc = kf_store_read(path, max, &b, &err);
		kf_buf_release(&b);
		ok = rc == 0 || strstr(err.msg, want) != NULL;
		if (write(pfd[1], &ok, 1) != 1)
			_exit(101);
		_exit(rc == 0 ? 0 : (int)err.code);
	}
	close(pfd[1]);
	KT_CHECK(pid > 0);
	waitpid(pid, &status, 0);
	if (read(pfd[0], &ok, 1) != 1)
		ok = 0;
	close(pfd[0]);
	*msg_ok = ok;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

KT_TEST(store_read_refuses_fifos_links_directories_never_hangs)
{
	char fifo[512], link[512], dir[512], reg[512];
	int msg_ok = 0;
	FILE *fp;

	snprintf(fifo, sizeof(fifo), "%s/fifo", kt_tmpdir());
	snprintf(link, sizeof(link), "%s/link", kt_tmpdir());
	snprintf(dir, sizeof(dir), "%s/dir", kt_tmpdir());
	snprintf(reg, sizeof(reg), "%s/reg", kt_tmpdir());
	fp = fopen(reg, "w");
	KT_CHECK(fp != NULL);
	fputs("ciphertext", fp);
	fclose(fp);
	KT_EQ_INT(mkfifo(fifo, 0600), 0);
	KT_EQ_INT(symlink("reg", link), 0);
	KT_EQ_INT(mkdir(dir, 0700), 0);

	KT_EQ_INT(store_read_in_child(reg, 100, "", &msg_ok), 0);
	KT_EQ_INT(store_read_in_child(fifo, 100,
				      "is not a regular file (a FIFO)",
				      &msg_ok),
		  KF_E_IO);
	KT_CHECK(msg_ok);
	KT_EQ_INT(store_read_in_child(link, 100, "is a symbolic link", &msg_ok),
		  KF_E_IO);
	KT_CHECK(msg_ok);
	KT_EQ_INT(store_read_in_child(dir, 100,
				      "is not a regular file (a directory)",
				      &msg_ok),
		  KF_E_IO);
	KT_CHECK(msg_ok);
	/* Larger than max: refused from its size, before any read. */
	KT_EQ_INT(store_read_in_child(reg, 5, "larger than any valid one",
				      &msg_ok),
		  KF_E_INTEGRITY);
	KT_CHECK(msg_ok);
}

KT_TEST(store_open_gives_a_regular_descriptor)
{
	char reg[512], fifo[512];
	struct kf_err err = KF_ERR_INIT;
	struct stat st;
	int fd;

	snprintf(reg, sizeof(reg), "%s/reg", kt_tmpdir());
	snprintf(fifo, sizeof(fifo), "%s/fifo", kt_tmpdir());
	fd = open(reg, O_WRONLY | O_CREAT | O_EXCL, 0600);
	KT_CHECK(fd >= 0);
	KT_EQ_INT(write(fd, "abc", 3), 3);
	close(fd);
	fd = kf_store_open(reg, &st, &err);
	KT_CHECK(fd >= 0);
	KT_CHECK(S_ISREG(st.st_mode));
	KT_EQ_INT(st.st_size, 3);
	close(fd);
	KT_EQ_INT(mkfifo(fifo, 0600), 0);
	KT_EQ_INT(kf_store_open(fifo, &st, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_CHECK(strstr(err.msg, fifo) != NULL);
	snprintf(reg, sizeof(reg), "%s/absent", kt_tmpdir());
	KT_EQ_INT(kf_store_open(reg, &st, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
}

KT_TEST(file_read_of_a_fifo_fails_at_once)
{
	char fifo[512];
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;
	int wfd;

	snprintf(fifo, sizeof(fifo), "%s/fifo", kt_tmpdir());
	KT_EQ_INT(mkfifo(fifo, 0600), 0);
	/* A writer that never writes: a blocking read would wait forever. */
	wfd = open(fifo, O_RDWR | O_NONBLOCK);
	KT_CHECK(wfd >= 0);
	kf_buf_init(&b, 100);
	alarm(5);
	KT_EQ_INT(kf_file_read(fifo, 0, &b, &err), -1);
	alarm(0);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_CHECK(strstr(err.msg, "is a FIFO") != NULL);
	kf_buf_release(&b);
	close(wfd);
}
