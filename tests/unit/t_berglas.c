/* Unit tests for the berglas format (cloud/gcp/berglas.c) and the AAD
 * variants of KMS encrypt/decrypt, through a fake Cloud KMS on the HTTP
 * transport seam that binds its ciphertext to the AAD it was given: seal
 * and open, a known answer made by Python's cryptography (as berglas's Go
 * code lays it out), a renamed object, another key, damaged bodies, the
 * key-name trimming and the object name <-> path component escaping. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "core/json.h"
#include "gcp/berglas.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a fake KMS: ciphertext = "KF" || CRC32C(AAD) || plaintext */

static int kms_calls;
static char last_body[8192];
static unsigned char fake_dek_override[64];
static size_t fake_dek_len; /* decrypt answers this instead, when set */

static int b64_field(json_t *j, const char *k, struct kf_buf *out)
{
	const char *s = json_string_value(json_object_get(j, k));

	return s ? kf_base64_decode(s, strlen(s), out) : 0;
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

static int fake_kms(const struct kf_http_req *req, struct kf_http_resp *resp,
		    struct kf_err *err)
{
	json_t *j;
	struct kf_buf in, aad;
	unsigned char hdr[6];
	uint32_t c;
	int rc;

	if (strstr(req->url, "/token"))
		return gf_fake(req, resp, err);
	kms_calls++;
	(void)snprintf(last_body, sizeof(last_body), "%.*s", (int)req->body_len,
		       (const char *)req->body);
	j = json_loadb(req->body, req->body_len, 0, NULL);
	kf_buf_init(&in, 1 << 20);
	kf_buf_init(&aad, 1 << 20);
	b64_field(j, strstr(req->url, ":encrypt") ? "plaintext" : "ciphertext",
		  &in);
	b64_field(j, "additionalAuthenticatedData", &aad);
	json_decref(j);
	c = kf_crc32c(0, aad.data, aad.len);
	memcpy(hdr, "KF", 2);
	hdr[2] = c >> 24, hdr[3] = c >> 16, hdr[4] = c >> 8, hdr[5] = c;
	if (strstr(req->url, ":encrypt")) {
		const char *v1 = strstr(req->url, "/v1/");
		char name[512] = KEY "/cryptoKeyVersions/1";
		struct kf_buf ct;

		/* A request naming a version is answered by that version. */
		if (v1 && strstr(v1, "/cryptoKeyVersions/"))
			(void)snprintf(name, sizeof(name), "%.*s",
				       (int)strcspn(v1 + 4, ":"), v1 + 4);

		kf_buf_init(&ct, 1 << 20);
		kf_buf_add(&ct, hdr, 6);
		kf_buf_add(&ct, in.data, in.len);
		rc = answer_bytes(resp, "ciphertext", ct.data, ct.len,
				  json_pack("{s:s,s:b,s:b}", "name", name,
					    "verifiedPlaintextCrc32c", 1,
					    "verifiedAdditionalAuthenticated"
					    "DataCrc32c",
					    1));
		kf_buf_release(&ct);
	} else if (in.len < 6 || memcmp(in.data, hdr, 6) != 0) {
		rc = answer(resp, 400,
			    json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 400,
				      "status", "INVALID_ARGUMENT", "message",
				      "Decryption failed: the ciphertext is "
				      "invalid."));
	} else if (fake_dek_len) {
		rc = answer_bytes(resp, "plaintext", fake_dek_override,
				  fake_dek_len, json_object());
	} else {
		rc = answer_bytes(resp, "plaintext", in.data + 6, in.len - 6,
				  json_object());
	}
	kf_buf_release(&in);
	kf_buf_release(&aad);
	return rc;
}

static struct kf_gcp_auth *setup(struct kf_gcp_kms *k)
{
	struct kf_gcp_auth *a;

	gf_reset();
	a = gf_make_auth();
	gf_make_kms(k, a);
	kf_http_set_transport(fake_kms);
	kms_calls = 0;
	fake_dek_len = 0;
	return a;
}

KT_TEST(berglas_seal_open_round_trip)
{
	static const char *const names[] = { "a", "ml/keys/api", "x:y#z %2F" };
	static const size_t sizes[] = { 0, 1, 13, 4096, 300000 };
	struct kf_gcp_kms k;
	struct kf_gcp_auth *a = setup(&k);
	struct kf_err err = KF_ERR_INIT;
	unsigned char *v = malloc(300000);

	for (size_t i = 0; i < 300000; i++)
		v[i] = (unsigned char)(i * 7 + 3);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		const char *obj = names[s % 3];
		struct kf_buf body;
		struct kf_secret *out = NULL;
		const char *colon;
		json_t *req;
		struct kf_buf sealed;

		kf_buf_init(&body, 1 << 20);
		kms_calls = 0;
		KT_EQ_INT(kf_berglas_seal(&k, KEY, obj, v, sizes[s], &body,
					  &err),
			  0);
		KT_EQ_INT(kms_calls, 1);
		/* The KMS request binds the DEK to the object name. */
		req = json_loads(last_body, 0, NULL);
		{
			struct kf_buf want;

			kf_buf_init(&want, 4096);
			kf_base64_encode(obj, strlen(obj), &want);
			KT_EQ_STR(json_string_value(json_object_get(
					  req, "additionalAuthenticatedData")),
				  kf_buf_str(&want));
			kf_buf_release(&want);
		}
		json_decref(req);
		/* base64(wrapped):base64(nonce || ct || tag) */
		colon = strchr(body.data, ':');
		KT_CHECK(colon != NULL);
		kf_buf_init(&sealed, 1 << 20);
		KT_EQ_INT(kf_base64_decode(colon + 1, strlen(colon + 1),
					   &sealed),
			  0);
		KT_EQ_INT(sealed.len, 12 + sizes[s] + 16);
		kf_buf_release(&sealed);
		KT_EQ_INT(kf_berglas_open(&k, KEY, obj, KEY, body.data,
					  body.len, &out, &err),
			  0);
		KT_CHECK(out && out->len == sizes[s]);
		if (out && sizes[s])
			KT_EQ_MEM(out->data, v, sizes[s]);
		kf_secret_free(out);
		/* Under another object name: KMS refuses the AAD. */
		KT_EQ_INT(kf_berglas_open(&k, KEY, "renamed", KEY, body.data,
					  body.len, &out, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
		KT_CHECK(out == NULL);
		kf_buf_release(&body);
	}
	free(v);
	/* Too large: refused before any call. */
	{
		struct kf_buf body;
		unsigned char *big = calloc(1, KF_BERGLAS_MAX_VALUE + 1);

		kf_buf_init(&body, 4 << 20);
		kms_calls = 0;
		KT_EQ_INT(kf_berglas_seal(&k, KEY, "a", big,
					  KF_BERGLAS_MAX_VALUE + 1, &body,
					  &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_TOOBIG);
		KT_EQ_INT(kms_calls, 0);
		kf_buf_release(&body);
		free(big);
	}
	gf_done(a);
}

KT_TEST(berglas_open_refuses)
{
	struct kf_gcp_kms k;
	struct kf_gcp_auth *a = setup(&k);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *out = NULL;
	struct kf_buf body;
	char *bad;

	kf_buf_init(&body, 1 << 20);
	KT_EQ_INT(kf_berglas_seal(&k, KEY "/cryptoKeyVersions/3", "o", "val", 3,
				  &body, &err),
		  0);
	/* Metadata naming another key, or none: refused, no KMS call. */
	kms_calls = 0;
	KT_EQ_INT(kf_berglas_open(&k, KEY, "o", KEY "2", body.data, body.len,
				  &out, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_INT(kf_berglas_open(&k, KEY, "o", NULL, body.data, body.len, &out,
				  &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_INT(kms_calls, 0);
	/* The expected key may carry a version: compared without it. */
	KT_EQ_INT(kf_berglas_open(&k, KEY "/cryptoKeyVersions/3", "o", KEY,
				  body.data, body.len, &out, &err),
		  0);
	kf_secret_free(out);
	out = NULL;
	/* One flipped byte of the sealed part: GCM refuses. */
	bad = strdup(body.data);
	bad[body.len - 6] = bad[body.len - 6] == 'A' ? 'B' : 'A';
	KT_EQ_INT(kf_berglas_open(&k, KEY, "o", KEY, bad, body.len, &out, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(out == NULL);
	free(bad);
	/* A DEK that is not 32 bytes (berglas always makes 32). */
	fake_dek_len = 16;
	KT_EQ_INT(kf_berglas_open(&k, KEY, "o", KEY, body.data, body.len, &out,
				  &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	fake_dek_len = 0;
	kf_buf_release(&body);
	gf_done(a);
}

/* A sealed part made by Python's cryptography AESGCM, laid out as
 * berglas's envelopeEncrypt does: DEK 00..1f, nonce 100..111, no AAD. */
KT_TEST(berglas_known_answer)
{
	static const char sealed64[] =
		"ZGVmZ2hpamtsbW5vIH6yChbJNPtMBTOJqdNNUlIjmdJ2MUpwoGy4fR4=";
	struct kf_gcp_kms k;
	struct kf_gcp_auth *a = setup(&k);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *out = NULL;
	unsigned char wrapped[6 + 32];
	struct kf_buf body;
	uint32_t c = kf_crc32c(0, "obj/name", 8);

	memcpy(wrapped, "KF", 2);
	wrapped[2] = c >> 24, wrapped[3] = c >> 16, wrapped[4] = c >> 8;
	wrapped[5] = c;
	for (int i = 0; i < 32; i++)
		wrapped[6 + i] = (unsigned char)i;
	kf_buf_init(&body, 4096);
	kf_base64_encode(wrapped, sizeof(wrapped), &body);
	kf_buf_adds(&body, ":");
	kf_buf_adds(&body, sealed64);
	KT_EQ_INT(kf_berglas_open(&k, KEY, "obj/name", KEY, body.data, body.len,
				  &out, &err),
		  0);
	KT_CHECK(out && out->len == 13);
	if (out)
		KT_EQ_MEM(out->data, "hello berglas", 13);
	kf_secret_free(out);
	kf_buf_release(&body);
	gf_done(a);
}

KT_TEST(berglas_parse_bodies)
{
	static const struct {
		const char *body;
		int ok;
		size_t wl, sl;
	} cases[] = {
		{ "AQID:"
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
		  1, 3, 28 },
		{ "AQID", 0, 0, 0 }, /* no ':' */
		{ ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 0, 0, 0 },
		{ "AQID:AAAA", 0, 0, 0 }, /* shorter than nonce+tag */
		{ "AQ:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 0, 0, 0 },
		{ "AQ-_:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 0, 0, 0 },
		{ "AQID:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0, 0, 0 },
		{ "AQID:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:", 0, 0, 0 },
		{ "AQ=D:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 0, 0, 0 },
		{ "AQID:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", 0, 0, 0 },
	};
	struct kf_err err = KF_ERR_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kf_buf w, s;

		kf_buf_init(&w, 1 << 20);
		kf_buf_init(&s, 1 << 20);
		KT_EQ_INT(kf_berglas_parse(cases[i].body, strlen(cases[i].body),
					   &w, &s, &err),
			  cases[i].ok ? 0 : -1);
		if (cases[i].ok) {
			KT_EQ_INT(w.len, cases[i].wl);
			KT_EQ_INT(s.len, cases[i].sl);
		} else {
			KT_EQ_INT(err.code, KF_E_INTEGRITY);
			KT_EQ_INT(w.len + s.len, 0);
		}
		kf_buf_release(&w);
		kf_buf_release(&s);
	}
}

KT_TEST(berglas_key_name_trims_version)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ KEY, KEY },
		{ KEY "/cryptoKeyVersions/7", KEY },
		{ KEY "/cryptoKeyVersions/7/x", KEY },
		{ "projects/p/locations/l/keyRings/r", "projects/p/locations/"
						       "l/keyRings/r" },
	};
	struct kf_err err = KF_ERR_INIT;
	char out[512], tiny[8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		KT_EQ_INT(kf_berglas_key_name(cases[i].in, out, sizeof(out),
					      &err),
			  0);
		KT_EQ_STR(out, cases[i].out);
	}
	KT_EQ_INT(kf_berglas_key_name(KEY, tiny, sizeof(tiny), &err), -1);
}

KT_TEST(berglas_write_opts_are_berglas)
{
	struct kf_gcs_write w;
	const char *meta[5];

	kf_berglas_write_opts(&w, meta, KEY, 0, -1);
	KT_EQ_STR(w.cache_control,
		  "private, no-cache, no-store, no-transform, max-age=0");
	KT_EQ_STR(w.content_type, "text/plain; charset=utf-8");
	KT_EQ_STR(w.metadata[0], "berglas-secret");
	KT_EQ_STR(w.metadata[1], "1");
	KT_EQ_STR(w.metadata[2], "berglas-kms-key");
	KT_EQ_STR(w.metadata[3], KEY);
	KT_CHECK(w.metadata[4] == NULL);
	KT_EQ_INT(w.if_generation, 0);
	KT_EQ_INT(w.if_metageneration, -1);
}

KT_TEST(berglas_name_escaping)
{
	static const struct {
		const char *name, *path;
	} pairs[] = {
		{ "plain", "plain" },
		{ "a:b", "a%3Ab" },
		{ "v#3", "v%233" },
		{ "100%", "100%25" },
		{ "%3A", "%253A" },
		{ "tab\there", "tab%09here" },
		{ ".", "%2E" },
		{ "..", "%2E%2E" },
		{ "...", "..." },
		{ ".hidden", ".hidden" },
		{ "sp ace+\xc3\xa9", "sp ace+\xc3\xa9" },
		{ "\x7f", "%7F" },
	};
	static const char *const bad_paths[] = {
		"",	"a:b", "a#b",  "%3a", "%41", "%2",	  "%",
		"a%G1", "a/b", "%2Ex", ".",   "..",  "%2E%2E%2E",
	};
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;

	kf_buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		kf_buf_reset(&b);
		KT_EQ_INT(kf_berglas_name_to_path(pairs[i].name,
						  strlen(pairs[i].name), &b,
						  &err),
			  0);
		KT_EQ_STR(kf_buf_str(&b), pairs[i].path);
		kf_buf_reset(&b);
		KT_EQ_INT(kf_berglas_path_to_name(pairs[i].path,
						  strlen(pairs[i].path), &b,
						  &err),
			  0);
		KT_EQ_STR(kf_buf_str(&b), pairs[i].name);
	}
	/* A NUL byte inside an object name component round-trips too. */
	kf_buf_reset(&b);
	KT_EQ_INT(kf_berglas_name_to_path("a\0b", 3, &b, &err), 0);
	KT_EQ_STR(kf_buf_str(&b), "a%00b");
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		kf_buf_reset(&b);
		KT_EQ_INT(kf_berglas_path_to_name(bad_paths[i],
						  strlen(bad_paths[i]), &b,
						  &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INVALID);
		KT_EQ_INT(b.len, 0);
	}
	KT_EQ_INT(kf_berglas_name_to_path("", 0, &b, &err), -1);
	KT_EQ_INT(kf_berglas_name_to_path("a/b", 3, &b, &err), -1); /* fuzz */
	kf_buf_release(&b);
}

KT_TEST(gcp_kms_aad_request_fields)
{
	struct kf_gcp_kms k;
	struct kf_gcp_auth *a = setup(&k);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *pt = NULL;
	struct kf_buf ct;
	json_t *req;
	char crc[16];

	kf_buf_init(&ct, 4096);
	KT_EQ_INT(kf_gcp_kms_encrypt_aad(&k, KEY, "hello", 5, "ctx", 3, &ct,
					 NULL, 0, &err),
		  0);
	req = json_loads(last_body, 0, NULL);
	KT_EQ_STR(json_string_value(
			  json_object_get(req, "additionalAuthenticatedData")),
		  "Y3R4");
	(void)snprintf(crc, sizeof(crc), "%u", kf_crc32c(0, "ctx", 3));
	KT_EQ_STR(json_string_value(
			  json_object_get(req,
					  "additionalAuthenticatedDataCrc32c")),
		  crc);
	json_decref(req);
	KT_EQ_INT(kf_gcp_kms_decrypt_aad(&k, KEY, ct.data, ct.len, "ctx", 3,
					 &pt, &err),
		  0);
	KT_CHECK(pt && pt->len == 5);
	kf_secret_free(pt);
	pt = NULL;
	KT_EQ_INT(kf_gcp_kms_decrypt_aad(&k, KEY, ct.data, ct.len, "ctX", 3,
					 &pt, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(kf_err_is(&err, KF_R_BAD_CIPHERTEXT));
	/* Without AAD the field is absent and its CRC32C is "0". */
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, ct.data, ct.len, &pt, &err), -1);
	req = json_loads(last_body, 0, NULL);
	KT_CHECK(json_object_get(req, "additionalAuthenticatedData") == NULL);
	KT_EQ_STR(json_string_value(
			  json_object_get(req,
					  "additionalAuthenticatedDataCrc32c")),
		  "0");
	json_decref(req);
	kf_buf_release(&ct);
	gf_done(a);
}
