/*
 * Directory listings of the ssm/ provider: the regions, and for a
 * directory every DescribeParameters page of its subtree (a Path filter,
 * Recursive, so a directory holding only deeper parameters shows too;
 * no filter for a region), one page per call.  The pages go into the
 * index; the last one lists the directory from it, so each entry shows
 * once whatever page it came on and a directory wins over a parameter
 * of the same name.  Never reads a value.
 */
#include "aws/ssm_tree_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

/* Our page token: "<when the listing began, ms>\n<NextToken>". */
static int token_read(const char *page, uint64_t *since, const char **token,
		      struct kf_err *err)
{
	unsigned long long v;
	char *end = NULL;

	errno = 0;
	v = strtoull(page, &end, 10);
	if (errno || end == page || *end != '\n' || !end[1])
		return kf_fail(err, KF_E_INVALID, "ssm: bad page token");
	*since = (uint64_t)v;
	*token = end + 1;
	return 0;
}

struct emit {
	kf_list_fn fn;
	void *ctx;
};

static int emit_one(void *vctx, const char *name, int is_dir, int64_t mtime)
{
	struct emit *e = vctx;
	struct kf_attr at = { is_dir ? KF_KIND_DIR : KF_KIND_FILE, 0, 0,
			      mtime };

	return e->fn(e->ctx, name, &at);
}

/* The first page of a listing: rest must be a directory. */
static int list_start(struct ssm_priv *s, size_t ri, const char *rest,
		      struct kf_err *err)
{
	struct ssm_res res;
	enum ssm_kind kind;

	if (!rest[0])
		return 0;
	if (kf_ssm_tree_resolve(s, ri, rest, &res, err))
		return -1;
	kind = res.kind;
	kf_ssm_tree_res_release(&res);
	if (kind == SK_FILE)
		return kf_fail(err, KF_E_NOTDIR, "ssm: not a directory");
	if (kind == SK_NONE)
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such directory");
	return 0;
}

static int list_regions(struct ssm_priv *s, kf_list_fn fn, void *ctx)
{
	for (size_t i = 0; i < s->nregions; i++) {
		struct kf_attr at = { KF_KIND_DIR, 0, 0, 0 };

		if (fn(ctx, s->regions[i].name, &at))
			break;
	}
	return 0;
}

int kf_ssm_tree_list(struct kf_provider *p, const char *path, const char *page,
		     kf_list_fn fn, void *ctx, struct kf_buf *next,
		     struct kf_err *err)
{
	struct ssm_priv *s = p->priv;
	struct emit e = { fn, ctx };
	const char *rest, *token = NULL;
	char *more = NULL;
	uint64_t since = 0;
	size_t ri, found;
	int rc = -1;

	kf_buf_reset(next);
	if (kf_ssm_tree_split(s, path, &ri, &rest, err))
		return -1;
	if (ri == SSM_NO_REGION)
		return list_regions(s, fn, ctx);
	if (page && page[0]) {
		if (token_read(page, &since, &token, err))
			return -1;
	} else {
		since = kf_clock_now_ms();
		if (list_start(s, ri, rest, err))
			return -1;
	}
	if (kf_ssm_tree_probe(s, ri, rest, token, since, &more, &found, err))
		return -1;
	if (more) {
		if (kf_buf_addf(next, "%llu\n%s", (unsigned long long)since,
				more)) {
			kf_buf_reset(next);
			kf_fail(err, KF_E_NOMEM, "ssm: page token too long");
		} else {
			rc = 0;
		}
		free(more);
		return rc;
	}
	if (kf_ssm_index_children(s->idx, ri, rest, since, emit_one, &e))
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}
