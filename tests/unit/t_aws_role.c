/*
 * Unit tests for role chains (cloud/aws/role.c): web identity tokens
 * offered in memory, proven once by a faked STS and then known by hash,
 * concurrent offers sharing one call, refreshes with the newest token,
 * and aws/ and ssm/ providers borrowing such a chain.  No network.
 */
#include "kt.h"

#include "aws/creds.h"
#include "aws/ssm_tree.h"
#include "aws/tree.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/http.h"
#include "core/log.h"
#include "provider.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ROLE "arn:aws:iam::123456789012:role/pod-reader"
#define ROLE_PCT "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fpod-reader"
/* JWT-shaped test tokens (not real ones) */
#define TOK_A "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QtYSJ9.c2lnLWE"
#define TOK_B "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QtYiJ9.c2lnLWI"

/* The faked STS (and Secrets Manager / Parameter Store): thread-safe. */
static struct {
	pthread_mutex_t lock;
	int calls;	  /* STS requests */
	int other;	  /* other requests */
	long status;	  /* STS answer: 200, an error, 0 reset, -1 timeout */
	const char *code; /* error Code */
	const char *msg;  /* error Message */
	long exp_in;	  /* credentials expire this many seconds ahead */
	int delay_ms;
	char last_body[4096]; /* the last STS form */
	char last_auth[512];  /* Authorization of the last other request */
} rf = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void rf_reset(long status, const char *code, long exp_in)
{
	pthread_mutex_lock(&rf.lock);
	rf.calls = rf.other = rf.delay_ms = 0;
	rf.status = status;
	rf.code = code;
	rf.msg = "Not authorized to perform sts:AssumeRoleWithWebIdentity";
	rf.exp_in = exp_in;
	rf.last_body[0] = rf.last_auth[0] = '\0';
	pthread_mutex_unlock(&rf.lock);
}

static const char *hdr(const struct kf_http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (const char *const *h = req->headers; h && *h; h++)
		if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
			return *h + n + 2;
	return "";
}

/* Secrets Manager and Parameter Store: one value for any read. */
static int other_answer(const struct kf_http_req *req,
			struct kf_http_resp *resp)
{
	const char *target = hdr(req, "X-Amz-Target");

	pthread_mutex_lock(&rf.lock);
	rf.other++;
	(void)snprintf(rf.last_auth, sizeof(rf.last_auth), "%s",
		       hdr(req, "Authorization"));
	pthread_mutex_unlock(&rf.lock);
	resp->status = 200;
	if (strstr(target, "GetSecretValue"))
		return kf_buf_adds(&resp->body,
				   "{\"Name\":\"db\",\"SecretString\":\"v1\","
				   "\"VersionId\":\"ver-1\"}");
	if (strstr(target, "DescribeSecret"))
		return kf_buf_adds(&resp->body, "{\"Name\":\"db\"}");
	if (strstr(target, "ListSecrets"))
		return kf_buf_adds(&resp->body, "{\"SecretList\":[]}");
	if (strstr(target, "GetParameter"))
		return kf_buf_adds(&resp->body,
				   "{\"Parameter\":{\"Name\":\"db\",\"Type\":"
				   "\"String\",\"Value\":\"p1\",\"Version\":1}}");
	if (strstr(target, "DescribeParameters"))
		return kf_buf_adds(&resp->body,
				   "{\"Parameters\":[{\"Name\":\"db\",\"Type\":"
				   "\"String\",\"Version\":1}]}");
	resp->status = 400;
	return kf_buf_adds(&resp->body, "{\"__type\":\"InvalidAction\"}");
}

static int sts_answer(struct kf_http_resp *resp, long status, const char *code,
		      const char *msg, int serial, long exp_in)
{
	char exp[64];
	time_t t = time(NULL) + exp_in;
	struct tm tm;

	resp->status = status;
	if (status != 200)
		return kf_buf_addf(&resp->body,
				   "<ErrorResponse><Error><Type>Sender</Type>"
				   "<Code>%s</Code><Message>%s</Message>"
				   "</Error></ErrorResponse>",
				   code, msg);
	gmtime_r(&t, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return kf_buf_addf(
		&resp->body,
		"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentity"
		"Result><Credentials><AccessKeyId>ASIAROLE%d</AccessKeyId>"
		"<SecretAccessKey>role-secret-%d</SecretAccessKey>"
		"<SessionToken>role-session-%d</SessionToken>"
		"<Expiration>%s</Expiration></Credentials>"
		"</AssumeRoleWithWebIdentityResult>"
		"</AssumeRoleWithWebIdentityResponse>",
		serial, serial, serial, exp);
}

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	long status, exp_in;
	const char *code, *msg;
	int serial, delay;

	if (!strstr(req->url, "/sts"))
		return other_answer(req, resp);
	pthread_mutex_lock(&rf.lock);
	serial = ++rf.calls;
	status = rf.status;
	code = rf.code;
	msg = rf.msg;
	exp_in = rf.exp_in;
	delay = rf.delay_ms;
	(void)snprintf(rf.last_body, sizeof(rf.last_body), "%.*s",
		       (int)req->body_len, (const char *)req->body);
	pthread_mutex_unlock(&rf.lock);
	if (delay)
		usleep((useconds_t)delay * 1000);
	if (status == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "connection reset");
	if (status == -1)
		return kf_fail(err, KF_E_TIMEOUT, "timed out");
	return sts_answer(resp, status, code, msg, serial, exp_in);
}

/* A test clock: retry pauses take no time. */
static uint64_t tclock_ms = 1000000;
static uint64_t tclock_now(void *ctx)
{
	return tclock_ms;
}
static void tclock_sleep(void *ctx, unsigned ms)
{
	tclock_ms += ms;
}

/* No AWS_* variable but the STS endpoint; HOME in the test's dir. */
static void role_env(void)
{
	kt_unsetenv_prefix("AWS_");
	setenv("HOME", kt_tmpdir(), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/sts", 1);
	kf_http_set_transport(fake);
	kf_log_set_level(
		KF_LOG_WARN); /* as t_aws_creds: later tests log warnings */
}

static struct kf_aws_chain *role_chain(const char *sn)
{
	struct kf_aws_role_cfg cfg = { ROLE, sn, NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;

	role_env();
	KT_EQ_INT(kf_aws_chain_new_role(&cfg, &c, &err), 0);
	return c;
}

static int offer(struct kf_aws_chain *c, const char *tok, struct kf_err *err)
{
	kf_err_clear(err);
	return kf_aws_chain_offer_token(c, tok, strlen(tok), err);
}

static int secret_is(const struct kf_secret *s, const char *want)
{
	return s && s->len == strlen(want) && !memcmp(s->data, want, s->len);
}

KT_TEST(aws_role_offer_then_known_by_hash)
{
	struct kf_aws_chain *c = role_chain(NULL);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_creds cr;

	rf_reset(200, NULL, 3600);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.msg, "no web identity token accepted yet for " ROLE);
	KT_EQ_INT(rf.calls, 0);

	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(rf.calls, 1);
	KT_CHECK(strstr(rf.last_body, "Action=AssumeRoleWithWebIdentity&") ==
		 rf.last_body);
	KT_CHECK(strstr(rf.last_body, "&RoleArn=" ROLE_PCT "&") != NULL);
	KT_CHECK(strstr(rf.last_body, "&RoleSessionName=keyfs-csi-") != NULL);
	KT_CHECK(strstr(rf.last_body, "&WebIdentityToken=" TOK_A) != NULL);
	KT_CHECK(strstr(kf_aws_chain_source(c), ROLE) != NULL);

	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIAROLE1");
	KT_CHECK(secret_is(cr.secret_key, "role-secret-1"));
	KT_CHECK(secret_is(cr.session_token, "role-session-1"));
	kf_aws_creds_release(&cr);

	/* the same token again: known, no call */
	for (int i = 0; i < 3; i++)
		KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(rf.calls, 1);
	kf_aws_chain_free(c);
}

KT_TEST(aws_role_offer_near_expiry_asks_again)
{
	struct kf_aws_chain *c = role_chain("sess-1");
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_creds cr;

	/* credentials 4 minutes from expiry: the token is asked again */
	rf_reset(200, NULL, 240);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_CHECK(strstr(rf.last_body, "&RoleSessionName=sess-1&") != NULL);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(rf.calls, 2);
	/* short-lived but usable: get hands them out without a call */
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIAROLE2");
	kf_aws_creds_release(&cr);
	KT_EQ_INT(rf.calls, 2);
	/* 6 minutes: known */
	rf_reset(200, NULL, 360);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(rf.calls, 1);
	kf_aws_chain_free(c);
}

/* STS refusals: DENIED, nothing remembered, no token text. */
static const struct {
	long status;
	const char *code;
} refusals[] = {
	{ 403, "AccessDenied" },
	{ 400, "InvalidIdentityToken" },
	{ 400, "ExpiredTokenException" },
	{ 400, "IDPRejectedClaim" },
};

KT_TEST(aws_role_refused_token_is_denied_and_not_kept)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_creds cr;

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct kf_aws_chain *c = role_chain(NULL);

		rf_reset(refusals[i].status, refusals[i].code, 3600);
		KT_EQ_INT(offer(c, TOK_A, &err), -1);
		KT_EQ_INT(err.code, KF_E_DENIED);
		KT_EQ_STR(err.provider_code, refusals[i].code);
		KT_CHECK(strstr(err.msg, refusals[i].code) != NULL);
		KT_CHECK(strstr(err.msg, ROLE) != NULL);
		KT_CHECK(strstr(err.msg, "eyJ") == NULL);
		/* refused once: asked again, not remembered */
		KT_EQ_INT(offer(c, TOK_A, &err), -1);
		KT_EQ_INT(rf.calls, 2);
		KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), -1);
		KT_EQ_INT(err.code, KF_E_DENIED);
		/* accepted later: remembered from then on */
		rf_reset(200, NULL, 3600);
		KT_EQ_INT(offer(c, TOK_A, &err), 0);
		KT_EQ_INT(offer(c, TOK_A, &err), 0);
		KT_EQ_INT(rf.calls, 1);
		kf_aws_chain_free(c);
	}
}

KT_TEST(aws_role_error_quoting_the_token_is_withheld)
{
	struct kf_aws_chain *c = role_chain(NULL);
	struct kf_err err = KF_ERR_INIT;

	rf_reset(400, "InvalidIdentityToken", 3600);
	rf.msg = "Token " TOK_A " is not valid";
	KT_EQ_INT(offer(c, TOK_A, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "InvalidIdentityToken");
	KT_CHECK(strstr(err.msg, TOK_A) == NULL);
	KT_CHECK(strstr(err.msg, "withheld") != NULL);
	kf_aws_chain_free(c);
}

KT_TEST(aws_role_sts_unreachable_is_unavailable)
{
	static const struct {
		long status;
		const char *code;
		enum kf_code want;
	} t[] = {
		{ 503, "ServiceUnavailable", KF_E_UNAVAILABLE },
		{ 500, "InternalFailure", KF_E_UNAVAILABLE },
		{ 400, "Throttling", KF_E_UNAVAILABLE },
		{ 0, NULL, KF_E_UNAVAILABLE },
		{ -1, NULL, KF_E_TIMEOUT },
	};
	struct kf_clock tc = { tclock_now, tclock_sleep, NULL };
	struct kf_err err = KF_ERR_INIT;

	kf_clock_set(&tc);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kf_aws_chain *c = role_chain(NULL);

		rf_reset(t[i].status, t[i].code, 3600);
		KT_EQ_INT(offer(c, TOK_A, &err), -1);
		KT_EQ_INT(err.code, t[i].want);
		KT_CHECK(strstr(err.msg, "eyJ") == NULL);
		KT_EQ_INT(rf.calls, 3); /* the STS retry policy */
		rf_reset(200, NULL, 3600);
		KT_EQ_INT(offer(c, TOK_A, &err), 0);
		KT_EQ_INT(rf.calls, 1);
		kf_aws_chain_free(c);
	}
	kf_clock_set(NULL);
}

KT_TEST(aws_role_refresh_uses_newest_token)
{
	struct kf_aws_chain *c = role_chain(NULL);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_creds cr;

	rf_reset(200, NULL, 3600);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(offer(c, TOK_B, &err), 0);
	KT_EQ_INT(rf.calls, 2);
	KT_CHECK(strstr(rf.last_body, "&WebIdentityToken=" TOK_B) != NULL);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIAROLE2");
	kf_aws_creds_release(&cr);
	/* A is still known; offering it again does not make it the newest */
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	KT_EQ_INT(rf.calls, 2);

	/* ExpiredTokenException from a store: the refresh uses B */
	rf.last_body[0] = '\0';
	kf_aws_chain_invalidate(c);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_INT(rf.calls, 3);
	KT_EQ_STR(cr.access_key, "ASIAROLE3");
	KT_CHECK(strstr(rf.last_body, "&WebIdentityToken=" TOK_B) != NULL);
	KT_CHECK(strstr(rf.last_body, TOK_A) == NULL);
	kf_aws_creds_release(&cr);

	/* credentials near expiry are refreshed by get, with B */
	rf_reset(200, NULL, 120);
	KT_EQ_INT(offer(c, "eyJ.short.lived", &err), 0); /* now the newest */
	rf_reset(200, NULL, 3600);
	kf_aws_chain_invalidate(c);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_INT(rf.calls, 1);
	KT_CHECK(strstr(rf.last_body, "&WebIdentityToken=eyJ.short.lived") !=
		 NULL);
	kf_aws_creds_release(&cr);

	/* the refresh token refused: get fails DENIED, keys not in msg */
	rf_reset(400, "ExpiredTokenException", 3600);
	kf_aws_chain_invalidate(c);
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(strstr(err.msg, "eyJ") == NULL);
	kf_aws_chain_free(c);
}

static pthread_barrier_t start;

struct offer_arg {
	struct kf_aws_chain *c;
	const char *tok;
	int rc;
};

static void *offer_thread(void *p)
{
	struct offer_arg *a = p;
	struct kf_err err = KF_ERR_INIT;

	pthread_barrier_wait(&start);
	a->rc = offer(a->c, a->tok, &err);
	return NULL;
}

/* n threads (at most 16) offer toks[i % ntoks] at once; returns how many failed. */
static int offer_all(struct kf_aws_chain *c, const char *const *toks,
		     size_t ntoks, size_t n)
{
	pthread_t th[16];
	struct offer_arg a[16];
	int failed = 0;

	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (size_t i = 0; i < n; i++) {
		a[i].c = c;
		a[i].tok = toks[i % ntoks];
		a[i].rc = 1;
		KT_EQ_INT(pthread_create(&th[i], NULL, offer_thread, &a[i]), 0);
	}
	for (size_t i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		failed += a[i].rc != 0;
	}
	pthread_barrier_destroy(&start);
	return failed;
}

KT_TEST(aws_role_concurrent_offers_share_one_call)
{
	static const char *const one[] = { TOK_A };
	static const char *const two[] = { TOK_A, TOK_B };
	struct kf_aws_chain *c = role_chain(NULL);
	struct kf_err err = KF_ERR_INIT;

	rf_reset(200, NULL, 3600);
	rf.delay_ms = 400; /* all 16 arrive meanwhile */
	KT_EQ_INT(offer_all(c, one, 1, 16), 0);
	KT_EQ_INT(rf.calls, 1);
	kf_aws_chain_free(c);

	/* two tokens: one call each, concurrently */
	c = role_chain(NULL);
	rf_reset(200, NULL, 3600);
	rf.delay_ms = 400; /* all 16 arrive meanwhile */
	KT_EQ_INT(offer_all(c, two, 2, 16), 0);
	KT_EQ_INT(rf.calls, 2);
	kf_aws_chain_free(c);

	/* a refusal is shared by the offers waiting for it */
	c = role_chain(NULL);
	rf_reset(403, "AccessDenied", 3600);
	rf.delay_ms = 400; /* all 16 arrive meanwhile */
	KT_EQ_INT(offer_all(c, one, 1, 16), 16);
	KT_EQ_INT(rf.calls, 1);
	KT_EQ_INT(offer(c, TOK_A, &err), -1);
	KT_EQ_INT(rf.calls, 2);
	kf_aws_chain_free(c);
}

KT_TEST(aws_role_arn_and_session_name_checked)
{
	static const char *const bad[] = {
		"",
		"arn:aws:iam::123456789012:user/bob",
		"arn:aws:iam::12345678901:role/x",
		"arn:aws:iam::1234567890123:role/x",
		"arn:aws:iam:us-east-1:123456789012:role/x",
		"arn:aws:sts::123456789012:role/x",
		"arn::iam::123456789012:role/x",
		"arn:aws:iam::123456789012:role/",
		"arn:aws:iam::123456789012:role/a b",
		"arn:aws:iam::123456789012:role/x\n",
		"arn:aws:iam::123456789012:role//x",
		"role/x",
	};
	static const char *const good[] = {
		"arn:aws:iam::123456789012:role/x",
		"arn:aws-cn:iam::123456789012:role/service-role/My+Role=,.@_-1",
		"arn:aws-us-gov:iam::000000000000:role/a/b/c",
	};
	struct kf_aws_role_cfg cfg = { NULL, NULL, NULL, 0 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;

	role_env();
	rf_reset(200, NULL, 3600);
	KT_EQ_INT(kf_aws_chain_new_role(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.role_arn = bad[i];
		kf_err_clear(&err);
		KT_EQ_INT(kf_aws_chain_new_role(&cfg, &c, &err), -1);
		KT_EQ_INT(err.code, KF_E_INVALID);
		KT_CHECK(c == NULL);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cfg.role_arn = good[i];
		KT_EQ_INT(kf_aws_chain_new_role(&cfg, &c, &err), 0);
		kf_aws_chain_free(c);
		c = NULL;
	}
	cfg.role_arn = ROLE;
	cfg.session_name = "a b";
	KT_EQ_INT(kf_aws_chain_new_role(&cfg, &c, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(rf.calls, 0);
}

KT_TEST(aws_role_offer_needs_a_role_chain)
{
	struct kf_aws_chain_cfg ccfg = { NULL, 1000 };
	struct kf_aws_chain *c = NULL;
	struct kf_err err = KF_ERR_INIT;

	role_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	KT_EQ_INT(kf_aws_chain_new(&ccfg, &c, &err), 0);
	KT_EQ_INT(offer(c, TOK_A, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	kf_aws_chain_free(c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	c = role_chain(NULL);
	KT_EQ_INT(kf_aws_chain_offer_token(c, "", 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	kf_aws_chain_free(c);
}

/* A provider made with cfg.aws_chain reads as the role, no probe call. */
static void borrowed_by(const struct kf_provider_desc *d, const char *path,
			const char *want)
{
	struct kf_kv kv[] = {
		{ (char *)"aws_region", (char *)"us-west-2" },
		{ (char *)"aws_endpoint", (char *)"http://127.0.0.1:9/sm" },
		{ (char *)"ssm_endpoint", (char *)"http://127.0.0.1:9/ssm" },
	};
	struct kf_config cfg = { kt_tmpdir(), 5, 60, 0, kv, 3, NULL, 0 };
	struct kf_aws_chain *c = role_chain(NULL);
	struct kf_provider *p = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct kf_aws_creds cr;

	KT_EQ_INT(d->assumes_role, 1);
	rf_reset(200, NULL, 3600);
	KT_EQ_INT(offer(c, TOK_A, &err), 0);
	cfg.aws_chain = c;
	KT_EQ_INT(d->create(&cfg, &p, &err), 0);
	KT_EQ_INT(rf.other, 0); /* no probe */
	KT_EQ_INT(p->ops->read(p, path, &v, &err), 0);
	if (err.code)
		fprintf(stderr, "    %s\n", err.msg);
	KT_CHECK(secret_is(v, want));
	KT_CHECK(strstr(rf.last_auth, "Credential=ASIAROLE1/") != NULL);
	kf_secret_free(v);
	p->ops->free(p);
	/* the chain outlives the provider */
	KT_EQ_INT(kf_aws_chain_get(c, &cr, &err), 0);
	KT_EQ_STR(cr.access_key, "ASIAROLE1");
	kf_aws_creds_release(&cr);
	kf_aws_chain_free(c);
}

KT_TEST(aws_role_providers_borrow_the_chain)
{
	borrowed_by(&kf_aws_desc, "us-west-2/db", "v1");
	borrowed_by(&kf_ssm_desc, "us-west-2/db", "p1");
}
