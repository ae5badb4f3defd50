/*
 * The gcp provider: Google Cloud KMS as gcp/PROJECT/LOCATION/RING/KEY/NAME.
 * Key rings and crypto keys live in Cloud KMS; value files are ciphertext
 * in the store (STORE/gcp/...), byte for byte what `gcloud kms encrypt`
 * writes.  Plaintext never touches the disk and is never logged.
 *
 * Behaviour users can rely on (for docs/):
 * - gcp/ lists -o gcp_project=P[:P...] (domain-scoped "example.com:p" ids
 *   cannot be given in that list form) or the one discovered project;
 *   other projects are ENOENT.  PROJECT/ lists KMS locations.
 * - Value file names: 1-255 bytes of [A-Za-z0-9._+=@,-], not starting
 *   with '.'; names starting with '.' are keyfs's temporary files in the
 *   store (".kf-tmp.XXXXXX") and are never listed.  Ring and key ids:
 *   [a-zA-Z0-9_-]{1,63}; anything else is EINVAL on mkdir/create.
 * - A value file's size is reported as 0 until it is opened (it is not
 *   known without a KMS decrypt), so keyfs serves such files with direct
 *   I/O; empty values are empty store files and need no KMS call.
 * - Store files are 0600 in 0700 directories, replaced atomically (temp
 *   file in the same directory, fsync, rename, fsync of the directory).
 *   Files encrypted by gcloud for the same key (no AAD) may be dropped in.
 * - rmdir of a ring or key is EPERM ("Cloud KMS cannot delete key rings or
 *   crypto keys" in the log); rm removes only the ciphertext file.
 * - Extended attributes: user.keyfs.id (full resource name; on value
 *   files, the crypto key that encrypts them), on keys
 *   user.keyfs.rotation_period (get/set, e.g. "100000s", >= 86400s),
 *   user.keyfs.primary (get: version name; set: version number or name),
 *   user.keyfs.rotate (write-only: new version made primary).
 */
#ifndef KF_GCP_H
#define KF_GCP_H

#include "provider.h"

extern const struct kf_provider_desc kf_gcp_desc;

/*
 * Whether name is a valid value file name: 1..255 bytes of
 * [A-Za-z0-9._+=@,-], not starting with '.' (names starting with '.' are
 * reserved for keyfs's temporary files).
 */
int kf_gcp_valid_value_name(const char *name);

#endif
