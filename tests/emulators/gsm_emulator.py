#!/usr/bin/env python3
"""Secret Manager v1 REST emulator (global secrets), for keyfs's tests.

In memory, loopback, Python 3.11 standard library only.  It speaks the
dialect that gcloud's generated client (secretmanager v1) and Google's
REST reference describe; tests/integration/test_gsm_emulator_gcloud.py
drives the real `gcloud secrets ...` commands against it.

Command line
------------
    python3 gsm_emulator.py [PORT] [--port N] [--host 127.0.0.1]
        [--project ID[=NUMBER]]     (repeatable) a project id and its number;
                                    ids never named get a stable 12-digit
                                    number derived from the id
        [--static-token TOKEN]      (repeatable) accepted bearer token
        [--static-token-file FILE]  (repeatable) same, read from FILE
        [--no-auth]                 accept calls with no or any token
        [--default-page-size N]     page size when a list names none
                                    (default 25000, the API's cap)
    PORT 0 (default) picks an ephemeral port.  The first stdout line is
    `PORT <n>` (flushed).  SIGTERM/SIGINT stop the server.

Names and projects
------------------
Requests may name a project by id or by number; answers always name it by
NUMBER (`projects/123456789012/secrets/x`), as Google does, so a client
must not compare the names it sent with the names it gets back.  The id
and the number of one project address the same secrets.

Methods (counter and fault names in brackets)
---------------------------------------------
    POST   /v1/projects/P/secrets?secretId=ID           [secrets.create]
    GET    /v1/projects/P/secrets[?pageSize&pageToken&filter]
                                                        [secrets.list]
    GET    /v1/projects/P/secrets/S                     [secrets.get]
    PATCH  /v1/projects/P/secrets/S?updateMask=...      [secrets.patch]
    DELETE /v1/projects/P/secrets/S[?etag=E]            [secrets.delete]
    POST   /v1/projects/P/secrets/S:addVersion          [secrets.addVersion]
    GET    /v1/projects/P/secrets/S/versions[?pageSize&pageToken&filter]
                                                        [versions.list]
    GET    /v1/projects/P/secrets/S/versions/V          [versions.get]
    GET    /v1/projects/P/secrets/S/versions/V:access   [versions.access]
    POST   /v1/projects/P/secrets/S/versions/V:enable   [versions.enable]
    POST   /v1/projects/P/secrets/S/versions/V:disable  [versions.disable]
    POST   /v1/projects/P/secrets/S/versions/V:destroy  [versions.destroy]
V is a number, `latest` (the newest version whatever its state) or an
alias from the secret's versionAliases.  Anything else under /v1/ is 404
"Method not found." [unknown]; regional secrets (projects/P/locations/L/
...) answer 501 UNIMPLEMENTED.

Rules enforced (Google's JSON error, HTTP code and error.status):
  * secretId [A-Za-z0-9_-]{1,255}; missing or bad -> 400 INVALID_ARGUMENT;
    a second create -> 409 ALREADY_EXISTS.
  * replication is required: exactly one of automatic {} or userManaged
    {replicas: [{location, customerManagedEncryption?}]} (locations unique);
    customerManagedEncryption.kmsKeyName must be a Cloud KMS crypto key
    name, in location `global` for automatic replication and in the
    replica's own location for userManaged.  Replication is immutable.
  * labels (<= 64, keys [a-z][a-z0-9_-]{0,62}, values [a-z0-9_-]{0,63}),
    annotations (keys 1-63 chars, alphanumeric at both ends, [-_.] inside;
    keys + values < 16 KiB), versionAliases (names [A-Za-z][A-Za-z0-9_-]
    {0,62}, not `latest`/`NEW`, <= 50, pointing at versions that exist and
    are not destroyed).  Other Secret fields (topics, ttl, expireTime,
    rotation, versionDestroyTtl, tags, regional CMEK) are refused with 400
    when not empty: the emulator does not implement them.
  * etags are quoted strings ("\\"16151a2f0e8b3f\\""), new for every change
    of the resource they belong to: create, patch (secret); addVersion,
    enable, disable, destroy (version; also when nothing changed).
    addVersion does not change the secret's etag.  A wrong etag on patch
    (body), delete (?etag=), enable/disable/destroy (body) -> HTTP 400
    FAILED_PRECONDITION, as Google documents it.
  * addVersion: payload.data (base64, either alphabet) must not be empty
    (400 "Field [payload] is required.") nor larger than 65536 bytes (400);
    payload.dataCrc32c (int64, string or number) when given must be the
    CRC32C of the data, else 400 INVALID_ARGUMENT "Checksum mismatch ...";
    the answer's clientSpecifiedPayloadChecksum is true when it was given.
    Version numbers start at 1 and are never reused.
  * access answers {name (the resolved number), payload: {data,
    dataCrc32c}}; a DISABLED or DESTROYED version -> 400
    FAILED_PRECONDITION "Secret Version [NAME] is in DISABLED state.";
    latest of a secret with no version -> 404 "Secret [NAME] not found or
    has no versions."  Destroy wipes the data and sets destroyTime;
    enable/disable of a destroyed version -> 400 FAILED_PRECONDITION.
  * lists: secrets by id ascending, versions newest first; pageSize
    0..25000 (negative -> 400), opaque page tokens that survive changes
    between pages (they hold the last key, not an offset), a token from
    another list or filter -> 400; totalSize counts the filtered list.
    filter: terms FIELD:VALUE (substring), FIELD=VALUE, FIELD!=VALUE,
    create_time with < <= > >=, joined by AND (or a space) and OR, NOT or
    `-` before a term, parentheses; fields name, labels.KEY (`labels.K:*`
    = has label K), create_time, and for versions state.  Unknown fields
    -> 400.
  * JSON bodies: camelCase or snake_case field names; unknown fields ->
    400; unknown query parameters -> 400 (the standard ones: alt=json,
    prettyPrint, fields, $.xgafv ... are accepted and ignored).
  * auth: `Authorization: Bearer T` with T a configured token; missing ->
    401 UNAUTHENTICATED "Request is missing required authentication
    credential ..."; wrong -> 401 "Request had invalid authentication
    credentials ...", with WWW-Authenticate.

Not implemented: IAM policies, regional secrets, locations, rotation,
Pub/Sub topics, expiry/ttl, delayed destruction, tags, real KMS calls for
CMEK (the key name is checked, not used), quota errors unless injected.
The server never logs request or response bodies (they hold secrets); the
request log keeps method, path, query, status and headers with the
Authorization value redacted.

Admin / test API (no auth; JSON in and out)
-------------------------------------------
    POST /_emu/reset           forget secrets, faults, counters, request log,
                               admin tokens and projects (command-line ones
                               stay)
    GET  /_emu/faults          the fault config, with what remains of counts
    POST /_emu/faults          replace the fault config; all optional:
        {"error_status": 503 | "UNAVAILABLE" | 429 | ...,
         "error_count": N,      fail the next N matching calls (not applied)
         "error_rate": 0..1,    then fail each with this probability ("seed")
         "error_message": "...",
         "error_methods": [...] (default: every method above),
         "drop_count": N,       the next N matching calls are APPLIED
                                (whatever their outcome) and then get no
                                answer: the connection closes (an
                                ambiguous failure, e.g. of addVersion;
                                note gcloud's transport then sends the
                                call again by itself)
         "drop_before": true,   ... or are dropped WITHOUT being applied
         "drop_status": 503,    ... or are applied and answered with this
                                error instead of closing the connection
         "drop_methods": [...]  (default: every method above),
         "corrupt_crc": true,   access answers carry a wrong dataCrc32c
         "corrupt_data": true,  access answers carry data with one byte
                                flipped (and the right CRC of the original)
         "unverified": true,    addVersion answers omit
                                clientSpecifiedPayloadChecksum
         "corrupt_count": N,    corruption only for the next N answers
         "corrupt_methods": [...] (default ["versions.access",
                                "secrets.addVersion"]),
         "latency_ms": N, "latency_methods": [...] (default: all)}
    DELETE /_emu/faults        clear every fault
    GET  /_emu/counters        {"calls": {method: n}, "responses": {method:
                               {"200": n, "dropped": n, ...}},
                               "faults_injected": {method: n}, "total": n}
    POST /_emu/counters/reset
    GET  /_emu/requests        the last 500 requests: [{"method",
                               "http_method", "path", "query", "status",
                               "headers"}] (status 0 = dropped)
    POST /_emu/static-tokens   {"token": T}
    POST /_emu/projects        {"id": ID, "number": "123..."}
    GET  /_emu/projects        {id: number}
    GET  /_emu/config, POST /_emu/config  {"require_auth": bool,
                               "accept_any_token": bool (any non-empty
                               bearer token), "default_page_size": n}
    GET  /_emu/secrets         every secret with its versions' numbers,
                               states and CRC32Cs (never the data)
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------- helpers

_CRC_TABLE = []
for _i in range(256):
	_c = _i
	for _ in range(8):
		_c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
	_CRC_TABLE.append(_c)


def crc32c(data):
	"""CRC32C (Castagnoli) of bytes, as an unsigned int."""
	crc = 0xFFFFFFFF
	tab = _CRC_TABLE
	for b in data:
		crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
	return crc ^ 0xFFFFFFFF


class ApiError(Exception):
	def __init__(self, code, status, message):
		Exception.__init__(self, message)
		self.code = code
		self.status = status
		self.message = message


STATUS_BY_CODE = {
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
	404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION",
	429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
	501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
CODE_BY_STATUS = {
	"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
	"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
	"ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
	"CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
	"UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def bad(msg):
	return ApiError(400, "INVALID_ARGUMENT", msg)


def precondition(msg):
	return ApiError(400, "FAILED_PRECONDITION", msg)


def not_found(msg):
	return ApiError(404, "NOT_FOUND", msg)


def b64decode_any(value, field):
	"""Decode base64 in the standard or URL-safe alphabet, padding optional."""
	if not isinstance(value, str):
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed" % field)
	s = value.strip()
	if not re.fullmatch(r"[A-Za-z0-9+/_-]*={0,2}", s):
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed" % field)
	s = s.rstrip("=").replace("-", "+").replace("_", "/")
	if len(s) % 4 == 1:
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed" % field)
	s += "=" * (-len(s) % 4)
	try:
		return base64.b64decode(s, validate=True)
	except ValueError:
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed" % field)


def b64url_nopad_decode(s):
	s = s + "=" * (-len(s) % 4)
	return base64.urlsafe_b64decode(s.encode("ascii"))


def parse_int64(value, field):
	"""int64 JSON value: decimal string or number."""
	if isinstance(value, bool):
		raise bad("Invalid value at '%s' (TYPE_INT64), %s" % (field, value))
	if isinstance(value, int):
		v = value
	elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
		v = int(value)
	else:
		raise bad("Invalid value at '%s' (TYPE_INT64), \"%s\""
			  % (field, str(value)[:30]))
	if v < -(1 << 63) or v >= (1 << 63):
		raise bad("Invalid value at '%s' (TYPE_INT64), \"%s\"" % (field, value))
	return v


def fmt_time(t):
	dt = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
	return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%06dZ" % dt.microsecond


def snake(name):
	return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def camel(name):
	return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def fields(body, allowed, where):
	"""Check a JSON object's fields (camelCase or snake_case names) and
	return it with camelCase names."""
	if not isinstance(body, dict):
		raise bad("Invalid JSON payload received. Expected an object at "
			  "'%s'." % where)
	out = {}
	for k, v in body.items():
		c = camel(k)
		if c not in allowed:
			raise bad("Invalid JSON payload received. Unknown name \"%s\" "
				  "at '%s': Cannot find field." % (k[:60], where))
		if c in out:
			raise bad("Invalid JSON payload received. Field '%s' given "
				  "twice." % snake(c))
		out[c] = v
	return out


SECRET_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,19}")
LABEL_KEY_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE_RE = re.compile(r"[a-z0-9_-]{0,63}")
ANNOTATION_KEY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}"
			       r"[A-Za-z0-9])?")
ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
LOCATION_RE = re.compile(r"[a-z][a-z0-9-]{1,62}")
KMS_KEY_RE = re.compile(r"projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/"
			r"cryptoKeys/[^/]+")

MAX_PAYLOAD = 65536
MAX_PAGE = 25000
MAX_LABELS = 64
MAX_ALIASES = 50
MAX_ANNOTATION_BYTES = 16384
MAX_BODY = 1 << 20

STD_QUERY = {"alt", "prettyPrint", "fields", "$.xgafv", "quotaUser", "key",
	     "callback", "upload_protocol", "uploadType", "access_token",
	     "oauth_token"}

SECRET_FIELDS = {"name", "replication", "createTime", "labels", "topics",
		 "expireTime", "ttl", "etag", "rotation", "versionAliases",
		 "annotations", "versionDestroyTtl", "customerManagedEncryption",
		 "tags"}
UNSUPPORTED_SECRET_FIELDS = ("topics", "expireTime", "ttl", "rotation",
			     "versionDestroyTtl", "customerManagedEncryption",
			     "tags")


def project_number_for(pid):
	"""A stable 12-digit number for a project id never configured."""
	h = int.from_bytes(hashlib.sha256(pid.encode()).digest()[:8], "big")
	return str(100000000000 + h % 900000000000)

# ---------------------------------------------------------------- state


class Version:
	def __init__(self, secret, num, data, client_crc, now, etag):
		self.secret = secret
		self.num = num
		self.data = data
		self.crc = crc32c(data)
		self.client_crc = client_crc
		self.state = "ENABLED"
		self.create_time = now
		self.destroy_time = None
		self.etag = etag

	@property
	def name(self):
		return "%s/versions/%d" % (self.secret.name, self.num)

	def replication_status(self):
		rep = self.secret.replication
		if "automatic" in rep:
			a = {}
			cmek = rep["automatic"].get("customerManagedEncryption")
			if cmek:
				a["customerManagedEncryption"] = {
					"kmsKeyVersionName": cmek["kmsKeyName"] +
					"/cryptoKeyVersions/1"}
			return {"automatic": a}
		replicas = []
		for r in rep["userManaged"]["replicas"]:
			d = {"location": r["location"]}
			cmek = r.get("customerManagedEncryption")
			if cmek:
				d["customerManagedEncryption"] = {
					"kmsKeyVersionName": cmek["kmsKeyName"] +
					"/cryptoKeyVersions/1"}
			replicas.append(d)
		return {"userManaged": {"replicas": replicas}}

	def to_json(self):
		d = {
			"name": self.name,
			"createTime": fmt_time(self.create_time),
			"state": self.state,
			"replicationStatus": self.replication_status(),
			"etag": self.etag,
		}
		if self.client_crc:
			d["clientSpecifiedPayloadChecksum"] = True
		if self.destroy_time is not None:
			d["destroyTime"] = fmt_time(self.destroy_time)
		return d


class Secret:
	def __init__(self, number, sid, now, etag):
		self.number = number
		self.sid = sid
		self.create_time = now
		self.etag = etag
		self.replication = {}
		self.labels = {}
		self.annotations = {}
		self.aliases = {}
		self.versions = {}     # number -> Version
		self.next_num = 1

	@property
	def name(self):
		return "projects/%s/secrets/%s" % (self.number, self.sid)

	def to_json(self):
		d = {
			"name": self.name,
			"replication": json.loads(json.dumps(self.replication)),
			"createTime": fmt_time(self.create_time),
			"etag": self.etag,
		}
		if self.labels:
			d["labels"] = dict(self.labels)
		if self.annotations:
			d["annotations"] = dict(self.annotations)
		if self.aliases:
			d["versionAliases"] = {k: str(v) for k, v in
					       sorted(self.aliases.items())}
		return d


class State:
	def __init__(self):
		self.lock = threading.RLock()
		self.cli_projects = {}
		self.cli_static = set()
		self.cli_require_auth = True
		self.cli_page_size = MAX_PAGE
		self.reset()

	def now(self):
		return time.time()

	def reset(self):
		with self.lock:
			self.secrets = {}           # (number, sid) -> Secret
			self.projects = dict(self.cli_projects)
			self.static_tokens = set(self.cli_static)
			self.require_auth = self.cli_require_auth
			self.accept_any_token = False
			self.default_page_size = self.cli_page_size
			self.last_etag = 0
			self.clear_faults()
			self.reset_counters()
			self.request_log = []

	def clear_faults(self):
		self.faults = {}
		self.fault_rng = random.Random(0)

	def reset_counters(self):
		self.calls = {}
		self.responses = {}
		self.faults_injected = {}

	def new_etag(self):
		v = max(self.last_etag + 1, int(time.time() * 1e6))
		self.last_etag = v
		return '"%x"' % v

# ---------------------------------------------------------------- filters


_FILTER_TOKEN = re.compile(
	r"\s*(?:(?P<paren>[()])|"
	r"(?P<term>-?[A-Za-z_][A-Za-z0-9_.]*\s*(?:<=|>=|!=|=|:|<|>)\s*"
	r"(?:\"[^\"]*\"|[^\s()\"]+))|"
	r"(?P<word>[A-Za-z]+))")
_TERM = re.compile(r"(-?)([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|!=|=|:|<|>)\s*"
		   r"(\"[^\"]*\"|[^\s()\"]+)")


def compile_filter(expr, kind):
	"""Compile a list filter into a predicate of a Secret or Version."""
	toks = []
	pos = 0
	expr = expr.strip()
	while pos < len(expr):
		m = _FILTER_TOKEN.match(expr, pos)
		if not m or m.end() == pos:
			raise bad("Invalid filter: unexpected text at position %d."
				  % pos)
		pos = m.end()
		if m.group("paren"):
			toks.append(m.group("paren"))
		elif m.group("term"):
			toks.append(("term", m.group("term")))
		else:
			w = m.group("word")
			if w not in ("AND", "OR", "NOT"):
				raise bad("Invalid filter: unexpected word '%s'."
					  % w[:30])
			toks.append(w)
		while pos < len(expr) and expr[pos].isspace():
			pos += 1
	i = [0]

	def peek():
		return toks[i[0]] if i[0] < len(toks) else None

	def take():
		t = peek()
		i[0] += 1
		return t

	def p_or():
		left = p_and()
		while peek() == "OR":
			take()
			right = p_and()
			left = (lambda a, b: lambda x: a(x) or b(x))(left, right)
		return left

	def p_and():
		left = p_unary()
		while peek() not in (None, "OR", ")"):
			if peek() == "AND":
				take()
			right = p_unary()
			left = (lambda a, b: lambda x: a(x) and b(x))(left, right)
		return left

	def p_unary():
		t = take()
		if t == "NOT":
			inner = p_unary()
			return lambda x: not inner(x)
		if t == "(":
			inner = p_or()
			if take() != ")":
				raise bad("Invalid filter: missing ')'.")
			return inner
		if isinstance(t, tuple):
			return term(t[1])
		raise bad("Invalid filter: expected a term.")

	def term(text):
		m = _TERM.fullmatch(text)
		neg, field, op, val = m.groups()
		if val.startswith('"'):
			val = val[1:-1]
		pred = term_pred(field, op, val)
		return (lambda x: not pred(x)) if neg else pred

	def str_pred(get, op, val):
		if op == ":":
			return lambda x: val.lower() in get(x).lower()
		if op == "=":
			return lambda x: get(x) == val
		if op == "!=":
			return lambda x: get(x) != val
		raise bad("Invalid filter: operator %s is not supported on this "
			  "field." % op)

	def term_pred(field, op, val):
		if field == "name":
			return str_pred(lambda x: x.name, op, val)
		if field in ("create_time", "createTime"):
			ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
			       ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
			       "=": lambda a, b: a.startswith(b),
			       ":": lambda a, b: a.startswith(b),
			       "!=": lambda a, b: not a.startswith(b)}
			f = ops[op]
			return lambda x: f(fmt_time(x.create_time), val)
		if kind == "secret" and field.startswith("labels."):
			key = field[len("labels."):]
			if op == ":" and val == "*":
				return lambda x: key in x.labels
			return str_pred(lambda x: x.labels.get(key, "\0"), op, val)
		if kind == "version" and field == "state":
			if val.upper() not in ("ENABLED", "DISABLED", "DESTROYED"):
				raise bad("Invalid filter: unknown state '%s'."
					  % val[:30])
			return str_pred(lambda x: x.state, "=" if op == ":" else op,
					val.upper())
		raise bad("Invalid filter: unknown field '%s'." % field[:60])

	if not toks:
		return lambda x: True
	pred = p_or()
	if peek() is not None:
		raise bad("Invalid filter: unexpected '%s'." % str(peek())[:30])
	return pred

# ---------------------------------------------------------------- logic


class Emulator:
	"""The API's logic; callers hold the state lock."""

	def __init__(self, state):
		self.st = state

	# ---------- lookups

	def _project(self, p):
		if not PROJECT_RE.fullmatch(p):
			raise bad("Invalid resource field value in the request: "
				  "project [%s]." % p[:64])
		if p.isdigit():
			return p
		num = self.st.projects.get(p)
		if num is None:
			num = self.st.projects[p] = project_number_for(p)
		return num

	def _secret(self, p, s):
		num = self._project(p)
		sec = self.st.secrets.get((num, s))
		if sec is None:
			raise not_found("Secret [projects/%s/secrets/%s] not found."
					% (num, s))
		return sec

	def _version(self, sec, v):
		if v == "latest":
			if not sec.versions:
				raise not_found("Secret [%s] not found or has no "
						"versions." % sec.name)
			return sec.versions[max(sec.versions)]
		if re.fullmatch(r"[1-9][0-9]{0,18}", v) and int(v) in sec.versions:
			return sec.versions[int(v)]
		if v in sec.aliases and sec.aliases[v] in sec.versions:
			return sec.versions[sec.aliases[v]]
		raise not_found("Secret Version [%s/versions/%s] not found."
				% (sec.name, v))

	# ---------- validation

	@staticmethod
	def _labels(labels):
		if not isinstance(labels, dict):
			raise bad("Invalid value at 'secret.labels'.")
		if len(labels) > MAX_LABELS:
			raise bad("A Secret may have at most %d labels." % MAX_LABELS)
		for k, v in labels.items():
			if not LABEL_KEY_RE.fullmatch(k) or not isinstance(v, str) \
			   or not LABEL_VALUE_RE.fullmatch(v):
				raise bad("Invalid label: '%s'." % k[:64])
		return dict(labels)

	@staticmethod
	def _annotations(ann):
		if not isinstance(ann, dict):
			raise bad("Invalid value at 'secret.annotations'.")
		total = 0
		for k, v in ann.items():
			if not ANNOTATION_KEY_RE.fullmatch(k) or \
			   not isinstance(v, str):
				raise bad("Invalid annotation key: '%s'." % k[:64])
			total += len(k.encode()) + len(v.encode())
		if total >= MAX_ANNOTATION_BYTES:
			raise bad("The total size of annotation keys and values must "
				  "be less than 16KiB.")
		return dict(ann)

	def _aliases(self, sec, aliases):
		if not isinstance(aliases, dict):
			raise bad("Invalid value at 'secret.version_aliases'.")
		if len(aliases) > MAX_ALIASES:
			raise bad("A Secret may have at most %d version aliases."
				  % MAX_ALIASES)
		out = {}
		for k, v in aliases.items():
			if not ALIAS_RE.fullmatch(k) or k in ("latest", "NEW"):
				raise bad("Invalid version alias: '%s'." % k[:64])
			n = parse_int64(v, "secret.version_aliases")
			ver = sec.versions.get(n) if sec else None
			if ver is None or ver.state == "DESTROYED":
				raise bad("Version alias '%s' must point to an existing, "
					  "not destroyed, version." % k)
			out[k] = n
		return out

	@staticmethod
	def _cmek(obj, where, location):
		c = fields(obj, {"kmsKeyName"}, where)
		key = c.get("kmsKeyName")
		if not isinstance(key, str) or not key:
			raise bad("Field [%s.kms_key_name] is required." % where)
		m = KMS_KEY_RE.fullmatch(key)
		if not m:
			raise bad("Invalid value at '%s.kms_key_name': not a Cloud "
				  "KMS CryptoKey name." % where)
		if m.group(1) != location:
			raise bad("The Cloud KMS key %s must be in location %s."
				  % (key, location))
		return {"kmsKeyName": key}

	def _replication(self, rep):
		rep = fields(rep, {"automatic", "userManaged"}, "secret.replication")
		if ("automatic" in rep) == ("userManaged" in rep):
			raise bad("Field [secret.replication] must set exactly one of "
				  "automatic or user_managed.")
		if "automatic" in rep:
			a = fields(rep["automatic"] or {}, {"customerManagedEncryption"},
				   "secret.replication.automatic")
			out = {}
			if a.get("customerManagedEncryption"):
				out["customerManagedEncryption"] = self._cmek(
					a["customerManagedEncryption"],
					"secret.replication.automatic."
					"customer_managed_encryption", "global")
			return {"automatic": out}
		u = fields(rep["userManaged"] or {}, {"replicas"},
			   "secret.replication.user_managed")
		replicas = u.get("replicas")
		if not isinstance(replicas, list) or not replicas:
			raise bad("Field [secret.replication.user_managed.replicas] "
				  "is required.")
		out, seen = [], set()
		for r in replicas:
			r = fields(r, {"location", "customerManagedEncryption"},
				   "secret.replication.user_managed.replicas")
			loc = r.get("location")
			if not isinstance(loc, str) or not LOCATION_RE.fullmatch(loc):
				raise bad("Field [secret.replication.user_managed."
					  "replicas.location] is invalid.")
			if loc in seen:
				raise bad("Duplicate replica location %s." % loc)
			seen.add(loc)
			d = {"location": loc}
			if r.get("customerManagedEncryption"):
				d["customerManagedEncryption"] = self._cmek(
					r["customerManagedEncryption"],
					"secret.replication.user_managed.replicas."
					"customer_managed_encryption", loc)
			out.append(d)
		return {"userManaged": {"replicas": out}}

	@staticmethod
	def _unsupported(body):
		for f in UNSUPPORTED_SECRET_FIELDS:
			if body.get(f) not in (None, "", {}, []):
				raise bad("The emulator does not support Secret field "
					  "'%s'." % snake(f))

	@staticmethod
	def _etag_check(given, current, what):
		if given in (None, ""):
			return
		if not isinstance(given, str) or given != current:
			raise precondition("The etag provided in the request does not "
					   "match the current etag of %s." % what)

	# ---------- pagination

	def _page(self, items, sortkey, parent, q):
		size = q.get("pageSize")
		if size in (None, ""):
			size = 0
		elif not re.fullmatch(r"-?[0-9]{1,10}", size):
			raise bad("Invalid value at 'page_size' (TYPE_INT32), \"%s\""
				  % size[:20])
		size = int(size)
		if size < 0:
			raise bad("page_size must not be negative.")
		if size == 0:
			size = self.st.default_page_size
		size = min(size, MAX_PAGE)
		filt = q.get("filter") or ""
		tok = q.get("pageToken")
		if tok:
			try:
				d = json.loads(b64url_nopad_decode(tok))
				if d["p"] != parent or d["f"] != filt:
					raise ValueError()
				last = d["k"]
				if items and type(last) is not type(sortkey(items[0])):
					raise ValueError()
			except (ValueError, KeyError, TypeError, UnicodeError):
				raise bad("Invalid page token.")
			items = [x for x in items if sortkey(x) > last]
		page = items[:size]
		nxt = None
		if len(items) > size:
			raw = json.dumps({"p": parent, "f": filt,
					  "k": sortkey(page[-1])},
					 separators=(",", ":")).encode()
			nxt = base64.urlsafe_b64encode(raw).decode().rstrip("=")
		return page, nxt

	def _list(self, field, items, sortkey, parent, q, kind):
		pred = compile_filter(q.get("filter") or "", kind)
		items = sorted((x for x in items if pred(x)), key=sortkey)
		page, nxt = self._page(items, sortkey, parent, q)
		d = {}
		if page:
			d[field] = [x.to_json() for x in page]
		if nxt:
			d["nextPageToken"] = nxt
		if items:
			d["totalSize"] = len(items)
		return d

	# ---------- secrets

	def secrets_create(self, p, q, body):
		num = self._project(p)
		sid = q.get("secretId")
		if not sid:
			raise bad("Field [secret_id] is required.")
		if not SECRET_ID_RE.fullmatch(sid):
			raise bad("Invalid secret_id: it must be 1 to 255 characters "
				  "from [a-zA-Z0-9_-].")
		body = fields(body, SECRET_FIELDS, "secret")
		self._unsupported(body)
		if not body.get("replication"):
			raise bad("Field [secret.replication] is required.")
		rep = self._replication(body["replication"])
		labels = self._labels(body.get("labels") or {})
		ann = self._annotations(body.get("annotations") or {})
		if body.get("versionAliases"):
			self._aliases(None, body["versionAliases"])
		if (num, sid) in self.st.secrets:
			raise ApiError(409, "ALREADY_EXISTS",
				       "Secret [projects/%s/secrets/%s] already "
				       "exists." % (num, sid))
		sec = Secret(num, sid, self.st.now(), self.st.new_etag())
		sec.replication, sec.labels, sec.annotations = rep, labels, ann
		self.st.secrets[(num, sid)] = sec
		return sec.to_json()

	def secrets_get(self, p, s, q, body):
		return self._secret(p, s).to_json()

	def secrets_list(self, p, q, body):
		num = self._project(p)
		items = [x for (n, _), x in self.st.secrets.items() if n == num]
		return self._list("secrets", items, lambda x: x.sid,
				  "projects/%s" % num, q, "secret")

	def secrets_patch(self, p, s, q, body):
		sec = self._secret(p, s)
		body = fields(body, SECRET_FIELDS, "secret")
		mask = q.get("updateMask")
		if not mask:
			raise bad("Field [update_mask] is required.")
		self._etag_check(body.get("etag"), sec.etag,
				 "Secret [%s]" % sec.name)
		labels, ann, aliases = sec.labels, sec.annotations, sec.aliases
		for path in (x.strip() for x in mask.split(",")):
			c = camel(path)
			if c == "labels":
				labels = self._labels(body.get("labels") or {})
			elif c == "annotations":
				ann = self._annotations(body.get("annotations") or {})
			elif c == "versionAliases":
				aliases = self._aliases(sec, body.get("versionAliases")
							or {})
			elif c == "replication":
				raise bad("Field [replication] is immutable.")
			elif c in UNSUPPORTED_SECRET_FIELDS:
				raise bad("The emulator does not support Secret field "
					  "'%s'." % snake(c))
			else:
				raise bad("Invalid update_mask path '%s'." % path[:60])
		sec.labels, sec.annotations, sec.aliases = labels, ann, aliases
		sec.etag = self.st.new_etag()
		return sec.to_json()

	def secrets_delete(self, p, s, q, body):
		sec = self._secret(p, s)
		self._etag_check(q.get("etag"), sec.etag, "Secret [%s]" % sec.name)
		del self.st.secrets[(sec.number, sec.sid)]
		return {}

	def add_version(self, p, s, q, body):
		sec = self._secret(p, s)
		body = fields(body, {"parent", "payload"}, "")
		payload = fields(body.get("payload") or {}, {"data", "dataCrc32c"},
				 "payload")
		data = b64decode_any(payload.get("data", ""), "payload.data")
		if not data:
			raise bad("Field [payload] is required.")
		if len(data) > MAX_PAYLOAD:
			raise bad("Secret payload data must be no larger than 64KiB "
				  "(65536 bytes); got %d bytes." % len(data))
		client_crc = "dataCrc32c" in payload
		if client_crc:
			want = parse_int64(payload["dataCrc32c"], "payload.data_crc32c")
			if want != crc32c(data):
				raise bad("Checksum mismatch: payload.data_crc32c does "
					  "not match the CRC32C of payload.data.")
		ver = Version(sec, sec.next_num, data, client_crc, self.st.now(),
			      self.st.new_etag())
		sec.versions[ver.num] = ver
		sec.next_num += 1
		return ver.to_json()

	# ---------- versions

	def versions_list(self, p, s, q, body):
		sec = self._secret(p, s)
		return self._list("versions", list(sec.versions.values()),
				  lambda x: -x.num, sec.name, q, "version")

	def versions_get(self, p, s, v, q, body):
		return self._version(self._secret(p, s), v).to_json()

	def versions_access(self, p, s, v, q, body):
		sec = self.st.secrets.get((self._project(p), s))
		if sec is None:
			num = self._project(p)
			if v == "latest":
				raise not_found("Secret [projects/%s/secrets/%s] not "
						"found or has no versions." % (num, s))
			raise not_found("Secret Version [projects/%s/secrets/%s/"
					"versions/%s] not found." % (num, s, v))
		ver = self._version(sec, v)
		if ver.state != "ENABLED":
			raise precondition("Secret Version [%s] is in %s state."
					   % (ver.name, ver.state))
		return {"name": ver.name,
			"payload": {"data": base64.b64encode(ver.data).decode(),
				    "dataCrc32c": str(ver.crc)}}

	def _state_change(self, p, s, v, body, new):
		sec = self._secret(p, s)
		ver = self._version(sec, v)
		body = fields(body, {"etag"}, "")
		self._etag_check(body.get("etag"), ver.etag,
				 "Secret Version [%s]" % ver.name)
		if ver.state == "DESTROYED":
			raise precondition("Secret Version [%s] is in DESTROYED "
					   "state." % ver.name)
		ver.state = new
		if new == "DESTROYED":
			ver.data = None
			ver.destroy_time = self.st.now()
			for a in [a for a, n in sec.aliases.items() if n == ver.num]:
				del sec.aliases[a]
		ver.etag = self.st.new_etag()
		return ver.to_json()

	def versions_enable(self, p, s, v, q, body):
		return self._state_change(p, s, v, body, "ENABLED")

	def versions_disable(self, p, s, v, q, body):
		return self._state_change(p, s, v, body, "DISABLED")

	def versions_destroy(self, p, s, v, q, body):
		return self._state_change(p, s, v, body, "DESTROYED")

	# ---------- admin view

	def dump(self):
		out = []
		for (num, sid), sec in sorted(self.st.secrets.items()):
			out.append({"name": sec.name, "etag": sec.etag,
				    "labels": dict(sec.labels),
				    "versions": [{"version": v.num, "state": v.state,
						  "crc32c": v.crc,
						  "size": len(v.data or b"")}
						 for _, v in sorted(
							 sec.versions.items())]})
		return out


_P = r"projects/([^/:]+)"
_S = _P + r"/secrets/([^/:]+)"
_V = _S + r"/versions/([^/:]+)"
_PAGE_Q = {"pageSize", "pageToken", "filter"}
ROUTES = [
	("POST", _P + "/secrets", "secrets_create", "secrets.create",
	 {"secretId"}),
	("GET", _P + "/secrets", "secrets_list", "secrets.list", _PAGE_Q),
	("GET", _S, "secrets_get", "secrets.get", set()),
	("PATCH", _S, "secrets_patch", "secrets.patch", {"updateMask"}),
	("DELETE", _S, "secrets_delete", "secrets.delete", {"etag"}),
	("POST", _S + ":addVersion", "add_version", "secrets.addVersion", set()),
	("GET", _S + "/versions", "versions_list", "versions.list", _PAGE_Q),
	("GET", _V, "versions_get", "versions.get", set()),
	("GET", _V + ":access", "versions_access", "versions.access", set()),
	("POST", _V + ":enable", "versions_enable", "versions.enable", set()),
	("POST", _V + ":disable", "versions_disable", "versions.disable",
	 set()),
	("POST", _V + ":destroy", "versions_destroy", "versions.destroy",
	 set()),
]
ROUTES = [(m, re.compile(rx), h, name, qs) for m, rx, h, name, qs in ROUTES]
METHODS = sorted(set(r[3] for r in ROUTES))
REGIONAL_RE = re.compile(r"projects/[^/]+/locations(/.*)?")

# ---------------------------------------------------------------- HTTP


class Dropped(Exception):
	"""The fault config says: give this request no answer."""


class Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "keyfs-gsm-emulator/1"
	disable_nagle_algorithm = True
	emu = None   # set on the subclass

	def log_message(self, fmt, *args):  # quiet; never log bodies or tokens
		pass

	# ---------- plumbing

	def _read_body(self):
		if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
			out = b""
			while True:
				line = self.rfile.readline(1024).strip()
				n = int(line.split(b";")[0], 16)
				if n == 0:
					while self.rfile.readline(1024).strip():
						pass
					return out
				out += self.rfile.read(n)
				self.rfile.readline(8)
				if len(out) > MAX_BODY:
					raise bad("Request body too large.")
		n = int(self.headers.get("Content-Length") or 0)
		if n > MAX_BODY:
			raise bad("Request body too large.")
		return self.rfile.read(n) if n else b""

	def _send(self, code, body, extra=None):
		if isinstance(body, (dict, list)):
			body = (json.dumps(body, indent=2) + "\n").encode()
		self.send_response(code)
		self.send_header("Content-Type", "application/json; charset=UTF-8")
		self.send_header("Content-Length", str(len(body)))
		for k, v in (extra or {}).items():
			self.send_header(k, v)
		self.end_headers()
		self.wfile.write(body)
		self._status = code

	def _api_error(self, e):
		extra = None
		if e.code == 401:
			extra = {"WWW-Authenticate": 'Bearer realm='
				 '"https://accounts.google.com/"'}
		self._send(e.code, {"error": {"code": e.code, "message": e.message,
					      "status": e.status}}, extra)

	def _drop(self):
		"""Close the connection with no answer at all."""
		self.close_connection = True
		self._status = 0
		try:
			self.wfile.flush()
			self.connection.shutdown(socket.SHUT_RDWR)
		except OSError:
			pass

	def _log(self, method):
		st = self.emu.st
		hdrs = {}
		for k, v in self.headers.items():
			if k.lower() in ("authorization", "cookie"):
				v = v.split(" ", 1)[0] + " <redacted>"
			hdrs[k] = v
		with st.lock:
			st.calls[method] = st.calls.get(method, 0) + 1
			st.request_log.append({
				"method": method, "http_method": self.command,
				"path": self._path, "query": self._query,
				"status": None, "headers": hdrs})
			del st.request_log[:-500]
			return st.request_log[-1]

	def _finish_log(self, entry, method):
		st = self.emu.st
		code = getattr(self, "_status", 0)
		key = "dropped" if code == 0 else str(code)
		with st.lock:
			entry["status"] = code
			r = st.responses.setdefault(method, {})
			r[key] = r.get(key, 0) + 1

	def _count_fault(self, method):
		st = self.emu.st
		st.faults_injected[method] = st.faults_injected.get(method, 0) + 1

	def _fault(self, method):
		"""Latency, error and drop faults decided before the call.

		Returns (ApiError or None, drop mode or None)."""
		st = self.emu.st
		with st.lock:
			f = st.faults
			lat = f.get("latency_ms", 0)
			lm = f.get("latency_methods")
			err = None
			em = f.get("error_methods")
			if f.get("error_status") is not None and \
			   (method in em if em else method in METHODS):
				fail = False
				if f.get("error_count", 0) > 0:
					f["error_count"] -= 1
					fail = True
				elif f.get("error_rate", 0) > 0 and \
				     st.fault_rng.random() < f["error_rate"]:
					fail = True
				if fail:
					self._count_fault(method)
					s = f["error_status"]
					if isinstance(s, int):
						code = s
						status = STATUS_BY_CODE.get(s, "UNKNOWN")
					else:
						code, status = CODE_BY_STATUS.get(s, 500), s
					err = ApiError(code, status, f.get(
						"error_message") or "The service is "
						"currently unavailable (emulated fault).")
			drop = None
			dm = f.get("drop_methods")
			if err is None and f.get("drop_count", 0) > 0 and \
			   (method in dm if dm else method in METHODS):
				f["drop_count"] -= 1
				self._count_fault(method)
				drop = "before" if f.get("drop_before") else "after"
		if lat and (not lm or method in lm):
			time.sleep(lat / 1000.0)
		return err, drop

	def _corrupt(self, method, res):
		st = self.emu.st
		with st.lock:
			f = st.faults
			cm = f.get("corrupt_methods") or ["versions.access",
							  "secrets.addVersion"]
			if method not in cm or not (f.get("corrupt_crc") or
						    f.get("corrupt_data") or
						    f.get("unverified")):
				return res
			if "corrupt_count" in f:
				if f["corrupt_count"] <= 0:
					return res
				f["corrupt_count"] -= 1
			self._count_fault(method)
			crc, data, unv = (f.get("corrupt_crc"), f.get("corrupt_data"),
					  f.get("unverified"))
		pl = res.get("payload")
		if pl and crc:
			pl["dataCrc32c"] = str((int(pl["dataCrc32c"]) ^ 0x5A5A)
					       & 0xFFFFFFFF)
		if pl and data:
			raw = bytearray(base64.b64decode(pl["data"]))
			raw[len(raw) // 2] ^= 0x01
			pl["data"] = base64.b64encode(bytes(raw)).decode()
		if unv:
			res.pop("clientSpecifiedPayloadChecksum", None)
		return res

	def _auth(self):
		st = self.emu.st
		h = self.headers.get("Authorization")
		with st.lock:
			need, any_tok = st.require_auth, st.accept_any_token
			tokens = st.static_tokens
			if not need:
				return
			if not h:
				raise ApiError(401, "UNAUTHENTICATED",
					       "Request is missing required "
					       "authentication credential. Expected "
					       "OAuth 2 access token, login cookie or "
					       "other valid authentication credential.")
			scheme, _, tok = h.partition(" ")
			tok = tok.strip()
			if scheme.lower() == "bearer" and tok and \
			   (any_tok or tok in tokens):
				return
		raise ApiError(401, "UNAUTHENTICATED",
			       "Request had invalid authentication credentials. "
			       "Expected OAuth 2 access token, login cookie or "
			       "other valid authentication credential.")

	def do_GET(self):
		self._dispatch()

	def do_POST(self):
		self._dispatch()

	def do_PATCH(self):
		self._dispatch()

	def do_DELETE(self):
		self._dispatch()

	def do_PUT(self):
		self._dispatch()

	def _dispatch(self):
		u = urllib.parse.urlsplit(self.path)
		self._path, self._query = u.path, u.query
		try:
			raw = self._read_body()
		except (ApiError, ValueError):
			self.close_connection = True
			self._api_error(bad("Invalid request body."))
			return
		if u.path.startswith("/_emu/"):
			return self._admin(u.path, raw)
		if u.path.startswith("/v1/"):
			return self._api(u.path[4:], u.query, raw)
		entry = self._log("unknown")
		self._api_error(not_found("Method not found."))
		self._finish_log(entry, "unknown")

	def _route(self, path):
		for m, rx, h, name, qs in ROUTES:
			mt = rx.fullmatch(path)
			if mt and m == self.command:
				return mt, h, name, qs
		return None

	def _query_dict(self, query, allowed):
		q = {}
		for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
			if k not in allowed and k not in STD_QUERY:
				raise bad("Invalid JSON payload received. Unknown name "
					  "\"%s\": Cannot bind query parameter." % k[:40])
			if k == "alt" and v not in ("json", ""):
				raise bad("Invalid value for alt: %s" % v[:20])
			if k in q:
				raise bad("Query parameter '%s' given twice." % k[:40])
			q[k] = v
		return q

	def _api(self, path, query, raw):
		route = self._route(path)
		method = route[2] if route else "unknown"
		entry = self._log(method)
		try:
			if route is None:
				if REGIONAL_RE.fullmatch(path):
					raise ApiError(501, "UNIMPLEMENTED",
						       "The emulator does not implement "
						       "locations or regional secrets.")
				raise not_found("Method not found.")
			err, drop = self._fault(method)
			if err:
				raise err
			self._auth()
			mt, h, mname, qs = route
			q = self._query_dict(query, qs)
			body = {}
			if raw.strip():
				try:
					body = json.loads(raw)
				except ValueError:
					raise bad("Invalid JSON payload received. "
						  "Unexpected token.")
			if drop == "before":
				raise Dropped()
			args = [urllib.parse.unquote(x) for x in mt.groups()]
			st = self.emu.st
			try:
				with st.lock:
					res = getattr(self.emu, h)(*args, q, body)
			except ApiError:
				if drop == "after":   # the answer is lost all the same
					raise Dropped()
				raise
			if drop == "after":
				raise Dropped()
			self._send(200, self._corrupt(mname, res))
		except Dropped:
			with self.emu.st.lock:
				status = self.emu.st.faults.get("drop_status")
			if status is None:
				self._drop()
			else:
				code = status if isinstance(status, int) else \
					CODE_BY_STATUS.get(status, 500)
				self._api_error(ApiError(
					code, STATUS_BY_CODE.get(code, status)
					if isinstance(status, int) else status,
					"The service is currently unavailable "
					"(emulated fault)."))
		except ApiError as e:
			self._api_error(e)
		except Exception as e:  # a bug here: answer, never log the body
			self._api_error(ApiError(500, "INTERNAL", "Internal emulator "
						 "error: %s." % type(e).__name__))
		finally:
			self._finish_log(entry, method)

	# ---------- admin

	def _admin(self, path, raw):
		st = self.emu.st
		try:
			body = json.loads(raw) if raw.strip() else {}
		except ValueError:
			return self._send(400, {"error": "invalid JSON"})
		try:
			with st.lock:
				res = self._admin_inner((self.command, path.rstrip("/")),
							body)
		except (ValueError, KeyError, TypeError) as e:
			return self._send(400, {"error": "%s: %s" % (
				type(e).__name__, str(e)[:200])})
		if res is None:
			return self._send(404, {"error": "unknown admin call"})
		return self._send(200, res)

	FAULT_KEYS = {"error_status", "error_count", "error_rate",
		      "error_message", "error_methods", "seed", "drop_count",
		      "drop_before", "drop_status", "drop_methods",
		      "corrupt_crc", "corrupt_data", "unverified",
		      "corrupt_count", "corrupt_methods", "latency_ms",
		      "latency_methods"}

	def _set_faults(self, body):
		st = self.emu.st
		for k in body:
			if k not in self.FAULT_KEYS:
				raise ValueError("unknown fault field %s" % k)
		for k in ("error_methods", "drop_methods", "corrupt_methods",
			  "latency_methods"):
			for m in body.get(k) or []:
				if m not in METHODS:
					raise ValueError("unknown method %s" % m)
		for k in ("error_status", "drop_status"):
			s = body.get(k)
			if s is not None and not (
				(isinstance(s, int) and 400 <= s <= 599) or
				s in CODE_BY_STATUS):
				raise ValueError("bad %s" % k)
		f = dict(body)
		if (f.get("error_count") or f.get("error_rate")) and \
		   f.get("error_status") is None:
			f["error_status"] = 503
		for k in ("error_count", "drop_count", "latency_ms"):
			f[k] = int(f.get(k, 0))
		if "corrupt_count" in f:
			f["corrupt_count"] = int(f["corrupt_count"])
		f["error_rate"] = float(f.get("error_rate", 0))
		st.faults = f
		st.fault_rng = random.Random(int(body.get("seed", 0)))
		return dict(f)

	def _admin_inner(self, cmd, body):
		st = self.emu.st
		if cmd == ("POST", "/_emu/reset"):
			st.reset()
			return {"ok": True}
		if cmd == ("GET", "/_emu/faults"):
			return dict(st.faults)
		if cmd == ("DELETE", "/_emu/faults"):
			st.clear_faults()
			return {"ok": True}
		if cmd == ("POST", "/_emu/faults"):
			return self._set_faults(body)
		if cmd == ("GET", "/_emu/counters"):
			return {"calls": dict(st.calls),
				"responses": {k: dict(v) for k, v in
					      st.responses.items()},
				"faults_injected": dict(st.faults_injected),
				"total": sum(st.calls.values())}
		if cmd == ("POST", "/_emu/counters/reset"):
			st.reset_counters()
			return {"ok": True}
		if cmd == ("GET", "/_emu/requests"):
			return list(st.request_log)
		if cmd == ("POST", "/_emu/static-tokens"):
			t = body["token"]
			if not isinstance(t, str) or not t:
				raise ValueError("token must be a non-empty string")
			st.static_tokens.add(t)
			return {"ok": True}
		if cmd == ("GET", "/_emu/projects"):
			return dict(st.projects)
		if cmd == ("POST", "/_emu/projects"):
			pid, num = body["id"], str(body["number"])
			if not PROJECT_RE.fullmatch(pid) or pid.isdigit() or \
			   not re.fullmatch(r"[1-9][0-9]{0,18}", num):
				raise ValueError("bad project id or number")
			st.projects[pid] = num
			return dict(st.projects)
		if cmd == ("GET", "/_emu/config"):
			return self._config_view()
		if cmd == ("POST", "/_emu/config"):
			for k, v in body.items():
				if k == "require_auth":
					st.require_auth = bool(v)
				elif k == "accept_any_token":
					st.accept_any_token = bool(v)
				elif k == "default_page_size":
					if not 1 <= int(v) <= MAX_PAGE:
						raise ValueError("page size out of range")
					st.default_page_size = int(v)
				else:
					raise ValueError("unknown config %s" % k)
			return self._config_view()
		if cmd == ("GET", "/_emu/secrets"):
			return self.emu.dump()
		return None

	def _config_view(self):
		st = self.emu.st
		return {"require_auth": st.require_auth,
			"accept_any_token": st.accept_any_token,
			"default_page_size": st.default_page_size}


class Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True

	def handle_error(self, request, client_address):
		# A client that went away mid-answer; nothing to print (stderr
		# may be a pipe nobody reads).
		pass


def make_server(host="127.0.0.1", port=0, state=None):
	"""Build (not start) an emulator server; returns (server, state)."""
	state = state or State()
	handler = type("BoundHandler", (Handler,), {"emu": Emulator(state)})
	return Server((host, port), handler), state

# ------------------------------------------------- subprocess launcher


class EmulatorProcess:
	"""Run the emulator as a subprocess.

	    with EmulatorProcess(["--static-token", "t"]) as emu:
	        emu.url          # "http://127.0.0.1:PORT"
	        emu.admin("POST", "/_emu/reset", {})
	"""

	def __init__(self, args=(), python=None, timeout=20):
		import selectors
		import subprocess
		self.proc = subprocess.Popen(
			[python or sys.executable, os.path.abspath(__file__),
			 "--port", "0"] + list(args), stdout=subprocess.PIPE,
			stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
		sel = selectors.DefaultSelector()
		sel.register(self.proc.stdout, selectors.EVENT_READ)
		if not sel.select(timeout):
			self.stop()
			raise RuntimeError("emulator did not start in time")
		line = self.proc.stdout.readline().decode().strip()
		if not line.startswith("PORT "):
			err = self.proc.stderr.read().decode()[-2000:] \
				if self.proc.poll() is not None else ""
			self.stop()
			raise RuntimeError("emulator failed to start: %r %s"
					   % (line, err))
		self.port = int(line.split()[1])
		self.url = "http://127.0.0.1:%d" % self.port

	def admin(self, method, path, body=None, timeout=10):
		import urllib.request
		data = None if body is None else json.dumps(body).encode()
		req = urllib.request.Request(self.url + path, data=data,
					     method=method)
		if data is not None:
			req.add_header("Content-Type", "application/json")
		with urllib.request.urlopen(req, timeout=timeout) as r:
			return json.loads(r.read() or b"null")

	def stop(self):
		if self.proc.poll() is None:
			self.proc.terminate()
			try:
				self.proc.wait(5)
			except Exception:
				self.proc.kill()
				self.proc.wait(5)
		for f in (self.proc.stdout, self.proc.stderr):
			if f:
				f.close()

	def __enter__(self):
		return self

	def __exit__(self, *a):
		self.stop()

# ---------------------------------------------------------------- main


def main(argv=None):
	ap = argparse.ArgumentParser(description="Secret Manager v1 emulator")
	ap.add_argument("port_pos", nargs="?", type=int, default=None,
			metavar="PORT")
	ap.add_argument("--port", type=int, default=0)
	ap.add_argument("--host", default="127.0.0.1")
	ap.add_argument("--project", action="append", default=[])
	ap.add_argument("--static-token", action="append", default=[])
	ap.add_argument("--static-token-file", action="append", default=[])
	ap.add_argument("--no-auth", action="store_true")
	ap.add_argument("--default-page-size", type=int, default=MAX_PAGE)
	a = ap.parse_args(argv)
	st = State()
	for spec in a.project:
		pid, _, num = spec.partition("=")
		if not PROJECT_RE.fullmatch(pid) or pid.isdigit() or \
		   (num and not re.fullmatch(r"[1-9][0-9]{0,18}", num)):
			ap.error("bad --project %s" % spec)
		st.cli_projects[pid] = num or project_number_for(pid)
	st.cli_static.update(t for t in a.static_token if t)
	for f in a.static_token_file:
		with open(f) as fh:
			t = fh.read().strip()
		if t:
			st.cli_static.add(t)
	st.cli_require_auth = not a.no_auth
	if not 1 <= a.default_page_size <= MAX_PAGE:
		ap.error("--default-page-size must be 1..%d" % MAX_PAGE)
	st.cli_page_size = a.default_page_size
	st.reset()
	port = a.port_pos if a.port_pos is not None else a.port
	srv, _ = make_server(a.host, port, st)

	def stop(signum, frame):
		threading.Thread(target=srv.shutdown, daemon=True).start()
	signal.signal(signal.SIGTERM, stop)
	signal.signal(signal.SIGINT, stop)
	sys.stdout.write("PORT %d\n" % srv.server_address[1])
	sys.stdout.flush()
	try:
		srv.serve_forever(poll_interval=0.2)
	finally:
		srv.server_close()
	return 0


if __name__ == "__main__":
	sys.exit(main())
