/*
 * What a file or directory shows the kernel: the stat of a value file
 * (the size of a value not cached, the size page-cache readers share),
 * of a directory, and of a view (its base's owner and mode, never
 * writable).  No provider call except through the cache.
 */
#include "attr.h"

#include "kview.h"
#include "modes.h"
#include "ops.h"
#include "view.h"

#include <errno.h>
#include <string.h>

/*
 * The size shown for a file whose value is not cached (stat never
 * fetches one): 0 on a writable mount, whose reads never stop at it, and
 * the largest possible value on a read-only one, whose page-cached reads
 * stop at the size (the first read makes it exact).
 */
void kf_attr_unknown_size(const struct kf_fs *fs, const struct kf_provider *p,
			  struct kf_attr *a)
{
	if (a->kind != KF_KIND_FILE || a->size_known)
		return;
	a->size = fs->read_only && p ? p->max_value : 0;
	a->size_known = 1;
}

/*
 * On page-cache mounts the kernel's size of a file is shared by every
 * open of it, and readers' pages are of one version of the value: while
 * such readers have it open, every reply carries that version's size (a
 * writer's uncommitted size, or a newer commit, waits for them to close).
 * Otherwise the reply may change the kernel's size: the version it held
 * is forgotten.
 */
void kf_attr_shared_size(struct kf_fs *fs, const char *path, struct kf_attr *a)
{
	size_t size;

	if (!fs->page_cache)
		return;
	if (kf_kview_size(&fs->kview, path, &size))
		a->size = size;
	else
		kf_kview_forget(&fs->kview, path);
}

void kf_attr_fill_stat(const struct kf_fs *fs, const struct kf_attr *a,
		       struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	if (a->kind == KF_KIND_DIR) {
		st->st_mode = S_IFDIR | (0777 & ~fs->umask);
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (0666 & ~fs->umask);
		st->st_nlink = 1;
		st->st_size = a->size_known ? (off_t)a->size : 0;
		st->st_blocks = (st->st_size + 511) / 512;
	}
	st->st_blksize = 4096;
	st->st_mtime = a->mtime ? a->mtime : fs->mount_time;
	st->st_ctime = st->st_mtime;
	st->st_atime = st->st_mtime;
}

/* Whether provider-relative rel is a view (view.h). */
int kf_attr_is_view(const char *rel)
{
	struct kf_view v;

	kf_view_parse(rel, &v);
	return v.is_view;
}

/* Creating a view path: in a version directory, which is read-only,
 * EROFS; else the name holds ':' or '#', in no valid name: EINVAL. */
int kf_attr_view_create_errno(const char *rel)
{
	struct kf_view v;

	kf_view_parse(rel, &v);
	return v.in_dir ? -EROFS : -EINVAL;
}

/* A view: its base's owner and mode, never writable. */
int kf_attr_view_stat(struct kf_fs *fs, struct kf_provider *p, const char *path,
		      const char *rel, struct stat *st)
{
	struct kf_view v;
	struct kf_attr a;
	char modes[KF_MAX_PATH];
	int rc;

	kf_view_parse(rel, &v);
	rc = kf_view_attr(fs, p, path, rel, &v, &a, modes, sizeof(modes));
	if (rc)
		return rc;
	if (a.kind == KF_KIND_FILE)
		kf_attr_shared_size(fs, path, &a);
	kf_attr_fill_stat(fs, &a, st);
	kf_modes_apply(&fs->modes, modes, st);
	st->st_mode &= ~(mode_t)0222;
	return 0;
}
