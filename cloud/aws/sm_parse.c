/*
 * What Secrets Manager answers, read: secret metadata, values, dates, and
 * error responses classified by their normalised __type (never by HTTP
 * status alone) into a code, a reason and a retry action.  Parsed values
 * live in jansson memory that main() makes wipe-on-free; an error message
 * quotes the service only for types whose text never echoes input.
 */
#include "aws/sm_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/json.h"

/* ---- metadata and values ------------------------------------------------ */

/*
 * A double as epoch seconds.  NaN, infinities and values far outside any
 * date count as absent (0): converting them to an integer is undefined
 * behaviour ("CreatedDate": 7.7e131 was one such answer).
 */
static int64_t epoch_of(double d)
{
	if (!(d > -1e15 && d < 1e15))
		return 0;
	return (int64_t)d;
}

/*
 * o[key] as a number of epoch seconds: a JSON integer (exact in *i), a
 * real, or a decimal string.  1 when it is one (*d set), else 0.
 */
static int date_number(const json_t *o, const char *key, double *d,
		       json_int_t *i, int *integer)
{
	const json_t *v = o ? json_object_get(o, key) : NULL;
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	char *end = NULL;

	*integer = json_is_integer(v);
	if (*integer) {
		*i = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v)) {
		*d = json_real_value(v);
		return 1;
	}
	if (!s)
		return 0;
	errno = 0;
	*d = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0';
}

int64_t kf_aws_sm_parse_date(const json_t *o, const char *key)
{
	json_int_t i = 0;
	double d = 0;
	int integer;

	if (!date_number(o, key, &d, &i, &integer))
		return 0;
	return integer ? (int64_t)i : epoch_of(d);
}

/* As epoch_of, in milliseconds, rounded to the nearest. */
static int64_t epoch_ms_of(double d)
{
	if (!(d > -1e12 && d < 1e12))
		return 0;
	d *= 1000.0;
	return (int64_t)(d < 0 ? d - 0.5 : d + 0.5);
}

int64_t kf_aws_sm_parse_date_ms(const json_t *o, const char *key)
{
	json_int_t i = 0;
	double d = 0;
	int integer;

	if (!date_number(o, key, &d, &i, &integer))
		return 0;
	if (integer)
		return i > -1000000000000LL && i < 1000000000000LL ?
			       (int64_t)i * 1000 :
			       0;
	return epoch_ms_of(d);
}

static char *strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int parse_tags(const json_t *o, struct kf_aws_sm_meta *m)
{
	const json_t *tags = json_object_get(o, "Tags");
	size_t n, i;

	if (!json_is_array(tags) || json_array_size(tags) == 0)
		return 0;
	n = json_array_size(tags);
	m->tags = calloc(n, sizeof(*m->tags));
	if (!m->tags)
		return -1;
	for (i = 0; i < n; i++) {
		const json_t *t = json_array_get(tags, i);
		const char *k = kf_json_str(t, "Key");
		const char *v = kf_json_str(t, "Value");
		struct kf_aws_sm_tag *tag = &m->tags[m->ntags];

		if (!k)
			continue;
		tag->key = strdup(k);
		tag->value = strdup(v ? v : "");
		m->ntags++;
		if (!tag->key || !tag->value)
			return -1;
	}
	return 0;
}

/* The version labelled AWSCURRENT in a VersionIdsToStages-shaped map. */
static int parse_current(const json_t *vs, struct kf_aws_sm_meta *m)
{
	const char *k;
	json_t *labels, *l;
	size_t i;

	json_object_foreach((json_t *)vs, k, labels)
	{
		json_array_foreach(labels, i, l)
		{
			if (!json_is_string(l) ||
			    strcmp(json_string_value(l), "AWSCURRENT") != 0)
				continue;
			free(m->current_version);
			m->current_version = strdup(k);
			if (!m->current_version)
				return -1;
		}
	}
	return 0;
}

int kf_aws_sm_parse_meta(const json_t *o, struct kf_aws_sm_meta *m)
{
	const char *name = kf_json_str(o, "Name");
	const char *arn = kf_json_str(o, "ARN");
	const char *desc = kf_json_str(o, "Description");
	const json_t *vs;

	memset(m, 0, sizeof(*m));
	if (!name)
		return -1;
	m->name = strdup(name);
	m->arn = strdup_or_null(arn);
	m->description = strdup_or_null(desc);
	if (!m->name || (arn && !m->arn) || (desc && !m->description))
		return -1;
	m->created = kf_aws_sm_parse_date(o, "CreatedDate");
	m->changed = kf_aws_sm_parse_date(o, "LastChangedDate");
	m->deleted = kf_aws_sm_parse_date(o, "DeletedDate");
	vs = json_object_get(o, "VersionIdsToStages");
	if (!json_is_object(vs))
		vs = json_object_get(o, "SecretVersionsToStages");
	if (json_is_object(vs) && parse_current(vs, m))
		return -1;
	return parse_tags(o, m);
}

void kf_aws_sm_meta_release(struct kf_aws_sm_meta *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->arn);
	free(m->description);
	free(m->current_version);
	for (size_t i = 0; i < m->ntags; i++) {
		free(m->tags[i].key);
		free(m->tags[i].value);
	}
	free(m->tags);
	memset(m, 0, sizeof(*m));
}

void kf_aws_sm_page_release(struct kf_aws_sm_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		kf_aws_sm_meta_release(&page->v[i]);
	free(page->v);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

const char *kf_aws_sm_meta_tag(const struct kf_aws_sm_meta *m, const char *key)
{
	for (size_t i = 0; i < m->ntags; i++)
		if (m->tags[i].key && strcmp(m->tags[i].key, key) == 0)
			return m->tags[i].value ? m->tags[i].value : "";
	return NULL;
}

struct kf_secret *kf_aws_sm_value_of(const json_t *o, struct kf_buf *bin,
				     const char *op, struct kf_err *err)
{
	const json_t *v = json_object_get(o, "SecretString");
	struct kf_secret *s;

	kf_buf_reset(bin);
	if (json_is_string(v)) {
		s = kf_secret_dup(json_string_value(v), json_string_length(v));
	} else {
		v = json_object_get(o, "SecretBinary");
		if (!json_is_string(v)) {
			s = kf_secret_new(0);
		} else if (kf_base64_decode(json_string_value(v),
					    json_string_length(v), bin)) {
			kf_fail(err, KF_E_IO, "%s: bad SecretBinary encoding",
				op);
			return NULL;
		} else {
			s = kf_secret_dup(bin->data ? bin->data : "", bin->len);
		}
	}
	if (!s)
		kf_fail(err, KF_E_NOMEM, "out of memory");
	else
		kf_secret_set_version(s, kf_json_str(o, "VersionId"));
	return s;
}

/* ---- versions ----------------------------------------------------------- */

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

/* The labels of one version (e: a Versions entry) joined with ",". */
static char *stages_of(const json_t *e)
{
	const json_t *st = json_object_get(e, "VersionStages"), *l;
	struct kf_buf b;
	size_t i;
	char *out;

	kf_buf_init(&b, 65536);
	json_array_foreach(st, i, l)
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

int kf_aws_sm_parse_versions(const json_t *j, struct kf_aws_sm_versions *page)
{
	const json_t *list = json_object_get(j, "Versions"), *e;
	const char *next = kf_json_str(j, "NextToken");
	size_t n = json_is_array(list) ? json_array_size(list) : 0, i;
	struct kf_aws_sm_version *v;

	free(page->next_token);
	page->next_token = NULL;
	if (n) {
		if (n > SIZE_MAX / sizeof(*v) - page->n)
			return -1;
		v = realloc(page->v, (page->n + n) * sizeof(*v));
		if (!v)
			return -1;
		page->v = v;
	}
	json_array_foreach(list, i, e)
	{
		const char *id = kf_json_str(e, "VersionId");

		if (!id || !id[0])
			continue;
		v = &page->v[page->n];
		v->id = strdup(id);
		v->stages = stages_of(e);
		v->created_ms = kf_aws_sm_parse_date_ms(e, "CreatedDate");
		page->n++;
		if (!v->id || !v->stages)
			return -1;
	}
	if (next && next[0]) {
		page->next_token = strdup(next);
		if (!page->next_token)
			return -1;
	}
	return 0;
}

void kf_aws_sm_versions_release(struct kf_aws_sm_versions *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++) {
		free(page->v[i].id);
		free(page->v[i].stages);
	}
	free(page->v);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* ---- error classification --------------------------------------------- */

void kf_aws_sm_normalise_type(char *type)
{
	char *p = strchr(type, ':');
	char *h;

	if (p)
		*p = '\0';
	h = strchr(type, '#');
	if (h)
		memmove(type, h + 1, strlen(h + 1) + 1);
}

struct sm_errdef {
	const char *type;
	enum kf_code code;
	enum kf_aws_sm_action action;
	int quote; /* the service message never echoes input */
	/* The reason, when the service message holds this text: the
	 * service has no separate type for these states. */
	const char *mark;
	enum kf_reason reason;
};

#define FAIL KF_AWS_SM_FAIL
#define RETRY KF_AWS_SM_RETRY
#define REFRESH KF_AWS_SM_REFRESH

/*
 * LimitExceededException is a quota (too many secrets or versions), not a
 * rate: retrying does not help, so it fails at once as UNAVAILABLE (EIO)
 * with the code in the log.  EncryptionFailure/DecryptionFailure almost
 * always mean the KMS key refuses this principal: DENIED.  A secret
 * scheduled for deletion answers InvalidRequestException "... marked for
 * deletion" (moto: "... marked deleted"); one without a current value
 * answers ResourceNotFoundException "can't find the specified secret
 * value for staging label: AWSCURRENT".  Parameter Store's types share
 * the table (no name is used by both services with another meaning):
 * ParameterLimitExceeded is the account's parameter quota (NOSPC),
 * ParameterMaxVersionLimitExceeded a parameter at 100 versions whose
 * oldest one is labelled, so it cannot make room (STATE), TooManyUpdates
 * a rate on one parameter.
 */
static const struct sm_errdef sm_errdefs[] = {
	{ "ResourceNotFoundException", KF_E_NOTFOUND, FAIL, 1,
	  "secret value for", KF_R_NO_VALUE },
	{ "ResourceExistsException", KF_E_EXISTS, FAIL, 1, NULL, 0 },
	{ "InvalidRequestException", KF_E_STATE, FAIL, 1, "delet",
	  KF_R_DELETING },
	{ "PreconditionNotMetException", KF_E_STATE, FAIL, 1, "delet",
	  KF_R_DELETING },
	{ "InvalidParameterException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "ValidationException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "InvalidNextTokenException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "MalformedPolicyDocumentException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "LimitExceededException", KF_E_UNAVAILABLE, FAIL, 1, NULL, 0 },
	{ "EncryptionFailure", KF_E_DENIED, FAIL, 1, NULL, 0 },
	{ "DecryptionFailure", KF_E_DENIED, FAIL, 1, NULL, 0 },
	{ "AccessDeniedException", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "AccessDenied", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "UnrecognizedClientException", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "InvalidClientTokenId", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "SignatureDoesNotMatch", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "InvalidSignatureException", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "IncompleteSignature", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "IncompleteSignatureException", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "MissingAuthenticationToken", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "MissingAuthenticationTokenException", KF_E_DENIED, FAIL, 0, NULL,
	  0 },
	{ "OptInRequired", KF_E_DENIED, FAIL, 0, NULL, 0 },
	{ "ExpiredTokenException", KF_E_DENIED, REFRESH, 0, NULL, 0 },
	{ "ExpiredToken", KF_E_DENIED, REFRESH, 0, NULL, 0 },
	{ "RequestExpired", KF_E_DENIED, REFRESH, 0, NULL, 0 },
	{ "ThrottlingException", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "Throttling", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "TooManyRequestsException", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "RequestLimitExceeded", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "InternalServiceError", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "InternalFailure", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "InternalServiceFailure", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "ServiceUnavailable", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "ServiceUnavailableException", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "RequestTimeout", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "RequestTimeoutException", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "PriorRequestNotComplete", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	/* Parameter Store: its messages name the parameter, never quoted */
	{ "ParameterNotFound", KF_E_NOTFOUND, FAIL, 0, NULL, 0 },
	{ "ParameterVersionNotFound", KF_E_NOTFOUND, FAIL, 0, NULL, 0 },
	{ "ParameterAlreadyExists", KF_E_EXISTS, FAIL, 0, NULL, 0 },
	{ "HierarchyLevelLimitExceededException", KF_E_INVALID, FAIL, 0, NULL,
	  0 },
	{ "HierarchyTypeMismatchException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "UnsupportedParameterType", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "InvalidKeyId", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "ParameterPatternMismatchException", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "ParameterVersionLabelLimitExceeded", KF_E_INVALID, FAIL, 0, NULL,
	  0 },
	{ "InvalidFilterKey", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "InvalidFilterOption", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "InvalidFilterValue", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "InvalidNextToken", KF_E_INVALID, FAIL, 0, NULL, 0 },
	{ "ParameterLimitExceeded", KF_E_NOSPC, FAIL, 0, NULL, 0 },
	{ "ParameterMaxVersionLimitExceeded", KF_E_STATE, FAIL, 0, NULL, 0 },
	{ "TooManyUpdates", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
	{ "InternalServerError", KF_E_UNAVAILABLE, RETRY, 0, NULL, 0 },
};

#undef FAIL
#undef RETRY
#undef REFRESH

/* Printable ASCII only, bounded, so a message cannot smuggle anything. */
static void sanitise(char *out, size_t outlen, const char *in)
{
	size_t j = 0;

	for (size_t i = 0; in && in[i] && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
	}
	out[j] = '\0';
}

/* Text between the first <tag> and </tag> in an XML body, into out. */
static int xml_elem(const char *body, size_t len, const char *tag, char *out,
		    size_t outlen)
{
	char open[32], close[32];
	const char *s, *e;
	size_t n;

	if ((size_t)snprintf(open, sizeof(open), "<%s>", tag) >= sizeof(open) ||
	    (size_t)snprintf(close, sizeof(close), "</%s>", tag) >=
		    sizeof(close))
		return 0;
	s = memmem(body, len, open, strlen(open));
	if (!s)
		return 0;
	s += strlen(open);
	e = memmem(s, len - (size_t)(s - body), close, strlen(close));
	if (!e)
		return 0;
	n = (size_t)(e - s);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/*
 * An error body's type and sanitised message (either may stay "").  The
 * message is kept long enough to find a state's mark in it (moto's run
 * past 200 characters); an error quotes its first QUOTE_MAX only.
 */
#define QUOTE_MAX 160
struct sm_errbody {
	char type[128];
	char msg[512];
};

static void read_json_error(const char *body, size_t len, struct sm_errbody *eb)
{
	json_t *j = kf_json_object(body, len);
	const char *t = kf_json_str(j, "__type");
	const char *m = kf_json_str(j, "message");

	if (!t)
		t = kf_json_str(j, "code");
	if (!m)
		m = kf_json_str(j, "Message");
	/* a longer type is cut; it is only compared and logged */
	if (t)
		(void)snprintf(eb->type, sizeof(eb->type), "%s", t);
	if (m)
		sanitise(eb->msg, sizeof(eb->msg), m);
	json_decref(j);
}

/* moto (and some front ends) answer signature errors in XML. */
static void read_xml_error(const char *body, size_t len, struct sm_errbody *eb)
{
	char m[sizeof(eb->msg)];

	xml_elem(body, len, "Code", eb->type, sizeof(eb->type));
	if (xml_elem(body, len, "Message", m, sizeof(m)))
		sanitise(eb->msg, sizeof(eb->msg), m);
	explicit_bzero(m, sizeof(m));
}

static const struct sm_errdef *errdef_find(const char *type)
{
	for (size_t i = 0;
	     type[0] && i < sizeof(sm_errdefs) / sizeof(sm_errdefs[0]); i++)
		if (strcmp(type, sm_errdefs[i].type) == 0)
			return &sm_errdefs[i];
	return NULL;
}

/* The classification of an error without a known type. */
static const struct sm_errdef *errdef_by_status(long status, const char *type)
{
	static const struct sm_errdef busy = {
		"", KF_E_UNAVAILABLE, KF_AWS_SM_RETRY, 0, NULL, 0
	};
	static const struct sm_errdef denied = {
		"", KF_E_DENIED, KF_AWS_SM_FAIL, 0, NULL, 0
	};
	static const struct sm_errdef other = { "", KF_E_IO, KF_AWS_SM_FAIL,
						0,  NULL,    0 };

	if (status >= 500 || status == 429 || status == 509)
		return &busy;
	if (!type[0] && (status == 401 || status == 403))
		return &denied;
	return &other;
}

enum kf_aws_sm_action kf_aws_sm_classify_hdr(const char *op, long status,
					     const char *body, size_t len,
					     const char *hdr_type,
					     struct kf_err *err)
{
	struct sm_errbody eb = { "", "" };
	const struct sm_errdef *def;
	char quoted[200] = "";
	size_t skip = 0;

	while (skip < len && isspace((unsigned char)body[skip]))
		skip++;
	if (skip < len && body[skip] == '{')
		read_json_error(body, len, &eb);
	else if (skip < len && body[skip] == '<')
		read_xml_error(body + skip, len - skip, &eb);
	/* a longer type is cut; it is only compared and logged */
	if (!eb.type[0] && hdr_type && hdr_type[0])
		(void)snprintf(eb.type, sizeof(eb.type), "%s", hdr_type);
	kf_aws_sm_normalise_type(eb.type);
	/* the type goes into err and the log as the service sent it */
	sanitise(eb.type, sizeof(eb.type), eb.type);
	def = errdef_find(eb.type);
	/* quoted holds QUOTE_MAX characters: no truncation */
	if (def && def->quote && eb.msg[0])
		(void)snprintf(quoted, sizeof(quoted), ": %.*s", QUOTE_MAX,
			       eb.msg);
	if (!def)
		def = errdef_by_status(status, eb.type);
	kf_fail_provider(err, def->code, (int)status,
			 eb.type[0] ? eb.type : NULL, "%s: %s (HTTP %ld)%s", op,
			 eb.type[0] ? eb.type : "error", status, quoted);
	if (err && def->mark && strstr(eb.msg, def->mark))
		err->reason = def->reason;
	explicit_bzero(&eb, sizeof(eb));
	return def->action;
}

enum kf_aws_sm_action kf_aws_sm_classify(const char *op, long status,
					 const char *body, size_t len,
					 struct kf_err *err)
{
	return kf_aws_sm_classify_hdr(op, status, body ? body : "",
				      body ? len : 0, NULL, err);
}
