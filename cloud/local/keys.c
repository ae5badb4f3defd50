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

/* RING/KEY's key file as an object with a "versions" array; NULL + err. */
static json_t *keyfile_load(const struct local *l, const char *ringkey,
			    struct kf_err *err)
{
	char path[PATH_MAX];
	struct kf_buf raw;
	json_t *root = NULL;

	kf_buf_init(&raw, KEYFILE_MAX);
	if (kf_local_fspath(l, ringkey, KF_LOCAL_KEYFILE, path, sizeof(path),
			    err) < 0)
		goto out;
	if (kf_store_read(path, KEYFILE_MAX, &raw, err) < 0) {
		if (err->code == KF_E_NOTFOUND)
			kf_fail(err, KF_E_NOTFOUND, "no key local/%s", ringkey);
		goto out;
	}
	root = kf_json_object(raw.data, raw.len);
	if (!json_is_array(json_object_get(root, "versions"))) {
		json_decref(root);
		root = NULL;
		kf_fail(err, KF_E_INTEGRITY, "key file of local/%s is damaged",
			ringkey);
	}
out:
	kf_buf_release(&raw);
	return root;
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
	if (json_array_append_new(vers, v) == 0 &&
	    json_object_set_new(root, "primary", json_integer(next)) == 0)
		text = json_dumps(root, JSON_INDENT(1));
	if (!text) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_store_replace(dir, KF_LOCAL_KEYFILE, text, strlen(text), err) <
	    0)
		goto out;
	*newver = next;
	rc = 0;
out:
	kf_json_free(text);
	json_decref(root);
	return rc;
}

static int is_tmp(const char *name)
{
	return strncmp(name, KF_STORE_TMP_PREFIX,
		       sizeof(KF_STORE_TMP_PREFIX) - 1) == 0;
}

/* Does the key directory hold anything but its key file (values)? */
static int holds_values(DIR *d)
{
	struct dirent *de;

	for (de = readdir(d); de; de = readdir(d)) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, KF_LOCAL_KEYFILE) && !is_tmp(de->d_name))
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
