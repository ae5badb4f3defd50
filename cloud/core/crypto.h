/*
 * The only file that talks to OpenSSL: randomness, SHA-256, HMAC,
 * AES-256-GCM, RSA-SHA256 signatures, base64 and CRC32C.  It never logs,
 * and every stack copy of key material is wiped before returning.
 */
#ifndef KF_CRYPTO_H
#define KF_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define KF_GCM_KEY 32
#define KF_GCM_IV 12
#define KF_GCM_TAG 16

/*
 * OpenSSL frees through a wiping free (every block wiped before it goes
 * back to malloc).  Must run before anything else uses OpenSSL (main()
 * calls it first); -1 when OpenSSL has already allocated.
 */
int kf_crypto_mem_init(void);

/*
 * Harden a TLS context (an SSL_CTX *, given as void * so callers need no
 * OpenSSL header): received plaintext is wiped from OpenSSL's record
 * buffers as soon as it has been copied out (SSL_OP_CLEANSE_PLAINTEXT),
 * and idle connections give their record buffers back
 * (SSL_MODE_RELEASE_BUFFERS).  core/http.c calls it for every
 * connection libcurl makes.
 */
void kf_crypto_tls_harden(void *ssl_ctx);

/* Fill p with n cryptographically random bytes; -1 + err on failure. */
int kf_rand_bytes(void *p, size_t n, struct kf_err *err);

/* A random RFC 4122 version-4 UUID, lower case, 36 chars + NUL. */
int kf_uuid4(char out[37], struct kf_err *err);

void kf_sha256(const void *p, size_t n, unsigned char out[32]);
/* Lower-case hex of SHA-256(p), 64 chars + NUL. */
void kf_sha256_hex(const void *p, size_t n, char out[65]);
void kf_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
		    unsigned char out[32]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
/* n bytes of a and b equal?  Time independent of the contents. */
int kf_memeq(const void *a, const void *b, size_t n);

void kf_hex(const unsigned char *p, size_t n, char *out);

/*
 * AES-256-GCM.  ct must have room for n bytes; tag receives 16 bytes.
 * Decrypt returns -1 with KF_E_INTEGRITY when the tag does not verify
 * (wrong key, wrong AAD, tampered data); pt is then wiped.
 */
int kf_gcm_encrypt(const unsigned char key[KF_GCM_KEY],
		   const unsigned char iv[KF_GCM_IV], const void *aad,
		   size_t aadlen, const void *pt, size_t n, unsigned char *ct,
		   unsigned char tag[KF_GCM_TAG], struct kf_err *err);
int kf_gcm_decrypt(const unsigned char key[KF_GCM_KEY],
		   const unsigned char iv[KF_GCM_IV], const void *aad,
		   size_t aadlen, const unsigned char *ct, size_t n,
		   const unsigned char tag[KF_GCM_TAG], unsigned char *pt,
		   struct kf_err *err);

/*
 * RSASSA-PKCS1-v1_5 with SHA-256 using a PEM private key (PKCS#8 or
 * PKCS#1).  The signature is appended to sig.  Errors never quote the key.
 */
int kf_rsa_sha256_sign(const char *pem, size_t pemlen, const void *msg,
		       size_t mlen, struct kf_buf *sig, struct kf_err *err);

/* Standard base64 (with padding), or base64url without padding. */
int kf_base64_encode(const void *p, size_t n, struct kf_buf *out);
int kf_base64url_encode(const void *p, size_t n, struct kf_buf *out);
/*
 * Decode base64 in either alphabet, padding optional, no whitespace.
 * Appends to out; -1 on malformed input (out unchanged) or overflow.
 */
int kf_base64_decode(const char *s, size_t n, struct kf_buf *out);

/* CRC32C (Castagnoli); start with crc = 0. */
uint32_t kf_crc32c(uint32_t crc, const void *p, size_t n);

#endif
