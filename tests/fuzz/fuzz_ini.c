/*
 * libFuzzer target for cloud/core/ini.c: arbitrary bytes as an AWS config or
 * credentials file.  Parse in place, then look up the keys the credential
 * chain (cloud/aws/chain.c, config.c) uses; every entry must point into
 * the text and have a lower-case key.
 */
#include "core/ini.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const struct kf_ini *ini, const char *s)
{
	return s >= ini->text.data && s <= ini->text.data + ini->text.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const sects[] = { "default", "profile dev",
					     "sso-session s", "services x" };
	static const char *const keys[] = {
		"aws_access_key_id",
		"aws_secret_access_key",
		"aws_session_token",
		"region",
		"role_arn",
		"web_identity_token_file",
		"s3.max_concurrent_requests",
		"secretsmanager.endpoint_url",
		"endpoint_url",
	};
	struct kf_ini ini;
	struct kf_err err = KF_ERR_INIT;

	if (size > KF_INI_MAX)
		return 0;
	kf_ini_init(&ini);
	if (size && kf_buf_add(&ini.text, data, size) < 0)
		abort();
	if (kf_ini_parse(&ini, &err) < 0) {
		if (err.code != KF_E_INVALID && err.code != KF_E_NOMEM)
			abort();
	}
	for (size_t i = 0; i < ini.n; i++) {
		const struct kf_ini_ent *e = &ini.ents[i];

		if (!inside(&ini, e->sect) || !inside(&ini, e->val) || !e->key)
			abort();
		for (const char *k = e->key; *k; k++)
			if (isupper((unsigned char)*k))
				abort();
	}
	for (size_t s = 0; s < sizeof(sects) / sizeof(sects[0]); s++) {
		(void)kf_ini_has_section(&ini, sects[s]);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			const char *v = kf_ini_get(&ini, sects[s], keys[k]);

			if (v && !inside(&ini, v))
				abort();
		}
	}
	kf_ini_release(&ini);
	return 0;
}
