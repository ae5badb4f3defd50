/*
 * A strict little XML reader: tags, attributes (skipped), comments,
 * processing instructions, CDATA and entities; DOCTYPE refused so no
 * entity can be defined.  It copies text only into the caller's buffer
 * and never logs.
 */
#include "aws/xml.h"

#include <ctype.h>
#include <string.h>

/* Code point v (1..0x10FFFF, no surrogate) as UTF-8 into u; its length. */
static size_t utf8_encode(unsigned long v, unsigned char u[4])
{
	if (v < 0x80) {
		u[0] = (unsigned char)v;
		return 1;
	}
	if (v < 0x800) {
		u[0] = (unsigned char)(0xC0 | (v >> 6));
		u[1] = (unsigned char)(0x80 | (v & 0x3F));
		return 2;
	}
	if (v < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (v >> 12));
		u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (v & 0x3F));
		return 3;
	}
	u[0] = (unsigned char)(0xF0 | (v >> 18));
	u[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
	u[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
	u[3] = (unsigned char)(0x80 | (v & 0x3F));
	return 4;
}

/* Decode one entity at *p (after '&') appending to out; -1 when bad. */
static int xml_entity(const char **p, const char *end, struct kf_buf *out)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp;", '&' },
		      { "lt;", '<' },
		      { "gt;", '>' },
		      { "quot;", '"' },
		      { "apos;", '\'' } };
	const char *s = *p;

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(end - s) >= n &&
		    memcmp(s, named[i].name, n) == 0) {
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
		n = utf8_encode(v, u);
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

/* Where kf_xml_text is in the document, and what it has matched. */
struct xml_state {
	const char *p, *end;
	const char *const *path;
	size_t npath;
	struct kf_buf *out;
	const char *stack[KF_XML_DEPTH]; /* open elements' local names */
	size_t slen[KF_XML_DEPTH];
	size_t depth;
	size_t capture; /* depth of the target + 1; 0 before it */
	size_t matched; /* leading stack entries on path */
};

static int capturing(const struct xml_state *st)
{
	return st->capture && st->depth == st->capture;
}

/* Character data at st->p: copied (entities decoded) inside the target. */
static int xml_chardata(struct xml_state *st)
{
	if (!capturing(st)) {
		st->p++;
		return 0;
	}
	if (*st->p == '&') {
		st->p++;
		return xml_entity(&st->p, st->end, st->out);
	}
	return kf_buf_add(st->out, st->p++, 1);
}

/*
 * Markup at st->p that is not an element: a comment, CDATA (copied inside
 * the target), a processing instruction; a DOCTYPE or other declaration
 * is refused.  1 when st->p is an element tag instead, 0 when skipped,
 * -1 when malformed.
 */
static int xml_markup(struct xml_state *st)
{
	const char *p = st->p, *q;
	size_t left = (size_t)(st->end - p);

	if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
		q = find_str(p + 4, st->end, "-->");
		st->p = q ? q + 3 : NULL;
	} else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
		q = find_str(p + 9, st->end, "]]>");
		if (q && capturing(st) &&
		    kf_buf_add(st->out, p + 9, (size_t)(q - p - 9)) < 0)
			return -1;
		st->p = q ? q + 3 : NULL;
	} else if (left >= 2 && p[1] == '?') {
		q = find_str(p + 2, st->end, "?>");
		st->p = q ? q + 2 : NULL;
	} else if (left >= 2 && p[1] == '!') {
		return -1; /* DOCTYPE and friends */
	} else {
		return 1;
	}
	return st->p ? 0 : -1;
}

/* The '>' ending the tag whose attributes start at q (quotes skipped);
 * NULL when there is none. */
static const char *tag_end(const char *q, const char *end)
{
	char quote = 0;

	for (; q < end; q++) {
		if (quote) {
			if (*q == quote)
				quote = 0;
		} else if (*q == '"' || *q == '\'') {
			quote = *q;
		} else if (*q == '>') {
			return q;
		}
	}
	return NULL;
}

/* An opening tag of local name ns..ne: push it, and see if it is next
 * on the path.  1 when it is the target and empty, else 0 or -1. */
static int xml_open(struct xml_state *st, const char *ns, size_t n,
		    int selfclose)
{
	if (st->depth == KF_XML_DEPTH)
		return -1;
	if (!st->capture && st->matched == st->depth && st->depth < st->npath &&
	    strlen(st->path[st->depth]) == n &&
	    memcmp(st->path[st->depth], ns, n) == 0) {
		st->matched = st->depth + 1;
		if (st->matched == st->npath) {
			if (selfclose)
				return 1;
			st->capture = st->depth + 1;
		}
	}
	if (selfclose)
		return 0;
	st->stack[st->depth] = ns;
	st->slen[st->depth] = n;
	st->depth++;
	return 0;
}

/* A closing tag: it must match the open element.  1 when it closes the
 * target, else 0 or -1. */
static int xml_close(struct xml_state *st, const char *ns, size_t n)
{
	if (st->depth == 0 || st->slen[st->depth - 1] != n ||
	    memcmp(st->stack[st->depth - 1], ns, n) != 0)
		return -1;
	if (capturing(st))
		return 1;
	st->depth--;
	if (st->matched > st->depth)
		st->matched = st->depth;
	return 0;
}

/* An element tag at st->p.  1 when the target is complete, 0 to go on,
 * -1 when malformed. */
static int xml_tag(struct xml_state *st)
{
	const char *p = st->p, *end = st->end;
	int closing = end - p >= 2 && p[1] == '/';
	const char *ns = p + 1 + closing, *ne, *q, *colon;

	for (ne = ns; ne < end && !isspace((unsigned char)*ne) && *ne != '>' &&
		      *ne != '/';
	     ne++)
		;
	q = tag_end(ne, end);
	if (!q || ne == ns)
		return -1;
	st->p = q + 1;
	colon = memchr(ns, ':', (size_t)(ne - ns));
	if (colon)
		ns = colon + 1;
	if (closing)
		return xml_close(st, ns, (size_t)(ne - ns));
	return xml_open(st, ns, (size_t)(ne - ns), q[-1] == '/');
}

/* Contract in xml.h. */
int kf_xml_text(const char *doc, size_t len, const char *const *path,
		size_t npath, struct kf_buf *out)
{
	struct xml_state st;
	int r;

	if (npath == 0 || npath > KF_XML_DEPTH)
		return -1;
	memset(&st, 0, sizeof(st));
	st.p = doc;
	st.end = doc + len;
	st.path = path;
	st.npath = npath;
	st.out = out;
	while (st.p < st.end) {
		if (*st.p != '<') {
			r = xml_chardata(&st);
		} else {
			r = xml_markup(&st);
			if (r == 1)
				r = xml_tag(&st);
		}
		if (r != 0)
			return r;
	}
	return st.capture ? -1 : 0;
}
