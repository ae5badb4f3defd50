"""Conformance of tests/emulators/gsm_emulator.py (Secret Manager v1).

Part 1 drives the real gcloud CLI against the emulator
(CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER): if gcloud accepts the
emulator's answers, and fails on its injected corruption, the emulator
speaks the Secret Manager v1 REST dialect the way Google's own client
expects.  Part 2 checks with plain HTTP (urllib) what gcloud does not
reach: pages and filters, etag preconditions, id, replication and size
rules, project numbers in names, auth, faults and counters.

These tests do not run keyfs, so they are skipped under the sanitizer
reruns (KEYFS_SAN).
"""

import base64
import http.client as httpclient
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

pytestmark = pytest.mark.skipif(
	bool(os.environ.get("KEYFS_SAN")),
	reason="emulator conformance: nothing of keyfs runs under sanitizers")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulators"))

import gsm_emulator  # noqa: E402

PROJECT = "keyfs-test"
NUMBER = "480213377105"
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"
TOKEN = "ya29.gsm-" + secrets.token_urlsafe(16)
TEST_TIMEOUT = 120


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
	d = tempfile.mkdtemp(prefix="gsmemu-test-")
	os.chmod(d, 0o700)
	yield d
	shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def emu():
	e = gsm_emulator.EmulatorProcess(["--static-token", TOKEN, "--project",
					  "%s=%s" % (PROJECT, NUMBER)])
	try:
		yield e
	finally:
		e.stop()


@pytest.fixture(autouse=True)
def _no_faults(emu):
	yield
	emu.admin("DELETE", "/_emu/faults")


def http(emu, method, path, body=None, token=TOKEN, headers=None, raw=None,
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


def sm(emu, method, path, body=None, token=TOKEN):
	return http(emu, method, "/v1/" + path, body, token)[:2]


def b64(data):
	return base64.b64encode(data).decode()


def crc(data):
	return gsm_emulator.crc32c(data)


def err(body):
	return body["error"]["status"]


def mk_secret(emu, sid, project=PROJECT, body=None):
	st, b = sm(emu, "POST", "projects/%s/secrets?secretId=%s" % (project, sid),
		   body or {"replication": {"automatic": {}}})
	assert st == 200, b
	return b


def add(emu, sid, data, project=PROJECT, with_crc=True):
	payload = {"data": b64(data)}
	if with_crc:
		payload["dataCrc32c"] = str(crc(data))
	st, b = sm(emu, "POST", "projects/%s/secrets/%s:addVersion"
		   % (project, sid), {"payload": payload})
	assert st == 200, b
	return b


def access(emu, sid, v="latest", project=PROJECT):
	return sm(emu, "GET", "projects/%s/secrets/%s/versions/%s:access"
		  % (project, sid, v))


def secret_name(sid):
	return "projects/%s/secrets/%s" % (NUMBER, sid)

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
	       if not k.startswith(("CLOUDSDK_", "GOOGLE_"))}
	env.update({
		"CLOUDSDK_CONFIG": cfg,
		"CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
		"CLOUDSDK_METRICS_ENVIRONMENT": "offline",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": emu.url + "/",
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": tokfile,
		"CLOUDSDK_CORE_PROJECT": PROJECT,
	})

	def run(*args, ok=True, stdin=None, token_file=None):
		e = env
		if token_file:
			e = dict(env, CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=token_file)
		r = subprocess.run([GCLOUD, "secrets"] + list(args), env=e,
				   input=stdin, stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=90, cwd=tmp)
		out, errtxt = r.stdout, r.stderr.decode()
		if ok:
			assert r.returncode == 0, "gcloud secrets %s: %s" % (
				" ".join(args[:3]), errtxt[-800:])
		else:
			assert r.returncode != 0, "gcloud secrets %s succeeded" % (
				" ".join(args[:3]))
		return out, errtxt

	def js(*args):
		out, _ = run(*args, "--format=json")
		return json.loads(out)
	run.json = js
	run.tmp = tmp
	return run


def test_gcloud_create_add_access_list_describe(gcloud, emu):
	v1 = b"first \x00\xff value\n"
	v2 = b"second value"
	_, e = gcloud("create", "g-one", "--data-file=-",
		      "--replication-policy=automatic", stdin=v1)
	assert "Created version [1] of the secret [g-one]" in e
	_, e = gcloud("create", "g-one", "--data-file=-", stdin=b"x", ok=False)
	# gcloud words a 409 its own way
	assert "Secret [%s] already exists" % secret_name("g-one") in e
	_, e = gcloud("create", "bad.id", "--data-file=-", stdin=b"x", ok=False)
	assert "INVALID_ARGUMENT" in e
	_, e = gcloud("versions", "add", "g-one", "--data-file=-", stdin=v2)
	assert "Created version [2] of the secret [g-one]" in e
	out, _ = gcloud("versions", "access", "latest", "--secret", "g-one")
	assert out == v2
	path = os.path.join(gcloud.tmp, "g-one.v1")
	gcloud("versions", "access", "1", "--secret", "g-one",
	       "--out-file", path)
	with open(path, "rb") as f:
		assert f.read() == v1
	d = gcloud.json("describe", "g-one")
	assert d["name"] == secret_name("g-one")      # the project NUMBER
	assert d["replication"] == {"automatic": {}}
	assert d["etag"].startswith('"') and d["etag"].endswith('"')
	assert d["createTime"].endswith("Z")
	names = [s["name"] for s in gcloud.json("list")]
	assert secret_name("g-one") in names
	vers = gcloud.json("versions", "list", "g-one")
	assert [v["name"] for v in vers] == [secret_name("g-one") + "/versions/2",
					     secret_name("g-one") + "/versions/1"]
	assert all(v["state"] == "ENABLED" and
		   v["clientSpecifiedPayloadChecksum"] for v in vers)
	# gcloud named the project by id and sent the configured token
	reqs = emu.admin("GET", "/_emu/requests")
	adds = [r for r in reqs if r["method"] == "secrets.addVersion"]
	assert adds[-1]["path"] == "/v1/projects/%s/secrets/g-one:addVersion" \
		% PROJECT
	hdrs = {k.lower(): v for k, v in adds[-1]["headers"].items()}
	assert hdrs["authorization"] == "Bearer <redacted>"
	creates = [r["status"] for r in reqs if r["method"] == "secrets.create"]
	assert creates[-3:] == [200, 409, 400]
	# what gcloud sent is what the API stored, byte for byte
	assert base64.b64decode(access(emu, "g-one", "1")[1]["payload"]
				["data"]) == v1


def test_gcloud_disable_destroy_enable_delete(gcloud, emu):
	gcloud("create", "g-two", "--data-file=-", stdin=b"one")
	gcloud("versions", "add", "g-two", "--data-file=-", stdin=b"two")
	_, e = gcloud("versions", "disable", "2", "--secret", "g-two")
	assert "Disabled version [2]" in e
	_, e = gcloud("versions", "access", "latest", "--secret", "g-two",
		      ok=False)
	assert "FAILED_PRECONDITION" in e and \
		"Secret Version [%s/versions/2] is in DISABLED state" \
		% secret_name("g-two") in e
	out, _ = gcloud("versions", "access", "1", "--secret", "g-two")
	assert out == b"one"
	v1 = gcloud.json("versions", "describe", "1", "--secret", "g-two")
	_, e = gcloud("versions", "destroy", "1", "--secret", "g-two",
		      '--etag="stale"', ok=False)
	assert "FAILED_PRECONDITION" in e
	gcloud("versions", "destroy", "1", "--secret", "g-two",
	       "--etag=" + v1["etag"])
	_, e = gcloud("versions", "access", "1", "--secret", "g-two", ok=False)
	assert "is in DESTROYED state" in e
	gcloud("versions", "enable", "2", "--secret", "g-two")
	out, _ = gcloud("versions", "access", "latest", "--secret", "g-two")
	assert out == b"two"
	vers = {v["name"].rsplit("/", 1)[1]: v
		for v in gcloud.json("versions", "list", "g-two")}
	assert vers["1"]["state"] == "DESTROYED" and "destroyTime" in vers["1"]
	assert vers["2"]["state"] == "ENABLED"
	d = gcloud.json("describe", "g-two")
	_, e = gcloud("delete", "g-two", "--quiet", '--etag="stale"', ok=False)
	assert "FAILED_PRECONDITION" in e
	gcloud("delete", "g-two", "--quiet", "--etag=" + d["etag"])
	_, e = gcloud("describe", "g-two", ok=False)
	assert "NOT_FOUND" in e and secret_name("g-two") in e
	# and without an etag
	gcloud("create", "g-three", "--data-file=-", stdin=b"3")
	gcloud("delete", "g-three", "--quiet")
	assert sm(emu, "GET", "projects/%s/secrets/g-three" % PROJECT)[0] == 404
	c = emu.admin("GET", "/_emu/counters")
	assert c["responses"]["secrets.delete"]["400"] >= 1
	assert c["responses"]["versions.destroy"]["400"] >= 1


def test_gcloud_checks_crc_and_verified_checksum(gcloud, emu):
	gcloud("create", "g-crc", "--data-file=-", stdin=b"check me")
	out_path = os.path.join(gcloud.tmp, "g-crc.out")
	for fault in ({"corrupt_crc": True}, {"corrupt_data": True}):
		emu.admin("POST", "/_emu/faults", fault)
		_, e = gcloud("versions", "access", "latest", "--secret", "g-crc",
			      "--out-file", out_path, ok=False)
		assert "An incorrect data_crc32c was calculated" in e, fault
		assert not os.path.exists(out_path)
	# gcloud wants clientSpecifiedPayloadChecksum back from addVersion
	emu.admin("POST", "/_emu/faults", {"unverified": True})
	_, e = gcloud("versions", "add", "g-crc", "--data-file=-",
		      stdin=b"v2", ok=False)
	assert "payload data corruption may have occurred" in e
	emu.admin("DELETE", "/_emu/faults")
	out, _ = gcloud("versions", "access", "latest", "--secret", "g-crc")
	assert out == b"v2"


def test_gcloud_retries_a_dropped_add_version(gcloud, emu):
	"""An addVersion applied but never answered: gcloud's HTTP transport
	sends it again, so the secret gets two versions of one value.  This
	is the ambiguity a careful client must resolve itself."""
	gcloud("create", "g-drop", "--data-file=-", stdin=b"v1")
	emu.admin("POST", "/_emu/counters/reset")
	emu.admin("POST", "/_emu/faults", {"drop_count": 1,
					   "drop_methods": ["secrets.addVersion"]})
	_, e = gcloud("versions", "add", "g-drop", "--data-file=-", stdin=b"v2")
	assert "Created version [3]" in e
	c = emu.admin("GET", "/_emu/counters")
	assert c["responses"]["secrets.addVersion"] == {"dropped": 1, "200": 1}
	assert c["faults_injected"] == {"secrets.addVersion": 1}
	st, b = sm(emu, "GET", "projects/%s/secrets/g-drop/versions" % PROJECT)
	assert [v["name"].rsplit("/", 1)[1] for v in b["versions"]] == \
		["3", "2", "1"]
	for v in ("2", "3"):
		assert base64.b64decode(access(emu, "g-drop", v)[1]["payload"]
					["data"]) == b"v2"


def test_gcloud_unauthenticated(gcloud, tmp):
	bad_tok = os.path.join(tmp, "bad-token")
	with open(bad_tok, "w") as f:
		f.write("ya29.not-the-token\n")
	_, e = gcloud("list", token_file=bad_tok, ok=False)
	assert "UNAUTHENTICATED" in e

# ------------------------------------------------------------ HTTP part


def test_crc32c_vectors():
	c = gsm_emulator.crc32c
	assert c(b"") == 0
	assert c(b"123456789") == 0xE3069283
	assert c(b"hello") == 2591144780
	assert c(b"s3cr3t") == 825573743       # what gcloud sent for it
	assert c(bytes(32)) == 0x8A9136AA
	assert c(b"\xff" * 32) == 0x62A8AB43


def test_project_id_and_number_name_one_project(emu):
	b = mk_secret(emu, "h-proj")
	assert b["name"] == secret_name("h-proj")
	add(emu, "h-proj", b"by id")
	# the number addresses the same secret; answers name the number
	st, b = sm(emu, "GET", "projects/%s/secrets/h-proj" % NUMBER)
	assert st == 200 and b["name"] == secret_name("h-proj")
	st, b = access(emu, "h-proj", project=NUMBER)
	assert st == 200 and b["name"] == secret_name("h-proj") + "/versions/1"
	assert base64.b64decode(b["payload"]["data"]) == b"by id"
	st, b = sm(emu, "GET", "projects/%s/secrets" % NUMBER)
	assert secret_name("h-proj") in [s["name"] for s in b["secrets"]]
	# a project never configured gets a stable 12-digit number
	b = mk_secret(emu, "h-other", project="other-proj")
	num = b["name"].split("/")[1]
	assert len(num) == 12 and num.isdigit() and num != NUMBER
	assert emu.admin("GET", "/_emu/projects")["other-proj"] == num
	assert sm(emu, "GET", "projects/other-proj/secrets/h-proj")[0] == 404
	st, b = sm(emu, "GET", "projects/%s/secrets/h-other" % num)
	assert st == 200
	st, b = sm(emu, "GET", "projects/Bad_Project/secrets/x")
	assert st == 400 and err(b) == "INVALID_ARGUMENT"
	# no answer ever names a project by id
	log = json.dumps([sm(emu, "GET", "projects/%s/secrets/h-proj/versions"
			     % PROJECT)[1], access(emu, "h-proj")[1]])
	assert "projects/%s/" % PROJECT not in log


def test_secret_id_rules_and_not_found(emu):
	base = "projects/%s/secrets" % PROJECT
	rep = {"replication": {"automatic": {}}}
	for sid in ("a.b", "x" * 256, "sp%20ace", "%C3%A9t%C3%A9", "a%2Fb"):
		st, b = sm(emu, "POST", base + "?secretId=" + sid, rep)
		assert st == 400 and err(b) == "INVALID_ARGUMENT", sid
	st, b = sm(emu, "POST", base, rep)
	assert st == 400 and "secret_id" in b["error"]["message"]
	st, b = sm(emu, "POST", base + "?secretId=", rep)
	assert st == 400
	longest = "A-z_09" + "x" * 249
	assert mk_secret(emu, longest)["name"] == secret_name(longest)
	st, b = sm(emu, "POST", base + "?secretId=" + longest, rep)
	assert st == 409 and err(b) == "ALREADY_EXISTS"
	assert b["error"]["message"] == "Secret [%s] already exists." \
		% secret_name(longest)
	st, b = sm(emu, "GET", base + "/nope")
	assert st == 404 and err(b) == "NOT_FOUND"
	assert b["error"] == {"code": 404, "status": "NOT_FOUND", "message":
			      "Secret [%s] not found." % secret_name("nope")}
	st, b = sm(emu, "POST", base + "/nope:addVersion",
		   {"payload": {"data": b64(b"x")}})
	assert st == 404


def test_replication_and_cmek_rules(emu):
	base = "projects/%s/secrets?secretId=" % PROJECT
	key = "projects/%s/locations/%%s/keyRings/r/cryptoKeys/k" % PROJECT
	for body in ({}, {"replication": {}},
		     {"replication": {"automatic": {}, "userManaged": {
			     "replicas": [{"location": "us-east1"}]}}},
		     {"replication": {"userManaged": {"replicas": []}}},
		     {"replication": {"userManaged": {"replicas": [
			     {"location": "us-east1"}, {"location": "us-east1"}]}}},
		     {"replication": {"automatic": {"customerManagedEncryption":
			     {"kmsKeyName": key % "us-east1"}}}},
		     {"replication": {"automatic": {"customerManagedEncryption":
			     {"kmsKeyName": "not/a/key"}}}},
		     {"replication": {"userManaged": {"replicas": [
			     {"location": "us-east1", "customerManagedEncryption":
			      {"kmsKeyName": key % "europe-west1"}}]}}},
		     {"replication": {"automatic": {}}, "topics": [
			     {"name": "projects/p/topics/t"}]},
		     {"replication": {"automatic": {}}, "bogus": 1}):
		st, b = sm(emu, "POST", base + "h-rep", body)
		assert st == 400 and err(b) == "INVALID_ARGUMENT", body
	b = mk_secret(emu, "h-cmek", body={"replication": {"automatic": {
		"customer_managed_encryption": {"kms_key_name": key % "global"}}}})
	assert b["replication"] == {"automatic": {"customerManagedEncryption":
						  {"kmsKeyName": key % "global"}}}
	v = add(emu, "h-cmek", b"c")
	assert v["replicationStatus"] == {"automatic": {
		"customerManagedEncryption": {"kmsKeyVersionName":
					      key % "global" +
					      "/cryptoKeyVersions/1"}}}
	um = {"userManaged": {"replicas": [
		{"location": "us-east1", "customerManagedEncryption":
		 {"kmsKeyName": key % "us-east1"}}, {"location": "europe-west3"}]}}
	b = mk_secret(emu, "h-um", body={"replication": um})
	assert b["replication"] == um
	v = add(emu, "h-um", b"u")
	assert [r["location"] for r in
		v["replicationStatus"]["userManaged"]["replicas"]] == \
		["us-east1", "europe-west3"]
	st, b = sm(emu, "PATCH", "projects/%s/secrets/h-um?updateMask="
		   "replication" % PROJECT, {"replication": {"automatic": {}}})
	assert st == 400 and "immutable" in b["error"]["message"]


def test_add_version_payload_rules(emu):
	mk_secret(emu, "h-pay")
	path = "projects/%s/secrets/h-pay:addVersion" % PROJECT
	for body in ({}, {"payload": {}}, {"payload": {"data": ""}},
		     {"payload": {"data": "", "dataCrc32c": "0"}}):
		st, b = sm(emu, "POST", path, body)
		assert st == 400 and b["error"]["message"] == \
			"Field [payload] is required.", body
	big = secrets.token_bytes(65536)
	st, b = sm(emu, "POST", path, {"payload": {
		"data": b64(big + b"x"), "dataCrc32c": str(crc(big + b"x"))}})
	assert st == 400 and err(b) == "INVALID_ARGUMENT" and \
		"64KiB" in b["error"]["message"]
	v = add(emu, "h-pay", big)
	assert v["name"].endswith("/versions/1")
	st, b = access(emu, "h-pay", "1")
	assert base64.b64decode(b["payload"]["data"]) == big
	assert b["payload"]["dataCrc32c"] == str(crc(big))
	# a checksum that does not match the data
	st, b = sm(emu, "POST", path, {"payload": {
		"data": b64(b"abc"), "dataCrc32c": str(crc(b"abd"))}})
	assert st == 400 and err(b) == "INVALID_ARGUMENT"
	assert "checksum mismatch" in b["error"]["message"].lower()
	# snake_case names, the checksum as a JSON number, url-safe base64
	data = b"\xfb\xff\xfe binary"
	st, v = sm(emu, "POST", path, {"payload": {
		"data": base64.urlsafe_b64encode(data).decode().rstrip("="),
		"data_crc32c": crc(data)}})
	assert st == 200 and v["clientSpecifiedPayloadChecksum"] is True
	assert v["name"].endswith("/versions/2")
	# without a checksum: not "client specified", but access still has one
	v = add(emu, "h-pay", b"no crc", with_crc=False)
	assert "clientSpecifiedPayloadChecksum" not in v
	st, b = access(emu, "h-pay")
	assert b["payload"] == {"data": b64(b"no crc"),
				"dataCrc32c": str(crc(b"no crc"))}
	for body in ({"payload": {"data": "!!notbase64"}},
		     {"payload": {"data": b64(b"x"), "dataCrc32c": "x1"}},
		     {"payload": {"data": b64(b"x"), "extra": 1}}):
		st, b = sm(emu, "POST", path, body)
		assert st == 400 and err(b) == "INVALID_ARGUMENT", body
	st, b = sm(emu, "GET", "projects/%s/secrets/h-pay/versions" % PROJECT)
	assert b["totalSize"] == 3


def test_version_states_and_latest(emu):
	mk_secret(emu, "h-st")
	st, b = access(emu, "h-st")
	assert st == 404 and b["error"]["message"] == \
		"Secret [%s] not found or has no versions." % secret_name("h-st")
	st, b = access(emu, "h-nosuch")
	assert st == 404 and "not found or has no versions" in \
		b["error"]["message"]
	for i in range(3):
		add(emu, "h-st", b"v%d" % (i + 1))
	vpath = "projects/%s/secrets/h-st/versions/" % PROJECT
	st, b = access(emu, "h-st", "9")
	assert st == 404 and b["error"]["message"] == \
		"Secret Version [%s/versions/9] not found." % secret_name("h-st")
	st, v = sm(emu, "POST", vpath + "3:disable", {})
	assert st == 200 and v["state"] == "DISABLED"
	st, b = access(emu, "h-st")      # latest = newest, whatever its state
	assert st == 400 and err(b) == "FAILED_PRECONDITION"
	assert b["error"]["message"] == \
		"Secret Version [%s/versions/3] is in DISABLED state." \
		% secret_name("h-st")
	st, b = access(emu, "h-st", "2")
	assert st == 200 and b["name"] == secret_name("h-st") + "/versions/2"
	st, v = sm(emu, "POST", vpath + "2:destroy", {})
	assert st == 200 and v["state"] == "DESTROYED" and "destroyTime" in v
	st, b = access(emu, "h-st", "2")
	assert st == 400 and "is in DESTROYED state" in b["error"]["message"]
	for op in ("enable", "disable", "destroy"):
		st, b = sm(emu, "POST", vpath + "2:" + op, {})
		assert st == 400 and err(b) == "FAILED_PRECONDITION", op
	st, v = sm(emu, "GET", vpath + "2")
	assert st == 200 and v["state"] == "DESTROYED"
	st, v = sm(emu, "GET", vpath + "latest")
	assert st == 200 and v["name"].endswith("/versions/3")
	st, v = sm(emu, "POST", vpath + "3:enable", {})
	assert st == 200 and v["state"] == "ENABLED"
	assert base64.b64decode(access(emu, "h-st")[1]["payload"]["data"]) \
		== b"v3"
	# numbers are never reused
	assert add(emu, "h-st", b"v4")["name"].endswith("/versions/4")


def test_etags(emu):
	s = mk_secret(emu, "h-etag")
	spath = "projects/%s/secrets/h-etag" % PROJECT
	e0 = s["etag"]
	assert len(e0) > 2 and e0[0] == e0[-1] == '"'
	v = add(emu, "h-etag", b"x")
	assert sm(emu, "GET", spath)[1]["etag"] == e0  # addVersion: no change
	st, b = sm(emu, "PATCH", spath + "?updateMask=labels",
		   {"labels": {"env": "prod"}, "etag": '"0"'})
	assert st == 400 and err(b) == "FAILED_PRECONDITION"
	st, b = sm(emu, "PATCH", spath + "?updateMask=labels",
		   {"labels": {"env": "prod"}, "etag": e0})
	assert st == 200 and b["labels"] == {"env": "prod"}
	e1 = b["etag"]
	assert e1 != e0
	st, b = sm(emu, "DELETE", spath + "?etag=" + urllib.parse.quote(e0))
	assert st == 400 and err(b) == "FAILED_PRECONDITION"
	# a no-op enable still changes the version's etag
	vpath = spath + "/versions/1"
	st, v2 = sm(emu, "POST", vpath + ":enable", {"etag": v["etag"]})
	assert st == 200 and v2["etag"] != v["etag"]
	st, b = sm(emu, "POST", vpath + ":disable", {"etag": v["etag"]})
	assert st == 400 and err(b) == "FAILED_PRECONDITION"
	st, b = sm(emu, "POST", vpath + ":destroy", {"etag": v["etag"]})
	assert st == 400
	st, b = sm(emu, "POST", vpath + ":disable", {"etag": v2["etag"]})
	assert st == 200 and b["state"] == "DISABLED"
	assert sm(emu, "GET", spath)[1]["etag"] == e1  # version ops: no change
	st, b = sm(emu, "DELETE", spath + "?etag=" + urllib.parse.quote(e1))
	assert st == 200 and b == {}
	assert sm(emu, "GET", spath)[0] == 404
	assert sm(emu, "DELETE", spath)[0] == 404


def test_patch_labels_annotations_aliases(emu):
	mk_secret(emu, "h-patch", body={"replication": {"automatic": {}},
					"labels": {"team": "a"},
					"annotations": {"keyfs.id": "x"}})
	for _ in range(2):
		add(emu, "h-patch", b"p")
	spath = "projects/%s/secrets/h-patch" % PROJECT
	st, b = sm(emu, "PATCH", spath, {"labels": {}})
	assert st == 400 and "update_mask" in b["error"]["message"]
	for mask, body in (("labels", {"labels": {"Bad": "x"}}),
			   ("labels", {"labels": {"k": "UPPER"}}),
			   ("annotations", {"annotations": {"-bad": "x"}}),
			   ("annotations", {"annotations": {"keyfs.io/id": "x"}}),
			   ("annotations", {"annotations": {"k": "x" * 16384}}),
			   ("versionAliases", {"versionAliases": {"latest": "1"}}),
			   ("versionAliases", {"versionAliases": {"a": "9"}}),
			   ("versionAliases", {"versionAliases": {"1a": "1"}}),
			   ("createTime", {}), ("ttl", {"ttl": "60s"})):
		st, b = sm(emu, "PATCH", spath + "?updateMask=" + mask, body)
		assert st == 400 and err(b) == "INVALID_ARGUMENT", (mask, body)
	st, b = sm(emu, "PATCH", spath + "?updateMask=version_aliases,labels",
		   {"version_aliases": {"prod": "1"}, "labels": {"team": "b"}})
	assert st == 200, b
	assert b["versionAliases"] == {"prod": "1"}
	assert b["labels"] == {"team": "b"}
	assert b["annotations"] == {"keyfs.id": "x"}
	st, b = access(emu, "h-patch", "prod")
	assert st == 200 and b["name"] == secret_name("h-patch") + "/versions/1"
	st, b = sm(emu, "POST", spath + "/versions/1:destroy", {})
	assert st == 200
	assert "versionAliases" not in sm(emu, "GET", spath)[1]
	assert access(emu, "h-patch", "prod")[0] == 404


def test_pagination(emu):
	mk_secret(emu, "pg-sec-proj", project="pg-proj")
	for i in (4, 0, 6, 2, 1, 5, 3):
		mk_secret(emu, "k%d" % i, project="pg-proj")
	base = "projects/pg-proj/secrets"

	def walk(q, field="secrets", path=base, delete_after_first=None):
		seen, tok, pages = [], None, 0
		while True:
			st, b = sm(emu, "GET", path + q +
				   ("&pageToken=" + tok if tok else ""))
			assert st == 200, b
			pages += 1
			seen += [x["name"].rsplit("/", 1)[1] for x in b[field]]
			if pages == 1 and delete_after_first:
				assert sm(emu, "DELETE", base + "/" +
					  delete_after_first)[0] == 200
			tok = b.get("nextPageToken")
			if not tok:
				return seen, pages, b
	seen, pages, last = walk("?pageSize=3&filter=name:k")
	assert seen == ["k%d" % i for i in range(7)] and pages == 3
	assert last["totalSize"] == 7
	st, b = sm(emu, "GET", base + "?pageSize=3")
	assert b["totalSize"] == 8 and len(b["secrets"]) == 3
	tok = b["nextPageToken"]
	for q in ("?pageSize=3&pageToken=garbage", "?pageSize=-1",
		  "?pageSize=x", "?pageSize=3&filter=name:k&pageToken=" + tok):
		st, b = sm(emu, "GET", base + q)
		assert st == 400 and err(b) == "INVALID_ARGUMENT", q
	# a token of another list is refused
	mk_secret(emu, "pg-v")
	for i in range(5):
		add(emu, "pg-v", b"%d" % i)
	vpath = "projects/%s/secrets/pg-v/versions" % PROJECT
	st, b = sm(emu, "GET", vpath + "?pageSize=2")
	assert st == 200 and b["totalSize"] == 5
	st, b2 = sm(emu, "GET", base + "?pageSize=2&pageToken=" +
		    b["nextPageToken"])
	assert st == 400
	# versions: newest first, in pages
	seen, pages, _ = walk("?pageSize=2", "versions", vpath)
	assert seen == ["5", "4", "3", "2", "1"] and pages == 3
	# a secret deleted between pages makes no other one disappear
	seen, _, _ = walk("?pageSize=3&filter=name:k", delete_after_first="k1")
	assert seen == ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]
	seen, _, _ = walk("?pageSize=3&filter=name:k", delete_after_first="k4")
	assert seen == ["k0", "k2", "k3", "k5", "k6"]
	# pageSize 0 or none: the server's default page size
	emu.admin("POST", "/_emu/config", {"default_page_size": 2})
	try:
		st, b = sm(emu, "GET", base + "?pageSize=0")
		assert len(b["secrets"]) == 2 and "nextPageToken" in b
		st, b = sm(emu, "GET", vpath)
		assert len(b["versions"]) == 2 and "nextPageToken" in b
	finally:
		emu.admin("POST", "/_emu/config", {"default_page_size": 25000})
	# an empty list: no list field, no token, no totalSize
	st, b = sm(emu, "GET", "projects/pg-empty/secrets")
	assert st == 200 and b == {}


def test_filters(emu):
	p = "projects/flt-proj/secrets"
	for sid, labels in (("app-db", {"env": "prod", "team": "a"}),
			    ("app-web", {"env": "dev"}),
			    ("other", {"team": "a"})):
		mk_secret(emu, sid, project="flt-proj", body={
			"replication": {"automatic": {}}, "labels": labels})

	def ids(f):
		st, b = sm(emu, "GET", p + "?filter=" + urllib.parse.quote(f))
		assert st == 200, (f, b)
		return [s["name"].rsplit("/", 1)[1] for s in b.get("secrets", [])]
	assert ids("name:app") == ["app-db", "app-web"]
	assert ids("labels.env=prod") == ["app-db"]
	assert ids("labels.team:*") == ["app-db", "other"]
	assert ids("labels.env=dev OR labels.team=a") == ["app-db", "app-web",
							   "other"]
	assert ids("name:app AND NOT labels.env=dev") == ["app-db"]
	assert ids("name:app -labels.env=prod") == ["app-web"]
	assert ids('(name:web OR name:other) labels.team="a"') == ["other"]
	assert ids("create_time>2000-01-01") == ["app-db", "app-web", "other"]
	assert ids("create_time<2000-01-01") == []
	for f in ("bogus=1", "name", "name:a OR", "(name:a", "state:ENABLED",
		  "name:a FOO name:b"):
		st, b = sm(emu, "GET", p + "?filter=" + urllib.parse.quote(f))
		assert st == 400 and err(b) == "INVALID_ARGUMENT", f
	mk_secret(emu, "flt-v", project="flt-proj")
	for i in range(3):
		add(emu, "flt-v", b"%d" % i, project="flt-proj")
	vp = p + "/flt-v/versions/"
	sm(emu, "POST", vp + "2:disable", {})
	st, b = sm(emu, "GET", vp[:-1] + "?filter=state:ENABLED")
	assert [v["name"][-1] for v in b["versions"]] == ["3", "1"]
	assert b["totalSize"] == 2
	st, b = sm(emu, "GET", vp[:-1] + "?filter=" +
		   urllib.parse.quote("NOT state:ENABLED"))
	assert [v["name"][-1] for v in b["versions"]] == ["2"]
	assert sm(emu, "GET", vp[:-1] + "?filter=state:GONE")[0] == 400


def test_auth(emu):
	path = "projects/%s/secrets" % PROJECT
	st, b, h = http(emu, "GET", "/v1/" + path, token=None)
	assert st == 401 and err(b) == "UNAUTHENTICATED"
	assert "missing required authentication" in b["error"]["message"]
	assert h["WWW-Authenticate"].startswith("Bearer")
	st, b, h = http(emu, "GET", "/v1/" + path, token="ya29.wrong")
	assert st == 401 and "invalid authentication" in b["error"]["message"]
	st, b, h = http(emu, "GET", "/v1/" + path,
			headers={"Authorization": "Basic " + TOKEN}, token=None)
	assert st == 401
	extra = "ya29.extra-" + secrets.token_urlsafe(8)
	emu.admin("POST", "/_emu/static-tokens", {"token": extra})
	assert http(emu, "GET", "/v1/" + path, token=extra)[0] == 200
	emu.admin("POST", "/_emu/config", {"accept_any_token": True})
	try:
		assert http(emu, "GET", "/v1/" + path, token="any")[0] == 200
		assert http(emu, "GET", "/v1/" + path, token=None)[0] == 401
		emu.admin("POST", "/_emu/config", {"require_auth": False})
		assert http(emu, "GET", "/v1/" + path, token=None)[0] == 200
	finally:
		emu.admin("POST", "/_emu/config", {"accept_any_token": False,
						   "require_auth": True})
	assert http(emu, "GET", "/v1/" + path, token="any")[0] == 401


def test_routes_query_and_body_errors(emu):
	mk_secret(emu, "h-err")
	spath = "/v1/projects/%s/secrets/h-err" % PROJECT
	cases = [
		("GET", spath + "?bogus=1", None, 400, "INVALID_ARGUMENT"),
		("GET", spath + "?alt=proto", None, 400, "INVALID_ARGUMENT"),
		("GET", spath + "?alt=json&prettyPrint=false", None, 200, None),
		("GET", spath + ":frob", None, 404, "NOT_FOUND"),
		("PUT", spath, None, 404, "NOT_FOUND"),
		("GET", "/v1/projects/%s/locations" % PROJECT, None, 501,
		 "UNIMPLEMENTED"),
		("GET", "/v1/projects/%s/locations/us-east1/secrets/x" % PROJECT,
		 None, 501, "UNIMPLEMENTED"),
		("GET", "/v2/x", None, 404, "NOT_FOUND"),
	]
	for method, path, body, code, status in cases:
		st, b, _ = http(emu, method, path, body)
		assert st == code, (method, path, b)
		if status:
			assert b["error"]["status"] == status and \
				b["error"]["code"] == code
	st, b, _ = http(emu, "POST", spath + ":addVersion", raw=b"{not json",
			headers={"Content-Type": "application/json"})
	assert st == 400 and err(b) == "INVALID_ARGUMENT"
	st, b, _ = http(emu, "POST", spath + ":addVersion", raw=b"[1]",
			headers={"Content-Type": "application/json"})
	assert st == 400


def test_faults_and_counters(emu):
	mk_secret(emu, "h-fault")
	add(emu, "h-fault", b"v1")
	spath = "projects/%s/secrets/h-fault" % PROJECT
	emu.admin("POST", "/_emu/counters/reset")
	emu.admin("POST", "/_emu/faults", {"error_status": 503,
					   "error_count": 2,
					   "error_methods": ["versions.access"]})
	got = [access(emu, "h-fault") for _ in range(3)]
	assert [g[0] for g in got] == [503, 503, 200]
	assert err(got[0][1]) == "UNAVAILABLE"
	assert sm(emu, "GET", spath)[0] == 200   # other methods unaffected
	emu.admin("POST", "/_emu/faults", {"error_status": "RESOURCE_EXHAUSTED",
					   "error_rate": 1.0})
	st, b = sm(emu, "GET", spath)
	assert st == 429 and err(b) == "RESOURCE_EXHAUSTED"
	emu.admin("POST", "/_emu/faults", {"error_status": 500,
					   "error_rate": 0.5, "seed": 3,
					   "error_methods": ["secrets.get"]})
	codes = [sm(emu, "GET", spath)[0] for _ in range(20)]
	assert set(codes) == {200, 500}

	def raw_add(data):
		conn = httpclient.HTTPConnection("127.0.0.1", emu.port,
						  timeout=10)
		body = json.dumps({"payload": {"data": b64(data),
					       "dataCrc32c": str(crc(data))}})
		conn.request("POST", "/v1/%s:addVersion" % spath, body,
			     {"Authorization": "Bearer " + TOKEN,
			      "Content-Type": "application/json"})
		try:
			r = conn.getresponse()
			return r.status, r.read()
		except (httpclient.RemoteDisconnected, ConnectionError):
			return None, None
		finally:
			conn.close()

	def versions():
		st, b = sm(emu, "GET", spath + "/versions")
		return [v["name"].rsplit("/", 1)[1] for v in b["versions"]]
	# applied, then no answer: the ambiguous failure
	emu.admin("POST", "/_emu/faults", {"drop_count": 1,
					   "drop_methods": ["secrets.addVersion"]})
	assert raw_add(b"v2") == (None, None)
	assert versions() == ["2", "1"]
	assert base64.b64decode(access(emu, "h-fault")[1]["payload"]["data"]) \
		== b"v2"
	assert emu.admin("GET", "/_emu/faults")["drop_count"] == 0
	assert raw_add(b"v3")[0] == 200          # the count ran out
	# dropped before it was applied
	emu.admin("POST", "/_emu/faults", {"drop_count": 1, "drop_before": True})
	assert raw_add(b"lost") == (None, None)
	assert versions() == ["3", "2", "1"]
	# applied, and answered with an error
	emu.admin("POST", "/_emu/faults", {"drop_count": 1, "drop_status": 503})
	st, body = raw_add(b"v4")
	assert st == 503 and json.loads(body)["error"]["status"] == \
		"UNAVAILABLE"
	assert versions() == ["4", "3", "2", "1"]
	# corruption of access answers, for the next one only
	emu.admin("POST", "/_emu/faults", {"corrupt_crc": True,
					   "corrupt_count": 1})
	b = access(emu, "h-fault")[1]["payload"]
	assert crc(base64.b64decode(b["data"])) != int(b["dataCrc32c"])
	b = access(emu, "h-fault")[1]["payload"]
	assert crc(base64.b64decode(b["data"])) == int(b["dataCrc32c"])
	emu.admin("POST", "/_emu/faults", {"corrupt_data": True})
	b = access(emu, "h-fault")[1]["payload"]
	assert base64.b64decode(b["data"]) != b"v4"
	assert int(b["dataCrc32c"]) == crc(b"v4")
	# latency
	emu.admin("POST", "/_emu/faults", {"latency_ms": 300})
	t0 = time.monotonic()
	assert sm(emu, "GET", spath)[0] == 200
	assert time.monotonic() - t0 >= 0.3
	emu.admin("DELETE", "/_emu/faults")
	assert emu.admin("GET", "/_emu/faults") == {}
	for bad_fault in ({"nope": 1}, {"error_status": 200},
			  {"drop_methods": ["secrets.frob"]}):
		with pytest.raises(urllib.error.HTTPError):
			emu.admin("POST", "/_emu/faults", bad_fault)
	c = emu.admin("GET", "/_emu/counters")
	assert c["calls"]["versions.access"] == 3 + 4
	assert c["responses"]["versions.access"] == {"503": 2, "200": 5}
	assert c["calls"]["secrets.get"] == 1 + 1 + 20 + 1
	assert c["responses"]["secrets.get"]["429"] == 1
	assert c["faults_injected"]["secrets.get"] == 1 + \
		c["responses"]["secrets.get"]["500"]
	assert c["responses"]["secrets.addVersion"] == {"dropped": 2, "200": 1,
							"503": 1}
	assert c["faults_injected"]["secrets.addVersion"] == 3
	assert c["faults_injected"]["versions.access"] == 2 + 1 + 1
	assert c["total"] == sum(c["calls"].values())
	# the request log holds neither the token nor any payload
	log = json.dumps(emu.admin("GET", "/_emu/requests"))
	assert TOKEN not in log
	for v in (b"v2", b"v3", b"v4", b"lost"):
		assert b64(v) not in log
	dump = json.dumps(emu.admin("GET", "/_emu/secrets"))
	assert secret_name("h-fault") in dump and b64(b"v4") not in dump
	emu.admin("POST", "/_emu/counters/reset")
	assert emu.admin("GET", "/_emu/counters")["total"] == 0


def test_command_line_options(tmp):
	tokf = os.path.join(tmp, "cli-token")
	with open(tokf, "w") as f:
		f.write("cli-token\n")
	with gsm_emulator.EmulatorProcess([
			"--static-token-file", tokf, "--project", "cli-proj=42",
			"--default-page-size", "1"]) as e:
		path = "/v1/projects/cli-proj/secrets"
		rep = {"replication": {"automatic": {}}}
		assert http(e, "POST", path + "?secretId=a", rep)[0] == 401
		st, b, _ = http(e, "POST", path + "?secretId=a", rep,
				token="cli-token")
		assert st == 200 and b["name"] == "projects/42/secrets/a"
		http(e, "POST", path + "?secretId=b", rep, token="cli-token")
		st, b, _ = http(e, "GET", path, token="cli-token")
		assert len(b["secrets"]) == 1 and b["totalSize"] == 2
		e.admin("POST", "/_emu/static-tokens", {"token": "admin-tok"})
		e.admin("POST", "/_emu/projects", {"id": "adm-proj",
						   "number": "77"})
		e.admin("POST", "/_emu/reset")
		# command-line settings survive a reset, the rest does not
		st, b, _ = http(e, "GET", path, token="cli-token")
		assert st == 200 and b == {}
		assert http(e, "GET", path, token="admin-tok")[0] == 401
		assert e.admin("GET", "/_emu/projects") == {"cli-proj": "42"}
		assert e.admin("GET", "/_emu/config")["default_page_size"] == 1
	with gsm_emulator.EmulatorProcess(["--no-auth"]) as e:
		st, b, _ = http(e, "GET", "/v1/projects/123/secrets", token=None)
		assert st == 200 and b == {}
