/*
 * The gcp provider's value files: each is the Cloud KMS ciphertext of one
 * value in the store (STORE/gcp/P/L/R/K/NAME), byte for byte what
 * `gcloud kms encrypt` writes, replaced atomically.  Plaintext never
 * touches the disk (only KMS ciphertext reaches the store) and is never
 * logged.
 */
#include "gcp/tree_int.h"
#include "core/file.h"
#include "core/log.h"
#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kf_gcp_list_store(struct kf_gcp *s, const struct kf_gcp_path *g,
		      kf_list_fn fn, void *ctx, struct kf_err *err)
{
	char sp[PATH_MAX];
	DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	if (s->bucket[0])
		return kf_gcp_bucket_list(s, g, fn, ctx, err);
	if (kf_gcp_dir_exists(s, g, 4, err) < 0)
		return -1;
	if (kf_gcp_path_store(s, g, 4, sp, sizeof(sp)) < 0)
		return kf_fail(err, KF_E_INVALID, "path too long");
	d = opendir(sp);
	if (!d) {
		if (errno == ENOENT)
			return 0; /* no value written yet */
		return kf_fail(err, KF_E_IO, "cannot read the store: %s",
			       strerror(errno));
	}
	while ((de = readdir(d))) {
		struct kf_attr a = { KF_KIND_FILE, 0, 0, 0 };
		struct stat st;

		if (!kf_gcp_valid_value_name(de->d_name))
			continue; /* ".", "..", temp files, strays */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISREG(st.st_mode))
			continue;
		a.size_known = st.st_size == 0;
		a.mtime = st.st_mtime;
		if (fn(ctx, de->d_name, &a))
			break;
	}
	rc = 0;
	closedir(d);
	return rc;
}

int kf_gcp_unlink(struct kf_provider *p, const char *path, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX];

	if (s->bucket[0])
		return kf_gcp_bucket_unlink(s, path, err);
	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth < 5)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0) {
		if (err && err->code == KF_E_INVALID)
			err->code = KF_E_NOTFOUND;
		return -1;
	}
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (unlink(sp) < 0)
		return kf_fail(err, errno == ENOENT ? KF_E_NOTFOUND : KF_E_IO,
			       "cannot remove ciphertext: %s", strerror(errno));
	return 0;
}

int kf_gcp_can_create(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX];
	struct stat st;

	if (s->bucket[0])
		return kf_gcp_bucket_can_create(s, path, err);
	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth == 4) /* a file in a key ring: values need a key */
		return kf_fail(err, KF_E_PERM,
			       "value files live below a crypto key "
			       "(PROJECT/LOCATION/RING/KEY/NAME)");
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (kf_gcp_dir_exists(s, &g, 4, err) < 0)
		return -1;
	if (lstat(sp, &st) == 0 && !S_ISREG(st.st_mode))
		return kf_fail(err, KF_E_ISDIR, "not a value file");
	return 0;
}

/* KF_E_STATE and a warning unless key (a cryptoKeys.get answer) has an
 * enabled primary version to encrypt with. */
static int primary_enabled(json_t *key, const char *path, struct kf_err *err)
{
	json_t *pri = json_object_get(key, "primary");
	const char *st = json_string_value(json_object_get(pri, "state"));

	if (st && strcmp(st, "ENABLED") == 0)
		return 0;
	kf_log(KF_LOG_WARN,
	       "gcp: %s cannot be written: its crypto key has no enabled "
	       "primary version (%s)",
	       path, st ? st : "none");
	return kf_fail(err, KF_E_STATE, "no enabled primary key version");
}

/*
 * One fresh cryptoKeys.get (never the directory cache, so it shows whether
 * Cloud KMS answers now), an enabled primary version, then the store's
 * writability and room.
 */
int kf_gcp_check_write(struct kf_provider *p, const char *path, int flags,
		       struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX], dir[PATH_MAX], key[640];
	json_t *obj = NULL;
	int rc;

	if (s->bucket[0])
		return kf_gcp_bucket_check_write(s, path, flags, err);
	(void)flags;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0)
		return -1;
	if (!kf_gcp_project_known(s, g.c[0]))
		return kf_fail(err, KF_E_NOTFOUND, "unknown project");
	if (kf_gcp_path_resource(&g, 4, key, sizeof(key)) < 0 ||
	    kf_gcp_path_store(s, &g, 4, dir, sizeof(dir)) < 0)
		return kf_fail(err, KF_E_INVALID, "name too long");
	if (kf_gcp_kms_get(&s->kms, key, &obj, err) < 0)
		return -1;
	rc = primary_enabled(obj, path, err);
	json_decref(obj);
	if (rc < 0)
		return -1;
	return kf_store_check(dir, err);
}

/* What identifies one write of a store file: a rename-over gives a new
 * inode, a rewrite in place a new mtime (or size). */
static void stamp_text(const struct stat *st, char *out, size_t n)
{
	/* Three 64-bit numbers and two colons: at most 62 characters. */
	(void)snprintf(out, n, "%ju:%jd:%jd", (uintmax_t)st->st_ino,
		       (intmax_t)st->st_size,
		       (intmax_t)st->st_mtim.tv_sec * 1000000000 +
			       st->st_mtim.tv_nsec);
}

/*
 * The ciphertext file at sp into ct, and the stamp of the very file read
 * (from its descriptor) into stamp: NOTFOUND when absent, INTEGRITY when
 * larger than any ciphertext Cloud KMS makes, IO otherwise.
 */
static int read_ciphertext(const char *sp, struct kf_buf *ct, char *stamp,
			   size_t n, struct kf_err *err)
{
	struct stat st;
	int fd, rc;

	/* A regular file, never a FIFO or a link (no hang), bounded. */
	fd = kf_store_open(sp, &st, err);
	if (fd < 0)
		return -1;
	if ((uintmax_t)st.st_size > (uintmax_t)KF_GCP_KMS_MAX_CIPHERTEXT) {
		close(fd);
		return kf_fail(err, KF_E_INTEGRITY,
			       "store file %s is larger than any valid one",
			       sp);
	}
	rc = kf_file_read_fd(fd, ct, err);
	close(fd);
	if (rc < 0 && err)
		err->code = err->code == KF_E_TOOBIG ? KF_E_INTEGRITY : KF_E_IO;
	stamp_text(&st, stamp, n);
	return rc;
}

int kf_gcp_stamp(struct kf_provider *p, const char *path, struct kf_buf *out,
		 struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX], text[KF_SECRET_VERSION_MAX];
	struct stat st;

	if (s->bucket[0])
		return kf_gcp_bucket_stamp(s, path, out, err);
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0) {
		if (err && err->code == KF_E_INVALID)
			err->code = KF_E_NOTFOUND;
		return -1;
	}
	if (lstat(sp, &st) < 0)
		return kf_fail(err,
			       errno == ENOENT || errno == ENOTDIR ?
				       KF_E_NOTFOUND :
				       KF_E_IO,
			       "cannot stat a value: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kf_store_not_regular(sp, st.st_mode, err);
	stamp_text(&st, text, sizeof(text));
	if (kf_buf_addf(out, "%s", text) < 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

int kf_gcp_read(struct kf_provider *p, const char *path,
		struct kf_secret **value, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX], key[640], stamp[KF_SECRET_VERSION_MAX];
	struct kf_buf ct;
	int rc = -1;

	if (s->bucket[0])
		return kf_gcp_bucket_read(s, path, 0, value, err);
	*value = NULL;
	kf_buf_init(&ct, KF_GCP_KMS_MAX_CIPHERTEXT);
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0) {
		if (err && err->code == KF_E_INVALID)
			err->code = KF_E_NOTFOUND;
		goto out;
	}
	if (read_ciphertext(sp, &ct, stamp, sizeof(stamp), err) < 0)
		goto out;
	if (ct.len == 0) {
		/* An empty value is stored as an empty file: no KMS call. */
		*value = kf_secret_new(0);
		if (!*value)
			kf_fail(err, KF_E_NOMEM, "out of memory");
		else
			rc = 0;
		goto out;
	}
	if (kf_gcp_path_resource(&g, 4, key, sizeof(key)) < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	rc = kf_gcp_kms_decrypt(&s->kms, key, ct.data, ct.len, value, err);
out:
	if (rc == 0)
		kf_secret_set_version(*value, stamp);
	kf_buf_release(&ct);
	return rc;
}

/* mkdir -p below the store, 0700. */
static int make_dirs(const struct kf_gcp *s, const struct kf_gcp_path *g,
		     int depth, struct kf_err *err)
{
	char sp[PATH_MAX];

	for (int i = 1; i <= depth; i++) {
		if (kf_gcp_path_store(s, g, i, sp, sizeof(sp)) < 0)
			return kf_fail(err, KF_E_INVALID, "path too long");
		if (mkdir(sp, 0700) < 0 && errno != EEXIST)
			return kf_fail(err, kf_store_code(errno),
				       "cannot create store directory: %s",
				       strerror(errno));
	}
	return 0;
}

int kf_gcp_commit(struct kf_provider *p, const char *path,
		  const unsigned char *value, size_t n, const char *token,
		  int flags, struct kf_buf *version, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char sp[PATH_MAX], dir[PATH_MAX], key[640], used[700] = "";
	struct kf_buf ct;
	struct stat st;
	int rc = -1;

	(void)token; /* a retried upload finds its own landed write */
	if (s->bucket[0])
		return kf_gcp_bucket_commit(s, path, value, n, flags, version,
					    err);
	kf_buf_init(&ct, 4 * KF_GCP_KMS_MAX_PLAINTEXT);
	if (kf_gcp_path_value(s, path, &g, sp, sizeof(sp), err) < 0)
		goto out;
	if (s->read_only) {
		kf_fail(err, KF_E_ROFS, "read-only mount");
		goto out;
	}
	if (n > KF_GCP_KMS_MAX_PLAINTEXT) {
		kf_fail(err, KF_E_TOOBIG, "Cloud KMS encrypts at most %d bytes",
			KF_GCP_KMS_MAX_PLAINTEXT);
		goto out;
	}
	if (!(flags & KF_COMMIT_CREATE) && lstat(sp, &st) < 0) {
		kf_fail(err, KF_E_NOTFOUND, "no such value");
		goto out;
	}
	if (kf_gcp_path_resource(&g, 4, key, sizeof(key)) < 0 ||
	    kf_gcp_path_store(s, &g, 4, dir, sizeof(dir)) < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	if (n == 0) {
		/* No KMS call, but the key must exist. */
		if (kf_gcp_dir_exists(s, &g, 4, err) < 0)
			goto out;
	} else if (kf_gcp_kms_encrypt(&s->kms, key, value, n, &ct, used,
				      sizeof(used), err) < 0) {
		goto out;
	}
	if (make_dirs(s, &g, 4, err) < 0 ||
	    kf_store_replace(dir, g.c[4], ct.data, ct.len, err) < 0)
		goto out;
	kf_log(KF_LOG_DEBUG, "gcp: stored %s (%s)", path,
	       used[0] ? used : "empty value");
	if (version && lstat(sp, &st) == 0) {
		char text[KF_SECRET_VERSION_MAX];

		stamp_text(&st, text, sizeof(text));
		(void)kf_buf_adds(version, text);
	}
	rc = 0;
out:
	kf_buf_release(&ct);
	return rc;
}

int kf_gcp_read_version(struct kf_provider *p, const char *path,
			const char *version, struct kf_secret **value,
			int *immutable, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	char *end = NULL;
	long long gen;

	*immutable = 0;
	*value = NULL;
	if (!version || (s->bucket[0] && strcmp(version, "latest") == 0))
		return kf_gcp_read(p, path, value, err);
	if (!s->bucket[0])
		return kf_fail(err, KF_E_NOTFOUND,
			       "the local store keeps no versions");
	errno = 0;
	gen = strtoll(version, &end, 10);
	if (version[0] < '1' || version[0] > '9' || *end || errno || gen <= 0)
		return kf_fail(err, KF_E_NOTFOUND,
			       "versions are generation numbers");
	if (kf_gcp_bucket_read(s, path, gen, value, err) < 0)
		return -1;
	*immutable = 1;
	return 0;
}

int kf_gcp_versions(struct kf_provider *p, const char *path,
		    int (*fn)(void *ctx, const char *version, int64_t created,
			      const char *labels),
		    void *ctx, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;

	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth < 5)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (!s->bucket[0]) /* fs/ answers ENODATA, as without versions */
		return kf_fail(err, KF_E_ISDIR,
			       "the local store keeps no versions");
	return kf_gcp_bucket_versions(s, path, fn, ctx, err);
}
