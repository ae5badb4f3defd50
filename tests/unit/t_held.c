/* Unit tests for fs/held.c: the temporary-name rule, held files in memory,
 * and replace-by-rename (with a provider that records commits). */
#include "kt.h"

#include "handle.h"
#include "held.h"
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

KT_TEST(held_name_rule)
{
	static const struct {
		const char *name;
		int held;
	} v[] = {
		/* sed -i, rsync, vim, emacs, backups */
		{ "sedx8C3WT", 1 },
		{ "/aws/r/dir/sedAbC123", 1 },
		{ ".F.J0LOtX", 1 },
		{ ".edit1.swp", 1 },
		{ ".F.swpx", 1 },
		{ ".#notes", 1 },
		{ "#notes#", 1 },
		{ "F~", 1 },
		{ "4913", 1 },
		{ "/gcp/p/l/r/k/.env", 1 },
		/* everything else is an ordinary name */
		{ "F", 0 },
		{ "XXJmTNTL", 1 }, /* perl -i's work file */
		{ "XXJmTNT", 0 },
		{ "XXJmTNTLL", 0 },
		{ "XXJm-NTL", 0 },
		{ "xxJmTNTL", 0 },
		{ "sed", 0 },
		{ "sedx8C3W", 0 },   /* 5 after sed */
		{ "sedx8C3WTT", 0 }, /* 7 after sed */
		{ "sed-8C3WT", 0 },
		{ "sed\xc3\xa4"
		  "bcde",
		  0 }, /* a non-ASCII letter */
		{ "Sedx8C3WT", 0 },
		{ "49130", 0 },
		{ "4913~x", 0 },
		{ "#notes", 0 },
		{ "notes#", 0 },
		{ "##", 0 },
		{ "a~b", 0 },
		{ "dir.d/F", 0 },
		{ ".", 0 },
		{ "..", 0 },
		{ "", 0 },
		{ "/aws/r/", 0 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (kf_held_name_rule(v[i].name) != v[i].held)
			kt_fail(__FILE__, __LINE__, "rule(\"%s\") != %d",
				v[i].name, v[i].held);
}

/* A provider with one value file "v" and one directory "d"; it records
 * commits and can be told to fail them. */
struct store {
	struct kf_provider p;
	char value[32];
	size_t len;
	int commits;
	int last_flags;
	char last_path[32];
	int fail;
};

static int store_getattr(struct kf_provider *p, const char *path,
			 struct kf_attr *a, struct kf_err *err)
{
	struct store *s = p->priv;

	memset(a, 0, sizeof(*a));
	if (!strcmp(path, "d")) {
		a->kind = KF_KIND_DIR;
		return 0;
	}
	if (strcmp(path, "v") != 0 &&
	    !(s->commits && !strcmp(path, s->last_path)))
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	a->kind = KF_KIND_FILE;
	return 0;
}

static int store_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n, const char *token,
			int flags, struct kf_buf *version, struct kf_err *err)
{
	struct store *s = p->priv;

	(void)token;
	if (s->fail)
		return kf_fail(err, KF_E_UNAVAILABLE, "down");
	memcpy(s->value, value, n);
	s->len = n;
	s->commits++;
	s->last_flags = flags;
	(void)snprintf(s->last_path, sizeof(s->last_path), "%s",
		       path); /* test names are short */
	return 0;
}

static const struct kf_provider_ops store_ops = {
	.getattr = store_getattr,
	.commit = store_commit,
};

static struct kf_provider *providers[1];

static void setup(struct kf_fs *fs, struct store *s)
{
	memset(s, 0, sizeof(*s));
	s->p.ops = &store_ops;
	s->p.name = "st";
	s->p.max_value = 16;
	s->p.priv = s;
	kf_fs_init(fs);
	KT_EQ_INT(kf_cache_init(&fs->cache, 0, 0, 30), 0);
	providers[0] = &s->p;
	fs->tree.providers = providers;
	fs->tree.n = 1;
}

/* A held file at path holding v. */
static void hold(struct kf_fs *fs, struct store *s, const char *path,
		 const char *v)
{
	struct kf_held_fh *fh = NULL;

	KT_EQ_INT(kf_held_try_create(fs, &s->p, path, path + 4, O_WRONLY, &fh),
		  0);
	KT_CHECK(fh != NULL);
	KT_EQ_INT(kf_held_write(&fs->held, fh, v, strlen(v), 0),
		  (int)strlen(v));
	kf_held_close(&fs->held, fh);
}

static int count(void *ctx, const char *name, const struct kf_attr *a)
{
	(void)name;
	(void)a;
	(*(int *)ctx)++;
	return 0;
}

KT_TEST(held_files_live_in_memory)
{
	static const struct kf_who me = { 0, 0, 0 };
	struct kf_fs fs;
	struct store s;
	struct kf_held_fh *a = NULL, *b = NULL;
	struct kf_attr at;
	char buf[32];
	int n = 0;

	setup(&fs, &s);
	/* Ordinary names and existing names are not held. */
	KT_EQ_INT(kf_held_try_create(&fs, &s.p, "/st/plain", "plain", 0, &a),
		  1);
	KT_EQ_INT(kf_held_try_create(&fs, &s.p, "/st/v", "v", 0, &a), 1);
	KT_EQ_INT(kf_held_try_create(&fs, &s.p, "/st/.x", ".x", O_RDWR, &a), 0);
	KT_EQ_INT(kf_held_try_create(&fs, &s.p, "/st/.x", ".x", 0, &b),
		  -EEXIST);
	KT_EQ_INT(kf_held_write(&fs.held, a, "0123456789abcdef!", 17, 0),
		  -EFBIG);
	KT_EQ_INT(kf_held_write(&fs.held, a, "hello", 5, 0), 5);
	KT_EQ_INT(kf_held_open(&fs.held, "/st/.x", O_RDONLY, &b), 0);
	KT_EQ_INT(kf_held_read(&fs.held, b, buf, sizeof(buf), 1), 4);
	KT_EQ_MEM(buf, "ello", 4);
	KT_EQ_INT(kf_held_stat(&fs.held, "/st/.x", &at), 0);
	KT_EQ_INT(at.size, 5);
	kf_held_list(&fs.held, "/st", count, &n);
	KT_EQ_INT(n, 1);
	n = 0;
	kf_held_list(&fs.held, "/", count, &n);
	KT_EQ_INT(n, 0);
	/* Removed while open: the name goes, the open file stays usable. */
	KT_EQ_INT(kf_held_unlink(&fs.held, "/st/.x"), 0);
	KT_EQ_INT(kf_held_stat(&fs.held, "/st/.x", &at), -ENOENT);
	KT_EQ_INT(kf_held_read(&fs.held, b, buf, sizeof(buf), 0), 5);
	kf_held_close(&fs.held, a);
	kf_held_close(&fs.held, b);
	KT_EQ_INT(kf_held_unlink(&fs.held, "/st/.x"), -ENOENT);
	KT_EQ_INT(kf_held_truncate(&fs.held, NULL, "/st/.x", 0), -ENOENT);
	KT_EQ_INT(kf_held_rename(&fs, "/st/.x", "/st/v", 0, &me), -EPERM);
	KT_EQ_INT(s.commits, 0);
	kf_fs_release(&fs);
}

KT_TEST(held_rename_sets_the_value_with_one_commit)
{
	static const struct kf_who me = { 0, 0, 0 };
	struct kf_fs fs;
	struct store s;

	setup(&fs, &s);
	/* Onto an existing name: one commit, no create; the held file goes. */
	hold(&fs, &s, "/st/sedAAAAAA", "new");
	KT_EQ_INT(kf_held_rename(&fs, "/st/sedAAAAAA", "/st/v", 0, &me), 0);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.last_flags, 0);
	KT_EQ_STR(s.last_path, "v");
	KT_EQ_MEM(s.value, "new", 3);
	KT_EQ_INT(kf_held_has(&fs.held, "/st/sedAAAAAA"), 0);
	/* Onto a new name: created. */
	hold(&fs, &s, "/st/.n.XXXXXX", "made");
	KT_EQ_INT(kf_held_rename(&fs, "/st/.n.XXXXXX", "/st/n", 0, &me), 0);
	KT_EQ_INT(s.commits, 2);
	KT_EQ_INT(s.last_flags, KF_COMMIT_CREATE);
	KT_EQ_STR(s.last_path, "n");
	/* A failed commit keeps the held file, and says why. */
	hold(&fs, &s, "/st/v~", "keep");
	s.fail = 1;
	KT_EQ_INT(kf_held_rename(&fs, "/st/v~", "/st/v", 0, &me), -EIO);
	KT_EQ_INT(kf_held_has(&fs.held, "/st/v~"), 1);
	s.fail = 0;
	/* Refused: flags, other directories, directories. */
	KT_EQ_INT(kf_held_rename(&fs, "/st/v~", "/st/v", 1, &me), -EINVAL);
	KT_EQ_INT(kf_held_rename(&fs, "/st/v~", "/st/d/v", 0, &me), -EXDEV);
	KT_EQ_INT(kf_held_rename(&fs, "/st/v~", "/st/d", 0, &me), -EISDIR);
	KT_EQ_INT(kf_held_rename(&fs, "/st/v", "/st/w", 0, &me), -EPERM);
	KT_EQ_INT(s.commits, 2);
	/* Onto a new temporary name or another held file: in memory only. */
	KT_EQ_INT(kf_held_rename(&fs, "/st/v~", "/st/.v.swp", 0, &me), 0);
	KT_EQ_INT(kf_held_has(&fs.held, "/st/v~"), 0);
	hold(&fs, &s, "/st/4913", "x");
	KT_EQ_INT(kf_held_rename(&fs, "/st/4913", "/st/.v.swp", 0, &me), 0);
	KT_EQ_INT(kf_held_has(&fs.held, "/st/4913"), 0);
	KT_EQ_INT(kf_held_has(&fs.held, "/st/.v.swp"), 1);
	KT_EQ_INT(s.commits, 2);
	KT_EQ_INT(fs.held.n, 1);
	kf_fs_release(&fs);
}
