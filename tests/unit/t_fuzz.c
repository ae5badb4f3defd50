/*
 * Regression tests for bugs the libFuzzer targets in tests/fuzz/ found.
 * Each case replays the crashing input (also kept in the seed corpus)
 * through the module's public interface.  Some only fail under
 * `make SAN=address,undefined`, the build that showed them.
 */
#include "kt.h"

#include "aws/sm.h"
#include "gcp/auth.h"
#include "gcp/kms.h"
#include "core/http.h"
#include "core/ini.h"

#include <stdio.h>

/* fuzz_ini: an empty file left text.data NULL and kf_ini_parse computed
 * NULL + 0 (undefined behaviour, UBSan abort).  corpus/ini/empty */
KT_TEST(fuzz_ini_empty_file)
{
	struct kf_ini ini;
	struct kf_err err = KF_ERR_INIT;

	kf_ini_init(&ini);
	KT_EQ_INT(kf_ini_parse(&ini, &err), 0);
	KT_EQ_INT(ini.n, 0);
	KT_CHECK(kf_ini_get(&ini, "default", "region") == NULL);
	KT_EQ_INT(kf_ini_has_section(&ini, "default"), 0);
	kf_ini_release(&ini);
}

/* ---- fuzz_kms_json: Cloud KMS answers through the transport seam */

static const char *kms_answer; /* body of every KMS call (status 200) */
static int kms_calls;

static int kms_fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		    struct kf_err *err)
{
	(void)err;
	resp->status = 200;
	if (strstr(req->url, "/token"))
		return kf_buf_adds(&resp->body,
				   "{\"access_token\":\"t\",\"expires_in\":"
				   "3600,\"token_type\":\"Bearer\"}");
	kms_calls++;
	return kf_buf_adds(&resp->body, kms_answer);
}

/*
 * A 200 decrypt answer with an empty body, "{}", or no checksum was
 * accepted as an empty plaintext (0 == CRC32C of nothing), so a damaged
 * answer read back as an empty secret.  KMS never encrypts an empty value,
 * so each is KF_E_INTEGRITY now.  corpus/kms_json/regress_decrypt_*
 */
KT_TEST(fuzz_kms_decrypt_empty_answer)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{\"plaintext\":\"\"}",
		"{\"plaintext\":\"\",\"plaintextCrc32c\":\"0\"}",
		"{\"plaintextCrc32c\":\"0\"}",
	};
	struct kf_gcp_auth_cfg cfg = { NULL, 1000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_gcp_kms k;
	struct kf_secret *pt = NULL;
	struct kf_err err = KF_ERR_INIT;
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/adc.json", kt_tmpdir());
	f = fopen(path, "w");
	KT_CHECK(f != NULL);
	if (!f)
		return;
	fputs("{\"type\":\"authorized_user\",\"client_id\":\"c\","
	      "\"client_secret\":\"s\",\"refresh_token\":\"r\"}",
	      f);
	fclose(f);
	cfg.credentials = path;
	kf_http_set_transport(kms_fake);
	KT_EQ_INT(kf_gcp_auth_new(&cfg, &a, &err), 0);
	KT_EQ_INT(kf_gcp_kms_init(&k, "http://127.0.0.1:9", a, 5000, &err), 0);
	k.backoff_ms = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kms_answer = bad[i];
		kms_calls = 0;
		KT_EQ_INT(kf_gcp_kms_decrypt(&k,
					     "projects/p/locations/l/"
					     "keyRings/r/cryptoKeys/k",
					     "ct", 2, &pt, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
		KT_CHECK(pt == NULL);
		KT_CHECK(kms_calls >= 1);
	}
	/* The well-formed answer still works ("hello", CRC32C 2591144780). */
	kms_answer = "{\"plaintext\":\"aGVsbG8=\",\"plaintextCrc32c\":"
		     "\"2591144780\"}";
	KT_EQ_INT(kf_gcp_kms_decrypt(&k,
				     "projects/p/locations/l/keyRings/r/"
				     "cryptoKeys/k",
				     "ct", 2, &pt, &err),
		  0);
	KT_CHECK(pt && pt->len == 5 && memcmp(pt->data, "hello", 5) == 0);
	kf_secret_free(pt);
	kf_gcp_auth_free(a);
	kf_http_set_transport(NULL);
}

/* ---- fuzz_aws_sm_json: Secrets Manager answers through the seam */

static int all_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/*
 * The error type (__type, "code", the XML <Code>) went into err.msg and
 * provider_code unsanitised, so a reply could put newlines and escape
 * sequences into the log; the message was already sanitised.  The type
 * is printable ASCII now.  corpus/aws_sm_json/regress_xml_code_newline
 */
KT_TEST(fuzz_aws_sm_error_type_printable)
{
	static const char xml[] =
		"<ErrorResponse><Errors><Error><Code>Signatu\n<Error"
		"\x1b[31m</Code><Message>m</Message></Error></Errors>"
		"</ErrorResponse>";
	static const char js[] =
		"{\"__type\":\"Bad\\u0007Type\\nX\",\"message\":\"m\"}";
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_aws_sm_classify("GetSecretValue", 403, xml,
				     sizeof(xml) - 1, &err),
		  KF_AWS_SM_FAIL);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_CHECK(all_printable(err.msg));
	KT_CHECK(all_printable(err.provider_code));
	KT_CHECK(strstr(err.msg, "Signatu") != NULL);
	kf_err_clear(&err);
	KT_EQ_INT(kf_aws_sm_classify("ListSecrets", 400, js, sizeof(js) - 1,
				     &err),
		  KF_AWS_SM_FAIL);
	KT_EQ_INT(err.code, KF_E_IO);
	KT_CHECK(all_printable(err.msg));
	KT_CHECK(all_printable(err.provider_code));
	KT_CHECK(strstr(err.provider_code, "Bad") != NULL);
}
