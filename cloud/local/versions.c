/*
 * The kept versions of local/ values.  The current file RING/KEY/NAME is
 * the newest version (its number is in its authenticated header; a file
 * from before versions is version 1); RING/KEY/.versions/NAME/N is the
 * file that was current as version N, hard-linked there by the commit
 * that replaced it (never decrypted, never rewritten), so every version
 * stays bound to its name and number.  Numbers only grow, across removals
 * too: a removal leaves the marker N-removed (an empty file).  Nothing
 * here logs a value or writes plaintext.
 */
#include "local/priv.h"
#include "local/value.h"

#include "provider.h"

#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REMOVED_SUFFIX "-removed"
#define REMOVED_LEN (sizeof(REMOVED_SUFFIX) - 1)

pthread_mutex_t *kf_local_name_lock(struct local *l, const char *path)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *c = path; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	return &l->name_lock[h % KF_LOCAL_NAME_LOCKS];
}

/* A number in canonical decimal (1..UINT32_MAX, digits only, no leading
 * zero) in the n bytes at s, else 0. */
static uint32_t parse_number(const char *s, size_t n)
{
	uint64_t v = 0;

	if (n == 0 || n > 10 || s[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* The number of a versions directory entry: a version "N" (*marker 0),
 * a removal marker "N-removed" (*marker 1), or 0 for anything else. */
static uint32_t entry_number(const char *name, int *marker)
{
	size_t n = strlen(name);

	*marker = n > REMOVED_LEN &&
		  !strcmp(name + n - REMOVED_LEN, REMOVED_SUFFIX);
	return parse_number(name, *marker ? n - REMOVED_LEN : n);
}

static int is_tmp(const char *name)
{
	return !strncmp(name, KF_STORE_TMP_PREFIX,
			sizeof(KF_STORE_TMP_PREFIX) - 1);
}

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 +
	       st->st_mtim.tv_nsec / 1000000;
}

/*
 * The header of the current file fp and its stat: one open and one read,
 * no decryption.  KF_E_NOTFOUND when absent, KF_E_INTEGRITY when it is
 * not a value file.
 */
static int current_header(const char *fp, const char *path,
			  struct kf_local_hdr *h, struct stat *st,
			  struct kf_err *err)
{
	unsigned char b[12];
	ssize_t n;
	int fd = kf_store_open(fp, st, err);

	if (fd < 0)
		return -1;
	do
		n = pread(fd, b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < (ssize_t)sizeof(b) ||
	    kf_local_value_header(b, sizeof(b), h) < 0 || h->number < 1)
		return kf_fail(err, KF_E_INTEGRITY,
			       "local/%s is not a keyfs value file (damaged?)",
			       path);
	return 0;
}

/* The largest number in v's versions directory (0: none or no dir). */
static int max_number(const struct kf_local_vpath *v, const char *path,
		      uint32_t *max, struct kf_err *err)
{
	struct dirent *de;
	DIR *d = opendir(v->vdir);
	int marker;

	*max = 0;
	if (!d)
		return errno == ENOENT ?
			       0 :
			       kf_local_errno_fail(err, errno,
						   "cannot list the versions of",
						   path);
	for (de = readdir(d); de; de = readdir(d)) {
		uint32_t n = entry_number(de->d_name, &marker);

		if (n > *max)
			*max = n;
	}
	closedir(d);
	return 0;
}

/* mkdir -p v->vdir (KEY/.versions/NAME), 0700, new entries synced. */
static int make_vdir(const struct kf_local_vpath *v, const char *path,
		     struct kf_err *err)
{
	char top[PATH_MAX];
	int n = snprintf(top, sizeof(top), "%s/" KF_LOCAL_VERSIONS_DIR, v->dir);

	if (n < 0 || (size_t)n >= sizeof(top))
		return kf_fail(err, KF_E_INVALID, "path too long");
	if (mkdir(top, 0700) == 0)
		kf_store_sync_dir(v->dir);
	else if (errno != EEXIST)
		return kf_local_errno_fail(err, errno,
					   "cannot keep the versions of", path);
	if (mkdir(v->vdir, 0700) == 0)
		kf_store_sync_dir(top);
	else if (errno != EEXIST)
		return kf_local_errno_fail(err, errno,
					   "cannot keep the versions of", path);
	return 0;
}

/* Where the store cannot link: a copy of the current file's ciphertext
 * as vdir/name, with the current file's time (its creation time). */
static int copy_current(const struct kf_local_vpath *v, const char *name,
			const char *dst, struct kf_err *err)
{
	struct timespec t[2];
	struct kf_buf raw;
	struct stat st;
	int rc = -1;

	kf_buf_init(&raw, KF_LOCAL_FILE_MAX);
	if (stat(v->fp, &st) < 0) {
		kf_fail(err, kf_store_code(errno), "cannot stat a value: %s",
			strerror(errno));
		goto out;
	}
	if (kf_store_read(v->fp, KF_LOCAL_FILE_MAX, &raw, err) < 0 ||
	    kf_store_replace(v->vdir, name, raw.data, raw.len, err) < 0)
		goto out;
	t[0] = st.st_atim;
	t[1] = st.st_mtim;
	(void)utimensat(AT_FDCWD, dst, t,
			AT_SYMLINK_NOFOLLOW); /* best effort */
	rc = 0;
out:
	kf_buf_release(&raw); /* ciphertext only */
	return rc;
}

/* The current file (version c) also as vdir/c, before it is replaced. */
static int keep_current(const struct kf_local_vpath *v, const char *path,
			uint32_t c, struct kf_err *err)
{
	char name[16], dst[PATH_MAX];
	int n, rc;

	(void)snprintf(name, sizeof(name), "%lu", (unsigned long)c); /* fits */
	n = snprintf(dst, sizeof(dst), "%s/%s", v->vdir, name);
	if (n < 0 || (size_t)n >= sizeof(dst))
		return kf_fail(err, KF_E_INVALID, "path too long");
	rc = link(v->fp, dst);
	if (rc < 0 && errno == ENOENT) {
		/* The name's first kept version: its directory is made. */
		if (make_vdir(v, path, err) < 0)
			return -1;
		rc = link(v->fp, dst);
	}
	/* EEXIST: linked by a commit that stopped before its rename. */
	if (rc < 0 && errno != EEXIST) {
		if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
			return kf_local_errno_fail(err, errno,
						   "cannot keep a version of",
						   path);
		return copy_current(v, name, dst, err);
	}
	if (kf_store_sync_dir(v->vdir) < 0)
		return kf_local_errno_fail(err, errno,
					   "cannot keep a version of", path);
	return 0;
}

int kf_local_versions_prepare(const struct kf_local_vpath *v, const char *path,
			      uint32_t *number, struct kf_err *err)
{
	struct kf_err e2 = KF_ERR_INIT;
	struct kf_local_hdr h;
	struct stat st;
	uint32_t c = 0, m, base;

	if (max_number(v, path, &m, err) < 0)
		return -1;
	if (current_header(v->fp, path, &h, &st, &e2) == 0)
		c = h.number;
	base = c > m ? c : m;
	/* A current file that cannot be read (damaged) is not kept, and its
	 * number is unknown: it is at most one past the newest kept one,
	 * so skipping that number never gives one number two values. */
	if (!c && e2.code != KF_E_NOTFOUND)
		base = m + 1;
	if (base >= UINT32_MAX - 1)
		return kf_fail(err, KF_E_STATE,
			       "local/%s has no version "
			       "numbers left",
			       path);
	if (c && keep_current(v, path, c, err) < 0)
		return -1;
	*number = base + 1;
	return 0;
}

/* Remove from vdir versions at or below `below`, markers other than
 * keep ("" none) and temporary files, the directory synced when sync.
 * Best effort. */
static void drop_entries(const char *vdir, uint32_t below, const char *keep,
			 int sync)
{
	struct dirent *de;
	DIR *d = opendir(vdir);
	int marker, gone = 0;

	if (!d)
		return;
	for (de = readdir(d); de; de = readdir(d)) {
		uint32_t n = entry_number(de->d_name, &marker);

		if (!((n && marker && strcmp(de->d_name, keep)) ||
		      (n && !marker && n <= below) || is_tmp(de->d_name)))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			gone = 1;
	}
	closedir(d);
	if (gone && sync)
		kf_store_sync_dir(vdir);
}

void kf_local_versions_prune(const struct kf_local_vpath *v, uint32_t number)
{
	/* Not synced: a dropped version that comes back after a crash is
	 * past the newest ten, never shown, and the next commit drops it. */
	drop_entries(v->vdir,
		     number > KF_LOCAL_KEEP ? number - KF_LOCAL_KEEP : 0, "",
		     0);
}

int kf_local_versions_unlink(const struct kf_local_vpath *v, const char *path,
			     struct kf_err *err)
{
	struct kf_err e2 = KF_ERR_INIT;
	struct kf_local_hdr h;
	struct stat st;
	char marker[32];
	uint32_t c = 0, m, last;

	if (lstat(v->fp, &st) < 0)
		return kf_local_errno_fail(err, errno, "cannot remove", path);
	if (max_number(v, path, &m, err) < 0)
		return -1;
	if (current_header(v->fp, path, &h, &st, &e2) == 0)
		c = h.number;
	last = c ? (c > m ? c : m) : m + 1; /* as in prepare */
	/* First the marker, then the versions, last the value: a crash
	 * leaves the value with fewer versions, never versions without it
	 * or a number that could be given again. */
	(void)snprintf(marker, sizeof(marker), "%lu" REMOVED_SUFFIX,
		       (unsigned long)last); /* fits */
	if (make_vdir(v, path, err) < 0 ||
	    kf_store_replace(v->vdir, marker, "", 0, err) < 0)
		return -1;
	drop_entries(v->vdir, UINT32_MAX, marker, 1);
	if (unlink(v->fp) < 0)
		return kf_local_errno_fail(err, errno, "cannot remove", path);
	kf_store_sync_dir(v->dir);
	return 0;
}

/* Empty the directory fd refers to (files only) and close it. */
static void empty_dir(int fd)
{
	struct dirent *de;
	DIR *d = fdopendir(fd);

	if (!d) {
		close(fd);
		return;
	}
	for (de = readdir(d); de; de = readdir(d)) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

int kf_local_versions_drop_key(const char *dir, const char *ringkey,
			       struct kf_err *err)
{
	char top[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = snprintf(top, sizeof(top), "%s/" KF_LOCAL_VERSIONS_DIR, dir);

	if (n < 0 || (size_t)n >= sizeof(top))
		return kf_fail(err, KF_E_INVALID, "path too long");
	d = opendir(top);
	if (!d)
		return errno == ENOENT ?
			       0 :
			       kf_local_errno_fail(err, errno,
						   "cannot remove the versions of",
						   ringkey);
	for (de = readdir(d); de; de = readdir(d)) {
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			empty_dir(fd);
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		} else {
			(void)unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	closedir(d);
	if (rmdir(top) < 0)
		return kf_local_errno_fail(err, errno,
					   "cannot remove the versions of",
					   ringkey);
	return 0;
}

int kf_local_read_file(struct local *l, const struct kf_local_vpath *v,
		       const char *fp, const char *path, uint32_t want,
		       struct kf_secret **value, struct kf_err *err)
{
	unsigned char key[32];
	struct kf_local_hdr h;
	struct kf_buf raw;
	const unsigned char *b;
	char num[16];
	uint32_t ver;
	long got;
	int rc = -1;

	*value = NULL;
	kf_buf_init(&raw, KF_LOCAL_FILE_MAX);
	if (kf_store_read(fp, KF_LOCAL_FILE_MAX, &raw, err) < 0)
		goto out;
	b = (const unsigned char *)raw.data;
	if (kf_local_value_version(b, raw.len, path, &ver, err) < 0 ||
	    kf_local_value_header(b, raw.len, &h) < 0)
		goto out;
	if (want && h.number != want) {
		kf_fail(err, KF_E_INTEGRITY,
			"local/%s: the file of version %lu holds version %lu "
			"(copied?)",
			path, (unsigned long)want, (unsigned long)h.number);
		goto out;
	}
	if (kf_local_key_get(l, v->rk, (long)ver, key, &got, err) < 0 ||
	    kf_local_value_open(key, path, b, raw.len, value, err) < 0)
		goto out;
	(void)snprintf(num, sizeof(num), "%lu", (unsigned long)h.number);
	kf_secret_set_version(*value, num);
	rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	kf_buf_release(&raw); /* ciphertext only */
	return rc;
}

/* kf_local_value_path, with KF_E_NOTFOUND for a directory that is not
 * there (KF_E_ISDIR only for one that is). */
static int view_path(struct kf_provider *p, const char *path,
		     struct kf_local_vpath *v, struct kf_err *err)
{
	struct kf_err e2 = KF_ERR_INIT;
	struct kf_attr a;

	if (kf_local_value_path(p->priv, path, 0, v, err) == 0)
		return 0;
	if (err->code == KF_E_ISDIR && p->ops->getattr(p, path, &a, &e2) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	return -1;
}

/* Version want of v's name (the current one or a kept one) into *value.
 * Caller holds tree_lock and the name's lock. */
static int read_number(struct local *l, const struct kf_local_vpath *v,
		       const char *path, uint32_t want,
		       struct kf_secret **value, struct kf_err *err)
{
	struct kf_local_hdr h;
	struct stat st;
	char fp[PATH_MAX];
	int n;

	if (current_header(v->fp, path, &h, &st, err) < 0)
		return -1;
	if (want == h.number)
		return kf_local_read_file(l, v, v->fp, path, want, value, err);
	if (want > h.number || want + KF_LOCAL_KEEP <= h.number)
		return kf_fail(err, KF_E_NOTFOUND, "no such version");
	n = snprintf(fp, sizeof(fp), "%s/%lu", v->vdir, (unsigned long)want);
	if (n < 0 || (size_t)n >= sizeof(fp))
		return kf_fail(err, KF_E_INVALID, "path too long");
	return kf_local_read_file(l, v, fp, path, want, value, err);
}

int kf_local_read_version(struct kf_provider *p, const char *path,
			  const char *version, struct kf_secret **value,
			  int *immutable, struct kf_err *err)
{
	struct local *l = p->priv;
	struct kf_local_vpath v;
	pthread_mutex_t *lock;
	uint32_t want = 0;
	int rc;

	*value = NULL;
	*immutable = 0;
	if (version && strcmp(version, "latest") != 0) {
		want = parse_number(version, strlen(version));
		if (!want)
			return kf_fail(err, KF_E_NOTFOUND, "no such version");
	}
	if (view_path(p, path, &v, err) < 0)
		return -1;
	lock = kf_local_name_lock(l, path);
	pthread_rwlock_rdlock(&l->tree_lock);
	if (!want) {
		rc = kf_local_read_file(l, &v, v.fp, path, 0, value, err);
	} else {
		pthread_mutex_lock(lock);
		rc = read_number(l, &v, path, want, value, err);
		pthread_mutex_unlock(lock);
	}
	pthread_rwlock_unlock(&l->tree_lock);
	*immutable = rc == 0 && want;
	return rc;
}

struct kept {
	uint32_t n;
	int64_t ms;
};

static int newest_first(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

/* The kept versions of v's name, newest (the current file) first, into
 * k (room for KF_LOCAL_KEEP); their count in *nk. */
static int collect(const struct kf_local_vpath *v, const char *path,
		   struct kept *k, size_t *nk, struct kf_err *err)
{
	struct kf_local_hdr h;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int marker;

	if (current_header(v->fp, path, &h, &st, err) < 0)
		return -1;
	k[0].n = h.number;
	k[0].ms = mtime_ms(&st);
	*nk = 1;
	d = opendir(v->vdir);
	if (!d)
		return 0;
	for (de = readdir(d); de && *nk < KF_LOCAL_KEEP; de = readdir(d)) {
		uint32_t n = entry_number(de->d_name, &marker);

		if (!n || marker || n >= h.number ||
		    n + KF_LOCAL_KEEP <= h.number ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISREG(st.st_mode))
			continue;
		k[*nk].n = n;
		k[*nk].ms = mtime_ms(&st);
		(*nk)++;
	}
	closedir(d);
	qsort(k + 1, *nk - 1, sizeof(*k), newest_first);
	return 0;
}

int kf_local_versions(struct kf_provider *p, const char *path,
		      int (*fn)(void *ctx, const char *version, int64_t created,
				const char *labels),
		      void *ctx, struct kf_err *err)
{
	struct local *l = p->priv;
	struct kept k[KF_LOCAL_KEEP];
	struct kf_local_vpath v;
	pthread_mutex_t *lock;
	size_t nk = 0;
	int rc;

	if (view_path(p, path, &v, err) < 0)
		return -1;
	lock = kf_local_name_lock(l, path);
	pthread_rwlock_rdlock(&l->tree_lock);
	pthread_mutex_lock(lock);
	rc = collect(&v, path, k, &nk, err);
	pthread_mutex_unlock(lock);
	pthread_rwlock_unlock(&l->tree_lock);
	for (size_t i = 0; rc == 0 && i < nk; i++) {
		char num[16];

		(void)snprintf(num, sizeof(num), "%lu", (unsigned long)k[i].n);
		if (fn(ctx, num, k[i].ms, i == 0 ? "latest" : ""))
			break;
	}
	return rc;
}

int kf_local_stamp(struct kf_provider *p, const char *path, struct kf_buf *out,
		   struct kf_err *err)
{
	struct kf_local_vpath v;
	struct kf_local_hdr h;
	struct stat st;

	if (view_path(p, path, &v, err) < 0 ||
	    current_header(v.fp, path, &h, &st, err) < 0)
		return -1;
	if (kf_buf_addf(out, "%lu", (unsigned long)h.number) < 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}
