/*
 * libFuzzer target for cloud/aws/sigv4.c.  The input is decoded as
 *   METHOD \n PATH \n QUERY \n REGION \n SERVICE \n TIME \n
 *   Name: value \n ... \n \n BODY
 * (an empty or missing QUERY line means no query; TIME is decimal epoch seconds,
 * anything else means 2015-08-30T12:36:00Z) and signed three ways.  The
 * three results must agree with each other and with their contracts.
 */
#include "aws/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32

/* Cut the next '\n'-terminated line out of *p (NUL-terminating it). */
static char *next_line(char **p, char *end)
{
	char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl)
		nl = end;
	*nl = '\0';
	*p = nl < end ? nl + 1 : end;
	return s;
}

static time_t parse_time(const char *s)
{
	char *e;
	long long v;

	if (!s || !*s)
		return 1440938160;
	v = strtoll(s, &e, 10);
	if (*e)
		return 1440938160;
	return (time_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kf_sigv4_header hdr[MAX_HEADERS];
	struct kf_sigv4_req req;
	struct kf_sigv4_creds creds = {
		"AKIDEXAMPLE",
		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		NULL,
	};
	struct kf_buf cr, cr2, sts, auth;
	struct kf_err err = KF_ERR_INIT, err2 = KF_ERR_INIT;
	char *copy, *p, *end, *line;
	int r1, r2, r3;

	if (size > 65536)
		return 0;
	/* +1 for the terminator of the last field; exact size for ASan. */
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	end = copy + size;
	memset(&req, 0, sizeof(req));
	req.method = next_line(&p, end);
	req.path = next_line(&p, end);
	req.query = next_line(&p, end);
	req.region = next_line(&p, end);
	req.service = next_line(&p, end);
	req.now = parse_time(next_line(&p, end));
	req.headers = hdr;
	while (req.nheaders < MAX_HEADERS && (line = next_line(&p, end)) &&
	       *line) {
		char *colon = strchr(line, ':');

		hdr[req.nheaders].name = line;
		hdr[req.nheaders].value = "";
		if (colon) {
			*colon = '\0';
			hdr[req.nheaders].value = colon + 1;
		}
		if (hdr[req.nheaders].name[0] == 'x' &&
		    strcmp(hdr[req.nheaders].name, "x-amz-security-token") == 0)
			creds.session_token = hdr[req.nheaders].value;
		req.nheaders++;
	}
	req.body = p < end ? p : NULL;
	req.body_len = (size_t)(end - p);

	kf_buf_init(&cr, 1u << 20);
	kf_buf_init(&cr2, 1u << 20);
	kf_buf_init(&sts, 1u << 20);
	kf_buf_init(&auth, 1u << 20);
	r1 = kf_sigv4_canonical_request(&req, &cr, &err);
	r2 = kf_sigv4_canonical_request(&req, &cr2, &err2);
	/* Pure function: the same answer twice. */
	if (r1 != r2 || cr.len != cr2.len ||
	    (cr.len && memcmp(cr.data, cr2.data, cr.len) != 0))
		abort();
	if (r1 < 0 && (err.code == KF_OK || cr.len != 0))
		abort();
	r2 = kf_sigv4_string_to_sign(&req, &sts, &err2);
	if ((r1 == 0) != (r2 == 0))
		abort();
	if (r2 == 0 &&
	    (sts.len < 17 || memcmp(sts.data, "AWS4-HMAC-SHA256\n", 17) != 0))
		abort();
	r3 = kf_sigv4_authorization(&req, &creds, &auth, &err2);
	if (r3 == 0 && (r1 != 0 ||
			strncmp(auth.data,
				"AWS4-HMAC-SHA256 Credential="
				"AKIDEXAMPLE/",
				40) != 0 ||
			!strstr(auth.data, ", Signature=")))
		abort();
	if (r3 != 0 && r1 == 0 && err2.code != KF_E_INVALID &&
	    err2.code != KF_E_NOMEM)
		abort();
	kf_buf_release(&cr);
	kf_buf_release(&cr2);
	kf_buf_release(&sts);
	kf_buf_release(&auth);
	free(copy);
	return 0;
}
