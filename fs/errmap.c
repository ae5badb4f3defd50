/*
 * Cloud error codes to errno, in one table: every FUSE handler's -errno
 * for a cloud error comes from here.  Logs the provider's code and
 * message, which never hold a value; never looks at message text.
 */
#include "errmap.h"
#include "core/log.h"

#include <errno.h>

static const int table[KF_E__COUNT] = {
	[KF_OK] = 0,
	[KF_E_NOTFOUND] = ENOENT,
	[KF_E_EXISTS] = EEXIST,
	[KF_E_DENIED] = EACCES,
	[KF_E_INVALID] = EINVAL,
	[KF_E_TOOBIG] = EFBIG,
	[KF_E_NOTSUP] = ENOTSUP,
	[KF_E_PERM] = EPERM,
	[KF_E_NOTEMPTY] = ENOTEMPTY,
	[KF_E_NOTDIR] = ENOTDIR,
	[KF_E_ISDIR] = EISDIR,
	[KF_E_STATE] = EBUSY,
	[KF_E_INTEGRITY] = EIO,
	[KF_E_UNAVAILABLE] = EIO,
	[KF_E_TIMEOUT] = EIO,
	[KF_E_NOMEM] = ENOMEM,
	[KF_E_NODATA] = ENODATA,
	[KF_E_RANGE] = ERANGE,
	[KF_E_ROFS] = EROFS,
	[KF_E_NOSPC] = ENOSPC,
	[KF_E_IO] = EIO,
};

int kf_errmap(enum kf_code code)
{
	if ((int)code <= 0 || code >= KF_E__COUNT || !table[code])
		return EIO;
	return table[code];
}

int kf_errmap_report(const char *op, const char *path, const struct kf_err *err)
{
	int e = kf_errmap(err->code);
	enum kf_log_level lvl = KF_LOG_WARN;

	/* Lookups of absent names and attributes are routine. */
	if (err->code == KF_E_NOTFOUND || err->code == KF_E_NODATA ||
	    err->code == KF_E_EXISTS || err->code == KF_E_RANGE)
		lvl = KF_LOG_DEBUG;
	else if (err->code == KF_E_INTEGRITY || err->code == KF_E_DENIED ||
		 err->code == KF_E_UNAVAILABLE || err->code == KF_E_TIMEOUT ||
		 err->code == KF_E_IO)
		lvl = KF_LOG_ERROR;
	kf_log(lvl, "%s %s: %s [%s%s%s]", op, path,
	       err->msg[0] ? err->msg : "failed", kf_code_name(err->code),
	       err->provider_code[0] ? " " : "", err->provider_code);
	return -e;
}
