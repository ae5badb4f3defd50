/*
 * The audit trail (-o audit=FILE|syslog): one line per access with time,
 * uid, gid, pid, process name, operation, path and result.  Never a value.
 */
#ifndef KF_AUDIT_H
#define KF_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

struct kf_audit;

/*
 * Open the trail: "syslog" (facility authpriv) or a file path (created
 * 0600, appended to).  Returns 0, or -1 with a message in errbuf.
 */
int kf_audit_open(const char *spec, struct kf_audit **out, char *errbuf,
		  size_t errlen);

/*
 * Log one access.  result is 0 or -errno; version, when neither NULL nor
 * empty, is the store's name of the version that was served (a
 * VersionId, a version number), added as version="...".  Thread-safe; one write(2) per
 * line so concurrent lines never interleave.
 */
void kf_audit_log(struct kf_audit *a, uid_t uid, gid_t gid, pid_t pid,
		  const char *op, const char *path, int result,
		  const char *version);

/*
 * As kf_audit_log for a reader that is no local process: a pod served by
 * keyfs-csi-provider, named by namespace and pod name (both escaped) in
 * place of uid, gid, pid and process name.
 */
void kf_audit_log_pod(struct kf_audit *a, const char *ns, const char *pod,
		      const char *op, const char *path, int result,
		      const char *version);

/* Accepts NULL. */
void kf_audit_close(struct kf_audit *a);

#endif
