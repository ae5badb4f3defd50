/*
 * Configuration files in the INI dialect of Python's configparser (raw),
 * as the AWS SDKs read them.  Files may hold credentials, so the text
 * lives in a sensitive buffer wiped on release; nothing here logs a line,
 * key or value.
 */
#include "core/ini.h"
#include "core/file.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int kf_ini_read_file(const char *path, struct kf_buf *out, struct kf_err *err)
{
	struct kf_err ferr = KF_ERR_INIT;

	if (kf_file_read(path, 0, out, &ferr) == 0)
		return 0;
	if (ferr.code == KF_E_NOTFOUND)
		return 1;
	/* An unreadable file is an I/O error to callers, as it always was. */
	return kf_fail(err, ferr.code == KF_E_DENIED ? KF_E_IO : ferr.code,
		       "%s", ferr.msg);
}

static void trim_span(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

void kf_ini_init(struct kf_ini *ini)
{
	kf_buf_init_sensitive(&ini->text, KF_INI_MAX);
	ini->ents = NULL;
	ini->n = ini->cap = 0;
}

void kf_ini_release(struct kf_ini *ini)
{
	for (size_t i = 0; i < ini->n; i++)
		free(ini->ents[i].key);
	free(ini->ents);
	kf_buf_release(&ini->text);
	ini->ents = NULL;
	ini->n = ini->cap = 0;
}

static int ini_push(struct kf_ini *ini, const char *sect, const char *prefix,
		    const char *key, const char *val)
{
	struct kf_ini_ent *e;
	struct kf_buf k;

	if (ini->n == ini->cap) {
		size_t ncap = ini->cap ? ini->cap * 2 : 16;

		e = realloc(ini->ents, ncap * sizeof(*e));
		if (!e)
			return -1;
		ini->ents = e;
		ini->cap = ncap;
	}
	kf_buf_init(&k, 512);
	if (prefix && kf_buf_addf(&k, "%s.", prefix) < 0)
		goto fail;
	if (kf_buf_adds(&k, key) < 0)
		goto fail;
	for (size_t i = 0; i < k.len; i++)
		k.data[i] = (char)tolower((unsigned char)k.data[i]);
	e = &ini->ents[ini->n];
	e->sect = sect;
	e->val = val;
	e->key = kf_buf_detach(&k, NULL);
	if (!e->key)
		return -1;
	ini->n++;
	return 0;
fail:
	kf_buf_release(&k);
	return -1;
}

static int ini_nomem(struct kf_err *err)
{
	return kf_fail(err, KF_E_NOMEM, "out of memory parsing AWS config");
}

/*
 * A "key = value" or "key: value" line s..e (already trimmed), cut in
 * place.  An indented line under a key whose value is empty (*nest) is
 * nested: stored as "key.sub".  Lines outside any section or with an
 * empty key are skipped; so is indented text without a delimiter.
 */
static int ini_pair(struct kf_ini *ini, const char *sect, const char **nest,
		    const char *s, const char *e, int indented, int lineno,
		    struct kf_err *err)
{
	const char *eq = s, *ks = s, *ke, *vs, *ve = e;

	while (eq < e && *eq != '=' && *eq != ':')
		eq++;
	if (eq == e) {
		if (!indented)
			return kf_fail(err, KF_E_INVALID,
				       "line %d: expected key = value", lineno);
		return 0; /* stray continuation text */
	}
	ke = eq;
	vs = eq + 1;
	trim_span(&ks, &ke);
	trim_span(&vs, &ve);
	if (!sect || ks == ke)
		return 0;
	*(char *)ke = '\0';
	*(char *)ve = '\0';
	if (ini_push(ini, sect, indented ? *nest : NULL, ks, vs) < 0)
		return ini_nomem(err);
	if (indented && *nest)
		return 0;
	*nest = *vs ? NULL : ini->ents[ini->n - 1].key;
	return 0;
}

/*
 * Parse ini->text in place.  Sections `[name]` (inner whitespace kept),
 * `key = value` or `key: value`, full-line comments (# or ;), and
 * indented continuation lines under a key with an empty value read as
 * nested `sub = value` pairs stored as "key.sub".  Inline comments are
 * part of the value, as in botocore.  Lines outside any section are
 * ignored.
 */
int kf_ini_parse(struct kf_ini *ini, struct kf_err *err)
{
	char *p = ini->text.data, *end;
	const char *sect = NULL;
	const char *nest = NULL; /* key whose value opened a block */
	int lineno = 0;

	if (!p)
		return 0; /* empty file; NULL + 0 would be undefined */
	end = p + ini->text.len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		const char *s = p, *e = le;
		int indented = p < le && (*p == ' ' || *p == '\t');

		lineno++;
		*le = '\0';
		p = nl ? nl + 1 : end;
		trim_span(&s, &e);
		if (s == e || *s == '#' || *s == ';')
			continue;
		if (*s == '[' && !indented) {
			const char *cs = s + 1, *ce;

			ce = memchr(cs, ']', (size_t)(e - cs));
			if (!ce)
				return kf_fail(err, KF_E_INVALID,
					       "line %d: bad section header",
					       lineno);
			trim_span(&cs, &ce);
			*(char *)ce = '\0';
			sect = cs;
			nest = NULL;
			continue;
		}
		if (ini_pair(ini, sect, &nest, s, e, indented, lineno, err) < 0)
			return -1;
	}
	return 0;
}

/* Load and parse path; a missing file is an empty ini (returns 1). */
int kf_ini_load(struct kf_ini *ini, const char *path, struct kf_err *err)
{
	int r = kf_ini_read_file(path, &ini->text, err);
	struct kf_err perr = KF_ERR_INIT;

	if (r != 0)
		return r;
	if (kf_ini_parse(ini, &perr) < 0)
		return kf_fail(err, perr.code, "%s: %s", path, perr.msg);
	return 0;
}

/* Last value of key in section sect (later lines override), or NULL. */
const char *kf_ini_get(const struct kf_ini *ini, const char *sect,
		       const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < ini->n; i++)
		if (strcmp(ini->ents[i].sect, sect) == 0 &&
		    strcmp(ini->ents[i].key, key) == 0)
			v = ini->ents[i].val;
	return v;
}

int kf_ini_has_section(const struct kf_ini *ini, const char *sect)
{
	for (size_t i = 0; i < ini->n; i++)
		if (strcmp(ini->ents[i].sect, sect) == 0)
			return 1;
	return 0;
}
