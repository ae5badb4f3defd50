/*
 * Unit tests for the Secrets Manager client (cloud/aws/sm*.c) and a little
 * of the aws/ provider, through the HTTP transport seam: request shape and
 * signing headers, idempotency token reuse across retries, error
 * classification by __type (moto's 404 and XML SignatureDoesNotMatch
 * included) and its reasons, retry policy, SecretString vs SecretBinary,
 * nulls and timestamps in responses.  No network.
 */
#include "kt.h"
#include "t_aws_fake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/tree.h"
#include "aws/creds.h"
#include "aws/sm.h"
#include "core/http.h"
#include "core/secret.h"
#include "core/json.h"
#include "core/stats.h"

static struct kf_aws_chain *chain;

/* A client on a fake endpoint with env credentials; responses queued. */
static struct kf_aws_sm *setup(const char *token, size_t n,
			       const struct fake_resp *resp)
{
	struct kf_aws_sm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm *sm = NULL;

	kf_json_init();
	fake_reset(n, resp);
	kf_aws_chain_free(chain);
	chain = fake_env_chain(token);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:4566";
	cfg.region = "us-west-2";
	cfg.chain = chain;
	cfg.timeout_ms = 5000;
	cfg.backoff_base_ms = 1;
	KT_EQ_INT(kf_aws_sm_new(&cfg, &sm, &err), 0);
	kf_http_set_transport(fake_transport);
	kf_aws_sm_set_clock(fake_clock);
	return sm;
}

static void teardown(struct kf_aws_sm *sm)
{
	kf_aws_sm_free(sm);
	kf_aws_chain_free(chain);
	chain = NULL;
	kf_http_set_transport(NULL);
	kf_aws_sm_set_clock(NULL);
	fake_env_clear();
}

KT_TEST(aws_sm_list_request_and_parse)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"SecretList\":[{\"ARN\":\"arn:a\",\"Name\":\"app/db\","
		  "\"Description\":null,\"LastAccessedDate\":null,"
		  "\"LastChangedDate\":1523477145.713,\"CreatedDate\":"
		  "\"1523477000\",\"Tags\":[{\"Key\":\"keyfs:layout\","
		  "\"Value\":\"fields\"}],\"SecretVersionsToStages\":"
		  "{\"v1\":[\"AWSPREVIOUS\"],\"v2\":[\"AWSCURRENT\"]}},"
		  "{\"Name\":\"other\",\"Tags\":null},"
		  "{\"Name\":\"app/gone\",\"DeletedDate\":1700000000}],"
		  "\"NextToken\":null}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_aws_sm_page pg;
	struct kf_err err = KF_ERR_INIT;
	json_t *j;
	char auth[512];

	KT_EQ_INT(kf_aws_sm_list(sm, "app/", "tok1", 100, &pg, &err), 0);
	KT_EQ_INT(fk.nreq, 1);
	KT_EQ_STR(fk.url[0], "http://127.0.0.1:4566");
	KT_CHECK(has_header(0, "X-Amz-Target: secretsmanager.ListSecrets"));
	KT_CHECK(has_header(0, "Content-Type: application/x-amz-json-1.1"));
	KT_CHECK(has_header(0, "Host: 127.0.0.1:4566"));
	KT_CHECK(has_header(0, "X-Amz-Date: 20150830T123600Z"));
	KT_CHECK(!strstr(fk.headers[0], "X-Amz-Security-Token"));
	hdr_value(0, "Authorization: ", auth, sizeof(auth));
	KT_CHECK(strstr(auth,
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
			"20150830/us-west-2/secretsmanager/aws4_request") !=
		 NULL);
	KT_CHECK(strstr(auth, "SignedHeaders=content-type;host;x-amz-date;"
			      "x-amz-target,") != NULL);
	j = req_json(0);
	KT_CHECK(json_is_object(j));
	KT_EQ_INT(json_integer_value(json_object_get(j, "MaxResults")), 100);
	KT_EQ_STR(json_string_value(json_object_get(j, "NextToken")), "tok1");
	KT_EQ_STR(json_string_value(json_object_get(
			  json_array_get(json_object_get(j, "Filters"), 0),
			  "Key")),
		  "name");
	KT_EQ_STR(json_string_value(json_array_get(
			  json_object_get(json_array_get(json_object_get(j,
									 "Filters"),
							 0),
					  "Values"),
			  0)),
		  "app/");
	json_decref(j);
	/* "other" does not match the prefix; "app/gone" awaits deletion. */
	KT_EQ_INT(pg.n, 1);
	KT_EQ_STR(pg.v[0].name, "app/db");
	KT_EQ_STR(pg.v[0].arn, "arn:a");
	KT_CHECK(pg.v[0].description == NULL);
	KT_EQ_STR(pg.v[0].current_version, "v2");
	KT_EQ_INT(pg.v[0].changed, 1523477145);
	KT_EQ_INT(pg.v[0].created, 1523477000);
	KT_EQ_STR(kf_aws_sm_meta_tag(&pg.v[0], "keyfs:layout"), "fields");
	KT_CHECK(pg.next_token == NULL);
	kf_aws_sm_page_release(&pg);
	teardown(sm);
}

KT_TEST(aws_sm_session_token_is_signed)
{
	static const struct fake_resp r[] = {
		{ 200, "{\"SecretList\":[],\"NextToken\":\"n2\"}" },
	};
	struct kf_aws_sm *sm = setup("SESSIONTOKENEXAMPLE", 1, r);
	struct kf_aws_sm_page pg;
	struct kf_err err = KF_ERR_INIT;
	char auth[512];

	KT_EQ_INT(kf_aws_sm_list(sm, NULL, NULL, 5, &pg, &err), 0);
	KT_CHECK(has_header(0, "X-Amz-Security-Token: SESSIONTOKENEXAMPLE"));
	hdr_value(0, "Authorization: ", auth, sizeof(auth));
	KT_CHECK(strstr(auth, "SignedHeaders=content-type;host;x-amz-date;"
			      "x-amz-security-token;x-amz-target,") != NULL);
	KT_EQ_INT(pg.n, 0);
	KT_EQ_STR(pg.next_token, "n2");
	kf_aws_sm_page_release(&pg);
	teardown(sm);
}

KT_TEST(aws_sm_put_reuses_token_across_retries)
{
	static const struct fake_resp r[] = {
		{ 500,
		  "{\"__type\":\"InternalServiceError\",\"message\":\"x\"}" },
		{ 0, NULL },
		{ 400,
		  "{\"__type\":\"ThrottlingException\",\"message\":\"slow\"}" },
		{ 503, "" },
		{ 200, "{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"t\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 5, r);
	struct kf_err err = KF_ERR_INIT;
	const char *tok = "0b6f8d2c-8f0e-4a5e-9a52-7a3c7d1f0c11";
	char d0[64], d1[64];

	KT_EQ_INT(kf_aws_sm_put_value(sm, "n", tok, (const unsigned char *)"v1",
				      2, &err),
		  0);
	KT_EQ_INT(fk.nreq, 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *j = req_json(i);

		KT_EQ_STR(json_string_value(
				  json_object_get(j, "ClientRequestToken")),
			  tok);
		KT_EQ_STR(json_string_value(json_object_get(j, "SecretId")),
			  "n");
		KT_EQ_STR(json_string_value(json_object_get(j, "SecretString")),
			  "v1");
		KT_CHECK(has_header(i, "X-Amz-Target: "
				       "secretsmanager.PutSecretValue"));
		json_decref(j);
	}
	/* every attempt is signed afresh */
	hdr_value(0, "X-Amz-Date: ", d0, sizeof(d0));
	hdr_value(4, "X-Amz-Date: ", d1, sizeof(d1));
	KT_CHECK(strcmp(d0, d1) != 0);
	teardown(sm);
}

KT_TEST(aws_sm_retries_are_bounded)
{
	static const struct fake_resp r[] = {
		{ 400,
		  "{\"__type\":\"ThrottlingException\",\"message\":\"slow\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm_meta m;

	KT_EQ_INT(kf_aws_sm_describe(sm, "x", &m, &err), -1);
	KT_EQ_INT(fk.nreq, 5);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_STR(err.provider_code, "ThrottlingException");
	teardown(sm);
}

KT_TEST(aws_sm_client_errors_are_not_retried)
{
	static const struct fake_resp r[] = {
		{ 404,
		  "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		  "\"Secrets Manager can't find the specified secret.\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;

	KT_EQ_INT(kf_aws_sm_get_value(sm, "x", &v, NULL, 0, &err), -1);
	KT_EQ_INT(fk.nreq, 1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(err.http_status, 404);
	KT_CHECK(v == NULL);
	teardown(sm);
}

KT_TEST(aws_sm_expired_token_refreshes_once)
{
	static const struct fake_resp r[] = {
		{ 400,
		  "{\"__type\":\"ExpiredTokenException\",\"message\":\"e\"}" },
	};
	static const struct fake_resp ok[] = {
		{ 400,
		  "{\"__type\":\"ExpiredTokenException\",\"message\":\"e\"}" },
		{ 200, "{}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_aws_sm_delete(sm, "x", 7, &err), -1);
	KT_EQ_INT(fk.nreq, 2);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_EQ_STR(err.provider_code, "ExpiredTokenException");
	teardown(sm);

	sm = setup(NULL, 2, ok);
	KT_EQ_INT(kf_aws_sm_delete(sm, "x", 0, &err), 0);
	KT_EQ_INT(fk.nreq, 2);
	teardown(sm);
}

KT_TEST(aws_sm_classify_table)
{
	static const struct {
		long status;
		const char *body;
		enum kf_code code;
		enum kf_aws_sm_action act;
		const char *pcode;
	} t[] = {
		{ 400, "{\"__type\":\"ResourceNotFoundException\"}",
		  KF_E_NOTFOUND, KF_AWS_SM_FAIL, "ResourceNotFoundException" },
		/* moto answers not-found with 404: same classification */
		{ 404,
		  "{\"__type\":\"ResourceNotFoundException\","
		  "\"message\":\"m\"}",
		  KF_E_NOTFOUND, KF_AWS_SM_FAIL, "ResourceNotFoundException" },
		{ 400, "{\"__type\":\"ResourceExistsException\"}", KF_E_EXISTS,
		  KF_AWS_SM_FAIL, "ResourceExistsException" },
		{ 400,
		  "{\"__type\":\"com.amazonaws.secretsmanager#"
		  "InvalidRequestException:http://internal\"}",
		  KF_E_STATE, KF_AWS_SM_FAIL, "InvalidRequestException" },
		{ 400, "{\"__type\":\"InvalidParameterException\"}",
		  KF_E_INVALID, KF_AWS_SM_FAIL, "InvalidParameterException" },
		{ 400, "{\"__type\":\"ValidationException\"}", KF_E_INVALID,
		  KF_AWS_SM_FAIL, "ValidationException" },
		{ 400, "{\"__type\":\"LimitExceededException\"}",
		  KF_E_UNAVAILABLE, KF_AWS_SM_FAIL, "LimitExceededException" },
		{ 400, "{\"__type\":\"AccessDeniedException\"}", KF_E_DENIED,
		  KF_AWS_SM_FAIL, "AccessDeniedException" },
		{ 400, "{\"__type\":\"UnrecognizedClientException\"}",
		  KF_E_DENIED, KF_AWS_SM_FAIL, "UnrecognizedClientException" },
		{ 403, "{\"__type\":\"InvalidClientTokenId\"}", KF_E_DENIED,
		  KF_AWS_SM_FAIL, "InvalidClientTokenId" },
		{ 400, "{\"__type\":\"IncompleteSignature\"}", KF_E_DENIED,
		  KF_AWS_SM_FAIL, "IncompleteSignature" },
		{ 403, "{\"__type\":\"MissingAuthenticationToken\"}",
		  KF_E_DENIED, KF_AWS_SM_FAIL, "MissingAuthenticationToken" },
		/* moto's signature check answers in XML with HTTP 403 */
		{ 403,
		  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		  "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch"
		  "</Code><Message>The request signature we calculated "
		  "does not match</Message></Error></Errors>"
		  "<RequestId>r</RequestId></ErrorResponse>",
		  KF_E_DENIED, KF_AWS_SM_FAIL, "SignatureDoesNotMatch" },
		{ 400, "{\"__type\":\"ExpiredTokenException\"}", KF_E_DENIED,
		  KF_AWS_SM_REFRESH, "ExpiredTokenException" },
		{ 400, "{\"__type\":\"ThrottlingException\"}", KF_E_UNAVAILABLE,
		  KF_AWS_SM_RETRY, "ThrottlingException" },
		{ 400, "{\"__type\":\"InternalServiceError\"}",
		  KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, "InternalServiceError" },
		{ 500, "{\"__type\":\"InternalServiceError\"}",
		  KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, "InternalServiceError" },
		{ 400, "{\"code\":\"Throttling\",\"Message\":\"m\"}",
		  KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, "Throttling" },
		{ 502, "<html>bad gateway</html>", KF_E_UNAVAILABLE,
		  KF_AWS_SM_RETRY, "" },
		{ 503, "", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, "" },
		{ 429, "", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, "" },
		/* never by status alone: a 404 without a code is not NOTFOUND */
		{ 404, "", KF_E_IO, KF_AWS_SM_FAIL, "" },
		{ 400, "{\"__type\":\"SomethingNew\"}", KF_E_IO, KF_AWS_SM_FAIL,
		  "SomethingNew" },
		{ 403, "", KF_E_DENIED, KF_AWS_SM_FAIL, "" },
		{ 400, "not json", KF_E_IO, KF_AWS_SM_FAIL, "" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kf_err err = KF_ERR_INIT;
		enum kf_aws_sm_action a;

		a = kf_aws_sm_classify("Op", t[i].status, t[i].body,
				       strlen(t[i].body), &err);
		if (a != t[i].act || err.code != t[i].code ||
		    strcmp(err.provider_code, t[i].pcode) != 0)
			kt_fail(__FILE__, __LINE__,
				"case %zu: action %d code "
				"%s pcode '%s'",
				i, (int)a, kf_code_name(err.code),
				err.provider_code);
		KT_EQ_INT(err.http_status, t[i].status);
	}
}

/* Two states have no error type of their own: the reason says which. */
KT_TEST(aws_sm_reasons_from_error_bodies)
{
	static const struct {
		long status;
		const char *body;
		enum kf_code code;
		enum kf_reason reason;
	} t[] = {
		/* AWS, on any operation on a secret scheduled for deletion */
		{ 400,
		  "{\"__type\":\"InvalidRequestException\",\"message\":"
		  "\"You can't perform this operation on the secret "
		  "because it was marked for deletion.\"}",
		  KF_E_STATE, KF_R_DELETING },
		/* moto */
		{ 400,
		  "{\"__type\":\"InvalidRequestException\",\"message\":"
		  "\"An error occurred (InvalidRequestException) when "
		  "calling the GetSecretValue operation: You tried to "
		  "perform the operation on a secret that's currently "
		  "marked deleted.\"}",
		  KF_E_STATE, KF_R_DELETING },
		{ 400,
		  "{\"__type\":\"InvalidRequestException\",\"message\":"
		  "\"You can't perform this operation on the secret "
		  "because rotation is not enabled.\"}",
		  KF_E_STATE, KF_R_NONE },
		{ 400,
		  "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		  "\"Secrets Manager can't find the specified secret "
		  "value for staging label: AWSCURRENT\"}",
		  KF_E_NOTFOUND, KF_R_NO_VALUE },
		{ 400,
		  "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		  "\"Secrets Manager can't find the specified secret.\"}",
		  KF_E_NOTFOUND, KF_R_NONE },
		/* the text alone, under a type that never quotes: no reason */
		{ 400,
		  "{\"__type\":\"ValidationException\",\"message\":"
		  "\"marked for deletion\"}",
		  KF_E_INVALID, KF_R_NONE },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kf_err err = KF_ERR_INIT;

		kf_aws_sm_classify("GetSecretValue", t[i].status, t[i].body,
				   strlen(t[i].body), &err);
		if (err.code != t[i].code || err.reason != t[i].reason)
			kt_fail(__FILE__, __LINE__,
				"case %zu: code %s reason "
				"%d",
				i, kf_code_name(err.code), (int)err.reason);
	}
}

KT_TEST(aws_sm_deleting_reason_reaches_the_caller)
{
	static const struct fake_resp r[] = {
		{ 400, "{\"__type\":\"InvalidRequestException\",\"message\":"
		       "\"You can't perform this operation on the secret "
		       "because it was marked for deletion.\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	const char *tok = "11111111-2222-3333-4444-555555555555";

	KT_EQ_INT(kf_aws_sm_get_value(sm, "x", &v, NULL, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_CHECK(kf_err_is(&err, KF_R_DELETING));
	KT_CHECK(!kf_err_is(&err, KF_R_NO_VALUE));
	KT_CHECK(v == NULL);
	KT_EQ_INT(kf_aws_sm_put_value(sm, "x", tok, (const unsigned char *)"v",
				      1, &err),
		  -1);
	KT_CHECK(kf_err_is(&err, KF_R_DELETING));
	KT_EQ_INT(fk.nreq, 2);
	teardown(sm);
}

/*
 * The retry policy: attempts that are not the last keep time for another
 * (half the deadline, at least 2 s); every attempt counts in the stats, all
 * but the first as retries; a transport timeout is retried and ends as
 * UNAVAILABLE, without a reason.
 */
KT_TEST(aws_sm_retry_slices_and_stats)
{
	static const struct fake_resp r[] = { { -1, NULL } };
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm_meta m;
	struct kf_buf st;

	kf_stats_reset();
	kf_buf_init(&st, 4096);
	KT_EQ_INT(kf_aws_sm_describe(sm, "x", &m, &err), -1);
	KT_EQ_INT(fk.nreq, 5);
	KT_EQ_INT(err.code, KF_E_UNAVAILABLE);
	KT_EQ_INT(err.reason, KF_R_NONE);
	for (size_t i = 0; i < 4; i++)
		KT_EQ_INT(fk.timeout_ms[i], 2500);
	KT_CHECK(fk.timeout_ms[4] > 2500 && fk.timeout_ms[4] <= 5000);
	KT_EQ_INT(kf_stats_json(&st), 0);
	KT_CHECK(strstr(kf_buf_str(&st),
			"\"DescribeSecret\":{\"calls\":5,"
			"\"errors\":5,\"retries\":4,") != NULL);
	kf_buf_release(&st);
	kf_stats_reset();
	teardown(sm);
}

KT_TEST(aws_sm_parse_date)
{
	static const struct {
		const char *json;
		int64_t want;
	} t[] = {
		{ "{\"d\":1523477145}", 1523477145 },
		{ "{\"d\":1523477145.713}", 1523477145 },
		{ "{\"d\":\"1700000000.5\"}", 1700000000 },
		{ "{\"d\":\"-12\"}", -12 },
		{ "{\"d\":null}", 0 },
		{ "{\"d\":\"soon\"}", 0 },
		{ "{\"d\":\"12x\"}", 0 },
		{ "{\"d\":\"nan\"}", 0 },
		{ "{\"d\":\"-inf\"}", 0 },
		{ "{\"d\":7.77778e+131}", 0 },
		{ "{\"d\":[1]}", 0 },
		{ "{}", 0 },
	};

	kf_json_init();
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_t *j = json_loads(t[i].json, 0, NULL);

		KT_CHECK(j != NULL);
		if (kf_aws_sm_parse_date(j, "d") != t[i].want)
			kt_fail(__FILE__, __LINE__, "case %zu", i);
		json_decref(j);
	}
	KT_EQ_INT(kf_aws_sm_parse_date(NULL, "d"), 0);
}

KT_TEST(aws_sm_messages_never_echo_input)
{
	struct kf_err err = KF_ERR_INIT;
	const char *b = "{\"__type\":\"ValidationException\",\"message\":"
			"\"Value 'CANARY-SECRET' at 'secretString' failed\"}";

	kf_aws_sm_classify("PutSecretValue", 400, b, strlen(b), &err);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "CANARY") == NULL);
	KT_CHECK(strstr(err.msg, "ValidationException") != NULL);
}

KT_TEST(aws_sm_normalise_type)
{
	char a[] = "aws.sm#ResourceNotFoundException:http://x#y";
	char b[] = "ThrottlingException";

	kf_aws_sm_normalise_type(a);
	kf_aws_sm_normalise_type(b);
	KT_EQ_STR(a, "ResourceNotFoundException");
	KT_EQ_STR(b, "ThrottlingException");
}

KT_TEST(aws_sm_text_or_binary)
{
	static const struct fake_resp r[] = { { 200, "{}" } };
	static const unsigned char bin[] = { 0xff, 0x00, 0x41, 0x80 };
	const char *txt = "line1\n\"q\"\\ \x01 caf\xc3\xa9";
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	const char *tok = "11111111-2222-3333-4444-555555555555";
	json_t *j;

	KT_CHECK(kf_aws_sm_is_text((const unsigned char *)"abc", 3));
	KT_CHECK(kf_aws_sm_is_text((const unsigned char *)"caf\xc3\xa9", 5));
	KT_CHECK(!kf_aws_sm_is_text((const unsigned char *)"a\0b", 3));
	KT_CHECK(!kf_aws_sm_is_text((const unsigned char *)"\xc3", 1));
	KT_CHECK(!kf_aws_sm_is_text((const unsigned char *)"\xc0\x80", 2));
	KT_CHECK(!kf_aws_sm_is_text((const unsigned char *)"\xed\xa0\x80", 3));
	KT_CHECK(!kf_aws_sm_is_text(bin, sizeof(bin)));
	/* a text value may end in the middle of a character, for now */
	KT_CHECK(kf_aws_sm_is_text_prefix((const unsigned char *)"caf\xc3", 4));
	KT_CHECK(
		kf_aws_sm_is_text_prefix((const unsigned char *)"\xe2\x98", 2));
	KT_CHECK(kf_aws_sm_is_text_prefix((const unsigned char *)"\xf0\x9f\x98",
					  3));
	KT_CHECK(kf_aws_sm_is_text_prefix((const unsigned char *)"", 0));
	KT_CHECK(!kf_aws_sm_is_text_prefix((const unsigned char *)"\xff", 1));
	KT_CHECK(!kf_aws_sm_is_text_prefix((const unsigned char *)"\xc0", 1));
	KT_CHECK(!kf_aws_sm_is_text_prefix((const unsigned char *)"a\0", 2));
	KT_CHECK(!kf_aws_sm_is_text_prefix((const unsigned char *)"\x80", 1));
	KT_CHECK(!kf_aws_sm_is_text_prefix((const unsigned char *)"\xff\xc3",
					   2));
	KT_CHECK(
		!kf_aws_sm_is_text_prefix((const unsigned char *)"\xc3\xa9\xa9",
					  3));

	KT_EQ_INT(kf_aws_sm_put_value(sm, "s", tok, (const unsigned char *)txt,
				      strlen(txt), &err),
		  0);
	j = req_json(0);
	KT_CHECK(json_is_object(j));
	KT_CHECK(json_object_get(j, "SecretBinary") == NULL);
	KT_EQ_STR(json_string_value(json_object_get(j, "SecretString")), txt);
	json_decref(j);

	KT_EQ_INT(kf_aws_sm_put_value(sm, "s", tok, bin, sizeof(bin), &err), 0);
	j = req_json(1);
	KT_CHECK(json_object_get(j, "SecretString") == NULL);
	KT_EQ_STR(json_string_value(json_object_get(j, "SecretBinary")),
		  "/wBBgA==");
	json_decref(j);
	teardown(sm);
}

KT_TEST(aws_sm_get_value_string_binary_and_empty)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"ARN\":\"a\",\"Name\":\"s\",\"VersionId\":\"v9\","
		  "\"SecretString\":\"a\\u0000b\\\"c\",\"SecretBinary\":null,"
		  "\"CreatedDate\":1}" },
		{ 200, "{\"Name\":\"b\",\"SecretString\":null,"
		       "\"SecretBinary\":\"/wBBgA==\"}" },
		{ 404,
		  "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		  "\"Secrets Manager can't find the specified secret value "
		  "for staging label: AWSCURRENT\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 3, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;
	char ver[65];

	KT_EQ_INT(kf_aws_sm_get_value(sm, "s", &v, ver, sizeof(ver), &err), 0);
	KT_EQ_INT(v->len, 5);
	KT_EQ_MEM(v->data, "a\0b\"c", 5);
	KT_EQ_STR(ver, "v9");
	kf_secret_free(v);
	KT_EQ_INT(kf_aws_sm_get_value(sm, "b", &v, NULL, 0, &err), 0);
	KT_EQ_INT(v->len, 4);
	KT_EQ_MEM(v->data, "\xff\x00\x41\x80", 4);
	kf_secret_free(v);
	KT_EQ_INT(kf_aws_sm_get_value(sm, "e", &v, ver, sizeof(ver), &err), 0);
	KT_EQ_INT(v->len, 0);
	KT_EQ_STR(ver, "");
	kf_secret_free(v);
	KT_EQ_INT(fk.nreq, 3);
	teardown(sm);
}

KT_TEST(aws_sm_limits_checked_before_any_call)
{
	static const struct fake_resp r[] = { { 200, "{}" } };
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	unsigned char *big = calloc(1, KF_AWS_SM_MAX_VALUE + 1);
	const char *tok = "11111111-2222-3333-4444-555555555555";

	memset(big, 'a', KF_AWS_SM_MAX_VALUE + 1);
	KT_EQ_INT(kf_aws_sm_put_value(sm, "s", tok, big,
				      KF_AWS_SM_MAX_VALUE + 1, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_aws_sm_create(sm, "s", tok, big, KF_AWS_SM_MAX_VALUE + 1,
				   NULL, 0, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_aws_sm_put_value(sm, "s", tok, big, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(fk.nreq, 0);
	/* exactly the limit goes out */
	KT_EQ_INT(kf_aws_sm_put_value(sm, "s", tok, big, KF_AWS_SM_MAX_VALUE,
				      &err),
		  0);
	KT_EQ_INT(fk.nreq, 1);
	free(big);
	teardown(sm);
}

KT_TEST(aws_sm_create_and_delete_bodies)
{
	static const struct fake_resp r[] = { { 200, "{}" } };
	static const struct kf_aws_sm_tag tag = { (char *)"keyfs:layout",
						  (char *)"fields" };
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	const char *tok = "11111111-2222-3333-4444-555555555555";
	json_t *j;

	KT_EQ_INT(kf_aws_sm_create(sm, "team/x", tok, NULL, 0, &tag, 1, &err),
		  0);
	j = req_json(0);
	KT_EQ_STR(json_string_value(json_object_get(j, "Name")), "team/x");
	KT_EQ_STR(json_string_value(json_object_get(j, "ClientRequestToken")),
		  tok);
	KT_CHECK(json_object_get(j, "SecretString") == NULL);
	KT_CHECK(json_object_get(j, "SecretBinary") == NULL);
	KT_EQ_STR(json_string_value(
			  json_object_get(json_array_get(json_object_get(j,
									 "Tags"),
							 0),
					  "Key")),
		  "keyfs:layout");
	json_decref(j);
	KT_CHECK(has_header(0, "X-Amz-Target: secretsmanager.CreateSecret"));

	KT_EQ_INT(kf_aws_sm_delete(sm, "team/x", 7, &err), 0);
	j = req_json(1);
	KT_EQ_INT(json_integer_value(
			  json_object_get(j, "RecoveryWindowInDays")),
		  7);
	KT_CHECK(json_object_get(j, "ForceDeleteWithoutRecovery") == NULL);
	json_decref(j);
	KT_EQ_INT(kf_aws_sm_delete(sm, "team/x", 0, &err), 0);
	j = req_json(2);
	KT_CHECK(
		json_is_true(json_object_get(j, "ForceDeleteWithoutRecovery")));
	KT_CHECK(json_object_get(j, "RecoveryWindowInDays") == NULL);
	json_decref(j);

	KT_EQ_INT(kf_aws_sm_update_description(sm, "team/x", "d\"1", &err), 0);
	j = req_json(3);
	KT_EQ_STR(json_string_value(json_object_get(j, "Description")), "d\"1");
	KT_EQ_INT(strlen(json_string_value(
			  json_object_get(j, "ClientRequestToken"))),
		  36);
	json_decref(j);
	KT_CHECK(has_header(3, "X-Amz-Target: secretsmanager.UpdateSecret"));

	KT_EQ_INT(kf_aws_sm_tag(sm, "team/x", &tag, 1, &err), 0);
	KT_CHECK(has_header(4, "X-Amz-Target: secretsmanager.TagResource"));
	teardown(sm);
}

KT_TEST(aws_sm_restore_body_and_errors)
{
	static const struct fake_resp r[] = {
		{ 200, "{\"ARN\":\"arn:x\",\"Name\":\"team/x\"}" },
		{ 400, "{\"__type\":\"ResourceNotFoundException\","
		       "\"message\":\"Secrets Manager can't find the "
		       "specified secret.\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 2, r);
	struct kf_err err = KF_ERR_INIT;
	json_t *j;

	KT_EQ_INT(kf_aws_sm_restore(sm, "team/x", &err), 0);
	j = req_json(0);
	KT_EQ_STR(json_string_value(json_object_get(j, "SecretId")), "team/x");
	KT_EQ_INT(json_object_size(j), 1);
	json_decref(j);
	KT_CHECK(has_header(0, "X-Amz-Target: secretsmanager.RestoreSecret"));
	KT_EQ_INT(kf_aws_sm_restore(sm, "gone", &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_STR(err.provider_code, "ResourceNotFoundException");
	KT_EQ_INT(fk.nreq, 2);
	teardown(sm);
}

KT_TEST(aws_sm_describe_parse)
{
	static const struct fake_resp r[] = {
		{ 200,
		  "{\"ARN\":\"arn:x\",\"Name\":\"n\",\"Description\":\"d\","
		  "\"DeletedDate\":\"1700000000.5\",\"Tags\":[],"
		  "\"VersionIdsToStages\":{\"a\":[\"AWSCURRENT\"]},"
		  "\"RotationRules\":null}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 1, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm_meta m;

	KT_EQ_INT(kf_aws_sm_describe(sm, "n", &m, &err), 0);
	KT_EQ_STR(m.arn, "arn:x");
	KT_EQ_STR(m.description, "d");
	KT_EQ_STR(m.current_version, "a");
	KT_EQ_INT(m.deleted, 1700000000);
	KT_EQ_INT(m.ntags, 0);
	KT_CHECK(kf_aws_sm_meta_tag(&m, "keyfs:layout") == NULL);
	kf_aws_sm_meta_release(&m);
	teardown(sm);
}

/*
 * Dates far out of range (or NaN, inf) count as absent: casting them to an
 * integer was undefined behaviour (UBSan), found by fuzz_aws_sm_json.
 * corpus/aws_sm_json/regress_date_out_of_range
 */
KT_TEST(aws_sm_dates_out_of_range)
{
	static const struct fake_resp r[] = {
		{ 200, "{\"ARN\":\"arn:x\",\"Name\":\"n\","
		       "\"CreatedDate\":7.77778e+131,"
		       "\"LastChangedDate\":\"-1e300\","
		       "\"DeletedDate\":\"nan\"}" },
		{ 200, "{\"ARN\":\"arn:x\",\"Name\":\"n\","
		       "\"CreatedDate\":\"inf\","
		       "\"DeletedDate\":1700000000.25}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 2, r);
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm_meta m;

	KT_EQ_INT(kf_aws_sm_describe(sm, "n", &m, &err), 0);
	KT_EQ_INT(m.created, 0);
	KT_EQ_INT(m.changed, 0);
	KT_EQ_INT(m.deleted, 0);
	kf_aws_sm_meta_release(&m);
	KT_EQ_INT(kf_aws_sm_describe(sm, "n", &m, &err), 0);
	KT_EQ_INT(m.created, 0);
	KT_EQ_INT(m.deleted, 1700000000);
	kf_aws_sm_meta_release(&m);
	teardown(sm);
}

KT_TEST(aws_sm_endpoint_host_and_refusal)
{
	struct kf_aws_chain_cfg ccfg = { NULL, 1000 };
	struct kf_aws_sm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_sm *sm = NULL;
	static const struct fake_resp r[] = { { 200, "{\"SecretList\":[]}" } };
	struct kf_aws_sm_page pg;

	sm = setup(NULL, 1, r);
	kf_aws_sm_free(sm);
	sm = NULL;
	memset(&cfg, 0, sizeof(cfg));
	cfg.region = "us-east-1";
	cfg.chain = chain;
	cfg.endpoint = "http://example.com:8080"; /* plain http, remote */
	KT_EQ_INT(kf_aws_sm_new(&cfg, &sm, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	cfg.endpoint = "https://SecretsManager.us-east-1.amazonaws.com:443/";
	KT_EQ_INT(kf_aws_sm_new(&cfg, &sm, &err), 0);
	KT_EQ_INT(kf_aws_sm_list(sm, NULL, NULL, 1, &pg, &err), 0);
	KT_CHECK(has_header(0, "Host: secretsmanager.us-east-1.amazonaws.com"));
	kf_aws_sm_page_release(&pg);
	(void)ccfg;
	teardown(sm);
}

/* ---- the provider's listing through the same seam ---------------------- */

struct names {
	char buf[4096];
	size_t n;
};

static int collect(void *ctx, const char *name, const struct kf_attr *at)
{
	struct names *nm = ctx;
	size_t len = strlen(nm->buf);

	snprintf(nm->buf + len, sizeof(nm->buf) - len, "%s%s ", name,
		 at && at->kind == KF_KIND_DIR ? "/" : "");
	nm->n++;
	return 0;
}

KT_TEST(aws_provider_list_pages_dedupe_dirs)
{
	static const struct fake_resp r[] = {
		/* probe at create */
		{ 200, "{\"SecretList\":[]}" },
		{ 200, "{\"SecretList\":[{\"Name\":\"a\"},{\"Name\":\"b/x\"},"
		       "{\"Name\":\"b/y\"}],\"NextToken\":\"T2\"}" },
		{ 200, "{\"SecretList\":[{\"Name\":\"b/z\"},{\"Name\":\"c\","
		       "\"Tags\":[{\"Key\":\"keyfs:layout\",\"Value\":"
		       "\"fields\"}]}],\"NextToken\":null}" },
		{ 200, "{\"Name\":\"c\",\"SecretString\":"
		       "\"{\\\"f\\\":\\\"abc\\\",\\\"g\\\":12}\"}" },
	};
	struct kf_aws_sm *sm = setup(NULL, 4, r);
	struct kf_kv kv[] = { { (char *)"aws_region", (char *)"us-west-2" },
			      { (char *)"aws_endpoint",
				(char *)"http://127.0.0.1:4566" } };
	struct kf_config cfg = { "/nonexistent", 5, 60, 0, kv, 2, NULL, 0 };
	struct kf_provider *p = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct names nm;
	struct kf_buf next;
	struct kf_attr at;
	char tok[256];

	kf_aws_sm_free(sm);
	kf_buf_init(&next, 8192);
	KT_EQ_INT(kf_aws_desc.create(&cfg, &p, &err), 0);
	KT_EQ_INT(fk.nreq, 1);
	KT_EQ_INT(p->max_value, 65536);
	memset(&nm, 0, sizeof(nm));
	KT_EQ_INT(p->ops->list(p, "", NULL, collect, &nm, &next, &err), 0);
	KT_EQ_STR(nm.buf, "us-west-2/ ");
	memset(&nm, 0, sizeof(nm));
	KT_EQ_INT(p->ops->list(p, "us-west-2", NULL, collect, &nm, &next, &err),
		  0);
	KT_EQ_STR(nm.buf, "a b/ ");
	KT_CHECK(next.len > 0);
	snprintf(tok, sizeof(tok), "%s", kf_buf_str(&next));
	memset(&nm, 0, sizeof(nm));
	KT_EQ_INT(p->ops->list(p, "us-west-2", tok, collect, &nm, &next, &err),
		  0);
	/* b/ spans both pages and is listed once; c is a field secret */
	KT_EQ_STR(nm.buf, "c/ ");
	KT_EQ_INT(next.len, 0);
	{
		json_t *j = req_json(2);

		KT_EQ_STR(json_string_value(json_object_get(j, "NextToken")),
			  "T2");
		json_decref(j);
	}
	/* listed names answer getattr without another call */
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/b/z", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_FILE);
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/c", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_DIR);
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/b", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_DIR);
	KT_EQ_INT(fk.nreq, 3);
	/* names are validated before any call */
	KT_EQ_INT(p->ops->can_create(p, "us-west-2/bad name", &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(p->ops->can_create(p, "us-west-2/c/f", &err), 0);
	/* a field directory: one GetSecretValue, then getattr is free */
	memset(&nm, 0, sizeof(nm));
	KT_EQ_INT(p->ops->list(p, "us-west-2/c", NULL, collect, &nm, &next,
			       &err),
		  0);
	KT_EQ_STR(nm.buf, "f g ");
	KT_EQ_INT(fk.nreq, 4);
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/c/f", &at, &err), 0);
	KT_EQ_INT(at.kind, KF_KIND_FILE);
	KT_EQ_INT(at.size_known, 1);
	KT_EQ_INT(at.size, 3);
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/c/g", &at, &err), 0);
	KT_EQ_INT(at.size, 2);
	KT_EQ_INT(p->ops->getattr(p, "us-west-2/c/zz", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(fk.nreq, 4);
	KT_EQ_INT(p->ops->getattr(p, "eu-west-9", &at, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	p->ops->free(p);
	kf_buf_release(&next);
	teardown(NULL);
}

/* A secret deleted behind the provider's back: reads find it gone, a
 * write restores it and then writes (one PutSecretValue after
 * RestoreSecret), other changes say it is scheduled for deletion. */
KT_TEST(aws_provider_secret_deleted_elsewhere)
{
#define DELETING_BODY                                          \
	"{\"__type\":\"InvalidRequestException\",\"message\":" \
	"\"You can't perform this operation on the secret "    \
	"because it was marked for deletion.\"}"
	static const struct fake_resp r[] = {
		{ 200, "{\"SecretList\":[]}" }, /* probe */
		{ 200, "{\"Name\":\"gone\"}" }, /* DescribeSecret */
		{ 200, "{\"SecretList\":[]}" }, /* nothing below gone/ */
		{ 400, DELETING_BODY },		/* GetSecretValue */
		{ 200, "{\"Name\":\"gone\"}" }, /* DescribeSecret */
		{ 200, "{\"SecretList\":[]}" }, /* nothing below gone/ */
		{ 400, DELETING_BODY },		/* PutSecretValue */
		{ 200, "{\"Name\":\"gone\"}" }, /* RestoreSecret */
		{ 200, "{\"Name\":\"gone\"}" }, /* DescribeSecret */
		{ 200, "{\"Name\":\"gone\"}" }, /* PutSecretValue */
		{ 400, DELETING_BODY },		/* UpdateSecret */
	};
#undef DELETING_BODY
	struct kf_aws_sm *sm = setup(NULL, 11, r);
	struct kf_kv kv[] = { { (char *)"aws_region", (char *)"us-west-2" },
			      { (char *)"aws_endpoint",
				(char *)"http://127.0.0.1:4566" } };
	struct kf_config cfg = { "/nonexistent", 5, 60, 0, kv, 2, NULL, 0 };
	struct kf_provider *p = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *v = NULL;

	kf_aws_sm_free(sm);
	KT_EQ_INT(kf_aws_desc.create(&cfg, &p, &err), 0);
	KT_EQ_INT(p->ops->read(p, "us-west-2/gone", &v, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_CHECK(v == NULL);
	KT_EQ_INT(p->ops->commit(p, "us-west-2/gone",
				 (const unsigned char *)"v", 1, NULL, 0, NULL,
				 &err),
		  0);
	KT_CHECK(has_header(7, "X-Amz-Target: secretsmanager.RestoreSecret"));
	KT_CHECK(has_header(9, "X-Amz-Target: secretsmanager.PutSecretValue"));
	KT_EQ_INT(p->ops->setxattr(p, "us-west-2/gone",
				   "user.keyfs.description", "d", 1, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_CHECK(kf_err_is(&err, KF_R_DELETING));
	KT_CHECK(strstr(err.msg, "us-west-2/gone is scheduled for deletion"));
	KT_EQ_INT(fk.nreq, 11);
	p->ops->free(p);
	teardown(NULL);
}
