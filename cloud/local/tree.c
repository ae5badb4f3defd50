/*
 * The embedded `local` provider.  Layout under STORE/local:
 *   RING/                     a key ring (directory)
 *   RING/KEY/.key.json        key versions: AES-256 data keys, each wrapped
 *                             (AES-256-GCM) by the master key
 *   RING/KEY/NAME             a value: "KFL1" | version (u32 BE) | IV |
 *                             ciphertext | tag, AAD = header + path, so a
 *                             file moved to another name fails to decrypt
 * Files are replaced atomically (temp file, fsync, rename, fsync dir).  It
 * never writes plaintext to disk and never logs a value or a key.
 */
#include "local/tree.h"

#include "core/crypto.h"
#include "core/log.h"
#include "core/store.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_MAX_VALUE 65536
#define HDR_LEN 20		/* magic 4 + version 4 + IV 12 */
#define OVERHEAD (HDR_LEN + KF_GCM_TAG)
#define KEYFILE ".key.json"
#define MAX_VERSIONS 100000

struct local {
	char *root;		/* STORE/local */
	char *master_path;	/* the master key file */
	int read_only;
	pthread_mutex_t master_lock;
	struct kf_secret *master;	/* protected by master_lock; NULL until
					 * first use */
	/*
	 * Structural changes (mkdir/rmdir of keys, rotation) take it for
	 * writing; value reads and commits take it for reading, so a key
	 * cannot vanish under a commit.
	 */
	pthread_rwlock_t tree_lock;
};

static const struct kf_provider_opt local_opts[] = {
	{ "local_master_key", "FILE",
	  "master key wrapping local/ keys (default: STORE/master.key, "
	  "created 0600 on first use)" },
	{ NULL, NULL, NULL },
};

/* Ring and key ids: [A-Za-z0-9_-]{1,63}, as Cloud KMS. */
static int valid_id(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Value names: [A-Za-z0-9._+=@-]{1,255}, not starting with '.'. */
static int valid_name(const char *s, size_t n)
{
	if (n < 1 || n > 255 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._+=@-", c)))
			return 0;
	}
	return 1;
}

/* Split path into at most 3 components; returns the count, or -1 when
 * deeper.  Components point into path; lengths in len[]. */
struct parts {
	const char *c[3];
	size_t len[3];
	int n;
};

static int split(const char *path, struct parts *pp)
{
	const char *p = path;

	pp->n = 0;
	if (!*p)
		return 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (pp->n == 3)
			return -1;
		pp->c[pp->n] = p;
		pp->len[pp->n] = n;
		pp->n++;
		p += n;
		if (*p == '/')
			p++;
	}
	return pp->n;
}

/* path -> parts with validation of what exists at each level. */
static int parse_path(const char *path, struct parts *pp, int strict,
		      struct kf_err *err)
{
	if (split(path, pp) < 0)
		return kf_fail(err, strict ? KF_E_PERM : KF_E_NOTFOUND,
			       "local/ has only RING/KEY/NAME levels");
	if (pp->n >= 1 && !valid_id(pp->c[0], pp->len[0]))
		return kf_fail(err, strict ? KF_E_INVALID : KF_E_NOTFOUND,
			       "invalid key ring id (use [A-Za-z0-9_-], "
			       "1-63 characters)");
	if (pp->n >= 2 && !valid_id(pp->c[1], pp->len[1]))
		return kf_fail(err, strict ? KF_E_INVALID : KF_E_NOTFOUND,
			       "invalid key id (use [A-Za-z0-9_-], "
			       "1-63 characters)");
	if (pp->n == 3 && !valid_name(pp->c[2], pp->len[2]))
		return kf_fail(err, strict ? KF_E_INVALID : KF_E_NOTFOUND,
			       "invalid value name (use [A-Za-z0-9._+=@-], "
			       "1-255 characters, not starting with '.')");
	return 0;
}

static int fspath(const struct local *l, const char *rel, const char *leaf,
		  char *out, size_t outlen, struct kf_err *err)
{
	int n = snprintf(out, outlen, "%s%s%s%s%s", l->root, *rel ? "/" : "",
			 rel, leaf ? "/" : "", leaf ? leaf : "");

	if (n < 0 || (size_t)n >= outlen)
		return kf_fail(err, KF_E_INVALID, "path too long");
	return 0;
}

static int errno_fail(struct kf_err *err, int e, const char *what,
		      const char *rel)
{
	enum kf_code c = KF_E_IO;

	switch (e) {
	case ENOENT:
		c = KF_E_NOTFOUND;
		break;
	case EEXIST:
		c = KF_E_EXISTS;
		break;
	case ENOTEMPTY:
		c = KF_E_NOTEMPTY;
		break;
	case EACCES:
	case EPERM:
		c = KF_E_DENIED;
		break;
	case ENOSPC:
	case EDQUOT:
		c = KF_E_IO;
		break;
	case EROFS:
		c = KF_E_ROFS;
		break;
	case ENOMEM:
		c = KF_E_NOMEM;
		break;
	case ENOTDIR:
		c = KF_E_NOTDIR;
		break;
	}
	return kf_fail(err, c, "%s local/%s: %s", what, rel, strerror(e));
}

/* The master key: loaded, or created 0600 on first use when create. */
static int master_get(struct local *l, int create, unsigned char key[32],
		      struct kf_err *err)
{
	struct kf_buf b;
	struct stat st;
	int rc = -1, fd = -1;

	kf_buf_init_sensitive(&b, 64);
	pthread_mutex_lock(&l->master_lock);
	if (l->master)
		goto have;
	fd = open(l->master_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		unsigned char fresh[32];

		if (l->read_only) {
			kf_fail(err, KF_E_ROFS, "read-only: no master key yet");
			goto out;
		}
		if (kf_rand_bytes(fresh, sizeof(fresh), err) < 0)
			goto out;
		fd = open(l->master_path,
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd < 0 || write(fd, fresh, 32) != 32 || fsync(fd) < 0) {
			explicit_bzero(fresh, sizeof(fresh));
			kf_fail(err, KF_E_IO, "cannot create master key file %s: %s",
				l->master_path, strerror(errno));
			if (fd >= 0)
				unlink(l->master_path);
			goto out;
		}
		close(fd);
		fd = -1;
		l->master = kf_secret_dup(fresh, 32);
		explicit_bzero(fresh, sizeof(fresh));
		if (!l->master) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		kf_log(KF_LOG_INFO, "created master key file %s", l->master_path);
		goto have;
	}
	if (fd < 0) {
		kf_fail(err, errno == ENOENT ? KF_E_NOTFOUND : KF_E_IO,
			"cannot open master key file %s: %s", l->master_path,
			strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		kf_fail(err, KF_E_IO, "master key %s is not a regular file",
			l->master_path);
		goto out;
	}
	if (st.st_mode & 077) {
		kf_fail(err, KF_E_DENIED,
			"master key file %s is accessible by others (mode %04o); "
			"chmod 600 it", l->master_path,
			(unsigned)(st.st_mode & 07777));
		goto out;
	}
	close(fd);
	fd = -1;
	if (kf_store_read(l->master_path, 64, &b, err) < 0)
		goto out;
	if (b.len != 32) {
		kf_fail(err, KF_E_INVALID,
			"master key file %s must hold exactly 32 bytes",
			l->master_path);
		goto out;
	}
	l->master = kf_secret_dup(b.data, 32);
	if (!l->master) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
have:
	memcpy(key, l->master->data, 32);
	rc = 0;
out:
	pthread_mutex_unlock(&l->master_lock);
	if (fd >= 0)
		close(fd);
	kf_buf_release(&b);
	return rc;
}

static void wrap_aad(char *out, size_t outlen, const char *ringkey,
		     long version)
{
	snprintf(out, outlen, "keyfs-local-wrap-v1:%s:%ld", ringkey, version);
}

/*
 * Load RING/KEY's key file; return the data key of `version` (0 = the
 * primary) in key, and the version number in *got.
 */
static int data_key(struct local *l, const char *ringkey, long version,
		    unsigned char key[32], long *got, struct kf_err *err)
{
	char path[PATH_MAX], aad[200];
	unsigned char master[32], *w;
	struct kf_buf raw, wrapped;
	json_t *root = NULL, *vers, *v;
	json_error_t jerr;
	size_t i;
	int rc = -1;

	kf_buf_init(&raw, 8 << 20);
	kf_buf_init(&wrapped, 128);
	if (fspath(l, ringkey, KEYFILE, path, sizeof(path), err) < 0)
		goto out;
	if (kf_store_read(path, 8 << 20, &raw, err) < 0) {
		if (err->code == KF_E_NOTFOUND)
			kf_fail(err, KF_E_NOTFOUND, "no key local/%s", ringkey);
		goto out;
	}
	root = json_loadb(raw.data, raw.len, 0, &jerr);
	if (!root) {
		kf_fail(err, KF_E_INTEGRITY, "key file of local/%s is damaged",
			ringkey);
		goto out;
	}
	if (version == 0)
		version = (long)json_integer_value(json_object_get(root, "primary"));
	vers = json_object_get(root, "versions");
	json_array_foreach(vers, i, v) {
		const char *s;

		if (json_integer_value(json_object_get(v, "version")) != version)
			continue;
		s = json_string_value(json_object_get(v, "wrapped"));
		if (!s || kf_base64_decode(s, strlen(s), &wrapped) < 0 ||
		    wrapped.len != KF_GCM_IV + 32 + KF_GCM_TAG) {
			kf_fail(err, KF_E_INTEGRITY,
				"key file of local/%s is damaged", ringkey);
			goto out;
		}
		if (master_get(l, 0, master, err) < 0)
			goto out;
		wrap_aad(aad, sizeof(aad), ringkey, version);
		w = (unsigned char *)wrapped.data;
		if (kf_gcm_decrypt(master, w, aad, strlen(aad), w + KF_GCM_IV,
				   32, w + KF_GCM_IV + 32, key, err) < 0) {
			kf_fail(err, KF_E_INTEGRITY,
				"cannot unwrap key local/%s version %ld: wrong "
				"master key or damaged key file", ringkey, version);
			goto out;
		}
		*got = version;
		rc = 0;
		goto out;
	}
	kf_fail(err, KF_E_INTEGRITY, "key local/%s has no version %ld",
		ringkey, version);
out:
	explicit_bzero(master, sizeof(master));
	json_decref(root);
	kf_buf_release(&raw);
	kf_buf_release(&wrapped);
	return rc;
}

/*
 * Add a new version to RING/KEY (creating the key file when absent) and
 * make it primary.  Caller holds tree_lock for writing.
 */
static int add_version_locked(struct local *l, const char *ringkey,
			      int create, long *newver, struct kf_err *err)
{
	char path[PATH_MAX], dir[PATH_MAX], aad[200];
	unsigned char master[32], dk[32], blob[KF_GCM_IV + 32 + KF_GCM_TAG];
	struct kf_buf raw, b64;
	json_t *root = NULL, *vers, *v = NULL;
	json_error_t jerr;
	char *text = NULL;
	long next = 1;
	size_t i;
	json_t *it;
	int rc = -1;

	kf_buf_init(&raw, 8 << 20);
	kf_buf_init(&b64, 256);
	if (fspath(l, ringkey, KEYFILE, path, sizeof(path), err) < 0 ||
	    fspath(l, ringkey, NULL, dir, sizeof(dir), err) < 0)
		goto out;
	if (create) {
		root = json_pack("{s:i, s:[]}", "primary", 0, "versions");
	} else {
		if (kf_store_read(path, 8 << 20, &raw, err) < 0)
			goto out;
		root = json_loadb(raw.data, raw.len, 0, &jerr);
	}
	vers = json_object_get(root, "versions");
	if (!root || !json_is_array(vers)) {
		kf_fail(err, KF_E_INTEGRITY, "key file of local/%s is damaged",
			ringkey);
		goto out;
	}
	json_array_foreach(vers, i, it) {
		long n = (long)json_integer_value(json_object_get(it, "version"));

		if (n >= next)
			next = n + 1;
	}
	if (next > MAX_VERSIONS) {
		kf_fail(err, KF_E_PERM, "key local/%s has too many versions",
			ringkey);
		goto out;
	}
	if (master_get(l, 1, master, err) < 0 ||
	    kf_rand_bytes(dk, sizeof(dk), err) < 0 ||
	    kf_rand_bytes(blob, KF_GCM_IV, err) < 0)
		goto out;
	wrap_aad(aad, sizeof(aad), ringkey, next);
	if (kf_gcm_encrypt(master, blob, aad, strlen(aad), dk, 32,
			   blob + KF_GCM_IV, blob + KF_GCM_IV + 32, err) < 0 ||
	    kf_base64_encode(blob, sizeof(blob), &b64) < 0)
		goto out;
	v = json_pack("{s:i, s:I, s:s}", "version", (int)next, "created",
		      (json_int_t)time(NULL), "wrapped", kf_buf_str(&b64));
	if (!v || json_array_append_new(vers, v) < 0 ||
	    json_object_set_new(root, "primary", json_integer(next)) < 0) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	text = json_dumps(root, JSON_INDENT(1));
	if (!text) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_store_replace(dir, KEYFILE, text, strlen(text), err) < 0)
		goto out;
	*newver = next;
	rc = 0;
out:
	explicit_bzero(master, sizeof(master));
	explicit_bzero(dk, sizeof(dk));
	kf_json_free(text);
	json_decref(root);
	kf_buf_release(&raw);
	kf_buf_release(&b64);
	return rc;
}

static void ringkey_of(const struct parts *pp, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.*s/%.*s", (int)pp->len[0], pp->c[0],
		 (int)pp->len[1], pp->c[1]);
}

static int key_exists(const struct local *l, const char *ringkey)
{
	char path[PATH_MAX];
	struct stat st;

	if (fspath(l, ringkey, KEYFILE, path, sizeof(path), NULL) < 0)
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int local_getattr(struct kf_provider *p, const char *path,
			 struct kf_attr *a, struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX];
	struct stat st;

	memset(a, 0, sizeof(*a));
	if (parse_path(path, &pp, 0, err) < 0)
		return -1;
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	if (lstat(fp, &st) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	a->mtime = st.st_mtime;
	if (pp.n <= 1) {
		if (!S_ISDIR(st.st_mode))
			return kf_fail(err, KF_E_NOTFOUND, "no such key ring");
		a->kind = KF_KIND_DIR;
		return 0;
	}
	if (pp.n == 2) {
		if (!S_ISDIR(st.st_mode) || !key_exists(l, path))
			return kf_fail(err, KF_E_NOTFOUND, "no such key");
		a->kind = KF_KIND_DIR;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	a->kind = KF_KIND_FILE;
	a->size_known = 1;
	a->size = st.st_size >= OVERHEAD ? (uint64_t)st.st_size - OVERHEAD : 0;
	return 0;
}

static int local_list(struct kf_provider *p, const char *path,
		      const char *page, kf_list_fn fn, void *ctx,
		      struct kf_buf *next, struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	(void)page;
	(void)next;	/* one page: a local directory is small */
	if (parse_path(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n == 3)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (pp.n == 2 && !key_exists(l, path))
		return kf_fail(err, KF_E_NOTFOUND, "no such key");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	d = opendir(fp);
	if (!d)
		return errno_fail(err, errno, "cannot list", path);
	while (rc == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char child[PATH_MAX];
		struct kf_attr a;
		struct kf_err e2 = KF_ERR_INIT;

		if (pp.n < 2 ? !valid_id(de->d_name, n)
			     : !valid_name(de->d_name, n))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", path,
			     *path ? "/" : "", de->d_name) >= (int)sizeof(child))
			continue;
		if (local_getattr(p, child, &a, &e2) < 0)
			continue;	/* not a ring/key/value: skip */
		rc = fn(ctx, de->d_name, &a);
	}
	closedir(d);
	return 0;
}

static int local_mkdir(struct kf_provider *p, const char *path,
		       struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX], parent[PATH_MAX];
	struct stat st;
	long ver;
	int rc = -1;

	if (parse_path(path, &pp, 1, err) < 0)
		return -1;
	if (pp.n == 0)
		return kf_fail(err, KF_E_EXISTS, "exists");
	if (pp.n == 3)
		return kf_fail(err, KF_E_PERM,
			       "local/RING/KEY holds values, not directories");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	pthread_rwlock_wrlock(&l->tree_lock);
	if (pp.n == 2) {
		char ring[64];

		snprintf(ring, sizeof(ring), "%.*s", (int)pp.len[0], pp.c[0]);
		if (fspath(l, ring, NULL, parent, sizeof(parent), err) < 0)
			goto out;
		if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
			kf_fail(err, KF_E_NOTFOUND, "no such key ring");
			goto out;
		}
	}
	if (mkdir(fp, 0700) < 0) {
		errno_fail(err, errno, "cannot create", path);
		goto out;
	}
	if (pp.n == 2 && add_version_locked(l, path, 1, &ver, err) < 0) {
		rmdir(fp);
		goto out;
	}
	rc = 0;
out:
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

static int local_rmdir(struct kf_provider *p, const char *path,
		       struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX], kf[PATH_MAX];
	DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	if (parse_path(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n == 0)
		return kf_fail(err, KF_E_PERM, "cannot remove local/");
	if (pp.n == 3)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	pthread_rwlock_wrlock(&l->tree_lock);
	if (pp.n == 2) {
		if (!key_exists(l, path)) {
			kf_fail(err, KF_E_NOTFOUND, "no such key");
			goto out;
		}
		d = opendir(fp);
		if (!d) {
			errno_fail(err, errno, "cannot list", path);
			goto out;
		}
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    strcmp(de->d_name, KEYFILE) &&
			    strncmp(de->d_name, KF_STORE_TMP_PREFIX,
				    sizeof(KF_STORE_TMP_PREFIX) - 1)) {
				kf_fail(err, KF_E_NOTEMPTY,
					"key local/%s still holds values", path);
				goto out;
			}
		}
		if (fspath(l, path, KEYFILE, kf, sizeof(kf), err) < 0)
			goto out;
		/* Only now is the key material destroyed: no value needs it. */
		if (unlink(kf) < 0) {
			errno_fail(err, errno, "cannot remove", path);
			goto out;
		}
		rewinddir(d);
		while ((de = readdir(d))) {
			char t[PATH_MAX];

			if (!strncmp(de->d_name, KF_STORE_TMP_PREFIX,
				    sizeof(KF_STORE_TMP_PREFIX) - 1) &&
			    fspath(l, path, de->d_name, t, sizeof(t), NULL) == 0)
				unlink(t);
		}
	}
	if (rmdir(fp) < 0) {
		errno_fail(err, errno, "cannot remove", path);
		goto out;
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

static int local_unlink(struct kf_provider *p, const char *path,
			struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX], dir[PATH_MAX];
	int rc = -1;

	if (parse_path(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s", fp);
	*strrchr(dir, '/') = '\0';
	pthread_rwlock_rdlock(&l->tree_lock);
	if (unlink(fp) < 0) {
		errno_fail(err, errno, "cannot remove", path);
		goto out;
	}
	kf_store_sync_dir(dir);
	rc = 0;
out:
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

static int local_can_create(struct kf_provider *p, const char *path,
			    struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char rk[200];

	if (parse_path(path, &pp, 1, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_PERM,
			       "values live in local/RING/KEY/NAME; use mkdir "
			       "for rings and keys");
	ringkey_of(&pp, rk, sizeof(rk));
	if (!key_exists(l, rk))
		return kf_fail(err, KF_E_NOTFOUND, "no such key local/%s", rk);
	return 0;
}

static void make_aad(unsigned char *aad, size_t *aadlen, const void *hdr,
		     const char *path)
{
	size_t n = strlen(path);

	memcpy(aad, hdr, HDR_LEN);
	memcpy(aad + HDR_LEN, "keyfs-local-v1:", 15);
	memcpy(aad + HDR_LEN + 15, path, n);
	*aadlen = HDR_LEN + 15 + n;
}

static int local_read(struct kf_provider *p, const char *path,
		      struct kf_secret **value, struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX], rk[200];
	unsigned char key[32], aad[HDR_LEN + 15 + PATH_MAX];
	struct kf_buf raw;
	struct kf_secret *s = NULL;
	const unsigned char *h;
	size_t aadlen, n;
	long ver, got;
	int rc = -1;

	kf_buf_init(&raw, LOCAL_MAX_VALUE + OVERHEAD);
	*value = NULL;
	if (parse_path(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	ringkey_of(&pp, rk, sizeof(rk));
	pthread_rwlock_rdlock(&l->tree_lock);
	if (kf_store_read(fp, LOCAL_MAX_VALUE + OVERHEAD, &raw, err) < 0)
		goto out;
	h = (const unsigned char *)raw.data;
	if (raw.len < OVERHEAD || memcmp(h, "KFL1", 4) != 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"local/%s is not a keyfs value file (damaged?)", path);
		goto out;
	}
	ver = (long)((uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
		     (uint32_t)h[6] << 8 | h[7]);
	if (ver < 1 || data_key(l, rk, ver, key, &got, err) < 0) {
		if (ver < 1)
			kf_fail(err, KF_E_INTEGRITY, "local/%s: bad key version",
				path);
		goto out;
	}
	n = raw.len - OVERHEAD;
	s = kf_secret_new(n);
	if (!s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	make_aad(aad, &aadlen, h, path);
	if (kf_gcm_decrypt(key, h + 8, aad, aadlen, h + HDR_LEN, n,
			   h + HDR_LEN + n, s->data, err) < 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"local/%s does not decrypt: the ciphertext is bound to "
			"another path (moved or copied) or was tampered with",
			path);
		goto out;
	}
	s->len = n;
	*value = s;
	s = NULL;
	rc = 0;
out:
	pthread_rwlock_unlock(&l->tree_lock);
	explicit_bzero(key, sizeof(key));
	kf_secret_free(s);
	kf_buf_release(&raw);
	return rc;
}

static int local_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n,
			const char *token, int flags, struct kf_err *err)
{
	struct local *l = p->priv;
	struct parts pp;
	char fp[PATH_MAX], rk[200], dir[PATH_MAX];
	unsigned char key[32], aad[HDR_LEN + 15 + PATH_MAX], *blob = NULL;
	struct stat st;
	size_t aadlen;
	long ver;
	int rc = -1;

	(void)token;	/* a local rename is atomic: no retries to dedupe */
	if (n > LOCAL_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "value over %d bytes",
			       LOCAL_MAX_VALUE);
	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (parse_path(path, &pp, 1, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	ringkey_of(&pp, rk, sizeof(rk));
	snprintf(dir, sizeof(dir), "%s", fp);
	*strrchr(dir, '/') = '\0';
	pthread_rwlock_rdlock(&l->tree_lock);
	if (!(flags & KF_COMMIT_CREATE) && lstat(fp, &st) < 0) {
		kf_fail(err, KF_E_NOTFOUND, "local/%s no longer exists", path);
		goto out;
	}
	if (data_key(l, rk, 0, key, &ver, err) < 0)
		goto out;
	blob = malloc(n + OVERHEAD);
	if (!blob) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	memcpy(blob, "KFL1", 4);
	blob[4] = (unsigned char)(ver >> 24);
	blob[5] = (unsigned char)(ver >> 16);
	blob[6] = (unsigned char)(ver >> 8);
	blob[7] = (unsigned char)ver;
	if (kf_rand_bytes(blob + 8, KF_GCM_IV, err) < 0)
		goto out;
	make_aad(aad, &aadlen, blob, path);
	if (kf_gcm_encrypt(key, blob + 8, aad, aadlen, value, n,
			   blob + HDR_LEN, blob + HDR_LEN + n, err) < 0)
		goto out;
	if (kf_store_replace(dir, strrchr(fp, '/') + 1, blob, n + OVERHEAD,
			 err) < 0)
		goto out;
	rc = 0;
out:
	pthread_rwlock_unlock(&l->tree_lock);
	explicit_bzero(key, sizeof(key));
	free(blob);	/* ciphertext only */
	return rc;
}

static int id_of(const char *path, struct kf_buf *out)
{
	return kf_buf_addf(out, "local/%s", path);
}

static int local_getxattr(struct kf_provider *p, const char *path,
			  const char *name, struct kf_buf *out,
			  struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_attr a;
	struct parts pp;
	char fp[PATH_MAX];
	unsigned char hdr[8];
	unsigned char key[32];
	long ver;
	int fd, rc;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	split(path, &pp);
	if (strcmp(name, "user.keyfs.id") == 0 && pp.n > 0) {
		if (id_of(path, out) < 0)
			return kf_fail(err, KF_E_NOMEM, "out of memory");
		return 0;
	}
	if (strcmp(name, "user.keyfs.primary") == 0 && pp.n == 2) {
		pthread_rwlock_rdlock(&l->tree_lock);
		rc = data_key(l, path, 0, key, &ver, err);
		pthread_rwlock_unlock(&l->tree_lock);
		explicit_bzero(key, sizeof(key));
		if (rc < 0)
			return -1;
		kf_buf_addf(out, "%ld", ver);
		return 0;
	}
	if (strcmp(name, "user.keyfs.version") == 0 && pp.n == 3) {
		if (fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
			return -1;
		fd = open(fp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || read(fd, hdr, 8) != 8 || memcmp(hdr, "KFL1", 4)) {
			if (fd >= 0)
				close(fd);
			return kf_fail(err, KF_E_INTEGRITY, "damaged value file");
		}
		close(fd);
		kf_buf_addf(out, "%lu",
			    (unsigned long)((uint32_t)hdr[4] << 24 |
					    (uint32_t)hdr[5] << 16 |
					    (uint32_t)hdr[6] << 8 | hdr[7]));
		return 0;
	}
	return kf_fail(err, KF_E_NODATA, "no such attribute");
}

static int local_listxattr(struct kf_provider *p, const char *path,
			   struct kf_buf *out, struct kf_err *err)
{
	struct kf_attr a;
	struct parts pp;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	split(path, &pp);
	if (pp.n > 0)
		kf_buf_add(out, "user.keyfs.id", sizeof("user.keyfs.id"));
	if (pp.n == 2)
		kf_buf_add(out, "user.keyfs.primary",
			   sizeof("user.keyfs.primary"));
	if (pp.n == 3)
		kf_buf_add(out, "user.keyfs.version",
			   sizeof("user.keyfs.version"));
	return 0;
}

static int local_setxattr(struct kf_provider *p, const char *path,
			  const char *name, const void *value, size_t n,
			  struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_attr a;
	struct parts pp;
	long ver;
	int rc;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	split(path, &pp);
	if (strcmp(name, "user.keyfs.rotate") == 0) {
		if (pp.n != 2)
			return kf_fail(err, KF_E_PERM,
				       "only keys (local/RING/KEY) rotate");
		/* Exactly "1" (a trailing newline allowed, as echo gives). */
		if (!((n == 1 || (n == 2 && ((const char *)value)[1] == '\n')) &&
		      *(const char *)value == '1'))
			return kf_fail(err, KF_E_INVALID,
				       "write 1 to user.keyfs.rotate to rotate");
		if (l->read_only)
			return kf_fail(err, KF_E_ROFS, "read-only mount");
		pthread_rwlock_wrlock(&l->tree_lock);
		rc = add_version_locked(l, path, 0, &ver, err);
		pthread_rwlock_unlock(&l->tree_lock);
		if (rc == 0)
			kf_log(KF_LOG_INFO, "rotated local/%s: primary is now "
			       "version %ld", path, ver);
		return rc;
	}
	if (!strcmp(name, "user.keyfs.id") ||
	    !strcmp(name, "user.keyfs.primary") ||
	    !strcmp(name, "user.keyfs.version"))
		return kf_fail(err, KF_E_PERM, "%s is read-only", name);
	return kf_fail(err, KF_E_NOTSUP, "unsupported attribute");
}

static void local_free(struct kf_provider *p)
{
	struct local *l;

	if (!p)
		return;
	l = p->priv;
	if (l) {
		kf_secret_free(l->master);
		pthread_mutex_destroy(&l->master_lock);
		pthread_rwlock_destroy(&l->tree_lock);
		free(l->root);
		free(l->master_path);
		free(l);
	}
	free(p);
}

static const struct kf_provider_ops local_ops = {
	.getattr = local_getattr,
	.list = local_list,
	.mkdir = local_mkdir,
	.rmdir = local_rmdir,
	.unlink = local_unlink,
	.can_create = local_can_create,
	.read = local_read,
	.commit = local_commit,
	.getxattr = local_getxattr,
	.setxattr = local_setxattr,
	.listxattr = local_listxattr,
	.free = local_free,
};

static int local_detect(const struct kf_config *cfg)
{
	(void)cfg;
	return 1;	/* embedded: always available */
}

static int local_create(const struct kf_config *cfg, struct kf_provider **out,
			struct kf_err *err)
{
	struct kf_provider *p = NULL;
	struct local *l = NULL;
	const char *mk = kf_config_get(cfg, "local_master_key");
	struct kf_buf b;
	unsigned char probe[32];
	struct stat st;
	int rc = -1;

	kf_buf_init(&b, PATH_MAX);
	p = calloc(1, sizeof(*p));
	l = calloc(1, sizeof(*l));
	if (!p || !l) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&l->master_lock, NULL);
	pthread_rwlock_init(&l->tree_lock, NULL);
	p->priv = l;
	p->ops = &local_ops;
	p->name = "local";
	p->max_value = LOCAL_MAX_VALUE;
	l->read_only = cfg->read_only;
	if (kf_buf_addf(&b, "%s/local", cfg->store) < 0) {
		kf_fail(err, KF_E_INVALID, "store path too long");
		goto out;
	}
	l->root = kf_buf_detach(&b, NULL);
	if (mk && !*mk) {
		kf_fail(err, KF_E_INVALID, "local_master_key needs a file name");
		goto out;
	}
	if (kf_buf_addf(&b, "%s", mk ? mk : "") < 0 ||
	    (!mk && kf_buf_addf(&b, "%s/master.key", cfg->store) < 0)) {
		kf_fail(err, KF_E_INVALID, "master key path too long");
		goto out;
	}
	l->master_path = kf_buf_detach(&b, NULL);
	if (!l->root || !l->master_path) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (mkdir(l->root, 0700) < 0 && errno != EEXIST) {
		if (!(cfg->read_only && errno == EROFS)) {
			kf_fail(err, KF_E_IO, "cannot create %s: %s", l->root,
				strerror(errno));
			goto out;
		}
	}
	if (stat(l->root, &st) == 0 && !S_ISDIR(st.st_mode)) {
		kf_fail(err, KF_E_IO, "%s is not a directory", l->root);
		goto out;
	}
	/* An existing master key must be usable now, on the terminal. */
	if (access(l->master_path, F_OK) == 0 &&
	    master_get(l, 0, probe, err) < 0)
		goto out;
	explicit_bzero(probe, sizeof(probe));
	*out = p;
	p = NULL;
	rc = 0;
out:
	kf_buf_release(&b);
	if (p && !p->priv)
		free(l);
	local_free(p);
	return rc;
}

const struct kf_provider_desc kf_local_desc = {
	.name = "local",
	.opts = local_opts,
	.detect = local_detect,
	.create = local_create,
};
