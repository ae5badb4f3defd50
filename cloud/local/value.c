/*
 * The local/ value file format (see value.h): sealing a value for its
 * path and opening it again.  No file I/O and no logging here; a
 * plaintext only ever lands in the kf_secret handed to the caller.
 */
#include "local/value.h"

#include <limits.h>
#include <string.h>

#define MAGIC "KFL1"
#define AAD_TAG "keyfs-local-v1:"
#define AAD_TAG_LEN (sizeof(AAD_TAG) - 1)
#define AAD_MAX (KF_LOCAL_HDR_LEN + AAD_TAG_LEN + PATH_MAX)

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

int kf_local_value_peek(const unsigned char *p, size_t n, uint32_t *ver)
{
	if (n < 8 || memcmp(p, MAGIC, 4) != 0)
		return -1;
	*ver = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	       (uint32_t)p[6] << 8 | p[7];
	return 0;
}

int kf_local_value_version(const unsigned char *blob, size_t n,
			   const char *path, uint32_t *ver, struct kf_err *err)
{
	if (n < KF_LOCAL_OVERHEAD || kf_local_value_peek(blob, n, ver) < 0)
		return kf_fail(err, KF_E_INTEGRITY,
			       "local/%s is not a keyfs value file (damaged?)",
			       path);
	if (*ver < 1)
		return kf_fail(err, KF_E_INTEGRITY, "local/%s: bad key version",
			       path);
	return 0;
}

int kf_local_value_seal(const unsigned char key[32], uint32_t ver,
			const char *path, const void *value, size_t n,
			unsigned char *blob, struct kf_err *err)
{
	unsigned char aad[AAD_MAX];
	size_t aadlen;

	memcpy(blob, MAGIC, 4);
	blob[4] = (unsigned char)(ver >> 24);
	blob[5] = (unsigned char)(ver >> 16);
	blob[6] = (unsigned char)(ver >> 8);
	blob[7] = (unsigned char)ver;
	if (kf_rand_bytes(blob + 8, KF_GCM_IV, err) < 0 ||
	    make_aad(aad, &aadlen, blob, path, err) < 0)
		return -1;
	return kf_gcm_encrypt(key, blob + 8, aad, aadlen, value, n,
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
	if (kf_gcm_decrypt(key, blob + 8, aad, aadlen, blob + KF_LOCAL_HDR_LEN,
			   len, blob + KF_LOCAL_HDR_LEN + len, s->data,
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
