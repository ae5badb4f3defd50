/* Unit tests for cloud/aws/index.c (names, prefixes, overlay, field
 * sizes, freshness) and cloud/aws/fields.c (field-secret JSON). */
#include "kt.h"

#include <stdlib.h>
#include <string.h>

#include "aws/fields.h"
#include "aws/index.h"
#include "aws/sm.h"
#include "core/json.h"

static void count_created(void *ctx, const char *name, int fields)
{
	(void)name;
	(void)fields;
	(*(int *)ctx)++;
}

KT_TEST(aws_index_names_prefixes_overlay)
{
	struct kf_aws_index *x = kf_aws_index_new(2, 60000);
	const char *names[] = { "a", "b" };
	const uint64_t sizes[] = { 3, 0 };
	uint64_t sz = 0;
	int64_t mt = 0;
	int fields = -1, n = 0;

	KT_CHECK(x != NULL);
	kf_aws_index_put(x, 0, "team/db", 0, 42);
	kf_aws_index_put(x, 0, "cfg", 1, 7);
	KT_EQ_INT(kf_aws_index_get(x, 0, "team/db", &fields, &mt), 1);
	KT_EQ_INT(fields, 0);
	KT_EQ_INT(mt, 42);
	KT_EQ_INT(kf_aws_index_get(x, 1, "team/db", NULL, NULL), 0);
	KT_EQ_INT(kf_aws_index_get(x, 0, "team", NULL, NULL), 0);
	KT_EQ_INT(kf_aws_index_has_prefix(x, 0, "team/"), 1);
	KT_EQ_INT(kf_aws_index_has_prefix(x, 0, "tea/"), 0);
	/* own deletes hide names, own creates show at once */
	kf_aws_index_note(x, 0, "team/db", 1, 0);
	KT_EQ_INT(kf_aws_index_get(x, 0, "team/db", NULL, NULL), 0);
	KT_EQ_INT(kf_aws_index_deleted(x, 0, "team/db"), 1);
	KT_EQ_INT(kf_aws_index_has_prefix(x, 0, "team/"), 0);
	kf_aws_index_note(x, 0, "new/x", 0, 0);
	KT_EQ_INT(kf_aws_index_has_prefix(x, 0, "new/"), 1);
	kf_aws_index_created(x, 0, "new/", count_created, &n);
	KT_EQ_INT(n, 1);
	/* field sizes */
	KT_EQ_INT(kf_aws_index_field(x, 0, "cfg", "a", &sz), -1);
	kf_aws_index_fields_set(x, 0, "cfg", names, sizes, 2);
	KT_EQ_INT(kf_aws_index_field(x, 0, "cfg", "a", &sz), 1);
	KT_EQ_INT(sz, 3);
	KT_EQ_INT(kf_aws_index_field(x, 0, "cfg", "zz", &sz), 0);
	kf_aws_index_del(x, 0, "cfg");
	KT_EQ_INT(kf_aws_index_field(x, 0, "cfg", "a", &sz), -1);
	kf_aws_index_free(x);
	kf_aws_index_free(NULL);

	/* ttl 0: nothing is ever fresh */
	x = kf_aws_index_new(1, 0);
	kf_aws_index_put(x, 0, "a", 0, 1);
	KT_EQ_INT(kf_aws_index_get(x, 0, "a", NULL, NULL), 0);
	kf_aws_index_free(x);
}

/* Directories held in memory: open until a directory is made in them. */
KT_TEST(aws_index_held_directories)
{
	struct kf_aws_index *x = kf_aws_index_new(2, 60000);
	int n = 0;

	KT_CHECK(x != NULL);
	KT_EQ_INT(kf_aws_index_held(x, 0, "team"), KF_AWS_HELD_NO);
	KT_EQ_INT(kf_aws_index_hold(x, 0, "team", KF_AWS_HELD_OPEN), 0);
	KT_EQ_INT(kf_aws_index_held(x, 0, "team"), KF_AWS_HELD_OPEN);
	KT_EQ_INT(kf_aws_index_held(x, 1, "team"), KF_AWS_HELD_NO);
	KT_EQ_INT(kf_aws_index_held(x, 0, "tea"), KF_AWS_HELD_NO);
	/* a held directory below makes it a prefix */
	KT_EQ_INT(kf_aws_index_hold(x, 0, "team/db", KF_AWS_HELD_OPEN), 0);
	KT_EQ_INT(kf_aws_index_held(x, 0, "team"), KF_AWS_HELD_PREFIX);
	KT_EQ_INT(kf_aws_index_held(x, 0, "team/db"), KF_AWS_HELD_OPEN);
	/* holding again never goes back from PREFIX to OPEN */
	KT_EQ_INT(kf_aws_index_hold(x, 0, "team", KF_AWS_HELD_PREFIX), 0);
	KT_EQ_INT(kf_aws_index_hold(x, 0, "team", KF_AWS_HELD_OPEN), 0);
	kf_aws_index_held_each(x, 0, "team/", count_created, &n);
	KT_EQ_INT(n, 1);
	kf_aws_index_unhold(x, 0, "team/db");
	KT_EQ_INT(kf_aws_index_held(x, 0, "team/db"), KF_AWS_HELD_NO);
	KT_EQ_INT(kf_aws_index_held(x, 0, "team"), KF_AWS_HELD_PREFIX);
	n = 0;
	kf_aws_index_held_each(x, 0, "", count_created, &n);
	KT_EQ_INT(n, 1);
	kf_aws_index_free(x); /* frees what is still held */
}

KT_TEST(aws_fields_json)
{
	struct kf_secret *v = kf_secret_dup("{\"u\":\"x\",\"n\":12}", 16);
	struct kf_secret *e = kf_secret_new(0), *out = NULL, *b;
	struct kf_err err = KF_ERR_INIT;
	json_t *obj = NULL;

	kf_json_init();
	KT_EQ_INT(kf_aws_fields_parse(e, &obj, &err), 0);
	KT_EQ_INT(json_object_size(obj), 0);
	json_decref(obj);
	KT_EQ_INT(kf_aws_fields_parse(v, &obj, &err), 0);
	b = kf_aws_fields_bytes(json_object_get(obj, "n"));
	KT_EQ_INT(b->len, 2);
	KT_EQ_MEM(b->data, "12", 2);
	kf_secret_free(b);
	KT_EQ_INT(kf_aws_fields_size(json_object_get(obj, "u")), 1);
	KT_EQ_INT(kf_aws_fields_change(obj, "k", (const unsigned char *)"\xff",
				       1, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_EQ_INT(kf_aws_fields_change(obj, "k", (const unsigned char *)"v", 1,
				       &err),
		  0);
	KT_EQ_INT(kf_aws_fields_change(obj, "u", NULL, 0, &err), 0);
	KT_EQ_INT(kf_aws_fields_change(obj, "u", NULL, 0, &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTFOUND);
	KT_EQ_INT(kf_aws_fields_encode(obj, 5, &out, &err), -1);
	KT_EQ_INT(err.code, KF_E_TOOBIG);
	KT_EQ_INT(kf_aws_fields_encode(obj, KF_AWS_SM_MAX_VALUE, &out, &err),
		  0);
	KT_EQ_INT(out->len, 16);
	KT_EQ_MEM(out->data, "{\"n\":12,\"k\":\"v\"}", 16);
	json_decref(obj);
	kf_secret_free(out);
	kf_secret_free(v);
	v = kf_secret_dup("[1]", 3);
	KT_EQ_INT(kf_aws_fields_parse(v, &obj, &err), -1);
	KT_EQ_INT(err.code, KF_E_STATE);
	KT_CHECK(kf_err_is(&err, KF_R_NOT_OBJECT));
	KT_CHECK(obj == NULL);
	kf_secret_free(v);
	v = kf_secret_dup("{\"a\":", 5);
	KT_EQ_INT(kf_aws_fields_parse(v, &obj, &err), -1);
	KT_CHECK(kf_err_is(&err, KF_R_NOT_OBJECT));
	kf_secret_free(v);
	kf_secret_free(e);
}
