/*
 * Unit tests for the local/ provider: the value format (cloud/local/
 * value.c), key wrapping (cloud/local/keys.c), and, through the vtable on
 * a store in the test's temporary directory, the key files, rotation and
 * the master key checks.  Failure messages never print key or value bytes.
 */
#include "kt.h"

#include "local/keys.h"
#include "local/tree.h"
#include "local/value.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char secret_text[] = "sk-test-4f2a";

static void fixed_key(unsigned char key[32], int base)
{
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(base + i);
}

/* secret_text sealed for path under key, version ver; blob has room. */
static void seal(const unsigned char key[32], uint32_t ver, const char *path,
		 unsigned char *blob)
{
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_local_value_seal(key, ver, path, secret_text,
				      sizeof(secret_text) - 1, blob, &err),
		  0);
}

#define BLOB_LEN (sizeof(secret_text) - 1 + KF_LOCAL_OVERHEAD)

KT_TEST(local_value_seal_then_open_round_trips)
{
	unsigned char key[32], blob[BLOB_LEN];
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;
	uint32_t ver = 0;

	fixed_key(key, 1);
	seal(key, 7, "ring/key/name", blob);
	KT_EQ_MEM(blob, "KFL1", 4);
	KT_EQ_INT(kf_local_value_version(blob, sizeof(blob), "ring/key/name",
					 &ver, &err),
		  0);
	KT_EQ_INT(ver, 7);
	KT_EQ_INT(kf_local_value_open(key, "ring/key/name", blob, sizeof(blob),
				      &s, &err),
		  0);
	KT_CHECK(s && s->len == sizeof(secret_text) - 1);
	KT_CHECK(s && kf_memeq(s->data, secret_text, s->len));
	kf_secret_free(s);
}

KT_TEST(local_value_empty_round_trips)
{
	unsigned char key[32], blob[KF_LOCAL_OVERHEAD];
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;

	fixed_key(key, 2);
	KT_EQ_INT(kf_local_value_seal(key, 1, "r/k/e", "", 0, blob, &err), 0);
	KT_EQ_INT(kf_local_value_open(key, "r/k/e", blob, sizeof(blob), &s,
				      &err),
		  0);
	KT_CHECK(s && s->len == 0);
	kf_secret_free(s);
}

KT_TEST(local_value_moved_to_another_path_fails_integrity)
{
	static const char *const other[] = { "r/k/w", "r/k2/v", "r2/k/v",
					     "r/k/vv", "r/k/" };
	unsigned char key[32], blob[BLOB_LEN];

	fixed_key(key, 3);
	seal(key, 1, "r/k/v", blob);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		struct kf_secret *s = (struct kf_secret *)1;
		struct kf_err err = KF_ERR_INIT;

		KT_EQ_INT(kf_local_value_open(key, other[i], blob, sizeof(blob),
					      &s, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
		KT_CHECK(s == NULL);
	}
}

KT_TEST(local_value_any_flipped_byte_fails_integrity)
{
	unsigned char key[32], blob[BLOB_LEN];

	fixed_key(key, 4);
	seal(key, 1, "r/k/v", blob);
	/* Magic, version, IV, ciphertext and tag: every byte counts. */
	for (size_t i = 0; i < sizeof(blob); i++) {
		struct kf_secret *s = NULL;
		struct kf_err err = KF_ERR_INIT;

		blob[i] ^= 0x01;
		KT_EQ_INT(kf_local_value_open(key, "r/k/v", blob, sizeof(blob),
					      &s, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
		KT_CHECK(s == NULL);
		blob[i] ^= 0x01;
	}
}

KT_TEST(local_value_wrong_key_or_truncation_fails_integrity)
{
	unsigned char key[32], other[32], blob[BLOB_LEN];
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;

	fixed_key(key, 5);
	fixed_key(other, 6);
	seal(key, 1, "r/k/v", blob);
	KT_EQ_INT(kf_local_value_open(other, "r/k/v", blob, sizeof(blob), &s,
				      &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	for (size_t n = 0; n < sizeof(blob); n += 7) {
		kf_err_clear(&err);
		KT_EQ_INT(kf_local_value_open(key, "r/k/v", blob, n, &s, &err),
			  -1);
		KT_EQ_INT(err.code, KF_E_INTEGRITY);
	}
	KT_CHECK(s == NULL);
}

KT_TEST(local_value_header_checks)
{
	unsigned char key[32], blob[BLOB_LEN];
	struct kf_err err = KF_ERR_INIT;
	uint32_t ver = 0;

	fixed_key(key, 7);
	seal(key, 0x01020304, "r/k/v", blob);
	KT_EQ_INT(kf_local_value_peek(blob, 8, &ver), 0);
	KT_EQ_INT(ver, 0x01020304);
	KT_EQ_INT(kf_local_value_peek(blob, 7, &ver), -1);
	/* Version 0 names no key: not a value file. */
	seal(key, 0, "r/k/v", blob);
	KT_EQ_INT(kf_local_value_peek(blob, 8, &ver), 0);
	KT_EQ_INT(kf_local_value_version(blob, sizeof(blob), "r/k/v", &ver,
					 &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	blob[0] = 'X';
	KT_EQ_INT(kf_local_value_peek(blob, 8, &ver), -1);
	kf_err_clear(&err);
	KT_EQ_INT(kf_local_value_version(blob, sizeof(blob), "r/k/v", &ver,
					 &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
}

KT_TEST(local_key_wrap_round_trips_and_binds_key_and_version)
{
	unsigned char mk[32], other[32], dk[32], out[32];
	unsigned char w[KF_LOCAL_WRAPPED_LEN];
	static const unsigned char zero[32];
	struct kf_err err = KF_ERR_INIT;

	fixed_key(mk, 0xA0);
	fixed_key(other, 0xB0);
	fixed_key(dk, 0x10);
	KT_EQ_INT(kf_local_key_wrap(mk, "r/k", 3, dk, w, &err), 0);
	KT_EQ_INT(kf_local_key_unwrap(mk, "r/k", 3, w, out, &err), 0);
	KT_CHECK(kf_memeq(out, dk, 32));
	/* Another key, another version, another master key: refused. */
	KT_EQ_INT(kf_local_key_unwrap(mk, "r/k2", 3, w, out, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_CHECK(kf_memeq(out, zero, 32)); /* wiped */
	KT_EQ_INT(kf_local_key_unwrap(mk, "r/k", 4, w, out, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	KT_EQ_INT(kf_local_key_unwrap(other, "r/k", 3, w, out, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	w[KF_GCM_IV] ^= 0x80;
	KT_EQ_INT(kf_local_key_unwrap(mk, "r/k", 3, w, out, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
}

KT_TEST(local_key_wrap_uses_a_fresh_iv)
{
	unsigned char mk[32], dk[32];
	unsigned char a[KF_LOCAL_WRAPPED_LEN], b[KF_LOCAL_WRAPPED_LEN];
	struct kf_err err = KF_ERR_INIT;

	fixed_key(mk, 0xA0);
	fixed_key(dk, 0x10);
	KT_EQ_INT(kf_local_key_wrap(mk, "r/k", 1, dk, a, &err), 0);
	KT_EQ_INT(kf_local_key_wrap(mk, "r/k", 1, dk, b, &err), 0);
	KT_CHECK(!kf_memeq(a, b, KF_GCM_IV));
}

/* ---- the provider on a store in the test's temporary directory */

static struct kf_provider *open_store(const char *store, char *mk,
				      struct kf_err *err)
{
	struct kf_kv kv = { "local_master_key", mk };
	struct kf_config cfg = { 0 };
	struct kf_provider *p = NULL;

	cfg.store = store;
	cfg.timeout = 5;
	cfg.opts = mk ? &kv : NULL;
	cfg.nopts = mk ? 1 : 0;
	if (kf_local_desc.create(&cfg, &p, err) < 0)
		return NULL;
	return p;
}

static void check_value(struct kf_provider *p, const char *path,
			const char *want)
{
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(p->ops->read(p, path, &s, &err), 0);
	KT_CHECK(s && s->len == strlen(want) &&
		 kf_memeq(s->data, want, s->len));
	kf_secret_free(s);
}

static void check_xattr(struct kf_provider *p, const char *path,
			const char *name, const char *want)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;

	kf_buf_init(&b, 64);
	KT_EQ_INT(p->ops->getxattr(p, path, name, &b, &err), 0);
	KT_EQ_STR(kf_buf_str(&b), want);
	kf_buf_release(&b);
}

static void commit(struct kf_provider *p, const char *path, const char *v)
{
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(p->ops->commit(p, path, (const unsigned char *)v, strlen(v),
				 "t", KF_COMMIT_CREATE, &err),
		  0);
}

KT_TEST(local_store_rotation_keeps_old_values_readable)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p = open_store(kt_tmpdir(), NULL, &err);
	struct stat st;
	char mk[PATH_MAX];

	KT_CHECK(p != NULL);
	if (!p)
		return;
	KT_EQ_INT(p->ops->mkdir(p, "ring", &err), 0);
	KT_EQ_INT(p->ops->mkdir(p, "ring/key", &err), 0);
	KT_CHECK((size_t)snprintf(mk, sizeof(mk), "%s/master.key",
				  kt_tmpdir()) < sizeof(mk));
	KT_EQ_INT(stat(mk, &st), 0);
	KT_EQ_INT(st.st_mode & 0777, 0600);
	KT_EQ_INT(st.st_size, 32);
	commit(p, "ring/key/a", "first");
	check_xattr(p, "ring/key", "user.keyfs.primary", "1");
	KT_EQ_INT(p->ops->setxattr(p, "ring/key", "user.keyfs.rotate", "1\n", 2,
				   &err),
		  0);
	check_xattr(p, "ring/key", "user.keyfs.primary", "2");
	commit(p, "ring/key/b", "second");
	check_xattr(p, "ring/key/a", "user.keyfs.version", "1");
	check_xattr(p, "ring/key/b", "user.keyfs.version", "2");
	check_value(p, "ring/key/a", "first");
	check_value(p, "ring/key/b", "second");
	/* The key goes only once it holds no value. */
	KT_EQ_INT(p->ops->rmdir(p, "ring/key", &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTEMPTY);
	KT_EQ_INT(p->ops->unlink(p, "ring/key/a", &err), 0);
	KT_EQ_INT(p->ops->unlink(p, "ring/key/b", &err), 0);
	KT_EQ_INT(p->ops->rmdir(p, "ring/key", &err), 0);
	KT_EQ_INT(p->ops->rmdir(p, "ring", &err), 0);
	p->ops->free(p);

	/* A second instance reads the master key back from its file. */
	p = open_store(kt_tmpdir(), NULL, &err);
	KT_CHECK(p != NULL);
	if (p) {
		KT_EQ_INT(p->ops->mkdir(p, "r2", &err), 0);
		KT_EQ_INT(p->ops->mkdir(p, "r2/k", &err), 0);
		commit(p, "r2/k/v", "third");
		check_value(p, "r2/k/v", "third");
		p->ops->free(p);
	}
}

static void write_master(const char *path, size_t n, int mode)
{
	unsigned char k[100];
	int fd;

	memset(k, 0x5a, sizeof(k));
	fixed_key(k, 0x30);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	KT_CHECK(fd >= 0);
	if (fd < 0)
		return;
	KT_EQ_INT(write(fd, k, n), (ssize_t)n);
	KT_EQ_INT(fchmod(fd, (mode_t)mode), 0);
	close(fd);
}

KT_TEST(local_master_key_checks)
{
	struct kf_err err = KF_ERR_INIT;
	char mk[PATH_MAX];
	struct kf_provider *p;

	KT_CHECK((size_t)snprintf(mk, sizeof(mk), "%s/mk", kt_tmpdir()) <
		 sizeof(mk));
	write_master(mk, 32, 0644);
	KT_CHECK(open_store(kt_tmpdir(), mk, &err) == NULL);
	KT_EQ_INT(err.code, KF_E_DENIED);
	KT_CHECK(strstr(err.msg, "chmod 600") != NULL);
	write_master(mk, 31, 0600);
	KT_CHECK(open_store(kt_tmpdir(), mk, &err) == NULL);
	KT_EQ_INT(err.code, KF_E_INVALID);
	write_master(mk, 33, 0600);
	KT_CHECK(open_store(kt_tmpdir(), mk, &err) == NULL);
	KT_EQ_INT(err.code, KF_E_INVALID);
	/* Larger than any valid store file: damage, as before it. */
	write_master(mk, 100, 0600);
	KT_CHECK(open_store(kt_tmpdir(), mk, &err) == NULL);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	write_master(mk, 32, 0600);
	p = open_store(kt_tmpdir(), mk, &err);
	KT_CHECK(p != NULL);
	if (p)
		p->ops->free(p);
	/* An empty file name is refused. */
	mk[0] = '\0';
	KT_CHECK(open_store(kt_tmpdir(), mk, &err) == NULL);
	KT_EQ_INT(err.code, KF_E_INVALID);
}

/* The tag of a key file as keyfs would write it, for ringkey "r/k". */
static int tag_of(const unsigned char master[32], const char *ringkey,
		  const char *text, char hex[KF_LOCAL_TAG_HEX])
{
	struct kf_err err = KF_ERR_INIT;
	json_t *root = json_loads(text, 0, NULL);
	int rc;

	KT_CHECK(root != NULL);
	rc = kf_local_keyfile_tag(master, ringkey, root, hex, &err);
	json_decref(root);
	return rc;
}

KT_TEST(local_keyfile_tag_covers_name_primary_and_versions)
{
	static const char *const base =
		"{\"primary\": 2, \"versions\": ["
		"{\"version\": 1, \"created\": 10, \"wrapped\": \"AAAA\"},"
		"{\"version\": 2, \"created\": 20, \"wrapped\": \"BBBB\"}]}";
	static const char *const changed[] = {
		/* primary set back to the old version */
		"{\"primary\": 1, \"versions\": ["
		"{\"version\": 1, \"created\": 10, \"wrapped\": \"AAAA\"},"
		"{\"version\": 2, \"created\": 20, \"wrapped\": \"BBBB\"}]}",
		/* the newest version dropped */
		"{\"primary\": 2, \"versions\": ["
		"{\"version\": 1, \"created\": 10, \"wrapped\": \"AAAA\"}]}",
		/* a wrapped key swapped */
		"{\"primary\": 2, \"versions\": ["
		"{\"version\": 1, \"created\": 10, \"wrapped\": \"BBBB\"},"
		"{\"version\": 2, \"created\": 20, \"wrapped\": \"AAAA\"}]}",
		/* a version renumbered */
		"{\"primary\": 2, \"versions\": ["
		"{\"version\": 3, \"created\": 10, \"wrapped\": \"AAAA\"},"
		"{\"version\": 2, \"created\": 20, \"wrapped\": \"BBBB\"}]}",
	};
	unsigned char master[32], other[32];
	char want[KF_LOCAL_TAG_HEX], got[KF_LOCAL_TAG_HEX];

	fixed_key(master, 1);
	fixed_key(other, 2);
	KT_EQ_INT(tag_of(master, "r/k", base, want), 0);
	KT_EQ_INT(strlen(want), 64);
	/* Deterministic; field order and extra fields do not matter. */
	KT_EQ_INT(tag_of(master, "r/k",
			 "{\"mac\": \"x\", \"versions\": ["
			 "{\"wrapped\": \"AAAA\", \"created\": 10, \"version\": 1},"
			 "{\"version\": 2, \"created\": 20, \"wrapped\": \"BBBB\"}],"
			 " \"primary\": 2}",
			 got),
		  0);
	KT_EQ_STR(got, want);
	for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
		KT_EQ_INT(tag_of(master, "r/k", changed[i], got), 0);
		KT_CHECK(strcmp(got, want) != 0);
	}
	/* Bound to the key's name and to the master key. */
	KT_EQ_INT(tag_of(master, "r/k2", base, got), 0);
	KT_CHECK(strcmp(got, want) != 0);
	KT_EQ_INT(tag_of(other, "r/k", base, got), 0);
	KT_CHECK(strcmp(got, want) != 0);
	/* A field of the wrong type is damage, not a tag. */
	KT_EQ_INT(tag_of(master, "r/k",
			 "{\"primary\": \"2\", \"versions\": []}", got),
		  -1);
}
