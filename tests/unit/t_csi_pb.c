/*
 * Unit tests for csi/pb.c: the CSI provider API's protobuf messages.
 * The "python" vectors were produced by Debian's python3-protobuf
 * (descriptor_pb2 + message_factory, no protoc) from the field numbers
 * in csi/pb.h; the others are computed by hand.
 */
#include "kt.h"
#include "pb.h"

#include <stdint.h>
#include <stdlib.h>

/* MountRequest(attributes='{"objects":"[]"}', secrets='{}',
 * target_path='/var/lib/kubelet/pods/x', permission='420',
 * current_object_version=[{aws/db, v1}, {local/k, ""}]) -- python. */
static const char py_mount_req[] = "\x0a\x10{\"objects\":\"[]\"}\x12\x02{}"
				   "\x1a\x17/var/lib/kubelet/pods/x\x22\x03"
				   "420\x2a\x0c\x0a\x06"
				   "aws/db\x12\x02v1\x2a\x09\x0a\x07local/k";

/* MountResponse: two object versions, files db-pass (0400, "s3cr\0t"),
 * k (mode 0, empty), neg (mode -1, "x") -- python. */
static const char py_mount_resp[] =
	"\x0a\x0c\x0a\x06"
	"aws/db\x12\x02v1\x0a\x09\x0a\x07local/k"
	"\x1a\x14\x0a\x07"
	"db-pass\x10\x80\x02\x1a\x06s3cr\x00t"
	"\x1a\x03\x0a\x01k"
	"\x1a\x13\x0a\x03neg\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
	"\x1a\x01x";

KT_TEST(csi_pb_mount_req_python_vector)
{
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_pb_mount_req_decode((const unsigned char *)py_mount_req,
					 sizeof(py_mount_req) - 1, &req, &err),
		  0);
	KT_EQ_INT(sizeof(py_mount_req) - 1, 77);
	KT_EQ_INT(req.attributes->len, 16);
	KT_EQ_STR((char *)req.attributes->data, "{\"objects\":\"[]\"}");
	KT_EQ_STR((char *)req.secrets->data, "{}");
	KT_EQ_STR(req.target_path, "/var/lib/kubelet/pods/x");
	KT_EQ_STR(req.permission, "420");
	KT_EQ_INT(req.ncur, 2);
	KT_EQ_STR(req.cur[0].id, "aws/db");
	KT_EQ_STR(req.cur[0].version, "v1");
	KT_EQ_STR(req.cur[1].id, "local/k");
	KT_EQ_STR(req.cur[1].version, "");
	kf_pb_mount_req_release(&req);
	KT_CHECK(req.attributes == NULL && req.cur == NULL);
	kf_pb_mount_req_release(&req); /* a zeroed struct is fine */
}

KT_TEST(csi_pb_mount_req_empty_and_defaults)
{
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_pb_mount_req_decode(NULL, 0, &req, &err), 0);
	KT_CHECK(req.attributes && req.secrets);
	KT_EQ_INT(req.attributes->len, 0);
	KT_EQ_INT(req.attributes->data[0], 0);
	KT_EQ_STR(req.target_path, "");
	KT_EQ_STR(req.permission, "");
	KT_EQ_INT(req.ncur, 0);
	kf_pb_mount_req_release(&req);
}

struct bad_case {
	const char *name;
	const char *in;
	size_t n;
};

#define BAD(name, s)                   \
	{                              \
		name, s, sizeof(s) - 1 \
	}

static const struct bad_case bad_mount[] = {
	BAD("truncated varint tag", "\x8a"),
	BAD("truncated length", "\x0a"),
	BAD("length past the end", "\x0a\x05"
				   "abc"),
	BAD("huge length", "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
	BAD("11-byte varint", "\x28\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
	BAD("10th byte over 1", "\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
	BAD("field 0", "\x02\x00"),
	BAD("attributes as varint", "\x08\x01"),
	BAD("permission as fixed32", "\x25"
				     "abcd"),
	BAD("group start (unknown field)", "\x33\x34"),
	BAD("group end", "\x34"),
	BAD("wire type 6", "\x36"),
	BAD("wire type 7", "\x3f"),
	BAD("truncated fixed64", "\x31"
				 "1234567"),
	BAD("truncated fixed32", "\x35"
				 "123"),
	BAD("NUL in target_path", "\x1a\x03/\x00x"),
	BAD("objver truncated", "\x2a\x03\x0a\x05x"),
	BAD("objver id as varint", "\x2a\x02\x08\x01"),
	BAD("objver group", "\x2a\x01\x0b"),
};

KT_TEST(csi_pb_mount_req_refused)
{
	for (size_t i = 0; i < sizeof(bad_mount) / sizeof(bad_mount[0]); i++) {
		struct kf_pb_mount_req req;
		struct kf_err err = KF_ERR_INIT;
		int rc = kf_pb_mount_req_decode((const unsigned char *)
							bad_mount[i]
								.in,
						bad_mount[i].n, &req, &err);

		if (rc != -1 || err.code != KF_E_INVALID)
			kt_fail(__FILE__, __LINE__, "%s: rc %d code %s",
				bad_mount[i].name, rc, kf_code_name(err.code));
		KT_CHECK(req.attributes == NULL && req.cur == NULL);
	}
}

/* Every prefix of a valid message either decodes or fails cleanly; only
 * the cuts at field boundaries decode. */
KT_TEST(csi_pb_mount_req_truncated)
{
	size_t n = sizeof(py_mount_req) - 1, ok = 0;
	static const size_t bounds[] = { 0, 18, 22, 47, 52, 66, 77 };

	for (size_t k = 0; k <= n; k++) {
		struct kf_pb_mount_req req;
		struct kf_err err = KF_ERR_INIT;

		if (kf_pb_mount_req_decode((const unsigned char *)py_mount_req,
					   k, &req, &err) == 0) {
			KT_EQ_INT(k, bounds[ok]);
			ok++;
			kf_pb_mount_req_release(&req);
		} else {
			KT_EQ_INT(err.code, KF_E_INVALID);
		}
	}
	KT_EQ_INT(ok, 7);
}

/* Unknown fields of wire types 0, 1, 2 and 5 are skipped, at both
 * levels; the last occurrence of a scalar wins. */
KT_TEST(csi_pb_mount_req_unknown_skipped)
{
	static const char in[] = "\x30\x96\x01" /* 6: varint 150 */
				 "\x22\x01x"	/* permission "x" */
				 "\x39"
				 "12345678" /* 7: fixed64 */
				 "\x42\x03"
				 "abc" /* 8: bytes */
				 "\x4d"
				 "1234"			    /* 9: fixed32 */
				 "\xf8\xff\xff\xff\x0f\x00" /* 2^29-1: varint */
				 "\x22\x03"
				 "644"		    /* last wins */
				 "\x2a\x0a\x18\x01" /* objver: 3 varint */
				 "\x12\x01z"	    /* version */
				 "\x25xxxx"	    /* 4: fixed32 */
				 "\x0a\x00";	    /* empty id */
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_pb_mount_req_decode((const unsigned char *)in,
					 sizeof(in) - 1, &req, &err),
		  0);
	KT_EQ_STR(req.permission, "644");
	KT_EQ_INT(req.ncur, 1);
	KT_EQ_STR(req.cur[0].id, "");
	KT_EQ_STR(req.cur[0].version, "z");
	kf_pb_mount_req_release(&req);
}

KT_TEST(csi_pb_mount_req_too_many_objvers)
{
	size_t n = (KF_PB_MAX_OBJVERS + 1) * 2;
	unsigned char *in = malloc(n);
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;

	KT_CHECK(in != NULL);
	for (size_t i = 0; i < n; i += 2) {
		in[i] = 0x2a;
		in[i + 1] = 0;
	}
	KT_EQ_INT(kf_pb_mount_req_decode(in, n - 2, &req, &err), 0);
	KT_EQ_INT(req.ncur, KF_PB_MAX_OBJVERS);
	kf_pb_mount_req_release(&req);
	KT_EQ_INT(kf_pb_mount_req_decode(in, n, &req, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	free(in);
}

KT_TEST(csi_pb_mount_req_string_too_long)
{
	size_t n = KF_PB_MAX_STRING + 1 + 5;
	unsigned char *in = calloc(1, n);
	struct kf_pb_mount_req req;
	struct kf_err err = KF_ERR_INIT;

	KT_CHECK(in != NULL);
	/* field 3, length 2^20 + 1 = 0x100001: 81 80 c0 00 -> 3 bytes */
	in[0] = 0x1a;
	in[1] = 0x81;
	in[2] = 0x80;
	in[3] = 0x40;
	KT_EQ_INT(kf_pb_mount_req_decode(in, 4 + KF_PB_MAX_STRING + 1, &req,
					 &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	free(in);
}

KT_TEST(csi_pb_mount_resp_python_vector)
{
	static const struct kf_pb_objver vers[] = { { "aws/db", "v1" },
						    { "local/k", "" } };
	static const struct kf_pb_file files[] = {
		{ "db-pass", 0400, (const unsigned char *)"s3cr\0t", 6 },
		{ "k", 0, (const unsigned char *)"", 0 },
		{ "neg", -1, (const unsigned char *)"x", 1 },
	};
	struct kf_pb_mount_resp r = { vers, 2, NULL, files, 3 };
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_pb_mount_resp_encode(&r, &out, &err), 0);
	KT_EQ_INT(out->len, sizeof(py_mount_resp) - 1);
	KT_EQ_INT(out->len, 73);
	KT_EQ_MEM(out->data, py_mount_resp, out->len);
	kf_secret_free(out);
}

KT_TEST(csi_pb_mount_resp_error_and_empty)
{
	struct kf_pb_mount_resp r = { NULL, 0, "NotFound", NULL, 0 };
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_pb_mount_resp_encode(&r, &out, &err), 0);
	KT_EQ_INT(out->len, 12); /* python: 12 0a 0a 08 NotFound */
	KT_EQ_MEM(out->data, "\x12\x0a\x0a\x08NotFound", 12);
	kf_secret_free(out);
	r.error_code = ""; /* present but empty: python gives 12 00 */
	KT_EQ_INT(kf_pb_mount_resp_encode(&r, &out, &err), 0);
	KT_EQ_INT(out->len, 2);
	KT_EQ_MEM(out->data, "\x12\x00", 2);
	kf_secret_free(out);
	r.error_code = NULL; /* nothing at all: zero bytes */
	KT_EQ_INT(kf_pb_mount_resp_encode(&r, &out, &err), 0);
	KT_EQ_INT(out->len, 0);
	kf_secret_free(out);
}

/* A file of 200 bytes: lengths of two-byte varints, nested. */
KT_TEST(csi_pb_mount_resp_long_contents)
{
	unsigned char val[200];
	struct kf_pb_file f = { "f", 0644, val, sizeof(val) };
	struct kf_pb_mount_resp r = { NULL, 0, NULL, &f, 1 };
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;

	memset(val, 'v', sizeof(val));
	KT_EQ_INT(kf_pb_mount_resp_encode(&r, &out, &err), 0);
	/* 1a LEN(2) | 0a 01 66 | 10 a4 03 | 1a c8 01 + 200 */
	KT_EQ_INT(out->len, 3 + 3 + 3 + 3 + 200);
	KT_EQ_MEM(out->data, "\x1a\xd1\x01\x0a\x01\x66\x10\xa4\x03\x1a\xc8\x01",
		  12);
	KT_EQ_MEM(out->data + 12, val, 200);
	kf_secret_free(out);
}

KT_TEST(csi_pb_version)
{
	struct kf_secret *out = NULL;
	struct kf_err err = KF_ERR_INIT;
	char v[16];

	KT_EQ_INT(kf_pb_version_resp_encode("v1alpha1", "keyfs", "0.1.0", &out,
					    &err),
		  0);
	/* python */
	KT_EQ_INT(out->len, 24);
	KT_EQ_MEM(out->data,
		  "\x0a\x08v1alpha1\x12\x05keyfs\x1a\x05"
		  "0.1.0",
		  24);
	kf_secret_free(out);
	KT_EQ_INT(kf_pb_version_resp_encode("", NULL, "", &out, &err), 0);
	KT_EQ_INT(out->len, 0);
	kf_secret_free(out);

	KT_EQ_INT(kf_pb_version_req_decode((const unsigned char
						    *)"\x0a\x08v1alpha1",
					   10, v, sizeof(v), &err),
		  0);
	KT_EQ_STR(v, "v1alpha1");
	KT_EQ_INT(kf_pb_version_req_decode((const unsigned char
						    *)"\x10\x01\x0a\x08v1alpha1",
					   12, v, 4, &err),
		  0);
	KT_EQ_STR(v, "v1a"); /* truncated to n - 1 */
	KT_EQ_INT(kf_pb_version_req_decode(NULL, 0, v, sizeof(v), &err), 0);
	KT_EQ_STR(v, "");
	KT_EQ_INT(kf_pb_version_req_decode((const unsigned char *)"\x08\x01", 2,
					   v, sizeof(v), &err),
		  -1);
	KT_EQ_INT(kf_pb_version_req_decode((const unsigned char *)"\x0a\x09v1",
					   4, v, sizeof(v), &err),
		  -1);
	KT_EQ_INT(kf_pb_version_req_decode((const unsigned char *)"\x0b", 1, v,
					   sizeof(v), &err),
		  -1);
}
