/*
 * The Google credential object: which source keyfs uses (key file named
 * by the option or GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, the
 * metadata server) and the access token refresher every request asks for
 * its Authorization header.  Tokens live in kf_secret memory; logs and
 * errors name only the source, never a token or credential.
 */
#include "gcp/auth_int.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static time_t (*clock_fn)(time_t *) = time;

void kf_gcp_auth_set_clock(time_t (*now)(time_t *))
{
	clock_fn = now ? now : time;
}

time_t kf_gcp_auth_now(void)
{
	return clock_fn(NULL);
}

int kf_gcp_copy_str(char *dst, size_t n, const char *src)
{
	size_t len = src ? strlen(src) : 0;

	if (len >= n) {
		dst[0] = '\0';
		return -1;
	}
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

void kf_gcp_auth_free(struct kf_gcp_auth *a)
{
	if (!a)
		return;
	kf_secret_free(a->private_key);
	kf_secret_free(a->client_secret);
	kf_secret_free(a->refresh_token);
	kf_secret_free(a->hdr);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/*
 * No key file anywhere: the metadata server, only if it answers quickly
 * (off GCE nothing listens).  Its first token is fetched here.
 */
static int use_metadata(struct kf_gcp_auth *a, const char *adc,
			struct kf_err *err)
{
	unsigned t = a->timeout_ms;
	struct kf_err merr = KF_ERR_INIT;

	kf_gcp_md_host(a->md_host, sizeof(a->md_host));
	a->kind = KF_GCP_CRED_METADATA;
	/* Names the source in logs: a cut name is harmless. */
	(void)snprintf(a->source, sizeof(a->source), "metadata server %s",
		       a->md_host);
	a->timeout_ms = t < 2000 ? t : 2000;
	if (kf_gcp_token_fetch(a, &a->hdr, &a->expiry, &merr) < 0) {
		if (merr.code == KF_E_DENIED || merr.code == KF_E_NOTFOUND)
			return kf_fail_provider(err, KF_E_DENIED,
						merr.http_status,
						merr.provider_code, "%s",
						merr.msg);
		return kf_fail(err, KF_E_NOTFOUND,
			       "no Google credentials found: tried "
			       "gcp_credentials, "
			       "GOOGLE_APPLICATION_CREDENTIALS, %s, metadata "
			       "server %s (%s)",
			       adc, a->md_host, kf_code_name(merr.code));
	}
	a->timeout_ms = t;
	a->gen = 1;
	return 0;
}

/* The first source that is configured, in google-auth's order. */
static int find_source(struct kf_gcp_auth *a, const char *credentials,
		       struct kf_err *err)
{
	const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	char adc[600];

	if (credentials && *credentials)
		return kf_gcp_cred_load(a, credentials, "gcp_credentials", err);
	if (env && *env)
		return kf_gcp_cred_load(a, env,
					"GOOGLE_APPLICATION_CREDENTIALS", err);
	if (kf_gcp_adc_path(adc, sizeof(adc)) < 0)
		kf_gcp_copy_str(adc, sizeof(adc), "the gcloud ADC file");
	else if (access(adc, F_OK) == 0)
		return kf_gcp_cred_load(a, adc, "gcloud ADC file", err);
	return use_metadata(a, adc, err);
}

int kf_gcp_auth_new(const struct kf_gcp_auth_cfg *cfg, struct kf_gcp_auth **out,
		    struct kf_err *err)
{
	struct kf_gcp_auth *a = NULL;
	const char *q = getenv("GOOGLE_CLOUD_QUOTA_PROJECT");
	int rc = -1;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	if (find_source(a, cfg->credentials, err) < 0)
		goto out;
	if (q && *q)
		kf_gcp_copy_str(a->quota_project, sizeof(a->quota_project), q);
	if (!a->hdr) {
		if (kf_gcp_token_fetch(a, &a->hdr, &a->expiry, err) < 0)
			goto out;
		a->gen = 1;
	}
	kf_log(KF_LOG_INFO, "gcp: using %s", a->source);
	*out = a;
	a = NULL;
	rc = 0;
out:
	kf_gcp_auth_free(a);
	return rc;
}

static int copy_hdr_locked(struct kf_gcp_auth *a, struct kf_secret **hdr,
			   uint64_t *gen, struct kf_err *err)
{
	*hdr = kf_secret_dup(a->hdr->data, a->hdr->len + 1);
	if (!*hdr)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	(*hdr)->len = a->hdr->len;
	if (gen)
		*gen = a->gen;
	return 0;
}

/*
 * Serve the caller without fetching when possible: 1 with *rc set when
 * done (a fresh token; a still valid one while another thread refreshes;
 * or -1 sharing the error of the refresh it waited for), 0 when this
 * caller must refresh.  Called and returns with a->mu held.
 */
static int served_locked(struct kf_gcp_auth *a, struct kf_secret **hdr,
			 uint64_t *gen, struct kf_err *err, int *rc)
{
	for (;;) {
		time_t now = kf_gcp_auth_now();
		uint64_t seq;

		if (a->hdr && (now + KF_GCP_REFRESH_MARGIN < a->expiry ||
			       (now < a->expiry && a->refreshing))) {
			*rc = copy_hdr_locked(a, hdr, gen, err);
			return 1;
		}
		if (!a->refreshing)
			return 0;
		seq = a->seq;
		while (a->refreshing && a->seq == seq)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->seq != seq &&
		    !(a->hdr && kf_gcp_auth_now() < a->expiry)) {
			if (err)
				*err = a->last_err;
			*rc = -1;
			return 1;
		}
	}
}

/*
 * Record this caller's refresh (frc, the new header *nh, taken on
 * success, or its error) and serve the caller: a failed refresh keeps a
 * token that has not expired yet.  With a->mu held.
 */
static int refreshed_locked(struct kf_gcp_auth *a, int frc,
			    struct kf_secret **nh, time_t exp,
			    const struct kf_err *ferr, struct kf_secret **hdr,
			    uint64_t *gen, struct kf_err *err)
{
	a->refreshing = 0;
	a->seq++;
	if (frc == 0) {
		kf_secret_free(a->hdr);
		a->hdr = *nh;
		*nh = NULL;
		a->expiry = exp;
		a->gen++;
		kf_err_clear(&a->last_err);
		return copy_hdr_locked(a, hdr, gen, err);
	}
	a->last_err = *ferr;
	if (a->hdr && kf_gcp_auth_now() < a->expiry) {
		kf_log(KF_LOG_WARN,
		       "gcp: token refresh failed (%s), using the "
		       "current token until it expires",
		       kf_code_name(ferr->code));
		return copy_hdr_locked(a, hdr, gen, err);
	}
	if (err)
		*err = *ferr;
	return -1;
}

int kf_gcp_auth_header(struct kf_gcp_auth *a, struct kf_secret **hdr,
		       uint64_t *gen, struct kf_err *err)
{
	struct kf_secret *nh = NULL;
	struct kf_err ferr = KF_ERR_INIT;
	time_t exp = 0;
	int rc = -1, frc;

	*hdr = NULL;
	pthread_mutex_lock(&a->mu);
	if (served_locked(a, hdr, gen, err, &rc))
		goto unlock;
	a->refreshing = 1;
	pthread_mutex_unlock(&a->mu);

	/* The network, without the lock: others use the valid token. */
	frc = kf_gcp_token_fetch(a, &nh, &exp, &ferr);

	pthread_mutex_lock(&a->mu);
	rc = refreshed_locked(a, frc, &nh, exp, &ferr, hdr, gen, err);
	pthread_cond_broadcast(&a->cv);
unlock:
	pthread_mutex_unlock(&a->mu);
	kf_secret_free(nh);
	return rc;
}

void kf_gcp_auth_invalidate(struct kf_gcp_auth *a, uint64_t gen)
{
	pthread_mutex_lock(&a->mu);
	if (gen == a->gen)
		a->expiry = 0;
	pthread_mutex_unlock(&a->mu);
}

const char *kf_gcp_auth_source(const struct kf_gcp_auth *a)
{
	return a && a->source[0] ? a->source : "none";
}

const char *kf_gcp_auth_quota_project(const struct kf_gcp_auth *a)
{
	return a ? a->quota_project : "";
}
