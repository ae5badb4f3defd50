"""Conformance of tests/emulators/kms_emulator.py.

Part 1 drives the real gcloud CLI (528) against the emulator: if gcloud
accepts the emulator's answers (and detects its injected corruption), the
emulator speaks the Cloud KMS v1 REST dialect the way Google's own client
expects.  Part 2 checks the rest with plain HTTP (urllib): pagination, the
OAuth token endpoint (JWT bearer + refresh token), the metadata server,
rotation rules, checksums, faults and counters.

The emulator runs as a subprocess of a python that has `cryptography`;
key generation / JWT signing go through tests/emulators/gcp_keys.py, which
falls back to such a subprocess too.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulators"))

import gcp_keys  # noqa: E402
import kms_emulator  # noqa: E402  (importable without cryptography)

PROJECT = "keyfs-test"
LOC = "projects/%s/locations/global" % PROJECT
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"
SCOPE = "https://www.googleapis.com/auth/cloudkms"
TEST_TIMEOUT = 150


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
	d = tempfile.mkdtemp(prefix="kmsemu-test-")
	os.chmod(d, 0o700)
	yield d
	shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def emu(tmp):
	e = kms_emulator.EmulatorProcess(["--project-id", PROJECT])
	try:
		yield e
	finally:
		e.stop()


@pytest.fixture(scope="module")
def sa(emu, tmp):
	"""A service account registered with the emulator through the admin API."""
	path = os.path.join(tmp, "sa.json")
	info = gcp_keys.make_sa_key(path, emu.url + "/token", PROJECT)
	emu.admin("POST", "/_emu/service-accounts", {"key_file": path})
	return info


def http(emu, method, path, body=None, token=None, headers=None, raw=None,
	 timeout=10):
	"""(status, parsed JSON or text, response headers)."""
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
	try:
		return status, json.loads(text), hdrs
	except ValueError:
		return status, text.decode(), hdrs


def form_post(emu, path, fields):
	raw = urllib.parse.urlencode(fields).encode()
	return http(emu, "POST", path, raw=raw, headers={
		"Content-Type": "application/x-www-form-urlencoded"})


def jwt_token(emu, sa_info, aud=None):
	st, body, _ = form_post(emu, "/token", {
		"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
		"assertion": gcp_keys.jwt_grant_assertion(
			sa_info, aud or emu.url + "/token", SCOPE)})
	assert st == 200, body
	return body["access_token"]


@pytest.fixture(scope="module")
def token(emu, sa):
	return jwt_token(emu, sa)


@pytest.fixture(scope="module")
def static_token(emu):
	"""A token that survives clock shifts (admin-registered static token)."""
	t = "static-" + secrets.token_urlsafe(16)
	emu.admin("POST", "/_emu/static-tokens", {"token": t})
	return t


def b64(data):
	return base64.b64encode(data).decode()


def kms(emu, token, method, path, body=None):
	return http(emu, method, "/v1/" + path, body, token)[:2]


def err_status(body):
	return body["error"]["status"]


# ------------------------------------------------------------ gcloud part


@pytest.fixture(scope="module")
def gcloud(emu, token, tmp):
	if not os.path.exists(GCLOUD):
		pytest.skip("gcloud CLI not installed")
	cfg = os.path.join(tmp, "gcloud-config")
	os.mkdir(cfg)
	tokfile = os.path.join(tmp, "access-token")
	fd = os.open(tokfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
	with os.fdopen(fd, "w") as f:
		f.write(token + "\n")
	env = {k: v for k, v in os.environ.items()
	       if not k.startswith(("CLOUDSDK_", "GOOGLE_"))}
	env.update({
		"CLOUDSDK_CONFIG": cfg,
		"CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
		"CLOUDSDK_METRICS_ENVIRONMENT": "offline",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS": emu.url + "/",
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": tokfile,
		"CLOUDSDK_CORE_PROJECT": PROJECT,
	})

	def run(*args, ok=True):
		r = subprocess.run([GCLOUD, "kms"] + list(args), env=env,
				   stdin=subprocess.DEVNULL,
				   stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=90, cwd=tmp)
		out, errtxt = r.stdout.decode(), r.stderr.decode()
		if ok:
			assert r.returncode == 0, "gcloud kms %s: %s" % (
				" ".join(args[:3]), errtxt[-800:])
		else:
			assert r.returncode != 0, "gcloud kms %s succeeded" % (
				" ".join(args[:3]))
		return out, errtxt
	return run


def test_gcloud_keyrings(gcloud, emu):
	gcloud("keyrings", "create", "ring-g1", "--location", "global")
	_, e = gcloud("keyrings", "create", "ring-g1", "--location", "global",
		      ok=False)
	assert "ALREADY_EXISTS" in e and "ring-g1 already exists" in e
	_, e = gcloud("keyrings", "create", "bad.id", "--location", "global",
		      ok=False)
	assert "INVALID_ARGUMENT" in e
	out, _ = gcloud("keyrings", "list", "--location", "global",
			"--format=json")
	names = [r["name"] for r in json.loads(out)]
	assert LOC + "/keyRings/ring-g1" in names
	assert not any(n.endswith("/bad.id") for n in names)
	out, _ = gcloud("keyrings", "describe", "ring-g1", "--location",
			"global", "--format=json")
	d = json.loads(out)
	assert d["name"] == LOC + "/keyRings/ring-g1"
	assert d["createTime"].endswith("Z")
	reqs = emu.admin("GET", "/_emu/requests")
	ring_creates = [r for r in reqs if r["method"] == "keyRings.create"]
	assert [r["status"] for r in ring_creates][-3:] == [200, 409, 400]
	# gcloud sent the token it was given (value redacted in the log)
	hdrs = {k.lower(): v for k, v in ring_creates[-1]["headers"].items()}
	assert hdrs["authorization"] == "Bearer <redacted>"


def test_gcloud_keys_encrypt_decrypt_rotate(gcloud, emu, token, tmp):
	kr = ["--keyring", "ring-g2", "--location", "global"]
	gcloud("keyrings", "create", "ring-g2", "--location", "global")
	nrt = time.strftime("%Y-%m-%dT%H:%M:%SZ",
			    time.gmtime(time.time() + 86400 * 7))
	out, _ = gcloud("keys", "create", "k1", *kr, "--purpose=encryption",
			"--rotation-period=30d", "--next-rotation-time=" + nrt,
			"--format=json")
	key = json.loads(out)
	if isinstance(key, list):   # gcloud prints created resources as a list
		assert len(key) == 1
		key = key[0]
	kname = LOC + "/keyRings/ring-g2/cryptoKeys/k1"
	assert key["name"] == kname
	assert key["purpose"] == "ENCRYPT_DECRYPT"
	assert key["rotationPeriod"] == "2592000s"
	assert key["nextRotationTime"].startswith(nrt[:-1])
	assert key["primary"]["name"] == kname + "/cryptoKeyVersions/1"
	assert key["versionTemplate"]["algorithm"] == \
		"GOOGLE_SYMMETRIC_ENCRYPTION"

	def path(n):
		return os.path.join(tmp, n)

	def write(n, data):
		with open(path(n), "wb") as f:
			f.write(data)

	def read(n):
		with open(path(n), "rb") as f:
			return f.read()

	pt = b"\x00" + secrets.token_bytes(3000) + b"\x00\xff\x00"
	aad = b"aad\x00" + secrets.token_bytes(100)
	write("pt", pt)
	write("aad", aad)
	write("aad-wrong", aad[:-1] + bytes([aad[-1] ^ 1]))
	gcloud("encrypt", "--key", "k1", *kr, "--plaintext-file", path("pt"),
	       "--ciphertext-file", path("ct1"))
	gcloud("decrypt", "--key", "k1", *kr, "--ciphertext-file", path("ct1"),
	       "--plaintext-file", path("pt1"))
	assert read("pt1") == pt
	assert read("ct1") != pt
	gcloud("encrypt", "--key", "k1", *kr, "--plaintext-file", path("pt"),
	       "--ciphertext-file", path("ct2"),
	       "--additional-authenticated-data-file", path("aad"))
	gcloud("decrypt", "--key", "k1", *kr, "--ciphertext-file", path("ct2"),
	       "--plaintext-file", path("pt2"),
	       "--additional-authenticated-data-file", path("aad"))
	assert read("pt2") == pt
	_, e = gcloud("decrypt", "--key", "k1", *kr, "--ciphertext-file",
		      path("ct2"), "--plaintext-file", path("pt2x"),
		      "--additional-authenticated-data-file", path("aad-wrong"),
		      ok=False)
	assert "INVALID_ARGUMENT" in e and "Decryption failed" in e

	# rotation: a new version is not primary until set
	out, _ = gcloud("keys", "versions", "create", "--key", "k1", *kr,
			"--format=json")
	v2 = json.loads(out)
	assert v2["name"] == kname + "/cryptoKeyVersions/2"
	assert v2["state"] == "ENABLED"
	out, _ = gcloud("keys", "versions", "list", "--key", "k1", *kr,
			"--format=json")
	assert [v["name"].rsplit("/", 1)[1] for v in json.loads(out)] == \
		["1", "2"]
	st, k = kms(emu, token, "GET", kname)
	assert st == 200 and k["primary"]["name"].endswith("/1")
	out, _ = gcloud("keys", "set-primary-version", "k1", "--version=2",
			*kr, "--format=json")
	assert json.loads(out)["primary"]["name"].endswith("/2")

	# old ciphertext still decrypts; new encryptions use version 2
	gcloud("decrypt", "--key", "k1", *kr, "--ciphertext-file", path("ct1"),
	       "--plaintext-file", path("pt1b"))
	assert read("pt1b") == pt
	gcloud("encrypt", "--key", "k1", *kr, "--plaintext-file", path("pt"),
	       "--ciphertext-file", path("ct3"))
	st, d = kms(emu, token, "POST", kname + ":decrypt",
		    {"ciphertext": b64(read("ct3"))})
	assert st == 200 and base64.b64decode(d["plaintext"]) == pt
	assert d.get("usedPrimary") is True
	st, d = kms(emu, token, "POST", kname + ":decrypt",
		    {"ciphertext": b64(read("ct1"))})
	assert st == 200 and base64.b64decode(d["plaintext"]) == pt
	assert "usedPrimary" not in d

	out, _ = gcloud("keys", "update", "k1", *kr, "--primary-version=1",
			"--format=json")
	assert json.loads(out)["primary"]["name"].endswith("/1")
	out, _ = gcloud("keys", "list", *kr, "--format=json")
	keys = json.loads(out)
	assert [k["name"] for k in keys] == [kname]
	assert keys[0]["primary"]["name"].endswith("/1")


def test_gcloud_detects_corrupted_crc(gcloud, emu, tmp):
	kr = ["--keyring", "ring-g3", "--location", "global"]
	gcloud("keyrings", "create", "ring-g3", "--location", "global")
	gcloud("keys", "create", "k", *kr, "--purpose=encryption")
	pt = os.path.join(tmp, "pt3")
	with open(pt, "wb") as f:
		f.write(b"\x00corrupt me\x00")
	gcloud("encrypt", "--key", "k", *kr, "--plaintext-file", pt,
	       "--ciphertext-file", pt + ".ct")
	emu.admin("POST", "/_emu/faults", {"corrupt_crc": True})
	try:
		_, e = gcloud("encrypt", "--key", "k", *kr, "--plaintext-file",
			      pt, "--ciphertext-file", pt + ".ct2", ok=False)
		assert "corrupted in-transit" in e
		_, e = gcloud("decrypt", "--key", "k", *kr, "--ciphertext-file",
			      pt + ".ct", "--plaintext-file", pt + ".out",
			      ok=False)
		assert "corrupted in-transit" in e
		assert not os.path.exists(pt + ".out") or \
			os.path.getsize(pt + ".out") == 0
	finally:
		emu.admin("DELETE", "/_emu/faults")


# ------------------------------------------------------------ HTTP part


def test_crc32c_vectors():
	c = kms_emulator.crc32c
	assert c(b"") == 0
	assert c(b"123456789") == 0xE3069283
	assert c(b"hello") == 2591144780
	assert c(b"hello world") == 0xC99465AA
	assert c(bytes(32)) == 0x8A9136AA
	assert c(b"\xff" * 32) == 0x62A8AB43
	assert c(bytes(range(32))) == 0x46DD794E
	assert c(bytes(range(31, -1, -1))) == 0x113FDB5C


def _mk_ring_key(emu, token, ring, key=None, body=None):
	st, b = kms(emu, token, "POST", LOC + "/keyRings?keyRingId=" + ring, {})
	assert st == 200, b
	if key:
		st, b = kms(emu, token, "POST", "%s/keyRings/%s/cryptoKeys?"
			    "cryptoKeyId=%s" % (LOC, ring, key),
			    body or {"purpose": "ENCRYPT_DECRYPT"})
		assert st == 200, b
		return b["name"]
	return LOC + "/keyRings/" + ring


def test_pagination(emu, token):
	ring = _mk_ring_key(emu, token, "ring-page")
	for i in range(5):
		st, _ = kms(emu, token, "POST", ring + "/cryptoKeys?cryptoKeyId=k%d"
			    % i, {"purpose": "ENCRYPT_DECRYPT"})
		assert st == 200
	seen, tok, pages = [], None, 0
	while True:
		q = "?pageSize=2" + ("&pageToken=" + tok if tok else "")
		st, b = kms(emu, token, "GET", ring + "/cryptoKeys" + q)
		assert st == 200, b
		pages += 1
		assert b["totalSize"] == 5
		seen += [k["name"].rsplit("/", 1)[1] for k in b["cryptoKeys"]]
		tok = b.get("nextPageToken")
		if not tok:
			break
	assert pages == 3 and seen == ["k0", "k1", "k2", "k3", "k4"]
	st, b = kms(emu, token, "GET", ring + "/cryptoKeys?pageSize=2&"
		    "pageToken=garbage")
	assert st == 400 and err_status(b) == "INVALID_ARGUMENT"
	st, b = kms(emu, token, "GET", ring + "/cryptoKeys?pageSize=-1")
	assert st == 400
	st, b = kms(emu, token, "GET", ring + "/cryptoKeys?filter=x")
	assert st == 400
	# a token from another collection is refused
	st, b = kms(emu, token, "GET", "projects/%s/locations?pageSize=1"
		    % PROJECT)
	assert st == 200 and len(b["locations"]) == 1 and b["nextPageToken"]
	st, b2 = kms(emu, token, "GET", ring + "/cryptoKeys?pageToken="
		     + b["nextPageToken"])
	assert st == 400
	# empty collection: no list field, no token, no totalSize
	st, b = kms(emu, token, "GET", LOC.replace("global", "us-east1")
		    + "/keyRings?pageSize=10")
	assert st == 200 and b == {}
	# versions
	st, _ = kms(emu, token, "POST", ring + "/cryptoKeys/k0/"
		    "cryptoKeyVersions", {})
	st, b = kms(emu, token, "GET", ring + "/cryptoKeys/k0/"
		    "cryptoKeyVersions?pageSize=1")
	assert st == 200 and b["totalSize"] == 2 and "nextPageToken" in b
	assert b["cryptoKeyVersions"][0]["name"].endswith("/1")


def test_names_ids_and_not_found(emu, token):
	for bad_id in ("a.b", "x" * 64, "a%2Fb", "sp%20ace"):
		st, b = kms(emu, token, "POST", LOC + "/keyRings?keyRingId="
			    + bad_id, {})
		assert st == 400 and err_status(b) == "INVALID_ARGUMENT", bad_id
	st, b = kms(emu, token, "POST", LOC + "/keyRings", {})
	assert st == 400
	ok = "A-z_09" + "x" * 57
	st, b = kms(emu, token, "POST", LOC + "/keyRings?keyRingId=" + ok, {})
	assert st == 200 and b["name"].endswith("/" + ok)
	st, b = kms(emu, token, "GET", LOC + "/keyRings/nope")
	assert st == 404 and err_status(b) == "NOT_FOUND"
	assert b["error"]["code"] == 404 and "nope" in b["error"]["message"]
	st, b = kms(emu, token, "GET", LOC + "/keyRings/%s/cryptoKeys/nope" % ok)
	assert st == 404
	st, b = kms(emu, token, "POST", LOC + "/keyRings/%s/cryptoKeys?"
		    "cryptoKeyId=k" % ok, {"purpose": "ENCRYPT_DECRYPT",
					   "bogus": 1})
	assert st == 400 and "bogus" in b["error"]["message"]
	st, b = kms(emu, token, "POST", LOC + "/keyRings/%s/cryptoKeys?"
		    "cryptoKeyId=k" % ok, {})
	assert st == 400 and "purpose" in b["error"]["message"]
	name = LOC + "/keyRings/%s/cryptoKeys/k" % ok
	st, b = kms(emu, token, "POST", LOC + "/keyRings/%s/cryptoKeys?"
		    "cryptoKeyId=k" % ok, {"purpose": "ENCRYPT_DECRYPT"})
	assert st == 200
	st, b = kms(emu, token, "POST", LOC + "/keyRings/%s/cryptoKeys?"
		    "cryptoKeyId=k" % ok, {"purpose": "ENCRYPT_DECRYPT"})
	assert st == 409 and err_status(b) == "ALREADY_EXISTS"
	st, b = kms(emu, token, "GET", name + "/cryptoKeyVersions/7")
	assert st == 404
	st, b = kms(emu, token, "GET", "projects/%s/locations/mars/keyRings"
		    % PROJECT)
	assert st == 404
	st, b = kms(emu, token, "GET", name + "?unknownParam=1")
	assert st == 400
	st, b = kms(emu, token, "GET", name + "?alt=json&prettyPrint=false")
	assert st == 200 and b["name"] == name
	# not-found as permission denied switch
	emu.admin("POST", "/_emu/config", {"not_found_as_permission_denied":
					   True})
	try:
		st, b = kms(emu, token, "POST", name + "x:encrypt",
			    {"plaintext": "aGk="})
		assert st == 403 and err_status(b) == "PERMISSION_DENIED"
		assert "useToEncrypt" in b["error"]["message"]
	finally:
		emu.admin("POST", "/_emu/config",
			  {"not_found_as_permission_denied": False})


def test_encrypt_decrypt_checksums_and_limits(emu, token):
	name = _mk_ring_key(emu, token, "ring-crc", "k")
	other = _mk_ring_key(emu, token, "ring-crc2", "k")
	pt = b"\xfb\xff\xfe\x00" * 300   # base64 of this has + and /
	aad = b"\xff\xfe ctx"
	req = {"plaintext": base64.urlsafe_b64encode(pt).decode().rstrip("="),
	       "additionalAuthenticatedData":
	       base64.urlsafe_b64encode(aad).decode(),
	       "plaintextCrc32c": str(kms_emulator.crc32c(pt)),
	       "additionalAuthenticatedDataCrc32c":
	       kms_emulator.crc32c(aad)}   # number accepted too
	st, e = kms(emu, token, "POST", name + ":encrypt", req)
	assert st == 200, e
	assert e["name"] == name + "/cryptoKeyVersions/1"
	assert e["verifiedPlaintextCrc32c"] is True
	assert e["verifiedAdditionalAuthenticatedDataCrc32c"] is True
	ct = base64.b64decode(e["ciphertext"], validate=True)   # std alphabet
	assert isinstance(e["ciphertextCrc32c"], str)
	assert int(e["ciphertextCrc32c"]) == kms_emulator.crc32c(ct)
	assert pt not in ct
	st, d = kms(emu, token, "POST", name + ":decrypt", {
		"ciphertext": base64.urlsafe_b64encode(ct).decode(),
		"additionalAuthenticatedData": b64(aad),
		"ciphertextCrc32c": str(kms_emulator.crc32c(ct))})
	assert st == 200 and base64.b64decode(d["plaintext"]) == pt
	assert d["plaintextCrc32c"] == str(kms_emulator.crc32c(pt))
	assert "verifiedPlaintextCrc32c" not in d
	# no checksums sent: no verified flags
	st, e2 = kms(emu, token, "POST", name + ":encrypt", {"plaintext": b64(pt)})
	assert st == 200 and "verifiedPlaintextCrc32c" not in e2
	# wrong checksums
	bad = dict(req, plaintextCrc32c=str(kms_emulator.crc32c(pt) ^ 1))
	st, b = kms(emu, token, "POST", name + ":encrypt", bad)
	assert st == 400 and b["error"]["message"] == (
		"The checksum in field plaintext_crc32c did not match the data "
		"in field plaintext.")
	bad = dict(req, additionalAuthenticatedDataCrc32c="0")
	st, b = kms(emu, token, "POST", name + ":encrypt", bad)
	assert st == 400 and "additional_authenticated_data_crc32c" in \
		b["error"]["message"]
	st, b = kms(emu, token, "POST", name + ":decrypt", {
		"ciphertext": b64(ct), "additionalAuthenticatedData": b64(aad),
		"ciphertextCrc32c": "12345"})
	assert st == 400 and b["error"]["message"] == (
		"The checksum in field ciphertext_crc32c did not match the data "
		"in field ciphertext.")
	# wrong AAD, tampered ciphertext, another key's ciphertext
	st, b = kms(emu, token, "POST", name + ":decrypt",
		    {"ciphertext": b64(ct)})
	assert st == 400 and "Decryption failed" in b["error"]["message"]
	t = bytearray(ct)
	t[-1] ^= 1
	st, b = kms(emu, token, "POST", name + ":decrypt", {
		"ciphertext": b64(bytes(t)), "additionalAuthenticatedData":
		b64(aad)})
	assert st == 400 and "ciphertext is invalid" in b["error"]["message"]
	st, b = kms(emu, token, "POST", other + ":decrypt", {
		"ciphertext": b64(ct), "additionalAuthenticatedData": b64(aad)})
	assert st == 400 and "correct CryptoKey" in b["error"]["message"]
	# limits and bad input
	st, b = kms(emu, token, "POST", name + ":encrypt",
		    {"plaintext": b64(bytes(65536))})
	assert st == 200
	st, b = kms(emu, token, "POST", name + ":encrypt",
		    {"plaintext": b64(bytes(65537))})
	assert st == 400 and err_status(b) == "INVALID_ARGUMENT"
	st, b = kms(emu, token, "POST", name + ":encrypt",
		    {"plaintext": "!!notbase64"})
	assert st == 400
	st, b = kms(emu, token, "POST", name + ":encrypt", {})
	assert st == 400
	st, b = kms(emu, token, "POST", name + ":encrypt",
		    {"plaintext": "aGk=", "plaintextCrc32c": "abc"})
	assert st == 400
	# encrypt on a version name; decrypt only on the key
	st, _ = kms(emu, token, "POST", name + "/cryptoKeyVersions", {})
	st, e = kms(emu, token, "POST", name + "/cryptoKeyVersions/2:encrypt",
		    {"plaintext": "aGk="})
	assert st == 200 and e["name"] == name + "/cryptoKeyVersions/2"
	st, d = kms(emu, token, "POST", name + ":decrypt",
		    {"ciphertext": e["ciphertext"]})
	assert st == 200 and d["plaintext"] == "aGk=" and \
		"usedPrimary" not in d
	st, b = kms(emu, token, "POST", name + "/cryptoKeyVersions/2:decrypt",
		    {"ciphertext": e["ciphertext"]})
	assert st == 404
	# disabled version: FAILED_PRECONDITION on use
	st, b = kms(emu, token, "PATCH", name + "/cryptoKeyVersions/2?"
		    "updateMask=state", {"state": "DISABLED"})
	assert st == 200 and b["state"] == "DISABLED"
	st, b = kms(emu, token, "POST", name + ":decrypt",
		    {"ciphertext": e["ciphertext"]})
	assert st == 400 and err_status(b) == "FAILED_PRECONDITION"
	st, b = kms(emu, token, "POST", name + ":updatePrimaryVersion",
		    {"cryptoKeyVersionId": "2"})
	assert st == 400 and err_status(b) == "FAILED_PRECONDITION"


def test_rotation_rules(emu, token):
	ring = _mk_ring_key(emu, token, "ring-rot")
	nrt = "2031-01-02T03:04:05.5Z"

	def create(kid, **extra):
		body = {"purpose": "ENCRYPT_DECRYPT"}
		body.update(extra)
		return kms(emu, token, "POST", ring + "/cryptoKeys?cryptoKeyId="
			   + kid, body)
	st, b = create("a", rotationPeriod="86399s", nextRotationTime=nrt)
	assert st == 400 and err_status(b) == "INVALID_ARGUMENT"
	st, b = create("a", rotationPeriod="%ds" % (876000 * 3600 + 1),
		       nextRotationTime=nrt)
	assert st == 400
	st, b = create("a", rotationPeriod="86400s")
	assert st == 400 and "next_rotation_time" in b["error"]["message"]
	st, b = create("a", rotationPeriod="1d", nextRotationTime=nrt)
	assert st == 400
	st, b = create("a", rotationPeriod="86400s", nextRotationTime="tomorrow")
	assert st == 400
	st, b = create("a", rotationPeriod="86400s", nextRotationTime=nrt,
		       purpose="ASYMMETRIC_SIGN")
	assert st == 400 and "ENCRYPT_DECRYPT" in b["error"]["message"]
	st, b = create("a", rotationPeriod="%ds" % (876000 * 3600),
		       nextRotationTime=nrt)
	assert st == 200, b
	assert b["nextRotationTime"] == "2031-01-02T03:04:05.500000Z"
	name = b["name"]
	st, b = create("b", nextRotationTime=nrt)   # one-off rotation is fine
	assert st == 200 and "rotationPeriod" not in b
	# patch
	st, b = kms(emu, token, "PATCH", name, {"rotationPeriod": "100000s"})
	assert st == 400 and "update_mask" in b["error"]["message"]
	st, b = kms(emu, token, "PATCH", name + "?updateMask=nextRotationTime",
		    {})
	assert st == 400   # period stays set, time removed
	st, b = kms(emu, token, "PATCH", name + "?updateMask=rotationPeriod",
		    {"rotationPeriod": "3600s"})
	assert st == 400
	st, b = kms(emu, token, "PATCH", name + "?updateMask=purpose",
		    {"purpose": "MAC"})
	assert st == 400
	st, b = kms(emu, token, "PATCH", name + "?updateMask=rotationPeriod,"
		    "labels", {"rotationPeriod": "172800s",
			       "labels": {"team": "keyfs"}})
	assert st == 200 and b["rotationPeriod"] == "172800s"
	assert b["labels"] == {"team": "keyfs"}
	st, b = kms(emu, token, "PATCH", name + "?updateMask=rotationPeriod,"
		    "nextRotationTime", {})
	assert st == 200
	assert "rotationPeriod" not in b and "nextRotationTime" not in b


def test_auto_rotation_with_clock(emu, static_token):
	token = static_token
	ring = _mk_ring_key(emu, token, "ring-auto")
	nrt = time.strftime("%Y-%m-%dT%H:%M:%SZ",
			    time.gmtime(time.time() + 3600))
	st, k = kms(emu, token, "POST", ring + "/cryptoKeys?cryptoKeyId=k", {
		"purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "86400s",
		"nextRotationTime": nrt})
	assert st == 200
	st, e = kms(emu, token, "POST", k["name"] + ":encrypt",
		    {"plaintext": "b2xk"})
	emu.admin("POST", "/_emu/clock", {"offset_seconds": 7200})
	try:
		st, k2 = kms(emu, token, "GET", k["name"])
		assert st == 200
		assert k2["primary"]["name"].endswith("/cryptoKeyVersions/2")
		assert k2["nextRotationTime"] > nrt
		st, d = kms(emu, token, "POST", k["name"] + ":decrypt",
			    {"ciphertext": e["ciphertext"]})
		assert st == 200 and d["plaintext"] == "b2xk"
	finally:
		emu.admin("POST", "/_emu/clock", {"offset_seconds": 0})


def test_auth_required_and_unknown_tokens(emu, token):
	path = "/v1/projects/%s/locations" % PROJECT
	st, b, h = http(emu, "GET", path)
	assert st == 401 and err_status(b) == "UNAUTHENTICATED"
	assert h.get("WWW-Authenticate", "").startswith("Bearer")
	st, b, _ = http(emu, "GET", path, token="ya29.not-issued")
	assert st == 401
	st, b, _ = http(emu, "GET", path, headers={"Authorization":
						   "Basic " + token})
	assert st == 401
	st, b, _ = http(emu, "GET", path, token=token)
	assert st == 200
	emu.admin("POST", "/_emu/static-tokens", {"token": "static-xyz"})
	st, b, _ = http(emu, "GET", path, token="static-xyz")
	assert st == 200


def test_jwt_grant_valid_and_forged(emu, sa, tmp):
	path = "/v1/projects/%s/locations" % PROJECT
	grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	# both audiences are accepted
	for aud in (emu.url + "/token", "https://oauth2.googleapis.com/token"):
		st, b, _ = form_post(emu, "/token", {
			"grant_type": grant,
			"assertion": gcp_keys.jwt_grant_assertion(sa, aud, SCOPE)})
		assert st == 200, b
		assert b["token_type"] == "Bearer" and b["expires_in"] > 0
		assert http(emu, "GET", path, token=b["access_token"])[0] == 200
	# forged: another key signs, claiming the registered key id
	forged = gcp_keys.make_sa_key(os.path.join(tmp, "forged.json"),
				      emu.url + "/token", PROJECT,
				      email=sa["client_email"])
	forged["private_key_id"] = sa["private_key_id"]
	st, b, _ = form_post(emu, "/token", {
		"grant_type": grant, "assertion": gcp_keys.jwt_grant_assertion(
			forged, emu.url + "/token", SCOPE)})
	assert st == 400 and b["error"] == "invalid_grant"
	assert "Signature" in b["error_description"]
	# a forged self-signed JWT is no bearer token either
	now = int(time.time())
	claims = {"iss": sa["client_email"], "sub": sa["client_email"],
		  "aud": "https://cloudkms.googleapis.com/", "iat": now,
		  "exp": now + 600}
	assert http(emu, "GET", path, token=gcp_keys.sign_jwt(forged, claims))[0] \
		== 401
	assert http(emu, "GET", path, token=gcp_keys.sign_jwt(sa, claims))[0] \
		== 200
	# claim checks
	cases = [
		(dict(aud="https://evil.example/token"), "invalid_grant"),
		(dict(iat=now - 7200, exp=now - 3600), "invalid_grant"),
		(dict(iat=now, exp=now + 7200), "invalid_grant"),
		(dict(iss="nobody@x.iam.gserviceaccount.com"), "invalid_grant"),
		(dict(scope=""), "invalid_scope"),
	]
	for change, want in cases:
		c = {"iss": sa["client_email"], "scope": SCOPE,
		     "aud": emu.url + "/token", "iat": now, "exp": now + 3600}
		c.update(change)
		st, b, _ = form_post(emu, "/token", {
			"grant_type": grant,
			"assertion": gcp_keys.sign_jwt(sa, c)})
		assert st == 400 and b["error"] == want, change
	st, b, _ = form_post(emu, "/token", {"grant_type": grant,
					     "assertion": "a.b.c"})
	assert st == 400 and b["error"] == "invalid_grant"
	st, b, _ = form_post(emu, "/token", {"grant_type": "password"})
	assert st == 400 and b["error"] == "unsupported_grant_type"
	# a token with a scope that does not cover KMS
	c = {"iss": sa["client_email"], "aud": emu.url + "/token",
	     "scope": "https://www.googleapis.com/auth/devstorage.read_only",
	     "iat": now, "exp": now + 3600}
	st, b, _ = form_post(emu, "/token", {
		"grant_type": grant, "assertion": gcp_keys.sign_jwt(sa, c)})
	assert st == 200
	st, b, _ = http(emu, "GET", path, token=b["access_token"])
	assert st == 403 and err_status(b) == "PERMISSION_DENIED"


def test_refresh_grant_and_expiry(emu):
	path = "/v1/projects/%s/locations" % PROJECT
	emu.admin("POST", "/_emu/authorized-users", {
		"client_id": "cid-1.apps.googleusercontent.com",
		"client_secret": "sec-1", "refresh_token": "1//rt-1"})
	base = {"grant_type": "refresh_token",
		"client_id": "cid-1.apps.googleusercontent.com",
		"client_secret": "sec-1", "refresh_token": "1//rt-1"}
	st, b, _ = form_post(emu, "/token", base)
	assert st == 200 and b["token_type"] == "Bearer"
	tok = b["access_token"]
	assert http(emu, "GET", path, token=tok)[0] == 200
	st, b, _ = form_post(emu, "/token", dict(base, client_secret="nope"))
	assert st == 401 and b["error"] == "invalid_client"
	st, b, _ = form_post(emu, "/token", dict(base, refresh_token="1//x"))
	assert st == 400 and b["error"] == "invalid_grant"
	st, b, _ = form_post(emu, "/token", dict(base, client_id="other"))
	assert st == 401
	# expiry: short lifetime, and the admin expire switch
	emu.admin("POST", "/_emu/config", {"token_lifetime": 1})
	try:
		st, b, _ = form_post(emu, "/token", base)
		assert b["expires_in"] == 1
		short = b["access_token"]
		time.sleep(1.2)
		assert http(emu, "GET", path, token=short)[0] == 401
	finally:
		emu.admin("POST", "/_emu/config", {"token_lifetime": 3599})
	assert http(emu, "GET", path, token=tok)[0] == 200


def test_metadata_server(emu):
	tpath = "/computeMetadata/v1/instance/service-accounts/default/token"
	st, b, h = http(emu, "GET", tpath)
	assert st == 403
	st, b, h = http(emu, "GET", tpath, headers={"Metadata-Flavor": "google"})
	assert st == 403
	st, b, h = http(emu, "GET", tpath, headers={"Metadata-Flavor": "Google",
						   "X-Forwarded-For": "1.2.3.4"})
	assert st == 403
	st, b, h = http(emu, "GET", tpath, headers={"Metadata-Flavor": "Google"})
	assert st == 200 and h["Metadata-Flavor"] == "Google"
	assert b["token_type"] == "Bearer" and b["expires_in"] > 0
	path = "/v1/projects/%s/locations" % PROJECT
	assert http(emu, "GET", path, token=b["access_token"])[0] == 200
	st, b, h = http(emu, "GET", "/computeMetadata/v1/project/project-id",
			headers={"Metadata-Flavor": "Google"})
	assert st == 200 and b == PROJECT and h["Metadata-Flavor"] == "Google"
	st, b, h = http(emu, "GET", "/computeMetadata/v1/project/project-id")
	assert st == 403
	st, b, h = http(emu, "GET", "/", headers={"Metadata-Flavor": "Google"})
	assert st == 200 and h["Metadata-Flavor"] == "Google"


def test_faults_and_counters(emu, token):
	name = _mk_ring_key(emu, token, "ring-fault", "k")
	emu.admin("POST", "/_emu/counters/reset")
	emu.admin("POST", "/_emu/faults", {"error_status": 503,
					   "error_count": 2,
					   "error_methods": ["cryptoKeys.get"]})
	try:
		got = [kms(emu, token, "GET", name) for _ in range(3)]
		assert [g[0] for g in got] == [503, 503, 200]
		assert err_status(got[0][1]) == "UNAVAILABLE"
		# other methods unaffected
		st, _ = kms(emu, token, "POST", name + ":encrypt",
			    {"plaintext": "aGk="})
		assert st == 200
		emu.admin("POST", "/_emu/faults", {
			"error_status": "RESOURCE_EXHAUSTED", "error_rate": 1.0})
		st, b = kms(emu, token, "POST", name + ":encrypt",
			    {"plaintext": "aGk="})
		assert st == 429 and err_status(b) == "RESOURCE_EXHAUSTED"
		# a rate of 0.5 with a seed fails some but not all
		emu.admin("POST", "/_emu/faults", {"error_status": 500,
						   "error_rate": 0.5, "seed": 7})
		codes = [kms(emu, token, "GET", name)[0] for _ in range(20)]
		assert 500 in codes and 200 in codes
		assert set(codes) == {200, 500}
		# token endpoint faults only when named
		emu.admin("POST", "/_emu/faults", {"error_status": 503,
						   "error_count": 1,
						   "error_methods": ["oauth.token"]})
		st, b, _ = form_post(emu, "/token", {"grant_type": "x"})
		assert st == 503 and b["error"] == "temporarily_unavailable"
		# latency
		emu.admin("POST", "/_emu/faults", {"latency_ms": 300})
		t0 = time.monotonic()
		assert kms(emu, token, "GET", name)[0] == 200
		assert time.monotonic() - t0 >= 0.3
	finally:
		emu.admin("DELETE", "/_emu/faults")
	c = emu.admin("GET", "/_emu/counters")
	assert c["calls"]["cryptoKeys.get"] == 3 + 20 + 1
	assert c["responses"]["cryptoKeys.get"]["503"] == 2
	assert c["faults_injected"]["cryptoKeys.get"] == 2 + \
		c["responses"]["cryptoKeys.get"]["500"]
	assert c["calls"]["cryptoKeys.encrypt"] == 2
	assert c["responses"]["cryptoKeys.encrypt"] == {"200": 1, "429": 1}
	assert c["calls"]["oauth.token"] == 1
	# the request log never holds the token
	log = json.dumps(emu.admin("GET", "/_emu/requests"))
	assert token not in log
	assert emu.admin("GET", "/_emu/faults") == {}


def test_command_line_credentials_and_reset(tmp):
	"""--service-account-key / --authorized-user / --static-token-file /
	--token-lifetime, and /_emu/reset keeping command-line credentials."""
	sa_path = os.path.join(tmp, "cli-sa.json")
	sa_info = gcp_keys.make_sa_key(sa_path, "https://oauth2.googleapis.com/"
				       "token", PROJECT)
	au = os.path.join(tmp, "cli-au.json")
	with open(au, "w") as f:
		json.dump({"type": "authorized_user", "client_id": "c2",
			   "client_secret": "s2", "refresh_token": "r2"}, f)
	stf = os.path.join(tmp, "cli-static")
	with open(stf, "w") as f:
		f.write("cli-static-token\n")
	with kms_emulator.EmulatorProcess([
			"--service-account-key", sa_path, "--authorized-user", au,
			"--static-token-file", stf, "--token-lifetime", "77"]) as e:
		path = "/v1/projects/%s/locations/global/keyRings" % PROJECT
		st, b, _ = http(e, "POST", path + "?keyRingId=r", {},
				token="cli-static-token")
		assert st == 200
		tok = jwt_token(e, sa_info, "https://oauth2.googleapis.com/token")
		st, b, _ = form_post(e, "/token", {
			"grant_type": "refresh_token", "client_id": "c2",
			"client_secret": "s2", "refresh_token": "r2"})
		assert st == 200 and b["expires_in"] == 77
		assert http(e, "GET", path, token=tok)[1]["totalSize"] == 1
		e.admin("POST", "/_emu/expire-tokens")
		assert http(e, "GET", path, token=tok)[0] == 401
		assert http(e, "GET", path, token="cli-static-token")[0] == 200
		tok = jwt_token(e, sa_info)
		e.admin("POST", "/_emu/reset")
		assert http(e, "GET", path, token=tok)[0] == 401
		st, b, _ = http(e, "GET", path, token="cli-static-token")
		assert st == 200 and b == {}
		assert jwt_token(e, sa_info)
