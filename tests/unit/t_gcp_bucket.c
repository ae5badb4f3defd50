/* Unit tests for the gcp provider's bucket store (cloud/gcp/bucket.c and
 * its branches in values.c, tree.c, xattr.c) through the HTTP transport
 * seam: a small in-memory Cloud Storage (generations, metagenerations,
 * preconditions, noncurrent generations, list pages of 2) and a fake
 * Cloud KMS that binds its ciphertext to the AAD.  Covered: the path <->
 * object mapping and -o gcp_bucket= parsing, write/read/list/stamp/
 * versions/rm, the 412 round (another host wrote meanwhile) and its
 * limit, the berglas-kms-key check and a renamed object, the local
 * store's answers to the view operations, and a canary that never
 * reaches Cloud Storage in clear. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "core/json.h"
#include "gcp/berglas.h"
#include "gcp/tree_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GCS_EP "http://127.0.0.1:8/"
#define CANARY "canary-7f3a9c-bucket-value"

/* ---- an in-memory Cloud Storage bucket "bk1" */

struct fobj {
	char name[1100];
	long long gen, mg;
	int live;
	char kms_key[300];
	unsigned char *data;
	size_t len;
};

static struct fobj objs[64];
static int nobj;
static long long next_gen;
static int race_left; /* uploads that find another writer came first */
static int n_get, n_media, n_upload, n_list, n_delete, n_kms_dec, n_kms_enc;
static int canary_seen; /* the canary in a request body */
static char last_delete_url[1200];

static void fake_reset(void)
{
	for (int i = 0; i < nobj; i++)
		free(objs[i].data);
	memset(objs, 0, sizeof(objs));
	nobj = 0;
	next_gen = 1000;
	race_left = 0;
	n_get = n_media = n_upload = n_list = n_delete = 0;
	n_kms_dec = n_kms_enc = 0;
	canary_seen = 0;
	last_delete_url[0] = '\0';
}

static void pct_decode(const char *s, size_t n, char *out, size_t on)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < on; i++) {
		if (s[i] == '%' && i + 2 < n) {
			unsigned v = 0;

			(void)sscanf(s + i + 1, "%2x", &v);
			out[o++] = (char)v;
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* Query parameter k of url, decoded, into out; 0 when absent. */
static int qparam(const char *url, const char *k, char *out, size_t on)
{
	const char *q = strchr(url, '?');
	size_t kl = strlen(k);

	while (q) {
		q++;
		if (strncmp(q, k, kl) == 0 && q[kl] == '=') {
			pct_decode(q + kl + 1, strcspn(q + kl + 1, "&"), out,
				   on);
			return 1;
		}
		q = strchr(q, '&');
	}
	return 0;
}

static struct fobj *find(const char *name, long long gen)
{
	for (int i = nobj - 1; i >= 0; i--)
		if (strcmp(objs[i].name, name) == 0 &&
		    (gen ? objs[i].gen == gen : objs[i].live))
			return &objs[i];
	return NULL;
}

static struct fobj *add(const char *name, const char *key, const void *data,
			size_t n)
{
	struct fobj *o = &objs[nobj++];
	struct fobj *old = find(name, 0);

	if (old)
		old->live = 0;
	(void)snprintf(o->name, sizeof(o->name), "%s", name);
	(void)snprintf(o->kms_key, sizeof(o->kms_key), "%s", key);
	o->gen = ++next_gen;
	o->mg = 1;
	o->live = 1;
	o->data = malloc(n ? n : 1);
	memcpy(o->data, data, n);
	o->len = n;
	return o;
}

static json_t *resource(const struct fobj *o)
{
	uint32_t c = kf_crc32c(0, o->data, o->len);
	unsigned char be[4] = { c >> 24, c >> 16, c >> 8, c };
	struct kf_buf b;
	char gen[32], mg[32], size[32];
	json_t *j;

	kf_buf_init(&b, 64);
	kf_base64_encode(be, 4, &b);
	(void)snprintf(gen, sizeof(gen), "%lld", o->gen);
	(void)snprintf(mg, sizeof(mg), "%lld", o->mg);
	(void)snprintf(size, sizeof(size), "%zu", o->len);
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s}}", "name",
		      o->name, "bucket", "bk1", "generation", gen,
		      "metageneration", mg, "size", size, "crc32c",
		      kf_buf_str(&b), "updated", "2026-01-02T03:04:05.678Z",
		      "metadata", "berglas-secret", "1", "berglas-kms-key",
		      o->kms_key);
	if (!o->live)
		json_object_set_new(j, "timeDeleted",
				    json_string("2026-01-03T00:00:00Z"));
	kf_buf_release(&b);
	return j;
}

static int answer(struct kf_http_resp *resp, long status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int rc;

	resp->status = status;
	rc = kf_buf_adds(&resp->body, s);
	kf_json_free(s);
	json_decref(j);
	return rc;
}

static int gerror(struct kf_http_resp *resp, long status, const char *msg)
{
	return answer(resp, status,
		      json_pack("{s:{s:i,s:s}}", "error", "code", (int)status,
				"message", msg));
}

static int media(struct kf_http_resp *resp, const struct fobj *o)
{
	uint32_t c = kf_crc32c(0, o->data, o->len);
	unsigned char be[4] = { c >> 24, c >> 16, c >> 8, c };
	struct kf_buf b;

	kf_buf_init(&b, 64);
	kf_base64_encode(be, 4, &b);
	resp->status = 200;
	kf_buf_addf(&resp->headers,
		    "HTTP/1.1 200 OK\r\nx-goog-generation: %lld\r\n"
		    "X-Goog-Hash: crc32c=%s\r\n",
		    o->gen, kf_buf_str(&b));
	kf_buf_release(&b);
	return kf_buf_add(&resp->body, o->data, o->len);
}

/* objects.list with prefix, delimiter, versions and pages of 2. */
static int list(const char *url, struct kf_http_resp *resp)
{
	char prefix[1100] = "", delim[8] = "", tok[16] = "", vers[8] = "";
	char maxr[16] = "";
	json_t *items = json_array(), *prefixes = json_array(), *j;
	int start = 0, max = 2, seen = 0;
	size_t pl;

	n_list++;
	qparam(url, "prefix", prefix, sizeof(prefix));
	qparam(url, "delimiter", delim, sizeof(delim));
	qparam(url, "versions", vers, sizeof(vers));
	if (qparam(url, "pageToken", tok, sizeof(tok)))
		start = (int)strtol(tok, NULL, 10);
	if (qparam(url, "maxResults", maxr, sizeof(maxr)))
		max = (int)strtol(maxr, NULL, 10);
	pl = strlen(prefix);
	j = json_object();
	for (int i = 0; i < nobj; i++) {
		const char *rest = objs[i].name + pl;
		const char *d;

		if (strncmp(objs[i].name, prefix, pl) != 0 ||
		    (!objs[i].live && strcmp(vers, "true") != 0))
			continue;
		d = delim[0] ? strstr(rest, delim) : NULL;
		if (seen++ < start)
			continue;
		if ((int)(json_array_size(items) + json_array_size(prefixes)) ==
		    max) {
			char nt[16];

			(void)snprintf(nt, sizeof(nt), "%d", seen - 1);
			json_object_set_new(j, "nextPageToken",
					    json_string(nt));
			break;
		}
		if (d) {
			char p[1100];

			(void)snprintf(p, sizeof(p), "%.*s",
				       (int)(d - objs[i].name + 1),
				       objs[i].name);
			json_array_append_new(prefixes, json_string(p));
		} else {
			json_array_append_new(items, resource(&objs[i]));
		}
	}
	json_object_set_new(j, "items", items);
	json_object_set_new(j, "prefixes", prefixes);
	return answer(resp, 200, j);
}

/* The multipart upload: JSON part, then the bytes. */
static int upload(const struct kf_http_req *req, struct kf_http_resp *resp)
{
	const char *b = (const char *)req->body, *meta, *data, *end;
	char boundary[64], ifg[32] = "", ifm[32] = "", close_[80];
	size_t bl = strcspn(b + 2, "\r");
	json_t *m;
	const char *name, *key;
	struct fobj *cur;

	n_upload++;
	if (memmem(req->body, req->body_len, CANARY, strlen(CANARY)))
		canary_seen = 1;
	(void)snprintf(boundary, sizeof(boundary), "%.*s", (int)bl, b + 2);
	meta = strstr(b, "\r\n\r\n") + 4;
	data = strstr(meta, "\r\n\r\n") + 4;
	(void)snprintf(close_, sizeof(close_), "\r\n--%s--\r\n", boundary);
	end = (const char *)req->body + req->body_len - strlen(close_);
	m = json_loadb(meta, (size_t)(strstr(meta, "\r\n--") - meta), 0, NULL);
	name = json_string_value(json_object_get(m, "name"));
	key = kf_json_str(json_object_get(m, "metadata"), "berglas-kms-key");
	cur = find(name, 0);
	if (race_left > 0 && cur) {
		/* Another host wrote this name just before us. */
		race_left--;
		cur = add(name, cur->kms_key, cur->data, cur->len);
	}
	qparam(req->url, "ifGenerationMatch", ifg, sizeof(ifg));
	qparam(req->url, "ifMetagenerationMatch", ifm, sizeof(ifm));
	if ((ifg[0] && strtoll(ifg, NULL, 10) != (cur ? cur->gen : 0)) ||
	    (ifm[0] && (!cur || strtoll(ifm, NULL, 10) != cur->mg))) {
		json_decref(m);
		return gerror(resp, 412,
			      "At least one of the pre-conditions "
			      "you specified did not hold.");
	}
	cur = add(name, key ? key : "", data, (size_t)(end - data));
	json_decref(m);
	return answer(resp, 200, resource(cur));
}

static int fake_gcs(const struct kf_http_req *req, struct kf_http_resp *resp)
{
	const char *o = strstr(req->url, "/o/");
	char name[1100], gen[32] = "", ifg[32] = "";
	struct fobj *f;

	if (strstr(req->url, "uploadType=multipart"))
		return upload(req, resp);
	if (!o)
		return list(req->url, resp);
	pct_decode(o + 3, strcspn(o + 3, "?"), name, sizeof(name));
	qparam(req->url, "generation", gen, sizeof(gen));
	f = find(name, strtoll(gen, NULL, 10));
	if (strcmp(req->method, "DELETE") == 0) {
		n_delete++;
		(void)snprintf(last_delete_url, sizeof(last_delete_url), "%s",
			       req->url);
		qparam(req->url, "ifGenerationMatch", ifg, sizeof(ifg));
		if (!f)
			return gerror(resp, 404, "No such object");
		if (ifg[0] && strtoll(ifg, NULL, 10) != f->gen)
			return gerror(resp, 412, "precondition");
		f->live = 0;
		resp->status = 204;
		return 0;
	}
	if (strstr(req->url, "alt=media")) {
		n_media++;
		return f ? media(resp, f) : gerror(resp, 404, "No such object");
	}
	n_get++;
	return f ? answer(resp, 200, resource(f)) :
		   gerror(resp, 404, "No such object");
}

/* ---- a fake KMS: ciphertext = "KF" || CRC32C(AAD) || plaintext */

static int b64_field(json_t *j, const char *k, struct kf_buf *out)
{
	const char *s = json_string_value(json_object_get(j, k));

	return s ? kf_base64_decode(s, strlen(s), out) : 0;
}

static int answer_bytes(struct kf_http_resp *resp, const char *field,
			const void *p, size_t n, json_t *j)
{
	struct kf_buf b;
	char crcf[64], crc[16];

	kf_buf_init(&b, 1 << 20);
	kf_base64_encode(p, n, &b);
	json_object_set_new(j, field, json_string(kf_buf_str(&b)));
	(void)snprintf(crcf, sizeof(crcf), "%sCrc32c", field);
	(void)snprintf(crc, sizeof(crc), "%u", kf_crc32c(0, p, n));
	json_object_set_new(j, crcf, json_string(crc));
	kf_buf_release(&b);
	return answer(resp, 200, j);
}

static int fake_kms(const struct kf_http_req *req, struct kf_http_resp *resp)
{
	int enc = strstr(req->url, ":encrypt") != NULL;
	json_t *j;
	struct kf_buf in, aad;
	unsigned char hdr[6];
	uint32_t c;
	int rc;

	if (!enc && !strstr(req->url, ":decrypt"))
		return answer(resp, 200,
			      json_pack("{s:s,s:{s:s}}", "name", KEY, "primary",
					"state", "ENABLED"));
	enc ? n_kms_enc++ : n_kms_dec++;
	j = json_loadb(req->body, req->body_len, 0, NULL);
	kf_buf_init(&in, 1 << 20);
	kf_buf_init(&aad, 1 << 20);
	b64_field(j, enc ? "plaintext" : "ciphertext", &in);
	b64_field(j, "additionalAuthenticatedData", &aad);
	json_decref(j);
	c = kf_crc32c(0, aad.data, aad.len);
	memcpy(hdr, "KF", 2);
	hdr[2] = c >> 24, hdr[3] = c >> 16, hdr[4] = c >> 8, hdr[5] = c;
	if (enc) {
		struct kf_buf ct;

		kf_buf_init(&ct, 1 << 20);
		kf_buf_add(&ct, hdr, 6);
		kf_buf_add(&ct, in.data, in.len);
		rc = answer_bytes(resp, "ciphertext", ct.data, ct.len,
				  json_pack("{s:s,s:b,s:b}", "name",
					    KEY "/cryptoKeyVersions/1",
					    "verifiedPlaintextCrc32c", 1,
					    "verifiedAdditionalAuthenticated"
					    "DataCrc32c",
					    1));
		kf_buf_release(&ct);
	} else if (in.len < 6 || memcmp(in.data, hdr, 6) != 0) {
		rc = answer(resp, 400,
			    json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 400,
				      "status", "INVALID_ARGUMENT", "message",
				      "Decryption failed"));
	} else {
		rc = answer_bytes(resp, "plaintext", in.data + 6, in.len - 6,
				  json_object());
	}
	kf_buf_release(&in);
	kf_buf_release(&aad);
	return rc;
}

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	if (strstr(req->url, "/token"))
		return gf_fake(req, resp, err);
	if (strncmp(req->url, GCS_EP, strlen(GCS_EP)) == 0)
		return fake_gcs(req, resp);
	return fake_kms(req, resp);
}

/* ---- a provider on the fakes */

static struct kf_provider *provider(struct kf_gcp_auth **a, const char *opt)
{
	struct kf_provider *p = calloc(1, sizeof(*p));
	struct kf_gcp *s = calloc(1, sizeof(*s));
	struct kf_err err = KF_ERR_INIT;

	KT_CHECK(p && s);
	gf_reset();
	fake_reset();
	*a = gf_make_auth();
	kf_http_set_transport(fake);
	pthread_mutex_init(&s->mu, NULL);
	gf_make_kms(&s->kms, *a);
	KT_EQ_INT(kf_gcs_init(&s->gcs, GCS_EP, *a, 5000, &err), 0);
	s->gcs.backoff_ms = 1;
	s->gcs.backoff_429_ms = 1;
	s->projects[0] = strdup("p1");
	s->nprojects = 1;
	gf_path(s->store, sizeof(s->store), "%s/gcp", kt_tmpdir());
	if (opt)
		KT_EQ_INT(kf_gcp_bucket_config(s, opt, &err), 0);
	p->priv = s;
	p->name = "gcp";
	return p;
}

static void provider_free(struct kf_provider *p, struct kf_gcp_auth *a)
{
	struct kf_gcp *s = p->priv;

	free(s->projects[0]);
	pthread_mutex_destroy(&s->mu);
	free(s);
	free(p);
	fake_reset();
	gf_done(a);
}

static int put(struct kf_provider *p, const char *path, const char *v,
	       int flags, struct kf_buf *ver, struct kf_err *err)
{
	return kf_gcp_commit(p, path, (const unsigned char *)v, strlen(v), "t",
			     flags, ver, err);
}

static int read_is(struct kf_provider *p, const char *path, const char *v)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = NULL;
	int ok = kf_gcp_read(p, path, &s, &err) == 0 && s &&
		 s->len == strlen(v) && memcmp(s->data, v, s->len) == 0;

	kf_secret_free(s);
	return ok;
}

#define V "p1/global/r/k/"

KT_TEST(gcp_bucket_config_and_names)
{
	struct kf_gcp *s = calloc(1, sizeof(*s));
	struct kf_gcp_path g;
	struct kf_err err = KF_ERR_INIT;
	char obj[KF_GCS_MAX_NAME + 1];
	static const char *const bad[] = { "",	     "/x",	 "BK1",	  "b",
					   "bk1//x", "bk1/a//b", "b k1/x" };

	KT_CHECK(s != NULL);
	KT_EQ_INT(kf_gcp_bucket_config(s, "bk1", &err), 0);
	KT_EQ_STR(s->bucket, "bk1");
	KT_EQ_STR(s->prefix, "");
	KT_EQ_INT(kf_gcp_bucket_config(s, "bk1/team/a/", &err), 0);
	KT_EQ_STR(s->bucket, "bk1");
	KT_EQ_STR(s->prefix, "team/a");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kf_gcp t = { 0 };

		KT_EQ_INT(kf_gcp_bucket_config(&t, bad[i], &err), -1);
		KT_EQ_INT(err.code, KF_E_INVALID);
	}
	/* NAME's path form %XX stands for the object's byte. */
	KT_EQ_INT(kf_gcp_path_split(V "db%3Apass%23%252", &g, &err), 0);
	KT_EQ_INT(kf_gcp_bucket_object(s, &g, obj, sizeof(obj), &err), 0);
	KT_EQ_STR(obj, "team/a/p1/global/r/k/db:pass#%2");
	KT_EQ_INT(kf_gcp_bucket_dir(s, &g, obj, sizeof(obj)), 0);
	KT_EQ_STR(obj, "team/a/p1/global/r/k/");
	s->prefix[0] = '\0';
	KT_EQ_INT(kf_gcp_path_split(V "plain", &g, &err), 0);
	KT_EQ_INT(kf_gcp_bucket_object(s, &g, obj, sizeof(obj), &err), 0);
	KT_EQ_STR(obj, "p1/global/r/k/plain");
	/* Not the canonical form: no object has that path. */
	KT_EQ_INT(kf_gcp_path_split(V "a%3ab", &g, &err), 0);
	KT_EQ_INT(kf_gcp_bucket_object(s, &g, obj, sizeof(obj), &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	free(s);
}

struct names {
	char all[1024];
	int n;
};

static int collect(void *ctx, const char *name, const struct kf_attr *a)
{
	struct names *nm = ctx;

	KT_CHECK(a && a->kind == KF_KIND_FILE);
	nm->n++;
	(void)snprintf(nm->all + strlen(nm->all),
		       sizeof(nm->all) - strlen(nm->all), "%s;", name);
	return 0;
}

KT_TEST(gcp_bucket_write_read_list_rm)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, "bk1/team");
	struct kf_gcp *s = p->priv;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf ver, st, out;
	struct kf_gcp_path g;
	struct names nm = { "", 0 };
	struct kf_attr at;
	char want[64];

	kf_buf_init(&ver, 128);
	kf_buf_init(&st, 128);
	kf_buf_init(&out, 2048);
	/* A new name: created with ifGenerationMatch=0, no stat first. */
	KT_EQ_INT(put(p, V "db%3Apass", CANARY, KF_COMMIT_CREATE, &ver, &err),
		  0);
	KT_EQ_INT(n_upload, 1);
	KT_EQ_INT(n_get, 0);
	KT_EQ_INT(nobj, 1);
	KT_EQ_STR(objs[0].name, "team/p1/global/r/k/db:pass");
	KT_EQ_STR(objs[0].kms_key, KEY);
	KT_CHECK(!canary_seen);
	(void)snprintf(want, sizeof(want), "%lld", objs[0].gen);
	KT_EQ_STR(kf_buf_str(&ver), want);
	/* A cold read: metadata, media, one decrypt; version = generation. */
	n_get = n_media = n_kms_dec = 0;
	{
		struct kf_secret *v = NULL;

		KT_EQ_INT(kf_gcp_read(p, V "db%3Apass", &v, &err), 0);
		KT_CHECK(v && v->len == strlen(CANARY) &&
			 memcmp(v->data, CANARY, v->len) == 0);
		KT_EQ_STR(v->version, want);
		kf_secret_free(v);
	}
	KT_EQ_INT(n_get + n_media + n_kms_dec, 3);
	/* The stamp: one objects.get, equal to the version a read sets. */
	KT_EQ_INT(kf_gcp_stamp(p, V "db%3Apass", &st, &err), 0);
	KT_EQ_STR(kf_buf_str(&st), want);
	/* Listing: all pages (of 2), names escaped, no value fetched. */
	KT_EQ_INT(put(p, V "b", "vb", KF_COMMIT_CREATE, NULL, &err), 0);
	KT_EQ_INT(put(p, V "c", "vc", KF_COMMIT_CREATE, NULL, &err), 0);
	add("team/p1/global/r/k/sub/x", KEY, "z", 1);	  /* a prefix */
	add("team/p1/global/r/k2/other", KEY, "z", 1);	  /* another key */
	add("p1/global/r/k/outside-prefix", KEY, "z", 1); /* no prefix */
	n_get = n_media = n_kms_dec = n_list = 0;
	KT_EQ_INT(kf_gcp_path_split(V, &g, &err), 0);
	KT_EQ_INT(kf_gcp_list_store(s, &g, collect, &nm, &err), 0);
	KT_EQ_STR(nm.all, "db%3Apass;b;c;");
	KT_EQ_INT(n_list, 2);
	KT_EQ_INT(n_get + n_media + n_kms_dec, 0);
	/* getattr and user.keyfs.id. */
	KT_EQ_INT(kf_gcp_getattr_s(s, V "b", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_FILE);
	KT_CHECK(at.mtime > 0);
	KT_EQ_INT(kf_gcp_getxattr(p, V "db%3Apass", "user.keyfs.id", &out,
				  &err),
		  0);
	KT_EQ_STR(kf_buf_str(&out), "gs://bk1/team/p1/global/r/k/db:pass");
	/* An existing name written without CREATE: its generation is known. */
	KT_EQ_INT(put(p, V "b", "vb2", 0, NULL, &err), 0);
	KT_CHECK(read_is(p, V "b", "vb2"));
	/* rm: delete with the live generation. */
	kf_buf_reset(&st);
	KT_EQ_INT(kf_gcp_stamp(p, V "b", &st, &err), 0);
	KT_EQ_INT(kf_gcp_unlink(p, V "b", &err), 0);
	(void)snprintf(want, sizeof(want), "ifGenerationMatch=%s",
		       kf_buf_str(&st));
	KT_CHECK(strstr(last_delete_url, want) != NULL);
	KT_EQ_INT(kf_gcp_stamp(p, V "b", &st, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_getattr_s(s, V "b", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* A gone value is not re-created by a write without CREATE. */
	KT_EQ_INT(put(p, V "gone", "x", 0, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* Read-only mounts write nothing. */
	s->read_only = 1;
	KT_EQ_INT(put(p, V "c", "x", 0, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_ROFS);
	KT_EQ_INT(kf_gcp_unlink(p, V "c", &err), -1);
	KT_EQ_INT(err.code, KF_E_ROFS);
	kf_buf_release(&ver);
	kf_buf_release(&st);
	kf_buf_release(&out);
	provider_free(p, a);
}

struct vlist {
	char all[512];
	int latest;
};

static int vcollect(void *ctx, const char *version, int64_t created,
		    const char *labels)
{
	struct vlist *vl = ctx;

	KT_CHECK(created > 0);
	if (strcmp(labels, "latest") == 0)
		vl->latest++;
	(void)snprintf(vl->all + strlen(vl->all),
		       sizeof(vl->all) - strlen(vl->all), "%s%s;", version,
		       labels[0] ? "*" : "");
	return 0;
}

KT_TEST(gcp_bucket_412_round_and_versions)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, "bk1");
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct vlist vl = { "", 0 };
	char want[128];
	long long g1;
	int imm = -1;

	KT_EQ_INT(put(p, V "n", "one", KF_COMMIT_CREATE, NULL, &err), 0);
	g1 = objs[0].gen;
	/* Another host writes between our stat and our put: one more round
	 * with the new preconditions, and the write lands. */
	race_left = 1;
	n_upload = n_get = 0;
	KT_EQ_INT(put(p, V "n", "two", 0, NULL, &err), 0);
	KT_EQ_INT(n_upload, 2);
	KT_EQ_INT(n_get, 1);
	KT_CHECK(read_is(p, V "n", "two"));
	/* A create of a name another mount made: 412, re-stat, put. */
	add("p1/global/r/k/m", KEY, "x", 1);
	n_upload = 0;
	KT_EQ_INT(put(p, V "m", "mine", KF_COMMIT_CREATE, NULL, &err), 0);
	KT_EQ_INT(n_upload, 2);
	KT_CHECK(read_is(p, V "m", "mine"));
	/* Versions: every generation, "latest" on the live one. */
	KT_EQ_INT(kf_gcp_versions(p, V "n", vcollect, &vl, &err), 0);
	(void)snprintf(want, sizeof(want), "%lld;%lld;%lld*;", g1, g1 + 1,
		       g1 + 2);
	KT_EQ_STR(vl.all, want);
	KT_EQ_INT(vl.latest, 1);
	/* NAME:GEN reads that generation, immutable. */
	(void)snprintf(want, sizeof(want), "%lld", g1);
	KT_EQ_INT(kf_gcp_read_version(p, V "n", want, &v, &imm, &err), 0);
	KT_CHECK(v && v->len == 3 && memcmp(v->data, "one", 3) == 0);
	KT_EQ_STR(v->version, want);
	KT_EQ_INT(imm, 1);
	kf_secret_free(v);
	v = NULL;
	KT_EQ_INT(kf_gcp_read_version(p, V "n", "latest", &v, &imm, &err), 0);
	KT_CHECK(v && v->len == 3 && memcmp(v->data, "two", 3) == 0);
	KT_EQ_INT(imm, 0);
	kf_secret_free(v);
	v = NULL;
	KT_EQ_INT(kf_gcp_read_version(p, V "n", "x1", &v, &imm, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_read_version(p, V "n", "999999", &v, &imm, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_versions(p, V "none", vcollect, &vl, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	/* Others keep winning: 3 rounds, then EBUSY; nothing half-written. */
	race_left = 100;
	n_upload = 0;
	KT_EQ_INT(put(p, V "n", "three", 0, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_EQ_INT(n_upload, 3);
	race_left = 0;
	KT_CHECK(read_is(p, V "n", "two"));
	provider_free(p, a);
}

KT_TEST(gcp_bucket_key_check_and_renamed_object)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, "bk1");
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct fobj *o;

	KT_EQ_INT(put(p, V "x", "secret-x", KF_COMMIT_CREATE, NULL, &err), 0);
	/* berglas-kms-key names another key: EIO, before any decrypt. */
	(void)snprintf(objs[0].kms_key, sizeof(objs[0].kms_key), "%s",
		       "projects/p1/locations/global/keyRings/r/cryptoKeys/o");
	n_kms_dec = 0;
	KT_EQ_INT(kf_gcp_read(p, V "x", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_INT(n_kms_dec, 0);
	KT_CHECK(v == NULL);
	/* The same bytes under another name: the AAD does not match. */
	o = add("p1/global/r/k/y", KEY, objs[0].data, objs[0].len);
	KT_CHECK(o != NULL);
	KT_EQ_INT(kf_gcp_read(p, V "y", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(v == NULL);
	/* Too large for the bucket store. */
	{
		unsigned char *big = calloc(1, KF_BERGLAS_MAX_VALUE + 1);

		KT_EQ_INT(kf_gcp_commit(p, V "big", big,
					KF_BERGLAS_MAX_VALUE + 1, "t",
					KF_COMMIT_CREATE, NULL, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_TOOBIG);
		free(big);
	}
	/* check_write: one objects.get; a missing name only with CREATE. */
	n_get = 0;
	KT_EQ_INT(kf_gcp_check_write(p, V "new", KF_COMMIT_CREATE, &err), 0);
	KT_EQ_INT(kf_gcp_check_write(p, V "new", 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(n_get, 2);
	provider_free(p, a);
}

/* A lookup then a read: one objects.get; the stat is used once, within
 * its second, and a generation gone since is stat'ed again. */
KT_TEST(gcp_bucket_read_after_getattr)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, "bk1");
	struct kf_gcp *s = p->priv;
	struct kf_err err = KF_ERR_INIT;
	struct kf_attr at;

	KT_EQ_INT(put(p, V "r", "first", KF_COMMIT_CREATE, NULL, &err), 0);
	n_get = n_media = n_kms_dec = 0;
	KT_EQ_INT(kf_gcp_getattr_s(s, V "r", &at, &err), 0);
	KT_CHECK(read_is(p, V "r", "first"));
	KT_EQ_INT(n_get, 1);
	KT_EQ_INT(n_media, 1);
	KT_EQ_INT(n_kms_dec, 1);
	/* Consumed: the next read stats again. */
	KT_CHECK(read_is(p, V "r", "first"));
	KT_EQ_INT(n_get, 2);
	/* Another writer after the stat, the stat's generation deleted
	 * since: the media read misses, the read stats again. */
	KT_EQ_INT(kf_gcp_getattr_s(s, V "r", &at, &err), 0);
	{
		static struct kf_gcp_seen keep[KF_GCP_SEEN];
		long long old = objs[0].gen;

		memcpy(keep, s->seen, sizeof(keep));
		KT_EQ_INT(put(p, V "r", "second", 0, NULL, &err), 0);
		memcpy(s->seen, keep, sizeof(keep)); /* the stat of old */
		for (int i = 0; i < nobj; i++)
			if (objs[i].gen == old)
				objs[i].name[0] = '\0';
	}
	n_get = n_media = 0;
	KT_CHECK(read_is(p, V "r", "second"));
	KT_EQ_INT(n_media, 2);
	KT_EQ_INT(n_get, 1);
	provider_free(p, a);
}

KT_TEST(gcp_bucket_probe)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, "bk1/pre");
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_gcp_bucket_probe(p->priv, &err), 0);
	KT_EQ_INT(n_list, 1);
	provider_free(p, a);
}

KT_TEST(gcp_local_store_keeps_no_versions)
{
	struct kf_gcp_auth *a;
	struct kf_provider *p = provider(&a, NULL);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct vlist vl = { "", 0 };
	int imm = -1;

	KT_EQ_INT(kf_gcp_read_version(p, V "n", "1", &v, &imm, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_gcp_versions(p, V "n", vcollect, &vl, &err), -1);
	KT_EQ_INT(err.code, KF_E_ISDIR);
	KT_EQ_INT(kf_gcp_versions(p, "p1/global/r/k", vcollect, &vl, &err), -1);
	KT_EQ_INT(err.code, KF_E_ISDIR);
	KT_EQ_INT(n_list + n_get, 0);
	provider_free(p, a);
}
