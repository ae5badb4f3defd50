/*
 * Option parsing with fuse_opt, driven by one table of descriptors (name,
 * kind, offset into struct kf_opts, bounds, help).  Options keyfs knows
 * are consumed, fstab-only words dropped, provider options collected for
 * the providers that declare them, anything else left for libfuse.  Knows
 * no provider by name: provider names and options come from the table in
 * cloud/providers.c.
 */
#include "opts.h"
#include "core/log.h"
#include "onchange.h"

#include <errno.h>
#include <fuse.h>
#include <fuse_opt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_kind {
	OPT_FLAG, /* int field = val */
	OPT_UINT, /* unsigned field, in [min, max], digits in base */
	OPT_STR,  /* char * field, replaced by a copy of the value */
};

struct opt_desc {
	const char *templ; /* fuse_opt template: "-f", "ro", "ttl=" */
	enum opt_kind kind;
	size_t off;		     /* of the field in struct kf_opts */
	int val;		     /* OPT_FLAG: the value set */
	int keep;		     /* OPT_FLAG: also passed on to libfuse */
	unsigned long min, max;	     /* OPT_UINT */
	int base;		     /* OPT_UINT: 10 or 8 */
	int nonempty;		     /* OPT_STR: an empty value is refused */
	int (*check)(const char *v); /* OPT_STR: < 0 refuses v */
	int list;	   /* OPT_STR: names fuse_opt splits at commas */
	const char *what;  /* what a bad value should be */
	const char *usage; /* --help left column; NULL: not listed */
	const char *help;  /* --help text, lines split by '\n' */
};

/* Offsets that only compile for a field of the kind's type. */
#define FLAG_OFF(f) \
	_Generic(((struct kf_opts *)0)->f, int : offsetof(struct kf_opts, f))
#define UINT_OFF(f)                                 \
	_Generic(((struct kf_opts *)0)->f, unsigned \
		 : offsetof(struct kf_opts, f))
#define STR_OFF(f) \
	_Generic(((struct kf_opts *)0)->f, char * : offsetof(struct kf_opts, f))

#define FLAG(t, f, v, k, u, h)                                              \
	{                                                                   \
		.templ = t, .kind = OPT_FLAG, .off = FLAG_OFF(f), .val = v, \
		.keep = k, .usage = u, .help = h                            \
	}
#define UINT(t, f, lo, hi, b, w, u, h)                                       \
	{                                                                    \
		.templ = t, .kind = OPT_UINT, .off = UINT_OFF(f), .min = lo, \
		.max = hi, .base = b, .what = w, .usage = u, .help = h       \
	}
#define STR(t, f, ne, chk, l, w, u, h)                              \
	{                                                           \
		.templ = t, .kind = OPT_STR, .off = STR_OFF(f),     \
		.nonempty = ne, .check = chk, .list = l, .what = w, \
		.usage = u, .help = h                               \
	}

static int check_log_level(const char *v)
{
	return kf_log_level_parse(v);
}

static int check_command(const char *v)
{
	char msg[256];

	return kf_onchange_check(v, msg, sizeof(msg));
}

/* In --help order; an option with several spellings is listed once. */
static const struct opt_desc opt_table[] = {
	FLAG("-h", show_help, 1, 0, "-h, --help", "print this help and exit"),
	FLAG("--help", show_help, 1, 0, NULL, NULL),
	FLAG("-V", show_version, 1, 0, "-V, --version",
	     "print the version and exit"),
	FLAG("--version", show_version, 1, 0, NULL, NULL),
	FLAG("-f", foreground, 1, 0, "-f",
	     "stay in the foreground, log to stderr"),
	FLAG("-d", debug, 1, 0, "-d, -o debug",
	     "foreground, debug log and FUSE request trace"),
	FLAG("debug", debug, 1, 0, NULL, NULL),
	STR("providers=", providers, 0, NULL, 1, NULL, "-o providers=LIST",
	    "providers to mount, comma or colon separated\n"
	    "(default: local, plus each cloud provider whose\n"
	    "configuration or credentials are found)"),
	STR("store=", store, 1, NULL, 0, "a directory", "-o store=DIR",
	    "state directory (default: /var/lib/keyfs for\n"
	    "root, else $XDG_DATA_HOME/keyfs or\n"
	    "~/.local/share/keyfs)"),
	UINT("timeout=", timeout, 1, 3600, 10, "seconds, 1 to 3600",
	     "-o timeout=SECONDS", "deadline for one operation (default: 30)"),
	UINT("threads=", threads, 1, 1024, 10, "1 to 1024", "-o threads=N",
	     "maximum FUSE worker threads (default: 16)"),
	STR("log=", log_level, 0, check_log_level, 0,
	    "use error, warn, info or debug", "-o log=LEVEL",
	    "error, warn, info or debug (default: info)"),
	UINT("uid=", uid, 0, 0xfffffffeUL, 10, "a numeric user id",
	     "-o uid=N, -o gid=N",
	     "owner of every file (default: the mounting user)"),
	UINT("gid=", gid, 0, 0xfffffffeUL, 10, "a numeric group id", NULL,
	     NULL),
	UINT("umask=", umask, 0, 0777, 8, "an octal mask such as 077",
	     "-o umask=OCTAL",
	     "permission mask (default: 077, so files are\n"
	     "0600 and directories 0700)"),
	/* ro and allow_other go on to the kernel, which enforces them too */
	FLAG("ro", read_only, 1, 1, "-o ro",
	     "read-only mount: every write fails with EROFS"),
	FLAG("rw", read_only, 0, 0, NULL, NULL),
	FLAG("allow_other", allow_other, 1, 1, "-o allow_other",
	     "let other users in (off by default; the kernel\n"
	     "still checks the permission bits)"),
	UINT("ttl=", ttl, 0, 86400, 10, "seconds, 0 to 86400", "-o ttl=SECONDS",
	     "how long a value is cached; values being read\n"
	     "are refreshed before then (default: 300)"),
	UINT("max_stale=", max_stale, 0, 604800, 10, "seconds, 0 to 604800",
	     "-o max_stale=SECONDS",
	     "when the provider is unreachable, serve the last\n"
	     "value this long past its ttl (default: 3600)"),
	FLAG("direct_io", direct_io, 1, 0, "-o direct_io",
	     "keep values out of the kernel's page cache\n"
	     "(slower warm reads; off by default)"),
	FLAG("exact_sizes", exact_sizes, 1, 0, "-o exact_sizes",
	     "ls -l and stat fetch values to show their exact\n"
	     "sizes, batched (off by default: sizes of values\n"
	     "not cached are 0, or the largest possible size\n"
	     "on read-only mounts)"),
	STR("audit=", audit, 1, NULL, 0, "a file path or syslog",
	    "-o audit=FILE|syslog",
	    "one line per access: time, uid, gid, pid,\n"
	    "process, operation, path, result (default: off)"),
	UINT("watch_max=", watch_max, 0, 1000000, 10, "0 to 1000000",
	     "-o watch_max=N",
	     "values read since mounting that are re-checked\n"
	     "for changes every ttl, most recently read\n"
	     "first (default: 1000; 0 turns watching off)"),
	STR("on_change=", on_change, 1, check_command, 0,
	    "an absolute path to an executable file, then words "
	    "(no shell, no quoting)",
	    "-o on_change=COMMAND",
	    "run COMMAND with the path of a value that\n"
	    "changed as its last argument (no shell;\n"
	    "default: none); see also MOUNT/.keyfs/events"),
};

#define NOPTS (sizeof(opt_table) / sizeof(opt_table[0]))

/* Words mount(8) and fstab use that mean nothing to keyfs or FUSE. */
static int fstab_only(const char *a)
{
	static const char *const words[] = {
		"_netdev", "noauto",   "auto",	"user",	 "users", "nouser",
		"nofail",  "defaults", "owner", "group", NULL,
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

/* Keep the first error; a message cut to errbuf is still the message. */
static int bad(struct kf_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->errbuf[0]) {
		va_start(ap, fmt);
		(void)vsnprintf(o->errbuf, sizeof(o->errbuf), fmt, ap);
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

/* Apply option d, given as arg ("name=value" or "name"); fuse_opt's
 * convention: 0 consumed, 1 kept for libfuse, -1 error. */
static int apply(struct kf_opts *o, const struct opt_desc *d, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const char *v = eq ? eq + 1 : "";
	char *field = (char *)o + d->off;
	unsigned long n;

	switch (d->kind) {
	case OPT_FLAG:
		*(int *)(void *)field = d->val;
		return d->keep;
	case OPT_UINT:
		if (kf_opts_parse_uint(v, d->base, d->max, &n) < 0 ||
		    n < d->min)
			return bad(o, "%s%s: %s", d->templ, v, d->what);
		*(unsigned *)(void *)field = (unsigned)n;
		return 0;
	case OPT_STR:
		if (d->nonempty && !*v)
			return bad(o, "%s needs %s", d->templ, d->what);
		if (d->check && d->check(v) < 0)
			return bad(o, "%s%s: %s", d->templ, v, d->what);
		if (d->list)
			o->list_open = (char **)(void *)field;
		return set_str((char **)(void *)field, v);
	}
	return 1;
}

/* A bare provider name right after a list option: fuse_opt split
 * "providers=A,B" at the comma, so join B back. */
static int list_continue(struct kf_opts *o, char **list, const char *arg)
{
	size_t len = strlen(*list) + strlen(arg) + 2;
	char *p = malloc(len);

	if (!p)
		return -1;
	if ((size_t)snprintf(p, len, "%s,%s", *list, arg) >= len) {
		free(p);
		return -1;
	}
	free(*list);
	*list = p;
	o->list_open = list;
	return 0;
}

/* A word that is not in the table (list is the list option it may
 * continue, or NULL). */
static int other_option(struct kf_opts *o, char **list, const char *arg)
{
	char key[128];
	size_t kl = strcspn(arg, "=");

	if (fstab_only(arg))
		return 0;
	if (list && kf_provider_find(arg))
		return list_continue(o, list, arg);
	if (kl >= sizeof(key))
		return 1; /* libfuse decides */
	memcpy(key, arg, kl);
	key[kl] = '\0';
	if (kf_provider_for_option(key))
		return add_kv(o, arg);
	if (kf_provider_for_prefix(key))
		return bad(o, "unknown provider option '%s'", key);
	return 1; /* libfuse decides */
}

/* MOUNTPOINT, or SOURCE MOUNTPOINT (the mount(8) form). */
static int positional(struct kf_opts *o, const char *arg)
{
	if (!o->mountpoint)
		return set_str(&o->mountpoint, arg);
	if (o->source)
		return bad(o, "unexpected argument '%s'", arg);
	o->source = o->mountpoint;
	o->mountpoint = strdup(arg);
	return o->mountpoint ? 0 : -1;
}

/* Options that only mean something to a mount. */
static int mount_only(const char *templ)
{
	static const char *const only[] = {
		"threads=",    "uid=",	     "gid=",	    "umask=",
		"ro",	       "rw",	     "allow_other", "direct_io",
		"exact_sizes", "watch_max=", "on_change=",  NULL,
	};

	for (size_t i = 0; only[i]; i++)
		if (!strcmp(only[i], templ))
			return 1;
	return 0;
}

/* What a program that mounts nothing makes of a word. */
static int proc_nomount(struct kf_opts *o, char **list, const char *arg,
			int key)
{
	int rc;

	if (key >= 0 && (size_t)key < NOPTS) {
		if (mount_only(opt_table[key].templ))
			return bad(o,
				   "%s is an option of keyfs mounts, not "
				   "of this program",
				   arg);
		return apply(o, &opt_table[key], arg) < 0 ? -1 : 0;
	}
	if (key == FUSE_OPT_KEY_NONOPT)
		return bad(o, "unexpected argument '%s'", arg);
	rc = key == FUSE_OPT_KEY_OPT ? other_option(o, list, arg) : 1;
	if (rc == 1)
		return bad(o, "unknown option '%s'", arg);
	return rc;
}

static int proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct kf_opts *o = data;
	char **list = o->list_open;

	(void)out;
	o->list_open = NULL;
	if (o->no_mount)
		return proc_nomount(o, list, arg, key);
	if (key >= 0 && (size_t)key < NOPTS)
		return apply(o, &opt_table[key], arg);
	if (key == FUSE_OPT_KEY_NONOPT)
		return positional(o, arg);
	if (key == FUSE_OPT_KEY_OPT)
		return other_option(o, list, arg);
	return 1;
}

static int parse(struct fuse_args *args, struct kf_opts *o, int no_mount)
{
	struct fuse_opt spec[NOPTS + 1];
	int rc;

	for (size_t i = 0; i < NOPTS; i++) {
		spec[i] = (struct fuse_opt)FUSE_OPT_KEY(opt_table[i].templ,
							(int)i);
	}
	spec[NOPTS] = (struct fuse_opt)FUSE_OPT_END;
	memset(o, 0, sizeof(*o));
	o->no_mount = no_mount;
	o->timeout = 30;
	o->threads = 16;
	o->ttl = 300;
	o->max_stale = 3600;
	o->uid = getuid();
	o->gid = getgid();
	o->umask = 077;
	o->watch_max = 1000;
	rc = fuse_opt_parse(args, o, spec, proc);
	if (o->debug)
		o->foreground = 1; /* -d implies -f */
	if (rc < 0)
		return bad(o, "invalid command line");
	if (o->errbuf[0])
		return -1;
	if (!no_mount && !o->show_help && !o->show_version && !o->mountpoint)
		return bad(o, "no mountpoint given");
	return 0;
}

int kf_opts_parse(struct fuse_args *args, struct kf_opts *o)
{
	return parse(args, o, 0);
}

int kf_opts_parse_nomount(int argc, char **argv, struct kf_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int rc = parse(&args, o, 1);

	fuse_opt_free_args(&args);
	return rc;
}

void kf_opts_release(struct kf_opts *o)
{
	free(o->source);
	free(o->mountpoint);
	free(o->store);
	free(o->providers);
	free(o->log_level);
	free(o->audit);
	free(o->on_change);
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

/* One --help entry: the left column, then the text, continuation lines
 * indented under it. */
static void help_entry(FILE *out, const char *usage, const char *help)
{
	const char *nl;

	fprintf(out, "    %-22s ", usage);
	for (nl = strchr(help, '\n'); nl; nl = strchr(help, '\n')) {
		fprintf(out, "%.*s\n%27s", (int)(nl - help), help, "");
		help = nl + 1;
	}
	fprintf(out, "%s\n", help);
}

static void help_providers(FILE *out)
{
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];

		if (!d->opts || !d->opts[0].name)
			continue;
		fprintf(out, "\n%s/ options:\n", d->name);
		for (const struct kf_provider_opt *po = d->opts; po->name;
		     po++) {
			char left[64];

			/* display only: a longer name is cut, not wrong */
			(void)snprintf(left, sizeof(left), "-o %s%s%s",
				       po->name, po->arg ? "=" : "",
				       po->arg ? po->arg : "");
			help_entry(out, left, po->help);
		}
	}
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
		"general options:\n",
		prog, prog);
	for (size_t i = 0; i < NOPTS; i++)
		if (opt_table[i].usage)
			help_entry(out, opt_table[i].usage, opt_table[i].help);
	fprintf(out,
		"    fstab-only words (_netdev, noauto, nofail, user, x-systemd.*) are\n"
		"    accepted and ignored\n");
	help_providers(out);
}
