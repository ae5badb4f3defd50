/*
 * The provider API's methods: Version, and Mount (a SecretProviderClass's
 * objects, as keyfs paths, read through the identities' caches and
 * answered as files, all or nothing).  A value never appears in a log
 * line or an error; a token never leaves locked or wiped memory except
 * towards STS.
 */
#ifndef KF_CSI_MOUNT_H
#define KF_CSI_MOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"

struct kf_audit;

/* Most objects one class may list. */
#define KF_CSI_MAX_OBJECTS 256

/* The default token audience (the one AWS STS expects). */
#define KF_CSI_AUDIENCE "sts.amazonaws.com"

/* Counters (atomic: __atomic_add_fetch / __atomic_load_n). */
struct kf_csi_stats {
	uint64_t mounts, mount_errors, objects, changed;
};

struct kf_csi {
	struct kf_csi_idents ids;
	char **node_ns; /* namespaces the node's identity serves */
	size_t nns;
	int all_ns;		/* --node-identity-namespaces=* */
	struct kf_audit *audit; /* NULL: off */
	struct kf_csi_stats st;
};

/*
 * Parse --node-identity-namespaces's list ("a,b", "*", "" for none) into
 * c.  0, or -1 (a name that is no Kubernetes namespace name, or out of
 * memory) with why in errbuf.
 */
int kf_csi_set_namespaces(struct kf_csi *c, const char *list, char *errbuf,
			  size_t n);
void kf_csi_namespaces_release(struct kf_csi *c);

/* kf_grpc_fn methods; ctx is a struct kf_csi. */
int kf_csi_version(void *ctx, const unsigned char *msg, size_t len,
		   struct kf_secret **resp, char *status_msg, size_t n);
int kf_csi_mount(void *ctx, const unsigned char *msg, size_t len,
		 struct kf_secret **resp, char *status_msg, size_t n);

#endif
