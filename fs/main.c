/*
 * keyfs start-up as a ladder of steps, as sshfs does it rather than
 * through fuse_main: harden, parse options, check the store and every
 * provider while stderr is still the terminal, mount, daemonize, start
 * threads, run the multithreaded loop with an explicit thread limit.  No
 * thread starts before the process has daemonized.
 */
#include "audit.h"
#include "iobuf.h"
#include "errmap.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "mountpoint.h"
#include "onchange.h"
#include "ops.h"
#include "opts.h"
#include "refresh.h"
#include "watch.h"
#include "provider.h"
#include "core/secret.h"
#include "core/json.h"

#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void harden(void)
{
	struct rlimit no = { 0, 0 };

	/* First of all, before OpenSSL allocates anything: it frees through
	 * a wiping free.  And a fixed mmap threshold, which makes every
	 * read's reply buffer a mapping of its own (fs/iobuf.h). */
	if (kf_crypto_mem_init() < 0)
		fprintf(stderr, "keyfs: warning: OpenSSL's memory is not "
				"wiped when freed\n");
	if (kf_iobuf_init() < 0)
		fprintf(stderr, "keyfs: warning: cannot fix the malloc mmap "
				"threshold; read buffers may be reused "
				"unwiped\n");
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

/* The store must exist (created 0700), be writable unless ro, and lie
 * outside the mountpoint: the daemon never reads its own mount. */
static int check_store(const char *store, const char *mnt, int ro, char *real,
		       size_t reallen)
{
	char rmnt[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	size_t ml;

	/* Created even for -o ro (a read-only mount of a new store simply
	 * has nothing stored yet); only a writable mount insists. */
	if (mkdirs(store) < 0 && !ro) {
		fprintf(stderr, "keyfs: cannot create store %s: %s\n", store,
			strerror(errno));
		return -1;
	}
	if (!realpath(store, tmp) || stat(tmp, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"keyfs: store %s is not a usable directory: %s\n",
			store, strerror(errno ? errno : ENOTDIR));
		return -1;
	}
	if (!ro && access(tmp, W_OK | X_OK) < 0) {
		fprintf(stderr, "keyfs: store %s is not writable: %s\n", tmp,
			strerror(errno));
		return -1;
	}
	if (st.st_mode & 077)
		fprintf(stderr,
			"keyfs: warning: store %s is accessible by "
			"others (mode %04o); chmod 700 recommended\n",
			tmp, (unsigned)(st.st_mode & 07777));
	/* A /dev/fd/N mountpoint names no path: where its caller mounted it
	 * (and so whether the store lies inside) is the caller's to check. */
	if (kf_mountpoint_fd(mnt) < 0 && realpath(mnt, rmnt)) {
		ml = strlen(rmnt);
		if (!strcmp(rmnt, tmp) ||
		    (!strncmp(tmp, rmnt, ml) && (tmp[ml] == '/' || ml == 1))) {
			fprintf(stderr,
				"keyfs: store %s must not be inside the "
				"mountpoint %s\n",
				tmp, rmnt);
			return -1;
		}
	}
	if (strlen(tmp) >= reallen)
		return -1;
	memcpy(real, tmp, strlen(tmp) + 1);
	return 0;
}

static int check_mountpoint(const char *mnt)
{
	char msg[3 * PATH_MAX];

	if (kf_mountpoint_check(mnt, NULL, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "keyfs: %s\n", msg);
		return -1;
	}
	return 0;
}

/*
 * Call fn for each name of a comma- or colon-separated list; stops at and
 * returns the first non-zero result.
 */
static int each_name(const char *list,
		     int (*fn)(void *ctx, const char *name, size_t n),
		     void *ctx)
{
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",:");
		int rc = fn(ctx, p, l);

		if (rc)
			return rc;
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

static int is_name(void *ctx, const char *name, size_t n)
{
	const char *want = ctx;

	return strlen(want) == n && !strncmp(name, want, n);
}

/* A name of -o providers= that is not built in: say so, stop. */
static int unknown_name(void *ctx, const char *p, size_t l)
{
	const char *list = ctx;
	char name[64];

	if (l > 0 && l < sizeof(name)) {
		memcpy(name, p, l);
		name[l] = '\0';
		if (kf_provider_find(name))
			return 0;
	}
	fprintf(stderr,
		"keyfs: providers=%s: unknown provider '%.*s' "
		"(built in:",
		list, (int)l, p);
	for (size_t i = 0; kf_provider_table[i]; i++)
		fprintf(stderr, " %s", kf_provider_table[i]->name);
	fprintf(stderr, ")\n");
	return -1;
}

/* Everything the start-up ladder builds, torn down by finish(). */
struct keyfs {
	struct fuse_args args;
	struct kf_opts o;
	struct kf_config cfg;
	struct kf_fs fs;
	struct kf_provider *provs[16];
	size_t np;
	struct fuse *fuse;
	struct fuse_loop_config *loop;
	int mounted;
	char store[PATH_MAX];
	char *defstore;
	int status; /* the exit status */
};

/* What a step of the ladder says: go on, stop here (k->status set), or
 * fail (exit status 1; the step said why). */
enum {
	STEP_NEXT = 0,
	STEP_DONE = 1,
	STEP_FAIL = -1
};

static int parse_options(struct keyfs *k)
{
	struct kf_opts *o = &k->o;

	if (kf_opts_parse(&k->args, o) < 0) {
		fprintf(stderr, "keyfs: %s\n(try keyfs --help)\n", o->errbuf);
		return STEP_FAIL;
	}
	if (o->show_help) {
		kf_opts_help(stdout, "keyfs");
		k->status = 0;
		return STEP_DONE;
	}
	if (o->show_version) {
		printf("keyfs %s (libfuse %s)\n", KF_VERSION,
		       fuse_pkgversion());
		k->status = 0;
		return STEP_DONE;
	}
	kf_log_set_level(o->debug ? KF_LOG_DEBUG : KF_LOG_INFO);
	if (o->log_level)
		kf_log_set_level(
			(enum kf_log_level)kf_log_level_parse(o->log_level));
	return STEP_NEXT;
}

/* The mountpoint, then the store (its default for this user). */
static int check_paths(struct keyfs *k)
{
	if (check_mountpoint(k->o.mountpoint) < 0)
		return STEP_FAIL;
	if (!k->o.store) {
		k->defstore = kf_opts_default_store();
		if (!k->defstore) {
			fprintf(stderr, "keyfs: no default store (HOME unset); "
					"use -o store=DIR\n");
			return STEP_FAIL;
		}
	}
	if (check_store(k->o.store ? k->o.store : k->defstore, k->o.mountpoint,
			k->o.read_only, k->store, sizeof(k->store)) < 0)
		return STEP_FAIL;
	return STEP_NEXT;
}

static int init_http(struct keyfs *k)
{
	struct kf_err err = KF_ERR_INIT;

	(void)k;
	if (kf_http_global_init(&err) < 0) {
		fprintf(stderr, "keyfs: %s\n", err.msg);
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/* Warn about options given for a provider that is not mounted. */
/* Whether the provider named name also reads option key. */
static int shares(const char *name, const char *key)
{
	const struct kf_provider_desc *d = kf_provider_find(name);

	for (size_t i = 0; d && d->shares && d->shares[i]; i++)
		if (!strcmp(d->shares[i], key))
			return 1;
	return 0;
}

static void warn_unused_options(struct keyfs *k)
{
	for (size_t i = 0; i < k->o.nkv; i++) {
		const struct kf_provider_desc *d =
			kf_provider_for_option(k->o.kv[i].key);
		int on = 0;

		for (size_t j = 0; j < k->np; j++)
			if ((d && !strcmp(k->provs[j]->name, d->name)) ||
			    shares(k->provs[j]->name, k->o.kv[i].key))
				on = 1;
		if (!on)
			fprintf(stderr,
				"keyfs: warning: option %s is for %s/, "
				"which is not mounted\n",
				k->o.kv[i].key, d ? d->name : "?");
	}
}

/* "keyfs: NAME: why", with NAME once even when the message has it. */
static void provider_failed(const char *name, const struct kf_err *err)
{
	const char *msg = err->msg[0] ? err->msg : kf_code_name(err->code);
	size_t n = strlen(name);

	if (!strncmp(msg, name, n) && !strncmp(msg + n, ": ", 2))
		fprintf(stderr, "keyfs: %s\n", msg);
	else
		fprintf(stderr, "keyfs: %s: %s\n", name, msg);
}

/*
 * Create the providers asked for with -o providers=, or those whose
 * configuration or credentials are found; each checks its configuration
 * and credentials now, while stderr is the terminal.
 */
static int create_providers(struct keyfs *k)
{
	struct kf_err err = KF_ERR_INIT;
	const char *list = k->o.providers;

	k->cfg.store = k->store;
	k->cfg.timeout = k->o.timeout;
	k->cfg.ttl = k->o.ttl;
	k->cfg.read_only = k->o.read_only;
	k->cfg.opts = k->o.kv;
	k->cfg.nopts = k->o.nkv;
	if (list && each_name(list, unknown_name, (void *)list) < 0)
		return STEP_FAIL;
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];

		if (list ? !each_name(list, is_name, (void *)d->name) :
			   !d->detect(&k->cfg))
			continue;
		if (k->np == sizeof(k->provs) / sizeof(k->provs[0]))
			break;
		kf_err_clear(&err);
		if (d->create(&k->cfg, &k->provs[k->np], &err) < 0) {
			provider_failed(d->name, &err);
			return STEP_FAIL;
		}
		k->np++;
	}
	warn_unused_options(k);
	return STEP_NEXT;
}

/* The mount's state: providers, ownership, modes, cache, audit trail. */
static int setup_fs(struct keyfs *k)
{
	struct kf_fs *fs = &k->fs;
	const struct kf_opts *o = &k->o;
	struct kf_err err = KF_ERR_INIT;
	char ebuf[256];

	fs->tree.providers = k->provs;
	fs->tree.n = k->np;
	fs->uid = o->uid;
	fs->gid = o->gid;
	fs->umask = o->umask;
	fs->read_only = o->read_only;
	fs->direct_io = o->direct_io;
	fs->ttl = o->ttl;
	fs->no_open = o->read_only && !o->audit && !o->direct_io && o->ttl > 0;
	/* Writable: reads may use the page cache on the same terms. */
	fs->page_cache = !o->read_only && !o->audit && !o->direct_io &&
			 o->ttl > 0;
	fs->exact_sizes = o->exact_sizes;
	/* /dev/fd/N: the string itself (realpath would say /dev/fuse); the
	 * events file and on_change then name values /dev/fd/N/PATH. */
	if (kf_mountpoint_fd(o->mountpoint) >= 0) {
		if (strlen(o->mountpoint) >= sizeof(fs->mnt))
			return STEP_FAIL;
		memcpy(fs->mnt, o->mountpoint, strlen(o->mountpoint) + 1);
	} else if (!realpath(o->mountpoint, fs->mnt)) {
		fprintf(stderr, "keyfs: %s: %s\n", o->mountpoint,
			strerror(errno));
		return STEP_FAIL;
	}
	if (kf_watch_init(fs, o->watch_max) < 0) {
		fprintf(stderr, "keyfs: out of memory\n");
		return STEP_FAIL;
	}
	if (kf_modes_load(&fs->modes, k->store, &err) < 0) {
		fprintf(stderr, "keyfs: store %s: %s\n", k->store, err.msg);
		return STEP_FAIL;
	}
	if (kf_cache_init(&fs->cache, o->ttl, o->max_stale, o->timeout) < 0 ||
	    kf_kview_init(&fs->kview) < 0) {
		fprintf(stderr, "keyfs: out of memory\n");
		return STEP_FAIL;
	}
	if (o->audit &&
	    kf_audit_open(o->audit, &fs->audit, ebuf, sizeof(ebuf)) < 0) {
		fprintf(stderr, "keyfs: %s\n", ebuf);
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/* Create the FUSE session and mount; libfuse says why when it fails. */
static int mount_fuse(struct keyfs *k)
{
	if (fuse_opt_add_arg(&k->args, "-odefault_permissions") < 0 ||
	    fuse_opt_add_arg(&k->args, "-ofsname=keyfs") < 0 ||
	    fuse_opt_add_arg(&k->args, "-osubtype=keyfs") < 0 ||
	    (k->o.debug && fuse_opt_add_arg(&k->args, "-d") < 0))
		return STEP_FAIL;
	k->fuse = fuse_new(&k->args, &kf_fs_ops, sizeof(kf_fs_ops), &k->fs);
	if (!k->fuse)
		return STEP_FAIL; /* unknown option, ... */
	k->fs.fuse = k->fuse;
	k->fs.events.fuse = k->fuse;
	if (fuse_mount(k->fuse, k->o.mountpoint) != 0)
		return STEP_FAIL;
	k->mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(k->fuse)) != 0)
		return STEP_FAIL;
	return STEP_NEXT;
}

static int detach(struct keyfs *k)
{
	if (fuse_daemonize(k->o.foreground) != 0)
		return STEP_FAIL;
	if (!k->o.foreground)
		kf_log_use_syslog();
	/* Memory locks do not survive fork(): lock what we hold again. */
	kf_secret_relock_all();
	return STEP_NEXT;
}

/* Threads start only now: they would not survive daemonizing. */
static int start_threads(struct keyfs *k)
{
	struct kf_err err = KF_ERR_INIT;

	for (size_t i = 0; i < k->np; i++) {
		struct kf_provider *p = k->provs[i];

		kf_err_clear(&err);
		if (p->ops->start && p->ops->start(p, &err) < 0) {
			kf_log(KF_LOG_ERROR, "%s: cannot start: %s", p->name,
			       err.msg);
			return STEP_FAIL;
		}
	}
	if (kf_fs_start_refresher(&k->fs) < 0) {
		kf_log(KF_LOG_ERROR, "cannot start the refresher thread");
		return STEP_FAIL;
	}
	if (k->o.on_change) {
		k->fs.onchange = kf_onchange_new(k->o.on_change, NULL);
		if (!k->fs.onchange) {
			kf_log(KF_LOG_ERROR,
			       "cannot start the on_change runner");
			return STEP_FAIL;
		}
	}
	if (kf_watch_start(&k->fs) < 0) {
		kf_log(KF_LOG_ERROR, "cannot start the change watcher");
		return STEP_FAIL;
	}
	kf_log(KF_LOG_INFO, "mounted at %s (store %s, %zu provider%s)",
	       k->o.mountpoint, k->store, k->np, k->np == 1 ? "" : "s");
	return STEP_NEXT;
}

static int run_loop(struct keyfs *k)
{
	int rc;

	k->loop = fuse_loop_cfg_create();
	if (!k->loop)
		return STEP_FAIL;
	fuse_loop_cfg_set_max_threads(k->loop, k->o.threads);
	fuse_loop_cfg_set_clone_fd(k->loop, 0);
	/* The loop returns the number of the signal that ended it: SIGTERM,
	 * SIGINT and SIGHUP are the normal ways to stop (systemctl stop). */
	rc = fuse_loop_mt(k->fuse, k->loop);
	k->status = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ?
			    0 :
			    1;
	kf_log(KF_LOG_INFO, "unmounted %s", k->o.mountpoint);
	return STEP_DONE;
}

/* Tear down whatever the ladder built, in reverse. */
static void finish(struct keyfs *k)
{
	kf_fs_stop_refresher(&k->fs);
	/* Before the providers go: a round may be calling one. */
	kf_watch_stop(&k->fs);
	kf_onchange_free(k->fs.onchange);
	k->fs.onchange = NULL;
	k->fs.events.fuse = NULL;
	if (k->loop)
		fuse_loop_cfg_destroy(k->loop);
	if (k->fuse) {
		fuse_remove_signal_handlers(fuse_get_session(k->fuse));
		if (k->mounted)
			fuse_unmount(k->fuse);
		fuse_destroy(k->fuse);
	}
	for (size_t i = 0; i < k->np; i++)
		k->provs[i]->ops->free(k->provs[i]);
	kf_audit_close(k->fs.audit);
	kf_watch_free(&k->fs);
	kf_fs_release(&k->fs);
	kf_opts_release(&k->o);
	free(k->defstore);
	fuse_opt_free_args(&k->args);
}

/* The start-up ladder, in order; every step may stop it. */
static int (*const ladder[])(struct keyfs *k) = {
	parse_options,			 /* --help, --version stop here */
	check_paths,			 /* stderr is still the terminal ... */
	init_http,     create_providers, /* ... configuration and credentials */
	setup_fs,      mount_fuse,
	detach, /* from here on, errors go to the log */
	start_threads, run_loop,
};

int main(int argc, char **argv)
{
	static struct keyfs k; /* large; one per process */

	k.args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	k.status = 1;
	harden();
	kf_fs_init(&k.fs);
	for (size_t i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++)
		if (ladder[i](&k) != STEP_NEXT)
			break;
	finish(&k);
	return k.status;
}
