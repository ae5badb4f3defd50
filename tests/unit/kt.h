/*
 * kt: the unit-test runner.  A test is `KT_TEST(name) { ... }` in any
 * tests/unit/t_<module>.c; it registers itself at start-up.  Failures
 * print file, line and the expression, never the compared data when it
 * may be secret (use KT_CHECK for those).  The run ends with the line
 * "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef KT_H
#define KT_H

#include <stddef.h>
#include <string.h>

struct kt_case {
	const char *name;
	const char *file;
	void (*fn)(void);
	struct kt_case *next;
};

void kt_register(struct kt_case *c);
void kt_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A fresh temporary directory for the running test (removed afterwards). */
const char *kt_tmpdir(void);

/* Unset every environment variable whose name starts with prefix. */
void kt_unsetenv_prefix(const char *prefix);

#define KT_TEST(tname)                                                     \
	static void tname(void);                                           \
	static struct kt_case kt_case_##tname = { #tname, __FILE__, tname, \
						  NULL };                  \
	__attribute__((constructor)) static void kt_reg_##tname(void)      \
	{                                                                  \
		kt_register(&kt_case_##tname);                             \
	}                                                                  \
	static void tname(void)

#define KT_CHECK(cond)                                            \
	do {                                                      \
		if (!(cond))                                      \
			kt_fail(__FILE__, __LINE__, "%s", #cond); \
	} while (0)

#define KT_EQ_INT(a, b)                                                       \
	do {                                                                  \
		long long kt_a = (long long)(a), kt_b = (long long)(b);       \
		if (kt_a != kt_b)                                             \
			kt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", \
				#a, #b, kt_a, kt_b);                          \
	} while (0)

#define KT_EQ_STR(a, b)                                               \
	do {                                                          \
		const char *kt_a = (a), *kt_b = (b);                  \
		if (!kt_a || !kt_b || strcmp(kt_a, kt_b) != 0)        \
			kt_fail(__FILE__, __LINE__,                   \
				"%s == %s: \"%s\" != \"%s\"", #a, #b, \
				kt_a ? kt_a : "(null)",               \
				kt_b ? kt_b : "(null)");              \
	} while (0)

#define KT_EQ_MEM(a, b, n)                                                  \
	do {                                                                \
		if (memcmp((a), (b), (n)) != 0)                             \
			kt_fail(__FILE__, __LINE__, "%s == %s (%zu bytes)", \
				#a, #b, (size_t)(n));                       \
	} while (0)

#endif
