/*
 * INI files as Python's RawConfigParser reads them (the AWS shared config
 * and credentials files).  The text is kept in a sensitive buffer and cut
 * in place; entries point into it.  Never logs contents.
 */
#ifndef KF_INI_H
#define KF_INI_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define KF_INI_MAX (1u << 20)

struct kf_ini_ent {
	const char *sect; /* raw section name, e.g. "profile dev" */
	char *key;	  /* lower-cased; nested keys as "parent.sub" */
	const char *val;  /* trimmed; may be "" */
};

struct kf_ini {
	struct kf_buf text; /* sensitive: the file, cut in place */
	struct kf_ini_ent *ents;
	size_t n, cap;
};

/* Empty ini (no allocation); text may then be filled before kf_ini_parse. */
void kf_ini_init(struct kf_ini *ini);
/* Free entries and wipe the text.  Accepts NULL. */
void kf_ini_release(struct kf_ini *ini);

/*
 * Parse ini->text in place.  Sections `[name]` (surrounding whitespace
 * trimmed), `key = value` or `key: value` (keys lower-cased, both sides
 * trimmed), full-line comments starting with # or ;, and indented
 * `sub = value` lines under a key whose value is empty stored as
 * "key.sub" (the AWS nested form).  Inline comments stay part of the
 * value, as in configparser.  Lines before any section are ignored.
 * -1 with KF_E_INVALID (line number only, never the text) or KF_E_NOMEM.
 */
int kf_ini_parse(struct kf_ini *ini, struct kf_err *err);

/*
 * Read and parse path.  0 when loaded, 1 when the file does not exist
 * (ini stays empty), -1 with err (I/O, too large, syntax).
 */
int kf_ini_load(struct kf_ini *ini, const char *path, struct kf_err *err);

/* Last value of key (lower-case) in section sect, or NULL. */
const char *kf_ini_get(const struct kf_ini *ini, const char *sect,
		       const char *key);
int kf_ini_has_section(const struct kf_ini *ini, const char *sect);

/*
 * Append the whole file at path to out (a sensitive buffer whose max
 * bounds the size).  0 when read, 1 when it does not exist, -1 with err.
 * Messages name the path, never the contents.
 */
int kf_ini_read_file(const char *path, struct kf_buf *out, struct kf_err *err);

#endif
