/*
 * keyfs start-up, as sshfs does it rather than through fuse_main: harden
 * the process, parse options, check the store and every provider while
 * stderr is still the terminal, mount, daemonize, start threads, then run
 * the multithreaded loop with an explicit thread limit.
 */
#include "audit.h"
#include "errmap.h"
#include "core/http.h"
#include "core/log.h"
#include "ops.h"
#include "opts.h"
#include "refresh.h"
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
static int check_store(const char *store, const char *mnt, int ro,
		       char *real, size_t reallen)
{
	char rmnt[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	size_t ml;

	/* Created even for -o ro (a read-only mount of a new store simply
	 * has nothing in local/); only a writable mount insists. */
	if (mkdirs(store) < 0 && !ro) {
		fprintf(stderr, "keyfs: cannot create store %s: %s\n", store,
			strerror(errno));
		return -1;
	}
	if (!realpath(store, tmp) || stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "keyfs: store %s is not a usable directory: %s\n",
			store, strerror(errno ? errno : ENOTDIR));
		return -1;
	}
	if (!ro && access(tmp, W_OK | X_OK) < 0) {
		fprintf(stderr, "keyfs: store %s is not writable: %s\n", tmp,
			strerror(errno));
		return -1;
	}
	if (st.st_mode & 077)
		fprintf(stderr, "keyfs: warning: store %s is accessible by "
			"others (mode %04o); chmod 700 recommended\n", tmp,
			(unsigned)(st.st_mode & 07777));
	if (realpath(mnt, rmnt)) {
		ml = strlen(rmnt);
		if (!strcmp(rmnt, tmp) ||
		    (!strncmp(tmp, rmnt, ml) && (tmp[ml] == '/' || ml == 1))) {
			fprintf(stderr, "keyfs: store %s must not be inside the "
				"mountpoint %s\n", tmp, rmnt);
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
	struct stat st;

	if (stat(mnt, &st) < 0) {
		fprintf(stderr, "keyfs: mountpoint %s: %s\n", mnt,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "keyfs: mountpoint %s is not a directory\n", mnt);
		return -1;
	}
	return 0;
}

static int wanted(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",:");

		if (l == n && !strncmp(p, name, n))
			return 1;
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

/* Every name in the list must be a built-in provider. */
static int check_provider_list(const char *list)
{
	char name[64];

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",:");

		if (l == 0 || l >= sizeof(name) ||
		    (memcpy(name, p, l), name[l] = '\0',
		     !kf_provider_find(name))) {
			fprintf(stderr, "keyfs: providers=%s: unknown provider "
				"'%.*s' (built in:", list, (int)l, p);
			for (size_t i = 0; kf_provider_table[i]; i++)
				fprintf(stderr, " %s", kf_provider_table[i]->name);
			fprintf(stderr, ")\n");
			return -1;
		}
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_loop_config *loop = NULL;
	struct kf_opts o;
	struct kf_config cfg;
	struct kf_fs fs;
	struct kf_provider *provs[16];
	struct kf_err err = KF_ERR_INIT;
	struct fuse *fuse = NULL;
	char store[PATH_MAX], *defstore = NULL;
	size_t np = 0;
	int rc = 1, mounted = 0;

	harden();
	kf_fs_init(&fs);
	if (kf_opts_parse(&args, &o) < 0) {
		fprintf(stderr, "keyfs: %s\n(try keyfs --help)\n", o.errbuf);
		goto out;
	}
	if (o.show_help) {
		kf_opts_help(stdout, "keyfs");
		rc = 0;
		goto out;
	}
	if (o.show_version) {
		printf("keyfs %s (libfuse %s)\n", KF_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	kf_log_set_level(o.debug ? KF_LOG_DEBUG : KF_LOG_INFO);
	if (o.log_level)
		kf_log_set_level((enum kf_log_level)kf_log_level_parse(o.log_level));
	if (check_mountpoint(o.mountpoint) < 0)
		goto out;
	if (!o.store) {
		defstore = kf_opts_default_store();
		if (!defstore) {
			fprintf(stderr, "keyfs: no default store (HOME unset); "
				"use -o store=DIR\n");
			goto out;
		}
	}
	if (check_store(o.store ? o.store : defstore, o.mountpoint, o.read_only,
			store, sizeof(store)) < 0)
		goto out;
	if (kf_http_global_init(&err) < 0) {
		fprintf(stderr, "keyfs: %s\n", err.msg);
		goto out;
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.store = store;
	cfg.timeout = o.timeout;
	cfg.ttl = o.ttl;
	cfg.read_only = o.read_only;
	cfg.opts = o.kv;
	cfg.nopts = o.nkv;
	if (o.providers && check_provider_list(o.providers) < 0)
		goto out;
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];

		if (o.providers ? !wanted(o.providers, d->name)
				: !d->detect(&cfg))
			continue;
		if (np == sizeof(provs) / sizeof(provs[0]))
			break;
		kf_err_clear(&err);
		if (d->create(&cfg, &provs[np], &err) < 0) {
			fprintf(stderr, "keyfs: %s: %s\n", d->name,
				err.msg[0] ? err.msg : kf_code_name(err.code));
			goto out;
		}
		np++;
	}
	for (size_t i = 0; i < o.nkv; i++) {
		const struct kf_provider_desc *d =
			kf_provider_for_option(o.kv[i].key);
		int on = 0;

		for (size_t k = 0; k < np; k++)
			if (d && !strcmp(provs[k]->name, d->name))
				on = 1;
		if (!on)
			fprintf(stderr, "keyfs: warning: option %s is for %s/, "
				"which is not mounted\n", o.kv[i].key,
				d ? d->name : "?");
	}
	fs.tree.providers = provs;
	fs.tree.n = np;
	fs.uid = o.uid;
	fs.gid = o.gid;
	fs.umask = o.umask;
	fs.read_only = o.read_only;
	fs.direct_io = o.direct_io;
	fs.ttl = o.ttl;
	fs.no_open = o.read_only && !o.audit && !o.direct_io && o.ttl > 0;
	if (kf_cache_init(&fs.cache, o.ttl, o.max_stale, o.timeout) < 0) {
		fprintf(stderr, "keyfs: out of memory\n");
		goto out;
	}
	if (o.audit) {
		char ebuf[256];

		if (kf_audit_open(o.audit, &fs.audit, ebuf, sizeof(ebuf)) < 0) {
			fprintf(stderr, "keyfs: %s\n", ebuf);
			goto out;
		}
	}

	if (fuse_opt_add_arg(&args, "-odefault_permissions") < 0 ||
	    fuse_opt_add_arg(&args, "-ofsname=keyfs") < 0 ||
	    fuse_opt_add_arg(&args, "-osubtype=keyfs") < 0 ||
	    (o.debug && fuse_opt_add_arg(&args, "-d") < 0))
		goto out;
	fuse = fuse_new(&args, &kf_fs_ops, sizeof(kf_fs_ops), &fs);
	if (!fuse)
		goto out;	/* libfuse said why (unknown option, ...) */
	fs.fuse = fuse;
	if (fuse_mount(fuse, o.mountpoint) != 0)
		goto out;
	mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
		goto out;
	if (fuse_daemonize(o.foreground) != 0)
		goto out;
	if (!o.foreground)
		kf_log_use_syslog();
	/* Memory locks do not survive fork(): lock what we hold again. */
	kf_secret_relock_all();
	for (size_t i = 0; i < np; i++) {
		kf_err_clear(&err);
		if (provs[i]->ops->start && provs[i]->ops->start(provs[i], &err) < 0) {
			kf_log(KF_LOG_ERROR, "%s: cannot start: %s", provs[i]->name,
			       err.msg);
			goto out;
		}
	}
	if (kf_fs_start_refresher(&fs) < 0) {
		kf_log(KF_LOG_ERROR, "cannot start the refresher thread");
		goto out;
	}
	kf_log(KF_LOG_INFO, "mounted at %s (store %s, %zu provider%s)",
	       o.mountpoint, store, np, np == 1 ? "" : "s");
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out;
	fuse_loop_cfg_set_max_threads(loop, o.threads);
	fuse_loop_cfg_set_clone_fd(loop, 0);
	/* The loop returns the number of the signal that ended it: SIGTERM,
	 * SIGINT and SIGHUP are the normal ways to stop (systemctl stop). */
	rc = fuse_loop_mt(fuse, loop);
	rc = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
	kf_log(KF_LOG_INFO, "unmounted %s", o.mountpoint);
out:
	kf_fs_stop_refresher(&fs);
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (fuse) {
		fuse_remove_signal_handlers(fuse_get_session(fuse));
		if (mounted)
			fuse_unmount(fuse);
		fuse_destroy(fuse);
	}
	for (size_t i = 0; i < np; i++)
		provs[i]->ops->free(provs[i]);
	kf_audit_close(fs.audit);
	kf_fs_release(&fs);
	kf_opts_release(&o);
	free(defstore);
	fuse_opt_free_args(&args);
	return rc;
}
