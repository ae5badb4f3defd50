/*
 * The gcp provider: Google Cloud KMS as gcp/PROJECT/LOCATION/RING/KEY/NAME.
 * Key rings and crypto keys live in Cloud KMS; value files are ciphertext
 * in the store (STORE/gcp/...), byte for byte what `gcloud kms encrypt`
 * writes.  Plaintext never touches the disk and is never logged.
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
