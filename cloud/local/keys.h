/*
 * Wrapping local/ data keys with the master key: AES-256-GCM, IV (12) |
 * encrypted key (32) | tag (16), associated data
 * "keyfs-local-wrap-v1:RING/KEY:VERSION", so a wrapped key moved to
 * another key or version fails to unwrap; and the tag that authenticates
 * a key file's metadata.  Pure functions: no I/O, no logs; every stack
 * copy of a key is wiped.
 */
#ifndef KF_LOCAL_KEYS_H
#define KF_LOCAL_KEYS_H

#include "core/crypto.h"
#include "core/err.h"

#include <jansson.h>

#define KF_LOCAL_WRAPPED_LEN (KF_GCM_IV + 32 + KF_GCM_TAG)
/* A key file's tag: 64 lower-case hex digits and a NUL. */
#define KF_LOCAL_TAG_HEX 65

/*
 * Wrap data key dk as version `version` of ringkey ("RING/KEY") under
 * master into out, with a fresh random IV.  0, or -1 with err.
 */
int kf_local_key_wrap(const unsigned char master[32], const char *ringkey,
		      long version, const unsigned char dk[32],
		      unsigned char out[KF_LOCAL_WRAPPED_LEN],
		      struct kf_err *err);

/*
 * Unwrap `in` (as kf_local_key_wrap made it for ringkey and version)
 * into dk.  -1 with KF_E_INTEGRITY when it does not verify (wrong master
 * key, another key or version, damaged); dk is then wiped.
 */
int kf_local_key_unwrap(const unsigned char master[32], const char *ringkey,
			long version,
			const unsigned char in[KF_LOCAL_WRAPPED_LEN],
			unsigned char dk[32], struct kf_err *err);

/*
 * The tag of a key file's metadata (root, as parsed): HMAC-SHA256, under
 * a key derived from master, of a canonical text of ringkey ("RING/KEY"),
 * the primary version and every version's number, creation time and
 * wrapped key, in hex.  A key file whose primary was set back, whose
 * versions were edited, or that was copied from another key does not
 * match.  -1 with KF_E_INTEGRITY when a field has the wrong type.
 */
int kf_local_keyfile_tag(const unsigned char master[32], const char *ringkey,
			 json_t *root, char hex[KF_LOCAL_TAG_HEX],
			 struct kf_err *err);

#endif
