/*
 * Directory listings of the aws/ provider: regions, field secrets' fields,
 * and one ListSecrets page at a time folded into the next '/'-separated
 * component of names, with this process's recent creates and deletes laid
 * over it.  Never reads a value except a field secret's, to list it.
 */
#include "aws/tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWS_LIST_PAGE 100

/* One directory entry being collected for a listing page. */
struct aws_ent {
	char *name;
	struct kf_attr attr;
};

struct aws_ents {
	struct aws_ent *v;
	size_t n, cap;
};

static int ents_find(const struct aws_ents *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->v[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Add name (n bytes) as dir or file; a directory wins over a file. */
static int ents_add(struct aws_ents *e, const char *name, size_t n, int dir,
		    int64_t mtime)
{
	char *copy = strndup(name, n);
	int i;

	if (!copy)
		return -1;
	i = ents_find(e, copy);
	if (i >= 0) {
		if (dir)
			e->v[i].attr.kind = KF_KIND_DIR;
		free(copy);
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		struct aws_ent *v = realloc(e->v, cap * sizeof(*v));

		if (!v) {
			free(copy);
			return -1;
		}
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n].name = copy;
	e->v[e->n].attr = (struct kf_attr){ dir ? KF_KIND_DIR : KF_KIND_FILE, 0,
					    0, mtime };
	e->n++;
	return 0;
}

static void ents_release(struct aws_ents *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* One page of a directory of secrets being put together. */
struct list_page {
	struct aws_priv *a;
	size_t ri;
	char prefix[AWS_NAME_MAX + 2]; /* "" or "dir/": names listed */
	size_t plen;
	char dir[AWS_PATH_MAX + 2]; /* "" or "dir/": its path form */
	size_t dlen;
	char path[AWS_PATH_MAX + 1]; /* the name being looked at */
	const char *page;  /* the caller's page token; NULL: first page */
	const char *token; /* its ListSecrets NextToken part */
	char carried[AWS_PATH_MAX + 1]; /* the previous page's last entry */
	char last[AWS_PATH_MAX + 1];	/* this page's last entry */
	struct aws_ents over;		/* this process's recent creates */
	struct aws_ents ents;		/* what the page lists */
};

/*
 * The entry secret name contributes to the directory being listed: the
 * next component of its path form (into lp->path, *c), a directory when
 * more follows or it is a field secret.  0 when it contributes nothing.
 */
static size_t component(struct list_page *lp, const char *name, int fields,
			const char **c, int *dir)
{
	size_t n;

	kf_aws_tree_name_path(name, lp->path);
	if (strncmp(lp->path, lp->dir, lp->dlen) != 0)
		return 0; /* a case-insensitive match, or another directory */
	*c = lp->path + lp->dlen;
	n = strcspn(*c, "/");
	*dir = (*c)[n] == '/' || fields;
	return n;
}

static void overlay_one(void *vctx, const char *name, int fields)
{
	struct list_page *lp = vctx;
	const char *c = NULL;
	size_t n;
	int dir;

	n = component(lp, name, fields, &c, &dir);
	if (n)
		ents_add(&lp->over, c, n, dir, (int64_t)time(NULL));
}

/* This process's recent creates: listed on the first page only. */
static void add_overlay(struct list_page *lp)
{
	const struct aws_ents *o = &lp->over;

	kf_aws_index_created(lp->a->idx, lp->ri, lp->prefix, overlay_one, lp);
	kf_aws_index_held_each(lp->a->idx, lp->ri, lp->prefix, overlay_one, lp);
	if (lp->page)
		return;
	for (size_t i = 0; i < o->n; i++)
		if (ents_add(&lp->ents, o->v[i].name, strlen(o->v[i].name),
			     o->v[i].attr.kind == KF_KIND_DIR,
			     o->v[i].attr.mtime))
			break;
}

/* The entries of one ListSecrets page (names also go into the index). */
static void add_listed(struct list_page *lp, const struct kf_aws_sm_page *pg)
{
	for (size_t i = 0; i < pg->n; i++) {
		const struct kf_aws_sm_meta *m = &pg->v[i];
		int fields = kf_aws_tree_meta_fields(m), dir;
		int64_t mtime = kf_aws_tree_meta_mtime(m);
		const char *comp = NULL;
		size_t n;
		char *c;

		if (kf_aws_index_deleted(lp->a->idx, lp->ri, m->name))
			continue;
		kf_aws_index_put(lp->a->idx, lp->ri, m->name, fields, mtime);
		n = component(lp, m->name, fields, &comp, &dir);
		if (!n)
			continue;
		c = strndup(comp, n);
		if (!c)
			break;
		/*
		 * Skip what earlier pages gave: the overlay (first page) and
		 * the previous page's last entry (names come sorted, so a
		 * directory spanning pages shows once).
		 */
		if (!(lp->page && ents_find(&lp->over, c) >= 0) &&
		    !(lp->carried[0] && strcmp(c, lp->carried) == 0))
			ents_add(&lp->ents, c, n, dir, mtime);
		/* fits: a component of a path form of a name */
		(void)snprintf(lp->last, sizeof(lp->last), "%s", c);
		free(c);
	}
}

/* Our page token: "<last entry of the previous page>\n<NextToken>". */
static int token_read(struct list_page *lp, const char *page,
		      struct kf_err *err)
{
	const char *nl;

	lp->page = page;
	if (!page || !page[0])
		return 0;
	nl = strchr(page, '\n');
	if (!nl || (size_t)(nl - page) > AWS_PATH_MAX)
		return kf_fail(err, KF_E_INVALID, "aws: bad page token");
	memcpy(lp->carried, page, (size_t)(nl - page));
	lp->carried[nl - page] = '\0';
	memcpy(lp->last, lp->carried, sizeof(lp->last));
	lp->token = nl + 1;
	return 0;
}

static int token_write(struct kf_buf *next, const struct list_page *lp,
		       const char *next_token, struct kf_err *err)
{
	if (kf_buf_adds(next, lp->last) || kf_buf_add(next, "\n", 1) ||
	    kf_buf_adds(next, next_token)) {
		kf_buf_reset(next);
		return kf_fail(err, KF_E_NOMEM, "aws: page token too long");
	}
	return 0;
}

/* One page of the directory of secrets rest ("" for a region); held:
 * a directory held in memory, which may be empty. */
static int list_secrets(struct aws_priv *a, size_t ri, const char *rest,
			const char *page, int held, kf_list_fn fn, void *ctx,
			struct kf_buf *next, struct kf_err *err)
{
	struct list_page lpbuf;
	struct list_page *lp = &lpbuf;
	struct kf_aws_sm_page pg = { 0 };
	int rc = -1, stop = 0;

	memset(lp, 0, sizeof(*lp));
	lp->a = a;
	lp->ri = ri;
	if (rest[0] && (kf_aws_tree_path_name(rest, lp->path) ||
			strlen(lp->path) >= AWS_NAME_MAX ||
			strlen(rest) >= AWS_PATH_MAX)) {
		kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
		goto out;
	}
	if (rest[0]) {
		/* fit: both are checked just above */
		(void)snprintf(lp->prefix, sizeof(lp->prefix), "%s/", lp->path);
		(void)snprintf(lp->dir, sizeof(lp->dir), "%s/", rest);
	}
	lp->plen = strlen(lp->prefix);
	lp->dlen = strlen(lp->dir);
	if (token_read(lp, page, err) ||
	    kf_aws_sm_list(a->regions[ri].sm, lp->plen ? lp->prefix : NULL,
			   lp->token, AWS_LIST_PAGE, &pg, err))
		goto out;
	add_overlay(lp);
	add_listed(lp, &pg);
	if (pg.next_token && token_write(next, lp, pg.next_token, err))
		goto out;
	if (rest[0] && !page && !pg.next_token && lp->ents.n == 0 && !held) {
		kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
		goto out;
	}
	for (size_t i = 0; i < lp->ents.n && !stop; i++)
		stop = fn(ctx, lp->ents.v[i].name, &lp->ents.v[i].attr);
	rc = 0;
out:
	ents_release(&lp->ents);
	ents_release(&lp->over);
	kf_aws_sm_page_release(&pg);
	return rc;
}

int kf_aws_tree_list(struct kf_provider *p, const char *path, const char *page,
		     kf_list_fn fn, void *ctx, struct kf_buf *next,
		     struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	struct aws_res res;
	const char *rest;
	size_t ri;

	kf_buf_reset(next);
	if (kf_aws_tree_split(a, path, &ri, &rest, err))
		return -1;
	if (ri == AWS_NO_REGION) {
		for (size_t i = 0; i < a->nregions; i++) {
			struct kf_attr at = { KF_KIND_DIR, 0, 0, 0 };

			if (fn(ctx, a->regions[i].name, &at))
				break;
		}
		return 0;
	}
	if (!rest[0] || page)
		return list_secrets(a, ri, rest, page, 1, fn, ctx, next, err);
	if (kf_aws_tree_resolve(a, ri, rest, &res, err))
		return -1;
	switch (res.kind) {
	case AK_FIELDSEC:
		return kf_aws_tree_list_fields(a, ri, res.name, fn, ctx, err);
	case AK_PREFIX:
	case AK_HELD:
		return list_secrets(a, ri, rest, page, res.kind == AK_HELD, fn,
				    ctx, next, err);
	case AK_PLAIN:
	case AK_FIELD:
		return kf_fail(err, KF_E_NOTDIR, "aws: not a directory");
	default:
		return kf_fail(err, KF_E_NOTFOUND, "aws: no such directory");
	}
}
