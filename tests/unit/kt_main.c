/*
 * The kt runner: runs every registered test (or those whose name contains
 * argv[1]), each with its own temporary directory, and prints the summary
 * line "N passed, N failed".
 */
#include "kt.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct kt_case *head, **tail = &head;
static int failed_now;
static char tmpdir[256];

void kt_register(struct kt_case *c)
{
	*tail = c;
	tail = &c->next;
}

void kt_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failed_now = 1;
}

void kt_unsetenv_prefix(const char *prefix)
{
	size_t pl = strlen(prefix);
	char name[256];
	int again = 1;

	/* Unsetting changes environ: start over after each one. */
	while (again) {
		again = 0;
		for (char **e = environ; *e; e++) {
			size_t n = strcspn(*e, "=");

			if (!strncmp(*e, prefix, pl) && n < sizeof(name)) {
				memcpy(name, *e, n);
				name[n] = '\0';
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
}

const char *kt_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/kt.XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (struct kt_case *c = head; c; c = c->next) {
		if (argc > 1 && !strstr(c->name, argv[1]))
			continue;
		failed_now = 0;
		c->fn();
		if (tmpdir[0]) {
			nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			tmpdir[0] = '\0';
		}
		if (failed_now) {
			failed++;
			printf("FAIL %s (%s)\n", c->name, c->file);
		} else {
			passed++;
			printf("ok   %s\n", c->name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
