#!/usr/bin/env python3
"""Cloud KMS v1 REST emulator with Google OAuth token and GCE metadata endpoints.

Test server for keyfs (tests only; in-memory; loopback).  Python stdlib plus
the `cryptography` package (AES-256-GCM, RS256 verification).  The module can
be imported without `cryptography` (to use EmulatorProcess, which starts the
server in a subprocess of an interpreter that has it).

Command line
------------
    python3 kms_emulator.py [PORT] [--port N] [--host 127.0.0.1]
        [--project-id ID]            project answered by the metadata server
                                     (default keyfs-emu)
        [--service-account-key FILE] (repeatable) service-account JSON key
                                     file; its public key is registered for
                                     the JWT grant / self-signed JWTs
        [--authorized-user FILE]     (repeatable) authorized_user JSON file
                                     (client_id, client_secret, refresh_token)
        [--static-token TOKEN]       (repeatable) always-valid bearer token
        [--static-token-file FILE]   (repeatable) same, token read from FILE
                                     (trailing whitespace stripped)
        [--token-lifetime SECONDS]   lifetime of issued tokens (default 3599)
        [--no-auth]                  accept KMS calls without/with any token
    PORT 0 (default) picks an ephemeral port.  The first stdout line is
    `PORT <n>` (flushed).  SIGTERM/SIGINT stop the server.

Endpoints served on the one port
--------------------------------
    /v1/...                                       Cloud KMS v1 (Bearer token)
    POST /token  (also /oauth2/v4/token)          OAuth2 token endpoint:
        grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
            RS256 JWT from a registered service account: iss=client_email,
            aud = http://<Host>/token | https://oauth2.googleapis.com/token |
            https://www.googleapis.com/oauth2/v4/token, iat/exp sane
            (exp > now, iat <= now + 300 s, exp - iat <= 3600), scope present.
        grant_type=refresh_token&client_id&client_secret&refresh_token[&scope]
        -> 200 {"access_token","expires_in","token_type":"Bearer"[,"scope"]}
        errors -> 400 {"error":"invalid_grant"|"invalid_scope"|
                  "unsupported_grant_type"|"invalid_request",
                  "error_description":...}; 401 {"error":"invalid_client"}
    GET /computeMetadata/v1/instance/service-accounts/default/token[?scopes=]
    GET /computeMetadata/v1/instance/service-accounts/default/email
    GET /computeMetadata/v1/instance/service-accounts/default/?recursive=true
    GET /computeMetadata/v1/project/project-id
    GET /   (detection ping)
        all require `Metadata-Flavor: Google` (403 otherwise; also 403 when
        X-Forwarded-For is present) and answer with `Metadata-Flavor: Google`.
    Bearer tokens accepted on /v1: tokens issued above (until they expire),
    static tokens, and self-signed JWTs (AIP-4111) of a registered service
    account (iss == sub, aud https://cloudkms.googleapis.com/ or a scope).
    Issued tokens need scope cloud-platform or cloudkms (else 403
    PERMISSION_DENIED "insufficient authentication scopes").

Admin / test API (no auth; JSON in and out)
-------------------------------------------
    POST /_emu/reset            forget keyrings/keys, issued tokens, faults,
                                counters, request log, clock offset and admin
                                registrations; command-line credentials stay.
    GET  /_emu/faults           current fault config (with remaining count)
    POST /_emu/faults           replace the fault config; all optional:
        {"error_status": 503 | "UNAVAILABLE" | 429 | "RESOURCE_EXHAUSTED" ...,
         "error_count": N,       fail the next N matching calls
         "error_rate": 0.0-1.0,  then fail each matching call with this
                                 probability (seeded by "seed", default 0)
         "error_message": "...",
         "error_methods": [...], methods the error fault applies to
                                 (default: every /v1 KMS method)
         "latency_ms": N, "latency_methods": [...] (default: all methods),
         "corrupt_crc": true,    responses carry wrong ciphertextCrc32c
                                 (encrypt) / plaintextCrc32c (decrypt)
         "unverified": true,     encrypt responses omit the verified* flags
         "corrupt_methods": [...] (default encrypt+decrypt)}
    DELETE /_emu/faults         clear all faults
    GET  /_emu/counters         {"calls": {method: n}, "responses":
                                 {method: {"200": n, ...}}, "faults_injected":
                                 {method: n}, "total": n}
    POST /_emu/counters/reset
    GET  /_emu/requests         last 500 requests: [{"method","http_method",
                                 "path","query","status","headers"}]
                                 (Authorization value redacted)
    POST /_emu/service-accounts {"client_email","private_key_id",
                                 "public_key_pem"} or a whole service-account
                                 key JSON (public key derived from private_key)
                                 or {"key_file": PATH}
    POST /_emu/authorized-users {"client_id","client_secret","refresh_token"
                                 [,"scopes": [...]]}
    POST /_emu/static-tokens    {"token": T}
    POST /_emu/expire-tokens    every issued (non-static) token becomes expired
    POST /_emu/config           any of {"token_lifetime": s, "require_auth":
                                 bool, "default_page_size": n (default 1000),
                                 "not_found_as_permission_denied": bool,
                                 "project_id": str, "sa_email": str,
                                 "issue_token": T (every token issued from
                                 now on is T: a test can look for it)}
    GET  /_emu/config
    POST /_emu/clock            {"offset_seconds": n} shifts the emulator's
                                 clock (token expiry, auto-rotation, JWT checks)

Method names (counters, faults): locations.list, locations.get,
keyRings.{create,get,list}, cryptoKeys.{create,get,list,patch,
updatePrimaryVersion,encrypt,decrypt}, cryptoKeyVersions.{create,get,list,
patch,destroy,restore}, oauth.token, metadata.token, metadata.email,
metadata.project_id, metadata.info, metadata.ping, unknown.

KMS behaviour: Cloud KMS v1 REST as gcloud speaks it, checked against gcloud
by tests/integration/test_kms_emulator_gcloud.py.  Only purpose ENCRYPT_DECRYPT
(GOOGLE_SYMMETRIC_ENCRYPTION) is supported.  Ciphertext = 0x4B 0x45 'E' 0x01
| 16-byte key uid | 4-byte version id | 12-byte nonce | AES-256-GCM(ct|tag)
with GCM AAD = header || user AAD, so old ciphertext decrypts after
rotation and a ciphertext from another key is refused.  Auto-rotation happens
lazily when nextRotationTime has passed.  `filter`/`orderBy` are refused
(400) rather than silently ignored.
"""

import argparse
import base64
import datetime
import hmac
import json
import os
import random
import re
import secrets
import signal
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
	from cryptography.exceptions import InvalidSignature, InvalidTag
	from cryptography.hazmat.primitives import hashes, serialization
	from cryptography.hazmat.primitives.asymmetric import padding
	from cryptography.hazmat.primitives.ciphers.aead import AESGCM
	HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the interpreter
	HAVE_CRYPTOGRAPHY = False

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


def b64decode_any(value, field):
	"""Decode base64 in the standard or URL-safe alphabet, padding optional."""
	if not isinstance(value, str):
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed" % field)
	s = value.strip()
	if not re.fullmatch(r"[A-Za-z0-9+/_-]*={0,2}", s):
		raise bad("Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
			  "failed for \"%s\"" % (field, s[:20]))
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


def b64encode_std(data):
	return base64.b64encode(data).decode("ascii")


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


_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"
		    r"(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def parse_time(value, field):
	if not isinstance(value, str):
		raise bad("Invalid value at '%s' (type.googleapis.com/"
			  "google.protobuf.Timestamp)" % field)
	m = _TS_RE.fullmatch(value)
	if not m:
		raise bad("Invalid value at '%s' (type.googleapis.com/"
			  "google.protobuf.Timestamp), Field '%s', Invalid time "
			  "format: %s" % (field, field, value[:40]))
	y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
	try:
		dt = datetime.datetime(y, mo, d, h, mi, s,
				       tzinfo=datetime.timezone.utc)
	except ValueError:
		raise bad("Invalid value at '%s' (type.googleapis.com/"
			  "google.protobuf.Timestamp)" % field)
	t = dt.timestamp()
	if m.group(7):
		t += int(m.group(7)) / (10 ** len(m.group(7)))
	if m.group(9):
		off = int(m.group(10)) * 3600 + int(m.group(11)) * 60
		t -= off if m.group(9) == "+" else -off
	return t


def parse_duration(value, field):
	if not isinstance(value, str):
		raise bad("Invalid value at '%s' (type.googleapis.com/"
			  "google.protobuf.Duration)" % field)
	m = re.fullmatch(r"(-?\d{1,12})(?:\.(\d{1,9}))?s", value)
	if not m:
		raise bad("Invalid value at '%s' (type.googleapis.com/"
			  "google.protobuf.Duration), Field '%s', Illegal duration "
			  "format; duration must end with 's'" % (field, field))
	v = float(m.group(1))
	if m.group(2):
		v += (1 if v >= 0 else -1) * int(m.group(2)) / 10 ** len(m.group(2))
	return v


def fmt_duration(v):
	if v == int(v):
		return "%ds" % int(v)
	return ("%.9f" % v).rstrip("0") + "s"


ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,63}")
PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,19}")
LABEL_KEY_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE_RE = re.compile(r"[a-z0-9_-]{0,63}")

LOCATIONS = [
	("global", "Global"),
	("us", "United States"),
	("europe", "Europe"),
	("us-central1", "Iowa"),
	("us-east1", "South Carolina"),
	("europe-west1", "Belgium"),
	("europe-west3", "Frankfurt"),
]
LOCATION_IDS = set(x[0] for x in LOCATIONS)

MIN_ROTATION = 86400
MAX_ROTATION = 876000 * 3600
DEFAULT_DESTROY_SCHEDULED = 30 * 86400
MAX_PLAINTEXT = 65536
MAX_AAD = 65536
MAX_CIPHERTEXT = 2 * 65536
GOOGLE_TOKEN_URIS = ("https://oauth2.googleapis.com/token",
		     "https://www.googleapis.com/oauth2/v4/token",
		     "https://accounts.google.com/o/oauth2/token")
KMS_AUDIENCES = ("https://cloudkms.googleapis.com/",
		 "https://cloudkms.googleapis.com")
KMS_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",
	      "https://www.googleapis.com/auth/cloudkms")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CT_MAGIC = b"KEE\x01"
CT_HDR = len(CT_MAGIC) + 16 + 4
CT_MIN = CT_HDR + 12 + 16

STD_QUERY = {"alt", "prettyPrint", "fields", "$.xgafv", "quotaUser", "key",
	     "callback", "upload_protocol", "uploadType", "access_token",
	     "oauth_token"}

# ---------------------------------------------------------------- state


class Version:
	def __init__(self, key, vid, now):
		self.key = key
		self.vid = vid
		self.aes = secrets.token_bytes(32)
		self.state = "ENABLED"
		self.create_time = now
		self.generate_time = now
		self.destroy_time = None
		self.destroy_event_time = None

	@property
	def name(self):
		return "%s/cryptoKeyVersions/%d" % (self.key.name, self.vid)

	def to_json(self):
		d = {
			"name": self.name,
			"state": self.state,
			"createTime": fmt_time(self.create_time),
			"protectionLevel": self.key.protection_level,
			"algorithm": self.key.algorithm,
		}
		if self.state in ("ENABLED", "DISABLED", "DESTROY_SCHEDULED"):
			d["generateTime"] = fmt_time(self.generate_time)
		if self.destroy_time is not None:
			d["destroyTime"] = fmt_time(self.destroy_time)
		if self.destroy_event_time is not None:
			d["destroyEventTime"] = fmt_time(self.destroy_event_time)
		return d


class CryptoKey:
	def __init__(self, name, now):
		self.name = name
		self.uid = secrets.token_bytes(16)
		self.create_time = now
		self.purpose = "ENCRYPT_DECRYPT"
		self.algorithm = "GOOGLE_SYMMETRIC_ENCRYPTION"
		self.protection_level = "SOFTWARE"
		self.rotation_period = None
		self.next_rotation_time = None
		self.labels = {}
		self.destroy_scheduled = DEFAULT_DESTROY_SCHEDULED
		self.versions = []
		self.primary = None

	def new_version(self, now):
		v = Version(self, len(self.versions) + 1, now)
		self.versions.append(v)
		return v

	def to_json(self):
		d = {
			"name": self.name,
			"purpose": self.purpose,
			"createTime": fmt_time(self.create_time),
			"versionTemplate": {
				"protectionLevel": self.protection_level,
				"algorithm": self.algorithm,
			},
			"destroyScheduledDuration":
				fmt_duration(self.destroy_scheduled),
		}
		if self.primary is not None:
			d["primary"] = self.primary.to_json()
		if self.next_rotation_time is not None:
			d["nextRotationTime"] = fmt_time(self.next_rotation_time)
		if self.rotation_period is not None:
			d["rotationPeriod"] = fmt_duration(self.rotation_period)
		if self.labels:
			d["labels"] = dict(self.labels)
		return d


class State:
	def __init__(self):
		self.lock = threading.RLock()
		self.clock_offset = 0.0
		self.cli_service_accounts = {}
		self.cli_users = {}
		self.cli_static = set()
		self.cli_token_lifetime = 3599
		self.cli_require_auth = True
		self.cli_project = "keyfs-emu"
		self.reset()

	def now(self):
		return time.time() + self.clock_offset

	def reset(self):
		with self.lock:
			self.clock_offset = 0.0
			self.keyrings = {}    # name -> create_time
			self.keys = {}        # name -> CryptoKey
			self.tokens = {}      # token -> (expiry, scopes, who)
			self.service_accounts = dict(self.cli_service_accounts)
			self.users = dict(self.cli_users)
			self.static_tokens = set(self.cli_static)
			self.token_lifetime = self.cli_token_lifetime
			self.issue_token = None
			self.require_auth = self.cli_require_auth
			self.project_id = self.cli_project
			self.sa_email = ("default@%s.iam.gserviceaccount.com"
					 % self.cli_project)
			self.default_page_size = 1000
			self.nf_as_denied = False
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


# ------------------------------------------------------------ credentials


def load_public_key_from_sa(info):
	"""(client_email, {kid: public_key}) from a dict (key file or admin)."""
	email = info.get("client_email")
	if not isinstance(email, str) or not email:
		raise ValueError("client_email missing")
	kid = info.get("private_key_id") or ""
	if info.get("public_key_pem"):
		pub = serialization.load_pem_public_key(
			info["public_key_pem"].encode("ascii"))
	elif info.get("private_key"):
		priv = serialization.load_pem_private_key(
			info["private_key"].encode("ascii"), password=None)
		pub = priv.public_key()
	else:
		raise ValueError("public_key_pem or private_key required")
	return email, kid, pub


def register_sa(table, info):
	email, kid, pub = load_public_key_from_sa(info)
	table.setdefault(email, {})[kid] = pub
	return email


# ---------------------------------------------------------------- server


class Emulator:
	"""The emulator's request logic, independent of the HTTP plumbing."""

	def __init__(self, state):
		self.st = state

	# ---------- resource lookup (caller holds the lock)

	def _not_found(self, kind, name, perm):
		if self.st.nf_as_denied:
			return ApiError(403, "PERMISSION_DENIED",
					"Permission '%s' denied on resource '%s' "
					"(or it may not exist)." % (perm, name))
		return ApiError(404, "NOT_FOUND", "%s %s not found." % (kind, name))

	def _check_parent(self, project, location):
		if not PROJECT_RE.fullmatch(project):
			raise bad("Resource name [projects/%s] is invalid: invalid "
				  "project id." % project)
		if location not in LOCATION_IDS:
			raise ApiError(404, "NOT_FOUND",
				       "Location projects/%s/locations/%s not found "
				       "or not supported." % (project, location))

	def _ring(self, p, l, r, perm="cloudkms.keyRings.get"):
		self._check_parent(p, l)
		name = "projects/%s/locations/%s/keyRings/%s" % (p, l, r)
		if not ID_RE.fullmatch(r) or name not in self.st.keyrings:
			raise self._not_found("KeyRing", name, perm)
		return name

	def _key(self, p, l, r, k, perm="cloudkms.cryptoKeys.get"):
		self._check_parent(p, l)
		name = "projects/%s/locations/%s/keyRings/%s/cryptoKeys/%s" % (
			p, l, r, k)
		key = self.st.keys.get(name)
		if key is None:
			raise self._not_found("CryptoKey", name, perm)
		self._maybe_rotate(key)
		return key

	def _version(self, key, v, perm="cloudkms.cryptoKeyVersions.get"):
		name = "%s/cryptoKeyVersions/%s" % (key.name, v)
		if not re.fullmatch(r"[1-9][0-9]{0,9}", v) or \
		   int(v) > len(key.versions):
			raise self._not_found("CryptoKeyVersion", name, perm)
		ver = key.versions[int(v) - 1]
		self._maybe_destroy(ver)
		return ver

	def _maybe_destroy(self, ver):
		if ver.state == "DESTROY_SCHEDULED" and \
		   self.st.now() >= ver.destroy_time:
			ver.state = "DESTROYED"
			ver.destroy_event_time = ver.destroy_time
			ver.aes = None

	def _maybe_rotate(self, key):
		now = self.st.now()
		if key.next_rotation_time is None or now < key.next_rotation_time:
			return
		v = key.new_version(key.next_rotation_time)
		key.primary = v
		if key.rotation_period:
			nrt = key.next_rotation_time
			while nrt <= now:
				nrt += key.rotation_period
			key.next_rotation_time = nrt
		else:
			key.next_rotation_time = None

	# ---------- pagination

	def _page(self, items, parent, q):
		if q.get("filter"):
			raise bad("The emulator does not support 'filter'.")
		if q.get("orderBy"):
			raise bad("The emulator does not support 'orderBy'.")
		size = q.get("pageSize")
		if size is None or size == "":
			size = self.st.default_page_size
		else:
			if not re.fullmatch(r"-?[0-9]{1,10}", size):
				raise bad("Invalid value at 'page_size' (TYPE_INT32), "
					  "\"%s\"" % size[:20])
			size = int(size)
			if size < 0:
				raise bad("page_size must be non-negative.")
			if size == 0:
				size = self.st.default_page_size
			size = min(size, 1000)
		off = 0
		tok = q.get("pageToken")
		if tok:
			try:
				d = json.loads(b64url_nopad_decode(tok))
				if d["p"] != parent or not isinstance(d["o"], int) \
				   or d["o"] < 0:
					raise ValueError()
				off = d["o"]
			except (ValueError, KeyError, TypeError):
				raise bad("Invalid page token.")
		page = items[off:off + size]
		nxt = None
		if off + size < len(items):
			raw = json.dumps({"p": parent, "o": off + size},
					 separators=(",", ":")).encode()
			nxt = base64.urlsafe_b64encode(raw).decode().rstrip("=")
		return page, nxt

	def _list_response(self, field, items, parent, q):
		page, nxt = self._page(items, parent, q)
		d = {}
		if page:
			d[field] = [x.to_json() if hasattr(x, "to_json") else x
				    for x in page]
		if nxt:
			d["nextPageToken"] = nxt
		if items:
			d["totalSize"] = len(items)
		return d

	# ---------- body validation

	@staticmethod
	def _fields(body, allowed):
		if not isinstance(body, dict):
			raise bad("Invalid JSON payload received. Expected an object.")
		for k in body:
			if k not in allowed:
				raise bad("Invalid JSON payload received. Unknown name "
					  "\"%s\": Cannot find field." % k)

	def _rotation(self, key, period, nrt):
		if period is not None:
			if period < MIN_ROTATION:
				raise bad("The rotation_period must be at least 24 "
					  "hours (86400s).")
			if period > MAX_ROTATION:
				raise bad("The rotation_period must be at most "
					  "876000 hours.")
			if nrt is None:
				raise bad("A next_rotation_time must be set when a "
					  "rotation_period is set.")
		if (period is not None or nrt is not None) and \
		   key.purpose != "ENCRYPT_DECRYPT":
			raise bad("Only ENCRYPT_DECRYPT keys support automatic "
				  "rotation.")

	@staticmethod
	def _labels(labels):
		if not isinstance(labels, dict):
			raise bad("Invalid value at 'crypto_key.labels'.")
		if len(labels) > 64:
			raise bad("A CryptoKey may have at most 64 labels.")
		for k, v in labels.items():
			if not LABEL_KEY_RE.fullmatch(k) or not isinstance(v, str) \
			   or not LABEL_VALUE_RE.fullmatch(v):
				raise bad("Invalid label: %s." % k[:64])
		return dict(labels)

	# ---------- KMS methods

	def locations_list(self, p, q, body):
		self._check_parent(p, "global")
		locs = [{
			"name": "projects/%s/locations/%s" % (p, lid),
			"locationId": lid,
			"displayName": disp,
			"metadata": {
				"@type": "type.googleapis.com/google.cloud.kms.v1."
					 "LocationMetadata",
				"hsmAvailable": True,
				"ekmAvailable": lid != "global",
			},
		} for lid, disp in LOCATIONS]
		q = dict(q)
		q.pop("extraLocationTypes", None)
		d = self._list_response("locations", locs,
					"projects/%s/locations" % p, q)
		d.pop("totalSize", None)
		return d

	def locations_get(self, p, l, q, body):
		self._check_parent(p, l)
		return [x for x in self.locations_list(p, {}, None)["locations"]
			if x["locationId"] == l][0]

	def keyrings_create(self, p, l, q, body):
		self._check_parent(p, l)
		self._fields(body, {"name", "createTime"})
		rid = q.get("keyRingId")
		if not rid:
			raise bad("The request is missing required field "
				  "'key_ring_id'.")
		if not ID_RE.fullmatch(rid):
			raise bad("Invalid resource id: key_ring_id must match "
				  "[a-zA-Z0-9_-]{1,63}.")
		name = "projects/%s/locations/%s/keyRings/%s" % (p, l, rid)
		if name in self.st.keyrings:
			raise ApiError(409, "ALREADY_EXISTS",
				       "KeyRing %s already exists." % name)
		self.st.keyrings[name] = self.st.now()
		return self._ring_json(name)

	def _ring_json(self, name):
		return {"name": name, "createTime": fmt_time(self.st.keyrings[name])}

	def keyrings_get(self, p, l, r, q, body):
		return self._ring_json(self._ring(p, l, r))

	def keyrings_list(self, p, l, q, body):
		self._check_parent(p, l)
		prefix = "projects/%s/locations/%s/keyRings/" % (p, l)
		names = sorted(n for n in self.st.keyrings if n.startswith(prefix))
		return self._list_response("keyRings",
					   [self._ring_json(n) for n in names],
					   prefix[:-1], q)

	KEY_FIELDS = {"name", "primary", "purpose", "createTime",
		      "nextRotationTime", "rotationPeriod", "versionTemplate",
		      "labels", "importOnly", "destroyScheduledDuration",
		      "cryptoKeyBackend", "keyAccessJustificationsPolicy"}

	def keys_create(self, p, l, r, q, body):
		ring = self._ring(p, l, r, "cloudkms.cryptoKeys.create")
		self._fields(body, self.KEY_FIELDS)
		kid = q.get("cryptoKeyId")
		if not kid:
			raise bad("The request is missing required field "
				  "'crypto_key_id'.")
		if not ID_RE.fullmatch(kid):
			raise bad("Invalid resource id: crypto_key_id must match "
				  "[a-zA-Z0-9_-]{1,63}.")
		skip = q.get("skipInitialVersionCreation", "false")
		if skip not in ("true", "false"):
			raise bad("Invalid value at 'skip_initial_version_creation' "
				  "(TYPE_BOOL), \"%s\"" % skip[:10])
		name = "%s/cryptoKeys/%s" % (ring, kid)
		purpose = body.get("purpose")
		if not purpose or purpose == "CRYPTO_KEY_PURPOSE_UNSPECIFIED":
			raise bad("The request is missing required field "
				  "'crypto_key.purpose'.")
		if purpose not in ("ENCRYPT_DECRYPT", "ASYMMETRIC_SIGN",
				   "ASYMMETRIC_DECRYPT", "RAW_ENCRYPT_DECRYPT",
				   "MAC"):
			raise bad("Invalid value at 'crypto_key.purpose' "
				  "(type.googleapis.com/google.cloud.kms.v1."
				  "CryptoKey.CryptoKeyPurpose), \"%s\"" % purpose[:40])
		now = self.st.now()
		key = CryptoKey(name, now)
		key.purpose = purpose
		period = nrt = None
		if "rotationPeriod" in body:
			period = parse_duration(body["rotationPeriod"],
						"crypto_key.rotation_period")
		if "nextRotationTime" in body:
			nrt = parse_time(body["nextRotationTime"],
					 "crypto_key.next_rotation_time")
		self._rotation(key, period, nrt)
		if purpose != "ENCRYPT_DECRYPT":
			raise bad("The emulator supports only purpose "
				  "ENCRYPT_DECRYPT.")
		vt = body.get("versionTemplate") or {}
		self._fields(vt, {"protectionLevel", "algorithm"})
		alg = vt.get("algorithm", "GOOGLE_SYMMETRIC_ENCRYPTION")
		if alg != "GOOGLE_SYMMETRIC_ENCRYPTION":
			raise bad("Algorithm %s is not compatible with purpose "
				  "ENCRYPT_DECRYPT." % str(alg)[:40])
		pl = vt.get("protectionLevel", "SOFTWARE")
		if pl not in ("SOFTWARE", "HSM"):
			raise bad("The emulator supports protectionLevel SOFTWARE "
				  "or HSM only.")
		if body.get("importOnly"):
			raise bad("The emulator does not support importOnly keys.")
		if "destroyScheduledDuration" in body:
			ds = parse_duration(body["destroyScheduledDuration"],
					    "crypto_key.destroy_scheduled_duration")
			if ds < 86400 or ds > 120 * 86400:
				raise bad("destroy_scheduled_duration must be "
					  "between 1 and 120 days.")
			key.destroy_scheduled = ds
		key.algorithm = alg
		key.protection_level = pl
		key.rotation_period = period
		key.next_rotation_time = nrt
		if "labels" in body:
			key.labels = self._labels(body["labels"])
		if name in self.st.keys:
			raise ApiError(409, "ALREADY_EXISTS",
				       "CryptoKey %s already exists." % name)
		if skip == "false":
			key.primary = key.new_version(now)
		self.st.keys[name] = key
		return key.to_json()

	def keys_get(self, p, l, r, k, q, body):
		return self._key(p, l, r, k).to_json()

	def keys_list(self, p, l, r, q, body):
		ring = self._ring(p, l, r, "cloudkms.cryptoKeys.list")
		q = dict(q)
		view = q.pop("versionView", "CRYPTO_KEY_VERSION_VIEW_UNSPECIFIED")
		if view not in ("CRYPTO_KEY_VERSION_VIEW_UNSPECIFIED", "FULL"):
			raise bad("Invalid value at 'version_view'.")
		prefix = ring + "/cryptoKeys/"
		keys = sorted((k for n, k in self.st.keys.items()
			       if n.startswith(prefix)), key=lambda k: k.name)
		for k in keys:
			self._maybe_rotate(k)
		return self._list_response("cryptoKeys", keys, ring, q)

	def keys_patch(self, p, l, r, k, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeys.update")
		self._fields(body, self.KEY_FIELDS)
		mask = q.get("updateMask")
		if not mask:
			raise bad("The request is missing required field "
				  "'update_mask'.")
		paths = [x.strip() for x in mask.split(",") if x.strip()]
		period, nrt = key.rotation_period, key.next_rotation_time
		labels, alg = key.labels, key.algorithm
		for path in paths:
			if path in ("rotationPeriod", "rotation_period"):
				v = body.get("rotationPeriod")
				period = parse_duration(v, "crypto_key.rotation_"
							"period") if v else None
			elif path in ("nextRotationTime", "next_rotation_time"):
				v = body.get("nextRotationTime")
				nrt = parse_time(v, "crypto_key.next_rotation_"
						 "time") if v else None
			elif path == "labels":
				labels = self._labels(body.get("labels") or {})
			elif path in ("versionTemplate.algorithm",
				      "version_template.algorithm"):
				vt = body.get("versionTemplate") or {}
				alg = vt.get("algorithm",
					     "GOOGLE_SYMMETRIC_ENCRYPTION")
				if alg != "GOOGLE_SYMMETRIC_ENCRYPTION":
					raise bad("Algorithm %s is not compatible "
						  "with purpose ENCRYPT_DECRYPT."
						  % str(alg)[:40])
			else:
				raise bad("The update_mask path '%s' is not "
					  "supported." % path[:60])
		self._rotation(key, period, nrt)
		key.rotation_period, key.next_rotation_time = period, nrt
		key.labels, key.algorithm = labels, alg
		return key.to_json()

	def keys_update_primary(self, p, l, r, k, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeys.update")
		self._fields(body, {"cryptoKeyVersionId"})
		vid = body.get("cryptoKeyVersionId")
		if not vid:
			raise bad("The request is missing required field "
				  "'crypto_key_version_id'.")
		ver = self._version(key, str(vid))
		if ver.state != "ENABLED":
			raise precondition("The request cannot be fulfilled. "
					   "CryptoKeyVersion %s is not enabled."
					   % ver.name)
		key.primary = ver
		return key.to_json()

	def versions_create(self, p, l, r, k, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeyVersions.create")
		self._fields(body, {"name", "state", "protectionLevel",
				    "algorithm", "createTime"})
		if body.get("state") not in (None, "ENABLED"):
			raise bad("A new CryptoKeyVersion may only be created "
				  "ENABLED.")
		return key.new_version(self.st.now()).to_json()

	def versions_list(self, p, l, r, k, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeyVersions.list")
		q = dict(q)
		view = q.pop("view", "CRYPTO_KEY_VERSION_VIEW_UNSPECIFIED")
		if view not in ("CRYPTO_KEY_VERSION_VIEW_UNSPECIFIED", "FULL"):
			raise bad("Invalid value at 'view'.")
		for v in key.versions:
			self._maybe_destroy(v)
		return self._list_response("cryptoKeyVersions", key.versions,
					   key.name, q)

	def versions_get(self, p, l, r, k, v, q, body):
		return self._version(self._key(p, l, r, k), v).to_json()

	def versions_patch(self, p, l, r, k, v, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeyVersions.update")
		ver = self._version(key, v, "cloudkms.cryptoKeyVersions.update")
		self._fields(body, {"name", "state", "protectionLevel",
				    "algorithm", "createTime", "generateTime"})
		mask = q.get("updateMask")
		if not mask:
			raise bad("The request is missing required field "
				  "'update_mask'.")
		for path in mask.split(","):
			if path.strip() != "state":
				raise bad("The update_mask path '%s' is not "
					  "supported." % path[:60])
		new = body.get("state")
		if new not in ("ENABLED", "DISABLED"):
			raise bad("state may only be updated to ENABLED or "
				  "DISABLED.")
		if ver.state not in ("ENABLED", "DISABLED"):
			raise precondition("CryptoKeyVersion %s is in state %s."
					   % (ver.name, ver.state))
		ver.state = new
		return ver.to_json()

	def versions_destroy(self, p, l, r, k, v, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeyVersions.destroy")
		ver = self._version(key, v, "cloudkms.cryptoKeyVersions.destroy")
		self._fields(body, set())
		if ver.state not in ("ENABLED", "DISABLED"):
			raise precondition("CryptoKeyVersion %s is in state %s."
					   % (ver.name, ver.state))
		ver.state = "DESTROY_SCHEDULED"
		ver.destroy_time = self.st.now() + key.destroy_scheduled
		return ver.to_json()

	def versions_restore(self, p, l, r, k, v, q, body):
		key = self._key(p, l, r, k, "cloudkms.cryptoKeyVersions.restore")
		ver = self._version(key, v, "cloudkms.cryptoKeyVersions.restore")
		self._fields(body, set())
		if ver.state != "DESTROY_SCHEDULED":
			raise precondition("CryptoKeyVersion %s is in state %s."
					   % (ver.name, ver.state))
		ver.state = "DISABLED"
		ver.destroy_time = None
		return ver.to_json()

	@staticmethod
	def _checksum(body, crc_field, data_field, data, snake):
		if crc_field not in body:
			return False
		want = parse_int64(body[crc_field], snake[0])
		if want != crc32c(data):
			raise bad("The checksum in field %s did not match the data "
				  "in field %s." % snake)
		return True

	def encrypt(self, p, l, r, k, v, q, body):
		perm = "cloudkms.cryptoKeyVersions.useToEncrypt"
		key = self._key(p, l, r, k, perm)
		self._fields(body, {"plaintext", "additionalAuthenticatedData",
				    "plaintextCrc32c",
				    "additionalAuthenticatedDataCrc32c"})
		if v is not None:
			ver = self._version(key, v, perm)
		else:
			ver = key.primary
			if ver is None:
				raise precondition("The request cannot be "
						   "fulfilled. CryptoKey %s has no "
						   "primary CryptoKeyVersion."
						   % key.name)
		pt = b64decode_any(body.get("plaintext", ""), "plaintext")
		aad = b64decode_any(body.get("additionalAuthenticatedData", ""),
				    "additional_authenticated_data")
		if not pt:
			raise bad("The request is missing required field "
				  "'plaintext'.")
		if len(pt) > MAX_PLAINTEXT:
			raise bad("The plaintext must be at most %d bytes."
				  % MAX_PLAINTEXT)
		if len(aad) > MAX_AAD:
			raise bad("The additional_authenticated_data must be at "
				  "most %d bytes." % MAX_AAD)
		if key.protection_level == "HSM" and len(pt) + len(aad) > 8192:
			raise bad("The plaintext and additional_authenticated_data "
				  "together must be at most 8192 bytes for HSM "
				  "keys.")
		vp = self._checksum(body, "plaintextCrc32c", "plaintext", pt,
				    ("plaintext_crc32c", "plaintext"))
		va = self._checksum(body, "additionalAuthenticatedDataCrc32c",
				    "additionalAuthenticatedData", aad,
				    ("additional_authenticated_data_crc32c",
				     "additional_authenticated_data"))
		if ver.state != "ENABLED":
			raise precondition("The request cannot be fulfilled. "
					   "CryptoKeyVersion %s is not enabled."
					   % ver.name)
		hdr = CT_MAGIC + key.uid + struct.pack(">I", ver.vid)
		nonce = secrets.token_bytes(12)
		ct = hdr + nonce + AESGCM(ver.aes).encrypt(nonce, pt, hdr + aad)
		d = {"name": ver.name, "ciphertext": b64encode_std(ct),
		     "ciphertextCrc32c": str(crc32c(ct)),
		     "protectionLevel": key.protection_level}
		if vp:
			d["verifiedPlaintextCrc32c"] = True
		if va:
			d["verifiedAdditionalAuthenticatedDataCrc32c"] = True
		return d

	def decrypt(self, p, l, r, k, q, body):
		perm = "cloudkms.cryptoKeyVersions.useToDecrypt"
		key = self._key(p, l, r, k, perm)
		self._fields(body, {"ciphertext", "additionalAuthenticatedData",
				    "ciphertextCrc32c",
				    "additionalAuthenticatedDataCrc32c"})
		ct = b64decode_any(body.get("ciphertext", ""), "ciphertext")
		aad = b64decode_any(body.get("additionalAuthenticatedData", ""),
				    "additional_authenticated_data")
		if not ct:
			raise bad("The request is missing required field "
				  "'ciphertext'.")
		if len(ct) > MAX_CIPHERTEXT:
			raise bad("The ciphertext must be at most %d bytes."
				  % MAX_CIPHERTEXT)
		if len(aad) > MAX_AAD:
			raise bad("The additional_authenticated_data must be at "
				  "most %d bytes." % MAX_AAD)
		self._checksum(body, "ciphertextCrc32c", "ciphertext", ct,
			       ("ciphertext_crc32c", "ciphertext"))
		self._checksum(body, "additionalAuthenticatedDataCrc32c",
			       "additionalAuthenticatedData", aad,
			       ("additional_authenticated_data_crc32c",
				"additional_authenticated_data"))
		if len(ct) < CT_MIN or ct[:4] != CT_MAGIC:
			raise bad("Decryption failed: the ciphertext is invalid.")
		if not hmac.compare_digest(ct[4:20], key.uid):
			raise bad("Decryption failed: verify that 'name' refers "
				  "to the correct CryptoKey.")
		vid = struct.unpack(">I", ct[20:24])[0]
		if vid < 1 or vid > len(key.versions):
			raise bad("Decryption failed: the ciphertext is invalid.")
		ver = key.versions[vid - 1]
		self._maybe_destroy(ver)
		if ver.state != "ENABLED":
			raise precondition("The request cannot be fulfilled. "
					   "CryptoKeyVersion %s is not enabled."
					   % ver.name)
		hdr = ct[:CT_HDR]
		try:
			pt = AESGCM(ver.aes).decrypt(ct[CT_HDR:CT_HDR + 12],
						     ct[CT_HDR + 12:], hdr + aad)
		except InvalidTag:
			raise bad("Decryption failed: the ciphertext is invalid.")
		d = {"plaintext": b64encode_std(pt),
		     "plaintextCrc32c": str(crc32c(pt)),
		     "protectionLevel": key.protection_level}
		if ver is key.primary:
			d["usedPrimary"] = True
		return d


# KMS routes: (http method, regex, handler name, method name)
_P = r"projects/([^/:]+)/locations/([^/:]+)"
_R = _P + r"/keyRings/([^/:]+)"
_K = _R + r"/cryptoKeys/([^/:]+)"
_V = _K + r"/cryptoKeyVersions/([^/:]+)"
ROUTES = [
	("GET", r"projects/([^/:]+)/locations", "locations_list",
	 "locations.list", {"filter", "pageSize", "pageToken",
			    "extraLocationTypes"}),
	("GET", _P, "locations_get", "locations.get", set()),
	("POST", _P + "/keyRings", "keyrings_create", "keyRings.create",
	 {"keyRingId"}),
	("GET", _P + "/keyRings", "keyrings_list", "keyRings.list",
	 {"pageSize", "pageToken", "filter", "orderBy"}),
	("GET", _R, "keyrings_get", "keyRings.get", set()),
	("POST", _R + "/cryptoKeys", "keys_create", "cryptoKeys.create",
	 {"cryptoKeyId", "skipInitialVersionCreation"}),
	("GET", _R + "/cryptoKeys", "keys_list", "cryptoKeys.list",
	 {"pageSize", "pageToken", "filter", "orderBy", "versionView"}),
	("GET", _K, "keys_get", "cryptoKeys.get", set()),
	("PATCH", _K, "keys_patch", "cryptoKeys.patch", {"updateMask"}),
	("POST", _K + ":updatePrimaryVersion", "keys_update_primary",
	 "cryptoKeys.updatePrimaryVersion", set()),
	("POST", _K + ":encrypt", "encrypt_key", "cryptoKeys.encrypt", set()),
	("POST", _V + ":encrypt", "encrypt", "cryptoKeys.encrypt", set()),
	("POST", _K + ":decrypt", "decrypt", "cryptoKeys.decrypt", set()),
	("POST", _K + "/cryptoKeyVersions", "versions_create",
	 "cryptoKeyVersions.create", set()),
	("GET", _K + "/cryptoKeyVersions", "versions_list",
	 "cryptoKeyVersions.list",
	 {"pageSize", "pageToken", "filter", "orderBy", "view"}),
	("GET", _V, "versions_get", "cryptoKeyVersions.get", set()),
	("PATCH", _V, "versions_patch", "cryptoKeyVersions.patch",
	 {"updateMask"}),
	("POST", _V + ":destroy", "versions_destroy",
	 "cryptoKeyVersions.destroy", set()),
	("POST", _V + ":restore", "versions_restore",
	 "cryptoKeyVersions.restore", set()),
]
ROUTES = [(m, re.compile(rx), h, name, qs) for m, rx, h, name, qs in ROUTES]
KMS_METHODS = set(r[3] for r in ROUTES)


class Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "keyfs-kms-emulator/1"
	# Headers and body go out in separate writes: without TCP_NODELAY a
	# kept-alive client waits ~40 ms per answer (Nagle + delayed ACK).
	disable_nagle_algorithm = True
	emu = None   # set on the subclass

	def log_message(self, fmt, *args):  # quiet; never log bodies or tokens
		pass

	# ---------- plumbing

	def _read_body(self):
		te = self.headers.get("Transfer-Encoding", "")
		if te.lower() == "chunked":
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
				if len(out) > 4 << 20:
					raise bad("Request body too large.")
		n = int(self.headers.get("Content-Length") or 0)
		if n > 4 << 20:
			raise bad("Request body too large.")
		return self.rfile.read(n) if n else b""

	def _send(self, code, body, ctype="application/json; charset=UTF-8",
		  extra=None):
		if isinstance(body, (dict, list)):
			body = (json.dumps(body, indent=2) + "\n").encode()
		elif isinstance(body, str):
			body = body.encode()
		self.send_response(code)
		self.send_header("Content-Type", ctype)
		self.send_header("Content-Length", str(len(body)))
		for k, v in (extra or {}).items():
			self.send_header(k, v)
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(body)
		self._status = code

	def _api_error(self, e, extra=None):
		self._send(e.code, {"error": {"code": e.code,
					      "message": e.message,
					      "status": e.status}}, extra=extra)

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
		code = str(getattr(self, "_status", 0))
		with st.lock:
			entry["status"] = int(code)
			r = st.responses.setdefault(method, {})
			r[code] = r.get(code, 0) + 1

	def _fault(self, method):
		"""Apply latency and error faults; return ApiError or None."""
		st = self.emu.st
		with st.lock:
			f = dict(st.faults)
			lat = f.get("latency_ms", 0)
			lm = f.get("latency_methods")
			fail = False
			em = f.get("error_methods")
			applies = (method in em) if em else (method in KMS_METHODS)
			if f.get("error_status") is not None and applies:
				if st.faults.get("error_count", 0) > 0:
					st.faults["error_count"] -= 1
					fail = True
				elif f.get("error_rate", 0) > 0 and \
				     st.fault_rng.random() < f["error_rate"]:
					fail = True
			if fail:
				st.faults_injected[method] = \
					st.faults_injected.get(method, 0) + 1
		if lat and (not lm or method in lm):
			time.sleep(lat / 1000.0)
		if not fail:
			return None
		s = f["error_status"]
		if isinstance(s, int):
			code, status = s, STATUS_BY_CODE.get(s, "UNKNOWN")
		else:
			code, status = CODE_BY_STATUS.get(s, 500), s
		return ApiError(code, status, f.get("error_message") or
				"The service is currently unavailable "
				"(emulated fault).")

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
		self._path = u.path
		self._query = u.query
		try:
			body = self._read_body()
		except (ApiError, ValueError):
			self.close_connection = True
			self._api_error(bad("Invalid request body."))
			return
		p = u.path
		if p.startswith("/_emu/"):
			return self._admin(p, body)
		if p.startswith("/v1/"):
			return self._kms(p[4:], u.query, body)
		if p in ("/token", "/oauth2/v4/token"):
			return self._token(body)
		if p == "/" or p.startswith("/computeMetadata/"):
			return self._metadata(p, u.query)
		entry = self._log("unknown")
		self._api_error(ApiError(404, "NOT_FOUND", "Method not found."))
		self._finish_log(entry, "unknown")

	# ---------- KMS

	def _kms(self, path, query, raw):
		route = None
		for m, rx, h, mname, qs in ROUTES:
			mt = rx.fullmatch(path)
			if mt and m == self.command:
				route = (mt, h, mname, qs)
				break
		method = route[2] if route else "unknown"
		entry = self._log(method)
		try:
			if route is None:
				raise ApiError(404, "NOT_FOUND", "Method not found.")
			err = self._fault(method)
			if err:
				raise err
			self._auth()
			mt, h, mname, qs = route
			q = {}
			for k, v in urllib.parse.parse_qsl(query,
							   keep_blank_values=True):
				if k not in qs and k not in STD_QUERY:
					raise bad("Invalid JSON payload received. "
						  "Unknown name \"%s\": Cannot bind "
						  "query parameter." % k[:40])
				if k == "alt" and v not in ("json", ""):
					raise bad("Invalid value for alt: %s"
						  % v[:20])
				q[k] = v
			body = {}
			if raw.strip():
				try:
					body = json.loads(raw)
				except ValueError:
					raise bad("Invalid JSON payload received. "
						  "Unexpected token.")
			args = [urllib.parse.unquote(x) for x in mt.groups()]
			if h == "encrypt_key":
				h = "encrypt"
				args.append(None)
			st = self.emu.st
			with st.lock:
				res = getattr(self.emu, h)(*args, q, body)
				f = dict(st.faults)
			res = self._corrupt(mname, res, f)
			self._send(200, res)
		except ApiError as e:
			extra = None
			if e.code == 401:
				extra = {"WWW-Authenticate": 'Bearer realm='
					 '"https://accounts.google.com/"'}
			self._api_error(e, extra)
		finally:
			self._finish_log(entry, method)

	@staticmethod
	def _corrupt(method, res, f):
		cm = f.get("corrupt_methods") or ["cryptoKeys.encrypt",
						  "cryptoKeys.decrypt"]
		if method not in cm:
			return res
		if f.get("corrupt_crc"):
			for fld in ("ciphertextCrc32c", "plaintextCrc32c"):
				if fld in res:
					res[fld] = str((int(res[fld]) ^ 0x5A5A)
						       & 0xFFFFFFFF)
		if f.get("unverified"):
			res.pop("verifiedPlaintextCrc32c", None)
			res.pop("verifiedAdditionalAuthenticatedDataCrc32c", None)
		return res

	def _auth(self):
		st = self.emu.st
		h = self.headers.get("Authorization")
		if not h:
			if not st.require_auth:
				return None
			raise ApiError(401, "UNAUTHENTICATED",
				       "Request is missing required authentication "
				       "credential. Expected OAuth 2 access token, "
				       "login cookie or other valid authentication "
				       "credential.")
		if not st.require_auth:
			return None
		invalid = ApiError(401, "UNAUTHENTICATED",
				   "Request had invalid authentication "
				   "credentials. Expected OAuth 2 access token, "
				   "login cookie or other valid authentication "
				   "credential.")
		scheme, _, tok = h.partition(" ")
		tok = tok.strip()
		if scheme.lower() != "bearer" or not tok:
			raise invalid
		with st.lock:
			if tok in st.static_tokens:
				return tok
			rec = st.tokens.get(tok)
			if rec is not None:
				exp, scopes, _ = rec
				if st.now() >= exp:
					raise invalid
				if not any(s in KMS_SCOPES for s in scopes):
					raise ApiError(403, "PERMISSION_DENIED",
						       "Request had insufficient "
						       "authentication scopes.")
				return tok
		if tok.count(".") == 2:
			try:
				claims = self._verify_jwt(tok)
			except ValueError:
				raise invalid
			aud = claims.get("aud")
			scope = claims.get("scope")
			base = "http://%s/" % self.headers.get("Host", "")
			if claims.get("iss") != claims.get("sub"):
				raise invalid
			if scope is not None:
				if not any(s in KMS_SCOPES
					   for s in str(scope).split()):
					raise ApiError(403, "PERMISSION_DENIED",
						       "Request had insufficient "
						       "authentication scopes.")
			elif aud not in KMS_AUDIENCES + (base,):
				raise invalid
			return tok
		raise invalid

	# ---------- JWT / OAuth

	def _verify_jwt(self, jwt):
		"""Verify an RS256 JWT of a registered account; return claims.

		Raises ValueError with a Google-like description."""
		st = self.emu.st
		try:
			h64, p64, s64 = jwt.split(".")
			header = json.loads(b64url_nopad_decode(h64))
			claims = json.loads(b64url_nopad_decode(p64))
			sig = b64url_nopad_decode(s64)
		except (ValueError, TypeError, UnicodeError):
			raise ValueError("Invalid JWT: malformed.")
		if not isinstance(header, dict) or not isinstance(claims, dict):
			raise ValueError("Invalid JWT: malformed.")
		if header.get("alg") != "RS256":
			raise ValueError("Invalid JWT: unsupported algorithm.")
		iss = claims.get("iss")
		with st.lock:
			keys = dict(st.service_accounts.get(iss) or {})
		if not keys:
			raise ValueError("Invalid grant: account not found")
		kid = header.get("kid")
		if kid:
			cands = [keys[kid]] if kid in keys else []
		else:
			cands = list(keys.values())
		ok = False
		for pub in cands:
			try:
				pub.verify(sig, (h64 + "." + p64).encode("ascii"),
					   padding.PKCS1v15(), hashes.SHA256())
				ok = True
				break
			except InvalidSignature:
				pass
		if not ok:
			raise ValueError("Invalid JWT Signature.")
		now = st.now()
		iat, exp = claims.get("iat"), claims.get("exp")
		if not isinstance(iat, (int, float)) or \
		   not isinstance(exp, (int, float)) or \
		   exp <= now or iat > now + 300 or exp - iat > 3600 or \
		   exp <= iat:
			raise ValueError("Invalid JWT: Token must be a short-lived "
					 "token (60 minutes) and in a reasonable "
					 "timeframe. Check your iat and exp "
					 "values in the JWT claim.")
		return claims

	def _issue(self, scopes, who):
		st = self.emu.st
		tok = st.issue_token or "ya29.emu-" + secrets.token_urlsafe(32)
		with st.lock:
			life = st.token_lifetime
			st.tokens[tok] = (st.now() + life, list(scopes), who)
		return tok, life

	def _token(self, raw):
		method = "oauth.token"
		entry = self._log(method)
		try:
			self._token_inner(raw)
		finally:
			self._finish_log(entry, method)

	def _oauth_err(self, code, err, desc):
		self._send(code, {"error": err, "error_description": desc})

	def _token_inner(self, raw):
		st = self.emu.st
		if self.command != "POST":
			return self._oauth_err(405, "invalid_request",
					       "Method not allowed.")
		e = self._fault("oauth.token")
		if e:
			name = {429: "rate_limit_exceeded",
				503: "temporarily_unavailable"}.get(
					e.code, "internal_failure")
			return self._oauth_err(e.code, name, e.message)
		try:
			form = dict(urllib.parse.parse_qsl(raw.decode("utf-8"),
							   keep_blank_values=True,
							   strict_parsing=bool(raw)))
		except (ValueError, UnicodeError):
			return self._oauth_err(400, "invalid_request",
					       "Malformed request body.")
		gt = form.get("grant_type")
		if not gt:
			return self._oauth_err(400, "invalid_request",
					       "Missing required parameter: "
					       "grant_type")
		if gt == JWT_BEARER:
			a = form.get("assertion")
			if not a:
				return self._oauth_err(400, "invalid_request",
						       "Missing required parameter: "
						       "assertion")
			try:
				claims = self._verify_jwt(a)
			except ValueError as ex:
				return self._oauth_err(400, "invalid_grant",
						       str(ex))
			host = self.headers.get("Host", "")
			port = self.server.server_address[1]
			auds = GOOGLE_TOKEN_URIS + (
				"http://%s/token" % host,
				"http://127.0.0.1:%d/token" % port,
				"http://localhost:%d/token" % port,
				"http://%s/oauth2/v4/token" % host)
			if claims.get("aud") not in auds:
				return self._oauth_err(400, "invalid_grant",
						       "Invalid JWT: Failed audience "
						       "check.")
			scope = claims.get("scope")
			if not isinstance(scope, str) or not scope.split():
				return self._oauth_err(400, "invalid_scope",
						       "Invalid OAuth scope or ID "
						       "token audience provided.")
			tok, life = self._issue(scope.split(), claims["iss"])
			return self._send(200, {"access_token": tok,
						"expires_in": life,
						"token_type": "Bearer"})
		if gt == "refresh_token":
			cid = form.get("client_id")
			with st.lock:
				u = st.users.get(cid)
			if not cid or u is None or not hmac.compare_digest(
					u["client_secret"].encode(),
					form.get("client_secret", "").encode()):
				return self._oauth_err(401, "invalid_client",
						       "Unauthorized")
			rt = form.get("refresh_token", "")
			if not rt or not hmac.compare_digest(
					u["refresh_token"].encode(), rt.encode()):
				return self._oauth_err(400, "invalid_grant",
						       "Bad Request")
			scopes = u["scopes"]
			if form.get("scope"):
				req = form["scope"].split()
				if not set(req) <= set(scopes):
					return self._oauth_err(
						400, "invalid_scope",
						"The requested scope exceeds the "
						"granted scope.")
				scopes = req
			tok, life = self._issue(scopes, cid)
			return self._send(200, {"access_token": tok,
						"expires_in": life,
						"scope": " ".join(scopes),
						"token_type": "Bearer"})
		return self._oauth_err(400, "unsupported_grant_type",
				       "Invalid grant_type: %s" % gt[:60])

	# ---------- metadata

	def _metadata(self, path, query):
		rel = path[len("/computeMetadata/v1/"):] \
			if path.startswith("/computeMetadata/v1/") else None
		names = {
			"instance/service-accounts/default/token":
				"metadata.token",
			"instance/service-accounts/default/email":
				"metadata.email",
			"instance/service-accounts/default/": "metadata.info",
			"instance/service-accounts/default": "metadata.info",
			"project/project-id": "metadata.project_id",
		}
		method = "metadata.ping" if path == "/" else \
			names.get(rel, "unknown")
		entry = self._log(method)
		hdr = {"Metadata-Flavor": "Google"}
		try:
			if self.command != "GET":
				return self._send(405, "Method not allowed\n",
						  "text/plain", hdr)
			if self.headers.get("Metadata-Flavor") != "Google" or \
			   self.headers.get("X-Forwarded-For"):
				return self._send(403, "Missing required header "
						  "\"Metadata-Flavor\": \"Google\"\n",
						  "text/html; charset=UTF-8", hdr)
			e = self._fault(method)
			if e:
				return self._send(e.code, e.message + "\n",
						  "text/plain", hdr)
			st = self.emu.st
			q = dict(urllib.parse.parse_qsl(query))
			if method == "metadata.ping":
				return self._send(200, "", "application/text", hdr)
			if method == "metadata.project_id":
				return self._send(200, st.project_id,
						  "application/text", hdr)
			if method == "metadata.email":
				return self._send(200, st.sa_email,
						  "application/text", hdr)
			if method == "metadata.info":
				return self._send(200, {
					"aliases": ["default"],
					"email": st.sa_email,
					"scopes": list(KMS_SCOPES[:1])},
					extra=hdr)
			if method == "metadata.token":
				scopes = [s for s in q.get("scopes", "").split(",")
					  if s] or [KMS_SCOPES[0]]
				tok, life = self._issue(scopes, "metadata")
				return self._send(200, {"access_token": tok,
							"expires_in": life,
							"token_type": "Bearer"},
						  extra=hdr)
			return self._send(404, "Not Found\n", "text/html", hdr)
		finally:
			self._finish_log(entry, method)

	# ---------- admin

	def _admin(self, path, raw):
		st = self.emu.st
		try:
			body = json.loads(raw) if raw.strip() else {}
		except ValueError:
			return self._send(400, {"error": "invalid JSON"})
		cmd = (self.command, path.rstrip("/"))
		try:
			with st.lock:
				res = self._admin_inner(cmd, body)
		except (ValueError, KeyError, TypeError) as e:
			return self._send(400, {"error": "%s: %s" % (
				type(e).__name__, str(e)[:200])})
		if res is None:
			return self._send(404, {"error": "unknown admin call"})
		return self._send(200, res)

	def _faults_view(self):
		return dict(self.emu.st.faults)

	def _admin_inner(self, cmd, body):
		st = self.emu.st
		if cmd == ("POST", "/_emu/reset"):
			st.reset()
			return {"ok": True}
		if cmd == ("GET", "/_emu/faults"):
			return self._faults_view()
		if cmd == ("DELETE", "/_emu/faults"):
			st.clear_faults()
			return {"ok": True}
		if cmd == ("POST", "/_emu/faults"):
			allowed = {"error_status", "error_count", "error_rate",
				   "error_message", "error_methods", "latency_ms",
				   "latency_methods", "corrupt_crc", "unverified",
				   "corrupt_methods", "seed"}
			for k in body:
				if k not in allowed:
					raise ValueError("unknown fault field %s" % k)
			s = body.get("error_status")
			if s is not None and not (
				(isinstance(s, int) and 400 <= s <= 599) or
				s in CODE_BY_STATUS):
				raise ValueError("bad error_status")
			if (body.get("error_count") or body.get("error_rate")) \
			   and s is None:
				body["error_status"] = 503
			f = dict(body)
			f["error_count"] = int(f.get("error_count", 0))
			f["error_rate"] = float(f.get("error_rate", 0))
			f["latency_ms"] = int(f.get("latency_ms", 0))
			st.faults = f
			st.fault_rng = random.Random(int(body.get("seed", 0)))
			return self._faults_view()
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
		if cmd == ("POST", "/_emu/service-accounts"):
			if "key_file" in body:
				with open(body["key_file"]) as fh:
					body = json.load(fh)
			return {"client_email": register_sa(st.service_accounts,
							    body)}
		if cmd == ("POST", "/_emu/authorized-users"):
			st.users[body["client_id"]] = {
				"client_secret": body["client_secret"],
				"refresh_token": body["refresh_token"],
				"scopes": list(body.get("scopes") or KMS_SCOPES[:1]),
			}
			return {"ok": True}
		if cmd == ("POST", "/_emu/static-tokens"):
			t = body["token"]
			if not isinstance(t, str) or not t:
				raise ValueError("token must be a non-empty string")
			st.static_tokens.add(t)
			return {"ok": True}
		if cmd == ("POST", "/_emu/expire-tokens"):
			now = st.now()
			for t, (exp, sc, who) in list(st.tokens.items()):
				st.tokens[t] = (min(exp, now - 1), sc, who)
			return {"ok": True, "expired": len(st.tokens)}
		if cmd == ("GET", "/_emu/config"):
			return self._config_view()
		if cmd == ("POST", "/_emu/config"):
			for k, v in body.items():
				if k == "token_lifetime":
					st.token_lifetime = int(v)
				elif k == "require_auth":
					st.require_auth = bool(v)
				elif k == "default_page_size":
					if int(v) < 1:
						raise ValueError("page size < 1")
					st.default_page_size = int(v)
				elif k == "not_found_as_permission_denied":
					st.nf_as_denied = bool(v)
				elif k == "project_id":
					st.project_id = str(v)
				elif k == "sa_email":
					st.sa_email = str(v)
				elif k == "issue_token":
					st.issue_token = str(v) if v else None
				else:
					raise ValueError("unknown config %s" % k)
			return self._config_view()
		if cmd == ("POST", "/_emu/clock"):
			st.clock_offset = float(body["offset_seconds"])
			return {"offset_seconds": st.clock_offset}
		return None

	def _config_view(self):
		st = self.emu.st
		return {"token_lifetime": st.token_lifetime,
			"require_auth": st.require_auth,
			"default_page_size": st.default_page_size,
			"not_found_as_permission_denied": st.nf_as_denied,
			"project_id": st.project_id, "sa_email": st.sa_email,
			"clock_offset": st.clock_offset}


class Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True


def make_server(host="127.0.0.1", port=0, state=None):
	"""Build (not start) an emulator server; returns (server, state)."""
	if not HAVE_CRYPTOGRAPHY:
		raise RuntimeError("kms_emulator needs the 'cryptography' package")
	state = state or State()
	handler = type("BoundHandler", (Handler,), {"emu": Emulator(state)})
	return Server((host, port), handler), state


# ------------------------------------------------- subprocess launcher

def _python_with_cryptography():
	"""Path of an interpreter that can import cryptography."""
	import subprocess
	cands = [sys.executable, "/usr/bin/python3", "/root/.pyenv/shims/python3"]
	for c in cands:
		if not c or not os.path.exists(c):
			continue
		r = subprocess.run([c, "-c", "import cryptography"],
				   stdout=subprocess.DEVNULL,
				   stderr=subprocess.DEVNULL)
		if r.returncode == 0:
			return c
	raise RuntimeError("no python with the cryptography package found")


class EmulatorProcess:
	"""Run the emulator as a subprocess (no cryptography needed here).

	The interpreter is `python`, else $KEYFS_KMS_EMU_PYTHON, else the first
	of sys.executable, /usr/bin/python3, /root/.pyenv/shims/python3 that can
	import cryptography.

	    with EmulatorProcess(["--static-token-file", f]) as emu:
	        emu.url          # "http://127.0.0.1:PORT"
	        emu.admin("POST", "/_emu/reset", {})
	"""

	def __init__(self, args=(), python=None, timeout=20):
		import subprocess
		self.python = python or os.environ.get("KEYFS_KMS_EMU_PYTHON") \
			or _python_with_cryptography()
		self.proc = subprocess.Popen(
			[self.python, os.path.abspath(__file__), "--port", "0"]
			+ list(args), stdout=subprocess.PIPE,
			stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
		import selectors
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
	ap = argparse.ArgumentParser(description="Cloud KMS v1 emulator")
	ap.add_argument("port_pos", nargs="?", type=int, default=None,
			metavar="PORT")
	ap.add_argument("--port", type=int, default=0)
	ap.add_argument("--host", default="127.0.0.1")
	ap.add_argument("--project-id", default="keyfs-emu")
	ap.add_argument("--service-account-key", action="append", default=[])
	ap.add_argument("--authorized-user", action="append", default=[])
	ap.add_argument("--static-token", action="append", default=[])
	ap.add_argument("--static-token-file", action="append", default=[])
	ap.add_argument("--token-lifetime", type=int, default=3599)
	ap.add_argument("--no-auth", action="store_true")
	a = ap.parse_args(argv)
	if not HAVE_CRYPTOGRAPHY:
		sys.stderr.write("kms_emulator: the cryptography package is "
				 "required\n")
		return 2
	st = State()
	for f in a.service_account_key:
		with open(f) as fh:
			register_sa(st.cli_service_accounts, json.load(fh))
	for f in a.authorized_user:
		with open(f) as fh:
			u = json.load(fh)
		st.cli_users[u["client_id"]] = {
			"client_secret": u["client_secret"],
			"refresh_token": u["refresh_token"],
			"scopes": list(KMS_SCOPES[:1])}
	st.cli_static.update(t for t in a.static_token if t)
	for f in a.static_token_file:
		with open(f) as fh:
			t = fh.read().strip()
		if t:
			st.cli_static.add(t)
	st.cli_token_lifetime = a.token_lifetime
	st.cli_require_auth = not a.no_auth
	st.cli_project = a.project_id
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
