/*
 * One set of AWS credentials (make, copy, release, expiry times) and the
 * sources that need no network: environment keys and static keys in the
 * shared files.  Secret keys and tokens only ever live in kf_secret
 * memory; errors name the source or setting, never a value.
 */
#include "aws/sources.h"
#include "aws/config.h"
#include "core/ini.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* n bytes of text into new secret memory, NUL-terminated. */
static struct kf_secret *secret_text(const char *p, size_t n)
{
	struct kf_secret *s = kf_secret_dup(p, n + 1);

	if (s) {
		s->data[n] = '\0';
		s->len = n;
	}
	return s;
}

int kf_aws_creds_set(struct kf_aws_creds *out, const char *ak, const char *sk,
		     size_t sklen, const char *tok, size_t toklen, time_t exp,
		     const char *what, struct kf_err *err)
{
	size_t aklen = strlen(ak);

	memset(out, 0, sizeof(*out));
	if (aklen == 0 || aklen >= sizeof(out->access_key))
		return kf_fail(err, KF_E_INVALID,
			       "%s: access key id has a bad length", what);
	if (sklen == 0)
		return kf_fail(err, KF_E_INVALID, "%s: empty secret key", what);
	memcpy(out->access_key, ak, aklen + 1);
	out->secret_key = secret_text(sk, sklen);
	if (!out->secret_key)
		goto nomem;
	if (tok && toklen) {
		out->session_token = secret_text(tok, toklen);
		if (!out->session_token)
			goto nomem;
	}
	out->expiration = exp;
	return 0;
nomem:
	kf_aws_creds_release(out);
	return kf_fail(err, KF_E_NOMEM, "out of memory");
}

int kf_aws_creds_copy(struct kf_aws_creds *dst, const struct kf_aws_creds *src,
		      struct kf_err *err)
{
	const struct kf_secret *tok = src->session_token;

	return kf_aws_creds_set(dst, src->access_key,
				(const char *)src->secret_key->data,
				src->secret_key->len,
				tok ? (const char *)tok->data : NULL,
				tok ? tok->len : 0, src->expiration,
				"credentials", err);
}

/* After the seconds: "[.frac](Z|+HH:MM|-HH:MM)" as a UTC offset in
 * seconds into *off; -1 when malformed or followed by anything. */
static int iso8601_zone(const char *s, long *off)
{
	int oh, om, m = 0;

	*off = 0;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z')
		return s[1] == '\0' ? 0 : -1;
	if (*s != '+' && *s != '-')
		return -1;
	if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
		return -1;
	*off = (oh * 60L + om) * 60L * (*s == '+' ? 1 : -1);
	return s[6] == '\0' ? 0 : -1;
}

time_t kf_aws_iso8601(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	long off;
	time_t t;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
		   &n) != 6 ||
	    n != 19)
		return -1;
	if (iso8601_zone(s + n, &off) < 0 || mo < 1 || mo > 12 || d < 1 ||
	    d > 31 || h > 23 || mi > 59 || sec > 60)
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

/* ---------- sources without network ---------- */

int kf_aws_fetch_env(const struct kf_aws_source_cfg *s,
		     struct kf_aws_creds *out, struct kf_err *err)
{
	const char *ak = kf_aws_env("AWS_ACCESS_KEY_ID");
	const char *sk = kf_aws_env("AWS_SECRET_ACCESS_KEY");
	const char *tok = kf_aws_env("AWS_SECURITY_TOKEN");
	const char *exps = kf_aws_env("AWS_CREDENTIAL_EXPIRATION");
	time_t exp = 0;

	if (!tok)
		tok = kf_aws_env("AWS_SESSION_TOKEN");
	if (!ak || !sk)
		return kf_fail(err, KF_E_INVALID,
			       "AWS_ACCESS_KEY_ID is set without "
			       "AWS_SECRET_ACCESS_KEY (or the reverse)");
	if (exps) {
		exp = kf_aws_iso8601(exps);
		if (exp < 0)
			return kf_fail(err, KF_E_INVALID,
				       "AWS_CREDENTIAL_EXPIRATION is not an "
				       "ISO-8601 time");
	}
	return kf_aws_creds_set(out, ak, sk, strlen(sk), tok,
				tok ? strlen(tok) : 0, exp, "environment", err);
}

/* Static keys of section sect of an already loaded file. */
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
	return kf_aws_creds_set(out, ak, sk, strlen(sk), tok,
				tok ? strlen(tok) : 0, 0, what, err);
}

int kf_aws_fetch_profile(const struct kf_aws_source_cfg *s,
			 struct kf_aws_creds *out, struct kf_err *err)
{
	struct kf_ini ini;
	const char *sect;
	int rc = -1, r;

	kf_ini_init(&ini);
	r = kf_ini_load(&ini, s->from_config ? s->config_path : s->cred_path,
			err);
	if (r < 0)
		goto out;
	if (s->from_config)
		sect = kf_aws_config_section(&ini, s->profile);
	else
		sect = kf_ini_has_section(&ini, s->profile) ? s->profile : NULL;
	if (r == 1 || !sect) {
		kf_fail(err, KF_E_NOTFOUND, "%s: profile no longer present",
			s->label);
		goto out;
	}
	rc = keys_from_ini(&ini, sect, s->label, out, err);
out:
	kf_ini_release(&ini);
	return rc;
}

void kf_aws_source_cfg_release(struct kf_aws_source_cfg *s)
{
	if (!s)
		return;
	free(s->profile);
	free(s->cred_path);
	free(s->config_path);
	free(s->role_arn);
	free(s->session_name);
	free(s->token_file);
	free(s->sts_url);
	free(s->url);
	memset(s, 0, sizeof(*s));
}
