/*
 * Owner, group and mode per path on this host (STORE/modes).  The file is
 * text, one entry a line after a header:
 *
 *     keyfs-modes 1
 *     0600 1000 1000 /local/ring/key/name
 *
 * mode in octal, uid and gid in decimal, then the mount path to the end of
 * the line with control characters and backslashes as \xHH.  Every change
 * replaces the whole file atomically (kf_store_replace); the table in
 * memory changes only when the file did.
 */
#include "modes.h"

#include "core/log.h"
#include "core/store.h"
#include "errmap.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER "keyfs-modes 1\n"
#define MAX_FILE (64u << 20)

static void ents_free(struct kf_mode_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
}

void kf_modes_init(struct kf_modes *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
}

int kf_modes_load(struct kf_modes *m, const char *dir, struct kf_err *err)
{
	struct kf_buf b;
	char path[PATH_MAX];
	int rc = 0, w;

	w = snprintf(path, sizeof(path), "%s/%s", dir, KF_MODES_FILE);
	if (w < 0 || (size_t)w >= sizeof(path))
		return kf_fail(err, KF_E_INVALID, "store path too long");
	free(m->dir);
	m->dir = strdup(dir);
	if (!m->dir)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	kf_buf_init(&b, MAX_FILE);
	if (kf_store_read(path, MAX_FILE, &b, err) == 0)
		rc = kf_modes_parse(m, b.data, b.len, err);
	else if (err->code == KF_E_NOTFOUND)
		kf_err_clear(err);
	else
		rc = -1;
	kf_buf_release(&b);
	return rc;
}

void kf_modes_release(struct kf_modes *m)
{
	ents_free(m->ents, m->n);
	free(m->dir);
	pthread_mutex_destroy(&m->lock);
	memset(m, 0, sizeof(*m));
}

static struct kf_mode_ent *find_locked(struct kf_modes *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->ents[i].path, path))
			return &m->ents[i];
	return NULL;
}

void kf_modes_apply(struct kf_modes *m, const char *path, struct stat *st)
{
	const struct kf_mode_ent *e;

	if (!path)
		return;
	pthread_mutex_lock(&m->lock);
	e = find_locked(m, path);
	if (e) {
		st->st_uid = e->uid;
		st->st_gid = e->gid;
		st->st_mode = (st->st_mode & S_IFMT) | e->mode;
	}
	pthread_mutex_unlock(&m->lock);
}

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The escaped path s (n bytes) as a new string; NULL when malformed. */
static char *unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		if (i + 3 >= n + 0 || s[i + 1] != 'x' || unhex(s[i + 2]) < 0 ||
		    unhex(s[i + 3]) < 0 ||
		    (unhex(s[i + 2]) == 0 && unhex(s[i + 3]) == 0)) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(unhex(s[i + 2]) * 16 + unhex(s[i + 3]));
		i += 3;
	}
	out[o] = '\0';
	return out;
}

static int add_locked(struct kf_modes *m, char *path, uid_t uid, gid_t gid,
		      mode_t mode)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct kf_mode_ent *e = realloc(m->ents, cap * sizeof(*e));

		if (!e)
			return -1;
		m->ents = e;
		m->cap = cap;
	}
	m->ents[m->n].path = path;
	m->ents[m->n].uid = uid;
	m->ents[m->n].gid = gid;
	m->ents[m->n].mode = mode & 07777;
	m->n++;
	return 0;
}

/* One line "MODE UID GID PATH" (without its newline). */
static int parse_line(struct kf_modes *m, const char *s, size_t n)
{
	unsigned long v[3];
	const char *p = s, *end = s + n;
	char *path, *e;
	int bases[3] = { 8, 10, 10 };

	for (int i = 0; i < 3; i++) {
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		errno = 0;
		v[i] = strtoul(p, &e, bases[i]);
		if (errno || e >= end || *e != ' ')
			return -1;
		p = e + 1;
	}
	if (v[0] > 07777 || v[1] > UINT32_MAX - 1 || v[2] > UINT32_MAX - 1 ||
	    p >= end || *p != '/')
		return -1;
	path = unescape(p, (size_t)(end - p));
	if (!path || find_locked(m, path) ||
	    add_locked(m, path, (uid_t)v[1], (gid_t)v[2], (mode_t)v[0]) < 0) {
		free(path);
		return -1;
	}
	return 0;
}

int kf_modes_parse(struct kf_modes *m, const char *text, size_t len,
		   struct kf_err *err)
{
	size_t hl = strlen(HEADER), line = 1;
	const char *p = text + hl, *end = text + len;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (len < hl || memcmp(text, HEADER, hl) != 0) {
		rc = kf_fail(err, KF_E_INTEGRITY, "%s: not a keyfs modes file",
			     KF_MODES_FILE);
		goto out;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		line++;
		if (!nl || memchr(p, '\0', (size_t)(nl - p)) ||
		    parse_line(m, p, (size_t)(nl - p)) < 0) {
			rc = kf_fail(err, KF_E_INTEGRITY,
				     "%s: line %zu is damaged", KF_MODES_FILE,
				     line);
			goto out;
		}
		p = nl + 1;
	}
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int format_locked(struct kf_modes *m, struct kf_buf *out)
{
	char esc[4 * PATH_MAX + 1];

	if (kf_buf_adds(out, HEADER) < 0)
		return -1;
	for (size_t i = 0; i < m->n; i++) {
		const struct kf_mode_ent *e = &m->ents[i];

		if (strlen(e->path) >= PATH_MAX)
			continue; /* never stored (FUSE paths are shorter) */
		kf_log_escape(e->path, esc, sizeof(esc));
		if (kf_buf_addf(out, "%04o %u %u %s\n", (unsigned)e->mode,
				(unsigned)e->uid, (unsigned)e->gid, esc) < 0)
			return -1;
	}
	return 0;
}

int kf_modes_format(struct kf_modes *m, struct kf_buf *out)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = format_locked(m, out);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Write the table to the store; 0 or -1 with err. */
static int save_locked(struct kf_modes *m, struct kf_err *err)
{
	struct kf_buf b;
	int rc;

	if (!m->dir)
		return 0;
	kf_buf_init(&b, MAX_FILE);
	if (format_locked(m, &b) < 0)
		rc = kf_fail(err, KF_E_NOMEM, "modes file too large");
	else
		rc = kf_store_replace(m->dir, KF_MODES_FILE, b.data, b.len,
				      err);
	kf_buf_release(&b);
	return rc;
}

/*
 * Set path's entry to (uid, gid, mode) and save; on failure the table is
 * as before.  0 or -errno (reported once in the log).
 */
static int set_entry(struct kf_modes *m, const char *op, const char *path,
		     uid_t uid, gid_t gid, mode_t mode)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_mode_ent *e, old;
	char *copy = NULL;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	e = find_locked(m, path);
	if (!e) {
		copy = strdup(path);
		if (!copy || add_locked(m, copy, uid, gid, mode) < 0) {
			free(copy);
			rc = -ENOMEM;
			goto out;
		}
		e = &m->ents[m->n - 1];
	}
	old = *e;
	e->uid = uid;
	e->gid = gid;
	e->mode = mode & 07777;
	if (save_locked(m, &err) < 0) {
		rc = kf_errmap_report(op, path, &err);
		if (copy) {
			m->n--;
			free(copy);
		} else {
			*e = old;
		}
	}
out:
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		kf_log(KF_LOG_DEBUG, "%s %s: %04o %u:%u", op, path,
		       (unsigned)(mode & 07777), (unsigned)uid, (unsigned)gid);
	return rc;
}

int kf_modes_chmod(struct kf_modes *m, const char *path, const struct stat *cur,
		   mode_t mode)
{
	if ((cur->st_mode & 07777) == (mode & 07777))
		return 0;
	return set_entry(m, "chmod", path, cur->st_uid, cur->st_gid, mode);
}

int kf_modes_chown(struct kf_modes *m, const char *path, const struct stat *cur,
		   uid_t uid, gid_t gid, uid_t caller_uid)
{
	if (uid == (uid_t)-1)
		uid = cur->st_uid;
	if (gid == (gid_t)-1)
		gid = cur->st_gid;
	if (uid == cur->st_uid && gid == cur->st_gid)
		return 0;
	if (uid != cur->st_uid && caller_uid != 0)
		return -EPERM;
	return set_entry(m, "chown", path, uid, gid, cur->st_mode);
}

/* Is path equal to top or a name under it? */
static int under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

/* Drop the entries under top; how many went. */
static size_t drop_locked(struct kf_modes *m, const char *top)
{
	size_t j = 0, before = m->n;

	for (size_t i = 0; i < m->n; i++) {
		if (under(m->ents[i].path, top))
			free(m->ents[i].path);
		else
			m->ents[j++] = m->ents[i];
	}
	m->n = j;
	return before - j;
}

void kf_modes_forget(struct kf_modes *m, const char *path)
{
	struct kf_err err = KF_ERR_INIT;

	pthread_mutex_lock(&m->lock);
	if (drop_locked(m, path) && save_locked(m, &err) < 0)
		kf_log(KF_LOG_WARN, "forgetting the mode of %s: %s", path,
		       err.msg);
	pthread_mutex_unlock(&m->lock);
}

void kf_modes_rename(struct kf_modes *m, const char *from, const char *to)
{
	struct kf_err err = KF_ERR_INIT;
	size_t fl = strlen(from), changed;

	pthread_mutex_lock(&m->lock);
	changed = drop_locked(m, to);
	for (size_t i = 0; i < m->n; i++) {
		struct kf_mode_ent *e = &m->ents[i];
		size_t rest;
		char *np;

		if (!under(e->path, from))
			continue;
		rest = strlen(e->path + fl);
		np = malloc(strlen(to) + rest + 1);
		if (!np)
			continue; /* keeps the old name's entry */
		memcpy(np, to, strlen(to));
		memcpy(np + strlen(to), e->path + fl, rest + 1);
		free(e->path);
		e->path = np;
		changed++;
	}
	if (changed && save_locked(m, &err) < 0)
		kf_log(KF_LOG_WARN, "renaming the mode of %s: %s", from,
		       err.msg);
	pthread_mutex_unlock(&m->lock);
}
