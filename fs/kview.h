/*
 * What the kernel may hold for the value files of a writable mount: which
 * version of a value its page cache and attributes describe, and which
 * files have a writer open.  An open for reading may use the page cache
 * only when that version is the one it reads; otherwise the kernel's copy
 * is invalidated first.  Holds fingerprints of values, never a value.
 */
#ifndef KF_KVIEW_H
#define KF_KVIEW_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct kv_ent;

struct kf_kview {
	pthread_mutex_t lock;
	pthread_cond_t idle;	 /* a page-cache reader closed */
	struct kv_ent **buckets; /* protected by lock */
	size_t nbuckets;
	size_t n;	 /* entries, at most KF_KVIEW_MAX */
	uint64_t key[2]; /* fingerprint key, random per mount */
	uint64_t clock;	 /* protected by lock: ages for eviction */
};

/* Entries kept at most; beyond, the least recently used is forgotten
 * (a forgotten file's next open invalidates the kernel's copy). */
#define KF_KVIEW_MAX 16384

/* A file written through the mount is read directly (not through the
 * page cache) until this long after its last commit or writer. */
#define KF_KVIEW_QUIET_MS 1000

int kf_kview_init(struct kf_kview *kv);
void kf_kview_release(struct kf_kview *kv);

/* A keyed 64-bit fingerprint of a value (never shown anywhere). */
uint64_t kf_kview_stamp(const struct kf_kview *kv, const void *p, size_t n);

/*
 * An open for reading of path, whose value has fingerprint stamp and
 * size, asks how it may use the page cache:
 *   KF_KVIEW_DIRECT: not at all (a writer has the file open or wrote it
 *                    within KF_KVIEW_QUIET_MS, or readers of another
 *                    version of the value have it open);
 *   KF_KVIEW_KEEP:   the kernel's pages are of this very value: keep them;
 *   KF_KVIEW_INVAL:  this value becomes the one the kernel holds; the
 *                    caller must drop the kernel's pages and attributes
 *                    of path before the open returns.
 * KEEP and INVAL count the open as a page-cache reader until
 * kf_kview_reader_done; a failed invalidation calls it at once.
 */
enum kf_kview_use {
	KF_KVIEW_DIRECT,
	KF_KVIEW_KEEP,
	KF_KVIEW_INVAL
};
enum kf_kview_use kf_kview_open(struct kf_kview *kv, const char *path,
				uint64_t stamp, size_t size);
void kf_kview_reader_done(struct kf_kview *kv, const char *path);

/*
 * The size every attribute reply for path must carry while page-cache
 * readers have it open (the kernel's size is shared by every open, and
 * their pages are of that version): 1 with *size set, else 0.
 */
int kf_kview_size(struct kf_kview *kv, const char *path, size_t *size);

/* A reply gave the kernel a size for path that may not be the one of
 * the version it holds: forget that version unless readers pin it. */
void kf_kview_forget(struct kf_kview *kv, const char *path);

/* The value of path changed: the version the kernel holds is no longer
 * the value (the caller invalidates the kernel's copy). */
void kf_kview_changed(struct kf_kview *kv, const char *path);

/* A writer opened or released path (writers use direct I/O; while one
 * is open, new readers do too). */
void kf_kview_writer(struct kf_kview *kv, const char *path, int delta);

/*
 * Before a writer's data may grow the kernel's size of path, wait (at
 * most ms) until no page-cache reader has it open: a reader between its
 * size check and its copy would otherwise read zeros past the value.
 * Returns 0 when none is open, -1 after the wait timed out.
 */
int kf_kview_wait_readers(struct kf_kview *kv, const char *path, unsigned ms);

/* Entries held (tests and statistics). */
size_t kf_kview_count(struct kf_kview *kv);

#endif
