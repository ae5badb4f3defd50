/*
 * Provider start-up shared by keyfs and keyfs-csi-provider (see
 * setup.h): the store, the configuration, the list of providers.  Knows
 * no provider by name.
 */
#include "setup.h"
#include "iobuf.h"
#include "core/crypto.h"
#include "core/json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

void kf_setup_harden(const char *prog)
{
	struct rlimit no = { 0, 0 };

	/* First of all, before OpenSSL allocates anything: it frees through
	 * a wiping free.  And a fixed mmap threshold, which makes every
	 * read's reply buffer a mapping of its own (fs/iobuf.h). */
	if (kf_crypto_mem_init() < 0)
		fprintf(stderr,
			"%s: warning: OpenSSL's memory is not "
			"wiped when freed\n",
			prog);
	if (kf_iobuf_init() < 0)
		fprintf(stderr,
			"%s: warning: cannot fix the malloc mmap "
			"threshold; read buffers may be reused "
			"unwiped\n",
			prog);
	/* No core dumps, no ptrace by same-uid processes. */
	setrlimit(RLIMIT_CORE, &no);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
	kf_json_init();
}

/* mkdir -p with mode 0700 for the missing parts. */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Whether real (a resolved path) is mnt or lies under it. */
static int inside(const char *real, const char *mnt)
{
	char rmnt[PATH_MAX];
	size_t ml;

	if (!mnt || !realpath(mnt, rmnt))
		return 0;
	ml = strlen(rmnt);
	return !strcmp(rmnt, real) ||
	       (!strncmp(real, rmnt, ml) && (real[ml] == '/' || ml == 1));
}

int kf_setup_store(const char *prog, const char *store, const char *mnt, int ro,
		   char *real, size_t reallen)
{
	char tmp[PATH_MAX];
	struct stat st;

	/* Created even for -o ro (a read-only mount of a new store simply
	 * has nothing stored yet); only a writable mount insists. */
	if (mkdirs(store) < 0 && !ro) {
		fprintf(stderr, "%s: cannot create store %s: %s\n", prog, store,
			strerror(errno));
		return -1;
	}
	if (!realpath(store, tmp) || stat(tmp, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: store %s is not a usable directory: %s\n",
			prog, store, strerror(errno ? errno : ENOTDIR));
		return -1;
	}
	if (!ro && access(tmp, W_OK | X_OK) < 0) {
		fprintf(stderr, "%s: store %s is not writable: %s\n", prog, tmp,
			strerror(errno));
		return -1;
	}
	if (st.st_mode & 077)
		fprintf(stderr,
			"%s: warning: store %s is accessible by "
			"others (mode %04o); chmod 700 recommended\n",
			prog, tmp, (unsigned)(st.st_mode & 07777));
	if (inside(tmp, mnt)) {
		fprintf(stderr,
			"%s: store %s must not be inside the "
			"mountpoint %s\n",
			prog, tmp, mnt);
		return -1;
	}
	if (strlen(tmp) >= reallen)
		return -1;
	memcpy(real, tmp, strlen(tmp) + 1);
	return 0;
}

void kf_setup_config(const struct kf_opts *o, const char *store,
		     struct kf_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->store = store;
	cfg->timeout = o->timeout;
	cfg->ttl = o->ttl;
	cfg->read_only = o->read_only;
	cfg->opts = o->kv;
	cfg->nopts = o->nkv;
}

/* Whether name (n bytes) is in the comma- or colon-separated list. */
int kf_setup_listed(const char *list, const char *name)
{
	size_t want = strlen(name);

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",:");

		if (l == want && !strncmp(p, name, l))
			return 1;
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

int kf_setup_check_names(const char *list, struct kf_err *err)
{
	char known[256] = "";
	size_t used = 0;

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",:");
		char name[64];

		if (l > 0 && l < sizeof(name)) {
			memcpy(name, p, l);
			name[l] = '\0';
		}
		if (l == 0 || l >= sizeof(name) || !kf_provider_find(name)) {
			for (size_t i = 0; kf_provider_table[i]; i++) {
				int m = snprintf(known + used,
						 sizeof(known) - used, " %s",
						 kf_provider_table[i]->name);

				if (m > 0 && (size_t)m < sizeof(known) - used)
					used += (size_t)m;
			}
			return kf_fail(err, KF_E_INVALID,
				       "providers=%s: unknown provider "
				       "'%.*s' (built in:%s)",
				       list, (int)l, p, known);
		}
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

int kf_setup_wanted(const char *list, const struct kf_provider_desc *d,
		    const struct kf_config *cfg)
{
	return list ? kf_setup_listed(list, d->name) : d->detect(cfg);
}

/* "NAME: why" in *err, with NAME once even when the message has it. */
static int provider_failed(const char *name, struct kf_err *err)
{
	char msg[sizeof(err->msg)];
	size_t n = strlen(name);

	(void)snprintf(msg, sizeof(msg), "%s",
		       err->msg[0] ? err->msg : kf_code_name(err->code));
	if (!strncmp(msg, name, n) && !strncmp(msg + n, ": ", 2))
		return -1; /* says it already */
	/* A message cut short is still the message. */
	(void)snprintf(err->msg, sizeof(err->msg), "%s: %.*s", name,
		       (int)(sizeof(err->msg) - n - 3), msg);
	return -1;
}

int kf_setup_providers(const char *list, const struct kf_config *cfg,
		       struct kf_provider **provs, size_t max, size_t *np,
		       struct kf_err *err)
{
	*np = 0;
	if (list && kf_setup_check_names(list, err) < 0)
		return -1;
	for (size_t i = 0; kf_provider_table[i] && *np < max; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];

		if (!kf_setup_wanted(list, d, cfg))
			continue;
		kf_err_clear(err);
		if (d->create(cfg, &provs[*np], err) < 0) {
			provider_failed(d->name, err);
			while (*np > 0) {
				--*np;
				provs[*np]->ops->free(provs[*np]);
			}
			return -1;
		}
		++*np;
	}
	return 0;
}

/* Whether the provider named name also reads option key. */
static int shares(const char *name, const char *key)
{
	const struct kf_provider_desc *d = kf_provider_find(name);

	for (size_t i = 0; d && d->shares && d->shares[i]; i++)
		if (!strcmp(d->shares[i], key))
			return 1;
	return 0;
}

void kf_setup_warn_unused(const char *prog, const struct kf_opts *o,
			  struct kf_provider *const *provs, size_t np)
{
	for (size_t i = 0; i < o->nkv; i++) {
		const struct kf_provider_desc *d =
			kf_provider_for_option(o->kv[i].key);
		int on = 0;

		for (size_t j = 0; j < np; j++)
			if ((d && !strcmp(provs[j]->name, d->name)) ||
			    shares(provs[j]->name, o->kv[i].key))
				on = 1;
		if (!on)
			fprintf(stderr,
				"%s: warning: option %s is for %s/, "
				"which is not mounted\n",
				prog, o->kv[i].key, d ? d->name : "?");
	}
}
