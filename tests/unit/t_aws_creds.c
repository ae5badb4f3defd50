/*
 * Unit tests for the AWS credential chain, INI and XML readers, region and
 * endpoint resolution.  Network sources run through the HTTP transport
 * seam; every test starts from an empty AWS environment and a fresh HOME.
 */
#include "kt.h"

#include "aws/creds.h"
#include "aws/config.h"
#include "core/ini.h"
#include "aws/sources.h"
#include "aws/xml.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Remove every AWS_* variable and point HOME at the test's directory. */
static void clean_env(void)
{
	kt_unsetenv_prefix("AWS_");
	setenv("HOME", kt_tmpdir(), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	kf_http_set_transport(NULL);
	kf_log_set_level(KF_LOG_WARN); /* "using credentials from" noise */
}

/* kt_tmpdir()/rel into path[512]. */
static const char *tmp_path(char path[512], const char *rel)
{
	KT_CHECK((size_t)snprintf(path, 512, "%s/%s", kt_tmpdir(), rel) < 512);
	return path;
}

static void write_file(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	f = fopen(tmp_path(path, rel), "w");
	if (!f) {
		KT_CHECK(!"cannot write test file");
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void aws_dir(void)
{
	char path[512];

	mkdir(tmp_path(path, ".aws"), 0700);
}

static int secret_is(const struct kf_secret *s, const char *want)
{
	return s && s->len == strlen(want) &&
	       memcmp(s->data, want, s->len) == 0 && s->data[s->len] == '\0';
}

/* ---------- INI ---------- */

KT_TEST(aws_ini_parse)
{
	struct kf_ini ini;
	struct kf_err err = KF_ERR_INIT;
	static const char text[] = "# leading comment\n"
				   "orphan = ignored\n"
				   "[default]\n"
				   "  Region =  eu-west-1  \n"
				   "; another comment\n"
				   "output: json\n"
				   "[ profile  dev ]\n"
				   "region=us-east-2\n"
				   "note = a # not a comment\n"
				   "s3 =\n"
				   "  max_concurrent_requests = 20\n"
				   "   \n"
				   "[services local]\n"
				   "secrets_manager =\n"
				   "\tendpoint_url = http://127.0.0.1:4566\n"
				   "sts =\n"
				   "  endpoint_url = http://127.0.0.1:4567\n"
				   "[default]\n"
				   "region = eu-west-3\n";

	kf_ini_init(&ini);
	KT_EQ_INT(kf_buf_adds(&ini.text, text), 0);
	KT_EQ_INT(kf_ini_parse(&ini, &err), 0);
	KT_EQ_STR(kf_ini_get(&ini, "default", "region"), "eu-west-3");
	KT_EQ_STR(kf_ini_get(&ini, "default", "output"), "json");
	KT_CHECK(kf_ini_get(&ini, "default", "orphan") == NULL);
	KT_EQ_STR(kf_ini_get(&ini, "profile  dev", "region"), "us-east-2");
	KT_EQ_STR(kf_ini_get(&ini, "profile  dev", "note"),
		  "a # not a comment");
	KT_EQ_STR(kf_ini_get(&ini, "profile  dev", "s3"), "");
	KT_EQ_STR(kf_ini_get(&ini, "profile  dev",
			     "s3.max_concurrent_requests"),
		  "20");
	KT_EQ_STR(kf_ini_get(&ini, "services local",
			     "secrets_manager.endpoint_url"),
		  "http://127.0.0.1:4566");
	KT_EQ_STR(kf_ini_get(&ini, "services local", "sts.endpoint_url"),
		  "http://127.0.0.1:4567");
	KT_CHECK(kf_ini_has_section(&ini, "services local"));
	KT_CHECK(!kf_ini_has_section(&ini, "dev"));
	kf_ini_release(&ini);

	kf_ini_init(&ini);
	KT_EQ_INT(kf_buf_adds(&ini.text, "[a]\nno delimiter here\n"), 0);
	KT_EQ_INT(kf_ini_parse(&ini, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "line 2") != NULL);
	KT_CHECK(strstr(err.msg, "delimiter") == NULL);
	kf_ini_release(&ini);

	kf_ini_init(&ini);
	KT_EQ_INT(kf_buf_adds(&ini.text, "[broken\nk=v\n"), 0);
	KT_EQ_INT(kf_ini_parse(&ini, &err), -1);
	kf_ini_release(&ini);
}

/* ---------- XML ---------- */

KT_TEST(aws_xml_text)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<a:Resp xmlns:a=\"urn:x\"><!-- <Key>no</Key> -->"
		"<Other><Key>wrong</Key></Other>"
		"<Inner attr='x>y'><Key>v &amp; &lt;w&gt; &#65;&#x42;"
		"<![CDATA[<raw&>]]><Skip>no</Skip>!</Key><Empty/></Inner>"
		"</a:Resp>";
	const char *p1[] = { "Resp", "Inner", "Key" };
	const char *p2[] = { "Resp", "Inner", "Missing" };
	const char *p3[] = { "Resp", "Inner", "Empty" };
	const char *p4[] = { "Resp", "Key" };
	struct kf_buf b;

	kf_buf_init(&b, 256);
	KT_EQ_INT(kf_xml_text(doc, strlen(doc), p1, 3, &b), 1);
	KT_EQ_STR(kf_buf_str(&b), "v & <w> AB<raw&>!");
	kf_buf_reset(&b);
	KT_EQ_INT(kf_xml_text(doc, strlen(doc), p2, 3, &b), 0);
	KT_EQ_INT(kf_xml_text(doc, strlen(doc), p3, 3, &b), 1);
	KT_EQ_STR(kf_buf_str(&b), "");
	/* A Key that is not a direct child of Resp is not matched. */
	KT_EQ_INT(kf_xml_text(doc, strlen(doc), p4, 2, &b), 0);

	/* Malformed: unknown entity, mismatched tags, DOCTYPE, truncation. */
	{
		static const char *bad[] = {
			"<Resp><Inner><Key>&bogus;</Key></Inner></Resp>",
			"<Resp><Inner><Key>x</Inner></Key></Resp>",
			"<!DOCTYPE x [<!ENTITY e \"y\">]><Resp/>",
			"<Resp><Inner><Key>unterminated",
			"<Resp><Inner><Key>&#0;</Key></Inner></Resp>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			kf_buf_reset(&b);
			KT_EQ_INT(kf_xml_text(bad[i], strlen(bad[i]), p1, 3,
					      &b),
				  -1);
		}
	}
	/* Output cap. */
	{
		struct kf_buf small;

		kf_buf_init(&small, 4);
		KT_EQ_INT(kf_xml_text(doc, strlen(doc), p1, 3, &small), -1);
		kf_buf_release(&small);
	}
	kf_buf_release(&b);
}

/* ---------- static sources ---------- */

static const char cred_file[] = "[default]\n"
				"aws_access_key_id = AKIDDEFAULT\n"
				"aws_secret_access_key = secret-default\n"
				"[dev]\n"
				"aws_access_key_id=AKIDDEV\n"
				"aws_secret_access_key=secret-dev\n"
				"aws_session_token=token-dev\n"
				"[profile ops]\n"
				"aws_access_key_id=AKIDWRONG\n"
				"aws_secret_access_key=secret-wrong\n";

static const char config_file[] = "[default]\n"
				  "region = eu-central-1\n"
				  "[profile ops]\n"
				  "# static keys in the config file\n"
				  "aws_access_key_id = AKIDOPS\n"
				  "aws_secret_access_key = secret-ops\n"
				  "region = ap-south-1\n"
				  "[ops]\n"
				  "region = us-west-1\n";

static int chain_static(const char *profile, char *src, size_t srclen,
			struct kf_aws_creds *out, struct kf_err *err)
{
	struct kf_aws_chain_cfg cfg = { profile, 1000 };
	struct kf_aws_chain *c = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (kf_aws_chain_new(&cfg, &c, err) < 0)
		return -1;
	KT_CHECK((size_t)snprintf(src, srclen, "%s", kf_aws_chain_source(c)) <
		 srclen);
	rc = kf_aws_chain_get(c, out, err);
	kf_aws_chain_free(c);
	return rc;
}

KT_TEST(aws_chain_profiles)
{
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	char src[160];

	clean_env();
	aws_dir();
	write_file(".aws/credentials", cred_file);
	write_file(".aws/config", config_file);

	/* default profile from the credentials file */
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "profile default");
	KT_EQ_STR(cr.access_key, "AKIDDEFAULT");
	KT_CHECK(secret_is(cr.secret_key, "secret-default"));
	KT_CHECK(cr.session_token == NULL);
	KT_EQ_INT(cr.expiration, 0);
	kf_aws_creds_release(&cr);

	/* AWS_PROFILE, with a session token */
	setenv("AWS_PROFILE", "dev", 1);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "profile dev");
	KT_EQ_STR(cr.access_key, "AKIDDEV");
	KT_CHECK(secret_is(cr.session_token, "token-dev"));
	kf_aws_creds_release(&cr);

	/* cfg profile beats AWS_PROFILE; config [profile ops], not the
	 * credentials file's literal "[profile ops]" section */
	KT_EQ_INT(chain_static("ops", src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "config profile ops");
	KT_EQ_STR(cr.access_key, "AKIDOPS");
	KT_CHECK(secret_is(cr.secret_key, "secret-ops"));
	kf_aws_creds_release(&cr);

	/* environment beats any profile */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	setenv("AWS_SESSION_TOKEN", "token-env", 1);
	KT_EQ_INT(chain_static("ops", src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "environment");
	KT_EQ_STR(cr.access_key, "AKIDENV");
	KT_CHECK(secret_is(cr.secret_key, "secret-env"));
	KT_CHECK(secret_is(cr.session_token, "token-env"));
	kf_aws_creds_release(&cr);

	/* a key id without a secret is an error, not a fall-through */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SESSION_TOKEN");

	/* an explicit profile that exists nowhere */
	KT_EQ_INT(chain_static("nope", src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(strstr(err.msg, "nope") != NULL);

	/* role chaining is refused, not silently replaced */
	write_file(".aws/config", "[profile chain]\nrole_arn = arn:aws:iam::1:"
				  "role/r\nsource_profile = default\n");
	KT_EQ_INT(chain_static("chain", src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTSUP);
}

KT_TEST(aws_chain_nothing)
{
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	char src[160];

	clean_env();
	KT_EQ_INT(kf_aws_config_present(NULL), 0);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(strstr(err.msg, "no AWS credentials found") != NULL);
	KT_CHECK(strstr(err.msg, "environment") != NULL);
	KT_CHECK(strstr(err.msg, "web identity") != NULL);
	KT_CHECK(strstr(err.msg, "container") != NULL);
	KT_CHECK(strstr(err.msg, "imds") != NULL);
	KT_EQ_INT(kf_aws_config_present("x"), 1);
	setenv("AWS_REGION", "us-east-1", 1);
	KT_EQ_INT(kf_aws_config_present(NULL), 1);
	unsetenv("AWS_REGION");
	aws_dir();
	write_file(".aws/config", "[default]\n");
	KT_EQ_INT(kf_aws_config_present(NULL), 1);
}

/* ---------- region and endpoints ---------- */

KT_TEST(aws_region)
{
	struct kf_err err = KF_ERR_INIT;
	char r[64];

	clean_env();
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	aws_dir();
	write_file(".aws/config", config_file);
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), 0);
	KT_EQ_STR(r, "eu-central-1");
	KT_EQ_INT(kf_aws_default_region("ops", r, sizeof(r), &err), 0);
	KT_EQ_STR(r, "ap-south-1");
	setenv("AWS_PROFILE", "ops", 1);
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), 0);
	KT_EQ_STR(r, "ap-south-1");
	setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), 0);
	KT_EQ_STR(r, "sa-east-1");
	setenv("AWS_REGION", "ca-central-1", 1);
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), 0);
	KT_EQ_STR(r, "ca-central-1");
	KT_EQ_INT(kf_aws_default_region(NULL, r, 4, &err), -1);
	setenv("AWS_REGION", "us-east-1/../x", 1);
	KT_EQ_INT(kf_aws_default_region(NULL, r, sizeof(r), &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
}

KT_TEST(aws_endpoint)
{
	struct kf_err err = KF_ERR_INIT;
	char u[256];

	clean_env();
	KT_EQ_INT(kf_aws_endpoint(NULL, NULL, "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "https://secretsmanager.us-east-1.amazonaws.com");
	KT_EQ_INT(kf_aws_endpoint(NULL, NULL, "cn-north-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "https://secretsmanager.cn-north-1.amazonaws.com.cn");
	KT_EQ_INT(kf_aws_endpoint(NULL, NULL, "bad/region", u, sizeof(u), &err),
		  -1);

	aws_dir();
	write_file(".aws/config",
		   "[default]\nendpoint_url = http://127.0.0.1:1111/\n"
		   "[profile svc]\nservices = loc\n"
		   "endpoint_url = http://127.0.0.1:2222\n"
		   "[services loc]\nsecrets_manager =\n"
		   "  endpoint_url = http://127.0.0.1:3333\n");
	KT_EQ_INT(kf_aws_endpoint(NULL, NULL, "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "http://127.0.0.1:1111");
	KT_EQ_INT(kf_aws_endpoint(NULL, "svc", "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "http://127.0.0.1:3333");
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4444", 1);
	KT_EQ_INT(kf_aws_endpoint(NULL, "svc", "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "http://127.0.0.1:4444");
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5555", 1);
	KT_EQ_INT(kf_aws_endpoint(NULL, "svc", "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "http://127.0.0.1:5555");
	KT_EQ_INT(kf_aws_endpoint("https://example.test:8443/", "svc",
				  "us-east-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "https://example.test:8443");
	KT_EQ_INT(kf_aws_endpoint("ftp://x", NULL, "us-east-1", u, sizeof(u),
				  &err),
		  -1);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	KT_EQ_INT(kf_aws_endpoint(NULL, "svc", "eu-west-1", u, sizeof(u), &err),
		  0);
	KT_EQ_STR(u, "https://secretsmanager.eu-west-1.amazonaws.com");
}

KT_TEST(aws_region_valid_accepts_names_not_paths)
{
	static const char r63[] = "a23456789-123456789-123456789-123456789-"
				  "123456789-123456789-123";
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "us-east-1", 1 },
		{ "cn-north-1", 1 },
		{ "a", 1 },
		{ "us-gov-west-1", 1 },
		{ "", 0 },
		{ "US-east-1", 0 },
		{ "us_east_1", 0 },
		{ "us-east-1/../x", 0 },
		{ "eu-west-1 ", 0 },
		{ "eu.west", 0 },
		{ "r\xc3\xa9gion", 0 },
	};
	char r64[80];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		KT_EQ_INT(kf_aws_region_valid(cases[i].s, strlen(cases[i].s)),
			  cases[i].ok);
	KT_EQ_INT(strlen(r63), 63);
	KT_EQ_INT(kf_aws_region_valid(r63, 63), 1);
	KT_CHECK((size_t)snprintf(r64, sizeof(r64), "%s4", r63) < sizeof(r64));
	KT_EQ_INT(kf_aws_region_valid(r64, 64), 0);
	/* a span of a list: the bytes after n do not count */
	KT_EQ_INT(kf_aws_region_valid("us-east-1,eu-west-1", 9), 1);
	KT_EQ_INT(kf_aws_region_valid("us-east-1,eu-west-1", 10), 0);
}

KT_TEST(aws_iso8601_times)
{
	static const struct {
		const char *s;
		long long t;
	} cases[] = {
		{ "2024-01-02T03:04:05Z", 1704164645 },
		{ "2024-01-02T03:04:05z", 1704164645 },
		{ "2024-01-02T03:04:05.123456Z", 1704164645 },
		{ "2024-01-02T03:04:05+01:00", 1704164645 - 3600 },
		{ "2024-01-02T03:04:05-02:30", 1704164645 + 9000 },
		{ "2024-01-02 03:04:05Z", -1 },
		{ "2024-01-02T03:04:05", -1 },
		{ "2024-13-02T03:04:05Z", -1 },
		{ "2024-01-02T24:04:05Z", -1 },
		{ "2024-01-02T03:04:05.Z", -1 },
		{ "2024-01-02T03:04:05Zx", -1 },
		{ "2024-01-02T03:04:05+0100", -1 },
		{ "2024-01-02T03:04:05+01:00x", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		KT_EQ_INT((long long)kf_aws_iso8601(cases[i].s), cases[i].t);
	KT_EQ_INT((long long)kf_aws_iso8601(NULL), -1);
}

KT_TEST(aws_env_uint_falls_back_to_the_default)
{
	static const struct {
		const char *v;
		unsigned want;
	} cases[] = {
		{ "5", 5 },  { "1", 1 },  { "10", 10 }, { "0", 7 },
		{ "11", 7 }, { "3x", 7 }, { "", 7 },	{ "-1", 7 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("AWS_KF_TEST_UINT", cases[i].v, 1);
		KT_EQ_INT(kf_aws_env_uint("AWS_KF_TEST_UINT", 1, 10, 7),
			  cases[i].want);
	}
	unsetenv("AWS_KF_TEST_UINT");
	KT_EQ_INT(kf_aws_env_uint("AWS_KF_TEST_UINT", 1, 10, 7), 7);
	KT_EQ_INT(kf_aws_url_len("http://h:1///"), 10);
	KT_EQ_INT(kf_aws_url_len("///"), 0);
}

KT_TEST(aws_ini_read_file_missing_is_1)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;
	char path[512];

	clean_env();
	kf_buf_init_sensitive(&b, 8);
	KT_EQ_INT(kf_ini_read_file(tmp_path(path, "nope/x"), &b, &err), 1);
	KT_EQ_INT(err.code, KF_OK);
	write_file("small", "[a]\nk=v");
	KT_EQ_INT(kf_ini_read_file(tmp_path(path, "small"), &b, &err), 0);
	KT_EQ_STR(kf_buf_str(&b), "[a]\nk=v");
	kf_buf_reset(&b);
	write_file("big", "0123456789");
	KT_EQ_INT(kf_ini_read_file(tmp_path(path, "big"), &b, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	kf_buf_reset(&b);
	/* a directory opens but cannot be read */
	KT_EQ_INT(kf_ini_read_file(kt_tmpdir(), &b, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	kf_buf_release(&b);
}

/* ---------- the fake network ---------- */

static struct {
	pthread_mutex_t lock;
	int calls;    /* STS/container/IMDS credential fetches */
	int requests; /* every request */
	int delay_ms;
	int status;	  /* for the credential response */
	int fails;	  /* answer this many credential requests 503 */
	int token_status; /* IMDS token answer; 0 = 200 with a token */
	long exp_in;	  /* Expiration = now + exp_in seconds */
	int serial;	  /* numbers the access keys handed out */
	char last_url[512];
	char last_body[2048];
	char last_auth[512];
	char last_imds_token[128];
	int saw_ttl;
} fk = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fk_reset(int status, long exp_in, int delay_ms)
{
	pthread_mutex_lock(&fk.lock);
	fk.calls = fk.requests = fk.serial = fk.saw_ttl = 0;
	fk.fails = fk.token_status = 0;
	fk.status = status;
	fk.exp_in = exp_in;
	fk.delay_ms = delay_ms;
	fk.last_url[0] = fk.last_body[0] = fk.last_auth[0] = '\0';
	fk.last_imds_token[0] = '\0';
	pthread_mutex_unlock(&fk.lock);
}

static const char *hdr(const struct kf_http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (const char *const *h = req->headers; h && *h; h++)
		if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
			return *h + n + 2;
	return NULL;
}

static void iso(char *out, size_t n, long in)
{
	time_t t = time(NULL) + in;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%S.123456Z", &tm);
}

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	char exp[64];
	int serial, status, delay;
	const char *v;

	pthread_mutex_lock(&fk.lock);
	fk.requests++;
	/* The fake's records may be cut: assertions compare short ones. */
	(void)snprintf(fk.last_url, sizeof(fk.last_url), "%s", req->url);
	status = fk.status;
	delay = fk.delay_ms;
	iso(exp, sizeof(exp), fk.exp_in);
	pthread_mutex_unlock(&fk.lock);

	if (strstr(req->url, "/latest/api/token")) {
		pthread_mutex_lock(&fk.lock);
		fk.saw_ttl = hdr(req, "x-aws-ec2-metadata-token-ttl-seconds") &&
			     strcmp(req->method, "PUT") == 0;
		resp->status = fk.token_status;
		pthread_mutex_unlock(&fk.lock);
		if (resp->status)
			return 0;
		resp->status = 200;
		return kf_buf_adds(&resp->body, "imds-tok-1");
	}
	if (strstr(req->url, "/iam/security-credentials/") &&
	    !strstr(req->url, "/iam/security-credentials/role-a")) {
		v = hdr(req, "x-aws-ec2-metadata-token");
		pthread_mutex_lock(&fk.lock);
		(void)snprintf(fk.last_imds_token, sizeof(fk.last_imds_token),
			       "%s", v ? v : "");
		pthread_mutex_unlock(&fk.lock);
		resp->status = 200;
		return kf_buf_adds(&resp->body, "role-a\n");
	}

	if (delay)
		usleep((useconds_t)delay * 1000);
	pthread_mutex_lock(&fk.lock);
	serial = ++fk.serial;
	fk.calls++;
	if (fk.fails > 0) {
		fk.fails--;
		status = 503;
	}
	(void)snprintf(fk.last_body, sizeof(fk.last_body), "%.*s",
		       (int)req->body_len,
		       req->body ? (const char *)req->body : "");
	v = hdr(req, "Authorization");
	(void)snprintf(fk.last_auth, sizeof(fk.last_auth), "%s", v ? v : "");
	pthread_mutex_unlock(&fk.lock);

	resp->status = status;
	if (status != 200) {
		if (strstr(req->url, "/sts"))
			return kf_buf_addf(
				&resp->body,
				"<ErrorResponse xmlns=\"https://sts.amazonaws."
				"com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
				"<Code>InvalidIdentityToken</Code><Message>Bad "
				"token &amp; more</Message></Error><RequestId>r"
				"</RequestId></ErrorResponse>");
		return kf_buf_adds(&resp->body, "{\"message\":\"no\"}");
	}
	if (strstr(req->url, "/sts"))
		return kf_buf_addf(
			&resp->body,
			"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts."
			"amazonaws.com/doc/2011-06-15/\">\n"
			"  <AssumeRoleWithWebIdentityResult>\n"
			"    <SubjectFromWebIdentityToken>s</SubjectFromWebIdentityToken>\n"
			"    <Credentials>\n"
			"      <AccessKeyId>ASIASTS%d</AccessKeyId>\n"
			"      <SecretAccessKey>sts/se&amp;cret+%d</SecretAccessKey>\n"
			"      <SessionToken>sts-token-%d&lt;x&gt;</SessionToken>\n"
			"      <Expiration>%s</Expiration>\n"
			"    </Credentials>\n"
			"  </AssumeRoleWithWebIdentityResult>\n"
			"</AssumeRoleWithWebIdentityResponse>\n",
			serial, serial, serial, exp);
	(void)err;
	return kf_buf_addf(&resp->body,
			   "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
			   "\"AccessKeyId\":\"ASIANET%d\",\"SecretAccessKey\":"
			   "\"net-secret-%d\",\"Token\":\"net-token-%d\","
			   "\"Expiration\":\"%.19sZ\"}",
			   serial, serial, serial, exp);
}

static void web_identity_env(void)
{
	char path[512];

	write_file("wi-token", "  eyJ.tok+en/x=\n\n");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tmp_path(path, "wi-token"), 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
	setenv("AWS_ROLE_SESSION_NAME", "sess", 1);
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/sts", 1);
	kf_http_set_transport(fake);
}

KT_TEST(aws_web_identity)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;

	clean_env();
	web_identity_env();
	fk_reset(200, 3600, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_STR(kf_aws_chain_source(c), "web identity");
	KT_EQ_STR(fk.last_url, "http://127.0.0.1:9/sts/");
	KT_CHECK(strstr(fk.last_body, "Action=AssumeRoleWithWebIdentity&") ==
		 fk.last_body);
	KT_CHECK(strstr(fk.last_body, "&Version=2011-06-15") != NULL);
	KT_CHECK(strstr(fk.last_body, "&RoleArn=arn%3Aaws%3Aiam%3A%3A"
				      "123456789012%3Arole%2Fr") != NULL);
	KT_CHECK(strstr(fk.last_body, "&RoleSessionName=sess") != NULL);
	/* whitespace stripped, then form-encoded */
	KT_CHECK(strstr(fk.last_body,
			"&WebIdentityToken=eyJ.tok%2Ben%2Fx%3D") != NULL);
	KT_CHECK(strstr(fk.last_body, "%0A") == NULL);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIASTS1");
	KT_CHECK(secret_is(cr.secret_key, "sts/se&cret+1"));
	KT_CHECK(secret_is(cr.session_token, "sts-token-1<x>"));
	KT_CHECK(cr.expiration > time(NULL) + 3500 &&
		 cr.expiration <= time(NULL) + 3600);
	kf_aws_creds_release(&cr);
	KT_EQ_INT(fk.calls, 1);

	/* the token file is re-read on refresh */
	write_file("wi-token", "second-token");
	kf_aws_chain_invalidate(c);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_INT(fk.calls, 2);
	KT_EQ_STR(cr.access_key, "ASIASTS2");
	KT_CHECK(strstr(fk.last_body, "&WebIdentityToken=second-token") !=
		 NULL);
	kf_aws_creds_release(&cr);
	kf_aws_chain_free(c);
	c = NULL;

	/* STS ErrorResponse: code kept, no token text in the message */
	fk_reset(400, 3600, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), -1);
	KT_CHECK(c == NULL);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(err.http_status, 400);
	KT_EQ_STR(err.provider_code, "InvalidIdentityToken");
	KT_CHECK(strstr(err.msg, "Bad token & more") != NULL);
	KT_CHECK(strstr(err.msg, "second-token") == NULL);
	KT_EQ_INT(fk.calls, 1);

	/* a profile with role_arn + web_identity_token_file */
	clean_env();
	kf_http_set_transport(fake);
	fk_reset(200, 3600, 0);
	aws_dir();
	write_file("wi-token", "profile-token\n");
	{
		char conf[1024];

		int n = snprintf(conf, sizeof(conf),
				 "[profile wi]\nrole_arn = arn:aws:iam::1:"
				 "role/p\nweb_identity_token_file = %s/wi-token"
				 "\nendpoint_url = http://127.0.0.1:9/sts\n",
				 kt_tmpdir());

		KT_CHECK(n > 0 && (size_t)n < sizeof(conf));
		write_file(".aws/config", conf);
	}
	cfg.profile = "wi";
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_STR(kf_aws_chain_source(c), "web identity profile wi");
	KT_CHECK(strstr(fk.last_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3A"
				      "role%2Fp") != NULL);
	KT_CHECK(strstr(fk.last_body, "RoleSessionName=keyfs-session-") !=
		 NULL);
	kf_aws_chain_free(c);
	kf_http_set_transport(NULL);
}

KT_TEST(aws_container_and_imds)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	char path[512];

	clean_env();
	kf_http_set_transport(fake);
	fk_reset(200, 7200, 0);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds",
	       1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-auth", 1);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_STR(kf_aws_chain_source(c), "container");
	KT_EQ_STR(fk.last_auth, "env-auth");
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIANET1");
	KT_CHECK(secret_is(cr.secret_key, "net-secret-1"));
	KT_CHECK(secret_is(cr.session_token, "net-token-1"));
	kf_aws_creds_release(&cr);
	kf_aws_chain_free(c);
	c = NULL;

	/* the token file wins over the variable, newline stripped */
	write_file("auth", "file-auth\n");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path(path, "auth"),
	       1);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_STR(fk.last_auth, "file-auth");
	kf_aws_chain_free(c);
	c = NULL;

	/* a token with a line break inside is refused */
	write_file("auth", "a\nb");
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);

	/* plain http to a non-loopback host is refused */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/x", 1);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);

	/* 403 from the endpoint */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds",
	       1);
	fk_reset(403, 7200, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(strstr(err.msg, "env-auth") == NULL);

	/* IMDSv2 */
	clean_env();
	kf_http_set_transport(fake);
	fk_reset(200, 7200, 0);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_STR(kf_aws_chain_source(c), "imds");
	KT_CHECK(fk.saw_ttl);
	KT_EQ_STR(fk.last_imds_token, "imds-tok-1");
	KT_EQ_STR(fk.last_url, "http://127.0.0.1:9/latest/meta-data/iam/"
			       "security-credentials/role-a");
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIANET1");
	KT_CHECK(secret_is(cr.secret_key, "net-secret-1"));
	kf_aws_creds_release(&cr);
	kf_aws_chain_free(c);
	c = NULL;

	/* IMDS answering an error means "nothing found" */
	fk_reset(500, 7200, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(strstr(err.msg, "imds (") != NULL);
	kf_http_set_transport(NULL);
}

/* A test clock: pauses between attempts take no time and are counted. */
static struct {
	uint64_t now;
	unsigned sleeps, slept;
} fclock;

static uint64_t fclock_now(void *ctx)
{
	(void)ctx;
	return fclock.now;
}

static void fclock_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	fclock.now += ms;
	fclock.sleeps++;
	fclock.slept += ms;
}

static void fclock_use(void)
{
	struct kf_clock c = { fclock_now, fclock_sleep, NULL };

	memset(&fclock, 0, sizeof(fclock));
	fclock.now = 1000000;
	kf_clock_set(&c);
}

/* Each configured source hides the ones after it, in the SDKs' order. */
KT_TEST(aws_chain_source_order)
{
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	char src[160];

	clean_env();
	aws_dir();
	kf_http_set_transport(fake);
	fk_reset(200, 7200, 0);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "imds");
	kf_aws_creds_release(&cr);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds",
	       1);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "container");
	kf_aws_creds_release(&cr);
	write_file(".aws/credentials", cred_file);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "profile default");
	kf_aws_creds_release(&cr);
	web_identity_env();
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "web identity");
	kf_aws_creds_release(&cr);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "environment");
	kf_aws_creds_release(&cr);

	/* The files are read only once a source needs them: environment
	 * keys work beside a broken config file. */
	write_file(".aws/config", "[broken\n");
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), 0);
	KT_EQ_STR(src, "environment");
	kf_aws_creds_release(&cr);
	unsetenv("AWS_ACCESS_KEY_ID");
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	kf_http_set_transport(NULL);
}

/* What "nothing found" lists: every source looked at, in order. */
KT_TEST(aws_chain_lists_the_sources_tried)
{
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	char src[160];

	clean_env();
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_STR(err.msg, "no AWS credentials found: tried environment, "
			   "web identity, profile default, container, "
			   "imds (disabled)");
	setenv("AWS_PROFILE", "dev", 1);
	aws_dir();
	write_file(".aws/credentials", "[dev]\nregion = x\n");
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_STR(err.msg, "no AWS credentials found: tried environment, "
			   "web identity, profile dev, container, "
			   "imds (disabled)");
	/* IMDS that fails is also "nothing found", with why. */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1);
	kf_http_set_transport(fake);
	fk_reset(500, 7200, 0);
	KT_EQ_INT(chain_static(NULL, src, sizeof(src), &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_STR(err.msg, "no AWS credentials found: tried environment, "
			   "web identity, profile dev, container, "
			   "imds (UNAVAILABLE)");
	kf_http_set_transport(NULL);
}

/* One attempt schedule: the fake's answers, then what the chain did. */
struct retry_case {
	int status;		 /* credential requests answer this ... */
	int fails;		 /* ... after this many 503 answers */
	int token_status;	 /* IMDS token answer (0: a token) */
	int rc;			 /* kf_aws_chain_new's result */
	enum kf_code code;	 /* its error code when rc is -1 */
	int calls;		 /* credential requests made */
	unsigned min_ms, max_ms; /* time paused between attempts */
};

/* kf_aws_chain_new against the fake as t says, on the test clock. */
static int chain_round(const struct retry_case *t, struct kf_err *err)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	int rc;

	fclock_use();
	fk_reset(t->status, 7200, 0);
	fk.fails = t->fails;
	fk.token_status = t->token_status;
	kf_err_clear(err);
	rc = kf_aws_chain_new(&cfg, &c, err);
	kf_aws_chain_free(c);
	kf_clock_set(NULL);
	return rc;
}

static void retry_cases(const struct retry_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++, t++) {
		struct kf_err err = KF_ERR_INIT;

		KT_EQ_INT(chain_round(t, &err), t->rc);
		KT_EQ_INT(err.code, t->rc < 0 ? t->code : KF_OK);
		KT_EQ_INT(fk.calls, t->calls);
		KT_CHECK(fclock.slept >= t->min_ms &&
			 fclock.slept <= t->max_ms);
	}
}

KT_TEST(aws_sts_retries_transient_errors_three_times)
{
	/* pauses of 100..200 ms, then 200..400 ms */
	static const struct retry_case cases[] = {
		{ 503, 0, 0, -1, KF_E_UNAVAILABLE, 3, 300, 600 },
		{ 200, 2, 0, 0, KF_OK, 3, 300, 600 },
		{ 200, 1, 0, 0, KF_OK, 2, 100, 200 },
		{ 400, 0, 0, -1, KF_E_DENIED, 1, 0, 0 }, /* refused */
	};
	struct kf_err err = KF_ERR_INIT;

	clean_env();
	web_identity_env();
	retry_cases(cases, sizeof(cases) / sizeof(cases[0]));
	KT_EQ_INT(chain_round(&cases[0], &err), -1);
	KT_EQ_INT(err.http_status, 503);
	KT_CHECK(strstr(err.msg, "web identity") == err.msg);
	kf_http_set_transport(NULL);
}

KT_TEST(aws_container_retries_server_errors_three_times)
{
	/* pauses of 125..250 ms, then 250..500 ms */
	static const struct retry_case cases[] = {
		{ 503, 0, 0, -1, KF_E_UNAVAILABLE, 3, 375, 750 },
		{ 200, 1, 0, 0, KF_OK, 2, 125, 250 },
		/* refused, or an answer that is not credentials: final */
		{ 403, 0, 0, -1, KF_E_DENIED, 1, 0, 0 },
		{ 404, 0, 0, -1, KF_E_IO, 1, 0, 0 },
	};

	clean_env();
	kf_http_set_transport(fake);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds",
	       1);
	retry_cases(cases, sizeof(cases) / sizeof(cases[0]));
	kf_http_set_transport(NULL);
}

KT_TEST(aws_imds_attempts_come_from_the_environment)
{
	/* IMDS failing means "not on EC2": NOTFOUND. */
	static const struct retry_case one[] = {
		{ 500, 0, 0, -1, KF_E_NOTFOUND, 1, 0, 0 },
	};
	static const struct retry_case three[] = {
		{ 500, 0, 0, -1, KF_E_NOTFOUND, 3, 0, 0 }, /* no pause */
		{ 200, 2, 0, 0, KF_OK, 3, 0, 0 },
		/* IMDSv1 allowed: a refused token means no token header */
		{ 200, 0, 404, 0, KF_OK, 1, 0, 0 },
	};
	static const struct retry_case refused = { 200,		  0, 403, -1,
						   KF_E_NOTFOUND, 0, 0,	  0 };
	struct kf_err err = KF_ERR_INIT;

	clean_env();
	kf_http_set_transport(fake);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1);
	retry_cases(one, 1);
	setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3", 1);
	retry_cases(three, sizeof(three) / sizeof(three[0]));
	KT_EQ_STR(fk.last_imds_token, "");
	/* a refusal ends the attempts: token refused, IMDSv1 disabled */
	setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
	retry_cases(&refused, 1);
	KT_EQ_INT(fk.requests, 1);
	KT_EQ_INT(chain_round(&refused, &err), -1);
	KT_CHECK(strstr(err.msg, "imds (DENIED)") != NULL);
	kf_http_set_transport(NULL);
}

/* ---------- refresh ---------- */

struct getter {
	struct kf_aws_chain *c;
	int rc;
	char ak[128];
	long ms;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *getter_fn(void *arg)
{
	struct getter *g = arg;
	struct kf_aws_creds cr;
	struct kf_err err = KF_ERR_INIT;
	long t0 = now_ms();

	g->rc = kf_aws_chain_get(g->c, &cr, &err);
	g->ms = now_ms() - t0;
	if (g->rc == 0)
		/* Cannot truncate: both are 128 bytes. */
		(void)snprintf(g->ak, sizeof(g->ak), "%s", cr.access_key);
	kf_aws_creds_release(&cr);
	return NULL;
}

static void run_getters(struct kf_aws_chain *c, struct getter *g, int n)
{
	pthread_t t[16];

	for (int i = 0; i < n; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		g[i].c = c;
		pthread_create(&t[i], NULL, getter_fn, &g[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

KT_TEST(aws_refresh_advisory)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct getter g[8];
	int fresh = 0, old = 0;

	clean_env();
	web_identity_env();
	/* 12 minutes left: inside the advisory window, outside mandatory */
	fk_reset(200, 12 * 60, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	KT_EQ_INT(fk.calls, 1);
	pthread_mutex_lock(&fk.lock);
	fk.exp_in = 3600;
	fk.delay_ms = 400;
	pthread_mutex_unlock(&fk.lock);
	run_getters(c, g, 8);
	KT_EQ_INT(fk.calls, 2); /* exactly one refresh */
	for (int i = 0; i < 8; i++) {
		KT_EQ_INT(g[i].rc, 0);
		if (strcmp(g[i].ak, "ASIASTS2") == 0) {
			fresh++;
		} else {
			KT_EQ_STR(g[i].ak, "ASIASTS1");
			KT_CHECK(g[i].ms < 300); /* did not wait */
			old++;
		}
	}
	KT_CHECK(fresh >= 1);
	KT_CHECK(old >= 1); /* the others went on with the old ones */
	KT_EQ_INT(fresh + old, 8);
	/* now fresh for an hour: no more fetches */
	run_getters(c, g, 8);
	KT_EQ_INT(fk.calls, 2);
	for (int i = 0; i < 8; i++)
		KT_EQ_STR(g[i].ak, "ASIASTS2");
	kf_aws_chain_free(c);
	kf_http_set_transport(NULL);
}

KT_TEST(aws_refresh_mandatory)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct getter g[8];

	clean_env();
	web_identity_env();
	/* 5 minutes left: everyone must wait for the one refresh */
	fk_reset(200, 5 * 60, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	pthread_mutex_lock(&fk.lock);
	fk.exp_in = 3600;
	fk.delay_ms = 200;
	pthread_mutex_unlock(&fk.lock);
	run_getters(c, g, 8);
	KT_EQ_INT(fk.calls, 2);
	for (int i = 0; i < 8; i++) {
		KT_EQ_INT(g[i].rc, 0);
		KT_EQ_STR(g[i].ak, "ASIASTS2");
	}
	kf_aws_chain_free(c);
	kf_http_set_transport(NULL);
}

KT_TEST(aws_refresh_failure)
{
	struct kf_aws_chain_cfg cfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_creds cr;
	enum kf_log_level lvl = kf_log_get_level();

	clean_env();
	web_identity_env();
	fk_reset(200, 12 * 60, 0);
	KT_EQ_INT(kf_aws_chain_new(&cfg, &c, &err), 0);
	/* refresh fails while the old ones are valid: keep them */
	pthread_mutex_lock(&fk.lock);
	fk.status = 400;
	pthread_mutex_unlock(&fk.lock);
	kf_log_set_level(KF_LOG_ERROR); /* keep the expected warning quiet */
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIASTS1");
	kf_aws_creds_release(&cr);
	KT_EQ_INT(fk.calls, 2);
	/* and do not hammer STS on every call afterwards */
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	kf_aws_creds_release(&cr);
	KT_EQ_INT(fk.calls, 2);
	/* invalidated (server said expired) and refresh fails: error */
	kf_aws_chain_invalidate(c);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(strstr(err.msg, "web identity") != NULL);
	KT_EQ_INT(fk.calls, 3);
	/* recovers once STS answers again */
	pthread_mutex_lock(&fk.lock);
	fk.status = 200;
	fk.exp_in = 3600;
	pthread_mutex_unlock(&fk.lock);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIASTS4");
	kf_aws_creds_release(&cr);
	kf_log_set_level(lvl);
	kf_aws_chain_free(c);
	kf_http_set_transport(NULL);
}
