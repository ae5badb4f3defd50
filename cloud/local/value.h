/*
 * The local/ value file format (KFL1): "KFL1" | key version (u32 big
 * endian) | IV (12) | ciphertext | tag (16), AES-256-GCM with the
 * associated data header + "keyfs-local-v1:" + path, so a file moved to
 * another name or edited fails to open.  Pure functions: no I/O, no logs,
 * never a plaintext outside the caller's buffers.
 */
#ifndef KF_LOCAL_VALUE_H
#define KF_LOCAL_VALUE_H

#include "core/crypto.h"
#include "core/err.h"
#include "core/secret.h"

#include <stddef.h>
#include <stdint.h>

#define KF_LOCAL_MAX_VALUE 65536
#define KF_LOCAL_HDR_LEN 20 /* magic 4 + version 4 + IV 12 */
#define KF_LOCAL_OVERHEAD (KF_LOCAL_HDR_LEN + KF_GCM_TAG)

/*
 * The key version in the first n bytes of a value file (n >= 8 is
 * enough).  0, or -1 when they do not start with the magic.  No err: the
 * caller says what it was reading.
 */
int kf_local_value_peek(const unsigned char *p, size_t n, uint32_t *ver);

/*
 * The key version of a whole value file (n bytes at blob) that path
 * names.  -1 with KF_E_INTEGRITY when it is not a value file or names
 * version 0.
 */
int kf_local_value_version(const unsigned char *blob, size_t n,
			   const char *path, uint32_t *ver, struct kf_err *err);

/*
 * Seal n bytes of value for path under data key `key` of version ver
 * into blob, which has room for n + KF_LOCAL_OVERHEAD bytes (a fresh
 * random IV each call).  0, or -1 with err (KF_E_INVALID when path is
 * too long).  Borrows everything; blob holds ciphertext only.
 */
int kf_local_value_seal(const unsigned char key[32], uint32_t ver,
			const char *path, const void *value, size_t n,
			unsigned char *blob, struct kf_err *err);

/*
 * Open the value file blob (n bytes) as path's value under `key` (the
 * data key of the version in its header) into a new kf_secret in *out,
 * which the caller frees; *out is NULL on failure.  KF_E_INTEGRITY when
 * it is not a value file, was bound to another path or was tampered
 * with; KF_E_NOMEM.
 */
int kf_local_value_open(const unsigned char key[32], const char *path,
			const unsigned char *blob, size_t n,
			struct kf_secret **out, struct kf_err *err);

#endif
