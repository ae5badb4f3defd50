/*
 * keyfs-csi-provider: the Secrets Store CSI driver's provider for keyfs.
 * Start-up as keyfs does it (harden, options, store, providers checked
 * while stderr is the terminal), then serve the provider API on a unix
 * socket until SIGTERM or SIGINT.  Foreground only: it runs in a pod.
 */
#include "audit.h"
#include "core/http.h"
#include "core/log.h"
#include "core/stats.h"
#include "grpc.h"
#include "mount.h"
#include "opts.h"
#include "probe.h"
#include "setup.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "keyfs-csi-provider"
#define DEFAULT_SOCKET "/var/run/secrets-store-csi-providers/keyfs.sock"

static struct kf_grpc_server *server; /* for the signal handler */

static void on_signal(int sig)
{
	(void)sig;
	if (server)
		kf_grpc_server_stop(server);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--socket=PATH] "
		"[--node-identity-namespaces=LIST] [-o OPTIONS]...\n"
		"\n"
		"Serves keyfs paths to pods through the Secrets Store CSI "
		"driver\n(provider API v1alpha1 over gRPC on a unix socket).\n"
		"\n"
		"  --socket=PATH    the socket to serve (default:\n"
		"                   " DEFAULT_SOCKET ")\n"
		"  --node-identity-namespaces=LIST\n"
		"                   namespaces whose pods may be served with "
		"this\n"
		"                   node's own credentials, comma separated; "
		"'*' for\n"
		"                   all (default: none: only classes with a "
		"roleArn\n"
		"                   read aws/ and ssm/ objects)\n"
		"  --probe          exit 0 if a provider answers on the "
		"socket, else 1\n"
		"                   (a liveness probe; starts nothing)\n"
		"  --log-level=LEVEL\n"
		"                   error, warn, info or debug (default: "
		"info)\n"
		"  -o OPTIONS       keyfs's provider and cache options "
		"(providers=,\n"
		"                   store=, ttl=, max_stale=, timeout=, log=, "
		"audit=,\n"
		"                   aws_*, ssm_*, gcp_*, ...; see keyfs --help); "
		"mount\n"
		"                   options are refused\n"
		"  -h, --help       this help\n"
		"  -V, --version    the version\n");
}

/* Our own options out of argv; the rest (keyfs options) stays. */
static int own_options(int *argc, char **argv, const char **sock,
		       const char **nslist, const char **level, int *probe)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--socket=", 9))
			*sock = a + 9;
		else if (!strncmp(a, "--node-identity-namespaces=", 27))
			*nslist = a + 27;
		else if (!strncmp(a, "--log-level=", 12))
			*level = a + 12;
		else if (!strcmp(a, "--probe"))
			*probe = 1;
		else if (!strcmp(a, "--socket") ||
			 !strcmp(a, "--node-identity-namespaces") ||
			 !strcmp(a, "--log-level")) {
			fprintf(stderr, PROG ": %s needs =VALUE\n", a);
			return -1;
		} else
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	if (!**sock) {
		fprintf(stderr, PROG ": --socket needs a path\n");
		return -1;
	}
	if (*level && kf_log_level_parse(*level) < 0) {
		fprintf(stderr,
			PROG ": --log-level=%s: use error, warn, info or "
			     "debug\n",
			*level);
		return -1;
	}
	return 0;
}

/* The counters as one JSON line in the log (kill -USR1): Mount
 * counts, the node cache's counters, cloud calls by operation.  Counts
 * only, never a path or a value. */
static void log_stats(struct kf_csi *c)
{
	struct kf_buf b;
	struct kf_cache_stats cs;
	size_t roles;

	kf_buf_init(&b, 1u << 16);
	kf_cache_stats(&c->ids.node->fs.cache, &cs);
	pthread_mutex_lock(&c->ids.lock);
	roles = c->ids.nroles;
	pthread_mutex_unlock(&c->ids.lock);
	if (kf_buf_addf(&b,
			"{\"mounts\":%llu,\"mount_errors\":%llu,"
			"\"objects\":%llu,\"changed\":%llu,\"roles\":%zu,"
			"\"node_cache\":{\"hits\":%llu,\"misses\":%llu,"
			"\"waits\":%llu,\"stale\":%llu,\"entries\":%llu},"
			"\"api\":",
			(unsigned long long)__atomic_load_n(&c->st.mounts,
							    __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&c->st.mount_errors,
							    __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&c->st.objects,
							    __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&c->st.changed,
							    __ATOMIC_RELAXED),
			roles, (unsigned long long)cs.hits,
			(unsigned long long)cs.misses,
			(unsigned long long)cs.waits,
			(unsigned long long)cs.stale,
			(unsigned long long)cs.entries) == 0 &&
	    kf_stats_json(&b) == 0 && kf_buf_adds(&b, "}") == 0)
		kf_log(KF_LOG_INFO, "stats: %s", kf_buf_str(&b));
	kf_buf_release(&b);
}

/* SIGUSR1 is blocked in every thread; this one waits for it. */
static void *stats_main(void *arg)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;)
		if (sigwait(&set, &sig) == 0)
			log_stats(arg);
	return NULL;
}

static const struct kf_grpc_method methods[] = {
	{ "/v1alpha1.CSIDriverProvider/Version", kf_csi_version },
	{ "/v1alpha1.CSIDriverProvider/Mount", kf_csi_mount },
	{ NULL, NULL },
};

/* Everything start() builds, torn down by finish(). */
struct prov {
	struct kf_opts o;
	char store[PATH_MAX];
	char *defstore;
	struct kf_csi csi;
	int ids_on;
};

static int start(struct prov *v, const char *sock, const char *nslist)
{
	struct kf_grpc_cfg g = { .socket_path = sock,
				 .methods = methods,
				 .ctx = &v->csi };
	struct kf_err err = KF_ERR_INIT;
	char ebuf[256];

	if (kf_csi_set_namespaces(&v->csi, nslist, ebuf, sizeof(ebuf)) < 0) {
		fprintf(stderr, PROG ": %s\n", ebuf);
		return -1;
	}
	if (!v->o.store && !(v->defstore = kf_opts_default_store())) {
		fprintf(stderr, PROG ": no default store (HOME unset); use "
				     "-o store=DIR\n");
		return -1;
	}
	if (kf_setup_store(PROG, v->o.store ? v->o.store : v->defstore, NULL, 0,
			   v->store, sizeof(v->store)) < 0)
		return -1;
	if (kf_http_global_init(&err) < 0 ||
	    kf_csi_idents_init(&v->csi.ids, &v->o, v->store, &err) < 0) {
		v->ids_on = 1;
		fprintf(stderr, PROG ": %s\n", err.msg);
		return -1;
	}
	v->ids_on = 1;
	kf_setup_warn_unused(PROG, &v->o, v->csi.ids.node->provs,
			     v->csi.ids.node->np);
	if (v->o.audit &&
	    kf_audit_open(v->o.audit, &v->csi.audit, ebuf, sizeof(ebuf)) < 0) {
		fprintf(stderr, PROG ": %s\n", ebuf);
		return -1;
	}
	if (kf_grpc_server_new(&g, &server, &err) < 0) {
		fprintf(stderr, PROG ": %s: %s\n", sock, err.msg);
		return -1;
	}
	if (kf_csi_idents_start(&v->csi.ids, &err) < 0) {
		fprintf(stderr, PROG ": %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void finish(struct prov *v)
{
	kf_grpc_server_free(server);
	server = NULL;
	if (v->ids_on)
		kf_csi_idents_release(&v->csi.ids);
	kf_csi_namespaces_release(&v->csi);
	kf_audit_close(v->csi.audit);
	kf_opts_release(&v->o);
	free(v->defstore);
}

int main(int argc, char **argv)
{
	static struct prov v;
	const char *sock = DEFAULT_SOCKET, *nslist = "", *level = NULL;
	int probe = 0;
	struct kf_err err = KF_ERR_INIT;
	struct sigaction sa;
	sigset_t usr1;
	pthread_t st;
	int status = 1;

	kf_setup_harden(PROG);
	/* Before any thread starts: they all inherit the mask. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	kf_log_set_prog(PROG);
	if (own_options(&argc, argv, &sock, &nslist, &level, &probe) < 0)
		return 2;
	if (probe) {
		char why[256];

		if (kf_csi_probe(sock, 5000, why, sizeof(why)) == 0)
			return 0;
		fprintf(stderr, PROG ": %s: %s\n", sock, why);
		return 1;
	}
	if (kf_opts_parse_nomount(argc, argv, &v.o) < 0) {
		fprintf(stderr, PROG ": %s\n(try " PROG " --help)\n",
			v.o.errbuf);
		kf_opts_release(&v.o);
		return 2;
	}
	if (v.o.show_help || v.o.show_version) {
		if (v.o.show_help)
			usage(stdout);
		else
			printf(PROG " %s (keyfs)\n", KF_VERSION);
		kf_opts_release(&v.o);
		return 0;
	}
	kf_log_set_level(v.o.debug ? KF_LOG_DEBUG : KF_LOG_INFO);
	if (v.o.log_level || level)
		kf_log_set_level((enum kf_log_level)kf_log_level_parse(
			level ? level : v.o.log_level));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL); /* a pod gone mid-answer */
	if (start(&v, sock, nslist) == 0) {
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		if (pthread_create(&st, NULL, stats_main, &v.csi) == 0)
			pthread_detach(st);
		kf_log(KF_LOG_INFO, "serving %s (%zu provider%s)", sock,
		       v.csi.ids.node->np, v.csi.ids.node->np == 1 ? "" : "s");
		if (kf_grpc_server_run(server, &err) == 0)
			status = 0;
		else
			kf_log(KF_LOG_ERROR, "%s", err.msg);
		kf_log(KF_LOG_INFO, "stopped");
	}
	finish(&v);
	return status;
}
