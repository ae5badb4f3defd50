/*
 * The local/ master key: 32 random bytes in a 0600 file, created O_EXCL
 * on first use, refused when group/world-accessible or not exactly 32
 * bytes, then kept in locked memory until unmount.  It never logs the key
 * and wipes every copy it makes outside the kf_secret.
 */
#include "local/priv.h"

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Create the missing master key file.  Caller holds master_lock. */
static int master_create_locked(struct local *l, struct kf_err *err)
{
	unsigned char fresh[32];
	int fd = -1, rc = -1;

	if (l->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only: no master key yet");
	if (kf_rand_bytes(fresh, sizeof(fresh), err) < 0)
		goto out;
	fd = open(l->master_path,
		  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, fresh, 32) != 32 || fsync(fd) < 0) {
		kf_fail(err, KF_E_IO, "cannot create master key file %s: %s",
			l->master_path, strerror(errno));
		if (fd >= 0)
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
	int rc = -1;

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

	fd = open(l->master_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create)
		return master_create_locked(l, err);
	if (fd < 0)
		return kf_fail(err, errno == ENOENT ? KF_E_NOTFOUND : KF_E_IO,
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
