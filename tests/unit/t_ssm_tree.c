/*
 * Unit tests for the ssm/ provider (cloud/aws/ssm_*.c): parameter names
 * and their paths (escaping, round trips), the index (complete subtrees
 * and their expiry on a test clock, own writes and deletes, held
 * directories, a directory winning over a parameter, hierarchical names
 * winning over their one-level twins), and, through the HTTP transport
 * seam with a small Parameter Store of its own, what lookups, listings
 * and writes send: a cold lookup costs one DescribeParameters, a listing
 * its pages, a write keeps the parameter's type and key, bytes over a
 * tier's limit fail at write(), bad options fail the mount.  No network.
 */
#include "kt.h"
#include "t_aws_fake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sm.h"
#include "aws/ssm_index.h"
#include "aws/ssm_tree.h"
#include "core/clock.h"
#include "core/json.h"

/* ---- names and paths ---------------------------------------------------- */

KT_TEST(ssm_name_path_round_trips)
{
	static const struct {
		const char *name, *path, *back;
	} t[] = {
		{ "/a/b", "a/b", "/a/b" },
		{ "foo", "foo", "/foo" },
		{ "/foo", "foo", "/foo" },
		{ "/prod/model/openai_key", "prod/model/openai_key",
		  "/prod/model/openai_key" },
		{ "/a//b", "a%2F/b", "/a//b" },
		{ "/a/", "a%2F", "/a/" },
		{ "//a", "%2Fa", "//a" },
		{ "/a/./b", "a/%2E/b", "/a/./b" },
		{ "/a/../b", "a/%2E%2E/b", "/a/../b" },
		{ "/x.y/-z_", "x.y/-z_", "/x.y/-z_" },
	};
	char path[KF_SSM_PATH_MAX + 1], name[KF_SSM_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		kf_ssm_name_path(t[i].name, path);
		KT_EQ_STR(path, t[i].path);
		KT_EQ_INT(kf_ssm_path_name(path, name), 0);
		KT_EQ_STR(name, t[i].back);
	}
	/* no name's path form: another spelling of an escape, a stray %,
	 * nothing at all */
	KT_EQ_INT(kf_ssm_path_name("a%2f", name), -1);
	KT_EQ_INT(kf_ssm_path_name("a%", name), -1);
	KT_EQ_INT(kf_ssm_path_name("a%41", name), -1);
	KT_EQ_INT(kf_ssm_path_name("", name), -1);
	KT_EQ_INT(kf_ssm_depth("/a/b/c"), 3);
	KT_EQ_INT(kf_ssm_depth("a"), 1);
	KT_EQ_INT(kf_ssm_depth("/"), 0);
}

KT_TEST(ssm_name_path_long_names)
{
	char *path = malloc(KF_SSM_NAME_MAX + 2);
	char name[KF_SSM_NAME_MAX + 1], out[KF_SSM_PATH_MAX + 1];

	KT_CHECK(path != NULL);
	if (!path)
		return;
	/* a name of KF_SSM_NAME_MAX bytes ("/" + 2047) has a path; one byte
	 * more has none */
	memset(path, 'x', KF_SSM_NAME_MAX);
	path[KF_SSM_NAME_MAX - 1] = '\0';
	KT_EQ_INT(kf_ssm_path_name(path, name), 0);
	KT_EQ_INT(strlen(name), KF_SSM_NAME_MAX);
	kf_ssm_name_path(name, out);
	KT_EQ_INT(strlen(out), KF_SSM_NAME_MAX - 1);
	path[KF_SSM_NAME_MAX - 1] = 'x';
	path[KF_SSM_NAME_MAX] = '\0';
	KT_EQ_INT(kf_ssm_path_name(path, name), -1);
	free(path);
}

/* ---- the index ---------------------------------------------------------- */

static uint64_t now_ms;

static uint64_t test_now(void *ctx)
{
	(void)ctx;
	return now_ms;
}

static void test_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	now_ms += ms;
}

static void clock_start(uint64_t at)
{
	struct kf_clock c = { test_now, test_sleep, NULL };

	now_ms = at;
	kf_clock_set(&c);
}

static struct kf_aws_ssm_meta meta(const char *name, const char *tier,
				   int64_t version)
{
	struct kf_aws_ssm_meta m;

	memset(&m, 0, sizeof(m));
	m.name = (char *)name;
	m.type = (char *)"SecureString";
	m.tier = (char *)tier;
	m.version = version;
	m.changed = 1700000000;
	return m;
}

static void put(struct kf_ssm_index *x, const char *name)
{
	struct kf_aws_ssm_meta m = meta(name, "Standard", 1);

	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_OK);
}

static enum kf_ssm_known look(struct kf_ssm_index *x, const char *path)
{
	return kf_ssm_index_lookup(x, 0, path, NULL);
}

KT_TEST(ssm_index_complete_subtrees_expire)
{
	struct kf_ssm_index *x;
	struct kf_aws_ssm_meta got;

	clock_start(1000);
	x = kf_ssm_index_new(2, 60000);
	KT_CHECK(x != NULL);
	KT_EQ_INT(look(x, "prod"), KF_SSM_UNKNOWN);
	put(x, "/prod/model/openai_key");
	put(x, "/prod/db");
	/* names seen make a directory; nothing is complete yet */
	KT_EQ_INT(look(x, "prod"), KF_SSM_DIR);
	KT_EQ_INT(look(x, "prod/model"), KF_SSM_DIR);
	KT_EQ_INT(look(x, "prod/db"), KF_SSM_UNKNOWN);
	KT_EQ_INT(look(x, "prod/nothing"), KF_SSM_UNKNOWN);
	kf_ssm_index_complete(x, 0, "prod", KF_SSM_BELOW, 1000);
	KT_EQ_INT(kf_ssm_index_lookup(x, 0, "prod/db", &got), KF_SSM_FILE);
	KT_EQ_STR(got.name, "/prod/db");
	KT_EQ_STR(got.tier, "Standard");
	kf_aws_ssm_meta_release(&got);
	KT_EQ_INT(look(x, "prod/model/openai_key"), KF_SSM_FILE);
	KT_EQ_INT(look(x, "prod/nothing"), KF_SSM_NONE);
	KT_EQ_INT(look(x, "prod/model/x/y"), KF_SSM_NONE);
	KT_EQ_INT(kf_ssm_index_below_known(x, 0, "prod/model"), 1);
	/* prod itself: below known, itself not */
	KT_EQ_INT(look(x, "other"), KF_SSM_UNKNOWN);
	KT_EQ_INT(kf_ssm_index_lookup(x, 1, "prod", NULL), KF_SSM_UNKNOWN);
	/* the ttl ends it all */
	now_ms += 59999;
	KT_EQ_INT(look(x, "prod/nothing"), KF_SSM_NONE);
	now_ms += 1;
	KT_EQ_INT(look(x, "prod/nothing"), KF_SSM_UNKNOWN);
	KT_EQ_INT(look(x, "prod/db"), KF_SSM_UNKNOWN);
	KT_EQ_INT(look(x, "prod"), KF_SSM_UNKNOWN);
	KT_EQ_INT(kf_ssm_index_below_known(x, 0, "prod/model"), 0);
	/* ... but the metadata of any age stays for writes */
	KT_EQ_INT(kf_ssm_index_meta(x, 0, "prod/db", &got), 1);
	KT_EQ_INT(got.version, 1);
	kf_aws_ssm_meta_release(&got);
	kf_ssm_index_free(x);
	kf_ssm_index_free(NULL);
	kf_clock_set(NULL);
}

KT_TEST(ssm_index_self_and_unseen_names)
{
	struct kf_ssm_index *x;

	clock_start(5000);
	x = kf_ssm_index_new(1, 60000);
	/* a lookup of one path: nothing below, then itself */
	kf_ssm_index_complete(x, 0, "a/b", KF_SSM_BELOW, now_ms);
	KT_EQ_INT(look(x, "a/b"), KF_SSM_NOT_DIR);
	kf_ssm_index_complete(x, 0, "a/b", KF_SSM_SELF, now_ms);
	KT_EQ_INT(look(x, "a/b"), KF_SSM_NONE);
	put(x, "/a/b");
	KT_EQ_INT(look(x, "a/b"), KF_SSM_FILE);
	/* a listing begun later that does not show a name drops it */
	put(x, "/l/old");
	put(x, "/l/kept");
	now_ms += 10;
	put(x, "/l/kept");
	kf_ssm_index_complete(x, 0, "l", KF_SSM_BELOW, now_ms);
	KT_EQ_INT(look(x, "l/old"), KF_SSM_NONE);
	KT_EQ_INT(look(x, "l/kept"), KF_SSM_FILE);
	/* ... unless this process wrote it a moment ago */
	{
		struct kf_aws_ssm_meta m = meta("/l/mine", NULL, 3);

		kf_ssm_index_note(x, 0, &m, 0);
	}
	now_ms += 10;
	kf_ssm_index_complete(x, 0, "l", KF_SSM_BELOW, now_ms);
	KT_EQ_INT(look(x, "l/mine"), KF_SSM_FILE);
	KT_EQ_INT(look(x, "l/kept"), KF_SSM_NONE);
	/* the whole region listed: everything below answers */
	kf_ssm_index_complete(x, 0, "", KF_SSM_BELOW, now_ms);
	KT_EQ_INT(look(x, "zzz"), KF_SSM_NONE);
	KT_EQ_INT(look(x, "a/b"), KF_SSM_NONE);
	kf_ssm_index_free(x);
	kf_clock_set(NULL);
}

KT_TEST(ssm_index_own_deletes_and_twins)
{
	struct kf_ssm_index *x;
	struct kf_aws_ssm_meta m, got;

	clock_start(0);
	x = kf_ssm_index_new(1, 600000);
	put(x, "/t/x");
	kf_ssm_index_complete(x, 0, "t", KF_SSM_BELOW, 0);
	m = meta("/t/x", NULL, 1);
	kf_ssm_index_note(x, 0, &m, 1);
	KT_EQ_INT(look(x, "t/x"), KF_SSM_NONE);
	/* a listing that lags does not bring it back ... */
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_GONE);
	KT_EQ_INT(look(x, "t/x"), KF_SSM_NONE);
	/* ... for the overlay window (the ttl, at most 5 minutes) */
	now_ms += KF_SSM_OVERLAY_MS;
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_OK);
	/* "/foo" and "foo" share a path: the hierarchical one wins, and the
	 * other is told once */
	put(x, "/foo");
	m = meta("foo", NULL, 1);
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_HIDDEN);
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_HIDDEN_AGAIN);
	KT_EQ_INT(kf_ssm_index_meta(x, 0, "foo", &got), 1);
	KT_EQ_STR(got.name, "/foo");
	kf_aws_ssm_meta_release(&got);
	/* seen the other way round, "/bar" still wins */
	m = meta("bar", NULL, 1);
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_OK);
	m = meta("/bar", NULL, 1);
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_HIDDEN);
	KT_EQ_INT(kf_ssm_index_meta(x, 0, "bar", &got), 1);
	KT_EQ_STR(got.name, "/bar");
	kf_aws_ssm_meta_release(&got);
	/* written here as "/baz", listed as "baz" (one parameter to a
	 * service that takes both for one): the listed name, nothing told */
	m = meta("/baz", NULL, 1);
	kf_ssm_index_note(x, 0, &m, 0);
	m = meta("baz", NULL, 1);
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_OK);
	KT_EQ_INT(kf_ssm_index_meta(x, 0, "baz", &got), 1);
	KT_EQ_STR(got.name, "baz");
	kf_aws_ssm_meta_release(&got);
	/* an ARN learnt from a read stays when a listing has none */
	kf_ssm_index_put_arn(x, 0, "baz", "arn:aws:ssm:r:1:parameter/baz");
	KT_EQ_INT(kf_ssm_index_put(x, 0, &m), KF_SSM_PUT_OK);
	KT_EQ_INT(kf_ssm_index_meta(x, 0, "baz", &got), 1);
	KT_EQ_STR(got.arn, "arn:aws:ssm:r:1:parameter/baz");
	kf_aws_ssm_meta_release(&got);
	kf_ssm_index_free(x);
	kf_clock_set(NULL);
}

struct kids {
	char text[512];
	int n;
};

static int kid(void *ctx, const char *name, int is_dir, int64_t mtime)
{
	struct kids *k = ctx;
	size_t len = strlen(k->text);

	(void)mtime;
	snprintf(k->text + len, sizeof(k->text) - len, "%s%s ", name,
		 is_dir ? "/" : "");
	k->n++;
	return 0;
}

KT_TEST(ssm_index_children_once_directory_wins)
{
	struct kf_ssm_index *x;
	struct kids k;
	char *sib[8];
	size_t n;

	clock_start(100);
	x = kf_ssm_index_new(1, 60000);
	/* "a" is a parameter and a directory; "a-b" sorts between "a" and
	 * "a/x" */
	put(x, "/d/a");
	put(x, "/d/a-b");
	put(x, "/d/a/x");
	put(x, "/d/a/y/z");
	put(x, "/d/b");
	put(x, "/e");
	memset(&k, 0, sizeof(k));
	KT_EQ_INT(kf_ssm_index_children(x, 0, "d", 100, kid, &k), 0);
	KT_EQ_STR(k.text, "a/ a-b b ");
	memset(&k, 0, sizeof(k));
	KT_EQ_INT(kf_ssm_index_children(x, 0, "", 100, kid, &k), 0);
	KT_EQ_STR(k.text, "d/ e ");
	KT_EQ_INT(look(x, "d/a"), KF_SSM_DIR);
	/* only what the listing begun at since saw */
	memset(&k, 0, sizeof(k));
	KT_EQ_INT(kf_ssm_index_children(x, 0, "d", 101, kid, &k), 0);
	KT_EQ_INT(k.n, 0);
	/* siblings for a batch: files after d/a-b in d, not directories */
	n = kf_ssm_index_siblings(x, 0, "d/a", 8, sib);
	KT_EQ_INT(n, 2);
	KT_EQ_STR(n > 0 ? sib[0] : NULL, "/d/a-b");
	KT_EQ_STR(n > 1 ? sib[1] : NULL, "/d/b");
	for (size_t i = 0; i < n; i++)
		free(sib[i]);
	kf_ssm_index_free(x);
	kf_clock_set(NULL);
}

KT_TEST(ssm_index_held_directories)
{
	struct kf_ssm_index *x;
	struct kf_aws_ssm_meta m = meta("/h/i/p", NULL, 1);
	struct kids k;

	clock_start(0);
	x = kf_ssm_index_new(1, 60000);
	KT_EQ_INT(kf_ssm_index_hold(x, 0, "h"), 0);
	KT_EQ_INT(kf_ssm_index_hold(x, 0, "h/i"), 0);
	KT_EQ_INT(look(x, "h"), KF_SSM_HELD);
	KT_EQ_INT(look(x, "h/i"), KF_SSM_HELD);
	KT_EQ_INT(kf_ssm_index_held_below(x, 0, "h"), 1);
	KT_EQ_INT(kf_ssm_index_held_below(x, 0, "h/i"), 0);
	KT_EQ_INT(kf_ssm_index_hold(x, 1, "h"), -1);
	memset(&k, 0, sizeof(k));
	kf_ssm_index_children(x, 0, "h", 0, kid, &k);
	KT_EQ_STR(k.text, "i/ ");
	/* a parameter written below makes them real */
	kf_ssm_index_note(x, 0, &m, 0);
	KT_EQ_INT(kf_ssm_index_held_below(x, 0, "h"), 0);
	KT_EQ_INT(look(x, "h"), KF_SSM_DIR);
	KT_EQ_INT(look(x, "h/i"), KF_SSM_DIR);
	/* rmdir of an empty held directory forgets it */
	KT_EQ_INT(kf_ssm_index_hold(x, 0, "g"), 0);
	kf_ssm_index_unhold(x, 0, "g");
	KT_EQ_INT(look(x, "g"), KF_SSM_UNKNOWN);
	kf_ssm_index_free(x);
	kf_clock_set(NULL);
}

/* ---- the provider, on a Parameter Store of its own ---------------------- */

#define SVC_MAX 64

struct svc_param {
	char name[64];
	char type[16];
	char key[32];
	char tier[16];
	char value[64];
	int version;
};

struct svc {
	struct svc_param p[SVC_MAX];
	size_t n;
	size_t page; /* items per DescribeParameters page */
	int describes, gets, puts;
	char last_put[10000]; /* the last PutParameter body */
};

static struct svc_param *svc_find(struct svc *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->p[i].name, name) == 0)
			return &s->p[i];
	return NULL;
}

static void svc_add(struct svc *s, const char *name, const char *type,
		    const char *tier, const char *value)
{
	struct svc_param *p = &s->p[s->n++];

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->type, sizeof(p->type), "%s", type);
	snprintf(p->tier, sizeof(p->tier), "%s", tier);
	snprintf(p->value, sizeof(p->value), "%s", value);
	if (!strcmp(type, "SecureString"))
		snprintf(p->key, sizeof(p->key), "alias/custom");
	p->version = 1;
}

/* Whether p passes the request's ParameterFilters. */
static int svc_match(const struct svc_param *p, json_t *filters)
{
	size_t i;
	json_t *f;

	json_array_foreach(filters, i, f)
	{
		const char *key = json_string_value(json_object_get(f, "Key"));
		const char *v = json_string_value(
			json_array_get(json_object_get(f, "Values"), 0));
		size_t n = v ? strlen(v) : 0;

		if (!key || !v)
			return 0;
		if (!strcmp(key, "Name") && strcmp(p->name, v) != 0)
			return 0;
		if (!strcmp(key, "Path") &&
		    (strncmp(p->name, v, n) != 0 || p->name[n] != '/'))
			return 0;
	}
	return 1;
}

static long svc_describe(struct svc *s, json_t *req, struct kf_buf *out)
{
	json_t *filters = json_object_get(req, "ParameterFilters");
	const char *tok = json_string_value(json_object_get(req, "NextToken"));
	size_t max =
		(size_t)json_integer_value(json_object_get(req, "MaxResults"));
	size_t skip = tok ? (size_t)strtoul(tok, NULL, 10) : 0, seen = 0;
	json_t *list = json_array(), *o;
	char *text;

	if (max == 0 || max > s->page)
		max = s->page;
	s->describes++;
	for (size_t i = 0; i < s->n && json_array_size(list) < max; i++) {
		const struct svc_param *p = &s->p[i];

		if (!svc_match(p, filters) || seen++ < skip)
			continue;
		json_array_append_new(list,
				      json_pack("{s:s,s:s,s:i,s:s,s:f}", "Name",
						p->name, "Type", p->type,
						"Version", p->version, "Tier",
						p->tier, "LastModifiedDate",
						1.7e9));
		if (p->key[0])
			json_object_set_new(json_array_get(list,
							   json_array_size(
								   list) -
								   1),
					    "KeyId", json_string(p->key));
	}
	o = json_pack("{s:o}", "Parameters", list);
	/* more may follow when the page is full */
	if (json_array_size(list) == max) {
		char next[24];

		snprintf(next, sizeof(next), "%zu", skip + max);
		json_object_set_new(o, "NextToken", json_string(next));
	}
	text = json_dumps(o, JSON_COMPACT);
	kf_buf_adds(out, text);
	kf_json_free(text);
	json_decref(o);
	return 200;
}

static long svc_get(struct svc *s, json_t *req, struct kf_buf *out)
{
	const char *name = json_string_value(json_object_get(req, "Name"));
	struct svc_param *p = name ? svc_find(s, name) : NULL;
	json_t *o;
	char *text;

	s->gets++;
	if (!p) {
		kf_buf_adds(out, "{\"__type\":\"ParameterNotFound\"}");
		return 400;
	}
	o = json_pack("{s:{s:s,s:s,s:s,s:i,s:s,s:f}}", "Parameter", "Name",
		      p->name, "Type", p->type, "Value", p->value, "Version",
		      p->version, "ARN", "arn:aws:ssm:eu-central-1:1:parameter",
		      "LastModifiedDate", 1.7e9);
	text = json_dumps(o, JSON_COMPACT);
	kf_buf_adds(out, text);
	kf_json_free(text);
	json_decref(o);
	return 200;
}

static long svc_put(struct svc *s, json_t *req, const char *body,
		    struct kf_buf *out)
{
	const char *name = json_string_value(json_object_get(req, "Name"));
	const char *value = json_string_value(json_object_get(req, "Value"));
	const char *type = json_string_value(json_object_get(req, "Type"));
	struct svc_param *p = name ? svc_find(s, name) : NULL;

	s->puts++;
	snprintf(s->last_put, sizeof(s->last_put), "%s", body);
	if (p && !json_is_true(json_object_get(req, "Overwrite"))) {
		kf_buf_adds(out, "{\"__type\":\"ParameterAlreadyExists\"}");
		return 400;
	}
	if (!p) {
		svc_add(s, name, type ? type : "String", "Standard", "");
		p = &s->p[s->n - 1];
		p->version = 0;
	}
	snprintf(p->value, sizeof(p->value), "%s", value ? value : "");
	p->version++;
	kf_buf_addf(out, "{\"Version\":%d,\"Tier\":\"Standard\"}", p->version);
	return 200;
}

static long svc_handle(void *ctx, const char *target, const char *body,
		       size_t len, struct kf_buf *out)
{
	struct svc *s = ctx;
	json_t *req = json_loadb(body, len, 0, NULL);
	long rc = 400;

	if (!strcmp(target, "AmazonSSM.DescribeParameters"))
		rc = svc_describe(s, req, out);
	else if (!strcmp(target, "AmazonSSM.GetParameter"))
		rc = svc_get(s, req, out);
	else if (!strcmp(target, "AmazonSSM.PutParameter"))
		rc = svc_put(s, req, body, out);
	else
		kf_buf_adds(out, "{\"__type\":\"InvalidAction\"}");
	json_decref(req);
	return rc;
}

#define R "eu-central-1"

/* The provider on s, with one extra option (key NULL: none). */
static struct kf_provider *svc_mount(struct svc *s, const char *key,
				     const char *value, struct kf_err *err)
{
	struct kf_kv kv[] = { { (char *)"ssm_region", (char *)R },
			      { (char *)"ssm_endpoint",
				(char *)"http://127.0.0.1:4583" },
			      { (char *)key, (char *)value } };
	struct kf_config cfg = { kt_tmpdir(), 5,	   300,	 0,
				 kv,	      key ? 3 : 2, NULL, 0 };
	struct kf_provider *p = NULL;

	kf_json_init();
	kf_aws_chain_free(fake_env_chain(NULL));
	fake_reset(0, NULL);
	fk.handler = svc_handle;
	fk.handler_ctx = s;
	kf_http_set_transport(fake_transport);
	kf_aws_sm_set_clock(fake_clock);
	if (kf_ssm_desc.create(&cfg, &p, err))
		return NULL;
	s->describes = s->gets = s->puts = 0;
	return p;
}

static void svc_unmount(struct kf_provider *p)
{
	if (p)
		p->ops->free(p);
	kf_http_set_transport(NULL);
	kf_aws_sm_set_clock(NULL);
	fake_env_clear();
}

static struct svc *svc_new(void)
{
	struct svc *s = calloc(1, sizeof(*s));

	KT_CHECK(s != NULL);
	if (s)
		s->page = 10;
	return s;
}

KT_TEST(ssm_tree_cold_lookup_costs_one_describe)
{
	struct kf_err err = KF_ERR_INIT;
	struct svc *s = svc_new();
	struct kf_provider *p;
	struct kf_secret *v = NULL;
	struct kf_attr a;

	if (!s)
		return;
	svc_add(s, "/prod/model/openai_key", "SecureString", "Standard", "K1");
	svc_add(s, "/prod/model/other", "String", "Standard", "o");
	svc_add(s, "/else", "String", "Standard", "e");
	p = svc_mount(s, NULL, NULL, &err);
	KT_CHECK(p != NULL);
	if (!p)
		goto out;
	KT_EQ_INT(p->ops->getattr(p, R "/prod", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_DIR);
	KT_EQ_INT(p->ops->getattr(p, R "/prod/model", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_DIR);
	KT_EQ_INT(p->ops->getattr(p, R "/prod/model/openai_key", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_FILE);
	KT_EQ_INT(a.size_known, 0);
	KT_EQ_INT(p->ops->getattr(p, R "/prod/model/nope", &a, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(s->describes, 1);
	KT_EQ_INT(p->ops->read(p, R "/prod/model/openai_key", &v, &err), 0);
	KT_CHECK(v && v->len == 2 && !memcmp(v->data, "K1", 2));
	KT_EQ_STR(v ? v->version : NULL, "1");
	kf_secret_free(v);
	KT_EQ_INT(s->gets, 1);
	KT_EQ_INT(s->describes, 1);
	/* a one-level name: Path probe, then Name Equals */
	KT_EQ_INT(p->ops->getattr(p, R "/else", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_FILE);
	KT_EQ_INT(s->describes, 3);
	/* a one-level name kept without its '/' */
	svc_add(s, "solo", "String", "Standard", "s");
	KT_EQ_INT(p->ops->getattr(p, R "/solo", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_FILE);
	KT_EQ_INT(s->describes, 6);
	KT_EQ_INT(p->ops->read(p, R "/solo", &v, &err), 0);
	KT_CHECK(v && v->len == 1 && v->data[0] == 's');
	kf_secret_free(v);
	/* names no parameter can have cost nothing */
	KT_EQ_INT(p->ops->getattr(p, R "/x~", &a, &err), -1);
	KT_EQ_INT(p->ops->getattr(p, R "/awsthing", &a, &err), -1);
	KT_EQ_INT(s->describes, 6);
out:
	svc_unmount(p);
	free(s);
}

static int entry(void *ctx, const char *name, const struct kf_attr *a)
{
	return kid(ctx, name, a && a->kind == KF_KIND_DIR, 0);
}

/* Every page of a listing into k; the pages in *pages. */
static int list_all(struct kf_provider *p, const char *path, struct kids *k,
		    int *pages)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf tok, next;
	int rc;

	memset(k, 0, sizeof(*k));
	kf_buf_init(&tok, 4096);
	kf_buf_init(&next, 4096);
	*pages = 0;
	do {
		rc = p->ops->list(p, path, *pages ? kf_buf_str(&tok) : NULL,
				  entry, k, &next, &err);
		(*pages)++;
		kf_buf_reset(&tok);
		kf_buf_add(&tok, next.data, next.len);
	} while (rc == 0 && next.len > 0 && *pages < 100);
	kf_buf_release(&tok);
	kf_buf_release(&next);
	return rc;
}

KT_TEST(ssm_tree_listing_pages_each_entry_once)
{
	struct kf_err err = KF_ERR_INIT;
	struct svc *s = svc_new();
	struct kf_provider *p;
	struct kf_attr a;
	struct kids k;
	int pages;

	if (!s)
		return;
	s->page = 2;
	svc_add(s, "/d/a/x", "String", "Standard", "1");
	svc_add(s, "/d/b", "String", "Standard", "1");
	svc_add(s, "/d/a", "String", "Standard", "1");
	svc_add(s, "/d/c/y/z", "String", "Standard", "1");
	svc_add(s, "/d/a-b", "String", "Standard", "1");
	svc_add(s, "/d/a/q", "String", "Standard", "1");
	svc_add(s, "/top", "String", "Standard", "1");
	p = svc_mount(s, NULL, NULL, &err);
	KT_CHECK(p != NULL);
	if (!p)
		goto out;
	KT_EQ_INT(p->ops->getattr(p, R "/d", &a, &err), 0);
	s->describes = 0;
	KT_EQ_INT(list_all(p, R "/d", &k, &pages), 0);
	KT_EQ_STR(k.text, "a/ a-b b c/ ");
	/* six names, two a page: three full pages and an empty one */
	KT_EQ_INT(pages, 4);
	KT_EQ_INT(s->describes, 4);
	/* the listing was complete: lookups below cost nothing */
	KT_EQ_INT(p->ops->getattr(p, R "/d/a-b", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_FILE);
	KT_EQ_INT(p->ops->getattr(p, R "/d/a", &a, &err), 0);
	KT_EQ_INT(a.kind, KF_KIND_DIR);
	KT_EQ_INT(p->ops->getattr(p, R "/d/gone", &a, &err), -1);
	KT_EQ_INT(s->describes, 4);
	/* the region: no filter */
	KT_EQ_INT(list_all(p, R, &k, &pages), 0);
	KT_EQ_STR(k.text, "d/ top ");
	KT_EQ_INT(list_all(p, "", &k, &pages), 0);
	KT_EQ_STR(k.text, R "/ ");
	KT_EQ_INT(list_all(p, R "/d/b", &k, &pages), -1);
out:
	svc_unmount(p);
	free(s);
}

/* Whether the last PutParameter body has member key = want (NULL:
 * absent). */
static int put_has(const struct svc *s, const char *key, const char *want)
{
	json_t *o = json_loads(s->last_put, 0, NULL);
	json_t *v = json_object_get(o, key);
	int r;

	if (!want)
		r = v == NULL;
	else if (json_is_boolean(v))
		r = !strcmp(want, json_is_true(v) ? "true" : "false");
	else
		r = json_is_string(v) && !strcmp(json_string_value(v), want);
	json_decref(o);
	return r;
}

KT_TEST(ssm_tree_writes_keep_type_and_key)
{
	struct kf_err err = KF_ERR_INIT;
	struct svc *s = svc_new();
	struct kf_provider *p;
	struct kf_buf ver;

	if (!s)
		return;
	svc_add(s, "/w/plain", "String", "Standard", "old");
	svc_add(s, "/w/sec", "SecureString", "Standard", "old");
	p = svc_mount(s, NULL, NULL, &err);
	KT_CHECK(p != NULL);
	if (!p)
		goto out;
	kf_buf_init(&ver, 64);
	KT_EQ_INT(p->ops->check_write(p, R "/w/plain", 0, &err), 0);
	KT_EQ_INT(p->ops->commit(p, R "/w/plain", (const unsigned char *)"new",
				 3, NULL, 0, &ver, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&ver), "2");
	KT_CHECK(put_has(s, "Type", "String"));
	KT_CHECK(put_has(s, "Overwrite", "true"));
	KT_CHECK(put_has(s, "KeyId", NULL));
	KT_CHECK(put_has(s, "Tier", NULL));
	KT_EQ_INT(p->ops->commit(p, R "/w/sec", (const unsigned char *)"n", 1,
				 NULL, 0, NULL, &err),
		  0);
	KT_CHECK(put_has(s, "Type", "SecureString"));
	KT_CHECK(put_has(s, "KeyId", "alias/custom"));
	/* a new name: the configured type, the default key, no overwrite */
	KT_EQ_INT(p->ops->can_create(p, R "/w/new", &err), 0);
	kf_buf_reset(&ver);
	KT_EQ_INT(p->ops->commit(p, R "/w/new", (const unsigned char *)"v", 1,
				 NULL, KF_COMMIT_CREATE, &ver, &err),
		  0);
	KT_EQ_STR(kf_buf_str(&ver), "1");
	KT_CHECK(put_has(s, "Name", "/w/new"));
	KT_CHECK(put_has(s, "Type", "SecureString"));
	KT_CHECK(put_has(s, "Overwrite", "false"));
	KT_CHECK(put_has(s, "KeyId", NULL));
	/* made meanwhile (the index did not know): overwritten, its type */
	svc_add(s, "/w/race", "String", "Standard", "theirs");
	KT_EQ_INT(p->ops->commit(p, R "/w/race", (const unsigned char *)"m", 1,
				 NULL, KF_COMMIT_CREATE, NULL, &err),
		  0);
	KT_CHECK(put_has(s, "Overwrite", "true"));
	KT_CHECK(put_has(s, "Type", "String"));
	/* nothing a parameter cannot hold reaches the service */
	s->puts = 0;
	KT_EQ_INT(p->ops->commit(p, R "/w/plain", (const unsigned char *)"", 0,
				 NULL, 0, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(p->ops->commit(p, R "/w/plain", (const unsigned char *)"a\0b",
				 3, NULL, 0, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(p->ops->can_create(p, R "/w/bad@name", &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(p->ops->can_create(p, R "/ssmx", &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(p->ops->mkdir(p, R "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15",
				&err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(s->puts, 0);
	kf_buf_release(&ver);
out:
	svc_unmount(p);
	free(s);
}

KT_TEST(ssm_tree_size_limits_per_tier)
{
	static unsigned char big[KF_AWS_SSM_ADVANCED_MAX + 1];
	struct kf_err err = KF_ERR_INIT;
	struct svc *s = svc_new();
	struct kf_provider *p;

	if (!s)
		return;
	memset(big, 'x', sizeof(big));
	svc_add(s, "/t/std", "String", "Standard", "s");
	svc_add(s, "/t/adv", "String", "Advanced", "a");
	p = svc_mount(s, NULL, NULL, &err);
	KT_CHECK(p != NULL);
	if (!p)
		goto out;
	KT_EQ_INT(p->max_value, KF_AWS_SSM_ADVANCED_MAX);
	KT_EQ_INT(p->ops->check_write(p, R "/t/std", 0, &err), 0);
	KT_EQ_INT(p->ops->check_write(p, R "/t/adv", 0, &err), 0);
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/std", big, 4096, &err), 0);
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/std", big, 4097, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/adv", big, 8192, &err), 0);
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/new", big, 4097, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/std",
				      (const unsigned char *)"ok\xff", 3, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	/* the first bytes of a character are text so far */
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/std",
				      (const unsigned char *)"caf\xc3", 4,
				      &err),
		  0);
	KT_EQ_INT(p->ops->commit(p, R "/t/std", big, 4097, NULL, 0, NULL, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(p->ops->commit(p, R "/t/adv", big, 8192, NULL, 0, NULL, &err),
		  0);
	KT_CHECK(put_has(s, "Tier", "Advanced"));
	svc_unmount(p);
	/* -o ssm_tier=Advanced: 8 KB for new names, asked for by name */
	p = svc_mount(s, "ssm_tier", "advanced", &err);
	KT_CHECK(p != NULL);
	if (!p)
		goto out;
	KT_EQ_INT(p->ops->check_bytes(p, R "/t/new", big, 8192, &err), 0);
	KT_EQ_INT(p->ops->commit(p, R "/t/new2", big, 5000, NULL,
				 KF_COMMIT_CREATE, NULL, &err),
		  0);
	KT_CHECK(put_has(s, "Tier", "Advanced"));
out:
	svc_unmount(p);
	free(s);
}

KT_TEST(ssm_tree_options_fail_the_mount)
{
	static const char *const bad[][2] = {
		{ "ssm_type", "Secure" },     { "ssm_tier", "Premium" },
		{ "ssm_kms_key", "bad key" }, { "ssm_region", "EU_WEST" },
		{ "ssm_region", ":" },
	};
	struct kf_err err = KF_ERR_INIT;
	struct svc *s = svc_new();
	struct kf_provider *p;

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kf_err_clear(&err);
		p = svc_mount(s, bad[i][0], bad[i][1], &err);
		KT_CHECK(p == NULL);
		KT_EQ_INT(err.code, KF_E_INVALID);
		KT_EQ_INT(fk.nreq, 0);
		svc_unmount(p);
	}
	/* a key for a type without one */
	{
		struct kf_kv kv[] = { { (char *)"ssm_region", (char *)R },
				      { (char *)"ssm_type", (char *)"String" },
				      { (char *)"ssm_kms_key",
					(char *)"alias/k" } };
		struct kf_config cfg = {
			kt_tmpdir(), 5, 300, 0, kv, 3, NULL, 0
		};

		p = NULL;
		KT_EQ_INT(kf_ssm_desc.create(&cfg, &p, &err), -1);
		KT_EQ_INT(err.code, KF_E_INVALID);
		KT_CHECK(strstr(err.msg, "SecureString") != NULL);
	}
	/* a good set: types and tiers by name, any case */
	p = svc_mount(s, "ssm_type", "stringlist", &err);
	KT_CHECK(p != NULL);
	svc_unmount(p);
	/* the service not answering fails the mount, saying which */
	{
		struct fake_resp down = { 0, "" };
		struct kf_kv kv[] = { { (char *)"ssm_region", (char *)R },
				      { (char *)"ssm_endpoint",
					(char *)"http://127.0.0.1:4583" } };
		struct kf_config cfg = {
			kt_tmpdir(), 1, 300, 0, kv, 2, NULL, 0
		};

		kf_aws_chain_free(fake_env_chain(NULL));
		fake_reset(1, &down);
		kf_http_set_transport(fake_transport);
		p = NULL;
		KT_EQ_INT(kf_ssm_desc.create(&cfg, &p, &err), -1);
		KT_CHECK(strstr(err.msg,
				"Parameter Store endpoint not usable") != NULL);
		svc_unmount(p);
	}
	KT_EQ_STR(kf_ssm_desc.shares[0], "aws_region");
	KT_EQ_STR(kf_ssm_desc.shares[1], "aws_profile");
	free(s);
}
