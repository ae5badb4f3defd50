/*
 * Bounded buffers.  Appending past the maximum fails and leaves the buffer
 * as it was.  Sensitive buffers are never realloc'ed and always wiped.
 */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kf_buf_init(struct kf_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->sensitive = 0;
}

void kf_buf_init_sensitive(struct kf_buf *b, size_t max)
{
	kf_buf_init(b, max);
	b->sensitive = 1;
}

void kf_buf_release(struct kf_buf *b)
{
	if (!b)
		return;
	if (b->data && b->sensitive)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void kf_buf_reset(struct kf_buf *b)
{
	if (!b->data)
		return;
	if (b->sensitive)
		explicit_bzero(b->data, b->cap);
	b->len = 0;
	b->data[0] = '\0';
}

/* Make room for `need` more bytes plus the NUL. */
static int grow(struct kf_buf *b, size_t need)
{
	size_t want, ncap;
	char *n;

	if (need > b->max - b->len)
		return -1;
	want = b->len + need + 1;
	if (want <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < want)
		ncap = ncap > ((size_t)-1) / 2 ? want : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if (ncap < want)
		return -1;
	if (b->sensitive) {
		n = malloc(ncap);
		if (!n)
			return -1;
		if (b->data) {
			memcpy(n, b->data, b->len + 1);
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
	} else {
		n = realloc(b->data, ncap);
		if (!n)
			return -1;
	}
	if (!b->data)
		n[0] = '\0';
	b->data = n;
	b->cap = ncap;
	return 0;
}

int kf_buf_add(struct kf_buf *b, const void *p, size_t n)
{
	if (grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kf_buf_adds(struct kf_buf *b, const char *s)
{
	return kf_buf_add(b, s, strlen(s));
}

int kf_buf_vaddf(struct kf_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || grow(b, (size_t)n) < 0)
		return -1;
	if (vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap) != n)
		return -1;
	b->len += (size_t)n;
	return 0;
}

int kf_buf_addf(struct kf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = kf_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *kf_buf_str(const struct kf_buf *b)
{
	return b->data ? b->data : "";
}

char *kf_buf_detach(struct kf_buf *b, size_t *len)
{
	char *d = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return d;
}

static int pct_keep(unsigned char c, const char *keep)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~')
		return 1;
	return c && keep && strchr(keep, c) != NULL;
}

int kf_buf_add_pct(struct kf_buf *b, const void *p, size_t n, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		char e[3] = { '%', hex[s[i] >> 4], hex[s[i] & 15] };

		if (pct_keep(s[i], keep)) {
			if (kf_buf_add(b, &s[i], 1) < 0)
				return -1;
		} else if (kf_buf_add(b, e, 3) < 0) {
			return -1;
		}
	}
	return 0;
}
