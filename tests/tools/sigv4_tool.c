/*
 * sigv4_tool: a test driver for cloud/aws/sigv4.c.  Reads a request
 * description on stdin and prints the canonical request, the string to
 * sign (both hex-encoded) and the Authorization value.  Test use only: it
 * is handed fake keys, and it never prints the secret key.
 *
 * Input, one field per line; values are hex unless noted:
 *   method HEX | path HEX | query HEX (absent = no query)
 *   header HEXNAME HEXVALUE (repeatable, in order) | body HEX
 *   region HEX | service HEX | time DECIMAL-UTC-SECONDS
 *   access_key HEX | secret_key HEX | token HEX (optional)
 *   auto 0|1 (decimal, default 1: add X-Amz-Date and, with a token,
 *             X-Amz-Security-Token to the signed headers, as a caller does)
 * Output:
 *   canonical_request HEX
 *   string_to_sign HEX
 *   authorization TEXT
 */
#include "core/buf.h"
#include "core/crypto.h"
#include "aws/sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXHDR 256
#define MAXVAL (8u << 20)

static int unhex(const char *s, size_t n, struct kf_buf *out)
{
	static const char digits[] = "0123456789abcdef";

	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		const char *a = strchr(digits, s[i] | 0x20);
		const char *b = strchr(digits, s[i + 1] | 0x20);
		char c;

		if (!s[i] || !s[i + 1] || !a || !b)
			return -1;
		c = (char)((a - digits) << 4 | (b - digits));
		if (kf_buf_add(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

static void print_hex(const char *label, const struct kf_buf *b)
{
	char h[3];

	printf("%s ", label);
	for (size_t i = 0; i < b->len; i++) {
		kf_hex((const unsigned char *)b->data + i, 1, h);
		fputs(h, stdout);
	}
	putchar('\n');
}

struct field {
	const char *name;
	struct kf_buf val;
	int set;
};

enum {
	F_METHOD,
	F_PATH,
	F_QUERY,
	F_BODY,
	F_REGION,
	F_SERVICE,
	F_AK,
	F_SK,
	F_TOKEN,
	F_COUNT
};

int main(void)
{
	struct field f[F_COUNT] = {
		[F_METHOD] = { "method" }, [F_PATH] = { "path" },
		[F_QUERY] = { "query" },   [F_BODY] = { "body" },
		[F_REGION] = { "region" }, [F_SERVICE] = { "service" },
		[F_AK] = { "access_key" }, [F_SK] = { "secret_key" },
		[F_TOKEN] = { "token" },
	};
	struct kf_buf hn[MAXHDR], hv[MAXHDR];
	struct kf_sigv4_header hdr[MAXHDR + 2];
	struct kf_sigv4_req req = { 0 };
	struct kf_sigv4_creds creds = { 0 };
	struct kf_buf cr, sts, auth;
	struct kf_err err = KF_ERR_INIT;
	char *line = NULL, date[17];
	size_t cap = 0, nh = 0, n;
	ssize_t len;
	long long t = 0;
	int autoh = 1, rc = 1;

	for (int i = 0; i < F_COUNT; i++)
		kf_buf_init_sensitive(&f[i].val, MAXVAL);
	kf_buf_init(&cr, MAXVAL);
	kf_buf_init(&sts, MAXVAL);
	kf_buf_init(&auth, MAXVAL);
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		char *sp, *v;
		size_t vl;

		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len)
			continue;
		sp = strchr(line, ' ');
		v = sp ? sp + 1 : line + len;
		if (sp)
			*sp = '\0';
		vl = strlen(v);
		if (strcmp(line, "time") == 0) {
			char *end;

			errno = 0;
			t = strtoll(v, &end, 10);
			if (errno || *end)
				goto bad;
			continue;
		}
		if (strcmp(line, "auto") == 0) {
			autoh = strcmp(v, "0") != 0;
			continue;
		}
		if (strcmp(line, "header") == 0) {
			char *sp2 = strchr(v, ' ');

			if (nh == MAXHDR)
				goto bad;
			kf_buf_init(&hn[nh], MAXVAL);
			kf_buf_init_sensitive(&hv[nh], MAXVAL);
			nh++;
			if (!sp2 ||
			    unhex(v, (size_t)(sp2 - v), &hn[nh - 1]) < 0 ||
			    unhex(sp2 + 1, strlen(sp2 + 1), &hv[nh - 1]) < 0)
				goto bad;
			continue;
		}
		for (n = 0; n < F_COUNT; n++)
			if (strcmp(line, f[n].name) == 0)
				break;
		if (n == F_COUNT || unhex(v, vl, &f[n].val) < 0)
			goto bad;
		f[n].set = 1;
	}
	for (n = 0; n < nh; n++) {
		hdr[n].name = kf_buf_str(&hn[n]);
		hdr[n].value = kf_buf_str(&hv[n]);
	}
	kf_sigv4_amz_date((time_t)t, date);
	if (autoh) {
		hdr[nh].name = "X-Amz-Date";
		hdr[nh++].value = date;
		if (f[F_TOKEN].set) {
			hdr[nh].name = "X-Amz-Security-Token";
			hdr[nh++].value = kf_buf_str(&f[F_TOKEN].val);
		}
	}
	req.method = kf_buf_str(&f[F_METHOD].val);
	req.path = kf_buf_str(&f[F_PATH].val);
	req.query = f[F_QUERY].set ? kf_buf_str(&f[F_QUERY].val) : NULL;
	req.headers = hdr;
	req.nheaders = nh;
	req.body = f[F_BODY].val.data;
	req.body_len = f[F_BODY].val.len;
	req.region = kf_buf_str(&f[F_REGION].val);
	req.service = kf_buf_str(&f[F_SERVICE].val);
	req.now = (time_t)t;
	creds.access_key = kf_buf_str(&f[F_AK].val);
	creds.secret_key = kf_buf_str(&f[F_SK].val);
	creds.session_token = f[F_TOKEN].set ? kf_buf_str(&f[F_TOKEN].val) :
					       NULL;
	if (kf_sigv4_canonical_request(&req, &cr, &err) < 0 ||
	    kf_sigv4_string_to_sign(&req, &sts, &err) < 0 ||
	    kf_sigv4_authorization(&req, &creds, &auth, &err) < 0) {
		fprintf(stderr, "sigv4_tool: %s: %s\n", kf_code_name(err.code),
			err.msg);
		goto out;
	}
	print_hex("canonical_request", &cr);
	print_hex("string_to_sign", &sts);
	printf("authorization %s\n", kf_buf_str(&auth));
	rc = 0;
	goto out;
bad:
	fprintf(stderr, "sigv4_tool: malformed input line\n");
out:
	free(line);
	for (n = 0; n < nh && n < MAXHDR; n++) {
		kf_buf_release(&hn[n]);
		kf_buf_release(&hv[n]);
	}
	for (int i = 0; i < F_COUNT; i++)
		kf_buf_release(&f[i].val);
	kf_buf_release(&cr);
	kf_buf_release(&sts);
	kf_buf_release(&auth);
	return rc;
}
