/*
 * The embedded `local` provider's vtable: RING/ (a key ring), RING/KEY/
 * (a key with its versions in .key.json), RING/KEY/NAME (a value file
 * bound to its path) under STORE/local; files are replaced atomically.
 * It never writes plaintext to disk and never logs a value or a key.
 */
#include "local/tree.h"
#include "local/priv.h"
#include "local/value.h"

#include "core/log.h"
#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct kf_provider_opt local_opts[] = {
	{ "local_master_key", "FILE",
	  "master key wrapping local/ keys (default: STORE/master.key, "
	  "created 0600 on first use)" },
	{ NULL, NULL, NULL },
};

static int local_getattr(struct kf_provider *p, const char *path,
			 struct kf_attr *a, struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_parts pp;
	char fp[PATH_MAX];
	struct stat st;

	memset(a, 0, sizeof(*a));
	if (kf_local_parse(path, &pp, 0, err) < 0)
		return -1;
	if (kf_local_fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
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
		if (!S_ISDIR(st.st_mode) || !kf_local_key_exists(l, path))
			return kf_fail(err, KF_E_NOTFOUND, "no such key");
		a->kind = KF_KIND_DIR;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) /* never opened: a FIFO would block */
		return kf_store_not_regular(fp, st.st_mode, err);
	a->kind = KF_KIND_FILE;
	a->size_known = 1;
	a->size = st.st_size >= KF_LOCAL_OVERHEAD ?
			  (uint64_t)st.st_size - KF_LOCAL_OVERHEAD :
			  0;
	return 0;
}

static int local_list(struct kf_provider *p, const char *path, const char *page,
		      kf_list_fn fn, void *ctx, struct kf_buf *next,
		      struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_parts pp;
	char fp[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	(void)page;
	(void)next; /* one page: a local directory is small */
	if (kf_local_parse(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n == 3)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (pp.n == 2 && !kf_local_key_exists(l, path))
		return kf_fail(err, KF_E_NOTFOUND, "no such key");
	if (kf_local_fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	d = opendir(fp);
	if (!d)
		return kf_local_errno_fail(err, errno, "cannot list", path);
	for (de = readdir(d); rc == 0 && de; de = readdir(d)) {
		size_t n = strlen(de->d_name);
		char child[PATH_MAX];
		struct kf_attr a;
		struct kf_err e2 = KF_ERR_INIT;

		if (pp.n < 2 ? !kf_local_valid_id(de->d_name, n) :
			       !kf_local_valid_name(de->d_name, n))
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", path,
				     *path ? "/" : "",
				     de->d_name) >= sizeof(child))
			continue;
		if (local_getattr(p, child, &a, &e2) < 0)
			continue; /* not a ring/key/value: skip */
		rc = fn(ctx, de->d_name, &a);
	}
	closedir(d);
	return 0;
}

/* KF_E_NOTFOUND unless the ring of RING/KEY is a directory. */
static int ring_exists(const struct local *l, const struct kf_local_parts *pp,
		       struct kf_err *err)
{
	char ring[64], dir[PATH_MAX];
	struct stat st;

	/* A validated id: at most 63 characters, it fits. */
	(void)snprintf(ring, sizeof(ring), "%.*s", (int)pp->len[0], pp->c[0]);
	if (kf_local_fspath(l, ring, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return kf_fail(err, KF_E_NOTFOUND, "no such key ring");
	return 0;
}

static int local_mkdir(struct kf_provider *p, const char *path,
		       struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_parts pp;
	char fp[PATH_MAX];
	long ver;
	int rc = -1;

	if (kf_local_parse(path, &pp, 1, err) < 0)
		return -1;
	if (pp.n == 0)
		return kf_fail(err, KF_E_EXISTS, "exists");
	if (pp.n == 3)
		return kf_fail(err, KF_E_PERM,
			       "local/RING/KEY holds values, not directories");
	if (kf_local_fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	pthread_rwlock_wrlock(&l->tree_lock);
	if (pp.n == 2 && ring_exists(l, &pp, err) < 0)
		goto out;
	if (mkdir(fp, 0700) < 0) {
		kf_local_errno_fail(err, errno, "cannot create", path);
		goto out;
	}
	if (pp.n == 2 && kf_local_key_add_locked(l, path, 1, &ver, err) < 0) {
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
	struct kf_local_parts pp;
	char fp[PATH_MAX];
	int rc = -1;

	if (kf_local_parse(path, &pp, 0, err) < 0)
		return -1;
	if (pp.n == 0)
		return kf_fail(err, KF_E_PERM, "cannot remove local/");
	if (pp.n == 3)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (kf_local_fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	pthread_rwlock_wrlock(&l->tree_lock);
	if (pp.n == 2 && kf_local_key_remove_locked(l, path, err) < 0)
		goto out;
	if (rmdir(fp) < 0) {
		kf_local_errno_fail(err, errno, "cannot remove", path);
		goto out;
	}
	rc = 0;
out:
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

static int local_unlink(struct kf_provider *p, const char *path,
			struct kf_err *err)
{
	struct local *l = p->priv;
	pthread_mutex_t *lock = kf_local_name_lock(l, path);
	struct kf_local_vpath v;
	int rc;

	if (kf_local_value_path(l, path, 0, &v, err) < 0)
		return -1;
	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	pthread_rwlock_rdlock(&l->tree_lock);
	pthread_mutex_lock(lock);
	rc = kf_local_versions_unlink(&v, path, err);
	pthread_mutex_unlock(lock);
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

static int local_can_create(struct kf_provider *p, const char *path,
			    struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_parts pp;
	char rk[KF_LOCAL_RINGKEY_MAX];

	if (kf_local_parse(path, &pp, 1, err) < 0)
		return -1;
	if (pp.n < 3)
		return kf_fail(err, KF_E_PERM,
			       "values live in local/RING/KEY/NAME; use mkdir "
			       "for rings and keys");
	kf_local_ringkey(&pp, rk);
	if (!kf_local_key_exists(l, rk))
		return kf_fail(err, KF_E_NOTFOUND, "no such key local/%s", rk);
	return 0;
}

/*
 * What a commit at path would meet, found before it: the key's primary
 * version unwrapped (a missing or damaged key file, a wrong master key),
 * then the store's writability and room.  No network, no write.
 */
static int local_check_write(struct kf_provider *p, const char *path, int flags,
			     struct kf_err *err)
{
	struct local *l = p->priv;
	unsigned char key[32];
	struct kf_local_vpath v;
	long ver;
	int rc;

	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (kf_local_value_path(l, path, !!(flags & KF_COMMIT_CREATE), &v,
				err) < 0)
		return -1;
	pthread_rwlock_rdlock(&l->tree_lock);
	rc = kf_local_key_get(l, v.rk, 0, key, &ver, err);
	pthread_rwlock_unlock(&l->tree_lock);
	explicit_bzero(key, sizeof(key));
	if (rc < 0)
		return -1;
	return kf_store_check(v.dir, err);
}

static int local_read(struct kf_provider *p, const char *path,
		      struct kf_secret **value, struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_vpath v;
	int rc;

	*value = NULL;
	if (kf_local_value_path(l, path, 0, &v, err) < 0)
		return -1;
	pthread_rwlock_rdlock(&l->tree_lock);
	rc = kf_local_read_file(l, &v, v.fp, path, 0, value, err);
	pthread_rwlock_unlock(&l->tree_lock);
	return rc;
}

/*
 * A commit makes the next version of path: the current file is kept as a
 * version (a hard link), the new value replaces it atomically (temp file,
 * fsync, rename), then versions past the newest KF_LOCAL_KEEP go.
 */
static int local_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n, const char *token,
			int flags, struct kf_buf *version, struct kf_err *err)
{
	struct local *l = p->priv;
	pthread_mutex_t *lock = kf_local_name_lock(l, path);
	struct kf_local_vpath v;
	unsigned char key[32], *blob = NULL;
	struct stat st;
	uint32_t number = 0;
	long ver;
	int rc = -1;

	(void)token; /* a local rename is atomic: no retries to dedupe */
	if (n > KF_LOCAL_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "value over %d bytes",
			       KF_LOCAL_MAX_VALUE);
	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (kf_local_value_path(l, path, 1, &v, err) < 0)
		return -1;
	pthread_rwlock_rdlock(&l->tree_lock);
	pthread_mutex_lock(lock);
	if (!(flags & KF_COMMIT_CREATE) && lstat(v.fp, &st) < 0) {
		kf_fail(err, KF_E_NOTFOUND, "local/%s no longer exists", path);
		goto out;
	}
	if (kf_local_key_get(l, v.rk, 0, key, &ver, err) < 0)
		goto out;
	blob = malloc(n + KF_LOCAL_OVERHEAD);
	if (!blob) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_local_versions_prepare(&v, path, &number, err) < 0 ||
	    kf_local_value_seal(key, (uint32_t)ver, number, path, value, n,
				blob, err) < 0 ||
	    kf_store_replace(v.dir, strrchr(v.fp, '/') + 1, blob,
			     n + KF_LOCAL_OVERHEAD, err) < 0)
		goto out;
	kf_local_versions_prune(&v, number);
	if (version) {
		char num[16];

		(void)snprintf(num, sizeof(num), "%u", (unsigned)number);
		(void)kf_buf_adds(version, num);
	}
	rc = 0;
out:
	pthread_mutex_unlock(lock);
	pthread_rwlock_unlock(&l->tree_lock);
	explicit_bzero(key, sizeof(key));
	free(blob); /* ciphertext only */
	return rc;
}

/* user.keyfs.primary of a key: its primary version number. */
static int primary_attr(struct local *l, const char *path, struct kf_buf *out,
			struct kf_err *err)
{
	unsigned char key[32];
	long ver;
	int rc;

	pthread_rwlock_rdlock(&l->tree_lock);
	rc = kf_local_key_get(l, path, 0, key, &ver, err);
	pthread_rwlock_unlock(&l->tree_lock);
	explicit_bzero(key, sizeof(key));
	if (rc < 0)
		return -1;
	kf_buf_addf(out, "%ld", ver);
	return 0;
}

/* user.keyfs.version of a value: the key version in its header. */
static int version_attr(struct local *l, const char *path, struct kf_buf *out,
			struct kf_err *err)
{
	char fp[PATH_MAX];
	unsigned char hdr[8];
	struct stat st;
	uint32_t ver;
	ssize_t n;
	int fd;

	if (kf_local_fspath(l, path, NULL, fp, sizeof(fp), err) < 0)
		return -1;
	fd = kf_store_open(fp, &st, err);
	if (fd < 0)
		return -1;
	n = read(fd, hdr, sizeof(hdr));
	close(fd);
	if (n != (ssize_t)sizeof(hdr) ||
	    kf_local_value_peek(hdr, sizeof(hdr), &ver) < 0)
		return kf_fail(err, KF_E_INTEGRITY, "damaged value file");
	kf_buf_addf(out, "%lu", (unsigned long)ver);
	return 0;
}

static int local_getxattr(struct kf_provider *p, const char *path,
			  const char *name, struct kf_buf *out,
			  struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_attr a;
	struct kf_local_parts pp;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	kf_local_split(path, &pp);
	if (strcmp(name, "user.keyfs.id") == 0 && pp.n > 0) {
		if (kf_buf_addf(out, "local/%s", path) < 0)
			return kf_fail(err, KF_E_NOMEM, "out of memory");
		return 0;
	}
	if (strcmp(name, "user.keyfs.primary") == 0 && pp.n == 2)
		return primary_attr(l, path, out, err);
	if (strcmp(name, "user.keyfs.version") == 0 && pp.n == 3)
		return version_attr(l, path, out, err);
	return kf_fail(err, KF_E_NODATA, "no such attribute");
}

static int local_listxattr(struct kf_provider *p, const char *path,
			   struct kf_buf *out, struct kf_err *err)
{
	struct kf_attr a;
	struct kf_local_parts pp;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	kf_local_split(path, &pp);
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
	const char *s = value;
	struct kf_attr a;
	struct kf_local_parts pp;
	long ver;
	int rc;

	if (local_getattr(p, path, &a, err) < 0)
		return -1;
	kf_local_split(path, &pp);
	if (strcmp(name, "user.keyfs.rotate") == 0) {
		if (pp.n != 2)
			return kf_fail(err, KF_E_PERM,
				       "only keys (local/RING/KEY) rotate");
		/* Exactly "1" (a trailing newline allowed, as echo gives). */
		if (!((n == 1 || (n == 2 && s[1] == '\n')) && s[0] == '1'))
			return kf_fail(err, KF_E_INVALID,
				       "write 1 to user.keyfs.rotate to rotate");
		if (l->read_only)
			return kf_fail(err, KF_E_ROFS, "read-only mount");
		pthread_rwlock_wrlock(&l->tree_lock);
		rc = kf_local_key_add_locked(l, path, 0, &ver, err);
		pthread_rwlock_unlock(&l->tree_lock);
		if (rc == 0)
			kf_log(KF_LOG_INFO,
			       "rotated local/%s: primary is now "
			       "version %ld",
			       path, ver);
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
		for (int i = 0; i < KF_LOCAL_NAME_LOCKS; i++)
			pthread_mutex_destroy(&l->name_lock[i]);
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
	.check_write = local_check_write,
	.read = local_read,
	.commit = local_commit,
	.read_version = kf_local_read_version,
	.versions = kf_local_versions,
	.stamp = kf_local_stamp,
	.getxattr = local_getxattr,
	.setxattr = local_setxattr,
	.listxattr = local_listxattr,
	.free = local_free,
};

static int local_detect(const struct kf_config *cfg)
{
	(void)cfg;
	return 1; /* embedded: always available */
}

/* l->root (STORE/local) and l->master_path from the configuration. */
static int local_paths(struct local *l, const struct kf_config *cfg,
		       struct kf_err *err)
{
	const char *mk = kf_config_get(cfg, "local_master_key");
	char cwd[PATH_MAX];
	struct kf_buf b;
	int rc = -1;

	kf_buf_init(&b, PATH_MAX);
	if (kf_buf_addf(&b, "%s/local", cfg->store) < 0) {
		kf_fail(err, KF_E_INVALID, "store path too long");
		goto out;
	}
	l->root = kf_buf_detach(&b, NULL);
	if (mk && !*mk) {
		kf_fail(err, KF_E_INVALID,
			"local_master_key needs a file name");
		goto out;
	}
	/* Relative to the directory keyfs was started in: the daemon
	 * changes to / when it detaches. */
	if (mk && *mk != '/' && !getcwd(cwd, sizeof(cwd))) {
		kf_fail(err, KF_E_INVALID,
			"local_master_key=%s: cannot resolve a relative path: %s",
			mk, strerror(errno));
		goto out;
	}
	if ((mk && *mk != '/' && kf_buf_addf(&b, "%s/", cwd) < 0) ||
	    kf_buf_addf(&b, "%s", mk ? mk : "") < 0 ||
	    (!mk && kf_buf_addf(&b, "%s/master.key", cfg->store) < 0)) {
		kf_fail(err, KF_E_INVALID, "master key path too long");
		goto out;
	}
	l->master_path = kf_buf_detach(&b, NULL);
	if (!l->root || !l->master_path) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&b);
	return rc;
}

/* STORE/local exists (made 0700 here) unless the mount is read-only. */
static int local_root(const struct local *l, int read_only, struct kf_err *err)
{
	struct stat st;

	if (mkdir(l->root, 0700) < 0 && errno != EEXIST &&
	    !(read_only && errno == EROFS))
		return kf_fail(err, KF_E_IO, "cannot create %s: %s", l->root,
			       strerror(errno));
	if (stat(l->root, &st) == 0 && !S_ISDIR(st.st_mode))
		return kf_fail(err, KF_E_IO, "%s is not a directory", l->root);
	return 0;
}

static int local_create(const struct kf_config *cfg, struct kf_provider **out,
			struct kf_err *err)
{
	struct kf_provider *p = NULL;
	struct local *l = NULL;
	unsigned char probe[32];
	int rc = -1;

	p = calloc(1, sizeof(*p));
	l = calloc(1, sizeof(*l));
	if (!p || !l) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&l->master_lock, NULL);
	for (int i = 0; i < KF_LOCAL_NAME_LOCKS; i++)
		pthread_mutex_init(&l->name_lock[i], NULL);
	pthread_rwlock_init(&l->tree_lock, NULL);
	p->priv = l;
	p->ops = &local_ops;
	p->name = "local";
	p->max_value = KF_LOCAL_MAX_VALUE;
	l->read_only = cfg->read_only;
	if (local_paths(l, cfg, err) < 0 ||
	    local_root(l, cfg->read_only, err) < 0)
		goto out;
	/* An existing master key must be usable now, on the terminal; a
	 * missing one the store needs is said now too (it may yet come, as
	 * a key file on a tmpfs filled later at boot). */
	if (access(l->master_path, F_OK) == 0 ?
		    kf_local_master_get(l, 0, probe, err) < 0 :
		    kf_local_master_missing(l, err) < 0) {
		if (err->code != KF_E_INTEGRITY ||
		    access(l->master_path, F_OK) == 0)
			goto out;
		kf_log(KF_LOG_WARN,
		       "local: %s; its values fail with EIO until it is back",
		       err->msg);
		kf_err_clear(err);
	}
	*out = p;
	p = NULL;
	rc = 0;
out:
	explicit_bzero(probe, sizeof(probe));
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
