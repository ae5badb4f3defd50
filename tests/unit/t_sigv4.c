/* Unit tests for cloud/aws/sigv4.c against published vectors (AWS SigV4 test
 * suite get-vanilla, the IAM doc example, Secrets Manager requests as
 * keyfs sends them) and
 * against botocore 1.43.11 SigV4Auth outputs computed offline for query
 * sorting, header folding, path encoding and session tokens. */
#include "kt.h"
#include "core/crypto.h"
#include "aws/sigv4.h"

#include <stdio.h>

#define T20150830 ((time_t)1440938160) /* 20150830T123600Z */

static const struct kf_sigv4_creds ex_creds = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL
};

/* Signature=<hex> at the end of an Authorization value. */
static const char *sig_of(const struct kf_buf *auth)
{
	const char *p = strstr(kf_buf_str(auth), "Signature=");

	return p ? p + 10 : "";
}

/*
 * Sign req with the example credentials: its canonical request into cr
 * (emptied first) and the Authorization's signature returned (static
 * storage); both calls must succeed.
 */
static const char *sign_example(const struct kf_sigv4_req *req,
				struct kf_buf *cr)
{
	static char sig[65];
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf auth;

	kf_buf_reset(cr);
	kf_buf_init(&auth, 1 << 16);
	KT_EQ_INT(kf_sigv4_canonical_request(req, cr, &err), 0);
	KT_EQ_INT(kf_sigv4_authorization(req, &ex_creds, &auth, &err), 0);
	/* Cannot truncate: a signature is 64 hex digits. */
	(void)snprintf(sig, sizeof(sig), "%s", sig_of(&auth));
	kf_buf_release(&auth);
	return sig;
}

KT_TEST(sigv4_amz_date)
{
	char d[17];

	kf_sigv4_amz_date(T20150830, d);
	KT_EQ_STR(d, "20150830T123600Z");
	kf_sigv4_amz_date((time_t)0, d);
	KT_EQ_STR(d, "19700101T000000Z");
	kf_sigv4_amz_date((time_t)1700000000, d);
	KT_EQ_STR(d, "20231114T221320Z");
}

KT_TEST(sigv4_get_vanilla)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
	};
	struct kf_sigv4_req req = { "GET",     "/",	 NULL, h,
				    2,	       NULL,	 0,    "us-east-1",
				    "service", T20150830 };
	struct kf_buf cr, sts, auth;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&cr, 1 << 16);
	kf_buf_init(&sts, 1 << 16);
	kf_buf_init(&auth, 1 << 16);
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &cr, &err), 0);
	KT_EQ_STR(kf_buf_str(&cr),
		  "GET\n/\n\nhost:example.amazonaws.com\n"
		  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		  "7852b855");
	KT_EQ_INT(kf_sigv4_string_to_sign(&req, &sts, &err), 0);
	KT_EQ_STR(kf_buf_str(&sts),
		  "AWS4-HMAC-SHA256\n20150830T123600Z\n"
		  "20150830/us-east-1/service/aws4_request\n"
		  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c2529"
		  "2927e63");
	KT_EQ_INT(kf_sigv4_authorization(&req, &ex_creds, &auth, &err), 0);
	KT_EQ_STR(kf_buf_str(&auth),
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "service/aws4_request, SignedHeaders=host;x-amz-date, "
		  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9"
		  "b8aae1d763fbf31");
	/* An empty path is "/". */
	req.path = "";
	kf_buf_reset(&auth);
	KT_EQ_INT(kf_sigv4_authorization(&req, &ex_creds, &auth, &err), 0);
	KT_EQ_STR(sig_of(&auth), "5fa00fa31553b73ebf1942676e86291e8372ff2a22"
				 "60956d9b8aae1d763fbf31");
	kf_buf_release(&cr);
	kf_buf_release(&sts);
	kf_buf_release(&auth);
}

KT_TEST(sigv4_iam_doc_example)
{
	const struct kf_sigv4_header h[] = {
		{ "Content-Type",
		  "application/x-www-form-urlencoded; charset=utf-8" },
		{ "Host", "iam.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
	};
	struct kf_sigv4_req req = {
		"GET",	  "/",	       "Action=ListUsers&Version=2010-05-08",
		h,	  3,	       NULL,
		0,	  "us-east-1", "iam",
		T20150830
	};
	struct kf_buf auth;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&auth, 1 << 16);
	KT_EQ_INT(kf_sigv4_authorization(&req, &ex_creds, &auth, &err), 0);
	KT_CHECK(strstr(kf_buf_str(&auth),
			"SignedHeaders=content-type;host;x-amz-date,") != NULL);
	KT_EQ_STR(sig_of(&auth), "5d672d79c15b13162d9279b0855cfba6789a8edb4c"
				 "82c400e06b5924a6f2b5d7");
	kf_buf_release(&auth);
}

/* Secrets Manager GetSecretValue with a session token, plus its
 * kSigning, checked as Signature == HMAC(kSigning, sts). */
KT_TEST(sigv4_sm_get_secret_value_token)
{
	static const char body[] = "{\"SecretId\": \"app/db\"}";
	const struct kf_sigv4_header h[] = {
		{ "X-Amz-Target", "secretsmanager.GetSecretValue" },
		{ "Content-Type", "application/x-amz-json-1.1" },
		{ "Host", "secretsmanager.us-east-1.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
		{ "X-Amz-Security-Token", "SESSIONTOKENEXAMPLE" },
	};
	struct kf_sigv4_req req = { "POST",
				    "/",
				    NULL,
				    h,
				    5,
				    body,
				    sizeof(body) - 1,
				    "us-east-1",
				    "secretsmanager",
				    T20150830 };
	struct kf_sigv4_creds creds = ex_creds;
	struct kf_buf cr, sts, auth;
	struct kf_err err = KF_ERR_INIT;
	char hash[65], expect[65];
	unsigned char ksig[32], mac[32];
	static const char ksig_hex[] = "a8647fdf0a842ccff61df909a34525b9a41242a"
				       "b8562e430eb0421d125466a37";

	creds.session_token = "SESSIONTOKENEXAMPLE";
	kf_buf_init(&cr, 1 << 16);
	kf_buf_init(&sts, 1 << 16);
	kf_buf_init(&auth, 1 << 16);
	KT_EQ_INT(sizeof(body) - 1, 22);
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &cr, &err), 0);
	KT_CHECK(strstr(kf_buf_str(&cr),
			"\n96ab3eb77e3be78761024a58c002a6044"
			"199bcfbb32f49e358eec8d7e31ae7d7") != NULL);
	kf_sha256_hex(cr.data, cr.len, hash);
	KT_EQ_STR(hash, "9dc8dfe42bfc2fc5fd419b445cd0340a7046e54cc8725775db9"
			"a8f0be7320c14");
	KT_EQ_INT(kf_sigv4_string_to_sign(&req, &sts, &err), 0);
	KT_EQ_INT(kf_sigv4_authorization(&req, &creds, &auth, &err), 0);
	KT_CHECK(strstr(kf_buf_str(&auth),
			"SignedHeaders=content-type;host;x-amz-date;"
			"x-amz-security-token;x-amz-target,") != NULL);
	KT_EQ_STR(sig_of(&auth), "0238af5a59c6dfa39b2836467e4949b6b10117f8ec"
				 "d3d404c77353d1dda2db3a");
	for (int i = 0; i < 32; i++) {
		unsigned v;

		sscanf(ksig_hex + 2 * i, "%2x", &v);
		ksig[i] = (unsigned char)v;
	}
	kf_hmac_sha256(ksig, 32, sts.data, sts.len, mac);
	kf_hex(mac, 32, expect);
	KT_EQ_STR(sig_of(&auth), expect);

	/* A session token that is not among the signed headers is refused. */
	req.nheaders = 4;
	kf_buf_reset(&auth);
	KT_EQ_INT(kf_sigv4_authorization(&req, &creds, &auth, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "SESSIONTOKENEXAMPLE") == NULL);
	KT_EQ_INT(auth.len, 0);
	kf_buf_release(&cr);
	kf_buf_release(&sts);
	kf_buf_release(&auth);
}

/* Secrets Manager ListSecrets to an emulator on a non-default port (the
 * host header keeps the port). */
KT_TEST(sigv4_sm_list_secrets_emulator)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "127.0.0.1:4566" },
		{ "X-Amz-Date", "20150830T123600Z" },
		{ "Content-Type", "application/x-amz-json-1.1" },
		{ "X-Amz-Target", "secretsmanager.ListSecrets" },
	};
	struct kf_sigv4_req req = { "POST",   "/",	   NULL,
				    h,	      4,	   "{}",
				    2,	      "us-east-1", "secretsmanager",
				    T20150830 };
	struct kf_buf cr;
	char hash[65];

	kf_buf_init(&cr, 1 << 16);
	KT_EQ_STR(sign_example(&req, &cr), "60e9acc668b5606badbc6dc636deb05b"
					   "aea4f7f93b53fc6241b4548d04a62a38");
	KT_CHECK(strstr(kf_buf_str(&cr), "\nhost:127.0.0.1:4566\n") != NULL);
	KT_CHECK(strstr(kf_buf_str(&cr),
			"\n44136fa355b3678a1146ad16f7e8649e9"
			"4fb4fc21fe77e8310c060f61caaff8a") != NULL);
	kf_sha256_hex(cr.data, cr.len, hash);
	KT_EQ_STR(hash, "53b8277f81c1ecac38f682165d6b1b8844facc59dd9c4f1c68e"
			"82170fb37f675");
	kf_buf_release(&cr);
}

/* Expected strings and signatures below: botocore SigV4Auth, same inputs
 * (query given to botocore as a list of raw (name, value) pairs). */
KT_TEST(sigv4_query_sorting)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
	};
	struct kf_sigv4_req req = { "GET",
				    "/",
				    "Param2=value2&Param1=value1&b&&a b=z/y&"
				    "Param1=a+b",
				    h,
				    2,
				    NULL,
				    0,
				    "us-east-1",
				    "service",
				    T20150830 };
	struct kf_buf cr;

	kf_buf_init(&cr, 1 << 16);
	KT_EQ_STR(sign_example(&req, &cr), "228b10f55fa97553569bca43ab2caad0"
					   "added8828b6e4d34ae8fdbd1ab345378");
	KT_CHECK(strncmp(kf_buf_str(&cr),
			 "GET\n/\nParam1=a%2Bb&Param1=value1&Param2=value2&"
			 "a%20b=z%2Fy&b=\nhost:",
			 62) == 0);

	/* Sorting is by encoded bytes: upper case before lower case. */
	req.query = "b=1&B=2&a=&a";
	(void)sign_example(&req, &cr);
	KT_CHECK(strncmp(kf_buf_str(&cr), "GET\n/\nB=2&a=&a=&b=1\n", 20) == 0);
	kf_buf_release(&cr);
}

KT_TEST(sigv4_header_folding)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ " My-Header1 ", "  value1  " },
		{ "My-Header2", "\"a   b   c\"" },
		{ "X-Amz-Date", "20150830T123600Z" },
		{ "my-header1", "second\t\tvalue" },
	};
	struct kf_sigv4_req req = { "GET",     "/",	 NULL, h,
				    5,	       NULL,	 0,    "us-east-1",
				    "service", T20150830 };
	struct kf_buf cr;

	kf_buf_init(&cr, 1 << 16);
	KT_EQ_STR(sign_example(&req, &cr), "2dd0af0764a98a6d7dbe53f7ee6fbfe2"
					   "a7f61818388b9c4d27fd67464e28f84a");
	KT_EQ_STR(kf_buf_str(&cr),
		  "GET\n/\n\nhost:example.amazonaws.com\n"
		  "my-header1:value1,second value\nmy-header2:\"a b c\"\n"
		  "x-amz-date:20150830T123600Z\n\n"
		  "host;my-header1;my-header2;x-amz-date\n"
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		  "7852b855");
	kf_buf_release(&cr);
}

KT_TEST(sigv4_path_encoding)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
	};
	struct kf_sigv4_req req = { "GET",     "/a b/%41/caf\xc3\xa9/~x_y-z.w/",
				    NULL,      h,
				    2,	       NULL,
				    0,	       "us-east-1",
				    "service", T20150830 };
	struct kf_buf cr;

	kf_buf_init(&cr, 1 << 16);
	KT_EQ_STR(sign_example(&req, &cr), "ad8583806c8ce1a81bd62515cb895f47"
					   "0dba539d080785ac6c52cbe5d35ae6d3");
	KT_CHECK(strncmp(kf_buf_str(&cr),
			 "GET\n/a%20b/%2541/caf%C3%A9/~x_y-z.w/\n\n", 38) == 0);
	/* Reserved characters inside a segment. */
	req.path = "/k=v;x+y,z:@!$&'()*";
	(void)sign_example(&req, &cr);
	KT_CHECK(strncmp(kf_buf_str(&cr),
			 "GET\n/k%3Dv%3Bx%2By%2Cz%3A%40%21%24%26%27%28%29%2A\n",
			 50) == 0);
	kf_buf_release(&cr);
}

KT_TEST(sigv4_session_token_other_region)
{
	const struct kf_sigv4_header h[] = {
		{ "Host", "secretsmanager.eu-west-3.amazonaws.com" },
		{ "Content-Type", "application/x-amz-json-1.1" },
		{ "X-Amz-Target", "secretsmanager.ListSecrets" },
		{ "X-Amz-Date", "20231114T221320Z" },
		{ "X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLETOKEN/+=" },
	};
	struct kf_sigv4_req req = { "POST",
				    "/",
				    NULL,
				    h,
				    5,
				    "{}",
				    2,
				    "eu-west-3",
				    "secretsmanager",
				    (time_t)1700000000 };
	struct kf_sigv4_creds creds = { "ASIAEXAMPLE", "secretEXAMPLE",
					"FwoGZXIvYXdzEXAMPLETOKEN/+=" };
	struct kf_buf auth;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&auth, 1 << 16);
	KT_EQ_INT(kf_sigv4_authorization(&req, &creds, &auth, &err), 0);
	KT_EQ_STR(kf_buf_str(&auth),
		  "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20231114/eu-west-3/"
		  "secretsmanager/aws4_request, SignedHeaders=content-type;"
		  "host;x-amz-date;x-amz-security-token;x-amz-target, "
		  "Signature=b67fc98c67eb17d878fda4d204b542bb4c1e62f394a2125a5"
		  "8bae4831c5da3be");
	kf_buf_release(&auth);
}

KT_TEST(sigv4_invalid_inputs)
{
	const struct kf_sigv4_header bad_name[] = { { "Ho st", "x" } };
	const struct kf_sigv4_header bad_val[] = { { "Host", "a\r\nX: y" } };
	const struct kf_sigv4_header empty[] = { { "  ", "x" } };
	const struct kf_sigv4_header ok[] = { { "Host", "h" } };
	struct kf_sigv4_req req = { "GET",     "/",	 NULL, bad_name,
				    1,	       NULL,	 0,    "us-east-1",
				    "service", T20150830 };
	struct kf_sigv4_creds nokey = { "AK", "", NULL };
	struct kf_buf out;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&out, 1 << 16);
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &out, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	req.headers = bad_val;
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &out, &err), -1);
	req.headers = empty;
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &out, &err), -1);
	req.nheaders = 0;
	KT_EQ_INT(kf_sigv4_canonical_request(&req, &out, &err), -1);
	req.headers = ok;
	req.nheaders = 1;
	req.region = "";
	KT_EQ_INT(kf_sigv4_string_to_sign(&req, &out, &err), -1);
	req.region = "us-east-1";
	KT_EQ_INT(kf_sigv4_authorization(&req, &nokey, &out, &err), -1);
	KT_EQ_INT(kf_sigv4_authorization(&req, NULL, &out, &err), -1);
	KT_EQ_INT(out.len, 0);
	/* A too-small output buffer fails and is left unchanged. */
	kf_buf_release(&out);
	kf_buf_init(&out, 10);
	KT_EQ_INT(kf_sigv4_authorization(&req, &ex_creds, &out, &err), -1);
	KT_EQ_INT(out.len, 0);
	kf_buf_release(&out);
}
