/*
 * libFuzzer target for fs/opts.c: the input split at '\n' and NUL into
 * argv words after "keyfs", parsed with kf_opts_parse (fuse_opt from
 * libfuse3 does the splitting of -o lists).  Memory safety, no leaks, a
 * NUL-terminated message on every failure, and provider options only
 * where a provider declares them.
 */
#include "opts.h"

#include <fuse.h>
#include <fuse_opt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_WORDS + 2];
	struct kf_opts o;
	struct fuse_args args;
	char *copy, *p, *end;
	int argc = 0, r;

	if (size > 8192)
		return 0;
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "keyfs";
	for (p = copy, end = copy + size; p <= end && argc <= MAX_WORDS;) {
		char *e = p;

		while (e < end && *e != '\n' && *e != '\0')
			e++;
		*e = '\0';
		argv[argc++] = p;
		p = e + 1;
	}
	argv[argc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	r = kf_opts_parse(&args, &o);
	if (r != 0 && r != -1)
		abort();
	if (memchr(o.errbuf, '\0', sizeof(o.errbuf)) == NULL)
		abort();
	if (r == -1 && !o.errbuf[0])
		abort();
	if (r == 0 && !o.show_help && !o.show_version && !o.mountpoint)
		abort();
	/* Only options some provider declares are collected for providers. */
	for (size_t i = 0; i < o.nkv; i++)
		if (!o.kv[i].key || !kf_provider_for_option(o.kv[i].key))
			abort();
	kf_opts_release(&o);
	fuse_opt_free_args(&args);
	free(copy);
	return 0;
}
