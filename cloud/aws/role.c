/*
 * Role chains: the credentials of one IAM role, assumed through STS with
 * web identity tokens handed over in memory (a pod's service-account
 * token), each token proven once and then known only by its SHA-256.
 * The newest accepted token is kept in locked memory for refreshes; no
 * token, key or session token reaches a log line or *err, and no STS
 * call is made while a lock is held.
 */
#include "aws/chain_priv.h"
#include "aws/config.h"
#include "core/crypto.h"
#include "core/secret.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEEN_MAX 256	 /* tokens remembered per role */
#define FRESH_S (5 * 60) /* a known token is asked again this near expiry */
#define ARN_MAX 2048	 /* STS's RoleArn limit */
#define SCRUB_MIN 8	 /* shorter tokens are not searched for in messages */

/* A token STS accepted for the role: its hash and what it got. */
struct seen {
	unsigned char hash[32];
	time_t expiration;   /* of the credentials it got */
	unsigned long stamp; /* recorded at; the smallest is evicted */
	int used;
};

/*
 * One STS call for one token, shared by the offers of that token that
 * arrive while it runs.  Freed by the last of them (refs).
 */
struct flight {
	unsigned char hash[32];
	int done;
	int rc;
	struct kf_err err;
	unsigned refs;
	struct flight *next;
};

struct kf_aws_role {
	pthread_mutex_t lock;
	pthread_cond_t cond;	      /* a flight landed; uses lock */
	struct kf_secret *token;      /* protected by lock: newest accepted */
	unsigned char token_hash[32]; /* protected by lock */
	struct seen seen[SEEN_MAX];   /* protected by lock */
	unsigned long stamp;	      /* protected by lock */
	struct flight *flights;	      /* protected by lock: calls under way */
};

/* ---------- names ---------- */

/* "arn:PARTITION:iam::12 DIGITS:role/[PATH/]NAME". */
static int role_arn_valid(const char *arn)
{
	const char *p = arn, *name;
	size_t n;

	if (strlen(arn) > ARN_MAX || strncmp(p, "arn:", 4) != 0)
		return 0;
	p += 4;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
	if (n == 0 || p[n] != ':')
		return 0;
	p += n + 1;
	if (strncmp(p, "iam::", 5) != 0)
		return 0;
	p += 5;
	n = strspn(p, "0123456789");
	if (n != 12 || strncmp(p + n, ":role/", 6) != 0)
		return 0;
	name = p + n + 6;
	n = strlen(name);
	if (n == 0 || name[n - 1] == '/' || name[0] == '/' ||
	    strstr(name, "//"))
		return 0;
	for (p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("+=,.@_-/", *p))
			return 0;
	return 1;
}

/* STS's RoleSessionName: 2..64 of [A-Za-z0-9+=,.@_-]. */
static int session_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+=,.@_-", *s))
			return 0;
	return 1;
}

/* The chain's settings for STS (role, session name, endpoint). */
static int role_settings(struct kf_aws_chain *c,
			 const struct kf_aws_role_cfg *cfg, struct kf_err *err)
{
	char sts[1024], defsn[64];
	const char *sn = cfg->session_name;

	if (!sn) {
		/* Cannot truncate: a 64-bit number fits. */
		(void)snprintf(defsn, sizeof(defsn), "keyfs-csi-%lld",
			       (long long)time(NULL));
		sn = defsn;
	}
	if (!session_name_valid(sn))
		return kf_fail(err, KF_E_INVALID,
			       "aws: bad role session name (2..64 of "
			       "A-Z a-z 0-9 +=,.@_-)");
	if (kf_aws_sts_endpoint(cfg->profile, sts, sizeof(sts), err) < 0)
		return kf_fail_within(err, "aws: STS endpoint");
	/* The label only names the chain in logs: a cut one will do. */
	(void)snprintf(c->cfg.label, sizeof(c->cfg.label), "role %s",
		       cfg->role_arn);
	c->cfg.timeout_ms = cfg->timeout_ms;
	c->cfg.profile = cfg->profile ? strdup(cfg->profile) : NULL;
	c->cfg.role_arn = strdup(cfg->role_arn);
	c->cfg.session_name = strdup(sn);
	c->cfg.sts_url = strdup(sts);
	if ((cfg->profile && !c->cfg.profile) || !c->cfg.role_arn ||
	    !c->cfg.session_name || !c->cfg.sts_url)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	return 0;
}

int kf_aws_chain_new_role(const struct kf_aws_role_cfg *cfg,
			  struct kf_aws_chain **out, struct kf_err *err)
{
	struct kf_aws_chain *c = NULL;
	int rc = -1;

	*out = NULL;
	if (!cfg || !cfg->role_arn || !role_arn_valid(cfg->role_arn))
		return kf_fail(err, KF_E_INVALID,
			       "aws: not an IAM role ARN "
			       "(arn:PARTITION:iam::ACCOUNT:role/NAME): %.100s",
			       cfg && cfg->role_arn ? cfg->role_arn : "(none)");
	c = kf_aws_chain_alloc();
	if (!c)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	c->role = calloc(1, sizeof(*c->role));
	if (!c->role) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&c->role->lock, NULL);
	pthread_cond_init(&c->role->cond, NULL);
	if (role_settings(c, cfg, err) < 0)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	kf_aws_chain_free(c);
	return rc;
}

void kf_aws_role_free(struct kf_aws_role *r)
{
	if (!r)
		return;
	/* No offer can run any more: the chain is being freed. */
	kf_secret_free(r->token);
	explicit_bzero(r->seen, sizeof(r->seen));
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

/* ---------- tokens known ---------- */

static struct seen *seen_find_locked(struct kf_aws_role *r,
				     const unsigned char h[32])
{
	for (size_t i = 0; i < SEEN_MAX; i++)
		if (r->seen[i].used && kf_memeq(r->seen[i].hash, h, 32))
			return &r->seen[i];
	return NULL;
}

/* Remember h as accepted until exp, evicting the oldest entry if full. */
static void seen_record_locked(struct kf_aws_role *r, const unsigned char h[32],
			       time_t exp)
{
	struct seen *s = seen_find_locked(r, h);

	for (size_t i = 0; !s && i < SEEN_MAX; i++)
		if (!r->seen[i].used)
			s = &r->seen[i];
	if (!s) {
		s = &r->seen[0];
		for (size_t i = 1; i < SEEN_MAX; i++)
			if (r->seen[i].stamp < s->stamp)
				s = &r->seen[i];
	}
	memcpy(s->hash, h, 32);
	s->expiration = exp;
	s->stamp = ++r->stamp;
	s->used = 1;
}

static void seen_forget_locked(struct kf_aws_role *r, const unsigned char h[32])
{
	struct seen *s = seen_find_locked(r, h);

	if (s)
		memset(s, 0, sizeof(*s));
}

/* Was h accepted, with credentials more than FRESH_S from expiry? */
static int seen_fresh_locked(struct kf_aws_role *r, const unsigned char h[32],
			     time_t now)
{
	const struct seen *s = seen_find_locked(r, h);

	return s && (s->expiration == 0 ||
		     (long long)s->expiration - (long long)now > FRESH_S);
}

/*
 * STS answers are quoted in *err; should one ever quote the token, the
 * message is replaced (code and provider code stay).
 */
static void scrub(struct kf_err *err, const void *tok, size_t n)
{
	if (n >= SCRUB_MIN && memmem(err->msg, strlen(err->msg), tok, n)) {
		struct kf_err e = *err;

		kf_fail_provider(err, e.code, e.http_status, e.provider_code,
				 "STS AssumeRoleWithWebIdentity: %s (message "
				 "withheld: it quoted the token)",
				 e.provider_code[0] ? e.provider_code :
						      kf_code_name(e.code));
	}
}

/* ---------- refresh ---------- */

int kf_aws_role_fetch(struct kf_aws_chain *c, struct kf_aws_creds *out,
		      struct kf_err *err)
{
	struct kf_aws_role *r = c->role;
	struct kf_secret *tok = NULL;
	unsigned char h[32];
	int rc = -1;

	pthread_mutex_lock(&r->lock);
	if (!r->token) {
		pthread_mutex_unlock(&r->lock);
		return kf_fail(err, KF_E_DENIED,
			       "no web identity token accepted yet for %s",
			       c->cfg.role_arn);
	}
	tok = kf_secret_dup(r->token->data, r->token->len);
	memcpy(h, r->token_hash, sizeof(h));
	pthread_mutex_unlock(&r->lock);
	if (!tok)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	rc = kf_aws_sts_web_identity(&c->cfg, tok->data, tok->len, out, err);
	if (rc < 0)
		scrub(err, tok->data, tok->len);
	pthread_mutex_lock(&r->lock);
	if (rc == 0)
		seen_record_locked(r, h, out->expiration);
	else if (err->code == KF_E_DENIED)
		seen_forget_locked(r, h); /* STS refuses it now */
	pthread_mutex_unlock(&r->lock);
	kf_secret_free(tok);
	return rc;
}

/* ---------- offers ---------- */

/*
 * STS accepted the token: it becomes the refresh token, its hash is
 * remembered, *fresh becomes the chain's credentials.  Takes the role's
 * lock, then the chain's (the only order the two are ever nested in).
 */
static int accept_token(struct kf_aws_chain *c, const unsigned char h[32],
			const void *tok, size_t n, struct kf_aws_creds *fresh,
			struct kf_err *err)
{
	struct kf_aws_role *r = c->role;
	struct kf_secret *s = kf_secret_dup(tok, n);

	if (!s) {
		kf_aws_creds_release(fresh);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&r->lock);
	kf_secret_free(r->token);
	r->token = s;
	memcpy(r->token_hash, h, 32);
	seen_record_locked(r, h, fresh->expiration);
	kf_aws_chain_install(c, fresh);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static struct flight *flight_find_locked(struct kf_aws_role *r,
					 const unsigned char h[32])
{
	for (struct flight *f = r->flights; f; f = f->next)
		if (kf_memeq(f->hash, h, 32))
			return f;
	return NULL;
}

/* Drop one reference to f (already off the list when done). */
static void flight_put_locked(struct flight *f)
{
	if (--f->refs == 0)
		free(f);
}

/* Wait for the call under way for this token and share its outcome. */
static int join_locked(struct kf_aws_role *r, struct flight *f,
		       struct kf_err *err)
{
	int rc;

	f->refs++;
	while (!f->done)
		pthread_cond_wait(&r->cond, &r->lock);
	rc = f->rc;
	if (rc < 0)
		*err = f->err;
	flight_put_locked(f);
	return rc;
}

/* The flight has landed: off the list, outcome kept, waiters woken. */
static void land(struct kf_aws_role *r, struct flight *f, int rc,
		 const struct kf_err *ferr)
{
	pthread_mutex_lock(&r->lock);
	for (struct flight **pp = &r->flights; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	f->done = 1;
	f->rc = rc;
	f->err = *ferr;
	pthread_cond_broadcast(&r->cond);
	flight_put_locked(f);
	pthread_mutex_unlock(&r->lock);
}

int kf_aws_chain_offer_token(struct kf_aws_chain *c, const void *token,
			     size_t n, struct kf_err *err)
{
	struct kf_err ferr = KF_ERR_INIT;
	struct kf_aws_creds fresh;
	struct kf_aws_role *r;
	struct flight *f;
	unsigned char h[32];
	int rc;

	if (!c || !c->role)
		return kf_fail(err, KF_E_INVALID, "aws: not a role chain");
	if (!token || n == 0)
		return kf_fail(err, KF_E_INVALID, "empty web identity token");
	r = c->role;
	kf_sha256(token, n, h);
	pthread_mutex_lock(&r->lock);
	if (seen_fresh_locked(r, h, time(NULL))) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	f = flight_find_locked(r, h);
	if (f) {
		rc = join_locked(r, f, err);
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&r->lock);
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	}
	memcpy(f->hash, h, 32);
	f->refs = 1;
	f->next = r->flights;
	r->flights = f;
	pthread_mutex_unlock(&r->lock);

	/* no lock: network */
	rc = kf_aws_sts_web_identity(&c->cfg, token, n, &fresh, &ferr);
	if (rc == 0)
		rc = accept_token(c, h, token, n, &fresh, &ferr);
	if (rc < 0) {
		scrub(&ferr, token, n);
		kf_fail_within(&ferr, c->cfg.label);
	}
	land(r, f, rc, &ferr);
	if (rc < 0)
		*err = ferr;
	return rc;
}
