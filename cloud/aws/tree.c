/*
 * The `aws` provider: maps aws/REGION/NAME paths onto Secrets Manager
 * calls (aws/sm.h).  This file holds its vtable, options and creation;
 * the operations live beside it (resolve.c, list.c, read.c, write.c,
 * xattr.c, fieldsec.c).  It keeps no values: what it knows about names
 * (so `ls -l` costs list calls only, and its own creates and deletes show
 * before ListSecrets catches up) lives in aws/index.h.  Never logs a
 * value.
 *
 * Decisions where Secrets Manager and files disagree:
 * - An empty value cannot be stored (SecretString/SecretBinary min 1):
 *   committing 0 bytes to an existing secret fails with KF_E_INVALID
 *   (EINVAL) and a log line, the value is unchanged; 0 bytes on a new name
 *   (`touch`) creates the secret without a value, which reads empty.
 * - Valid UTF-8 without NUL goes out as SecretString, anything else as
 *   SecretBinary.  Fields of a field secret hold UTF-8 text only.
 * - A name scheduled for deletion: KF_E_STATE (EBUSY) on create/write with
 *   a log line; reads and lookups see it as absent.
 * - A directory wins over a file of the same name (secret "a" and "a/b");
 *   a field secret's fields win over secrets named below it.
 * - Listings ask for SortBy=name so a prefix directory spanning pages is
 *   listed once; a service that ignores SortBy may list it twice.
 */
#include "aws/tree_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "core/log.h"

static void aws_free(struct kf_provider *p);

static const struct kf_provider_ops aws_ops = {
	.getattr = kf_aws_tree_getattr,
	.list = kf_aws_tree_list,
	.mkdir = kf_aws_tree_mkdir,
	.rmdir = kf_aws_tree_rmdir,
	.unlink = kf_aws_tree_unlink,
	.can_create = kf_aws_tree_can_create,
	.check_write = kf_aws_tree_check_write,
	.read = kf_aws_tree_read,
	.read_nearby = kf_aws_tree_read_nearby,
	.commit = kf_aws_tree_commit,
	.check_bytes = kf_aws_tree_check_bytes,
	.read_version = kf_aws_tree_read_version,
	.versions = kf_aws_tree_versions,
	.stamp = kf_aws_tree_stamp,
	.getxattr = kf_aws_tree_getxattr,
	.setxattr = kf_aws_tree_setxattr,
	.listxattr = kf_aws_tree_listxattr,
	.start = NULL,
	.free = aws_free,
};

static void aws_free(struct kf_provider *p)
{
	struct aws_priv *a;

	if (!p)
		return;
	a = p->priv;
	if (a) {
		for (size_t i = 0; i < a->nregions; i++) {
			struct aws_region *r = &a->regions[i];

			kf_aws_sm_free(r->sm);
		}
		free(a->regions);
		kf_aws_index_free(a->idx);
		if (a->own_chain)
			kf_aws_chain_free(a->chain);
		pthread_mutex_destroy(&a->field_lock);
		free(a);
	}
	free(p);
}

/* ---- configuration ----------------------------------------------------- */

static const struct kf_provider_opt aws_opts[] = {
	{ "aws_region", "R[:R...]",
	  "AWS regions shown under aws/ (default: AWS_REGION, "
	  "AWS_DEFAULT_REGION, then the profile's region)" },
	{ "aws_profile", "NAME",
	  "AWS profile for credentials and settings (default: AWS_PROFILE, "
	  "else \"default\")" },
	{ "aws_endpoint", "URL",
	  "Secrets Manager endpoint (default: AWS_ENDPOINT_URL_SECRETS_"
	  "MANAGER, AWS_ENDPOINT_URL, the profile, else AWS)" },
	{ "aws_recovery_window", "DAYS",
	  "days a deleted secret can be restored, 7..30, 0 = delete at once "
	  "(default: 30)" },
	{ NULL, NULL, NULL },
};

/* An option's value; empty counts as unset. */
static const char *opt_get(const struct kf_config *cfg, const char *key)
{
	const char *v = kf_config_get(cfg, key);

	return v && v[0] ? v : NULL;
}

static int aws_detect(const struct kf_config *cfg)
{
	return kf_aws_config_present(opt_get(cfg, "aws_profile")) ||
	       kf_config_get(cfg, "aws_region") != NULL;
}

static int parse_regions(struct aws_priv *a, const char *list,
			 struct kf_err *err)
{
	const char *s = list;

	while (*s) {
		size_t n = strcspn(s, ":,");
		int dup = 0;

		if (!kf_aws_region_valid(s, n))
			return kf_fail(err, KF_E_INVALID,
				       "aws: bad region "
				       "in aws_region=%.64s",
				       list);
		for (size_t i = 0; i < a->nregions; i++)
			if (strlen(a->regions[i].name) == n &&
			    strncmp(a->regions[i].name, s, n) == 0)
				dup = 1;
		if (!dup) {
			struct aws_region *r =
				realloc(a->regions,
					(a->nregions + 1) * sizeof(*r));

			if (!r)
				return kf_fail(err, KF_E_NOMEM,
					       "out of "
					       "memory");
			a->regions = r;
			memset(&r[a->nregions], 0, sizeof(*r));
			memcpy(r[a->nregions].name, s, n);
			a->nregions++;
		}
		s += n;
		if (*s)
			s++;
	}
	if (a->nregions == 0)
		return kf_fail(err, KF_E_INVALID, "aws: empty aws_region=");
	return 0;
}

static int parse_days(const char *s, unsigned *out, struct kf_err *err)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || (v != 0 && (v < 7 || v > 30)))
		return kf_fail(err, KF_E_INVALID,
			       "aws: aws_recovery_window "
			       "must be 0 or 7..30 days");
	*out = (unsigned)v;
	return 0;
}

/*
 * The failure in err restated as "what: <its message>", its code, status
 * and provider code kept.  Returns -1.
 */
/*
 * One cheap call per region so an unreachable endpoint is reported on the
 * terminal.  Credentials refused for ListSecrets only warn: a host may
 * be allowed GetSecretValue on its own secrets and nothing else.
 */
static int probe(struct aws_priv *a, struct kf_err *err)
{
	for (size_t i = 0; i < a->nregions; i++) {
		struct aws_region *r = &a->regions[i];
		struct kf_aws_sm_page pg;
		char what[128];

		if (kf_aws_sm_list(r->sm, NULL, NULL, 1, &pg, err) == 0) {
			kf_aws_sm_page_release(&pg);
			continue;
		}
		if (err->code != KF_E_DENIED && err->code != KF_E_STATE &&
		    err->code != KF_E_INVALID) {
			/* a cut region name only shortens the message */
			(void)snprintf(what, sizeof(what),
				       "aws: region %s: "
				       "Secrets Manager endpoint not usable",
				       r->name);
			return kf_fail_within(err, what);
		}
		kf_log(KF_LOG_WARN,
		       "aws: %s: ListSecrets refused (%s): "
		       "listing directories will fail",
		       r->name,
		       err->provider_code[0] ? err->provider_code :
					       kf_code_name(err->code));
		kf_err_clear(err);
	}
	return 0;
}

/* The regions shown: list ("R[:R...]"), else the default region. */
static int regions_setup(struct aws_priv *a, const char *profile,
			 const char *list, struct kf_err *err)
{
	char region[64];

	if (!list) {
		if (kf_aws_default_region(profile, region, sizeof(region), err))
			return kf_fail(err, KF_E_INVALID,
				       "aws: no region: set "
				       "-o aws_region=REGION or AWS_REGION");
		list = region;
	}
	return parse_regions(a, list, err);
}

/* One Secrets Manager client per region, sharing the credential chain. */
static int clients_setup(struct aws_priv *a, struct kf_aws_chain *role,
			 const char *endpoint, const char *profile,
			 unsigned timeout_ms, struct kf_err *err)
{
	struct kf_aws_chain_cfg ccfg = { .profile = profile,
					 .timeout_ms = timeout_ms };

	if (role) {
		a->chain = role; /* borrowed: the caller frees it */
	} else {
		if (kf_aws_chain_new(&ccfg, &a->chain, err))
			return kf_fail_within(err, "aws: credentials");
		a->own_chain = 1;
	}
	for (size_t i = 0; i < a->nregions; i++) {
		struct kf_aws_sm_cfg scfg;
		char url[1024];

		if (kf_aws_endpoint(endpoint, profile, a->regions[i].name, url,
				    sizeof(url), err))
			return -1;
		memset(&scfg, 0, sizeof(scfg));
		scfg.endpoint = url;
		scfg.region = a->regions[i].name;
		scfg.chain = a->chain;
		scfg.timeout_ms = timeout_ms;
		if (kf_aws_sm_new(&scfg, &a->regions[i].sm, err))
			return -1;
	}
	return 0;
}

static int aws_create(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err)
{
	struct kf_provider *p = calloc(1, sizeof(*p));
	struct aws_priv *a = calloc(1, sizeof(*a));
	const char *profile = opt_get(cfg, "aws_profile");
	const char *days = kf_config_get(cfg, "aws_recovery_window");
	unsigned timeout_ms = (cfg->timeout ? cfg->timeout : 30) * 1000u;
	int rc = -1;

	*out = NULL;
	if (!p || !a) {
		free(p);
		free(a);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	pthread_mutex_init(&a->field_lock, NULL);
	p->ops = &aws_ops;
	p->name = "aws";
	p->max_value = KF_AWS_SM_MAX_VALUE;
	p->priv = a;
	a->recovery_days = 30;
	a->read_only = cfg->read_only;
	a->direct_reads = cfg->direct_reads;
	if ((days && parse_days(days, &a->recovery_days, err)) ||
	    regions_setup(a, profile, opt_get(cfg, "aws_region"), err))
		goto out;
	a->idx = kf_aws_index_new(a->nregions, (uint64_t)cfg->ttl * 1000u);
	if (!a->idx) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (clients_setup(a, cfg->aws_chain, opt_get(cfg, "aws_endpoint"),
			  profile, timeout_ms, err))
		goto out;
	/* A role's provider is made per role at a Mount, after STS took the
	 * pod's token: the probe would cost a call per role and warn for
	 * every role that may not list; the reads report the endpoint. */
	if (!cfg->aws_chain && probe(a, err))
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	aws_free(p);
	return rc;
}

const struct kf_provider_desc kf_aws_desc = {
	.name = "aws",
	.assumes_role = 1,
	.opts = aws_opts,
	.detect = aws_detect,
	.create = aws_create,
};
