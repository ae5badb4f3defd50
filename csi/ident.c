/*
 * Identities of the Kubernetes provider (see ident.h): the node's, and
 * one per role built on first use after STS accepted a pod's token for
 * it.  No network I/O with the set's lock held: a new role is listed as
 * CREATING, built outside the lock, and others wanting it wait.
 */
#include "ident.h"

#include "aws/creds.h"
#include "core/clock.h"
#include "core/log.h"
#include "setup.h"
#include "view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_MS 250

/* A role unused this long past its values' lifetime is dropped. */
#define IDLE_GRACE_MS 60000

static void ident_free(struct kf_csi_ident *id)
{
	if (!id)
		return;
	if (id->cache_on)
		kf_cache_refresh_stop(&id->fs.cache);
	for (size_t i = 0; i < id->np; i++)
		id->provs[i]->ops->free(id->provs[i]);
	kf_fs_release(&id->fs);
	kf_aws_chain_free(id->chain);
	free(id->role);
	free(id);
}

/* The tree and cache of an identity whose providers are made. */
static int ident_cache(struct kf_csi_ident *id, const struct kf_opts *o,
		       struct kf_err *err)
{
	id->fs.tree.providers = id->provs;
	id->fs.tree.n = id->np;
	id->fs.ttl = o->ttl;
	id->fs.read_only = 1;
	if (kf_cache_init(&id->fs.cache, o->ttl, o->max_stale, o->timeout) < 0)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	id->cache_on = 1;
	return 0;
}

/* Providers, tree and cache of a new identity (cfg names its chain). */
static int ident_build(struct kf_csi_ident *id, const struct kf_opts *o,
		       const char *list, const struct kf_config *cfg,
		       struct kf_err *err)
{
	if (kf_setup_providers(list, cfg, id->provs, KF_CSI_MAX_PROVIDERS,
			       &id->np, err) < 0)
		return -1;
	return ident_cache(id, o, err);
}

/* Start background work of id's providers (after the process is set). */
static int ident_start(struct kf_csi_ident *id, struct kf_err *err)
{
	for (size_t i = 0; i < id->np; i++) {
		struct kf_provider *p = id->provs[i];

		if (p->ops->start && p->ops->start(p, err) < 0)
			return -1;
	}
	return 0;
}

/* Append name to the role list ("aws,ssm"). */
static int role_list_add(struct kf_csi_idents *s, const char *name,
			 struct kf_err *err)
{
	size_t used = strlen(s->role_list);
	int m = snprintf(s->role_list + used, sizeof(s->role_list) - used,
			 "%s%s", used ? "," : "", name);

	if (m < 0 || (size_t)m >= sizeof(s->role_list) - used)
		return kf_fail(err, KF_E_RANGE, "too many providers");
	return 0;
}

/*
 * The node's providers, one at a time: one that can act as a role but
 * finds no working credentials of the node's own (a pod without the
 * node's instance role, say) is left out of the node's identity with a
 * warning and still serves classes with a roleArn; any other failure
 * stops the start.
 */
static int node_providers(struct kf_csi_idents *s, struct kf_csi_ident *node,
			  struct kf_err *err)
{
	const char *list = s->o->providers;

	if (list && kf_setup_check_names(list, err) < 0)
		return -1;
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];
		size_t one = 0;

		if (!kf_setup_wanted(list, d, &s->cfg) ||
		    node->np == KF_CSI_MAX_PROVIDERS)
			continue;
		if (d->assumes_role && role_list_add(s, d->name, err) < 0)
			return -1;
		kf_err_clear(err);
		if (kf_setup_providers(d->name, &s->cfg, node->provs + node->np,
				       1, &one, err) == 0) {
			node->np += one;
			continue;
		}
		if (!d->assumes_role || err->code == KF_E_NOMEM)
			return -1;
		kf_log(KF_LOG_WARN,
		       "%s (the node's own credentials): %s/ objects are "
		       "served only to classes with a roleArn",
		       err->msg, d->name);
	}
	return 0;
}

int kf_csi_idents_init(struct kf_csi_idents *s, const struct kf_opts *o,
		       const char *store, struct kf_err *err)
{
	struct kf_csi_ident *node = calloc(1, sizeof(*node));

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->o = o;
	kf_setup_config(o, store, &s->cfg);
	s->cfg.direct_reads = 1; /* Mounts read paths never looked up */
	if (!node)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	node->state = KF_CSI_READY;
	s->node = node;
	kf_fs_init(&node->fs);
	if (node_providers(s, node, err) < 0)
		return -1;
	return ident_cache(node, o, err);
}

/* The provider name path ("/aws/...") starts with, into name (n bytes);
 * 0, or -1 when there is none. */
static int provider_name(const char *path, char *name, size_t n)
{
	size_t l;

	path += *path == '/';
	l = strcspn(path, "/");
	if (l == 0 || l >= n)
		return -1;
	memcpy(name, path, l);
	name[l] = '\0';
	return 0;
}

int kf_csi_provider_state(struct kf_csi_idents *s, const char *path)
{
	struct kf_provider *p;
	const char *rel;
	char name[64];

	if (kf_tree_route(&s->node->fs.tree, path, &p, &rel) == 0 && p)
		return 0;
	if (provider_name(path, name, sizeof(name)) < 0)
		return -1;
	return kf_setup_listed(s->role_list, name) ? 1 : -1;
}

struct kf_csi_ident *kf_csi_idents_node(struct kf_csi_idents *s)
{
	return s->node;
}

int kf_csi_path_assumes_role(const char *path)
{
	const struct kf_provider_desc *d;
	char name[64];

	if (provider_name(path, name, sizeof(name)) < 0)
		return 0;
	d = kf_provider_find(name);
	return d && d->assumes_role;
}

int kf_csi_ident_read(struct kf_csi_ident *id, const char *path,
		      struct kf_secret **out)
{
	struct kf_provider *p;
	const char *rel;
	int rc = kf_tree_route(&id->fs.tree, path, &p, &rel);

	*out = NULL;
	if (rc)
		return rc;
	if (!p || !*rel)
		return -EISDIR;
	return kf_fs_value(&id->fs, p, path, rel, "mount", out);
}

/* ---------- roles ---------- */

/* The listed role, or NULL.  Lock held. */
static struct kf_csi_ident *find_locked(struct kf_csi_idents *s,
					const char *role)
{
	for (size_t i = 0; i < s->nroles; i++)
		if (!strcmp(s->roles[i]->role, role))
			return s->roles[i];
	return NULL;
}

static void unlist_locked(struct kf_csi_idents *s, struct kf_csi_ident *id)
{
	for (size_t i = 0; i < s->nroles; i++)
		if (s->roles[i] == id) {
			s->roles[i] = s->roles[--s->nroles];
			return;
		}
}

/* Make room for one more role: unlist the least recently used idle
 * one, returned for the caller to free outside the lock.  Lock held. */
static int room_locked(struct kf_csi_idents *s, struct kf_csi_ident **evict)
{
	struct kf_csi_ident *lru = NULL;

	*evict = NULL;
	if (s->nroles < KF_CSI_MAX_ROLES)
		return 0;
	for (size_t i = 0; i < s->nroles; i++)
		if (!s->roles[i]->refs &&
		    (!lru || s->roles[i]->used_ms < lru->used_ms))
			lru = s->roles[i];
	if (!lru)
		return -1;
	unlist_locked(s, lru);
	*evict = lru;
	return 0;
}

/* Build a listed CREATING role with its first token; lock not held. */
static int role_create(struct kf_csi_idents *s, struct kf_csi_ident *id,
		       const char *token, size_t n, struct kf_err *err)
{
	struct kf_aws_role_cfg rc = {
		.role_arn = id->role,
		.profile = kf_config_get(&s->cfg, "aws_profile"),
		.timeout_ms = (s->o->timeout ? s->o->timeout : 30) * 1000u,
	};
	struct kf_config cfg = s->cfg;

	if (!s->role_list[0])
		return kf_fail(err, KF_E_INVALID,
			       "roleArn: no provider of this node acts as a "
			       "role (aws/ or ssm/ is not configured)");
	if (kf_aws_chain_new_role(&rc, &id->chain, err) < 0 ||
	    kf_aws_chain_offer_token(id->chain, token, n, err) < 0)
		return -1;
	cfg.aws_chain = id->chain;
	if (ident_build(id, s->o, s->role_list, &cfg, err) < 0 ||
	    ident_start(id, err) < 0)
		return -1;
	kf_log(KF_LOG_INFO, "role %s: identity ready (%zu providers)", id->role,
	       id->np);
	return 0;
}

/* Find or list role (a reference taken); *creator says the caller must
 * build it.  -1 when no room.  Lock held. */
static struct kf_csi_ident *get_locked(struct kf_csi_idents *s,
				       const char *role, int *creator,
				       struct kf_csi_ident **evict,
				       struct kf_err *err)
{
	struct kf_csi_ident *id = find_locked(s, role);

	*creator = 0;
	if (id) {
		id->refs++;
		return id;
	}
	if (room_locked(s, evict) < 0) {
		kf_fail(err, KF_E_UNAVAILABLE,
			"%d roles are in use at once; try again",
			KF_CSI_MAX_ROLES);
		return NULL;
	}
	id = calloc(1, sizeof(*id));
	if (id)
		id->role = strdup(role);
	if (!id || !id->role) {
		free(id);
		kf_fail(err, KF_E_NOMEM, "out of memory");
		return NULL;
	}
	kf_fs_init(&id->fs);
	id->state = KF_CSI_CREATING;
	id->refs = 1;
	s->roles[s->nroles++] = id;
	*creator = 1;
	return id;
}

int kf_csi_ident_role(struct kf_csi_idents *s, const char *role,
		      const char *token, size_t n, struct kf_csi_ident **out,
		      struct kf_err *err)
{
	struct kf_csi_ident *id, *evict = NULL;
	int creator, rc;

	*out = NULL;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		id = get_locked(s, role, &creator, &evict, err);
		if (!id || creator)
			break;
		while (id->state == KF_CSI_CREATING)
			pthread_cond_wait(&s->cond, &s->lock);
		if (id->state == KF_CSI_READY)
			break;
		/* Its creator failed (another token): try as a creator. */
		if (--id->refs == 0) {
			pthread_mutex_unlock(&s->lock);
			ident_free(id);
			pthread_mutex_lock(&s->lock);
		}
	}
	if (id)
		id->used_ms = kf_clock_now_ms();
	pthread_mutex_unlock(&s->lock);
	ident_free(evict);
	if (!id)
		return -1;
	if (creator)
		rc = role_create(s, id, token, n, err);
	else
		rc = kf_aws_chain_offer_token(id->chain, token, n, err);
	if (creator) {
		pthread_mutex_lock(&s->lock);
		id->state = rc == 0 ? KF_CSI_READY : KF_CSI_FAILED;
		if (rc < 0)
			unlist_locked(s, id);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	if (rc < 0) {
		kf_csi_ident_put(s, id);
		return -1;
	}
	*out = id;
	return 0;
}

void kf_csi_ident_put(struct kf_csi_idents *s, struct kf_csi_ident *id)
{
	int last;

	if (!id)
		return;
	pthread_mutex_lock(&s->lock);
	id->used_ms = kf_clock_now_ms();
	last = --id->refs == 0 && id->state == KF_CSI_FAILED;
	pthread_mutex_unlock(&s->lock);
	if (last)
		ident_free(id);
}

/* ---------- the refresher ---------- */

static void unchanged(void *ctx, const char *path)
{
	(void)ctx;
	(void)path;
}

/* Unlist one role idle past its values' lifetime, or NULL.  Lock held. */
static struct kf_csi_ident *idle_locked(struct kf_csi_idents *s, uint64_t now)
{
	uint64_t life =
		((uint64_t)s->o->ttl + s->o->max_stale) * 1000u + IDLE_GRACE_MS;

	for (size_t i = 0; i < s->nroles; i++) {
		struct kf_csi_ident *id = s->roles[i];

		if (!id->refs && id->state == KF_CSI_READY &&
		    now - id->used_ms > life) {
			unlist_locked(s, id);
			return id;
		}
	}
	return NULL;
}

/* One pass over every identity's cache (references held meanwhile). */
static void refresh_pass(struct kf_csi_idents *s)
{
	struct kf_csi_ident *held[KF_CSI_MAX_ROLES], *gone;
	size_t n = 0;

	kf_cache_refresh_tick(&s->node->fs.cache, unchanged, NULL);
	pthread_mutex_lock(&s->lock);
	gone = idle_locked(s, kf_clock_now_ms());
	for (size_t i = 0; i < s->nroles; i++)
		if (s->roles[i]->state == KF_CSI_READY) {
			s->roles[i]->refs++;
			held[n++] = s->roles[i];
		}
	pthread_mutex_unlock(&s->lock);
	if (gone)
		kf_log(KF_LOG_INFO, "role %s: idle, dropped", gone->role);
	ident_free(gone);
	for (size_t i = 0; i < n; i++) {
		kf_cache_refresh_tick(&held[i]->fs.cache, unchanged, NULL);
		pthread_mutex_lock(&s->lock);
		held[i]->refs--;
		pthread_mutex_unlock(&s->lock);
	}
}

static void *refresher_main(void *arg)
{
	struct kf_csi_idents *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		pthread_mutex_unlock(&s->lock);
		refresh_pass(s);
		pthread_mutex_lock(&s->lock);
		kf_cache_abstime(REFRESH_MS, &ts);
		if (!s->stop)
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int kf_csi_idents_start(struct kf_csi_idents *s, struct kf_err *err)
{
	if (ident_start(s->node, err) < 0)
		return -1;
	if (pthread_create(&s->refresher, NULL, refresher_main, s) != 0)
		return kf_fail(err, KF_E_NOMEM, "cannot start a thread");
	s->refresher_on = 1;
	return 0;
}

void kf_csi_idents_release(struct kf_csi_idents *s)
{
	if (s->refresher_on) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->refresher, NULL);
		s->refresher_on = 0;
	}
	for (size_t i = 0; i < s->nroles; i++)
		ident_free(s->roles[i]);
	s->nroles = 0;
	ident_free(s->node);
	s->node = NULL;
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}
