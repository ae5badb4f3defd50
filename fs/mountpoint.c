/*
 * Checks of the mountpoint before mounting.  A live keyfs mount there is
 * refused (a second daemon would share the store and hide the first); a
 * dead FUSE mount (stat answers ENOTCONN) is reported with the command
 * that clears it.  The mount table is /proc/self/mountinfo.  A "/dev/fd/N"
 * mountpoint is a descriptor, checked with fstat, never a path to stat.
 */
#include "mountpoint.h"

#include "core/buf.h"
#include "core/file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define FIELD_MAX PATH_MAX

/* /dev/fuse is the misc device 10:229 on every Linux. */
#define FUSE_MAJOR 10
#define FUSE_MINOR 229

int kf_mountpoint_fd(const char *mnt)
{
	static const char pre[] = "/dev/fd/";
	const char *d;
	long n = 0;

	if (strncmp(mnt, pre, sizeof(pre) - 1) != 0)
		return -1;
	d = mnt + sizeof(pre) - 1;
	if (!*d || strlen(d) > 9)
		return -1;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return -1;
		n = n * 10 + (*d - '0');
	}
	return (int)n;
}

/* "/dev/fd/N": N must be open on /dev/fuse (the caller mounted it). */
static int check_fd(const char *mnt, int fd, char *msg, size_t msglen)
{
	struct stat st;

	if (fcntl(fd, F_GETFD) < 0 || fstat(fd, &st) < 0) {
		(void)snprintf(msg, msglen,
			       "mountpoint %s: descriptor %d is not open: %s",
			       mnt, fd, strerror(errno));
		return -1;
	}
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != FUSE_MAJOR ||
	    minor(st.st_rdev) != FUSE_MINOR) {
		(void)snprintf(msg, msglen,
			       "mountpoint %s: descriptor %d is not /dev/fuse "
			       "(open /dev/fuse, mount it, then pass it)",
			       mnt, fd);
		return -1;
	}
	return 0;
}

/* Copy one space-separated field at *p into out, decoding mountinfo's
 * \ooo escapes; advances *p past it.  -1 when too long. */
static int field(const char **p, const char *end, char *out, size_t n)
{
	const char *s = *p;
	size_t o = 0;

	while (s < end && *s == ' ')
		s++;
	while (s < end && *s != ' ' && *s != '\n') {
		char c = *s++;

		if (c == '\\' && end - s >= 3 && s[0] >= '0' && s[0] <= '3' &&
		    s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 +
				   (s[2] - '0'));
			s += 3;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	*p = s;
	return 0;
}

/* The type of the mount described by one mountinfo line, if it is
 * mounted at abs; 1 when it is, 0 when not. */
static int line_type(const char *s, const char *end, const char *abs,
		     char *type, size_t typelen)
{
	char f[FIELD_MAX];
	int at = 0;

	for (int i = 0; i < 5; i++)
		if (field(&s, end, f, sizeof(f)) < 0)
			return 0;
	if (strcmp(f, abs) != 0)
		return 0;
	/* optional fields up to "-", then the type */
	while (s < end && *s != '\n') {
		if (field(&s, end, f, sizeof(f)) < 0)
			return 0;
		if (!strcmp(f, "-")) {
			at = 1;
			break;
		}
	}
	if (!at || field(&s, end, f, sizeof(f)) < 0 || strlen(f) >= typelen)
		return 0;
	memcpy(type, f, strlen(f) + 1);
	return 1;
}

int kf_mountpoint_type(const char *mountinfo, const char *abs, char *type,
		       size_t typelen)
{
	const char *p = mountinfo, *end = mountinfo + strlen(mountinfo);
	int found = -1;

	/* Later lines are mounted on top of earlier ones. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			nl = end;
		if (line_type(p, nl, abs, type, typelen))
			found = 0;
		p = nl + 1;
	}
	return found;
}

/* mnt as an absolute path, without touching mnt itself (a dead mount
 * answers ENOTCONN): the real parent directory plus the last name. */
static int absolute(const char *mnt, char *out, size_t n)
{
	char copy[PATH_MAX], parent[PATH_MAX];
	const char *base;
	char *slash;
	size_t l = strlen(mnt);
	int w;

	if (l == 0 || l >= sizeof(copy))
		return -1;
	memcpy(copy, mnt, l + 1);
	while (l > 1 && copy[l - 1] == '/')
		copy[--l] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		base = copy;
		if (!realpath(".", parent))
			return -1;
	} else {
		base = slash + 1;
		*slash = '\0';
		if (!realpath(slash == copy ? "/" : copy, parent))
			return -1;
	}
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return realpath(mnt, out) && strlen(out) < n ? 0 : -1;
	w = snprintf(out, n, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "",
		     base);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static int check(const char *mnt, const char *abs, const char *mountinfo,
		 char *msg, size_t msglen)
{
	char type[64] = "";
	struct stat st;
	int live = stat(mnt, &st) == 0, e = errno;
	int keyfs = kf_mountpoint_type(mountinfo, abs, type, sizeof(type)) ==
			    0 &&
		    !strcmp(type, "fuse.keyfs");

	if (!live && e == ENOTCONN) {
		(void)snprintf(msg, msglen,
			       "mountpoint %s: %s: a %s mount whose daemon is "
			       "gone; clear it with: fusermount3 -u %s",
			       mnt, strerror(e), type[0] ? type : "FUSE", mnt);
		return -1; /* truncation keeps the start: harmless */
	}
	if (!live) {
		(void)snprintf(msg, msglen, "mountpoint %s: %s", mnt,
			       strerror(e));
		return -1;
	}
	if (keyfs) {
		(void)snprintf(msg, msglen,
			       "mountpoint %s is already a live keyfs mount; "
			       "unmount it first (fusermount3 -u %s)",
			       mnt, mnt);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(void)snprintf(msg, msglen, "mountpoint %s is not a directory",
			       mnt);
		return -1;
	}
	return 0;
}

int kf_mountpoint_check(const char *mnt, const char *mountinfo, char *msg,
			size_t msglen)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;
	char abs[PATH_MAX];
	int rc, fd = kf_mountpoint_fd(mnt);

	if (fd >= 0)
		return check_fd(mnt, fd, msg, msglen);
	if (absolute(mnt, abs, sizeof(abs)) < 0)
		abs[0] = '\0'; /* the stat below says why */
	if (mountinfo)
		return check(mnt, abs, mountinfo, msg, msglen);
	kf_buf_init(&b, 16u << 20);
	if (kf_file_read("/proc/self/mountinfo", 0, &b, &err) < 0)
		kf_buf_reset(&b); /* no /proc: only the stat is checked */
	rc = check(mnt, abs, kf_buf_str(&b), msg, msglen);
	kf_buf_release(&b);
	return rc;
}
