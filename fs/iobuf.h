/*
 * The buffers that carry a value between the kernel and keyfs, for the
 * FUSE read_buf and write_buf operations.  libfuse would otherwise hand a
 * read's reply to free() unwiped and leave written bytes in its request
 * buffer until they happen to be overwritten.
 *
 * - A read's reply is a malloc block of at least KF_IOBUF_MMAP_MIN bytes
 *   that glibc served with a mapping of its own (main() fixes the mmap
 *   threshold with mallopt; each block is checked), so the free() libfuse
 *   calls right after writing the reply to /dev/fuse unmaps it.  The copy
 *   lives, unlocked, from the handler's copy until that write: a few
 *   microseconds.  The mapping costs about 5 to 9 us per read that
 *   reaches keyfs.
 * - Written bytes go to the handler from libfuse's request buffer, which
 *   is then wiped, or straight from the splice pipe into locked memory.
 */
#ifndef KF_IOBUF_H
#define KF_IOBUF_H

#include <stddef.h>
#include <sys/types.h>

#include <fuse.h>

/* glibc's default mmap threshold, fixed by main() (no dynamic growth). */
#define KF_IOBUF_MMAP_MIN (128u << 10)

/* Fix the malloc mmap threshold; main() calls it before any thread. */
int kf_iobuf_init(void);

/*
 * A reply of up to size bytes: *bufp gets a one-buffer vector whose
 * memory libfuse will free (and so unmap).  fill copies at most size
 * bytes into its buffer and returns the count or -errno.  Returns 0 with
 * *bufp set, or -errno with *bufp untouched.
 */
typedef int (*kf_iobuf_fill_fn)(char *buf, size_t size, void *ctx);
int kf_iobuf_reply(struct fuse_bufvec **bufp, size_t size,
		   kf_iobuf_fill_fn fill, void *ctx);

/*
 * Hand the bytes of src to put as one contiguous block, then wipe them:
 * memory buffers are wiped in place, file-descriptor buffers (the splice
 * pipe) are read into locked memory, which is freed wiped.  Returns what
 * put returns (bytes taken or -errno).
 */
typedef int (*kf_iobuf_put_fn)(const char *data, size_t n, void *ctx);
int kf_iobuf_take(struct fuse_bufvec *src, kf_iobuf_put_fn put, void *ctx);

#endif
