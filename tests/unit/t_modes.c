/*
 * Unit tests for fs/modes.c: the STORE/modes file (format, escaping,
 * damage), no-op changes that write nothing, who may give a file away,
 * and entries following unlink, rmdir and rename.
 */
#include "kt.h"

#include "modes.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct stat file_stat(mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | mode;
	st.st_uid = uid;
	st.st_gid = gid;
	return st;
}

static void modes_path(char *out, size_t n)
{
	KT_CHECK(snprintf(out, n, "%s/" KF_MODES_FILE, kt_tmpdir()) < (int)n);
}

KT_TEST(modes_chmod_chown_persist_and_escape_names)
{
	struct kf_modes m, again;
	struct kf_err err = KF_ERR_INIT;
	struct stat cur = file_stat(0600, 1000, 1000), st;
	const char *odd = "/local/r/k/a\nkeyfs: forged \\ line";

	kf_modes_init(&m);
	KT_EQ_INT(kf_modes_load(&m, kt_tmpdir(), &err), 0);
	KT_EQ_INT(kf_modes_chmod(&m, odd, &cur, 0640), 0);
	KT_EQ_INT(kf_modes_chown(&m, "/local/r", &cur, 7, 8, 0), 0);
	kf_modes_release(&m);

	kf_modes_init(&again);
	KT_EQ_INT(kf_modes_load(&again, kt_tmpdir(), &err), 0);
	st = file_stat(0600, 1, 1);
	kf_modes_apply(&again, odd, &st);
	KT_EQ_INT(st.st_mode, S_IFREG | 0640);
	KT_EQ_INT(st.st_uid, 1000);
	st = file_stat(0700, 1, 1);
	kf_modes_apply(&again, "/local/r", &st);
	KT_EQ_INT(st.st_uid, 7);
	KT_EQ_INT(st.st_gid, 8);
	KT_EQ_INT(st.st_mode, S_IFREG | 0600);
	{
		struct kf_buf b;

		kf_buf_init(&b, 1 << 16);
		KT_EQ_INT(kf_modes_format(&again, &b), 0);
		KT_EQ_STR(kf_buf_str(&b),
			  "keyfs-modes 1\n"
			  "0640 1000 1000 /local/r/k/a\\x0akeyfs: forged "
			  "\\x5c line\n"
			  "0600 7 8 /local/r\n");
		kf_buf_release(&b);
	}
	kf_modes_release(&again);
}

KT_TEST(modes_no_op_changes_write_nothing)
{
	struct kf_modes m;
	struct kf_err err = KF_ERR_INIT;
	struct stat cur = file_stat(0600, 1000, 1000);
	char path[PATH_MAX];

	kf_modes_init(&m);
	KT_EQ_INT(kf_modes_load(&m, kt_tmpdir(), &err), 0);
	KT_EQ_INT(kf_modes_chmod(&m, "/a", &cur, 0600), 0);
	KT_EQ_INT(kf_modes_chown(&m, "/a", &cur, 1000, 1000, 1000), 0);
	KT_EQ_INT(kf_modes_chown(&m, "/a", &cur, (uid_t)-1, (gid_t)-1, 5), 0);
	modes_path(path, sizeof(path));
	KT_CHECK(access(path, F_OK) < 0);
	KT_EQ_INT(m.n, 0);
	kf_modes_release(&m);
}

KT_TEST(modes_only_root_gives_a_file_away)
{
	struct kf_modes m;
	struct stat cur = file_stat(0600, 1000, 1000);

	kf_modes_init(&m);
	KT_EQ_INT(kf_modes_chown(&m, "/a", &cur, 2000, (gid_t)-1, 1000),
		  -EPERM);
	KT_EQ_INT(m.n, 0);
	/* The group is the kernel's to check (membership). */
	KT_EQ_INT(kf_modes_chown(&m, "/a", &cur, (uid_t)-1, 5, 1000), 0);
	KT_EQ_INT(kf_modes_chown(&m, "/a", &cur, 2000, 5, 0), 0);
	KT_EQ_INT(m.n, 1);
	kf_modes_release(&m);
}

KT_TEST(modes_follow_unlink_rmdir_and_rename)
{
	struct kf_modes m;
	struct kf_err err = KF_ERR_INIT;
	struct stat cur = file_stat(0600, 0, 0), st;

	kf_modes_init(&m);
	KT_EQ_INT(kf_modes_load(&m, kt_tmpdir(), &err), 0);
	KT_EQ_INT(kf_modes_chmod(&m, "/l/r/k/a", &cur, 0400), 0);
	KT_EQ_INT(kf_modes_chmod(&m, "/l/r/k/ab", &cur, 0440), 0);
	KT_EQ_INT(kf_modes_chmod(&m, "/l/r/k", &cur, 0500), 0);
	KT_EQ_INT(kf_modes_chmod(&m, "/l/r/k2", &cur, 0550), 0);
	kf_modes_rename(&m, "/l/r/k/a", "/l/r/k/ab"); /* over ab */
	st = file_stat(0600, 0, 0);
	kf_modes_apply(&m, "/l/r/k/ab", &st);
	KT_EQ_INT(st.st_mode & 07777, 0400);
	st = file_stat(0600, 0, 0);
	kf_modes_apply(&m, "/l/r/k/a", &st);
	KT_EQ_INT(st.st_mode & 07777, 0600);
	kf_modes_rename(&m, "/l/r/k", "/l/r/k3"); /* a directory */
	st = file_stat(0600, 0, 0);
	kf_modes_apply(&m, "/l/r/k3/ab", &st);
	KT_EQ_INT(st.st_mode & 07777, 0400);
	kf_modes_forget(&m, "/l/r/k3"); /* rmdir: everything under it */
	KT_EQ_INT(m.n, 1);
	st = file_stat(0600, 0, 0);
	kf_modes_apply(&m, "/l/r/k2", &st);
	KT_EQ_INT(st.st_mode & 07777, 0550);
	kf_modes_release(&m);
	/* And the file says the same. */
	kf_modes_init(&m);
	KT_EQ_INT(kf_modes_load(&m, kt_tmpdir(), &err), 0);
	KT_EQ_INT(m.n, 1);
	kf_modes_release(&m);
}

KT_TEST(modes_damaged_file_is_an_integrity_error)
{
	static const char *const bad[] = {
		"",
		"keyfs-modes 2\n",
		"keyfs-modes 1\n0600 1 1 /a", /* no newline */
		"keyfs-modes 1\n0600 1 /a\n",
		"keyfs-modes 1\n10000 1 1 /a\n",
		"keyfs-modes 1\n0600 1 1 relative\n",
		"keyfs-modes 1\n0600 1 1 /a\\x0\n",
		"keyfs-modes 1\n0600 1 1 /a\\x00\n",
		"keyfs-modes 1\n0600 1 1 /a\n0644 1 1 /a\n", /* twice */
		"keyfs-modes 1\n0600 -1 1 /a\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kf_modes m;
		struct kf_err err = KF_ERR_INIT;

		kf_modes_init(&m);
		KT_EQ_INT(kf_modes_parse(&m, bad[i], strlen(bad[i]), &err), -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
		kf_modes_release(&m);
	}
}
