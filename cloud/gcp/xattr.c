/*
 * The gcp provider's extended attributes: user.keyfs.id on every object
 * (a value in the bucket store: gs://BUCKET/OBJECT), and on crypto keys
 * the rotation period, the primary version and the write-only rotate
 * trigger, read from and written to Cloud KMS.  Never touches a value
 * file's content.
 */
#include "gcp/tree_int.h"
#include "core/json.h"
#include "core/log.h"

#include <string.h>

#define XA_ID "user.keyfs.id"
#define XA_ROT "user.keyfs.rotation_period"
#define XA_PRIMARY "user.keyfs.primary"
#define XA_ROTATE "user.keyfs.rotate"

/* The readable attributes of a crypto key: where each is in the key. */
static const struct {
	const char *xname;
	const char *field; /* listed when the key has it */
	const char *sub;   /* the value: field.sub, or field if NULL */
} key_xattrs[] = {
	{ XA_ROT, "rotationPeriod", NULL },
	{ XA_PRIMARY, "primary", "name" },
};
#define N_KEY_XATTRS (sizeof(key_xattrs) / sizeof(key_xattrs[0]))

static int is_key_xattr(const char *xname)
{
	for (size_t i = 0; i < N_KEY_XATTRS; i++)
		if (strcmp(xname, key_xattrs[i].xname) == 0)
			return 1;
	return 0;
}

/*
 * One KMS get of the crypto key name, then: with xname, append that
 * attribute's value to out (NODATA when the key has none); without,
 * append the NUL-ended name of each attribute the key has.
 */
static int key_xattrs_get(struct kf_gcp *s, const char *name, const char *xname,
			  struct kf_buf *out, struct kf_err *err)
{
	json_t *k = NULL;
	int rc = 0;

	if (kf_gcp_kms_get(&s->kms, name, &k, err) < 0)
		return -1;
	for (size_t i = 0; i < N_KEY_XATTRS && rc == 0; i++) {
		const char *x = key_xattrs[i].xname, *sub = key_xattrs[i].sub;
		json_t *f = json_object_get(k, key_xattrs[i].field);
		const char *v = sub ? kf_json_str(f, sub) :
				      json_string_value(f);

		if (xname && strcmp(xname, x) != 0)
			continue;
		if (xname && !v)
			rc = kf_fail(err, KF_E_NODATA, "no such attribute");
		else if (xname ? kf_buf_adds(out, v) < 0 :
				 f && kf_buf_add(out, x, strlen(x) + 1) < 0)
			rc = kf_fail(err, KF_E_RANGE,
				     xname ? "attribute too long" :
					     "attribute list too long");
	}
	json_decref(k);
	return rc;
}

/* Name of the object whose user.keyfs.id is asked for (value files: the
 * crypto key that encrypts them). */
static int xattr_target(struct kf_gcp *s, const char *path,
			struct kf_gcp_path *g, char *name, size_t n,
			struct kf_err *err)
{
	struct kf_attr a;

	if (kf_gcp_getattr_s(s, path, &a, err) < 0)
		return -1;
	if (kf_gcp_path_split(path, g, err) < 0)
		return -1;
	if (g->depth == 0)
		return kf_fail(err, KF_E_NODATA, "no such attribute");
	if (kf_gcp_path_resource(g, g->depth < 4 ? g->depth : 4, name, n) < 0)
		return kf_fail(err, KF_E_INVALID, "name too long");
	return 0;
}

int kf_gcp_getxattr(struct kf_provider *p, const char *path, const char *xname,
		    struct kf_buf *out, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char name[640];

	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (strcmp(xname, XA_ID) == 0 && s->bucket[0] && g.depth == 5) {
		/* A value in the bucket store is its object. */
		char obj[KF_GCS_MAX_NAME + 1];

		if (kf_gcp_bucket_object(s, &g, obj, sizeof(obj), err) < 0)
			return -1;
		if (kf_buf_addf(out, "gs://%s/%s", s->bucket, obj) < 0)
			return kf_fail(err, KF_E_RANGE, "attribute too long");
		return 0;
	}
	if (strcmp(xname, XA_ID) == 0) {
		if (kf_buf_adds(out, name) < 0)
			return kf_fail(err, KF_E_RANGE, "attribute too long");
		return 0;
	}
	if (g.depth != 4 || !is_key_xattr(xname))
		return kf_fail(err, KF_E_NODATA, "no such attribute");
	return key_xattrs_get(s, name, xname, out, err);
}

int kf_gcp_listxattr(struct kf_provider *p, const char *path,
		     struct kf_buf *out, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char name[640];

	if (kf_gcp_path_split(path, &g, err) < 0)
		return -1;
	if (g.depth == 0)
		return 0;
	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (kf_buf_add(out, XA_ID, sizeof(XA_ID)) < 0)
		return kf_fail(err, KF_E_RANGE, "attribute list too long");
	if (g.depth != 4)
		return 0;
	return key_xattrs_get(s, name, NULL, out, err);
}

int kf_gcp_setxattr(struct kf_provider *p, const char *path, const char *xname,
		    const void *value, size_t n, struct kf_err *err)
{
	struct kf_gcp *s = kf_gcp_of(p);
	struct kf_gcp_path g;
	char name[640], v[256], ver[700];
	long long secs;
	size_t prefix;

	if (xattr_target(s, path, &g, name, sizeof(name), err) < 0)
		return -1;
	if (strcmp(xname, XA_ID) == 0)
		return kf_fail(err, KF_E_PERM, "%s is read-only", XA_ID);
	if (strcmp(xname, XA_ROT) != 0 && strcmp(xname, XA_PRIMARY) != 0 &&
	    strcmp(xname, XA_ROTATE) != 0)
		return kf_fail(err, KF_E_NOTSUP, "unsupported attribute");
	if (g.depth != 4)
		return kf_fail(err, KF_E_NOTSUP,
			       "%s applies to crypto keys only", xname);
	if (s->read_only)
		return kf_fail(err, KF_E_ROFS, "read-only mount");
	if (n >= sizeof(v))
		return kf_fail(err, KF_E_INVALID, "attribute value too long");
	memcpy(v, value, n);
	v[n] = '\0';
	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == ' '))
		v[--n] = '\0';
	if (strcmp(xname, XA_ROTATE) == 0) {
		if (kf_gcp_kms_rotate(&s->kms, name, ver, sizeof(ver), err) < 0)
			return -1;
		kf_log(KF_LOG_INFO, "gcp: rotated %s, primary is now %s", name,
		       ver);
		return 0;
	}
	if (strcmp(xname, XA_ROT) == 0) {
		secs = kf_gcp_parse_duration(v);
		if (secs < KF_GCP_MIN_ROTATION)
			return kf_fail(err, KF_E_INVALID,
				       "rotation period must be a duration of "
				       "at least 86400s");
		return kf_gcp_kms_set_rotation(&s->kms, name, secs, err);
	}
	/* primary: a version number or the version's full name. */
	prefix = strlen(name);
	if (strncmp(v, name, prefix) == 0 &&
	    strncmp(v + prefix, "/cryptoKeyVersions/", 19) == 0)
		return kf_gcp_kms_set_primary(&s->kms, name, v + prefix + 19,
					      err);
	return kf_gcp_kms_set_primary(&s->kms, name, v, err);
}
