/* Unit tests for Google auth (cloud/gcp/auth.c, cred.c, token.c, adc.c)
 * through the HTTP transport seam: JWT assembly and signature (test RSA
 * key generated with OpenSSL at run time), key files, token grants,
 * retries and refresh, project discovery. */
#include "kt.h"
#include "t_gcp_fake.h"
#include "core/crypto.h"
#include "core/clock.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int verify_sig(const char *signed_part, size_t n, const char *sig_b64)
{
	struct kf_buf sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	kf_buf_init(&sig, 4096);
	ok = kf_base64_decode(sig_b64, strlen(sig_b64), &sig) == 0 &&
	     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, gf_test_key) ==
		     1 &&
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
	const char *k = gf_pem();
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
				       36, NULL, "a@b", TOKEN_URI, KF_GCP_SCOPE,
				       1, &out, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "SECRETX") == NULL);
	KT_EQ_INT(out.len, 0);
	kf_buf_release(&out);
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

	gf_reset();
	gf_now = 1700000000;
	a = gf_make_auth();
	KT_CHECK(a != NULL);
	KT_EQ_INT(gf_token_calls, 1);
	KT_EQ_STR(gf_token_url, TOKEN_URI);
	KT_CHECK(strncmp(gf_token_body, pfx, strlen(pfx)) == 0);
	KT_CHECK(check_jwt(gf_token_body + strlen(pfx),
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
	gf_done(a);
}

KT_TEST(gcp_auth_refused_grant_is_denied)
{
	struct kf_gcp_auth_cfg cfg = { gf_sa_path, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;

	gf_reset();
	gf_write_sa();
	kf_http_set_transport(gf_fake);
	gf_token_status = 400;
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "invalid_grant");
	KT_CHECK(strstr(err.msg, "BEGIN") == NULL);
	KT_CHECK(a == NULL);
	gf_done(NULL);
}

KT_TEST(gcp_auth_refresh_before_expiry)
{
	struct kf_gcp_auth *a;
	struct kf_secret *h = NULL;
	struct kf_err err = KF_ERR_INIT;
	uint64_t gen1, gen2;

	gf_reset();
	gf_now = 1700000000;
	a = gf_make_auth();
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen1, &err), 0);
	kf_secret_free(h);
	/* Plenty of time left: no refresh. */
	gf_now += 3600 - KF_GCP_REFRESH_MARGIN - 10;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen2, &err), 0);
	KT_EQ_INT(gf_token_calls, 1);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok1");
	kf_secret_free(h);
	/* Under 3 min 45 s left: refreshed. */
	gf_now += 20;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, &gen2, &err), 0);
	KT_EQ_INT(gf_token_calls, 2);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok2");
	KT_CHECK(gen2 != gen1);
	kf_secret_free(h);
	/* Invalidation with a stale generation does nothing... */
	kf_gcp_auth_invalidate(a, gen1);
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_INT(gf_token_calls, 2);
	kf_secret_free(h);
	/* ...with the current one it forces a new token. */
	kf_gcp_auth_invalidate(a, gen2);
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_INT(gf_token_calls, 3);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok3");
	kf_secret_free(h);
	/* A failed refresh while the token is still valid keeps it. */
	gf_now += 3600 - 100;
	gf_token_status = 400;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), 0);
	KT_EQ_STR((const char *)h->data, "Authorization: Bearer tok3");
	kf_secret_free(h);
	/* Expired and refused: DENIED. */
	gf_now += 200;
	KT_EQ_INT(kf_gcp_auth_header(a, &h, NULL, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(h == NULL);
	gf_done(a);
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
		/* A cut token fails the comparisons below. */
		(void)snprintf(t->tok, sizeof(t->tok), "%s",
			       (const char *)h->data +
				       strlen("Authorization: Bearer "));
	kf_secret_free(h);
	return NULL;
}

KT_TEST(gcp_auth_one_refresher_others_use_valid_token)
{
	struct kf_gcp_auth *a;
	struct hdr_thread t[4];
	pthread_t th[4];
	int fresh = 0;

	gf_reset();
	gf_now = 1700000000;
	a = gf_make_auth();
	/* Inside the refresh margin but still valid; the refresh is slow. */
	gf_now += 3600 - 100;
	gf_token_delay_ms = 400;
	for (int i = 0; i < 4; i++) {
		t[i].a = a;
		t[i].tok[0] = '\0';
		pthread_create(&th[i], NULL, hdr_worker, &t[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	gf_token_delay_ms = 0;
	KT_EQ_INT(gf_token_calls, 2); /* one refresh for four callers */
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
	gf_done(a);
}

KT_TEST(gcp_auth_authorized_user_token_uri_override)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;
	char path[512];

	gf_reset();
	gf_path(path, sizeof(path), "%s/au.json", kt_tmpdir());
	gf_write_file(path,
		      "{\"type\":\"authorized_user\",\"client_id\":\"cid.apps\","
		      "\"client_secret\":\"s&cr t\",\"refresh_token\":\"1//rt\","
		      "\"token_uri\":\"http://127.0.0.1:9/token\"}");
	cfg.credentials = path;
	kf_http_set_transport(gf_fake);
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_STR(gf_token_url, "http://127.0.0.1:9/token");
	KT_EQ_STR(gf_token_body,
		  "grant_type=refresh_token&client_id=cid.apps&"
		  "client_secret=s%26cr%20t&refresh_token=1%2F%2Frt");
	kf_gcp_auth_free(a);
	a = NULL;
	/* Without token_uri: Google's endpoint, as google-auth does. */
	gf_write_file(path, "{\"type\":\"authorized_user\",\"client_id\":\"c\","
			    "\"client_secret\":\"s\",\"refresh_token\":\"r\"}");
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_STR(gf_token_url, KF_GCP_TOKEN_URI);
	/* An unsupported type is refused clearly. */
	kf_gcp_auth_free(a);
	a = NULL;
	gf_write_file(path, "{\"type\":\"external_account\"}");
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTSUP);
	gf_done(a);
}

KT_TEST(gcp_auth_gcloud_project)
{
	char dir[512], path[600], proj[64];
	struct kf_err err = KF_ERR_INIT;

	gf_path(dir, sizeof(dir), "%s/gcloud", kt_tmpdir());
	mkdir(dir, 0700);
	gf_path(path, sizeof(path), "%s/configurations", dir);
	mkdir(path, 0700);
	gf_path(path, sizeof(path), "%s/active_config", dir);
	gf_write_file(path, "work\n");
	gf_path(path, sizeof(path), "%s/configurations/config_work", dir);
	gf_write_file(path, "[compute]\nproject = nope\n[core]\naccount = a@b\n"
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

KT_TEST(gcp_auth_token_fetch_retries_transient)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;

	gf_reset();
	gf_write_sa();
	cfg.credentials = gf_sa_path;
	kf_http_set_transport(gf_fake);
	gf_clock_start();
	/* Pauses on the token policy: 1 s base, at most 4 s. */
	kf_gcp_auth_set_backoff_ms(1000);
	gf_token_fail = 2;
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_INT(gf_token_calls, 3);
	KT_EQ_INT(gf_nsleeps, 2);
	KT_CHECK(gf_sleeps[0] >= 500 && gf_sleeps[0] <= 1000);
	KT_CHECK(gf_sleeps[1] >= 1000 && gf_sleeps[1] <= 2000);
	kf_gcp_auth_free(a);
	a = NULL;
	/* Three transient failures: UNAVAILABLE, three requests. */
	gf_reset();
	gf_token_fail = 3;
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(err.http_status, 503);
	KT_EQ_INT(gf_token_calls, 3);
	KT_CHECK(strstr(err.msg, "BEGIN") == NULL);
	KT_CHECK(a == NULL);
	/* A refusal is final at once. */
	gf_reset();
	gf_token_status = 401;
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(gf_token_calls, 1);
	gf_clock_stop();
	kf_gcp_auth_set_backoff_ms(1);
	gf_done(a);
}

KT_TEST(gcp_auth_key_file_errors)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;
	char path[512], *big;
	FILE *f;
	static const struct {
		const char *text; /* NULL: a directory; "": absent */
		enum kf_code code;
	} v[] = {
		{ "", KF_E_NOTFOUND },
		{ NULL, KF_E_INVALID },
		{ "SECRETX not json", KF_E_INVALID },
		{ "[\"SECRETX\"]", KF_E_INVALID },
		{ "{\"private_key\":\"SECRETX\"}", KF_E_INVALID },
		{ "{\"type\":\"service_account\",\"private_key\":\"SECRETX\"}",
		  KF_E_INVALID },
		{ "{\"type\":\"authorized_user\",\"client_id\":\"c\","
		  "\"client_secret\":\"SECRETX\"}",
		  KF_E_INVALID },
	};

	gf_reset();
	kf_http_set_transport(gf_fake);
	cfg.credentials = path;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		gf_path(path, sizeof(path), "%s/key%zu.json", kt_tmpdir(), i);
		if (!v[i].text)
			mkdir(path, 0700);
		else if (*v[i].text)
			gf_write_file(path, v[i].text);
		KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
		KT_EQ_INT(err.code, v[i].code);
		KT_CHECK(strstr(err.msg, path) != NULL);
		KT_CHECK(strstr(err.msg, "SECRETX") == NULL);
		KT_CHECK(a == NULL);
	}
	/* Over the 1 MiB limit: a bad key file, not a partial read. */
	gf_path(path, sizeof(path), "%s/big.json", kt_tmpdir());
	big = malloc((1u << 20) + 2);
	KT_CHECK(big != NULL);
	memset(big, ' ', (1u << 20) + 1);
	big[0] = '{';
	big[(1u << 20) + 1] = '\0';
	f = fopen(path, "w");
	fputs(big, f);
	fputs("}", f);
	fclose(f);
	free(big);
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(gf_token_calls, 0);
	gf_done(a);
}
