/*
 * Test driver for the Secret Manager client (cloud/gcp/gsm.h): one
 * command per run, credentials found as keyfs finds them (-c FILE or
 * GOOGLE_APPLICATION_CREDENTIALS ...), endpoint from -e or the
 * environment.  Values are read from stdin and written to stdout only;
 * stderr carries log lines and errors, never a value.
 *   gsm_tool -p PROJECT [-e URL] [-c CREDS] [-t MS] COMMAND ARGS
 *     list [PAGE_SIZE [PAGE]]      "ID CREATE_MS" lines, then "next=TOKEN"
 *     get ID                       key=value lines
 *     create ID [KMS_KEY]          "etag=ETAG"
 *     add ID < VALUE               "version=N"
 *     create-with-value ID [KMS_KEY] < VALUE    "version=N"
 *     access ID VERSION            the value's bytes on stdout
 *     versions ID [PAGE_SIZE [PAGE]]   "N STATE CREATE_MS" lines, "next="
 *     delete ID [ETAG]
 */
#include "gcp/auth.h"
#include "gcp/gsm.h"
#include "core/http.h"
#include "core/json.h"
#include "core/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[] = { "UNKNOWN", "ENABLED", "DISABLED",
					   "DESTROYED" };

static int print_secret(void *ctx, const struct kf_gsm_secret *s)
{
	(void)ctx;
	printf("%s %lld\n", s->id, s->create_ms);
	return 0;
}

static int print_version(void *ctx, const struct kf_gsm_version *v)
{
	(void)ctx;
	printf("%lld %s %lld\n", v->number, state_names[v->state],
	       v->create_ms);
	return 0;
}

/* stdin into a sensitive buffer (a little over the limit, so that the
 * client sees a value too big). */
static int read_value(struct kf_buf *b)
{
	char chunk[4096];
	size_t n;
	int rc = 0;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (kf_buf_add(b, chunk, n) < 0) {
			rc = -1;
			break;
		}
	explicit_bzero(chunk, sizeof(chunk));
	return rc;
}

static void print_get(const struct kf_gsm_secret *s)
{
	char *l = s->labels ? json_dumps(s->labels, JSON_SORT_KEYS) : NULL;
	char *a = s->annotations ? json_dumps(s->annotations, JSON_SORT_KEYS) :
				   NULL;

	printf("id=%s\nproject=%s\netag=%s\nreplication=%s\nkms_key=%s\n"
	       "create_ms=%lld\nlabels=%s\nannotations=%s\n",
	       s->id, s->project, s->etag,
	       s->user_managed ? "user-managed" : "automatic", s->kms_key,
	       s->create_ms, l ? l : "{}", a ? a : "{}");
	kf_json_free(l);
	kf_json_free(a);
}

static int list_cmd(struct kf_gsm *g, const char *project, int versions,
		    int argc, char **argv, struct kf_err *err)
{
	struct kf_buf next;
	unsigned size = 0;
	const char *page = NULL;
	int i = versions ? 1 : 0, rc;

	if (argc > i)
		size = (unsigned)strtoul(argv[i], NULL, 10);
	if (argc > i + 1)
		page = argv[i + 1];
	kf_buf_init(&next, 8192);
	if (versions)
		rc = kf_gsm_list_versions(g, project, argv[0], size, page,
					  print_version, NULL, &next, err);
	else
		rc = kf_gsm_list_secrets(g, project, size, page, print_secret,
					 NULL, &next, err);
	if (rc == 0)
		printf("next=%s\n", kf_buf_str(&next));
	kf_buf_release(&next);
	return rc;
}

static int value_cmd(struct kf_gsm *g, const char *project, const char *cmd,
		     int argc, char **argv, struct kf_err *err)
{
	struct kf_buf v;
	long long num = 0;
	int rc = -1;

	kf_buf_init_sensitive(&v, KF_GSM_MAX_VALUE + 16);
	if (read_value(&v) < 0) {
		kf_fail(err, KF_E_TOOBIG, "value too large");
		goto out;
	}
	if (strcmp(cmd, "add") == 0)
		rc = kf_gsm_add(g, project, argv[0], v.data, v.len, &num, err);
	else
		rc = kf_gsm_create_with_value(g, project, argv[0],
					      argc > 1 ? argv[1] : NULL, v.data,
					      v.len, &num, err);
	if (rc == 0)
		printf("version=%lld\n", num);
out:
	kf_buf_release(&v);
	return rc;
}

static int run_cmd(struct kf_gsm *g, const char *project, const char *cmd,
		   int argc, char **argv, struct kf_err *err)
{
	struct kf_gsm_secret s;
	struct kf_secret *val = NULL;
	char etag[96];
	int rc;

	if (strcmp(cmd, "list") == 0)
		return list_cmd(g, project, 0, argc, argv, err);
	if (argc < 1)
		return kf_fail(err, KF_E_INVALID, "%s needs a secret id", cmd);
	if (strcmp(cmd, "versions") == 0)
		return list_cmd(g, project, 1, argc, argv, err);
	if (strcmp(cmd, "add") == 0 || strcmp(cmd, "create-with-value") == 0)
		return value_cmd(g, project, cmd, argc, argv, err);
	if (strcmp(cmd, "get") == 0) {
		rc = kf_gsm_get(g, project, argv[0], &s, err);
		if (rc == 0)
			print_get(&s);
		kf_gsm_secret_release(&s);
		return rc;
	}
	if (strcmp(cmd, "create") == 0) {
		rc = kf_gsm_create(g, project, argv[0],
				   argc > 1 ? argv[1] : NULL, etag,
				   sizeof(etag), err);
		if (rc == 0)
			printf("etag=%s\n", etag);
		return rc;
	}
	if (strcmp(cmd, "delete") == 0)
		return kf_gsm_delete(g, project, argv[0],
				     argc > 1 ? argv[1] : NULL, err);
	if (strcmp(cmd, "access") == 0) {
		rc = kf_gsm_access(g, project, argv[0],
				   argc > 1 ? argv[1] : "latest", &val, NULL,
				   err);
		if (rc == 0 &&
		    fwrite(val->data, 1, val->len, stdout) != val->len)
			rc = kf_fail(err, KF_E_IO, "cannot write the value");
		kf_secret_free(val);
		return rc;
	}
	return kf_fail(err, KF_E_INVALID, "unknown command %s", cmd);
}

int main(int argc, char **argv)
{
	struct kf_gcp_auth_cfg cfg = { NULL, 5000 };
	struct kf_gcp_auth *auth = NULL;
	struct kf_gsm g;
	struct kf_err err = KF_ERR_INIT;
	const char *project = NULL, *endpoint = NULL;
	unsigned timeout_ms = 15000;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "p:e:c:t:")) != -1) {
		switch (opt) {
		case 'p':
			project = optarg;
			break;
		case 'e':
			endpoint = optarg;
			break;
		case 'c':
			cfg.credentials = optarg;
			break;
		case 't':
			timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (!project || optind >= argc)
		goto usage;
	kf_json_init();
	if (kf_http_global_init(&err) < 0 ||
	    kf_gcp_auth_new(&cfg, &auth, &err) < 0 ||
	    kf_gsm_init(&g, endpoint, auth, timeout_ms, &err) < 0)
		goto fail;
	/* Short pauses: the tests inject faults and should not wait. */
	g.rest.backoff_ms = 20;
	g.rest.backoff_429_ms = 50;
	if (run_cmd(&g, project, argv[optind], argc - optind - 1,
		    argv + optind + 1, &err) < 0)
		goto fail;
	rc = 0;
	goto out;
usage:
	fprintf(stderr,
		"usage: %s -p PROJECT [-e URL] [-c CREDS] [-t MS] "
		"list|get|create|add|create-with-value|access|versions|delete "
		"...\n",
		argv[0]);
	return 2;
fail:
	fprintf(stderr, "gsm_tool: %s: %s%s%s\n", kf_code_name(err.code),
		err.msg, err.provider_code[0] ? " code=" : "",
		err.provider_code);
out:
	fflush(stdout);
	kf_gcp_auth_free(auth);
	return rc;
}
