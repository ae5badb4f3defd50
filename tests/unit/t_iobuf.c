/* Unit tests for fs/iobuf.c: written bytes reach the handler once and
 * are wiped from libfuse's buffer; pipe data goes through locked memory. */
#include "kt.h"

#include "iobuf.h"

#include <string.h>
#include <unistd.h>

struct seen {
	char data[64];
	size_t n;
};

static int record(const char *data, size_t n, void *ctx)
{
	struct seen *s = ctx;

	if (n > sizeof(s->data))
		return -1;
	memcpy(s->data, data, n);
	s->n = n;
	return (int)n;
}

KT_TEST(iobuf_take_wipes_memory_source)
{
	char mem[32] = "a written value";
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(15);
	struct seen s = { { 0 }, 0 };
	size_t dirty = 0;

	src.buf[0].mem = mem;
	KT_EQ_INT(kf_iobuf_take(&src, record, &s), 15);
	KT_EQ_INT(s.n, 15);
	KT_EQ_MEM(s.data, "a written value", 15);
	for (size_t i = 0; i < 15; i++)
		dirty += mem[i] != 0;
	KT_EQ_INT(dirty, 0);
}

KT_TEST(iobuf_take_reads_a_pipe)
{
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(9);
	struct seen s = { { 0 }, 0 };
	int fds[2];

	KT_EQ_INT(pipe(fds), 0);
	KT_EQ_INT(write(fds[1], "from pipe", 9), 9);
	src.buf[0].flags = FUSE_BUF_IS_FD;
	src.buf[0].fd = fds[0];
	KT_EQ_INT(kf_iobuf_take(&src, record, &s), 9);
	KT_EQ_MEM(s.data, "from pipe", 9);
	close(fds[0]);
	close(fds[1]);
}
