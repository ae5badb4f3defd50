/* Unit tests for cloud/core/crypto.c: known-answer vectors for SHA-256, HMAC,
 * CRC32C (the Castagnoli check values of RFC 3720 B.4), base64 in both alphabets, AES-GCM round trips
 * and tamper detection. */
#include "kt.h"
#include "core/crypto.h"

#include <stdio.h>

KT_TEST(crypto_crc32c_vectors)
{
	static const struct {
		const char *in;
		size_t n;
		uint32_t want;
	} v[] = {
		{ "123456789", 9, 0xE3069283u },
		{ "", 0, 0 },
		{ "hello", 5, 0x9A71BB4Cu },
		{ "hello world", 11, 0xC99465AAu },
	};
	unsigned char zeros[32] = { 0 }, ff[32], inc[32], dec[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		KT_EQ_INT(kf_crc32c(0, v[i].in, v[i].n), v[i].want);
	for (int i = 0; i < 32; i++) {
		ff[i] = 0xff;
		inc[i] = (unsigned char)i;
		dec[i] = (unsigned char)(31 - i);
	}
	KT_EQ_INT(kf_crc32c(0, zeros, 32), 0x8A9136AAu);
	KT_EQ_INT(kf_crc32c(0, ff, 32), 0x62A8AB43u);
	KT_EQ_INT(kf_crc32c(0, inc, 32), 0x46DD794Eu);
	KT_EQ_INT(kf_crc32c(0, dec, 32), 0x113FDB5Cu);
	/* Incremental equals one-shot. */
	KT_EQ_INT(kf_crc32c(kf_crc32c(0, "hello ", 6), "world", 5),
		  0xC99465AAu);
}

KT_TEST(crypto_sha256_hmac_vectors)
{
	char hex[65];
	unsigned char mac[32];

	kf_sha256_hex("", 0, hex);
	KT_EQ_STR(hex,
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	kf_sha256_hex("abc", 3, hex);
	KT_EQ_STR(hex,
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2. */
	kf_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	kf_hex(mac, 32, hex);
	KT_EQ_STR(hex,
		  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

KT_TEST(crypto_base64)
{
	static const struct {
		const char *in;
		const char *std;
		const char *url;
	} v[] = {
		{ "", "", "" },
		{ "f", "Zg==", "Zg" },
		{ "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" },
		{ "\xfb\xff", "+/8=", "-_8" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct kf_buf a, u, d1, d2;

		kf_buf_init(&a, 100);
		kf_buf_init(&u, 100);
		kf_buf_init(&d1, 100);
		kf_buf_init(&d2, 100);
		KT_EQ_INT(kf_base64_encode(v[i].in, strlen(v[i].in), &a), 0);
		KT_EQ_INT(kf_base64url_encode(v[i].in, strlen(v[i].in), &u), 0);
		KT_EQ_STR(kf_buf_str(&a), v[i].std);
		KT_EQ_STR(kf_buf_str(&u), v[i].url);
		KT_EQ_INT(kf_base64_decode(v[i].std, strlen(v[i].std), &d1), 0);
		KT_EQ_INT(kf_base64_decode(v[i].url, strlen(v[i].url), &d2), 0);
		KT_EQ_STR(kf_buf_str(&d1), v[i].in);
		KT_EQ_STR(kf_buf_str(&d2), v[i].in);
		kf_buf_release(&a);
		kf_buf_release(&u);
		kf_buf_release(&d1);
		kf_buf_release(&d2);
	}
	/* Malformed input fails and leaves the output unchanged. */
	static const char *bad[] = {
		"Z", "Zg=a", "Zh==", "Z===", "ab$d", "Zg="
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kf_buf d;

		kf_buf_init(&d, 100);
		kf_buf_adds(&d, "keep");
		KT_EQ_INT(kf_base64_decode(bad[i], strlen(bad[i]), &d), -1);
		KT_EQ_STR(kf_buf_str(&d), "keep");
		kf_buf_release(&d);
	}
}

KT_TEST(crypto_gcm_roundtrip_and_tamper)
{
	unsigned char key[32], iv[12], tag[16], ct[64], pt[64];
	const char *msg = "attack at dawn, bring the keys";
	size_t n = strlen(msg);
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_rand_bytes(key, sizeof(key), &err), 0);
	KT_EQ_INT(kf_rand_bytes(iv, sizeof(iv), &err), 0);
	KT_EQ_INT(kf_gcm_encrypt(key, iv, "aad", 3, msg, n, ct, tag, &err), 0);
	KT_CHECK(memcmp(ct, msg, n) != 0);
	KT_EQ_INT(kf_gcm_decrypt(key, iv, "aad", 3, ct, n, tag, pt, &err), 0);
	KT_EQ_MEM(pt, msg, n);
	/* Other AAD (another path), flipped bit, wrong key: all refused. */
	KT_EQ_INT(kf_gcm_decrypt(key, iv, "aae", 3, ct, n, tag, pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
	ct[3] ^= 1;
	KT_EQ_INT(kf_gcm_decrypt(key, iv, "aad", 3, ct, n, tag, pt, &err), -1);
	ct[3] ^= 1;
	key[0] ^= 1;
	KT_EQ_INT(kf_gcm_decrypt(key, iv, "aad", 3, ct, n, tag, pt, &err), -1);
	KT_EQ_INT(err.code, KF_E_INTEGRITY);
}

KT_TEST(crypto_uuid4_shape)
{
	char a[37], b[37];
	struct kf_err err = KF_ERR_INIT;

	KT_EQ_INT(kf_uuid4(a, &err), 0);
	KT_EQ_INT(kf_uuid4(b, &err), 0);
	KT_EQ_INT(strlen(a), 36);
	KT_CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	KT_CHECK(a[14] == '4');
	KT_CHECK(strchr("89ab", a[19]) != NULL);
	KT_CHECK(strcmp(a, b) != 0);
}

KT_TEST(crypto_rsa_sign_rejects_garbage)
{
	struct kf_buf sig;
	struct kf_err err = KF_ERR_INIT;

	kf_buf_init(&sig, 4096);
	KT_EQ_INT(kf_rsa_sha256_sign("not a key", 9, "m", 1, &sig, &err), -1);
	KT_EQ_INT(err.code, KF_E_INVALID);
	KT_CHECK(strstr(err.msg, "not a key") == NULL);
	kf_buf_release(&sig);
}
