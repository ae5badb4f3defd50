/*
 * The change log file .keyfs/events (see events.h): a ring of the last
 * lines, a size that only grows, poll handles woken on append.  The
 * kernel is told about growth with no lock held (a notification may wait
 * on a request that waits on this lock).  Never holds a value.
 */
#include "events.h"

#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kf_events_node kf_events_node(const char *path)
{
	size_t n = strlen(KF_EVENTS_DIR);

	/* NULL: an open file whose name is gone (never .keyfs/events). */
	if (!path || strncmp(path, KF_EVENTS_DIR, n) != 0)
		return KF_EVENTS_NONE;
	if (path[n] == '\0')
		return KF_EVENTS_NODE_DIR;
	if (path[n] != '/')
		return KF_EVENTS_NONE; /* "/.keyfsX": an unknown name */
	if (!strcmp(path, KF_EVENTS_FILE))
		return KF_EVENTS_NODE_FILE;
	return KF_EVENTS_NODE_MISSING;
}

void kf_events_init(struct kf_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	pthread_mutex_init(&ev->lock, NULL);
	ev->mtime = time(NULL);
}

void kf_events_release(struct kf_events *ev)
{
	for (size_t i = 0; i < KF_EVENTS_KEEP; i++) {
		free(ev->line[i]);
		ev->line[i] = NULL;
	}
	for (struct kf_events_fh *h = ev->open; h; h = h->next) {
		if (h->ph)
			fuse_pollhandle_destroy(h->ph);
		h->ph = NULL;
	}
	pthread_mutex_destroy(&ev->lock);
}

/* "2026-12-06T14:03:07Z PATH\n", malloc'd; NULL when out of memory. */
static char *format_line(time_t t, const char *path)
{
	struct tm tm;
	char stamp[32];
	size_t len;
	char *s;

	if (!gmtime_r(&t, &tm) ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	len = strlen(stamp) + strlen(path) + 3;
	s = malloc(len);
	if (s && (size_t)snprintf(s, len, "%s %s\n", stamp, path) >= len) {
		free(s);
		return NULL;
	}
	/* One line per event, whatever a name holds. */
	for (char *c = s ? s + strlen(stamp) + 1 : NULL; c && c[1]; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return s;
}

/* Take every pending poll handle (to be notified with no lock held). */
static size_t take_polls_locked(struct kf_events *ev,
				struct fuse_pollhandle **out, size_t max)
{
	size_t n = 0;

	for (struct kf_events_fh *h = ev->open; h && n < max; h = h->next) {
		if (h->ph)
			out[n++] = h->ph;
		h->ph = NULL;
	}
	return n;
}

int kf_events_append(struct kf_events *ev, time_t t, const char *path)
{
	struct fuse_pollhandle *ph[64];
	char *s = format_line(t, path);
	size_t np, slot;

	if (!s)
		return -1;
	pthread_mutex_lock(&ev->lock);
	if (ev->n == KF_EVENTS_KEEP) {
		ev->kept_from += strlen(ev->line[ev->first]);
		free(ev->line[ev->first]);
		ev->line[ev->first] = NULL;
		ev->first = (ev->first + 1) % KF_EVENTS_KEEP;
		ev->n--;
	}
	slot = (ev->first + ev->n) % KF_EVENTS_KEEP;
	ev->line[slot] = s;
	ev->n++;
	ev->size += strlen(s);
	ev->mtime = time(NULL);
	np = take_polls_locked(ev, ph, sizeof(ph) / sizeof(ph[0]));
	pthread_mutex_unlock(&ev->lock);
	if (ev->fuse)
		(void)fuse_invalidate_path(ev->fuse, KF_EVENTS_FILE);
	for (size_t i = 0; i < np; i++) {
		(void)fuse_notify_poll(ph[i]);
		fuse_pollhandle_destroy(ph[i]);
	}
	return 0;
}

void kf_events_stat(struct kf_events *ev, uint64_t *size, time_t *mtime)
{
	pthread_mutex_lock(&ev->lock);
	*size = ev->size;
	*mtime = ev->mtime;
	pthread_mutex_unlock(&ev->lock);
}

/* Copy the kept lines' bytes that fall in [off, off + n) into buf. */
static void copy_kept_locked(struct kf_events *ev, char *buf, size_t n,
			     uint64_t off)
{
	uint64_t at = ev->kept_from;

	for (size_t i = 0; i < ev->n && at < off + n; i++) {
		const char *s = ev->line[(ev->first + i) % KF_EVENTS_KEEP];
		uint64_t len = strlen(s), from, to;

		if (at + len > off) {
			from = at > off ? at : off;
			to = at + len < off + n ? at + len : off + n;
			memcpy(buf + (from - off), s + (from - at),
			       (size_t)(to - from));
		}
		at += len;
	}
}

size_t kf_events_read(struct kf_events *ev, struct kf_events_fh *fh, char *buf,
		      size_t n, uint64_t off)
{
	pthread_mutex_lock(&ev->lock);
	if (off >= ev->size) {
		n = 0;
	} else {
		if (n > ev->size - off)
			n = (size_t)(ev->size - off);
		memset(buf, '\n', n); /* dropped lines read as blank lines */
		copy_kept_locked(ev, buf, n, off);
	}
	if (fh && off + n > fh->read_to)
		fh->read_to = off + n;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

struct kf_events_fh *kf_events_open(struct kf_events *ev)
{
	struct kf_events_fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return NULL;
	pthread_mutex_lock(&ev->lock);
	fh->next = ev->open;
	if (ev->open)
		ev->open->prev = fh;
	ev->open = fh;
	pthread_mutex_unlock(&ev->lock);
	return fh;
}

void kf_events_close(struct kf_events *ev, struct kf_events_fh *fh)
{
	if (!fh)
		return;
	pthread_mutex_lock(&ev->lock);
	if (fh->prev)
		fh->prev->next = fh->next;
	else
		ev->open = fh->next;
	if (fh->next)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&ev->lock);
	if (fh->ph)
		fuse_pollhandle_destroy(fh->ph);
	free(fh);
}

int kf_events_poll(struct kf_events *ev, struct kf_events_fh *fh,
		   struct fuse_pollhandle *ph)
{
	struct fuse_pollhandle *old = NULL;
	int ready;

	pthread_mutex_lock(&ev->lock);
	ready = ev->size > fh->read_to;
	if (!ready && ph) {
		old = fh->ph;
		fh->ph = ph;
		ph = NULL;
	}
	pthread_mutex_unlock(&ev->lock);
	if (old)
		fuse_pollhandle_destroy(old);
	if (ph)
		fuse_pollhandle_destroy(ph);
	return ready;
}

int kf_events_fs_getattr(struct kf_fs *fs, const char *path, struct stat *st)
{
	enum kf_events_node node = kf_events_node(path);
	uint64_t size;
	time_t mtime;

	if (node == KF_EVENTS_NONE)
		return 1;
	if (node == KF_EVENTS_NODE_MISSING)
		return -ENOENT;
	kf_events_stat(&fs->events, &size, &mtime);
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	if (node == KF_EVENTS_NODE_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_mtime = fs->mount_time;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_mtime = mtime;
	}
	st->st_atime = st->st_ctime = st->st_mtime;
	return 0;
}

int kf_events_fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler)
{
	enum kf_events_node node = kf_events_node(path);

	if (node == KF_EVENTS_NONE)
		return 1;
	if (node != KF_EVENTS_NODE_DIR)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	filler(buf, strrchr(KF_EVENTS_FILE, '/') + 1, NULL, 0, 0);
	return 0;
}

int kf_events_fs_open(struct kf_fs *fs, const char *path,
		      struct fuse_file_info *fi)
{
	enum kf_events_node node = kf_events_node(path);
	struct kf_events_fh *fh;

	if (node == KF_EVENTS_NONE)
		return 1;
	if (node != KF_EVENTS_NODE_FILE)
		return node == KF_EVENTS_NODE_DIR ? -EISDIR : -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return fs->read_only ? -EROFS : -EACCES;
	fh = kf_events_open(&fs->events);
	if (!fh)
		return -ENOMEM;
	/* Every read asks keyfs: the file grows under the page cache. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->nonseekable = 0;
	fi->fh = (uint64_t)(uintptr_t)fh;
	return 0;
}

int kf_events_fs_read(struct kf_fs *fs, const char *path, char *buf,
		      size_t size, off_t off, struct fuse_file_info *fi)
{
	enum kf_events_node node = kf_events_node(path);
	struct kf_events_fh *fh = NULL;

	if (node == KF_EVENTS_NONE)
		return 1;
	if (node != KF_EVENTS_NODE_FILE)
		return -EISDIR;
	if (off < 0)
		return -EINVAL;
	if (fi && fi->fh)
		fh = (struct kf_events_fh *)(uintptr_t)fi->fh;
	if (size > INT32_MAX)
		size = INT32_MAX;
	return (int)kf_events_read(&fs->events, fh, buf, size, (uint64_t)off);
}

int kf_events_fs_release(struct kf_fs *fs, const char *path,
			 struct fuse_file_info *fi)
{
	if (kf_events_node(path) == KF_EVENTS_NONE)
		return 1;
	if (fi && fi->fh)
		kf_events_close(&fs->events,
				(struct kf_events_fh *)(uintptr_t)fi->fh);
	return 0;
}

int kf_events_fs_refuse(const struct kf_fs *fs, const char *path)
{
	if (kf_events_node(path) == KF_EVENTS_NONE)
		return 0;
	return fs->read_only ? -EROFS : -EPERM;
}

int kf_events_fs_poll(const char *path, struct fuse_file_info *fi,
		      struct fuse_pollhandle *ph, unsigned *reventsp)
{
	struct kf_fs *fs = fuse_get_context()->private_data;

	if (kf_events_node(path) != KF_EVENTS_NODE_FILE || !fi || !fi->fh) {
		/* Regular values are always ready, as on a disk. */
		if (ph)
			fuse_pollhandle_destroy(ph);
		*reventsp = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
		return 0;
	}
	*reventsp = kf_events_poll(&fs->events,
				   (struct kf_events_fh *)(uintptr_t)fi->fh,
				   ph) ?
			    POLLIN | POLLRDNORM :
			    0;
	return 0;
}
