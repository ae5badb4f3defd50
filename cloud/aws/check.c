/*
 * The aws/ provider's check before a write: one DescribeSecret of the
 * secret a path writes to (the path itself, or the field secret holding
 * it), so that an open for writing learns now whether Secrets Manager
 * answers or refuses access.  A name scheduled for deletion passes: the
 * write restores it.  Changes nothing; never sees a value.
 */
#include "aws/tree_priv.h"

#include <stdio.h>
#include <string.h>

/*
 * The secret a write at rest changes: the field secret above it when the
 * index knows one, else rest itself.  0 when there is nothing to ask.
 */
static int target(struct aws_priv *a, size_t ri, const char *rest,
		  char name[AWS_NAME_MAX + 1])
{
	const char *slash = strrchr(rest, '/');
	int64_t mtime;
	int fields = 0;

	if (slash && (size_t)(slash - rest) <= AWS_NAME_MAX) {
		memcpy(name, rest, (size_t)(slash - rest));
		name[slash - rest] = '\0';
		if (kf_aws_index_get(a->idx, ri, name, &fields, &mtime) &&
		    fields)
			return 1;
	}
	if (strlen(rest) > AWS_NAME_MAX || !kf_aws_tree_name_ok(rest, 1))
		return 0; /* the write itself reports the name */
	/* fits: checked above */
	(void)snprintf(name, AWS_NAME_MAX + 1, "%s", rest);
	return 1;
}

int kf_aws_tree_check_write(struct kf_provider *p, const char *path, int flags,
			    struct kf_err *err)
{
	struct aws_priv *a = p->priv;
	char name[AWS_NAME_MAX + 1];
	enum aws_kind kind = AK_NONE;
	const char *rest;
	int64_t mtime;
	size_t ri;
	int rc;

	(void)flags; /* an absent name is fine either way: a write makes it */
	if (a->read_only)
		return kf_fail(err, KF_E_ROFS, "aws: read-only mount");
	if (kf_aws_tree_split(a, path, &ri, &rest, err))
		return -1;
	if (ri == AWS_NO_REGION || !rest[0] || !target(a, ri, rest, name))
		return 0;
	/* Absent or scheduled for deletion is fine: the commit creates or
	 * restores it.  Only an answer that is no answer fails the open. */
	rc = kf_aws_tree_describe(a, ri, name, &kind, &mtime, err);
	return rc < 0 ? -1 : 0;
}
