/*
 * The local/ master key: 32 random bytes in a 0600 file, created O_EXCL
 * on first use, refused when group/world-accessible or not exactly 32
 * bytes, then kept in locked memory until unmount.  It never logs the key
 * and wipes every copy it makes outside the kf_secret.
 *
 * STORE/local/.master-check holds "keyfs-master-check 1 HEX\n", HEX the
 * HMAC-SHA256 of a fixed string under the master key: written when the
 * key is created (or first proven by an unwrap in an older store), it
 * tells a wrong key from damage, and while it (or any key file) exists a
 * missing master key is never replaced by a new one.
 */
#include "local/priv.h"

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Version 1 proves the key; version 2 also says that every key file of
 * the store carries a tag (an untagged one is refused).
 */
#define CHECK_HEADER "keyfs-master-check V "
#define CHECK_MSG "keyfs-local-master-check-vV"

/* The check line of version ver (1 or 2) for key into line. */
static void check_line(const unsigned char key[32], int ver, char *line)
{
	char msg[] = CHECK_MSG;
	unsigned char mac[32];
	size_t hl = sizeof(CHECK_HEADER) - 1;

	msg[sizeof(msg) - 2] = (char)('0' + ver);
	kf_hmac_sha256(key, 32, msg, sizeof(msg) - 1, mac);
	memcpy(line, CHECK_HEADER, hl);
	line[hl - 2] = (char)('0' + ver);
	kf_hex(mac, sizeof(mac), line + hl);
	memcpy(line + hl + 64, "\n", 2);
	explicit_bzero(mac, sizeof(mac));
}

#define CHECK_LEN (sizeof(CHECK_HEADER) - 1 + 64 + 1)

/*
 * Compare key with the check file: its version (1, or 2: key files are
 * tagged) when it matches, 0 without a check file, -1 with err
 * (KF_E_INTEGRITY: another key, or a damaged check file).
 */
static int check_compare(const struct local *l, const unsigned char key[32],
			 struct kf_err *err)
{
	char path[PATH_MAX], v1[CHECK_LEN + 1], v2[CHECK_LEN + 1];
	struct kf_buf b;
	int rc;

	if (kf_local_fspath(l, "", KF_LOCAL_CHECKFILE, path, sizeof(path),
			    err) < 0)
		return -1;
	kf_buf_init(&b, 256);
	rc = kf_store_read(path, 256, &b, err);
	if (rc < 0 && err->code == KF_E_NOTFOUND) {
		kf_err_clear(err);
		rc = 0;
	} else if (rc == 0) {
		check_line(key, 1, v1);
		check_line(key, 2, v2);
		rc = b.len != CHECK_LEN		     ? 0 :
		     kf_memeq(b.data, v2, CHECK_LEN) ? 2 :
		     kf_memeq(b.data, v1, CHECK_LEN) ? 1 :
						       0;
		if (rc == 0)
			kf_fail(err, KF_E_INTEGRITY,
				"master key file %s is not the key of this "
				"store (it does not match %s)",
				l->master_path, path);
		rc = rc ? rc : -1;
	}
	kf_buf_release(&b);
	return rc;
}

/*
 * Tag every key file that has none (a store made before tags), then write
 * the check file of version 2: from then on an untagged key file is
 * refused.  key is proven (it matched a check file, or unwrapped a key).
 * Nothing on a read-only mount.  Caller holds master_lock.
 */
static int tags_start_locked(struct local *l, const unsigned char key[32],
			     struct kf_err *err)
{
	char line[CHECK_LEN + 1];
	int rc;

	if (l->read_only)
		return 0;
	if (kf_local_keys_tag_all(l, key, err) < 0)
		return -1;
	check_line(key, 2, line);
	rc = kf_store_replace(l->root, KF_LOCAL_CHECKFILE, line, CHECK_LEN,
			      err);
	explicit_bzero(line, sizeof(line));
	if (rc == 0)
		l->tagged = 1;
	return rc;
}

/* tags_start_locked for a store found without tags: logged, never fatal. */
static void tags_migrate_locked(struct local *l, const unsigned char key[32])
{
	struct kf_err err = KF_ERR_INIT;

	if (l->read_only)
		return;
	if (tags_start_locked(l, key, &err) < 0)
		kf_log(KF_LOG_WARN,
		       "local: cannot tag the key files of %s yet (retried at "
		       "the next mount): %s",
		       l->root, err.msg);
	else
		kf_log(KF_LOG_INFO,
		       "local: the key files of %s are authenticated now "
		       "(an untagged or altered one is refused from now on)",
		       l->root);
}

/* Does the store hold a key file (STORE/local/RING/KEY/.key.json)? */
static int store_has_keys(const struct local *l)
{
	struct dirent *de;
	DIR *d = opendir(l->root);
	int found = 0;

	if (!d)
		return errno != ENOENT; /* cannot tell: assume it does */
	while (!found && (de = readdir(d)) != NULL) {
		char ring[PATH_MAX];
		struct dirent *ke;
		DIR *r;

		if (!kf_local_valid_id(de->d_name, strlen(de->d_name)) ||
		    kf_local_fspath(l, de->d_name, NULL, ring, sizeof(ring),
				    NULL) < 0)
			continue;
		r = opendir(ring);
		while (r && !found && (ke = readdir(r)) != NULL) {
			char kf[PATH_MAX];
			int w = snprintf(kf, sizeof(kf), "%s/%s/%s", ring,
					 ke->d_name, KF_LOCAL_KEYFILE);

			found = kf_local_valid_id(ke->d_name,
						  strlen(ke->d_name)) &&
				w > 0 && (size_t)w < sizeof(kf) &&
				access(kf, F_OK) == 0;
		}
		if (r)
			closedir(r);
	}
	closedir(d);
	return found;
}

/* The master key is missing: an integrity error when the store holds
 * keys wrapped by one (or its check value), else 0 (it may be made). */
static int missing_refused(const struct local *l, struct kf_err *err)
{
	char path[PATH_MAX];

	if (kf_local_fspath(l, "", KF_LOCAL_CHECKFILE, path, sizeof(path),
			    NULL) == 0 &&
	    access(path, F_OK) < 0 && errno == ENOENT && !store_has_keys(l))
		return 0;
	return kf_fail(err, KF_E_INTEGRITY,
		       "master key file %s is missing, but this store holds "
		       "keys wrapped by one; restore it (keyfs never makes a "
		       "new one for such a store)",
		       l->master_path);
}

/* fsync the directory of the master key file after creating it. */
static int sync_key_dir(const struct local *l)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(l->master_path, '/');
	size_t n = slash ? (size_t)(slash - l->master_path) : 0;

	if (!slash)
		return kf_store_sync_dir(".");
	if (n == 0)
		n = 1; /* "/master.key" */
	if (n >= sizeof(dir))
		return -1;
	memcpy(dir, l->master_path, n);
	dir[n] = '\0';
	return kf_store_sync_dir(dir);
}

/* Create the missing master key file.  Caller holds master_lock. */
static int master_create_locked(struct local *l, struct kf_err *err)
{
	unsigned char fresh[32];
	int fd = -1, rc = -1;

	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only: no master key yet");
	if (missing_refused(l, err) < 0)
		return -1;
	if (kf_rand_bytes(fresh, sizeof(fresh), err) < 0)
		goto out;
	fd = open(l->master_path,
		  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, fresh, 32) != 32 || fsync(fd) < 0 ||
	    sync_key_dir(l) < 0) {
		kf_fail(err, KF_E_IO, "cannot create master key file %s: %s",
			l->master_path, strerror(errno));
		if (fd >= 0)
			unlink(l->master_path);
		goto out;
	}
	if (tags_start_locked(l, fresh, err) < 0) {
		unlink(l->master_path);
		goto out;
	}
	l->master = kf_secret_dup(fresh, 32);
	if (!l->master) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	kf_log(KF_LOG_INFO, "created master key file %s", l->master_path);
	rc = 0;
out:
	explicit_bzero(fresh, sizeof(fresh));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Check and read the open master key file fd.  Caller holds master_lock. */
static int master_read_locked(struct local *l, int fd, struct kf_err *err)
{
	struct kf_buf b;
	struct stat st;
	int rc = -1, ver;

	kf_buf_init_sensitive(&b, 64);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		kf_fail(err, KF_E_IO, "master key %s is not a regular file",
			l->master_path);
		goto out;
	}
	if (st.st_mode & 077) {
		kf_fail(err, KF_E_DENIED,
			"master key file %s is accessible by others (mode %04o); "
			"chmod 600 it",
			l->master_path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (kf_file_read_fd(fd, &b, err) < 0) {
		/* As any store file: larger than any valid one is damage. */
		enum kf_code c = err && err->code == KF_E_TOOBIG ?
					 KF_E_INTEGRITY :
					 KF_E_IO;

		kf_fail(err, c, "cannot read master key file %s",
			l->master_path);
		goto out;
	}
	if (b.len != 32) {
		kf_fail(err, KF_E_INVALID,
			"master key file %s must hold exactly 32 bytes",
			l->master_path);
		goto out;
	}
	ver = check_compare(l, (const unsigned char *)b.data, err);
	if (ver < 0)
		goto out;
	if (ver == 2)
		l->tagged = 1;
	else if (ver == 1) /* a store made before tags: tag it now */
		tags_migrate_locked(l, (const unsigned char *)b.data);
	l->master = kf_secret_dup(b.data, 32);
	if (!l->master) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	kf_buf_release(&b);
	return rc;
}

/* Load (or, when create, make) l->master.  Caller holds master_lock. */
static int master_load_locked(struct local *l, int create, struct kf_err *err)
{
	int fd, rc;

	/* Never blocks (a FIFO opens at once and fails the type check). */
	fd = open(l->master_path,
		  O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create)
		return master_create_locked(l, err);
	if (fd < 0 && errno == ENOENT)
		return missing_refused(l, err) < 0 ?
			       -1 :
			       kf_fail(err, KF_E_NOTFOUND,
				       "no master key file %s yet",
				       l->master_path);
	if (fd < 0 && errno == ELOOP)
		return kf_fail(err, KF_E_IO,
			       "master key file %s is a symbolic link: keyfs "
			       "refuses it",
			       l->master_path);
	if (fd < 0)
		return kf_fail(err, KF_E_IO,
			       "cannot open master key file %s: %s",
			       l->master_path, strerror(errno));
	rc = master_read_locked(l, fd, err);
	close(fd);
	return rc;
}

int kf_local_master_get(struct local *l, int create, unsigned char key[32],
			struct kf_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&l->master_lock);
	if (!l->master)
		rc = master_load_locked(l, create, err);
	if (rc == 0)
		memcpy(key, l->master->data, 32);
	pthread_mutex_unlock(&l->master_lock);
	return rc;
}

int kf_local_master_proven(struct local *l, struct kf_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&l->master_lock);
	if (l->master && !l->checked) {
		rc = check_compare(l, l->master->data, err);
		if (rc == 0) /* no check file: tag, then write one (logged) */
			tags_migrate_locked(l, l->master->data);
		if (rc >= 0)
			rc = 0;
		if (rc == 0)
			l->checked = 1;
	}
	pthread_mutex_unlock(&l->master_lock);
	return rc;
}

int kf_local_master_tags_required(struct local *l)
{
	int t;

	pthread_mutex_lock(&l->master_lock);
	t = l->tagged;
	pthread_mutex_unlock(&l->master_lock);
	return t;
}

int kf_local_master_missing(const struct local *l, struct kf_err *err)
{
	return missing_refused(l, err);
}
