/*
 * Where Google credentials and the default project are found, as
 * google-auth and gcloud look: environment variables, gcloud's
 * configuration directory (ADC file, active configuration) and the GCE
 * metadata server.  Reads configuration only; never reads or logs a
 * credential.
 */
#include "gcp/auth_int.h"
#include "core/http.h"
#include "core/ini.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MD_DEFAULT_HOST "169.254.169.254"

/* $CLOUDSDK_CONFIG, else ~/.config/gcloud. */
static int gcloud_dir(char *out, size_t n)
{
	const char *d = getenv("CLOUDSDK_CONFIG");
	const char *home;
	int w;

	if (d && *d)
		return kf_gcp_copy_str(out, n, d);
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return -1;
	w = snprintf(out, n, "%s/.config/gcloud", home);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

int kf_gcp_adc_path(char *out, size_t n)
{
	char dir[512];
	int w;

	if (gcloud_dir(dir, sizeof(dir)) < 0)
		return -1;
	w = snprintf(out, n, "%s/application_default_credentials.json", dir);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

void kf_gcp_md_host(char *out, size_t n)
{
	const char *h = getenv("GCE_METADATA_HOST");

	if (!h || !*h)
		h = getenv("GCE_METADATA_ROOT");
	if (kf_gcp_copy_str(out, n, h && *h ? h : MD_DEFAULT_HOST) < 0)
		kf_gcp_copy_str(out, n, MD_DEFAULT_HOST);
}

int kf_gcp_auth_present(const char *credentials)
{
	const char *g = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *m = getenv("GCE_METADATA_HOST");
	char adc[600];

	if ((credentials && *credentials) || (g && *g) || (m && *m))
		return 1;
	return kf_gcp_adc_path(adc, sizeof(adc)) == 0 && access(adc, R_OK) == 0;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
			 s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
}

/* gcloud's active configuration name: $CLOUDSDK_ACTIVE_CONFIG_NAME, else
 * the first line of DIR/active_config, else "default". */
static void active_config(const char *dir, char *name, size_t len)
{
	const char *env = getenv("CLOUDSDK_ACTIVE_CONFIG_NAME");
	char path[700], line[512];
	FILE *f;
	int w;

	kf_gcp_copy_str(name, len, "default");
	if (env && *env) {
		kf_gcp_copy_str(name, len, env);
		return;
	}
	w = snprintf(path, sizeof(path), "%s/active_config", dir);
	if (w < 0 || (size_t)w >= sizeof(path))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f)) {
		trim(line);
		if (*line)
			kf_gcp_copy_str(name, len, line);
	}
	fclose(f);
}

/* [core] project from gcloud's active configuration (an INI file, read
 * by the same parser as the AWS configuration files). */
static int gcloud_project(char *out, size_t outlen)
{
	char dir[512], path[700], name[128];
	struct kf_err e = KF_ERR_INIT;
	struct kf_ini ini;
	const char *v;
	int rc = -1, w;

	if (gcloud_dir(dir, sizeof(dir)) < 0)
		return -1;
	active_config(dir, name, sizeof(name));
	if (strchr(name, '/'))
		return -1;
	w = snprintf(path, sizeof(path), "%s/configurations/config_%s", dir,
		     name);
	if (w < 0 || (size_t)w >= sizeof(path))
		return -1;
	kf_ini_init(&ini);
	if (kf_ini_load(&ini, path, &e) == 0) {
		v = kf_ini_get(&ini, "core", "project");
		if (v && *v)
			rc = kf_gcp_copy_str(out, outlen, v);
	}
	kf_ini_release(&ini);
	return rc;
}

static int md_project(struct kf_gcp_auth *a, char *out, size_t outlen)
{
	const char *hdrs[] = { "Metadata-Flavor: Google", NULL };
	struct kf_http_req req = { 0 };
	struct kf_http_resp resp;
	struct kf_err e = KF_ERR_INIT;
	char host[256], url[400], flavor[64];
	int rc = -1;

	if (a && a->md_host[0])
		kf_gcp_copy_str(host, sizeof(host), a->md_host);
	else
		kf_gcp_md_host(host, sizeof(host));
	if (snprintf(url, sizeof(url),
		     "http://%s/computeMetadata/v1/project/project-id",
		     host) >= (int)sizeof(url))
		return -1;
	kf_http_resp_init(&resp);
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.timeout_ms = 2000;
	req.max_response = 4096;
	req.allow_metadata_ip = 1;
	if (kf_http_do(&req, &resp, &e) == 0 && resp.status == 200 &&
	    kf_http_resp_header(&resp, "Metadata-Flavor", flavor,
				sizeof(flavor)) &&
	    strcmp(flavor, "Google") == 0 && resp.body.len > 0 &&
	    resp.body.len < outlen) {
		kf_gcp_copy_str(out, outlen, kf_buf_str(&resp.body));
		trim(out);
		rc = *out ? 0 : -1;
	}
	kf_http_resp_release(&resp);
	return rc;
}

int kf_gcp_auth_project(struct kf_gcp_auth *a, char *out, size_t outlen,
			struct kf_err *err)
{
	static const char *const envs[] = { "GOOGLE_CLOUD_PROJECT",
					    "GCLOUD_PROJECT", NULL };
	const char *v;
	const char *m = getenv("GCE_METADATA_HOST");

	for (size_t i = 0; envs[i]; i++) {
		v = getenv(envs[i]);
		if (v && *v)
			return kf_gcp_copy_str(out, outlen, v) < 0 ?
				       kf_fail(err, KF_E_INVALID, "%s too long",
					       envs[i]) :
				       0;
	}
	if (a && a->project_id[0])
		return kf_gcp_copy_str(out, outlen, a->project_id);
	v = getenv("CLOUDSDK_CORE_PROJECT");
	if (v && *v)
		return kf_gcp_copy_str(out, outlen, v) < 0 ?
			       kf_fail(err, KF_E_INVALID,
				       "CLOUDSDK_CORE_PROJECT too long") :
			       0;
	if (gcloud_project(out, outlen) == 0)
		return 0;
	if (((a && a->kind == KF_GCP_CRED_METADATA) || (m && *m)) &&
	    md_project(a, out, outlen) == 0)
		return 0;
	return kf_fail(err, KF_E_NOTFOUND,
		       "no Google Cloud project: set -o gcp_project= or "
		       "GOOGLE_CLOUD_PROJECT");
}
