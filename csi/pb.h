/*
 * The Secrets Store CSI provider API's messages (v1alpha1) in the
 * Protocol Buffers wire format: requests decoded, responses encoded.
 * Never trusts a length from the wire; anything that may hold a token or
 * a value (attributes, secrets, file contents) lives in secret memory.
 *
 * Field numbers (proto3):
 *   VersionRequest  { string version = 1; }
 *   VersionResponse { string version = 1; string runtime_name = 2;
 *                     string runtime_version = 3; }
 *   MountRequest    { string attributes = 1; string secrets = 2;
 *                     string target_path = 3; string permission = 4;
 *                     repeated ObjectVersion current_object_version = 5; }
 *   MountResponse   { repeated ObjectVersion object_version = 1;
 *                     Error error = 2; repeated File files = 3; }
 *   ObjectVersion   { string id = 1; string version = 2; }
 *   Error           { string code = 1; }
 *   File            { string path = 1; int32 mode = 2; bytes contents = 3; }
 */
#ifndef KF_CSI_PB_H
#define KF_CSI_PB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/secret.h"

/* Bounds on what a request may carry. */
#define KF_PB_MAX_OBJVERS 1024 /* current_object_version entries */
#define KF_PB_MAX_STRING (1u << 20)

struct kf_pb_objver {
	char *id;      /* NUL-terminated */
	char *version; /* NUL-terminated */
};

struct kf_pb_mount_req {
	struct kf_secret *attributes; /* JSON text, NUL-terminated
				       * (data[len] == 0); never NULL
				       * after a successful decode */
	struct kf_secret *secrets;    /* JSON text, as attributes */
	char *target_path;	      /* never NULL after decode ("") */
	char *permission;	      /* never NULL after decode ("") */
	struct kf_pb_objver *cur;     /* current_object_version */
	size_t ncur;
};

/*
 * Decode a MountRequest.  Unknown fields are skipped (proto3 rules);
 * wire types that do not match a known field's type, truncated varints
 * or lengths, and groups are KF_E_INVALID.  The last occurrence of a
 * scalar field wins.  0, or -1 with *err (never quoting the input); on
 * -1 *req is released.
 */
int kf_pb_mount_req_decode(const unsigned char *p, size_t n,
			   struct kf_pb_mount_req *req, struct kf_err *err);

/* Free (wiping what was secret) and zero.  Accepts a zeroed struct. */
void kf_pb_mount_req_release(struct kf_pb_mount_req *req);

/* Decode a VersionRequest's version into out (truncated to n - 1). */
int kf_pb_version_req_decode(const unsigned char *p, size_t n, char *out,
			     size_t outn, struct kf_err *err);

/* One file of a MountResponse; contents are borrowed. */
struct kf_pb_file {
	const char *path;
	int32_t mode;
	const unsigned char *contents;
	size_t len;
};

struct kf_pb_mount_resp {
	const struct kf_pb_objver *vers; /* borrowed */
	size_t nvers;
	const char *error_code; /* NULL: no error field */
	const struct kf_pb_file *files;
	size_t nfiles;
};

/*
 * Encode a MountResponse into a new secret (caller frees with
 * kf_secret_free), sized exactly, the file contents copied only there.
 * Empty strings and zero numbers are omitted as proto3 does.  0, or -1
 * with KF_E_NOMEM / KF_E_RANGE (over 2^31 bytes).
 */
int kf_pb_mount_resp_encode(const struct kf_pb_mount_resp *r,
			    struct kf_secret **out, struct kf_err *err);

/* Encode a VersionResponse (no secrets: an ordinary secret buffer all
 * the same, so the server sends every answer one way). */
int kf_pb_version_resp_encode(const char *version, const char *runtime_name,
			      const char *runtime_version,
			      struct kf_secret **out, struct kf_err *err);

#endif
