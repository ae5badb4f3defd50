/*
 * Filling struct kf_err.  Messages are formatted from caller text that
 * must never contain a secret; this file adds nothing of its own.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kf_err_clear(struct kf_err *err)
{
	if (!err)
		return;
	err->code = KF_OK;
	err->http_status = 0;
	err->provider_code[0] = '\0';
	err->msg[0] = '\0';
	err->reason = KF_R_NONE;
}

static void fill(struct kf_err *err, enum kf_code code, int http_status,
		 const char *provider_code, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void fill(struct kf_err *err, enum kf_code code, int http_status,
		 const char *provider_code, const char *fmt, va_list ap)
{
	err->code = code;
	err->reason = KF_R_NONE;
	err->http_status = http_status;
	err->provider_code[0] = '\0';
	/* A longer provider code is cut; the message stays. */
	if (provider_code)
		(void)snprintf(err->provider_code, sizeof(err->provider_code),
			       "%s", provider_code);
	/* Truncation of a log message is acceptable; it stays terminated. */
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int kf_fail(struct kf_err *err, enum kf_code code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	fill(err, code, 0, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int kf_fail_provider(struct kf_err *err, enum kf_code code, int http_status,
		     const char *provider_code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	fill(err, code, http_status, provider_code, fmt, ap);
	va_end(ap);
	return -1;
}

int kf_fail_reason(struct kf_err *err, enum kf_code code, enum kf_reason reason,
		   const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	fill(err, code, 0, NULL, fmt, ap);
	va_end(ap);
	err->reason = reason;
	return -1;
}

int kf_err_is(const struct kf_err *err, enum kf_reason reason)
{
	return err && err->reason == reason;
}

static const char *const names[KF_E__COUNT] = {
	[KF_OK] = "OK",
	[KF_E_NOTFOUND] = "NOTFOUND",
	[KF_E_EXISTS] = "EXISTS",
	[KF_E_DENIED] = "DENIED",
	[KF_E_INVALID] = "INVALID",
	[KF_E_TOOBIG] = "TOOBIG",
	[KF_E_NOTSUP] = "NOTSUP",
	[KF_E_PERM] = "PERM",
	[KF_E_NOTEMPTY] = "NOTEMPTY",
	[KF_E_NOTDIR] = "NOTDIR",
	[KF_E_ISDIR] = "ISDIR",
	[KF_E_STATE] = "STATE",
	[KF_E_INTEGRITY] = "INTEGRITY",
	[KF_E_UNAVAILABLE] = "UNAVAILABLE",
	[KF_E_TIMEOUT] = "TIMEOUT",
	[KF_E_NOMEM] = "NOMEM",
	[KF_E_NODATA] = "NODATA",
	[KF_E_RANGE] = "RANGE",
	[KF_E_ROFS] = "ROFS",
	[KF_E_IO] = "IO",
	[KF_E_NOSPC] = "NOSPC",
};

const char *kf_code_name(enum kf_code code)
{
	if ((int)code < 0 || code >= KF_E__COUNT || !names[code])
		return "UNKNOWN";
	return names[code];
}
