/*
 * The Parameter Store operations that write or look back: PutParameter
 * and DeleteParameter with checked retries (neither takes an idempotency
 * token), GetParameterHistory (never keeping a value), and the rules of
 * names keyfs may create.  Nothing here logs or quotes a value.
 */
#include "aws/ssm.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sm_priv.h"
#include "core/json.h"
#include "core/log.h"

/* ---- versions ------------------------------------------------------------ */

/* Whether a label can be one item of a comma-separated list on a line. */
static int label_ok(const char *s)
{
	if (!s[0])
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == ',' || *s == 0x7f)
			return 0;
	return 1;
}

/* The Labels of one history entry joined with ",". */
static char *labels_of(const json_t *e)
{
	const json_t *l;
	struct kf_buf b;
	size_t i;
	char *out;

	kf_buf_init(&b, 65536);
	json_array_foreach(json_object_get(e, "Labels"), i, l)
	{
		if (!json_is_string(l) || !label_ok(json_string_value(l)))
			continue;
		if ((b.len && kf_buf_add(&b, ",", 1)) ||
		    kf_buf_adds(&b, json_string_value(l))) {
			kf_buf_release(&b);
			return NULL;
		}
	}
	out = strdup(kf_buf_str(&b));
	kf_buf_release(&b);
	return out;
}

/* A GetParameterHistory answer into page: versions only, never a Value. */
static int history_parse(const json_t *j, struct kf_aws_ssm_versions *page)
{
	const json_t *list = json_object_get(j, "Parameters"), *e;
	const char *next = kf_json_str(j, "NextToken");
	size_t n = json_is_array(list) ? json_array_size(list) : 0, i;

	page->v = n ? calloc(n, sizeof(*page->v)) : NULL;
	if (n && !page->v)
		return -1;
	json_array_foreach(list, i, e)
	{
		struct kf_aws_ssm_version *v = &page->v[page->n];

		v->version = kf_aws_ssm_int_of(e, "Version");
		if (!v->version)
			continue;
		v->labels = labels_of(e);
		v->changed_ms = kf_aws_sm_parse_date_ms(e, "LastModifiedDate");
		page->n++;
		if (!v->labels)
			return -1;
	}
	if (next && next[0]) {
		page->next_token = strdup(next);
		if (!page->next_token)
			return -1;
	}
	return 0;
}

int kf_aws_ssm_history(struct kf_aws_ssm *ssm, const char *name,
		       const char *token, unsigned max,
		       struct kf_aws_ssm_versions *page, struct kf_err *err)
{
	json_t *req, *j = NULL;
	int rc = -1;

	memset(page, 0, sizeof(*page));
	if (max < 1 || max > KF_AWS_SSM_PAGE_MAX)
		max = KF_AWS_SSM_PAGE_MAX;
	req = json_pack("{s:s,s:b,s:I}", "Name", name, "WithDecryption", 0,
			"MaxResults", (json_int_t)max);
	if (req && token && token[0] &&
	    json_object_set_new(req, "NextToken", json_string(token))) {
		json_decref(req);
		req = NULL;
	}
	if (kf_aws_ssm_call(ssm, "GetParameterHistory", req, NULL, NULL, NULL,
			    &j, err))
		goto out;
	if (history_parse(j, page)) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kf_aws_ssm_versions_release(page);
	json_decref(j);
	return rc;
}

void kf_aws_ssm_versions_release(struct kf_aws_ssm_versions *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		free(page->v[i].labels);
	free(page->v);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* ---- writing ------------------------------------------------------------- */

/* What a retried PutParameter looks for. */
struct put_check {
	struct kf_aws_ssm *ssm;
	const char *name;
	const unsigned char *value;
	size_t n;
	int64_t prev_version;
	int64_t found; /* the version found landed */
};

/* Equal bytes, without stopping at the first difference. */
static int same_bytes(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/*
 * An earlier PutParameter landed when the parameter now holds a version
 * above the one before the write with the very value being written.
 */
static int put_landed(void *vctx, json_t **out, struct kf_err *err)
{
	struct put_check *pc = vctx;
	struct kf_secret *s = NULL;
	struct kf_aws_ssm_meta m;
	int r = 0;

	if (kf_aws_ssm_get(pc->ssm, pc->name, NULL, &s, &m, err)) {
		if (err->code != KF_E_NOTFOUND)
			return -1;
		kf_err_clear(err);
		return 0;
	}
	if (m.version > pc->prev_version && s->len == pc->n &&
	    same_bytes(s->data, pc->value, pc->n)) {
		pc->found = m.version;
		*out = json_pack("{s:I}", "Version", (json_int_t)m.version);
		r = 1;
	}
	kf_secret_free(s);
	kf_aws_ssm_meta_release(&m);
	return r;
}

/* The PutParameter body; NULL when it cannot be built. */
static json_t *put_req(const char *name, const unsigned char *value, size_t n,
		       const struct kf_aws_ssm_put *opt)
{
	json_t *o = json_pack("{s:s,s:s%,s:b}", "Name", name, "Value",
			      (const char *)value, n, "Overwrite",
			      opt->overwrite ? 1 : 0);

	if (o && ((opt->type &&
		   json_object_set_new(o, "Type", json_string(opt->type))) ||
		  (opt->key_id &&
		   json_object_set_new(o, "KeyId", json_string(opt->key_id))) ||
		  (opt->tier &&
		   json_object_set_new(o, "Tier", json_string(opt->tier))))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int kf_aws_ssm_put(struct kf_aws_ssm *ssm, const char *name,
		   const unsigned char *value, size_t n,
		   const struct kf_aws_ssm_put *opt, int64_t *version,
		   int *landed_by_check, struct kf_err *err)
{
	struct put_check pc = { ssm, name, value, n, opt->prev_version, 0 };
	json_t *j = NULL;
	int rc;

	if (version)
		*version = 0;
	if (landed_by_check)
		*landed_by_check = 0;
	if (n == 0)
		return kf_fail(err, KF_E_INVALID,
			       "ssm: Parameter Store cannot hold an empty "
			       "value");
	if (n > KF_AWS_SSM_ADVANCED_MAX)
		return kf_fail(err, KF_E_TOOBIG,
			       "ssm: value of %zu bytes is over the %d-byte "
			       "limit",
			       n, KF_AWS_SSM_ADVANCED_MAX);
	if (!kf_aws_sm_is_text(value, n))
		return kf_fail(err, KF_E_INVALID,
			       "ssm: a parameter holds UTF-8 text without "
			       "NUL bytes");
	rc = kf_aws_ssm_call(ssm, "PutParameter", put_req(name, value, n, opt),
			     put_landed, &pc, NULL, &j, err);
	if (rc == 0 && pc.found) {
		kf_log(KF_LOG_INFO,
		       "ssm: PutParameter %s: an earlier attempt landed "
		       "(version %lld), not sent again",
		       name, (long long)pc.found);
		if (landed_by_check)
			*landed_by_check = 1;
	}
	if (rc == 0 && version)
		*version = kf_aws_ssm_int_of(j, "Version");
	json_decref(j);
	return rc;
}

/* An earlier DeleteParameter landed when the name is gone. */
static int delete_landed(void *vctx, json_t **out, struct kf_err *err)
{
	struct put_check *pc = vctx;
	struct kf_aws_ssm_meta m;
	int r = kf_aws_ssm_describe(pc->ssm, pc->name, &m, err);

	kf_aws_ssm_meta_release(&m);
	*out = NULL;
	return r < 0 ? -1 : r == 0;
}

int kf_aws_ssm_delete(struct kf_aws_ssm *ssm, const char *name,
		      struct kf_err *err)
{
	struct put_check pc = { ssm, name, NULL, 0, 0, 0 };
	unsigned checks = 0;

	if (kf_aws_ssm_call(ssm, "DeleteParameter",
			    json_pack("{s:s}", "Name", name), delete_landed,
			    &pc, &checks, NULL, err) == 0)
		return 0;
	/* a retry answered ParameterNotFound: gone, as asked */
	if (checks && err->code == KF_E_NOTFOUND) {
		kf_err_clear(err);
		return 0;
	}
	return -1;
}

/* ---- names --------------------------------------------------------------- */

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int kf_aws_ssm_name_ok(const char *s)
{
	size_t len = strlen(s), i, comp = 0, levels = 0;

	if (len < 2 || len > KF_AWS_SSM_NAME_MAX || s[0] != '/' ||
	    strncasecmp(s + 1, "aws", 3) == 0 ||
	    strncasecmp(s + 1, "ssm", 3) == 0)
		return 0;
	for (i = 1; i <= len; i++) {
		if (s[i] == '/' || s[i] == '\0') {
			/* empty, "." and ".." components cannot be paths */
			if (comp == 0 || (comp == 1 && s[i - 1] == '.') ||
			    (comp == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				return 0;
			if (++levels > KF_AWS_SSM_DEPTH_MAX)
				return 0;
			comp = 0;
		} else if (name_char_ok(s[i])) {
			comp++;
		} else {
			return 0;
		}
	}
	return 1;
}
