/*
 * The gcp provider's bucket store (-o gcp_bucket=BUCKET[/PREFIX]): the
 * value of PROJECT/LOCATION/RING/KEY/NAME is the object
 * [PREFIX/]PROJECT/LOCATION/RING/KEY/NAME' (NAME' = the object name
 * component NAME's path form stands for, see kf_berglas_path_to_name) in
 * berglas's format, sealed with that crypto key.  Versions are the
 * object's generations.  Values cross this file only in kf_secret or as
 * borrowed pointers; nothing here logs a value or an object body.
 */
#include "gcp/berglas.h"
#include "gcp/tree_int.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUT_ROUNDS 3

/* ---- the generations this mount last saw, for write preconditions */

static void seen_put(struct kf_gcp *s, const char *obj,
		     const struct kf_gcs_object *o, int fresh)
{
	const char *key = kf_gcs_meta(o, KF_BERGLAS_META_KMS_KEY);
	struct kf_gcp_seen *e;
	size_t slot;

	if (strlen(obj) >= sizeof(s->seen[0].object))
		return;
	pthread_mutex_lock(&s->mu);
	slot = s->next_seen;
	for (size_t i = 0; i < KF_GCP_SEEN; i++)
		if (strcmp(s->seen[i].object, obj) == 0) {
			slot = i;
			break;
		}
	if (slot == s->next_seen)
		s->next_seen = (s->next_seen + 1) % KF_GCP_SEEN;
	e = &s->seen[slot];
	memcpy(e->object, obj, strlen(obj) + 1);
	e->gen = o->generation;
	e->metagen = o->metageneration;
	e->size = o->size;
	e->crc32c = o->crc32c;
	e->has_crc32c = o->has_crc32c;
	/* A longer key is no key name of Cloud KMS: the read refuses it. */
	(void)snprintf(e->kms_key, sizeof(e->kms_key), "%s", key ? key : "");
	e->at_ms = fresh ? kf_clock_now_ms() : 0;
	pthread_mutex_unlock(&s->mu);
}

/* A fresh getattr/stamp stat of obj into *out, consumed; 0 if none. */
static int seen_take(struct kf_gcp *s, const char *obj, struct kf_gcp_seen *out)
{
	uint64_t now = kf_clock_now_ms();
	int hit = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < KF_GCP_SEEN && !hit; i++) {
		struct kf_gcp_seen *e = &s->seen[i];

		if (!e->object[0] || strcmp(e->object, obj) != 0)
			continue;
		hit = e->at_ms && now >= e->at_ms &&
		      now - e->at_ms < KF_GCP_SEEN_FRESH_MS;
		if (hit)
			*out = *e;
		e->at_ms = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void seen_drop(struct kf_gcp *s, const char *obj)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < KF_GCP_SEEN; i++)
		if (strcmp(s->seen[i].object, obj) == 0)
			s->seen[i].object[0] = '\0';
	pthread_mutex_unlock(&s->mu);
}

static int seen_get(struct kf_gcp *s, const char *obj, long long *gen,
		    long long *mg)
{
	int hit = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < KF_GCP_SEEN && !hit; i++)
		if (s->seen[i].object[0] &&
		    strcmp(s->seen[i].object, obj) == 0) {
			*gen = s->seen[i].gen;
			*mg = s->seen[i].metagen;
			hit = 1;
		}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

/* ---- names */

int kf_gcp_bucket_dir(const struct kf_gcp *s, const struct kf_gcp_path *g,
		      char *out, size_t n)
{
	int w = snprintf(out, n, "%s%s%s/%s/%s/%s/", s->prefix,
			 s->prefix[0] ? "/" : "", g->c[0], g->c[1], g->c[2],
			 g->c[3]);

	return w < 0 || (size_t)w >= n ? -1 : 0;
}

int kf_gcp_bucket_object(const struct kf_gcp *s, const struct kf_gcp_path *g,
			 char *out, size_t n, struct kf_err *err)
{
	struct kf_buf name;
	size_t d;
	int rc = -1;

	if (kf_gcp_bucket_dir(s, g, out, n) < 0)
		return kf_fail(err, KF_E_INVALID, "object name too long");
	d = strlen(out);
	kf_buf_init(&name, KF_GCS_MAX_NAME + 1);
	if (kf_berglas_path_to_name(g->c[4], strlen(g->c[4]), &name, err) < 0)
		goto out;
	if (d + name.len >= n || d + name.len > KF_GCS_MAX_NAME) {
		kf_fail(err, KF_E_INVALID, "object name too long");
		goto out;
	}
	memcpy(out + d, name.data, name.len);
	out[d + name.len] = '\0';
	rc = kf_gcs_valid_object(out) ?
		     0 :
		     kf_fail(err, KF_E_INVALID, "not a valid object name");
out:
	kf_buf_release(&name);
	return rc;
}

/*
 * A value path's object and the crypto key that seals it.  NOTFOUND for
 * a name no object can have or an unknown project, ISDIR above depth 5.
 */
static int target(struct kf_gcp *s, const char *path, struct kf_gcp_path *g,
		  char *obj, size_t on, char *key, size_t kn,
		  struct kf_err *err)
{
	if (kf_gcp_path_split(path, g, err) < 0)
		return -1;
	if (g->depth < 5)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (!kf_gcp_project_known(s, g->c[0]) ||
	    !kf_gcp_valid_location(g->c[1]) || !kf_gcp_valid_id(g->c[2]) ||
	    !kf_gcp_valid_id(g->c[3]))
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (kf_gcp_bucket_object(s, g, obj, on, err) < 0 ||
	    kf_gcp_path_resource(g, 4, key, kn) < 0) {
		if (err)
			err->code = KF_E_NOTFOUND;
		return -1;
	}
	return 0;
}

static void version_text(long long gen, char *out, size_t n)
{
	(void)snprintf(out, n, "%lld", gen);
}

/* ---- listing */

struct blist {
	size_t skip; /* bytes of the directory's prefix */
	kf_list_fn fn;
	void *ctx;
	int stop;
};

static int blist_item(void *v, const struct kf_gcs_object *o,
		      const char *prefix)
{
	struct blist *bl = v;
	struct kf_attr a = { KF_KIND_FILE, 0, 0, 0 };
	struct kf_buf name;
	struct kf_err e = KF_ERR_INIT;
	long long ms;

	if (!o || strlen(o->name) <= bl->skip)
		return 0; /* a "subdirectory": no value of this key */
	(void)prefix;
	kf_buf_init(&name, 256);
	if (kf_berglas_name_to_path(o->name + bl->skip,
				    strlen(o->name + bl->skip), &name,
				    &e) == 0 &&
	    name.len < 256 && kf_buf_add(&name, "", 1) == 0) {
		ms = kf_gsm_parse_time(o->updated);
		a.mtime = ms > 0 ? ms / 1000 : 0;
		bl->stop = bl->fn(bl->ctx, (const char *)name.data, &a);
	}
	kf_buf_release(&name);
	return bl->stop;
}

int kf_gcp_bucket_list(struct kf_gcp *s, const struct kf_gcp_path *g,
		       kf_list_fn fn, void *ctx, struct kf_err *err)
{
	struct kf_gcs_list_req rq = { 0 };
	struct blist bl = { 0, fn, ctx, 0 };
	struct kf_buf next;
	char dir[KF_GCS_MAX_NAME + 1], page[4096];
	int rc = 0;

	if (kf_gcp_dir_exists(s, g, 4, err) < 0)
		return -1;
	if (kf_gcp_bucket_dir(s, g, dir, sizeof(dir)) < 0)
		return kf_fail(err, KF_E_INVALID, "object name too long");
	bl.skip = strlen(dir);
	rq.prefix = dir;
	rq.delimiter = "/";
	kf_buf_init(&next, sizeof(page) - 1);
	for (;;) {
		rc = kf_gcs_list(&s->gcs, s->bucket, &rq, blist_item, &bl,
				 &next, err);
		if (rc < 0 || bl.stop || next.len == 0)
			break;
		(void)snprintf(page, sizeof(page), "%.*s", (int)next.len,
			       (const char *)next.data);
		rq.page = page;
		kf_buf_reset(&next);
	}
	kf_buf_release(&next);
	return rc < 0 ? -1 : 0;
}

/* ---- one value */

int kf_gcp_bucket_attr(struct kf_gcp *s, const char *path, struct kf_attr *attr,
		       struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640];
	long long ms;

	memset(attr, 0, sizeof(*attr));
	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (kf_gcs_stat(&s->gcs, s->bucket, obj, 0, &o, err) < 0)
		return -1;
	seen_put(s, obj, &o, 1);
	attr->kind = KF_KIND_FILE;
	ms = kf_gsm_parse_time(o.updated);
	attr->mtime = ms > 0 ? ms / 1000 : 0;
	kf_gcs_object_release(&o);
	return 0;
}

/*
 * The live value from the stat a getattr or stamp made less than
 * KF_GCP_SEEN_FRESH_MS ago: the media of that generation (CRC32C checked
 * against the stat) and the open, so a lookup then a read costs one
 * objects.get.  The value is the one live at that stat, as if the read
 * had run then.  1 when there is no such stat or its generation is gone.
 */
static int read_seen(struct kf_gcp *s, const char *obj, const char *key,
		     struct kf_secret **value, long long *gen,
		     struct kf_err *err)
{
	struct kf_gcp_seen e;
	struct kf_gcs_object x = { 0 };
	struct kf_err me = KF_ERR_INIT;
	struct kf_buf body;
	int rc;

	if (!seen_take(s, obj, &e))
		return 1;
	x.generation = e.gen;
	x.metageneration = e.metagen;
	x.size = e.size;
	x.crc32c = e.crc32c;
	x.has_crc32c = e.has_crc32c;
	x.live = 1;
	kf_buf_init(&body, (size_t)KF_BERGLAS_MAX_VALUE * 2);
	rc = kf_gcs_read(&s->gcs, s->bucket, obj, e.gen, &x, &body, NULL, &me);
	if (rc < 0) {
		rc = me.code == KF_E_NOTFOUND ? 1 : -1; /* gone: stat again */
		if (rc < 0 && err)
			*err = me;
	} else {
		rc = kf_berglas_open(&s->kms, key, obj,
				     e.kms_key[0] ? e.kms_key : NULL,
				     kf_buf_str(&body), body.len, value, err);
		*gen = e.gen;
	}
	kf_buf_release(&body);
	return rc;
}

int kf_gcp_bucket_read(struct kf_gcp *s, const char *path, long long gen,
		       struct kf_secret **value, struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640], ver[32];
	long long got = gen;
	int rc = 1;

	*value = NULL;
	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (gen == 0)
		rc = read_seen(s, obj, key, value, &got, err);
	if (rc > 0) {
		rc = kf_berglas_get(&s->gcs, &s->kms, s->bucket, obj, key, gen,
				    value, &o, err);
		got = o.generation;
		if (rc == 0 && gen == 0 && o.live)
			seen_put(s, obj, &o, 0);
		kf_gcs_object_release(&o);
	}
	if (rc < 0) {
		if (err && err->code == KF_E_INTEGRITY)
			kf_log(KF_LOG_WARN,
			       "gcp: gs://%s/%s is not a value of %s: %s",
			       s->bucket, obj, key, err->msg);
		return -1;
	}
	version_text(got, ver, sizeof(ver));
	kf_secret_set_version(*value, ver);
	return 0;
}

int kf_gcp_bucket_stamp(struct kf_gcp *s, const char *path, struct kf_buf *out,
			struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640];
	int rc;

	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (kf_gcs_stat(&s->gcs, s->bucket, obj, 0, &o, err) < 0)
		return -1;
	seen_put(s, obj, &o, 1);
	rc = kf_buf_addf(out, "%lld", o.generation) < 0 ?
		     kf_fail(err, KF_E_NOMEM, "out of memory") :
		     0;
	kf_gcs_object_release(&o);
	return rc;
}

/*
 * The preconditions of a write: round 0 uses what this mount last saw
 * (0 for a name it never saw and may create), later rounds re-stat.
 * NOTFOUND when the value is gone and may not be created.
 */
static int preconditions(struct kf_gcp *s, const char *obj, int round,
			 int flags, long long *gen, long long *mg,
			 struct kf_err *err)
{
	struct kf_gcs_object o = { 0 };
	struct kf_err e = KF_ERR_INIT;

	if (round == 0 && seen_get(s, obj, gen, mg))
		return 0;
	if (round == 0 && (flags & KF_COMMIT_CREATE)) {
		*gen = 0;
		*mg = -1;
		return 0;
	}
	if (kf_gcs_stat(&s->gcs, s->bucket, obj, 0, &o, &e) == 0) {
		*gen = o.generation;
		*mg = o.metageneration;
		kf_gcs_object_release(&o);
		return 0;
	}
	if (e.code == KF_E_NOTFOUND && (flags & KF_COMMIT_CREATE)) {
		*gen = 0;
		*mg = -1;
		return 0;
	}
	if (err)
		*err = e;
	return -1;
}

int kf_gcp_bucket_commit(struct kf_gcp *s, const char *path,
			 const unsigned char *value, size_t n, int flags,
			 struct kf_buf *version, struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640];
	long long gen = 0, mg = -1;

	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (n > KF_BERGLAS_MAX_VALUE)
		return kf_fail(err, KF_E_TOOBIG, "values hold at most %u bytes",
			       KF_BERGLAS_MAX_VALUE);
	for (int round = 0; round < PUT_ROUNDS; round++) {
		if (preconditions(s, obj, round, flags, &gen, &mg, err) < 0)
			return -1;
		if (kf_berglas_put(&s->gcs, &s->kms, s->bucket, obj, key, value,
				   n, gen, gen > 0 ? mg : -1, &o, err) == 0) {
			seen_put(s, obj, &o, 0);
			if (version)
				(void)kf_buf_addf(version, "%lld",
						  o.generation);
			kf_log(KF_LOG_DEBUG,
			       "gcp: stored %s as gs://%s/%s#%lld", path,
			       s->bucket, obj, o.generation);
			kf_gcs_object_release(&o);
			return 0;
		}
		if (!kf_gcs_conflict(err))
			return -1;
		seen_drop(s, obj);
		kf_log(KF_LOG_DEBUG,
		       "gcp: gs://%s/%s changed meanwhile (round %d)",
		       s->bucket, obj, round + 1);
	}
	kf_log(KF_LOG_WARN,
	       "gcp: %s: gs://%s/%s kept changing under %d writes; not "
	       "written",
	       path, s->bucket, obj, PUT_ROUNDS);
	return kf_fail(err, KF_E_STATE, "the object kept changing");
}

int kf_gcp_bucket_unlink(struct kf_gcp *s, const char *path, struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640];
	long long gen;

	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (kf_gcs_stat(&s->gcs, s->bucket, obj, 0, &o, err) < 0)
		return -1;
	gen = o.generation;
	kf_gcs_object_release(&o);
	seen_drop(s, obj);
	return kf_gcs_delete(&s->gcs, s->bucket, obj, gen, err);
}

int kf_gcp_bucket_can_create(struct kf_gcp *s, const char *path,
			     struct kf_err *err)
{
	struct kf_gcp_path g;
	char obj[KF_GCS_MAX_NAME + 1];

	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth == 4)
		return kf_fail(err, KF_E_PERM,
			       "value files live below a crypto key "
			       "(PROJECT/LOCATION/RING/KEY/NAME)");
	if (g.depth < 4)
		return kf_fail(err, KF_E_ISDIR, "is a directory");
	if (kf_gcp_bucket_object(s, &g, obj, sizeof(obj), err) < 0)
		return -1;
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	return kf_gcp_dir_exists(s, &g, 4, err);
}

/* One objects.get: the bucket answers and lets us in; the generation
 * seen becomes the write's precondition. */
int kf_gcp_bucket_check_write(struct kf_gcp *s, const char *path, int flags,
			      struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_object o = { 0 };
	char obj[KF_GCS_MAX_NAME + 1], key[640];
	struct kf_err e = KF_ERR_INIT;

	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	if (kf_gcs_stat(&s->gcs, s->bucket, obj, 0, &o, &e) == 0) {
		seen_put(s, obj, &o, 0);
		kf_gcs_object_release(&o);
		return 0;
	}
	if (e.code == KF_E_NOTFOUND && (flags & KF_COMMIT_CREATE))
		return 0;
	if (err)
		*err = e;
	return -1;
}

/* ---- versions */

struct bvers {
	const char *obj;
	int (*fn)(void *ctx, const char *version, int64_t created,
		  const char *labels);
	void *ctx;
	int stop, any;
};

static int bvers_item(void *v, const struct kf_gcs_object *o,
		      const char *prefix)
{
	struct bvers *bv = v;
	char ver[32];
	long long ms;

	(void)prefix;
	if (!o || strcmp(o->name, bv->obj) != 0)
		return 0;
	bv->any = 1;
	ms = kf_gsm_parse_time(o->updated);
	version_text(o->generation, ver, sizeof(ver));
	bv->stop =
		bv->fn(bv->ctx, ver, ms > 0 ? ms : 0, o->live ? "latest" : "");
	return bv->stop;
}

int kf_gcp_bucket_versions(struct kf_gcp *s, const char *path,
			   int (*fn)(void *ctx, const char *version,
				     int64_t created, const char *labels),
			   void *ctx, struct kf_err *err)
{
	struct kf_gcp_path g;
	struct kf_gcs_list_req rq = { 0 };
	struct bvers bv = { NULL, fn, ctx, 0, 0 };
	struct kf_buf next;
	char obj[KF_GCS_MAX_NAME + 1], key[640], page[4096];
	int rc;

	if (target(s, path, &g, obj, sizeof(obj), key, sizeof(key), err) < 0)
		return -1;
	bv.obj = obj;
	rq.prefix = obj;
	rq.versions = 1;
	kf_buf_init(&next, sizeof(page) - 1);
	for (;;) {
		rc = kf_gcs_list(&s->gcs, s->bucket, &rq, bvers_item, &bv,
				 &next, err);
		if (rc < 0 || bv.stop || next.len == 0)
			break;
		(void)snprintf(page, sizeof(page), "%.*s", (int)next.len,
			       (const char *)next.data);
		rq.page = page;
		kf_buf_reset(&next);
	}
	kf_buf_release(&next);
	if (rc < 0)
		return -1;
	if (!bv.any)
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	return 0;
}

/* ---- the mount */

int kf_gcp_bucket_config(struct kf_gcp *s, const char *opt, struct kf_err *err)
{
	size_t n = strcspn(opt, "/");
	const char *pre = opt[n] ? opt + n + 1 : "";
	size_t pl = strlen(pre);

	if (n == 0 || n >= sizeof(s->bucket))
		return kf_fail(err, KF_E_INVALID,
			       "gcp_bucket=%.80s: no bucket name", opt);
	memcpy(s->bucket, opt, n);
	s->bucket[n] = '\0';
	if (!kf_gcs_valid_bucket(s->bucket))
		return kf_fail(err, KF_E_INVALID,
			       "gcp_bucket=%.80s: not a valid bucket name "
			       "([a-z0-9._-]{3,222})",
			       opt);
	while (pl > 0 && pre[pl - 1] == '/')
		pl--;
	if (pl >= sizeof(s->prefix) || (pl && !kf_gcs_valid_object(pre)) ||
	    (pl && (strstr(pre, "//") || pre[0] == '/')))
		return kf_fail(err, KF_E_INVALID,
			       "gcp_bucket=%.80s: invalid prefix (no empty "
			       "components, at most %zu bytes)",
			       opt, sizeof(s->prefix) - 1);
	memcpy(s->prefix, pre, pl);
	s->prefix[pl] = '\0';
	return 0;
}

static int probe_item(void *ctx, const struct kf_gcs_object *o,
		      const char *prefix)
{
	(void)ctx;
	(void)o;
	(void)prefix;
	return 1;
}

int kf_gcp_bucket_probe(struct kf_gcp *s, struct kf_err *err)
{
	struct kf_gcs_list_req rq = { 0 };
	struct kf_err e = KF_ERR_INIT;
	char pre[sizeof(s->prefix) + 1];

	(void)snprintf(pre, sizeof(pre), "%s%s", s->prefix,
		       s->prefix[0] ? "/" : "");
	rq.prefix = pre;
	rq.max_results = 1;
	if (kf_gcs_list(&s->gcs, s->bucket, &rq, probe_item, NULL, NULL, &e) ==
	    0)
		return 0;
	return kf_fail(err, e.code,
		       "gcp_bucket: cannot list gs://%s/%s at %s: %s%s",
		       s->bucket, pre, s->gcs.endpoint,
		       e.code == KF_E_NOTFOUND ? "no such bucket: " :
		       e.code == KF_E_DENIED   ? "access denied: " :
						 "",
		       e.msg);
}
