/*
 * libFuzzer target for the base64 code in cloud/core/crypto.c.  Properties:
 * decode(encode(x)) == x for both alphabets, and when arbitrary text
 * decodes, it is the canonical encoding of what it decoded to (alphabet
 * and padding aside), since the decoder refuses non-zero leftover bits.
 */
#include "core/crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IN 8192

static void roundtrip(const uint8_t *data, size_t size, int url)
{
	struct kf_buf enc, dec;

	kf_buf_init(&enc, 4 * MAX_IN);
	kf_buf_init_sensitive(&dec, MAX_IN);
	if ((url ? kf_base64url_encode(data, size, &enc) :
		   kf_base64_encode(data, size, &enc)) < 0)
		abort();
	if (enc.len != (url ? (size * 4 + 2) / 3 : (size + 2) / 3 * 4))
		abort();
	if (kf_base64_decode(kf_buf_str(&enc), enc.len, &dec) < 0)
		abort();
	if (dec.len != size || (size && memcmp(dec.data, data, size) != 0))
		abort();
	kf_buf_release(&enc);
	kf_buf_release(&dec);
}

/* Strip '=' padding and map the url alphabet to the standard one. */
static size_t normalise(const char *s, size_t n, char *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			continue;
		out[k++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	}
	return k;
}

static void canonical(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct kf_buf dec, enc;
	char *a, *b;
	size_t na, nb;

	kf_buf_init_sensitive(&dec, MAX_IN);
	kf_buf_init(&enc, 4 * MAX_IN);
	/* Something already there must survive a failed decode untouched. */
	if (kf_buf_add(&dec, "xy", 2) < 0)
		abort();
	if (kf_base64_decode(s, size, &dec) < 0) {
		if (dec.len != 2 || memcmp(dec.data, "xy", 3) != 0)
			abort();
		goto out;
	}
	if (kf_base64_encode(dec.data + 2, dec.len - 2, &enc) < 0)
		abort();
	a = malloc(size + 1);
	b = malloc(enc.len + 1);
	if (!a || !b)
		abort();
	na = normalise(s, size, a);
	nb = normalise(enc.data ? enc.data : "", enc.len, b);
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
	free(a);
	free(b);
out:
	kf_buf_release(&dec);
	kf_buf_release(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_IN)
		return 0;
	roundtrip(data, size, 0);
	roundtrip(data, size, 1);
	canonical(data, size);
	return 0;
}
