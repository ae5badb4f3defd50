/*
 * libFuzzer target for the local provider's value-file reader
 * (cloud/local/tree.c).  A store with a fixed master key and a fixed data key
 * (so seed files decrypt on every run) is built once in a temporary
 * directory; each input is written as the value file RING/KEY/NAME and
 * read back through the provider vtable.  The read must succeed or fail
 * with KF_E_INTEGRITY, never anything else, and never crash.
 *
 * KF_FUZZ_LOCAL_SEED=FILE makes the target write a valid value file
 * (the value "fuzz seed") to FILE at start-up, to regenerate the corpus.
 */
#include "core/crypto.h"
#include "local/tree.h"

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
	unsigned char blob[KF_GCM_IV + 32 + KF_GCM_TAG];
	char aad[64];
	struct kf_buf b64;
	struct kf_err err = KF_ERR_INIT;

	memset(blob, 0x40 + (int)ver, KF_GCM_IV);
	snprintf(aad, sizeof(aad), "keyfs-local-wrap-v1:r/k:%ld", ver);
	kf_buf_init(&b64, 256);
	if (kf_gcm_encrypt(mk, blob, aad, strlen(aad), dk, 32,
			   blob + KF_GCM_IV, blob + KF_GCM_IV + 32, &err) < 0 ||
	    kf_base64_encode(blob, sizeof(blob), &b64) < 0 ||
	    kf_buf_addf(json, "%s{\"version\": %ld, \"created\": 0, "
			"\"wrapped\": \"%s\"}", ver > 1 ? ", " : "", ver,
			kf_buf_str(&b64)) < 0)
		die("cannot build the key file");
	kf_buf_release(&b64);
}

static void cleanup(void)
{
	static const char *const leaves[] = {
		"local/r/k/v", "local/r/k/.key.json", "local/r/k", "local/r",
		"local", "master.key",
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
	FILE *f;

	if (prov->ops->commit(prov, "r/k/v", (const unsigned char *)v,
			      sizeof(v) - 1, "seed", KF_COMMIT_CREATE, &err) < 0)
		die("commit failed");
	kf_buf_init(&b, 1 << 20);
	f = fopen(value_path, "rb");
	if (!f)
		die("no value file");
	for (int c; (c = fgetc(f)) != EOF;) {
		char ch = (char)c;

		if (kf_buf_add(&b, &ch, 1) < 0)
			die("value file too big");
	}
	fclose(f);
	write_file(out, b.data, b.len, 0644);
	kf_buf_release(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char mk[32], dk1[32], dk2[32];
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_secret *s = (struct kf_secret *)1;
	struct kf_err err = KF_ERR_INIT;
	int r;

	write_file(value_path, data, size, 0600);
	r = prov->ops->read(prov, "r/k/v", &s, &err);
	if (r == 0) {
		/* header 20 bytes + ciphertext + tag 16 */
		if (!s || s->len != size - 36)
			abort();
		kf_secret_free(s);
	} else if (r != -1 || s != NULL || err.code != KF_E_INTEGRITY) {
		fprintf(stderr, "read: rc %d code %s: %s\n", r,
			kf_code_name(err.code), err.msg);
		abort();
	}
	return 0;
}
