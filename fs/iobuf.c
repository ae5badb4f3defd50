/*
 * Value buffers between libfuse and keyfs: replies that leave no copy
 * behind and written bytes wiped from libfuse's buffers (iobuf.h).
 */
#include "iobuf.h"

#include "core/secret.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Sanitizers bring their own allocator: no glibc size word to read. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KF_FOREIGN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define KF_FOREIGN_MALLOC 1
#endif
#endif

int kf_iobuf_init(void)
{
#ifdef KF_FOREIGN_MALLOC
	return 0; /* the sanitizer's allocator: no threshold to fix */
#else
	/* Setting it also stops glibc from raising the threshold after a
	 * mapped block is freed, which would move replies onto the heap. */
	return mallopt(M_MMAP_THRESHOLD, (int)KF_IOBUF_MMAP_MIN) == 1 ? 0 : -1;
#endif
}

/*
 * Did glibc serve p with a mapping of its own (IS_MMAPPED, bit 1 of the
 * size word in front of the block)?  The mmap threshold only applies
 * when no free chunk and not the arena's top can serve a request, so a
 * large block can still come from a heap; its free() would then leave
 * the bytes in place.  Under a sanitizer's allocator this cannot be
 * told, and is taken as yes (the memory guarantees are the plain
 * build's).
 */
static int block_is_mapped(const void *p)
{
#ifdef KF_FOREIGN_MALLOC
	(void)p;
	return 1;
#else
	uintptr_t a = (uintptr_t)p - sizeof(size_t);
	size_t head;

	/* The size word is glibc's, outside the block as the compiler sees
	 * it: launder the address so it does not judge the read. */
	__asm__("" : "+r"(a));
	memcpy(&head, (const void *)a, sizeof(head));
	return (head & 2) != 0;
#endif
}

/* HEAP_MAX_SIZE of a 64-bit glibc: no thread arena holds a larger free
 * chunk, so a request past it is always mapped. */
#define TRY_MAX (128u << 20)

/*
 * A malloc block of at least size bytes that free() will unmap: blocks
 * served from a heap are held (so the next try cannot get them again)
 * and the request doubled, then those are freed (they held nothing).
 */
static char *mapped_block(size_t size)
{
	size_t alloc = size < KF_IOBUF_MMAP_MIN ? KF_IOBUF_MMAP_MIN : size;
	char *held[8];
	size_t nheld = 0;
	char *mem;

	for (;;) {
		mem = malloc(alloc);
		if (!mem || block_is_mapped(mem))
			break;
		if (nheld == sizeof(held) / sizeof(held[0]) ||
		    alloc > TRY_MAX / 2) {
			free(mem);
			mem = NULL;
			break;
		}
		held[nheld++] = mem;
		alloc *= 2;
	}
	while (nheld)
		free(held[--nheld]);
	return mem;
}

int kf_iobuf_reply(struct fuse_bufvec **bufp, size_t size,
		   kf_iobuf_fill_fn fill, void *ctx)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	char *mem = bv ? mapped_block(size) : NULL;
	int n;

	if (!mem) {
		free(bv);
		return -ENOMEM;
	}
	/* Not locked: mlock2(MLOCK_ONFAULT) of the touched pages cost 7 to
	 * 15 us a read here, for a copy that lives only until the reply
	 * is written (fs/iobuf.h). */
	n = fill(mem, size, ctx);
	if (n < 0) {
		free(mem); /* a failed read copies nothing */
		free(bv);
		return n;
	}
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

int kf_iobuf_take(struct fuse_bufvec *src, kf_iobuf_put_fn put, void *ctx)
{
	size_t size = fuse_buf_size(src);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	struct kf_secret *s;
	ssize_t got;
	int rc;

	if (src->count == 1 && !(src->buf[0].flags & FUSE_BUF_IS_FD)) {
		rc = put(src->buf[0].mem, src->buf[0].size, ctx);
		explicit_bzero(src->buf[0].mem, src->buf[0].size);
		return rc;
	}
	s = kf_secret_new(size);
	if (!s)
		return -ENOMEM;
	dst.buf[0].mem = s->data;
	got = fuse_buf_copy(&dst, src, 0);
	if (got < 0) {
		rc = (int)got;
	} else {
		s->len = (size_t)got;
		rc = put((const char *)s->data, s->len, ctx);
	}
	kf_secret_free(s);
	for (size_t i = 0; i < src->count; i++)
		if (!(src->buf[i].flags & FUSE_BUF_IS_FD) && src->buf[i].mem)
			explicit_bzero(src->buf[i].mem, src->buf[i].size);
	return rc;
}
