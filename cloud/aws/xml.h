/*
 * A small, strict XML reader for AWS query-protocol responses (STS): it
 * finds one element by its path and returns its decoded text.  No DTDs,
 * no external entities, bounded depth; never logs the document.
 */
#ifndef KF_XML_H
#define KF_XML_H

#include <stddef.h>

#include "core/buf.h"

#define KF_XML_DEPTH 16

/*
 * Text content of the first element whose path of local names (namespace
 * prefixes ignored) equals path[0..npath-1] from the root element down,
 * appended to out with the five named entities, numeric character
 * references and CDATA decoded.  Returns 1 when found, 0 when absent, -1
 * on malformed XML (a DOCTYPE is refused), depth over KF_XML_DEPTH, or
 * when out is full.  Text of child elements inside the target is skipped.
 * out should be sensitive when the element may hold a secret.
 */
int kf_xml_text(const char *doc, size_t len, const char *const *path,
		size_t npath, struct kf_buf *out);

#endif
