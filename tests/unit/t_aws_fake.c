/*
 * The scripted HTTP transport and environment of the AWS client unit
 * tests (see t_aws_fake.h).  No network.
 */
#include "t_aws_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kt.h"

struct fake_state fk;

#define FAKE_T0 1440938160 /* 2015-08-30T12:36:00Z */
static time_t fake_now = FAKE_T0;

void fake_reset(size_t n, const struct fake_resp *resp)
{
	fake_now = FAKE_T0;
	memset(&fk, 0, sizeof(fk));
	for (size_t i = 0; i < n && i < MAXREQ; i++)
		fk.resp[i] = resp[i];
	fk.nresp = n < MAXREQ ? n : MAXREQ;
}

/* Keep request i (the first MAXREQ) for the test to look at. */
static void record(size_t i, const struct kf_http_req *req)
{
	snprintf(fk.url[i], sizeof(fk.url[i]), "%s", req->url);
	fk.headers[i][0] = '\0';
	for (size_t h = 0; req->headers && req->headers[h]; h++) {
		size_t len = strlen(fk.headers[i]);

		snprintf(fk.headers[i] + len, sizeof(fk.headers[i]) - len,
			 "%s\n", req->headers[h]);
	}
	fk.body_len[i] = req->body_len < sizeof(fk.body[i]) - 1 ?
				 req->body_len :
				 sizeof(fk.body[i]) - 1;
	memcpy(fk.body[i], req->body, fk.body_len[i]);
	fk.body[i][fk.body_len[i]] = '\0';
	fk.timeout_ms[i] = req->timeout_ms;
}

static const char *target_of(const struct kf_http_req *req)
{
	for (size_t h = 0; req->headers && req->headers[h]; h++)
		if (!strncmp(req->headers[h], "X-Amz-Target: ", 14))
			return req->headers[h] + 14;
	return "";
}

int fake_transport(const struct kf_http_req *req, struct kf_http_resp *resp,
		   struct kf_err *err)
{
	size_t i = fk.nreq++;
	struct fake_resp r;
	struct kf_buf out;

	if (i < MAXREQ)
		record(i, req);
	if (fk.handler) {
		kf_buf_init(&out, 1 << 20);
		r.status = fk.handler(fk.handler_ctx, target_of(req),
				      req->body ? req->body : "", req->body_len,
				      &out);
		r.body = NULL;
		if (r.status > 0 && out.len &&
		    kf_buf_add(&resp->body, out.data, out.len)) {
			kf_buf_release(&out);
			return kf_fail(err, KF_E_TOOBIG, "too big");
		}
		kf_buf_release(&out);
	} else {
		r = fk.resp[i < fk.nresp ? i : fk.nresp - 1];
	}
	if (r.status == 0)
		return kf_fail(err, KF_E_UNAVAILABLE, "connection reset");
	if (r.status == -1)
		return kf_fail(err, KF_E_TIMEOUT, "timed out");
	resp->status = r.status;
	if (r.body && kf_buf_adds(&resp->body, r.body))
		return kf_fail(err, KF_E_TOOBIG, "too big");
	return 0;
}

time_t fake_clock(void)
{
	return fake_now++;
}

struct kf_aws_chain *fake_env_chain(const char *token)
{
	struct kf_aws_chain_cfg ccfg = { NULL, 1000 };
	struct kf_err err = KF_ERR_INIT;
	struct kf_aws_chain *chain = NULL;

	setenv("HOME", kt_tmpdir(), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	if (token)
		setenv("AWS_SESSION_TOKEN", token, 1);
	else
		unsetenv("AWS_SESSION_TOKEN");
	KT_EQ_INT(kf_aws_chain_new(&ccfg, &chain, &err), 0);
	return chain;
}

void fake_env_clear(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

int has_header(size_t i, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "%s\n", line);
	return strstr(fk.headers[i], want) != NULL;
}

json_t *req_json(size_t i)
{
	return json_loadb(fk.body[i], fk.body_len[i], JSON_ALLOW_NUL, NULL);
}

const char *hdr_value(size_t i, const char *name, char *out, size_t outlen)
{
	const char *p = strstr(fk.headers[i], name);
	size_t n;

	out[0] = '\0';
	if (!p)
		return out;
	p += strlen(name);
	n = strcspn(p, "\n");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}
