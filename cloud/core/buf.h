/*
 * Growable byte buffers with a hard maximum (strbuf's shape, curl dynbuf's
 * cap).  Always NUL-terminated.  A sensitive buffer never uses realloc: it
 * allocates, copies, wipes the old block and frees it, and is wiped on
 * release, so an HTTP body holding a secret leaves no copy behind.
 */
#ifndef KF_BUF_H
#define KF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kf_buf {
	char *data; /* NUL-terminated; NULL until first growth */
	size_t len;
	size_t cap;    /* allocated bytes, including the NUL */
	size_t max;    /* len may never exceed this */
	int sensitive; /* wipe on growth and release */
};

/* Initialise an empty buffer allowing at most max bytes.  No allocation. */
void kf_buf_init(struct kf_buf *b, size_t max);
/* As kf_buf_init, for contents that may hold a secret. */
void kf_buf_init_sensitive(struct kf_buf *b, size_t max);

/* Free the contents (wiped first when sensitive); b may be reused after
 * kf_buf_init.  Accepts NULL. */
void kf_buf_release(struct kf_buf *b);

/* Empty the buffer, keeping its memory (wiped when sensitive). */
void kf_buf_reset(struct kf_buf *b);

/*
 * Append n bytes.  Returns 0, or -1 when len + n would pass max or memory
 * runs out; on -1 the buffer is unchanged and still valid.
 */
int kf_buf_add(struct kf_buf *b, const void *p, size_t n);
int kf_buf_adds(struct kf_buf *b, const char *s);
int kf_buf_addf(struct kf_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int kf_buf_vaddf(struct kf_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Append n bytes percent-encoded: RFC 3986 unreserved characters
 * (A-Z a-z 0-9 - . _ ~) and those in keep (may be NULL; e.g. "/" for a
 * URI path) as they are, every other byte as %XX in upper-case hex (what
 * SigV4, form bodies and Google's query strings all require).  0 or -1
 * as kf_buf_add (on -1 the buffer may hold part of the encoding).
 */
int kf_buf_add_pct(struct kf_buf *b, const void *p, size_t n, const char *keep);

/* The contents as a string: never NULL ("" for an empty buffer). */
const char *kf_buf_str(const struct kf_buf *b);

/*
 * Take ownership of the contents (malloc'd, NUL-terminated, may be NULL for
 * an empty buffer) and reset b to empty.  Not for sensitive buffers.
 */
char *kf_buf_detach(struct kf_buf *b, size_t *len);

#endif
