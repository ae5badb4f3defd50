/*
 * Unit tests for fs/mountpoint.c: finding the topmost mount at a path in
 * /proc/self/mountinfo text (escaped names, optional fields, stacking)
 * and refusing a live keyfs mount.
 */
#include "kt.h"

#include "mountpoint.h"

#include <stdio.h>
#include <string.h>

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
