/*
 * Reads in the ssm/ provider: attributes (never a value: sizes are
 * unknown until read), one value (GetParameter with decryption), a value
 * with its listed neighbours in one GetParameters (so `ls -l` with exact
 * sizes costs one call per 10 files), and the cheap checks before a
 * write (the name's metadata at open(), the bytes at each write()).
 * Never changes a parameter and never logs a value.
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sm.h"
#include "core/clock.h"
#include "core/log.h"

/* Listed neighbours looked at for one batch (those cached already are
 * skipped, so a batch holds up to 10 values nobody has yet). */
#define NEARBY_SCAN 80

int kf_ssm_tree_getattr(struct kf_provider *p, const char *path,
			struct kf_attr *attr, struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc = 0;

	memset(attr, 0, sizeof(*attr));
	if (kf_ssm_tree_split(s, path, &ri, &rest, err))
		return -1;
	if (ri == SSM_NO_REGION || !rest[0]) {
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (kf_ssm_tree_resolve(s, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case SK_FILE:
		attr->kind = KF_KIND_FILE;
		attr->mtime = res.meta.changed;
		break;
	case SK_HELD:
		attr->mtime = (int64_t)time(NULL);
		attr->kind = KF_KIND_DIR;
		break;
	case SK_DIR:
		attr->kind = KF_KIND_DIR;
		break;
	default:
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}

/* GetParameter of the parameter res names (rest: its path). */
static int get_file(struct ssm_priv *s, size_t ri, const char *rest,
		    const struct ssm_res *res, struct kf_secret **value,
		    struct kf_err *err)
{
	struct kf_aws_ssm_meta m;

	if (kf_aws_ssm_get(s->regions[ri].ssm, res->name, NULL, value, &m,
			   err)) {
		if (err->code == KF_E_NOTFOUND)
			kf_ssm_index_del(s->idx, ri, rest);
		return -1;
	}
	if (m.arn && !res->meta.arn)
		kf_ssm_index_put_arn(s->idx, ri, rest, m.arn);
	kf_aws_ssm_meta_release(&m);
	return 0;
}

int kf_ssm_tree_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err)
{
	char name[KF_SSM_NAME_MAX + 1];
	struct ssm_priv *s = p->priv;
	struct ssm_res res;
	const char *rest;
	size_t ri;
	int rc;

	*value = NULL;
	if (kf_ssm_tree_split_value(s, path, &ri, &rest, err))
		return -1;
	if (s->direct_reads && kf_ssm_tree_unknown(s, ri, rest, name)) {
		rc = kf_aws_ssm_get(s->regions[ri].ssm, name, NULL, value, NULL,
				    err);
		if (rc == 0 || err->code != KF_E_NOTFOUND)
			return rc;
		kf_err_clear(err); /* no such parameter: resolve the path */
	}
	if (kf_ssm_tree_resolve(s, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case SK_FILE:
		rc = get_file(s, ri, rest, &res, value, err);
		break;
	case SK_DIR:
	case SK_HELD:
		rc = kf_fail(err, KF_E_ISDIR, "ssm: a directory");
		break;
	default:
		rc = kf_fail(err, KF_E_NOTFOUND, "ssm: no such parameter");
	}
	kf_ssm_tree_res_release(&res);
	return rc;
}

struct nearby {
	const char *region; /* the region component of paths */
	const char *want;   /* the name asked for */
	struct kf_secret *value;
	void (*fn)(void *ctx, const char *rel, struct kf_secret *v);
	void *ctx;
};

/* "REGION/PATH" of parameter name into rel; 0, or -1 when too long. */
static int rel_of(const char *region, const char *name, char *rel, size_t n)
{
	char path[KF_SSM_PATH_MAX + 1];

	kf_ssm_name_path(name, path);
	return (size_t)snprintf(rel, n, "%s/%s", region, path) < n ? 0 : -1;
}

static void nearby_one(void *vctx, const char *name, struct kf_secret *v)
{
	struct nearby *nb = vctx;
	char rel[KF_SSM_PATH_MAX + 80];

	if (!strcmp(name, nb->want) && !nb->value) {
		nb->value = v;
		return;
	}
	if (rel_of(nb->region, name, rel, sizeof(rel))) {
		kf_secret_free(v);
		return;
	}
	nb->fn(nb->ctx, rel, v);
}

/* The names for one GetParameters: want first, then siblings want()
 * says yes to, up to max. */
static size_t batch_names(const char *region, const char *first,
			  char *const *sib, size_t ns, size_t max,
			  int (*want)(void *ctx, const char *rel), void *ctx,
			  const char **names)
{
	char rel[KF_SSM_PATH_MAX + 80];
	size_t n = 0;

	names[n++] = first;
	for (size_t i = 0; i < ns && n < max; i++)
		if (!rel_of(region, sib[i], rel, sizeof(rel)) && want(ctx, rel))
			names[n++] = sib[i];
	return n;
}

int kf_ssm_tree_read_nearby(struct kf_provider *p, const char *path, size_t max,
			    int (*want)(void *ctx, const char *rel),
			    void (*fn)(void *ctx, const char *rel,
				       struct kf_secret *v),
			    void *ctx, struct kf_secret **value,
			    struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct nearby nb = { NULL, NULL, NULL, fn, ctx };
	const char *names[KF_AWS_SSM_BATCH_MAX], *rest;
	char *sib[NEARBY_SCAN];
	struct ssm_res res;
	size_t ri, ns, n;
	int rc = -1;

	*value = NULL;
	if (kf_ssm_tree_split(s, path, &ri, &rest, err) ||
	    ri == SSM_NO_REGION || !rest[0] || max < 2 ||
	    __atomic_load_n(&s->no_batch, __ATOMIC_RELAXED))
		return kf_ssm_tree_read(p, path, value, err);
	if (kf_ssm_tree_resolve(s, ri, rest, &res, err))
		return -1;
	if (res.kind != SK_FILE) {
		kf_ssm_tree_res_release(&res);
		return kf_ssm_tree_read(p, path, value, err);
	}
	ns = kf_ssm_index_siblings(s->idx, ri, rest, NEARBY_SCAN, sib);
	n = batch_names(s->regions[ri].name, res.name, sib, ns,
			max < KF_AWS_SSM_BATCH_MAX ? max : KF_AWS_SSM_BATCH_MAX,
			want, ctx, names);
	if (n > 1) {
		nb.region = s->regions[ri].name;
		nb.want = res.name;
		rc = kf_aws_ssm_get_batch(s->regions[ri].ssm, names, n,
					  nearby_one, &nb, err);
	}
	for (size_t i = 0; i < ns; i++)
		free(sib[i]);
	if (rc == 0 && nb.value) {
		*value = nb.value;
		kf_ssm_tree_res_release(&res);
		return 0;
	}
	kf_secret_free(nb.value);
	if (rc < 0 && n > 1 && err->code == KF_E_DENIED &&
	    !__atomic_exchange_n(&s->no_batch, 1, __ATOMIC_RELAXED))
		kf_log(KF_LOG_WARN,
		       "ssm: GetParameters refused (%s); "
		       "sizes for ls -l will cost one GetParameter each",
		       err->provider_code);
	/* Not in the answer, or the call failed: the one-parameter read
	 * gives the exact answer and errno. */
	kf_err_clear(err);
	rc = get_file(s, ri, rest, &res, value, err);
	kf_ssm_tree_res_release(&res);
	return rc;
}

/*
 * One DescribeParameters of the name a write at path changes, so that
 * open() reports an endpoint that does not answer or refuses access;
 * what it learns (exists, version, type, key, tier) is kept for the
 * commit.  An absent name is fine: the commit creates it.
 */
int kf_ssm_tree_check_write(struct kf_provider *p, const char *path, int flags,
			    struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	char name[KF_SSM_NAME_MAX + 1];
	struct kf_aws_ssm_meta m;
	uint64_t since = kf_clock_now_ms();
	const char *rest;
	size_t ri;
	int rc;

	(void)flags;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "ssm: read-only mount");
	if (kf_ssm_tree_split(s, path, &ri, &rest, err))
		return -1;
	if (ri == SSM_NO_REGION || !rest[0])
		return 0;
	if (kf_ssm_index_meta(s->idx, ri, rest, &m) && m.name)
		/* fits: names in the index are at most that long */
		(void)snprintf(name, sizeof(name), "%s", m.name);
	else if (kf_ssm_path_name(rest, name) || kf_ssm_tree_name_rule(name))
		name[0] = '\0'; /* the write itself reports the name */
	kf_aws_ssm_meta_release(&m);
	if (!name[0])
		return 0;
	rc = kf_aws_ssm_describe(s->regions[ri].ssm, name, &m, err);
	/* absent: only a path of two levels or more has one name to ask */
	if (rc > 0)
		kf_ssm_tree_seen(s, ri, &m);
	else if (rc == 0 && strchr(rest, '/'))
		kf_ssm_index_complete(s->idx, ri, rest, KF_SSM_SELF, since);
	kf_aws_ssm_meta_release(&m);
	return rc < 0 ? -1 : 0;
}

/* Whether tier holds 8 KB values. */
static int tier_big(const char *tier)
{
	return tier && (!strcmp(tier, "Advanced") ||
			!strcmp(tier, "Intelligent-Tiering"));
}

/* The most a value at rest may hold: 8 KB when it is or may become an
 * Advanced parameter, else 4 KB. */
static size_t value_max(struct ssm_priv *s, size_t ri, const char *rest)
{
	struct kf_aws_ssm_meta m;
	struct kf_err err = KF_ERR_INIT;
	struct ssm_res res;
	int big = 0;

	if (tier_big(s->tier))
		return KF_AWS_SSM_ADVANCED_MAX;
	if (kf_ssm_index_meta(s->idx, ri, rest, &m)) {
		big = tier_big(m.tier);
	} else if (kf_ssm_tree_resolve(s, ri, rest, &res, &err) == 0) {
		big = res.kind == SK_FILE && tier_big(res.meta.tier);
		kf_ssm_tree_res_release(&res);
	}
	kf_aws_ssm_meta_release(&m);
	return big ? KF_AWS_SSM_ADVANCED_MAX : KF_AWS_SSM_STANDARD_MAX;
}

/*
 * Text costs nothing to accept; more than 4 KB looks at the parameter's
 * tier (the index, which check_write filled).  Anything unclear is left
 * to the commit, which checks again.
 */
int kf_ssm_tree_check_bytes(struct kf_provider *p, const char *path,
			    const unsigned char *data, size_t n,
			    struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	const char *rest;
	size_t ri, max;

	if (n == 0) /* asked when a new file is closed with no data */
		return kf_fail(err, KF_E_INVALID,
			       "ssm: Parameter Store cannot hold an empty value");
	if (!kf_aws_sm_is_text_prefix(data, n))
		return kf_fail(err, KF_E_INVALID,
			       "ssm: a parameter holds UTF-8 "
			       "text without NUL bytes");
	if (n <= KF_AWS_SSM_STANDARD_MAX)
		return 0;
	if (kf_ssm_tree_split(s, path, &ri, &rest, err) ||
	    ri == SSM_NO_REGION || !rest[0]) {
		kf_err_clear(err);
		return 0;
	}
	max = value_max(s, ri, rest);
	if (n > max)
		return kf_fail(err, KF_E_TOOBIG,
			       "ssm: %zu bytes is over the %zu-byte limit of "
			       "%s parameters",
			       n, max,
			       max > KF_AWS_SSM_STANDARD_MAX ? "Advanced" :
							       "Standard");
	return 0;
}
