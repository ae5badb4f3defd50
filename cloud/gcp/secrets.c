/*
 * Secret Manager under gcp/PROJECT/secrets/: the directory lists the
 * project's secret ids (pages), each secret is a value file.  Read =
 * access "latest" (CRC32C checked), write = addVersion (a new name is
 * created with its value, with -o gsm_kms_key= as CMEK, and deleted
 * again when the value fails), rm = delete with the etag of a get.
 * Versions NAME:N (fixed) and NAME:latest (moves); the stamp is the
 * newest ENABLED version number, what a read sets as the version.
 * Secret Manager has no hierarchy: mkdir inside secrets/ is refused.
 * When the project's secrets cannot be listed (Secret Manager disabled
 * or not allowed), the directory lists empty and says why in the log.
 * The routers at the end send every other path to values.c / xattr.c.
 * Values are never logged.
 */
#include "gcp/secrets.h"
#include "core/clock.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XA_ID "user.keyfs.id"
#define XA_VERSION "user.keyfs.version"

/* A secrets path: PROJECT/secrets (depth 2) or PROJECT/secrets/ID (3). */
struct sec_path {
	int depth;
	const char *project, *id;
	struct kf_gcp_path g;
};

int kf_gcp_is_secrets(const char *path)
{
	const char *c = strchr(path, '/');
	size_t n = strlen(KF_GCP_SECRETS_DIR);

	return c && c != path && strncmp(c + 1, KF_GCP_SECRETS_DIR, n) == 0 &&
	       (c[1 + n] == '\0' || c[1 + n] == '/');
}

/* Split a secrets path of a known project: NOTDIR below a secret. */
static int sec_split(struct kf_gcp *s, const char *path, struct sec_path *sp,
		     struct kf_err *err)
{
	if (kf_gcp_path_split(path, &sp->g, err) < 0)
		return -1;
	if (sp->g.depth < 2 || strcmp(sp->g.c[1], KF_GCP_SECRETS_DIR) != 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (sp->g.depth > 3)
		return kf_fail(err, KF_E_NOTDIR,
			       "a secret is a file, not a directory");
	if (!kf_gcp_project_known(s, sp->g.c[0]))
		return kf_fail(err, KF_E_NOTFOUND, "unknown project");
	sp->depth = sp->g.depth;
	sp->project = sp->g.c[0];
	sp->id = sp->depth == 3 ? sp->g.c[2] : NULL;
	return 0;
}

/*
 * A secret's path for an operation on its value: depth 3 and a valid
 * id.  bad_id is the code for an invalid id (NOTFOUND when looking one
 * up, INVALID when creating one).
 */
static int sec_value(struct kf_gcp *s, const char *path, struct sec_path *sp,
		     int bad_id, struct kf_err *err)
{
	if (sec_split(s, path, sp, err) < 0)
		return -1;
	if (sp->depth == 2)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (!kf_gsm_valid_id(sp->id))
		return kf_fail(err, bad_id,
			       "invalid secret id (allowed: "
			       "[A-Za-z0-9_-]{1,255})");
	return 0;
}

/*
 * Secrets known to exist (listed, read or written within the ttl), kept
 * in the provider's positive name cache as "projects/P/secrets/ID" (no
 * Cloud KMS name has that form), so a stat after `ls` costs no call.
 * 1 when the name is held (before op).
 */
enum ids_op {
	IDS_HAS,
	IDS_NOTE,
	IDS_FORGET
};

static int ids_cache(struct kf_gcp *s, const char *project, const char *id,
		     enum ids_op op)
{
	uint64_t now = kf_clock_now_ms();
	char name[sizeof(s->dirs[0].name)];
	size_t slot = KF_GCP_DIR_CACHE;
	int hit = 0, held = 0;

	if (!s->ttl ||
	    (size_t)snprintf(name, sizeof(name), "projects/%s/secrets/%s",
			     project, id) >= sizeof(name))
		return 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < KF_GCP_DIR_CACHE; i++) {
		if (strcmp(s->dirs[i].name, name) != 0) {
			if (slot == KF_GCP_DIR_CACHE &&
			    s->dirs[i].until_ms <= now)
				slot = i;
			continue;
		}
		hit |= s->dirs[i].until_ms > now;
		held = 1;
		if (op != IDS_HAS)
			s->dirs[i].until_ms =
				op == IDS_NOTE ?
					now + (uint64_t)s->ttl * 1000u :
					0;
	}
	if (op == IDS_NOTE && !held) {
		if (slot == KF_GCP_DIR_CACHE) {
			slot = s->next_dir;
			s->next_dir = (s->next_dir + 1) % KF_GCP_DIR_CACHE;
		}
		memcpy(s->dirs[slot].name, name, strlen(name) + 1);
		s->dirs[slot].until_ms = now + (uint64_t)s->ttl * 1000u;
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

int kf_gcp_secrets_getattr(struct kf_gcp *s, const char *path,
			   struct kf_attr *attr, struct kf_err *err)
{
	struct sec_path sp;
	struct kf_gsm_secret sec;
	int rc;

	memset(attr, 0, sizeof(*attr));
	if (sec_split(s, path, &sp, err) < 0)
		return -1;
	if (sp.depth == 2) {
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (!kf_gsm_valid_id(sp.id))
		return kf_fail(err, KF_E_NOTFOUND, "no such secret");
	attr->kind = KF_KIND_FILE;
	if (ids_cache(s, sp.project, sp.id, IDS_HAS))
		return 0;
	rc = kf_gsm_get(&s->gsm, sp.project, sp.id, &sec, err);
	if (rc == 0) {
		attr->mtime = sec.create_ms > 0 ? sec.create_ms / 1000 : 0;
		ids_cache(s, sp.project, sp.id, IDS_NOTE);
	} else {
		attr->kind = KF_KIND_NONE;
	}
	kf_gsm_secret_release(&sec);
	return rc;
}

struct list_ctx {
	struct kf_gcp *s;
	const char *project;
	kf_list_fn fn;
	void *ctx;
};

static int list_one(void *v, const struct kf_gsm_secret *sec)
{
	struct list_ctx *lc = v;
	struct kf_attr a = { KF_KIND_FILE, 0, 0, 0 };

	if (!kf_gsm_valid_id(sec->id))
		return 0;
	a.mtime = sec->create_ms > 0 ? sec->create_ms / 1000 : 0;
	ids_cache(lc->s, lc->project, sec->id, IDS_NOTE);
	return lc->fn(lc->ctx, sec->id, &a);
}

/* Said once per process: the log is not flooded by every ls. */
static void say_unlisted(const char *project, const struct kf_err *e)
{
	static int said;

	if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		return;
	kf_log(KF_LOG_WARN,
	       "gcp: %s/secrets lists empty: Secret Manager refused to list "
	       "the project's secrets (disabled, or not allowed): %s",
	       project, e->msg);
}

int kf_gcp_secrets_list(struct kf_gcp *s, const char *path, const char *page,
			kf_list_fn fn, void *ctx, struct kf_buf *next,
			struct kf_err *err)
{
	struct list_ctx lc = { s, NULL, fn, ctx };
	struct kf_err le = KF_ERR_INIT;
	struct sec_path sp;

	if (next)
		kf_buf_reset(next);
	if (sec_split(s, path, &sp, err) < 0)
		return -1;
	if (sp.depth == 3)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	lc.project = sp.project;
	if (kf_gsm_list_secrets(&s->gsm, sp.project, 0, page, list_one, &lc,
				next, &le) == 0)
		return 0;
	if (le.code == KF_E_DENIED) {
		say_unlisted(sp.project, &le);
		if (next)
			kf_buf_reset(next);
		return 0;
	}
	if (err)
		*err = le;
	return -1;
}

int kf_gcp_secrets_mkdir(struct kf_gcp *s, const char *path, struct kf_err *err)
{
	struct sec_path sp;

	if (sec_split(s, path, &sp, err) < 0)
		return -1;
	if (sp.depth == 2)
		return kf_fail(err, KF_E_EXISTS, "exists");
	kf_log(KF_LOG_WARN,
	       "gcp: mkdir %s: Secret Manager has no directories; a secret "
	       "is a file in %s/secrets/",
	       path, sp.project);
	return kf_fail(err, KF_E_PERM,
		       "Secret Manager has no directories (secrets are files)");
}

int kf_gcp_secrets_rmdir(struct kf_gcp *s, const char *path, struct kf_err *err)
{
	struct sec_path sp;
	struct kf_attr a;

	if (sec_split(s, path, &sp, err) < 0)
		return -1;
	if (sp.depth == 3) {
		if (kf_gcp_secrets_getattr(s, path, &a, err) < 0)
			return -1;
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	}
	return kf_fail(err, KF_E_PERM,
		       "the secrets directory cannot be removed");
}

static int secrets_unlink(struct kf_gcp *s, const char *path,
			  struct kf_err *err)
{
	struct sec_path sp;
	struct kf_gsm_secret sec;
	int rc = -1;

	if (sec_value(s, path, &sp, KF_E_NOTFOUND, err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	/* A secret changed between the get and the delete is not removed
	 * blindly: one more round with the new etag, then EBUSY. */
	for (int round = 0; round < 2 && rc < 0; round++) {
		if (kf_gsm_get(&s->gsm, sp.project, sp.id, &sec, err) == 0)
			rc = kf_gsm_delete(&s->gsm, sp.project, sp.id, sec.etag,
					   err);
		kf_gsm_secret_release(&sec);
		if (rc < 0 && (!err || err->code != KF_E_STATE))
			break;
	}
	if (rc == 0 || (err && err->code == KF_E_NOTFOUND))
		ids_cache(s, sp.project, sp.id, IDS_FORGET);
	if (rc == 0)
		kf_log(KF_LOG_INFO, "gcp: deleted secret %s/%s", sp.project,
		       sp.id);
	return rc;
}

static int secrets_can_create(struct kf_gcp *s, const char *path,
			      struct kf_err *err)
{
	struct sec_path sp;

	if (sec_value(s, path, &sp, KF_E_INVALID, err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	return 0;
}

/* One secrets.get: the secret exists (a write adds a version) or not (a
 * write creates it); refused or unreachable shows now. */
static int secrets_check_write(struct kf_gcp *s, const char *path,
			       struct kf_err *err)
{
	struct sec_path sp;
	struct kf_gsm_secret sec;
	struct kf_err ge = KF_ERR_INIT;
	int rc;

	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (sec_value(s, path, &sp, KF_E_INVALID, err) < 0)
		return -1;
	rc = kf_gsm_get(&s->gsm, sp.project, sp.id, &sec, &ge);
	kf_gsm_secret_release(&sec);
	if (rc == 0 || ge.code == KF_E_NOTFOUND)
		return 0;
	if (err)
		*err = ge;
	return -1;
}

static int secrets_access(struct kf_gcp *s, const char *path,
			  const char *version, struct kf_secret **value,
			  struct kf_err *err)
{
	struct sec_path sp;
	struct kf_err ae = KF_ERR_INIT;

	*value = NULL;
	if (sec_value(s, path, &sp, KF_E_NOTFOUND, err) < 0)
		return -1;
	if (kf_gsm_access(&s->gsm, sp.project, sp.id, version, value, NULL,
			  &ae) == 0) {
		ids_cache(s, sp.project, sp.id, IDS_NOTE);
		return 0;
	}
	if (ae.code == KF_E_NOTFOUND && strcmp(version, "latest") == 0)
		ids_cache(s, sp.project, sp.id, IDS_FORGET);
	if (ae.code == KF_E_INVALID) /* not a version name Secret Manager has */
		ae.code = KF_E_NOTFOUND;
	if (err)
		*err = ae;
	return -1;
}

static int secrets_commit(struct kf_gcp *s, const char *path,
			  const unsigned char *value, size_t n, int flags,
			  struct kf_buf *version, struct kf_err *err)
{
	struct sec_path sp;
	long long num = 0;
	int rc = -1;

	if (sec_value(s, path, &sp, KF_E_INVALID, err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (n == 0)
		return kf_fail(err, KF_E_INVALID,
			       "Secret Manager cannot hold an empty value");
	if (n > KF_GSM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "Secret Manager holds at most %d bytes",
			       KF_GSM_MAX_VALUE);
	if (!(flags & KF_COMMIT_CREATE)) {
		rc = kf_gsm_add(&s->gsm, sp.project, sp.id, value, n, &num,
				err);
		if (rc < 0 && err && err->code == KF_E_NOTFOUND)
			flags |= KF_COMMIT_CREATE; /* removed meanwhile */
	}
	if (rc < 0 && (flags & KF_COMMIT_CREATE)) {
		rc = kf_gsm_create_with_value(&s->gsm, sp.project, sp.id,
					      s->gsm_kms_key, value, n, &num,
					      err);
		if (rc < 0 && err && err->code == KF_E_EXISTS)
			rc = kf_gsm_add(&s->gsm, sp.project, sp.id, value, n,
					&num, err);
		else if (rc == 0)
			kf_log(KF_LOG_INFO, "gcp: created secret %s/%s",
			       sp.project, sp.id);
	}
	if (rc == 0)
		ids_cache(s, sp.project, sp.id, IDS_NOTE);
	if (rc == 0 && version)
		(void)kf_buf_addf(version, "%lld", num);
	return rc;
}

/* ---- versions */

struct ver_list {
	struct kf_gsm_version *v;
	size_t n, cap;
	int oom;
};

static int ver_keep(void *ctx, const struct kf_gsm_version *v)
{
	struct ver_list *vl = ctx;

	if (vl->n == vl->cap) {
		size_t cap = vl->cap ? vl->cap * 2 : 32;
		struct kf_gsm_version *nv = realloc(vl->v, cap * sizeof(*nv));

		if (!nv) {
			vl->oom = 1;
			return 1;
		}
		vl->v = nv;
		vl->cap = cap;
	}
	vl->v[vl->n++] = *v;
	return 0;
}

/* Every version of the secret (all pages) into vl. */
static int all_versions(struct kf_gcp *s, const struct sec_path *sp,
			struct ver_list *vl, struct kf_err *err)
{
	struct kf_buf page, next;
	int rc = 0;

	kf_buf_init(&page, 4096);
	kf_buf_init(&next, 4096);
	do {
		kf_buf_reset(&page);
		if (next.len && kf_buf_adds(&page, kf_buf_str(&next)) < 0)
			rc = kf_fail(err, KF_E_NOMEM, "out of memory");
		if (rc == 0)
			rc = kf_gsm_list_versions(&s->gsm, sp->project, sp->id,
						  0, kf_buf_str(&page),
						  ver_keep, vl, &next, err);
		if (rc == 0 && vl->oom)
			rc = kf_fail(err, KF_E_NOMEM, "out of memory");
	} while (rc == 0 && next.len);
	kf_buf_release(&page);
	kf_buf_release(&next);
	return rc;
}

static int secrets_versions(struct kf_gcp *s, const char *path,
			    int (*fn)(void *ctx, const char *version,
				      int64_t created, const char *labels),
			    void *ctx, struct kf_err *err)
{
	struct ver_list vl = { NULL, 0, 0, 0 };
	struct sec_path sp;
	long long newest = 0;
	int rc;

	if (sec_value(s, path, &sp, KF_E_NOTFOUND, err) < 0)
		return -1;
	rc = all_versions(s, &sp, &vl, err);
	for (size_t i = 0; rc == 0 && i < vl.n; i++)
		if (vl.v[i].state == KF_GSM_ENABLED && vl.v[i].number > newest)
			newest = vl.v[i].number;
	for (size_t i = 0; rc == 0 && i < vl.n; i++) {
		const struct kf_gsm_version *v = &vl.v[i];
		const char *labels = v->number == newest	 ? "latest" :
				     v->state == KF_GSM_DISABLED ? "disabled" :
				     v->state == KF_GSM_DESTROYED ?
								   "destroyed" :
								   "";
		char num[24];

		(void)snprintf(num, sizeof(num), "%lld", v->number);
		if (fn(ctx, num, v->create_ms > 0 ? v->create_ms : 0, labels))
			break;
	}
	free(vl.v);
	return rc;
}

struct newest {
	long long number;
};

static int first_enabled(void *ctx, const struct kf_gsm_version *v)
{
	struct newest *nw = ctx;

	if (v->state == KF_GSM_ENABLED && v->number > nw->number)
		nw->number = v->number;
	return 0;
}

/* The newest ENABLED version's number from the first page that has one
 * (versions come newest first: nearly always the first page); 0 when
 * the secret has no enabled version. */
static int newest_enabled(struct kf_gcp *s, const struct sec_path *sp,
			  long long *number, struct kf_err *err)
{
	struct newest nw = { 0 };
	struct kf_buf page, next;
	int rc = 0;

	kf_buf_init(&page, 4096);
	kf_buf_init(&next, 4096);
	do {
		kf_buf_reset(&page);
		if (next.len && kf_buf_adds(&page, kf_buf_str(&next)) < 0)
			rc = kf_fail(err, KF_E_NOMEM, "out of memory");
		if (rc == 0)
			rc = kf_gsm_list_versions(&s->gsm, sp->project, sp->id,
						  0, kf_buf_str(&page),
						  first_enabled, &nw, &next,
						  err);
	} while (rc == 0 && nw.number == 0 && next.len);
	kf_buf_release(&page);
	kf_buf_release(&next);
	*number = nw.number;
	return rc;
}

/* The stamp: what a read of "latest" sets as the version ("0": none). */
static int secrets_stamp(struct kf_gcp *s, const char *path, struct kf_buf *out,
			 struct kf_err *err)
{
	struct sec_path sp;
	long long num;

	if (sec_value(s, path, &sp, KF_E_NOTFOUND, err) < 0 ||
	    newest_enabled(s, &sp, &num, err) < 0)
		return -1;
	if (kf_buf_addf(out, "%lld", num) < 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

/*
 * Attributes of a secret: user.keyfs.id, its name as answered
 * (projects/NUMBER/secrets/ID: never compared literally), and
 * user.keyfs.version, the newest ENABLED version (what reads answer).
 * With out NULL: only whether the attribute exists.
 */
static int secrets_attr(struct kf_gcp *s, const struct sec_path *sp,
			const char *xname, struct kf_buf *out,
			struct kf_err *err)
{
	struct kf_gsm_secret sec;
	long long num;
	int rc;

	if (strcmp(xname, XA_VERSION) == 0) {
		if (newest_enabled(s, sp, &num, err) < 0)
			return -1;
		if (num == 0)
			return kf_fail(err, KF_E_NODATA, "no enabled version");
		if (out && kf_buf_addf(out, "%lld", num) < 0)
			return kf_fail(err, KF_E_RANGE, "attribute too long");
		return 0;
	}
	if (strcmp(xname, XA_ID) != 0)
		return kf_fail(err, KF_E_NODATA, "no such attribute");
	rc = kf_gsm_get(&s->gsm, sp->project, sp->id, &sec, err);
	if (rc == 0 && out &&
	    kf_buf_addf(out, "projects/%s/secrets/%s", sec.project, sec.id) < 0)
		rc = kf_fail(err, KF_E_RANGE, "attribute too long");
	kf_gsm_secret_release(&sec);
	return rc;
}

/* The secret an attribute call is about; NODATA for the directory. */
static int attr_target(struct kf_gcp *s, const char *path, struct sec_path *sp,
		       struct kf_err *err)
{
	struct kf_attr a;

	if (kf_gcp_secrets_getattr(s, path, &a, err) < 0 ||
	    sec_split(s, path, sp, err) < 0)
		return -1;
	return sp->depth == 3 ? 1 : 0;
}

static int secrets_getxattr(struct kf_gcp *s, const char *path,
			    const char *xname, struct kf_buf *out,
			    struct kf_err *err)
{
	struct sec_path sp;
	int rc = attr_target(s, path, &sp, err);

	if (rc <= 0)
		return rc < 0 ? -1 :
				kf_fail(err, KF_E_NODATA, "no such attribute");
	return secrets_attr(s, &sp, xname, out, err);
}

static int secrets_listxattr(struct kf_gcp *s, const char *path,
			     struct kf_buf *out, struct kf_err *err)
{
	static const char *const names[] = { XA_ID, XA_VERSION };
	struct sec_path sp;
	int rc = attr_target(s, path, &sp, err);

	if (rc <= 0)
		return rc;
	/* Only what getxattr can answer (getfattr -d reads every name). */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct kf_err e = KF_ERR_INIT;

		if (secrets_attr(s, &sp, names[i], NULL, &e) < 0) {
			if (e.code == KF_E_NODATA)
				continue;
			if (err)
				*err = e;
			return -1;
		}
		if (kf_buf_add(out, names[i], strlen(names[i]) + 1) < 0)
			return kf_fail(err, KF_E_RANGE,
				       "attribute list too long");
	}
	return 0;
}

static int secrets_setxattr(struct kf_gcp *s, const char *path,
			    const char *xname, struct kf_err *err)
{
	struct sec_path sp;

	if (attr_target(s, path, &sp, err) < 0)
		return -1;
	if (strcmp(xname, XA_ID) == 0 || strcmp(xname, XA_VERSION) == 0)
		return kf_fail(err, KF_E_PERM, "%s is read-only", xname);
	return kf_fail(err, KF_E_NOTSUP, "unsupported attribute");
}

/* ---- the routers */

int kf_gcp_route_unlink(struct kf_provider *p, const char *path,
			struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_unlink(kf_gcp_of(p), path, err);
	return kf_gcp_unlink(p, path, err);
}

int kf_gcp_route_can_create(struct kf_provider *p, const char *path,
			    struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_can_create(kf_gcp_of(p), path, err);
	return kf_gcp_can_create(p, path, err);
}

int kf_gcp_route_check_write(struct kf_provider *p, const char *path, int flags,
			     struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_check_write(kf_gcp_of(p), path, err);
	return kf_gcp_check_write(p, path, flags, err);
}

int kf_gcp_route_read(struct kf_provider *p, const char *path,
		      struct kf_secret **value, struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_access(kf_gcp_of(p), path, "latest", value, err);
	return kf_gcp_read(p, path, value, err);
}

int kf_gcp_route_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n, const char *token,
			int flags, struct kf_buf *version, struct kf_err *err)
{
	/* addVersion has no idempotency token: kf_gsm_add checks whether an
	 * ambiguous attempt landed instead. */
	if (kf_gcp_is_secrets(path))
		return secrets_commit(kf_gcp_of(p), path, value, n, flags,
				      version, err);
	return kf_gcp_commit(p, path, value, n, token, flags, version, err);
}

int kf_gcp_route_check_bytes(struct kf_provider *p, const char *path,
			     const unsigned char *data, size_t n,
			     struct kf_err *err)
{
	(void)p;
	(void)data;
	if (!kf_gcp_is_secrets(path))
		return 0;
	if (n == 0) /* asked at the close of a new file with no data */
		return kf_fail(err, KF_E_INVALID,
			       "Secret Manager cannot hold an empty value");
	if (n > KF_GSM_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG,
			       "Secret Manager holds at most %d bytes",
			       KF_GSM_MAX_VALUE);
	return 0;
}

int kf_gcp_route_read_version(struct kf_provider *p, const char *path,
			      const char *version, struct kf_secret **value,
			      int *immutable, struct kf_err *err)
{
	*immutable = 0;
	if (kf_gcp_is_secrets(path)) {
		const char *v = version ? version : "latest";

		*immutable = strcmp(v, "latest") != 0;
		return secrets_access(kf_gcp_of(p), path, v, value, err);
	}
	return kf_gcp_read_version(p, path, version, value, immutable, err);
}

int kf_gcp_route_versions(struct kf_provider *p, const char *path,
			  int (*fn)(void *ctx, const char *version,
				    int64_t created, const char *labels),
			  void *ctx, struct kf_err *err)
{
	struct kf_err ve = KF_ERR_INIT;
	struct kf_attr a;

	if (kf_gcp_is_secrets(path))
		return secrets_versions(kf_gcp_of(p), path, fn, ctx, err);
	if (kf_gcp_versions(p, path, fn, ctx, &ve) == 0)
		return 0;
	/* The local store keeps none: an empty list for a value file, so
	 * the attribute fs/ lists on it (getfattr -d reads it) is readable. */
	if ((ve.code == KF_E_NODATA || ve.code == KF_E_ISDIR) &&
	    !kf_gcp_of(p)->bucket[0] &&
	    kf_gcp_getattr_s(kf_gcp_of(p), path, &a, &ve) == 0 &&
	    a.kind == KF_KIND_FILE)
		return 0;
	if (err)
		*err = ve;
	return -1;
}

int kf_gcp_route_stamp(struct kf_provider *p, const char *path,
		       struct kf_buf *out, struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_stamp(kf_gcp_of(p), path, out, err);
	return kf_gcp_stamp(p, path, out, err);
}

int kf_gcp_route_getxattr(struct kf_provider *p, const char *path,
			  const char *xname, struct kf_buf *out,
			  struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_getxattr(kf_gcp_of(p), path, xname, out, err);
	return kf_gcp_getxattr(p, path, xname, out, err);
}

int kf_gcp_route_setxattr(struct kf_provider *p, const char *path,
			  const char *xname, const void *value, size_t n,
			  struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_setxattr(kf_gcp_of(p), path, xname, err);
	return kf_gcp_setxattr(p, path, xname, value, n, err);
}

int kf_gcp_route_listxattr(struct kf_provider *p, const char *path,
			   struct kf_buf *out, struct kf_err *err)
{
	if (kf_gcp_is_secrets(path))
		return secrets_listxattr(kf_gcp_of(p), path, out, err);
	return kf_gcp_listxattr(p, path, out, err);
}
