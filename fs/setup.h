/*
 * Starting the providers from parsed options: what keyfs and
 * keyfs-csi-provider share (the store directory, the providers named by
 * -o providers= or found configured, each created and checked).  Errors
 * are returned, not printed, except where a function says it prints.
 */
#ifndef KF_SETUP_H
#define KF_SETUP_H

#include <stddef.h>

#include "opts.h"
#include "provider.h"

/*
 * First thing in main(), before anything allocates: OpenSSL frees through
 * a wiping free, jansson likewise, no core dumps, no ptrace attachment,
 * umask 077.  Warnings go to stderr as "PROG: warning: ...".
 */
void kf_setup_harden(const char *prog);

/*
 * The store must exist (created 0700), be writable unless ro, and lie
 * outside mnt (may be NULL: no mountpoint): the daemon never reads its
 * own mount.  Its real path goes to real.  0, or -1 with the reason
 * printed to stderr as "PROG: ...".
 */
int kf_setup_store(const char *prog, const char *store, const char *mnt, int ro,
		   char *real, size_t reallen);

/* The provider configuration of parsed options o (borrows o and store). */
void kf_setup_config(const struct kf_opts *o, const char *store,
		     struct kf_config *cfg);

/*
 * Create the providers of list (comma or colon separated names; NULL:
 * every provider whose detect() finds configuration or credentials), in
 * the table's order, at most max.  Each checks its configuration and
 * credentials (may use the network).  0 with *np set, or -1 with *err
 * "NAME: why" (an unknown name lists the built-in ones) and every
 * provider created so far freed.
 */
int kf_setup_providers(const char *list, const struct kf_config *cfg,
		       struct kf_provider **provs, size_t max, size_t *np,
		       struct kf_err *err);

/*
 * Whether provider d is to be created for list (NULL: when its detect()
 * finds configuration or credentials).  The names of list must have
 * been checked by kf_setup_providers or kf_setup_check_names.
 */
int kf_setup_wanted(const char *list, const struct kf_provider_desc *d,
		    const struct kf_config *cfg);

/* Whether name is in list (names separated by ',' or ':'). */
int kf_setup_listed(const char *list, const char *name);

/* 0 when every name of list is built in, else -1 with *err naming it. */
int kf_setup_check_names(const char *list, struct kf_err *err);

/* Warn on stderr ("PROG: warning: ...") about provider options given
 * for a provider that is not among provs. */
void kf_setup_warn_unused(const char *prog, const struct kf_opts *o,
			  struct kf_provider *const *provs, size_t np);

#endif
