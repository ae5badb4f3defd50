/*
 * Option parsing with fuse_opt.  Options keyfs understands are consumed;
 * fstab-only words are dropped; provider options are collected; anything
 * else is left for libfuse, which rejects what it does not know.
 */
#include "opts.h"
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <fuse.h>
#include <fuse_opt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_STORE,
	KEY_PROVIDERS,
	KEY_LOG,
	KEY_TIMEOUT,
	KEY_THREADS,
	KEY_UID,
	KEY_GID,
	KEY_UMASK,
	KEY_RO,
	KEY_RW,
	KEY_ALLOW_OTHER,
	KEY_TTL,
	KEY_MAX_STALE,
	KEY_DIRECT_IO,
	KEY_AUDIT,
};

static const struct fuse_opt spec[] = {
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("store=", KEY_STORE),
	FUSE_OPT_KEY("providers=", KEY_PROVIDERS),
	FUSE_OPT_KEY("log=", KEY_LOG),
	FUSE_OPT_KEY("timeout=", KEY_TIMEOUT),
	FUSE_OPT_KEY("threads=", KEY_THREADS),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	FUSE_OPT_KEY("umask=", KEY_UMASK),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("ttl=", KEY_TTL),
	FUSE_OPT_KEY("max_stale=", KEY_MAX_STALE),
	FUSE_OPT_KEY("direct_io", KEY_DIRECT_IO),
	FUSE_OPT_KEY("audit=", KEY_AUDIT),
	FUSE_OPT_END
};

/* Words mount(8) and fstab use that mean nothing to keyfs or FUSE. */
static int fstab_only(const char *a)
{
	static const char *const words[] = {
		"_netdev", "noauto", "auto", "user", "users", "nouser",
		"nofail", "defaults", "owner", "group", NULL,
	};

	for (size_t i = 0; words[i]; i++)
		if (strcmp(a, words[i]) == 0)
			return 1;
	return !strncmp(a, "x-systemd.", 10) || !strncmp(a, "x-", 2) ||
	       !strncmp(a, "comment=", 8);
}

int kf_opts_parse_uint(const char *s, int base, unsigned long max,
		       unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!*s)
		return -1;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > (base == 8 ? '7' : '9'))
			return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int bad(struct kf_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct kf_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(o->errbuf, sizeof(o->errbuf), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (!n)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

static int add_kv(struct kf_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct kf_kv *n;

	n = realloc(o->kv, (o->nkv + 1) * sizeof(*n));
	if (!n)
		return -1;
	o->kv = n;
	n = &o->kv[o->nkv];
	n->key = eq ? strndup(arg, (size_t)(eq - arg)) : strdup(arg);
	n->value = eq ? strdup(eq + 1) : NULL;
	if (!n->key || (eq && !n->value)) {
		free(n->key);
		free(n->value);
		return -1;
	}
	o->nkv++;
	return 0;
}

static int is_provider_word(const char *a)
{
	return kf_provider_find(a) || !strcmp(a, "aws") || !strcmp(a, "gcp") ||
	       !strcmp(a, "local");
}

static int proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct kf_opts *o = data;
	const char *v = strchr(arg, '=');
	unsigned long n;
	int was_providers = o->last_providers;

	(void)out;
	o->last_providers = 0;
	v = v ? v + 1 : "";
	switch (key) {
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		o->foreground = 1;
		o->debug = 1;
		return 0;
	case KEY_STORE:
		if (!*v)
			return bad(o, "store= needs a directory");
		return set_str(&o->store, v);
	case KEY_PROVIDERS:
		o->last_providers = 1;
		return set_str(&o->providers, v);
	case KEY_LOG:
		if (kf_log_level_parse(v) < 0)
			return bad(o, "log=%s: use error, warn, info or debug",
				   v);
		return set_str(&o->log_level, v);
	case KEY_TIMEOUT:
		if (kf_opts_parse_uint(v, 10, 3600, &n) < 0 || n == 0)
			return bad(o, "timeout=%s: seconds, 1 to 3600", v);
		o->timeout = (unsigned)n;
		return 0;
	case KEY_THREADS:
		if (kf_opts_parse_uint(v, 10, 1024, &n) < 0 || n == 0)
			return bad(o, "threads=%s: 1 to 1024", v);
		o->threads = (unsigned)n;
		return 0;
	case KEY_UID:
		if (kf_opts_parse_uint(v, 10, 0xfffffffeUL, &n) < 0)
			return bad(o, "uid=%s: a numeric user id", v);
		o->uid = (uid_t)n;
		return 0;
	case KEY_GID:
		if (kf_opts_parse_uint(v, 10, 0xfffffffeUL, &n) < 0)
			return bad(o, "gid=%s: a numeric group id", v);
		o->gid = (gid_t)n;
		return 0;
	case KEY_UMASK:
		if (kf_opts_parse_uint(v, 8, 0777, &n) < 0)
			return bad(o, "umask=%s: an octal mask such as 077", v);
		o->umask = (mode_t)n;
		return 0;
	case KEY_RO:
		o->read_only = 1;
		return 1;	/* the kernel enforces it too */
	case KEY_RW:
		o->read_only = 0;
		return 0;
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_TTL:
		if (kf_opts_parse_uint(v, 10, 86400, &n) < 0)
			return bad(o, "ttl=%s: seconds, 0 to 86400", v);
		o->ttl = (unsigned)n;
		return 0;
	case KEY_MAX_STALE:
		if (kf_opts_parse_uint(v, 10, 604800, &n) < 0)
			return bad(o, "max_stale=%s: seconds, 0 to 604800", v);
		o->max_stale = (unsigned)n;
		return 0;
	case KEY_DIRECT_IO:
		o->direct_io = 1;
		return 0;
	case KEY_AUDIT:
		if (!*v)
			return bad(o, "audit= needs a file path or syslog");
		return set_str(&o->audit, v);
	case FUSE_OPT_KEY_NONOPT:
		if (!o->mountpoint)
			return set_str(&o->mountpoint, arg);
		if (!o->source) {
			/* mount(8) form: SOURCE MOUNTPOINT */
			o->source = o->mountpoint;
			o->mountpoint = strdup(arg);
			return o->mountpoint ? 0 : -1;
		}
		return bad(o, "unexpected argument '%s'", arg);
	case FUSE_OPT_KEY_OPT:
		if (fstab_only(arg))
			return 0;
		if (was_providers && is_provider_word(arg)) {
			/* -o providers=local,aws: fuse_opt split the list */
			size_t len = strlen(o->providers) + strlen(arg) + 2;
			char *p = malloc(len);

			if (!p)
				return -1;
			snprintf(p, len, "%s,%s", o->providers, arg);
			free(o->providers);
			o->providers = p;
			o->last_providers = 1;
			return 0;
		}
		{
			char key_name[128];
			size_t kl = strcspn(arg, "=");

			if (kl < sizeof(key_name)) {
				memcpy(key_name, arg, kl);
				key_name[kl] = '\0';
				if (kf_provider_for_option(key_name))
					return add_kv(o, arg);
				if (!strncmp(key_name, "aws_", 4) ||
				    !strncmp(key_name, "gcp_", 4) ||
				    !strncmp(key_name, "local_", 6))
					return bad(o, "unknown provider option "
						   "'%s'", key_name);
			}
		}
		return 1;	/* libfuse decides */
	default:
		return 1;
	}
}

int kf_opts_parse(struct fuse_args *args, struct kf_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout = 30;
	o->threads = 16;
	o->ttl = 300;
	o->max_stale = 3600;
	o->uid = getuid();
	o->gid = getgid();
	o->umask = 077;
	if (fuse_opt_parse(args, o, spec, proc) < 0) {
		if (!o->errbuf[0])
			snprintf(o->errbuf, sizeof(o->errbuf),
				 "invalid command line");
		return -1;
	}
	if (o->errbuf[0])
		return -1;
	if (!o->show_help && !o->show_version && !o->mountpoint) {
		snprintf(o->errbuf, sizeof(o->errbuf), "no mountpoint given");
		return -1;
	}
	return 0;
}

void kf_opts_release(struct kf_opts *o)
{
	free(o->source);
	free(o->mountpoint);
	free(o->store);
	free(o->providers);
	free(o->log_level);
	free(o->audit);
	for (size_t i = 0; i < o->nkv; i++) {
		free(o->kv[i].key);
		free(o->kv[i].value);
	}
	free(o->kv);
	memset(o, 0, sizeof(*o));
}

char *kf_opts_default_store(void)
{
	const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
	char buf[4096];
	int n;

	if (geteuid() == 0)
		return strdup("/var/lib/keyfs");
	if (x && *x == '/')
		n = snprintf(buf, sizeof(buf), "%s/keyfs", x);
	else if (h && *h == '/')
		n = snprintf(buf, sizeof(buf), "%s/.local/share/keyfs", h);
	else
		return NULL;
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return strdup(buf);
}

void kf_opts_help(FILE *out, const char *prog)
{
	fprintf(out,
"usage: %s [-f] [-d] [-o opt[,opt...]] MOUNTPOINT\n"
"       %s SOURCE MOUNTPOINT -o opt[,opt...]   (mount(8)/fstab form; SOURCE\n"
"                                            is ignored, conventionally keyfs)\n"
"\n"
"keyfs mounts secret stores as files: local/ (embedded), and the cloud\n"
"providers built in.  See keyfs(1).\n"
"\n"
"general options:\n"
"    -h, --help             print this help and exit\n"
"    -V, --version          print the version and exit\n"
"    -f                     stay in the foreground, log to stderr\n"
"    -d, -o debug           foreground, debug log and FUSE request trace\n"
"    -o providers=LIST      providers to mount, comma or colon separated\n"
"                           (default: local, plus each cloud provider whose\n"
"                           configuration or credentials are found)\n"
"    -o store=DIR           state directory (default: /var/lib/keyfs for\n"
"                           root, else $XDG_DATA_HOME/keyfs or\n"
"                           ~/.local/share/keyfs)\n"
"    -o timeout=SECONDS     deadline for one operation (default: 30)\n"
"    -o threads=N           maximum FUSE worker threads (default: 16)\n"
"    -o log=LEVEL           error, warn, info or debug (default: info)\n"
"    -o uid=N, -o gid=N     owner of every file (default: the mounting user)\n"
"    -o umask=OCTAL         permission mask (default: 077, so files are\n"
"                           0600 and directories 0700)\n"
"    -o ro                  read-only mount: every write fails with EROFS\n"
"    -o allow_other         let other users in (off by default; the kernel\n"
"                           still checks the permission bits)\n"
"    -o ttl=SECONDS         how long a value is cached; values being read\n"
"                           are refreshed before then (default: 300)\n"
"    -o max_stale=SECONDS   when the provider is unreachable, serve the last\n"
"                           value this long past its ttl (default: 3600)\n"
"    -o direct_io           keep values out of the kernel's page cache\n"
"                           (slower warm reads; off by default)\n"
"    -o audit=FILE|syslog   one line per access: time, uid, gid, pid,\n"
"                           process, operation, path, result (default: off)\n"
"    fstab-only words (_netdev, noauto, nofail, user, x-systemd.*) are\n"
"    accepted and ignored\n",
		prog, prog);
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];

		if (!d->opts || !d->opts[0].name)
			continue;
		fprintf(out, "\n%s/ options:\n", d->name);
		for (const struct kf_provider_opt *po = d->opts; po->name;
		     po++) {
			char left[64];

			snprintf(left, sizeof(left), "-o %s%s%s", po->name,
				 po->arg ? "=" : "", po->arg ? po->arg : "");
			fprintf(out, "    %-22s %s\n", left, po->help);
		}
	}
}
