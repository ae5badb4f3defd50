/*
 * OpenSSL behind small pure functions.  Never logs; wipes key copies and
 * clears OpenSSL's error queue so no key text lingers there.
 */
#include "core/crypto.h"
#include "core/secret.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *mem_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void *mem_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return kf_wipe_usable_realloc(p, n);
}

static void mem_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	kf_wipe_usable_free(p);
}

int kf_crypto_mem_init(void)
{
	return CRYPTO_set_mem_functions(mem_malloc, mem_realloc, mem_free) ? 0 :
									     -1;
}

void kf_crypto_tls_harden(void *ssl_ctx)
{
	SSL_CTX *ctx = ssl_ctx;

	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

int kf_rand_bytes(void *p, size_t n, struct kf_err *err)
{
	if (n > (size_t)0x7fffffff || RAND_bytes(p, (int)n) != 1) {
		ERR_clear_error();
		return kf_fail(err, KF_E_IO, "random number generator failed");
	}
	return 0;
}

int kf_uuid4(char out[37], struct kf_err *err)
{
	unsigned char r[16];
	char hex[33];

	if (kf_rand_bytes(r, sizeof(r), err) < 0)
		return -1;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	kf_hex(r, sizeof(r), hex);
	memcpy(out, hex, 8);
	out[8] = '-';
	memcpy(out + 9, hex + 8, 4);
	out[13] = '-';
	memcpy(out + 14, hex + 12, 4);
	out[18] = '-';
	memcpy(out + 19, hex + 16, 4);
	out[23] = '-';
	memcpy(out + 24, hex + 20, 12);
	out[36] = '\0';
	return 0;
}

int kf_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void kf_hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void kf_sha256(const void *p, size_t n, unsigned char out[32])
{
	SHA256(p, n, out);
}

void kf_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];

	SHA256(p, n, md);
	kf_hex(md, sizeof(md), out);
}

void kf_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
		    unsigned char out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len);
}

static int gcm(int enc, const unsigned char *key, const unsigned char *iv,
	       const void *aad, size_t aadlen, const unsigned char *in,
	       size_t n, unsigned char *out, unsigned char *tag,
	       struct kf_err *err)
{
	EVP_CIPHER_CTX *c = NULL;
	int len, rc = -1;
	size_t done = 0;

	c = EVP_CIPHER_CTX_new();
	if (!c) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) !=
		    1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KF_GCM_IV, NULL) !=
		    1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1) {
		kf_fail(err, KF_E_IO, "cipher setup failed");
		goto out;
	}
	if (aadlen && EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) != 1) {
		kf_fail(err, KF_E_IO, "cipher AAD failed");
		goto out;
	}
	while (done < n) {
		size_t chunk = n - done > 1 << 20 ? 1 << 20 : n - done;

		if (EVP_CipherUpdate(c, out + done, &len, in + done,
				     (int)chunk) != 1) {
			kf_fail(err, KF_E_IO, "cipher update failed");
			goto out;
		}
		done += (size_t)len;
	}
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KF_GCM_TAG,
					tag) != 1) {
		kf_fail(err, KF_E_IO, "cipher tag setup failed");
		goto out;
	}
	if (EVP_CipherFinal_ex(c, out + done, &len) != 1) {
		if (!enc)
			explicit_bzero(out, n);
		kf_fail(err, enc ? KF_E_IO : KF_E_INTEGRITY,
			enc ? "encryption failed" :
			      "authentication tag mismatch");
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KF_GCM_TAG,
				       tag) != 1) {
		kf_fail(err, KF_E_IO, "cipher tag read failed");
		goto out;
	}
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c); /* wipes the key schedule */
	ERR_clear_error();
	return rc;
}

int kf_gcm_encrypt(const unsigned char key[KF_GCM_KEY],
		   const unsigned char iv[KF_GCM_IV], const void *aad,
		   size_t aadlen, const void *pt, size_t n, unsigned char *ct,
		   unsigned char tag[KF_GCM_TAG], struct kf_err *err)
{
	return gcm(1, key, iv, aad, aadlen, pt, n, ct, tag, err);
}

int kf_gcm_decrypt(const unsigned char key[KF_GCM_KEY],
		   const unsigned char iv[KF_GCM_IV], const void *aad,
		   size_t aadlen, const unsigned char *ct, size_t n,
		   const unsigned char tag[KF_GCM_TAG], unsigned char *pt,
		   struct kf_err *err)
{
	unsigned char t[KF_GCM_TAG];

	memcpy(t, tag, sizeof(t));
	return gcm(0, key, iv, aad, aadlen, ct, n, pt, t, err);
}

int kf_rsa_sha256_sign(const char *pem, size_t pemlen, const void *msg,
		       size_t mlen, struct kf_buf *sig, struct kf_err *err)
{
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *out = NULL;
	size_t outlen = 0;
	int rc = -1;

	if (pemlen > 0x7fffffff) {
		kf_fail(err, KF_E_INVALID, "private key too large");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)pemlen);
	if (bio)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!key) {
		kf_fail(err, KF_E_INVALID,
			"private key is not a valid PEM key");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &outlen, msg, mlen) != 1) {
		kf_fail(err, KF_E_INVALID, "cannot sign with this private key");
		goto out;
	}
	out = OPENSSL_malloc(outlen);
	if (!out || EVP_DigestSign(md, out, &outlen, msg, mlen) != 1) {
		kf_fail(err, KF_E_IO, "signing failed");
		goto out;
	}
	if (kf_buf_add(sig, out, outlen) < 0) {
		kf_fail(err, KF_E_NOMEM, "signature too large");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(out);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key); /* frees (and clears) the private key */
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

static int b64enc(const unsigned char *p, size_t n, struct kf_buf *out,
		  const char *alpha, int pad)
{
	size_t i;
	char q[4];

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];
		q[0] = alpha[v >> 18];
		q[1] = alpha[(v >> 12) & 63];
		q[2] = alpha[(v >> 6) & 63];
		q[3] = alpha[v & 63];
		if (kf_buf_add(out, q, 4) < 0)
			return -1;
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t k = 2;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		q[0] = alpha[v >> 18];
		q[1] = alpha[(v >> 12) & 63];
		q[2] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
		q[3] = '=';
		if (i + 1 < n)
			k = 3;
		if (kf_buf_add(out, q, pad ? 4 : k) < 0)
			return -1;
	}
	return 0;
}

int kf_base64_encode(const void *p, size_t n, struct kf_buf *out)
{
	return b64enc(
		p, n, out,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
		1);
}

int kf_base64url_encode(const void *p, size_t n, struct kf_buf *out)
{
	return b64enc(
		p, n, out,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		0);
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int kf_base64_decode(const char *s, size_t n, struct kf_buf *out)
{
	size_t start = out->len, i, data = n;
	uint32_t acc = 0;
	int bits = 0;

	/* Up to two '=' at the very end; none elsewhere. */
	while (data > 0 && s[data - 1] == '=' && n - data < 2)
		data--;
	if (data % 4 == 1 || (data != n && n % 4 != 0))
		goto bad;
	for (i = 0; i < data; i++) {
		int v = b64val((unsigned char)s[i]);
		unsigned char byte;

		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			byte = (unsigned char)(acc >> bits);
			if (kf_buf_add(out, &byte, 1) < 0)
				goto bad;
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (bits && (acc & ((1u << bits) - 1)))
		goto bad;
	return 0;
bad:
	if (out->data) {
		if (out->sensitive)
			explicit_bzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return -1;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t kf_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
