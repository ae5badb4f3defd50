/*
 * Unit tests for the local/ provider: the value format (cloud/local/
 * value.c), key wrapping (cloud/local/keys.c), and, through the vtable on
 * a store in the test's temporary directory, the key files, rotation and
 * the master key checks.  Failure messages never print key or value bytes.
 */
#include "kt.h"

#include "local/keys.h"
#include "local/priv.h"
#include "local/tree.h"
#include "local/value.h"

#include <dirent.h>
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

	KT_EQ_INT(kf_local_value_seal(key, ver, 0, path, secret_text,
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
	KT_EQ_INT(kf_local_value_seal(key, 1, 0, "r/k/e", "", 0, blob, &err),
		  0);
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

KT_TEST(local_value_numbered_format_binds_its_number)
{
	unsigned char key[32], a[BLOB_LEN], b[BLOB_LEN];
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct kf_local_hdr h;

	fixed_key(key, 8);
	KT_EQ_INT(kf_local_value_seal(key, 3, 7, "r/k/v", secret_text,
				      sizeof(secret_text) - 1, a, &err),
		  0);
	KT_EQ_INT(kf_local_value_seal(key, 3, 7, "r/k/v", secret_text,
				      sizeof(secret_text) - 1, b, &err),
		  0);
	KT_EQ_MEM(a, "KFL2", 4);
	KT_EQ_INT(kf_local_value_header(a, sizeof(a), &h), 0);
	KT_EQ_INT(h.keyver, 3);
	KT_EQ_INT(h.number, 7);
	/* The same number twice: the rest of the IV is fresh. */
	KT_CHECK(!kf_memeq(a + 12, b + 12, 8));
	KT_EQ_INT(kf_local_value_open(key, "r/k/v", a, sizeof(a), &s, &err), 0);
	KT_CHECK(s && s->len == sizeof(secret_text) - 1 &&
		 kf_memeq(s->data, secret_text, s->len));
	kf_secret_free(s);
	s = NULL;
	/* Renumbered (7 -> 8): refused. */
	a[11] = 8;
	KT_EQ_INT(kf_local_value_open(key, "r/k/v", a, sizeof(a), &s, &err),
		  -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	/* KFL1 is version 1. */
	seal(key, 3, "r/k/v", b);
	KT_EQ_INT(kf_local_value_header(b, sizeof(b), &h), 0);
	KT_EQ_INT(h.number, 1);
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
				 "t", KF_COMMIT_CREATE, NULL, &err),
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

/* ---- versions: the last KF_LOCAL_KEEP values of each name */

/* A store with the key r/k (the test's temporary directory). */
static struct kf_provider *versioned_store(void)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_provider *p = open_store(kt_tmpdir(), NULL, &err);

	KT_CHECK(p != NULL);
	if (!p)
		return NULL;
	KT_EQ_INT(p->ops->mkdir(p, "r", &err), 0);
	KT_EQ_INT(p->ops->mkdir(p, "r/k", &err), 0);
	return p;
}

/* "value N" for commit number n. */
static void nth(char *out, size_t n, int i)
{
	KT_CHECK((size_t)snprintf(out, n, "value %d", i) < n);
}

/* STORE/local/r/k/rel into out. */
static void store_file(char *out, size_t n, const char *rel)
{
	KT_CHECK((size_t)snprintf(out, n, "%s/local/r/k/%s", kt_tmpdir(), rel) <
		 n);
}

/* read_version of version: its code (0 when read), the value compared
 * with want (NULL: not compared), its version text and immutability. */
static int read_v(struct kf_provider *p, const char *path, const char *version,
		  const char *want, const char *want_version, int want_immut)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = (struct kf_secret *)1;
	int immutable = -1;

	if (p->ops->read_version(p, path, version, &s, &immutable, &err) < 0) {
		KT_CHECK(s == NULL);
		return (int)err.code;
	}
	KT_CHECK(s != NULL);
	if (!s)
		return -1;
	if (want)
		KT_CHECK(s->len == strlen(want) &&
			 kf_memeq(s->data, want, s->len));
	if (want_version)
		KT_EQ_STR(s->version, want_version);
	KT_EQ_INT(immutable, want_immut);
	kf_secret_free(s);
	return 0;
}

struct vlist {
	int n;
	char version[16][16];
	char labels[16][16];
	int64_t created[16];
};

static int vlist_add(void *ctx, const char *version, int64_t created,
		     const char *labels)
{
	struct vlist *l = ctx;

	if (l->n == 16)
		return 1;
	(void)snprintf(l->version[l->n], 16, "%s", version); /* test data */
	(void)snprintf(l->labels[l->n], 16, "%s", labels);
	l->created[l->n] = created;
	l->n++;
	return 0;
}

static int list_versions(struct kf_provider *p, const char *path,
			 struct vlist *l)
{
	struct kf_err err = KF_ERR_INIT;

	memset(l, 0, sizeof(*l));
	if (p->ops->versions(p, path, vlist_add, l, &err) < 0)
		return (int)err.code;
	return 0;
}

/* The stamp of path into out ("" and the code when it fails). */
static int stamp_of(struct kf_provider *p, const char *path, char *out,
		    size_t n)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf b;
	int rc;

	kf_buf_init(&b, 64);
	out[0] = '\0';
	rc = p->ops->stamp(p, path, &b, &err);
	if (rc == 0)
		(void)snprintf(out, n, "%s", kf_buf_str(&b)); /* short */
	kf_buf_release(&b);
	return rc < 0 ? (int)err.code : 0;
}

/* Entries (but . and ..) of the store directory r/k/rel. */
static int count_files(const char *rel)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	store_file(dir, sizeof(dir), rel);
	d = opendir(dir);
	KT_CHECK(d != NULL);
	if (!d)
		return -1;
	for (de = readdir(d); de; de = readdir(d))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

KT_TEST(local_versions_twelve_commits_keep_the_last_ten)
{
	struct kf_provider *p = versioned_store();
	struct kf_secret *s = NULL;
	struct kf_err err = KF_ERR_INIT;
	struct vlist l;
	char v[32], num[16];

	if (!p)
		return;
	for (int i = 1; i <= 12; i++) {
		nth(v, sizeof(v), i);
		commit(p, "r/k/v", v);
	}
	for (int i = 3; i <= 12; i++) {
		nth(v, sizeof(v), i);
		(void)snprintf(num, sizeof(num), "%d", i);
		KT_EQ_INT(read_v(p, "r/k/v", num, v, num, 1), 0);
	}
	/* Dropped, never made, not a number: not found. */
	static const char *const none[] = { "1",  "2",	       "13", "0",
					    "03", "abc",       "-3", "",
					    "3x", "4294967296" };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		KT_EQ_INT(read_v(p, "r/k/v", none[i], NULL, NULL, 0),
			  KF_E_NOTFOUND);
	KT_EQ_INT(read_v(p, "r/k/v", "latest", "value 12", "12", 0), 0);
	KT_EQ_INT(read_v(p, "r/k/v", NULL, "value 12", "12", 0), 0);
	KT_EQ_INT(p->ops->read(p, "r/k/v", &s, &err), 0);
	KT_CHECK(s && !strcmp(s->version, "12"));
	kf_secret_free(s);
	KT_EQ_INT(list_versions(p, "r/k/v", &l), 0);
	KT_EQ_INT(l.n, 10);
	for (int i = 0; i < l.n; i++) {
		(void)snprintf(num, sizeof(num), "%d", 12 - i);
		KT_EQ_STR(l.version[i], num);
		KT_EQ_STR(l.labels[i], i == 0 ? "latest" : "");
		KT_CHECK(l.created[i] > 1600000000000LL);
	}
	/* On disk: the nine older ones beside the current file. */
	KT_EQ_INT(count_files(".versions/v"), 9);
	/* A directory holds no value; what is not there is not found. */
	KT_EQ_INT(read_v(p, "r/k", "3", NULL, NULL, 0), KF_E_ISDIR);
	KT_EQ_INT(read_v(p, "r/nokey", "3", NULL, NULL, 0), KF_E_NOTFOUND);
	KT_EQ_INT(read_v(p, "r/k/none", "1", NULL, NULL, 0), KF_E_NOTFOUND);
	KT_EQ_INT(list_versions(p, "r/k/none", &l), KF_E_NOTFOUND);
	KT_EQ_INT(stamp_of(p, "r/k/none", num, sizeof(num)), KF_E_NOTFOUND);
	p->ops->free(p);
}

KT_TEST(local_versions_stamp_changes_exactly_on_commits)
{
	struct kf_provider *p = versioned_store();
	struct kf_err err = KF_ERR_INIT;
	struct kf_secret *s = NULL;
	struct kf_attr a;
	char s1[16], s2[16];
	unsigned char big[KF_LOCAL_MAX_VALUE + 1];

	if (!p)
		return;
	commit(p, "r/k/v", "one");
	KT_EQ_INT(stamp_of(p, "r/k/v", s1, sizeof(s1)), 0);
	KT_EQ_STR(s1, "1");
	/* Reads, attributes, a failed commit, another name: no change. */
	KT_EQ_INT(p->ops->read(p, "r/k/v", &s, &err), 0);
	KT_CHECK(s && !strcmp(s->version, s1));
	kf_secret_free(s);
	KT_EQ_INT(p->ops->getattr(p, "r/k/v", &a, &err), 0);
	KT_EQ_INT(a.size, 3);
	memset(big, 'x', sizeof(big));
	KT_EQ_INT(p->ops->commit(p, "r/k/v", big, sizeof(big), "t", 0, NULL,
				 &err),
		  -1);
	commit(p, "r/k/w", "other");
	KT_EQ_INT(stamp_of(p, "r/k/v", s2, sizeof(s2)), 0);
	KT_EQ_STR(s2, s1);
	/* A commit, even of the same bytes, is a new version. */
	commit(p, "r/k/v", "one");
	KT_EQ_INT(stamp_of(p, "r/k/v", s2, sizeof(s2)), 0);
	KT_EQ_STR(s2, "2");
	KT_EQ_INT(p->ops->read(p, "r/k/v", &s, &err), 0);
	KT_CHECK(s && !strcmp(s->version, s2));
	kf_secret_free(s);
	KT_EQ_INT(p->ops->getattr(p, "r/k/v", &a, &err), 0);
	KT_EQ_INT(a.size, 3);
	p->ops->free(p);
}

/* Copy the store file from (under r/k) over to. */
static void copy_store_file(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX], buf[4096];
	ssize_t n;
	int in, out;

	store_file(a, sizeof(a), from);
	store_file(b, sizeof(b), to);
	in = open(a, O_RDONLY | O_CLOEXEC);
	KT_CHECK(in >= 0);
	out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	KT_CHECK(out >= 0);
	if (in >= 0 && out >= 0) {
		n = read(in, buf, sizeof(buf));
		KT_CHECK(n > 0 && write(out, buf, (size_t)n) == n);
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
}

KT_TEST(local_versions_are_bound_to_name_and_number)
{
	struct kf_provider *p = versioned_store();
	char v[32];

	if (!p)
		return;
	for (int i = 1; i <= 5; i++) {
		nth(v, sizeof(v), i);
		commit(p, "r/k/v", v);
		commit(p, "r/k/w", v);
	}
	/* Version 2's file as version 3 of the same name. */
	copy_store_file(".versions/v/2", ".versions/v/3");
	KT_EQ_INT(read_v(p, "r/k/v", "3", NULL, NULL, 0), KF_E_INTEGRITY);
	KT_EQ_INT(read_v(p, "r/k/v", "2", "value 2", "2", 1), 0);
	/* v's version 4 as w's version 4: bound to the other name. */
	copy_store_file(".versions/v/4", ".versions/w/4");
	KT_EQ_INT(read_v(p, "r/k/w", "4", NULL, NULL, 0), KF_E_INTEGRITY);
	KT_EQ_INT(read_v(p, "r/k/w", "3", "value 3", "3", 1), 0);
	p->ops->free(p);
}

KT_TEST(local_versions_go_with_rm_and_numbers_are_never_reused)
{
	struct kf_provider *p = versioned_store();
	struct kf_err err = KF_ERR_INIT;
	struct vlist l;
	char fp[PATH_MAX], num[16], v[32];
	struct stat st;

	if (!p)
		return;
	for (int i = 1; i <= 4; i++) {
		nth(v, sizeof(v), i);
		commit(p, "r/k/v", v);
	}
	KT_EQ_INT(p->ops->unlink(p, "r/k/v", &err), 0);
	for (int i = 1; i <= 4; i++) {
		char rel[32];

		(void)snprintf(num, sizeof(num), "%d", i);
		(void)snprintf(rel, sizeof(rel), ".versions/v/%d", i);
		store_file(fp, sizeof(fp), rel);
		KT_CHECK(lstat(fp, &st) < 0);
		KT_EQ_INT(read_v(p, "r/k/v", num, NULL, NULL, 0),
			  KF_E_NOTFOUND);
	}
	KT_EQ_INT(list_versions(p, "r/k/v", &l), KF_E_NOTFOUND);
	KT_EQ_INT(stamp_of(p, "r/k/v", num, sizeof(num)), KF_E_NOTFOUND);
	/* Made again, the name goes on counting: version 5 is its only. */
	commit(p, "r/k/v", "again");
	KT_EQ_INT(stamp_of(p, "r/k/v", num, sizeof(num)), 0);
	KT_EQ_STR(num, "5");
	KT_EQ_INT(list_versions(p, "r/k/v", &l), 0);
	KT_EQ_INT(l.n, 1);
	KT_EQ_STR(l.version[0], "5");
	KT_EQ_INT(read_v(p, "r/k/v", "4", NULL, NULL, 0), KF_E_NOTFOUND);
	/* The key goes once its values do, and its versions with it. */
	KT_EQ_INT(p->ops->rmdir(p, "r/k", &err), -1);
	KT_EQ_INT(err.code, KF_E_NOTEMPTY);
	KT_EQ_INT(p->ops->unlink(p, "r/k/v", &err), 0);
	KT_EQ_INT(p->ops->rmdir(p, "r/k", &err), 0);
	store_file(fp, sizeof(fp), "");
	KT_CHECK(lstat(fp, &st) < 0);
	p->ops->free(p);
}

/* The data key of r/k's primary version (the test wipes it). */
static void primary_key(struct kf_provider *p, unsigned char key[32], long *ver)
{
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_local_key_get(p->priv, "r/k", 0, key, ver, &err), 0);
}

KT_TEST(local_versions_a_value_from_before_versions_is_version_1)
{
	struct kf_provider *p = versioned_store();
	unsigned char key[32], blob[64];
	struct kf_err err = KF_ERR_INIT;
	struct vlist l;
	char fp[PATH_MAX], num[16];
	long ver = 0;
	int fd;

	if (!p)
		return;
	/* A KFL1 file as an older keyfs wrote it. */
	primary_key(p, key, &ver);
	KT_EQ_INT(kf_local_value_seal(key, (uint32_t)ver, 0, "r/k/old", "old",
				      3, blob, &err),
		  0);
	explicit_bzero(key, sizeof(key));
	store_file(fp, sizeof(fp), "old");
	fd = open(fp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	KT_CHECK(fd >= 0);
	if (fd >= 0) {
		KT_EQ_INT(write(fd, blob, 3 + KF_LOCAL_OVERHEAD),
			  3 + KF_LOCAL_OVERHEAD);
		close(fd);
	}
	check_value(p, "r/k/old", "old");
	KT_EQ_INT(read_v(p, "r/k/old", NULL, "old", "1", 0), 0);
	KT_EQ_INT(stamp_of(p, "r/k/old", num, sizeof(num)), 0);
	KT_EQ_STR(num, "1");
	KT_EQ_INT(list_versions(p, "r/k/old", &l), 0);
	KT_EQ_INT(l.n, 1);
	commit(p, "r/k/old", "new");
	KT_EQ_INT(read_v(p, "r/k/old", "1", "old", "1", 1), 0);
	KT_EQ_INT(read_v(p, "r/k/old", "2", "new", "2", 1), 0);
	KT_EQ_INT(list_versions(p, "r/k/old", &l), 0);
	KT_EQ_INT(l.n, 2);
	KT_EQ_STR(l.version[0], "2");
	KT_EQ_STR(l.version[1], "1");
	/* A KFL1 file is version 1 only: as version 2 it is refused. */
	copy_store_file(".versions/old/1", ".versions/old/2");
	commit(p, "r/k/old", "newer");
	KT_EQ_INT(read_v(p, "r/k/old", "2", NULL, NULL, 0), KF_E_INTEGRITY);
	p->ops->free(p);
}

/* Link STORE/local/r/k/from as to (a step a crashed commit made). */
static void link_store_file(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	store_file(a, sizeof(a), from);
	store_file(b, sizeof(b), to);
	KT_EQ_INT(link(a, b), 0);
}

KT_TEST(local_versions_survive_a_crash_at_each_step)
{
	struct kf_provider *p = versioned_store();
	struct kf_err err = KF_ERR_INIT;
	struct vlist l;
	char fp[PATH_MAX], num[16];
	struct stat st;
	int fd;

	if (!p)
		return;
	commit(p, "r/k/v", "value 1");
	commit(p, "r/k/v", "value 2");
	/* Stopped after keeping the current file, before the rename, with
	 * temporary files left in the key and in the versions. */
	link_store_file("v", ".versions/v/2");
	store_file(fp, sizeof(fp), ".versions/v/.kf-tmp.crash1");
	fd = open(fp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	KT_CHECK(fd >= 0 && close(fd) == 0);
	store_file(fp, sizeof(fp), ".kf-tmp.crash2");
	fd = open(fp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	KT_CHECK(fd >= 0 && close(fd) == 0);
	KT_EQ_INT(list_versions(p, "r/k/v", &l), 0);
	KT_EQ_INT(l.n, 2); /* version 2 once: the current file */
	KT_EQ_INT(read_v(p, "r/k/v", "2", "value 2", "2", 1), 0);
	KT_EQ_INT(read_v(p, "r/k/v", "1", "value 1", "1", 1), 0);
	commit(p, "r/k/v", "value 3");
	KT_EQ_INT(stamp_of(p, "r/k/v", num, sizeof(num)), 0);
	KT_EQ_STR(num, "3");
	KT_EQ_INT(read_v(p, "r/k/v", "2", "value 2", "2", 1), 0);
	store_file(fp, sizeof(fp), ".versions/v/.kf-tmp.crash1");
	KT_CHECK(lstat(fp, &st) < 0); /* cleared by the commit */
	/* Stopped in a removal after its marker: the value is still there
	 * and the next commit goes on past the marker. */
	store_file(fp, sizeof(fp), ".versions/v/3-removed");
	fd = open(fp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	KT_CHECK(fd >= 0 && close(fd) == 0);
	KT_EQ_INT(read_v(p, "r/k/v", NULL, "value 3", "3", 0), 0);
	commit(p, "r/k/v", "value 4");
	KT_EQ_INT(list_versions(p, "r/k/v", &l), 0);
	KT_EQ_INT(l.n, 4);
	KT_EQ_STR(l.version[0], "4");
	KT_CHECK(lstat(fp, &st) < 0);
	/* Stopped before dropping the oldest: never shown past ten. */
	for (int i = 5; i <= 10; i++)
		commit(p, "r/k/v", "more");
	link_store_file(".versions/v/2", ".versions/v/0");
	KT_EQ_INT(read_v(p, "r/k/v", "1", "value 1", "1", 1), 0);
	link_store_file(".versions/v/1", ".versions/v/.keep");
	commit(p, "r/k/v", "value 11");
	link_store_file(".versions/v/.keep", ".versions/v/1");
	KT_EQ_INT(read_v(p, "r/k/v", "1", NULL, NULL, 0), KF_E_NOTFOUND);
	KT_EQ_INT(list_versions(p, "r/k/v", &l), 0);
	KT_EQ_INT(l.n, 10);
	KT_EQ_STR(l.version[9], "2");
	KT_EQ_INT(p->ops->unlink(p, "r/k/v", &err), 0);
	p->ops->free(p);
}
