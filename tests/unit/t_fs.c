/* Unit tests for fs/: option parsing, path routing, the errno table, and
 * the commit rules of open files (with a provider that records commits). */
#include "kt.h"

#include "errmap.h"
#include "handle.h"
#include "ops.h"
#include "opts.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <fuse.h>
#include <fuse_opt.h>

static int parse(struct kf_opts *o, int argc, char **argv)
{
	struct fuse_args a = FUSE_ARGS_INIT(argc, argv);
	int rc = kf_opts_parse(&a, o);

	fuse_opt_free_args(&a);
	return rc;
}

KT_TEST(opts_defaults_and_values)
{
	char *argv[] = {
		"keyfs", "-f",
		"-o",	 "store=/s,timeout=7,threads=4,umask=027,uid=12,gid=34",
		"/mnt",	 NULL
	};
	struct kf_opts o;

	KT_EQ_INT(parse(&o, 5, argv), 0);
	KT_EQ_STR(o.mountpoint, "/mnt");
	KT_EQ_STR(o.store, "/s");
	KT_EQ_INT(o.timeout, 7);
	KT_EQ_INT(o.threads, 4);
	KT_EQ_INT(o.umask, 027);
	KT_EQ_INT(o.uid, 12);
	KT_EQ_INT(o.gid, 34);
	KT_EQ_INT(o.foreground, 1);
	kf_opts_release(&o);
}

KT_TEST(opts_mount8_form_and_fstab_words)
{
	char *argv[] = { "keyfs",
			 "keyfs",
			 "/mnt/keys",
			 "-o",
			 "ro,_netdev,nofail,noauto,user,x-systemd.automount,"
			 "providers=local,local_master_key=/k",
			 NULL };
	struct kf_opts o;

	KT_EQ_INT(parse(&o, 5, argv), 0);
	KT_EQ_STR(o.source, "keyfs");
	KT_EQ_STR(o.mountpoint, "/mnt/keys");
	KT_EQ_INT(o.read_only, 1);
	KT_EQ_STR(o.providers, "local");
	KT_EQ_INT(o.nkv, 1);
	KT_EQ_STR(o.kv[0].key, "local_master_key");
	KT_EQ_STR(o.kv[0].value, "/k");
	kf_opts_release(&o);
}

KT_TEST(opts_provider_list_split_by_fuse_opt)
{
	char *argv[] = { "keyfs", "-o", "providers=local,aws,gcp", "/m", NULL };
	struct kf_opts o;

	KT_EQ_INT(parse(&o, 4, argv), 0);
	KT_EQ_STR(o.providers, "local,aws,gcp");
	kf_opts_release(&o);
}

/* Provider names and options come from kf_provider_table: every declared
 * option is collected, a misspelt one in a provider's namespace is
 * refused, and every name is rejoined into a split providers= list. */
KT_TEST(opts_provider_words_come_from_the_table)
{
	char list[256] = "providers=", arg[160];
	size_t n = strlen(list);

	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_desc *d = kf_provider_table[i];
		struct kf_opts o;

		KT_CHECK(kf_provider_for_prefix(d->name) == NULL);
		KT_CHECK(snprintf(arg, sizeof(arg), "%s_no_such_option",
				  d->name) < (int)sizeof(arg));
		KT_CHECK(kf_provider_for_prefix(arg) == d);
		{
			char *argv[] = { "keyfs", "-o", arg, "/m", NULL };

			KT_EQ_INT(parse(&o, 4, argv), -1);
			KT_CHECK(strstr(o.errbuf, "unknown provider option"));
			kf_opts_release(&o);
		}
		for (const struct kf_provider_opt *po = d->opts; po && po->name;
		     po++) {
			char *argv[] = { "keyfs", "-o", arg, "/m", NULL };

			KT_CHECK(snprintf(arg, sizeof(arg), "%s=x", po->name) <
				 (int)sizeof(arg));
			KT_EQ_INT(parse(&o, 4, argv), 0);
			KT_EQ_INT(o.nkv, 1);
			KT_EQ_STR(o.kv[0].key, po->name);
			kf_opts_release(&o);
		}
		KT_CHECK(n + strlen(d->name) + 2 < sizeof(list));
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      i ? "," : "", d->name);
	}
	{
		char *argv[] = { "keyfs", "-o", list, "/m", NULL };
		struct kf_opts o;

		KT_EQ_INT(parse(&o, 4, argv), 0);
		KT_EQ_STR(o.providers, list + strlen("providers="));
		kf_opts_release(&o);
	}
}

KT_TEST(opts_rejects_bad_values)
{
	static const char *bad[] = {
		"timeout=0", "timeout=abc",    "timeout=99999", "threads=0",
		"umask=8",   "umask=-1",       "uid=x",		"gid=1x",
		"log=loud",  "aws_nonsense=1", "store=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "keyfs", "-o", (char *)bad[i], "/m", NULL };
		struct kf_opts o;

		if (parse(&o, 4, argv) != -1)
			kt_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
		KT_CHECK(o.errbuf[0] != '\0');
		kf_opts_release(&o);
	}
}

KT_TEST(opts_uint_parser)
{
	unsigned long v;

	KT_EQ_INT(kf_opts_parse_uint("077", 8, 0777, &v), 0);
	KT_EQ_INT(v, 077);
	KT_EQ_INT(kf_opts_parse_uint("", 10, 5, &v), -1);
	KT_EQ_INT(kf_opts_parse_uint("6", 10, 5, &v), -1);
	KT_EQ_INT(kf_opts_parse_uint(" 1", 10, 5, &v), -1);
	KT_EQ_INT(kf_opts_parse_uint("+1", 10, 5, &v), -1);
	KT_EQ_INT(kf_opts_parse_uint("99999999999999999999999", 10, ~0UL, &v),
		  -1);
}

KT_TEST(tree_routing)
{
	struct kf_provider a = { .name = "local" };
	struct kf_provider b = { .name = "aws" };
	struct kf_provider *list[] = { &a, &b };
	struct kf_tree t = { list, 2 };
	struct kf_provider *p;
	const char *rel;
	char longp[KF_MAX_PATH + 10];

	KT_EQ_INT(kf_tree_route(&t, "/", &p, &rel), 0);
	KT_CHECK(p == NULL);
	KT_EQ_INT(kf_tree_route(&t, "/local", &p, &rel), 0);
	KT_CHECK(p == &a);
	KT_EQ_STR(rel, "");
	KT_EQ_INT(kf_tree_route(&t, "/aws/us-west-2/a/b", &p, &rel), 0);
	KT_CHECK(p == &b);
	KT_EQ_STR(rel, "us-west-2/a/b");
	KT_EQ_INT(kf_tree_route(&t, "/awsx", &p, &rel), -ENOENT);
	KT_EQ_INT(kf_tree_route(&t, "/loc", &p, &rel), -ENOENT);
	KT_EQ_INT(kf_tree_route(&t, "/local/../etc", &p, &rel), -EINVAL);
	KT_EQ_INT(kf_tree_route(&t, "/local/./x", &p, &rel), -EINVAL);
	KT_EQ_INT(kf_tree_route(&t, "/local//x", &p, &rel), -EINVAL);
	KT_EQ_INT(kf_tree_route(&t, "/local/x/", &p, &rel), -EINVAL);
	KT_EQ_INT(kf_tree_route(&t, "local", &p, &rel), -EINVAL);
	KT_EQ_INT(kf_tree_route(&t, "/local/..x", &p, &rel), 0);
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	KT_EQ_INT(kf_tree_route(&t, longp, &p, &rel), -ENAMETOOLONG);
	{
		char deep[KF_MAX_DEPTH * 2 + 20] = "/local";
		size_t n = strlen(deep);

		for (int i = 0; i < KF_MAX_DEPTH + 1; i++) {
			deep[n++] = '/';
			deep[n++] = 'x';
		}
		deep[n] = '\0';
		KT_EQ_INT(kf_tree_route(&t, deep, &p, &rel), -ENAMETOOLONG);
	}
}

KT_TEST(errmap_table)
{
	static const struct {
		enum kf_code c;
		int e;
	} v[] = {
		{ KF_E_NOTFOUND, ENOENT },
		{ KF_E_EXISTS, EEXIST },
		{ KF_E_DENIED, EACCES },
		{ KF_E_INVALID, EINVAL },
		{ KF_E_TOOBIG, EFBIG },
		{ KF_E_NOTSUP, ENOTSUP },
		{ KF_E_PERM, EPERM },
		{ KF_E_NOTEMPTY, ENOTEMPTY },
		{ KF_E_INTEGRITY, EIO },
		{ KF_E_UNAVAILABLE, EIO },
		{ KF_E_TIMEOUT, EIO },
		{ KF_E_STATE, EBUSY },
		{ KF_E_NODATA, ENODATA },
		{ KF_E_ROFS, EROFS },
		{ KF_E_NOMEM, ENOMEM },
		{ KF_E_IO, EIO },
		{ KF_E_NOSPC, ENOSPC },
		{ (enum kf_code)999, EIO },
		{ KF_OK, EIO },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		KT_EQ_INT(kf_errmap(v[i].c), v[i].e);
	/* Every code has a name. */
	for (int c = 0; c < KF_E__COUNT; c++)
		KT_CHECK(strcmp(kf_code_name((enum kf_code)c), "UNKNOWN") != 0);
}

/* A provider that holds one value and records commits (fs/handle.c). */
struct store {
	struct kf_provider p;
	char value[64];
	size_t len;
	int commits;
	int last_flags;
	int checks;	       /* check_write calls */
	enum kf_code fail;     /* reads, commits and checks fail with it */
	enum kf_code fail_put; /* commits fail with it */
	int n_made;	       /* "n" exists (a commit made it) */
};

static struct store *store_of(struct kf_provider *p)
{
	return p->priv;
}

static int store_getattr(struct kf_provider *p, const char *path,
			 struct kf_attr *a, struct kf_err *err)
{
	if (strcmp(path, "n") == 0 && !store_of(p)->n_made)
		return kf_fail(err, KF_E_NOTFOUND, "no such value");
	memset(a, 0, sizeof(*a));
	a->kind = KF_KIND_FILE;
	return 0;
}

static int store_read(struct kf_provider *p, const char *path,
		      struct kf_secret **value, struct kf_err *err)
{
	struct store *s = store_of(p);

	(void)path;
	if (s->fail)
		return kf_fail(err, s->fail, "scripted failure");
	*value = kf_secret_dup(s->value, s->len);
	return *value ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
}

static int store_can_create(struct kf_provider *p, const char *path,
			    struct kf_err *err)
{
	(void)p;
	(void)path;
	(void)err;
	return 0;
}

static int store_commit(struct kf_provider *p, const char *path,
			const unsigned char *value, size_t n, const char *token,
			int flags, struct kf_buf *version, struct kf_err *err)
{
	struct store *s = store_of(p);

	KT_CHECK(token && strlen(token) == 36);
	if (s->fail || s->fail_put)
		return kf_fail(err, s->fail ? s->fail : s->fail_put,
			       "scripted failure");
	if (n > sizeof(s->value))
		return kf_fail(err, KF_E_TOOBIG, "too big");
	memcpy(s->value, value, n);
	s->len = n;
	s->n_made |= strcmp(path, "n") == 0;
	s->commits++;
	s->last_flags = flags;
	return 0;
}

static int store_check_write(struct kf_provider *p, const char *path, int flags,
			     struct kf_err *err)
{
	struct store *s = store_of(p);

	(void)path;
	(void)flags;
	s->checks++;
	return s->fail ? kf_fail(err, s->fail, "scripted failure") : 0;
}

static const struct kf_provider_ops store_ops = {
	.getattr = store_getattr,
	.read = store_read,
	.can_create = store_can_create,
	.check_write = store_check_write,
	.commit = store_commit,
};

static const struct kf_who me = { 0, 0, 0 };

/* Handles take a relative path that points into the FUSE path. */
static const char v_path[] = "/st/v", n_path[] = "/st/n";
static const char *const v_rel = v_path + 4, *const n_rel = n_path + 4;

static void store_init(struct kf_fs *fs, struct store *s, const char *v)
{
	memset(s, 0, sizeof(*s));
	s->p.ops = &store_ops;
	s->p.name = "st";
	s->p.max_value = 16;
	s->p.priv = s;
	s->len = strlen(v);
	memcpy(s->value, v, s->len);
	kf_fs_init(fs);
	KT_EQ_INT(kf_cache_init(&fs->cache, 300, 3600, 30), 0);
}

KT_TEST(handle_bare_flush_after_otrunc_leaves_the_commit_to_release)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	int did = -1;

	store_init(&fs, &s, "old value");
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_WRONLY | O_TRUNC, &me,
			     &h),
		  0);
	/* The shell closes a dup'ed descriptor: no empty version yet. */
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(did, 0);
	KT_EQ_INT(s.commits, 0);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.len, 0);
	KT_EQ_INT(fs.ctr.commits, 1);
	kf_fs_release(&fs);
}

KT_TEST(handle_write_commits_once_at_flush)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	char buf[16];
	int did = 0;

	store_init(&fs, &s, "abc");
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_RDWR, &me, &h), 0);
	KT_EQ_INT(kf_fh_read(h, buf, sizeof(buf), 0), 3);
	KT_EQ_INT(kf_fh_write(h, 1, "X", 1, 1), 1);
	KT_EQ_INT(s.commits, 0);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(did, 1);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.last_flags, 0);
	KT_EQ_MEM(s.value, "aXc", 3);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 1, &did), 0); /* nothing new */
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.commits, 1);
	kf_fs_release(&fs);
}

KT_TEST(handle_failed_write_never_commits)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	int did = 0;

	store_init(&fs, &s, "keep");
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_WRONLY, &me, &h), 0);
	KT_EQ_INT(kf_fh_write(h, 1, "0123", 4, 0), 4);
	KT_EQ_INT(kf_fh_write(h, 1, "0123456789abcdef", 16, 4), -EFBIG);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), -EFBIG);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.commits, 0);
	KT_EQ_MEM(s.value, "keep", 4);
	kf_fs_release(&fs);
}

KT_TEST(handle_created_file_is_made_at_the_first_flush_after_a_write)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	int did = 0;

	store_init(&fs, &s, "");
	KT_EQ_INT(kf_fh_create(&fs, &s.p, n_path, n_rel, O_WRONLY, &me, &h), 0);
	KT_EQ_INT(kf_fh_pending_has(&fs, n_path), 1);
	/* `echo x > new`: the shell closes its dup'ed descriptor first */
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(s.commits, 0);
	KT_EQ_INT(kf_fh_write(h, 1, "x", 1, 0), 1);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(s.commits, 1); /* one version, made with the value */
	KT_EQ_INT(s.last_flags, KF_COMMIT_CREATE);
	KT_EQ_INT(kf_fh_write(h, 1, "y", 1, 1), 1);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(s.commits, 2);
	KT_EQ_INT(s.last_flags, 0); /* exists now */
	kf_fh_release(&fs, h);
	KT_EQ_INT(kf_fh_pending_has(&fs, n_path), 0);
	kf_fs_release(&fs);
}

KT_TEST(handle_touch_creates_the_file_at_release)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	int did = 0;

	store_init(&fs, &s, "");
	KT_EQ_INT(kf_fh_create(&fs, &s.p, n_path, n_rel, O_WRONLY, &me, &h), 0);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(s.commits, 0);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.last_flags, KF_COMMIT_CREATE);
	KT_EQ_INT(s.len, 0);
	kf_fs_release(&fs);
}

KT_TEST(handle_touch_released_after_a_write_keeps_the_written_value)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *t = NULL, *w = NULL;
	int did = 0;

	store_init(&fs, &s, "");
	KT_EQ_INT(kf_fh_create(&fs, &s.p, n_path, n_rel, O_WRONLY, &me, &t), 0);
	KT_EQ_INT(kf_fh_flush(&fs, t, 0, 0, &did), 0); /* touch's close */
	/* `echo x > n` before touch's release: n opens as a new file */
	KT_EQ_INT(kf_fh_open(&fs, &s.p, n_path, n_rel, O_WRONLY | O_TRUNC, &me,
			     &w),
		  0);
	KT_EQ_INT(kf_fh_write(w, 1, "x", 1, 0), 1);
	KT_EQ_INT(kf_fh_flush(&fs, w, 0, 0, &did), 0);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.last_flags, KF_COMMIT_CREATE);
	kf_fh_release(&fs, w);
	kf_fh_release(&fs, t); /* must not replace x with the empty value */
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.len, 1);
	KT_EQ_INT(kf_fh_pending_has(&fs, n_path), 0);
	kf_fs_release(&fs);
}

KT_TEST(handle_failed_first_write_creates_nothing)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	int did = 0;

	store_init(&fs, &s, "");
	KT_EQ_INT(kf_fh_create(&fs, &s.p, n_path, n_rel, O_WRONLY, &me, &h), 0);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), 0);
	KT_EQ_INT(kf_fh_write(h, 1, "0123456789abcdefX", 17, 0), -EFBIG);
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), -EFBIG);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.commits, 0);
	kf_fs_release(&fs);
}

KT_TEST(handle_open_for_writing_reports_what_the_commit_would_meet)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;

	store_init(&fs, &s, "keep");
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_RDONLY, &me, &h), 0);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.checks, 0); /* readers pay nothing */
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_WRONLY, &me, &h), 0);
	kf_fh_release(&fs, h);
	KT_EQ_INT(s.checks, 1);
	s.fail = KF_E_NOSPC;
	h = NULL;
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_WRONLY | O_TRUNC, &me,
			     &h),
		  -ENOSPC);
	KT_CHECK(h == NULL);
	s.fail = KF_E_ROFS;
	KT_EQ_INT(kf_fh_create(&fs, &s.p, n_path, n_rel, O_WRONLY, &me, &h),
		  -EROFS);
	KT_EQ_INT(kf_fh_pending_has(&fs, n_path), 0);
	s.fail = KF_E_UNAVAILABLE;
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_RDWR, &me, &h), -EIO);
	KT_EQ_INT(s.checks, 4);
	KT_EQ_INT(s.commits, 0);
	KT_EQ_MEM(s.value, "keep", 4);
	kf_fs_release(&fs);
}

KT_TEST(handle_failed_commit_keeps_the_cached_value)
{
	struct kf_fs fs;
	struct store s;
	struct kf_fh *h = NULL;
	struct kf_secret *v = NULL;
	struct kf_err err = KF_ERR_INIT;
	int did = 0;

	store_init(&fs, &s, "old");
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_RDONLY, &me, &h), 0);
	kf_fh_release(&fs, h); /* `cat s`: the value is cached */
	KT_EQ_INT(kf_fh_open(&fs, &s.p, v_path, v_rel, O_WRONLY | O_TRUNC, &me,
			     &h),
		  0);
	KT_EQ_INT(kf_fh_write(h, 1, "new", 3, 0), 3);
	s.fail_put = KF_E_UNAVAILABLE;
	KT_EQ_INT(kf_fh_flush(&fs, h, 0, 0, &did), -EIO);
	kf_fh_release(&fs, h);
	/* the cloud is down now: the cache still serves the old value */
	s.fail = KF_E_UNAVAILABLE;
	KT_EQ_INT(kf_cache_read(&fs.cache, &s.p, v_path, v_rel, &v, &err), 0);
	KT_CHECK(v && v->len == 3 && memcmp(v->data, "old", 3) == 0);
	kf_secret_free(v);
	kf_fs_release(&fs);
}

KT_TEST(handle_truncate_of_a_path_commits_through_the_one_commit)
{
	struct kf_fs fs;
	struct store s;

	store_init(&fs, &s, "abcdef");
	KT_EQ_INT(kf_fh_truncate_path(&fs, &s.p, v_path, v_rel, 2), 0);
	KT_EQ_INT(s.commits, 1);
	KT_EQ_INT(s.len, 2);
	KT_EQ_MEM(s.value, "ab", 2);
	KT_EQ_INT(kf_fh_truncate_path(&fs, &s.p, v_path, v_rel, 4), 0);
	KT_EQ_INT(s.len, 4);
	KT_EQ_MEM(s.value, "ab\0\0", 4);
	KT_EQ_INT(kf_fh_truncate_path(&fs, &s.p, v_path, v_rel, 17), -EFBIG);
	KT_EQ_INT(s.commits, 2);
	KT_EQ_INT(fs.ctr.commits, 2);
	kf_fs_release(&fs);
}
