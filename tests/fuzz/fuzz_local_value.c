/*
 * libFuzzer target for the local provider's value-file reader
 * (cloud/local/value.c through cloud/local/tree.c).  A store with a fixed
 * master key and fixed data keys (so seed files decrypt on every run) is
 * built once in a temporary directory, its key file wrapped by the real
 * kf_local_key_wrap; each input is written as the value file RING/KEY/NAME
 * and read back through the provider vtable, and opened directly with
 * kf_local_value_open under version 1's data key.  Both must succeed or
 * fail with KF_E_INTEGRITY, agree for a version-1 header, and never crash.
 *
 * KF_FUZZ_LOCAL_SEED=FILE makes the target write a valid value file
 * (the value "fuzz seed") to FILE at start-up, to regenerate the corpus.
 */
#include "core/crypto.h"
#include "core/file.h"
#include "local/keys.h"
#include "local/tree.h"
#include "local/value.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct kf_provider *prov;
static char store[PATH_MAX], value_path[PATH_MAX];
static unsigned char dk1[32]; /* the data key of version 1 (primary) */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_local_value: %s\n", what);
	abort();
}

static void write_file(const char *path, const void *p, size_t n, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, p, n) != (ssize_t)n || close(fd) < 0)
		die("cannot write a store file");
}

static void path_of(char *out, const char *leaf)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", store, leaf);

	if (n < 0 || n >= PATH_MAX)
		die("path too long");
}

/* One "version" entry of .key.json wrapping dk with the master key. */
static void wrapped_entry(struct kf_buf *json, const unsigned char mk[32],
			  const unsigned char dk[32], long ver)
{
	unsigned char blob[KF_LOCAL_WRAPPED_LEN];
	struct kf_buf b64;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&b64, 256);
	if (kf_local_key_wrap(mk, "r/k", ver, dk, blob, &err) < 0 ||
	    kf_base64_encode(blob, sizeof(blob), &b64) < 0 ||
	    kf_buf_addf(json,
			"%s{\"version\": %ld, \"created\": 0, "
			"\"wrapped\": \"%s\"}",
			ver > 1 ? ", " : "", ver, kf_buf_str(&b64)) < 0)
		die("cannot build the key file");
	kf_buf_release(&b64);
}

static void cleanup(void)
{
	static const char *const leaves[] = {
		"local/r/k/v", "local/r/k/.key.json", "local/r/k", "local/r",
		"local",       "master.key",
	};
	char p[PATH_MAX];

	if (!prov)
		return;
	prov->ops->free(prov);
	prov = NULL;
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		path_of(p, leaves[i]);
		if (remove(p) < 0)
			continue;
	}
	rmdir(store);
}

static void write_seed(const char *out)
{
	static const char v[] = "fuzz seed";
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;

	if (prov->ops->commit(prov, "r/k/v", (const unsigned char *)v,
			      sizeof(v) - 1, "seed", KF_COMMIT_CREATE, NULL,
			      &err) < 0)
		die("commit failed");
	kf_buf_init(&b, 1 << 20);
	if (kf_file_read(value_path, 0, &b, &err) < 0)
		die("cannot read the value file");
	write_file(out, b.data, b.len, 0644);
	kf_buf_release(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char mk[32], dk2[32];
	const char *tmp = getenv("TMPDIR");
	struct kf_config cfg;
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf json;
	char p[PATH_MAX];

	(void)argc;
	(void)argv;
	if (snprintf(store, sizeof(store), "%s/kf-fuzz-local-XXXXXX",
		     tmp && *tmp ? tmp : "/tmp") >= (int)sizeof(store) ||
	    !mkdtemp(store))
		die("cannot create a temporary store");
	for (int i = 0; i < 32; i++) {
		mk[i] = (unsigned char)(0xA0 + i);
		dk1[i] = (unsigned char)(0x10 + i);
		dk2[i] = (unsigned char)(0x60 + i);
	}
	path_of(p, "master.key");
	write_file(p, mk, sizeof(mk), 0600);
	path_of(p, "local");
	mkdir(p, 0700);
	path_of(p, "local/r");
	mkdir(p, 0700);
	path_of(p, "local/r/k");
	if (mkdir(p, 0700) < 0)
		die("cannot create the key directory");
	/* Version 1 and 2 unwrap; version 3 is damaged; primary is 1. */
	kf_buf_init(&json, 4096);
	kf_buf_adds(&json, "{\"primary\": 1, \"versions\": [");
	wrapped_entry(&json, mk, dk1, 1);
	wrapped_entry(&json, mk, dk2, 2);
	if (kf_buf_adds(&json, ", {\"version\": 3, \"created\": 0, "
			       "\"wrapped\": \"AAAA\"}]}") < 0)
		die("cannot build the key file");
	path_of(p, "local/r/k/.key.json");
	write_file(p, json.data, json.len, 0600);
	kf_buf_release(&json);
	path_of(value_path, "local/r/k/v");

	memset(&cfg, 0, sizeof(cfg));
	cfg.store = store;
	cfg.timeout = 5;
	if (kf_local_desc.create(&cfg, &prov, &err) < 0)
		die(err.msg);
	atexit(cleanup);
	if (getenv("KF_FUZZ_LOCAL_SEED"))
		write_seed(getenv("KF_FUZZ_LOCAL_SEED"));
	return 0;
}

/* The same bytes straight through the format under version 1's key. */
static void open_direct(const uint8_t *data, size_t size, int vtable_rc,
			const struct kf_secret *via)
{
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;
	uint32_t ver;
	int r;

	r = kf_local_value_open(dk1, "r/k/v", data, size, &s, &err);
	if (r == 0 ? !s || s->len != size - KF_LOCAL_OVERHEAD :
		     r != -1 || s || err.code != KF_E_INTEGRITY) {
		fprintf(stderr, "open: rc %d code %s: %s\n", r,
			kf_code_name(err.code), err.msg);
		abort();
	}
	if (kf_local_value_peek(data, size, &ver) == 0 && ver == 1 &&
	    ((r == 0) != (vtable_rc == 0) ||
	     (r == 0 && !kf_memeq(s->data, via->data, s->len))))
		abort();
	kf_secret_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_secret *s = (struct kf_secret *)1;
	struct kf_err err = KF_ERR_INIT;
	int r;

	write_file(value_path, data, size, 0600);
	r = prov->ops->read(prov, "r/k/v", &s, &err);
	if (r == 0) {
		if (!s || s->len != size - KF_LOCAL_OVERHEAD)
			abort();
	} else if (r != -1 || s != NULL || err.code != KF_E_INTEGRITY) {
		fprintf(stderr, "read: rc %d code %s: %s\n", r,
			kf_code_name(err.code), err.msg);
		abort();
	}
	open_direct(data, size, r, s);
	kf_secret_free(s);
	return 0;
}
