/*
 * Version and Mount (see mount.h).  A Mount is checked whole before
 * anything is fetched, then every object is read through its identity's
 * cache; one failure fails the Mount with an error code and no files.
 * Logs name the pod, the object and the reason, never a value or token.
 */
#include "mount.h"

#include "audit.h"
#include "core/json.h"
#include "core/log.h"
#include "grpc.h"
#include "pb.h"
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTR_NS "csi.storage.k8s.io/pod.namespace"
#define ATTR_POD "csi.storage.k8s.io/pod.name"
#define ATTR_TOKENS "csi.storage.k8s.io/serviceAccount.tokens"

/* The answer's error codes. */
enum code {
	C_OK,
	C_INVALID,
	C_NOTFOUND,
	C_DENIED,
	C_UNAVAILABLE
};

static const char *const code_names[] = {
	[C_OK] = NULL,
	[C_INVALID] = "InvalidArgument",
	[C_NOTFOUND] = "NotFound",
	[C_DENIED] = "PermissionDenied",
	[C_UNAVAILABLE] = "Unavailable",
};

struct obj {
	char path[KF_MAX_PATH]; /* "/PROVIDER/..." as routed */
	char file[KF_MAX_PATH];
	unsigned mode;
	int state; /* kf_csi_provider_state */
	int as_role;
	struct kf_secret *val;
};

/* One Mount being served. */
struct mreq {
	struct kf_csi *c;
	struct kf_pb_mount_req pb;
	json_t *attrs, *secrets, *tokens;
	const char *ns, *pod, *role, *audience;
	char who[300]; /* "NAMESPACE/POD" for the log */
	unsigned perm;
	struct obj *objs;
	size_t n;
	struct kf_csi_ident *role_id;
};

/* ---------- checking the request ---------- */

/* A Kubernetes namespace name: a DNS label. */
static int ns_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

int kf_csi_set_namespaces(struct kf_csi *c, const char *list, char *errbuf,
			  size_t n)
{
	kf_csi_namespaces_release(c);
	if (!strcmp(list, "*")) {
		c->all_ns = 1;
		return 0;
	}
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		char **nn;

		if (!ns_name_ok(p, l)) {
			(void)snprintf(errbuf, n,
				       "--node-identity-namespaces: '%.*s' is "
				       "not a namespace name",
				       (int)l, p);
			return -1;
		}
		nn = realloc(c->node_ns, (c->nns + 1) * sizeof(*nn));
		if (!nn || !(nn[c->nns] = strndup(p, l))) {
			if (nn)
				c->node_ns = nn;
			(void)snprintf(errbuf, n, "out of memory");
			return -1;
		}
		c->node_ns = nn;
		c->nns++;
		p += l;
		p += *p == ',';
	}
	return 0;
}

void kf_csi_namespaces_release(struct kf_csi *c)
{
	for (size_t i = 0; i < c->nns; i++)
		free(c->node_ns[i]);
	free(c->node_ns);
	c->node_ns = NULL;
	c->nns = 0;
	c->all_ns = 0;
}

static int ns_allowed(const struct kf_csi *c, const char *ns)
{
	if (c->all_ns)
		return 1;
	for (size_t i = 0; ns && i < c->nns; i++)
		if (!strcmp(c->node_ns[i], ns))
			return 1;
	return 0;
}

/* An attribute that must be a string when present: 0 (NULL if absent). */
static int attr_str(struct mreq *r, const char *key, const char **out)
{
	json_t *v = json_object_get(r->attrs, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		kf_log(KF_LOG_WARN, "mount %s: parameter %s is not a string",
		       r->who, key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* The file mode: an octal string such as "0400", at most 0777. */
static int parse_mode(const char *s, unsigned *out)
{
	unsigned m = 0;

	if (!*s || strlen(s) > 4)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		m = m * 8 + (unsigned)(*s - '0');
	}
	if (m > 0777)
		return -1;
	*out = m;
	return 0;
}

/* The driver's permission: the mode's decimal text ("420" = 0644). */
static int parse_perm(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (!*s) {
		*out = 0644;
		return 0;
	}
	if (strlen(s) > 4)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 0777)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* A file name the driver may write under the volume: relative, no "."
 * or ".." or empty component, components of at most 255 bytes. */
static int file_ok(const char *f, size_t n)
{
	if (n == 0 || n >= KF_MAX_PATH || strlen(f) != n || f[0] == '/')
		return 0;
	for (const char *p = f; *p;) {
		size_t l = strcspn(p, "/");

		if (l == 0 || l > 255 || (l == 1 && p[0] == '.') ||
		    (l == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += l;
		if (*p && !*++p)
			return 0; /* a trailing "/" */
	}
	return 1;
}

/* objects[i] into o; 0 or -1 (logged). */
static int parse_object(struct mreq *r, size_t i, json_t *j, struct obj *o)
{
	json_t *jp = json_object_get(j, "path");
	json_t *jf = json_object_get(j, "fileName");
	json_t *jm = json_object_get(j, "mode");
	const char *raw, *path, *file, *slash;

	if (!json_is_object(j) || !json_is_string(jp) ||
	    (jf && !json_is_string(jf)) || (jm && !json_is_string(jm))) {
		kf_log(KF_LOG_WARN,
		       "mount %s: objects[%zu]: needs a string \"path\"; "
		       "\"fileName\" and \"mode\" are strings",
		       r->who, i);
		return -1;
	}
	raw = json_string_value(jp);
	path = raw + (raw[0] == '/');
	if (strlen(raw) != json_string_length(jp) ||
	    (size_t)snprintf(o->path, sizeof(o->path), "/%s", path) >=
		    sizeof(o->path)) {
		kf_log(KF_LOG_WARN, "mount %s: objects[%zu]: bad path", r->who,
		       i);
		return -1;
	}
	slash = strrchr(path, '/');
	file = jf ? json_string_value(jf) : slash ? slash + 1 : path;
	if (!file_ok(file, jf ? json_string_length(jf) : strlen(file)) ||
	    (size_t)snprintf(o->file, sizeof(o->file), "%s", file) >=
		    sizeof(o->file)) {
		kf_log(KF_LOG_WARN,
		       "mount %s: objects[%zu]: fileName must be a relative "
		       "path without \".\", \"..\" or empty parts",
		       r->who, i);
		return -1;
	}
	o->mode = r->perm;
	if (jm && parse_mode(json_string_value(jm), &o->mode) < 0) {
		kf_log(KF_LOG_WARN,
		       "mount %s: objects[%zu]: mode must be an octal string "
		       "such as \"0400\"",
		       r->who, i);
		return -1;
	}
	o->state = kf_csi_provider_state(&r->c->ids, o->path);
	if (o->state < 0) {
		kf_log(KF_LOG_WARN,
		       "mount %s: objects[%zu]: %s names no provider of "
		       "this node",
		       r->who, i, path);
		return -1;
	}
	o->as_role = r->role && kf_csi_path_assumes_role(o->path);
	return 0;
}

/* The objects parameter: a non-empty JSON list, unique file names. */
static int parse_objects(struct mreq *r, const char *text)
{
	json_t *list = json_loads(text, 0, NULL);
	int rc = -1;

	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > KF_CSI_MAX_OBJECTS) {
		kf_log(KF_LOG_WARN,
		       "mount %s: parameter objects must be a JSON list of "
		       "1 to %d objects",
		       r->who, KF_CSI_MAX_OBJECTS);
		goto out;
	}
	r->n = json_array_size(list);
	r->objs = calloc(r->n, sizeof(*r->objs));
	if (!r->objs)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		if (parse_object(r, i, json_array_get(list, i), &r->objs[i]))
			goto out;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(r->objs[k].file, r->objs[i].file)) {
				kf_log(KF_LOG_WARN,
				       "mount %s: objects[%zu]: fileName %s "
				       "is used twice",
				       r->who, i, r->objs[i].file);
				goto out;
			}
	}
	rc = 0;
out:
	json_decref(list);
	return rc;
}

/* A role ARN's shape: arn:PARTITION:iam::ACCOUNT:role/NAME. */
static int role_ok(const char *s)
{
	size_t n;

	if (strncmp(s, "arn:", 4))
		return 0;
	s += 4;
	n = strcspn(s, ":");
	if (n == 0 || strncmp(s + n, ":iam::", 6))
		return 0;
	s += n + 6;
	n = strspn(s, "0123456789");
	return n == 12 && !strncmp(s + n, ":role/", 6) && s[n + 6];
}

/* attributes, parameters and objects; 0 or -1 (logged). */
static int parse_request(struct mreq *r)
{
	const char *objects = NULL, *perm = r->pb.permission;

	r->attrs = json_loadb((const char *)r->pb.attributes->data,
			      r->pb.attributes->len, 0, NULL);
	if (!json_is_object(r->attrs)) {
		kf_log(KF_LOG_WARN, "mount: attributes are not a JSON object");
		return -1;
	}
	if (attr_str(r, ATTR_NS, &r->ns) || attr_str(r, ATTR_POD, &r->pod))
		return -1;
	(void)snprintf(r->who, sizeof(r->who), "%.120s/%.120s",
		       r->ns ? r->ns : "?", r->pod ? r->pod : "?");
	if (attr_str(r, "objects", &objects) ||
	    attr_str(r, "roleArn", &r->role) ||
	    attr_str(r, "audience", &r->audience))
		return -1;
	if (r->role && !*r->role)
		r->role = NULL;
	if (!r->audience || !*r->audience)
		r->audience = KF_CSI_AUDIENCE;
	if (r->role && !role_ok(r->role)) {
		kf_log(KF_LOG_WARN, "mount %s: roleArn is not a role's ARN",
		       r->who);
		return -1;
	}
	if (parse_perm(perm, &r->perm) < 0) {
		kf_log(KF_LOG_WARN, "mount %s: bad permission %.16s", r->who,
		       perm);
		return -1;
	}
	if (!objects) {
		kf_log(KF_LOG_WARN, "mount %s: no objects parameter", r->who);
		return -1;
	}
	return parse_objects(r, objects);
}

/* ---------- identities and values ---------- */

/* The pod's token for r->audience: from attributes, else secrets. */
static const char *find_token(struct mreq *r, size_t *n)
{
	const char *text = NULL;
	json_t *t;

	if (attr_str(r, ATTR_TOKENS, &text) < 0)
		return NULL;
	if (!text && r->pb.secrets->len) {
		r->secrets = json_loadb((const char *)r->pb.secrets->data,
					r->pb.secrets->len, 0, NULL);
		text = kf_json_str(r->secrets, ATTR_TOKENS);
	}
	if (!text)
		return NULL;
	r->tokens = json_loads(text, 0, NULL);
	t = json_object_get(json_object_get(r->tokens, r->audience), "token");
	if (!json_is_string(t) || json_string_length(t) == 0)
		return NULL;
	*n = json_string_length(t);
	return json_string_value(t);
}

static enum code err_code(enum kf_code c)
{
	switch (c) {
	case KF_E_DENIED:
	case KF_E_PERM:
		return C_DENIED;
	case KF_E_INVALID:
		return C_INVALID;
	case KF_E_NOTFOUND:
		return C_NOTFOUND;
	default:
		return C_UNAVAILABLE;
	}
}

static enum code errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return C_NOTFOUND;
	case EACCES:
	case EPERM:
		return C_DENIED;
	case EINVAL:
	case EISDIR:
	case ENAMETOOLONG:
	case EFBIG:
		return C_INVALID;
	default:
		return C_UNAVAILABLE;
	}
}

/* The identities r needs: the role's (token proven), the node's (the
 * namespace allowed).  C_OK or the code (logged). */
static enum code identities(struct kf_csi *c, struct mreq *r)
{
	struct kf_err err = KF_ERR_INIT;
	int need_role = 0, need_node = 0;
	const char *tok;
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++) {
		need_role |= r->objs[i].as_role;
		need_node |= !r->objs[i].as_role;
	}
	if (need_node && !ns_allowed(c, r->ns)) {
		kf_log(KF_LOG_WARN,
		       "mount %s: namespace %s may not use the node's "
		       "identity (--node-identity-namespaces)%s",
		       r->who, r->ns ? r->ns : "?",
		       r->role ? "; only aws/ and ssm/ objects use roleArn" :
				 "; name a roleArn");
		return C_DENIED;
	}
	for (size_t i = 0; i < r->n; i++)
		if (!r->objs[i].as_role && r->objs[i].state == 1) {
			kf_log(KF_LOG_WARN,
			       "mount %s: %s: the node's own credentials do "
			       "not work for this provider; name a roleArn",
			       r->who, r->objs[i].path + 1);
			return C_DENIED;
		}
	if (!need_role)
		return C_OK;
	tok = find_token(r, &n);
	if (!tok) {
		kf_log(KF_LOG_WARN,
		       "mount %s: roleArn is set but the pod's service-account "
		       "token for audience %s is missing: the CSIDriver "
		       "object's tokenRequests must name that audience",
		       r->who, r->audience);
		return C_DENIED;
	}
	if (kf_csi_ident_role(&c->ids, r->role, tok, n, &r->role_id, &err) <
	    0) {
		/* err.msg names the role already ("role ARN: ..."). */
		kf_log(KF_LOG_WARN, "mount %s: %s [%s]", r->who, err.msg,
		       kf_code_name(err.code));
		return err_code(err.code);
	}
	return C_OK;
}

/* Every object's value; C_OK or the first failure's code (logged). */
static enum code read_all(struct kf_csi *c, struct mreq *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct obj *o = &r->objs[i];
		struct kf_csi_ident *id =
			o->as_role ? r->role_id : kf_csi_idents_node(&c->ids);
		int rc = kf_csi_ident_read(id, o->path, &o->val);

		kf_audit_log_pod(c->audit, r->ns, r->pod, "mount", o->path, rc,
				 rc ? NULL : o->val->version);
		if (rc) {
			kf_log(KF_LOG_WARN, "mount %s: %s: %s", r->who,
			       o->path + 1, strerror(-rc));
			return errno_code(-rc);
		}
	}
	return C_OK;
}

/* ---------- answers ---------- */

static int answer_error(enum code code, struct kf_secret **resp)
{
	struct kf_pb_mount_resp a = { .error_code = code_names[code] };
	struct kf_err err = KF_ERR_INIT;

	return kf_pb_mount_resp_encode(&a, resp, &err) < 0 ? KF_GRPC_INTERNAL :
							     KF_GRPC_OK;
}

/* How many objects' versions differ from current_object_version. */
static size_t changed(const struct mreq *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < r->pb.ncur; k++)
			if (!strcmp(r->pb.cur[k].id, r->objs[i].path + 1) &&
			    strcmp(r->pb.cur[k].version,
				   r->objs[i].val->version))
				n++;
	return n;
}

static int answer_files(struct mreq *r, struct kf_secret **resp)
{
	struct kf_pb_file *files = calloc(r->n, sizeof(*files));
	struct kf_pb_objver *vers = calloc(r->n, sizeof(*vers));
	struct kf_pb_mount_resp a = {
		.vers = vers, .nvers = r->n, .files = files, .nfiles = r->n
	};
	struct kf_err err = KF_ERR_INIT;
	int rc = KF_GRPC_INTERNAL;

	if (!files || !vers)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		files[i].path = r->objs[i].file;
		files[i].mode = (int32_t)r->objs[i].mode;
		files[i].contents = r->objs[i].val->data;
		files[i].len = r->objs[i].val->len;
		vers[i].id = r->objs[i].path + 1;
		vers[i].version = r->objs[i].val->version;
	}
	if (kf_pb_mount_resp_encode(&a, resp, &err) == 0)
		rc = KF_GRPC_OK;
out:
	free(files);
	free(vers);
	return rc;
}

static void mreq_release(struct kf_csi *c, struct mreq *r)
{
	for (size_t i = 0; r->objs && i < r->n; i++)
		kf_secret_free(r->objs[i].val);
	free(r->objs);
	kf_csi_ident_put(&c->ids, r->role_id);
	json_decref(r->tokens);
	json_decref(r->secrets);
	json_decref(r->attrs);
	kf_pb_mount_req_release(&r->pb);
}

int kf_csi_mount(void *ctx, const unsigned char *msg, size_t len,
		 struct kf_secret **resp, char *status_msg, size_t n)
{
	struct kf_csi *c = ctx;
	struct kf_err err = KF_ERR_INIT;
	struct mreq r;
	enum code code = C_INVALID;
	int rc;

	memset(&r, 0, sizeof(r));
	r.c = c;
	(void)snprintf(r.who, sizeof(r.who), "?");
	if (kf_pb_mount_req_decode(msg, len, &r.pb, &err) < 0) {
		(void)snprintf(status_msg, n, "MountRequest: %s", err.msg);
		return KF_GRPC_INVALID_ARGUMENT;
	}
	__atomic_add_fetch(&c->st.mounts, 1, __ATOMIC_RELAXED);
	if (parse_request(&r) == 0) {
		code = identities(c, &r);
		if (code == C_OK)
			code = read_all(c, &r);
	}
	if (code != C_OK) {
		__atomic_add_fetch(&c->st.mount_errors, 1, __ATOMIC_RELAXED);
		kf_log(KF_LOG_WARN, "mount %s: failed: %s", r.who,
		       code_names[code]);
		rc = answer_error(code, resp);
	} else {
		size_t ch = changed(&r);

		__atomic_add_fetch(&c->st.objects, r.n, __ATOMIC_RELAXED);
		__atomic_add_fetch(&c->st.changed, ch, __ATOMIC_RELAXED);
		kf_log(KF_LOG_INFO,
		       "mount %s: %zu object%s served, %zu of a new version",
		       r.who, r.n, r.n == 1 ? "" : "s", ch);
		rc = answer_files(&r, resp);
	}
	mreq_release(c, &r);
	return rc;
}

int kf_csi_version(void *ctx, const unsigned char *msg, size_t len,
		   struct kf_secret **resp, char *status_msg, size_t n)
{
	struct kf_err err = KF_ERR_INIT;
	char driver[64];

	(void)ctx;
	if (kf_pb_version_req_decode(msg, len, driver, sizeof(driver), &err) <
	    0) {
		(void)snprintf(status_msg, n, "VersionRequest: %s", err.msg);
		return KF_GRPC_INVALID_ARGUMENT;
	}
	if (kf_pb_version_resp_encode("v1alpha1", "keyfs", KF_VERSION, resp,
				      &err) < 0) {
		(void)snprintf(status_msg, n, "%s", err.msg);
		return KF_GRPC_INTERNAL;
	}
	return KF_GRPC_OK;
}
