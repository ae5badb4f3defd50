/*
 * The local/ value file formats (see value.h): sealing a value for its
 * path (and version number) and opening it again.  No file I/O and no
 * logging here; a plaintext only ever lands in the kf_secret handed to
 * the caller.
 */
#include "local/value.h"

#include <limits.h>
#include <string.h>

#define MAGIC1 "KFL1"
#define MAGIC2 "KFL2"
#define AAD_TAG "keyfs-local-v1:"
#define AAD_TAG_LEN (sizeof(AAD_TAG) - 1)
#define AAD_MAX (KF_LOCAL_HDR2_LEN + AAD_TAG_LEN + PATH_MAX)

/* AAD = the whole header (hlen bytes), then AAD_TAG and the path. */
static int make_aad(unsigned char aad[AAD_MAX], size_t *aadlen,
		    const unsigned char *hdr, size_t hlen, const char *path,
		    struct kf_err *err)
{
	size_t n = strlen(path);

	if (n >= PATH_MAX)
		return kf_fail(err, KF_E_INVALID, "path too long");
	memcpy(aad, hdr, hlen);
	memcpy(aad + hlen, AAD_TAG, AAD_TAG_LEN);
	memcpy(aad + hlen + AAD_TAG_LEN, path, n);
	*aadlen = hlen + AAD_TAG_LEN + n;
	return 0;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

int kf_local_value_header(const unsigned char *p, size_t n,
			  struct kf_local_hdr *h)
{
	if (n < 8)
		return -1;
	if (memcmp(p, MAGIC1, 4) == 0) {
		h->number = 1;
		h->len = KF_LOCAL_HDR_LEN;
	} else if (memcmp(p, MAGIC2, 4) == 0) {
		h->number = n >= 12 ? get_u32(p + 8) : 0;
		h->len = KF_LOCAL_HDR2_LEN;
	} else {
		return -1;
	}
	h->keyver = get_u32(p + 4);
	return 0;
}

int kf_local_value_peek(const unsigned char *p, size_t n, uint32_t *ver)
{
	struct kf_local_hdr h;

	if (kf_local_value_header(p, n, &h) < 0)
		return -1;
	*ver = h.keyver;
	return 0;
}

size_t kf_local_value_overhead(uint32_t number)
{
	return number ? KF_LOCAL_OVERHEAD2 : KF_LOCAL_OVERHEAD;
}

int kf_local_value_version(const unsigned char *blob, size_t n,
			   const char *path, uint32_t *ver, struct kf_err *err)
{
	struct kf_local_hdr h;

	if (kf_local_value_header(blob, n, &h) < 0 || n < h.len + KF_GCM_TAG)
		return kf_fail(err, KF_E_INTEGRITY,
			       "local/%s is not a keyfs value file (damaged?)",
			       path);
	if (h.keyver < 1)
		return kf_fail(err, KF_E_INTEGRITY, "local/%s: bad key version",
			       path);
	if (h.number < 1)
		return kf_fail(err, KF_E_INTEGRITY,
			       "local/%s: bad version number", path);
	*ver = h.keyver;
	return 0;
}

int kf_local_value_seal(const unsigned char key[32], uint32_t ver,
			uint32_t number, const char *path, const void *value,
			size_t n, unsigned char *blob, struct kf_err *err)
{
	size_t hlen = number ? KF_LOCAL_HDR2_LEN : KF_LOCAL_HDR_LEN;
	unsigned char aad[AAD_MAX], *iv = blob + hlen - KF_GCM_IV;
	size_t aadlen;

	memcpy(blob, number ? MAGIC2 : MAGIC1, 4);
	put_u32(blob + 4, ver);
	if (number)
		put_u32(blob + 8, number);
	if (kf_rand_bytes(iv, KF_GCM_IV, err) < 0 ||
	    make_aad(aad, &aadlen, blob, hlen, path, err) < 0)
		return -1;
	return kf_gcm_encrypt(key, iv, aad, aadlen, value, n, blob + hlen,
			      blob + hlen + n, err);
}

int kf_local_value_open(const unsigned char key[32], const char *path,
			const unsigned char *blob, size_t n,
			struct kf_secret **out, struct kf_err *err)
{
	unsigned char aad[AAD_MAX];
	struct kf_secret *s = NULL;
	struct kf_local_hdr h;
	size_t aadlen, len;
	uint32_t ver;
	int rc = -1;

	*out = NULL;
	if (kf_local_value_version(blob, n, path, &ver, err) < 0 ||
	    kf_local_value_header(blob, n, &h) < 0 ||
	    make_aad(aad, &aadlen, blob, h.len, path, err) < 0)
		goto out;
	len = n - h.len - KF_GCM_TAG;
	s = kf_secret_new(len);
	if (!s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_gcm_decrypt(key, blob + h.len - KF_GCM_IV, aad, aadlen,
			   blob + h.len, len, blob + h.len + len, s->data,
			   err) < 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"local/%s does not decrypt: the ciphertext is bound to "
			"another path (moved or copied) or was tampered with",
			path);
		goto out;
	}
	s->len = len;
	*out = s;
	s = NULL;
	rc = 0;
out:
	kf_secret_free(s);
	return rc;
}
