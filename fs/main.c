/*
 * keyfs start-up as a ladder of steps, as sshfs does it rather than
 * through fuse_main: harden, parse options, check the store and every
 * provider while stderr is still the terminal, mount, daemonize, start
 * threads, run the multithreaded loop with an explicit thread limit.  No
 * thread starts before the process has daemonized.
 */
#include "audit.h"
#include "errmap.h"
#include "core/http.h"
#include "core/log.h"
#include "mountpoint.h"
#include "onchange.h"
#include "ops.h"
#include "opts.h"
#include "refresh.h"
#include "setup.h"
#include "watch.h"
#include "provider.h"
#include "core/secret.h"

#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_mountpoint(const char *mnt)
{
	char msg[3 * PATH_MAX];

	if (kf_mountpoint_check(mnt, NULL, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "keyfs: %s\n", msg);
		return -1;
	}
	return 0;
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
	/* A /dev/fd/N mountpoint names no path: where its caller mounted it
	 * (and so whether the store lies inside) is the caller's to check. */
	if (kf_setup_store("keyfs", k->o.store ? k->o.store : k->defstore,
			   kf_mountpoint_fd(k->o.mountpoint) < 0 ?
				   k->o.mountpoint :
				   NULL,
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

/*
 * Create the providers asked for with -o providers=, or those whose
 * configuration or credentials are found; each checks its configuration
 * and credentials now, while stderr is the terminal.
 */
static int create_providers(struct keyfs *k)
{
	struct kf_err err = KF_ERR_INIT;

	kf_setup_config(&k->o, k->store, &k->cfg);
	if (kf_setup_providers(k->o.providers, &k->cfg, k->provs,
			       sizeof(k->provs) / sizeof(k->provs[0]), &k->np,
			       &err) < 0) {
		fprintf(stderr, "keyfs: %s\n", err.msg);
		return STEP_FAIL;
	}
	kf_setup_warn_unused("keyfs", &k->o, k->provs, k->np);
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
	kf_setup_harden("keyfs");
	kf_fs_init(&k.fs);
	for (size_t i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++)
		if (ladder[i](&k) != STEP_NEXT)
			break;
	finish(&k);
	return k.status;
}
