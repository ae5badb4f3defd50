/*
 * Unit tests for fs/mountpoint.c: finding the topmost mount at a path in
 * /proc/self/mountinfo text (escaped names, optional fields, stacking)
 * and refusing a live keyfs mount; /dev/fd/N read as libfuse reads it and
 * checked to be /dev/fuse.
 */
#include "kt.h"

#include "mountpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char info[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"40 22 0:35 / /mnt/my\\040keys rw,nosuid shared:9 master:2 - "
	"fuse.keyfs keyfs rw,user_id=0\n"
	"41 22 0:36 / /mnt/plain rw - tmpfs tmpfs rw\n"
	"42 41 0:37 / /mnt/plain rw - fuse.keyfs keyfs rw\n"
	"43 22 0:38 / /mnt/other rw - fuse.sshfs host: rw\n";

KT_TEST(mountpoint_type_topmost_and_unescaped)
{
	char type[64];

	KT_EQ_INT(kf_mountpoint_type(info, "/mnt/my keys", type, sizeof(type)),
		  0);
	KT_EQ_STR(type, "fuse.keyfs");
	KT_EQ_INT(kf_mountpoint_type(info, "/mnt/plain", type, sizeof(type)),
		  0);
	KT_EQ_STR(type, "fuse.keyfs"); /* stacked on the tmpfs */
	KT_EQ_INT(kf_mountpoint_type(info, "/mnt/other", type, sizeof(type)),
		  0);
	KT_EQ_STR(type, "fuse.sshfs");
	KT_EQ_INT(kf_mountpoint_type(info, "/mnt", type, sizeof(type)), -1);
	KT_EQ_INT(kf_mountpoint_type(info, "/mnt/my\\040keys", type,
				     sizeof(type)),
		  -1);
}

KT_TEST(mountpoint_live_keyfs_refused_plain_directory_accepted)
{
	char msg[512], line[256];
	const char *dir = kt_tmpdir();

	KT_CHECK(snprintf(line, sizeof(line),
			  "40 22 0:35 / %s rw - fuse.keyfs keyfs rw\n",
			  dir) < (int)sizeof(line));
	KT_EQ_INT(kf_mountpoint_check(dir, line, msg, sizeof(msg)), -1);
	KT_CHECK(strstr(msg, "already a live keyfs mount") != NULL);
	KT_EQ_INT(kf_mountpoint_check(dir, info, msg, sizeof(msg)), 0);
	KT_EQ_INT(kf_mountpoint_check("/nonexistent/x", info, msg, sizeof(msg)),
		  -1);
	KT_CHECK(strstr(msg, "No such file") != NULL);
}

KT_TEST(mountpoint_dev_fd_parsed_strictly)
{
	static const struct {
		const char *s;
		int fd;
	} cases[] = {
		{ "/dev/fd/3", 3 },
		{ "/dev/fd/0", 0 },
		{ "/dev/fd/123456789", 123456789 },
		{ "/dev/fd/", -1 },
		{ "/dev/fd/3/", -1 },
		{ "/dev/fd/+3", -1 },
		{ "/dev/fd/-3", -1 },
		{ "/dev/fd/ 3", -1 },
		{ "/dev/fd/3x", -1 },
		{ "/dev/fd/1234567890", -1 },
		{ "dev/fd/3", -1 },
		{ "/proc/self/fd/3", -1 },
		{ "/mnt/keys", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		KT_EQ_INT(kf_mountpoint_fd(cases[i].s), cases[i].fd);
}

KT_TEST(mountpoint_dev_fd_must_be_open_on_dev_fuse)
{
	char msg[512], mnt[32];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	KT_CHECK(fd >= 0);
	KT_CHECK(snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd) <
		 (int)sizeof(mnt));
	KT_EQ_INT(kf_mountpoint_check(mnt, info, msg, sizeof(msg)), -1);
	KT_CHECK(strstr(msg, "is not /dev/fuse") != NULL);
	close(fd);
	KT_EQ_INT(kf_mountpoint_check(mnt, info, msg, sizeof(msg)), -1);
	KT_CHECK(strstr(msg, "is not open") != NULL);
	/* An unmounted /dev/fuse descriptor passes: the check cannot see
	 * whether the caller mounted it (the kernel answers then). */
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		KT_CHECK(snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd) <
			 (int)sizeof(mnt));
		KT_EQ_INT(kf_mountpoint_check(mnt, NULL, msg, sizeof(msg)), 0);
		close(fd);
	}
}
