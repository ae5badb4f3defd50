/*
 * libFuzzer target for csi/pb.c.  Properties: decoding arbitrary bytes as
 * a MountRequest or a VersionRequest never reads past the input, and what
 * a MountRequest decodes to re-encodes (as the ObjectVersions and files
 * of a MountResponse) into bytes that decode back to the same strings.
 */
#include "pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode an encoded MountResponse's ObjectVersion list as if it were a
 * MountRequest's current_object_version (field 5): rewrite the tags. */
static void check_vers(const struct kf_pb_mount_req *req)
{
	struct kf_pb_mount_resp r = { req->cur, req->ncur, NULL, NULL, 0 };
	struct kf_pb_mount_req back;
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;
	size_t i = 0;

	if (kf_pb_mount_resp_encode(&r, &out, &err) < 0)
		abort();
	/* Each entry is 0a LEN...: field 1 -> field 5 (0x2a). */
	while (i < out->len) {
		uint64_t len = 0;
		unsigned shift = 0;

		if (out->data[i] != 0x0a)
			abort();
		out->data[i++] = 0x2a;
		do {
			len |= (uint64_t)(out->data[i] & 0x7f) << shift;
			shift += 7;
		} while (out->data[i++] & 0x80);
		i += len;
	}
	if (kf_pb_mount_req_decode(out->data, out->len, &back, &err) < 0)
		abort();
	if (back.ncur != req->ncur)
		abort();
	for (i = 0; i < req->ncur; i++)
		if (strcmp(back.cur[i].id, req->cur[i].id) != 0 ||
		    strcmp(back.cur[i].version, req->cur[i].version) != 0)
			abort();
	kf_pb_mount_req_release(&back);
	kf_secret_free(out);
}

/* The attributes as a file's contents, the target path as its name. */
static void check_file(const struct kf_pb_mount_req *req)
{
	struct kf_pb_file f = { req->target_path, 0400, req->attributes->data,
				req->attributes->len };
	struct kf_pb_mount_resp r = { NULL, 0, req->permission, &f, 1 };
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;

	if (kf_pb_mount_resp_encode(&r, &out, &err) < 0)
		abort();
	if (f.len && (out->len < f.len || memcmp(out->data + out->len - f.len,
						 f.contents, f.len) != 0))
		abort();
	kf_secret_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;
	char v[32];

	if (size > (1u << 20))
		return 0;
	(void)kf_pb_version_req_decode(data, size, v, sizeof(v), &err);
	if (strlen(v) >= sizeof(v))
		abort();
	if (kf_pb_mount_req_decode(data, size, &req, &err) < 0) {
		if (req.attributes || req.cur || err.code == KF_OK)
			abort();
		return 0;
	}
	if (req.attributes->data[req.attributes->len] != 0 ||
	    req.secrets->data[req.secrets->len] != 0)
		abort();
	check_vers(&req);
	check_file(&req);
	kf_pb_mount_req_release(&req);
	return 0;
}
