/*
 * fs/onchange.c: the command's form is checked, runs are bounded in
 * number and time, failures are logged with the program and the path,
 * the environment is built from scratch and no descriptor above 2 is
 * inherited.
 */
#include "kt.h"

#include "onchange.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct kf_onchange_limits quick = { 2, 1000, 5000, 1000, 5000 };

/* Write text to DIR/name, mode 0755; the path in out. */
static void put_file(const char *name, const char *text, char *out, size_t n)
{
	FILE *f;

	(void)snprintf(out, n, "%s/%s", kt_tmpdir(), name);
	f = fopen(out, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(out, 0755);
}

/* The whole of a small file, NUL-terminated, in buf. */
static void slurp(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");
	size_t got = f ? fread(buf, 1, n - 1, f) : 0;

	buf[got] = '\0';
	if (f)
		fclose(f);
}

KT_TEST(onchange_check_refuses_relative_and_missing_programs)
{
	char msg[256], plain[512];

	put_file("plain", "not a program\n", plain, sizeof(plain));
	chmod(plain, 0644);
	KT_EQ_INT(kf_onchange_check("/bin/true", msg, sizeof(msg)), 0);
	KT_EQ_INT(kf_onchange_check("/bin/echo a b", msg, sizeof(msg)), 0);
	KT_EQ_INT(kf_onchange_check("true", msg, sizeof(msg)), -1);
	KT_EQ_INT(kf_onchange_check("/nonexistent/x", msg, sizeof(msg)), -1);
	KT_EQ_INT(kf_onchange_check(plain, msg, sizeof(msg)), -1);
	KT_EQ_INT(kf_onchange_check("/bin/echo a\nb", msg, sizeof(msg)), -1);
	KT_EQ_INT(kf_onchange_check("/bin", msg, sizeof(msg)), -1);
}

KT_TEST(onchange_runs_at_most_the_limit_at_once)
{
	struct kf_onchange_stats st;
	struct kf_onchange *oc = kf_onchange_new("/bin/sleep 0.3", &quick);

	KT_CHECK(oc != NULL);
	if (!oc)
		return;
	/* The path comes last: "sleep 0.3 0" sleeps 0.3 s. */
	for (int i = 0; i < 6; i++)
		KT_EQ_INT(kf_onchange_run(oc, "0", time(NULL)), 0);
	KT_EQ_INT(kf_onchange_drain(oc, 10000), 0);
	kf_onchange_stats(oc, &st);
	KT_EQ_INT(st.started, 6);
	KT_EQ_INT(st.finished, 6);
	KT_EQ_INT(st.peak, 2);
	KT_EQ_INT(st.failed, 0);
	kf_onchange_free(oc);
}

KT_TEST(onchange_queue_is_bounded)
{
	struct kf_onchange_limits lim = { 1, 2, 5000, 1000, 5000 };
	struct kf_onchange_stats st;
	struct kf_onchange *oc = kf_onchange_new("/bin/sleep 1", &lim);
	int refused = 0;

	KT_CHECK(oc != NULL);
	if (!oc)
		return;
	for (int i = 0; i < 8; i++)
		refused += kf_onchange_run(oc, "0", time(NULL)) < 0;
	kf_onchange_stats(oc, &st);
	/* At most one running and two waiting: five or more refused. */
	KT_CHECK(refused >= 5);
	KT_EQ_INT(st.dropped, (unsigned long)refused);
	kf_onchange_free(oc);
}

KT_TEST(onchange_kills_a_run_past_its_time_limit)
{
	struct kf_onchange_limits lim = { 1, 10, 300, 300, 5000 };
	struct kf_onchange_stats st;
	struct kf_onchange *oc;
	char script[512], cmd[600];
	time_t t0 = time(NULL);

	put_file("slow", "#!/bin/sh\nexec sleep 30\n", script, sizeof(script));
	(void)snprintf(cmd, sizeof(cmd), "/bin/sh %s", script);
	oc = kf_onchange_new(cmd, &lim);
	KT_CHECK(oc != NULL);
	if (!oc)
		return;
	KT_EQ_INT(kf_onchange_run(oc, "/mnt/k/local/r/k/v", t0), 0);
	KT_EQ_INT(kf_onchange_drain(oc, 5000), 0);
	KT_CHECK(time(NULL) - t0 < 5);
	kf_onchange_stats(oc, &st);
	KT_EQ_INT(st.failed, 1);
	kf_onchange_free(oc);
}

KT_TEST(onchange_failure_is_logged_with_program_and_path)
{
	struct kf_onchange *oc = kf_onchange_new("/bin/false", &quick);
	char log[256], text[4096];
	int saved = dup(2), fd;

	(void)snprintf(log, sizeof(log), "%s/log", kt_tmpdir());
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	KT_CHECK(oc != NULL && fd >= 0);
	if (!oc || fd < 0)
		return;
	dup2(fd, 2);
	kf_onchange_run(oc, "/mnt/k/aws/us-west-2/db", time(NULL));
	kf_onchange_drain(oc, 5000);
	dup2(saved, 2);
	close(saved);
	close(fd);
	kf_onchange_free(oc);
	slurp(log, text, sizeof(text));
	KT_CHECK(strstr(text, "false") != NULL);
	KT_CHECK(strstr(text, "/mnt/k/aws/us-west-2/db") != NULL);
	KT_CHECK(strstr(text, "exit status 1") != NULL);
}

KT_TEST(onchange_child_gets_a_clean_environment_and_argv)
{
	char script[512], out[512], text[8192], cmd[1200];
	struct kf_onchange *oc;

	(void)snprintf(out, sizeof(out), "%s/out", kt_tmpdir());
	(void)snprintf(text, sizeof(text),
		       "#!/bin/sh\n{ echo \"argv=$*\"; env; } > %s\n", out);
	put_file("record", text, script, sizeof(script));
	(void)snprintf(cmd, sizeof(cmd), "/bin/sh %s one  two", script);
	setenv("AWS_SECRET_ACCESS_KEY", "canary-not-for-children", 1);
	oc = kf_onchange_new(cmd, &quick);
	KT_CHECK(oc != NULL);
	if (!oc)
		return;
	kf_onchange_run(oc, "/mnt/k/local/r/k/v", 1765029787);
	KT_EQ_INT(kf_onchange_drain(oc, 5000), 0);
	kf_onchange_free(oc);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	slurp(out, text, sizeof(text));
	KT_CHECK(strstr(text, "argv=one two /mnt/k/local/r/k/v\n") != NULL);
	KT_CHECK(strstr(text, "KEYFS_PATH=/mnt/k/local/r/k/v\n") != NULL);
	KT_CHECK(strstr(text, "KEYFS_EVENT_TIME=2025-12-06T14:03:07Z\n") !=
		 NULL);
	KT_CHECK(strstr(text, "PATH=/usr/local/sbin:") != NULL);
	KT_CHECK(strstr(text, "AWS_") == NULL);
	KT_CHECK(strstr(text, "canary") == NULL);
	KT_CHECK(strstr(text, "HOME=") == NULL);
}

KT_TEST(onchange_child_inherits_no_descriptor_above_2)
{
	struct kf_onchange *oc = kf_onchange_new("/bin/ls", &quick);
	char out[256], text[4096];
	int saved = dup(1), fd, leak = open("/dev/null", O_RDONLY);

	(void)snprintf(out, sizeof(out), "%s/fds", kt_tmpdir());
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	KT_CHECK(oc != NULL && fd >= 0 && leak >= 0);
	if (!oc || fd < 0 || leak < 0)
		return;
	/* fd 77, open without close-on-exec, as /dev/fuse's is. */
	dup2(leak, 77);
	fflush(stdout);
	dup2(fd, 1); /* ls writes to the test's stdout: the file */
	kf_onchange_run(oc, "/proc/self/fd", time(NULL));
	kf_onchange_drain(oc, 5000);
	dup2(saved, 1);
	close(saved);
	close(fd);
	close(77);
	close(leak);
	kf_onchange_free(oc);
	slurp(out, text, sizeof(text));
	KT_CHECK(strstr(text, "0\n1\n2\n") == text);
	KT_CHECK(strstr(text, "77") == NULL);
}
