/*
 * The local/ value file formats.  KFL1 (written by keyfs before values
 * had versions): "KFL1" | key version (u32 big endian) | IV (12) |
 * ciphertext | tag (16).  KFL2 is the same size with the value's version
 * number as the first 4 bytes of the IV: "KFL2" | key version | number
 * (u32) | 8 random bytes | ciphertext | tag.  Both are AES-256-GCM with
 * the associated data header + "keyfs-local-v1:" + path, so a file moved
 * to another name, copied to another version number or edited fails to
 * open; a KFL1 file is version 1.  Under one data key a GCM nonce repeats
 * only if two values of the same number draw the same 64 random bits.
 * Pure functions: no I/O, no logs, never a plaintext outside the
 * caller's buffers.
 */
#ifndef KF_LOCAL_VALUE_H
#define KF_LOCAL_VALUE_H

#include "core/crypto.h"
#include "core/err.h"
#include "core/secret.h"

#include <stddef.h>
#include <stdint.h>

#define KF_LOCAL_MAX_VALUE 65536
#define KF_LOCAL_HDR_LEN 20 /* magic 4 + key version 4 + IV 12 */
#define KF_LOCAL_OVERHEAD (KF_LOCAL_HDR_LEN + KF_GCM_TAG)
/* The largest file of a value: what a read of one may accept. */
#define KF_LOCAL_FILE_MAX (KF_LOCAL_MAX_VALUE + KF_LOCAL_OVERHEAD)

/* A value file's header. */
struct kf_local_hdr {
	uint32_t keyver; /* the data key's version */
	uint32_t number; /* the value's version number (1 for KFL1) */
};

/*
 * The header in the first n bytes of a value file (at least 12 bytes for
 * the number, 8 for the key version alone: then h->number is 0 for a
 * KFL2 file).  0, or -1 when they do not start with a magic.  No err:
 * the caller says what it was reading.
 */
int kf_local_value_header(const unsigned char *p, size_t n,
			  struct kf_local_hdr *h);

/* The key version in the first n bytes (n >= 8); 0 or -1 as above. */
int kf_local_value_peek(const unsigned char *p, size_t n, uint32_t *ver);

/*
 * The key version of a whole value file (n bytes at blob) that path
 * names.  -1 with KF_E_INTEGRITY when it is not a value file or names
 * key version 0 or value version 0.
 */
int kf_local_value_version(const unsigned char *blob, size_t n,
			   const char *path, uint32_t *ver, struct kf_err *err);

/*
 * Seal n bytes of value for path under data key `key` of version ver
 * into blob, which has room for n + KF_LOCAL_OVERHEAD bytes (fresh random
 * IV bytes each call): a KFL2 file of version number,
 * or a KFL1 file when number is 0 (the format older keyfs wrote).  0, or
 * -1 with err (KF_E_INVALID when path is too long).  Borrows everything;
 * blob holds ciphertext only.
 */
int kf_local_value_seal(const unsigned char key[32], uint32_t ver,
			uint32_t number, const char *path, const void *value,
			size_t n, unsigned char *blob, struct kf_err *err);

/*
 * Open the value file blob (n bytes, either format) as path's value
 * under `key` (the data key of the version in its header) into a new
 * kf_secret in *out, which the caller frees; *out is NULL on failure.
 * KF_E_INTEGRITY when it is not a value file, was bound to another path
 * or was tampered with; KF_E_NOMEM.
 */
int kf_local_value_open(const unsigned char key[32], const char *path,
			const unsigned char *blob, size_t n,
			struct kf_secret **out, struct kf_err *err);

#endif
