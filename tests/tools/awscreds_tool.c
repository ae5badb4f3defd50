/*
 * Test driver for the AWS credential chain: resolves it as keyfs would and
 * prints the source, the access key id and the SHA-256 of the secret key
 * and session token.  It never prints a secret key or token itself.
 *   awscreds_tool [-p PROFILE] [-t TIMEOUT_MS] [-g GETS]
 */
#include "aws/creds.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/secret.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct kf_aws_chain_cfg cfg = { NULL, 5000 };
	struct kf_aws_chain *c = NULL;
	struct kf_aws_creds cr = { "", NULL, NULL, 0 };
	struct kf_err err = KF_ERR_INIT;
	char hex[65];
	unsigned long gets = 1;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "p:t:g:")) != -1) {
		switch (opt) {
		case 'p':
			cfg.profile = optarg;
			break;
		case 't':
			cfg.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'g':
			gets = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-p profile] [-t ms] "
				"[-g gets]\n",
				argv[0]);
			return 2;
		}
	}
	kf_json_init();
	if (kf_http_global_init(&err) < 0)
		goto fail;
	if (kf_aws_chain_new(&cfg, &c, &err) < 0)
		goto fail;
	for (unsigned long i = 0; i < gets; i++) {
		kf_aws_creds_release(&cr);
		if (kf_aws_chain_get(c, &cr, &err) < 0)
			goto fail;
	}
	printf("source=%s\n", kf_aws_chain_source(c));
	printf("access_key=%s\n", cr.access_key);
	kf_sha256_hex(cr.secret_key->data, cr.secret_key->len, hex);
	printf("secret_sha256=%s\n", hex);
	if (cr.session_token) {
		kf_sha256_hex(cr.session_token->data, cr.session_token->len,
			      hex);
		printf("token_sha256=%s\n", hex);
	} else {
		printf("token_sha256=none\n");
	}
	printf("expiration=%lld\n", (long long)cr.expiration);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "awscreds_tool: %s: %s%s%s\n", kf_code_name(err.code),
		err.msg, err.provider_code[0] ? " code=" : "",
		err.provider_code);
out:
	kf_aws_creds_release(&cr);
	kf_aws_chain_free(c);
	return rc;
}
