/*
 * Reads in the aws/ provider: attributes, one value, and a value with its
 * listed neighbours in one BatchGetSecretValue (so `ls -l` learns sizes
 * at one call per 20 files).  Never changes a secret and never logs a
 * value.
 */
#include "aws/tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/* Listed neighbours looked at for one batch (those already cached are
 * skipped, so the batch holds up to 20 values nobody has yet). */
#define NEARBY_SCAN 200
#define NEARBY_MAX 20

int kf_aws_tree_getattr(struct kf_provider *p, const char *path,
			struct kf_attr *attr, struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;
	int rc;

	memset(attr, 0, sizeof(*attr));
	if (kf_aws_tree_split(a, path, &ri, &rest, err))
		return -1;
	if (ri == AWS_NO_REGION || !rest[0]) {
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	attr->mtime = res.mtime;
	switch (res.kind) {
	case AK_PLAIN:
		attr->kind = KF_KIND_FILE;
		return 0;
	case AK_HELD:
		attr->mtime = (int64_t)time(NULL);
		attr->kind = KF_KIND_DIR;
		return 0;
	case AK_FIELDSEC:
	case AK_PREFIX:
		attr->kind = KF_KIND_DIR;
		return 0;
	case AK_FIELD:
		if (res.pending)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such field");
		rc = kf_aws_index_field(a->idx, ri, res.name, res.field,
					&attr->size);
		if (rc == 0)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such "
				       "field");
		if (rc < 0 &&
		    kf_aws_tree_field_read(a, ri, &res, NULL, &attr->size, err))
			return -1;
		attr->kind = KF_KIND_FILE;
		attr->size_known = 1;
		return 0;
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}

int kf_aws_tree_read(struct kf_provider *p, const char *path,
		     struct kf_secret **value, struct kf_err *err)
{
	char name[AWS_NAME_MAX + 1];
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;
	int rc, imm;

	*value = NULL;
	if (kf_aws_tree_split_value(a, path, &ri, &rest, err))
		return -1;
	if (a->direct_reads && kf_aws_tree_unknown(a, ri, rest, name)) {
		rc = kf_aws_tree_secret_value(a, ri, name, NULL, value, &imm,
					      err);
		/* Being deleted: the name is gone, whatever else it is. */
		if (rc == 0 || err->code != KF_E_NOTFOUND ||
		    kf_err_is(err, KF_R_DELETING))
			return rc;
		kf_err_clear(err); /* no such secret: resolve the path */
	}
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_PLAIN:
		rc = kf_aws_sm_get_value(a->regions[ri].sm, res.name, value,
					 NULL, 0, err);
		if (rc && kf_err_is(err, KF_R_DELETING))
			err->code = KF_E_NOTFOUND; /* deleted elsewhere */
		if (rc && err->code == KF_E_NOTFOUND)
			kf_aws_index_del(a->idx, ri, res.name);
		if (rc == 0 && !(*value)->version[0])
			kf_secret_set_version(*value, AWS_NO_VERSION);
		return rc;
	case AK_FIELD:
		if (res.pending)
			return kf_fail(err, KF_E_NOTFOUND,
				       "aws: no such field");
		return kf_aws_tree_field_read(a, ri, &res, value, NULL, err);
	case AK_FIELDSEC:
	case AK_PREFIX:
	case AK_HELD:
		return kf_fail(err, KF_E_ISDIR, "aws: a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such secret");
	}
}

struct nearby {
	const char *region;	 /* the region component of paths */
	const char *want;	 /* the name asked for */
	struct kf_secret *value; /* its value, when returned */
	void (*fn)(void *ctx, const char *rel, struct kf_secret *v);
	void *ctx;
};

static void nearby_one(void *vctx, const char *name, struct kf_secret *v)
{
	struct nearby *n = vctx;
	char rel[AWS_PATH_MAX + 80], path[AWS_PATH_MAX + 1];

	if (!strcmp(name, n->want) && !n->value) {
		n->value = v;
		return;
	}
	kf_aws_tree_name_path(name, path);
	if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", n->region, path) >=
	    sizeof(rel)) {
		kf_secret_free(v);
		return;
	}
	n->fn(n->ctx, rel, v);
}

/*
 * The names for one batch: rest, then up to max - 1 listed neighbours
 * want() says yes to, into ids[] (pointing into rest and sib[]).
 */
static size_t nearby_ids(const char *region, const char *rest, char *const *sib,
			 size_t ns, size_t max,
			 int (*want)(void *ctx, const char *rel), void *ctx,
			 const char **ids)
{
	char rel[AWS_PATH_MAX + 130], path[AWS_PATH_MAX + 1];
	size_t nids = 0;

	ids[nids++] = rest;
	for (size_t i = 0; i < ns && nids < max; i++) {
		kf_aws_tree_name_path(sib[i], path);
		if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", region, path) <
			    sizeof(rel) &&
		    want(ctx, rel))
			ids[nids++] = sib[i];
	}
	return nids;
}

/*
 * A plain secret's value and, in the same BatchGetSecretValue, up to
 * max - 1 secrets listed after it in its directory.  Anything unusual
 * takes the one-secret path.
 */
int kf_aws_tree_read_nearby(struct kf_provider *p, const char *path, size_t max,
			    int (*want)(void *ctx, const char *rel),
			    void (*fn)(void *ctx, const char *rel,
				       struct kf_secret *v),
			    void *ctx, struct kf_secret **value,
			    struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct nearby nb = { NULL, NULL, NULL, fn, ctx };
	struct aws_res res;
	const char *rest, *ids[NEARBY_MAX];
	char *sib[NEARBY_SCAN], region[128];
	size_t ri, ns = 0, nids;
	int rc;

	*value = NULL;
	if (kf_aws_tree_split(a, path, &ri, &rest, err))
		return -1;
	if (ri == AWS_NO_REGION || !rest[0] ||
	    kf_aws_tree_resolve(a, ri, rest, &res, err) ||
	    res.kind != AK_PLAIN || max < 2 ||
	    (size_t)(rest - path) >= sizeof(region) ||
	    __atomic_load_n(&a->no_batch, __ATOMIC_RELAXED))
		return kf_aws_tree_read(p, path, value, err);
	kf_aws_index_siblings(a->idx, ri, res.name, NEARBY_SCAN, sib, &ns);
	memcpy(region, path, (size_t)(rest - path - 1));
	region[rest - path - 1] = '\0';
	nids = nearby_ids(region, res.name, sib, ns,
			  max > NEARBY_MAX ? NEARBY_MAX : max, want, ctx, ids);
	rc = -1;
	if (nids > 1) {
		nb.region = region;
		nb.want = res.name;
		rc = kf_aws_sm_batch_get(a->regions[ri].sm, ids, nids,
					 nearby_one, &nb, err);
	}
	for (size_t i = 0; i < ns; i++)
		free(sib[i]);
	if (nids == 1)
		return kf_aws_tree_read(p, path, value, err);
	if (rc == 0 && nb.value) {
		*value = nb.value;
		return 0;
	}
	kf_secret_free(nb.value);
	if (rc < 0 && err->code == KF_E_DENIED &&
	    !__atomic_exchange_n(&a->no_batch, 1, __ATOMIC_RELAXED))
		kf_log(KF_LOG_WARN,
		       "aws: BatchGetSecretValue refused (%s); "
		       "sizes for ls -l will cost one GetSecretValue each",
		       err->provider_code);
	/* Not in the answer (no current value, an error entry) or the call
	 * failed: the one-secret read gives the exact answer and errno. */
	kf_err_clear(err);
	return kf_aws_tree_read(p, path, value, err);
}
