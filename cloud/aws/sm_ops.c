/*
 * The Secrets Manager operations keyfs uses, each one request body
 * written as JSON and one call.  Bodies holding values are built in
 * sensitive buffers; nothing here logs a body or puts a value into an
 * error message.
 */
#include "aws/sm_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/json.h"

#define SM_BATCH_MAX 20

int kf_aws_sm_is_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

int kf_aws_sm_is_text_prefix(const unsigned char *p, size_t n)
{
	/* where an unfinished last character starts, if it does */
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = p[n - back];
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;

		if (c < 0x80)
			break;
		if (c < 0xc0)
			continue; /* a continuation byte */
		if (len > back)
			return c >= 0xc2 && c <= 0xf4 &&
			       kf_aws_sm_is_text(p, n - back);
		break;
	}
	return kf_aws_sm_is_text(p, n);
}

/* ---- request bodies ----------------------------------------------------- */

/* Append s (n bytes) as a JSON string literal. */
static int js_str(struct kf_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (kf_buf_add(b, "\"", 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 0;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			elen = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			elen = 2;
		} else if (c == '\r') {
			memcpy(esc, "\\r", 2);
			elen = 2;
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (elen) {
			if (kf_buf_add(b, esc, elen))
				return -1;
			explicit_bzero(esc, sizeof(esc));
		} else if (kf_buf_add(b, &s[i], 1)) {
			return -1;
		}
	}
	return kf_buf_add(b, "\"", 1);
}

static int js_member(struct kf_buf *b, int *first, const char *key)
{
	if (!*first && kf_buf_add(b, ",", 1))
		return -1;
	*first = 0;
	if (js_str(b, key, strlen(key)))
		return -1;
	return kf_buf_add(b, ":", 1);
}

static int js_member_str(struct kf_buf *b, int *first, const char *key,
			 const char *val)
{
	if (js_member(b, first, key))
		return -1;
	return js_str(b, val, strlen(val));
}

/* "SecretString": "..." or "SecretBinary": "<base64>". */
static int js_member_value(struct kf_buf *b, int *first, const unsigned char *v,
			   size_t n)
{
	struct kf_buf b64;
	int rc = -1;

	if (kf_aws_sm_is_text(v, n)) {
		if (js_member(b, first, "SecretString"))
			return -1;
		return js_str(b, (const char *)v, n);
	}
	kf_buf_init_sensitive(&b64, SM_BODY_MAX);
	if (kf_base64_encode(v, n, &b64))
		goto out;
	if (js_member(b, first, "SecretBinary"))
		goto out;
	rc = js_str(b, kf_buf_str(&b64), b64.len);
out:
	kf_buf_release(&b64);
	return rc;
}

static int js_member_tags(struct kf_buf *b, int *first,
			  const struct kf_aws_sm_tag *tags, size_t ntags)
{
	if (js_member(b, first, "Tags") || kf_buf_add(b, "[", 1))
		return -1;
	for (size_t i = 0; i < ntags; i++) {
		int f = 1;

		if ((i && kf_buf_add(b, ",", 1)) || kf_buf_add(b, "{", 1) ||
		    js_member_str(b, &f, "Key", tags[i].key) ||
		    js_member_str(b, &f, "Value",
				  tags[i].value ? tags[i].value : "") ||
		    kf_buf_add(b, "}", 1))
			return -1;
	}
	return kf_buf_add(b, "]", 1);
}

/* `{"SecretId":id`: how most bodies start. */
static int js_open_id(struct kf_buf *b, int *first, const char *id)
{
	if (kf_buf_add(b, "{", 1) || js_member_str(b, first, "SecretId", id))
		return -1;
	return 0;
}

/*
 * Send body as op, then release it; when writing it failed (bad), fail
 * with code instead, before any request.  *out (NULL: dropped) receives
 * the answer.
 */
static int sm_send(struct kf_aws_sm *sm, const char *op, struct kf_buf *body,
		   int bad, enum kf_code code, json_t **out, struct kf_err *err)
{
	json_t *j = NULL;
	int rc;

	if (bad)
		rc = kf_fail(err, code, "%s: request too long", op);
	else
		rc = kf_aws_sm_call(sm, op, body, &j, err);
	kf_buf_release(body);
	if (out)
		*out = j;
	else
		json_decref(j);
	return rc;
}

/* ---- operations -------------------------------------------------------- */

static int list_body(struct kf_buf *b, const char *prefix, const char *token,
		     unsigned max)
{
	int first = 1;

	if (kf_buf_add(b, "{", 1) || js_member(b, &first, "MaxResults") ||
	    kf_buf_addf(b, "%u", max) ||
	    js_member_str(b, &first, "SortBy", "name") ||
	    js_member_str(b, &first, "SortOrder", "asc") ||
	    (token && token[0] && js_member_str(b, &first, "NextToken", token)))
		return -1;
	if (prefix && prefix[0] &&
	    (js_member(b, &first, "Filters") ||
	     kf_buf_adds(b, "[{\"Key\":\"name\",\"Values\":[") ||
	     js_str(b, prefix, strlen(prefix)) || kf_buf_adds(b, "]}]")))
		return -1;
	return kf_buf_add(b, "}", 1);
}

/* The live secrets of a ListSecrets answer whose names start with prefix
 * (NULL: all), into page->v; -1 when out of memory. */
static int list_parse(const json_t *j, const char *prefix,
		      struct kf_aws_sm_page *page)
{
	const json_t *list = json_object_get(j, "SecretList");
	size_t n = json_is_array(list) ? json_array_size(list) : 0;
	const char *next = kf_json_str(j, "NextToken");

	page->v = n ? calloc(n, sizeof(*page->v)) : NULL;
	if (n && !page->v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(list, i);
		struct kf_aws_sm_meta m;

		if (!json_is_object(e))
			continue;
		if (kf_aws_sm_parse_meta(e, &m)) {
			kf_aws_sm_meta_release(&m);
			if (!kf_json_str(e, "Name"))
				continue;
			return -1;
		}
		if (m.deleted ||
		    (prefix && strncmp(m.name, prefix, strlen(prefix)) != 0)) {
			kf_aws_sm_meta_release(&m);
			continue;
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

int kf_aws_sm_list(struct kf_aws_sm *sm, const char *prefix, const char *token,
		   unsigned max, struct kf_aws_sm_page *page,
		   struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int bad, rc = -1;

	memset(page, 0, sizeof(*page));
	if (max < 1 || max > 100)
		max = 100;
	kf_buf_init(&body, 16384);
	bad = list_body(&body, prefix, token, max);
	if (sm_send(sm, "ListSecrets", &body, bad, KF_E_INVALID, &j, err))
		goto out;
	if (list_parse(j, prefix, page)) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kf_aws_sm_page_release(page);
	json_decref(j);
	return rc;
}

/* A call whose body is {"SecretId": id}; *out receives the answer. */
static int call_on_id(struct kf_aws_sm *sm, const char *op, const char *id,
		      json_t **out, struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	kf_buf_init(&body, 8192);
	bad = js_open_id(&body, &first, id) || kf_buf_add(&body, "}", 1);
	return sm_send(sm, op, &body, bad, KF_E_INVALID, out, err);
}

int kf_aws_sm_describe(struct kf_aws_sm *sm, const char *id,
		       struct kf_aws_sm_meta *meta, struct kf_err *err)
{
	json_t *j = NULL;
	int rc = -1;

	memset(meta, 0, sizeof(*meta));
	if (call_on_id(sm, "DescribeSecret", id, &j, err))
		goto out;
	if (kf_aws_sm_parse_meta(j, meta)) {
		kf_aws_sm_meta_release(meta);
		kf_fail(err, KF_E_IO, "DescribeSecret: malformed response");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int kf_aws_sm_batch_get(struct kf_aws_sm *sm, const char *const *ids, size_t n,
			void (*fn)(void *ctx, const char *name,
				   struct kf_secret *value),
			void *ctx, struct kf_err *err)
{
	struct kf_buf body, bin;
	json_t *j = NULL, *e;
	size_t i;
	int bad, rc = -1;

	if (n < 1 || n > SM_BATCH_MAX)
		return kf_fail(err, KF_E_INVALID,
			       "BatchGetSecretValue takes 1 to 20 ids");
	kf_buf_init(&body, SM_BATCH_MAX * 2100 + 64);
	kf_buf_init_sensitive(&bin, KF_AWS_SM_MAX_VALUE * 2);
	bad = kf_buf_adds(&body, "{\"SecretIdList\":[");
	for (i = 0; i < n && !bad; i++)
		bad = (i && kf_buf_adds(&body, ",")) ||
		      js_str(&body, ids[i], strlen(ids[i]));
	bad = bad || kf_buf_adds(&body, "]}");
	if (sm_send(sm, "BatchGetSecretValue", &body, bad, KF_E_INVALID, &j,
		    err))
		goto out;
	json_array_foreach(json_object_get(j, "SecretValues"), i, e)
	{
		const char *name = kf_json_str(e, "Name");
		struct kf_secret *s;

		if (!name)
			continue;
		s = kf_aws_sm_value_of(e, &bin, "BatchGetSecretValue", err);
		if (!s)
			goto out;
		fn(ctx, name, s);
	}
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&bin);
	return rc;
}

/* GetSecretValue of id, of the version member ("VersionStage" or
 * "VersionId") names (member NULL: AWSCURRENT); *out gets the answer. */
static int get_call(struct kf_aws_sm *sm, const char *id, const char *member,
		    const char *version, json_t **out, struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	kf_buf_init(&body, 8192);
	bad = js_open_id(&body, &first, id) ||
	      (member && js_member_str(&body, &first, member, version)) ||
	      kf_buf_add(&body, "}", 1);
	return sm_send(sm, "GetSecretValue", &body, bad, KF_E_INVALID, out,
		       err);
}

int kf_aws_sm_get_version(struct kf_aws_sm *sm, const char *id,
			  const char *stage, const char *version_id,
			  struct kf_secret **value, struct kf_err *err)
{
	struct kf_buf bin;
	json_t *j = NULL;
	int rc = -1;

	*value = NULL;
	if (!stage == !version_id)
		return kf_fail(err, KF_E_INVALID,
			       "GetSecretValue: a stage or a version id");
	kf_buf_init_sensitive(&bin, KF_AWS_SM_MAX_VALUE * 2);
	if (get_call(sm, id, stage ? "VersionStage" : "VersionId",
		     stage ? stage : version_id, &j, err)) {
		/* the version has no value, or there is no such version */
		if (kf_err_is(err, KF_R_NO_VALUE))
			err->reason = KF_R_NONE;
		goto out;
	}
	*value = kf_aws_sm_value_of(j, &bin, "GetSecretValue", err);
	if (*value)
		rc = 0;
out:
	json_decref(j);
	kf_buf_release(&bin);
	return rc;
}

static int versions_body(struct kf_buf *b, const char *id, const char *token,
			 unsigned max)
{
	int first = 1;

	if (js_open_id(b, &first, id) ||
	    js_member(b, &first, "IncludeDeprecated") ||
	    kf_buf_adds(b, "true") || js_member(b, &first, "MaxResults") ||
	    kf_buf_addf(b, "%u", max) ||
	    (token && token[0] && js_member_str(b, &first, "NextToken", token)))
		return -1;
	return kf_buf_add(b, "}", 1);
}

int kf_aws_sm_list_versions(struct kf_aws_sm *sm, const char *id,
			    const char *token, unsigned max,
			    struct kf_aws_sm_versions *page, struct kf_err *err)
{
	struct kf_buf body;
	json_t *j = NULL;
	int bad, rc = -1;

	memset(page, 0, sizeof(*page));
	if (max < 1 || max > 100)
		max = 100;
	kf_buf_init(&body, 16384);
	bad = versions_body(&body, id, token, max);
	if (sm_send(sm, "ListSecretVersionIds", &body, bad, KF_E_INVALID, &j,
		    err))
		goto out;
	if (kf_aws_sm_parse_versions(j, page)) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kf_aws_sm_versions_release(page);
	json_decref(j);
	return rc;
}

int kf_aws_sm_get_value(struct kf_aws_sm *sm, const char *id,
			struct kf_secret **value, char *version,
			size_t versionlen, struct kf_err *err)
{
	struct kf_buf bin;
	json_t *j = NULL;
	const char *ver;
	int rc = -1;

	*value = NULL;
	if (version && versionlen)
		version[0] = '\0';
	kf_buf_init_sensitive(&bin, KF_AWS_SM_MAX_VALUE * 2);
	if (get_call(sm, id, NULL, NULL, &j, err)) {
		/* created without a value: it exists and reads empty */
		if (!kf_err_is(err, KF_R_NO_VALUE))
			goto out;
		kf_err_clear(err);
		*value = kf_secret_new(0);
	} else {
		*value = kf_aws_sm_value_of(j, &bin, "GetSecretValue", err);
		ver = kf_json_str(j, "VersionId");
		/* a caller's shorter buffer gets the id cut, as documented */
		if (*value && version && versionlen && ver)
			(void)snprintf(version, versionlen, "%s", ver);
	}
	if (!*value) {
		if (err->code == KF_OK)
			kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	kf_buf_release(&bin);
	return rc;
}

int kf_aws_sm_create(struct kf_aws_sm *sm, const char *name, const char *token,
		     const unsigned char *value, size_t n,
		     const struct kf_aws_sm_tag *tags, size_t ntags,
		     struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "CreateSecret: value of %zu "
			       "bytes is over the %d-byte limit",
			       n, KF_AWS_SM_MAX_VALUE);
	kf_buf_init_sensitive(&body, SM_BODY_MAX);
	bad = kf_buf_add(&body, "{", 1) ||
	      js_member_str(&body, &first, "Name", name) ||
	      js_member_str(&body, &first, "ClientRequestToken", token) ||
	      (value && n && js_member_value(&body, &first, value, n)) ||
	      (tags && ntags && js_member_tags(&body, &first, tags, ntags)) ||
	      kf_buf_add(&body, "}", 1);
	return sm_send(sm, "CreateSecret", &body, bad, KF_E_NOMEM, NULL, err);
}

int kf_aws_sm_put_value(struct kf_aws_sm *sm, const char *id, const char *token,
			const unsigned char *value, size_t n,
			struct kf_err *err)
{
	struct kf_buf body;
	enum kf_code code = KF_E_NOMEM;
	int first = 1, bad;

	if (n > KF_AWS_SM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "PutSecretValue: value of %zu "
			       "bytes is over the %d-byte limit",
			       n, KF_AWS_SM_MAX_VALUE);
	if (n == 0)
		return kf_fail(err, KF_E_INVALID,
			       "PutSecretValue: Secrets "
			       "Manager cannot store an empty value");
	kf_buf_init_sensitive(&body, SM_BODY_MAX);
	bad = js_open_id(&body, &first, id);
	if (bad)
		code = KF_E_INVALID; /* the id, not the value */
	bad = bad ||
	      js_member_str(&body, &first, "ClientRequestToken", token) ||
	      js_member_value(&body, &first, value, n) ||
	      kf_buf_add(&body, "}", 1);
	return sm_send(sm, "PutSecretValue", &body, bad, code, NULL, err);
}

int kf_aws_sm_update_description(struct kf_aws_sm *sm, const char *id,
				 const char *description, struct kf_err *err)
{
	struct kf_buf body;
	char token[37];
	int first = 1, bad;

	if (kf_uuid4(token, err))
		return -1;
	kf_buf_init(&body, 16384);
	/* moto rejects UpdateSecret without a token; AWS accepts one. */
	bad = js_open_id(&body, &first, id) ||
	      js_member_str(&body, &first, "ClientRequestToken", token) ||
	      js_member_str(&body, &first, "Description", description) ||
	      kf_buf_add(&body, "}", 1);
	return sm_send(sm, "UpdateSecret", &body, bad, KF_E_INVALID, NULL, err);
}

int kf_aws_sm_tag(struct kf_aws_sm *sm, const char *id,
		  const struct kf_aws_sm_tag *tags, size_t ntags,
		  struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	kf_buf_init(&body, 65536);
	bad = js_open_id(&body, &first, id) ||
	      js_member_tags(&body, &first, tags, ntags) ||
	      kf_buf_add(&body, "}", 1);
	return sm_send(sm, "TagResource", &body, bad, KF_E_INVALID, NULL, err);
}

int kf_aws_sm_delete(struct kf_aws_sm *sm, const char *id,
		     unsigned recovery_days, struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	kf_buf_init(&body, 8192);
	bad = js_open_id(&body, &first, id);
	if (recovery_days == 0)
		bad = bad ||
		      js_member(&body, &first, "ForceDeleteWithoutRecovery") ||
		      kf_buf_adds(&body, "true");
	else
		bad = bad || js_member(&body, &first, "RecoveryWindowInDays") ||
		      kf_buf_addf(&body, "%u", recovery_days);
	bad = bad || kf_buf_add(&body, "}", 1);
	return sm_send(sm, "DeleteSecret", &body, bad, KF_E_INVALID, NULL, err);
}

int kf_aws_sm_restore(struct kf_aws_sm *sm, const char *id, struct kf_err *err)
{
	struct kf_buf body;
	int first = 1, bad;

	kf_buf_init(&body, 8192);
	bad = js_open_id(&body, &first, id) || kf_buf_add(&body, "}", 1);
	return sm_send(sm, "RestoreSecret", &body, bad, KF_E_INVALID, NULL,
		       err);
}
