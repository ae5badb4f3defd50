/*
 * local/ keys and their versions: RING/KEY/.key.json holds each version's
 * AES-256 data key wrapped by the master key; rotation appends a version
 * and makes it primary.  Only wrapped keys are written to disk; a data key
 * is never logged and every stack copy is wiped.
 */
#include "local/keys.h"
#include "local/priv.h"

#include "core/json.h"
#include "core/log.h"
#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYFILE_MAX (8 << 20)
#define MAX_VERSIONS 100000
/* The key file's field holding its tag, and the label of the tag's key. */
#define TAG_FIELD "mac"
#define TAG_KEY_LABEL "keyfs-local-keyfile-tag-key-v1"

static int wrap_aad(char *out, size_t outlen, const char *ringkey, long version,
		    struct kf_err *err)
{
	if ((size_t)snprintf(out, outlen, "keyfs-local-wrap-v1:%s:%ld", ringkey,
			     version) >= outlen)
		return kf_fail(err, KF_E_INVALID, "key name too long");
	return 0;
}

int kf_local_key_wrap(const unsigned char master[32], const char *ringkey,
		      long version, const unsigned char dk[32],
		      unsigned char out[KF_LOCAL_WRAPPED_LEN],
		      struct kf_err *err)
{
	char aad[200];

	if (wrap_aad(aad, sizeof(aad), ringkey, version, err) < 0 ||
	    kf_rand_bytes(out, KF_GCM_IV, err) < 0)
		return -1;
	return kf_gcm_encrypt(master, out, aad, strlen(aad), dk, 32,
			      out + KF_GCM_IV, out + KF_GCM_IV + 32, err);
}

int kf_local_key_unwrap(const unsigned char master[32], const char *ringkey,
			long version,
			const unsigned char in[KF_LOCAL_WRAPPED_LEN],
			unsigned char dk[32], struct kf_err *err)
{
	char aad[200];

	if (wrap_aad(aad, sizeof(aad), ringkey, version, err) < 0)
		return -1;
	if (kf_gcm_decrypt(master, in, aad, strlen(aad), in + KF_GCM_IV, 32,
			   in + KF_GCM_IV + 32, dk, err) < 0)
		return kf_fail(err, KF_E_INTEGRITY,
			       "cannot unwrap key local/%s version %ld: wrong "
			       "master key or damaged key file",
			       ringkey, version);
	return 0;
}

int kf_local_key_exists(const struct local *l, const char *ringkey)
{
	char path[PATH_MAX];
	struct stat st;

	if (kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, path, sizeof(path),
			    NULL) < 0)
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The key file at path as an object with a "versions" array; NULL + err. */
static json_t *keyfile_parse(const char *path, const char *ringkey,
			     struct kf_err *err)
{
	struct kf_buf raw;
	json_t *root = NULL;

	kf_buf_init(&raw, KEYFILE_MAX);
	if (kf_store_read(path, KEYFILE_MAX, &raw, err) < 0) {
		if (err->code == KF_E_NOTFOUND)
			kf_fail(err, KF_E_NOTFOUND, "no key local/%s", ringkey);
		goto out;
	}
	root = kf_json_object(raw.data, raw.len);
	if (!json_is_array(json_object_get(root, "versions"))) {
		json_decref(root);
		root = NULL;
		kf_fail(err, KF_E_INTEGRITY, "key file %s is damaged", path);
	}
out:
	kf_buf_release(&raw);
	return root;
}

/*
 * The canonical text the tag covers: the key's name, its primary and
 * every version (number, creation time, wrapped key) in file order.  -1
 * when a field has the wrong type (a damaged file).
 */
static int keyfile_canon(const char *ringkey, json_t *root, struct kf_buf *out)
{
	json_t *prim = json_object_get(root, "primary"), *v;
	json_t *vers = json_object_get(root, "versions");
	size_t i;

	if (!json_is_integer(prim) || !json_is_array(vers) ||
	    kf_buf_addf(out, "keyfs-local-keyfile-v1\nkey %s\nprimary %lld\n",
			ringkey, (long long)json_integer_value(prim)) < 0)
		return -1;
	json_array_foreach(vers, i, v)
	{
		json_t *n = json_object_get(v, "version");
		json_t *c = json_object_get(v, "created");
		json_t *w = json_object_get(v, "wrapped");

		if (!json_is_integer(n) || !json_is_integer(c) ||
		    !json_is_string(w) ||
		    kf_buf_addf(out, "version %lld created %lld wrapped %s\n",
				(long long)json_integer_value(n),
				(long long)json_integer_value(c),
				json_string_value(w)) < 0)
			return -1;
	}
	return 0;
}

int kf_local_keyfile_tag(const unsigned char master[32], const char *ringkey,
			 json_t *root, char hex[KF_LOCAL_TAG_HEX],
			 struct kf_err *err)
{
	unsigned char mk[32], mac[32];
	struct kf_buf canon;
	int rc = -1;

	kf_buf_init(&canon, KEYFILE_MAX);
	if (keyfile_canon(ringkey, root, &canon) < 0) {
		kf_fail(err, KF_E_INTEGRITY, "key file of local/%s is damaged",
			ringkey);
		goto out;
	}
	/* A key of its own: the master key also wraps data keys. */
	kf_hmac_sha256(master, 32, TAG_KEY_LABEL, sizeof(TAG_KEY_LABEL) - 1,
		       mk);
	kf_hmac_sha256(mk, sizeof(mk), canon.data, canon.len, mac);
	kf_hex(mac, sizeof(mac), hex);
	rc = 0;
out:
	explicit_bzero(mk, sizeof(mk));
	explicit_bzero(mac, sizeof(mac));
	kf_buf_release(&canon);
	return rc;
}

/*
 * root's tag checked under the master key: KF_E_INTEGRITY (naming path)
 * when it does not match, or when it is missing from a store whose key
 * files all carry one.  Never repairs the file.
 */
static int keyfile_verify(struct local *l, const char *ringkey,
			  const char *path, json_t *root, struct kf_err *err)
{
	json_t *tagv = json_object_get(root, TAG_FIELD);
	const char *have = json_string_value(tagv); /* NULL: not a string */
	unsigned char master[32];
	char want[KF_LOCAL_TAG_HEX];
	int rc = -1;

	if (kf_local_master_get(l, 0, master, err) < 0)
		goto out;
	if (!tagv && !kf_local_master_tags_required(l)) {
		rc = 0; /* a store made before tags: tagged when writable */
		goto out;
	}
	if (!tagv) {
		kf_fail(err, KF_E_INTEGRITY,
			"key file %s has no authentication tag (this store's "
			"key files all carry one); keyfs will not use it",
			path);
		goto out;
	}
	if (kf_local_keyfile_tag(master, ringkey, root, want, err) < 0)
		goto out;
	if (!have || strlen(have) != KF_LOCAL_TAG_HEX - 1 ||
	    !kf_memeq(have, want, KF_LOCAL_TAG_HEX - 1)) {
		kf_fail(err, KF_E_INTEGRITY,
			"key file %s does not authenticate: its primary or "
			"versions were changed outside keyfs (or it belongs to "
			"another key); keyfs will not use it",
			path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(master, sizeof(master));
	return rc;
}

/* RING/KEY's authenticated key file; NULL + err. */
static json_t *keyfile_load(struct local *l, const char *ringkey,
			    struct kf_err *err)
{
	char path[PATH_MAX];
	json_t *root;

	if (kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, path, sizeof(path),
			    err) < 0)
		return NULL;
	root = keyfile_parse(path, ringkey, err);
	if (root && keyfile_verify(l, ringkey, path, root, err) < 0) {
		json_decref(root);
		root = NULL;
	}
	return root;
}

/* root with its tag set, as the text of a key file; NULL + err. */
static char *keyfile_text(const unsigned char master[32], const char *ringkey,
			  json_t *root, struct kf_err *err)
{
	char tag[KF_LOCAL_TAG_HEX], *text = NULL;

	if (kf_local_keyfile_tag(master, ringkey, root, tag, err) < 0)
		return NULL;
	if (json_object_set_new(root, TAG_FIELD, json_string(tag)) == 0)
		text = json_dumps(root, JSON_INDENT(1));
	if (!text)
		kf_fail(err, KF_E_NOMEM, "out of memory");
	return text;
}

/* One version's "wrapped" text -> its data key. */
static int unwrap_entry(struct local *l, const char *ringkey, long version,
			const char *b64, unsigned char key[32],
			struct kf_err *err)
{
	unsigned char master[32];
	struct kf_buf w;
	int rc = -1;

	kf_buf_init(&w, 128);
	if (!b64 || kf_base64_decode(b64, strlen(b64), &w) < 0 ||
	    w.len != KF_LOCAL_WRAPPED_LEN) {
		kf_fail(err, KF_E_INTEGRITY, "key file of local/%s is damaged",
			ringkey);
		goto out;
	}
	if (kf_local_master_get(l, 0, master, err) < 0)
		goto out;
	rc = kf_local_key_unwrap(master, ringkey, version,
				 (const unsigned char *)w.data, key, err);
	if (rc == 0) {
		struct kf_err cerr = KF_ERR_INIT;

		if (kf_local_master_proven(l, &cerr) < 0)
			kf_log(KF_LOG_WARN, "local: %s", cerr.msg);
	}
out:
	explicit_bzero(master, sizeof(master));
	kf_buf_release(&w);
	return rc;
}

int kf_local_key_get(struct local *l, const char *ringkey, long version,
		     unsigned char key[32], long *got, struct kf_err *err)
{
	json_t *root, *vers, *v;
	size_t i;
	int rc = -1;

	root = keyfile_load(l, ringkey, err);
	if (!root)
		return -1;
	if (version == 0)
		version = (long)json_integer_value(
			json_object_get(root, "primary"));
	vers = json_object_get(root, "versions");
	json_array_foreach(vers, i, v)
	{
		if (json_integer_value(json_object_get(v, "version")) !=
		    version)
			continue;
		rc = unwrap_entry(l, ringkey, version,
				  kf_json_str(v, "wrapped"), key, err);
		if (rc == 0)
			*got = version;
		goto out;
	}
	kf_fail(err, KF_E_INTEGRITY, "key local/%s has no version %ld", ringkey,
		version);
out:
	json_decref(root);
	return rc;
}

/* A fresh data key as version ver, wrapped: the entry for "versions". */
static json_t *new_version(struct local *l, const char *ringkey, long ver,
			   struct kf_err *err)
{
	unsigned char master[32], dk[32], blob[KF_LOCAL_WRAPPED_LEN];
	struct kf_buf b64;
	json_t *v = NULL;

	kf_buf_init(&b64, 256);
	if (kf_local_master_get(l, 1, master, err) < 0 ||
	    kf_rand_bytes(dk, sizeof(dk), err) < 0 ||
	    kf_local_key_wrap(master, ringkey, ver, dk, blob, err) < 0)
		goto out;
	if (kf_base64_encode(blob, sizeof(blob), &b64) < 0) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	v = json_pack("{s:i, s:I, s:s}", "version", (int)ver, "created",
		      (json_int_t)time(NULL), "wrapped", kf_buf_str(&b64));
	if (!v)
		kf_fail(err, KF_E_NOMEM, "out of memory");
out:
	explicit_bzero(master, sizeof(master));
	explicit_bzero(dk, sizeof(dk));
	kf_buf_release(&b64);
	return v;
}

static long next_version(json_t *vers)
{
	long next = 1;
	size_t i;
	json_t *it;

	json_array_foreach(vers, i, it)
	{
		long n = (long)json_integer_value(
			json_object_get(it, "version"));

		if (n >= next)
			next = n + 1;
	}
	return next;
}

int kf_local_key_add_locked(struct local *l, const char *ringkey, int create,
			    long *newver, struct kf_err *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	unsigned char master[32];
	json_t *root = NULL, *vers, *v;
	char *text = NULL;
	long next;
	int rc = -1;

	if (kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, path, sizeof(path),
			    err) < 0 ||
	    kf_local_fspath(l, ringkey, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	if (create) {
		root = json_pack("{s:i, s:[]}", "primary", 0, "versions");
		if (!root)
			return kf_fail(err, KF_E_NOMEM, "out of memory");
	} else {
		root = keyfile_load(l, ringkey, err);
		if (!root)
			return -1;
	}
	vers = json_object_get(root, "versions");
	next = next_version(vers);
	if (next > MAX_VERSIONS) {
		kf_fail(err, KF_E_PERM, "key local/%s has too many versions",
			ringkey);
		goto out;
	}
	v = new_version(l, ringkey, next, err);
	if (!v)
		goto out;
	if (json_array_append_new(vers, v) < 0 ||
	    json_object_set_new(root, "primary", json_integer(next)) < 0) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_local_master_get(l, 1, master, err) < 0)
		goto out;
	text = keyfile_text(master, ringkey, root, err);
	if (!text)
		goto out;
	if (kf_store_replace(dir, KF_LOCAL_KEYFILE, text, strlen(text), err) <
	    0)
		goto out;
	*newver = next;
	rc = 0;
out:
	explicit_bzero(master, sizeof(master));
	kf_json_free(text);
	json_decref(root);
	return rc;
}

static int is_tmp(const char *name)
{
	return strncmp(name, KF_STORE_TMP_PREFIX,
		       sizeof(KF_STORE_TMP_PREFIX) - 1) == 0;
}

/* Does the key directory hold anything but its key file (values)?  The
 * versions of removed values are gone; what .versions holds then (the
 * markers of removed names) goes with the key. */
static int holds_values(DIR *d)
{
	struct dirent *de;

	for (de = readdir(d); de; de = readdir(d)) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, KF_LOCAL_KEYFILE) &&
		    strcmp(de->d_name, KF_LOCAL_VERSIONS_DIR) &&
		    !is_tmp(de->d_name))
			return 1;
	}
	return 0;
}

int kf_local_key_remove_locked(struct local *l, const char *ringkey,
			       struct kf_err *err)
{
	char dir[PATH_MAX], kf[PATH_MAX], t[PATH_MAX];
	struct dirent *de;
	DIR *d = NULL;
	int rc = -1;

	if (!kf_local_key_exists(l, ringkey))
		return kf_fail(err, KF_E_NOTFOUND, "no such key");
	if (kf_local_fspath(l, ringkey, NULL, dir, sizeof(dir), err) < 0 ||
	    kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, kf, sizeof(kf), err) <
		    0)
		return -1;
	d = opendir(dir);
	if (!d)
		return kf_local_errno_fail(err, errno, "cannot list", ringkey);
	if (holds_values(d)) {
		kf_fail(err, KF_E_NOTEMPTY, "key local/%s still holds values",
			ringkey);
		goto out;
	}
	/* Only now is the key material destroyed: no value needs it. */
	if (kf_local_versions_drop_key(dir, ringkey, err) < 0)
		goto out;
	if (unlink(kf) < 0) {
		kf_local_errno_fail(err, errno, "cannot remove", ringkey);
		goto out;
	}
	rewinddir(d);
	for (de = readdir(d); de; de = readdir(d)) {
		if (is_tmp(de->d_name) &&
		    kf_local_fspath(l, ringkey, de->d_name, t, sizeof(t),
				    NULL) == 0)
			unlink(t);
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

/* Tag RING/KEY's key file when it has no tag yet (tagged ones are kept). */
static int tag_one(const struct local *l, const unsigned char master[32],
		   const char *ringkey, struct kf_err *err)
{
	char path[PATH_MAX], dir[PATH_MAX], *text = NULL;
	json_t *root;
	int rc = -1;

	if (kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, path, sizeof(path),
			    err) < 0 ||
	    kf_local_fspath(l, ringkey, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	root = keyfile_parse(path, ringkey, err);
	if (!root)
		return err->code == KF_E_NOTFOUND ? 0 : -1;
	if (json_object_get(root, TAG_FIELD)) {
		rc = 0;
		goto out;
	}
	text = keyfile_text(master, ringkey, root, err);
	if (text && kf_store_replace(dir, KF_LOCAL_KEYFILE, text, strlen(text),
				     err) == 0)
		rc = 0;
out:
	kf_json_free(text);
	json_decref(root);
	return rc;
}

/* Tag every key file of ring (a valid id); 0, or -1 at the first failure. */
static int tag_ring(const struct local *l, const unsigned char master[32],
		    const char *ring, struct kf_err *err)
{
	char dir[PATH_MAX], rk[KF_LOCAL_RINGKEY_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (kf_local_fspath(l, ring, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	d = opendir(dir);
	if (!d)
		return 0; /* not a directory: not a ring */
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!kf_local_valid_id(de->d_name, strlen(de->d_name)))
			continue;
		/* Both ids are at most 63 characters: it fits. */
		(void)snprintf(rk, sizeof(rk), "%s/%s", ring, de->d_name);
		rc = tag_one(l, master, rk, err);
	}
	closedir(d);
	return rc;
}

int kf_local_keys_tag_all(const struct local *l, const unsigned char master[32],
			  struct kf_err *err)
{
	struct dirent *de;
	DIR *d = opendir(l->root);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 :
					 kf_local_errno_fail(err, errno,
							     "cannot list", "");
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (kf_local_valid_id(de->d_name, strlen(de->d_name)))
			rc = tag_ring(l, master, de->d_name, err);
	}
	closedir(d);
	return rc;
}
