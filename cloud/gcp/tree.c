/*
 * The gcp provider: paths PROJECT/LOCATION/RING/KEY map to Cloud KMS
 * resources, NAME below a key is a ciphertext file in the store.  It never
 * writes plaintext to disk (only KMS ciphertext reaches the store) and
 * never logs a value.
 */
#include "gcp/tree.h"
#include "gcp/auth.h"
#include "gcp/kms.h"
#include "core/http.h"
#include "core/log.h"
#include "core/store.h"
#include "core/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ROTATION 7776000LL	/* 90 days */
#define MIN_ROTATION 86400LL
#define MAX_PROJECTS 32
#define DIR_CACHE 512
#define TMP_PREFIX KF_STORE_TMP_PREFIX

/* A path split into its components (project, location, ring, key, name). */
struct gpath {
	int depth;
	char c[5][256];
};

struct dir_ent {
	char name[640];		/* resource name known to exist */
	uint64_t until_ms;
};

struct gcp {
	struct kf_gcp_auth *auth;
	struct kf_gcp_kms kms;
	char *projects[MAX_PROJECTS];
	size_t nprojects;
	char store[PATH_MAX];		/* CFG_STORE/gcp */
	long long rotation_s;
	unsigned ttl;
	int read_only;
	pthread_mutex_t mu;
	struct dir_ent dirs[DIR_CACHE];	/* protected by mu */
	size_t next_dir;		/* protected by mu */
};

static struct gcp *G(struct kf_provider *p)
{
	return p->priv;
}

int kf_gcp_valid_value_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255 || name[0] == '.')
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._+=@,-") == n;
}

/* Locations: [a-z0-9-]{1,63}. */
static int valid_location(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Project ids (also domain-scoped ones): [A-Za-z0-9.:_-]{1,100}. */
static int valid_project(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 100 && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789.:_-") == n;
}

static int split(const char *path, struct gpath *g, struct kf_err *err)
{
	const char *p = path;

	g->depth = 0;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);

		if (g->depth == 5)
			return kf_fail(err, KF_E_NOTDIR, "not a directory");
		if (n == 0)
			return kf_fail(err, KF_E_NOTFOUND, "no such entry");
		if (n >= sizeof(g->c[0]))
			return kf_fail(err, KF_E_INVALID, "name too long "
				       "(ids: 63, value names: 255 characters)");
		memcpy(g->c[g->depth], p, n);
		g->c[g->depth][n] = '\0';
		g->depth++;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Resource name of the first depth components (1..4). */
static int resource(const struct gpath *g, int depth, char *out, size_t n)
{
	static const char *const seg[] = { "projects", "locations", "keyRings",
					   "cryptoKeys" };
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < depth && i < 4; i++) {
		int w = snprintf(out + len, n - len, "%s%s/%s", i ? "/" : "",
				 seg[i], g->c[i]);

		if (w < 0 || (size_t)w >= n - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

/* Store path of the first depth components (1..5), "" for depth 0. */
static int store_path(struct gcp *s, const struct gpath *g, int depth,
		      char *out, size_t n)
{
	size_t len;
	int w = snprintf(out, n, "%s", s->store);

	if (w < 0 || (size_t)w >= n)
		return -1;
	len = (size_t)w;
	for (int i = 0; i < depth; i++) {
		w = snprintf(out + len, n - len, "/%s", g->c[i]);
		if (w < 0 || (size_t)w >= n - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

static int project_known(struct gcp *s, const char *p)
{
	for (size_t i = 0; i < s->nprojects; i++)
		if (strcmp(s->projects[i], p) == 0)
			return 1;
	return 0;
}

static int cache_has(struct gcp *s, const char *name)
{
	uint64_t now = kf_clock_now_ms();
	int hit = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < DIR_CACHE && !hit; i++)
		hit = s->dirs[i].until_ms > now &&
		      strcmp(s->dirs[i].name, name) == 0;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void cache_add(struct gcp *s, const char *name)
{
	uint64_t now = kf_clock_now_ms();
	size_t slot;

	if (!s->ttl || strlen(name) >= sizeof(s->dirs[0].name))
		return;
	pthread_mutex_lock(&s->mu);
	slot = s->next_dir;
	for (size_t i = 0; i < DIR_CACHE; i++)
		if (strcmp(s->dirs[i].name, name) == 0 ||
		    s->dirs[i].until_ms <= now) {
			slot = i;
			break;
		}
	if (slot == s->next_dir)
		s->next_dir = (s->next_dir + 1) % DIR_CACHE;
	snprintf(s->dirs[slot].name, sizeof(s->dirs[slot].name), "%s", name);
	s->dirs[slot].until_ms = now + (uint64_t)s->ttl * 1000u;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Does the directory at depth 1..4 exist?  Syntax first (an invalid id
 * cannot exist), then the positive cache, then one KMS get.
 */
static int dir_exists(struct gcp *s, const struct gpath *g, int depth,
		      struct kf_err *err)
{
	char name[640];
	int rc;

	if (!project_known(s, g->c[0]))
		return kf_fail(err, KF_E_NOTFOUND, "unknown project");
	if (depth == 1)
		return 0;
	if (!valid_location(g->c[1]) ||
	    (depth >= 3 && !kf_gcp_valid_id(g->c[2])) ||
	    (depth >= 4 && !kf_gcp_valid_id(g->c[3])))
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (resource(g, depth, name, sizeof(name)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "name too long");
	if (cache_has(s, name))
		return 0;
	rc = kf_gcp_kms_get(&s->kms, name, NULL, err);
	if (rc == 0)
		cache_add(s, name);
	return rc;
}

static int getattr_s(struct gcp *s, const char *path, struct kf_attr *attr,
		     struct kf_err *err)
{
	struct gpath g;
	char sp[PATH_MAX];
	struct stat st;

	memset(attr, 0, sizeof(*attr));
	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth < 5) {
		if (g.depth > 0 && dir_exists(s, &g, g.depth, err) < 0)
			return -1;
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (!kf_gcp_valid_value_name(g.c[4]) ||
	    store_path(s, &g, 5, sp, sizeof(sp)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (lstat(sp, &st) < 0 || !S_ISREG(st.st_mode))
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	/* The plaintext length is unknown without a KMS decrypt. */
	attr->kind = KF_KIND_FILE;
	attr->size_known = st.st_size == 0;
	attr->size = 0;
	attr->mtime = st.st_mtime;
	return 0;
}

static int gcp_getattr(struct kf_provider *p, const char *path,
		       struct kf_attr *attr, struct kf_err *err)
{
	return getattr_s(G(p), path, attr, err);
}

struct list_ctx {
	struct gcp *s;
	const struct gpath *g;
	int depth;		/* depth of the listed directory */
	kf_list_fn fn;
	void *ctx;
};

static int list_item(void *v, const char *id, json_t *item)
{
	struct list_ctx *lc = v;
	struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };
	struct gpath child = *lc->g;
	char name[640];

	if (lc->depth == 1 ? !valid_location(id) : !kf_gcp_valid_id(id))
		return 0;
	snprintf(child.c[lc->depth], sizeof(child.c[0]), "%s", id);
	if (resource(&child, lc->depth + 1, name, sizeof(name)) == 0)
		cache_add(lc->s, name);
	return lc->fn(lc->ctx, id, &a);
}

static int list_store(struct gcp *s, const struct gpath *g, kf_list_fn fn,
		      void *ctx, struct kf_err *err)
{
	char sp[PATH_MAX];
	DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	if (dir_exists(s, g, 4, err) < 0)
		return -1;
	if (store_path(s, g, 4, sp, sizeof(sp)) < 0)
		return kf_fail(err, KF_E_INVALID, "path too long");
	d = opendir(sp);
	if (!d) {
		if (errno == ENOENT)
			return 0;	/* no value written yet */
		return kf_fail(err, KF_E_IO, "cannot read the store: %s",
			       strerror(errno));
	}
	while ((de = readdir(d))) {
		struct kf_attr a = { KF_KIND_FILE, 0, 0, 0 };
		struct stat st;

		if (!kf_gcp_valid_value_name(de->d_name))
			continue;	/* ".", "..", temp files, strays */
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

static int gcp_list(struct kf_provider *p, const char *path,
		    const char *page, kf_list_fn fn, void *ctx,
		    struct kf_buf *next, struct kf_err *err)
{
	static const char *const coll[] = { NULL, "locations", "keyRings",
					    "cryptoKeys" };
	struct gcp *s = G(p);
	struct gpath g;
	struct list_ctx lc;
	char parent[640];

	if (next)
		kf_buf_reset(next);
	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth == 0) {
		struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };

		for (size_t i = 0; i < s->nprojects; i++)
			if (fn(ctx, s->projects[i], &a))
				break;
		return 0;
	}
	if (g.depth == 5)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (g.depth == 4)
		return list_store(s, &g, fn, ctx, err);
	if (!project_known(s, g.c[0]) ||
	    (g.depth >= 2 && !valid_location(g.c[1])) ||
	    (g.depth >= 3 && !kf_gcp_valid_id(g.c[2])))
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (resource(&g, g.depth, parent, sizeof(parent)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "name too long");
	lc.s = s;
	lc.g = &g;
	lc.depth = g.depth;
	lc.fn = fn;
	lc.ctx = ctx;
	return kf_gcp_kms_list(&s->kms, parent, coll[g.depth], page, list_item,
			       &lc, next, err);
}

static int gcp_mkdir(struct kf_provider *p, const char *path,
		     struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char parent[640], name[640];
	int rc;

	if (split(path, &g, err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (g.depth < 3)
		return kf_fail(err, KF_E_PERM,
			       "projects and locations cannot be created "
			       "through keyfs");
	if (g.depth == 5)
		return kf_fail(err, KF_E_PERM,
			       "below a crypto key there are only value files");
	if (!kf_gcp_valid_id(g.c[g.depth - 1]))
		return kf_fail(err, KF_E_INVALID,
			       "invalid %s id (allowed: [a-zA-Z0-9_-]{1,63})",
			       g.depth == 3 ? "key ring" : "crypto key");
	if (dir_exists(s, &g, g.depth - 1, err) < 0)
		return -1;
	if (resource(&g, g.depth - 1, parent, sizeof(parent)) < 0 ||
	    resource(&g, g.depth, name, sizeof(name)) < 0)
		return kf_fail(err, KF_E_INVALID, "name too long");
	if (g.depth == 3)
		rc = kf_gcp_kms_create_ring(&s->kms, parent, g.c[2], err);
	else
		rc = kf_gcp_kms_create_key(&s->kms, parent, g.c[3],
					   s->rotation_s, err);
	if (rc == 0) {
		cache_add(s, name);
		kf_log(KF_LOG_INFO, "gcp: created %s", name);
	}
	return rc;
}

static int gcp_rmdir(struct kf_provider *p, const char *path,
		     struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;

	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth == 5)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (g.depth >= 1 && dir_exists(s, &g, g.depth, err) < 0)
		return -1;
	if (g.depth >= 3) {
		kf_log(KF_LOG_WARN,
		       "gcp: rmdir %s: Cloud KMS cannot delete key rings or "
		       "crypto keys", path);
		return kf_fail(err, KF_E_PERM,
			       "Cloud KMS cannot delete key rings or crypto "
			       "keys");
	}
	return kf_fail(err, KF_E_PERM,
		       "projects and locations cannot be removed");
}

/* Parse a value path: depth 5 with a valid name, else an error. */
static int value_path(struct gcp *s, const char *path, struct gpath *g,
		      char *sp, size_t splen, struct kf_err *err)
{
	if (split(path, g, err) < 0)
		return -1;
	if (g->depth < 4)
		return kf_fail(err, g->depth == 0 ? KF_E_ISDIR : KF_E_PERM,
			       "value files live below a crypto key "
			       "(PROJECT/LOCATION/RING/KEY/NAME)");
	if (g->depth == 4)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (!kf_gcp_valid_value_name(g->c[4]))
		return kf_fail(err, KF_E_INVALID,
			       "invalid value name (allowed: 1-255 of "
			       "[A-Za-z0-9._+=@,-], not starting with '.')");
	if (store_path(s, g, 5, sp, splen) < 0)
		return kf_fail(err, KF_E_INVALID, "path too long");
	return 0;
}

static int gcp_unlink(struct kf_provider *p, const char *path,
		      struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char sp[PATH_MAX];

	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth < 5)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (value_path(s, path, &g, sp, sizeof(sp), err) < 0) {
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

static int gcp_can_create(struct kf_provider *p, const char *path,
			  struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char sp[PATH_MAX];
	struct stat st;

	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth == 4)	/* a file in a key ring: values need a key */
		return kf_fail(err, KF_E_PERM,
			       "value files live below a crypto key "
			       "(PROJECT/LOCATION/RING/KEY/NAME)");
	if (value_path(s, path, &g, sp, sizeof(sp), err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (dir_exists(s, &g, 4, err) < 0)
		return -1;
	if (lstat(sp, &st) == 0 && !S_ISREG(st.st_mode))
		return kf_fail(err, KF_E_ISDIR, "not a value file");
	return 0;
}

static int read_all(int fd, struct kf_buf *out, struct kf_err *err)
{
	char chunk[8192];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kf_fail(err, KF_E_IO, "cannot read ciphertext: %s",
				       strerror(errno));
		if (n == 0)
			return 0;
		if (kf_buf_add(out, chunk, (size_t)n) < 0)
			return kf_fail(err, KF_E_INTEGRITY,
				       "ciphertext file larger than %d bytes",
				       KF_GCP_KMS_MAX_CIPHERTEXT);
	}
}

static int gcp_read(struct kf_provider *p, const char *path,
		    struct kf_secret **value, struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char sp[PATH_MAX], key[640];
	struct kf_buf ct;
	int fd = -1, rc = -1;

	*value = NULL;
	kf_buf_init(&ct, KF_GCP_KMS_MAX_CIPHERTEXT);
	if (value_path(s, path, &g, sp, sizeof(sp), err) < 0) {
		if (err && err->code == KF_E_INVALID)
			err->code = KF_E_NOTFOUND;
		goto out;
	}
	fd = open(sp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		kf_fail(err, errno == ENOENT ? KF_E_NOTFOUND : KF_E_IO,
			"cannot open ciphertext: %s", strerror(errno));
		goto out;
	}
	if (read_all(fd, &ct, err) < 0)
		goto out;
	if (ct.len == 0) {
		/* An empty value is stored as an empty file: no KMS call. */
		*value = kf_secret_new(0);
		if (!*value) {
			kf_fail(err, KF_E_NOMEM, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (resource(&g, 4, key, sizeof(key)) < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	rc = kf_gcp_kms_decrypt(&s->kms, key, ct.data, ct.len, value, err);
out:
	if (fd >= 0)
		close(fd);
	kf_buf_release(&ct);
	return rc;
}

/* mkdir -p below the store, 0700. */
static int make_dirs(struct gcp *s, const struct gpath *g, int depth,
		     struct kf_err *err)
{
	char sp[PATH_MAX];

	for (int i = 1; i <= depth; i++) {
		if (store_path(s, g, i, sp, sizeof(sp)) < 0)
			return kf_fail(err, KF_E_INVALID, "path too long");
		if (mkdir(sp, 0700) < 0 && errno != EEXIST)
			return kf_fail(err, KF_E_IO,
				       "cannot create store directory: %s",
				       strerror(errno));
	}
	return 0;
}

static int gcp_commit(struct kf_provider *p, const char *path,
		      const unsigned char *value, size_t n, const char *token,
		      int flags, struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char sp[PATH_MAX], dir[PATH_MAX], key[640], used[700] = "";
	struct kf_buf ct;
	struct stat st;
	int rc = -1;

	kf_buf_init(&ct, 4 * KF_GCP_KMS_MAX_PLAINTEXT);
	if (value_path(s, path, &g, sp, sizeof(sp), err) < 0)
		goto out;
	if (s->read_only) {
		kf_fail(err, KF_E_ROFS, "read-only mount");
		goto out;
	}
	if (n > KF_GCP_KMS_MAX_PLAINTEXT) {
		kf_fail(err, KF_E_TOOBIG,
			"Cloud KMS encrypts at most %d bytes",
			KF_GCP_KMS_MAX_PLAINTEXT);
		goto out;
	}
	if (!(flags & KF_COMMIT_CREATE) && lstat(sp, &st) < 0) {
		kf_fail(err, KF_E_NOTFOUND, "no such value");
		goto out;
	}
	if (resource(&g, 4, key, sizeof(key)) < 0 ||
	    store_path(s, &g, 4, dir, sizeof(dir)) < 0) {
		kf_fail(err, KF_E_INVALID, "name too long");
		goto out;
	}
	if (n == 0) {
		/* No KMS call, but the key must exist. */
		if (dir_exists(s, &g, 4, err) < 0)
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
	rc = 0;
out:
	kf_buf_release(&ct);
	return rc;
}

#define XA_ID "user.keyfs.id"
#define XA_ROT "user.keyfs.rotation_period"
#define XA_PRIMARY "user.keyfs.primary"
#define XA_ROTATE "user.keyfs.rotate"

/* Name of the object whose user.keyfs.id is asked for (value files: the
 * crypto key that encrypts them). */
static int xattr_target(struct gcp *s, const char *path, struct gpath *g,
			char *name, size_t n, struct kf_err *err)
{
	struct kf_attr a;

	if (getattr_s(s, path, &a, err) < 0)
		return -1;
	if (split(path, g, err) < 0)
		return -1;
	if (g->depth == 0)
		return kf_fail(err, KF_E_NODATA, "no such attribute");
	if (resource(g, g->depth < 4 ? g->depth : 4, name, n) < 0)
		return kf_fail(err, KF_E_INVALID, "name too long");
	return 0;
}

static int gcp_getxattr(struct kf_provider *p, const char *path,
			const char *xname, struct kf_buf *out,
			struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char name[640];
	json_t *k = NULL;
	const char *v = NULL;
	int rc = -1;

	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (strcmp(xname, XA_ID) == 0) {
		if (kf_buf_adds(out, name) < 0)
			return kf_fail(err, KF_E_RANGE, "attribute too long");
		return 0;
	}
	if (g.depth != 4 || (strcmp(xname, XA_ROT) != 0 &&
			     strcmp(xname, XA_PRIMARY) != 0))
		return kf_fail(err, KF_E_NODATA, "no such attribute");
	if (kf_gcp_kms_get(&s->kms, name, &k, err) < 0)
		goto out;
	if (strcmp(xname, XA_ROT) == 0) {
		json_t *r = json_object_get(k, "rotationPeriod");

		v = json_is_string(r) ? json_string_value(r) : NULL;
	} else {
		json_t *pr = json_object_get(k, "primary");
		json_t *pn = json_object_get(pr, "name");

		v = json_is_string(pn) ? json_string_value(pn) : NULL;
	}
	if (!v) {
		kf_fail(err, KF_E_NODATA, "no such attribute");
		goto out;
	}
	if (kf_buf_adds(out, v) < 0) {
		kf_fail(err, KF_E_RANGE, "attribute too long");
		goto out;
	}
	rc = 0;
out:
	json_decref(k);
	return rc;
}

static int gcp_listxattr(struct kf_provider *p, const char *path,
			 struct kf_buf *out, struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char name[640];
	json_t *k = NULL;
	int rc = -1;

	if (split(path, &g, err) < 0)
		return -1;
	if (g.depth == 0)
		return 0;
	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (kf_buf_add(out, XA_ID, sizeof(XA_ID)) < 0)
		return kf_fail(err, KF_E_RANGE, "attribute list too long");
	if (g.depth != 4)
		return 0;
	if (kf_gcp_kms_get(&s->kms, name, &k, err) < 0)
		goto out;
	if ((json_object_get(k, "rotationPeriod") &&
	     kf_buf_add(out, XA_ROT, sizeof(XA_ROT)) < 0) ||
	    (json_object_get(k, "primary") &&
	     kf_buf_add(out, XA_PRIMARY, sizeof(XA_PRIMARY)) < 0)) {
		kf_fail(err, KF_E_RANGE, "attribute list too long");
		goto out;
	}
	rc = 0;
out:
	json_decref(k);
	return rc;
}

static int gcp_setxattr(struct kf_provider *p, const char *path,
			const char *xname, const void *value, size_t n,
			struct kf_err *err)
{
	struct gcp *s = G(p);
	struct gpath g;
	char name[640], v[256], ver[700];
	long long secs;
	size_t prefix;

	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (strcmp(xname, XA_ID) == 0)
		return kf_fail(err, KF_E_PERM, "%s is read-only", XA_ID);
	if (strcmp(xname, XA_ROT) != 0 && strcmp(xname, XA_PRIMARY) != 0 &&
	    strcmp(xname, XA_ROTATE) != 0)
		return kf_fail(err, KF_E_NOTSUP, "unsupported attribute");
	if (g.depth != 4)
		return kf_fail(err, KF_E_NOTSUP,
			       "%s applies to crypto keys only", xname);
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (n >= sizeof(v))
		return kf_fail(err, KF_E_INVALID, "attribute value too long");
	memcpy(v, value, n);
	v[n] = '\0';
	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == ' '))
		v[--n] = '\0';
	if (strcmp(xname, XA_ROTATE) == 0) {
		if (kf_gcp_kms_rotate(&s->kms, name, ver, sizeof(ver), err) < 0)
			return -1;
		kf_log(KF_LOG_INFO, "gcp: rotated %s, primary is now %s", name,
		       ver);
		return 0;
	}
	if (strcmp(xname, XA_ROT) == 0) {
		secs = kf_gcp_parse_duration(v);
		if (secs < MIN_ROTATION)
			return kf_fail(err, KF_E_INVALID,
				       "rotation period must be a duration of "
				       "at least 86400s");
		return kf_gcp_kms_set_rotation(&s->kms, name, secs, err);
	}
	/* primary: a version number or the version's full name. */
	prefix = strlen(name);
	if (strncmp(v, name, prefix) == 0 &&
	    strncmp(v + prefix, "/cryptoKeyVersions/", 19) == 0)
		return kf_gcp_kms_set_primary(&s->kms, name, v + prefix + 19,
					      err);
	return kf_gcp_kms_set_primary(&s->kms, name, v, err);
}

static void gcp_free(struct kf_provider *p)
{
	struct gcp *s;

	if (!p)
		return;
	s = p->priv;
	if (s) {
		kf_gcp_auth_free(s->auth);
		for (size_t i = 0; i < s->nprojects; i++)
			free(s->projects[i]);
		pthread_mutex_destroy(&s->mu);
		free(s);
	}
	free(p);
}

static const struct kf_provider_ops gcp_ops = {
	.getattr = gcp_getattr,
	.list = gcp_list,
	.mkdir = gcp_mkdir,
	.rmdir = gcp_rmdir,
	.unlink = gcp_unlink,
	.can_create = gcp_can_create,
	.read = gcp_read,
	.commit = gcp_commit,
	.getxattr = gcp_getxattr,
	.setxattr = gcp_setxattr,
	.listxattr = gcp_listxattr,
	.start = NULL,
	.free = gcp_free,
};

static int add_projects(struct gcp *s, const char *list, struct kf_err *err)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ":");
		char id[128];

		if (n == 0 || n >= sizeof(id))
			return kf_fail(err, KF_E_INVALID,
				       "gcp_project: empty or too long id");
		memcpy(id, p, n);
		id[n] = '\0';
		if (!valid_project(id))
			return kf_fail(err, KF_E_INVALID,
				       "gcp_project: invalid project id \"%s\"",
				       id);
		if (!project_known(s, id)) {
			if (s->nprojects == MAX_PROJECTS)
				return kf_fail(err, KF_E_INVALID,
					       "gcp_project: more than %d "
					       "projects", MAX_PROJECTS);
			s->projects[s->nprojects] = strdup(id);
			if (!s->projects[s->nprojects])
				return kf_fail(err, KF_E_NOMEM, "out of memory");
			s->nprojects++;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return 0;
}

static int probe_item(void *ctx, const char *id, json_t *item)
{
	return 1;
}

static int gcp_create(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err)
{
	struct kf_provider *p = NULL;
	struct gcp *s = NULL;
	struct kf_gcp_auth_cfg acfg = { 0 };
	const char *proj = kf_config_get(cfg, "gcp_project");
	const char *rot = kf_config_get(cfg, "gcp_rotation_period");
	char parent[200], found[128];
	unsigned timeout_ms = cfg->timeout ? cfg->timeout * 1000u : 30000u;
	struct kf_err perr = KF_ERR_INIT;
	int w, rc = -1;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	s = calloc(1, sizeof(*s));
	if (!p || !s) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&s->mu, NULL);
	p->ops = &gcp_ops;
	p->name = "gcp";
	p->max_value = KF_GCP_KMS_MAX_PLAINTEXT;
	p->priv = s;
	s->ttl = cfg->ttl;
	s->read_only = cfg->read_only;
	s->rotation_s = DEFAULT_ROTATION;
	if (rot) {
		s->rotation_s = kf_gcp_parse_duration(rot);
		if (s->rotation_s < MIN_ROTATION) {
			kf_fail(err, KF_E_INVALID,
				"gcp_rotation_period=%.40s: need a duration of "
				"at least 86400s (e.g. 100000s, 30d)", rot);
			goto out;
		}
	}
	w = snprintf(s->store, sizeof(s->store), "%s/gcp",
		     cfg->store ? cfg->store : ".");
	if (!cfg->store || w < 0 || (size_t)w >= sizeof(s->store)) {
		kf_fail(err, KF_E_INVALID, "gcp: no usable store directory");
		goto out;
	}
	if (kf_gcp_kms_init(&s->kms, kf_config_get(cfg, "gcp_endpoint"), NULL,
			    timeout_ms, err) < 0)
		goto out;
	acfg.credentials = kf_config_get(cfg, "gcp_credentials");
	acfg.timeout_ms = timeout_ms < 10000 ? timeout_ms : 10000;
	if (kf_gcp_auth_new(&acfg, &s->auth, err) < 0)
		goto out;
	s->kms.auth = s->auth;
	if (proj && *proj) {
		if (add_projects(s, proj, err) < 0)
			goto out;
	} else {
		if (kf_gcp_auth_project(s->auth, found, sizeof(found), err) < 0)
			goto out;
		if (add_projects(s, found, err) < 0)
			goto out;
	}
	if (mkdir(s->store, 0700) < 0 && errno != EEXIST) {
		kf_fail(err, KF_E_IO, "cannot create %s: %s", s->store,
			strerror(errno));
		goto out;
	}
	/* One cheap call so an unreachable endpoint fails the mount now. */
	snprintf(parent, sizeof(parent), "projects/%s", s->projects[0]);
	if (kf_gcp_kms_list(&s->kms, parent, "locations", NULL, probe_item,
			    NULL, NULL, &perr) < 0) {
		if (perr.code == KF_E_UNAVAILABLE || perr.code == KF_E_TIMEOUT ||
		    perr.code == KF_E_INVALID) {
			kf_fail(err, perr.code, "Cloud KMS endpoint %s: %s",
				s->kms.endpoint, perr.msg);
			goto out;
		}
		kf_log(KF_LOG_WARN, "gcp: listing locations of %s failed: %s",
		       s->projects[0], perr.msg);
	}
	kf_log(KF_LOG_INFO, "gcp: Cloud KMS at %s, %zu project(s), first %s",
	       s->kms.endpoint, s->nprojects, s->projects[0]);
	*out = p;
	p = NULL;
	s = NULL;
	rc = 0;
out:
	if (p) {
		p->priv = s;
		gcp_free(p);
	} else if (s) {
		kf_gcp_auth_free(s->auth);
		free(s);
	}
	return rc;
}

static int gcp_detect(const struct kf_config *cfg)
{
	return kf_gcp_auth_present(kf_config_get(cfg, "gcp_credentials"));
}

static const struct kf_provider_opt gcp_opts[] = {
	{ "gcp_project", "P[:P...]",
	  "Google Cloud projects listed under gcp/ (default: "
	  "GOOGLE_CLOUD_PROJECT, the key file, gcloud's project)" },
	{ "gcp_credentials", "FILE",
	  "service account key or authorized_user JSON (default: "
	  "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server)" },
	{ "gcp_endpoint", "URL",
	  "Cloud KMS endpoint (default: CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS"
	  " or https://cloudkms.googleapis.com/)" },
	{ "gcp_rotation_period", "DURATION",
	  "rotation period of new crypto keys, e.g. 100000s or 30d (default "
	  "7776000s = 90 days)" },
	{ NULL, NULL, NULL },
};

const struct kf_provider_desc kf_gcp_desc = {
	.name = "gcp",
	.opts = gcp_opts,
	.detect = gcp_detect,
	.create = gcp_create,
};
