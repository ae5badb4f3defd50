/*
 * libFuzzer target for the berglas envelope parser and the object name
 * escaping in cloud/gcp/berglas.c.  Properties: a body is accepted only in
 * its one canonical form (re-encoding the two halves gives the input back
 * byte for byte), with a wrapped key of 1..131072 bytes and sealed data of
 * at least nonce + tag; a refused body leaves both buffers empty.  The
 * escaping is a bijection: name -> path -> name gives the name back, and
 * an accepted path maps back to itself.
 *
 * Input: byte 0 picks the check (0: envelope, 1: name, 2: path), rest =
 * the bytes.
 */
#include "core/buf.h"
#include "core/crypto.h"
#include "core/log.h"
#include "gcp/berglas.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kf_log_set_level(KF_LOG_ERROR);
	return 0;
}

static void envelope(const char *p, size_t n)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf w, s, again;

	kf_buf_init(&w, 1 << 20);
	kf_buf_init(&s, 1 << 20);
	kf_buf_init(&again, 4 << 20);
	if (kf_berglas_parse(p, n, &w, &s, &err) == 0) {
		if (w.len == 0 || w.len > KF_GCP_KMS_MAX_CIPHERTEXT ||
		    s.len < KF_BERGLAS_NONCE + KF_BERGLAS_TAG)
			abort();
		if (kf_base64_encode(w.data, w.len, &again) < 0 ||
		    kf_buf_adds(&again, ":") < 0 ||
		    kf_base64_encode(s.data, s.len, &again) < 0 ||
		    again.len != n || memcmp(again.data, p, n) != 0)
			abort();
	} else if (w.len || s.len || err.code != KF_E_INTEGRITY) {
		abort();
	}
	kf_buf_release(&w);
	kf_buf_release(&s);
	kf_buf_release(&again);
}

static void names(const char *p, size_t n, int from_path)
{
	struct kf_err err = KF_ERR_INIT;
	struct kf_buf a, b;
	int rc;

	kf_buf_init(&a, 1 << 20);
	kf_buf_init(&b, 1 << 20);
	rc = from_path ? kf_berglas_path_to_name(p, n, &a, &err) :
			 kf_berglas_name_to_path(p, n, &a, &err);
	if (rc == 0) {
		rc = from_path ?
			     kf_berglas_name_to_path(a.data, a.len, &b, &err) :
			     kf_berglas_path_to_name(a.data, a.len, &b, &err);
		if (rc != 0 || b.len != n || memcmp(b.data, p, n) != 0)
			abort();
		if (!from_path &&
		    (memchr(a.data, ':', a.len) || memchr(a.data, '#', a.len) ||
		     memchr(a.data, '\0', a.len)))
			abort();
	} else if (err.code != KF_E_INVALID || a.len) {
		abort();
	}
	kf_buf_release(&a);
	kf_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 262144)
		return 0;
	switch (data[0] % 3) {
	case 0:
		envelope((const char *)data + 1, size - 1);
		break;
	case 1:
		names((const char *)data + 1, size - 1, 0);
		break;
	default:
		names((const char *)data + 1, size - 1, 1);
		break;
	}
	return 0;
}
