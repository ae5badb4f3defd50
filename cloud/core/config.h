/*
 * The settings fs/ hands to every provider: the store, the timeout, the
 * cache lifetime and the provider options given with -o.  Plain data read
 * by providers; nothing here parses a command line or touches a secret.
 */
#ifndef KF_CONFIG_H
#define KF_CONFIG_H

#include <stddef.h>

/* A -o key=value handed to providers (value NULL for a bare flag). */
struct kf_kv {
	char *key;
	char *value;
};

/* Settings fs/ passes to every provider. */
struct kf_aws_chain;

struct kf_config {
	const char *store;	  /* state directory (exists, 0700) */
	unsigned timeout;	  /* seconds allowed for one operation */
	unsigned ttl;		  /* cache lifetime in seconds */
	int read_only;		  /* mounted with -o ro */
	const struct kf_kv *opts; /* provider options, in order given */
	size_t nopts;
	/*
	 * NULL: every provider resolves its own credentials.  Else the
	 * AWS credential chain the providers whose descriptor says
	 * assumes_role (aws/, ssm/) use instead: a role assumed with a
	 * workload's web identity token (the Kubernetes provider's per-pod
	 * identities).  Borrowed: it outlives the providers.
	 */
	struct kf_aws_chain *aws_chain;
	/*
	 * Reads come with no lookup before them (the Kubernetes provider
	 * reads the paths a class names): a provider whose lookup costs
	 * calls may first ask for the value the path names, and resolve
	 * the path only when there is none.
	 */
	int direct_reads;
};

/*
 * The last value given for key, or NULL when it was not given.  A bare
 * flag yields "".  The result points into cfg (borrowed).
 */
const char *kf_config_get(const struct kf_config *cfg, const char *key);

#endif
