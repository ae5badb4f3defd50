/*
 * Paths of the ssm/ provider: which region a path is in, and what the
 * rest is (a parameter, a directory of parameters, a directory held in
 * memory), from the index when it knows, else from DescribeParameters:
 * one Path filter page says whether anything lies below, one Name filter
 * whether the path itself is a parameter.  Never fetches a value, never
 * changes a parameter.
 */
#include "aws/ssm_tree_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"

#define NAME_CHARS                   \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"abcdefghijklmnopqrstuvwxyz" \
	"0123456789_.-"
/* Empty pages with a NextToken followed before a lookup gives up. */
#define PROBE_PAGES 20

int kf_ssm_tree_split(struct ssm_priv *s, const char *path, size_t *ri,
		      const char **rest, struct kf_err *err)
{
	size_t n = strcspn(path, "/");

	*ri = SSM_NO_REGION;
	*rest = "";
	if (!path[0])
		return 0;
	for (size_t i = 0; i < s->nregions; i++) {
		if (strlen(s->regions[i].name) == n &&
		    strncmp(s->regions[i].name, path, n) == 0) {
			*ri = i;
			*rest = path[n] ? path + n + 1 : "";
			return 0;
		}
	}
	return kf_fail(err, KF_E_NOTFOUND,
		       "ssm: region not configured "
		       "(see -o ssm_region=)");
}

int kf_ssm_tree_split_value(struct ssm_priv *s, const char *path, size_t *ri,
			    const char **rest, struct kf_err *err)
{
	if (kf_ssm_tree_split(s, path, ri, rest, err))
		return -1;
	if (*ri == SSM_NO_REGION || !(*rest)[0])
		return kf_fail(err, KF_E_ISDIR, "ssm: a directory");
	return 0;
}

/* Whether the first component of name ("/x...") is reserved by AWS. */
static int reserved(const char *name)
{
	const char *c = name + (name[0] == '/');

	return strncasecmp(c, "aws", 3) == 0 || strncasecmp(c, "ssm", 3) == 0;
}

const char *kf_ssm_tree_name_rule(const char *name)
{
	size_t n = strlen(name);

	if (name[0] != '/' || strspn(name + 1, NAME_CHARS "/") != n - 1)
		return "characters A-Z a-z 0-9 _ . - only";
	if (n > KF_AWS_SSM_NAME_MAX)
		return "at most 1011 bytes";
	if (kf_ssm_depth(name) > KF_AWS_SSM_DEPTH_MAX)
		return "at most 15 levels";
	if (reserved(name))
		return "names may not begin with aws or ssm";
	if (!kf_aws_ssm_name_ok(name))
		return "no empty or . or .. level";
	return NULL;
}

int kf_ssm_tree_bad_name(const struct ssm_priv *s, size_t ri, const char *rest,
			 const char *rule, struct kf_err *err)
{
	kf_log(KF_LOG_WARN, "ssm: %s/%s: invalid parameter name (%s)",
	       s->regions[ri].name, rest,
	       rule ? rule : "characters A-Z a-z 0-9 _ . - only");
	return kf_fail(err, KF_E_INVALID, "ssm: invalid parameter name");
}

/* Whether a parameter may have name at all (else no call is made). */
static int maybe_name(const char *name)
{
	size_t n = strlen(name);

	return n <= KF_SSM_NAME_MAX && !reserved(name) &&
	       strspn(name, NAME_CHARS "/") == n;
}

int kf_ssm_tree_path_filter_ok(const char *name)
{
	return kf_aws_ssm_name_ok(name) &&
	       kf_ssm_depth(name) < KF_AWS_SSM_DEPTH_MAX;
}

int kf_ssm_tree_seen(struct ssm_priv *s, size_t ri,
		     const struct kf_aws_ssm_meta *m)
{
	char path[KF_SSM_PATH_MAX + 1];
	int rc = kf_ssm_index_put(s->idx, ri, m);

	if (rc == KF_SSM_PUT_HIDDEN) {
		kf_ssm_name_path(m->name, path);
		kf_log(KF_LOG_INFO,
		       "ssm: %s: parameters %s and /%s share the path %s: "
		       "/%s is shown, %s is not",
		       s->regions[ri].name, path, path, path, path, path);
	}
	return rc != KF_SSM_PUT_GONE;
}

/* Whether path lies strictly below dir ("": anything). */
static int is_below(const char *path, const char *dir, size_t dlen)
{
	if (!dlen)
		return path[0] != '\0';
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

int kf_ssm_tree_probe(struct ssm_priv *s, size_t ri, const char *rest,
		      const char *token, uint64_t since, char **next,
		      size_t *found, struct kf_err *err)
{
	char name[KF_SSM_NAME_MAX + 1], path[KF_SSM_PATH_MAX + 1];
	struct kf_aws_ssm_page pg;
	const char *filter = NULL;
	size_t rlen = strlen(rest);

	*next = NULL;
	*found = 0;
	if (rlen && kf_ssm_path_name(rest, name))
		return kf_fail(err, KF_E_NOTFOUND, "ssm: no such directory");
	/* a name no Path filter takes: the region's whole listing */
	if (rlen && kf_ssm_tree_path_filter_ok(name))
		filter = name;
	if (kf_aws_ssm_list(s->regions[ri].ssm, filter, 1, token,
			    KF_AWS_SSM_PAGE_MAX, &pg, err))
		return -1;
	for (size_t i = 0; i < pg.n; i++) {
		const struct kf_aws_ssm_meta *m = &pg.v[i];

		if (!m->name || !m->name[0] || !kf_ssm_tree_seen(s, ri, m))
			continue;
		kf_ssm_name_path(m->name, path);
		*found += is_below(path, rest, rlen);
	}
	*next = pg.next_token; /* taken over */
	pg.next_token = NULL;
	if (!*next)
		kf_ssm_index_complete(s->idx, ri, filter ? rest : "",
				      KF_SSM_BELOW, since);
	kf_aws_ssm_page_release(&pg);
	return 0;
}

/*
 * Whether something lies below rest (name its hierarchical name): 1 yes,
 * 0 no, -1 the call failed.  The first page decides unless it is empty
 * and another follows (the service may give empty filtered pages).
 */
static int below_exists(struct ssm_priv *s, size_t ri, const char *rest,
			const char *name, struct kf_err *err)
{
	uint64_t since = kf_clock_now_ms();
	char *token = NULL, *next = NULL;
	size_t found = 0;
	int rc = 0;

	if (kf_ssm_depth(name) >= KF_AWS_SSM_DEPTH_MAX) {
		/* no parameter is deeper than 15 levels */
		kf_ssm_index_complete(s->idx, ri, rest, KF_SSM_BELOW, since);
		return 0;
	}
	if (!kf_ssm_tree_path_filter_ok(name))
		return 0; /* only a listing of the region can tell */
	for (int page = 0; page < PROBE_PAGES && rc == 0; page++) {
		if (kf_ssm_tree_probe(s, ri, rest, token, since, &next, &found,
				      err)) {
			rc = -1;
			break;
		}
		free(token);
		token = next;
		rc = found > 0;
		if (!token)
			break;
	}
	free(token);
	return rc;
}

/* Describe name: 1 found (*res filled), 0 not, -1 the call failed. */
static int describe_as(struct ssm_priv *s, size_t ri, const char *rest,
		       const char *name, struct ssm_res *res,
		       struct kf_err *err)
{
	char path[KF_SSM_PATH_MAX + 1];
	struct kf_aws_ssm_meta m;
	int rc = kf_aws_ssm_describe(s->regions[ri].ssm, name, &m, err);

	if (rc <= 0)
		return rc;
	rc = 0;
	if (m.name && strlen(m.name) <= KF_SSM_NAME_MAX) {
		kf_ssm_name_path(m.name, path);
		/* deleted here a moment ago: the listing lags */
		rc = strcmp(path, rest) == 0 && kf_ssm_tree_seen(s, ri, &m);
	}
	if (rc) {
		res->kind = SK_FILE;
		/* fits: checked above */
		(void)snprintf(res->name, sizeof(res->name), "%s", m.name);
		res->meta = m;
	} else {
		kf_aws_ssm_meta_release(&m);
	}
	return rc;
}

/*
 * Whether rest is itself a parameter: "/a/b", and for one level also the
 * name without its '/' (a service may keep "foo" apart from "/foo").
 */
static int describe_self(struct ssm_priv *s, size_t ri, const char *rest,
			 struct ssm_res *res, struct kf_err *err)
{
	uint64_t since = kf_clock_now_ms();
	char hier[KF_SSM_NAME_MAX + 1];
	int rc;

	/* fits: res->name has the same size */
	(void)snprintf(hier, sizeof(hier), "%s", res->name);
	rc = describe_as(s, ri, rest, hier, res, err);
	if (rc == 0 && !strchr(rest, '/') && !strchr(rest, '%'))
		rc = describe_as(s, ri, rest, rest, res, err);
	if (rc < 0)
		return -1;
	kf_ssm_index_complete(s->idx, ri, rest, KF_SSM_SELF, since);
	return 0;
}

void kf_ssm_tree_res_release(struct ssm_res *res)
{
	kf_aws_ssm_meta_release(&res->meta);
	memset(&res->meta, 0, sizeof(res->meta));
}

int kf_ssm_tree_unknown(struct ssm_priv *s, size_t ri, const char *rest,
			char *name)
{
	struct kf_aws_ssm_meta m;
	int known;

	if (kf_ssm_path_name(rest, name) || !maybe_name(name))
		return 0;
	memset(&m, 0, sizeof(m));
	known = kf_ssm_index_lookup(s->idx, ri, rest, &m);
	kf_aws_ssm_meta_release(&m);
	return known == KF_SSM_UNKNOWN || known == KF_SSM_NOT_DIR;
}

int kf_ssm_tree_resolve(struct ssm_priv *s, size_t ri, const char *rest,
			struct ssm_res *res, struct kf_err *err)
{
	int rc;

	memset(res, 0, sizeof(*res));
	if (kf_ssm_path_name(rest, res->name)) {
		res->name[0] = '\0';
		res->bad_path = 1;
		return 0;
	}
	if (!maybe_name(res->name)) {
		res->bad_path = 1;
		return 0;
	}
	switch (kf_ssm_index_lookup(s->idx, ri, rest, &res->meta)) {
	case KF_SSM_HELD:
		res->kind = SK_HELD;
		return 0;
	case KF_SSM_DIR:
		res->kind = SK_DIR;
		return 0;
	case KF_SSM_FILE:
		res->kind = SK_FILE;
		if (res->meta.name)
			/* fits: names in the index are at most that long */
			(void)snprintf(res->name, sizeof(res->name), "%s",
				       res->meta.name);
		return 0;
	case KF_SSM_NONE:
		return 0;
	case KF_SSM_NOT_DIR:
		return describe_self(s, ri, rest, res, err);
	default:
		break;
	}
	rc = below_exists(s, ri, rest, res->name, err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		res->kind = SK_DIR;
		return 0;
	}
	return describe_self(s, ri, rest, res, err);
}
