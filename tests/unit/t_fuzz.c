/*
 * Regression tests for bugs the libFuzzer targets in tests/fuzz/ found.
 * Each case replays the crashing input (also kept in the seed corpus)
 * through the module's public interface.  Some only fail under
 * `make SAN=address,undefined`, the build that showed them.
 */
#include "kt.h"

#include "ini.h"

/* fuzz_ini: an empty file left text.data NULL and kf_ini_parse computed
 * NULL + 0 (undefined behaviour, UBSan abort).  corpus/ini/empty */
KT_TEST(fuzz_ini_empty_file)
{
	struct kf_ini ini;
	struct kf_err err = KF_ERR_INIT;

	kf_ini_init(&ini);
	KT_EQ_INT(kf_ini_parse(&ini, &err), 0);
	KT_EQ_INT(ini.n, 0);
	KT_CHECK(kf_ini_get(&ini, "default", "region") == NULL);
	KT_EQ_INT(kf_ini_has_section(&ini, "default"), 0);
	kf_ini_release(&ini);
}
