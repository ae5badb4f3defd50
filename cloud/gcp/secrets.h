/*
 * Inside the gcp provider only: Secret Manager under gcp/PROJECT/secrets/
 * (secrets.c), and the routers of the provider's vtable entries that
 * send a secrets path to secrets.c and every other path to values.c /
 * xattr.c.  Nothing here logs a value.
 */
#ifndef KF_GCP_SECRETS_H
#define KF_GCP_SECRETS_H

#include "gcp/tree_int.h"

#define KF_GCP_SECRETS_DIR "secrets"

/* Whether path is PROJECT/secrets or below it (pure syntax). */
int kf_gcp_is_secrets(const char *path);

/* The secrets paths (PROJECT/secrets, PROJECT/secrets/ID), as the
 * struct kf_provider_ops entries of the same names. */
int kf_gcp_secrets_getattr(struct kf_gcp *s, const char *path,
			   struct kf_attr *attr, struct kf_err *err);
int kf_gcp_secrets_list(struct kf_gcp *s, const char *path, const char *page,
			kf_list_fn fn, void *ctx, struct kf_buf *next,
			struct kf_err *err);
int kf_gcp_secrets_mkdir(struct kf_gcp *s, const char *path,
			 struct kf_err *err);
int kf_gcp_secrets_rmdir(struct kf_gcp *s, const char *path,
			 struct kf_err *err);

/* The routers: struct kf_provider_ops entries of the gcp provider. */
int kf_gcp_route_unlink(struct kf_provider *p, const char *path,
			struct kf_err *err);
int kf_gcp_route_can_create(struct kf_provider *p, const char *path,
			    struct kf_err *err);
int kf_gcp_route_check_write(struct kf_provider *p, const char *path, int flags,
			     struct kf_err *err);
int kf_gcp_route_read(struct kf_provider *p, const char *path,
		      struct kf_secret **value, struct kf_err *err);
int kf_gcp_route_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n, const char *token,
			int flags, struct kf_buf *version, struct kf_err *err);
int kf_gcp_route_check_bytes(struct kf_provider *p, const char *path,
			     const unsigned char *data, size_t n,
			     struct kf_err *err);
int kf_gcp_route_read_version(struct kf_provider *p, const char *path,
			      const char *version, struct kf_secret **value,
			      int *immutable, struct kf_err *err);
int kf_gcp_route_versions(struct kf_provider *p, const char *path,
			  int (*fn)(void *ctx, const char *version,
				    int64_t created, const char *labels),
			  void *ctx, struct kf_err *err);
int kf_gcp_route_stamp(struct kf_provider *p, const char *path,
		       struct kf_buf *out, struct kf_err *err);
int kf_gcp_route_getxattr(struct kf_provider *p, const char *path,
			  const char *xname, struct kf_buf *out,
			  struct kf_err *err);
int kf_gcp_route_setxattr(struct kf_provider *p, const char *path,
			  const char *xname, const void *value, size_t n,
			  struct kf_err *err);
int kf_gcp_route_listxattr(struct kf_provider *p, const char *path,
			   struct kf_buf *out, struct kf_err *err);

#endif
