/*
 * The network credential sources: STS AssumeRoleWithWebIdentity, the
 * ECS/EKS container endpoint and EC2 IMDSv2, each an attempt function run
 * by kf_retry_run() under its own policy.  Tokens, keys and response
 * bodies stay in sensitive buffers and never reach a log line or *err.
 */
#include "aws/sources.h"
#include "aws/config.h"
#include "aws/xml.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/http.h"
#include "core/json.h"
#include "core/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_MAX 20000	     /* STS WebIdentityToken limit */
#define STS_TIMEOUT_MS 10000 /* per STS request when not configured */

/* The SDKs' schedules: STS and container retry transient failures with
 * backoff; IMDS retries at once (attempts come from the environment). */
static const struct kf_retry_policy sts_policy = {
	.attempts = 3,
	.base_ms = 200,
	.cap_ms = 2000,
};
static const struct kf_retry_policy container_policy = {
	.attempts = 3,
	.base_ms = 250,
	.cap_ms = 1000,
};
static const struct kf_retry_policy imds_policy = {
	.attempts = 1,
	.base_ms = 0,
};

/* Network trouble and timeouts are worth another attempt. */
static enum kf_retry_verdict transient(const struct kf_err *e)
{
	return e->code == KF_E_UNAVAILABLE || e->code == KF_E_TIMEOUT ?
		       KF_RETRY_AGAIN :
		       KF_RETRY_FAIL;
}

/* Read a token file into a sensitive buffer, whitespace stripped. */
static int read_token_file(const char *path, struct kf_buf *tok,
			   struct kf_err *err)
{
	struct kf_err ferr = KF_ERR_INIT;
	size_t s = 0, e;

	if (kf_file_read(path, 0, tok, &ferr) < 0) {
		if (ferr.code == KF_E_NOTFOUND)
			return kf_fail(err, KF_E_NOTFOUND,
				       "token file %s is missing", path);
		/* An unreadable token file is an I/O error here. */
		return kf_fail(err,
			       ferr.code == KF_E_DENIED ? KF_E_IO : ferr.code,
			       "%s", ferr.msg);
	}
	e = tok->len;
	while (s < e && isspace((unsigned char)tok->data[s]))
		s++;
	while (e > s && isspace((unsigned char)tok->data[e - 1]))
		e--;
	if (s == e)
		return kf_fail(err, KF_E_INVALID, "token file %s is empty",
			       path);
	memmove(tok->data, tok->data + s, e - s);
	explicit_bzero(tok->data + (e - s), tok->len - (e - s));
	tok->len = e - s;
	tok->data[tok->len] = '\0';
	return 0;
}

/* ---------- STS web identity ---------- */

/* Copy an XML field into a small plain buffer (not for secrets). */
static int xml_field(const char *doc, size_t len, const char *const *path,
		     size_t npath, char *out, size_t outlen)
{
	struct kf_buf b;
	int r;

	kf_buf_init(&b, outlen - 1);
	r = kf_xml_text(doc, len, path, npath, &b);
	out[0] = '\0';
	if (r == 1)
		memcpy(out, kf_buf_str(&b), b.len + 1);
	kf_buf_release(&b);
	return r;
}

/* Make server text safe for a log line: printable ASCII only. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* An STS ErrorResponse (status is not 200) as *err. */
static int sts_error(long status, const char *doc, size_t len,
		     struct kf_err *err)
{
	static const char *const ecode[] = { "ErrorResponse", "Error", "Code" };
	static const char *const emsg[] = { "ErrorResponse", "Error",
					    "Message" };
	char code[64], msg[160];
	enum kf_code kc = KF_E_DENIED;

	if (xml_field(doc, len, ecode, 3, code, sizeof(code)) != 1)
		/* Cannot truncate: "HTTP" and a long fit in 64 bytes. */
		(void)snprintf(code, sizeof(code), "HTTP%ld", status);
	if (xml_field(doc, len, emsg, 3, msg, sizeof(msg)) != 1)
		msg[0] = '\0';
	sanitize(code);
	sanitize(msg);
	if (status >= 500 || status == 429 ||
	    strcmp(code, "IDPCommunicationError") == 0 ||
	    strcmp(code, "Throttling") == 0)
		kc = KF_E_UNAVAILABLE;
	else if (status == 404)
		kc = KF_E_NOTFOUND;
	return kf_fail_provider(err, kc, (int)status, code,
				"STS AssumeRoleWithWebIdentity: %s%s%s", code,
				msg[0] ? ": " : "", msg);
}

/* An STS AssumeRoleWithWebIdentity response into *out. */
static int sts_parse(long status, const char *doc, size_t len,
		     struct kf_aws_creds *out, struct kf_err *err)
{
	const char *path[4] = { "AssumeRoleWithWebIdentityResponse",
				"AssumeRoleWithWebIdentityResult",
				"Credentials", NULL };
	struct kf_buf sk, tok;
	char ak[128], exps[64];
	time_t exp = -1;
	int rc = -1;

	if (status != 200)
		return sts_error(status, doc, len, err);
	kf_buf_init_sensitive(&sk, 4096);
	kf_buf_init_sensitive(&tok, 16384);
	path[3] = "AccessKeyId";
	if (xml_field(doc, len, path, 4, ak, sizeof(ak)) != 1)
		goto bad;
	path[3] = "SecretAccessKey";
	if (kf_xml_text(doc, len, path, 4, &sk) != 1)
		goto bad;
	path[3] = "SessionToken";
	if (kf_xml_text(doc, len, path, 4, &tok) != 1)
		goto bad;
	path[3] = "Expiration";
	if (xml_field(doc, len, path, 4, exps, sizeof(exps)) == 1)
		exp = kf_aws_iso8601(exps);
	if (exp < 0)
		goto bad;
	rc = kf_aws_creds_set(out, ak, kf_buf_str(&sk), sk.len,
			      kf_buf_str(&tok), tok.len, exp, "STS response",
			      err);
	goto out;
bad:
	kf_fail(err, KF_E_IO,
		"STS AssumeRoleWithWebIdentity: malformed "
		"response");
out:
	kf_buf_release(&sk);
	kf_buf_release(&tok);
	return rc;
}

/* One STS call, as kf_retry_run() repeats it. */
struct sts_call {
	const struct kf_aws_source_cfg *s;
	const char *url;
	const struct kf_buf *body; /* sensitive: holds the token */
	struct kf_aws_creds *out;
};

static enum kf_retry_verdict
sts_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
		"Accept: text/xml", NULL
	};
	const struct sts_call *c = ctx;
	struct kf_http_req req = {
		.method = "POST",
		.url = c->url,
		.headers = hdrs,
		.body = c->body->data,
		.body_len = c->body->len,
		.timeout_ms = c->s->timeout_ms ? c->s->timeout_ms :
						 STS_TIMEOUT_MS,
		.max_response = 1u << 20,
	};
	struct kf_http_resp resp;
	int rc;

	kf_http_resp_init(&resp);
	rc = kf_http_do(&req, &resp, err);
	if (rc == 0)
		rc = sts_parse(resp.status, kf_buf_str(&resp.body),
			       resp.body.len, c->out, err);
	kf_http_resp_release(&resp);
	return rc == 0 ? KF_RETRY_OK : transient(err);
}

/* The AssumeRoleWithWebIdentity form body (it holds the token). */
static int sts_form(const struct kf_aws_source_cfg *s, const void *tok,
		    size_t n, struct kf_buf *body, struct kf_err *err)
{
	if (kf_buf_adds(body, "Action=AssumeRoleWithWebIdentity"
			      "&Version=2011-06-15&RoleArn=") < 0 ||
	    kf_buf_add_pct(body, s->role_arn, strlen(s->role_arn), NULL) < 0 ||
	    kf_buf_adds(body, "&RoleSessionName=") < 0 ||
	    kf_buf_add_pct(body, s->session_name, strlen(s->session_name),
			   NULL) < 0 ||
	    kf_buf_adds(body, "&WebIdentityToken=") < 0 ||
	    kf_buf_add_pct(body, tok, n, NULL) < 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

int kf_aws_sts_web_identity(const struct kf_aws_source_cfg *s, const void *tok,
			    size_t n, struct kf_aws_creds *out,
			    struct kf_err *err)
{
	struct kf_buf body;
	char url[1100];
	struct sts_call call = { s, url, &body, out };
	int rc = -1;

	memset(out, 0, sizeof(*out));
	kf_buf_init_sensitive(&body, 3 * TOKEN_MAX + 8192);
	if (n == 0) {
		kf_fail(err, KF_E_INVALID, "web identity token is empty");
		goto out;
	}
	if (n > TOKEN_MAX) {
		kf_fail(err, KF_E_INVALID, "web identity token is too long");
		goto out;
	}
	if ((size_t)snprintf(url, sizeof(url), "%s/", s->sts_url) >=
	    sizeof(url)) {
		kf_fail(err, KF_E_RANGE, "STS URL too long");
		goto out;
	}
	if (sts_form(s, tok, n, &body, err) < 0)
		goto out;
	rc = kf_retry_run(&sts_policy, "aws: STS AssumeRoleWithWebIdentity", 0,
			  sts_attempt, &call, err);
out:
	kf_buf_release(&body);
	return rc;
}

int kf_aws_fetch_web_identity(const struct kf_aws_source_cfg *s,
			      struct kf_aws_creds *out, struct kf_err *err)
{
	struct kf_buf tok;
	int rc = -1;

	kf_buf_init_sensitive(&tok, TOKEN_MAX + 4096);
	if (read_token_file(s->token_file, &tok, err) < 0)
		goto out;
	rc = kf_aws_sts_web_identity(s, tok.data, tok.len, out, err);
out:
	kf_buf_release(&tok);
	return rc;
}

/* ---------- container and IMDS: JSON credentials ---------- */

/*
 * Credentials from a JSON document as the container endpoint and IMDS
 * return it: AccessKeyId, SecretAccessKey, Token, Expiration.
 */
static int creds_from_json(const char *doc, size_t len, const char *what,
			   int need_token, struct kf_aws_creds *out,
			   struct kf_err *err)
{
	json_t *root = json_loadb(doc, len, 0, NULL);
	const char *ak, *sk, *code, *exp, *tk;
	json_t *tok;
	time_t t = 0;
	int rc = -1;

	if (!json_is_object(root)) {
		kf_fail(err, KF_E_IO, "%s: response is not a JSON object",
			what);
		goto out;
	}
	code = kf_json_str(root, "Code");
	if (code && strcmp(code, "Success") != 0) {
		kf_fail(err, KF_E_DENIED, "%s: Code is not Success", what);
		goto out;
	}
	ak = kf_json_str(root, "AccessKeyId");
	sk = kf_json_str(root, "SecretAccessKey");
	exp = kf_json_str(root, "Expiration");
	tok = json_object_get(root, "Token");
	if (!ak || !sk || (tok && !json_is_null(tok) && !json_is_string(tok)) ||
	    (need_token && !json_is_string(tok))) {
		kf_fail(err, KF_E_IO, "%s: credentials missing in response",
			what);
		goto out;
	}
	if (exp)
		t = kf_aws_iso8601(exp);
	if (t < 0 || (!exp && need_token)) {
		kf_fail(err, KF_E_IO, "%s: %s", what,
			exp ? "bad Expiration" : "Expiration missing");
		goto out;
	}
	/* Strings hold no NUL: json_loadb refuses \u0000 without
	 * JSON_ALLOW_NUL. */
	tk = json_is_string(tok) ? json_string_value(tok) : NULL;
	rc = kf_aws_creds_set(out, ak, sk, strlen(sk), tk, tk ? strlen(tk) : 0,
			      t, what, err);
out:
	json_decref(root);
	return rc;
}

/* ---------- container ---------- */

/*
 * The "Authorization: TOKEN" header line into auth (sensitive) from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else ..._TOKEN; auth stays empty
 * when neither is set.
 */
static int container_auth(struct kf_buf *auth, struct kf_err *err)
{
	const char *tfile, *tenv;
	struct kf_buf tok;
	int rc = -1;

	tfile = kf_aws_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	tenv = kf_aws_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	kf_buf_init_sensitive(&tok, 16000);
	if (tfile) {
		if (read_token_file(tfile, &tok, err) < 0)
			goto out;
	} else if (tenv && kf_buf_adds(&tok, tenv) < 0) {
		kf_fail(err, KF_E_INVALID,
			"container authorization token "
			"is too long");
		goto out;
	}
	if (tok.len && (memchr(tok.data, '\r', tok.len) ||
			memchr(tok.data, '\n', tok.len))) {
		kf_fail(err, KF_E_INVALID,
			"container authorization token "
			"contains a line break");
		goto out;
	}
	if (tok.len && (kf_buf_adds(auth, "Authorization: ") < 0 ||
			kf_buf_add(auth, tok.data, tok.len) < 0)) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&tok);
	return rc;
}

/* One container endpoint call, as kf_retry_run() repeats it. */
struct container_call {
	const char *url;
	const char *const *hdrs;
	struct kf_aws_creds *out;
};

static enum kf_retry_verdict
container_attempt(void *ctx, const struct kf_retry_attempt *at,
		  struct kf_err *err)
{
	const struct container_call *c = ctx;
	struct kf_http_req req = {
		.method = "GET",
		.url = c->url,
		.headers = c->hdrs,
		.timeout_ms = 2000,
		.connect_timeout_ms = 1000,
		.max_response = 1u << 16,
		.allow_metadata_ip = 1,
	};
	struct kf_http_resp resp;
	enum kf_retry_verdict v;
	long st;

	kf_http_resp_init(&resp);
	if (kf_http_do(&req, &resp, err) < 0) {
		v = transient(err);
		goto out;
	}
	st = resp.status;
	if (st == 200) {
		v = creds_from_json(kf_buf_str(&resp.body), resp.body.len,
				    "container credentials", 0, c->out,
				    err) == 0 ?
			    KF_RETRY_OK :
			    KF_RETRY_FAIL;
		goto out;
	}
	kf_fail_provider(err,
			 st == 401 || st == 403 ? KF_E_DENIED :
			 st >= 500		? KF_E_UNAVAILABLE :
						  KF_E_IO,
			 (int)st, NULL,
			 "container credentials endpoint answered HTTP %ld",
			 st);
	v = transient(err);
out:
	kf_http_resp_release(&resp);
	return v;
}

int kf_aws_fetch_container(const struct kf_aws_source_cfg *s,
			   struct kf_aws_creds *out, struct kf_err *err)
{
	const char *hdrs[3] = { "Accept: application/json", NULL, NULL };
	struct container_call call = { s->url, hdrs, out };
	struct kf_buf auth;
	int rc = -1;

	kf_buf_init_sensitive(&auth, 16384);
	if (container_auth(&auth, err) < 0)
		goto out;
	if (auth.len)
		hdrs[1] = auth.data;
	rc = kf_retry_run(&container_policy, "aws: container credentials", 0,
			  container_attempt, &call, err);
out:
	kf_buf_release(&auth);
	return rc;
}

/* ---------- EC2 IMDSv2 ---------- */

/*
 * One IMDS request to base URL + path + leaf (leaf may be NULL), with
 * extra_hdr and the session token header when tok is set.
 */
static int imds_do(const struct kf_aws_source_cfg *s, const char *method,
		   const char *path, const char *leaf, const char *extra_hdr,
		   const char *tok, struct kf_http_resp *resp,
		   struct kf_err *err)
{
	const char *hdrs[3] = { extra_hdr, NULL, NULL };
	unsigned tmo = 1000u * kf_aws_env_uint("AWS_METADATA_SERVICE_TIMEOUT",
					       1, 60, 1);
	struct kf_buf url, th;
	int rc = -1;

	kf_buf_init(&url, 4096);
	kf_buf_init_sensitive(&th, 4096);
	if (kf_buf_addf(&url, "%s%s%s", s->url, path, leaf ? leaf : "") < 0 ||
	    (tok &&
	     kf_buf_addf(&th, "x-aws-ec2-metadata-token: %s", tok) < 0)) {
		kf_fail(err, KF_E_RANGE, "IMDS URL or token too long");
		goto out;
	}
	if (tok)
		hdrs[extra_hdr ? 1 : 0] = th.data;
	{
		struct kf_http_req req = {
			.method = method,
			.url = url.data,
			.headers = hdrs,
			.timeout_ms = tmo + 1000,
			.connect_timeout_ms = tmo,
			.max_response = 1u << 16,
			.allow_metadata_ip = 1,
		};

		rc = kf_http_do(&req, resp, err);
	}
out:
	kf_buf_release(&url);
	kf_buf_release(&th);
	return rc;
}

/*
 * The IMDSv2 session token into tok; tok stays empty when IMDS refuses
 * tokens and IMDSv1 is allowed.
 */
static int imds_token(const struct kf_aws_source_cfg *s, struct kf_buf *tok,
		      struct kf_err *err)
{
	struct kf_http_resp resp;
	int rc = -1;

	kf_http_resp_init(&resp);
	if (imds_do(s, "PUT", "/latest/api/token", NULL,
		    "x-aws-ec2-metadata-token-ttl-seconds: 21600", NULL, &resp,
		    err) < 0)
		goto out;
	if (resp.status == 200 && resp.body.len > 0) {
		if (kf_buf_add(tok, resp.body.data, resp.body.len) < 0) {
			kf_fail(err, KF_E_IO, "IMDS token too long");
			goto out;
		}
	} else if (resp.status == 403 || resp.status == 404 ||
		   resp.status == 405) {
		if (kf_aws_env_true("AWS_EC2_METADATA_V1_DISABLED")) {
			kf_fail(err, KF_E_DENIED,
				"IMDSv2 token refused and "
				"IMDSv1 is disabled");
			goto out;
		}
	} else {
		kf_fail_provider(err, KF_E_UNAVAILABLE, (int)resp.status, NULL,
				 "IMDS token request answered HTTP %ld",
				 resp.status);
		goto out;
	}
	rc = 0;
out:
	kf_http_resp_release(&resp);
	return rc;
}

#define IMDS_CREDS "/latest/meta-data/iam/security-credentials/"

/* The instance role's name (first line of the listing) into role[256]. */
static int imds_role(const struct kf_aws_source_cfg *s, const char *tok,
		     char role[256], struct kf_err *err)
{
	struct kf_http_resp resp;
	size_t n;
	int rc = -1;

	kf_http_resp_init(&resp);
	if (imds_do(s, "GET", IMDS_CREDS, NULL, NULL, tok, &resp, err) < 0)
		goto out;
	if (resp.status != 200) {
		kf_fail_provider(err,
				 resp.status == 404 ? KF_E_NOTFOUND :
						      KF_E_UNAVAILABLE,
				 (int)resp.status, NULL,
				 "IMDS has no instance role (HTTP %ld)",
				 resp.status);
		goto out;
	}
	n = strcspn(kf_buf_str(&resp.body), "\r\n");
	if (n == 0 || n >= 256) {
		kf_fail(err, KF_E_NOTFOUND, "IMDS has no instance role");
		goto out;
	}
	memcpy(role, resp.body.data, n);
	role[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)role[i]) &&
		    !strchr("+=,.@_-", role[i])) {
			kf_fail(err, KF_E_IO, "IMDS role name is malformed");
			goto out;
		}
	}
	rc = 0;
out:
	kf_http_resp_release(&resp);
	return rc;
}

/* One IMDS round (token, role, credentials), as kf_retry_run() repeats
 * it; a refusal (INVALID, DENIED) ends the attempts. */
struct imds_call {
	const struct kf_aws_source_cfg *s;
	struct kf_aws_creds *out;
};

static enum kf_retry_verdict
imds_attempt(void *ctx, const struct kf_retry_attempt *at, struct kf_err *err)
{
	const struct imds_call *c = ctx;
	struct kf_http_resp resp;
	struct kf_buf tok;
	const char *t;
	char role[256];
	int rc = -1;

	kf_http_resp_init(&resp);
	kf_buf_init_sensitive(&tok, 4096);
	if (imds_token(c->s, &tok, err) < 0)
		goto out;
	t = tok.len ? tok.data : NULL;
	if (imds_role(c->s, t, role, err) < 0 ||
	    imds_do(c->s, "GET", IMDS_CREDS, role, NULL, t, &resp, err) < 0)
		goto out;
	if (resp.status != 200) {
		kf_fail_provider(err, KF_E_UNAVAILABLE, (int)resp.status, NULL,
				 "IMDS credentials request answered HTTP %ld",
				 resp.status);
		goto out;
	}
	rc = creds_from_json(kf_buf_str(&resp.body), resp.body.len,
			     "IMDS credentials", 1, c->out, err);
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&tok);
	if (rc == 0)
		return KF_RETRY_OK;
	return err->code == KF_E_INVALID || err->code == KF_E_DENIED ?
		       KF_RETRY_FAIL :
		       KF_RETRY_AGAIN;
}

int kf_aws_fetch_imds(const struct kf_aws_source_cfg *s,
		      struct kf_aws_creds *out, struct kf_err *err)
{
	struct kf_retry_policy p = imds_policy;
	struct imds_call call = { s, out };

	p.attempts =
		kf_aws_env_uint("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 10, 1);
	return kf_retry_run(&p, "aws: IMDS credentials", 0, imds_attempt, &call,
			    err);
}
