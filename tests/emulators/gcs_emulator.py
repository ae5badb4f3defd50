#!/usr/bin/env python3
"""Cloud Storage JSON API v1 emulator (in memory, loopback, tests only).

Python 3.11 standard library only.  Checked against the real gcloud CLI by
tests/integration/test_gcs_emulator_gcloud.py.

Command line
------------
    python3 gcs_emulator.py [PORT] [--port N] [--host 127.0.0.1]
        [--bucket NAME]              (repeatable) bucket that exists at start
                                     (and again after /_emu/reset)
        [--versioned-bucket NAME]    (repeatable) same, with versioning on
        [--project-id ID]            project of the buckets (default keyfs-emu)
        [--static-token TOKEN]       (repeatable) accepted bearer token
        [--static-token-file FILE]   (repeatable) same, token read from FILE
                                     (trailing whitespace stripped)
        [--any-token]                accept any non-empty bearer token
        [--no-auth]                  accept calls without a token too
        [--max-object-size BYTES]    largest object (default 16 MiB)
    Tokens shared with kms_emulator.py: set its config "issue_token" to a
    token given here with --static-token, or start this one with --any-token.
    PORT 0 (default) picks an ephemeral port.  The first stdout line is
    `PORT <n>` (flushed).  SIGTERM/SIGINT stop the server.  Request bodies,
    object data and token values are never logged.

Endpoints (the paths gcloud storage uses with
CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://127.0.0.1:PORT/)
---------------------------------------------------------------
    GET    /storage/v1/b?project=P               buckets.list
    POST   /storage/v1/b?project=P               buckets.insert
    GET    /storage/v1/b/B                       buckets.get
    PATCH  /storage/v1/b/B                       buckets.patch (versioning,
                                                 labels)
    DELETE /storage/v1/b/B                       buckets.delete (409 unless
                                                 empty)
    GET    /storage/v1/b/B/o                     objects.list
    GET    /storage/v1/b/B/o/O                   objects.get
    GET    /storage/v1/b/B/o/O?alt=media         objects.media (also under
           /download/storage/v1/...)
    PATCH  /storage/v1/b/B/o/O                   objects.patch
    PUT    /storage/v1/b/B/o/O                   objects.update
    DELETE /storage/v1/b/B/o/O                   objects.delete
    POST   /upload/storage/v1/b/B/o?uploadType=media|multipart|resumable
                                                 objects.insert (every
           /upload/ path is also served under /resumable/upload/, where
           gcloud sends resumable uploads)
    PUT    /upload/storage/v1/b/B/o?...&upload_id=U   uploads.put (resumable
                                                 data; POST accepted too)
    DELETE /upload/storage/v1/b/B/o?...&upload_id=U   uploads.cancel (499)
    Object names (O) are percent-encoded in paths: '/' must be sent as %2F
    (an unencoded '/' after /o/ is a 404, as the route does not match).

Behaviour
---------
    Objects: every write makes a new generation (microseconds since the
    epoch, strictly increasing) with metageneration 1; patch/update add 1 to
    the metageneration.  Without bucket versioning an overwrite or delete
    removes the live generation; with versioning it becomes noncurrent
    (timeDeleted set), readable, patchable and deletable by `generation=`,
    and listed with `versions=true`.  Object resources carry crc32c and
    md5Hash (base64 of the big-endian CRC32C / the MD5 digest), size,
    generation and metageneration as decimal strings, etag (base64 of
    generation and metageneration), selfLink/mediaLink on the Host called.
    Media responses carry `x-goog-hash: crc32c=...,md5=...` (one header;
    config split_hash_header sends two), x-goog-generation,
    x-goog-metageneration, x-goog-stored-content-length,
    x-goog-stored-content-encoding, Cache-Control and Content-Type of the
    object, and honour `Range: bytes=` (206).
    Uploads: uploadType=media (name= in the query), multipart (JSON
    metadata part: name, metadata{}, contentType, cacheControl,
    contentDisposition, contentEncoding, contentLanguage, customTime,
    crc32c, md5Hash; a given crc32c/md5Hash must match the data: 400
    otherwise) and resumable (session URI in Location; PUT with or without
    Content-Range `bytes a-b/total`, `bytes a-b/*`, `bytes */total`; 308 with
    Range while incomplete).  `x-goog-hash` request headers are checked too.
    Preconditions ifGenerationMatch (0 = no live object), ifGenerationNotMatch
    (0 = a live object), ifMetagenerationMatch, ifMetagenerationNotMatch on
    insert, get, media, patch, update, delete (against the live generation,
    or the one named by `generation=`): a failed *Match is 412
    conditionNotMet; a failed *NotMatch is 304 (no body) on get/media and 412
    on writes.  Lists: prefix, delimiter (prefixes[]), includeTrailingDelimiter,
    startOffset, endOffset, versions, maxResults (1..1000, items and prefixes
    together), opaque pageToken/nextPageToken; lexicographic (UTF-8) order.
    `fields=` partial responses (a,b/c,d(e,f)) on JSON answers.
    Errors: {"error": {"code", "message", "errors": [{"message", "domain":
    "global", "reason"[, "locationType", "location"]}]}}, as the JSON API
    answers them (no `status` string: clients branch on the HTTP code and
    errors[0].reason).  401 (reason required / authError, WWW-Authenticate)
    without or with an unknown bearer token; 404 notFound; 400 invalid /
    required / invalidParameter for bad names, values, unknown query
    parameters or body fields, wrong checksums; 412 conditionNotMet; 413
    uploadTooLarge past --max-object-size.
    Names: bucket names [a-z0-9._-]{3,63} (begins and ends with a letter or
    digit); object names 1..1024 bytes of UTF-8 without CR/LF, not "." or
    "..", not under ".well-known/acme-challenge/"; custom metadata at most
    8 KiB (keys plus values).

Not implemented
---------------
    ACLs, IAM, rewrite/copy/compose, matchGlob, soft delete, holds and
    retention, CSEK/CMEK, notifications, the XML API, gRPC, gzip transcoding,
    requester pays (userProject is accepted and ignored), resumable session
    expiry, customTime's "cannot decrease" rule, HEAD.  includeFoldersAsPrefixes
    is accepted and has no effect (no managed folders); softDeleted=true and
    matchGlob are refused (400).

Admin / test API (no auth; JSON in and out)
-------------------------------------------
    POST /_emu/reset            drop every bucket, object, upload, fault,
                                counter, request log entry, admin token and
                                config change; recreate the command-line
                                buckets (empty)
    POST /_emu/buckets          {"name": B, "versioning": bool} create a bucket
    GET  /_emu/buckets          bucket names with their versioning
    GET  /_emu/objects?bucket=B every generation of every object (name,
                                generation, metageneration, live, size)
    POST /_emu/static-tokens    {"token": T}
    GET|POST /_emu/config       {"require_auth": bool, "any_token": bool,
                                 "split_hash_header": bool,
                                 "max_object_size": n}
    GET  /_emu/faults           current fault config (remaining counts)
    POST /_emu/faults           replace the fault config; all optional:
        {"error_status": 503 | 429 | 500 ..., "error_count": N (fail the
         next N matching calls before applying them), "error_rate": 0..1
         (seeded by "seed"), "error_message": "...", "error_methods": [...]
         (default every API method),
         "drop_count": N         apply the next N matching calls, then reset
                                 the connection instead of answering
         "drop_methods": [...]   (default every API method),
         "latency_ms": N, "latency_methods": [...],
         "corrupt_hash_header": true   media answers carry a wrong
                                       x-goog-hash (crc32c and md5)
         "corrupt_media": true         media bodies have one byte flipped
         "corrupt_resource_hash": true object resources carry wrong crc32c
                                       and md5Hash
         "corrupt_count": N            corrupt only the next N answers}
    DELETE /_emu/faults         clear all faults
    GET  /_emu/counters         {"calls": {method: n}, "responses": {method:
                                 {"200": n, ..., "dropped": n}},
                                 "faults_injected": {method:
                                 n}, "dropped": {method: n}, "corrupted":
                                 {method: n}, "total": n}
    POST /_emu/counters/reset
    GET  /_emu/requests         last 500 requests: [{"method", "http_method",
                                 "path", "query", "status", "headers"}]
                                 (Authorization value redacted)

Method names (counters, faults): buckets.{list,insert,get,patch,delete},
objects.{list,get,media,insert,patch,update,delete}, uploads.{put,cancel},
unknown.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import struct
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


def crc32c(data, crc=0):
	"""CRC32C (Castagnoli) of bytes, as an unsigned int (continuable)."""
	crc ^= 0xFFFFFFFF
	tab = _CRC_TABLE
	for b in data:
		crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
	return crc ^ 0xFFFFFFFF


def b64(data):
	return base64.b64encode(data).decode("ascii")


def crc32c_b64(value):
	"""The JSON API form: base64 of the 4 big-endian bytes."""
	return b64(struct.pack(">I", value))


def fmt_time(t):
	dt = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
	return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
		dt.microsecond // 1000)


def varint(n):
	out = bytearray()
	while True:
		b = n & 0x7F
		n >>= 7
		if n:
			out.append(b | 0x80)
		else:
			out.append(b)
			return bytes(out)


class ApiError(Exception):
	"""An error answer in the JSON API's shape."""

	def __init__(self, code, reason, message, location=None,
		     location_type=None):
		Exception.__init__(self, message)
		self.code = code
		self.reason = reason
		self.message = message
		self.location = location
		self.location_type = location_type

	def body(self):
		e = {"message": self.message, "domain": "global",
		     "reason": self.reason}
		if self.location_type:
			e["locationType"] = self.location_type
		if self.location:
			e["location"] = self.location
		return {"error": {"code": self.code, "message": self.message,
				  "errors": [e]}}


class NotModified(Exception):
	pass


class DropResponse(Exception):
	pass


def invalid(msg, location=None):
	return ApiError(400, "invalid", msg, location,
			"parameter" if location else None)


def bad_param(name, value):
	return ApiError(400, "invalidParameter",
			"Invalid value for parameter '%s': %s" % (
				name, str(value)[:40]), name, "parameter")


def required(what):
	return ApiError(400, "required", "Required %s" % what)


def not_found_bucket():
	return ApiError(404, "notFound", "The specified bucket does not exist.")


def not_found_object(bucket, name, gen=None):
	if gen:
		return ApiError(404, "notFound", "No such object: %s/%s#%d" % (
			bucket, name, gen))
	return ApiError(404, "notFound", "No such object: %s/%s" % (bucket, name))


def cond_not_met():
	return ApiError(412, "conditionNotMet", "At least one of the "
			"pre-conditions you specified did not hold.",
			"If-Match", "header")


BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
INT64_RE = re.compile(r"-?[0-9]{1,19}")
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}"
			r"(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")
MAX_METADATA = 8192
MAX_PAGE = 1000
MAX_BODY = 64 << 20

STD_QUERY = {"alt", "fields", "prettyPrint", "quotaUser", "userIp", "key",
	     "userProject", "access_token", "oauth_token", "$.xgafv",
	     "callback", "upload_protocol"}
PRE_QUERY = {"ifGenerationMatch", "ifGenerationNotMatch",
	     "ifMetagenerationMatch", "ifMetagenerationNotMatch"}
WRITABLE = ("contentType", "cacheControl", "contentDisposition",
	    "contentEncoding", "contentLanguage", "customTime")
READ_ONLY = {"kind", "id", "selfLink", "mediaLink", "name", "bucket",
	     "generation", "metageneration", "size", "md5Hash", "crc32c",
	     "etag", "timeCreated", "updated", "timeDeleted",
	     "timeStorageClassUpdated", "timeFinalized", "storageClass",
	     "componentCount", "owner", "kmsKeyName", "acl",
	     "customerEncryption", "softDeleteTime", "hardDeleteTime"}


def check_bucket_name(name):
	if not BUCKET_RE.fullmatch(name) or ".." in name or \
	   name.startswith("goog") or re.fullmatch(r"[0-9.]+", name):
		raise invalid("Invalid bucket name: '%s'." % name[:80])


def check_object_name(name):
	try:
		raw = name.encode("utf-8")
	except UnicodeError:
		raw = b""
	if not raw:
		raise required("object name")
	if len(raw) > 1024 or "\r" in name or "\n" in name or \
	   name in (".", "..") or \
	   name.startswith(".well-known/acme-challenge/"):
		raise invalid("The specified object name is not valid.")


def parse_gen(q, key):
	v = q.get(key)
	if v is None:
		return None
	if not INT64_RE.fullmatch(v):
		raise bad_param(key, v)
	n = int(v)
	if n < -(1 << 63) or n >= (1 << 63):
		raise bad_param(key, v)
	return n


# ---------------------------------------------------------- field masks

def parse_fields(spec):
	"""`a,b/c,d(e,f)` -> nested dict {name: subtree or None}."""
	pos = 0

	def parse_list(end):
		nonlocal pos
		out = {}
		while True:
			m = re.compile(r"[A-Za-z0-9_*]+").match(spec, pos)
			if not m:
				raise invalid("Invalid field selection %s" % spec[:60],
					      "fields")
			path = [m.group(0)]
			pos = m.end()
			while pos < len(spec) and spec[pos] == "/":
				m = re.compile(r"[A-Za-z0-9_*]+").match(spec, pos + 1)
				if not m:
					raise invalid("Invalid field selection %s"
						      % spec[:60], "fields")
				path.append(m.group(0))
				pos = m.end()
			sub = None
			if pos < len(spec) and spec[pos] == "(":
				pos += 1
				sub = parse_list(")")
				if pos >= len(spec) or spec[pos] != ")":
					raise invalid("Invalid field selection %s"
						      % spec[:60], "fields")
				pos += 1
			node = out
			for p in path[:-1]:
				nxt = node.get(p)
				if nxt is None and p in node:
					break   # already whole
				node = node.setdefault(p, {})
			else:
				last = path[-1]
				if sub is None or node.get(last, 0) is None:
					node[last] = None
				else:
					node.setdefault(last, {}).update(sub)
			if pos < len(spec) and spec[pos] == ",":
				pos += 1
				continue
			if end is None and pos == len(spec):
				return out
			if end is not None and pos < len(spec) and spec[pos] == end:
				return out
			raise invalid("Invalid field selection %s" % spec[:60],
				      "fields")

	return parse_list(None)


def apply_fields(value, mask):
	if mask is None:
		return value
	if isinstance(value, list):
		return [apply_fields(v, mask) for v in value]
	if not isinstance(value, dict):
		return value
	if "*" in mask:
		return value
	out = {}
	for k, sub in mask.items():
		if k in value:
			out[k] = apply_fields(value[k], sub)
	return out


# ---------------------------------------------------------------- state


class Obj:
	"""One generation of an object."""

	def __init__(self, bucket, name, gen, data, meta, now):
		self.bucket = bucket
		self.name = name
		self.generation = gen
		self.metageneration = 1
		self.data = data
		self.crc = crc32c(data)
		self.md5 = hashlib.md5(data).digest()
		self.created = now
		self.updated = now
		self.deleted = None
		self.metadata = dict(meta.get("metadata") or {})
		self.props = {k: meta[k] for k in WRITABLE if meta.get(k)}
		self.props.setdefault("contentType", "application/octet-stream")

	def etag(self):
		return b64(b"\x08" + varint(self.generation) + b"\x10" +
			   varint(self.metageneration))

	def to_json(self, base, corrupt=False):
		qn = urllib.parse.quote(self.name, safe="")
		crc, md5 = self.crc, self.md5
		if corrupt:
			crc ^= 0x5A5A5A5A
			md5 = bytes([md5[0] ^ 0xFF]) + md5[1:]
		d = {
			"kind": "storage#object",
			"id": "%s/%s/%d" % (self.bucket, self.name,
					    self.generation),
			"selfLink": "%s/storage/v1/b/%s/o/%s" % (
				base, self.bucket, qn),
			"mediaLink": "%s/download/storage/v1/b/%s/o/%s?"
				     "generation=%d&alt=media" % (
					     base, self.bucket, qn,
					     self.generation),
			"name": self.name,
			"bucket": self.bucket,
			"generation": str(self.generation),
			"metageneration": str(self.metageneration),
			"storageClass": "STANDARD",
			"size": str(len(self.data)),
			"md5Hash": b64(md5),
			"crc32c": crc32c_b64(crc),
			"etag": self.etag(),
			"timeCreated": fmt_time(self.created),
			"updated": fmt_time(self.updated),
			"timeStorageClassUpdated": fmt_time(self.created),
			"timeFinalized": fmt_time(self.created),
		}
		d.update(self.props)
		if self.metadata:
			d["metadata"] = dict(self.metadata)
		if self.deleted is not None:
			d["timeDeleted"] = fmt_time(self.deleted)
		return d


class Bucket:
	def __init__(self, name, project, versioning, now):
		self.name = name
		self.project = project
		self.versioning = bool(versioning)
		self.versioning_set = bool(versioning)
		self.labels = {}
		self.created = now
		self.updated = now
		self.metageneration = 1
		self.objects = {}   # name -> [Obj] by generation; live is last

	def live(self, name):
		gens = self.objects.get(name)
		if gens and gens[-1].deleted is None:
			return gens[-1]
		return None

	def find(self, name, gen):
		for o in self.objects.get(name, ()):
			if o.generation == gen:
				return o
		return None

	def to_json(self, base):
		d = {
			"kind": "storage#bucket",
			"selfLink": "%s/storage/v1/b/%s" % (base, self.name),
			"id": self.name,
			"name": self.name,
			"projectNumber": str(int(hashlib.sha256(
				self.project.encode()).hexdigest()[:10], 16)),
			"metageneration": str(self.metageneration),
			"location": "US",
			"storageClass": "STANDARD",
			"etag": b64(b"\x08" + varint(self.metageneration)),
			"timeCreated": fmt_time(self.created),
			"updated": fmt_time(self.updated),
			"locationType": "multi-region",
			"rpo": "DEFAULT",
			"iamConfiguration": {
				"bucketPolicyOnly": {"enabled": True},
				"uniformBucketLevelAccess": {"enabled": True},
				"publicAccessPrevention": "enforced"},
		}
		if self.versioning_set:
			d["versioning"] = {"enabled": self.versioning}
		if self.labels:
			d["labels"] = dict(self.labels)
		return d


class Upload:
	def __init__(self, bucket, name, meta, q, now):
		self.bucket = bucket
		self.name = name
		self.meta = meta
		self.q = q
		self.data = bytearray()
		self.created = now
		self.result = None   # the Obj once finalized


class State:
	def __init__(self):
		self.lock = threading.RLock()
		self.cli_buckets = []        # (name, versioning)
		self.cli_static = set()
		self.cli_require_auth = True
		self.cli_any_token = False
		self.cli_project = "keyfs-emu"
		self.cli_max_object = 16 << 20
		self.last_gen = 0
		self.reset()

	def now(self):
		return time.time()

	def next_gen(self):
		g = max(int(time.time() * 1e6), self.last_gen + 1)
		self.last_gen = g
		return g

	def reset(self):
		with self.lock:
			now = self.now()
			self.buckets = {n: Bucket(n, self.cli_project, v, now)
					for n, v in self.cli_buckets}
			self.uploads = {}
			self.static_tokens = set(self.cli_static)
			self.require_auth = self.cli_require_auth
			self.any_token = self.cli_any_token
			self.split_hash_header = False
			self.max_object_size = self.cli_max_object
			self.project = self.cli_project
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
		self.dropped = {}
		self.corrupted = {}


# ------------------------------------------------------------ multipart


def parse_multipart(ctype, body):
	"""[(headers dict lower-case, payload bytes)] of a multipart body."""
	if not ctype.lower().startswith("multipart/related"):
		raise invalid("Multipart uploads need Content-Type "
			      "multipart/related.")
	m = re.search(r'boundary=(?:"([^"]+)"|\'([^\']+)\'|([^;\s]+))', ctype)
	if not m:
		raise invalid("Missing boundary in multipart Content-Type.")
	boundary = (m.group(1) or m.group(2) or m.group(3)).encode("latin-1")
	delim = b"--" + boundary
	if not body.startswith(delim):
		i = body.find(b"\n" + delim)
		if i < 0:
			raise invalid("Malformed multipart body.")
		body = body[i + 1:]
	parts = []
	pos = len(delim)
	rx = re.compile(b"\r?\n" + re.escape(delim))
	while True:
		if body[pos:pos + 2] == b"--":
			return parts
		eol = body.find(b"\n", pos)
		if eol < 0:
			raise invalid("Malformed multipart body.")
		pos = eol + 1
		m = rx.search(body, pos)
		if not m:
			raise invalid("Malformed multipart body.")
		part = body[pos:m.start()]
		pos = m.end()
		sep = part.find(b"\r\n\r\n")
		sl = 4
		if sep < 0 or (0 <= part.find(b"\n\n") < sep):
			sep, sl = part.find(b"\n\n"), 2
		if part.startswith(b"\r\n") or part.startswith(b"\n"):
			sep, sl = 0, (2 if part.startswith(b"\r\n") else 1)
		if sep < 0:
			raise invalid("Malformed multipart body.")
		hdrs = {}
		for line in part[:sep].decode("latin-1").splitlines():
			if ":" in line:
				k, v = line.split(":", 1)
				hdrs[k.strip().lower()] = v.strip()
		payload = part[sep + sl:]
		if hdrs.get("content-transfer-encoding", "").lower() == "base64":
			try:
				payload = base64.b64decode(payload)
			except ValueError:
				raise invalid("Malformed base64 media part.")
		parts.append((hdrs, payload))


# ---------------------------------------------------------------- logic


class Emulator:
	def __init__(self, state):
		self.st = state

	# ----- lookups (caller holds the lock)

	def bucket(self, b):
		bk = self.st.buckets.get(b)
		if bk is None:
			raise not_found_bucket()
		return bk

	def target(self, bk, name, q):
		"""The generation a read/patch/delete addresses, or 404."""
		check_object_name(name)
		gen = parse_gen(q, "generation")
		if gen is not None and gen != 0:
			o = bk.find(name, gen)
			if o is None:
				raise not_found_object(bk.name, name, gen)
			return o
		o = bk.live(name)
		if o is None:
			raise not_found_object(bk.name, name)
		return o

	@staticmethod
	def preconditions(q, obj, read):
		gm = parse_gen(q, "ifGenerationMatch")
		gnm = parse_gen(q, "ifGenerationNotMatch")
		mm = parse_gen(q, "ifMetagenerationMatch")
		mnm = parse_gen(q, "ifMetagenerationNotMatch")
		if gm is not None:
			if gm == 0:
				if obj is not None:
					raise cond_not_met()
			elif obj is None or obj.generation != gm:
				raise cond_not_met()
		if mm is not None and (obj is None or
				       obj.metageneration != mm):
			raise cond_not_met()
		fail = False
		if gnm is not None:
			if obj is None or (gnm != 0 and obj.generation == gnm):
				fail = True
		if mnm is not None:
			if obj is None or obj.metageneration == mnm:
				fail = True
		if fail:
			if read:
				raise NotModified()
			raise cond_not_met()

	@staticmethod
	def check_meta(meta, partial):
		"""Validate an object metadata body; return it normalized."""
		if not isinstance(meta, dict):
			raise invalid("Invalid JSON payload: object expected.")
		for k in meta:
			if k not in WRITABLE and k not in READ_ONLY and \
			   k != "metadata":
				raise invalid("Invalid JSON payload received. "
					      "Unknown name \"%s\"." % k[:60])
		for k in WRITABLE:
			v = meta.get(k)
			if v is not None and not isinstance(v, str):
				raise invalid("Invalid value for %s." % k)
		ct = meta.get("customTime")
		if ct and not RFC3339_RE.fullmatch(ct):
			raise invalid("Invalid value for customTime: %s"
				      % ct[:40])
		md = meta.get("metadata")
		if md is not None:
			if not isinstance(md, dict):
				raise invalid("Invalid value for metadata.")
			for k, v in md.items():
				if not k:
					raise invalid("Metadata keys must not be "
						      "empty.")
				if v is None:
					continue   # patch: delete; insert: ignored
				if not isinstance(v, str):
					raise invalid("Invalid value for metadata "
						      "key %s." % k[:60])
		return meta

	def metadata_size_ok(self, metadata):
		size = sum(len(k.encode()) + len(v.encode())
			   for k, v in metadata.items())
		if size > MAX_METADATA:
			raise invalid("The total size of custom metadata exceeds "
				      "the 8 KiB limit.")

	@staticmethod
	def check_hashes(meta, headers, data):
		crc = crc32c(data)
		md5 = hashlib.md5(data).digest()
		want_crc = meta.get("crc32c")
		want_md5 = meta.get("md5Hash")
		xh = headers.get("x-goog-hash") if headers else None
		if xh:
			for item in xh.split(","):
				k, _, v = item.strip().partition("=")
				if k == "crc32c":
					want_crc = v
				elif k == "md5":
					want_md5 = v
		if want_crc is not None and want_crc != crc32c_b64(crc):
			raise invalid("Provided CRC32C \"%s\" doesn't match "
				      "calculated CRC32C \"%s\"."
				      % (str(want_crc)[:16], crc32c_b64(crc)))
		if want_md5 is not None and want_md5 != b64(md5):
			raise invalid("Provided MD5 hash \"%s\" doesn't match "
				      "calculated MD5 hash \"%s\"."
				      % (str(want_md5)[:32], b64(md5)))

	def store(self, bk, name, data, meta, q, headers=None):
		"""Write a new generation (preconditions vs the live one)."""
		st = self.st
		check_object_name(name)
		if len(data) > st.max_object_size:
			raise ApiError(413, "uploadTooLarge",
				       "Upload too large: %d bytes (limit %d)."
				       % (len(data), st.max_object_size))
		self.check_meta(meta, False)
		md = {k: v for k, v in (meta.get("metadata") or {}).items()
		      if v is not None}
		self.metadata_size_ok(md)
		meta = dict(meta, metadata=md)
		live = bk.live(name)
		self.preconditions(q, live, False)
		self.check_hashes(meta, headers, data)
		now = st.now()
		o = Obj(bk.name, name, st.next_gen(), bytes(data), meta, now)
		gens = bk.objects.setdefault(name, [])
		if live is not None:
			if bk.versioning:
				live.deleted = now
			else:
				gens.remove(live)
		gens.append(o)
		return o

	# ----- buckets

	def buckets_list(self, q, body, ctx):
		proj = q.get("project")
		if not proj:
			raise required("parameter: project")
		items = [b.to_json(ctx["base"]) for n, b in
			 sorted(self.st.buckets.items()) if b.project == proj]
		d = {"kind": "storage#buckets"}
		if items:
			d["items"] = items
		return d

	def buckets_insert(self, q, body, ctx):
		if not q.get("project"):
			raise required("parameter: project")
		if not isinstance(body, dict) or not body.get("name"):
			raise required("field: name")
		name = body["name"]
		check_bucket_name(name)
		for k in body:
			if k not in ("name", "versioning", "labels", "location",
				     "storageClass", "iamConfiguration"):
				raise invalid("Invalid JSON payload received. "
					      "Unknown name \"%s\"." % k[:60])
		if name in self.st.buckets:
			raise ApiError(409, "conflict", "Your previous request to "
				       "create the named bucket succeeded and you "
				       "already own it.")
		v = (body.get("versioning") or {}).get("enabled", False)
		bk = Bucket(name, q["project"], v, self.st.now())
		bk.versioning_set = "versioning" in body
		bk.labels = dict(body.get("labels") or {})
		self.st.buckets[name] = bk
		return bk.to_json(ctx["base"])

	def buckets_get(self, b, q, body, ctx):
		bk = self.bucket(b)
		mm = parse_gen(q, "ifMetagenerationMatch")
		if mm is not None and mm != bk.metageneration:
			raise cond_not_met()
		mnm = parse_gen(q, "ifMetagenerationNotMatch")
		if mnm is not None and mnm == bk.metageneration:
			raise NotModified()
		return bk.to_json(ctx["base"])

	def buckets_patch(self, b, q, body, ctx):
		bk = self.bucket(b)
		mm = parse_gen(q, "ifMetagenerationMatch")
		if mm is not None and mm != bk.metageneration:
			raise cond_not_met()
		mnm = parse_gen(q, "ifMetagenerationNotMatch")
		if mnm is not None and mnm == bk.metageneration:
			raise cond_not_met()
		if not isinstance(body, dict):
			raise invalid("Invalid JSON payload: object expected.")
		for k, v in body.items():
			if k == "versioning":
				if not isinstance(v, dict) or not isinstance(
						v.get("enabled", False), bool):
					raise invalid("Invalid value for versioning.")
			elif k == "labels":
				if v is not None and not isinstance(v, dict):
					raise invalid("Invalid value for labels.")
			elif k not in ("kind", "id", "name", "selfLink", "etag",
				       "metageneration", "projectNumber",
				       "timeCreated", "updated", "location",
				       "locationType", "storageClass"):
				raise invalid("Invalid JSON payload received. "
					      "Unknown name \"%s\"." % k[:60])
		if "versioning" in body:
			bk.versioning = body["versioning"].get("enabled", False)
			bk.versioning_set = True
		if "labels" in body:
			if body["labels"] is None:
				bk.labels = {}
			else:
				for k, v in body["labels"].items():
					if v is None:
						bk.labels.pop(k, None)
					else:
						bk.labels[k] = str(v)
		bk.metageneration += 1
		bk.updated = self.st.now()
		return bk.to_json(ctx["base"])

	def buckets_delete(self, b, q, body, ctx):
		bk = self.bucket(b)
		if any(bk.objects.values()):
			raise ApiError(409, "conflict", "The bucket you tried to "
				       "delete is not empty.")
		del self.st.buckets[b]
		return None

	# ----- objects

	def objects_list(self, b, q, body, ctx):
		bk = self.bucket(b)
		if q.get("matchGlob"):
			raise invalid("matchGlob is not supported by the "
				      "emulator.", "matchGlob")
		prefix = q.get("prefix", "")
		delim = q.get("delimiter", "")
		start = q.get("startOffset", "")
		end = q.get("endOffset")
		versions = q.get("versions", "false").lower() == "true"
		trailing = q.get("includeTrailingDelimiter", "false").lower() \
			== "true"
		mr = q.get("maxResults")
		if mr is None:
			maxr = MAX_PAGE
		else:
			if not re.fullmatch(r"[0-9]{1,10}", mr) or int(mr) < 1:
				raise bad_param("maxResults", mr)
			maxr = min(int(mr), MAX_PAGE)
		after = None
		tok = q.get("pageToken")
		if tok:
			try:
				raw = base64.urlsafe_b64decode(
					tok + "=" * (-len(tok) % 4))
				t = json.loads(raw.decode("utf-8"))
				after = (t["k"].encode("utf-8"), int(t["n"]),
					 int(t["g"]))
				if t["b"] != b or t["q"] != [prefix, delim,
							      versions]:
					raise ValueError
			except (ValueError, KeyError, TypeError,
				UnicodeError):
				raise invalid("Invalid page token.", "pageToken")
		entries = []   # (sort key, kind, value); keys are unique
		seen = set()
		for name in bk.objects:
			if not name.startswith(prefix) or \
			   name.encode() < start.encode() or \
			   (end is not None and name.encode() >= end.encode()):
				continue
			gens = bk.objects[name]
			if not versions:
				gens = [g for g in gens if g.deleted is None]
			if not gens:
				continue
			if delim:
				rest = name[len(prefix):]
				i = rest.find(delim)
				if i >= 0:
					p = prefix + rest[:i + len(delim)]
					if p not in seen:
						seen.add(p)
						entries.append(
							((p.encode(), 1, 0), "p", p))
					if not (trailing and name == p):
						continue
			for g in gens:
				entries.append(((name.encode(), 0, g.generation),
						"o", g))
		entries.sort(key=lambda e: e[0])
		if after is not None:
			entries = [e for e in entries if e[0] > after]
		page = entries[:maxr]
		items = [v.to_json(ctx["base"], ctx["corrupt"]())
			 for _, kind, v in page if kind == "o"]
		prefixes = [v for _, kind, v in page if kind == "p"]
		last = page[-1][0] if len(entries) > maxr else None
		d = {"kind": "storage#objects"}
		if last is not None:
			t = {"b": b, "q": [prefix, delim, versions],
			     "k": last[0].decode("utf-8"), "n": last[1],
			     "g": last[2]}
			d["nextPageToken"] = base64.urlsafe_b64encode(
				json.dumps(t, separators=(",", ":")).encode()
			).decode().rstrip("=")
		if prefixes:
			d["prefixes"] = prefixes
		if items:
			d["items"] = items
		return d

	def objects_get(self, b, o, q, body, ctx):
		bk = self.bucket(b)
		obj = self.target(bk, o, q)
		self.preconditions(q, obj, True)
		return obj.to_json(ctx["base"], ctx["corrupt"]())

	def objects_media(self, b, o, q, body, ctx):
		bk = self.bucket(b)
		obj = self.target(bk, o, q)
		self.preconditions(q, obj, True)
		return obj

	def objects_patch(self, b, o, q, body, ctx, replace=False):
		bk = self.bucket(b)
		obj = self.target(bk, o, q)
		self.preconditions(q, obj, False)
		self.check_meta(body, not replace)
		if replace:
			md = {k: v for k, v in (body.get("metadata") or {}).items()
			      if v is not None}
			props = {k: body[k] for k in WRITABLE if body.get(k)}
			props.setdefault("contentType", "application/octet-stream")
		else:
			md = dict(obj.metadata)
			if "metadata" in body:
				if body["metadata"] is None:
					md = {}
				else:
					for k, v in body["metadata"].items():
						if v is None:
							md.pop(k, None)
						else:
							md[k] = v
			props = dict(obj.props)
			for k in WRITABLE:
				if k in body:
					if body[k] is None or body[k] == "":
						props.pop(k, None)
					else:
						props[k] = body[k]
		self.metadata_size_ok(md)
		obj.metadata = md
		obj.props = props
		obj.metageneration += 1
		obj.updated = self.st.now()
		return obj.to_json(ctx["base"], ctx["corrupt"]())

	def objects_update(self, b, o, q, body, ctx):
		return self.objects_patch(b, o, q, body, ctx, replace=True)

	def objects_delete(self, b, o, q, body, ctx):
		bk = self.bucket(b)
		obj = self.target(bk, o, q)
		self.preconditions(q, obj, False)
		gens = bk.objects[o]
		if obj.deleted is None and bk.versioning and \
		   not parse_gen(q, "generation"):
			obj.deleted = self.st.now()
		else:
			gens.remove(obj)
			if not gens:
				del bk.objects[o]
		return None

	def objects_insert_plain(self, b, q, body, ctx):
		self.bucket(b)
		raise ApiError(400, "wrongUrlForUpload", "Upload requests must "
			       "include an uploadType URL parameter and a URL "
			       "path beginning with /upload/")

	def objects_insert(self, b, q, raw, ctx):
		st = self.st
		bk = self.bucket(b)
		ut = q.get("uploadType")
		headers = ctx["headers"]
		if ut == "media":
			name = q.get("name")
			if not name:
				raise required("parameter: name")
			meta = {"contentType": headers.get("content-type")
				or "application/octet-stream"}
			if q.get("contentEncoding"):
				meta["contentEncoding"] = q["contentEncoding"]
			return self.store(bk, name, raw, meta, q, headers)
		if ut == "multipart":
			parts = parse_multipart(headers.get("content-type", ""),
						raw)
			if len(parts) != 2:
				raise invalid("Multipart upload needs exactly two "
					      "parts: metadata and media.")
			try:
				meta = json.loads(parts[0][1].decode("utf-8")
						  or "{}")
			except (ValueError, UnicodeError):
				raise ApiError(400, "parseError", "Parse Error")
			if not isinstance(meta, dict):
				raise invalid("Invalid JSON payload: object "
					      "expected.")
			name = self.upload_name(q, meta)
			if not meta.get("contentType"):
				meta["contentType"] = parts[1][0].get(
					"content-type") or \
					"application/octet-stream"
			return self.store(bk, name, parts[1][1], meta, q, headers)
		if ut == "resumable":
			meta = {}
			if raw.strip():
				try:
					meta = json.loads(raw.decode("utf-8"))
				except (ValueError, UnicodeError):
					raise ApiError(400, "parseError",
						       "Parse Error")
				if not isinstance(meta, dict):
					raise invalid("Invalid JSON payload: object "
						      "expected.")
			name = self.upload_name(q, meta)
			check_object_name(name)
			self.check_meta(meta, False)
			if not meta.get("contentType") and \
			   headers.get("x-upload-content-type"):
				meta["contentType"] = headers[
					"x-upload-content-type"]
			xl = headers.get("x-upload-content-length")
			if xl is not None and (not xl.isdigit() or
					       int(xl) > st.max_object_size):
				raise ApiError(413, "uploadTooLarge",
					       "Upload too large.")
			uid = "emu-" + secrets.token_urlsafe(24)
			st.uploads[uid] = Upload(b, name, meta, dict(q), st.now())
			loc = "%s/upload/storage/v1/b/%s/o?uploadType=resumable" \
			      "&name=%s&upload_id=%s" % (
				      ctx["base"], b,
				      urllib.parse.quote(name, safe=""), uid)
			return ("session", loc, uid)
		if not ut:
			raise required("parameter: uploadType")
		raise bad_param("uploadType", ut)

	@staticmethod
	def upload_name(q, meta):
		name = meta.get("name")
		qn = q.get("name")
		if name is not None and not isinstance(name, str):
			raise invalid("Invalid value for name.")
		if name and qn and name != qn:
			raise invalid("Object name in metadata and URL differ.")
		name = name or qn
		if not name:
			raise required("object name")
		return name

	def upload_put(self, uid, raw, ctx):
		st = self.st
		up = st.uploads.get(uid)
		if up is None:
			raise ApiError(404, "notFound", "No such upload session.")
		if up.result is not None:
			return up.result
		bk = self.bucket(up.bucket)
		cr = ctx["headers"].get("content-range")
		total = None
		if cr is None:
			start = len(up.data)
			total = len(up.data) + len(raw)
		else:
			m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)",
					 cr.strip())
			if not m:
				raise invalid("Invalid Content-Range: %s" % cr[:40])
			if m.group(3) != "*":
				total = int(m.group(3))
			if m.group(1) is None:
				if raw:
					raise invalid("Content-Range bytes */N with "
						      "a body.")
				start = len(up.data)
			else:
				start, last = int(m.group(1)), int(m.group(2))
				if last < start or last - start + 1 != len(raw):
					raise invalid("Content-Range does not match "
						      "the body length.")
		if start > len(up.data):
			raise invalid("Upload chunk starts past the persisted "
				      "data (%d > %d)." % (start, len(up.data)))
		new = raw[len(up.data) - start:]
		if len(up.data) + len(new) > st.max_object_size:
			raise ApiError(413, "uploadTooLarge", "Upload too large.")
		up.data += new
		if total is not None and len(up.data) > total:
			raise invalid("More data than the declared total size.")
		if total is None or len(up.data) < total:
			return ("incomplete", len(up.data))
		o = self.store(bk, up.name, bytes(up.data), up.meta, up.q,
			       ctx["headers"])
		up.result = o
		up.data = bytearray()
		return o

	def upload_cancel(self, uid):
		if self.st.uploads.pop(uid, None) is None:
			raise ApiError(404, "notFound", "No such upload session.")


# ------------------------------------------------------------ routes

B = r"([^/]+)"
ROUTES = [
	# (http method, path regex, handler, method name, extra query names)
	("GET", r"/storage/v1/b", "buckets_list", "buckets.list",
	 {"project", "projection", "prefix", "maxResults", "pageToken"}),
	("POST", r"/storage/v1/b", "buckets_insert", "buckets.insert",
	 {"project", "projection", "predefinedAcl",
	  "predefinedDefaultObjectAcl", "enableObjectRetention"}),
	("GET", r"/storage/v1/b/" + B, "buckets_get", "buckets.get",
	 {"projection", "ifMetagenerationMatch", "ifMetagenerationNotMatch"}),
	("PATCH", r"/storage/v1/b/" + B, "buckets_patch", "buckets.patch",
	 {"projection", "ifMetagenerationMatch", "ifMetagenerationNotMatch",
	  "predefinedAcl", "predefinedDefaultObjectAcl"}),
	("DELETE", r"/storage/v1/b/" + B, "buckets_delete", "buckets.delete",
	 {"ifMetagenerationMatch", "ifMetagenerationNotMatch"}),
	("GET", r"/storage/v1/b/" + B + "/o", "objects_list", "objects.list",
	 {"prefix", "delimiter", "pageToken", "maxResults", "versions",
	  "projection", "startOffset", "endOffset",
	  "includeTrailingDelimiter", "matchGlob",
	  "includeFoldersAsPrefixes", "softDeleted"}),
	("POST", r"/storage/v1/b/" + B + "/o", "objects_insert_plain",
	 "objects.insert", set()),
	("GET", r"/storage/v1/b/" + B + "/o/" + B, "objects_get",
	 "objects.get", PRE_QUERY | {"generation", "projection",
				     "softDeleted"}),
	("GET", r"/download/storage/v1/b/" + B + "/o/" + B, "objects_get",
	 "objects.get", PRE_QUERY | {"generation", "projection"}),
	("PATCH", r"/storage/v1/b/" + B + "/o/" + B, "objects_patch",
	 "objects.patch", PRE_QUERY | {"generation", "projection",
				       "predefinedAcl",
				       "overrideUnlockedRetention"}),
	("PUT", r"/storage/v1/b/" + B + "/o/" + B, "objects_update",
	 "objects.update", PRE_QUERY | {"generation", "projection",
					"predefinedAcl",
					"overrideUnlockedRetention"}),
	("DELETE", r"/storage/v1/b/" + B + "/o/" + B, "objects_delete",
	 "objects.delete", PRE_QUERY | {"generation"}),
	("POST", r"(?:/resumable)?/upload/storage/v1/b/" + B + "/o", "objects_insert",
	 "objects.insert", PRE_QUERY | {"uploadType", "name", "projection",
					"predefinedAcl", "contentEncoding",
					"kmsKeyName", "upload_id"}),
	("PUT", r"(?:/resumable)?/upload/storage/v1/b/" + B + "/o", "upload_put",
	 "uploads.put", PRE_QUERY | {"uploadType", "name", "upload_id",
				     "projection", "predefinedAcl",
				     "contentEncoding", "kmsKeyName"}),
	("DELETE", r"(?:/resumable)?/upload/storage/v1/b/" + B + "/o", "upload_cancel",
	 "uploads.cancel", PRE_QUERY | {"uploadType", "name", "upload_id",
					"projection", "predefinedAcl",
					"contentEncoding", "kmsKeyName"}),
]
ROUTES = [(m, re.compile(rx), h, n, qs) for m, rx, h, n, qs in ROUTES]
API_METHODS = set(r[3] for r in ROUTES) | {"objects.media"}


class Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "keyfs-gcs-emulator/1"
	disable_nagle_algorithm = True
	emu = None   # set on the subclass

	def log_message(self, fmt, *args):  # quiet; never log bodies or tokens
		pass

	def handle_one_request(self):
		try:
			super().handle_one_request()
		except DropResponse:
			try:
				self.connection.setsockopt(
					socket.SOL_SOCKET, socket.SO_LINGER,
					struct.pack("ii", 1, 0))
				self.connection.close()
			except OSError:
				pass
			self.close_connection = True
		except (ConnectionError, socket.timeout):
			self.close_connection = True

	# ---------- plumbing

	def _read_body(self):
		te = self.headers.get("Transfer-Encoding", "")
		if te.lower() == "chunked":
			out = bytearray()
			while True:
				line = self.rfile.readline(1024).strip()
				n = int(line.split(b";")[0], 16)
				if n == 0:
					while self.rfile.readline(1024).strip():
						pass
					return bytes(out)
				out += self.rfile.read(n)
				self.rfile.readline(8)
				if len(out) > MAX_BODY:
					raise ValueError("body too large")
		n = int(self.headers.get("Content-Length") or 0)
		if n < 0 or n > MAX_BODY:
			raise ValueError("body too large")
		return self.rfile.read(n) if n else b""

	def _send(self, code, body, ctype="application/json; charset=UTF-8",
		  extra=None):
		if isinstance(body, (dict, list)):
			body = (json.dumps(body, indent=1) + "\n").encode()
		elif isinstance(body, str):
			body = body.encode()
		self.send_response(code)
		if code not in (204, 304):
			self.send_header("Content-Type", ctype)
		self.send_header("Content-Length", str(len(body)))
		for k, v in (extra or []):
			self.send_header(k, v)
		self.end_headers()
		if self.command != "HEAD" and body:
			self.wfile.write(body)
		self._status = code

	def _api_error(self, e):
		extra = []
		if e.code == 401:
			extra.append(("WWW-Authenticate",
				      'Bearer realm="https://accounts.google.com/"'))
		self._send(e.code, e.body(), extra=extra)

	def _log(self, method):
		st = self.emu.st
		hdrs = {}
		for k, v in self.headers.items():
			if k.lower() in ("authorization", "cookie") or \
			   "encryption-key" in k.lower():
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
		if getattr(self, "_dropped", False):
			code = "dropped"
		with st.lock:
			entry["status"] = int(code) if code.isdigit() else code
			r = st.responses.setdefault(method, {})
			r[code] = r.get(code, 0) + 1

	def _fault(self, method):
		"""Latency and error faults; return ApiError or None."""
		st = self.emu.st
		with st.lock:
			f = st.faults
			lat = f.get("latency_ms", 0)
			lm = f.get("latency_methods")
			em = f.get("error_methods")
			fail = False
			applies = (method in em) if em else True
			if f.get("error_status") is not None and applies:
				if f.get("error_count", 0) > 0:
					f["error_count"] -= 1
					fail = True
				elif f.get("error_rate", 0) > 0 and \
				     st.fault_rng.random() < f["error_rate"]:
					fail = True
			if fail:
				st.faults_injected[method] = \
					st.faults_injected.get(method, 0) + 1
			status = f.get("error_status")
			msg = f.get("error_message")
		if lat and (not lm or method in lm):
			time.sleep(lat / 1000.0)
		if not fail:
			return None
		code = int(status)
		reason = {429: "rateLimitExceeded", 500: "backendError",
			  502: "backendError", 503: "backendError",
			  504: "backendError", 408: "requestTimeout"}.get(
				  code, "backendError")
		return ApiError(code, reason, msg or "We encountered an internal "
				"error. Please try again. (emulated fault)")

	def _should_drop(self, method):
		st = self.emu.st
		with st.lock:
			f = st.faults
			dm = f.get("drop_methods")
			if f.get("drop_count", 0) > 0 and (
					method in dm if dm else True):
				f["drop_count"] -= 1
				st.dropped[method] = st.dropped.get(method, 0) + 1
				return True
		return False

	def _corrupt_flag(self, method, kind):
		"""A callable: should this answer be corrupted (counts it)?"""
		st = self.emu.st

		def check():
			with st.lock:
				f = st.faults
				if not f.get(kind):
					return False
				if "corrupt_count" in f:
					if f["corrupt_count"] <= 0:
						return False
					f["corrupt_count"] -= 1
				st.corrupted[method] = \
					st.corrupted.get(method, 0) + 1
				return True
		return check

	def _auth(self):
		st = self.emu.st
		h = self.headers.get("Authorization")
		with st.lock:
			req, anyt = st.require_auth, st.any_token
			toks = st.static_tokens
			if not h:
				if not req:
					return
				raise ApiError(401, "required", "Anonymous caller "
					       "does not have storage access to "
					       "the Google Cloud Storage resource. "
					       "Login Required.", "Authorization",
					       "header")
			scheme, _, tok = h.partition(" ")
			tok = tok.strip()
			if scheme.lower() == "bearer" and tok and (
					anyt or tok in toks):
				return
			if not req and scheme.lower() == "bearer" and tok:
				return
		raise ApiError(401, "authError", "Invalid Credentials",
			       "Authorization", "header")

	def do_GET(self):
		self._dispatch()

	do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

	def _dispatch(self):
		self._dropped = False
		self._status = 0
		u = urllib.parse.urlsplit(self.path)
		self._path = u.path
		self._query = u.query
		try:
			body = self._read_body()
		except (ValueError, OSError):
			self.close_connection = True
			self._api_error(ApiError(413, "uploadTooLarge",
						 "Request body too large."))
			return
		p = u.path
		if p.startswith("/_emu/"):
			return self._admin(p, u.query, body)
		return self._api(p, u.query, body)

	def _api(self, path, query, raw):
		route = None
		for m, rx, h, mname, qs in ROUTES:
			mt = rx.fullmatch(path)
			if mt and m == self.command:
				route = (mt, h, mname, qs)
				break
		q = {}
		qerr = None
		try:
			for k, v in urllib.parse.parse_qsl(
					query, keep_blank_values=True,
					strict_parsing=False):
				if k in q:
					qerr = invalid("Parameter %s given twice."
						       % k[:40], k)
				q[k] = v
		except ValueError:
			qerr = invalid("Malformed query string.")
		if route is not None and route[1] == "objects_insert" and \
		   "upload_id" in q:
			for m, rx, h, mname, qs in ROUTES:
				if h == "upload_put":
					route = (route[0], h, mname, qs)
		if route is not None and route[1] == "objects_get" and \
		   (q.get("alt") == "media" or path.startswith("/download/")):
			route = (route[0], "objects_media", "objects.media",
				 route[3])
		method = route[2] if route else "unknown"
		entry = self._log(method)
		try:
			if route is None:
				raise ApiError(404, "notFound", "Not Found")
			err = self._fault(method)
			if err:
				raise err
			self._auth()
			if qerr:
				raise qerr
			mt, h, mname, qs = route
			for k, v in q.items():
				if k not in qs and k not in STD_QUERY:
					raise ApiError(400, "invalidParameter",
						       "Unknown parameter: %s" % k[:40],
						       k, "parameter")
			alt = q.get("alt", "json")
			if alt not in ("json", "media") or (
					alt == "media" and h != "objects_media"):
				raise bad_param("alt", alt)
			if path.startswith("/download/") and alt != "media":
				raise bad_param("alt", alt)
			if q.get("softDeleted", "false").lower() != "false":
				raise invalid("softDeleted is not supported by the "
					      "emulator.", "softDeleted")
			if "projection" in q and q["projection"] not in (
					"full", "noAcl"):
				raise bad_param("projection", q["projection"])
			mask = None
			if q.get("fields"):
				mask = parse_fields(q["fields"])
			for x in mt.groups():
				if re.search(r"%(?![0-9A-Fa-f]{2})", x):
					raise invalid("Invalid percent-encoding.")
			args = [urllib.parse.unquote(x, errors="strict")
				for x in mt.groups()]
			base = "http://%s" % (self.headers.get("Host") or
					      "127.0.0.1:%d" %
					      self.server.server_address[1])
			ctx = {"base": base, "headers": {
				k.lower(): v for k, v in self.headers.items()},
				"corrupt": self._corrupt_flag(
					mname, "corrupt_resource_hash")}
			self._run(h, mname, args, q, raw, ctx, mask)
		except UnicodeError:
			self._api_error(invalid("Invalid percent-encoding."))
		except ApiError as e:
			self._api_error(e)
		except NotModified:
			self._send(304, b"")
		finally:
			self._finish_log(entry, method)

	def _json_body(self, raw):
		if not raw.strip():
			return {}
		try:
			return json.loads(raw.decode("utf-8"))
		except (ValueError, UnicodeError):
			raise ApiError(400, "parseError", "Parse Error")

	def _run(self, h, mname, args, q, raw, ctx, mask):
		st = self.emu.st
		emu = self.emu
		if h == "objects_insert":
			with st.lock:
				res = emu.objects_insert(args[0], q, raw, ctx)
			if isinstance(res, tuple):
				_, loc, uid = res
				self._maybe_drop(mname)
				return self._send(200, b"", "text/plain", [
					("Location", loc),
					("X-GUploader-UploadID", uid)])
			return self._answer_obj(mname, res, ctx, mask)
		if h == "upload_put":
			uid = q.get("upload_id")
			if not uid:
				raise required("parameter: upload_id")
			with st.lock:
				res = emu.upload_put(uid, raw, ctx)
			if isinstance(res, tuple):
				n = res[1]
				self._maybe_drop(mname)
				hdr = [("Range", "bytes=0-%d" % (n - 1))] if n else []
				hdr.append(("X-GUploader-UploadID", uid))
				return self._send(308, b"", "text/plain", hdr)
			return self._answer_obj(mname, res, ctx, mask)
		if h == "upload_cancel":
			uid = q.get("upload_id")
			if not uid:
				raise required("parameter: upload_id")
			with st.lock:
				emu.upload_cancel(uid)
			self._maybe_drop(mname)
			return self._send(499, b"", "text/plain")
		if h == "objects_media":
			with st.lock:
				obj = emu.objects_media(*args, q, None, ctx)
				data, crc, md5 = obj.data, obj.crc, obj.md5
				hdr = self._media_headers(obj)
			return self._send_media(mname, data, crc, md5, hdr)
		body = None
		if self.command in ("POST", "PATCH", "PUT"):
			body = self._json_body(raw)
		with st.lock:
			res = getattr(emu, h)(*args, q, body, ctx)
		self._maybe_drop(mname)
		if res is None:
			return self._send(204, b"")
		if mask is not None:
			res = apply_fields(res, mask)
		self._send(200, res)

	def _maybe_drop(self, mname):
		if self._should_drop(mname):
			self._dropped = True
			raise DropResponse()

	def _answer_obj(self, mname, obj, ctx, mask):
		with self.emu.st.lock:
			res = obj.to_json(ctx["base"], ctx["corrupt"]())
		self._maybe_drop(mname)
		if mask is not None:
			res = apply_fields(res, mask)
		self._send(200, res)

	def _media_headers(self, obj):
		hdr = [("x-goog-generation", str(obj.generation)),
		       ("x-goog-metageneration", str(obj.metageneration)),
		       ("x-goog-stored-content-length", str(len(obj.data))),
		       ("x-goog-stored-content-encoding",
			obj.props.get("contentEncoding", "identity")),
		       ("x-goog-storage-class", "STANDARD"),
		       ("ETag", obj.etag()),
		       ("Last-Modified", time.strftime(
			       "%a, %d %b %Y %H:%M:%S GMT",
			       time.gmtime(obj.updated)))]
		for k, h in (("cacheControl", "Cache-Control"),
			     ("contentDisposition", "Content-Disposition"),
			     ("contentEncoding", "Content-Encoding"),
			     ("contentLanguage", "Content-Language")):
			if obj.props.get(k):
				hdr.append((h, obj.props[k]))
		self._media_ctype = obj.props.get("contentType",
						  "application/octet-stream")
		return hdr

	def _send_media(self, mname, data, crc, md5, hdr):
		st = self.emu.st
		if self._corrupt_flag(mname, "corrupt_hash_header")():
			crc ^= 0x5A5A5A5A
			md5 = bytes([md5[0] ^ 0xFF]) + md5[1:]
		if data and self._corrupt_flag(mname, "corrupt_media")():
			i = len(data) // 2
			data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
		with st.lock:
			split = st.split_hash_header
		if split:
			hdr.append(("x-goog-hash", "crc32c=" + crc32c_b64(crc)))
			hdr.append(("x-goog-hash", "md5=" + b64(md5)))
		else:
			hdr.append(("x-goog-hash", "crc32c=%s,md5=%s" % (
				crc32c_b64(crc), b64(md5))))
		hdr.append(("Accept-Ranges", "bytes"))
		code = 200
		rng = self.headers.get("Range")
		if rng:
			m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
			n = len(data)
			if m and (m.group(1) or m.group(2)):
				if m.group(1):
					a = int(m.group(1))
					b = int(m.group(2)) if m.group(2) else n - 1
				else:
					a, b = max(0, n - int(m.group(2))), n - 1
				b = min(b, n - 1)
				if a >= n or a > b:
					if n == 0 and a == 0:
						pass
					else:
						raise ApiError(
							416, "requestedRangeNotSatisfiable",
							"Request range not satisfiable")
				else:
					data = data[a:b + 1]
					code = 206
					hdr.append(("Content-Range", "bytes %d-%d/%d"
						    % (a, b, n)))
		self._maybe_drop(mname)
		self._send(code, data, self._media_ctype, hdr)

	# ---------- admin

	def _admin(self, path, query, raw):
		st = self.emu.st
		try:
			body = json.loads(raw) if raw.strip() else {}
		except ValueError:
			return self._send(400, {"error": "invalid JSON"})
		cmd = (self.command, path.rstrip("/"))
		q = dict(urllib.parse.parse_qsl(query))
		try:
			with st.lock:
				res = self._admin_inner(cmd, body, q)
		except (ValueError, KeyError, TypeError, ApiError) as e:
			return self._send(400, {"error": "%s: %s" % (
				type(e).__name__, str(e)[:200])})
		if res is None:
			return self._send(404, {"error": "unknown admin call"})
		return self._send(200, res)

	def _admin_inner(self, cmd, body, q):
		st = self.emu.st
		if cmd == ("POST", "/_emu/reset"):
			st.reset()
			return {"ok": True}
		if cmd == ("POST", "/_emu/buckets"):
			name = body["name"]
			check_bucket_name(name)
			if name in st.buckets:
				raise ValueError("bucket exists")
			st.buckets[name] = Bucket(name, body.get(
				"project", st.project), bool(body.get("versioning")),
				st.now())
			return {"ok": True, "name": name}
		if cmd == ("GET", "/_emu/buckets"):
			return {n: {"versioning": b.versioning}
				for n, b in st.buckets.items()}
		if cmd == ("GET", "/_emu/objects"):
			bk = st.buckets[q["bucket"]]
			out = []
			for name in sorted(bk.objects):
				for o in bk.objects[name]:
					out.append({"name": name,
						    "generation": o.generation,
						    "metageneration":
							    o.metageneration,
						    "live": o.deleted is None,
						    "size": len(o.data)})
			return out
		if cmd == ("POST", "/_emu/static-tokens"):
			t = body["token"]
			if not isinstance(t, str) or not t:
				raise ValueError("token must be a non-empty string")
			st.static_tokens.add(t)
			return {"ok": True}
		if cmd == ("GET", "/_emu/config"):
			return self._config_view()
		if cmd == ("POST", "/_emu/config"):
			for k, v in body.items():
				if k == "require_auth":
					st.require_auth = bool(v)
				elif k == "any_token":
					st.any_token = bool(v)
				elif k == "split_hash_header":
					st.split_hash_header = bool(v)
				elif k == "max_object_size":
					st.max_object_size = int(v)
				else:
					raise ValueError("unknown config %s" % k)
			return self._config_view()
		if cmd == ("GET", "/_emu/faults"):
			return dict(st.faults)
		if cmd == ("DELETE", "/_emu/faults"):
			st.clear_faults()
			return {"ok": True}
		if cmd == ("POST", "/_emu/faults"):
			allowed = {"error_status", "error_count", "error_rate",
				   "error_message", "error_methods", "seed",
				   "drop_count", "drop_methods", "latency_ms",
				   "latency_methods", "corrupt_hash_header",
				   "corrupt_media", "corrupt_resource_hash",
				   "corrupt_count"}
			for k in body:
				if k not in allowed:
					raise ValueError("unknown fault field %s" % k)
			for k in ("error_methods", "drop_methods",
				  "latency_methods"):
				for m in body.get(k) or []:
					if m not in API_METHODS:
						raise ValueError("unknown method %s" % m)
			s = body.get("error_status")
			if s is not None and not (isinstance(s, int) and
						  400 <= s <= 599):
				raise ValueError("bad error_status")
			if (body.get("error_count") or body.get("error_rate")) \
			   and s is None:
				body["error_status"] = 503
			f = dict(body)
			for k in ("error_count", "drop_count", "latency_ms"):
				f[k] = int(f.get(k, 0))
			if "corrupt_count" in f:
				f["corrupt_count"] = int(f["corrupt_count"])
			f["error_rate"] = float(f.get("error_rate", 0))
			st.faults = f
			st.fault_rng = random.Random(int(body.get("seed", 0)))
			return dict(f)
		if cmd == ("GET", "/_emu/counters"):
			return {"calls": dict(st.calls),
				"responses": {k: dict(v) for k, v in
					      st.responses.items()},
				"faults_injected": dict(st.faults_injected),
				"dropped": dict(st.dropped),
				"corrupted": dict(st.corrupted),
				"total": sum(st.calls.values())}
		if cmd == ("POST", "/_emu/counters/reset"):
			st.reset_counters()
			return {"ok": True}
		if cmd == ("GET", "/_emu/requests"):
			return list(st.request_log)
		return None

	def _config_view(self):
		st = self.emu.st
		return {"require_auth": st.require_auth,
			"any_token": st.any_token,
			"split_hash_header": st.split_hash_header,
			"max_object_size": st.max_object_size}


class Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True


def make_server(host="127.0.0.1", port=0, state=None):
	"""Build (not start) an emulator server; returns (server, state)."""
	state = state or State()
	handler = type("BoundHandler", (Handler,), {"emu": Emulator(state)})
	return Server((host, port), handler), state


# ------------------------------------------------- subprocess launcher


class EmulatorProcess:
	"""Run the emulator as a subprocess.

	    with EmulatorProcess(["--bucket", "b", "--static-token", t]) as emu:
	        emu.url          # "http://127.0.0.1:PORT"
	        emu.admin("POST", "/_emu/reset", {})
	"""

	def __init__(self, args=(), python=None, timeout=20):
		import selectors
		import subprocess
		self.python = python or sys.executable or "/usr/bin/python3"
		self.proc = subprocess.Popen(
			[self.python, os.path.abspath(__file__), "--port", "0"]
			+ list(args), stdout=subprocess.PIPE,
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
	ap = argparse.ArgumentParser(description="Cloud Storage JSON API "
				     "emulator")
	ap.add_argument("port_pos", nargs="?", type=int, default=None,
			metavar="PORT")
	ap.add_argument("--port", type=int, default=0)
	ap.add_argument("--host", default="127.0.0.1")
	ap.add_argument("--bucket", action="append", default=[])
	ap.add_argument("--versioned-bucket", action="append", default=[])
	ap.add_argument("--project-id", default="keyfs-emu")
	ap.add_argument("--static-token", action="append", default=[])
	ap.add_argument("--static-token-file", action="append", default=[])
	ap.add_argument("--any-token", action="store_true")
	ap.add_argument("--no-auth", action="store_true")
	ap.add_argument("--max-object-size", type=int, default=16 << 20)
	a = ap.parse_args(argv)
	st = State()
	try:
		for n in a.bucket + a.versioned_bucket:
			check_bucket_name(n)
	except ApiError as e:
		sys.stderr.write("gcs_emulator: %s\n" % e.message)
		return 2
	st.cli_buckets = [(n, False) for n in a.bucket] + \
		[(n, True) for n in a.versioned_bucket]
	st.cli_static.update(t for t in a.static_token if t)
	for f in a.static_token_file:
		with open(f) as fh:
			t = fh.read().strip()
		if t:
			st.cli_static.add(t)
	st.cli_require_auth = not a.no_auth
	st.cli_any_token = a.any_token
	st.cli_project = a.project_id
	st.cli_max_object = a.max_object_size
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
