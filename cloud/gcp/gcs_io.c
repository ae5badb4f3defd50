/*
 * Cloud Storage object bytes: the media read with its CRC32C checks, the
 * multipart upload with generation preconditions (and how a retried
 * upload that met its own earlier attempt is recognised), and delete.
 * Object bytes live only in sensitive buffers and are never logged.
 */
#include "gcp/gcs.h"
#include "gcp/gcs_int.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A media answer that fails its checks is discarded and the request sent
 * again, up to 3 answers in all (as for KMS checksum mismatches). */
static const struct kf_retry_policy integrity_policy = {
	.attempts = 3,
};

/*
 * The crc32c of the x-goog-hash header(s) of a media answer (the server
 * may send one header "crc32c=..,md5=.." or one per hash): 1 found, 0
 * none, -1 malformed or two different values.
 */
static int hash_header_crc(const struct kf_buf *h, uint32_t *crc)
{
	const char *p = kf_buf_str(h), *end = p + h->len;
	int found = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
		const char *v = p + 12, *lend = p + len;

		p += len + 1;
		if (len < 12 || strncasecmp(v - 12, "x-goog-hash:", 12) != 0)
			continue;
		while (v < lend) {
			const char *comma = memchr(v, ',', (size_t)(lend - v));
			const char *te = comma ? comma : lend;
			char tok[64];
			uint32_t x;

			while (v < te && (*v == ' ' || *v == '\t'))
				v++;
			while (te > v && (te[-1] == ' ' || te[-1] == '\r' ||
					  te[-1] == '\t'))
				te--;
			if (te - v > 7 && (size_t)(te - v) < sizeof(tok) &&
			    strncasecmp(v, "crc32c=", 7) == 0) {
				memcpy(tok, v + 7, (size_t)(te - v - 7));
				tok[te - v - 7] = '\0';
				if (gcs_crc32c_b64(tok, &x) < 0 ||
				    (found && x != *crc))
					return -1;
				*crc = x;
				found = 1;
			}
			v = comma ? comma + 1 : lend;
		}
	}
	return found;
}

struct media {
	struct gcs_call *c;
	const struct kf_gcs_object *expect;
	long long gen;
	long long got; /* generation the answer names, 0 unknown */
};

/* Check a media answer: its bytes against every checksum we have. */
static int media_ok(struct media *m, struct kf_err *err)
{
	const struct kf_http_resp *r = m->c->resp;
	uint32_t crc = kf_crc32c(0, r->body.data, r->body.len), hdr = 0;
	char gbuf[32];
	char *end = NULL;
	int h = hash_header_crc(&r->headers, &hdr);

	m->got = 0;
	if (kf_http_resp_header(r, "x-goog-generation", gbuf, sizeof(gbuf))) {
		m->got = strtoll(gbuf, &end, 10);
		if (!end || *end || m->got <= 0 ||
		    (m->gen > 0 && m->got != m->gen))
			return kf_fail(err, KF_E_INTEGRITY,
				       "Cloud Storage objects.media %s: the "
				       "answer is another generation",
				       m->c->target);
	}
	if (h <= 0)
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud Storage objects.media %s: %s x-goog-hash "
			       "crc32c",
			       m->c->target, h < 0 ? "malformed" : "no");
	if (hdr != crc ||
	    (m->expect &&
	     ((m->expect->has_crc32c && m->expect->crc32c != crc) ||
	      m->expect->size != (long long)r->body.len)))
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud Storage objects.media %s: object bytes "
			       "corrupted in transit (crc32c mismatch)",
			       m->c->target);
	return 0;
}

static enum kf_retry_verdict
media_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	struct media *m = ctx;

	if (gcs_call(m->c, err) < 0)
		return KF_RETRY_FAIL;
	if (media_ok(m, err) == 0)
		return KF_RETRY_OK;
	kf_log(KF_LOG_WARN, "gcs: %s (attempt %u)", err->msg, at->n + 1);
	return KF_RETRY_AGAIN;
}

int kf_gcs_read(struct kf_gcs *g, const char *bucket, const char *object,
		long long gen, const struct kf_gcs_object *expect,
		struct kf_buf *out, long long *got_gen, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct gcs_call c = { .g = g, .method = "GET", .op = "objects.media" };
	struct media m = { &c, expect, gen, 0 };
	struct kf_buf url;
	int rc = -1;

	kf_http_resp_init(&resp);
	kf_buf_init(&url, 8192);
	gcs_target(c.target, sizeof(c.target), bucket, object);
	if (gcs_url(g, &url, "", bucket, object, err) < 0)
		goto out;
	if (kf_buf_adds(&url, "?alt=media") < 0 ||
	    (gen > 0 && kf_buf_addf(&url, "&generation=%lld", gen) < 0)) {
		kf_fail(err, KF_E_INVALID, "object URL too long");
		goto out;
	}
	c.url = kf_buf_str(&url);
	c.retry = 1;
	c.resp = &resp;
	c.max_response = g->max_object;
	if (kf_retry_run(&integrity_policy, "Cloud Storage objects.media", 0,
			 media_attempt, &m, err) < 0)
		goto out;
	if (kf_buf_add(out, resp.body.data, resp.body.len) < 0) {
		kf_fail(err, KF_E_TOOBIG, "Cloud Storage %s: object too large",
			c.target);
		goto out;
	}
	if (got_gen)
		*got_gen = m.got ? m.got : gen;
	rc = 0;
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	return rc;
}

void kf_gcs_write_init(struct kf_gcs_write *w)
{
	memset(w, 0, sizeof(*w));
	w->if_generation = -1;
	w->if_metageneration = -1;
}

/* The JSON part of the upload: name, metadata, cacheControl, contentType
 * and the crc32c the server checks the bytes against. */
static char *meta_part(const char *object, const struct kf_gcs_write *w,
		       uint32_t crc)
{
	unsigned char be[4] = { crc >> 24, crc >> 16, crc >> 8, crc };
	json_t *j = json_object(), *md = json_object();
	struct kf_buf c64;
	char *s = NULL;

	kf_buf_init(&c64, 16);
	if (!j || !md || kf_base64_encode(be, 4, &c64) < 0)
		goto out;
	for (const char *const *p = w->metadata; p && p[0] && p[1]; p += 2)
		if (json_object_set_new(md, p[0], json_string(p[1])) < 0)
			goto out;
	if (json_object_set_new(j, "name", json_string(object)) < 0 ||
	    json_object_set_new(j, "contentType",
				json_string(
					w->content_type ?
						w->content_type :
						"application/octet-stream")) <
		    0 ||
	    json_object_set_new(j, "crc32c", json_string(kf_buf_str(&c64))) <
		    0 ||
	    (w->cache_control &&
	     json_object_set_new(j, "cacheControl",
				 json_string(w->cache_control)) < 0) ||
	    (json_object_size(md) && json_object_set(j, "metadata", md) < 0))
		goto out;
	s = json_dumps(j, JSON_COMPACT);
out:
	kf_buf_release(&c64);
	json_decref(md);
	json_decref(j);
	return s;
}

/* The multipart/related body and its boundary (random, absent from the
 * bytes). */
static int multipart_body(struct kf_buf *body, char boundary[40],
			  const char *meta, const void *data, size_t n,
			  struct kf_err *err)
{
	unsigned char rnd[16];

	for (int tries = 0;; tries++) {
		if (tries == 4)
			return kf_fail(err, KF_E_IO, "no multipart boundary");
		if (kf_rand_bytes(rnd, sizeof(rnd), err) < 0)
			return -1;
		memcpy(boundary, "kf", 2);
		kf_hex(rnd, sizeof(rnd), boundary + 2);
		if (!memmem(data, n, boundary, strlen(boundary)))
			break;
	}
	if (kf_buf_addf(body,
			"--%s\r\nContent-Type: application/json; "
			"charset=UTF-8\r\n\r\n%s\r\n--%s\r\n"
			"Content-Type: application/octet-stream\r\n\r\n",
			boundary, meta, boundary) < 0 ||
	    kf_buf_add(body, data, n) < 0 ||
	    kf_buf_addf(body, "\r\n--%s--\r\n", boundary) < 0)
		return kf_fail(err, KF_E_TOOBIG, "object too large");
	return 0;
}

/* The answer to an upload must describe what was sent. */
static int check_written(struct gcs_call *c, const char *object, size_t n,
			 uint32_t crc, struct kf_gcs_object *o,
			 struct kf_err *err)
{
	const struct kf_http_resp *r = c->resp;

	if (kf_gcs_parse_object_text(r->body.data, r->body.len, o, err) < 0)
		return -1;
	if (strcmp(o->name, object) != 0 || o->size != (long long)n ||
	    !o->has_crc32c || o->crc32c != crc) {
		kf_gcs_object_release(o);
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud Storage objects.insert %s: the answer "
			       "does not describe the bytes sent",
			       c->target);
	}
	return 0;
}

/*
 * A 412 after an ambiguous attempt: did that attempt land?  Yes when the
 * live object has our size and crc32c and exactly our bytes.  0 with *o
 * filled when it did, -1 otherwise (*err untouched).
 */
static int landed(struct kf_gcs *g, const char *bucket, const char *object,
		  const void *data, size_t n, uint32_t crc,
		  struct kf_gcs_object *o)
{
	struct kf_err e2 = KF_ERR_INIT;
	struct kf_buf got;
	int rc = -1;

	kf_buf_init_sensitive(&got, n + 1);
	if (kf_gcs_stat(g, bucket, object, 0, o, &e2) < 0)
		goto out;
	if (o->size == (long long)n && o->has_crc32c && o->crc32c == crc &&
	    kf_gcs_read(g, bucket, object, o->generation, o, &got, NULL, &e2) ==
		    0 &&
	    got.len == n && kf_memeq(got.data, data, n))
		rc = 0;
	if (rc < 0)
		kf_gcs_object_release(o);
out:
	kf_buf_release(&got);
	return rc;
}

/* The upload URL with its preconditions. */
static int upload_url(struct kf_gcs *g, struct kf_buf *url, const char *bucket,
		      const struct kf_gcs_write *w, struct kf_err *err)
{
	if (gcs_url(g, url, "upload/", bucket, NULL, err) < 0)
		return -1;
	if (kf_buf_adds(url, "?uploadType=multipart") < 0 ||
	    (w->if_generation >= 0 &&
	     kf_buf_addf(url, "&ifGenerationMatch=%lld", w->if_generation) <
		     0) ||
	    (w->if_metageneration >= 0 &&
	     kf_buf_addf(url, "&ifMetagenerationMatch=%lld",
			 w->if_metageneration) < 0))
		return kf_fail(err, KF_E_INVALID, "upload URL too long");
	return 0;
}

int kf_gcs_write(struct kf_gcs *g, const char *bucket, const char *object,
		 const void *data, size_t n, const struct kf_gcs_write *w,
		 struct kf_gcs_object *o, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct gcs_call c = { .g = g,
			      .method = "POST",
			      .op = "objects.insert" };
	struct kf_gcs_object tmp;
	struct kf_buf url, body;
	uint32_t crc = kf_crc32c(0, data, n);
	char boundary[40], ctype[96], *meta = NULL;
	int rc = -1;

	memset(&tmp, 0, sizeof(tmp));
	kf_http_resp_init(&resp);
	kf_buf_init(&url, 8192);
	kf_buf_init_sensitive(&body, g->max_object + 16384);
	gcs_target(c.target, sizeof(c.target), bucket, object);
	if (n > g->max_object) {
		kf_fail(err, KF_E_TOOBIG, "Cloud Storage %s: over %zu bytes",
			c.target, g->max_object);
		goto out;
	}
	if (!kf_gcs_valid_object(object)) {
		kf_fail(err, KF_E_INVALID, "invalid object name");
		goto out;
	}
	if (upload_url(g, &url, bucket, w, err) < 0)
		goto out;
	meta = meta_part(object, w, crc);
	if (!meta) {
		kf_fail(err, KF_E_NOMEM, "cannot build the upload");
		goto out;
	}
	if (multipart_body(&body, boundary, meta, data, n, err) < 0)
		goto out;
	/* boundary is 34 characters: the line always fits. */
	(void)snprintf(ctype, sizeof(ctype),
		       "Content-Type: multipart/related; boundary=%s",
		       boundary);
	c.url = kf_buf_str(&url);
	c.ctype = ctype;
	c.body = body.data;
	c.body_len = body.len;
	c.accept_json = 1;
	c.retry = 1;
	c.resp = &resp;
	if (gcs_call(&c, err) == 0) {
		rc = check_written(&c, object, n, crc, &tmp, err);
	} else if (kf_gcs_conflict(err) && c.ambiguous &&
		   landed(g, bucket, object, data, n, crc, &tmp) == 0) {
		kf_log(KF_LOG_INFO,
		       "gcs: %s: an earlier attempt of this upload landed",
		       c.target);
		kf_err_clear(err);
		rc = 0;
	}
	if (rc == 0 && o)
		*o = tmp;
	else
		kf_gcs_object_release(&tmp);
out:
	kf_json_free(meta);
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	kf_buf_release(&body);
	return rc;
}

int kf_gcs_delete(struct kf_gcs *g, const char *bucket, const char *object,
		  long long if_generation, struct kf_err *err)
{
	struct kf_http_resp resp;
	struct gcs_call c = { .g = g,
			      .method = "DELETE",
			      .op = "objects.delete" };
	struct kf_buf url;
	int rc = -1;

	kf_http_resp_init(&resp);
	kf_buf_init(&url, 8192);
	gcs_target(c.target, sizeof(c.target), bucket, object);
	if (gcs_url(g, &url, "", bucket, object, err) < 0)
		goto out;
	if (if_generation > 0 &&
	    kf_buf_addf(&url, "?ifGenerationMatch=%lld", if_generation) < 0) {
		kf_fail(err, KF_E_INVALID, "object URL too long");
		goto out;
	}
	c.url = kf_buf_str(&url);
	c.accept_json = 1;
	c.retry = 1;
	c.resp = &resp;
	rc = gcs_call(&c, err);
	if (rc < 0 && err->code == KF_E_NOTFOUND && c.ambiguous) {
		/* An unanswered attempt deleted it. */
		kf_err_clear(err);
		rc = 0;
	}
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&url);
	return rc;
}
