/*
 * The table of built-in providers and the lookups fs/ uses on it, nothing
 * else.  Adding a provider means adding its descriptor here; fs/ does not
 * change, so no provider name may be written anywhere in fs/.
 */
#include "provider.h"
#include "local/tree.h"
#include "aws/tree.h"
#include "aws/ssm_tree.h"
#include "gcp/tree.h"

#include <string.h>

const struct kf_provider_desc *const kf_provider_table[] = {
	&kf_local_desc, &kf_aws_desc, &kf_ssm_desc, &kf_gcp_desc, NULL,
};

const struct kf_provider_desc *kf_provider_find(const char *name)
{
	for (size_t i = 0; kf_provider_table[i]; i++)
		if (strcmp(kf_provider_table[i]->name, name) == 0)
			return kf_provider_table[i];
	return NULL;
}

const struct kf_provider_desc *kf_provider_for_option(const char *key)
{
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const struct kf_provider_opt *o = kf_provider_table[i]->opts;

		for (; o && o->name; o++)
			if (strcmp(o->name, key) == 0)
				return kf_provider_table[i];
	}
	return NULL;
}

const struct kf_provider_desc *kf_provider_for_prefix(const char *key)
{
	for (size_t i = 0; kf_provider_table[i]; i++) {
		const char *name = kf_provider_table[i]->name;
		size_t n = strlen(name);

		if (strncmp(key, name, n) == 0 && key[n] == '_')
			return kf_provider_table[i];
	}
	return NULL;
}
