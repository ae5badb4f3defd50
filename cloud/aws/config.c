/*
 * AWS shared configuration: the config and credentials files, profile
 * selection, region and endpoint resolution, in the SDKs' order.  No
 * network I/O here, and nothing read from a file is ever logged or put in
 * an error message (those name the file or the setting).
 */
#include "aws/config.h"
#include "core/buf.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* What one service's endpoint is called in each place it can be set. */
struct aws_service {
	const char *env;  /* AWS_ENDPOINT_URL_<SERVICE> */
	const char *key;  /* key in a `services` section */
	const char *host; /* first label of the AWS host name */
};

static const struct aws_service sm_service = {
	"AWS_ENDPOINT_URL_SECRETS_MANAGER", "secrets_manager", "secretsmanager"
};
static const struct aws_service ssm_service = { "AWS_ENDPOINT_URL_SSM", "ssm",
						"ssm" };
static const struct aws_service sts_service = { "AWS_ENDPOINT_URL_STS", "sts",
						"sts" };

/* ---------- environment and files ---------- */

const char *kf_aws_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int kf_aws_env_true(const char *name)
{
	const char *v = kf_aws_env(name);

	return v && strcasecmp(v, "true") == 0;
}

unsigned kf_aws_env_uint(const char *name, unsigned lo, unsigned hi,
			 unsigned def)
{
	const char *s = kf_aws_env(name);
	unsigned long v;
	char *e;

	if (!s)
		return def;
	v = strtoul(s, &e, 10);
	return *e == '\0' && v >= lo && v <= hi ? (unsigned)v : def;
}

size_t kf_aws_url_len(const char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}

char *kf_aws_expand_home(const char *p)
{
	struct kf_buf b;
	const char *home;

	if (p[0] != '~' || (p[1] != '/' && p[1] != '\0'))
		return strdup(p);
	home = kf_aws_env("HOME");
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

char *kf_aws_cred_file_path(void)
{
	const char *p = kf_aws_env("AWS_SHARED_CREDENTIALS_FILE");

	return kf_aws_expand_home(p ? p : "~/.aws/credentials");
}

char *kf_aws_config_file_path(void)
{
	const char *p = kf_aws_env("AWS_CONFIG_FILE");

	return kf_aws_expand_home(p ? p : "~/.aws/config");
}

/* ---------- profiles ---------- */

const char *kf_aws_profile_name(const char *profile, int *explicit_)
{
	const char *p = profile && *profile ? profile : NULL;

	if (!p)
		p = kf_aws_env("AWS_PROFILE");
	if (!p)
		p = kf_aws_env("AWS_DEFAULT_PROFILE");
	*explicit_ = p != NULL;
	return p ? p : "default";
}

const char *kf_aws_config_section(const struct kf_ini *ini, const char *name)
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
	const char *sect = kf_aws_config_section(cfg, name);

	return sect ? kf_ini_get(cfg, sect, key) : NULL;
}

int kf_aws_config_present(const char *profile)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID",
		"AWS_PROFILE",
		"AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_REGION",
		"AWS_DEFAULT_REGION",
		"AWS_SHARED_CREDENTIALS_FILE",
		"AWS_CONFIG_FILE",
	};
	char *paths[2];
	int present = profile && *profile;

	for (size_t i = 0; !present && i < sizeof(vars) / sizeof(vars[0]); i++)
		present = kf_aws_env(vars[i]) != NULL;
	if (present)
		return 1;
	paths[0] = kf_aws_cred_file_path();
	paths[1] = kf_aws_config_file_path();
	for (int i = 0; i < 2; i++) {
		if (!present && paths[i] && access(paths[i], R_OK) == 0)
			present = 1;
		free(paths[i]);
	}
	return present;
}

/* ---------- region ---------- */

int kf_aws_region_valid(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

int kf_aws_default_region(const char *profile, char *out, size_t outlen,
			  struct kf_err *err)
{
	const char *r = kf_aws_env("AWS_REGION");
	struct kf_ini cfg;
	char *path = NULL;
	int rc = -1, explicit_;
	const char *name = kf_aws_profile_name(profile, &explicit_);

	kf_ini_init(&cfg);
	if (!r)
		r = kf_aws_env("AWS_DEFAULT_REGION");
	if (!r) {
		path = kf_aws_config_file_path();
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
	if (!kf_aws_region_valid(r, strlen(r))) {
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

/* ---------- endpoints ---------- */

/* An http(s) URL into out without its trailing slashes; bad says why not. */
static int url_copy(const char *u, const char *bad, char *out, size_t outlen,
		    struct kf_err *err)
{
	size_t n = kf_aws_url_len(u);

	if (n == 0 ||
	    (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
		return kf_fail(err, KF_E_INVALID, "%s", bad);
	if (n >= outlen)
		return kf_fail(err, KF_E_RANGE, "endpoint URL too long");
	memcpy(out, u, n);
	out[n] = '\0';
	return 0;
}

/* https://HOST.REGION.amazonaws.com, .com.cn in the China regions. */
static int aws_url(const struct aws_service *svc, const char *region, char *out,
		   size_t outlen, struct kf_err *err)
{
	if (!region || !kf_aws_region_valid(region, strlen(region)))
		return kf_fail(err, KF_E_INVALID, "invalid AWS region name");
	if ((size_t)snprintf(out, outlen, "https://%s.%s.amazonaws.com%s",
			     svc->host, region,
			     strncmp(region, "cn-", 3) == 0 ? ".cn" : "") >=
	    outlen)
		return kf_fail(err, KF_E_RANGE, "endpoint buffer too small");
	return 0;
}

/*
 * The endpoint profile name configures for svc: its `services` section's
 * KEY.endpoint_url, else its endpoint_url; NULL when none is set or the
 * profile sets ignore_configured_endpoint_urls.  Points into cfg.
 */
static const char *profile_endpoint(const struct kf_ini *cfg, const char *name,
				    const struct aws_service *svc)
{
	const char *ig, *svcs, *u = NULL;
	char sect[256], key[64];

	ig = config_get(cfg, name, "ignore_configured_endpoint_urls");
	if (ig && strcasecmp(ig, "true") == 0)
		return NULL;
	svcs = config_get(cfg, name, "services");
	if (svcs && *svcs &&
	    (size_t)snprintf(sect, sizeof(sect), "services %s", svcs) <
		    sizeof(sect) &&
	    (size_t)snprintf(key, sizeof(key), "%s.endpoint_url", svc->key) <
		    sizeof(key))
		u = kf_ini_get(cfg, sect, key);
	if (!u || !*u)
		u = config_get(cfg, name, "endpoint_url");
	return u && *u ? u : NULL;
}

/*
 * Endpoint for one service: its AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_ENDPOINT_URL, the profile's settings (none of these when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), else the AWS one for
 * region.
 */
static int service_endpoint(const struct aws_service *svc, const char *profile,
			    const char *region, char *out, size_t outlen,
			    struct kf_err *err)
{
	int explicit_, rc = -1;
	const char *name = kf_aws_profile_name(profile, &explicit_);
	const char *u = NULL;
	struct kf_ini cfg;
	char *path = NULL;

	kf_ini_init(&cfg);
	if (!kf_aws_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		u = kf_aws_env(svc->env);
		if (!u)
			u = kf_aws_env("AWS_ENDPOINT_URL");
		if (!u) {
			path = kf_aws_config_file_path();
			if (path && kf_ini_load(&cfg, path, err) < 0)
				goto out;
			u = profile_endpoint(&cfg, name, svc);
		}
	}
	if (u)
		rc = url_copy(u, "configured endpoint URL is not http(s)", out,
			      outlen, err);
	else
		rc = aws_url(svc, region, out, outlen, err);
out:
	kf_ini_release(&cfg);
	free(path);
	return rc;
}

int kf_aws_endpoint(const char *opt, const char *profile, const char *region,
		    char *out, size_t outlen, struct kf_err *err)
{
	if (opt && *opt)
		return url_copy(opt, "aws_endpoint must be an http(s) URL", out,
				outlen, err);
	return service_endpoint(&sm_service, profile, region, out, outlen, err);
}

int kf_aws_ssm_endpoint(const char *opt, const char *profile,
			const char *region, char *out, size_t outlen,
			struct kf_err *err)
{
	if (opt && *opt)
		return url_copy(opt, "ssm_endpoint must be an http(s) URL", out,
				outlen, err);
	return service_endpoint(&ssm_service, profile, region, out, outlen,
				err);
}

int kf_aws_sts_endpoint(const char *profile, char *out, size_t outlen,
			struct kf_err *err)
{
	char region[64];
	struct kf_err rerr = KF_ERR_INIT;

	if (kf_aws_default_region(profile, region, sizeof(region), &rerr) < 0) {
		if (rerr.code != KF_E_NOTFOUND)
			return kf_fail(err, rerr.code, "%s", rerr.msg);
		/* No region: a configured URL or the global endpoint. */
		if (service_endpoint(&sts_service, profile, "us-east-1", out,
				     outlen, err) < 0)
			return -1;
		if (strcmp(out, "https://sts.us-east-1.amazonaws.com") == 0 &&
		    (size_t)snprintf(out, outlen,
				     "https://sts.amazonaws.com") >= outlen)
			return kf_fail(err, KF_E_RANGE, "buffer too small");
		return 0;
	}
	return service_endpoint(&sts_service, profile, region, out, outlen,
				err);
}
