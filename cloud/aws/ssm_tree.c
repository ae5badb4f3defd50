/*
 * The `ssm` provider: maps ssm/REGION/PATH onto Parameter Store calls
 * (aws/ssm.h).  This file holds its vtable, options and creation; the
 * operations live beside it (ssm_resolve.c, ssm_list.c, ssm_read.c,
 * ssm_write.c, ssm_views.c, ssm_xattr.c).  It keeps no values: what it
 * knows about names (so `ls -l` and lookups below a listed directory cost
 * no call, and its own writes and deletes show before DescribeParameters
 * catches up) lives in aws/ssm_index.h.  Never logs a value.
 *
 * Decisions where Parameter Store and files disagree:
 * - /a/b is ssm/REGION/a/b; a one-level name "foo" is ssm/REGION/foo as
 *   "/foo" is (when a service keeps both, "/foo" is shown and "foo" is
 *   logged once).  Names created here always begin with '/'.
 * - A path that is a parameter and has parameters below it is a
 *   directory; the parameter stays readable through its views (a:3).
 * - An empty value cannot be stored: committing 0 bytes fails with
 *   KF_E_INVALID and a log line, nothing created or changed.
 * - Values are UTF-8 text without NUL (else KF_E_INVALID at the write()
 *   that shows it); 4 KB for Standard parameters, 8 KB for Advanced
 *   (else KF_E_TOOBIG at the write() that crosses it).
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/creds.h"
#include "core/log.h"

static void ssm_free(struct kf_provider *p);

static const struct kf_provider_ops ssm_ops = {
	.getattr = kf_ssm_tree_getattr,
	.list = kf_ssm_tree_list,
	.mkdir = kf_ssm_tree_mkdir,
	.rmdir = kf_ssm_tree_rmdir,
	.unlink = kf_ssm_tree_unlink,
	.can_create = kf_ssm_tree_can_create,
	.check_write = kf_ssm_tree_check_write,
	.read = kf_ssm_tree_read,
	.read_nearby = kf_ssm_tree_read_nearby,
	.commit = kf_ssm_tree_commit,
	.check_bytes = kf_ssm_tree_check_bytes,
	.read_version = kf_ssm_tree_read_version,
	.versions = kf_ssm_tree_versions,
	.stamp = kf_ssm_tree_stamp,
	.getxattr = kf_ssm_tree_getxattr,
	.setxattr = kf_ssm_tree_setxattr,
	.listxattr = kf_ssm_tree_listxattr,
	.start = NULL,
	.free = ssm_free,
};

static void ssm_free(struct kf_provider *p)
{
	struct ssm_priv *s;

	if (!p)
		return;
	s = p->priv;
	if (s) {
		for (size_t i = 0; i < s->nregions; i++)
			kf_aws_ssm_free(s->regions[i].ssm);
		free(s->regions);
		kf_ssm_index_free(s->idx);
		if (s->own_chain)
			kf_aws_chain_free(s->chain);
		free(s->kms_key);
		free(s);
	}
	free(p);
}

/* ---- configuration ----------------------------------------------------- */

static const struct kf_provider_opt ssm_opts[] = {
	{ "ssm_region", "R[:R...]",
	  "AWS regions shown under ssm/ (default: aws_region=, else "
	  "AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)" },
	{ "ssm_endpoint", "URL",
	  "Parameter Store endpoint (default: AWS_ENDPOINT_URL_SSM, "
	  "AWS_ENDPOINT_URL, the profile, else AWS)" },
	{ "ssm_type", "TYPE",
	  "type of new parameters: SecureString, String or StringList "
	  "(default: SecureString)" },
	{ "ssm_kms_key", "KEY",
	  "KMS key of new SecureString parameters (default: the account's "
	  "alias/aws/ssm)" },
	{ "ssm_tier", "TIER",
	  "tier of new parameters and of values over 4 KB: Standard, "
	  "Advanced or Intelligent-Tiering (default: Standard; values up to "
	  "4 KB)" },
	{ NULL, NULL, NULL },
};

static const char *const ssm_shares[] = { "aws_region", "aws_profile", NULL };

static const char *const types[] = { "SecureString", "String", "StringList",
				     NULL };
static const char *const tiers[] = { "Standard", "Advanced",
				     "Intelligent-Tiering", NULL };

/* An option's value; empty counts as unset. */
static const char *opt_get(const struct kf_config *cfg, const char *key)
{
	const char *v = kf_config_get(cfg, key);

	return v && v[0] ? v : NULL;
}

static int ssm_detect(const struct kf_config *cfg)
{
	return kf_aws_config_present(opt_get(cfg, "aws_profile")) ||
	       kf_config_get(cfg, "ssm_region") != NULL ||
	       kf_config_get(cfg, "aws_region") != NULL;
}

/* v as one of names[] (any case), into *out; else a clear failure. */
static int one_of(const char *key, const char *v, const char *const *names,
		  const char **out, struct kf_err *err)
{
	for (size_t i = 0; names[i]; i++) {
		if (strcasecmp(v, names[i]) == 0) {
			*out = names[i];
			return 0;
		}
	}
	return kf_fail(err, KF_E_INVALID, "ssm: %s= must be %s, %s or %s", key,
		       names[0], names[1], names[2]);
}

/* -o ssm_type=, ssm_kms_key=, ssm_tier= */
static int new_params_setup(struct ssm_priv *s, const struct kf_config *cfg,
			    struct kf_err *err)
{
	const char *type = opt_get(cfg, "ssm_type");
	const char *tier = opt_get(cfg, "ssm_tier");
	const char *key = opt_get(cfg, "ssm_kms_key");

	s->type = types[0];
	if ((type && one_of("ssm_type", type, types, &s->type, err)) ||
	    (tier && one_of("ssm_tier", tier, tiers, &s->tier, err)))
		return -1;
	if (!key)
		return 0;
	if (strcmp(s->type, "SecureString") != 0)
		return kf_fail(err, KF_E_INVALID,
			       "ssm: ssm_kms_key= applies to "
			       "SecureString parameters only (ssm_type=%s)",
			       s->type);
	for (const char *c = key; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return kf_fail(err, KF_E_INVALID,
				       "ssm: ssm_kms_key= "
				       "is a key id, ARN or alias");
	s->kms_key = strdup(key);
	if (!s->kms_key)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

/* Region r (n bytes) once in s->regions. */
static int region_add(struct ssm_priv *s, const char *r, size_t n,
		      struct kf_err *err)
{
	struct ssm_region *v;

	for (size_t i = 0; i < s->nregions; i++)
		if (strlen(s->regions[i].name) == n &&
		    !strncmp(s->regions[i].name, r, n))
			return 0;
	v = realloc(s->regions, (s->nregions + 1) * sizeof(*v));
	if (!v)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	s->regions = v;
	memset(&v[s->nregions], 0, sizeof(*v));
	memcpy(v[s->nregions].name, r, n);
	s->nregions++;
	return 0;
}

/* The regions shown: ssm_region=, else aws_region=, else the default
 * region as aws/ resolves it. */
static int regions_setup(struct ssm_priv *s, const struct kf_config *cfg,
			 const char *profile, struct kf_err *err)
{
	const char *key = "ssm_region", *list = opt_get(cfg, key);
	char region[64] = "";

	if (!list) {
		key = "aws_region";
		list = opt_get(cfg, key);
	}
	if (!list) {
		if (kf_aws_default_region(profile, region, sizeof(region), err))
			return kf_fail(err, KF_E_INVALID,
				       "ssm: no region: set "
				       "-o ssm_region=REGION or AWS_REGION");
		list = region;
	}
	for (const char *r = list; *r;) {
		size_t n = strcspn(r, ":,");

		if (!kf_aws_region_valid(r, n))
			return kf_fail(err, KF_E_INVALID,
				       "ssm: bad region in %s=%.64s", key,
				       list);
		if (region_add(s, r, n, err))
			return -1;
		r += n + (r[n] != '\0');
	}
	if (s->nregions == 0)
		return kf_fail(err, KF_E_INVALID, "ssm: empty %s=", key);
	return 0;
}

/* One Parameter Store client per region, sharing the credential chain. */
static int clients_setup(struct ssm_priv *s, struct kf_aws_chain *role,
			 const char *endpoint, const char *profile,
			 unsigned timeout_ms, struct kf_err *err)
{
	struct kf_aws_chain_cfg ccfg = { .profile = profile,
					 .timeout_ms = timeout_ms };

	if (role) {
		s->chain = role; /* borrowed: the caller frees it */
	} else {
		if (kf_aws_chain_new(&ccfg, &s->chain, err))
			return kf_fail_within(err, "ssm: credentials");
		s->own_chain = 1;
	}
	for (size_t i = 0; i < s->nregions; i++) {
		struct kf_aws_ssm_cfg c;
		char url[1024];

		if (kf_aws_ssm_endpoint(endpoint, profile, s->regions[i].name,
					url, sizeof(url), err))
			return -1;
		memset(&c, 0, sizeof(c));
		c.endpoint = url;
		c.region = s->regions[i].name;
		c.chain = s->chain;
		c.timeout_ms = timeout_ms;
		if (kf_aws_ssm_new(&c, &s->regions[i].ssm, err))
			return -1;
	}
	return 0;
}

/*
 * One DescribeParameters (MaxResults 1) per region, so an endpoint that
 * does not answer is reported on the terminal.  Access refused only
 * warns: a host may be allowed GetParameter on its own parameters and
 * nothing else.
 */
static int probe(struct ssm_priv *s, struct kf_err *err)
{
	for (size_t i = 0; i < s->nregions; i++) {
		struct ssm_region *r = &s->regions[i];
		struct kf_aws_ssm_page pg;
		char what[160];

		if (kf_aws_ssm_list(r->ssm, NULL, 0, NULL, 1, &pg, err) == 0) {
			kf_aws_ssm_page_release(&pg);
			continue;
		}
		if (err->code != KF_E_DENIED && err->code != KF_E_INVALID) {
			/* a cut region name only shortens the message */
			(void)snprintf(what, sizeof(what),
				       "ssm: region %s: Parameter Store "
				       "endpoint not usable (-o providers= "
				       "can leave ssm/ out)",
				       r->name);
			return kf_fail_within(err, what);
		}
		kf_log(KF_LOG_WARN,
		       "ssm: %s: DescribeParameters refused (%s): "
		       "listing directories will fail",
		       r->name,
		       err->provider_code[0] ? err->provider_code :
					       kf_code_name(err->code));
		kf_err_clear(err);
	}
	return 0;
}

static int ssm_create(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err)
{
	struct kf_provider *p = calloc(1, sizeof(*p));
	struct ssm_priv *s = calloc(1, sizeof(*s));
	const char *profile = opt_get(cfg, "aws_profile");
	unsigned timeout_ms = (cfg->timeout ? cfg->timeout : 30) * 1000u;
	int rc = -1;

	*out = NULL;
	if (!p || !s) {
		free(p);
		free(s);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	p->ops = &ssm_ops;
	p->name = "ssm";
	p->max_value = KF_AWS_SSM_ADVANCED_MAX;
	p->priv = s;
	s->read_only = cfg->read_only;
	s->direct_reads = cfg->direct_reads;
	if (new_params_setup(s, cfg, err) ||
	    regions_setup(s, cfg, profile, err))
		goto out;
	s->idx = kf_ssm_index_new(s->nregions, (uint64_t)cfg->ttl * 1000u);
	if (!s->idx) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (clients_setup(s, cfg->aws_chain, opt_get(cfg, "ssm_endpoint"),
			  profile, timeout_ms, err))
		goto out;
	/* A role's provider is made per role at a Mount, after STS took the
	 * pod's token: the probe would cost a call per role and warn for
	 * every role that may not list; the reads report the endpoint. */
	if (!cfg->aws_chain && probe(s, err))
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	ssm_free(p);
	return rc;
}

const struct kf_provider_desc kf_ssm_desc = {
	.name = "ssm",
	.assumes_role = 1,
	.opts = ssm_opts,
	.shares = ssm_shares,
	.detect = ssm_detect,
	.create = ssm_create,
};
