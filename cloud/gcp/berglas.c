/*
 * berglas's Cloud Storage secret format (see berglas.h for every byte and
 * where berglas defines it): sealing and opening the envelope, the
 * get/put of a secret object, and the escaping of object name components
 * into keyfs path components.  Values and DEKs live in locked memory and
 * are wiped after use; nothing here logs a value, a DEK or a body.
 */
#include "gcp/berglas.h"
#include "core/crypto.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

int kf_berglas_key_name(const char *key, char *out, size_t outlen,
			struct kf_err *err)
{
	size_t n = 0;
	int slashes = 0;

	/* kmsKeyTrimVersion: a name with more than 7 '/' keeps the part
	 * before its 8th. */
	while (key[n] && !(key[n] == '/' && ++slashes == 8))
		n++;
	if (n >= outlen)
		return kf_fail(err, KF_E_INVALID, "KMS key name too long");
	memcpy(out, key, n);
	out[n] = '\0';
	return 0;
}

/* Cut b back to len bytes (a failed append leaves nothing behind). */
static void buf_cut(struct kf_buf *b, size_t len)
{
	if (!b->data || b->len <= len)
		return;
	if (b->sensitive)
		explicit_bzero(b->data + len, b->len - len);
	b->len = len;
	b->data[len] = '\0';
}

/* Standard base64 with padding, as Go's StdEncoding wants it. */
static int std_b64(const char *s, size_t n)
{
	size_t pad = 0;

	if (n % 4)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return 0;
	}
	return pad <= 2;
}

int kf_berglas_parse(const char *body, size_t n, struct kf_buf *wrapped,
		     struct kf_buf *sealed, struct kf_err *err)
{
	const char *colon = memchr(body, ':', n);
	size_t a, w0 = wrapped->len, s0 = sealed->len;

	if (!colon)
		return kf_fail(err, KF_E_INTEGRITY,
			       "berglas: invalid ciphertext: not enough parts");
	a = (size_t)(colon - body);
	if (!a || !std_b64(body, a) || kf_base64_decode(body, a, wrapped) < 0 ||
	    wrapped->len - w0 > KF_GCP_KMS_MAX_CIPHERTEXT)
		goto bad_dek;
	if (!std_b64(colon + 1, n - a - 1) ||
	    kf_base64_decode(colon + 1, n - a - 1, sealed) < 0 ||
	    sealed->len - s0 < KF_BERGLAS_NONCE + KF_BERGLAS_TAG) {
		buf_cut(wrapped, w0);
		buf_cut(sealed, s0);
		return kf_fail(err, KF_E_INTEGRITY,
			       "berglas: invalid ciphertext: failed to parse "
			       "ciphertext");
	}
	return 0;
bad_dek:
	buf_cut(wrapped, w0);
	return kf_fail(err, KF_E_INTEGRITY,
		       "berglas: invalid ciphertext: failed to parse dek");
}

int kf_berglas_seal(struct kf_gcp_kms *k, const char *key, const char *object,
		    const void *value, size_t n, struct kf_buf *body,
		    struct kf_err *err)
{
	struct kf_secret *dek = kf_secret_new(KF_BERGLAS_DEK);
	unsigned char nonce[KF_BERGLAS_NONCE], tag[KF_BERGLAS_TAG];
	struct kf_buf sealed, wrapped;
	size_t start = body->len;
	int rc = -1;

	/* sensitive: the value is copied in before it is encrypted over */
	kf_buf_init_sensitive(&sealed, KF_BERGLAS_MAX_VALUE + 64);
	kf_buf_init(&wrapped, KF_GCP_KMS_MAX_CIPHERTEXT);
	if (!dek) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (n > KF_BERGLAS_MAX_VALUE) {
		kf_fail(err, KF_E_TOOBIG, "berglas: value over %u bytes",
			KF_BERGLAS_MAX_VALUE);
		goto out;
	}
	if (kf_rand_bytes(dek->data, KF_BERGLAS_DEK, err) < 0 ||
	    kf_rand_bytes(nonce, sizeof(nonce), err) < 0)
		goto out;
	dek->len = KF_BERGLAS_DEK;
	/* nonce || ciphertext || tag, as Go's aesgcm.Seal(nonce, nonce..) */
	if (kf_buf_add(&sealed, nonce, sizeof(nonce)) < 0 ||
	    kf_buf_add(&sealed, value, n) < 0) {
		kf_fail(err, KF_E_NOMEM, "out of memory");
		goto out;
	}
	if (kf_gcm_encrypt(dek->data, nonce, NULL, 0, value, n,
			   (unsigned char *)sealed.data + KF_BERGLAS_NONCE, tag,
			   err) < 0 ||
	    kf_buf_add(&sealed, tag, sizeof(tag)) < 0)
		goto out;
	if (kf_gcp_kms_encrypt_aad(k, key, dek->data, dek->len, object,
				   strlen(object), &wrapped, NULL, 0, err) < 0)
		goto out;
	if (kf_base64_encode(wrapped.data, wrapped.len, body) < 0 ||
	    kf_buf_adds(body, ":") < 0 ||
	    kf_base64_encode(sealed.data, sealed.len, body) < 0) {
		buf_cut(body, start);
		kf_fail(err, KF_E_TOOBIG, "berglas: object body too large");
		goto out;
	}
	rc = 0;
out:
	kf_secret_free(dek);
	kf_buf_release(&sealed);
	kf_buf_release(&wrapped);
	return rc;
}

/* GCM open of nonce || ct || tag with the DEK into a new secret. */
static int open_sealed(const struct kf_secret *dek, const struct kf_buf *sealed,
		       struct kf_secret **value, struct kf_err *err)
{
	const unsigned char *p = (const unsigned char *)sealed->data;
	size_t n = sealed->len - KF_BERGLAS_NONCE - KF_BERGLAS_TAG;
	struct kf_secret *v = kf_secret_new(n);

	if (!v)
		return kf_fail(err, KF_E_NOMEM, "out of memory");
	if (kf_gcm_decrypt(dek->data, p, NULL, 0, p + KF_BERGLAS_NONCE, n,
			   p + KF_BERGLAS_NONCE + n, v->data, err) < 0) {
		kf_secret_free(v);
		return kf_fail(err, KF_E_INTEGRITY,
			       "berglas: failed to decrypt ciphertext with "
			       "dek");
	}
	v->len = n;
	*value = v;
	return 0;
}

int kf_berglas_open(struct kf_gcp_kms *k, const char *key, const char *object,
		    const char *kms_key, const char *body, size_t n,
		    struct kf_secret **value, struct kf_err *err)
{
	struct kf_secret *dek = NULL;
	struct kf_buf wrapped, sealed;
	char want[512];
	int rc = -1;

	*value = NULL;
	kf_buf_init(&wrapped, KF_GCP_KMS_MAX_CIPHERTEXT + 4);
	kf_buf_init(&sealed, KF_BERGLAS_MAX_VALUE + 64);
	if (kf_berglas_key_name(key, want, sizeof(want), err) < 0)
		goto out;
	if (!kms_key || strcmp(kms_key, want) != 0) {
		kf_fail(err, KF_E_INTEGRITY,
			"berglas: %s: %s names another KMS key", object,
			KF_BERGLAS_META_KMS_KEY);
		goto out;
	}
	if (kf_berglas_parse(body, n, &wrapped, &sealed, err) < 0)
		goto out;
	if (kf_gcp_kms_decrypt_aad(k, want, wrapped.data, wrapped.len, object,
				   strlen(object), &dek, err) < 0)
		goto out;
	if (dek->len != KF_BERGLAS_DEK) {
		kf_fail(err, KF_E_INTEGRITY,
			"berglas: %s: the data key is not %d bytes", object,
			KF_BERGLAS_DEK);
		goto out;
	}
	rc = open_sealed(dek, &sealed, value, err);
out:
	kf_secret_free(dek);
	kf_buf_release(&wrapped);
	kf_buf_release(&sealed);
	return rc;
}

void kf_berglas_write_opts(struct kf_gcs_write *w, const char *meta[5],
			   const char *key_name, long long if_generation,
			   long long if_metageneration)
{
	kf_gcs_write_init(w);
	meta[0] = KF_BERGLAS_META_SECRET;
	meta[1] = "1";
	meta[2] = KF_BERGLAS_META_KMS_KEY;
	meta[3] = key_name;
	meta[4] = NULL;
	w->metadata = meta;
	w->cache_control = KF_BERGLAS_CACHE_CONTROL;
	w->content_type = KF_BERGLAS_CONTENT_TYPE;
	w->if_generation = if_generation;
	w->if_metageneration = if_metageneration;
}

int kf_berglas_get(struct kf_gcs *g, struct kf_gcp_kms *k, const char *bucket,
		   const char *object, const char *key, long long gen,
		   struct kf_secret **value, struct kf_gcs_object *o,
		   struct kf_err *err)
{
	struct kf_gcs_object st;
	struct kf_buf body;
	int rc = -1;

	*value = NULL;
	kf_buf_init(&body, (size_t)KF_BERGLAS_MAX_VALUE * 2);
	if (kf_gcs_stat(g, bucket, object, gen, &st, err) < 0)
		goto out;
	if (kf_gcs_read(g, bucket, object, st.generation, &st, &body, NULL,
			err) < 0 ||
	    kf_berglas_open(k, key, object,
			    kf_gcs_meta(&st, KF_BERGLAS_META_KMS_KEY),
			    kf_buf_str(&body), body.len, value, err) < 0) {
		kf_gcs_object_release(&st);
		goto out;
	}
	{
		char v[24];

		/* A decimal int64 always fits. */
		(void)snprintf(v, sizeof(v), "%lld", st.generation);
		kf_secret_set_version(*value, v);
	}
	if (o)
		*o = st;
	else
		kf_gcs_object_release(&st);
	rc = 0;
out:
	kf_buf_release(&body);
	return rc;
}

int kf_berglas_put(struct kf_gcs *g, struct kf_gcp_kms *k, const char *bucket,
		   const char *object, const char *key, const void *value,
		   size_t n, long long if_generation,
		   long long if_metageneration, struct kf_gcs_object *o,
		   struct kf_err *err)
{
	struct kf_gcs_write w;
	const char *meta[5];
	struct kf_buf body;
	char name[512];
	int rc = -1;

	kf_buf_init(&body, (size_t)KF_BERGLAS_MAX_VALUE * 2);
	if (kf_berglas_key_name(key, name, sizeof(name), err) < 0 ||
	    kf_berglas_seal(k, key, object, value, n, &body, err) < 0)
		goto out;
	kf_berglas_write_opts(&w, meta, name, if_generation, if_metageneration);
	rc = kf_gcs_write(g, bucket, object, body.data, body.len, &w, o, err);
out:
	kf_buf_release(&body);
	return rc;
}

/* ---- object name components <-> path components */

static int must_escape(unsigned char c)
{
	return c == ':' || c == '#' || c == '%' || c < 0x20 || c == 0x7f;
}

int kf_berglas_name_to_path(const char *comp, size_t n, struct kf_buf *out,
			    struct kf_err *err)
{
	if (n == 0 || memchr(comp, '/', n))
		return kf_fail(err, KF_E_INVALID,
			       "empty object name component, or one with '/'");
	if ((n == 1 || n == 2) && !memcmp(comp, "..", n)) {
		if (kf_buf_adds(out, n == 1 ? "%2E" : "%2E%2E") < 0)
			return kf_fail(err, KF_E_INVALID, "name too long");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)comp[i];
		int r = must_escape(c) ? kf_buf_addf(out, "%%%02X", c) :
					 kf_buf_add(out, &comp[i], 1);

		if (r < 0)
			return kf_fail(err, KF_E_INVALID, "name too long");
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not canonical */
}

int kf_berglas_path_to_name(const char *comp, size_t n, struct kf_buf *out,
			    struct kf_err *err)
{
	size_t start = out->len;

	if (n == 0)
		goto bad;
	if ((n == 3 && !memcmp(comp, "%2E", 3)) ||
	    (n == 6 && !memcmp(comp, "%2E%2E", 6)))
		return kf_buf_add(out, "..", n / 3) < 0 ?
			       kf_fail(err, KF_E_INVALID, "name too long") :
			       0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)comp[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(comp[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(comp[i + 2]) : -1;

			if (hi < 0 || lo < 0 ||
			    !must_escape((unsigned char)(hi << 4 | lo)))
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (must_escape(c) || c == '/') {
			goto bad;
		}
		if (kf_buf_add(out, &c, 1) < 0)
			goto bad;
	}
	if ((out->len - start == 1 || out->len - start == 2) &&
	    !memcmp(out->data + start, "..", out->len - start))
		goto bad; /* "." and ".." are only ever %2E forms */
	return 0;
bad:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return kf_fail(err, KF_E_INVALID,
		       "not a canonical escaped object name component");
}
