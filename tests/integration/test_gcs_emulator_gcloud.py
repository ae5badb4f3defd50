"""Conformance of tests/emulators/gcs_emulator.py (Cloud Storage JSON API).

Part 1 drives the real gcloud CLI (`gcloud storage`, 528) against the
emulator: uploads (multipart, and resumable when the threshold is lowered),
downloads with gcloud's hash check, ls with "directories" and generations,
cat, rm, objects describe/update, preconditions, a retried 503 and
detected corruption.  gcloud is told to stay on the JSON API over plain
HTTP with CLOUDSDK_STORAGE_PREFERRED_API=json and
CLOUDSDK_STORAGE_USE_GRPC_IF_AVAILABLE=False, never to use parallel
composite uploads or sliced downloads
(CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED=False,
CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_THRESHOLD=0), to always check
hashes (CLOUDSDK_STORAGE_CHECK_HASHES=always) and to run sequentially
(CLOUDSDK_STORAGE_PROCESS_COUNT=1, _THREAD_COUNT=1).  gcloud uses the paths
/storage/v1/..., /upload/storage/v1/..., /resumable/upload/storage/v1/...
and downloads from /download/storage/v1/... with a Range header.

Part 2 checks the rest with plain HTTP (urllib): preconditions, pages,
prefixes, versions, resumable sessions, errors, auth, faults and counters.

What gcloud 528 does not exercise: gcloud storage checks a download
against the object resource's md5Hash (or crc32c), never against the
x-goog-hash header (only its XML API path reads that header), so the
corrupt_hash_header fault is checked with urllib.  Its
--remove-custom-metadata and --clear-custom-metadata send the new map
without JSON nulls (gcloud does not read the old map first), which under
the API's merge semantics for objects.patch (a null value deletes a key,
"metadata": null clears the map) removes nothing; the emulator follows the
API, so those two flags are not used here.
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulators"))

import gcs_emulator  # noqa: E402

pytestmark = pytest.mark.skipif(
	bool(os.environ.get("KEYFS_SAN")),
	reason="emulator conformance gains nothing under sanitizers")

PROJECT = "keyfs-test"
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"
TOKEN = "gcs-" + secrets.token_urlsafe(16)
TEST_TIMEOUT = 120
# buckets: gcb/gcv for gcloud (plain/versioned), urb/urv for urllib
BUCKETS = ["--bucket", "gcb", "--versioned-bucket", "gcv", "--bucket", "urb",
	   "--versioned-bucket", "urv", "--bucket", "pages"]


@pytest.fixture(autouse=True)
def _timeout():
	"""Per-test wall-clock limit (no pytest-timeout on this machine)."""
	def boom(signum, frame):
		raise TimeoutError("test exceeded %d s" % TEST_TIMEOUT)
	old = signal.signal(signal.SIGALRM, boom)
	signal.alarm(TEST_TIMEOUT)
	yield
	signal.alarm(0)
	signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def tmp():
	d = tempfile.mkdtemp(prefix="gcsemu-test-")
	os.chmod(d, 0o700)
	yield d
	shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def emu(tmp):
	tokfile = os.path.join(tmp, "emu-token")
	with open(tokfile, "w") as f:
		f.write(TOKEN + "\n")
	e = gcs_emulator.EmulatorProcess(
		BUCKETS + ["--project-id", PROJECT,
			   "--static-token-file", tokfile])
	try:
		yield e
	finally:
		e.stop()


@pytest.fixture(autouse=True)
def _no_faults(request):
	"""Every test starts and ends without faults."""
	if "emu" in request.fixturenames:
		e = request.getfixturevalue("emu")
		e.admin("DELETE", "/_emu/faults")
		yield
		e.admin("DELETE", "/_emu/faults")
	else:
		yield


def http(emu, method, path, body=None, token=TOKEN, headers=None, raw=None,
	 timeout=10):
	"""(status, parsed JSON or bytes, response headers)."""
	data = raw
	if body is not None:
		data = json.dumps(body).encode()
	req = urllib.request.Request(emu.url + path, data=data, method=method)
	if body is not None:
		req.add_header("Content-Type", "application/json")
	if token:
		req.add_header("Authorization", "Bearer " + token)
	for k, v in (headers or {}).items():
		req.add_header(k, v)
	try:
		with urllib.request.urlopen(req, timeout=timeout) as r:
			status, text, hdrs = r.status, r.read(), r.headers
	except urllib.error.HTTPError as e:
		status, text, hdrs = e.code, e.read(), e.headers
	if "json" in (hdrs.get("Content-Type") or ""):
		return status, json.loads(text), hdrs
	return status, text, hdrs


def q(name):
	return urllib.parse.quote(name, safe="")


def opath(bucket, name, query=""):
	return "/storage/v1/b/%s/o/%s%s" % (bucket, q(name),
					     ("?" + query) if query else "")


def put_media(emu, bucket, name, data, query="", ctype="text/plain",
	      token=TOKEN):
	path = "/upload/storage/v1/b/%s/o?uploadType=media&name=%s%s" % (
		bucket, q(name), ("&" + query) if query else "")
	return http(emu, "POST", path, raw=data, token=token,
		    headers={"Content-Type": ctype})


def put_multipart(emu, bucket, meta, data, query="", boundary="b0und4ry"):
	body = (b"--" + boundary.encode() + b"\r\n"
		b"Content-Type: application/json; charset=UTF-8\r\n\r\n" +
		json.dumps(meta).encode() + b"\r\n--" + boundary.encode() +
		b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data +
		b"\r\n--" + boundary.encode() + b"--\r\n")
	path = "/upload/storage/v1/b/%s/o?uploadType=multipart%s" % (
		bucket, ("&" + query) if query else "")
	return http(emu, "POST", path, raw=body, headers={
		"Content-Type": "multipart/related; boundary=%s" % boundary})


def reason(body):
	return body["error"]["errors"][0]["reason"]


def crc_b64(data):
	return base64.b64encode(
		gcs_emulator.crc32c(data).to_bytes(4, "big")).decode()


def md5_b64(data):
	return base64.b64encode(hashlib.md5(data).digest()).decode()


def counters(emu):
	return emu.admin("GET", "/_emu/counters")


# ------------------------------------------------------------ gcloud part


@pytest.fixture(scope="module")
def gcloud(emu, tmp):
	if not os.path.exists(GCLOUD):
		pytest.skip("gcloud CLI not installed")
	cfg = os.path.join(tmp, "gcloud-config")
	os.mkdir(cfg)
	tokfile = os.path.join(tmp, "access-token")
	fd = os.open(tokfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
	with os.fdopen(fd, "w") as f:
		f.write(TOKEN + "\n")
	env = {k: v for k, v in os.environ.items()
	       if not k.startswith(("CLOUDSDK_", "GOOGLE_", "BOTO"))}
	env.update({
		"CLOUDSDK_CONFIG": cfg,
		"CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
		"CLOUDSDK_METRICS_ENVIRONMENT": "offline",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": emu.url + "/",
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": tokfile,
		"CLOUDSDK_CORE_PROJECT": PROJECT,
		"CLOUDSDK_STORAGE_PREFERRED_API": "json",
		"CLOUDSDK_STORAGE_USE_GRPC_IF_AVAILABLE": "False",
		"CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED": "False",
		"CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_THRESHOLD": "0",
		"CLOUDSDK_STORAGE_CHECK_HASHES": "always",
		"CLOUDSDK_STORAGE_PROCESS_COUNT": "1",
		"CLOUDSDK_STORAGE_THREAD_COUNT": "1",
	})

	def run(*args, ok=True, extra_env=None):
		e = dict(env, **(extra_env or {}))
		r = subprocess.run([GCLOUD, "storage"] + list(args), env=e,
				   stdin=subprocess.DEVNULL,
				   stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=90, cwd=tmp)
		out, errtxt = r.stdout.decode(), r.stderr.decode()
		if ok:
			assert r.returncode == 0, "gcloud storage %s: %s" % (
				" ".join(args[:3]), errtxt[-800:])
		else:
			assert r.returncode != 0, "gcloud storage %s succeeded" % (
				" ".join(args[:3]))
		return out, errtxt
	return run


def _write(tmp, name, data):
	p = os.path.join(tmp, name)
	with open(p, "wb") as f:
		f.write(data)
	return p


def _read(p):
	with open(p, "rb") as f:
		return f.read()


def _requests(emu, method):
	return [r for r in emu.admin("GET", "/_emu/requests")
		if r["method"] == method]


# gcloud reads "?", "*" and "[" in gs:// URLs as wildcards: none here
NAMES = ["dir/sub/a.txt", "we:ird#na%me", "sp ace+plus&=", "d\u00e9j\u00e0/x"]


def test_gcloud_cp_roundtrip_names_and_hashes(gcloud, emu, tmp):
	data = b"\x00hello gcs\xff\n" + secrets.token_bytes(500)
	src = _write(tmp, "src.bin", data)
	for i, name in enumerate(NAMES):
		gcloud("cp", src, "gs://gcb/" + name)
	gcloud("cp", "--cache-control=private, max-age=0",
	       "--content-type=text/plain", "--custom-metadata=k1=v1,k2=v2",
	       src, "gs://gcb/meta.txt")
	ins = _requests(emu, "objects.insert")
	assert ins and all("uploadType=multipart" in r["query"] for r in ins)
	assert all(r["path"] == "/upload/storage/v1/b/gcb/o" for r in ins)
	for i, name in enumerate(NAMES):
		if i in (1, 3):
			dst = os.path.join(tmp, "dl%d" % i)
			gcloud("cp", "gs://gcb/" + name, dst)
			assert _read(dst) == data, name
		st, o, _ = http(emu, "GET", opath("gcb", name))
		assert st == 200 and o["name"] == name
		st, body, _ = http(emu, "GET", opath("gcb", name, "alt=media"))
		assert body == data
	# the names travelled percent-encoded in paths
	gets = [r["path"] for r in _requests(emu, "objects.get")]
	assert "/storage/v1/b/gcb/o/we%3Aird%23na%25me" in gets
	assert "/storage/v1/b/gcb/o/dir%2Fsub%2Fa.txt" in gets
	st, o, _ = http(emu, "GET", opath("gcb", "meta.txt"))
	assert o["cacheControl"] == "private, max-age=0"
	assert o["contentType"] == "text/plain"
	assert o["metadata"] == {"k1": "v1", "k2": "v2"}
	assert o["crc32c"] == crc_b64(data) and o["md5Hash"] == md5_b64(data)
	out, _ = gcloud("objects", "describe", "gs://gcb/meta.txt",
			"--format=json")
	d = json.loads(out)
	assert d["crc32c_hash"] == crc_b64(data)
	assert d["md5_hash"] == md5_b64(data)
	assert d["size"] == len(data)
	assert d["generation"] == o["generation"]
	assert d["custom_fields"] == {"k1": "v1", "k2": "v2"}
	assert d["storage_url"] == "gs://gcb/meta.txt#" + o["generation"]


def test_gcloud_cat_text(gcloud, emu, tmp):
	src = _write(tmp, "cat.txt", b"line one\nline two\n")
	gcloud("cp", src, "gs://gcb/cat/we:ird#c%t")
	out, _ = gcloud("cat", "gs://gcb/cat/we:ird#c%t")
	assert out == "line one\nline two\n"
	assert counters(emu)["calls"].get("objects.media", 0) >= 1


def test_gcloud_resumable_upload(gcloud, emu, tmp):
	data = secrets.token_bytes(300000)
	src = _write(tmp, "big.bin", data)
	gcloud("cp", src, "gs://gcb/big.bin",
	       extra_env={"CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD": "1"})
	starts = [r for r in _requests(emu, "objects.insert")
		  if "uploadType=resumable" in r["query"]]
	assert starts and starts[-1]["path"] == \
		"/resumable/upload/storage/v1/b/gcb/o"
	puts = _requests(emu, "uploads.put")
	assert puts and puts[-1]["status"] == 200
	dst = os.path.join(tmp, "big.out")
	gcloud("cp", "gs://gcb/big.bin", dst)
	assert _read(dst) == data
	st, o, _ = http(emu, "GET", opath("gcb", "big.bin"))
	assert o["size"] == "300000" and o["crc32c"] == crc_b64(data)


def test_gcloud_ls_prefixes(gcloud, emu, tmp):
	for n in ("lsd/top1", "lsd/a/b/one", "lsd/a/two", "lsd/c:d/three"):
		assert put_media(emu, "gcb", n, b"x")[0] == 200
	out, _ = gcloud("ls", "gs://gcb/lsd/")
	assert sorted(out.split()) == ["gs://gcb/lsd/a/", "gs://gcb/lsd/c:d/",
				       "gs://gcb/lsd/top1"]
	out, _ = gcloud("ls", "gs://gcb/lsd/a/")
	assert sorted(out.split()) == ["gs://gcb/lsd/a/b/", "gs://gcb/lsd/a/two"]
	out, _ = gcloud("ls", "-r", "gs://gcb/lsd/a/")
	assert "gs://gcb/lsd/a/b/one" in out.split()
	lists = _requests(emu, "objects.list")
	assert any("delimiter=%2F" in r["query"] and
		   "prefix=lsd%2Fa%2F" in r["query"] for r in lists)


def test_gcloud_generations_rm(gcloud, emu, tmp):
	v1 = _write(tmp, "v1", b"first\n")
	v2 = _write(tmp, "v2", b"second!\n")
	gcloud("cp", v1, "gs://gcv/k")
	gcloud("cp", v2, "gs://gcv/k")
	out, _ = gcloud("ls", "-a", "gs://gcv/k")
	urls = out.split()
	assert len(urls) == 2 and all(u.startswith("gs://gcv/k#") for u in urls)
	g1, g2 = sorted(int(u.split("#")[1]) for u in urls)
	assert g1 < g2
	out, _ = gcloud("cat", "gs://gcv/k#%d" % g1)
	assert out == "first\n"
	out, _ = gcloud("cat", "gs://gcv/k")
	assert out == "second!\n"
	gcloud("rm", "gs://gcv/k")
	out, _ = gcloud("ls", "gs://gcv/")
	assert "gs://gcv/k" not in out
	out, _ = gcloud("ls", "-a", "gs://gcv/k")
	assert len(out.split()) == 2      # both noncurrent now
	gcloud("rm", "gs://gcv/k#%d" % g1)
	out, _ = gcloud("ls", "-a", "gs://gcv/k")
	assert out.split() == ["gs://gcv/k#%d" % g2]
	_, e = gcloud("cat", "gs://gcv/k", ok=False)
	assert "matched no objects" in e
	dels = _requests(emu, "objects.delete")
	assert any("generation=%d" % g1 in r["query"] for r in dels)


def test_gcloud_describe_update_preconditions(gcloud, emu, tmp):
	src = _write(tmp, "u.txt", b"update me\n")
	gcloud("cp", src, "gs://gcb/upd")
	gcloud("objects", "update", "gs://gcb/upd", "--custom-metadata=a=b")
	gcloud("objects", "update", "gs://gcb/upd",
	       "--update-custom-metadata=c=d", "--content-type=text/x-keyfs")
	out, _ = gcloud("objects", "describe", "gs://gcb/upd", "--format=json")
	d = json.loads(out)
	assert d["metageneration"] == 3
	assert d["custom_fields"] == {"a": "b", "c": "d"}
	assert d["content_type"] == "text/x-keyfs"
	gen = d["generation"]
	assert [r["status"] for r in _requests(emu, "objects.patch")][-2:] \
		== [200, 200]
	# preconditions as gcloud sends them
	_, e = gcloud("cp", "--if-generation-match=0", src, "gs://gcb/upd",
		      ok=False)
	assert "412" in e and "pre-conditions" in e
	gcloud("cp", "--if-generation-match=" + gen, src, "gs://gcb/upd")
	_, e = gcloud("objects", "update", "gs://gcb/upd",
		      "--if-metageneration-match=7", "--content-type=a/b",
		      ok=False)
	assert "412" in e
	ins = _requests(emu, "objects.insert")
	assert "ifGenerationMatch=0" in ins[-2]["query"]
	assert [r["status"] for r in ins[-2:]] == [412, 200]


def test_gcloud_detects_corruption(gcloud, emu, tmp):
	data = b"precious bytes\n"
	src = _write(tmp, "c.txt", data)
	gcloud("cp", src, "gs://gcb/corrupt")
	dst = os.path.join(tmp, "c.out")
	emu.admin("POST", "/_emu/faults", {"corrupt_media": True})
	_, e = gcloud("cp", "gs://gcb/corrupt", dst, ok=False)
	assert "does not match" in e and md5_b64(data) in e
	assert not os.path.exists(dst)
	emu.admin("POST", "/_emu/faults", {"corrupt_resource_hash": True})
	_, e = gcloud("cp", src, "gs://gcb/corrupt2", ok=False)
	assert "does not match" in e
	c = counters(emu)["corrupted"]
	assert c.get("objects.media") and c.get("objects.insert")
	emu.admin("DELETE", "/_emu/faults")
	gcloud("cp", "gs://gcb/corrupt", dst)
	assert _read(dst) == data


def test_gcloud_retries_503_and_auth(gcloud, emu, tmp):
	src = _write(tmp, "r.txt", b"retry\n")
	emu.admin("POST", "/_emu/counters/reset")
	emu.admin("POST", "/_emu/faults", {"error_count": 1,
					   "error_methods": ["objects.insert"]})
	gcloud("cp", src, "gs://gcb/retried")
	c = counters(emu)
	assert c["faults_injected"] == {"objects.insert": 1}
	assert c["responses"]["objects.insert"] == {"503": 1, "200": 1}
	bad = _write(tmp, "bad-token", b"not-the-token\n")
	_, e = gcloud("ls", "gs://gcb/", ok=False,
		      extra_env={"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": bad})
	assert "401" in e and "Invalid Credentials" in e
	# the token gcloud sent is redacted in the request log
	r = _requests(emu, "objects.list")[-1]
	hdrs = {k.lower(): v for k, v in r["headers"].items()}
	assert hdrs["authorization"] == "Bearer <redacted>"


# ------------------------------------------------------------ HTTP part


def test_crc32c_vectors_and_resource_encoding(emu):
	c = gcs_emulator.crc32c
	assert c(b"") == 0
	assert c(b"123456789") == 0xE3069283
	assert c(b"hello") == 0x9A71BB4C
	assert c(b"hello world") == 0xC99465AA
	assert c(bytes(32)) == 0x8A9136AA
	assert c(b"\xff" * 32) == 0x62A8AB43
	assert c(bytes(range(32))) == 0x46DD794E
	assert c(bytes(range(31, -1, -1))) == 0x113FDB5C
	assert c(b" world", c(b"hello")) == 0xC99465AA
	st, o, _ = put_media(emu, "urb", "hello", b"hello")
	assert st == 200, o
	assert o["crc32c"] == "mnG7TA=="            # 9a 71 bb 4c
	assert o["md5Hash"] == "XUFAKrxLKna5cZ2REBfFkg=="
	assert o["size"] == "5" and o["metageneration"] == "1"
	assert o["kind"] == "storage#object" and o["bucket"] == "urb"
	assert o["id"] == "urb/hello/" + o["generation"]
	assert o["contentType"] == "text/plain"
	assert isinstance(o["generation"], str) and int(o["generation"]) > 0
	st, e, _ = put_media(emu, "urb", "empty", b"")
	assert e["crc32c"] == "AAAAAA==" and e["size"] == "0"
	assert e["md5Hash"] == "1B2M2Y8AsgTpgAmY7PhCfg=="


def test_media_headers_and_range(emu):
	data = b"0123456789abcdef"
	st, o, _ = put_multipart(emu, "urb", {
		"name": "media/obj", "contentType": "application/x-keyfs",
		"cacheControl": "private, no-cache, no-store, no-transform, "
				"max-age=0", "metadata": {"berglas-kms-key": "k"}},
		data)
	assert st == 200, o
	st, body, h = http(emu, "GET", opath("urb", "media/obj", "alt=media"))
	assert st == 200 and body == data
	assert h["x-goog-hash"] == "crc32c=%s,md5=%s" % (crc_b64(data),
							  md5_b64(data))
	assert h["x-goog-generation"] == o["generation"]
	assert h["x-goog-metageneration"] == "1"
	assert h["x-goog-stored-content-length"] == "16"
	assert h["Content-Type"] == "application/x-keyfs"
	assert h["Cache-Control"].startswith("private, no-cache")
	st, body, h = http(emu, "GET", opath("urb", "media/obj", "alt=media"),
			   headers={"Range": "bytes=4-7"})
	assert st == 206 and body == b"4567"
	assert h["Content-Range"] == "bytes 4-7/16"
	assert h["x-goog-hash"].startswith("crc32c=" + crc_b64(data))
	st, body, h = http(emu, "GET", "/download" + opath(
		"urb", "media/obj", "alt=media&generation=" + o["generation"]))
	assert st == 200 and body == data
	emu.admin("POST", "/_emu/config", {"split_hash_header": True})
	try:
		st, body, h = http(emu, "GET", opath("urb", "media/obj",
						     "alt=media"))
		assert h.get_all("x-goog-hash") == ["crc32c=" + crc_b64(data),
						    "md5=" + md5_b64(data)]
	finally:
		emu.admin("POST", "/_emu/config", {"split_hash_header": False})
	st, e, _ = http(emu, "GET", opath("urb", "media/obj", "alt=xml"))
	assert st == 400 and reason(e) == "invalidParameter"


def test_uploads_validation(emu):
	data = b"payload"
	st, o, _ = put_multipart(emu, "urb", {"name": "mp/ok", "metadata":
					     {"a": "1"}, "crc32c": crc_b64(data),
					     "md5Hash": md5_b64(data)}, data)
	assert st == 200 and o["metadata"] == {"a": "1"}
	assert o["contentType"] == "application/octet-stream"
	# wrong checksums in the metadata part
	st, e, _ = put_multipart(emu, "urb", {"name": "mp/bad", "crc32c":
					     crc_b64(b"other")}, data)
	assert st == 400 and reason(e) == "invalid" and "CRC32C" in \
		e["error"]["message"]
	st, e, _ = put_multipart(emu, "urb", {"name": "mp/bad", "md5Hash":
					     md5_b64(b"other")}, data)
	assert st == 400 and "MD5" in e["error"]["message"]
	# wrong x-goog-hash header on a media upload
	st, e, _ = http(emu, "POST", "/upload/storage/v1/b/urb/o?uploadType="
			"media&name=mp%2Fbad", raw=data, headers={
				"x-goog-hash": "crc32c=" + crc_b64(b"x")})
	assert st == 400 and reason(e) == "invalid"
	st, e, _ = http(emu, "GET", opath("urb", "mp/bad"))
	assert st == 404
	# names
	st, e, _ = put_multipart(emu, "urb", {"metadata": {}}, data)
	assert st == 400 and reason(e) == "required"
	st, e, _ = put_multipart(emu, "urb", {"name": "x"}, data,
				 query="name=y")
	assert st == 400
	for bad in (".", "..", "a\nb", "a\rb", "x" * 1025,
		    ".well-known/acme-challenge/t"):
		st, e, _ = put_media(emu, "urb", bad, data)
		assert st == 400 and reason(e) == "invalid", bad
	st, o, _ = put_media(emu, "urb", "\u00e9" * 512, data)   # 1024 bytes
	assert st == 200
	# custom metadata size and types, unknown fields
	st, e, _ = put_multipart(emu, "urb", {"name": "mp/big", "metadata": {
		"k": "v" * 8200}}, data)
	assert st == 400 and reason(e) == "invalid"
	st, e, _ = put_multipart(emu, "urb", {"name": "mp/t", "metadata": {
		"k": 5}}, data)
	assert st == 400
	st, e, _ = put_multipart(emu, "urb", {"name": "mp/u", "colour": "red"},
				 data)
	assert st == 400 and "colour" in e["error"]["message"]
	# not an upload URL; no uploadType; unknown uploadType
	st, e, _ = http(emu, "POST", "/storage/v1/b/urb/o", {"name": "x"})
	assert st == 400 and reason(e) == "wrongUrlForUpload"
	st, e, _ = http(emu, "POST", "/upload/storage/v1/b/urb/o?name=x",
			raw=data)
	assert st == 400 and reason(e) == "required"
	st, e, _ = http(emu, "POST", "/upload/storage/v1/b/urb/o?uploadType="
			"chunky&name=x", raw=data)
	assert st == 400 and reason(e) == "invalidParameter"
	emu.admin("POST", "/_emu/config", {"max_object_size": 10})
	try:
		st, e, _ = put_media(emu, "urb", "mp/large", b"y" * 11)
		assert st == 413 and reason(e) == "uploadTooLarge"
	finally:
		emu.admin("POST", "/_emu/config", {"max_object_size": 16 << 20})


def test_special_names(emu):
	names = ["a/b/c", "x:y", "gen#123", "p%25q%", "sp ace", "plus+sign",
		 "q?uery&x=y", "\u00fcml\u00e4ut/\u2603", "trailing/"]
	for n in names:
		st, o, _ = put_media(emu, "urb", "sn/" + n, n.encode())
		assert st == 200 and o["name"] == "sn/" + n, (n, o)
	for n in names:
		st, o, _ = http(emu, "GET", opath("urb", "sn/" + n))
		assert st == 200 and o["name"] == "sn/" + n
		assert o["selfLink"].endswith("/o/" + q("sn/" + n))
		st, body, _ = http(emu, "GET", opath("urb", "sn/" + n,
						     "alt=media"))
		assert body == n.encode()
	st, lst, _ = http(emu, "GET", "/storage/v1/b/urb/o?prefix=sn%2F")
	assert sorted(i["name"] for i in lst["items"]) == \
		sorted("sn/" + n for n in names)
	# an unencoded '/' in the object path does not name the object
	st, e, _ = http(emu, "GET", "/storage/v1/b/urb/o/sn/a/b/c")
	assert st == 404 and reason(e) == "notFound"
	# in a path '+' is a plus, not a space
	st, o, _ = http(emu, "GET", "/storage/v1/b/urb/o/sn%2Fplus+sign")
	assert st == 200 and o["name"] == "sn/plus+sign"
	# '%' travels as %25; a bad escape or bad UTF-8 is refused
	st, o, _ = http(emu, "GET", "/storage/v1/b/urb/o/sn%2Fp%2525q%25")
	assert st == 200 and o["name"] == "sn/p%25q%"
	for bad in ("sn%2Fp%ZZ", "sn%2Fp%2", "%FF%FE"):
		st, e, _ = http(emu, "GET", "/storage/v1/b/urb/o/" + bad)
		assert st == 400 and reason(e) == "invalid", bad


def test_preconditions(emu):
	n = "pre/obj"
	st, o, _ = put_media(emu, "urb", n, b"v1", "ifGenerationMatch=0")
	assert st == 200
	g1 = o["generation"]
	st, e, _ = put_media(emu, "urb", n, b"v2", "ifGenerationMatch=0")
	assert st == 412 and reason(e) == "conditionNotMet"
	assert e["error"]["code"] == 412 and e["error"]["message"] == \
		"At least one of the pre-conditions you specified did not hold."
	st, e, _ = put_media(emu, "urb", n, b"v2", "ifGenerationMatch=1")
	assert st == 412
	st, e, _ = put_media(emu, "urb", n, b"v2", "ifMetagenerationMatch=2")
	assert st == 412
	st, e, _ = put_media(emu, "urb", n, b"v2", "ifGenerationNotMatch=" + g1)
	assert st == 412
	st, e, _ = put_media(emu, "urb", "pre/none", b"v", "ifGenerationNotMatch"
			     "=0")
	assert st == 412
	st, e, _ = put_media(emu, "urb", "pre/none", b"v", "ifMetageneration"
			     "Match=1")
	assert st == 412
	st, e, _ = put_media(emu, "urb", n, b"v2", "ifGenerationMatch=abc")
	assert st == 400 and reason(e) == "invalidParameter"
	st, o2, _ = put_media(emu, "urb", n, b"v2", "ifGenerationMatch=%s&"
			      "ifMetagenerationMatch=1" % g1)
	assert st == 200 and int(o2["generation"]) > int(g1)
	g2 = o2["generation"]
	# reads: *Match -> 412, *NotMatch -> 304 without a body
	st, body, _ = http(emu, "GET", opath("urb", n, "ifGenerationNotMatch="
					     + g2))
	assert st == 304 and body == b""
	st, body, _ = http(emu, "GET", opath("urb", n, "alt=media&"
					     "ifMetagenerationNotMatch=1"))
	assert st == 304 and body == b""
	st, e, _ = http(emu, "GET", opath("urb", n, "alt=media&"
					  "ifGenerationMatch=" + g1))
	assert st == 412 and reason(e) == "conditionNotMet"
	st, body, _ = http(emu, "GET", opath("urb", n, "alt=media&"
					     "ifGenerationMatch=" + g2))
	assert st == 200 and body == b"v2"
	# patch and delete
	st, e, _ = http(emu, "PATCH", opath("urb", n, "ifMetagenerationMatch=2"),
			{"metadata": {"x": "1"}})
	assert st == 412
	st, e, _ = http(emu, "PATCH", opath("urb", n,
					    "ifMetagenerationNotMatch=1"),
			{"metadata": {"x": "1"}})
	assert st == 412
	st, o3, _ = http(emu, "PATCH", opath("urb", n, "ifMetagenerationMatch=1"),
			 {"metadata": {"x": "1"}})
	assert st == 200 and o3["metageneration"] == "2"
	assert o3["generation"] == g2 and o3["etag"] != o2["etag"]
	st, e, _ = put_media(emu, "urb", n, b"v3", "ifGenerationMatch=%s&"
			     "ifMetagenerationMatch=1" % g2)
	assert st == 412
	st, e, _ = http(emu, "DELETE", opath("urb", n, "ifGenerationMatch=" + g1))
	assert st == 412
	st, _, _ = http(emu, "GET", opath("urb", n))
	assert st == 200
	st, body, _ = http(emu, "DELETE", opath("urb", n, "ifGenerationMatch="
						+ g2 + "&ifMetagenerationMatch=2"))
	assert st == 204 and body == b""
	st, e, _ = http(emu, "GET", opath("urb", n))
	assert st == 404 and reason(e) == "notFound"
	assert e["error"]["message"] == "No such object: urb/" + n


def test_generations_and_versioning(emu):
	n = "ver/obj"
	gens = []
	for v in (b"one", b"two", b"three"):
		st, o, _ = put_media(emu, "urv", n, v)
		assert st == 200
		gens.append(o["generation"])
	assert gens == sorted(gens, key=int) and len(set(gens)) == 3
	for g, v in zip(gens, (b"one", b"two", b"three")):
		st, body, h = http(emu, "GET", opath("urv", n, "alt=media&"
						     "generation=" + g))
		assert st == 200 and body == v and h["x-goog-generation"] == g
	st, o, _ = http(emu, "GET", opath("urv", n, "generation=" + gens[0]))
	assert st == 200 and "timeDeleted" in o
	st, o, _ = http(emu, "GET", opath("urv", n))
	assert o["generation"] == gens[2] and "timeDeleted" not in o
	st, lst, _ = http(emu, "GET", "/storage/v1/b/urv/o?prefix=ver%2F&"
			  "versions=true")
	assert [i["generation"] for i in lst["items"]] == gens
	st, lst, _ = http(emu, "GET", "/storage/v1/b/urv/o?prefix=ver%2F")
	assert [i["generation"] for i in lst["items"]] == gens[2:]
	# a noncurrent generation can be patched by number
	st, o, _ = http(emu, "PATCH", opath("urv", n, "generation=" + gens[0]),
			{"metadata": {"old": "yes"}})
	assert st == 200 and o["metageneration"] == "2"
	# delete of the live object keeps it as noncurrent
	st, _, _ = http(emu, "DELETE", opath("urv", n))
	assert st == 204
	st, e, _ = http(emu, "GET", opath("urv", n))
	assert st == 404
	st, body, _ = http(emu, "GET", opath("urv", n, "alt=media&generation="
					     + gens[2]))
	assert body == b"three"
	st, _, _ = http(emu, "DELETE", opath("urv", n, "generation=" + gens[0]))
	assert st == 204
	st, e, _ = http(emu, "GET", opath("urv", n, "generation=" + gens[0]))
	assert st == 404 and ("#" + gens[0]) in e["error"]["message"]
	st, lst, _ = http(emu, "GET", "/storage/v1/b/urv/o?prefix=ver%2F&"
			  "versions=true")
	assert [i["generation"] for i in lst["items"]] == gens[1:]
	# without versioning an overwrite drops the old generation
	st, a, _ = put_media(emu, "urb", n, b"a")
	st, b, _ = put_media(emu, "urb", n, b"b")
	st, e, _ = http(emu, "GET", opath("urb", n, "generation=" +
					  a["generation"]))
	assert st == 404
	st, lst, _ = http(emu, "GET", "/storage/v1/b/urb/o?prefix=ver%2F&"
			  "versions=true")
	assert [i["generation"] for i in lst["items"]] == [b["generation"]]
	# bucket versioning through the API
	st, bk, _ = http(emu, "GET", "/storage/v1/b/urv")
	assert st == 200 and bk["versioning"] == {"enabled": True}
	st, bk, _ = http(emu, "GET", "/storage/v1/b/urb")
	assert "versioning" not in bk or bk["versioning"]["enabled"] is False


def test_list_pages_prefixes_offsets(emu):
	names = ["a/1", "a/2", "a/b/3", "b", "c/", "c/x", "d/y", "e", "f"]
	for n in names:
		assert put_media(emu, "pages", n, b"x")[0] == 200

	def listing(query):
		out_items, out_pref, tok, pages = [], [], None, 0
		while True:
			qq = query + ("&pageToken=" + tok if tok else "")
			st, b, _ = http(emu, "GET", "/storage/v1/b/pages/o?" + qq)
			assert st == 200, b
			pages += 1
			assert b["kind"] == "storage#objects"
			n = len(b.get("items", [])) + len(b.get("prefixes", []))
			out_items += [i["name"] for i in b.get("items", [])]
			out_pref += b.get("prefixes", [])
			tok = b.get("nextPageToken")
			if not tok:
				return out_items, out_pref, pages
			assert n == int(dict(urllib.parse.parse_qsl(
				query)).get("maxResults", 1000))

	items, pref, pages = listing("maxResults=1000")
	assert items == names and pref == [] and pages == 1
	items, pref, pages = listing("maxResults=2")
	assert items == names and pages == 5
	items, pref, pages = listing("delimiter=%2F")
	assert items == ["b", "e", "f"] and pref == ["a/", "c/", "d/"]
	items, pref, pages = listing("delimiter=%2F&maxResults=2")
	assert items == ["b", "e", "f"] and pref == ["a/", "c/", "d/"]
	assert pages == 3
	items, pref, _ = listing("delimiter=%2F&prefix=a%2F&maxResults=1")
	assert items == ["a/1", "a/2"] and pref == ["a/b/"]
	items, pref, _ = listing("delimiter=%2F&prefix=c%2F&"
				 "includeTrailingDelimiter=true")
	assert items == ["c/", "c/x"] and pref == []
	items, pref, _ = listing("delimiter=%2F&includeTrailingDelimiter=true")
	assert "c/" in items and "c/" in pref
	items, _, _ = listing("startOffset=b&endOffset=d%2F")
	assert items == ["b", "c/", "c/x"]
	st, b, _ = http(emu, "GET", "/storage/v1/b/pages/o?prefix=zzz")
	assert st == 200 and b == {"kind": "storage#objects"}
	# partial responses as gcloud asks for them
	st, b, _ = http(emu, "GET", "/storage/v1/b/pages/o?maxResults=1&"
			"fields=items%2Fname%2Citems%2Fgeneration%2CnextPageToken")
	assert set(b) == {"items", "nextPageToken"}
	assert set(b["items"][0]) == {"name", "generation"}
	st, b, _ = http(emu, "GET", "/storage/v1/b/pages/o?fields=items(name)")
	assert set(b["items"][0]) == {"name"}
	# bad tokens and sizes
	for bad in ("garbage", "eyJ4IjoxfQ"):
		st, e, _ = http(emu, "GET", "/storage/v1/b/pages/o?pageToken="
				+ bad)
		assert st == 400 and reason(e) == "invalid"
	st, b, _ = http(emu, "GET", "/storage/v1/b/pages/o?maxResults=1")
	st, e, _ = http(emu, "GET", "/storage/v1/b/pages/o?prefix=a&pageToken="
			+ b["nextPageToken"])
	assert st == 400          # a token of another listing
	st, e, _ = http(emu, "GET", "/storage/v1/b/pages/o?maxResults=0")
	assert st == 400
	st, e, _ = http(emu, "GET", "/storage/v1/b/pages/o?colour=red")
	assert st == 400 and reason(e) == "invalidParameter"
	# versions count as entries in pages
	for v in (b"1", b"2"):
		put_media(emu, "urv", "pv/obj", v)
	put_media(emu, "urv", "pv/z", b"z")
	seen, tok = [], None
	while True:
		st, b, _ = http(emu, "GET", "/storage/v1/b/urv/o?prefix=pv%2F&"
				"versions=true&maxResults=1" +
				("&pageToken=" + tok if tok else ""))
		seen += [(i["name"], i["generation"]) for i in b["items"]]
		tok = b.get("nextPageToken")
		if not tok:
			break
	assert [s[0] for s in seen] == ["pv/obj", "pv/obj", "pv/z"]
	assert int(seen[0][1]) < int(seen[1][1])


def test_patch_update_semantics(emu):
	n = "patch/obj"
	st, o, _ = put_multipart(emu, "urb", {"name": n, "metadata":
					     {"a": "1", "b": "2"},
					     "cacheControl": "no-cache",
					     "contentType": "text/plain"}, b"d")
	st, o, _ = http(emu, "PATCH", opath("urb", n), {"metadata": {
		"b": None, "c": "3"}, "contentDisposition": "inline"})
	assert st == 200 and o["metadata"] == {"a": "1", "c": "3"}
	assert o["cacheControl"] == "no-cache"
	assert o["contentDisposition"] == "inline" and o["metageneration"] == "2"
	assert o["updated"] >= o["timeCreated"]
	st, o, _ = http(emu, "PATCH", opath("urb", n), {"metadata": None,
						       "cacheControl": None})
	assert "metadata" not in o and "cacheControl" not in o
	assert o["metageneration"] == "3"
	st, o, _ = http(emu, "PUT", opath("urb", n), {"metadata": {"z": "9"}})
	assert st == 200 and o["metadata"] == {"z": "9"}
	assert "contentDisposition" not in o and o["metageneration"] == "4"
	st, e, _ = http(emu, "PATCH", opath("urb", n), {"flavour": "x"})
	assert st == 400
	st, e, _ = http(emu, "PATCH", opath("urb", n), raw=b"{not json",
			headers={"Content-Type": "application/json"})
	assert st == 400 and reason(e) == "parseError"
	st, e, _ = http(emu, "PATCH", opath("urb", "patch/none"), {})
	assert st == 404


def test_resumable_sessions(emu):
	data = secrets.token_bytes(1000)
	st, body, h = http(emu, "POST", "/upload/storage/v1/b/urb/o?uploadType="
			   "resumable&name=res%2Fobj", {"metadata": {"m": "1"},
							"contentType": "a/b"})
	assert st == 200
	loc = h["Location"]
	assert loc.startswith(emu.url + "/upload/storage/v1/b/urb/o?") and \
		"upload_id=" in loc
	path = loc[len(emu.url):]
	st, body, h = http(emu, "PUT", path, raw=data[:400], headers={
		"Content-Range": "bytes 0-399/*"})
	assert st == 308 and h["Range"] == "bytes=0-399"
	st, body, h = http(emu, "PUT", path, raw=b"", headers={
		"Content-Range": "bytes */*"})
	assert st == 308 and h["Range"] == "bytes=0-399"
	st, e, _ = http(emu, "PUT", path, raw=data[500:600], headers={
		"Content-Range": "bytes 500-599/1000"})
	assert st == 400     # a gap
	# resend overlapping data, then the rest
	st, o, _ = http(emu, "PUT", path, raw=data[300:], headers={
		"Content-Range": "bytes 300-999/1000"})
	assert st == 200, o
	assert o["size"] == "1000" and o["crc32c"] == crc_b64(data)
	assert o["metadata"] == {"m": "1"} and o["contentType"] == "a/b"
	st, body, _ = http(emu, "GET", opath("urb", "res/obj", "alt=media"))
	assert body == data
	# a finished session answers with the object again
	st, o2, _ = http(emu, "PUT", path, raw=b"", headers={
		"Content-Range": "bytes */1000"})
	assert st == 200 and o2["generation"] == o["generation"]
	# preconditions are checked when the upload completes
	st, _, h = http(emu, "POST", "/upload/storage/v1/b/urb/o?uploadType="
			"resumable&name=res%2Fobj&ifGenerationMatch=0", {})
	p2 = h["Location"][len(emu.url):]
	st, e, _ = http(emu, "PUT", p2, raw=b"x")
	assert st == 412 and reason(e) == "conditionNotMet"
	# cancel
	st, _, h = http(emu, "POST", "/upload/storage/v1/b/urb/o?uploadType="
			"resumable&name=res%2Fc", {})
	p3 = h["Location"][len(emu.url):]
	st, _, _ = http(emu, "DELETE", p3)
	assert st == 499
	st, e, _ = http(emu, "PUT", p3, raw=b"x")
	assert st == 404
	st, e, _ = http(emu, "GET", opath("urb", "res/c"))
	assert st == 404


def test_errors_and_auth(emu):
	st, e, h = http(emu, "GET", opath("urb", "hello"), token=None)
	assert st == 401 and reason(e) == "required"
	assert e["error"]["errors"][0]["location"] == "Authorization"
	assert h["WWW-Authenticate"].startswith("Bearer")
	st, e, _ = http(emu, "GET", opath("urb", "hello"), token="wrong")
	assert st == 401 and reason(e) == "authError"
	assert e["error"]["message"] == "Invalid Credentials"
	st, e, _ = put_media(emu, "urb", "noauth", b"x", token="wrong")
	assert st == 401
	assert http(emu, "GET", opath("urb", "noauth"))[0] == 404
	st, e, _ = http(emu, "GET", opath("nosuchbucket", "x"))
	assert st == 404 and reason(e) == "notFound"
	assert e["error"]["message"] == "The specified bucket does not exist."
	st, e, _ = http(emu, "GET", "/storage/v1/b/nosuchbucket/o")
	assert st == 404
	st, e, _ = put_media(emu, "nosuchbucket", "x", b"x")
	assert st == 404
	st, e, _ = http(emu, "GET", "/storage/v2/whatever")
	assert st == 404
	st, e, _ = http(emu, "GET", opath("urb", "hello", "generation=x"))
	assert st == 400 and reason(e) == "invalidParameter"
	st, e, _ = http(emu, "POST", "/storage/v1/b?project=" + PROJECT,
			{"name": "Bad_Bucket"})
	assert st == 400
	st, b, _ = http(emu, "POST", "/storage/v1/b?project=" + PROJECT,
			{"name": "made-by-api"})
	assert st == 200 and b["name"] == "made-by-api"
	st, e, _ = http(emu, "POST", "/storage/v1/b?project=" + PROJECT,
			{"name": "made-by-api"})
	assert st == 409 and reason(e) == "conflict"
	put_media(emu, "made-by-api", "o", b"x")
	st, e, _ = http(emu, "DELETE", "/storage/v1/b/made-by-api")
	assert st == 409
	http(emu, "DELETE", opath("made-by-api", "o"))
	st, _, _ = http(emu, "DELETE", "/storage/v1/b/made-by-api")
	assert st == 204
	st, b, _ = http(emu, "PATCH", "/storage/v1/b/pages",
			{"versioning": {"enabled": True}})
	assert st == 200 and b["versioning"] == {"enabled": True}
	assert b["metageneration"] == "2"
	st, b, _ = http(emu, "PATCH", "/storage/v1/b/pages",
			{"versioning": {"enabled": False}})
	assert b["versioning"] == {"enabled": False}


def _raw_request(emu, method, path, body=b"", headers=None):
	"""Send one request on a fresh socket; return the bytes received."""
	s = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
	try:
		hdr = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" \
		      "Authorization: Bearer %s\r\nContent-Length: %d\r\n" % (
			      method, path, emu.port, TOKEN, len(body))
		for k, v in (headers or {}).items():
			hdr += "%s: %s\r\n" % (k, v)
		s.sendall(hdr.encode() + b"\r\n" + body)
		out = b""
		while True:
			try:
				chunk = s.recv(65536)
			except ConnectionResetError:
				return out, "reset"
			if not chunk:
				return out, "eof"
			out += chunk
			if b"\r\n\r\n" in out:
				return out, "answer"
	finally:
		s.close()


def test_faults_and_counters(emu):
	emu.admin("POST", "/_emu/counters/reset")
	data = b"fault data"
	assert put_media(emu, "urb", "f/obj", data)[0] == 200
	emu.admin("POST", "/_emu/faults", {"error_count": 2})
	for _ in range(2):
		st, e, _ = http(emu, "GET", opath("urb", "f/obj"))
		assert st == 503 and reason(e) == "backendError"
		assert e["error"]["code"] == 503
	assert http(emu, "GET", opath("urb", "f/obj"))[0] == 200
	emu.admin("POST", "/_emu/faults", {"error_count": 1, "error_status":
					   429, "error_methods":
					   ["objects.media"]})
	assert http(emu, "GET", opath("urb", "f/obj"))[0] == 200
	st, e, _ = http(emu, "GET", opath("urb", "f/obj", "alt=media"))
	assert st == 429 and reason(e) == "rateLimitExceeded"
	# an error fault fails the call before it is applied
	emu.admin("POST", "/_emu/faults", {"error_count": 1})
	assert put_media(emu, "urb", "f/never", data)[0] == 503
	assert http(emu, "GET", opath("urb", "f/never"))[0] == 404
	# apply, then drop the answer (connection reset, no response)
	emu.admin("POST", "/_emu/faults", {"drop_count": 1, "drop_methods":
					   ["objects.insert"]})
	out, how = _raw_request(emu, "POST", "/upload/storage/v1/b/urb/o?"
				"uploadType=media&name=f%2Fdropped&"
				"ifGenerationMatch=0", b"dropped")
	assert out == b"" and how in ("reset", "eof")
	st, o, _ = http(emu, "GET", opath("urb", "f/dropped"))
	assert st == 200 and o["size"] == "7"
	st, e, _ = put_media(emu, "urb", "f/dropped", b"again",
			     "ifGenerationMatch=0")
	assert st == 412          # the retry sees the applied write
	# corrupted hashes: header, media, resource; corrupt_count limits
	emu.admin("POST", "/_emu/faults", {"corrupt_hash_header": True})
	st, body, h = http(emu, "GET", opath("urb", "f/obj", "alt=media"))
	assert body == data
	assert h["x-goog-hash"] != "crc32c=%s,md5=%s" % (crc_b64(data),
							  md5_b64(data))
	assert not h["x-goog-hash"].startswith("crc32c=" + crc_b64(data))
	emu.admin("POST", "/_emu/faults", {"corrupt_media": True})
	st, body, h = http(emu, "GET", opath("urb", "f/obj", "alt=media"))
	assert body != data and len(body) == len(data)
	assert h["x-goog-hash"] == "crc32c=%s,md5=%s" % (crc_b64(data),
							  md5_b64(data))
	emu.admin("POST", "/_emu/faults", {"corrupt_resource_hash": True,
					   "corrupt_count": 1})
	st, o, _ = http(emu, "GET", opath("urb", "f/obj"))
	assert o["crc32c"] != crc_b64(data) and o["md5Hash"] != md5_b64(data)
	st, o, _ = http(emu, "GET", opath("urb", "f/obj"))
	assert o["crc32c"] == crc_b64(data)
	emu.admin("DELETE", "/_emu/faults")
	c = counters(emu)
	assert c["faults_injected"] == {"objects.get": 2, "objects.media": 1,
					"objects.insert": 1}
	assert c["dropped"] == {"objects.insert": 1}
	assert c["responses"]["objects.insert"]["dropped"] == 1
	assert c["corrupted"] == {"objects.media": 2, "objects.get": 1}
	assert c["calls"]["objects.get"] == 8
	assert c["responses"]["objects.get"] == {"503": 2, "200": 5, "404": 1}
	assert c["total"] == sum(c["calls"].values())
	emu.admin("POST", "/_emu/counters/reset")
	assert counters(emu)["total"] == 0
	with pytest.raises(urllib.error.HTTPError):
		emu.admin("POST", "/_emu/faults", {"bogus": 1})
	with pytest.raises(urllib.error.HTTPError):
		emu.admin("POST", "/_emu/faults", {"error_count": 1,
						   "error_methods": ["nope"]})
