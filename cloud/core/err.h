/*
 * Cloud-layer errors: a code fs/errmap.c turns into errno, plus the
 * provider's own code and a short message for the log.  A message never
 * holds secret text (values, keys, tokens, credentials).
 */
#ifndef KF_ERR_H
#define KF_ERR_H

#include <stddef.h>

enum kf_code {
	KF_OK = 0,
	KF_E_NOTFOUND,	  /* no such object */
	KF_E_EXISTS,	  /* already exists */
	KF_E_DENIED,	  /* authentication or authorisation refused */
	KF_E_INVALID,	  /* invalid name or argument */
	KF_E_TOOBIG,	  /* value over the provider's limit */
	KF_E_NOTSUP,	  /* operation the provider cannot do */
	KF_E_PERM,	  /* operation forbidden by the provider's rules */
	KF_E_NOTEMPTY,	  /* directory not empty */
	KF_E_NOTDIR,	  /* a path component is a file */
	KF_E_ISDIR,	  /* a value operation on a directory */
	KF_E_STATE,	  /* object in the wrong state (e.g. scheduled
				 * for deletion, disabled key version) */
	KF_E_INTEGRITY,	  /* ciphertext or response failed verification */
	KF_E_UNAVAILABLE, /* network down, throttled, 5xx after retries */
	KF_E_TIMEOUT,	  /* deadline passed */
	KF_E_NOMEM,	  /* out of memory */
	KF_E_NODATA,	  /* no such extended attribute */
	KF_E_RANGE,	  /* caller's buffer too small */
	KF_E_ROFS,	  /* read-only mount */
	KF_E_IO,	  /* anything else */
	KF_E_NOSPC,	  /* the store is full (space or inodes) */
	KF_E__COUNT
};

/*
 * Why an operation met an object in the wrong state (or what exactly a
 * code means where callers must tell cases apart), so that no caller
 * inspects message text.
 */
enum kf_reason {
	KF_R_NONE = 0,
	KF_R_DELETING,	     /* scheduled for deletion */
	KF_R_NO_VALUE,	     /* the secret has no current value */
	KF_R_NOT_OBJECT,     /* the value is not a JSON object */
	KF_R_BAD_CIPHERTEXT, /* the store refused the ciphertext */
	KF_R__COUNT
};

struct kf_err {
	enum kf_code code;
	int http_status;	/* 0 when not an HTTP error */
	char provider_code[64]; /* e.g. ResourceNotFoundException */
	char msg[256];		/* never holds secret text */
	enum kf_reason reason;	/* KF_R_NONE unless set */
};

#define KF_ERR_INIT                         \
	{                                   \
		KF_OK, 0, "", "", KF_R_NONE \
	}

/* Reset *err to "no error".  err may be NULL. */
void kf_err_clear(struct kf_err *err);

/*
 * Fill *err (when not NULL) with code and a printf-style message, and
 * return -1, so callers can write `return kf_fail(err, ...)`.
 * A message too long for msg is cut after a whole word and ends in
 * "..."; it must never format a secret.
 */
int kf_fail(struct kf_err *err, enum kf_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As kf_fail, also setting the provider's error code and HTTP status. */
int kf_fail_provider(struct kf_err *err, enum kf_code code, int http_status,
		     const char *provider_code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* As kf_fail, also setting the reason. */
int kf_fail_reason(struct kf_err *err, enum kf_code code, enum kf_reason reason,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Put what (the caller's context: "aws: region r: endpoint not usable")
 * before *err's message, keeping its code, status, provider code and
 * reason; a leading "NAME: " that both share is said once.  Returns -1.
 */
int kf_fail_within(struct kf_err *err, const char *what);

/* Does *err carry this reason?  err may be NULL (no). */
int kf_err_is(const struct kf_err *err, enum kf_reason reason);

/* Stable short name of a code ("NOTFOUND"), for logs and tests. */
const char *kf_code_name(enum kf_code code);

#endif
