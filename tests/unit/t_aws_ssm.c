/*
 * Unit tests for the Parameter Store client (cloud/aws/ssm*.c) and the
 * call core it shares with Secrets Manager, through the HTTP transport
 * seam (t_aws_fake.c): request bodies, X-Amz-Target and the SigV4 scope
 * of service "ssm", pages and tokens, decryption on every read, put
 * bodies for create and overwrite, the check that keeps a retried
 * PutParameter from making a second version, delete retries, history
 * without values, error types, the name rules, the endpoint order, and a
 * canary value that never reaches an error message or a log line.  A
 * small stateful fake (one parameter) answers the retry tests.  No
 * network.
 */
#include "kt.h"
#include "t_aws_fake.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/config.h"
#include "aws/sm.h"
#include "aws/ssm.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/stats.h"

#define CANARY "CANARY-ssm-value-7f3a9e"

static struct kf_aws_chain *chain;

/* A client on a fake endpoint with env credentials; answers queued. */
static struct kf_aws_ssm *setup_n(size_t n, const struct fake_resp *resp,
				  unsigned attempts)
{
	struct kf_aws_ssm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_ssm *ssm = NULL;

	kf_json_init();
	fake_reset(n, resp);
	kf_aws_chain_free(chain);
	chain = fake_env_chain(NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:4583";
	cfg.region = "eu-central-1";
	cfg.chain = chain;
	cfg.timeout_ms = 5000;
	cfg.attempts = attempts;
	cfg.backoff_base_ms = 1;
	KT_EQ_INT(kf_aws_ssm_new(&cfg, &ssm, &err), 0);
	kf_http_set_transport(fake_transport);
	kf_aws_sm_set_clock(fake_clock);
	return ssm;
}

static struct kf_aws_ssm *setup(size_t n, const struct fake_resp *resp)
{
	return setup_n(n, resp, 0);
}

static void teardown(struct kf_aws_ssm *ssm)
{
	kf_aws_ssm_free(ssm);
	kf_aws_chain_free(chain);
	chain = NULL;
	kf_http_set_transport(NULL);
	kf_aws_sm_set_clock(NULL);
	fake_env_clear();
}

/* The X-Amz-Target of request i is AmazonSSM.op. */
static int target_is(size_t i, const char *op)
{
	char line[128];

	snprintf(line, sizeof(line), "X-Amz-Target: AmazonSSM.%s", op);
	return has_header(i, line);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Whether the request body i holds member key at all. */
static int req_has(size_t i, const char *key)
{
	json_t *j = req_json(i);
	int has = json_object_get(j, key) != NULL;

	json_decref(j);
	return has;
}

/* ---- stderr capture: log lines are looked at, never printed ---------- */

struct capture {
	int saved;
	enum kf_log_level level;
	char path[512];
};

static void capture_start(struct capture *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr", kt_tmpdir());
	c->level = kf_log_get_level();
	kf_log_set_level(KF_LOG_DEBUG);
	fflush(stderr);
	c->saved = dup(2);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	KT_CHECK(fd >= 0 && c->saved >= 0);
	dup2(fd, 2);
	close(fd);
}

/* Stop capturing; the captured text into out. */
static void capture_stop(struct capture *c, char *out, size_t outlen)
{
	FILE *f;
	size_t n = 0;

	fflush(stderr);
	kf_log_set_level(c->level);
	dup2(c->saved, 2);
	close(c->saved);
	f = fopen(c->path, "r");
	if (f) {
		n = fread(out, 1, outlen - 1, f);
		fclose(f);
	}
	out[n] = '\0';
}

/* ---- listing ------------------------------------------------------------ */

KT_TEST(aws_ssm_list_request_signing_and_parse)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"Parameters\":[{\"Name\":\"/prod/db/pass\",\"ARN\":"
		  "\"arn:aws:ssm:eu-central-1:1:parameter/prod/db/pass\","
		  "\"Type\":\"SecureString\",\"KeyId\":\"alias/aws/ssm\","
		  "\"Description\":\"the db\",\"Tier\":\"Advanced\","
		  "\"Version\":7,\"LastModifiedDate\":1700000000.25,"
		  "\"DataType\":\"text\"},"
		  "{\"Type\":\"String\"},"
		  "{\"Name\":\"/prod/x\",\"Type\":\"String\",\"Version\":\"2\","
		  "\"Description\":null,\"KeyId\":null}],"
		  "\"NextToken\":\"T2\"}" },
		{ 200, "{\"Parameters\":[]}" },
	};
	struct kf_aws_ssm *ssm = setup(2, r);
	struct kf_aws_ssm_page pg;
	struct kf_err err = KF_ERR_INIT;
	char auth[512];
	json_t *j, *f;

	KT_EQ_INT(kf_aws_ssm_list(ssm, "/prod", 1, "T1", 50, &pg, &err), 0);
	KT_EQ_INT(fk.nreq, 1);
	KT_EQ_STR(fk.url[0], "http://127.0.0.1:4583");
	KT_CHECK(target_is(0, "DescribeParameters"));
	KT_CHECK(has_header(0, "Content-Type: application/x-amz-json-1.1"));
	KT_CHECK(has_header(0, "Host: 127.0.0.1:4583"));
	hdr_value(0, "Authorization: ", auth, sizeof(auth));
	KT_CHECK(strstr(auth, "Credential=AKIDEXAMPLE/20150830/eu-central-1/"
			      "ssm/aws4_request") != NULL);
	j = req_json(0);
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 50);
	KT_EQ_STR(jstr(j, "NextToken"), "T1");
	f = json_array_get(json_object_get(j, "ParameterFilters"), 0);
	KT_EQ_INT(json_array_size(json_object_get(j, "ParameterFilters")), 1);
	KT_EQ_STR(jstr(f, "Key"), "Path");
	KT_EQ_STR(jstr(f, "Option"), "Recursive");
	KT_EQ_STR(json_string_value(
			  json_array_get(json_object_get(f, "Values"), 0)),
		  "/prod");
	json_decref(j);
	/* the entry without a Name is skipped */
	KT_EQ_INT(pg.n, 2);
	KT_EQ_STR(pg.v[0].name, "/prod/db/pass");
	KT_EQ_STR(pg.v[0].arn,
		  "arn:aws:ssm:eu-central-1:1:parameter/prod/db/pass");
	KT_EQ_STR(pg.v[0].type, "SecureString");
	KT_EQ_STR(pg.v[0].key_id, "alias/aws/ssm");
	KT_EQ_STR(pg.v[0].description, "the db");
	KT_EQ_STR(pg.v[0].tier, "Advanced");
	KT_EQ_INT(pg.v[0].version, 7);
	KT_EQ_INT(pg.v[0].changed, 1700000000);
	KT_EQ_STR(pg.v[1].name, "/prod/x");
	KT_EQ_INT(pg.v[1].version, 2);
	KT_CHECK(pg.v[1].arn == NULL && pg.v[1].key_id == NULL &&
		 pg.v[1].description == NULL && pg.v[1].tier == NULL);
	KT_EQ_INT(pg.v[1].changed, 0);
	KT_EQ_STR(pg.next_token, "T2");
	kf_aws_ssm_page_release(&pg);

	/* the root: no filter; OneLevel; the page size kept to 1..50 */
	KT_EQ_INT(kf_aws_ssm_list(ssm, NULL, 1, NULL, 0, &pg, &err), 0);
	KT_CHECK(pg.n == 0 && pg.next_token == NULL);
	j = req_json(1);
	KT_CHECK(json_object_get(j, "ParameterFilters") == NULL);
	KT_CHECK(json_object_get(j, "NextToken") == NULL);
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 50);
	json_decref(j);
	kf_aws_ssm_page_release(&pg);
	KT_EQ_INT(kf_aws_ssm_list(ssm, "/a", 0, "", 1, &pg, &err), 0);
	j = req_json(2);
	f = json_array_get(json_object_get(j, "ParameterFilters"), 0);
	KT_EQ_STR(jstr(f, "Option"), "OneLevel");
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 1);
	KT_CHECK(json_object_get(j, "NextToken") == NULL);
	json_decref(j);
	kf_aws_ssm_page_release(&pg);
	KT_EQ_INT(kf_aws_ssm_list(ssm, "/a", 0, NULL, 51, &pg, &err), 0);
	j = req_json(3);
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 50);
	json_decref(j);
	kf_aws_ssm_page_release(&pg);
	teardown(ssm);
}

/* Calls count under "ssm" in the statistics; Secrets Manager's stay
 * "aws" with their own target and scope. */
KT_TEST(aws_ssm_stats_and_target_apart_from_secrets_manager)
{
	static const struct fake_resp r[] = {
		{ 500, "{\"__type\":\"InternalServerError\"}" },
		{ 200, "{\"Parameters\":[]}" },
	};
	struct kf_aws_ssm *ssm = setup(2, r);
	struct kf_aws_ssm_page pg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf st;

	kf_stats_reset();
	kf_buf_init(&st, 8192);
	KT_EQ_INT(kf_aws_ssm_list(ssm, NULL, 0, NULL, 1, &pg, &err), 0);
	kf_aws_ssm_page_release(&pg);
	KT_EQ_INT(fk.nreq, 2);
	KT_EQ_INT(kf_stats_json(&st), 0);
	KT_CHECK(strstr(kf_buf_str(&st),
			"\"ssm\":{\"DescribeParameters\":{\"calls\":2,"
			"\"errors\":1,\"retries\":1,") != NULL);
	KT_CHECK(strstr(kf_buf_str(&st), "\"aws\"") == NULL);
	kf_buf_release(&st);
	kf_stats_reset();
	teardown(ssm);
}

KT_TEST(aws_ssm_describe_name_equals_over_pages)
{
	static const struct fake_resp r[] = {
		/* a filtered page may be empty and still have a token */
		{ 200, "{\"Parameters\":[],\"NextToken\":\"N1\"}" },
		{ 200, "{\"Parameters\":[{\"Name\":\"/a/b\",\"Version\":4,"
		       "\"Type\":\"String\"}]}" },
		{ 200, "{\"Parameters\":[]}" },
		/* moto lists "/foo" as "foo" */
		{ 200, "{\"Parameters\":[{\"Name\":\"foo\",\"Version\":1}]}" },
		{ 400, "{\"__type\":\"InvalidFilterValue\",\"message\":"
		       "\"bad value /x\"}" },
	};
	struct kf_aws_ssm *ssm = setup(5, r);
	struct kf_aws_ssm_meta m;
	struct kf_err err = KF_ERR_INIT;
	json_t *j, *f;

	KT_EQ_INT(kf_aws_ssm_describe(ssm, "/a/b", &m, &err), 1);
	KT_EQ_INT(fk.nreq, 2);
	KT_EQ_STR(m.name, "/a/b");
	KT_EQ_INT(m.version, 4);
	KT_EQ_STR(m.type, "String");
	kf_aws_ssm_meta_release(&m);
	j = req_json(0);
	f = json_array_get(json_object_get(j, "ParameterFilters"), 0);
	KT_EQ_STR(jstr(f, "Key"), "Name");
	KT_EQ_STR(jstr(f, "Option"), "Equals");
	KT_EQ_STR(json_string_value(
			  json_array_get(json_object_get(f, "Values"), 0)),
		  "/a/b");
	KT_CHECK(json_object_get(j, "NextToken") == NULL);
	json_decref(j);
	j = req_json(1);
	KT_EQ_STR(jstr(j, "NextToken"), "N1");
	json_decref(j);
	KT_CHECK(target_is(1, "DescribeParameters"));

	KT_EQ_INT(kf_aws_ssm_describe(ssm, "/nope", &m, &err), 0);
	KT_CHECK(m.name == NULL);
	KT_EQ_INT(kf_aws_ssm_describe(ssm, "/foo", &m, &err), 1);
	KT_EQ_STR(m.name, "foo");
	kf_aws_ssm_meta_release(&m);
	KT_EQ_INT(kf_aws_ssm_describe(ssm, "/x", &m, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_STR(err.provider_code, "InvalidFilterValue");
	KT_CHECK(strstr(err.msg, "bad value") == NULL);
	KT_EQ_INT(fk.nreq, 5);
	teardown(ssm);
}

/* ---- reading ------------------------------------------------------------ */

KT_TEST(aws_ssm_get_decrypts_and_selects)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"Parameter\":{\"Name\":\"/p/k\",\"Type\":"
		  "\"SecureString\",\"Value\":\"" CANARY "\",\"Version\":3,"
		  "\"ARN\":\"arn:aws:ssm:eu-central-1:1:parameter/p/k\","
		  "\"LastModifiedDate\":1700000001.5,"
		  "\"DataType\":\"text\"}}" },
		{ 200, "{\"Parameter\":{\"Name\":\"/p/k:2\",\"Type\":"
		       "\"String\",\"Value\":\"old\",\"Version\":2,"
		       "\"Selector\":\":2\"}}" },
		{ 200, "{\"Parameter\":{\"Name\":\"/p/k\",\"Value\":\"\","
		       "\"Version\":5,\"Selector\":\":live\"}}" },
		{ 400,
		  "{\"__type\":\"ParameterVersionNotFound\",\"message\":"
		  "\"Systems Manager could not find version 9 of /p/k\"}" },
		{ 200, "{\"Parameter\":{\"Name\":\"/p/k\"}}" },
	};
	struct kf_aws_ssm *ssm = setup(5, r);
	struct kf_secret *v = NULL;
	struct kf_aws_ssm_meta m;
	struct kf_err err = KF_ERR_INIT;
	json_t *j;

	KT_EQ_INT(kf_aws_ssm_get(ssm, "/p/k", NULL, &v, &m, &err), 0);
	KT_CHECK(target_is(0, "GetParameter"));
	j = req_json(0);
	KT_EQ_STR(jstr(j, "Name"), "/p/k");
	KT_CHECK(json_is_true(json_object_get(j, "WithDecryption")));
	json_decref(j);
	KT_CHECK(v && v->len == strlen(CANARY) &&
		 memcmp(v->data, CANARY, v->len) == 0);
	KT_EQ_STR(v->version, "3");
	KT_EQ_STR(m.name, "/p/k");
	KT_EQ_STR(m.type, "SecureString");
	KT_EQ_STR(m.arn, "arn:aws:ssm:eu-central-1:1:parameter/p/k");
	KT_EQ_INT(m.version, 3);
	KT_EQ_INT(m.changed, 1700000001);
	kf_secret_free(v);
	kf_aws_ssm_meta_release(&m);

	/* a version: "name:3"; the name in meta without it */
	KT_EQ_INT(kf_aws_ssm_get(ssm, "/p/k", "2", &v, &m, &err), 0);
	j = req_json(1);
	KT_EQ_STR(jstr(j, "Name"), "/p/k:2");
	KT_CHECK(json_is_true(json_object_get(j, "WithDecryption")));
	json_decref(j);
	KT_CHECK(v->len == 3 && memcmp(v->data, "old", 3) == 0);
	KT_EQ_STR(v->version, "2");
	KT_EQ_STR(m.name, "/p/k");
	kf_secret_free(v);
	kf_aws_ssm_meta_release(&m);

	/* a label; meta may be NULL; the version that answered is kept */
	KT_EQ_INT(kf_aws_ssm_get(ssm, "/p/k", "live", &v, NULL, &err), 0);
	j = req_json(2);
	KT_EQ_STR(jstr(j, "Name"), "/p/k:live");
	json_decref(j);
	KT_EQ_STR(v->version, "5");
	KT_EQ_INT(v->len, 0);
	kf_secret_free(v);

	KT_EQ_INT(kf_aws_ssm_get(ssm, "/p/k", "9", &v, &m, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(v == NULL && m.name == NULL);
	KT_EQ_INT(fk.nreq, 4); /* not retried */
	/* an answer without a value is not an empty value */
	KT_EQ_INT(kf_aws_ssm_get(ssm, "/p/k", NULL, &v, &m, &err), -1);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_CHECK(v == NULL && m.name == NULL);
	teardown(ssm);
}

struct got {
	char names[256];
	size_t n;
	int canary_seen;
};

static void got_one(void *ctx, const char *name, struct kf_secret *value)
{
	struct got *g = ctx;
	size_t len = strlen(g->names);

	snprintf(g->names + len, sizeof(g->names) - len, "%s@%s ", name,
		 value->version);
	if (value->len == strlen(CANARY) &&
	    memcmp(value->data, CANARY, value->len) == 0)
		g->canary_seen++;
	g->n++;
	kf_secret_free(value);
}

KT_TEST(aws_ssm_get_batch_of_ten)
{
	static const struct fake_resp r[] = {
		{ 200, "{\"Parameters\":[{\"Name\":\"/a\",\"Value\":\"" CANARY
		       "\",\"Version\":1},{\"Name\":\"/c\",\"Value\":\"x\","
		       "\"Version\":12},{\"Value\":\"nameless\"}],"
		       "\"InvalidParameters\":[\"/b\"]}" },
	};
	static const char *const names[] = { "/a", "/b", "/c", "/d", "/e", "/f",
					     "/g", "/h", "/i", "/j", "/k" };
	struct kf_aws_ssm *ssm = setup(1, r);
	struct kf_err err = KF_ERR_INIT;
	struct got g;
	json_t *j, *list;

	memset(&g, 0, sizeof(g));
	KT_EQ_INT(kf_aws_ssm_get_batch(ssm, names, 0, got_one, &g, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_aws_ssm_get_batch(ssm, names, 11, got_one, &g, &err), -1);
	KT_EQ_INT(fk.nreq, 0);
	KT_EQ_INT(kf_aws_ssm_get_batch(ssm, names, 10, got_one, &g, &err), 0);
	KT_CHECK(target_is(0, "GetParameters"));
	j = req_json(0);
	list = json_object_get(j, "Names");
	KT_EQ_INT(json_array_size(list), 10);
	KT_EQ_STR(json_string_value(json_array_get(list, 9)), "/j");
	KT_CHECK(json_is_true(json_object_get(j, "WithDecryption")));
	json_decref(j);
	KT_EQ_STR(g.names, "/a@1 /c@12 ");
	KT_EQ_INT(g.canary_seen, 1);
	teardown(ssm);
}

/* ---- history ------------------------------------------------------------ */

KT_TEST(aws_ssm_history_pages_without_values)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"Parameters\":[{\"Name\":\"/p\",\"Version\":1,\"Value\":"
		  "\"" CANARY "\",\"Labels\":[],\"LastModifiedDate\":"
		  "1700000000.123},{\"Name\":\"/p\",\"Version\":2,\"Value\":"
		  "\"" CANARY "\",\"Labels\":[\"live\",\"bad label\",\"a,b\","
		  "\"blue\"],\"LastModifiedDate\":1700000005},"
		  "{\"Name\":\"/p\",\"Value\":\"" CANARY "\"}],"
		  "\"NextToken\":\"H2\"}" },
		{ 400, "{\"__type\":\"ParameterNotFound\"}" },
	};
	struct kf_aws_ssm *ssm = setup(2, r);
	struct kf_aws_ssm_versions h;
	struct kf_err err = KF_ERR_INIT;
	json_t *j;

	KT_EQ_INT(kf_aws_ssm_history(ssm, "/p", "H1", 50, &h, &err), 0);
	KT_CHECK(target_is(0, "GetParameterHistory"));
	j = req_json(0);
	KT_EQ_STR(jstr(j, "Name"), "/p");
	KT_EQ_STR(jstr(j, "NextToken"), "H1");
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 50);
	KT_CHECK(json_is_false(json_object_get(j, "WithDecryption")));
	json_decref(j);
	/* the entry without a Version is skipped; values are not kept */
	KT_EQ_INT(h.n, 2);
	KT_EQ_INT(h.v[0].version, 1);
	KT_EQ_STR(h.v[0].labels, "");
	KT_EQ_INT(h.v[0].changed_ms, 1700000000123LL);
	KT_EQ_INT(h.v[1].version, 2);
	KT_EQ_STR(h.v[1].labels, "live,blue");
	KT_EQ_INT(h.v[1].changed_ms, 1700000005000LL);
	KT_EQ_STR(h.next_token, "H2");
	for (size_t i = 0; i < h.n; i++)
		KT_CHECK(strstr(h.v[i].labels, "CANARY") == NULL);
	kf_aws_ssm_versions_release(&h);

	KT_EQ_INT(kf_aws_ssm_history(ssm, "/gone", NULL, 0, &h, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(h.n == 0 && h.v == NULL);
	j = req_json(1);
	KT_CHECK(json_object_get(j, "NextToken") == NULL);
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 50);
	json_decref(j);
	teardown(ssm);
}

/* ---- writing: bodies and checks ----------------------------------------- */

KT_TEST(aws_ssm_put_create_and_overwrite_bodies)
{
	static const struct fake_resp r[] = {
		{ 200, "{\"Version\":1,\"Tier\":\"Standard\"}" },
		{ 200, "{\"Version\":8,\"Tier\":\"Advanced\"}" },
	};
	struct kf_aws_ssm *ssm = setup(2, r);
	struct kf_aws_ssm_put create = { 0, "SecureString", "alias/mine", NULL,
					 0 };
	struct kf_aws_ssm_put over = { 1, NULL, NULL, "Advanced", 7 };
	struct kf_err err = KF_ERR_INIT;
	const char *val = CANARY "\n\"quoted\"\t\xc3\xa9";
	int64_t ver = -1;
	int landed = -1;
	json_t *j;

	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)val,
				 strlen(val), &create, &ver, &landed, &err),
		  0);
	KT_EQ_INT(ver, 1);
	KT_EQ_INT(landed, 0);
	KT_CHECK(target_is(0, "PutParameter"));
	j = req_json(0);
	KT_EQ_STR(jstr(j, "Name"), "/app/key");
	KT_CHECK(jstr(j, "Value") && strcmp(jstr(j, "Value"), val) == 0);
	KT_CHECK(json_is_false(json_object_get(j, "Overwrite")));
	KT_EQ_STR(jstr(j, "Type"), "SecureString");
	KT_EQ_STR(jstr(j, "KeyId"), "alias/mine");
	KT_CHECK(json_object_get(j, "Tier") == NULL);
	json_decref(j);

	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)"v2",
				 2, &over, &ver, NULL, &err),
		  0);
	KT_EQ_INT(ver, 8);
	j = req_json(1);
	KT_CHECK(json_is_true(json_object_get(j, "Overwrite")));
	KT_CHECK(!req_has(1, "Type") && !req_has(1, "KeyId"));
	KT_EQ_STR(jstr(j, "Tier"), "Advanced");
	json_decref(j);
	KT_EQ_INT(fk.nreq, 2);
	teardown(ssm);
}

KT_TEST(aws_ssm_put_limits_checked_before_any_request)
{
	static const struct fake_resp r[] = { { 200, "{\"Version\":1}" } };
	struct kf_aws_ssm *ssm = setup(1, r);
	struct kf_aws_ssm_put opt = { 0, "String", NULL, NULL, 0 };
	struct kf_err err = KF_ERR_INIT;
	unsigned char *big = malloc(KF_AWS_SSM_ADVANCED_MAX + 1);

	KT_CHECK(big != NULL);
	memset(big, 'a', KF_AWS_SSM_ADVANCED_MAX + 1);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", big, 0, &opt, NULL, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", big, KF_AWS_SSM_ADVANCED_MAX + 1,
				 &opt, NULL, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"a\0b", 3,
				 &opt, NULL, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"\xff\xfe",
				 2, &opt, NULL, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(fk.nreq, 0);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", big, KF_AWS_SSM_ADVANCED_MAX, &opt,
				 NULL, NULL, &err),
		  0);
	KT_EQ_INT(fk.nreq, 1);
	free(big);
	teardown(ssm);
}

/* ---- a stateful fake: one parameter ------------------------------------ */

enum fault {
	F_NONE = 0,
	F_LAND_500,   /* do it, then answer 500 */
	F_LAND_RESET, /* do it, then drop the connection */
	F_500,	      /* answer 500 without doing it */
	F_EXPIRED,    /* answer ExpiredTokenException */
	F_DENIED,     /* answer AccessDeniedException */
	F_SET_OTHER,  /* another writer puts "other" (then answers) */
};

struct store {
	int exists;
	char name[64];
	char value[256];
	int64_t version;
	/* faults of the k-th call of each operation */
	enum fault put_f[8], get_f[8], del_f[8], desc_f[8];
	int puts, gets, dels, descs;
};

static struct store st;

static void store_put(const char *value)
{
	st.exists = 1;
	snprintf(st.value, sizeof(st.value), "%s", value);
	st.version++;
}

/* What a fault of kind f answers; 0 and F_NONE: none. */
static long fault_answer(enum fault f, struct kf_buf *out)
{
	switch (f) {
	case F_LAND_500:
	case F_500:
		kf_buf_adds(out, "{\"__type\":\"InternalServerError\"}");
		return 500;
	case F_LAND_RESET:
		return 0;
	case F_EXPIRED:
		kf_buf_adds(out, "{\"__type\":\"ExpiredTokenException\"}");
		return 400;
	case F_DENIED:
		kf_buf_adds(out, "{\"__type\":\"AccessDeniedException\"}");
		return 400;
	default:
		return -2;
	}
}

static long not_found(struct kf_buf *out)
{
	kf_buf_adds(out, "{\"__type\":\"ParameterNotFound\",\"message\":"
			 "\"Parameter not found.\"}");
	return 400;
}

static long on_put(const json_t *req, struct kf_buf *out)
{
	enum fault f = st.puts < 8 ? st.put_f[st.puts] : F_NONE;
	long s;

	st.puts++;
	if (f == F_500 || f == F_EXPIRED || f == F_DENIED)
		return fault_answer(f, out);
	if (st.exists && !json_is_true(json_object_get(req, "Overwrite"))) {
		kf_buf_adds(out, "{\"__type\":\"ParameterAlreadyExists\"}");
		return 400;
	}
	store_put(jstr(req, "Value"));
	s = fault_answer(f, out);
	if (s != -2)
		return s;
	kf_buf_addf(out, "{\"Version\":%lld,\"Tier\":\"Standard\"}",
		    (long long)st.version);
	return 200;
}

static long on_get(struct kf_buf *out)
{
	enum fault f = st.gets < 8 ? st.get_f[st.gets] : F_NONE;
	json_t *p;
	char *s;

	st.gets++;
	if (f == F_SET_OTHER)
		store_put("other");
	else if (f != F_NONE)
		return fault_answer(f, out);
	if (!st.exists)
		return not_found(out);
	p = json_pack("{s:{s:s,s:s,s:s,s:I}}", "Parameter", "Name", st.name,
		      "Type", "SecureString", "Value", st.value, "Version",
		      (json_int_t)st.version);
	s = json_dumps(p, JSON_COMPACT);
	kf_buf_adds(out, s);
	kf_json_free(s);
	json_decref(p);
	return 200;
}

static long on_delete(struct kf_buf *out)
{
	enum fault f = st.dels < 8 ? st.del_f[st.dels] : F_NONE;
	long s;

	st.dels++;
	if (f == F_500 || f == F_DENIED)
		return fault_answer(f, out);
	if (!st.exists)
		return not_found(out);
	st.exists = 0;
	s = fault_answer(f, out);
	if (s != -2)
		return s;
	kf_buf_adds(out, "{}");
	return 200;
}

static long on_describe(struct kf_buf *out)
{
	enum fault f = st.descs < 8 ? st.desc_f[st.descs] : F_NONE;

	st.descs++;
	if (f != F_NONE)
		return fault_answer(f, out);
	if (!st.exists)
		return kf_buf_adds(out, "{\"Parameters\":[]}") ? 500 : 200;
	kf_buf_addf(out,
		    "{\"Parameters\":[{\"Name\":\"%s\",\"Version\":%lld,"
		    "\"Type\":\"SecureString\"}]}",
		    st.name, (long long)st.version);
	return 200;
}

static long store_handler(void *ctx, const char *target, const char *body,
			  size_t len, struct kf_buf *out)
{
	json_t *req = json_loadb(body, len, 0, NULL);
	long s = 500;

	if (!strcmp(target, "AmazonSSM.PutParameter"))
		s = on_put(req, out);
	else if (!strcmp(target, "AmazonSSM.GetParameter"))
		s = on_get(out);
	else if (!strcmp(target, "AmazonSSM.DeleteParameter"))
		s = on_delete(out);
	else if (!strcmp(target, "AmazonSSM.DescribeParameters"))
		s = on_describe(out);
	json_decref(req);
	return s;
}

/* A client on the stateful fake, which holds name at version (0: none)
 * with value "old". */
static struct kf_aws_ssm *setup_store(const char *name, int64_t version,
				      unsigned attempts)
{
	static const struct fake_resp none[] = { { 500, NULL } };
	struct kf_aws_ssm *ssm = setup_n(1, none, attempts);

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	snprintf(st.value, sizeof(st.value), "old");
	st.exists = version > 0;
	st.version = version;
	fk.handler = store_handler;
	return ssm;
}

/*
 * The first PutParameter lands but its answer is a 500: the check before
 * the retry reads the parameter, finds the new version with the value
 * being written, and the call succeeds without a second PutParameter.
 */
KT_TEST(aws_ssm_put_landed_is_not_sent_again)
{
	struct kf_aws_ssm *ssm = setup_store("/app/key", 3, 0);
	struct kf_aws_ssm_put opt = { 1, NULL, NULL, NULL, 3 };
	struct kf_err err = KF_ERR_INIT;
	struct capture cap;
	char log[8192];
	int64_t ver = 0;
	int landed = 0;

	st.put_f[0] = F_LAND_500;
	capture_start(&cap);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)CANARY,
				 strlen(CANARY), &opt, &ver, &landed, &err),
		  0);
	capture_stop(&cap, log, sizeof(log));
	KT_EQ_INT(st.puts, 1);
	KT_EQ_INT(st.gets, 1);
	KT_EQ_INT(st.version, 4);
	KT_EQ_INT(ver, 4);
	KT_EQ_INT(landed, 1);
	KT_CHECK(target_is(0, "PutParameter") && target_is(1, "GetParameter"));
	{
		json_t *j = req_json(1);

		KT_CHECK(json_is_true(json_object_get(j, "WithDecryption")));
		json_decref(j);
	}
	/* one info line says so, naming the parameter, never the value */
	KT_CHECK(strstr(log, "PutParameter /app/key: an earlier attempt "
			     "landed (version 4)") != NULL);
	KT_CHECK(strstr(log, "CANARY") == NULL);

	/* the same with the connection dropped after the write */
	teardown(ssm);
	ssm = setup_store("/app/new", 0, 0);
	opt.overwrite = 0;
	opt.type = "SecureString";
	opt.prev_version = 0;
	st.put_f[0] = F_LAND_RESET;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/new", (const unsigned char *)CANARY,
				 strlen(CANARY), &opt, &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 1);
	KT_EQ_INT(ver, 1);
	KT_EQ_INT(landed, 1);
	teardown(ssm);
}

/* The check finds what the write did not make: the write is sent again. */
KT_TEST(aws_ssm_put_not_landed_is_sent_again)
{
	struct kf_aws_ssm *ssm = setup_store("/app/key", 3, 0);
	struct kf_aws_ssm_put opt = { 1, NULL, NULL, NULL, 3 };
	struct kf_err err = KF_ERR_INIT;
	int64_t ver = 0;
	int landed = 0;

	/* nothing landed: version and value as before */
	st.put_f[0] = F_500;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)"new",
				 3, &opt, &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(st.gets, 1);
	KT_EQ_INT(ver, 4);
	KT_EQ_INT(landed, 0);
	KT_EQ_STR(st.value, "new");
	teardown(ssm);

	/* a newer version, but another writer's value */
	ssm = setup_store("/app/key", 3, 0);
	st.put_f[0] = F_500;
	st.get_f[0] = F_SET_OTHER;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)"new",
				 3, &opt, &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(ver, 5);
	KT_EQ_INT(landed, 0);
	KT_EQ_STR(st.value, "new");
	teardown(ssm);

	/* the same value as before the write: the version decides */
	ssm = setup_store("/app/key", 3, 0);
	st.put_f[0] = F_500;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/app/key", (const unsigned char *)"old",
				 3, &opt, &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(ver, 4);
	KT_EQ_INT(landed, 0);
	teardown(ssm);
}

/*
 * Every attempt fails, the last one after landing: a last check finds it.
 * A check that cannot tell fails the write with its error, without
 * another PutParameter.  Refreshed credentials retry without a check.
 */
KT_TEST(aws_ssm_put_last_attempt_check_and_failures)
{
	struct kf_aws_ssm *ssm = setup_store("/k", 1, 2);
	struct kf_aws_ssm_put opt = { 1, NULL, NULL, NULL, 1 };
	struct kf_err err = KF_ERR_INIT;
	int64_t ver = 0;
	int landed = 0;

	st.put_f[0] = F_500;
	st.put_f[1] = F_LAND_500;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"v", 1, &opt,
				 &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(st.gets, 2);
	KT_EQ_INT(ver, 2);
	KT_EQ_INT(landed, 1);
	teardown(ssm);

	/* nothing landed: the call's own error, after the last check */
	ssm = setup_store("/k", 1, 2);
	st.put_f[0] = F_500;
	st.put_f[1] = F_500;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"v", 1, &opt,
				 &ver, &landed, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_STR(err.provider_code, "InternalServerError");
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(st.gets, 2);
	KT_EQ_INT(ver, 0);
	teardown(ssm);

	ssm = setup_store("/k", 1, 0);
	st.put_f[0] = F_500;
	st.get_f[0] = F_DENIED;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"v", 1, &opt,
				 &ver, &landed, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_INT(st.puts, 1);
	teardown(ssm);

	ssm = setup_store("/k", 1, 0);
	st.put_f[0] = F_EXPIRED;
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)"v", 1, &opt,
				 &ver, &landed, &err),
		  0);
	KT_EQ_INT(st.puts, 2);
	KT_EQ_INT(st.gets, 0);
	KT_EQ_INT(landed, 0);
	teardown(ssm);
}

KT_TEST(aws_ssm_delete_retries_after_a_lost_answer)
{
	static const struct fake_resp r[] = {
		{ 500, "{\"__type\":\"InternalServerError\"}" },
		{ 200, "{\"Parameters\":[{\"Name\":\"/k\",\"Version\":1}]}" },
		{ 400, "{\"__type\":\"ParameterNotFound\"}" },
	};
	struct kf_aws_ssm *ssm = setup_store("/k", 2, 0);
	struct kf_err err = KF_ERR_INIT;
	json_t *j;

	/* deleted, answer lost: the check finds nothing, no second call */
	st.del_f[0] = F_LAND_500;
	KT_EQ_INT(kf_aws_ssm_delete(ssm, "/k", &err), 0);
	KT_EQ_INT(st.dels, 1);
	KT_EQ_INT(st.descs, 1);
	KT_CHECK(target_is(0, "DeleteParameter") &&
		 target_is(1, "DescribeParameters"));
	j = req_json(0);
	KT_EQ_STR(jstr(j, "Name"), "/k");
	json_decref(j);
	teardown(ssm);

	/* not deleted: the check finds it, the delete goes again */
	ssm = setup_store("/k", 2, 0);
	st.del_f[0] = F_500;
	KT_EQ_INT(kf_aws_ssm_delete(ssm, "/k", &err), 0);
	KT_EQ_INT(st.dels, 2);
	KT_EQ_INT(st.exists, 0);
	/* a first answer ParameterNotFound is NOTFOUND */
	KT_EQ_INT(kf_aws_ssm_delete(ssm, "/k", &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(st.dels, 3);
	teardown(ssm);

	/* gone between the check and the retry: done, as asked */
	ssm = setup(3, r);
	KT_EQ_INT(kf_aws_ssm_delete(ssm, "/k", &err), 0);
	KT_EQ_INT(fk.nreq, 3);
	teardown(ssm);
}

/* ---- errors --------------------------------------------------------------- */

KT_TEST(aws_ssm_error_types)
{
	static const struct {
		const char *type;
		enum kf_code code;
		enum kf_aws_sm_action act;
	} t[] = {
		{ "ParameterNotFound", KF_E_NOTFOUND, KF_AWS_SM_FAIL },
		{ "ParameterVersionNotFound", KF_E_NOTFOUND, KF_AWS_SM_FAIL },
		{ "ParameterAlreadyExists", KF_E_EXISTS, KF_AWS_SM_FAIL },
		{ "ValidationException", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "HierarchyLevelLimitExceededException", KF_E_INVALID,
		  KF_AWS_SM_FAIL },
		{ "HierarchyTypeMismatchException", KF_E_INVALID,
		  KF_AWS_SM_FAIL },
		{ "UnsupportedParameterType", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "InvalidKeyId", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "ParameterPatternMismatchException", KF_E_INVALID,
		  KF_AWS_SM_FAIL },
		{ "ParameterVersionLabelLimitExceeded", KF_E_INVALID,
		  KF_AWS_SM_FAIL },
		{ "InvalidFilterKey", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "InvalidFilterOption", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "InvalidFilterValue", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "InvalidNextToken", KF_E_INVALID, KF_AWS_SM_FAIL },
		{ "ParameterLimitExceeded", KF_E_NOSPC, KF_AWS_SM_FAIL },
		{ "ParameterMaxVersionLimitExceeded", KF_E_STATE,
		  KF_AWS_SM_FAIL },
		{ "TooManyUpdates", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY },
		{ "InternalServerError", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY },
		{ "ThrottlingException", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY },
		{ "AccessDeniedException", KF_E_DENIED, KF_AWS_SM_FAIL },
	};
	char body[512];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kf_err err = KF_ERR_INIT;
		enum kf_aws_sm_action a;

		/* the message echoes input: it is never quoted */
		snprintf(body, sizeof(body),
			 "{\"__type\":\"com.amazonaws.ssm#%s\",\"message\":"
			 "\"Parameter /x with value " CANARY " failed\"}",
			 t[i].type);
		a = kf_aws_sm_classify("PutParameter", 400, body, strlen(body),
				       &err);
		if (err.code != t[i].code || a != t[i].act)
			kt_fail(__FILE__, __LINE__, "%s: %s, action %d",
				t[i].type, kf_code_name(err.code), (int)a);
		KT_EQ_STR(err.provider_code, t[i].type);
		KT_CHECK(strstr(err.msg, "CANARY") == NULL);
	}
}

/* Through the client: a rate is retried (refused: no check needed), a
 * 5xx after a check, a quota is not retried, nor a name that exists. */
KT_TEST(aws_ssm_errors_through_the_client)
{
	static const struct fake_resp r[] = {
		{ 400, "{\"__type\":\"TooManyUpdates\"}" },
		{ 500, "{\"__type\":\"InternalServerError\"}" },
		{ 400, "{\"__type\":\"ParameterNotFound\"}" },
		{ 200, "{\"Version\":1}" },
		{ 400, "{\"__type\":\"ParameterLimitExceeded\"}" },
		{ 400, "{\"__type\":\"ParameterAlreadyExists\",\"message\":"
		       "\"The parameter already exists.\"}" },
	};
	struct kf_aws_ssm *ssm = setup(6, r);
	struct kf_aws_ssm_put opt = { 0, "String", NULL, NULL, 0 };
	struct kf_err err = KF_ERR_INIT;
	int64_t ver = 0;

	KT_EQ_INT(kf_aws_ssm_put(ssm, "/n", (const unsigned char *)"v", 1, &opt,
				 &ver, NULL, &err),
		  0);
	KT_EQ_INT(fk.nreq, 4);
	KT_CHECK(target_is(0, "PutParameter") && target_is(1, "PutParameter"));
	KT_CHECK(target_is(2, "GetParameter") && target_is(3, "PutParameter"));
	KT_EQ_INT(ver, 1);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/n2", (const unsigned char *)"v", 1,
				 &opt, &ver, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOSPC);
	KT_EQ_INT(fk.nreq, 5);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/n", (const unsigned char *)"v", 1, &opt,
				 &ver, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_EXISTS);
	KT_EQ_INT(fk.nreq, 6);
	teardown(ssm);
}

/*
 * A value never reaches an error message or a log line, whatever the
 * service echoes back and however the call fails.
 */
KT_TEST(aws_ssm_canary_never_in_errors_or_logs)
{
	static const struct fake_resp r[] = {
		{ 400, "{\"__type\":\"ValidationException\",\"message\":"
		       "\"Value " CANARY " is invalid\"}" },
		{ 400,
		  "{\"__type\":\"SomethingNew\",\"message\":\"" CANARY "\"}" },
		{ 200, "not json " CANARY },
		{ 500, "{\"message\":\"" CANARY "\"}" },
	};
	struct kf_aws_ssm *ssm = setup(4, r);
	struct kf_aws_ssm_put opt = { 1, NULL, NULL, NULL, 1 };
	struct kf_secret *v = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct capture cap;
	char log[16384];
	int in_err = 0;

	fk.resp[4] = (struct fake_resp){ 200, "{\"Parameter\":{\"Name\":\"/k\","
					      "\"Value\":\"" CANARY "\","
					      "\"Version\":1}}" };
	fk.resp[5] = (struct fake_resp){ 400,
					 "{\"__type\":\"ParameterNotFound\","
					 "\"message\":\"" CANARY "\"}" };
	fk.nresp = 6;
	capture_start(&cap);
	for (int i = 0; i < 3; i++) {
		kf_err_clear(&err);
		KT_EQ_INT(kf_aws_ssm_put(ssm, "/k",
					 (const unsigned char *)CANARY,
					 strlen(CANARY), &opt, NULL, NULL,
					 &err),
			  -1);
		in_err |= strstr(err.msg, "CANARY") != NULL;
	}
	/* 500 with the value echoed, then a check that reads it: a
	 * different version (1, not above 1), so put again: not found */
	kf_err_clear(&err);
	KT_EQ_INT(kf_aws_ssm_put(ssm, "/k", (const unsigned char *)CANARY,
				 strlen(CANARY), &opt, NULL, NULL, &err),
		  -1);
	in_err |= strstr(err.msg, "CANARY") != NULL;
	KT_EQ_INT(kf_aws_ssm_get(ssm, "/k", NULL, &v, NULL, &err), -1);
	in_err |= strstr(err.msg, "CANARY") != NULL;
	capture_stop(&cap, log, sizeof(log));
	KT_CHECK(!in_err);
	KT_CHECK(strstr(log, "CANARY") == NULL);
	KT_EQ_INT(fk.nreq, 7);
	teardown(ssm);
}

/* ---- names and endpoints ---------------------------------------------- */

/* "/l1/l2/.../ln" into out. */
static void levels(char *out, size_t outlen, int n)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(out + len, outlen - len, "/l%d", i);
}

KT_TEST(aws_ssm_name_rules)
{
	static const char *const ok[] = {
		"/a",		"/foo",	   "/prod/model/openai_key",
		"/A-Z_a.z-0.9", "/x/awsy", "/x/ssm",
		"/a..b",	"/.hidden"
	};
	static const char *const bad[] = {
		"",	"/",	     "foo",	"/a//b",  "/a/",
		"/aws", "/AWS",	     "/awsx/y", "/Ssm/y", "/sSM",
		"/a b", "/a\tb",     "/a:b",	"/a@b",	  "/a+b",
		"/a=b", "/\xc3\xa9", "/a/./b",	"/a/..",  "/a/../b",
	};
	char name[KF_AWS_SSM_NAME_MAX + 8];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!kf_aws_ssm_name_ok(ok[i]))
			kt_fail(__FILE__, __LINE__, "refused: %s", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kf_aws_ssm_name_ok(bad[i]))
			kt_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
	levels(name, sizeof(name), 15);
	KT_CHECK(kf_aws_ssm_name_ok(name));
	levels(name, sizeof(name), 16);
	KT_CHECK(!kf_aws_ssm_name_ok(name));
	/* 1011 bytes: the longest name */
	name[0] = '/';
	memset(name + 1, 'n', KF_AWS_SSM_NAME_MAX - 1);
	name[KF_AWS_SSM_NAME_MAX] = '\0';
	KT_EQ_INT(strlen(name), 1011);
	KT_CHECK(kf_aws_ssm_name_ok(name));
	name[KF_AWS_SSM_NAME_MAX] = 'n';
	name[KF_AWS_SSM_NAME_MAX + 1] = '\0';
	KT_CHECK(!kf_aws_ssm_name_ok(name));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	KT_CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

KT_TEST(aws_ssm_endpoint_order)
{
	struct kf_err err = KF_ERR_INIT;
	char url[256], cfgpath[512];

	snprintf(cfgpath, sizeof(cfgpath), "%s/config", kt_tmpdir());
	write_file(cfgpath, "[profile p]\nservices = s\n"
			    "endpoint_url = http://127.0.0.1:1111\n"
			    "[services s]\nssm =\n"
			    "  endpoint_url = http://127.0.0.1:2222/\n"
			    "[profile q]\n"
			    "endpoint_url = http://127.0.0.1:3333\n");
	setenv("AWS_CONFIG_FILE", cfgpath, 1);
	unsetenv("AWS_ENDPOINT_URL_SSM");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	unsetenv("AWS_PROFILE");

	KT_EQ_INT(kf_aws_ssm_endpoint(NULL, "none", "us-west-2", url,
				      sizeof(url), &err),
		  0);
	KT_EQ_STR(url, "https://ssm.us-west-2.amazonaws.com");
	KT_EQ_INT(kf_aws_ssm_endpoint("", "none", "cn-north-1", url,
				      sizeof(url), &err),
		  0);
	KT_EQ_STR(url, "https://ssm.cn-north-1.amazonaws.com.cn");
	KT_EQ_INT(kf_aws_ssm_endpoint(NULL, "p", "us-west-2", url, sizeof(url),
				      &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:2222");
	KT_EQ_INT(kf_aws_ssm_endpoint(NULL, "q", "us-west-2", url, sizeof(url),
				      &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:3333");
	/* Secrets Manager does not take the ssm service's endpoint */
	KT_EQ_INT(kf_aws_endpoint(NULL, "p", "us-west-2", url, sizeof(url),
				  &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:1111");
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4444", 1);
	KT_EQ_INT(kf_aws_ssm_endpoint(NULL, "p", "us-west-2", url, sizeof(url),
				      &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:4444");
	setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5555//", 1);
	KT_EQ_INT(kf_aws_ssm_endpoint(NULL, "p", "us-west-2", url, sizeof(url),
				      &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:5555");
	KT_EQ_INT(kf_aws_ssm_endpoint("http://127.0.0.1:6666/", "p",
				      "us-west-2", url, sizeof(url), &err),
		  0);
	KT_EQ_STR(url, "http://127.0.0.1:6666");
	KT_EQ_INT(kf_aws_ssm_endpoint("ftp://x", "p", "us-west-2", url,
				      sizeof(url), &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "ssm_endpoint") != NULL);
	unsetenv("AWS_ENDPOINT_URL_SSM");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_CONFIG_FILE");
}

KT_TEST(aws_ssm_client_refuses_bad_endpoints)
{
	struct kf_aws_ssm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_ssm *ssm = NULL;
	struct kf_aws_chain *c = fake_env_chain(NULL);

	memset(&cfg, 0, sizeof(cfg));
	cfg.region = "us-east-1";
	cfg.chain = c;
	cfg.endpoint = "http://example.com:8080"; /* plain http, remote */
	KT_EQ_INT(kf_aws_ssm_new(&cfg, &ssm, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(ssm == NULL);
	cfg.endpoint = NULL;
	KT_EQ_INT(kf_aws_ssm_new(&cfg, &ssm, &err), -1);
	KT_CHECK(strstr(err.msg, "ssm:") == err.msg);
	kf_aws_chain_free(c);
	fake_env_clear();
}
