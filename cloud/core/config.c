/*
 * Lookups in the provider settings (see config.h).  Read-only: never
 * changes or copies what fs/ parsed.
 */
#include "core/config.h"

#include <string.h>

const char *kf_config_get(const struct kf_config *cfg, const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < cfg->nopts; i++)
		if (strcmp(cfg->opts[i].key, key) == 0)
			v = cfg->opts[i].value ? cfg->opts[i].value : "";
	return v;
}
