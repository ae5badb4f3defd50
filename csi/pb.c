/*
 * The CSI provider API's protobuf messages, decoded and encoded by hand:
 * every length from the wire is checked against what is left before it
 * is used.  Attributes, secrets and encoded answers live in kf_secret
 * memory; nothing here logs or quotes a message byte.
 */
#include "pb.h"

#include <stdlib.h>
#include <string.h>

enum {
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_I32 = 5
};

struct rd {
	const unsigned char *p, *end;
};

/* A varint of at most 10 bytes (the 10th may only carry bit 63). */
static int rd_varint(struct rd *r, uint64_t *v, struct kf_err *err)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 10; i++) {
		unsigned char b;

		if (r->p >= r->end)
			return kf_fail(err, KF_E_INVALID,
				       "pb: truncated varint");
		b = *r->p++;
		if (i == 9 && b > 1)
			return kf_fail(err, KF_E_INVALID,
				       "pb: varint too long");
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return kf_fail(err, KF_E_INVALID, "pb: varint too long");
}

static int rd_tag(struct rd *r, uint32_t *field, unsigned *wt,
		  struct kf_err *err)
{
	uint64_t t = 0;

	if (rd_varint(r, &t, err) < 0)
		return -1;
	if (t >> 3 == 0 || t >> 3 > 0x1fffffff)
		return kf_fail(err, KF_E_INVALID, "pb: bad field number");
	*field = (uint32_t)(t >> 3);
	*wt = (unsigned)(t & 7);
	return 0;
}

/* A length-delimited field's bytes: *p, *n, inside the input. */
static int rd_len(struct rd *r, const unsigned char **p, size_t *n,
		  struct kf_err *err)
{
	uint64_t len = 0;

	if (rd_varint(r, &len, err) < 0)
		return -1;
	if (len > (uint64_t)(r->end - r->p))
		return kf_fail(err, KF_E_INVALID, "pb: length past the end");
	*p = r->p;
	*n = (size_t)len;
	r->p += len;
	return 0;
}

static int rd_skip(struct rd *r, unsigned wt, struct kf_err *err)
{
	const unsigned char *p = NULL;
	uint64_t v = 0;
	size_t n = 0, fixed = 0;

	switch (wt) {
	case WT_VARINT:
		return rd_varint(r, &v, err);
	case WT_LEN:
		return rd_len(r, &p, &n, err);
	case WT_I64:
		fixed = 8;
		break;
	case WT_I32:
		fixed = 4;
		break;
	default:
		return kf_fail(err, KF_E_INVALID, "pb: wire type %u refused",
			       wt);
	}
	if ((size_t)(r->end - r->p) < fixed)
		return kf_fail(err, KF_E_INVALID, "pb: truncated fixed field");
	r->p += fixed;
	return 0;
}

/* A string field as a new NUL-terminated heap copy (no NUL inside). */
static int dup_str(const unsigned char *p, size_t n, char **out,
		   struct kf_err *err)
{
	char *s;

	if (n > KF_PB_MAX_STRING)
		return kf_fail(err, KF_E_INVALID, "pb: string too long");
	if (n && memchr(p, 0, n))
		return kf_fail(err, KF_E_INVALID, "pb: NUL inside a string");
	s = malloc(n + 1);
	if (!s)
		return kf_fail(err, KF_E_NOMEM, "pb: out of memory");
	if (n)
		memcpy(s, p, n);
	s[n] = 0;
	free(*out);
	*out = s;
	return 0;
}

/* A string field as a new NUL-terminated secret. */
static int dup_secret(const unsigned char *p, size_t n, struct kf_secret **out,
		      struct kf_err *err)
{
	struct kf_secret *s;

	if (n > KF_PB_MAX_STRING)
		return kf_fail(err, KF_E_INVALID, "pb: string too long");
	s = kf_secret_new(n + 1);
	if (!s)
		return kf_fail(err, KF_E_NOMEM, "pb: out of memory");
	if (n)
		memcpy(s->data, p, n);
	s->data[n] = 0;
	s->len = n;
	kf_secret_free(*out);
	*out = s;
	return 0;
}

static int objver_decode(const unsigned char *p, size_t n,
			 struct kf_pb_objver *ov, struct kf_err *err)
{
	struct rd r = { p, p + n };
	const unsigned char *v = NULL;
	uint32_t field = 0;
	unsigned wt = 0;
	size_t vn = 0;

	while (r.p < r.end) {
		if (rd_tag(&r, &field, &wt, err) < 0)
			return -1;
		if (field != 1 && field != 2) {
			if (rd_skip(&r, wt, err) < 0)
				return -1;
			continue;
		}
		if (wt != WT_LEN)
			return kf_fail(err, KF_E_INVALID,
				       "pb: ObjectVersion field %u: wire type %u",
				       (unsigned)field, wt);
		if (rd_len(&r, &v, &vn, err) < 0 ||
		    dup_str(v, vn, field == 1 ? &ov->id : &ov->version, err) <
			    0)
			return -1;
	}
	if ((!ov->id && dup_str(NULL, 0, &ov->id, err) < 0) ||
	    (!ov->version && dup_str(NULL, 0, &ov->version, err) < 0))
		return -1;
	return 0;
}

static int add_objver(struct kf_pb_mount_req *req, const unsigned char *p,
		      size_t n, struct kf_err *err)
{
	struct kf_pb_objver *cur;

	if (req->ncur >= KF_PB_MAX_OBJVERS)
		return kf_fail(err, KF_E_INVALID,
			       "pb: more than %d current_object_version",
			       KF_PB_MAX_OBJVERS);
	/* Grow by doubling: at most 11 reallocations for 1024 entries. */
	if ((req->ncur & (req->ncur - 1)) == 0) {
		size_t cap = req->ncur ? req->ncur * 2 : 1;

		cur = realloc(req->cur, cap * sizeof(*cur));
		if (!cur)
			return kf_fail(err, KF_E_NOMEM, "pb: out of memory");
		req->cur = cur;
	}
	cur = &req->cur[req->ncur++];
	cur->id = cur->version = NULL;
	return objver_decode(p, n, cur, err);
}

static int mount_field(struct kf_pb_mount_req *req, uint32_t field,
		       const unsigned char *v, size_t vn, struct kf_err *err)
{
	switch (field) {
	case 1:
		return dup_secret(v, vn, &req->attributes, err);
	case 2:
		return dup_secret(v, vn, &req->secrets, err);
	case 3:
		return dup_str(v, vn, &req->target_path, err);
	case 4:
		return dup_str(v, vn, &req->permission, err);
	default:
		return add_objver(req, v, vn, err);
	}
}

int kf_pb_mount_req_decode(const unsigned char *p, size_t n,
			   struct kf_pb_mount_req *req, struct kf_err *err)
{
	struct rd r = { p, p + n };
	const unsigned char *v = NULL;
	uint32_t field = 0;
	unsigned wt = 0;
	size_t vn = 0;
	int rc = -1;

	memset(req, 0, sizeof(*req));
	if (!p && n)
		return kf_fail(err, KF_E_INVALID, "pb: no input");
	while (r.p < r.end) {
		if (rd_tag(&r, &field, &wt, err) < 0)
			goto out;
		if (field > 5) {
			if (rd_skip(&r, wt, err) < 0)
				goto out;
			continue;
		}
		if (wt != WT_LEN) {
			kf_fail(err, KF_E_INVALID,
				"pb: MountRequest field %u: wire type %u",
				(unsigned)field, wt);
			goto out;
		}
		if (rd_len(&r, &v, &vn, err) < 0 ||
		    mount_field(req, field, v, vn, err) < 0)
			goto out;
	}
	if ((!req->attributes && dup_secret(NULL, 0, &req->attributes, err)) ||
	    (!req->secrets && dup_secret(NULL, 0, &req->secrets, err)) ||
	    (!req->target_path && dup_str(NULL, 0, &req->target_path, err)) ||
	    (!req->permission && dup_str(NULL, 0, &req->permission, err)))
		goto out;
	rc = 0;
out:
	if (rc < 0)
		kf_pb_mount_req_release(req);
	return rc;
}

void kf_pb_mount_req_release(struct kf_pb_mount_req *req)
{
	if (!req)
		return;
	kf_secret_free(req->attributes);
	kf_secret_free(req->secrets);
	free(req->target_path);
	free(req->permission);
	for (size_t i = 0; i < req->ncur; i++) {
		free(req->cur[i].id);
		free(req->cur[i].version);
	}
	free(req->cur);
	memset(req, 0, sizeof(*req));
}

int kf_pb_version_req_decode(const unsigned char *p, size_t n, char *out,
			     size_t outn, struct kf_err *err)
{
	struct rd r = { p, p + n };
	const unsigned char *v = NULL;
	uint32_t field = 0;
	unsigned wt = 0;
	size_t vn = 0;

	if (outn)
		out[0] = 0;
	if (!p && n)
		return kf_fail(err, KF_E_INVALID, "pb: no input");
	while (r.p < r.end) {
		if (rd_tag(&r, &field, &wt, err) < 0)
			return -1;
		if (field != 1) {
			if (rd_skip(&r, wt, err) < 0)
				return -1;
			continue;
		}
		if (wt != WT_LEN)
			return kf_fail(err, KF_E_INVALID,
				       "pb: VersionRequest field 1: wire type %u",
				       wt);
		if (rd_len(&r, &v, &vn, err) < 0)
			return -1;
		if (vn && memchr(v, 0, vn))
			return kf_fail(err, KF_E_INVALID,
				       "pb: NUL inside a string");
		if (outn) {
			size_t k = vn < outn - 1 ? vn : outn - 1;

			if (k)
				memcpy(out, v, k);
			out[k] = 0;
		}
	}
	return 0;
}

/* ---- encoding: a sizing pass, then a writing pass into exact memory. */

/* w->p == NULL: only count. */
struct wr {
	unsigned char *p;
	uint64_t n;
};

static void wr_varint(struct wr *w, uint64_t v)
{
	do {
		unsigned char b = (unsigned char)(v & 0x7f);

		v >>= 7;
		if (v)
			b |= 0x80;
		if (w->p)
			w->p[w->n] = b;
		w->n++;
	} while (v);
}

static uint64_t varint_len(uint64_t v)
{
	struct wr w = { NULL, 0 };

	wr_varint(&w, v);
	return w.n;
}

static void wr_bytes(struct wr *w, uint32_t field, const void *p, size_t n)
{
	wr_varint(w, (uint64_t)field << 3 | WT_LEN);
	wr_varint(w, n);
	if (w->p && n)
		memcpy(w->p + w->n, p, n);
	w->n += n;
}

/* A string field, omitted when empty (proto3). */
static void wr_str(struct wr *w, uint32_t field, const char *s)
{
	if (s && *s)
		wr_bytes(w, field, s, strlen(s));
}

static uint64_t objver_size(const struct kf_pb_objver *ov)
{
	struct wr w = { NULL, 0 };

	wr_str(&w, 1, ov->id);
	wr_str(&w, 2, ov->version);
	return w.n;
}

static uint64_t file_size(const struct kf_pb_file *f)
{
	struct wr w = { NULL, 0 };

	wr_str(&w, 1, f->path);
	if (f->mode) {
		wr_varint(&w, 2 << 3 | WT_VARINT);
		/* int32: negative numbers are sign-extended to 64 bits. */
		wr_varint(&w, (uint64_t)(int64_t)f->mode);
	}
	if (f->len)
		w.n += 1 + varint_len(f->len) + f->len;
	return w.n;
}

/* Submessage header: tag and length; the caller then writes the body. */
static void wr_sub(struct wr *w, uint32_t field, uint64_t len)
{
	wr_varint(w, (uint64_t)field << 3 | WT_LEN);
	wr_varint(w, len);
}

static void mount_resp_write(const struct kf_pb_mount_resp *r, struct wr *w)
{
	for (size_t i = 0; i < r->nvers; i++) {
		wr_sub(w, 1, objver_size(&r->vers[i]));
		wr_str(w, 1, r->vers[i].id);
		wr_str(w, 2, r->vers[i].version);
	}
	if (r->error_code) {
		struct wr e = { NULL, 0 };

		wr_str(&e, 1, r->error_code);
		wr_sub(w, 2, e.n);
		wr_str(w, 1, r->error_code);
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct kf_pb_file *f = &r->files[i];

		wr_sub(w, 3, file_size(f));
		wr_str(w, 1, f->path);
		if (f->mode) {
			wr_varint(w, 2 << 3 | WT_VARINT);
			wr_varint(w, (uint64_t)(int64_t)f->mode);
		}
		if (f->len)
			wr_bytes(w, 3, f->contents, f->len);
	}
}

/* Size, allocate exactly, write; the sizes of both passes must agree. */
static int encode(void (*fn)(const void *, struct wr *), const void *arg,
		  struct kf_secret **out, struct kf_err *err)
{
	struct wr w = { NULL, 0 };
	struct kf_secret *s;
	uint64_t size;

	*out = NULL;
	fn(arg, &w);
	size = w.n;
	if (size > (1u << 31))
		return kf_fail(err, KF_E_RANGE, "pb: answer over 2 GiB");
	s = kf_secret_new((size_t)size);
	if (!s)
		return kf_fail(err, KF_E_NOMEM, "pb: out of memory");
	w.p = s->data;
	w.n = 0;
	fn(arg, &w);
	s->len = (size_t)w.n;
	*out = s;
	return 0;
}

static void mount_resp_fn(const void *arg, struct wr *w)
{
	mount_resp_write(arg, w);
}

int kf_pb_mount_resp_encode(const struct kf_pb_mount_resp *r,
			    struct kf_secret **out, struct kf_err *err)
{
	uint64_t total = 0;

	/* Bound the sizing pass's arithmetic before it runs. */
	for (size_t i = 0; i < r->nfiles; i++) {
		total += r->files[i].len;
		if (r->files[i].len > (1u << 31) || total > (1u << 31))
			return kf_fail(err, KF_E_RANGE,
				       "pb: answer over 2 GiB");
	}
	return encode(mount_resp_fn, r, out, err);
}

struct version_resp {
	const char *version, *name, *rversion;
};

static void version_resp_fn(const void *arg, struct wr *w)
{
	const struct version_resp *v = arg;

	wr_str(w, 1, v->version);
	wr_str(w, 2, v->name);
	wr_str(w, 3, v->rversion);
}

int kf_pb_version_resp_encode(const char *version, const char *runtime_name,
			      const char *runtime_version,
			      struct kf_secret **out, struct kf_err *err)
{
	struct version_resp v = { version, runtime_name, runtime_version };

	return encode(version_resp_fn, &v, out, err);
}
