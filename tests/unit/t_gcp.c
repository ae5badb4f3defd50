/* Unit tests for cloud/gcp/auth.c and cloud/gcp/kms.c through the HTTP
 * transport seam: JWT assembly and signature (test RSA key generated with
 * OpenSSL at run time), token grants and refresh, the CRC32C integrity
 * checks of encrypt/decrypt, retry classification and behaviour, version
 * creation never retried, ALREADY_EXISTS after an ambiguous retry. */
#include "kt.h"
#include "core/crypto.h"
#include "gcp/tree.h"
#include "gcp/auth.h"
#include "gcp/kms.h"
#include "core/http.h"
#include "core/clock.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#define TOKEN_URI "https://oauth2.test.example/token"
#define KEY "projects/p1/locations/global/keyRings/r/cryptoKeys/k"

/* ---- a test RSA key, made once */

static char *test_pem;
static EVP_PKEY *test_key;

static const char *pem(void)
{
	BIO *b;
	char *d;
	long n;

	if (test_pem)
		return test_pem;
	test_key = EVP_RSA_gen(2048);
	if (!test_key)
		return NULL;
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, test_key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &d);
	test_pem = calloc(1, (size_t)n + 1);
	memcpy(test_pem, d, (size_t)n);
	BIO_free(b);
	return test_pem;
}

static int verify_sig(const char *signed_part, size_t n, const char *sig_b64)
{
	struct kf_buf sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	kf_buf_init(&sig, 4096);
	ok = kf_base64_decode(sig_b64, strlen(sig_b64), &sig) == 0 &&
	     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, test_key) == 1 &&
	     EVP_DigestVerify(md, (unsigned char *)sig.data, sig.len,
			      (const unsigned char *)signed_part, n) == 1;
	EVP_MD_CTX_free(md);
	kf_buf_release(&sig);
	return ok;
}

static json_t *decode_seg(const char *s, size_t n)
{
	struct kf_buf b;
	json_t *j;

	kf_buf_init(&b, 65536);
	if (kf_base64_decode(s, n, &b) < 0) {
		kf_buf_release(&b);
		return NULL;
	}
	j = json_loads(kf_buf_str(&b), 0, NULL);
	kf_buf_release(&b);
	return j;
}

/* Check a JWT's shape, signature and claims; returns 1 when all hold. */
static int check_jwt(const char *jwt, const char *email, const char *aud,
		     long long now)
{
	const char *d1 = strchr(jwt, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	json_t *h, *c;
	int ok;

	if (!d1 || !d2 || strchr(jwt, '=') || strchr(d2 + 1, '.'))
		return 0;
	h = decode_seg(jwt, (size_t)(d1 - jwt));
	c = decode_seg(d1 + 1, (size_t)(d2 - d1 - 1));
	ok = h && c &&
	     strcmp(json_string_value(json_object_get(h, "alg")), "RS256") ==
		     0 &&
	     strcmp(json_string_value(json_object_get(h, "typ")), "JWT") == 0 &&
	     strcmp(json_string_value(json_object_get(c, "iss")), email) == 0 &&
	     strcmp(json_string_value(json_object_get(c, "aud")), aud) == 0 &&
	     strcmp(json_string_value(json_object_get(c, "scope")),
		    KF_GCP_SCOPE) == 0 &&
	     (now < 0 ||
	      (json_integer_value(json_object_get(c, "iat")) == now &&
	       json_integer_value(json_object_get(c, "exp")) == now + 3600)) &&
	     verify_sig(jwt, (size_t)(d2 - jwt), d2 + 1);
	json_decref(h);
	json_decref(c);
	return ok;
}

KT_TEST(gcp_jwt_assertion_signed_and_shaped)
{
	struct kf_buf out;
	struct kf_err err = KF_ERR_INIT;
	const char *k = pem();
	const char *d1;
	json_t *h;

	KT_CHECK(k != NULL);
	kf_buf_init_sensitive(&out, 65536);
	KT_EQ_INT(kf_gcp_jwt_assertion(k, strlen(k), "kid123",
				       "sa@p1.iam.gserviceaccount.com",
				       TOKEN_URI, KF_GCP_SCOPE, 1700000000,
				       &out, &err),
		  0);
	KT_CHECK(check_jwt(kf_buf_str(&out), "sa@p1.iam.gserviceaccount.com",
			   TOKEN_URI, 1700000000));
	d1 = strchr(kf_buf_str(&out), '.');
	h = decode_seg(kf_buf_str(&out), (size_t)(d1 - kf_buf_str(&out)));
	KT_EQ_STR(json_string_value(json_object_get(h, "kid")), "kid123");
	json_decref(h);
	/* A tampered claim no longer verifies. */
	out.data[d1 - out.data + 3] ^= 1;
	KT_CHECK(!check_jwt(kf_buf_str(&out), "sa@p1.iam.gserviceaccount.com",
			    TOKEN_URI, -1));
	kf_buf_reset(&out);
	/* A bad key fails without quoting it. */
	KT_EQ_INT(kf_gcp_jwt_assertion("-----BEGIN PRIVATE KEY-----\nSECRETX\n",
				       36, NULL, "a@b", TOKEN_URI,
				       KF_GCP_SCOPE, 1, &out, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "SECRETX") == NULL);
	KT_EQ_INT(out.len, 0);
	kf_buf_release(&out);
}

/* ---- the scripted transport */

struct step {
	long status;		/* 0 = network error */
	const char *body;
};

static struct step script[32];
static int nscript, spos;
static char req_url[32][600];
static char req_method[32][8];
static char req_auth[32][128];
static char *req_body[32];
static int nreq, token_calls, token_status = 200;
static char token_body[8192];
static char token_url[600];

static void reset_transport(void)
{
	for (int i = 0; i < nreq; i++)
		free(req_body[i]);
	nscript = spos = nreq = token_calls = 0;
	token_status = 200;
	token_body[0] = '\0';
}

static void push(long status, const char *body)
{
	script[nscript].status = status;
	script[nscript].body = body;
	nscript++;
}

static unsigned token_delay_ms;

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	struct step s = { 500, "{}" };

	if (strstr(req->url, "/token")) {
		char b[128];

		if (token_delay_ms)
			usleep(token_delay_ms * 1000u);
		token_calls++;
		snprintf(token_url, sizeof(token_url), "%s", req->url);
		snprintf(token_body, sizeof(token_body), "%.*s",
			 (int)req->body_len, (const char *)req->body);
		resp->status = token_status;
		if (token_status != 200)
			return kf_buf_adds(&resp->body,
					   "{\"error\":\"invalid_grant\","
					   "\"error_description\":\"bad "
					   "signature\"}");
		snprintf(b, sizeof(b),
			 "{\"access_token\":\"tok%d\",\"expires_in\":3600,"
			 "\"token_type\":\"Bearer\"}",
			 token_calls);
		return kf_buf_adds(&resp->body, b);
	}
	if (nreq < 32) {
		snprintf(req_url[nreq], sizeof(req_url[0]), "%s", req->url);
		snprintf(req_method[nreq], sizeof(req_method[0]), "%s",
			 req->method);
		req_auth[nreq][0] = '\0';
		for (const char *const *h = req->headers; h && *h; h++)
			if (strncmp(*h, "Authorization:", 14) == 0)
				snprintf(req_auth[nreq], sizeof(req_auth[0]),
					 "%s", *h);
		req_body[nreq] = req->body_len ?
					 strndup(req->body, req->body_len) :
					 NULL;
		nreq++;
	}
	if (spos < nscript)
		s = script[spos++];
	if (s.status == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "connection reset");
	resp->status = s.status;
	return kf_buf_adds(&resp->body, s.body);
}

static time_t fake_now = 1700000000;
static time_t clock_now(time_t *t)
{
	if (t)
		*t = fake_now;
	return fake_now;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static char sa_path[512];

static void write_sa(void)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type",
			      "service_account", "project_id", "p1",
			      "private_key_id", "kid1", "private_key", pem(),
			      "client_email", "sa@p1.iam.gserviceaccount.com",
			      "token_uri", TOKEN_URI);

	snprintf(sa_path, sizeof(sa_path), "%s/sa.json", kt_tmpdir());
	json_dump_file(j, sa_path, 0);
	json_decref(j);
}

static struct kf_gcp_auth *make_auth(void)
{
	struct kf_gcp_auth_cfg cfg = { sa_path, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;

	write_sa();
	kf_http_set_transport(fake);
	kf_gcp_auth_set_clock(clock_now);
	kf_gcp_auth_set_backoff_ms(1);
	if (kf_gcp_auth_new(&cfg, &a, &err) < 0)
		kt_fail(__FILE__, __LINE__, "auth: %s", err.msg);
	return a;
}

static void done(struct kf_gcp_auth *a)
{
	kf_gcp_auth_free(a);
	kf_http_set_transport(NULL);
	kf_gcp_auth_set_clock(NULL);
	reset_transport();
}

static void make_kms(struct kf_gcp_kms *k, struct kf_gcp_auth *a)
{
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_gcp_kms_init(k, "http://127.0.0.1:9", a, 5000, &err), 0);
	k->backoff_ms = 1;
	k->backoff_429_ms = 2;
}

KT_TEST(gcp_auth_service_account_grant)
{
	struct kf_gcp_auth *a;
	struct kf_secret *h = NULL;
	struct kf_err err = KF_ERR_INIT;
	char proj[64];
	uint64_t gen;
	const char *pfx = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
			  "%3Ajwt-bearer&assertion=";

	reset_transport();
	fake_now = 1700000000;
	a = make_auth();
	KT_CHECK(a != NULL);
	KT_EQ_INT(token_calls, 1);
	KT_EQ_STR(token_url, TOKEN_URI);
	KT_CHECK(strncmp(token_body, pfx, strlen(pfx)) == 0);
	KT_CHECK(check_jwt(token_body + strlen(pfx),
			   "sa@p1.iam.gserviceaccount.com", TOKEN_URI,
			   1700000000));
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen, &err), 0);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok1");
	kf_secret_free(h);
	KT_CHECK(strstr(kf_gcp_auth_source(a), "service account key") != NULL);
	unsetenv("GOOGLE_CLOUD_PROJECT");
	unsetenv("GCLOUD_PROJECT");
	KT_EQ_INT(kf_gcp_auth_project(a, proj, sizeof(proj), &err), 0);
	KT_EQ_STR(proj, "p1");
	setenv("GOOGLE_CLOUD_PROJECT", "envproj", 1);
	KT_EQ_INT(kf_gcp_auth_project(a, proj, sizeof(proj), &err), 0);
	KT_EQ_STR(proj, "envproj");
	unsetenv("GOOGLE_CLOUD_PROJECT");
	done(a);
}

KT_TEST(gcp_auth_refused_grant_is_denied)
{
	struct kf_gcp_auth_cfg cfg = { sa_path, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;

	reset_transport();
	write_sa();
	kf_http_set_transport(fake);
	token_status = 400;
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "invalid_grant");
	KT_CHECK(strstr(err.msg, "BEGIN") == NULL);
	KT_CHECK(a == NULL);
	done(NULL);
}

KT_TEST(gcp_auth_refresh_before_expiry)
{
	struct kf_gcp_auth *a;
	struct kf_secret *h = NULL;
	struct kf_err err = KF_ERR_INIT;
	uint64_t gen1, gen2;

	reset_transport();
	fake_now = 1700000000;
	a = make_auth();
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen1, &err), 0);
	kf_secret_free(h);
	/* Plenty of time left: no refresh. */
	fake_now += 3600 - KF_GCP_REFRESH_MARGIN - 10;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen2, &err), 0);
	KT_EQ_INT(token_calls, 1);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok1");
	kf_secret_free(h);
	/* Under 3 min 45 s left: refreshed. */
	fake_now += 20;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen2, &err), 0);
	KT_EQ_INT(token_calls, 2);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok2");
	KT_CHECK(gen2 != gen1);
	kf_secret_free(h);
	/* Invalidation with a stale generation does nothing... */
	kf_gcp_auth_invalidate(a, gen1);
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_INT(token_calls, 2);
	kf_secret_free(h);
	/* ...with the current one it forces a new token. */
	kf_gcp_auth_invalidate(a, gen2);
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_INT(token_calls, 3);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok3");
	kf_secret_free(h);
	/* A failed refresh while the token is still valid keeps it. */
	fake_now += 3600 - 100;
	token_status = 400;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok3");
	kf_secret_free(h);
	/* Expired and refused: DENIED. */
	fake_now += 200;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(h == NULL);
	done(a);
}

struct hdr_thread {
	struct kf_gcp_auth *a;
	int rc;
	uint64_t ms;
	char tok[64];
};

static void *hdr_worker(void *v)
{
	struct hdr_thread *t = v;
	struct kf_secret *h = NULL;
	struct kf_err err = KF_ERR_INIT;
	uint64_t t0 = kf_clock_now_ms();

	t->rc = kf_gcp_auth_header(t->a, &h, NULL, &err);
	t->ms = kf_clock_now_ms() - t0;
	if (h)
		snprintf(t->tok, sizeof(t->tok), "%s",
			 (const char *)h->data + strlen("Authorization: Bearer "));
	kf_secret_free(h);
	return NULL;
}

KT_TEST(gcp_auth_one_refresher_others_use_valid_token)
{
	struct kf_gcp_auth *a;
	struct hdr_thread t[4];
	pthread_t th[4];
	int fresh = 0;

	reset_transport();
	fake_now = 1700000000;
	a = make_auth();
	/* Inside the refresh margin but still valid; the refresh is slow. */
	fake_now += 3600 - 100;
	token_delay_ms = 400;
	for (int i = 0; i < 4; i++) {
		t[i].a = a;
		t[i].tok[0] = '\0';
		pthread_create(&th[i], NULL, hdr_worker, &t[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	token_delay_ms = 0;
	KT_EQ_INT(token_calls, 2);	/* one refresh for four callers */
	for (int i = 0; i < 4; i++) {
		KT_EQ_INT(t[i].rc, 0);
		if (strcmp(t[i].tok, "tok2") == 0) {
			fresh++;
		} else {
			/* The others did not wait for the network. */
			KT_EQ_STR(t[i].tok, "tok1");
			KT_CHECK(t[i].ms < 200);
		}
	}
	KT_EQ_INT(fresh, 1);
	done(a);
}

KT_TEST(gcp_auth_authorized_user_token_uri_override)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;
	char path[512];

	reset_transport();
	snprintf(path, sizeof(path), "%s/au.json", kt_tmpdir());
	write_file(path, "{\"type\":\"authorized_user\",\"client_id\":\"cid.apps\","
			 "\"client_secret\":\"s&cr t\",\"refresh_token\":\"1//rt\","
			 "\"token_uri\":\"http://127.0.0.1:9/token\"}");
	cfg.credentials = path;
	kf_http_set_transport(fake);
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_STR(token_url, "http://127.0.0.1:9/token");
	KT_EQ_STR(token_body, "grant_type=refresh_token&client_id=cid.apps&"
			      "client_secret=s%26cr%20t&refresh_token=1%2F%2Frt");
	kf_gcp_auth_free(a);
	a = NULL;
	/* Without token_uri: Google's endpoint, as google-auth does. */
	write_file(path, "{\"type\":\"authorized_user\",\"client_id\":\"c\","
			 "\"client_secret\":\"s\",\"refresh_token\":\"r\"}");
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_STR(token_url, KF_GCP_TOKEN_URI);
	/* An unsupported type is refused clearly. */
	kf_gcp_auth_free(a);
	a = NULL;
	write_file(path, "{\"type\":\"external_account\"}");
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTSUP);
	done(a);
}

KT_TEST(gcp_auth_gcloud_project)
{
	char dir[512], path[600], proj[64];
	struct kf_err err = KF_ERR_INIT;

	snprintf(dir, sizeof(dir), "%s/gcloud", kt_tmpdir());
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/configurations", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/active_config", dir);
	write_file(path, "work\n");
	snprintf(path, sizeof(path), "%s/configurations/config_work", dir);
	write_file(path, "[compute]\nproject = nope\n[core]\naccount = a@b\n"
			 "project = from-gcloud\n");
	setenv("CLOUDSDK_CONFIG", dir, 1);
	unsetenv("GOOGLE_CLOUD_PROJECT");
	unsetenv("GCLOUD_PROJECT");
	unsetenv("CLOUDSDK_CORE_PROJECT");
	unsetenv("CLOUDSDK_ACTIVE_CONFIG_NAME");
	unsetenv("GCE_METADATA_HOST");
	KT_EQ_INT(kf_gcp_auth_project(NULL, proj, sizeof(proj), &err), 0);
	KT_EQ_STR(proj, "from-gcloud");
	setenv("CLOUDSDK_CORE_PROJECT", "core-env", 1);
	KT_EQ_INT(kf_gcp_auth_project(NULL, proj, sizeof(proj), &err), 0);
	KT_EQ_STR(proj, "core-env");
	unsetenv("CLOUDSDK_CORE_PROJECT");
	setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "none", 1);
	KT_EQ_INT(kf_gcp_auth_project(NULL, proj, sizeof(proj), &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	unsetenv("CLOUDSDK_ACTIVE_CONFIG_NAME");
	unsetenv("CLOUDSDK_CONFIG");
}

/* ---- KMS */

static char enc_ok[512];

/* A well-formed encrypt answer for ciphertext "CT-bytes". */
static const char *encrypt_answer(const char *name, const char *crc,
				  const char *vp, const char *va)
{
	char c[16];

	if (!crc) {
		snprintf(c, sizeof(c), "%u", kf_crc32c(0, "CT-bytes", 8));
		crc = c;
	}
	snprintf(enc_ok, sizeof(enc_ok),
		 "{\"name\":\"%s\",\"ciphertext\":\"Q1QtYnl0ZXM=\","
		 "\"ciphertextCrc32c\":\"%s\"%s%s%s%s,"
		 "\"protectionLevel\":\"SOFTWARE\"}",
		 name, crc, vp ? ",\"verifiedPlaintextCrc32c\":" : "",
		 vp ? vp : "",
		 va ? ",\"verifiedAdditionalAuthenticatedDataCrc32c\":" : "",
		 va ? va : "");
	return enc_ok;
}

KT_TEST(gcp_kms_encrypt_verifies_response)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_buf ct;
	struct kf_err err = KF_ERR_INIT;
	char used[300];
	static const struct {
		const char *name, *crc, *vp, *va;
		int ok;
	} cases[] = {
		{ KEY "/cryptoKeyVersions/1", NULL, "true", "true", 1 },
		{ KEY "/cryptoKeyVersions/1", "12345", "true", "true", 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, "false", "true", 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, "true", NULL, 0 },
		{ KEY "/cryptoKeyVersions/1", NULL, NULL, NULL, 0 },
		{ KEY "2/cryptoKeyVersions/1", NULL, "true", "true", 0 },
		{ KEY "/cryptoKeyVersions/", NULL, "true", "true", 0 },
		{ "projects/p1/locations/global/keyRings/r/cryptoKeys/x"
		  "/cryptoKeyVersions/1", NULL, "true", "true", 0 },
	};
	json_t *body;

	reset_transport();
	a = make_auth();
	make_kms(&k, a);
	kf_buf_init(&ct, 65536);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *ans = encrypt_answer(cases[i].name, cases[i].crc,
						 cases[i].vp, cases[i].va);

		reset_transport();
		for (int r = 0; r < 3; r++)
			push(200, ans);
		kf_buf_reset(&ct);
		used[0] = '\0';
		if (cases[i].ok) {
			KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "hello", 5, &ct,
						     used, sizeof(used), &err),
				  0);
			KT_EQ_INT(ct.len, 8);
			KT_EQ_MEM(ct.data, "CT-bytes", 8);
			KT_EQ_STR(used, KEY "/cryptoKeyVersions/1");
			KT_EQ_INT(nreq, 1);
		} else {
			KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "hello", 5, &ct,
						     used, sizeof(used), &err),
				  -1);
			KT_EQ_INT(err.code, KF_E_INTEGRITY);
			KT_EQ_INT(ct.len, 0);
			KT_EQ_STR(used, "");
			/* Discarded and retried, as gcloud does. */
			KT_EQ_INT(nreq, 3);
		}
		KT_EQ_STR(req_url[0], "http://127.0.0.1:9/v1/" KEY ":encrypt");
		KT_EQ_STR(req_method[0], "POST");
		body = json_loads(req_body[0], 0, NULL);
		KT_EQ_STR(json_string_value(json_object_get(body, "plaintext")),
			  "aGVsbG8=");
		KT_EQ_STR(json_string_value(
				  json_object_get(body, "plaintextCrc32c")),
			  "2591144780");
		KT_EQ_STR(json_string_value(json_object_get(
				  body, "additionalAuthenticatedDataCrc32c")),
			  "0");
		json_decref(body);
	}
	/* Limits, before any call. */
	reset_transport();
	KT_EQ_INT(kf_gcp_kms_encrypt(&k, KEY, "x", 65537, &ct, NULL, 0, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(nreq, 0);
	kf_buf_release(&ct);
	done(a);
}

KT_TEST(gcp_kms_decrypt_verifies_plaintext_crc)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_secret *pt = NULL;
	struct kf_err err = KF_ERR_INIT;
	json_t *body;

	reset_transport();
	a = make_auth();
	make_kms(&k, a);
	push(200, "{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"2591144780\","
		  "\"usedPrimary\":true}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), 0);
	KT_CHECK(pt != NULL);
	KT_EQ_INT(pt->len, 5);
	KT_EQ_MEM(pt->data, "hello", 5);
	kf_secret_free(pt);
	pt = NULL;
	KT_EQ_STR(req_url[0], "http://127.0.0.1:9/v1/" KEY ":decrypt");
	body = json_loads(req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(json_object_get(body, "ciphertext")),
		  "Q1QtYnl0ZXM=");
	KT_EQ_INT(strtoul(json_string_value(json_object_get(
				  body, "ciphertextCrc32c")),
			  NULL, 10),
		  kf_crc32c(0, "CT-bytes", 8));
	json_decref(body);

	/* Wrong CRC (every attempt): never returned. */
	reset_transport();
	for (int i = 0; i < 3; i++)
		push(200, "{\"plaintext\":\"aGVsbG8=\","
			  "\"plaintextCrc32c\":\"2591144781\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(pt == NULL);
	KT_EQ_INT(nreq, 3);

	/* Missing CRC with non-empty plaintext: 0 != CRC("hello"). */
	reset_transport();
	for (int i = 0; i < 3; i++)
		push(200, "{\"plaintext\":\"aGVsbG8=\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(pt == NULL);

	/* One corrupted answer, then a good one: retried. */
	reset_transport();
	push(200, "{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"1\"}");
	push(200, "{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":\"2591144780\"}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "CT-bytes", 8, &pt, &err), 0);
	KT_EQ_INT(nreq, 2);
	kf_secret_free(pt);
	pt = NULL;

	/* Invalid ciphertext: INTEGRITY, not retried. */
	reset_transport();
	push(400, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\","
		  "\"message\":\"Decryption failed: the ciphertext is "
		  "invalid.\"}}");
	KT_EQ_INT(kf_gcp_kms_decrypt(&k, KEY, "garbage!", 8, &pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_STR(err.provider_code, "INVALID_ARGUMENT");
	KT_EQ_INT(nreq, 1);
	KT_CHECK(pt == NULL);
	done(a);
}

KT_TEST(gcp_kms_retry_classification)
{
	static const struct {
		const char *status;
		long http;
		const char *msg;
		int cls;
		enum kf_code code;
	} v[] = {
		{ "UNAVAILABLE", 503, "", 1, KF_E_UNAVAILABLE },
		{ "DEADLINE_EXCEEDED", 504, "", 1, KF_E_TIMEOUT },
		{ "RESOURCE_EXHAUSTED", 429, "", 2, KF_E_UNAVAILABLE },
		{ "", 429, "", 2, KF_E_UNAVAILABLE },
		{ "", 503, "", 1, KF_E_UNAVAILABLE },
		{ "INTERNAL", 500, "", 1, KF_E_IO },
		{ "NOT_FOUND", 404, "", 0, KF_E_NOTFOUND },
		{ "ALREADY_EXISTS", 409, "", 0, KF_E_EXISTS },
		{ "PERMISSION_DENIED", 403, "", 0, KF_E_DENIED },
		{ "UNAUTHENTICATED", 401, "", 0, KF_E_DENIED },
		{ "INVALID_ARGUMENT", 400, "bad id", 0, KF_E_INVALID },
		{ "INVALID_ARGUMENT", 400,
		  "The checksum in field plaintext_crc32c did not match the "
		  "data in field plaintext.", 1, KF_E_INVALID },
		{ "FAILED_PRECONDITION", 400, "", 0, KF_E_STATE },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		KT_EQ_INT(kf_gcp_kms_retry_class(v[i].status, v[i].http,
						 v[i].msg),
			  v[i].cls);
		KT_EQ_INT(kf_gcp_kms_map(v[i].status, v[i].http), v[i].code);
	}
}

KT_TEST(gcp_kms_retries_transient_only)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	json_t *j = NULL;

	reset_transport();
	a = make_auth();
	make_kms(&k, a);
	push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}");
	push(0, NULL);
	push(429, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}");
	push(200, "{\"name\":\"" KEY "\"}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, &j, &err), 0);
	KT_EQ_INT(nreq, 4);
	KT_EQ_STR(json_string_value(json_object_get(j, "name")), KEY);
	json_decref(j);

	reset_transport();
	push(403, "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\","
		  "\"message\":\"Permission denied (or it may not exist).\"}}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "PERMISSION_DENIED");
	KT_EQ_INT(err.http_status, 403);
	KT_EQ_INT(nreq, 1);

	/* A 500 INTERNAL is transient: retried, then the answer counts. */
	reset_transport();
	push(500, "{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}");
	push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(nreq, 2);

	/* Bounded: persistent UNAVAILABLE gives up after max_attempts. */
	reset_transport();
	for (int i = 0; i < 10; i++)
		push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(nreq, (int)k.max_attempts);

	/* 401: one token refresh, then the call again with the new token. */
	reset_transport();
	token_calls = 5;
	push(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), 0);
	KT_EQ_INT(token_calls, 6);
	KT_EQ_STR(req_auth[0], "Authorization: Bearer tok1");
	KT_EQ_STR(req_auth[1], "Authorization: Bearer tok6");
	/* ...but only once. */
	reset_transport();
	push(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	push(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}");
	push(200, "{}");
	KT_EQ_INT(kf_gcp_kms_get(&k, KEY, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(nreq, 2);
	done(a);
}

KT_TEST(gcp_kms_version_create_never_retried)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	char ver[300];

	reset_transport();
	a = make_auth();
	make_kms(&k, a);
	push(503, "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}");
	push(200, "{\"name\":\"" KEY "/cryptoKeyVersions/2\"}");
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(nreq, 1);

	reset_transport();
	push(0, NULL);
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), -1);
	KT_EQ_INT(nreq, 1);

	/* Success: create, then updatePrimaryVersion with its id. */
	reset_transport();
	push(200, "{\"name\":\"" KEY "/cryptoKeyVersions/2\",\"state\":\"ENABLED\"}");
	push(200, "{\"name\":\"" KEY "\"}");
	KT_EQ_INT(kf_gcp_kms_rotate(&k, KEY, ver, sizeof(ver), &err), 0);
	KT_EQ_INT(nreq, 2);
	KT_EQ_STR(req_url[0], "http://127.0.0.1:9/v1/" KEY "/cryptoKeyVersions");
	KT_EQ_STR(req_url[1],
		  "http://127.0.0.1:9/v1/" KEY ":updatePrimaryVersion");
	KT_EQ_STR(req_body[1], "{\"cryptoKeyVersionId\":\"2\"}");
	KT_EQ_STR(ver, KEY "/cryptoKeyVersions/2");
	done(a);
}

KT_TEST(gcp_kms_create_already_exists_after_ambiguous_retry)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	const char *exists = "{\"error\":{\"code\":409,\"status\":"
			     "\"ALREADY_EXISTS\",\"message\":\"KeyRing "
			     "exists.\"}}";
	json_t *body;

	reset_transport();
	a = make_auth();
	make_kms(&k, a);
	push(0, NULL);
	push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "r1", &err),
		  0);
	KT_EQ_INT(nreq, 2);
	KT_EQ_STR(req_url[0], "http://127.0.0.1:9/v1/projects/p1/locations/"
			      "global/keyRings?keyRingId=r1");

	/* Plain ALREADY_EXISTS (no earlier attempt): EXISTS. */
	reset_transport();
	push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "r1", &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);

	/* 429 is not ambiguous (refused before acting). */
	reset_transport();
	push(429, "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\"}}");
	push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_key(&k, "projects/p1/locations/global/"
					    "keyRings/r1",
					"k1", 100000, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);

	/* Key: ENCRYPT_DECRYPT with a rotation schedule. */
	reset_transport();
	push(503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}");
	push(409, exists);
	KT_EQ_INT(kf_gcp_kms_create_key(&k, "projects/p1/locations/global/"
					    "keyRings/r1",
					"k1", 100000, &err),
		  0);
	body = json_loads(req_body[0], 0, NULL);
	KT_EQ_STR(json_string_value(json_object_get(body, "purpose")),
		  "ENCRYPT_DECRYPT");
	KT_EQ_STR(json_string_value(json_object_get(body, "rotationPeriod")),
		  "100000s");
	KT_CHECK(json_is_string(json_object_get(body, "nextRotationTime")));
	json_decref(body);

	/* Invalid ids never reach the network. */
	reset_transport();
	KT_EQ_INT(kf_gcp_kms_create_ring(&k, "projects/p1/locations/global",
					 "bad.id", &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(nreq, 0);
	done(a);
}

static char listed[256];

static int collect(void *ctx, const char *id, json_t *item)
{
	size_t n = strlen(listed);

	snprintf(listed + n, sizeof(listed) - n, "%s,", id);
	return 0;
}

KT_TEST(gcp_kms_list_pages_and_endpoint)
{
	struct kf_gcp_auth *a;
	struct kf_gcp_kms k;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf next;

	reset_transport();
	a = make_auth();
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS", "http://localhost:7", 1);
	KT_EQ_INT(kf_gcp_kms_init(&k, NULL, a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, "http://localhost:7/");
	KT_EQ_INT(kf_gcp_kms_init(&k, "http://127.0.0.1:8/", a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, "http://127.0.0.1:8/");
	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS");
	KT_EQ_INT(kf_gcp_kms_init(&k, NULL, a, 5000, &err), 0);
	KT_EQ_STR(k.endpoint, KF_GCP_KMS_ENDPOINT);
	KT_EQ_INT(kf_gcp_kms_init(&k, "http://example.com/", a, 5000, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);

	make_kms(&k, a);
	kf_buf_init(&next, 4096);
	listed[0] = '\0';
	push(200, "{\"keyRings\":[{\"name\":\"projects/p1/locations/global/"
		  "keyRings/a\"},{\"name\":\"projects/p1/locations/global/"
		  "keyRings/b\"}],\"nextPageToken\":\"t+/=\"}");
	KT_EQ_INT(kf_gcp_kms_list(&k, "projects/p1/locations/global",
				  "keyRings", "prev tok", collect, NULL, &next,
				  &err),
		  0);
	KT_EQ_STR(listed, "a,b,");
	KT_EQ_STR(kf_buf_str(&next), "t+/=");
	KT_EQ_STR(req_url[0], "http://127.0.0.1:9/v1/projects/p1/locations/"
			      "global/keyRings?pageSize=1000&pageToken=prev%20tok");
	/* Last page: next left empty. */
	push(200, "{\"locations\":[{\"name\":\"projects/p1/locations/us\","
		  "\"locationId\":\"us\"}]}");
	listed[0] = '\0';
	KT_EQ_INT(kf_gcp_kms_list(&k, "projects/p1", "locations", NULL,
				  collect, NULL, &next, &err),
		  0);
	KT_EQ_STR(listed, "us,");
	KT_EQ_INT(next.len, 0);
	kf_buf_release(&next);
	done(a);
}

KT_TEST(gcp_ids_names_durations)
{
	KT_CHECK(kf_gcp_valid_id("a"));
	KT_CHECK(kf_gcp_valid_id("Ring_1-x"));
	KT_CHECK(!kf_gcp_valid_id(""));
	KT_CHECK(!kf_gcp_valid_id("a.b"));
	KT_CHECK(!kf_gcp_valid_id("a/b"));
	KT_CHECK(!kf_gcp_valid_id("\xc3\xa9"));
	KT_CHECK(kf_gcp_valid_id(
		"123456789012345678901234567890123456789012345678901234567890123"));
	KT_CHECK(!kf_gcp_valid_id(
		"1234567890123456789012345678901234567890123456789012345678901234"));
	KT_CHECK(kf_gcp_valid_value_name("openai"));
	KT_CHECK(kf_gcp_valid_value_name("api.key+v2@x=1,2"));
	KT_CHECK(!kf_gcp_valid_value_name(".hidden"));
	KT_CHECK(!kf_gcp_valid_value_name(".kf-tmp.abc"));
	KT_CHECK(!kf_gcp_valid_value_name("a b"));
	KT_CHECK(!kf_gcp_valid_value_name(""));
	KT_EQ_INT(kf_gcp_parse_duration("100000s"), 100000);
	KT_EQ_INT(kf_gcp_parse_duration("100000"), 100000);
	KT_EQ_INT(kf_gcp_parse_duration("90d"), 7776000);
	KT_EQ_INT(kf_gcp_parse_duration("2h"), 7200);
	KT_EQ_INT(kf_gcp_parse_duration("s"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("10x"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("10ss"), -1);
	KT_EQ_INT(kf_gcp_parse_duration("-5s"), -1);
}
