/*
 * What the gcp unit tests share: a test RSA key made once, a scripted
 * HTTP transport (KMS answers queued with gf_push; the OAuth token
 * endpoint answers tokN, or gf_token_status), a settable wall clock and
 * the set-up of an auth object and a KMS client on top of them.  Test
 * code only; the tokens and keys here are made up.
 */
#ifndef T_GCP_FAKE_H
#define T_GCP_FAKE_H

#include <openssl/evp.h>
#include <time.h>

#include "core/http.h"
#include "gcp/auth.h"
#include "gcp/kms.h"

#define TOKEN_URI "https://oauth2.test.example/token"
#define KEY "projects/p1/locations/global/keyRings/r/cryptoKeys/k"

/* The test key (PEM; NULL when OpenSSL cannot make one) and its pair. */
const char *gf_pem(void);
extern EVP_PKEY *gf_test_key;

/* KMS requests seen (the first 32), and the token endpoint's state. */
extern char gf_req_url[32][600];
extern char gf_req_method[32][8];
extern char gf_req_auth[32][128];
extern char *gf_req_body[32];
extern int gf_nreq, gf_token_calls, gf_token_status;
extern int gf_token_fail; /* the next N token calls answer 503 */
extern char gf_token_body[8192];
extern char gf_token_url[600];
extern unsigned gf_token_delay_ms;

/* Forget requests and queued answers; the token endpoint answers 200. */
void gf_reset(void);
/* Queue the answer to the next KMS request (status 0: network error). */
void gf_push(long status, const char *body);
int gf_fake(const struct kf_http_req *req, struct kf_http_resp *resp,
	    struct kf_err *err);

/* The wall clock auth.c sees once gf_make_auth ran. */
extern time_t gf_now;
time_t gf_clock_now(time_t *t);

void gf_write_file(const char *path, const char *text);
/* snprintf into out, failing the test when it does not fit. */
void gf_path(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A test clock (core/clock.h) that advances only when code sleeps; each
 * sleep is recorded (the first 16).  gf_clock_stop restores the real one.
 */
extern unsigned gf_sleeps[16];
extern int gf_nsleeps;
void gf_clock_start(void);
void gf_clock_stop(void);
/* A service account key file for gf_pem(), its path in gf_sa_path. */
extern char gf_sa_path[512];
void gf_write_sa(void);
/* Auth from gf_write_sa's key over the fake transport (1 ms backoff). */
struct kf_gcp_auth *gf_make_auth(void);
/* Free a and restore the real transport and clock. */
void gf_done(struct kf_gcp_auth *a);
/* A KMS client on the fake endpoint with 1-2 ms backoff. */
void gf_make_kms(struct kf_gcp_kms *k, struct kf_gcp_auth *a);

#endif
