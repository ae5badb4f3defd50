/*
 * kfbench: the timed loops behind `make bench`.  Each mode measures one
 * thing and prints one line of numbers; tests/bench/run_bench.py repeats
 * runs, takes medians and computes ratios against baselines measured in
 * the same run.  It prints timings and counts only, never a value.
 *
 *   kfbench warm PATH ITER            ns per open+read+close
 *   kfbench once PATH                 ns for one open+read+close
 *   kfbench cold PATH...              ns per open+read+close, each PATH read
 *                                     once, back to back (as the raw modes
 *                                     time back-to-back calls)
 *   kfbench burst PATH THREADS        ns until all threads read PATH once
 *   kfbench threads LISTFILE THREADS SECONDS   reads per second
 *   kfbench missing DIR FIRST COUNT   ns per stat of DIR/mNNNNNNNN for the
 *                                     numbers FIRST (>= 1) .. FIRST+COUNT-1,
 *                                     names that do not exist
 *   kfbench raw-get ENDPOINT REGION SECRET_ID ITER   ns per GetSecretValue
 *   kfbench raw-list ENDPOINT REGION PAGES [PREFIX]   ns for PAGES pages
 *   kfbench raw-kms URL TOKEN CIPHERTEXT_B64 ITER      ns per KMS decrypt
 *                                  (with ciphertextCrc32c, as gcloud sends)
 *   kfbench raw-ssm-get ENDPOINT REGION NAME ITER    ns per GetParameter
 *   kfbench raw-google-get URL TOKEN ITER   ns per GET with a bearer token
 *                                  (a Cloud Storage object's metadata or
 *                                  media, a Secret Manager access)
 *   kfbench raw-ssm-list ENDPOINT REGION PATH   ns for every page of
 *                                  DescribeParameters under PATH, and pages
 * The raw modes sign with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and
 * use the project's own libcurl layer, as keyfs does.
 */
#include "core/buf.h"
#include "core/crypto.h"
#include "core/http.h"
#include "aws/sigv4.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static long num(const char *s)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (errno || *e || v <= 0) {
		fprintf(stderr, "kfbench: bad number %s\n", s);
		exit(2);
	}
	return v;
}

/* open + read all + close; returns bytes read or -1. */
static long read_once(const char *path)
{
	char buf[65536 + 1];
	long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	explicit_bzero(buf, sizeof(buf));
	return n < 0 ? -1 : total;
}

static int mode_warm(const char *path, long iter)
{
	uint64_t t0;

	if (read_once(path) < 0)
		goto fail;
	t0 = ns();
	for (long i = 0; i < iter; i++)
		if (read_once(path) < 0)
			goto fail;
	printf("%.1f\n", (double)(ns() - t0) / (double)iter);
	return 0;
fail:
	perror(path);
	return 1;
}

static int mode_cold(char **paths, int n)
{
	uint64_t t0 = ns();

	for (int i = 0; i < n; i++)
		if (read_once(paths[i]) < 0) {
			perror(paths[i]);
			return 1;
		}
	printf("%.1f\n", (double)(ns() - t0) / (double)n);
	return 0;
}

struct burst {
	const char *path;
	pthread_barrier_t *bar;
	int ok;
};

static void *burst_one(void *arg)
{
	struct burst *b = arg;

	pthread_barrier_wait(b->bar);
	b->ok = read_once(b->path) >= 0;
	return NULL;
}

static int mode_burst(const char *path, long threads)
{
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	struct burst *b = calloc((size_t)threads, sizeof(*b));
	pthread_barrier_t bar;
	uint64_t t0;
	int bad = 0;

	if (!t || !b)
		return 1;
	pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
	for (long i = 0; i < threads; i++) {
		b[i].path = path;
		b[i].bar = &bar;
		pthread_create(&t[i], NULL, burst_one, &b[i]);
	}
	t0 = ns();
	pthread_barrier_wait(&bar);
	for (long i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		bad += !b[i].ok;
	}
	printf("%llu %d\n", (unsigned long long)(ns() - t0), bad);
	free(t);
	free(b);
	return bad ? 1 : 0;
}

struct worker {
	char **paths;
	long npaths;
	uint64_t until;
	long reads;
	int seed;
	int failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned s = (unsigned)w->seed;

	while (ns() < w->until) {
		for (int k = 0; k < 64; k++) {
			if (read_once(w->paths[rand_r(&s) % w->npaths]) < 0)
				w->failed = 1;
			w->reads++;
		}
	}
	return NULL;
}

static int mode_threads(const char *list, long threads, long seconds)
{
	char line[4096], **paths = NULL;
	long n = 0, total = 0;
	struct worker *w;
	pthread_t *t;
	FILE *f = fopen(list, "r");
	int failed = 0;

	if (!f) {
		perror(list);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		paths = realloc(paths, (size_t)(n + 1) * sizeof(*paths));
		paths[n++] = strdup(line);
	}
	fclose(f);
	if (n == 0)
		return 1;
	w = calloc((size_t)threads, sizeof(*w));
	t = calloc((size_t)threads, sizeof(*t));
	for (long i = 0; i < threads; i++) {
		w[i].paths = paths;
		w[i].npaths = n;
		w[i].until = ns() + (uint64_t)seconds * 1000000000ull;
		w[i].seed = (int)i + 1;
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (long i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += w[i].reads;
		failed |= w[i].failed;
	}
	printf("%.1f\n", (double)total / (double)seconds);
	return failed;
}

/* stat() of COUNT distinct names that do not exist (each must fail with
 * ENOENT). */
static int mode_missing(const char *dir, long first, long count)
{
	char path[4096];
	struct stat st;
	uint64_t t0 = ns();

	for (long i = first; i < first + count; i++) {
		if (snprintf(path, sizeof(path), "%s/m%08ld", dir, i) >=
		    (int)sizeof(path))
			return 2;
		if (stat(path, &st) == 0 || errno != ENOENT) {
			perror(path);
			return 1;
		}
	}
	printf("%.1f\n", (double)(ns() - t0) / (double)count);
	return 0;
}

/* One signed AWS JSON 1.1 call (X-Amz-Target "<prefix>.<op>", SigV4 for
 * service); returns the HTTP status or -1. */
static int aws_call(const char *endpoint, const char *region,
		    const char *service, const char *prefix, const char *op,
		    const char *body, struct kf_buf *out)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	char date[17], host[256], target[96], url[512];
	struct kf_sigv4_header sh[4];
	struct kf_sigv4_creds creds = { ak, sk, NULL };
	struct kf_buf auth, hdr[4];
	const char *lines[6];
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	const char *h = strstr(endpoint, "://");
	time_t now = time(NULL);
	int rc = -1;

	if (!ak || !sk || !h)
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(h + 3, "/"), h + 3);
	snprintf(target, sizeof(target), "%s.%s", prefix, op);
	snprintf(url, sizeof(url), "%s/", endpoint);
	kf_sigv4_amz_date(now, date);
	sh[0] = (struct kf_sigv4_header){ "content-type",
					  "application/x-amz-json-1.1" };
	sh[1] = (struct kf_sigv4_header){ "host", host };
	sh[2] = (struct kf_sigv4_header){ "x-amz-date", date };
	sh[3] = (struct kf_sigv4_header){ "x-amz-target", target };
	struct kf_sigv4_req req = { "POST", "/",	  NULL,	  sh,	   4,
				    body,   strlen(body), region, service, now };
	kf_buf_init(&auth, 4096);
	for (int i = 0; i < 4; i++)
		kf_buf_init(&hdr[i], 4096);
	if (kf_sigv4_authorization(&req, &creds, &auth, &err) < 0)
		goto out;
	kf_buf_addf(&hdr[0], "Content-Type: application/x-amz-json-1.1");
	kf_buf_addf(&hdr[1], "X-Amz-Date: %s", date);
	kf_buf_addf(&hdr[2], "X-Amz-Target: %s", target);
	kf_buf_addf(&hdr[3], "Authorization: %s", kf_buf_str(&auth));
	for (int i = 0; i < 4; i++)
		lines[i] = kf_buf_str(&hdr[i]);
	lines[4] = NULL;
	kf_http_resp_init(&resp);
	struct kf_http_req hr = { .method = "POST",
				  .url = url,
				  .headers = lines,
				  .body = body,
				  .body_len = strlen(body) };
	if (kf_http_do(&hr, &resp, &err) == 0) {
		rc = (int)resp.status;
		if (out)
			kf_buf_add(out, resp.body.data, resp.body.len);
	}
	kf_http_resp_release(&resp);
out:
	kf_buf_release(&auth);
	for (int i = 0; i < 4; i++)
		kf_buf_release(&hdr[i]);
	return rc;
}

/* One signed Secrets Manager call; returns HTTP status or -1. */
static int sm_call(const char *endpoint, const char *region, const char *op,
		   const char *body, struct kf_buf *out)
{
	return aws_call(endpoint, region, "secretsmanager", "secretsmanager",
			op, body, out);
}

/* One signed Parameter Store call; returns HTTP status or -1. */
static int ssm_call(const char *endpoint, const char *region, const char *op,
		    const char *body, struct kf_buf *out)
{
	return aws_call(endpoint, region, "ssm", "AmazonSSM", op, body, out);
}

static int mode_raw_get(const char *ep, const char *region, const char *id,
			long iter)
{
	char body[1024];
	uint64_t t0;

	snprintf(body, sizeof(body), "{\"SecretId\":\"%s\"}", id);
	if (sm_call(ep, region, "GetSecretValue", body, NULL) != 200)
		return 1;
	t0 = ns();
	for (long i = 0; i < iter; i++)
		if (sm_call(ep, region, "GetSecretValue", body, NULL) != 200)
			return 1;
	printf("%.1f\n", (double)(ns() - t0) / (double)iter);
	return 0;
}

/* Pages of ListSecrets shaped as keyfs sends them (sorted by name, with
 * a name-prefix filter when prefix is not NULL). */
static int mode_raw_list(const char *ep, const char *region, long pages,
			 const char *prefix)
{
	struct kf_buf out, body;
	uint64_t t0 = ns();
	long done = 0;
	char token[8192] = "";

	kf_buf_init(&out, 64u << 20);
	kf_buf_init(&body, 16384);
	while (done < pages) {
		const char *tok;
		json_t *j;

		kf_buf_reset(&out);
		kf_buf_reset(&body);
		kf_buf_adds(&body, "{\"MaxResults\":100,\"SortBy\":\"name\","
				   "\"SortOrder\":\"asc\"");
		if (token[0])
			kf_buf_addf(&body, ",\"NextToken\":\"%s\"", token);
		if (prefix)
			kf_buf_addf(&body,
				    ",\"Filters\":[{\"Key\":\"name\","
				    "\"Values\":[\"%s\"]}]",
				    prefix);
		kf_buf_adds(&body, "}");
		if (sm_call(ep, region, "ListSecrets", kf_buf_str(&body),
			    &out) != 200)
			return 1;
		done++;
		j = json_loadb(out.data, out.len, 0, NULL);
		tok = json_string_value(json_object_get(j, "NextToken"));
		if (!tok || !*tok || strlen(tok) >= sizeof(token)) {
			json_decref(j);
			break;
		}
		memcpy(token, tok, strlen(tok) + 1);
		json_decref(j);
	}
	printf("%.1f %ld\n", (double)(ns() - t0), done);
	kf_buf_release(&out);
	kf_buf_release(&body);
	return 0;
}

/* GetParameter with decryption of name, as keyfs sends it: ITER calls
 * back to back after one untimed call. */
static int mode_raw_ssm_get(const char *ep, const char *region,
			    const char *name, long iter)
{
	char body[2048];
	uint64_t t0;

	snprintf(body, sizeof(body),
		 "{\"Name\":\"%s\",\"WithDecryption\":true}", name);
	if (ssm_call(ep, region, "GetParameter", body, NULL) != 200)
		return 1;
	t0 = ns();
	for (long i = 0; i < iter; i++)
		if (ssm_call(ep, region, "GetParameter", body, NULL) != 200)
			return 1;
	printf("%.1f\n", (double)(ns() - t0) / (double)iter);
	return 0;
}

/* Every page of DescribeParameters under path (a Recursive Path filter,
 * 50 asked per page), as keyfs lists a directory: ns for all of them and
 * the number of pages. */
static int mode_raw_ssm_list(const char *ep, const char *region,
			     const char *path)
{
	struct kf_buf out, body;
	uint64_t t0 = ns();
	long done = 0;
	char token[8192] = "";

	kf_buf_init(&out, 64u << 20);
	kf_buf_init(&body, 16384);
	for (;;) {
		const char *tok;
		json_t *j;

		kf_buf_reset(&out);
		kf_buf_reset(&body);
		kf_buf_addf(&body,
			    "{\"MaxResults\":50,\"ParameterFilters\":[{"
			    "\"Key\":\"Path\",\"Option\":\"Recursive\","
			    "\"Values\":[\"%s\"]}]",
			    path);
		if (token[0])
			kf_buf_addf(&body, ",\"NextToken\":\"%s\"", token);
		kf_buf_adds(&body, "}");
		if (ssm_call(ep, region, "DescribeParameters",
			     kf_buf_str(&body), &out) != 200)
			return 1;
		done++;
		j = json_loadb(out.data, out.len, 0, NULL);
		tok = json_string_value(json_object_get(j, "NextToken"));
		if (!tok || !*tok || strlen(tok) >= sizeof(token)) {
			json_decref(j);
			break;
		}
		memcpy(token, tok, strlen(tok) + 1);
		json_decref(j);
	}
	printf("%.1f %ld\n", (double)(ns() - t0), done);
	kf_buf_release(&out);
	kf_buf_release(&body);
	return 0;
}

static int mode_raw_kms(const char *url, const char *token, const char *ct,
			long iter)
{
	struct kf_buf auth, body;
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	const char *lines[3];
	uint64_t t0 = 0;

	kf_buf_init(&auth, 8192);
	kf_buf_init(&body, 1 << 20);
	kf_buf_addf(&auth, "Authorization: Bearer %s", token);
	{
		/* The request gcloud and keyfs send: with the CRC32C of the
		 * ciphertext, which the server checks. */
		struct kf_buf raw;

		kf_buf_init(&raw, 1 << 20);
		if (kf_base64_decode(ct, strlen(ct), &raw) < 0)
			return 1;
		kf_buf_addf(&body,
			    "{\"ciphertext\":\"%s\",\"ciphertextCrc32c\":"
			    "\"%u\",\"additionalAuthenticatedDataCrc32c\":\"0\"}",
			    ct, kf_crc32c(0, raw.data, raw.len));
		kf_buf_release(&raw);
	}
	lines[0] = kf_buf_str(&auth);
	lines[1] = "Content-Type: application/json";
	lines[2] = NULL;
	kf_http_resp_init(&resp);
	for (long i = -1; i < iter; i++) {
		struct kf_http_req hr = { .method = "POST",
					  .url = url,
					  .headers = lines,
					  .body = body.data,
					  .body_len = body.len };

		if (i == 0)
			t0 = ns();
		if (kf_http_do(&hr, &resp, &err) < 0 || resp.status != 200)
			return 1;
	}
	printf("%.1f\n", (double)(ns() - t0) / (double)iter);
	kf_http_resp_release(&resp);
	kf_buf_release(&auth);
	kf_buf_release(&body);
	return 0;
}

static int mode_raw_google_get(const char *url, const char *token, long iter)
{
	struct kf_buf auth;
	struct kf_http_resp resp;
	struct kf_err err = KF_ERR_INIT;
	const char *lines[2];
	uint64_t t0 = 0;

	kf_buf_init(&auth, 8192);
	kf_buf_addf(&auth, "Authorization: Bearer %s", token);
	lines[0] = kf_buf_str(&auth);
	lines[1] = NULL;
	kf_http_resp_init(&resp);
	for (long i = -1; i < iter; i++) {
		struct kf_http_req hr = { .method = "GET",
					  .url = url,
					  .headers = lines };

		if (i == 0)
			t0 = ns();
		if (kf_http_do(&hr, &resp, &err) < 0 || resp.status != 200)
			return 1;
	}
	printf("%.1f\n", (double)(ns() - t0) / (double)iter);
	kf_http_resp_release(&resp);
	kf_buf_release(&auth);
	return 0;
}

int main(int argc, char **argv)
{
	struct kf_err err = KF_ERR_INIT;

	if (kf_http_global_init(&err) < 0)
		return 1;
	if (argc == 4 && !strcmp(argv[1], "warm"))
		return mode_warm(argv[2], num(argv[3]));
	/* once PATH is cold with one path. */
	if ((argc == 3 && !strcmp(argv[1], "once")) ||
	    (argc >= 3 && !strcmp(argv[1], "cold")))
		return mode_cold(argv + 2, argc - 2);
	if (argc == 4 && !strcmp(argv[1], "burst"))
		return mode_burst(argv[2], num(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "threads"))
		return mode_threads(argv[2], num(argv[3]), num(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "missing"))
		return mode_missing(argv[2], num(argv[3]), num(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "raw-get"))
		return mode_raw_get(argv[2], argv[3], argv[4], num(argv[5]));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "raw-list"))
		return mode_raw_list(argv[2], argv[3], num(argv[4]),
				     argc == 6 ? argv[5] : NULL);
	if (argc == 6 && !strcmp(argv[1], "raw-ssm-get"))
		return mode_raw_ssm_get(argv[2], argv[3], argv[4],
					num(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "raw-ssm-list"))
		return mode_raw_ssm_list(argv[2], argv[3], argv[4]);
	if (argc == 5 && !strcmp(argv[1], "raw-google-get"))
		return mode_raw_google_get(argv[2], argv[3], num(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "raw-kms"))
		return mode_raw_kms(argv[2], argv[3], argv[4], num(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of kfbench.c\n");
	return 2;
}
