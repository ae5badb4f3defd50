/*
 * libFuzzer target for the Secrets Manager response handling in
 * cloud/aws/sm*.c, driven through the kf_http_set_transport seam with
 * static environment credentials.  The input picks the operation, the
 * HTTP status every attempt answers, an x-amzn-ErrorType header and the
 * options, and the rest is the response body (JSON, moto's XML errors,
 * anything).  Properties checked:
 * - 0 or -1, and -1 fills err with a known code; msg and provider_code
 *   are NUL-terminated printable ASCII;
 * - 0 only for a 2xx answer whose body is empty or a JSON object (the one
 *   exception: GetSecretValue's "secret value for" ResourceNotFound,
 *   which reads as an empty value);
 * - GetSecretValue / BatchGetSecretValue hand out exactly the SecretString
 *   bytes or the decoded SecretBinary (empty when neither), in order;
 * - ListSecrets / DescribeSecret return what the body says (names in
 *   order, prefix and deletion filters, ARN, description, tags, token);
 * - ListSecretVersionIds returns every entry with a VersionId, in order,
 *   its CreatedDate in milliseconds and its printable labels joined with
 *   ",", and the token; GetSecretValue of a label or an id hands out the
 *   value with its VersionId and never reads an error as a value;
 * - the canary (the value written by Create/PutSecretValue, and the
 *   value planted in the seed bodies) never reaches err.msg or
 *   provider_code unless the service put it into the error's type, or
 *   into the message of an error type whose message keyfs may quote.
 *
 * Input: byte 0 = operation, byte 1 = status index, byte 2 = options
 * (bits 0-2 header, bit 3 list prefix, bit 4 list token or, for
 * GetSecretValue of a version, an id rather than a label), rest = body.
 */
#include "aws/creds.h"
#include "aws/sm.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/json.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CANARY "kfCanary-0d1e5ec7"
#define PREFIX "app/"
#define MAXBATCH 64

static const long statuses[] = { 200, 200, 200, 200, 201, 204, 400,
				 400, 400, 401, 403, 404, 409, 413,
				 429, 500, 503, 302, 599 };
static const char *const hdr_types[] = {
	NULL,
	NULL,
	NULL,
	NULL,
	"ResourceNotFoundException:http://internal.amazon.com/coral/"
	"com.amazonaws.secretsmanager/",
	"ThrottlingException",
	"ExpiredTokenException",
	"com.amazonaws.secretsmanager#InvalidRequestException",
};

/* Error types whose service message keyfs may quote (sm_parse.c). */
static const char *const quotable[] = {
	"ResourceNotFoundException", "ResourceExistsException",
	"InvalidRequestException",   "PreconditionNotMetException",
	"LimitExceededException",    "EncryptionFailure",
	"DecryptionFailure",
};

static const uint8_t *resp_body;
static size_t resp_len;
static long resp_status;
static const char *resp_hdr;
static unsigned calls;
static struct kf_aws_chain *chain;
static struct kf_aws_sm *sm;

static int fake(const struct kf_http_req *req, struct kf_http_resp *resp,
		struct kf_err *err)
{
	(void)req;
	calls++;
	resp->status = resp_status;
	if (resp_hdr && kf_buf_addf(&resp->headers, "x-amzn-ErrorType: %s\r\n",
				    resp_hdr) < 0)
		return kf_fail(err, KF_E_TOOBIG, "headers too large");
	if (resp_len && kf_buf_add(&resp->body, resp_body, resp_len) < 0)
		return kf_fail(err, KF_E_TOOBIG, "response too large");
	return 0;
}

static time_t fixed_clock(void)
{
	return 1440938160; /* 2015-08-30T12:36:00Z */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kf_aws_chain_cfg ccfg = { NULL, 1000 };
	struct kf_aws_sm_cfg cfg;
	struct kf_err err = KF_ERR_INIT;

	(void)argc;
	(void)argv;
	kf_log_set_level(KF_LOG_ERROR);
	kf_json_init();
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	unsetenv("AWS_PROFILE");
	kf_http_set_transport(fake);
	kf_aws_sm_set_clock(fixed_clock);
	if (kf_aws_chain_new(&ccfg, &chain, &err) < 0) {
		fprintf(stderr, "fuzz_aws_sm_json: chain: %s\n", err.msg);
		abort();
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:9";
	cfg.region = "us-west-2";
	cfg.chain = chain;
	cfg.timeout_ms = 10000;
	cfg.attempts = 2;
	cfg.backoff_base_ms = 1;
	if (kf_aws_sm_new(&cfg, &sm, &err) < 0) {
		fprintf(stderr, "fuzz_aws_sm_json: client: %s\n", err.msg);
		abort();
	}
	return 0;
}

/* ---- reference view of the body ---------------------------------------- */

static json_t *body_json(void)
{
	size_t skip = 0;

	while (skip < resp_len && isspace(resp_body[skip]))
		skip++;
	if (skip >= resp_len || resp_body[skip] != '{')
		return NULL;
	return json_loadb((const char *)resp_body, resp_len, JSON_ALLOW_NUL,
			  NULL);
}

/* Content of the first <tag>...</tag> (as sm_parse.c reads it), or NULL. */
static char *xml_elem(const char *tag)
{
	char open[32], close[32];
	const uint8_t *s, *e, *b = resp_body;
	size_t len = resp_len, skip = 0;

	while (skip < len && isspace(b[skip]))
		skip++;
	if (skip >= len || b[skip] != '<')
		return NULL;
	b += skip;
	len -= skip;
	if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open) ||
	    snprintf(close, sizeof(close), "</%s>", tag) >= (int)sizeof(close))
		abort();
	s = memmem(b, len, open, strlen(open));
	if (!s)
		return NULL;
	s += strlen(open);
	e = memmem(s, len - (size_t)(s - b), close, strlen(close));
	if (!e)
		return NULL;
	return strndup((const char *)s, (size_t)(e - s));
}

static int has_canary(const char *s)
{
	return s && strstr(s, CANARY) != NULL;
}

/*
 * Whether the error's type or quotable message in the body may put the
 * canary into err: the service said it, not keyfs.
 */
static int canary_echo_allowed(void)
{
	char type[128] = "";
	const char *msg = NULL;
	char *xcode = NULL, *xmsg = NULL;
	json_t *j = body_json();
	int quote = 0, allowed = 0;

	if (json_is_object(j)) {
		const char *t = kf_json_str(j, "__type");

		if (!t)
			t = kf_json_str(j, "code");
		msg = kf_json_str(j, "message");
		if (!msg)
			msg = kf_json_str(j, "Message");
		if (t) /* cut as sm_parse.c cuts it */
			(void)snprintf(type, sizeof(type), "%s", t);
	} else if (!j) {
		xcode = xml_elem("Code");
		xmsg = xml_elem("Message");
		if (xcode) /* cut as sm_parse.c cuts it */
			(void)snprintf(type, sizeof(type), "%s", xcode);
		msg = xmsg;
	}
	if (!type[0] && resp_hdr) /* cut as sm_parse.c cuts it */
		(void)snprintf(type, sizeof(type), "%s", resp_hdr);
	kf_aws_sm_normalise_type(type);
	for (size_t i = 0; i < sizeof(quotable) / sizeof(quotable[0]); i++)
		if (strcmp(type, quotable[i]) == 0)
			quote = 1;
	if (has_canary(type) || (quote && has_canary(msg)))
		allowed = 1;
	free(xcode);
	free(xmsg);
	json_decref(j);
	return allowed;
}

/* The value a GetSecretValue-shaped object holds; -1 if undecodable. */
static int expected_value(const json_t *o, struct kf_buf *out)
{
	const json_t *v = json_object_get(o, "SecretString");

	kf_buf_reset(out);
	if (json_is_string(v))
		return kf_buf_add(out, json_string_value(v),
				  json_string_length(v)) < 0 ?
			       -1 :
			       0;
	v = json_object_get(o, "SecretBinary");
	if (json_is_string(v))
		return kf_base64_decode(json_string_value(v),
					json_string_length(v), out);
	return 0;
}

static void check_value(const json_t *o, const struct kf_secret *s)
{
	struct kf_buf want;

	if (!s)
		abort();
	kf_buf_init_sensitive(&want, 1 << 20);
	if (expected_value(o, &want) < 0)
		abort(); /* handed out a value it could not decode */
	if (s->len != want.len ||
	    (want.len && memcmp(s->data, want.data, want.len) != 0))
		abort();
	kf_buf_release(&want);
}

static int is_2xx(void)
{
	return resp_status >= 200 && resp_status < 300;
}

/* 2xx and the body is empty or a JSON object: the call must succeed. */
static int body_ok(void)
{
	json_t *j;
	int ok;

	if (!is_2xx())
		return 0;
	if (resp_len == 0)
		return 1;
	j = json_loadb((const char *)resp_body, resp_len, JSON_ALLOW_NUL, NULL);
	ok = json_is_object(j);
	json_decref(j);
	return ok;
}

static void check_printable(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			abort();
}

/* ---- per-operation checks ----------------------------------------------- */

static void check_get(int rc, const struct kf_secret *value,
		      const char *version)
{
	struct kf_buf want;
	json_t *j;

	if (rc) {
		/* a 2xx JSON object is refused only for a bad SecretBinary */
		if (!is_2xx())
			return;
		j = resp_len ? body_json() : json_object();
		kf_buf_init_sensitive(&want, 1 << 20);
		if (json_is_object(j) && expected_value(j, &want) == 0)
			abort();
		kf_buf_release(&want);
		json_decref(j);
		return;
	}
	if (!is_2xx()) {
		/* only the "no AWSCURRENT value" case reads as empty */
		if (!value || value->len != 0 || version[0])
			abort();
		return;
	}
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j))
		abort();
	check_value(j, value);
	if (kf_json_str(j, "VersionId")) {
		if (strncmp(version, kf_json_str(j, "VersionId"), 99) != 0)
			abort();
	} else if (version[0]) {
		abort();
	}
	json_decref(j);
}

struct batch {
	char *name[MAXBATCH];
	struct kf_secret *value[MAXBATCH];
	size_t n;
	int overflow;
};

static void batch_fn(void *ctx, const char *name, struct kf_secret *value)
{
	struct batch *b = ctx;

	if (!name || !value)
		abort();
	if (b->n >= MAXBATCH) {
		b->overflow = 1;
		kf_secret_free(value);
		return;
	}
	b->name[b->n] = strdup(name);
	if (!b->name[b->n])
		abort();
	b->value[b->n++] = value;
}

static void check_batch(int rc, struct batch *b)
{
	struct kf_buf want;
	json_t *j, *e;
	size_t i, k = 0;
	int bad = 0;

	if (b->n && !is_2xx())
		abort();
	if (!is_2xx())
		return;
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j)) {
		if (rc == 0 || b->n)
			abort();
		return;
	}
	json_array_foreach(json_object_get(j, "SecretValues"), i, e)
	{
		const char *name = kf_json_str(e, "Name");

		if (!name)
			continue;
		kf_buf_init_sensitive(&want, 1 << 20);
		if (expected_value(e, &want) < 0)
			bad = 1;
		kf_buf_release(&want);
		if (k >= b->n) {
			/* the client stopped here: must be a failure */
			if (rc == 0 && !b->overflow)
				abort();
			bad |= b->overflow;
			break;
		}
		if (strcmp(b->name[k], name) != 0)
			abort();
		check_value(e, b->value[k]);
		k++;
	}
	if (k != b->n)
		abort(); /* a value the body does not hold */
	if (rc && !bad)
		abort(); /* a good answer refused */
	json_decref(j);
}

static void check_meta(const json_t *o, const struct kf_aws_sm_meta *m)
{
	const json_t *tags = json_object_get(o, "Tags");
	const json_t *vs;

	if (!m->name || strcmp(m->name, kf_json_str(o, "Name")) != 0)
		abort();
	if ((kf_json_str(o, "ARN") == NULL) != (m->arn == NULL) ||
	    (m->arn && strcmp(m->arn, kf_json_str(o, "ARN")) != 0))
		abort();
	if ((kf_json_str(o, "Description") == NULL) !=
		    (m->description == NULL) ||
	    (m->description &&
	     strcmp(m->description, kf_json_str(o, "Description")) != 0))
		abort();
	if (m->ntags > (json_is_array(tags) ? json_array_size(tags) : 0))
		abort();
	for (size_t i = 0; i < m->ntags; i++)
		if (!m->tags[i].key || !m->tags[i].value)
			abort();
	if (m->current_version) {
		vs = json_object_get(o, "VersionIdsToStages");
		if (!json_is_object(vs))
			vs = json_object_get(o, "SecretVersionsToStages");
		if (!json_object_get(vs, m->current_version))
			abort();
	}
}

static void check_list(int rc, const struct kf_aws_sm_page *page,
		       const char *prefix)
{
	json_t *j, *list, *e;
	size_t i, k = 0;

	if (rc)
		return;
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j))
		abort();
	list = json_object_get(j, "SecretList");
	json_array_foreach(list, i, e)
	{
		const char *name = kf_json_str(e, "Name");

		if (!json_is_object(e) || !name ||
		    kf_aws_sm_parse_date(e, "DeletedDate") ||
		    (prefix && strncmp(name, prefix, strlen(prefix)) != 0))
			continue;
		/* a live, matching secret: the next one on the page */
		if (k >= page->n || strcmp(page->v[k].name, name) != 0)
			abort();
		check_meta(e, &page->v[k]);
		if (page->v[k].deleted)
			abort();
		k++;
	}
	if (k != page->n)
		abort();
	if (kf_json_str(j, "NextToken") && kf_json_str(j, "NextToken")[0]) {
		if (!page->next_token ||
		    strcmp(page->next_token, kf_json_str(j, "NextToken")) != 0)
			abort();
	} else if (page->next_token) {
		abort();
	}
	json_decref(j);
}

static void check_describe(int rc, const struct kf_aws_sm_meta *m)
{
	json_t *j;

	if (rc) {
		/* refused: not 2xx, or no Name in the answer */
		if (is_2xx() && body_ok() && resp_len) {
			j = body_json();
			if (kf_json_str(j, "Name"))
				abort();
			json_decref(j);
		}
		return;
	}
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j) || !kf_json_str(j, "Name"))
		abort();
	check_meta(j, m);
	json_decref(j);
}

/* The labels of a Versions entry as the client must join them. */
static void expected_stages(const json_t *e, struct kf_buf *out)
{
	const json_t *l;
	size_t i;

	kf_buf_reset(out);
	json_array_foreach(json_object_get(e, "VersionStages"), i, l)
	{
		const char *s = json_is_string(l) ? json_string_value(l) : "";
		int ok = s[0] != '\0';

		for (const char *c = s; *c; c++)
			if ((unsigned char)*c <= 0x20 || *c == ',' ||
			    *c == 0x7f)
				ok = 0;
		if (!ok)
			continue;
		if ((out->len && kf_buf_add(out, ",", 1) < 0) ||
		    kf_buf_adds(out, s) < 0)
			abort();
	}
}

static void check_versions(int rc, const struct kf_aws_sm_versions *page)
{
	struct kf_buf want;
	json_t *j, *e;
	size_t i, k = 0;

	if (rc) {
		if (page->n || page->v || page->next_token)
			abort(); /* a failure leaves nothing behind */
		return;
	}
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j))
		abort();
	kf_buf_init(&want, 1 << 20);
	json_array_foreach(json_object_get(j, "Versions"), i, e)
	{
		const char *id = kf_json_str(e, "VersionId");

		if (!id || !id[0])
			continue;
		if (k >= page->n || strcmp(page->v[k].id, id) != 0 ||
		    page->v[k].created_ms !=
			    kf_aws_sm_parse_date_ms(e, "CreatedDate"))
			abort();
		expected_stages(e, &want);
		if (strcmp(page->v[k].stages, kf_buf_str(&want)) != 0)
			abort();
		k++;
	}
	if (k != page->n)
		abort();
	if (kf_json_str(j, "NextToken") && kf_json_str(j, "NextToken")[0]) {
		if (!page->next_token ||
		    strcmp(page->next_token, kf_json_str(j, "NextToken")) != 0)
			abort();
	} else if (page->next_token) {
		abort();
	}
	kf_buf_release(&want);
	json_decref(j);
}

static void check_get_version(int rc, const struct kf_secret *value)
{
	const char *vid;
	json_t *j;

	if (rc) {
		if (value)
			abort();
		check_get(rc, NULL, "");
		return;
	}
	if (!is_2xx() || !value)
		abort(); /* an error is never a value, not even an empty one */
	j = resp_len ? body_json() : json_object();
	if (!json_is_object(j))
		abort();
	check_value(j, value);
	vid = kf_json_str(j, "VersionId");
	if (vid ? strncmp(value->version, vid, KF_SECRET_VERSION_MAX - 1) != 0 :
		  value->version[0] != '\0')
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char value[] = "value " CANARY " end";
	static const char *const ids[] = { "app/a", "app/b", "c" };
	struct kf_aws_sm_tag tag = { "keyfs", "1" };
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *got = NULL;
	struct kf_aws_sm_page page;
	struct kf_aws_sm_meta meta;
	struct kf_aws_sm_versions vers;
	struct batch b;
	const char *prefix;
	char version[100] = "";
	int rc = -1, op, opts;

	if (size < 3 || size > 65536)
		return 0;
	op = data[0] % 10;
	resp_status =
		statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	opts = data[2];
	resp_hdr = hdr_types[opts & 7];
	prefix = (opts & 8) ? PREFIX : NULL;
	resp_body = data + 3;
	resp_len = size - 3;
	calls = 0;
	memset(&page, 0, sizeof(page));
	memset(&meta, 0, sizeof(meta));
	memset(&vers, 0, sizeof(vers));
	memset(&b, 0, sizeof(b));
	switch (op) {
	case 0:
		rc = kf_aws_sm_list(sm, prefix, (opts & 16) ? "tok" : NULL, 100,
				    &page, &err);
		check_list(rc, &page, prefix);
		break;
	case 1:
		rc = kf_aws_sm_get_value(sm, "app/a", &got, version,
					 sizeof(version), &err);
		if (rc == 0 && !got)
			abort();
		if (rc && got)
			abort();
		check_get(rc, got, version);
		break;
	case 2:
		rc = kf_aws_sm_batch_get(sm, ids, 3, batch_fn, &b, &err);
		check_batch(rc, &b);
		break;
	case 3:
		rc = kf_aws_sm_describe(sm, "app/a", &meta, &err);
		check_describe(rc, &meta);
		break;
	case 4:
		rc = kf_aws_sm_create(sm, "app/new", "tok-0001", value,
				      sizeof(value) - 1, &tag, 1, &err);
		break;
	case 5:
		rc = kf_aws_sm_put_value(sm, "app/a", "tok-0002", value,
					 sizeof(value) - 1, &err);
		break;
	case 6:
		rc = kf_aws_sm_delete(sm, "app/a", (opts & 16) ? 7 : 0, &err);
		break;
	case 7:
		rc = kf_aws_sm_update_description(sm, "app/a", "a description",
						  &err);
		break;
	case 8:
		rc = kf_aws_sm_list_versions(sm, "app/a",
					     (opts & 16) ? "tok" : NULL, 100,
					     &vers, &err);
		check_versions(rc, &vers);
		break;
	case 9:
		rc = kf_aws_sm_get_version(
			sm, "app/a", (opts & 16) ? NULL : "AWSPREVIOUS",
			(opts & 16) ? "a1b2c3d4-0000-4000-8000-00000000000a" :
				      NULL,
			&got, &err);
		check_get_version(rc, got);
		break;
	}
	if (rc != 0 && rc != -1)
		abort();
	if (calls < 1 || calls > 3)
		abort();
	if (rc == 0 && !is_2xx() && op != 1)
		abort();
	if (rc == 0 && is_2xx() && !body_ok())
		abort();
	if (rc == -1 && body_ok() && op != 1 && op != 2 && op != 3 && op != 9)
		abort(); /* a good answer refused */
	if (rc == -1 && (err.code <= KF_OK || err.code >= KF_E__COUNT))
		abort();
	if (rc == 0 && err.code != KF_OK)
		abort();
	check_printable(err.msg, sizeof(err.msg));
	check_printable(err.provider_code, sizeof(err.provider_code));
	if ((has_canary(err.msg) || has_canary(err.provider_code)) &&
	    !canary_echo_allowed())
		abort();
	kf_secret_free(got);
	for (size_t i = 0; i < b.n; i++) {
		free(b.name[i]);
		kf_secret_free(b.value[i]);
	}
	kf_aws_sm_page_release(&page);
	kf_aws_sm_meta_release(&meta);
	kf_aws_sm_versions_release(&vers);
	return 0;
}
