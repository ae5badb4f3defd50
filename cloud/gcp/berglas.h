/*
 * berglas's Cloud Storage secret format, byte for byte (from berglas's
 * pkg/berglas: berglas.go envelopeEncrypt/envelopeDecrypt and constants,
 * writer.go encryptAndWrite, read.go storageRead, update.go):
 *   body      base64(KMS ciphertext of the DEK) ":" base64(nonce||ct||tag)
 *             standard alphabet with padding; the DEK is 32 random bytes,
 *             AES-256-GCM with a 12-byte random nonce, a 16-byte tag and
 *             no AAD; the DEK is wrapped by KMS encrypt of the crypto key
 *             with the object name as additional authenticated data
 *   metadata  berglas-secret: "1", berglas-kms-key: the crypto key name
 *             without a /cryptoKeyVersions/N suffix
 *   object    Cache-Control "private, no-cache, no-store, no-transform,
 *             max-age=0"; berglas sets no content type, so its uploader
 *             sniffs "text/plain; charset=utf-8" from the base64 text
 *   writes    create: ifGenerationMatch=0; update: ifGenerationMatch and
 *             ifMetagenerationMatch of the object read
 * Values live in kf_secret; the DEK is wiped after use; nothing here logs
 * a value, a DEK or an object body.  Also the escaping between object
 * name components and keyfs path components.
 */
#ifndef KF_GCP_BERGLAS_H
#define KF_GCP_BERGLAS_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"
#include "gcp/gcs.h"
#include "gcp/kms.h"

#define KF_BERGLAS_CACHE_CONTROL \
	"private, no-cache, no-store, no-transform, max-age=0"
#define KF_BERGLAS_CONTENT_TYPE "text/plain; charset=utf-8"
#define KF_BERGLAS_META_SECRET "berglas-secret"
#define KF_BERGLAS_META_KMS_KEY "berglas-kms-key"
#define KF_BERGLAS_DEK 32
#define KF_BERGLAS_NONCE 12
#define KF_BERGLAS_TAG 16
/* Largest value sealed or opened (the body is about 4/3 of it). */
#define KF_BERGLAS_MAX_VALUE (512u * 1024)

/*
 * key without a trailing /cryptoKeyVersions/N (berglas's
 * kmsKeyTrimVersion: everything after the 8th '/' goes) into out.
 * KF_E_INVALID when it does not fit.
 */
int kf_berglas_key_name(const char *key, char *out, size_t outlen,
			struct kf_err *err);

/*
 * Split a body into the wrapped DEK and the sealed data (nonce || ct ||
 * tag), appended to wrapped and sealed.  Like berglas, the body splits at
 * its first ':'; each half must be standard base64 with padding (berglas
 * decodes with Go's StdEncoding); the wrapped DEK must be 1..131072 bytes
 * and the sealed data at least nonce + tag.  KF_E_INTEGRITY otherwise.
 */
int kf_berglas_parse(const char *body, size_t n, struct kf_buf *wrapped,
		     struct kf_buf *sealed, struct kf_err *err);

/*
 * Seal n bytes (0..KF_BERGLAS_MAX_VALUE) for object with crypto key key
 * (a version suffix is allowed, as berglas allows it): a fresh DEK, GCM,
 * KMS encrypt of the DEK with AAD = object.  The body is appended to
 * body (a plain buffer: it holds only ciphertext).
 */
int kf_berglas_seal(struct kf_gcp_kms *k, const char *key, const char *object,
		    const void *value, size_t n, struct kf_buf *body,
		    struct kf_err *err);

/*
 * Open a body read from object: the object's berglas-kms-key (kms_key)
 * must name key (without version; KF_E_INTEGRITY when it is missing or
 * differs, before any KMS call), the body must parse, KMS must unwrap a
 * 32-byte DEK with AAD = object (a renamed or copied object fails here:
 * KF_E_INTEGRITY) and GCM must verify.  *value receives a new kf_secret.
 */
int kf_berglas_open(struct kf_gcp_kms *k, const char *key, const char *object,
		    const char *kms_key, const char *body, size_t n,
		    struct kf_secret **value, struct kf_err *err);

/*
 * The write options berglas uses: its metadata (meta must have room for 5
 * pointers and key_name must outlive w), Cache-Control and content type,
 * with if_generation / if_metageneration as given (0 / -1 for a create).
 */
void kf_berglas_write_opts(struct kf_gcs_write *w, const char *meta[5],
			   const char *key_name, long long if_generation,
			   long long if_metageneration);

/*
 * Read a secret as berglas does, pinned to one generation: stat (gen 0 =
 * the live one), media of the generation stat'ed (CRC32C checked), open.
 * The value goes into *value, its object resource into *o (may be NULL).
 * A cold read is 3 calls: objects.get, objects.media, KMS decrypt.
 */
int kf_berglas_get(struct kf_gcs *g, struct kf_gcp_kms *k, const char *bucket,
		   const char *object, const char *key, long long gen,
		   struct kf_secret **value, struct kf_gcs_object *o,
		   struct kf_err *err);

/*
 * Seal and upload a value: if_generation 0 creates (the object must not
 * exist), > 0 updates the generation read, with if_metageneration > 0
 * (berglas passes both), -1 writes unconditionally.  A lost race is
 * KF_E_STATE with kf_gcs_conflict() true.  The new resource goes into *o
 * (may be NULL).  Calls: KMS encrypt, objects.insert.
 */
int kf_berglas_put(struct kf_gcs *g, struct kf_gcp_kms *k, const char *bucket,
		   const char *object, const char *key, const void *value,
		   size_t n, long long if_generation,
		   long long if_metageneration, struct kf_gcs_object *o,
		   struct kf_err *err);

/*
 * Object name component -> keyfs path component: ':', '#', '%', control
 * bytes (0x00-0x1f, 0x7f) become %XX (upper-case hex); a component that
 * is "." or ".." becomes "%2E" / "%2E%2E".  Appended to out.  KF_E_INVALID
 * for an empty component or one holding '/' (a path cannot hold them).
 */
int kf_berglas_name_to_path(const char *comp, size_t n, struct kf_buf *out,
			    struct kf_err *err);

/*
 * The inverse: a path component -> object name component.  Only the
 * canonical form kf_berglas_name_to_path makes is accepted (every %XX
 * upper-case and naming a byte that must be escaped; no bare ':' or '#'),
 * so the mapping is one-to-one.  KF_E_INVALID otherwise.
 */
int kf_berglas_path_to_name(const char *comp, size_t n, struct kf_buf *out,
			    struct kf_err *err);

#endif
