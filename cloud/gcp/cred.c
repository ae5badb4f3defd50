/*
 * Google key files and the grants made from them: a service account key
 * (an RS256-signed JWT bearer grant) or authorized_user credentials (a
 * refresh-token grant).  Files are read into sensitive buffers and
 * private keys, client secrets and refresh tokens kept only in kf_secret
 * memory; messages name the file, never its content.
 */
#include "gcp/auth_int.h"
#include "core/crypto.h"
#include "core/file.h"
#include "core/json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define KEYFILE_MAX (1u << 20)

static struct kf_secret *secret_str(const char *s)
{
	size_t n = strlen(s);
	struct kf_secret *x = kf_secret_new(n + 1);

	if (!x)
		return NULL;
	memcpy(x->data, s, n);
	x->data[n] = '\0';
	x->len = n;
	return x;
}

static int load_service_account(struct kf_gcp_auth *a, const json_t *j,
				const char *path, const char *why,
				struct kf_err *err)
{
	const char *email = kf_json_str(j, "client_email");
	const char *pem = kf_json_str(j, "private_key");

	if (!email || !*email || !pem || !*pem)
		return kf_fail(err, KF_E_INVALID,
			       "%s: service account key needs client_email "
			       "and private_key",
			       path);
	if (kf_gcp_copy_str(a->client_email, sizeof(a->client_email), email) ||
	    kf_gcp_copy_str(a->key_id, sizeof(a->key_id),
			    kf_json_str(j, "private_key_id")) ||
	    kf_gcp_copy_str(a->project_id, sizeof(a->project_id),
			    kf_json_str(j, "project_id")))
		return kf_fail(err, KF_E_INVALID, "%s: field too long", path);
	a->private_key = secret_str(pem);
	if (!a->private_key)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	a->kind = KF_GCP_CRED_SERVICE_ACCOUNT;
	/* Names the source in logs: a cut name is harmless. */
	(void)snprintf(a->source, sizeof(a->source),
		       "service account key %s (%s)", path, why);
	return 0;
}

static int load_authorized_user(struct kf_gcp_auth *a, const json_t *j,
				const char *path, const char *why,
				struct kf_err *err)
{
	const char *cid = kf_json_str(j, "client_id");
	const char *cs = kf_json_str(j, "client_secret");
	const char *rt = kf_json_str(j, "refresh_token");

	if (!cid || !cs || !rt || !*rt)
		return kf_fail(err, KF_E_INVALID,
			       "%s: authorized_user needs client_id, "
			       "client_secret and refresh_token",
			       path);
	if (kf_gcp_copy_str(a->client_id, sizeof(a->client_id), cid) < 0)
		return kf_fail(err, KF_E_INVALID, "%s: client_id too long",
			       path);
	a->client_secret = secret_str(cs);
	a->refresh_token = secret_str(rt);
	if (!a->client_secret || !a->refresh_token)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	a->kind = KF_GCP_CRED_AUTHORIZED_USER;
	/* Names the source in logs: a cut name is harmless. */
	(void)snprintf(a->source, sizeof(a->source), "authorized_user %s (%s)",
		       path, why);
	return 0;
}

/* The fields every key file may carry, then its type's own. */
static int load_json(struct kf_gcp_auth *a, const json_t *j, const char *path,
		     const char *why, struct kf_err *err)
{
	const char *type = kf_json_str(j, "type");
	const char *s;

	if (!type)
		return kf_fail(err, KF_E_INVALID, "%s (%s) has no \"type\"",
			       path, why);
	s = kf_json_str(j, "quota_project_id");
	if (s &&
	    kf_gcp_copy_str(a->quota_project, sizeof(a->quota_project), s) < 0)
		a->quota_project[0] = '\0';
	s = kf_json_str(j, "token_uri");
	if (kf_gcp_copy_str(a->token_uri, sizeof(a->token_uri),
			    s && *s ? s : KF_GCP_TOKEN_URI) < 0)
		return kf_fail(err, KF_E_INVALID, "%s: token_uri too long",
			       path);
	if (strcmp(type, "service_account") == 0)
		return load_service_account(a, j, path, why, err);
	if (strcmp(type, "authorized_user") == 0)
		return load_authorized_user(a, j, path, why, err);
	return kf_fail(err, KF_E_NOTSUP,
		       "%s: credential type \"%.40s\" is not supported "
		       "(service_account, authorized_user)",
		       path, type);
}

int kf_gcp_cred_load(struct kf_gcp_auth *a, const char *path, const char *why,
		     struct kf_err *err)
{
	struct kf_buf raw;
	json_t *j = NULL;
	json_error_t jerr;
	int rc = -1;

	kf_buf_init_sensitive(&raw, KEYFILE_MAX);
	if (kf_file_read(path, 0, &raw, err) < 0) {
		/* Present but unreadable or too large: a bad key file. */
		if (err && err->code != KF_E_NOTFOUND)
			err->code = KF_E_INVALID;
		goto out;
	}
	j = json_loadb(kf_buf_str(&raw), raw.len, 0, &jerr);
	if (!json_is_object(j)) {
		/* jerr.text may quote file content: do not pass it on. */
		kf_fail(err, KF_E_INVALID,
			"%s (%s) is not a JSON credentials file", path, why);
		goto out;
	}
	rc = load_json(a, j, path, why, err);
out:
	json_decref(j);
	kf_buf_release(&raw);
	return rc;
}

int kf_gcp_jwt_assertion(const char *pem, size_t pemlen, const char *kid,
			 const char *email, const char *aud, const char *scope,
			 int64_t now, struct kf_buf *out, struct kf_err *err)
{
	json_t *hdr = NULL, *claims = NULL;
	char *hs = NULL, *cs = NULL;
	struct kf_buf input, sig;
	size_t start = out->len;
	int rc = -1;

	kf_buf_init(&input, 64 * 1024);
	kf_buf_init(&sig, 4096);
	hdr = json_pack("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", email, "scope",
			   scope, "aud", aud, "iat", (json_int_t)now, "exp",
			   (json_int_t)(now + 3600));
	if (!hdr || !claims) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	if (kid && *kid && json_object_set_new(hdr, "kid", json_string(kid))) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	hs = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cs = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!hs || !cs || kf_base64url_encode(hs, strlen(hs), &input) < 0 ||
	    kf_buf_add(&input, ".", 1) < 0 ||
	    kf_base64url_encode(cs, strlen(cs), &input) < 0) {
		kf_fail(err, KF_E_NOMEM, "cannot build JWT");
		goto out;
	}
	if (kf_rsa_sha256_sign(pem, pemlen, input.data, input.len, &sig, err) <
	    0)
		goto out;
	if (kf_buf_add(out, input.data, input.len) < 0 ||
	    kf_buf_add(out, ".", 1) < 0 ||
	    kf_base64url_encode(sig.data, sig.len, out) < 0) {
		kf_fail(err, KF_E_NOMEM, "JWT too large");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	kf_json_free(hs);
	kf_json_free(cs);
	json_decref(hdr);
	json_decref(claims);
	kf_buf_release(&input);
	kf_buf_release(&sig);
	return rc;
}

int kf_gcp_cred_grant(const struct kf_gcp_auth *a, struct kf_buf *body,
		      struct kf_err *err)
{
	const struct kf_secret *cs = a->client_secret, *rt = a->refresh_token;

	if (a->kind == KF_GCP_CRED_SERVICE_ACCOUNT) {
		if (kf_buf_adds(body,
				"grant_type=urn%3Aietf%3Aparams%3Aoauth"
				"%3Agrant-type%3Ajwt-bearer&assertion=") < 0)
			return kf_fail(err, KF_E_NOMEM, "out of memory");
		return kf_gcp_jwt_assertion((const char *)a->private_key->data,
					    a->private_key->len, a->key_id,
					    a->client_email, a->token_uri,
					    KF_GCP_SCOPE,
					    (int64_t)kf_gcp_auth_now(), body,
					    err);
	}
	if (kf_buf_adds(body, "grant_type=refresh_token&client_id=") ||
	    kf_buf_add_pct(body, a->client_id, strlen(a->client_id), NULL) ||
	    kf_buf_adds(body, "&client_secret=") ||
	    kf_buf_add_pct(body, cs->data, cs->len, NULL) ||
	    kf_buf_adds(body, "&refresh_token=") ||
	    kf_buf_add_pct(body, rt->data, rt->len, NULL))
		return kf_fail(err, KF_E_NOMEM, "token request too large");
	return 0;
}
