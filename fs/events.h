/*
 * The change log at MOUNT/.keyfs/events: one line "TIME PATH\n" per value
 * that changed (ISO 8601 UTC, the absolute path through the mount), the
 * last KF_EVENTS_KEEP lines kept in memory.  The file only grows: its
 * size counts every byte ever appended, and the bytes of lines dropped
 * from memory read as '\n'.  Never holds a value.
 */
#ifndef KF_EVENTS_H
#define KF_EVENTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KF_EVENTS_KEEP 1000
#define KF_EVENTS_DIR "/.keyfs"
#define KF_EVENTS_FILE "/.keyfs/events"

#include <fuse.h>
#include <sys/stat.h>

/* What a FUSE path under the mount is, as far as .keyfs goes. */
enum kf_events_node {
	KF_EVENTS_NONE = 0,	/* not under /.keyfs: routed to a provider */
	KF_EVENTS_NODE_DIR,	/* /.keyfs */
	KF_EVENTS_NODE_FILE,	/* /.keyfs/events */
	KF_EVENTS_NODE_MISSING, /* any other name under /.keyfs */
};

/* An open of the events file: how far it has read (for poll). */
struct kf_events_fh {
	uint64_t read_to;		  /* protected by kf_events.lock */
	struct fuse_pollhandle *ph;	  /* protected by kf_events.lock */
	struct kf_events_fh *prev, *next; /* protected by kf_events.lock */
};

struct kf_events {
	pthread_mutex_t lock;
	char *line[KF_EVENTS_KEEP]; /* protected by lock: a ring */
	size_t first, n;	    /* protected by lock */
	uint64_t kept_from; /* protected by lock: offset of line[first] */
	uint64_t size;	    /* protected by lock: bytes ever appended */
	time_t mtime;	    /* protected by lock: last append */
	struct kf_events_fh *open; /* protected by lock: open handles */
	struct fuse *fuse;	   /* for invalidation and poll; may be NULL */
};

/* Which .keyfs node path is (pure string work; NULL is none). */
enum kf_events_node kf_events_node(const char *path);

void kf_events_init(struct kf_events *ev);
/* Free the lines and any poll handle still held. */
void kf_events_release(struct kf_events *ev);

/*
 * Append "TIME PATH\n" (t in UTC; path the absolute path through the
 * mount, which must hold no control character), drop the oldest line past
 * KF_EVENTS_KEEP, then, with no lock held, drop the kernel's attributes
 * and pages of the file and wake every poll() waiting on it.  0, or -1
 * when out of memory (nothing appended).
 */
int kf_events_append(struct kf_events *ev, time_t t, const char *path);

/* The file's size and last change time. */
void kf_events_stat(struct kf_events *ev, uint64_t *size, time_t *mtime);

/*
 * Copy up to n bytes from offset off into buf; returns the count (0 at
 * the end).  Bytes of dropped lines read as '\n'.  fh (may be NULL: a
 * read by path) remembers how far it read.
 */
size_t kf_events_read(struct kf_events *ev, struct kf_events_fh *fh, char *buf,
		      size_t n, uint64_t off);

/* A new handle (NULL when out of memory) and its release. */
struct kf_events_fh *kf_events_open(struct kf_events *ev);
void kf_events_close(struct kf_events *ev, struct kf_events_fh *fh);

/*
 * poll(): 1 when bytes exist past what fh read, else 0 and ph is kept to
 * be notified by the next append.  Takes ownership of ph (may be NULL).
 */
int kf_events_poll(struct kf_events *ev, struct kf_events_fh *fh,
		   struct fuse_pollhandle *ph);

/*
 * The FUSE side of /.keyfs, for the handlers in ops.c and xattr.c.  Each
 * returns 1 when path is not under /.keyfs (the handler goes on), else
 * its answer (0 or -errno; a count for reads).
 */
struct kf_fs;
int kf_events_fs_getattr(struct kf_fs *fs, const char *path, struct stat *st);
int kf_events_fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler);
int kf_events_fs_open(struct kf_fs *fs, const char *path,
		      struct fuse_file_info *fi);
int kf_events_fs_read(struct kf_fs *fs, const char *path, char *buf,
		      size_t size, off_t off, struct fuse_file_info *fi);
int kf_events_fs_release(struct kf_fs *fs, const char *path,
			 struct fuse_file_info *fi);
/* Any change under /.keyfs: EROFS on a read-only mount, else EPERM. */
int kf_events_fs_refuse(const struct kf_fs *fs, const char *path);

/* The .poll handler: POLLIN on the events file when it has bytes past
 * what this open read; every other file is always ready. */
int kf_events_fs_poll(const char *path, struct fuse_file_info *fi,
		      struct fuse_pollhandle *ph, unsigned *reventsp);

#endif
