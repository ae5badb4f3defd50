/*
 * Cloud KMS encrypt and decrypt with gcloud's CRC32C integrity procedure:
 * each request carries the CRC32C of its data and of its additional
 * authenticated data (empty unless the caller binds the ciphertext to a
 * context), the server confirms it checked them, and each answer's
 * checksum is verified before its bytes are used.  Plaintext lives only in sensitive buffers
 * and kf_secret, and is never logged or put in an error message.
 */
#include "gcp/kms.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/retry.h"

#include <stdio.h>
#include <string.h>

/*
 * An answer that fails verification is discarded and the request sent
 * again at once, as gcloud does, up to 3 times in all; each request has
 * its own retries and deadline (kf_gcp_kms_call).
 */
static const struct kf_retry_policy integrity_policy = {
	.attempts = 3,
};

/* Does name denote key or one of its versions? */
static int name_matches(const char *name, const char *key)
{
	size_t n = strlen(key);

	if (!name)
		return 0;
	if (strcmp(name, key) == 0)
		return 1;
	return strncmp(name, key, n) == 0 &&
	       strncmp(name + n, "/cryptoKeyVersions/", 19) == 0 &&
	       name[n + 19] != '\0';
}

static int check_encrypt(json_t *j, const char *key, struct kf_buf *ct,
			 struct kf_err *err)
{
	const char *name = kf_json_str(j, "name");
	const char *b64 = kf_json_str(j, "ciphertext");
	uint32_t want;

	if (!name_matches(name, key))
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: response names another key");
	if (!json_is_true(json_object_get(j, "verifiedPlaintextCrc32c")) ||
	    !json_is_true(
		    json_object_get(j,
				    "verifiedAdditionalAuthenticatedDataCrc32c")))
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: request checksums not "
			       "verified by the server");
	if (!b64 || !*b64 || kf_base64_decode(b64, strlen(b64), ct) < 0 ||
	    ct->len == 0)
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: malformed ciphertext");
	if (kf_json_u32(j, "ciphertextCrc32c", &want) < 0 ||
	    !json_object_get(j, "ciphertextCrc32c") ||
	    kf_crc32c(0, ct->data, ct->len) != want)
		return kf_fail(err, KF_E_INTEGRITY,
			       "Cloud KMS encrypt: response corrupted in "
			       "transit (ciphertextCrc32c mismatch)");
	return 0;
}

/*
 * The body of an encrypt or decrypt request as gcloud sends it: field
 * (base64) with its CRC32C, the AAD (omitted when empty) and its CRC32C,
 * so the server checks both and says so in verified*Crc32c; its CRC32C
 * fields are decimal strings, as proto3 maps int64 to JSON.
 */
static int crc_request(struct kf_buf *body, const char *field,
		       const unsigned char *data, size_t n,
		       const unsigned char *aad, size_t aadlen)
{
	if (kf_buf_addf(body, "{\"%s\":\"", field) < 0 ||
	    kf_base64_encode(data, n, body) < 0 ||
	    kf_buf_addf(body, "\",\"%sCrc32c\":\"%u\",", field,
			(unsigned)kf_crc32c(0, data, n)) < 0)
		return -1;
	if (aadlen &&
	    (kf_buf_adds(body, "\"additionalAuthenticatedData\":\"") < 0 ||
	     kf_base64_encode(aad, aadlen, body) < 0 ||
	     kf_buf_adds(body, "\",") < 0))
		return -1;
	if (kf_buf_addf(body, "\"additionalAuthenticatedDataCrc32c\":\"%u\"}",
			(unsigned)kf_crc32c(0, aad, aadlen)) < 0)
		return -1;
	return 0;
}

/* One request whose answer must pass a check, sent up to 3 times. */
struct checked {
	const char *what; /* "Cloud KMS encrypt", for the log */
	struct kf_gcp_kms *k;
	const char *path;
	const struct kf_buf *body;
	int (*check)(json_t *j, void *arg, struct kf_err *err);
	void *arg;
	json_t *j; /* the last answer (the accepted one on 0) */
};

static enum kf_retry_verdict checked_attempt(void *ctx,
					     const struct kf_retry_attempt *at,
					     struct kf_err *err)
{
	struct checked *c = ctx;

	json_decref(c->j);
	c->j = NULL;
	if (kf_gcp_kms_call(c->k, "POST", c->path, c->body, KF_GCP_RETRY, &c->j,
			    err) < 0)
		return KF_RETRY_FAIL;
	if (c->check(c->j, c->arg, err) == 0)
		return KF_RETRY_OK;
	kf_log(KF_LOG_WARN, "gcp: %s (attempt %u)", err->msg, at->n + 1);
	return KF_RETRY_AGAIN;
}

/*
 * POST body to path and verify the answer with check(answer, arg, err),
 * discarding and re-sending a corrupted one.  0 with the accepted answer
 * in c->j (caller decrefs it, on -1 too), or -1: the request's own error,
 * or the last check's (KF_E_INTEGRITY) after 3 answers failed.
 */
static int call_checked(struct checked *c, struct kf_err *err)
{
	return kf_retry_run(&integrity_policy, c->what, 0, checked_attempt, c,
			    err);
}

struct encrypted {
	const char *key;
	struct kf_buf *raw; /* the decoded ciphertext */
};

static int encrypt_ok(json_t *j, void *arg, struct kf_err *err)
{
	struct encrypted *e = arg;

	kf_buf_reset(e->raw);
	return check_encrypt(j, e->key, e->raw, err);
}

int kf_gcp_kms_encrypt(struct kf_gcp_kms *k, const char *key, const void *pt,
		       size_t n, struct kf_buf *ct, char *used, size_t usedlen,
		       struct kf_err *err)
{
	return kf_gcp_kms_encrypt_aad(k, key, pt, n, NULL, 0, ct, used, usedlen,
				      err);
}

int kf_gcp_kms_encrypt_aad(struct kf_gcp_kms *k, const char *key,
			   const void *pt, size_t n, const void *aad,
			   size_t aadlen, struct kf_buf *ct, char *used,
			   size_t usedlen, struct kf_err *err)
{
	struct kf_buf body, path, raw;
	struct encrypted e = { key, &raw };
	struct checked c = { .what = "Cloud KMS encrypt",
			     .k = k,
			     .body = &body,
			     .check = encrypt_ok,
			     .arg = &e };
	struct kf_err local = KF_ERR_INIT;
	int rc = -1;

	if (!err)
		err = &local;
	kf_buf_init_sensitive(&body, 4 * (KF_GCP_KMS_MAX_PLAINTEXT +
					  KF_GCP_KMS_MAX_AAD));
	kf_buf_init(&path, 4096);
	kf_buf_init(&raw, 4 * KF_GCP_KMS_MAX_PLAINTEXT);
	if (n == 0 || n > KF_GCP_KMS_MAX_PLAINTEXT) {
		kf_fail(err, n ? KF_E_TOOBIG : KF_E_INVALID,
			"Cloud KMS encrypt: plaintext must be 1..%d bytes",
			KF_GCP_KMS_MAX_PLAINTEXT);
		goto out;
	}
	if (aadlen > KF_GCP_KMS_MAX_AAD) {
		kf_fail(err, KF_E_TOOBIG,
			"Cloud KMS encrypt: additional authenticated data "
			"over %d bytes",
			KF_GCP_KMS_MAX_AAD);
		goto out;
	}
	if (crc_request(&body, "plaintext", pt, n, aad, aadlen) < 0 ||
	    kf_buf_addf(&path, "%s:encrypt", key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	c.path = kf_buf_str(&path);
	if (call_checked(&c, err) < 0)
		goto out;
	if (kf_buf_add(ct, raw.data, raw.len) < 0) {
		kf_fail(err, KF_E_NOMEM, "ciphertext too large");
		goto out;
	}
	if (used && snprintf(used, usedlen, "%s", kf_json_str(c.j, "name")) >=
			    (int)usedlen)
		used[0] = '\0';
	rc = 0;
out:
	json_decref(c.j);
	kf_buf_release(&body);
	kf_buf_release(&path);
	kf_buf_release(&raw);
	return rc;
}

/* Decode and verify a decrypt answer; on any failure nothing survives. */
static int check_decrypt(json_t *j, void *arg, struct kf_err *err)
{
	struct kf_secret **pt = arg;
	const char *b64 = kf_json_str(j, "plaintext");
	struct kf_buf raw;
	uint32_t want;
	int rc = -1;

	kf_buf_init_sensitive(&raw, KF_GCP_KMS_MAX_PLAINTEXT + 16);
	/*
	 * KMS only encrypts 1..65536 bytes (an empty value never reaches it),
	 * so an answer without plaintext or checksum ("{}", an empty 200
	 * body) is damaged, not an empty secret.  Found by fuzz_kms_json.
	 */
	if (!b64 || !*b64 || !json_object_get(j, "plaintextCrc32c") ||
	    kf_base64_decode(b64, strlen(b64), &raw) < 0 || raw.len == 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: malformed plaintext");
		goto out;
	}
	if (kf_json_u32(j, "plaintextCrc32c", &want) < 0 ||
	    kf_crc32c(0, raw.data, raw.len) != want) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: response corrupted in transit "
			"(plaintextCrc32c mismatch)");
		goto out;
	}
	*pt = kf_secret_dup(raw.data, raw.len);
	if (!*pt) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&raw);
	return rc;
}

int kf_gcp_kms_decrypt(struct kf_gcp_kms *k, const char *key, const void *ct,
		       size_t n, struct kf_secret **pt, struct kf_err *err)
{
	return kf_gcp_kms_decrypt_aad(k, key, ct, n, NULL, 0, pt, err);
}

int kf_gcp_kms_decrypt_aad(struct kf_gcp_kms *k, const char *key,
			   const void *ct, size_t n, const void *aad,
			   size_t aadlen, struct kf_secret **pt,
			   struct kf_err *err)
{
	struct kf_buf body, path;
	struct checked c = { .what = "Cloud KMS decrypt",
			     .k = k,
			     .body = &body,
			     .check = check_decrypt,
			     .arg = pt };
	struct kf_err local = KF_ERR_INIT;
	int rc = -1;

	if (!err)
		err = &local;
	*pt = NULL;
	kf_buf_init(&body,
		    4 * (KF_GCP_KMS_MAX_CIPHERTEXT + KF_GCP_KMS_MAX_AAD));
	kf_buf_init(&path, 4096);
	if (n == 0 || n > KF_GCP_KMS_MAX_CIPHERTEXT) {
		kf_fail(err, KF_E_INTEGRITY,
			"Cloud KMS decrypt: ciphertext of %zu bytes is not "
			"valid",
			n);
		goto out;
	}
	if (aadlen > KF_GCP_KMS_MAX_AAD) {
		kf_fail(err, KF_E_INVALID,
			"Cloud KMS decrypt: additional authenticated data "
			"over %d bytes",
			KF_GCP_KMS_MAX_AAD);
		goto out;
	}
	if (crc_request(&body, "ciphertext", ct, n, aad, aadlen) < 0 ||
	    kf_buf_addf(&path, "%s:decrypt", key) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build request");
		goto out;
	}
	c.path = kf_buf_str(&path);
	rc = call_checked(&c, err);
	/* The store refused the ciphertext: it is damaged, not the call. */
	if (rc < 0 && kf_err_is(err, KF_R_BAD_CIPHERTEXT))
		err->code = KF_E_INTEGRITY;
out:
	json_decref(c.j);
	kf_buf_release(&body);
	kf_buf_release(&path);
	return rc;
}
