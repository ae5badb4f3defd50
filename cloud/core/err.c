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

/*
 * text into out (n bytes): whole when it fits, else cut after the last
 * whole word that leaves room for "...", so a message never ends in the
 * middle of a word.
 */
static void set_msg(char *out, size_t n, const char *text)
{
	size_t len = strlen(text), cut;

	if (len < n) {
		memcpy(out, text, len + 1);
		return;
	}
	cut = n - 4; /* room for "..." and the NUL */
	while (cut > n / 2 && text[cut] != ' ')
		cut--;
	if (text[cut] != ' ')
		cut = n - 4; /* one long word: cut it after all */
	while (cut > 0 && (text[cut - 1] == ' ' || text[cut - 1] == ':' ||
			   text[cut - 1] == ','))
		cut--;
	memcpy(out, text, cut);
	memcpy(out + cut, "...", 4);
}

static void fill(struct kf_err *err, enum kf_code code, int http_status,
		 const char *provider_code, const char *fmt, va_list ap)
{
	char text[1024];

	err->code = code;
	err->reason = KF_R_NONE;
	err->http_status = http_status;
	err->provider_code[0] = '\0';
	/* A longer provider code is cut; the message stays. */
	if (provider_code)
		(void)snprintf(err->provider_code, sizeof(err->provider_code),
			       "%s", provider_code);
	/* A longer message is shortened below, at a word. */
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	set_msg(err->msg, sizeof(err->msg), text);
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

int kf_fail_within(struct kf_err *err, const char *what)
{
	const char *inner, *colon = strstr(what, ": ");
	char text[1024];
	size_t pl;

	if (!err)
		return -1;
	inner = err->msg;
	/* "aws: region r: ..." around "aws: ListSecrets: ...": one "aws: " */
	pl = colon ? (size_t)(colon - what) + 2 : 0;
	if (pl && !strncmp(inner, what, pl))
		inner += pl;
	/* Truncation is handled by set_msg. */
	(void)snprintf(text, sizeof(text), "%s: %s", what, inner);
	set_msg(err->msg, sizeof(err->msg), text);
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
