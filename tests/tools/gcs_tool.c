/*
 * Test driver for the Cloud Storage client and the berglas format:
 *   gcs_tool put BUCKET OBJECT KEY [-g GEN] [-m METAGEN] < value
 *            (default -g 0: create; -g -1: no precondition)
 *   gcs_tool get BUCKET OBJECT KEY [-g GEN]      value on stdout
 *   gcs_tool stat BUCKET OBJECT [-g GEN]         name=value lines
 *   gcs_tool list BUCKET [PREFIX] [-d] [-v] [-p PAGE] [-n MAX]
 *   gcs_tool rm BUCKET OBJECT [-g GEN]
 *   gcs_tool raw-put BUCKET OBJECT [-g GEN] [-m METAGEN] < bytes
 *   gcs_tool raw-get BUCKET OBJECT [-g GEN]
 * Credentials as keyfs finds them (GOOGLE_APPLICATION_CREDENTIALS ...);
 * endpoints from CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE and _CLOUDKMS.
 * Errors: "gcs_tool: CODE[ conflict]: message" on stderr, exit 1.  It
 * prints a value only to stdout for `get`, never in a message.
 */
#include "core/crypto.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "gcp/auth.h"
#include "gcp/berglas.h"
#include "gcp/gcs.h"
#include "gcp/kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
	long long gen, metagen;
	int delim, versions;
	unsigned max;
	const char *page;
	const char *arg[4];
	int nargs;
};

static int parse(int argc, char **argv, struct opts *o)
{
	int c;

	o->gen = -2;
	o->metagen = -1;
	while ((c = getopt(argc, argv, "g:m:dvp:n:")) != -1) {
		switch (c) {
		case 'g':
			o->gen = strtoll(optarg, NULL, 10);
			break;
		case 'm':
			o->metagen = strtoll(optarg, NULL, 10);
			break;
		case 'd':
			o->delim = 1;
			break;
		case 'v':
			o->versions = 1;
			break;
		case 'p':
			o->page = optarg;
			break;
		case 'n':
			o->max = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	for (; optind < argc && o->nargs < 4; optind++)
		o->arg[o->nargs++] = argv[optind];
	return optind == argc ? 0 : -1;
}

static int read_stdin(struct kf_buf *b)
{
	char chunk[4096];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (kf_buf_add(b, chunk, n) < 0)
			return -1;
	return ferror(stdin) ? -1 : 0;
}

static void print_object(const struct kf_gcs_object *o)
{
	const char *k;
	json_t *v;

	printf("name=%s\ngeneration=%lld\nmetageneration=%lld\nsize=%lld\n",
	       o->name, o->generation, o->metageneration, o->size);
	printf("crc32c=%s%u\nlive=%d\ncache_control=%s\ncontent_type=%s\n",
	       o->has_crc32c ? "" : "none:", o->crc32c, o->live,
	       o->cache_control, o->content_type);
	json_object_foreach(o->metadata, k, v)
		printf("meta.%s=%s\n", k, json_string_value(v));
}

static int list_item(void *ctx, const struct kf_gcs_object *o,
		     const char *prefix)
{
	if (prefix)
		printf("prefix %s\n", prefix);
	else
		printf("object %s %lld %lld %s %s\n", o->name, o->generation,
		       o->size, o->live ? "live" : "noncurrent",
		       kf_gcs_meta(o, KF_BERGLAS_META_SECRET) ? "berglas" :
								"-");
	return 0;
}

static int run(const char *op, struct opts *o, struct kf_gcs *g,
	       struct kf_gcp_kms *k, struct kf_err *err)
{
	struct kf_gcs_object ob;
	struct kf_secret *val = NULL;
	struct kf_buf in, next;
	int rc = -1;

	memset(&ob, 0, sizeof(ob));
	kf_buf_init_sensitive(&in, 16u << 20);
	kf_buf_init(&next, 8192);
	if (!strcmp(op, "put") && o->nargs == 3) {
		if (read_stdin(&in) < 0)
			goto out;
		rc = kf_berglas_put(g, k, o->arg[0], o->arg[1], o->arg[2],
				    in.data, in.len, o->gen == -2 ? 0 : o->gen,
				    o->metagen, &ob, err);
		if (rc == 0)
			printf("generation=%lld\n", ob.generation);
	} else if (!strcmp(op, "get") && o->nargs == 3) {
		rc = kf_berglas_get(g, k, o->arg[0], o->arg[1], o->arg[2],
				    o->gen > 0 ? o->gen : 0, &val, &ob, err);
		if (rc == 0 &&
		    fwrite(val->data, 1, val->len, stdout) != val->len)
			rc = -1;
	} else if (!strcmp(op, "stat") && o->nargs == 2) {
		rc = kf_gcs_stat(g, o->arg[0], o->arg[1],
				 o->gen > 0 ? o->gen : 0, &ob, err);
		if (rc == 0)
			print_object(&ob);
	} else if (!strcmp(op, "list") && (o->nargs == 1 || o->nargs == 2)) {
		struct kf_gcs_list_req rq = { o->nargs == 2 ? o->arg[1] : NULL,
					      o->delim ? "/" : NULL, o->page,
					      o->versions, o->max };

		rc = kf_gcs_list(g, o->arg[0], &rq, list_item, NULL, &next,
				 err);
		if (rc == 0 && next.len)
			printf("next %s\n", kf_buf_str(&next));
	} else if (!strcmp(op, "rm") && o->nargs == 2) {
		rc = kf_gcs_delete(g, o->arg[0], o->arg[1],
				   o->gen > 0 ? o->gen : 0, err);
	} else if (!strcmp(op, "raw-put") && o->nargs == 2) {
		struct kf_gcs_write w;

		kf_gcs_write_init(&w);
		w.if_generation = o->gen == -2 ? -1 : o->gen;
		w.if_metageneration = o->metagen;
		if (read_stdin(&in) < 0)
			goto out;
		rc = kf_gcs_write(g, o->arg[0], o->arg[1], in.data, in.len, &w,
				  &ob, err);
		if (rc == 0)
			printf("generation=%lld\n", ob.generation);
	} else if (!strcmp(op, "raw-get") && o->nargs == 2) {
		rc = kf_gcs_read(g, o->arg[0], o->arg[1],
				 o->gen > 0 ? o->gen : 0, NULL, &in, NULL, err);
		if (rc == 0 && fwrite(in.data, 1, in.len, stdout) != in.len)
			rc = -1;
	} else {
		kf_fail(err, KF_E_INVALID, "usage: see the top of gcs_tool.c");
	}
out:
	kf_secret_free(val);
	kf_gcs_object_release(&ob);
	kf_buf_release(&in);
	kf_buf_release(&next);
	return rc;
}

int main(int argc, char **argv)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 10000 };
	struct kf_gcp_auth *a = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_gcs g;
	struct kf_gcp_kms k;
	struct opts o = { 0 };
	int rc = 1;

	if (argc < 2 || parse(argc - 1, argv + 1, &o) < 0) {
		fprintf(stderr,
			"gcs_tool: usage: see tests/tools/gcs_tool.c\n");
		return 2;
	}
	kf_json_init();
	kf_log_set_level(getenv("GCS_TOOL_DEBUG") ? KF_LOG_DEBUG :
						    KF_LOG_ERROR);
	if (kf_http_global_init(&err) < 0 ||
	    kf_gcp_auth_new(&cfg, &a, &err) < 0 ||
	    kf_gcs_init(&g, NULL, a, 20000, &err) < 0 ||
	    kf_gcp_kms_init(&k, NULL, a, 20000, &err) < 0)
		goto fail;
	g.backoff_ms = k.backoff_ms = 20;
	g.backoff_429_ms = k.backoff_429_ms = 50;
	g.max_object = 16u << 20;
	if (run(argv[1], &o, &g, &k, &err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "gcs_tool: %s%s: %s\n", kf_code_name(err.code),
		kf_gcs_conflict(&err) ? " conflict" : "", err.msg);
out:
	fflush(stdout);
	kf_gcp_auth_free(a);
	return rc;
}
