/*
 * The Parameter Store client: its lifecycle, requests and the reading
 * operations (ssm_ops.c: history, writes, names).  Each operation is one
 * AWS JSON 1.1 request built with jansson and sent through the Secrets
 * Manager client's signed-call core (service "ssm", target
 * "AmazonSSM.<Op>", counted as "ssm"), its answer read here.  Values
 * travel only in jansson memory (wiped on free), sensitive buffers and
 * locked secrets; nothing here logs or quotes a value, a credential or a
 * body.
 */
#include "aws/ssm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sm_priv.h"
#include "core/json.h"

/* A request body: a name of 1011 bytes escaped, an 8 KiB value escaped. */
#define SSM_BODY_MAX (128u << 10)
/* Pages a Name Equals lookup follows while the service pages the filter. */
#define SSM_DESCRIBE_PAGES 20

int kf_aws_ssm_new(const struct kf_aws_ssm_cfg *cfg, struct kf_aws_ssm **out,
		   struct kf_err *err)
{
	struct kf_aws_sm_cfg scfg;
	struct kf_aws_ssm *ssm;

	*out = NULL;
	ssm = calloc(1, sizeof(*ssm));
	if (!ssm)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	memset(&scfg, 0, sizeof(scfg));
	scfg.endpoint = cfg->endpoint;
	scfg.region = cfg->region;
	scfg.chain = cfg->chain;
	scfg.timeout_ms = cfg->timeout_ms;
	scfg.attempts = cfg->attempts;
	scfg.backoff_base_ms = cfg->backoff_base_ms;
	scfg.service = "ssm";
	scfg.target_prefix = "AmazonSSM";
	scfg.stats_name = "ssm";
	if (kf_aws_sm_new(&scfg, &ssm->sm, err)) {
		free(ssm);
		return -1;
	}
	*out = ssm;
	return 0;
}

void kf_aws_ssm_free(struct kf_aws_ssm *ssm)
{
	if (!ssm)
		return;
	kf_aws_sm_free(ssm->sm);
	free(ssm);
}

/* ---- requests ------------------------------------------------------------ */

static int buf_sink(const char *p, size_t n, void *data)
{
	return kf_buf_add(data, p, n);
}

/* The body buffer is sensitive: some bodies hold a value. */
int kf_aws_ssm_call(struct kf_aws_ssm *ssm, const char *op, json_t *req,
		    kf_aws_sm_landed_fn landed, void *ctx, unsigned *checks,
		    json_t **out, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int rc;

	kf_buf_init_sensitive(&body, SSM_BODY_MAX);
	if (!req || json_dump_callback(req, buf_sink, &body, JSON_COMPACT))
		rc = kf_fail(err, KF_E_INVALID,
			     "ssm: %s: cannot write the request "
			     "(a name that is not UTF-8?)",
			     op);
	else if (landed)
		rc = kf_aws_sm_call_checked(ssm->sm, op, &body, landed, ctx,
					    checks, &j, err);
	else
		rc = kf_aws_sm_call(ssm->sm, op, &body, &j, err);
	json_decref(req);
	kf_buf_release(&body);
	if (out)
		*out = j;
	else
		json_decref(j);
	return rc;
}

/* "name" or "name:selector", as GetParameter takes a version or label. */
static json_t *name_with(const char *name, const char *selector)
{
	struct kf_buf b;
	json_t *s;

	if (!selector)
		return json_string(name);
	kf_buf_init(&b, 4096);
	s = kf_buf_addf(&b, "%s:%s", name, selector) ?
		    NULL :
		    json_stringn(kf_buf_str(&b), b.len);
	kf_buf_release(&b);
	return s;
}

/* ---- answers ------------------------------------------------------------- */

int64_t kf_aws_ssm_int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	char *end = NULL;
	long long n;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? json_integer_value(v) : 0;
	s = json_is_string(v) ? json_string_value(v) : NULL;
	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	n = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && n > 0 ? (int64_t)n : 0;
}

/* A copy of o[key] when it is a non-empty string into *dst (else NULL);
 * -1 when out of memory. */
static int dup_member(const json_t *o, const char *key, char **dst)
{
	const char *s = kf_json_str(o, key);

	*dst = s && s[0] ? strdup(s) : NULL;
	return s && s[0] && !*dst ? -1 : 0;
}

/* *m from one Parameters entry of DescribeParameters (or the Parameter of
 * GetParameter: no KeyId, Tier, Description there).  -1 when it has no
 * Name or memory ran out (release *m either way). */
static int meta_parse(const json_t *o, struct kf_aws_ssm_meta *m)
{
	memset(m, 0, sizeof(*m));
	if (!kf_json_str(o, "Name") || dup_member(o, "Name", &m->name) ||
	    !m->name || dup_member(o, "ARN", &m->arn) ||
	    dup_member(o, "Type", &m->type) ||
	    dup_member(o, "KeyId", &m->key_id) ||
	    dup_member(o, "Description", &m->description) ||
	    dup_member(o, "Tier", &m->tier))
		return -1;
	m->version = kf_aws_ssm_int_of(o, "Version");
	m->changed = kf_aws_sm_parse_date(o, "LastModifiedDate");
	return 0;
}

void kf_aws_ssm_meta_release(struct kf_aws_ssm_meta *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->arn);
	free(m->type);
	free(m->key_id);
	free(m->description);
	free(m->tier);
	memset(m, 0, sizeof(*m));
}

void kf_aws_ssm_page_release(struct kf_aws_ssm_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		kf_aws_ssm_meta_release(&page->v[i]);
	free(page->v);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* The entries of a DescribeParameters answer into page; -1 out of memory. */
static int page_parse(const json_t *j, struct kf_aws_ssm_page *page)
{
	const json_t *list = json_object_get(j, "Parameters");
	size_t n = json_is_array(list) ? json_array_size(list) : 0;
	const char *next = kf_json_str(j, "NextToken");

	page->v = n ? calloc(n, sizeof(*page->v)) : NULL;
	if (n && !page->v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(list, i);
		struct kf_aws_ssm_meta m;
		const char *name = kf_json_str(e, "Name");

		if (!json_is_object(e) || !name || !name[0])
			continue;
		if (meta_parse(e, &m)) {
			kf_aws_ssm_meta_release(&m);
			return -1;
		}
		page->v[page->n++] = m;
	}
	if (next && next[0]) {
		page->next_token = strdup(next);
		if (!page->next_token)
			return -1;
	}
	return 0;
}

/* ---- listing ------------------------------------------------------------- */

/* The body of DescribeParameters: one filter of key/option on value. */
static json_t *describe_req(const char *key, const char *option,
			    const char *value, const char *token, unsigned max)
{
	json_t *o = json_pack("{s:I}", "MaxResults", (json_int_t)max);

	if (o && token && token[0] &&
	    json_object_set_new(o, "NextToken", json_string(token)))
		goto fail;
	if (o && key &&
	    json_object_set_new(o, "ParameterFilters",
				json_pack("[{s:s,s:s,s:[s]}]", "Key", key,
					  "Option", option, "Values", value)))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* One DescribeParameters page. */
static int describe_page(struct kf_aws_ssm *ssm, json_t *req,
			 struct kf_aws_ssm_page *page, struct kf_err *err)
{
	json_t *j = NULL;
	int rc = -1;

	memset(page, 0, sizeof(*page));
	if (kf_aws_ssm_call(ssm, "DescribeParameters", req, NULL, NULL, NULL,
			    &j, err))
		goto out;
	if (page_parse(j, page)) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kf_aws_ssm_page_release(page);
	json_decref(j);
	return rc;
}

int kf_aws_ssm_list(struct kf_aws_ssm *ssm, const char *path, int recursive,
		    const char *token, unsigned max,
		    struct kf_aws_ssm_page *page, struct kf_err *err)
{
	if (max < 1 || max > KF_AWS_SSM_PAGE_MAX)
		max = KF_AWS_SSM_PAGE_MAX;
	return describe_page(ssm,
			     describe_req(path ? "Path" : NULL,
					  recursive ? "Recursive" : "OneLevel",
					  path, token, max),
			     page, err);
}

/* The entry of page named name, else its first one, else NULL. */
static struct kf_aws_ssm_meta *pick(struct kf_aws_ssm_page *page,
				    const char *name)
{
	for (size_t i = 0; i < page->n; i++)
		if (strcmp(page->v[i].name, name) == 0)
			return &page->v[i];
	/* a service that treats "/foo" and "foo" as one lists either */
	return page->n ? &page->v[0] : NULL;
}

int kf_aws_ssm_describe(struct kf_aws_ssm *ssm, const char *name,
			struct kf_aws_ssm_meta *meta, struct kf_err *err)
{
	struct kf_aws_ssm_page page;
	struct kf_aws_ssm_meta *m;
	char *token = NULL;
	int rc = -1;

	memset(meta, 0, sizeof(*meta));
	/* a filtered listing may answer an empty page and a NextToken */
	for (int i = 0; i < SSM_DESCRIBE_PAGES; i++) {
		if (describe_page(ssm,
				  describe_req("Name", "Equals", name, token,
					       KF_AWS_SSM_PAGE_MAX),
				  &page, err))
			break;
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		m = pick(&page, name);
		rc = m ? 1 : 0;
		if (m) {
			*meta = *m;
			memset(m, 0, sizeof(*m));
		}
		kf_aws_ssm_page_release(&page);
		if (rc == 1 || !token)
			break;
		rc = -1;
	}
	if (rc < 0 && err->code == KF_OK)
		kf_fail(err, KF_E_IO,
			"ssm: DescribeParameters: no answer in %d pages",
			SSM_DESCRIBE_PAGES);
	free(token);
	return rc;
}

/* ---- reading ------------------------------------------------------------- */

/* The value of a Parameter object in a new secret with its version. */
static struct kf_secret *value_of(const json_t *p, const char *op,
				  struct kf_err *err)
{
	const json_t *v = json_object_get(p, "Value");
	struct kf_secret *s;
	char ver[24];

	if (!json_is_string(v)) {
		kf_fail(err, KF_E_IO, "ssm: %s: no value in the answer", op);
		return NULL;
	}
	s = kf_secret_dup(json_string_value(v), json_string_length(v));
	if (!s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		return NULL;
	}
	/* 20 digits at most: fits */
	(void)snprintf(ver, sizeof(ver), "%lld",
		       (long long)kf_aws_ssm_int_of(p, "Version"));
	kf_secret_set_version(s, ver);
	return s;
}

/* meta of what GetParameter answered, the selector cut off its name. */
static int get_meta(const json_t *p, const char *selector,
		    struct kf_aws_ssm_meta *meta)
{
	size_t nl, sl;

	if (meta_parse(p, meta))
		return -1;
	if (!selector)
		return 0;
	nl = strlen(meta->name);
	sl = strlen(selector);
	if (nl > sl + 1 && meta->name[nl - sl - 1] == ':' &&
	    strcmp(meta->name + nl - sl, selector) == 0)
		meta->name[nl - sl - 1] = '\0';
	return 0;
}

int kf_aws_ssm_get(struct kf_aws_ssm *ssm, const char *name,
		   const char *selector, struct kf_secret **value,
		   struct kf_aws_ssm_meta *meta, struct kf_err *err)
{
	json_t *j = NULL;
	const json_t *p;
	int rc = -1;

	*value = NULL;
	if (meta)
		memset(meta, 0, sizeof(*meta));
	if (kf_aws_ssm_call(ssm, "GetParameter",
			    json_pack("{s:o,s:b}", "Name",
				      name_with(name, selector),
				      "WithDecryption", 1),
			    NULL, NULL, NULL, &j, err))
		goto out;
	p = json_object_get(j, "Parameter");
	*value = value_of(p, "GetParameter", err);
	if (!*value)
		goto out;
	if (meta && get_meta(p, selector, meta)) {
		kf_aws_ssm_meta_release(meta);
		kf_secret_free(*value);
		*value = NULL;
		kf_fail(err, KF_E_IO, "ssm: GetParameter: malformed response");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int kf_aws_ssm_get_batch(struct kf_aws_ssm *ssm, const char *const *names,
			 size_t n,
			 void (*fn)(void *ctx, const char *name,
				    struct kf_secret *value),
			 void *ctx, struct kf_err *err)
{
	json_t *req, *list, *j = NULL, *e;
	size_t i;
	int rc = -1;

	if (n < 1 || n > KF_AWS_SSM_BATCH_MAX)
		return kf_fail(err, KF_E_INVALID,
			       "ssm: GetParameters takes 1 to %d names",
			       KF_AWS_SSM_BATCH_MAX);
	list = json_array();
	for (i = 0; list && i < n; i++)
		if (json_array_append_new(list, json_string(names[i]))) {
			json_decref(list);
			list = NULL;
		}
	req = json_pack("{s:o,s:b}", "Names", list, "WithDecryption", 1);
	if (kf_aws_ssm_call(ssm, "GetParameters", req, NULL, NULL, NULL, &j,
			    err))
		goto out;
	json_array_foreach(json_object_get(j, "Parameters"), i, e)
	{
		const char *name = kf_json_str(e, "Name");
		struct kf_secret *s;

		if (!name)
			continue;
		s = value_of(e, "GetParameters", err);
		if (!s)
			goto out;
		fn(ctx, name, s);
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}
