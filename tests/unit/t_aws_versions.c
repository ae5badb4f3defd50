/*
 * Unit tests for versions in aws/ (cloud/aws/versions.c and the
 * GetSecretValue / ListSecretVersionIds calls under it), through the HTTP
 * transport seam: request bodies (VersionStage or VersionId, the fallback
 * from an id-shaped label, IncludeDeprecated, NextToken over pages),
 * parsing (CreatedDate with a fraction, versions without labels), the
 * DescribeSecret stamp, and the VersionId every read carries.  No
 * network.
 */
#include "kt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "aws/sm.h"
#include "aws/tree.h"
#include "core/http.h"
#include "core/json.h"
#include "core/secret.h"

#define VMAXREQ 24

struct vresp {
	long status;
	const char *body;
};

static struct {
	const struct vresp *resp;
	size_t nresp;
	size_t nreq;
	char target[VMAXREQ][96];
	char body[VMAXREQ][2048];
} vf;

static int vfake(const struct kf_http_req *req, struct kf_http_resp *resp,
		 struct kf_err *err)
{
	size_t i = vf.nreq++;
	const struct vresp *r;

	if (i < VMAXREQ) {
		size_t n = req->body_len < sizeof(vf.body[i]) - 1 ?
				   req->body_len :
				   sizeof(vf.body[i]) - 1;
		const char *t = NULL;

		for (size_t h = 0; req->headers && req->headers[h]; h++)
			if (!strncmp(req->headers[h], "X-Amz-Target: ", 14))
				t = req->headers[h] + 14;
		snprintf(vf.target[i], sizeof(vf.target[i]), "%s", t ? t : "");
		memcpy(vf.body[i], req->body, n);
		vf.body[i][n] = '\0';
	}
	if (i >= vf.nresp)
		return kf_fail(err, KF_E_UNAVAILABLE, "no more answers");
	r = &vf.resp[i];
	resp->status = r->status;
	if (r->body && kf_buf_adds(&resp->body, r->body))
		return kf_fail(err, KF_E_TOOBIG, "too big");
	return 0;
}

static struct kf_aws_chain *vchain;

static void venv(const struct vresp *r, size_t n)
{
	kf_json_init();
	memset(&vf, 0, sizeof(vf));
	vf.resp = r;
	vf.nresp = n;
	setenv("HOME", kt_tmpdir(), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	kf_http_set_transport(vfake);
}

/* A Secrets Manager client on the fake endpoint. */
static struct kf_aws_sm *vclient(const struct vresp *r, size_t n)
{
	struct kf_aws_chain_cfg ccfg = { NULL, 1000 };
	struct kf_aws_sm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm *sm = NULL;

	venv(r, n);
	KT_EQ_INT(kf_aws_chain_new(&ccfg, &vchain, &err), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:4566";
	cfg.region = "us-west-2";
	cfg.chain = vchain;
	cfg.timeout_ms = 5000;
	cfg.attempts = 1;
	cfg.backoff_base_ms = 1;
	KT_EQ_INT(kf_aws_sm_new(&cfg, &sm, &err), 0);
	return sm;
}

/* The aws/ provider on the fake endpoint (its probe is answer 0). */
static struct kf_provider *vprovider(const struct vresp *r, size_t n)
{
	static struct kf_kv kv[] = {
		{ (char *)"aws_region", (char *)"us-west-2" },
		{ (char *)"aws_endpoint", (char *)"http://127.0.0.1:4566" },
	};
	struct kf_config cfg = { "/nonexistent", 5, 60, 0, kv, 2, NULL, 0 };
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p = NULL;

	venv(r, n);
	KT_EQ_INT(kf_aws_desc.create(&cfg, &p, &err), 0);
	return p;
}

static void vdone(struct kf_aws_sm *sm, struct kf_provider *p)
{
	kf_aws_sm_free(sm);
	if (p)
		p->ops->free(p);
	kf_aws_chain_free(vchain);
	vchain = NULL;
	kf_http_set_transport(NULL);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* Request i was operation op with exactly this body. */
static int vreq(size_t i, const char *op, const char *body)
{
	char t[96];

	snprintf(t, sizeof(t), "secretsmanager.%s", op);
	return i < vf.nreq && !strcmp(vf.target[i], t) &&
	       !strcmp(vf.body[i], body);
}

static int vvalue(const struct kf_secret *s, const char *want)
{
	return s && s->len == strlen(want) && !memcmp(s->data, want, s->len);
}

#define ID_A "a1b2c3d4-0000-4000-8000-00000000000a"
#define ID_B "a1b2c3d4-0000-4000-8000-00000000000b"
#define ID_C "a1b2c3d4-0000-4000-8000-00000000000c"
#define NOT_FOUND_ID                                                       \
	"{\"__type\":\"ResourceNotFoundException\",\"message\":\"Secrets " \
	"Manager can't find the specified secret value for VersionId\"}"
#define NOT_FOUND_SECRET                                                   \
	"{\"__type\":\"ResourceNotFoundException\",\"message\":\"Secrets " \
	"Manager can't find the specified secret.\"}"

KT_TEST(aws_versions_get_by_stage_or_id)
{
	static const struct vresp r[] = {
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_A "\","
		       "\"SecretString\":\"old\"}" },
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_B "\","
		       "\"SecretString\":\"new\"}" },
		{ 400, NOT_FOUND_ID },
	};
	struct kf_aws_sm *sm = vclient(r, 3);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;

	KT_EQ_INT(kf_aws_sm_get_version(sm, "db", "AWSPREVIOUS", NULL, &v,
					&err),
		  0);
	KT_CHECK(
		vreq(0, "GetSecretValue",
		     "{\"SecretId\":\"db\",\"VersionStage\":\"AWSPREVIOUS\"}"));
	KT_CHECK(vvalue(v, "old"));
	KT_EQ_STR(v->version, ID_A);
	kf_secret_free(v);
	KT_EQ_INT(kf_aws_sm_get_version(sm, "db", NULL, ID_B, &v, &err), 0);
	KT_CHECK(vreq(1, "GetSecretValue",
		      "{\"SecretId\":\"db\",\"VersionId\":\"" ID_B "\"}"));
	KT_CHECK(vvalue(v, "new"));
	KT_EQ_STR(v->version, ID_B);
	kf_secret_free(v);
	/* a version without a value is not read as an empty value */
	KT_EQ_INT(kf_aws_sm_get_version(sm, "db", NULL, ID_C, &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(!kf_err_is(&err, KF_R_NO_VALUE));
	KT_CHECK(v == NULL);
	/* exactly one of stage and id, checked before any request */
	KT_EQ_INT(kf_aws_sm_get_version(sm, "db", "L", ID_C, &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_aws_sm_get_version(sm, "db", NULL, NULL, &v, &err), -1);
	KT_EQ_INT(vf.nreq, 3);
	vdone(sm, NULL);
}

KT_TEST(aws_versions_list_body_and_parse)
{
	static const struct vresp r[] = {
		{ 200,
		  "{\"ARN\":\"arn:x\",\"Name\":\"db\",\"NextToken\":\"T2\","
		  "\"Versions\":[{\"VersionId\":\"" ID_A "\","
		  "\"VersionStages\":[\"AWSPREVIOUS\",\"mine\"],"
		  "\"CreatedDate\":1523477145.713},"
		  "{\"VersionId\":\"" ID_B "\",\"VersionStages\":[],"
		  "\"CreatedDate\":\"1523477100.5\"},"
		  "{\"VersionStages\":[\"AWSCURRENT\"]},"
		  "{\"VersionId\":\"" ID_C "\",\"VersionStages\":"
		  "[\"AWSCURRENT\",\"bad label\",7,\"a,b\"],"
		  "\"CreatedDate\":1523477200}]}" },
	};
	struct kf_aws_sm *sm = vclient(r, 1);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm_versions pg;

	KT_EQ_INT(kf_aws_sm_list_versions(sm, "db", "T1", 50, &pg, &err), 0);
	KT_CHECK(vreq(0, "ListSecretVersionIds",
		      "{\"SecretId\":\"db\",\"IncludeDeprecated\":true,"
		      "\"MaxResults\":50,\"NextToken\":\"T1\"}"));
	KT_EQ_INT(pg.n, 3);
	KT_EQ_STR(pg.v[0].id, ID_A);
	KT_EQ_STR(pg.v[0].stages, "AWSPREVIOUS,mine");
	KT_EQ_INT(pg.v[0].created_ms, 1523477145713LL);
	KT_EQ_STR(pg.v[1].id, ID_B);
	KT_EQ_STR(pg.v[1].stages, "");
	KT_EQ_INT(pg.v[1].created_ms, 1523477100500LL);
	KT_EQ_STR(pg.v[2].id, ID_C);
	KT_EQ_STR(pg.v[2].stages, "AWSCURRENT");
	KT_EQ_INT(pg.v[2].created_ms, 1523477200000LL);
	KT_EQ_STR(pg.next_token, "T2");
	kf_aws_sm_versions_release(&pg);
	vdone(sm, NULL);
}

KT_TEST(aws_versions_parse_date_ms)
{
	static const struct {
		const char *json;
		long long ms;
	} t[] = {
		{ "{\"d\":1523477145.713}", 1523477145713LL },
		{ "{\"d\":1523477145.0004}", 1523477145000LL },
		{ "{\"d\":1523477145.9996}", 1523477146000LL },
		{ "{\"d\":1523477145}", 1523477145000LL },
		{ "{\"d\":\"1523477145.25\"}", 1523477145250LL },
		{ "{\"d\":null}", 0 },
		{ "{\"d\":\"x\"}", 0 },
		{ "{\"d\":7.7e131}", 0 },
		{ "{\"d\":9000000000000000000}", 0 },
		{ "{}", 0 },
	};

	kf_json_init();
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_t *j = json_loads(t[i].json, 0, NULL);

		KT_CHECK(j != NULL);
		if (kf_aws_sm_parse_date_ms(j, "d") != t[i].ms)
			kt_fail(__FILE__, __LINE__, "date %s", t[i].json);
		json_decref(j);
	}
	KT_EQ_INT(kf_aws_sm_parse_date_ms(NULL, "d"), 0);
}

/* ---- through the provider ---------------------------------------------- */

#define DESC_DB                                                  \
	"{\"Name\":\"db\",\"VersionIdsToStages\":{\"" ID_B "\":" \
	"[\"AWSCURRENT\"],\"" ID_A "\":[\"AWSPREVIOUS\"]}}"
#define NO_LIST "{\"SecretList\":[]}"

KT_TEST(aws_versions_read_version_plain)
{
	static const struct vresp r[] = {
		{ 200, NO_LIST }, /* probe */
		{ 200, DESC_DB }, /* resolve: DescribeSecret */
		{ 200, NO_LIST }, /* resolve: nothing below db/ */
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_A "\","
		       "\"SecretString\":\"old\"}" },
		/* an id-shaped label: no such VersionId, then a label */
		{ 400, NOT_FOUND_ID },
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_C "\","
		       "\"SecretString\":\"lbl\"}" },
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_B "\","
		       "\"SecretString\":\"new\"}" },
		{ 400, NOT_FOUND_SECRET }, /* no such label */
		{ 400, NOT_FOUND_ID },	   /* no such id ... */
		{ 400, NOT_FOUND_SECRET }, /* ... nor label */
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_B "\","
		       "\"SecretString\":\"new\"}" }, /* current */
	};
	struct kf_provider *p = vprovider(r, 11);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	const char *lbl = "release-2024-candidate-0123456789";
	int imm = -1;

	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", "AWSPREVIOUS", &v,
				       &imm, &err),
		  0);
	KT_CHECK(
		vreq(3, "GetSecretValue",
		     "{\"SecretId\":\"db\",\"VersionStage\":\"AWSPREVIOUS\"}"));
	KT_CHECK(vvalue(v, "old"));
	KT_EQ_STR(v->version, ID_A);
	KT_EQ_INT(imm, 0);
	kf_secret_free(v);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", lbl, &v, &imm, &err),
		  0);
	KT_CHECK(vreq(4, "GetSecretValue",
		      "{\"SecretId\":\"db\",\"VersionId\":\"release-2024-"
		      "candidate-0123456789\"}"));
	KT_CHECK(vreq(5, "GetSecretValue",
		      "{\"SecretId\":\"db\",\"VersionStage\":\"release-2024-"
		      "candidate-0123456789\"}"));
	KT_CHECK(vvalue(v, "lbl"));
	KT_EQ_INT(imm, 0);
	kf_secret_free(v);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", ID_B, &v, &imm, &err),
		  0);
	KT_CHECK(vreq(6, "GetSecretValue",
		      "{\"SecretId\":\"db\",\"VersionId\":\"" ID_B "\"}"));
	KT_CHECK(vvalue(v, "new"));
	KT_EQ_INT(imm, 1);
	kf_secret_free(v);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", "nope", &v, &imm,
				       &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(v == NULL);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", ID_C, &v, &imm, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(imm, 0);
	/* a name no store could hold costs no request */
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", "a\nb", &v, &imm,
				       &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(vf.nreq, 10);
	/* NULL: the current value, as a read gives it */
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/db", NULL, &v, &imm, &err),
		  0);
	KT_CHECK(vreq(10, "GetSecretValue", "{\"SecretId\":\"db\"}"));
	KT_EQ_STR(v->version, ID_B);
	KT_EQ_INT(imm, 0);
	kf_secret_free(v);
	/* the region directory holds no value */
	KT_EQ_INT(p->ops->read_version(p, "us-west-2", NULL, &v, &imm, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_ISDIR);
	KT_EQ_INT(vf.nreq, 11);
	vdone(NULL, p);
}

#define DESC_CFG                                                           \
	"{\"Name\":\"cfg\",\"Tags\":[{\"Key\":\"keyfs:layout\",\"Value\":" \
	"\"fields\"}],\"VersionIdsToStages\":{\"" ID_B "\":[\"AWSCURRENT\"]}}"

KT_TEST(aws_versions_field_secret)
{
	static const struct vresp r[] = {
		{ 200, NO_LIST },  /* probe */
		{ 200, DESC_CFG }, /* resolve cfg: a field secret */
		{ 200, "{\"Name\":\"cfg\",\"VersionId\":\"" ID_A "\","
		       "\"SecretString\":\"{\\\"user\\\":\\\"u1\\\","
		       "\\\"n\\\":[1,2]}\"}" },
		{ 200, "{\"Name\":\"cfg\",\"VersionId\":\"" ID_A "\","
		       "\"SecretString\":\"{\\\"user\\\":\\\"u1\\\","
		       "\\\"n\\\":[1,2]}\"}" },
		{ 200, "{\"Name\":\"cfg\",\"VersionId\":\"" ID_A "\","
		       "\"SecretString\":\"{\\\"user\\\":\\\"u1\\\"}\"}" },
		{ 200, "{\"Name\":\"cfg\",\"VersionId\":\"" ID_C "\","
		       "\"SecretString\":\"not json\"}" },
		{ 200, "{\"Name\":\"cfg\",\"VersionId\":\"" ID_B "\","
		       "\"SecretString\":\"{\\\"user\\\":\\\"u2\\\"}\"}" },
		{ 200, DESC_CFG }, /* versions: DescribeSecret of cfg/user */
		{ 200, DESC_CFG }, /* ... then of cfg */
	};
	struct kf_provider *p = vprovider(r, 9);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct kf_buf st;
	int imm = -1;

	kf_buf_init(&st, 256);
	/* the directory at a version: the whole JSON object */
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/cfg", "AWSPREVIOUS", &v,
				       &imm, &err),
		  0);
	KT_CHECK(
		vreq(2, "GetSecretValue",
		     "{\"SecretId\":\"cfg\",\"VersionStage\":\"AWSPREVIOUS\"}"));
	KT_CHECK(vvalue(v, "{\"user\":\"u1\",\"n\":[1,2]}"));
	kf_secret_free(v);
	/* one field of that version: a string's bytes, else compact JSON */
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/cfg/n", "AWSPREVIOUS", &v,
				       &imm, &err),
		  0);
	KT_CHECK(vvalue(v, "[1,2]"));
	KT_EQ_STR(v->version, ID_A);
	kf_secret_free(v);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/cfg/n", ID_A, &v, &imm,
				       &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND); /* no field n there */
	KT_CHECK(v == NULL);
	KT_EQ_INT(imm, 0);
	KT_EQ_INT(p->ops->read_version(p, "us-west-2/cfg/user", "old", &v, &imm,
				       &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND); /* not a JSON object */
	/* a current field read carries its secret's VersionId */
	KT_EQ_INT(p->ops->read(p, "us-west-2/cfg/user", &v, &err), 0);
	KT_CHECK(vvalue(v, "u2"));
	KT_EQ_STR(v->version, ID_B);
	kf_secret_free(v);
	KT_EQ_INT(vf.nreq, 7);
	/* the field's stamp is its secret's, from one DescribeSecret when
	 * the index knows cfg is a field secret */
	KT_EQ_INT(p->ops->stamp(p, "us-west-2/cfg/user", &st, &err), 0);
	KT_EQ_STR(kf_buf_str(&st), ID_B);
	KT_EQ_INT(vf.nreq, 8);
	KT_CHECK(vreq(7, "DescribeSecret", "{\"SecretId\":\"cfg\"}"));
	kf_buf_release(&st);
	vdone(NULL, p);
}

struct vlist {
	char buf[1024];
	size_t n;
	size_t stop_after;
};

static int vcollect(void *ctx, const char *version, int64_t created,
		    const char *labels)
{
	struct vlist *l = ctx;
	size_t len = strlen(l->buf);

	snprintf(l->buf + len, sizeof(l->buf) - len, "%s %lld %s;",
		 version + 35, (long long)created, labels);
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

KT_TEST(aws_versions_all_pages)
{
	static const struct vresp r[] = {
		{ 200, NO_LIST }, /* probe */
		{ 200, DESC_DB }, /* resolve */
		{ 200, NO_LIST }, /* nothing below db/ */
		{ 200, "{\"Versions\":[{\"VersionId\":\"" ID_A "\","
		       "\"VersionStages\":[\"AWSPREVIOUS\"],\"CreatedDate\":"
		       "1.5}],\"NextToken\":\"P2\"}" },
		{ 200, "{\"Versions\":[{\"VersionId\":\"" ID_C "\","
		       "\"VersionStages\":[],\"CreatedDate\":0.25}],"
		       "\"NextToken\":\"P3\"}" },
		{ 200, "{\"Versions\":[{\"VersionId\":\"" ID_B "\","
		       "\"VersionStages\":[\"AWSCURRENT\",\"x\"],"
		       "\"CreatedDate\":3}],\"NextToken\":\"\"}" },
		/* stopped by fn: no further page asked */
		{ 200, "{\"Versions\":[{\"VersionId\":\"" ID_A "\"},"
		       "{\"VersionId\":\"" ID_B "\"}],\"NextToken\":\"P2\"}" },
		{ 400, NOT_FOUND_SECRET },
	};
	struct kf_provider *p = vprovider(r, 8);
	struct kf_err err = KF_ERR_INIT;
	struct vlist l;

	memset(&l, 0, sizeof(l));
	KT_EQ_INT(p->ops->versions(p, "us-west-2/db", vcollect, &l, &err), 0);
	KT_EQ_STR(l.buf, "a 1500 AWSPREVIOUS;c 250 ;b 3000 AWSCURRENT,x;");
	KT_CHECK(vreq(3, "ListSecretVersionIds",
		      "{\"SecretId\":\"db\",\"IncludeDeprecated\":true,"
		      "\"MaxResults\":100}"));
	KT_CHECK(vreq(4, "ListSecretVersionIds",
		      "{\"SecretId\":\"db\",\"IncludeDeprecated\":true,"
		      "\"MaxResults\":100,\"NextToken\":\"P2\"}"));
	KT_CHECK(vreq(5, "ListSecretVersionIds",
		      "{\"SecretId\":\"db\",\"IncludeDeprecated\":true,"
		      "\"MaxResults\":100,\"NextToken\":\"P3\"}"));
	KT_EQ_INT(vf.nreq, 6);
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	KT_EQ_INT(p->ops->versions(p, "us-west-2/db", vcollect, &l, &err), 0);
	KT_EQ_INT(l.n, 1);
	KT_EQ_INT(vf.nreq, 7);
	KT_EQ_INT(p->ops->versions(p, "us-west-2/db", vcollect, &l, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(p->ops->versions(p, "", vcollect, &l, &err), -1);
	KT_EQ_INT(err.code, KF_E_ISDIR);
	vdone(NULL, p);
}

KT_TEST(aws_versions_stamp_is_one_describe)
{
#define DESC_EMPTY "{\"Name\":\"empty\",\"VersionIdsToStages\":{}}"
	static const struct vresp r[] = {
		{ 200, NO_LIST }, /* probe */
		{ 200, DESC_DB }, /* read db: resolve */
		{ 200, NO_LIST },
		{ 200, "{\"Name\":\"db\",\"VersionId\":\"" ID_B "\","
		       "\"SecretString\":\"new\"}" },
		{ 200, DESC_EMPTY }, /* read empty: resolve */
		{ 200, NO_LIST },
		{ 400, "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		       "\"Secrets Manager can't find the specified secret "
		       "value for staging label: AWSCURRENT\"}" },
		{ 200, DESC_DB }, /* the stamps */
		{ 200, DESC_EMPTY },
		{ 200,
		  "{\"Name\":\"db\",\"DeletedDate\":1700000000,"
		  "\"VersionIdsToStages\":{\"" ID_B "\":[\"AWSCURRENT\"]}}" },
		{ 400, NOT_FOUND_SECRET },
	};
#undef DESC_EMPTY
	struct kf_provider *p = vprovider(r, 11);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	struct kf_buf st;

	kf_buf_init(&st, 256);
	/* a read sets the version the stamp gives: the VersionId, or "-"
	 * for a secret without a value */
	KT_EQ_INT(p->ops->read(p, "us-west-2/db", &v, &err), 0);
	KT_EQ_STR(v ? v->version : NULL, ID_B);
	kf_secret_free(v);
	KT_EQ_INT(p->ops->read(p, "us-west-2/empty", &v, &err), 0);
	KT_CHECK(v && v->len == 0);
	KT_EQ_STR(v ? v->version : NULL, "-");
	kf_secret_free(v);
	KT_EQ_INT(vf.nreq, 7);
	/* each stamp is one fresh DescribeSecret, though the index knows */
	KT_EQ_INT(p->ops->stamp(p, "us-west-2/db", &st, &err), 0);
	KT_EQ_STR(kf_buf_str(&st), ID_B);
	KT_CHECK(vreq(7, "DescribeSecret", "{\"SecretId\":\"db\"}"));
	kf_buf_reset(&st);
	KT_EQ_INT(p->ops->stamp(p, "us-west-2/empty", &st, &err), 0);
	KT_EQ_STR(kf_buf_str(&st), "-");
	kf_buf_reset(&st);
	/* a secret deleted since: gone at once */
	KT_EQ_INT(p->ops->stamp(p, "us-west-2/db", &st, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(p->ops->stamp(p, "us-west-2/gone", &st, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(vf.nreq, 11);
	KT_EQ_INT(st.len, 0);
	kf_buf_release(&st);
	vdone(NULL, p);
}

static void vbatch_fn(void *ctx, const char *name, struct kf_secret *value)
{
	struct kf_secret **got = ctx;

	got[name[0] == 'a' ? 0 : 1] = value;
}

KT_TEST(aws_versions_batch_read_sets_versions)
{
	static const struct vresp r[] = {
		{ 200,
		  "{\"SecretValues\":[{\"Name\":\"a\",\"VersionId\":\"" ID_A
		  "\",\"SecretString\":\"1\"},{\"Name\":\"b\","
		  "\"VersionId\":\"" ID_B "\",\"SecretString\":\"2\"}]}" },
	};
	static const char *const ids[] = { "a", "b" };
	struct kf_aws_sm *sm = vclient(r, 1);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *got[2] = { NULL, NULL };

	KT_EQ_INT(kf_aws_sm_batch_get(sm, ids, 2, vbatch_fn, got, &err), 0);
	KT_CHECK(got[0] && got[1]);
	if (got[0] && got[1]) {
		KT_EQ_STR(got[0]->version, ID_A);
		KT_EQ_STR(got[1]->version, ID_B);
	}
	kf_secret_free(got[0]);
	kf_secret_free(got[1]);
	vdone(sm, NULL);
}
