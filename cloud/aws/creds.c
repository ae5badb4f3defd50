/*
 * The AWS credential chain (botocore's order), shared config/credentials
 * file parsing, region and endpoint resolution.  Secret keys and tokens
 * only ever live in kf_secret or sensitive buffers; logs and error
 * messages name the source, never a value.
 */
#include "aws/creds.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/http.h"
#include "aws/ini.h"
#include "core/log.h"
#include "aws/xml.h"
#include "core/clock.h"
#include "core/retry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADVISORY_S (15 * 60)	/* refresh early, others keep using old */
#define MANDATORY_S (10 * 60)	/* below this, callers wait for fresh ones */
#define RETRY_AFTER_S 30	/* pause after a failed advisory refresh */
#define MARGIN_S 60		/* still good enough to hand out */
#define TOKEN_MAX 20000		/* STS WebIdentityToken limit */
#define IMDS_DEFAULT "http://169.254.169.254"
#define ECS_HOST "http://169.254.170.2"

enum src_kind {
	SRC_ENV,
	SRC_CRED_FILE,		/* static keys in the credentials file */
	SRC_CONFIG_FILE,	/* static keys in the config file */
	SRC_WEB_IDENTITY,
	SRC_CONTAINER,
	SRC_IMDS,
};

struct kf_aws_chain {
	/* Set by kf_aws_chain_new, read-only afterwards. */
	enum src_kind kind;
	char source[160];
	unsigned timeout_ms;
	char *profile;
	char *cred_path, *config_path;
	char *role_arn, *session_name, *token_file, *sts_url;
	char *url;		/* container or IMDS base URL */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* refresh finished; uses lock */
	struct kf_aws_creds cur;	/* protected by lock */
	int have;			/* protected by lock */
	int invalid;			/* protected by lock */
	int refreshing;			/* protected by lock */
	unsigned long gen;		/* protected by lock: refreshes done */
	struct kf_err last_err;		/* protected by lock */
	time_t retry_after;		/* protected by lock */
};

/* ---------- small helpers ---------- */

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int env_true(const char *name)
{
	const char *v = env(name);

	return v && strcasecmp(v, "true") == 0;
}

/* "~/x" → "$HOME/x"; NULL when out of memory or no home. */
static char *expand_home(const char *p)
{
	struct kf_buf b;
	const char *home;

	if (p[0] != '~' || (p[1] != '/' && p[1] != '\0'))
		return strdup(p);
	home = env("HOME");
	if (!home) {
		struct passwd pw, *res = NULL;
		static __thread char pwbuf[1024];

		if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) ||
		    !res)
			return NULL;
		home = res->pw_dir;
	}
	kf_buf_init(&b, 4096);
	if (kf_buf_addf(&b, "%s%s", home, p + 1) < 0) {
		kf_buf_release(&b);
		return NULL;
	}
	return kf_buf_detach(&b, NULL);
}

static char *cred_file_path(void)
{
	const char *p = env("AWS_SHARED_CREDENTIALS_FILE");

	return expand_home(p ? p : "~/.aws/credentials");
}

static char *config_file_path(void)
{
	const char *p = env("AWS_CONFIG_FILE");

	return expand_home(p ? p : "~/.aws/config");
}

/* cfg profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default". */
static const char *profile_name(const char *profile, int *explicit_)
{
	const char *p = profile && *profile ? profile : NULL;

	if (!p)
		p = env("AWS_PROFILE");
	if (!p)
		p = env("AWS_DEFAULT_PROFILE");
	*explicit_ = p != NULL;
	return p ? p : "default";
}

/*
 * The config-file section of a profile: "profile NAME" (also for
 * default, which takes precedence as in botocore) or "default".  Returns
 * a pointer into ini or a static string; NULL when absent.
 */
static const char *config_section(const struct kf_ini *ini, const char *name)
{
	for (size_t i = 0; i < ini->n; i++) {
		const char *s = ini->ents[i].sect;

		if (strncmp(s, "profile", 7) == 0 &&
		    (s[7] == ' ' || s[7] == '\t')) {
			s += 7;
			while (*s == ' ' || *s == '\t')
				s++;
			if (strcmp(s, name) == 0)
				return ini->ents[i].sect;
		}
	}
	if (strcmp(name, "default") == 0 && kf_ini_has_section(ini, "default"))
		return "default";
	return NULL;
}

/* Value of key in profile name of the config file. */
static const char *config_get(const struct kf_ini *cfg, const char *name,
			      const char *key)
{
	const char *sect = config_section(cfg, name);

	return sect ? kf_ini_get(cfg, sect, key) : NULL;
}

/* ---------- credentials ---------- */

void kf_aws_creds_release(struct kf_aws_creds *c)
{
	if (!c)
		return;
	kf_secret_free(c->secret_key);
	kf_secret_free(c->session_token);
	c->secret_key = NULL;
	c->session_token = NULL;
	explicit_bzero(c->access_key, sizeof(c->access_key));
	c->expiration = 0;
}

/* Fill *out from text values (copied into secret memory). */
static int creds_set(struct kf_aws_creds *out, const char *ak,
		     const char *sk, size_t sklen, const char *tok,
		     size_t toklen, time_t exp, const char *what,
		     struct kf_err *err)
{
	size_t aklen = strlen(ak);

	memset(out, 0, sizeof(*out));
	if (aklen == 0 || aklen >= sizeof(out->access_key))
		return kf_fail(err, KF_E_INVALID,
			       "%s: access key id has a bad length", what);
	if (sklen == 0)
		return kf_fail(err, KF_E_INVALID, "%s: empty secret key",
			       what);
	memcpy(out->access_key, ak, aklen + 1);
	out->secret_key = kf_secret_dup(sk, sklen + 1);
	if (!out->secret_key)
		goto nomem;
	out->secret_key->data[sklen] = '\0';
	out->secret_key->len = sklen;
	if (tok && toklen) {
		out->session_token = kf_secret_dup(tok, toklen + 1);
		if (!out->session_token)
			goto nomem;
		out->session_token->data[toklen] = '\0';
		out->session_token->len = toklen;
	}
	out->expiration = exp;
	return 0;
nomem:
	kf_aws_creds_release(out);
	return kf_fail(err, KF_E_NOMEM, "out of memory");
}

static int creds_copy(struct kf_aws_creds *dst, const struct kf_aws_creds *src,
		      struct kf_err *err)
{
	return creds_set(dst, src->access_key,
			 (const char *)src->secret_key->data,
			 src->secret_key->len,
			 src->session_token ?
				 (const char *)src->session_token->data : NULL,
			 src->session_token ? src->session_token->len : 0,
			 src->expiration, "credentials", err);
}

/*
 * ISO-8601 UTC time "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" to
 * epoch seconds; -1 when malformed.
 */
static time_t parse_iso8601(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	long off = 0;
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h,
			 &mi, &sec, &n) != 6 || n != 19)
		return -1;
	s += n;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int oh, om, m = 0;

		if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
			return -1;
		off = (oh * 60L + om) * 60L * (*s == '+' ? 1 : -1);
		s += 6;
	} else {
		return -1;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return t == (time_t)-1 ? -1 : t - off;
}

/* ---------- static sources ---------- */

static int fetch_env(struct kf_aws_chain *c, struct kf_aws_creds *out,
		     struct kf_err *err)
{
	const char *ak = env("AWS_ACCESS_KEY_ID");
	const char *sk = env("AWS_SECRET_ACCESS_KEY");
	const char *tok = env("AWS_SECURITY_TOKEN");
	const char *exps = env("AWS_CREDENTIAL_EXPIRATION");
	time_t exp = 0;

	if (!tok)
		tok = env("AWS_SESSION_TOKEN");
	if (!ak || !sk)
		return kf_fail(err, KF_E_INVALID,
			       "AWS_ACCESS_KEY_ID is set without "
			       "AWS_SECRET_ACCESS_KEY (or the reverse)");
	if (exps) {
		exp = parse_iso8601(exps);
		if (exp < 0)
			return kf_fail(err, KF_E_INVALID,
				       "AWS_CREDENTIAL_EXPIRATION is not an "
				       "ISO-8601 time");
	}
	return creds_set(out, ak, sk, strlen(sk), tok, tok ? strlen(tok) : 0,
			 exp, "environment", err);
}

/* Static keys of profile from an already loaded file. */
static int keys_from_ini(const struct kf_ini *ini, const char *sect,
			 const char *what, struct kf_aws_creds *out,
			 struct kf_err *err)
{
	const char *ak = kf_ini_get(ini, sect, "aws_access_key_id");
	const char *sk = kf_ini_get(ini, sect, "aws_secret_access_key");
	const char *tok = kf_ini_get(ini, sect, "aws_session_token");

	if (!tok)
		tok = kf_ini_get(ini, sect, "aws_security_token");
	if (tok && !*tok)
		tok = NULL;
	if (!ak || !*ak || !sk || !*sk)
		return kf_fail(err, KF_E_INVALID,
			       "%s: aws_access_key_id and "
			       "aws_secret_access_key must both be set",
			       what);
	return creds_set(out, ak, sk, strlen(sk), tok, tok ? strlen(tok) : 0,
			 0, what, err);
}

static int fetch_file(struct kf_aws_chain *c, struct kf_aws_creds *out,
		      struct kf_err *err)
{
	struct kf_ini ini;
	const char *sect;
	int rc = -1, r;

	kf_ini_init(&ini);
	r = kf_ini_load(&ini, c->kind == SRC_CRED_FILE ? c->cred_path :
			   c->config_path, err);
	if (r < 0)
		goto out;
	sect = c->kind == SRC_CRED_FILE ?
		       (kf_ini_has_section(&ini, c->profile) ? c->profile : NULL) :
		       config_section(&ini, c->profile);
	if (r == 1 || !sect) {
		kf_fail(err, KF_E_NOTFOUND, "%s: profile no longer present",
			c->source);
		goto out;
	}
	rc = keys_from_ini(&ini, sect, c->source, out, err);
out:
	kf_ini_release(&ini);
	return rc;
}

/* ---------- XML (STS responses) ---------- */

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
		snprintf(out, outlen, "%s", kf_buf_str(&b));
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

/*
 * Parse an STS AssumeRoleWithWebIdentity response (status from HTTP)
 * into *out.  Exposed to tests only through the web-identity source.
 */
static int sts_parse(long status, const char *doc, size_t len,
		     struct kf_aws_creds *out, struct kf_err *err)
{
	static const char *const rp[] = { "AssumeRoleWithWebIdentityResponse",
					   "AssumeRoleWithWebIdentityResult",
					   "Credentials", NULL };
	static const char *const ecode[] = { "ErrorResponse", "Error",
					     "Code" };
	static const char *const emsg[] = { "ErrorResponse", "Error",
					    "Message" };
	const char *path[4] = { rp[0], rp[1], rp[2], NULL };
	struct kf_buf sk, tok;
	char ak[128], exps[64];
	time_t exp;
	int rc = -1;

	kf_buf_init_sensitive(&sk, 4096);
	kf_buf_init_sensitive(&tok, 16384);
	if (status != 200) {
		char code[64], msg[160];
		enum kf_code kc = KF_E_DENIED;

		if (xml_field(doc, len, ecode, 3, code, sizeof(code)) != 1)
			snprintf(code, sizeof(code), "HTTP%ld", status);
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
		kf_fail_provider(err, kc, (int)status, code,
				 "STS AssumeRoleWithWebIdentity: %s%s%s", code,
				 msg[0] ? ": " : "", msg);
		goto out;
	}
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
	if (xml_field(doc, len, path, 4, exps, sizeof(exps)) != 1)
		goto bad;
	exp = parse_iso8601(exps);
	if (exp < 0)
		goto bad;
	rc = creds_set(out, ak, kf_buf_str(&sk), sk.len, kf_buf_str(&tok),
		       tok.len, exp, "STS response", err);
	goto out;
bad:
	kf_fail(err, KF_E_IO, "STS AssumeRoleWithWebIdentity: malformed "
			      "response");
out:
	kf_buf_release(&sk);
	kf_buf_release(&tok);
	return rc;
}

/* ---------- endpoints and region ---------- */

static int valid_region(const char *r)
{
	size_t n = 0;

	for (; r[n]; n++)
		if (!(islower((unsigned char)r[n]) ||
		      isdigit((unsigned char)r[n]) || r[n] == '-'))
			return 0;
	return n > 0 && n < 64;
}

int kf_aws_default_region(const char *profile, char *out, size_t outlen,
			  struct kf_err *err)
{
	const char *r = env("AWS_REGION");
	struct kf_ini cfg;
	char *path = NULL;
	int rc = -1, explicit_;
	const char *name = profile_name(profile, &explicit_);

	kf_ini_init(&cfg);
	if (!r)
		r = env("AWS_DEFAULT_REGION");
	if (!r) {
		path = config_file_path();
		if (path && kf_ini_load(&cfg, path, err) < 0)
			goto out;
		r = config_get(&cfg, name, "region");
		if (r && !*r)
			r = NULL;
	}
	if (!r) {
		kf_fail(err, KF_E_NOTFOUND,
			"no AWS region: set AWS_REGION or region in profile %s",
			name);
		goto out;
	}
	if (!valid_region(r)) {
		kf_fail(err, KF_E_INVALID, "invalid AWS region name");
		goto out;
	}
	if ((size_t)snprintf(out, outlen, "%s", r) >= outlen) {
		kf_fail(err, KF_E_RANGE, "region buffer too small");
		goto out;
	}
	rc = 0;
out:
	kf_ini_release(&cfg);
	free(path);
	return rc;
}

/*
 * Endpoint for one service: env_svc, AWS_ENDPOINT_URL, the profile's
 * `services` section key svc_key → endpoint_url, the profile's
 * endpoint_url, else https://HOST_PREFIX.REGION.amazonaws.com[.cn].
 * Trailing slashes are removed.
 */
static int service_endpoint(const char *env_svc, const char *svc_key,
			    const char *host_prefix, const char *profile,
			    const char *region, char *out, size_t outlen,
			    struct kf_err *err)
{
	int ignore = env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	const char *u = NULL;
	struct kf_ini cfg;
	char *path = NULL;
	int rc = -1, explicit_;
	size_t n;
	const char *name = profile_name(profile, &explicit_);

	kf_ini_init(&cfg);
	if (!ignore) {
		u = env(env_svc);
		if (!u)
			u = env("AWS_ENDPOINT_URL");
	}
	if (!u && !ignore) {
		const char *ig, *svcs;

		path = config_file_path();
		if (path && kf_ini_load(&cfg, path, err) < 0)
			goto out;
		ig = config_get(&cfg, name, "ignore_configured_endpoint_urls");
		if (!ig || strcasecmp(ig, "true") != 0) {
			svcs = config_get(&cfg, name, "services");
			if (svcs && *svcs) {
				char sect[256], key[64];

				if ((size_t)snprintf(sect, sizeof(sect),
						     "services %s", svcs) <
					    sizeof(sect) &&
				    (size_t)snprintf(key, sizeof(key),
						     "%s.endpoint_url",
						     svc_key) < sizeof(key))
					u = kf_ini_get(&cfg, sect, key);
			}
			if (!u || !*u)
				u = config_get(&cfg, name, "endpoint_url");
			if (u && !*u)
				u = NULL;
		}
	}
	if (u) {
		n = strlen(u);
		while (n > 0 && u[n - 1] == '/')
			n--;
		if (n == 0 || (strncmp(u, "http://", 7) != 0 &&
			       strncmp(u, "https://", 8) != 0)) {
			kf_fail(err, KF_E_INVALID,
				"configured endpoint URL is not http(s)");
			goto out;
		}
		if (n >= outlen) {
			kf_fail(err, KF_E_RANGE, "endpoint URL too long");
			goto out;
		}
		memcpy(out, u, n);
		out[n] = '\0';
	} else {
		if (!region || !valid_region(region)) {
			kf_fail(err, KF_E_INVALID, "invalid AWS region name");
			goto out;
		}
		if ((size_t)snprintf(out, outlen,
				     "https://%s.%s.amazonaws.com%s",
				     host_prefix, region,
				     strncmp(region, "cn-", 3) == 0 ? ".cn" :
								      "") >=
		    outlen) {
			kf_fail(err, KF_E_RANGE, "endpoint buffer too small");
			goto out;
		}
	}
	rc = 0;
out:
	kf_ini_release(&cfg);
	free(path);
	return rc;
}

int kf_aws_endpoint(const char *opt, const char *profile, const char *region,
		    char *out, size_t outlen, struct kf_err *err)
{
	if (opt && *opt) {
		size_t n = strlen(opt);

		while (n > 0 && opt[n - 1] == '/')
			n--;
		if (n == 0 || (strncmp(opt, "http://", 7) != 0 &&
			       strncmp(opt, "https://", 8) != 0))
			return kf_fail(err, KF_E_INVALID,
				       "aws_endpoint must be an http(s) URL");
		if (n >= outlen)
			return kf_fail(err, KF_E_RANGE,
				       "endpoint URL too long");
		memcpy(out, opt, n);
		out[n] = '\0';
		return 0;
	}
	return service_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER",
				"secrets_manager", "secretsmanager", profile,
				region, out, outlen, err);
}

/* STS: configured endpoint, else regional, else the global one. */
static int sts_endpoint(const char *profile, char *out, size_t outlen,
			struct kf_err *err)
{
	char region[64];
	struct kf_err rerr = KF_ERR_INIT;

	if (kf_aws_default_region(profile, region, sizeof(region), &rerr) < 0) {
		if (rerr.code != KF_E_NOTFOUND)
			return kf_fail(err, rerr.code, "%s", rerr.msg);
		/* No region: a configured URL or the global endpoint. */
		if (service_endpoint("AWS_ENDPOINT_URL_STS", "sts", "sts",
				     profile, "us-east-1", out, outlen,
				     err) < 0)
			return -1;
		if (strcmp(out, "https://sts.us-east-1.amazonaws.com") == 0 &&
		    (size_t)snprintf(out, outlen, "https://sts.amazonaws.com") >=
			    outlen)
			return kf_fail(err, KF_E_RANGE, "buffer too small");
		return 0;
	}
	return service_endpoint("AWS_ENDPOINT_URL_STS", "sts", "sts", profile,
				region, out, outlen, err);
}

/* ---------- network sources ---------- */

static int url_encode(struct kf_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char enc[3];

		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' ||
		    ch == '~') {
			if (kf_buf_add(b, &s[i], 1) < 0)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 15];
		if (kf_buf_add(b, enc, 3) < 0)
			return -1;
	}
	return 0;
}

/* Read a token file into a sensitive buffer, whitespace stripped. */
static int read_token_file(const char *path, struct kf_buf *tok,
			   struct kf_err *err)
{
	size_t s = 0, e;
	int r = kf_ini_read_file(path, tok, err);

	if (r == 1)
		return kf_fail(err, KF_E_NOTFOUND, "token file %s is missing",
			       path);
	if (r < 0)
		return -1;
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

static int retryable(const struct kf_err *e)
{
	return e->code == KF_E_UNAVAILABLE || e->code == KF_E_TIMEOUT;
}

static unsigned fetch_timeout(const struct kf_aws_chain *c)
{
	return c->timeout_ms ? c->timeout_ms : 10000;
}

static int fetch_web_identity(struct kf_aws_chain *c,
			      struct kf_aws_creds *out, struct kf_err *err)
{
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
		"Accept: text/xml", NULL
	};
	struct kf_buf tok, body;
	struct kf_http_resp resp;
	char url[1100];
	int rc = -1;

	kf_buf_init_sensitive(&tok, TOKEN_MAX + 4096);
	kf_buf_init_sensitive(&body, 3 * TOKEN_MAX + 8192);
	kf_http_resp_init(&resp);
	if (read_token_file(c->token_file, &tok, err) < 0)
		goto out;
	if (tok.len > TOKEN_MAX) {
		kf_fail(err, KF_E_INVALID, "web identity token is too long");
		goto out;
	}
	if ((size_t)snprintf(url, sizeof(url), "%s/", c->sts_url) >=
	    sizeof(url)) {
		kf_fail(err, KF_E_RANGE, "STS URL too long");
		goto out;
	}
	if (kf_buf_adds(&body, "Action=AssumeRoleWithWebIdentity"
			       "&Version=2011-06-15&RoleArn=") < 0 ||
	    url_encode(&body, c->role_arn, strlen(c->role_arn)) < 0 ||
	    kf_buf_adds(&body, "&RoleSessionName=") < 0 ||
	    url_encode(&body, c->session_name, strlen(c->session_name)) < 0 ||
	    kf_buf_adds(&body, "&WebIdentityToken=") < 0 ||
	    url_encode(&body, tok.data, tok.len) < 0) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	for (unsigned attempt = 0;; attempt++) {
		struct kf_http_req req = {
			.method = "POST",
			.url = url,
			.headers = hdrs,
			.body = body.data,
			.body_len = body.len,
			.timeout_ms = fetch_timeout(c),
			.max_response = 1u << 20,
		};

		kf_http_resp_release(&resp);
		kf_http_resp_init(&resp);
		if (kf_http_do(&req, &resp, err) == 0 &&
		    sts_parse(resp.status, kf_buf_str(&resp.body),
			      resp.body.len, out, err) == 0)
			break;
		if (attempt >= 2 || !retryable(err))
			goto out;
		kf_clock_sleep_ms(kf_retry_backoff_ms(attempt, 200, 2000));
	}
	rc = 0;
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&tok);
	kf_buf_release(&body);
	return rc;
}

/*
 * Credentials from a JSON document as the container endpoint and IMDS
 * return it: AccessKeyId, SecretAccessKey, Token, Expiration.
 */
static int creds_from_json(const char *doc, size_t len, const char *what,
			   int need_token, struct kf_aws_creds *out,
			   struct kf_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(doc, len, 0, &jerr);
	json_t *ak, *sk, *tok, *exp, *code;
	time_t t = 0;
	int rc = -1;

	if (!root || !json_is_object(root)) {
		kf_fail(err, KF_E_IO, "%s: response is not a JSON object",
			what);
		goto out;
	}
	code = json_object_get(root, "Code");
	if (json_is_string(code) &&
	    strcmp(json_string_value(code), "Success") != 0) {
		kf_fail(err, KF_E_DENIED, "%s: Code is not Success", what);
		goto out;
	}
	ak = json_object_get(root, "AccessKeyId");
	sk = json_object_get(root, "SecretAccessKey");
	tok = json_object_get(root, "Token");
	exp = json_object_get(root, "Expiration");
	if (!json_is_string(ak) || !json_is_string(sk) ||
	    (tok && !json_is_null(tok) && !json_is_string(tok)) ||
	    (need_token && !json_is_string(tok))) {
		kf_fail(err, KF_E_IO, "%s: credentials missing in response",
			what);
		goto out;
	}
	if (json_is_string(exp)) {
		t = parse_iso8601(json_string_value(exp));
		if (t < 0) {
			kf_fail(err, KF_E_IO, "%s: bad Expiration", what);
			goto out;
		}
	} else if (need_token) {
		kf_fail(err, KF_E_IO, "%s: Expiration missing", what);
		goto out;
	}
	rc = creds_set(out, json_string_value(ak), json_string_value(sk),
		       json_string_length(sk),
		       json_is_string(tok) ? json_string_value(tok) : NULL,
		       json_is_string(tok) ? json_string_length(tok) : 0, t,
		       what, err);
out:
	json_decref(root);
	return rc;
}

static int fetch_container(struct kf_aws_chain *c, struct kf_aws_creds *out,
			   struct kf_err *err)
{
	const char *hdrs[3] = { "Accept: application/json", NULL, NULL };
	const char *tfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tenv = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct kf_buf auth, tok;
	struct kf_http_resp resp;
	int rc = -1;

	kf_buf_init_sensitive(&auth, 16384);
	kf_buf_init_sensitive(&tok, 16000);
	kf_http_resp_init(&resp);
	if (tfile) {
		if (read_token_file(tfile, &tok, err) < 0)
			goto out;
	} else if (tenv && kf_buf_adds(&tok, tenv) < 0) {
		kf_fail(err, KF_E_INVALID, "container authorization token "
					   "is too long");
		goto out;
	}
	if (tok.len) {
		if (memchr(tok.data, '\r', tok.len) ||
		    memchr(tok.data, '\n', tok.len)) {
			kf_fail(err, KF_E_INVALID,
				"container authorization token contains a "
				"line break");
			goto out;
		}
		if (kf_buf_adds(&auth, "Authorization: ") < 0 ||
		    kf_buf_add(&auth, tok.data, tok.len) < 0) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		hdrs[1] = auth.data;
	}
	for (unsigned attempt = 0;; attempt++) {
		struct kf_http_req req = {
			.method = "GET",
			.url = c->url,
			.headers = hdrs,
			.timeout_ms = 2000,
			.connect_timeout_ms = 1000,
			.max_response = 1u << 16,
			.allow_metadata_ip = 1,
		};

		kf_http_resp_release(&resp);
		kf_http_resp_init(&resp);
		if (kf_http_do(&req, &resp, err) == 0) {
			if (resp.status == 200) {
				if (creds_from_json(kf_buf_str(&resp.body),
						    resp.body.len,
						    "container credentials", 0,
						    out, err) < 0)
					goto out;
				break;
			}
			kf_fail_provider(err,
					 resp.status == 401 ||
							 resp.status == 403 ?
						 KF_E_DENIED :
					 resp.status >= 500 ?
						 KF_E_UNAVAILABLE :
						 KF_E_IO,
					 (int)resp.status, NULL,
					 "container credentials endpoint "
					 "answered HTTP %ld",
					 resp.status);
		}
		if (attempt >= 2 || !retryable(err))
			goto out;
		kf_clock_sleep_ms(kf_retry_backoff_ms(attempt, 250, 1000));
	}
	rc = 0;
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&auth);
	kf_buf_release(&tok);
	return rc;
}

/* One IMDS request; the token header is added when tok is set. */
static int imds_do(const struct kf_aws_chain *c, const char *method,
		   const char *path, const char *extra_hdr, const char *tok,
		   struct kf_http_resp *resp, struct kf_err *err)
{
	const char *hdrs[3] = { NULL, NULL, NULL };
	struct kf_buf url, th;
	const char *ts = env("AWS_METADATA_SERVICE_TIMEOUT");
	unsigned tmo = 1000;
	int rc = -1;

	if (ts) {
		char *e;
		unsigned long v = strtoul(ts, &e, 10);

		if (*e == '\0' && v > 0 && v <= 60)
			tmo = (unsigned)v * 1000u;
	}
	kf_buf_init(&url, 4096);
	kf_buf_init_sensitive(&th, 4096);
	if (kf_buf_addf(&url, "%s%s", c->url, path) < 0)
		goto toolong;
	if (extra_hdr)
		hdrs[0] = extra_hdr;
	if (tok) {
		if (kf_buf_addf(&th, "x-aws-ec2-metadata-token: %s", tok) < 0)
			goto toolong;
		hdrs[extra_hdr ? 1 : 0] = th.data;
	}
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

		kf_http_resp_release(resp);
		kf_http_resp_init(resp);
		rc = kf_http_do(&req, resp, err);
	}
	goto out;
toolong:
	kf_fail(err, KF_E_RANGE, "IMDS URL or token too long");
out:
	kf_buf_release(&url);
	kf_buf_release(&th);
	return rc;
}

static int fetch_imds_once(struct kf_aws_chain *c, struct kf_aws_creds *out,
			   struct kf_err *err)
{
	struct kf_http_resp resp;
	struct kf_buf tok;
	char role[256], path[320];
	size_t n;
	int rc = -1;

	kf_http_resp_init(&resp);
	kf_buf_init_sensitive(&tok, 4096);
	if (imds_do(c, "PUT", "/latest/api/token",
		    "x-aws-ec2-metadata-token-ttl-seconds: 21600", NULL, &resp,
		    err) < 0)
		goto out;
	if (resp.status == 200 && resp.body.len > 0) {
		if (kf_buf_add(&tok, resp.body.data, resp.body.len) < 0) {
			kf_fail(err, KF_E_IO, "IMDS token too long");
			goto out;
		}
	} else if (resp.status == 403 || resp.status == 404 ||
		   resp.status == 405) {
		if (env_true("AWS_EC2_METADATA_V1_DISABLED")) {
			kf_fail(err, KF_E_DENIED, "IMDSv2 token refused and "
						  "IMDSv1 is disabled");
			goto out;
		}
	} else {
		kf_fail_provider(err, KF_E_UNAVAILABLE, (int)resp.status, NULL,
				 "IMDS token request answered HTTP %ld",
				 resp.status);
		goto out;
	}
	if (imds_do(c, "GET", "/latest/meta-data/iam/security-credentials/",
		    NULL, tok.len ? tok.data : NULL, &resp, err) < 0)
		goto out;
	if (resp.status != 200) {
		kf_fail_provider(err, resp.status == 404 ? KF_E_NOTFOUND :
							   KF_E_UNAVAILABLE,
				 (int)resp.status, NULL,
				 "IMDS has no instance role (HTTP %ld)",
				 resp.status);
		goto out;
	}
	/* First line of the listing is the role name. */
	n = strcspn(kf_buf_str(&resp.body), "\r\n");
	if (n == 0 || n >= sizeof(role)) {
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
	if ((size_t)snprintf(path, sizeof(path),
			     "/latest/meta-data/iam/security-credentials/%s",
			     role) >= sizeof(path)) {
		kf_fail(err, KF_E_RANGE, "IMDS role name too long");
		goto out;
	}
	if (imds_do(c, "GET", path, NULL, tok.len ? tok.data : NULL, &resp,
		    err) < 0)
		goto out;
	if (resp.status != 200) {
		kf_fail_provider(err, KF_E_UNAVAILABLE, (int)resp.status, NULL,
				 "IMDS credentials request answered HTTP %ld",
				 resp.status);
		goto out;
	}
	rc = creds_from_json(kf_buf_str(&resp.body), resp.body.len,
			     "IMDS credentials", 1, out, err);
out:
	kf_http_resp_release(&resp);
	kf_buf_release(&tok);
	return rc;
}

static int fetch_imds(struct kf_aws_chain *c, struct kf_aws_creds *out,
		      struct kf_err *err)
{
	const char *na = env("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
	unsigned attempts = 1;

	if (na) {
		char *e;
		unsigned long v = strtoul(na, &e, 10);

		if (*e == '\0' && v >= 1 && v <= 10)
			attempts = (unsigned)v;
	}
	for (unsigned a = 0;; a++) {
		if (fetch_imds_once(c, out, err) == 0)
			return 0;
		if (a + 1 >= attempts || err->code == KF_E_INVALID ||
		    err->code == KF_E_DENIED)
			return -1;
	}
}

static int fetch(struct kf_aws_chain *c, struct kf_aws_creds *out,
		 struct kf_err *err)
{
	switch (c->kind) {
	case SRC_ENV:
		return fetch_env(c, out, err);
	case SRC_CRED_FILE:
	case SRC_CONFIG_FILE:
		return fetch_file(c, out, err);
	case SRC_WEB_IDENTITY:
		return fetch_web_identity(c, out, err);
	case SRC_CONTAINER:
		return fetch_container(c, out, err);
	case SRC_IMDS:
		return fetch_imds(c, out, err);
	}
	return kf_fail(err, KF_E_IO, "unknown credential source");
}

/* ---------- resolution ---------- */

static int set_source(struct kf_aws_chain *c, enum src_kind kind,
		      const char *what, const char *name)
{
	c->kind = kind;
	return (size_t)snprintf(c->source, sizeof(c->source), "%s%s%s", what,
				name ? " " : "", name ? name : "") <
			       sizeof(c->source) ?
		       0 :
		       -1;
}

/* Is host of url loopback or an ECS link-local address? */
static int container_url_ok(const char *url)
{
	static const char *const hosts[] = { "127.", "localhost", "[::1]",
					     "169.254.170.2",
					     "169.254.170.23",
					     "[fd00:ec2::23]" };
	const char *h;

	if (strncmp(url, "https://", 8) == 0)
		return 1;
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	h = url + 7;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);

		if (strncmp(h, hosts[i], n) != 0)
			continue;
		if (hosts[i][n - 1] == '.') {
			/* 127.x.y.z: digits and dots up to the port/path */
			const char *q = h + n;

			while (isdigit((unsigned char)*q) || *q == '.')
				q++;
			return *q == '\0' || *q == ':' || *q == '/';
		}
		return h[n] == '\0' || h[n] == ':' || h[n] == '/';
	}
	return 0;
}

/*
 * Pick the source, botocore's order: environment keys, web identity (env
 * vars, else profile role_arn + web_identity_token_file), credentials
 * file, config file static keys, container, IMDS.  Returns 0 with a source
 * set, 1 when nothing is configured (tried lists what was looked at), -1
 * on a configuration error.
 */
static int resolve(struct kf_aws_chain *c, const struct kf_aws_chain_cfg *cfg,
		   struct kf_buf *tried, struct kf_err *err)
{
	struct kf_ini cred, conf;
	const char *sect, *arn, *tfile;
	int explicit_, rc = -1, found = 0;
	const char *name = profile_name(cfg->profile, &explicit_);
	char sts[1024];

	kf_ini_init(&cred);
	kf_ini_init(&conf);
	c->profile = strdup(name);
	c->cred_path = cred_file_path();
	c->config_path = config_file_path();
	if (!c->profile || !c->cred_path || !c->config_path) {
		kf_fail(err, KF_E_NOMEM, "out of memory (or no home dir)");
		goto out;
	}
	if (env("AWS_ACCESS_KEY_ID")) {
		rc = set_source(c, SRC_ENV, "environment", NULL);
		goto out;
	}
	kf_buf_adds(tried, "environment");
	if (kf_ini_load(&cred, c->cred_path, err) < 0 ||
	    kf_ini_load(&conf, c->config_path, err) < 0)
		goto out;
	sect = config_section(&conf, name);

	/* Web identity: each setting from env first, then the profile. */
	arn = env("AWS_ROLE_ARN");
	if (!arn && sect)
		arn = kf_ini_get(&conf, sect, "role_arn");
	tfile = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	if (!tfile && sect)
		tfile = kf_ini_get(&conf, sect, "web_identity_token_file");
	if (arn && *arn && tfile && *tfile) {
		const char *sn = env("AWS_ROLE_SESSION_NAME");
		char defsn[64];
		int from_env = env("AWS_ROLE_ARN") &&
			       env("AWS_WEB_IDENTITY_TOKEN_FILE");

		if (!sn && sect)
			sn = kf_ini_get(&conf, sect, "role_session_name");
		if (!sn || !*sn) {
			snprintf(defsn, sizeof(defsn), "keyfs-session-%lld",
				 (long long)time(NULL));
			sn = defsn;
		}
		if (sts_endpoint(cfg->profile, sts, sizeof(sts), err) < 0)
			goto out;
		c->role_arn = strdup(arn);
		c->session_name = strdup(sn);
		c->token_file = expand_home(tfile);
		c->sts_url = strdup(sts);
		if (!c->role_arn || !c->session_name || !c->token_file ||
		    !c->sts_url) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		rc = set_source(c, SRC_WEB_IDENTITY,
				from_env ? "web identity" :
					   "web identity profile",
				from_env ? NULL : name);
		goto out;
	}
	kf_buf_adds(tried, ", web identity");
	if (sect && kf_ini_get(&conf, sect, "role_arn")) {
		kf_fail(err, KF_E_NOTSUP,
			"profile %s assumes a role through source_profile or "
			"credential_source, which keyfs does not support",
			name);
		goto out;
	}
	if (kf_ini_has_section(&cred, name) &&
	    kf_ini_get(&cred, name, "aws_access_key_id")) {
		rc = set_source(c, SRC_CRED_FILE, "profile", name);
		goto out;
	}
	if (sect && kf_ini_get(&conf, sect, "aws_access_key_id")) {
		rc = set_source(c, SRC_CONFIG_FILE, "config profile", name);
		goto out;
	}
	found = kf_ini_has_section(&cred, name) || sect;
	if (sect && (kf_ini_get(&conf, sect, "credential_process") ||
		     kf_ini_get(&conf, sect, "sso_session") ||
		     kf_ini_get(&conf, sect, "sso_start_url"))) {
		kf_fail(err, KF_E_NOTSUP,
			"profile %s uses credential_process or SSO, which "
			"keyfs does not support",
			name);
		goto out;
	}
	if (explicit_ && !found) {
		kf_fail(err, KF_E_NOTFOUND,
			"AWS profile %s not found in %s or %s", name,
			c->cred_path, c->config_path);
		goto out;
	}
	kf_buf_addf(tried, ", profile %s", name);

	if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
		const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
		struct kf_buf u;

		kf_buf_init(&u, 4096);
		if (rel[0] != '/' || kf_buf_addf(&u, "%s%s", ECS_HOST, rel) < 0) {
			kf_buf_release(&u);
			kf_fail(err, KF_E_INVALID,
				"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must "
				"be a path");
			goto out;
		}
		c->url = kf_buf_detach(&u, NULL);
		rc = c->url ? set_source(c, SRC_CONTAINER, "container", NULL) :
			      kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
		const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");

		if (!container_url_ok(full)) {
			kf_fail(err, KF_E_INVALID,
				"AWS_CONTAINER_CREDENTIALS_FULL_URI must be "
				"https or http to a loopback/ECS address");
			goto out;
		}
		c->url = strdup(full);
		rc = c->url ? set_source(c, SRC_CONTAINER, "container", NULL) :
			      kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	kf_buf_adds(tried, ", container");
	if (!env_true("AWS_EC2_METADATA_DISABLED")) {
		const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
		size_t n;

		c->url = strdup(ep ? ep : IMDS_DEFAULT);
		if (!c->url) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		n = strlen(c->url);
		while (n > 0 && c->url[n - 1] == '/')
			c->url[--n] = '\0';
		rc = set_source(c, SRC_IMDS, "imds", NULL);
		goto out;
	}
	kf_buf_adds(tried, ", imds (disabled)");
	rc = 1;
out:
	kf_ini_release(&cred);
	kf_ini_release(&conf);
	if (rc < 0 && err->code == KF_OK)
		kf_fail(err, KF_E_INVALID, "credential source name too long");
	return rc;
}

int kf_aws_chain_new(const struct kf_aws_chain_cfg *cfg,
		     struct kf_aws_chain **out, struct kf_err *err)
{
	struct kf_aws_chain *c;
	struct kf_buf tried;
	struct kf_aws_creds first;
	int r, rc = -1;

	*out = NULL;
	memset(&first, 0, sizeof(first));
	kf_buf_init(&tried, 200);
	c = calloc(1, sizeof(*c));
	if (!c)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->timeout_ms = cfg->timeout_ms;
	r = resolve(c, cfg, &tried, err);
	if (r < 0)
		goto out;
	if (r == 1) {
		kf_fail(err, KF_E_NOTFOUND, "no AWS credentials found: tried %s",
			kf_buf_str(&tried));
		goto out;
	}
	if (fetch(c, &first, err) < 0) {
		if (c->kind == SRC_IMDS) {
			/* Not on EC2 (or no role): nothing was found. */
			kf_fail(err, KF_E_NOTFOUND,
				"no AWS credentials found: tried %s, imds (%s)",
				kf_buf_str(&tried), kf_code_name(err->code));
		} else {
			struct kf_err e = *err;

			kf_fail_provider(err, e.code, e.http_status,
					 e.provider_code, "%s: %s", c->source,
					 e.msg);
		}
		goto out;
	}
	c->cur = first;
	c->have = 1;
	kf_log(KF_LOG_INFO, "aws: using credentials from %s", c->source);
	*out = c;
	c = NULL;
	rc = 0;
out:
	kf_buf_release(&tried);
	kf_aws_chain_free(c);
	return rc;
}

/* Seconds the current credentials have left (huge when they never end). */
static long long remaining_locked(const struct kf_aws_chain *c, time_t now)
{
	if (!c->have || c->invalid)
		return -1;
	if (c->cur.expiration == 0)
		return 1LL << 40;
	return (long long)c->cur.expiration - (long long)now;
}

int kf_aws_chain_get(struct kf_aws_chain *c, struct kf_aws_creds *out,
		     struct kf_err *err)
{
	struct kf_aws_creds fresh;
	struct kf_err ferr = KF_ERR_INIT;
	unsigned long seen;
	long long left;
	time_t now;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	seen = c->gen;
	for (;;) {
		int done = c->gen != seen;	/* a refresh ended meanwhile */

		now = time(NULL);
		left = remaining_locked(c, now);
		if (left > ADVISORY_S ||
		    (left > MARGIN_S && now < c->retry_after) ||
		    (left > MANDATORY_S && c->refreshing) ||
		    (done && left > MARGIN_S)) {
			rc = creds_copy(out, &c->cur, err);
			goto unlock;
		}
		if (done && c->last_err.code != KF_OK) {
			*err = c->last_err;
			goto unlock;
		}
		if (!c->refreshing)
			break;
		/* Another thread refreshes and ours are too old: wait. */
		pthread_cond_wait(&c->cond, &c->lock);
	}
	c->refreshing = 1;
	pthread_mutex_unlock(&c->lock);

	memset(&fresh, 0, sizeof(fresh));
	rc = fetch(c, &fresh, &ferr);	/* no lock held: network I/O */

	pthread_mutex_lock(&c->lock);
	c->refreshing = 0;
	c->gen++;
	now = time(NULL);
	if (rc == 0) {
		kf_aws_creds_release(&c->cur);
		c->cur = fresh;
		c->have = 1;
		c->invalid = 0;
		kf_err_clear(&c->last_err);
		/* Fresh but already short-lived: do not refetch every call. */
		c->retry_after = remaining_locked(c, now) <= ADVISORY_S ?
					 now + RETRY_AFTER_S :
					 0;
		rc = creds_copy(out, &c->cur, err);
	} else {
		c->last_err = ferr;
		if (remaining_locked(c, now) > MARGIN_S) {
			kf_log(KF_LOG_WARN,
			       "aws: refreshing credentials from %s failed "
			       "(%s); keeping the current ones",
			       c->source, ferr.msg);
			c->retry_after = now + RETRY_AFTER_S;
			rc = creds_copy(out, &c->cur, err);
		} else {
			kf_fail_provider(err, ferr.code, ferr.http_status,
					 ferr.provider_code, "%s: %s",
					 c->source, ferr.msg);
			c->last_err = *err;
		}
	}
	pthread_cond_broadcast(&c->cond);
unlock:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void kf_aws_chain_invalidate(struct kf_aws_chain *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->invalid = 1;
	c->retry_after = 0;
	pthread_mutex_unlock(&c->lock);
}

const char *kf_aws_chain_source(const struct kf_aws_chain *c)
{
	return c ? c->source : "none";
}

void kf_aws_chain_free(struct kf_aws_chain *c)
{
	if (!c)
		return;
	kf_aws_creds_release(&c->cur);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->profile);
	free(c->cred_path);
	free(c->config_path);
	free(c->role_arn);
	free(c->session_name);
	free(c->token_file);
	free(c->sts_url);
	free(c->url);
	free(c);
}

int kf_aws_config_present(const char *profile)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_CONFIG_FILE",
	};
	char *paths[2];
	int present = profile && *profile;

	for (size_t i = 0; !present && i < sizeof(vars) / sizeof(vars[0]); i++)
		present = env(vars[i]) != NULL;
	if (present)
		return 1;
	paths[0] = cred_file_path();
	paths[1] = config_file_path();
	for (int i = 0; i < 2; i++) {
		if (!present && paths[i] && access(paths[i], R_OK) == 0)
			present = 1;
		free(paths[i]);
	}
	return present;
}
