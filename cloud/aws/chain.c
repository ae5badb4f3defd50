/*
 * The AWS credential chain: a table of sources tried in the SDKs' order,
 * then the refresh of temporary credentials before they expire without
 * stalling readers.  Never does network I/O while holding the chain's
 * lock, and never logs a key or token: logs name the source.
 */
#include "aws/chain_priv.h"
#include "aws/config.h"
#include "core/ini.h"
#include "core/buf.h"
#include "core/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADVISORY_S (15 * 60)  /* refresh early, others keep using old */
#define MANDATORY_S (10 * 60) /* below this, callers wait for fresh ones */
#define RETRY_AFTER_S 30      /* pause after a failed advisory refresh */
#define MARGIN_S 60	      /* still good enough to hand out */
#define IMDS_DEFAULT "http://169.254.169.254"
#define ECS_HOST "http://169.254.170.2"

/* What resolution reads: the profile in use and the shared files. */
struct resolve_ctx {
	const char *name; /* profile in use */
	int explicit_;	  /* named by option or environment */
	const char *opt;  /* the -o aws_profile= value, or NULL */
	int loaded;	  /* cred and conf are read */
	struct kf_ini cred, conf;
	const char *sect; /* the profile's config section, or NULL */
};

/*
 * One credential source.  detect() reads the environment and the files,
 * never the network: 1 when the source is configured (it fills the
 * settings, label included), 0 when it is not (the chain goes on), -1 on
 * a configuration error (the chain stops there).
 */
struct kf_aws_source {
	const char *tried; /* in "no AWS credentials found: tried ..." */
	int tried_profile; /* ... followed by the profile's name */
	int (*detect)(struct kf_aws_source_cfg *s, struct resolve_ctx *r,
		      struct kf_err *err);
	kf_aws_fetch_fn fetch;
	int absent_if_fails; /* a failed first fetch means "not here"
				 * (IMDS off EC2 or without a role) */
};

/* ---------- detection ---------- */

static int set_label(struct kf_aws_source_cfg *s, const char *what,
		     const char *name, struct kf_err *err)
{
	if ((size_t)snprintf(s->label, sizeof(s->label), "%s%s%s", what,
			     name ? " " : "",
			     name ? name : "") >= sizeof(s->label))
		return kf_fail(err, KF_E_INVALID,
			       "credential source name too long");
	return 1;
}

/* Read the credentials and config files (once). */
static int files_load(struct resolve_ctx *r, const struct kf_aws_source_cfg *s,
		      struct kf_err *err)
{
	if (r->loaded)
		return 0;
	if (kf_ini_load(&r->cred, s->cred_path, err) < 0 ||
	    kf_ini_load(&r->conf, s->config_path, err) < 0)
		return -1;
	r->sect = kf_aws_config_section(&r->conf, r->name);
	r->loaded = 1;
	return 0;
}

/* The environment variable, else the profile's key in the config file. */
static const char *setting(const struct resolve_ctx *r, const char *var,
			   const char *key)
{
	const char *v = kf_aws_env(var);

	if (!v && r->sect)
		v = kf_ini_get(&r->conf, r->sect, key);
	return v;
}

static int detect_env(struct kf_aws_source_cfg *s, struct resolve_ctx *r,
		      struct kf_err *err)
{
	if (!kf_aws_env("AWS_ACCESS_KEY_ID"))
		return 0;
	return set_label(s, "environment", NULL, err);
}

/* Each setting from the environment first, then the profile. */
static int detect_web_identity(struct kf_aws_source_cfg *s,
			       struct resolve_ctx *r, struct kf_err *err)
{
	const char *arn, *tfile, *sn;
	char sts[1024], defsn[64];
	int from_env;

	if (files_load(r, s, err) < 0)
		return -1;
	arn = setting(r, "AWS_ROLE_ARN", "role_arn");
	tfile = setting(r, "AWS_WEB_IDENTITY_TOKEN_FILE",
			"web_identity_token_file");
	if (!arn || !*arn || !tfile || !*tfile)
		return 0;
	from_env = kf_aws_env("AWS_ROLE_ARN") &&
		   kf_aws_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	sn = setting(r, "AWS_ROLE_SESSION_NAME", "role_session_name");
	if (!sn || !*sn) {
		/* Cannot truncate: a 64-bit number fits. */
		(void)snprintf(defsn, sizeof(defsn), "keyfs-session-%lld",
			       (long long)time(NULL));
		sn = defsn;
	}
	if (kf_aws_sts_endpoint(r->opt, sts, sizeof(sts), err) < 0)
		return -1;
	s->role_arn = strdup(arn);
	s->session_name = strdup(sn);
	s->token_file = kf_aws_expand_home(tfile);
	s->sts_url = strdup(sts);
	if (!s->role_arn || !s->session_name || !s->token_file || !s->sts_url)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return set_label(s, from_env ? "web identity" : "web identity profile",
			 from_env ? NULL : r->name, err);
}

/*
 * Static keys of the profile: the credentials file, then the config file.
 * What keyfs cannot do (role chaining, credential_process, SSO) is an
 * error rather than a silent fall-through, and so is a named profile
 * that exists nowhere.
 */
static int detect_profile(struct kf_aws_source_cfg *s, struct resolve_ctx *r,
			  struct kf_err *err)
{
	const struct kf_ini *conf = &r->conf;
	const char *sect;

	if (files_load(r, s, err) < 0)
		return -1;
	sect = r->sect;
	if (sect && kf_ini_get(conf, sect, "role_arn"))
		return kf_fail(err, KF_E_NOTSUP,
			       "profile %s assumes a role through "
			       "source_profile or credential_source, which "
			       "keyfs does not support",
			       r->name);
	if (kf_ini_has_section(&r->cred, r->name) &&
	    kf_ini_get(&r->cred, r->name, "aws_access_key_id"))
		return set_label(s, "profile", r->name, err);
	if (sect && kf_ini_get(conf, sect, "aws_access_key_id")) {
		s->from_config = 1;
		return set_label(s, "config profile", r->name, err);
	}
	if (sect && (kf_ini_get(conf, sect, "credential_process") ||
		     kf_ini_get(conf, sect, "sso_session") ||
		     kf_ini_get(conf, sect, "sso_start_url")))
		return kf_fail(err, KF_E_NOTSUP,
			       "profile %s uses credential_process or SSO, "
			       "which keyfs does not support",
			       r->name);
	if (r->explicit_ && !sect && !kf_ini_has_section(&r->cred, r->name))
		return kf_fail(err, KF_E_NOTFOUND,
			       "AWS profile %s not found in %s or %s", r->name,
			       s->cred_path, s->config_path);
	return 0;
}

/* Is host of url loopback or an ECS link-local address? */
static int container_url_ok(const char *url)
{
	static const char *const hosts[] = {
		"127.",		 "localhost",	   "[::1]",
		"169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"
	};
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
			h += n;
			while (isdigit((unsigned char)*h) || *h == '.')
				h++;
			return *h == '\0' || *h == ':' || *h == '/';
		}
		return h[n] == '\0' || h[n] == ':' || h[n] == '/';
	}
	return 0;
}

static int detect_container(struct kf_aws_source_cfg *s, struct resolve_ctx *r,
			    struct kf_err *err)
{
	const char *rel = kf_aws_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = kf_aws_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct kf_buf u;

	if (rel) {
		kf_buf_init(&u, 4096);
		if (rel[0] != '/' ||
		    kf_buf_addf(&u, "%s%s", ECS_HOST, rel) < 0) {
			kf_buf_release(&u);
			return kf_fail(err, KF_E_INVALID,
				       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
				       "must be a path");
		}
		s->url = kf_buf_detach(&u, NULL);
	} else if (full) {
		if (!container_url_ok(full))
			return kf_fail(err, KF_E_INVALID,
				       "AWS_CONTAINER_CREDENTIALS_FULL_URI "
				       "must be https or http to a "
				       "loopback/ECS address");
		s->url = strdup(full);
	} else {
		return 0;
	}
	if (!s->url)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return set_label(s, "container", NULL, err);
}

static int detect_imds(struct kf_aws_source_cfg *s, struct resolve_ctx *r,
		       struct kf_err *err)
{
	const char *ep = kf_aws_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");

	if (kf_aws_env_true("AWS_EC2_METADATA_DISABLED"))
		return 0;
	if (!ep)
		ep = IMDS_DEFAULT;
	s->url = strndup(ep, kf_aws_url_len(ep));
	if (!s->url)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return set_label(s, "imds", NULL, err);
}

/* The chain, in botocore's order. */
static const struct kf_aws_source sources[] = {
	{ "environment", 0, detect_env, kf_aws_fetch_env, 0 },
	{ "web identity", 0, detect_web_identity, kf_aws_fetch_web_identity,
	  0 },
	{ "profile", 1, detect_profile, kf_aws_fetch_profile, 0 },
	{ "container", 0, detect_container, kf_aws_fetch_container, 0 },
	{ "imds (disabled)", 0, detect_imds, kf_aws_fetch_imds, 1 },
};

/*
 * Pick the first configured source of the table.  Returns 0 with c->src
 * set, 1 when nothing is configured (tried lists what was looked at), -1
 * on a configuration error.
 */
static int resolve(struct kf_aws_chain *c, const struct kf_aws_chain_cfg *cfg,
		   struct kf_buf *tried, struct kf_err *err)
{
	struct resolve_ctx r;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	kf_ini_init(&r.cred);
	kf_ini_init(&r.conf);
	r.name = kf_aws_profile_name(cfg->profile, &r.explicit_);
	r.opt = cfg->profile;
	c->cfg.timeout_ms = cfg->timeout_ms;
	c->cfg.profile = strdup(r.name);
	c->cfg.cred_path = kf_aws_cred_file_path();
	c->cfg.config_path = kf_aws_config_file_path();
	if (!c->cfg.profile || !c->cfg.cred_path || !c->cfg.config_path) {
		kf_fail(err, KF_E_NOMEM, "out of memory (or no home dir)");
		goto out;
	}
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		const struct kf_aws_source *src = &sources[i];
		int found = src->detect(&c->cfg, &r, err);

		if (found < 0)
			goto out;
		if (found > 0) {
			c->src = src;
			rc = 0;
			goto out;
		}
		/* The list is only a hint: a full buffer just ends it. */
		(void)kf_buf_addf(tried, "%s%s%s%s", i ? ", " : "", src->tried,
				  src->tried_profile ? " " : "",
				  src->tried_profile ? r.name : "");
	}
	rc = 1;
out:
	kf_ini_release(&r.cred);
	kf_ini_release(&r.conf);
	return rc;
}

/* *err = "LABEL: e's message", e's code and provider details kept. */
static void fail_from(struct kf_err *err, const char *label,
		      const struct kf_err *e)
{
	struct kf_err copy = *e;

	kf_fail_provider(err, copy.code, copy.http_status, copy.provider_code,
			 "%s: %s", label, copy.msg);
}

/* ---------- the chain ---------- */

struct kf_aws_chain *kf_aws_chain_alloc(void)
{
	struct kf_aws_chain *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
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
	c = kf_aws_chain_alloc();
	if (!c)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	r = resolve(c, cfg, &tried, err);
	if (r < 0)
		goto out;
	if (r == 1) {
		kf_fail(err, KF_E_NOTFOUND,
			"no AWS credentials found: tried %s",
			kf_buf_str(&tried));
		goto out;
	}
	if (c->src->fetch(&c->cfg, &first, err) < 0) {
		if (c->src->absent_if_fails)
			kf_fail(err, KF_E_NOTFOUND,
				"no AWS credentials found: tried %s%s%s (%s)",
				kf_buf_str(&tried), tried.len ? ", " : "",
				c->cfg.label, kf_code_name(err->code));
		else
			fail_from(err, c->cfg.label, err);
		goto out;
	}
	c->cur = first;
	c->have = 1;
	kf_log(KF_LOG_INFO, "aws: using credentials from %s", c->cfg.label);
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

/*
 * Hand out the current credentials when they are good enough, or the
 * error of a refresh that ended meanwhile; wait while another thread
 * refreshes credentials too old to use.  0 or -1 when answered, 1 when
 * this caller must refresh.
 */
static int current_locked(struct kf_aws_chain *c, struct kf_aws_creds *out,
			  struct kf_err *err)
{
	unsigned long seen = c->gen;

	for (;;) {
		int done = c->gen != seen; /* a refresh ended meanwhile */
		time_t now = time(NULL);
		long long left = remaining_locked(c, now);

		if (left > ADVISORY_S ||
		    (left > MARGIN_S && now < c->retry_after) ||
		    (left > MANDATORY_S && c->refreshing) ||
		    (done && left > MARGIN_S))
			return kf_aws_creds_copy(out, &c->cur, err);
		if (done && c->last_err.code != KF_OK) {
			*err = c->last_err;
			return -1;
		}
		if (!c->refreshing)
			return 1;
		/* Another thread refreshes and ours are too old: wait. */
		pthread_cond_wait(&c->cond, &c->lock);
	}
}

/* Fresh credentials become the current ones (ownership moves). */
static void install_locked(struct kf_aws_chain *c, struct kf_aws_creds *fresh,
			   time_t now)
{
	c->gen++;
	kf_aws_creds_release(&c->cur);
	c->cur = *fresh;
	memset(fresh, 0, sizeof(*fresh));
	c->have = 1;
	c->invalid = 0;
	kf_err_clear(&c->last_err);
	/* Fresh but already short-lived: do not refetch every call. */
	c->retry_after = remaining_locked(c, now) <= ADVISORY_S ?
				 now + RETRY_AFTER_S :
				 0;
}

void kf_aws_chain_install(struct kf_aws_chain *c, struct kf_aws_creds *fresh)
{
	pthread_mutex_lock(&c->lock);
	install_locked(c, fresh, time(NULL));
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Take in the result of this caller's refresh (rc, fresh, ferr). */
static int refreshed_locked(struct kf_aws_chain *c, int rc,
			    struct kf_aws_creds *fresh,
			    const struct kf_err *ferr, struct kf_aws_creds *out,
			    struct kf_err *err)
{
	time_t now = time(NULL);

	c->refreshing = 0;
	if (rc == 0) {
		install_locked(c, fresh, now);
		return kf_aws_creds_copy(out, &c->cur, err);
	}
	c->gen++;
	c->last_err = *ferr;
	if (remaining_locked(c, now) > MARGIN_S) {
		kf_log(KF_LOG_WARN,
		       "aws: refreshing credentials from %s failed (%s); "
		       "keeping the current ones",
		       c->cfg.label, ferr->msg);
		c->retry_after = now + RETRY_AFTER_S;
		return kf_aws_creds_copy(out, &c->cur, err);
	}
	fail_from(err, c->cfg.label, ferr);
	c->last_err = *err;
	return -1;
}

int kf_aws_chain_get(struct kf_aws_chain *c, struct kf_aws_creds *out,
		     struct kf_err *err)
{
	struct kf_aws_creds fresh;
	struct kf_err ferr = KF_ERR_INIT;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	if (c->role && !c->have) {
		/* No token yet: nothing to refresh with. */
		rc = kf_fail(err, KF_E_DENIED,
			     "no web identity token accepted yet for %s",
			     c->cfg.role_arn);
		goto unlock;
	}
	rc = current_locked(c, out, err);
	if (rc != 1)
		goto unlock;
	c->refreshing = 1;
	pthread_mutex_unlock(&c->lock);

	memset(&fresh, 0, sizeof(fresh));
	/* no lock: network */
	rc = c->role ? kf_aws_role_fetch(c, &fresh, &ferr) :
		       c->src->fetch(&c->cfg, &fresh, &ferr);

	pthread_mutex_lock(&c->lock);
	rc = refreshed_locked(c, rc, &fresh, &ferr, out, err);
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
	return c ? c->cfg.label : "none";
}

void kf_aws_chain_free(struct kf_aws_chain *c)
{
	if (!c)
		return;
	kf_aws_creds_release(&c->cur);
	kf_aws_role_free(c->role);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	kf_aws_source_cfg_release(&c->cfg);
	free(c);
}
