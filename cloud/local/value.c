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
#define AAD_MAX (KF_LOCAL_HDR_LEN + AAD_TAG_LEN + PATH_MAX)
#define IV_AT 8 /* the IV (in KFL2, starting with the number) */

/* AAD = the 20-byte header, then AAD_TAG and the path. */
static int make_aad(unsigned char aad[AAD_MAX], size_t *aadlen,
		    const unsigned char *hdr, const char *path,
		    struct kf_err *err)
{
	size_t n = strlen(path);

	if (n >= PATH_MAX)
		return kf_fail(err, KF_E_INVALID, "path too long");
	memcpy(aad, hdr, KF_LOCAL_HDR_LEN);
	memcpy(aad + KF_LOCAL_HDR_LEN, AAD_TAG, AAD_TAG_LEN);
	memcpy(aad + KF_LOCAL_HDR_LEN + AAD_TAG_LEN, path, n);
	*aadlen = KF_LOCAL_HDR_LEN + AAD_TAG_LEN + n;
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
	if (memcmp(p, MAGIC1, 4) == 0)
		h->number = 1;
	else if (memcmp(p, MAGIC2, 4) == 0)
		h->number = n >= 12 ? get_u32(p + IV_AT) : 0;
	else
		return -1;
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

int kf_local_value_version(const unsigned char *blob, size_t n,
			   const char *path, uint32_t *ver, struct kf_err *err)
{
	struct kf_local_hdr h;

	if (n < KF_LOCAL_OVERHEAD || kf_local_value_header(blob, n, &h) < 0)
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
	unsigned char aad[AAD_MAX];
	size_t aadlen, fixed = number ? 4 : 0;

	memcpy(blob, number ? MAGIC2 : MAGIC1, 4);
	put_u32(blob + 4, ver);
	if (number)
		put_u32(blob + IV_AT, number);
	if (kf_rand_bytes(blob + IV_AT + fixed, KF_GCM_IV - fixed, err) < 0 ||
	    make_aad(aad, &aadlen, blob, path, err) < 0)
		return -1;
	return kf_gcm_encrypt(key, blob + IV_AT, aad, aadlen, value, n,
			      blob + KF_LOCAL_HDR_LEN,
			      blob + KF_LOCAL_HDR_LEN + n, err);
}

int kf_local_value_open(const unsigned char key[32], const char *path,
			const unsigned char *blob, size_t n,
			struct kf_secret **out, struct kf_err *err)
{
	unsigned char aad[AAD_MAX];
	struct kf_secret *s = NULL;
	size_t aadlen, len;
	uint32_t ver;
	int rc = -1;

	*out = NULL;
	if (kf_local_value_version(blob, n, path, &ver, err) < 0 ||
	    make_aad(aad, &aadlen, blob, path, err) < 0)
		goto out;
	len = n - KF_LOCAL_OVERHEAD;
	s = kf_secret_new(len);
	if (!s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_gcm_decrypt(key, blob + IV_AT, aad, aadlen,
			   blob + KF_LOCAL_HDR_LEN, len,
			   blob + KF_LOCAL_HDR_LEN + len, s->data, err) < 0) {
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
