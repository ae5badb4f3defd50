/*
 * Command line: parsing into struct kf_opts, --help and defaults.
 * Provider options (named after their provider, declared in its
 * descriptor) are collected without interpretation; nothing here knows a
 * provider by name.
 */
#ifndef KF_OPTS_H
#define KF_OPTS_H

#include <stdio.h>
#include <sys/types.h>

#include "provider.h"

struct fuse_args;

struct kf_opts {
	char *source; /* mount(8) form: ignored */
	char *mountpoint;
	int show_help;
	int show_version;
	int foreground;	    /* -f */
	int debug;	    /* -d: foreground and debug log */
	char *store;	    /* NULL: default for this user */
	char *providers;    /* comma list, NULL: default */
	char *log_level;    /* NULL: info (debug with -d) */
	unsigned timeout;   /* seconds per operation */
	unsigned threads;   /* max FUSE worker threads */
	unsigned ttl;	    /* value cache lifetime, seconds */
	unsigned max_stale; /* serve stale this long when down */
	int direct_io;	    /* keep values out of the page cache */
	int exact_sizes;    /* stat fetches values for their sizes */
	char *audit;	    /* FILE or "syslog", NULL: off */
	unsigned watch_max; /* values watched for changes, 0: off */
	char *on_change;    /* command run on a change, NULL: none */
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int read_only;	  /* -o ro (also passed to the kernel) */
	int allow_other;  /* passed to the kernel */
	struct kf_kv *kv; /* provider options */
	size_t nkv;
	int no_mount;	  /* a program that mounts nothing (see
			   * kf_opts_parse_nomount) */
	char errbuf[256]; /* first parse error */
	char **list_open; /* parser state: the list option (providers=)
				 * a bare provider name continues, or NULL */
};

/*
 * Parse args (argv-style) into o, removing what keyfs consumes and leaving
 * options for libfuse and the kernel in args.  Returns 0, or -1 with the
 * message in o->errbuf.
 */
int kf_opts_parse(struct fuse_args *args, struct kf_opts *o);

/*
 * Parse argv (argv[0] is the program) for a program that mounts nothing
 * (keyfs-csi-provider): the same options, provider options included, and
 * the same defaults; a positional argument, an option only a mount has
 * (uid, gid, umask, ro, allow_other, direct_io, exact_sizes, threads,
 * watch_max, on_change) or an option keyfs does not know is an error.
 * Returns 0, or -1 with the message in o->errbuf.
 */
int kf_opts_parse_nomount(int argc, char **argv, struct kf_opts *o);

/* Free what kf_opts_parse allocated. */
void kf_opts_release(struct kf_opts *o);

/* Write --help text (every option with its default) to out. */
void kf_opts_help(FILE *out, const char *prog);

/*
 * Strict unsigned parse of s in base (8 or 10): digits only, at most max.
 * Returns 0 or -1.
 */
int kf_opts_parse_uint(const char *s, int base, unsigned long max,
		       unsigned long *out);

/* The default state directory for the current user, malloc'd. */
char *kf_opts_default_store(void);

#endif
