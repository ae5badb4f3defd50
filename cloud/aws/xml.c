/*
 * A strict little XML reader: tags, attributes (skipped), comments,
 * processing instructions, CDATA and entities; DOCTYPE refused so no
 * entity can be defined.  It copies text only into the caller's buffer
 * and never logs.
 */
#include "aws/xml.h"

#include <ctype.h>
#include <string.h>

/* Decode one entity at *p (after '&') appending to out; -1 when bad. */
static int xml_entity(const char **p, const char *end, struct kf_buf *out)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		      { "quot;", '"' }, { "apos;", '\'' } };
	const char *s = *p;

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(end - s) >= n && memcmp(s, named[i].name, n) == 0) {
			*p = s + n;
			return kf_buf_add(out, &named[i].c, 1);
		}
	}
	if (s < end && *s == '#') {
		unsigned long v = 0;
		int hex = 0, digits = 0;
		unsigned char u[4];
		size_t n;

		s++;
		if (s < end && (*s == 'x' || *s == 'X')) {
			hex = 1;
			s++;
		}
		for (; s < end && *s != ';' && digits < 8; s++, digits++) {
			int dv;

			if (isdigit((unsigned char)*s))
				dv = *s - '0';
			else if (hex && isxdigit((unsigned char)*s))
				dv = tolower((unsigned char)*s) - 'a' + 10;
			else
				return -1;
			v = v * (hex ? 16 : 10) + (unsigned long)dv;
		}
		if (s >= end || *s != ';' || !digits || v == 0 ||
		    v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			return -1;
		if (v < 0x80) {
			u[0] = (unsigned char)v;
			n = 1;
		} else if (v < 0x800) {
			u[0] = (unsigned char)(0xC0 | (v >> 6));
			u[1] = (unsigned char)(0x80 | (v & 0x3F));
			n = 2;
		} else if (v < 0x10000) {
			u[0] = (unsigned char)(0xE0 | (v >> 12));
			u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
			u[2] = (unsigned char)(0x80 | (v & 0x3F));
			n = 3;
		} else {
			u[0] = (unsigned char)(0xF0 | (v >> 18));
			u[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
			u[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
			u[3] = (unsigned char)(0x80 | (v & 0x3F));
			n = 4;
		}
		*p = s + 1;
		return kf_buf_add(out, u, n);
	}
	return -1;
}

static const char *find_str(const char *s, const char *end, const char *pat)
{
	size_t n = strlen(pat);

	for (; (size_t)(end - s) >= n; s++)
		if (memcmp(s, pat, n) == 0)
			return s;
	return NULL;
}



/* Contract in xml.h. */
int kf_xml_text(const char *doc, size_t len, const char *const *path,
		size_t npath, struct kf_buf *out)
{
	const char *p = doc, *end = doc + len;
	const char *stack[KF_XML_DEPTH];
	size_t slen[KF_XML_DEPTH];
	size_t depth = 0, capture = 0;	/* capture = depth of target + 1 */
	size_t matched = 0;		/* leading stack entries on path */

	if (npath == 0 || npath > KF_XML_DEPTH)
		return -1;
	while (p < end) {
		if (*p != '<') {
			if (capture && depth == capture) {
				if (*p == '&') {
					p++;
					if (xml_entity(&p, end, out) < 0)
						return -1;
					continue;
				}
				if (kf_buf_add(out, p, 1) < 0)
					return -1;
			}
			p++;
			continue;
		}
		if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			const char *q = find_str(p + 4, end, "-->");

			if (!q)
				return -1;
			p = q + 3;
		} else if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
			const char *q = find_str(p + 9, end, "]]>");

			if (!q)
				return -1;
			if (capture && depth == capture &&
			    kf_buf_add(out, p + 9, (size_t)(q - p - 9)) < 0)
				return -1;
			p = q + 3;
		} else if (end - p >= 2 && p[1] == '?') {
			const char *q = find_str(p + 2, end, "?>");

			if (!q)
				return -1;
			p = q + 2;
		} else if (end - p >= 2 && p[1] == '!') {
			return -1;	/* DOCTYPE and friends */
		} else {
			int closing = end - p >= 2 && p[1] == '/';
			const char *ns = p + 1 + closing, *ne, *q, *colon;
			char quote = 0;
			int selfclose = 0;

			for (ne = ns; ne < end && !isspace((unsigned char)*ne) &&
				      *ne != '>' && *ne != '/';
			     ne++)
				;
			for (q = ne; q < end; q++) {
				if (quote) {
					if (*q == quote)
						quote = 0;
				} else if (*q == '"' || *q == '\'') {
					quote = *q;
				} else if (*q == '>') {
					break;
				}
			}
			if (q >= end || ne == ns)
				return -1;
			selfclose = !closing && q[-1] == '/';
			p = q + 1;
			colon = memchr(ns, ':', (size_t)(ne - ns));
			if (colon)
				ns = colon + 1;
			if (closing) {
				if (depth == 0 || slen[depth - 1] !=
							  (size_t)(ne - ns) ||
				    memcmp(stack[depth - 1], ns,
					   (size_t)(ne - ns)) != 0)
					return -1;
				if (capture && depth == capture)
					return 1;
				depth--;
				if (matched > depth)
					matched = depth;
				continue;
			}
			if (depth == KF_XML_DEPTH)
				return -1;
			if (!capture && matched == depth && depth < npath &&
			    strlen(path[depth]) == (size_t)(ne - ns) &&
			    memcmp(path[depth], ns, (size_t)(ne - ns)) == 0) {
				matched = depth + 1;
				if (matched == npath) {
					if (selfclose)
						return 1;
					capture = depth + 1;
				}
			}
			if (selfclose)
				continue;
			stack[depth] = ns;
			slen[depth] = (size_t)(ne - ns);
			depth++;
		}
	}
	return capture ? -1 : 0;
}
