/* Unit tests for the Cloud Storage client (cloud/gcp/gcs.c, gcs_io.c)
 * through the HTTP transport seam with scripted answers (status, headers,
 * body): the endpoint, object resources and list pages (int64 strings,
 * crc32c), URLs and encoding, the CRC32C checks of media reads, the
 * multipart upload, preconditions and 412, retries, the retried upload
 * that met its own first attempt, delete and token refresh. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "core/json.h"
#include "gcp/gcs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scripted answers with headers */

struct gstep {
	long status; /* 0: network error */
	const char *headers;
	const char *body;
	size_t len; /* 0: strlen(body) */
};

static struct gstep gscript[16];
static int gn, gpos, greqs;
static char greq_url[16][1200];
static char greq_method[16][8];
static char greq_ctype[16][128];
static struct kf_buf greq_body[16];

static void gs_reset(void)
{
	for (int i = 0; i < 16; i++)
		kf_buf_release(&greq_body[i]);
	gn = gpos = greqs = 0;
}

static void gs_push(long status, const char *headers, const char *body)
{
	gscript[gn++] = (struct gstep){ status, headers, body, 0 };
}

static int gs_fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		   struct kf_err *err)
{
	struct gstep s = { 500, "", "{}", 0 };

	if (strstr(req->url, "/token"))
		return gf_fake(req, resp, err);
	if (greqs < 16) {
		(void)snprintf(greq_url[greqs], sizeof(greq_url[0]), "%s",
			       req->url);
		(void)snprintf(greq_method[greqs], sizeof(greq_method[0]), "%s",
			       req->method);
		greq_ctype[greqs][0] = '\0';
		for (const char *const *h = req->headers; h && *h; h++)
			if (!strncmp(*h, "Content-Type:", 13))
				(void)snprintf(greq_ctype[greqs],
					       sizeof(greq_ctype[0]), "%s", *h);
		kf_buf_init(&greq_body[greqs], 1 << 22);
		kf_buf_add(&greq_body[greqs], req->body, req->body_len);
		greqs++;
	}
	if (gpos < gn)
		s = gscript[gpos++];
	if (s.status == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "connection reset");
	resp->status = s.status;
	if (s.headers && kf_buf_adds(&resp->headers, s.headers) < 0)
		return -1;
	return kf_buf_add(&resp->body, s.body, s.len ? s.len : strlen(s.body));
}

static struct kf_gcp_auth *setup(struct kf_gcs *g)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcp_auth *a;

	gf_reset();
	gs_reset();
	a = gf_make_auth();
	kf_http_set_transport(gs_fake);
	KT_EQ_INT(kf_gcs_init(g, "http://127.0.0.1:9", a, 5000, &err), 0);
	g->backoff_ms = 1;
	g->backoff_429_ms = 2;
	return a;
}

static void done(struct kf_gcp_auth *a)
{
	gs_reset();
	gf_done(a);
}

/* The resource of object name with these bytes (crc32c computed). */
static const char *resource(const char *name, long long gen, const void *data,
			    size_t n)
{
	static char r[2048];
	uint32_t c = kf_crc32c(0, data, n);
	unsigned char be[4] = { c >> 24, c >> 16, c >> 8, c };
	struct kf_buf b;

	kf_buf_init(&b, 64);
	kf_base64_encode(be, 4, &b);
	(void)snprintf(r, sizeof(r),
		       "{\"kind\":\"storage#object\",\"name\":\"%s\","
		       "\"bucket\":\"bk1\",\"generation\":\"%lld\","
		       "\"metageneration\":\"1\",\"size\":\"%zu\","
		       "\"crc32c\":\"%s\",\"md5Hash\":\"AAAA\","
		       "\"updated\":\"2026-01-02T03:04:05.678Z\","
		       "\"cacheControl\":\"no-store\","
		       "\"contentType\":\"text/plain\","
		       "\"metadata\":{\"berglas-secret\":\"1\","
		       "\"berglas-kms-key\":\"" KEY "\"}}",
		       name, gen, n, kf_buf_str(&b));
	kf_buf_release(&b);
	return r;
}

/* An x-goog-hash header line for these bytes. */
static const char *hash_hdr(const void *data, size_t n, int gen)
{
	static char h[4][256];
	static int i;
	uint32_t c = kf_crc32c(0, data, n);
	unsigned char be[4] = { c >> 24, c >> 16, c >> 8, c };
	struct kf_buf b;

	i = (i + 1) % 4;
	kf_buf_init(&b, 64);
	kf_base64_encode(be, 4, &b);
	(void)snprintf(h[i], sizeof(h[i]),
		       "HTTP/1.1 200 OK\r\nx-goog-generation: %d\r\n"
		       "X-Goog-Hash: crc32c=%s,md5=1B2M2Y8AsgTpgAmY7PhCfg==\r\n",
		       gen, kf_buf_str(&b));
	kf_buf_release(&b);
	return h[i];
}

KT_TEST(gcs_init_endpoint)
{
	struct kf_gcs g;
	struct kf_err err = KF_ERR_INIT;

	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE");
	KT_EQ_INT(kf_gcs_init(&g, NULL, NULL, 0, &err), 0);
	KT_EQ_STR(g.endpoint, "https://storage.googleapis.com/");
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE", "http://127.0.0.1:5",
	       1);
	KT_EQ_INT(kf_gcs_init(&g, NULL, NULL, 0, &err), 0);
	KT_EQ_STR(g.endpoint, "http://127.0.0.1:5/");
	KT_EQ_INT(kf_gcs_init(&g, "http://localhost:7/x/", NULL, 0, &err), 0);
	KT_EQ_STR(g.endpoint, "http://localhost:7/x/");
	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE");
	KT_EQ_INT(kf_gcs_init(&g, "http://storage.example/", NULL, 0, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_gcs_init(&g, "ftp://127.0.0.1/", NULL, 0, &err), -1);
}

KT_TEST(gcs_parse_object_resource)
{
	struct kf_gcs_object o;
	struct kf_err err = KF_ERR_INIT;
	const char *r = resource("a/b", 1700000000123456LL, "hello", 5);
	static const char *const bad[] = {
		"[]",
		"{\"generation\":\"1\",\"metageneration\":\"1\",\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"abc\",\"metageneration\":"
		"\"1\",\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"0\",\"metageneration\":\"1\","
		"\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"-5\",\"metageneration\":"
		"\"1\",\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"99999999999999999999\","
		"\"metageneration\":\"1\",\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"1\",\"metageneration\":\"1\","
		"\"size\":\"-1\"}",
		"{\"name\":\"x\",\"generation\":\"1\",\"metageneration\":\"1\","
		"\"size\":\"1\",\"crc32c\":\"AAAAAAA=\"}",
		"{\"name\":\"x\",\"generation\":\"1\",\"metageneration\":\"1\","
		"\"size\":\"1\",\"metadata\":{\"k\":1}}",
		"{\"name\":\"x\",\"generation\":\"1\",\"metageneration\":\"1\","
		"\"size\":\"1\",\"metadata\":[]}",
		"{\"name\":\"\",\"generation\":\"1\",\"metageneration\":\"1\","
		"\"size\":\"1\"}",
		"{\"name\":\"x\",\"generation\":\"1 \",\"metageneration\":"
		"\"1\",\"size\":\"1\"}",
	};

	KT_EQ_INT(kf_gcs_parse_object_text(r, strlen(r), &o, &err), 0);
	KT_EQ_STR(o.name, "a/b");
	KT_EQ_INT(o.generation, 1700000000123456LL);
	KT_EQ_INT(o.metageneration, 1);
	KT_EQ_INT(o.size, 5);
	KT_CHECK(o.has_crc32c && o.crc32c == kf_crc32c(0, "hello", 5));
	KT_CHECK(o.live);
	KT_EQ_STR(o.cache_control, "no-store");
	KT_EQ_STR(o.content_type, "text/plain");
	KT_EQ_STR(o.updated, "2026-01-02T03:04:05.678Z");
	KT_EQ_STR(kf_gcs_meta(&o, "berglas-kms-key"), KEY);
	KT_EQ_STR(kf_gcs_meta(&o, "berglas-secret"), "1");
	KT_CHECK(kf_gcs_meta(&o, "nope") == NULL);
	kf_gcs_object_release(&o);
	/* Numbers as JSON integers are taken too; timeDeleted = noncurrent. */
	r = "{\"name\":\"x\",\"generation\":5,\"metageneration\":2,"
	    "\"size\":0,\"timeDeleted\":\"2026-01-01T00:00:00Z\"}";
	KT_EQ_INT(kf_gcs_parse_object_text(r, strlen(r), &o, &err), 0);
	KT_CHECK(!o.live && !o.has_crc32c && o.generation == 5);
	kf_gcs_object_release(&o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		KT_EQ_INT(kf_gcs_parse_object_text(bad[i], strlen(bad[i]), &o,
						   &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_IO);
		KT_CHECK(o.metadata == NULL);
	}
}

struct seen {
	char log[512];
	int stop_after;
	int n;
};

static int collect(void *ctx, const struct kf_gcs_object *o, const char *prefix)
{
	struct seen *s = ctx;
	size_t l = strlen(s->log);

	(void)snprintf(s->log + l, sizeof(s->log) - l, "%s%s:%lld;",
		       prefix ? "P " : "", prefix ? prefix : o->name,
		       prefix ? 0 : o->generation);
	return ++s->n == s->stop_after;
}

KT_TEST(gcs_parse_list_page)
{
	static const char page[] =
		"{\"kind\":\"storage#objects\",\"nextPageToken\":\"tok/+=\","
		"\"prefixes\":[\"d/e/\"],\"items\":["
		"{\"name\":\"d/a\",\"generation\":\"7\",\"metageneration\":"
		"\"1\",\"size\":\"3\"},"
		"{\"name\":\"d/b\",\"generation\":\"8\",\"metageneration\":"
		"\"1\",\"size\":\"3\"}]}";
	struct seen s = { "", 0, 0 };
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf next;

	kf_buf_init(&next, 1024);
	KT_EQ_INT(kf_gcs_parse_list(page, strlen(page), collect, &s, &next,
				    &err),
		  0);
	KT_EQ_STR(s.log, "P d/e/:0;d/a:7;d/b:8;");
	KT_EQ_STR(kf_buf_str(&next), "tok/+=");
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	KT_EQ_INT(kf_gcs_parse_list(page, strlen(page), collect, &s, NULL,
				    &err),
		  0);
	KT_EQ_STR(s.log, "P d/e/:0;d/a:7;");
	/* An empty last page. */
	KT_EQ_INT(kf_gcs_parse_list("{\"kind\":\"storage#objects\"}", 26,
				    collect, &s, &next, &err),
		  0);
	KT_EQ_INT(next.len, 0);
	KT_EQ_INT(kf_gcs_parse_list("{\"items\":{}}", 12, collect, &s, &next,
				    &err),
		  -1);
	KT_EQ_INT(kf_gcs_parse_list("{\"items\":[{\"name\":\"x\"}]}", 24,
				    collect, &s, &next, &err),
		  -1);
	KT_EQ_INT(kf_gcs_parse_list("{\"prefixes\":[1]}", 16, collect, &s,
				    &next, &err),
		  -1);
	KT_EQ_INT(kf_gcs_parse_list("{\"nextPageToken\":5}", 19, collect, &s,
				    &next, &err),
		  -1);
	KT_EQ_INT(kf_gcs_parse_list("nope", 4, collect, &s, &next, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	kf_buf_release(&next);
}

KT_TEST(gcs_stat_urls_and_errors)
{
	struct kf_gcs g;
	struct kf_gcp_auth *a = setup(&g);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_object o;

	gs_push(200, "", resource("a/b:c#d e", 42, "x", 1));
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a/b:c#d e", 0, &o, &err), 0);
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o/"
			       "a%2Fb%3Ac%23d%20e");
	KT_EQ_STR(greq_method[0], "GET");
	KT_EQ_INT(o.generation, 42);
	kf_gcs_object_release(&o);
	gs_reset();
	gs_push(200, "", resource("a", 42, "x", 1));
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 42, &o, &err), 0);
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o/a"
			       "?generation=42");
	kf_gcs_object_release(&o);
	/* Not found: JSON API error with reason. */
	gs_reset();
	gs_push(404, "",
		"{\"error\":{\"code\":404,\"message\":\"No such object: bk1/a\","
		"\"errors\":[{\"message\":\"No such object: bk1/a\","
		"\"domain\":\"global\",\"reason\":\"notFound\"}]}}");
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 0, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(err.http_status, 404);
	KT_EQ_STR(err.provider_code, "notFound");
	KT_EQ_INT(greqs, 1);
	/* An answer about another object or generation. */
	gs_reset();
	gs_push(200, "", resource("b", 42, "x", 1));
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 0, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	gs_reset();
	gs_push(200, "", resource("a", 43, "x", 1));
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 42, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	/* Bad names never reach the network. */
	gs_reset();
	KT_EQ_INT(kf_gcs_stat(&g, "Bad_Bucket", "a", 0, &o, &err), -1);
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a\nb", 0, &o, &err), -1);
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "", 0, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(greqs, 0);
	/* 503, 429, a reset: retried; 401 refreshes the token once. */
	gs_push(503, "", "{}");
	gs_push(429, "", "{}");
	gs_push(0, "", "");
	gs_push(401, "", "{}");
	gs_push(200, "", resource("a", 1, "x", 1));
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 0, &o, &err), 0);
	KT_EQ_INT(greqs, 5);
	kf_gcs_object_release(&o);
	/* 403 is final. */
	gs_reset();
	gs_push(403, "", "{\"error\":{\"code\":403,\"message\":\"denied\"}}");
	KT_EQ_INT(kf_gcs_stat(&g, "bk1", "a", 0, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "HTTP 403");
	KT_EQ_INT(greqs, 1);
	done(a);
}

KT_TEST(gcs_read_checks_crc32c)
{
	struct kf_gcs g;
	struct kf_gcp_auth *a = setup(&g);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_object exp;
	struct kf_buf out;
	const char *bad_hdr = "X-Goog-Hash: crc32c=AAAAAA==\r\n";
	long long got = 0;

	kf_buf_init_sensitive(&out, 1 << 20);
	gs_push(200, hash_hdr("value", 5, 9), "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o/x", 9, NULL, &out, &got, &err), 0);
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o/o%2Fx"
			       "?alt=media&generation=9");
	KT_EQ_INT(out.len, 5);
	KT_EQ_INT(got, 9);
	/* One corrupted answer is discarded and read again. */
	gs_reset();
	kf_buf_reset(&out);
	gs_push(200, bad_hdr, "value");
	gs_push(200, hash_hdr("value", 5, 9), "valuE");
	gs_push(200, hash_hdr("value", 5, 9), "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 0, NULL, &out, NULL, &err), 0);
	KT_EQ_INT(greqs, 3);
	KT_EQ_MEM(out.data, "value", 5);
	/* Always corrupted: INTEGRITY after 3 answers, out unchanged. */
	gs_reset();
	kf_buf_reset(&out);
	for (int i = 0; i < 3; i++)
		gs_push(200, bad_hdr, "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 0, NULL, &out, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_INT(greqs, 3);
	KT_EQ_INT(out.len, 0);
	/* No hash header at all, or another generation: refused too. */
	gs_reset();
	for (int i = 0; i < 3; i++)
		gs_push(200, "x-goog-generation: 9\r\n", "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 0, NULL, &out, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	gs_reset();
	for (int i = 0; i < 3; i++)
		gs_push(200, hash_hdr("value", 5, 8), "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 9, NULL, &out, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	/* Two x-goog-hash lines (crc32c and md5 apart) are read. */
	gs_reset();
	{
		char two[512];
		const char *h = strstr(hash_hdr("value", 5, 9), "crc32c=");

		(void)snprintf(two, sizeof(two),
			       "x-goog-hash: md5=AAAA\r\nx-goog-hash: %.*s\r\n",
			       (int)strcspn(h, ","), h);
		gs_push(200, two, "value");
		KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 0, NULL, &out, NULL,
				      &err),
			  0);
	}
	/* The resource's crc32c and size must match as well. */
	gs_reset();
	kf_buf_reset(&out);
	KT_EQ_INT(kf_gcs_parse_object_text(resource("o", 9, "valuf", 5), 300,
					   &exp, &err),
		  -1); /* truncated text */
	{
		const char *r = resource("o", 9, "valuf", 5);

		KT_EQ_INT(kf_gcs_parse_object_text(r, strlen(r), &exp, &err),
			  0);
	}
	for (int i = 0; i < 3; i++)
		gs_push(200, hash_hdr("value", 5, 9), "value");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 9, &exp, &out, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	kf_gcs_object_release(&exp);
	/* A 404 is not retried. */
	gs_reset();
	gs_push(404, "", "{\"error\":{\"code\":404,\"message\":\"gone\"}}");
	KT_EQ_INT(kf_gcs_read(&g, "bk1", "o", 0, NULL, &out, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(greqs, 1);
	kf_buf_release(&out);
	done(a);
}

/* The JSON part of the recorded multipart upload i. */
static json_t *upload_meta(int i)
{
	const char *b = greq_body[i].data;
	const char *j = b ? strstr(b, "\r\n\r\n") : NULL;

	return j ? json_loadb(j + 4, strcspn(j + 4, "\r"), 0, NULL) : NULL;
}

KT_TEST(gcs_write_multipart_and_preconditions)
{
	struct kf_gcs g;
	struct kf_gcp_auth *a = setup(&g);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_object o;
	struct kf_gcs_write w;
	const char *meta[] = { "berglas-secret", "1", "k2", "v2", NULL };
	static const unsigned char data[] = "body:\0\xff bytes";
	size_t n = sizeof(data) - 1;
	char want_crc[16];
	json_t *j;

	kf_gcs_write_init(&w);
	w.metadata = meta;
	w.cache_control = "private, max-age=0";
	w.content_type = "text/plain; charset=utf-8";
	w.if_generation = 0;
	gs_push(200, "", resource("dir/o", 77, data, n));
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "dir/o", data, n, &w, &o, &err), 0);
	KT_EQ_INT(o.generation, 77);
	kf_gcs_object_release(&o);
	KT_EQ_STR(greq_method[0], "POST");
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/upload/storage/v1/b/bk1/o"
			       "?uploadType=multipart&ifGenerationMatch=0");
	KT_CHECK(!strncmp(greq_ctype[0],
			  "Content-Type: multipart/related; boundary=kf", 44));
	/* The body: JSON part, then the bytes, then the closing line. */
	j = upload_meta(0);
	KT_CHECK(j != NULL);
	KT_EQ_STR(kf_json_str(j, "name"), "dir/o");
	KT_EQ_STR(kf_json_str(j, "cacheControl"), "private, max-age=0");
	KT_EQ_STR(kf_json_str(j, "contentType"), "text/plain; charset=utf-8");
	KT_EQ_STR(kf_json_str(json_object_get(j, "metadata"), "k2"), "v2");
	KT_EQ_STR(kf_json_str(json_object_get(j, "metadata"), "berglas-secret"),
		  "1");
	{
		uint32_t c = kf_crc32c(0, data, n), got;
		const char *s = kf_json_str(j, "crc32c");
		struct kf_buf b;

		kf_buf_init(&b, 8);
		KT_EQ_INT(kf_base64_decode(s, strlen(s), &b), 0);
		got = (uint32_t)(unsigned char)b.data[0] << 24 |
		      (uint32_t)(unsigned char)b.data[1] << 16 |
		      (uint32_t)(unsigned char)b.data[2] << 8 |
		      (unsigned char)b.data[3];
		KT_EQ_INT(got, c);
		kf_buf_release(&b);
		(void)snprintf(want_crc, sizeof(want_crc), "%u", c);
	}
	json_decref(j);
	KT_CHECK(memmem(greq_body[0].data, greq_body[0].len, data, n) != NULL);
	KT_CHECK(
		greq_body[0].len > 6 &&
		!memcmp(greq_body[0].data + greq_body[0].len - 4, "--\r\n", 4));
	/* 412: a conflict the caller can tell apart. */
	gs_reset();
	w.if_generation = 76;
	w.if_metageneration = 3;
	gs_push(412, "",
		"{\"error\":{\"code\":412,\"message\":\"At least one of the "
		"pre-conditions you specified did not hold.\",\"errors\":"
		"[{\"reason\":\"conditionNotMet\"}]}}");
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "dir/o", data, n, &w, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_CHECK(kf_gcs_conflict(&err));
	KT_EQ_STR(err.provider_code, "conditionNotMet");
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/upload/storage/v1/b/bk1/o"
			       "?uploadType=multipart&ifGenerationMatch=76"
			       "&ifMetagenerationMatch=3");
	KT_EQ_INT(greqs, 1);
	/* An answer that does not describe our bytes. */
	gs_reset();
	gs_push(200, "", resource("dir/o", 78, "other", 5));
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "dir/o", data, n, &w, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	/* Too large: refused before any call. */
	gs_reset();
	g.max_object = 4;
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "dir/o", data, n, &w, &o, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(greqs, 0);
	done(a);
}

KT_TEST(gcs_write_retry_that_landed)
{
	struct kf_gcs g;
	struct kf_gcp_auth *a = setup(&g);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_object o;
	struct kf_gcs_write w;
	static const char cond[] =
		"{\"error\":{\"code\":412,\"message\":\"precondition\","
		"\"errors\":[{\"reason\":\"conditionNotMet\"}]}}";

	kf_gcs_write_init(&w);
	w.if_generation = 0;
	/* Reset, then 412: the object is ours (same bytes): success. */
	gs_push(0, "", "");
	gs_push(412, "", cond);
	gs_push(200, "", resource("o", 5, "mine", 4));
	gs_push(200, hash_hdr("mine", 4, 5), "mine");
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "o", "mine", 4, &w, &o, &err), 0);
	KT_EQ_INT(o.generation, 5);
	KT_EQ_INT(greqs, 4);
	KT_EQ_STR(greq_url[2], "http://127.0.0.1:9/storage/v1/b/bk1/o/o");
	KT_EQ_STR(greq_url[3], "http://127.0.0.1:9/storage/v1/b/bk1/o/o"
			       "?alt=media&generation=5");
	kf_gcs_object_release(&o);
	/* 503 (maybe applied), then 412, another writer's bytes: conflict. */
	gs_reset();
	gs_push(503, "", "{}");
	gs_push(412, "", cond);
	gs_push(200, "", resource("o", 6, "them", 4));
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "o", "mine", 4, &w, &o, &err), -1);
	KT_CHECK(kf_gcs_conflict(&err));
	KT_EQ_INT(greqs, 3);
	/* Same size and crc32c but other bytes would need a collision; the
	 * bytes are compared, so a media answer differing is a conflict. */
	gs_reset();
	gs_push(0, "", "");
	gs_push(412, "", cond);
	gs_push(200, "", resource("o", 7, "mine", 4));
	gs_push(200, hash_hdr("mine", 4, 7), "mine");
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "o", "mime", 4, &w, &o, &err), -1);
	KT_CHECK(kf_gcs_conflict(&err));
	/* A 412 on the first attempt: no stat, a plain conflict. */
	gs_reset();
	gs_push(412, "", cond);
	KT_EQ_INT(kf_gcs_write(&g, "bk1", "o", "mine", 4, &w, &o, &err), -1);
	KT_CHECK(kf_gcs_conflict(&err));
	KT_EQ_INT(greqs, 1);
	done(a);
}

KT_TEST(gcs_delete_and_list_urls)
{
	struct kf_gcs g;
	struct kf_gcp_auth *a = setup(&g);
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs_list_req rq = { "a b/", "/", "tok+/=", 1, 50 };
	struct seen s = { "", 0, 0 };
	struct kf_buf next;

	gs_push(204, "", "");
	KT_EQ_INT(kf_gcs_delete(&g, "bk1", "x/y", 12, &err), 0);
	KT_EQ_STR(greq_method[0], "DELETE");
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o/x%2Fy"
			       "?ifGenerationMatch=12");
	/* A reset, then 404: the first attempt deleted it. */
	gs_reset();
	gs_push(0, "", "");
	gs_push(404, "", "{}");
	KT_EQ_INT(kf_gcs_delete(&g, "bk1", "x", 0, &err), 0);
	/* A 404 without an earlier attempt is NOTFOUND. */
	gs_reset();
	gs_push(404, "", "{}");
	KT_EQ_INT(kf_gcs_delete(&g, "bk1", "x", 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* List: the query, one page. */
	gs_reset();
	kf_buf_init(&next, 1024);
	gs_push(200, "",
		"{\"prefixes\":[\"a b/c/\"],\"nextPageToken\":\"n2\"}");
	KT_EQ_INT(kf_gcs_list(&g, "bk1", &rq, collect, &s, &next, &err), 0);
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o"
			       "?prefix=a%20b%2F&delimiter=%2F"
			       "&pageToken=tok%2B%2F%3D&versions=true"
			       "&maxResults=50");
	KT_EQ_STR(s.log, "P a b/c/:0;");
	KT_EQ_STR(kf_buf_str(&next), "n2");
	gs_reset();
	memset(&rq, 0, sizeof(rq));
	gs_push(200, "", "{}");
	KT_EQ_INT(kf_gcs_list(&g, "bk1", &rq, collect, &s, &next, &err), 0);
	KT_EQ_STR(greq_url[0], "http://127.0.0.1:9/storage/v1/b/bk1/o");
	KT_EQ_INT(next.len, 0);
	kf_buf_release(&next);
	done(a);
}
