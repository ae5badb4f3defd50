/*
 * libFuzzer target for cloud/aws/xml.c: arbitrary bytes as an STS response,
 * read with every path the STS source (cloud/aws/sources.c) asks for
 * (AssumeRoleWithWebIdentity credentials and ErrorResponse code/message).
 * Checks the contract: the result is -1, 0 or 1 and out never passes its
 * maximum.
 */
#include "aws/xml.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ok_path[] = {
	"AssumeRoleWithWebIdentityResponse",
	"AssumeRoleWithWebIdentityResult",
	"Credentials",
	NULL,
};
static const char *const leaves[] = {
	"AccessKeyId",
	"SecretAccessKey",
	"SessionToken",
	"Expiration",
};
static const char *const err_code[] = { "ErrorResponse", "Error", "Code" };
static const char *const err_msg[] = { "ErrorResponse", "Error", "Message" };

static void one(const char *doc, size_t len, const char *const *path,
		size_t npath, size_t max, int sensitive)
{
	struct kf_buf b;
	int r;

	if (sensitive)
		kf_buf_init_sensitive(&b, max);
	else
		kf_buf_init(&b, max);
	r = kf_xml_text(doc, len, path, npath, &b);
	if (r < -1 || r > 1 || b.len > max)
		abort();
	if (b.data && b.data[b.len] != '\0')
		abort();
	kf_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	const char *path[4] = { ok_path[0], ok_path[1], ok_path[2], NULL };

	/* An exact-size heap copy lets ASan see any read past the end. */
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	for (size_t i = 0; i < size; i++)
		copy[i] = doc[i];
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		path[3] = leaves[i];
		/* sources.c: small plain buffers and sensitive ones */
		one(copy, size, path, 4, 127, 0);
		one(copy, size, path, 4, 16384, 1);
	}
	one(copy, size, path, 3, 4096, 0);
	one(copy, size, err_code, 3, 63, 0);
	one(copy, size, err_msg, 3, 159, 0);
	free(copy);
	return 0;
}
