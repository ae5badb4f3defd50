/*
 * The gcp provider: paths PROJECT/LOCATION/RING/KEY map to Cloud KMS
 * resources, NAME below a key is a ciphertext file in the store
 * (values.c); this file holds the vtable, the directories and the
 * provider's set-up.  It never writes plaintext to disk (only KMS
 * ciphertext reaches the store) and never logs a value.
 */
#include "gcp/tree_int.h"
#include "gcp/berglas.h"
#include "gcp/secrets.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_ROTATION 7776000LL /* 90 days */

int kf_gcp_project_known(const struct kf_gcp *s, const char *p)
{
	for (size_t i = 0; i < s->nprojects; i++)
		if (strcmp(s->projects[i], p) == 0)
			return 1;
	return 0;
}

static int cache_has(struct kf_gcp *s, const char *name)
{
	uint64_t now = kf_clock_now_ms();
	int hit = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < KF_GCP_DIR_CACHE && !hit; i++)
		hit = s->dirs[i].until_ms > now &&
		      strcmp(s->dirs[i].name, name) == 0;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void cache_add(struct kf_gcp *s, const char *name)
{
	uint64_t now = kf_clock_now_ms();
	size_t slot;

	if (!s->ttl || strlen(name) >= sizeof(s->dirs[0].name))
		return;
	pthread_mutex_lock(&s->mu);
	slot = s->next_dir;
	for (size_t i = 0; i < KF_GCP_DIR_CACHE; i++)
		if (strcmp(s->dirs[i].name, name) == 0 ||
		    s->dirs[i].until_ms <= now) {
			slot = i;
			break;
		}
	if (slot == s->next_dir)
		s->next_dir = (s->next_dir + 1) % KF_GCP_DIR_CACHE;
	memcpy(s->dirs[slot].name, name, strlen(name) + 1);
	s->dirs[slot].until_ms = now + (uint64_t)s->ttl * 1000u;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Does the directory at depth 1..4 exist?  Syntax first (an invalid id
 * cannot exist), then the positive cache, then one KMS get.
 */
int kf_gcp_dir_exists(struct kf_gcp *s, const struct kf_gcp_path *g, int depth,
		      struct kf_err *err)
{
	char name[640];
	int rc;

	if (!kf_gcp_project_known(s, g->c[0]))
		return kf_fail(err, KF_E_NOTFOUND, "unknown project");
	if (depth == 1)
		return 0;
	if (!kf_gcp_valid_location(g->c[1]) ||
	    (depth >= 3 && !kf_gcp_valid_id(g->c[2])) ||
	    (depth >= 4 && !kf_gcp_valid_id(g->c[3])))
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (kf_gcp_path_resource(g, depth, name, sizeof(name)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "name too long");
	if (cache_has(s, name))
		return 0;
	rc = kf_gcp_kms_get(&s->kms, name, NULL, err);
	if (rc == 0)
		cache_add(s, name);
	return rc;
}

int kf_gcp_getattr_s(struct kf_gcp *s, const char *path, struct kf_attr *attr,
		     struct kf_err *err)
{
	struct kf_gcp_path g;
	char sp[PATH_MAX];
	struct stat st;

	memset(attr, 0, sizeof(*attr));
	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth < 5) {
		if (g.depth > 0 && kf_gcp_dir_exists(s, &g, g.depth, err) < 0)
			return -1;
		attr->kind = KF_KIND_DIR;
		return 0;
	}
	if (s->bucket[0])
		return kf_gcp_bucket_attr(s, path, attr, err);
	if (!kf_gcp_valid_value_name(g.c[4]) ||
	    kf_gcp_path_store(s, &g, 5, sp, sizeof(sp)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (lstat(sp, &st) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	if (!S_ISREG(st.st_mode)) /* a FIFO, a link...: said, never read */
		return kf_store_not_regular(sp, st.st_mode, err);
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
	if (kf_gcp_is_secrets(path))
		return kf_gcp_secrets_getattr(kf_gcp_of(p), path, attr, err);
	return kf_gcp_getattr_s(kf_gcp_of(p), path, attr, err);
}

struct list_ctx {
	struct kf_gcp *s;
	const struct kf_gcp_path *g;
	int depth; /* depth of the listed directory */
	kf_list_fn fn;
	void *ctx;
};

static int list_item(void *v, const char *id, json_t *item)
{
	struct list_ctx *lc = v;
	struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };
	struct kf_gcp_path child = *lc->g;
	char name[640];

	if (lc->depth == 1 ? !kf_gcp_valid_location(id) ||
				     strcmp(id, KF_GCP_SECRETS_DIR) == 0 :
			     !kf_gcp_valid_id(id))
		return 0; /* "secrets" is Secret Manager's */
	/* Checked ids are at most 63 bytes: no truncation. */
	(void)snprintf(child.c[lc->depth], sizeof(child.c[0]), "%s", id);
	if (kf_gcp_path_resource(&child, lc->depth + 1, name, sizeof(name)) ==
	    0)
		cache_add(lc->s, name);
	return lc->fn(lc->ctx, id, &a);
}

static int gcp_list(struct kf_provider *p, const char *path, const char *page,
		    kf_list_fn fn, void *ctx, struct kf_buf *next,
		    struct kf_err *err)
{
	static const char *const coll[] = { NULL, "locations", "keyRings",
					    "cryptoKeys" };
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	struct list_ctx lc;
	char parent[640];

	if (kf_gcp_is_secrets(path))
		return kf_gcp_secrets_list(s, path, page, fn, ctx, next, err);
	if (next)
		kf_buf_reset(next);
	if (kf_gcp_path_split(path, &g, err) < 0)
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
		return kf_gcp_list_store(s, &g, fn, ctx, err);
	if (!kf_gcp_project_known(s, g.c[0]) ||
	    (g.depth >= 2 && !kf_gcp_valid_location(g.c[1])) ||
	    (g.depth >= 3 && !kf_gcp_valid_id(g.c[2])))
		return kf_fail(err, KF_E_NOTFOUND, "no such entry");
	if (kf_gcp_path_resource(&g, g.depth, parent, sizeof(parent)) < 0)
		return kf_fail(err, KF_E_NOTFOUND, "name too long");
	if (g.depth == 1 && (!page || !*page)) {
		struct kf_attr a = { KF_KIND_DIR, 0, 0, 0 };

		if (fn(ctx, KF_GCP_SECRETS_DIR, &a))
			return 0; /* beside the KMS locations */
	}
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
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char parent[640], name[640];
	int rc;

	if (kf_gcp_is_secrets(path))
		return kf_gcp_secrets_mkdir(s, path, err);
	if (kf_gcp_path_split(path, &g, err) < 0)
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
	if (kf_gcp_dir_exists(s, &g, g.depth - 1, err) < 0)
		return -1;
	if (kf_gcp_path_resource(&g, g.depth - 1, parent, sizeof(parent)) < 0 ||
	    kf_gcp_path_resource(&g, g.depth, name, sizeof(name)) < 0)
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
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;

	if (kf_gcp_is_secrets(path))
		return kf_gcp_secrets_rmdir(s, path, err);
	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth == 5)
		return kf_fail(err, KF_E_NOTDIR, "not a directory");
	if (g.depth >= 1 && kf_gcp_dir_exists(s, &g, g.depth, err) < 0)
		return -1;
	if (g.depth >= 3) {
		kf_log(KF_LOG_WARN,
		       "gcp: rmdir %s: Cloud KMS cannot delete key rings or "
		       "crypto keys",
		       path);
		return kf_fail(err, KF_E_PERM,
			       "Cloud KMS cannot delete key rings or crypto "
			       "keys");
	}
	return kf_fail(err, KF_E_PERM,
		       "projects and locations cannot be removed");
}

static void gcp_free(struct kf_provider *p)
{
	struct kf_gcp *s;

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
	.unlink = kf_gcp_route_unlink,
	.can_create = kf_gcp_route_can_create,
	.check_write = kf_gcp_route_check_write,
	.read = kf_gcp_route_read,
	.commit = kf_gcp_route_commit,
	.check_bytes = kf_gcp_route_check_bytes,
	.read_version = kf_gcp_route_read_version,
	.versions = kf_gcp_route_versions,
	.stamp = kf_gcp_route_stamp,
	.getxattr = kf_gcp_route_getxattr,
	.setxattr = kf_gcp_route_setxattr,
	.listxattr = kf_gcp_route_listxattr,
	.start = NULL,
	.free = gcp_free,
};

static int add_projects(struct kf_gcp *s, const char *list, struct kf_err *err)
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
		if (!kf_gcp_valid_project(id))
			return kf_fail(err, KF_E_INVALID,
				       "gcp_project: invalid project id \"%s\"",
				       id);
		if (!kf_gcp_project_known(s, id)) {
			if (s->nprojects == KF_GCP_MAX_PROJECTS)
				return kf_fail(err, KF_E_INVALID,
					       "gcp_project: more than %d "
					       "projects",
					       KF_GCP_MAX_PROJECTS);
			s->projects[s->nprojects] = strdup(id);
			if (!s->projects[s->nprojects])
				return kf_fail(err, KF_E_NOMEM,
					       "out of memory");
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

/* The mount's settings: cache ttl, read-only, rotation, store folder. */
static int settings(struct kf_gcp *s, const struct kf_config *cfg,
		    struct kf_err *err)
{
	const char *rot = kf_config_get(cfg, "gcp_rotation_period");
	const char *bucket = kf_config_get(cfg, "gcp_bucket");
	const char *cmek = kf_config_get(cfg, "gsm_kms_key");
	int w;

	s->ttl = cfg->ttl;
	s->read_only = cfg->read_only;
	s->rotation_s = DEFAULT_ROTATION;
	if (rot) {
		s->rotation_s = kf_gcp_parse_duration(rot);
		if (s->rotation_s < KF_GCP_MIN_ROTATION)
			return kf_fail(err, KF_E_INVALID,
				       "gcp_rotation_period=%.40s: need a "
				       "duration of at least 86400s (e.g. "
				       "100000s, 30d)",
				       rot);
	}
	if (bucket && kf_gcp_bucket_config(s, bucket, err) < 0)
		return -1;
	if (cmek && (size_t)snprintf(s->gsm_kms_key, sizeof(s->gsm_kms_key),
				     "%s", cmek) >= sizeof(s->gsm_kms_key))
		return kf_fail(err, KF_E_INVALID, "gsm_kms_key: too long");
	w = snprintf(s->store, sizeof(s->store), "%s/gcp",
		     cfg->store ? cfg->store : ".");
	if (!cfg->store || w < 0 || (size_t)w >= sizeof(s->store))
		return kf_fail(err, KF_E_INVALID,
			       "gcp: no usable store directory");
	return 0;
}

/* The KMS client, the credentials, the projects and the store folder. */
static int connect_kms(struct kf_gcp *s, const struct kf_config *cfg,
		       struct kf_err *err)
{
	struct kf_gcp_auth_cfg acfg = { 0 };
	const char *proj = kf_config_get(cfg, "gcp_project");
	unsigned timeout_ms = cfg->timeout ? cfg->timeout * 1000u : 30000u;
	char found[128];

	if (kf_gcp_kms_init(&s->kms, kf_config_get(cfg, "gcp_endpoint"), NULL,
			    timeout_ms, err) < 0)
		return -1;
	acfg.credentials = kf_config_get(cfg, "gcp_credentials");
	acfg.timeout_ms = timeout_ms < 10000 ? timeout_ms : 10000;
	if (kf_gcp_auth_new(&acfg, &s->auth, err) < 0)
		return -1;
	s->kms.auth = s->auth;
	if (kf_gcs_init(&s->gcs, kf_config_get(cfg, "gcs_endpoint"), s->auth,
			timeout_ms, err) < 0 ||
	    kf_gsm_init(&s->gsm, kf_config_get(cfg, "gsm_endpoint"), s->auth,
			timeout_ms, err) < 0)
		return -1;
	if (!proj || !*proj) {
		if (kf_gcp_auth_project(s->auth, found, sizeof(found), err) < 0)
			return -1;
		proj = found;
	}
	if (add_projects(s, proj, err) < 0)
		return -1;
	if (mkdir(s->store, 0700) < 0 && errno != EEXIST)
		return kf_fail(err, KF_E_IO, "cannot create %s: %s", s->store,
			       strerror(errno));
	return 0;
}

/*
 * One cheap call so that an unreachable or refusing endpoint fails the
 * mount now; other errors (e.g. no right to list locations) only warn.
 */
static int probe(struct kf_gcp *s, struct kf_err *err)
{
	struct kf_err perr = KF_ERR_INIT;
	char parent[200];

	if ((size_t)snprintf(parent, sizeof(parent), "projects/%s",
			     s->projects[0]) >= sizeof(parent))
		return kf_fail(err, KF_E_INVALID, "project id too long");
	if (kf_gcp_kms_list(&s->kms, parent, "locations", NULL, probe_item,
			    NULL, NULL, &perr) == 0)
		return 0;
	if (perr.code == KF_E_UNAVAILABLE || perr.code == KF_E_TIMEOUT ||
	    perr.code == KF_E_INVALID)
		return kf_fail(err, perr.code, "Cloud KMS endpoint %s: %s",
			       s->kms.endpoint, perr.msg);
	kf_log(KF_LOG_WARN, "gcp: listing locations of %s failed: %s",
	       s->projects[0], perr.msg);
	return 0;
}

static int gcp_create(const struct kf_config *cfg, struct kf_provider **out,
		      struct kf_err *err)
{
	struct kf_provider *p = NULL;
	struct kf_gcp *s = NULL;
	int rc = -1;

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
	if (settings(s, cfg, err) < 0 || connect_kms(s, cfg, err) < 0 ||
	    probe(s, err) < 0 ||
	    (s->bucket[0] && kf_gcp_bucket_probe(s, err) < 0))
		goto out;
	if (s->bucket[0])
		p->max_value = KF_BERGLAS_MAX_VALUE;
	kf_log(KF_LOG_INFO, "gcp: Cloud KMS at %s, %zu project(s), first %s",
	       s->kms.endpoint, s->nprojects, s->projects[0]);
	if (s->bucket[0])
		kf_log(KF_LOG_INFO, "gcp: values in gs://%s/%s at %s",
		       s->bucket, s->prefix, s->gcs.endpoint);
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
	{ "gcp_bucket", "BUCKET[/PREFIX]",
	  "keep values in this Cloud Storage bucket, berglas format (default: "
	  "the local store, for a single host)" },
	{ "gcs_endpoint", "URL",
	  "Cloud Storage endpoint (default: "
	  "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE or "
	  "https://storage.googleapis.com/)" },
	{ "gsm_endpoint", "URL",
	  "Secret Manager endpoint (default: "
	  "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER or "
	  "https://secretmanager.googleapis.com/)" },
	{ "gsm_kms_key", "KEY",
	  "Cloud KMS key (projects/.../cryptoKeys/K) for new secrets "
	  "(default: Google-managed encryption)" },
	{ NULL, NULL, NULL },
};

const struct kf_provider_desc kf_gcp_desc = {
	.name = "gcp",
	.opts = gcp_opts,
	.detect = gcp_detect,
	.create = gcp_create,
};
