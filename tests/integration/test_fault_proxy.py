"""Tests of tests/emulators/fault_proxy.py itself, against a tiny stdlib
upstream that records every request it receives: forwarding with
keep-alive, operation names, each fault kind, seeded rates, counts, stats,
and the lost-response case (the upstream applied the request, the client
saw a reset)."""
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(os.path.dirname(HERE), "emulators", "fault_proxy.py")
TEST_TIMEOUT = 60

SM = "secretsmanager."
KMS_KEY = "/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k"


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


class Upstream:
	"""Records (method, path, headers, body) and answers 200 JSON."""

	def __init__(self):
		self.lock = threading.Lock()
		self.seen = []
		up = self

		class H(BaseHTTPRequestHandler):
			protocol_version = "HTTP/1.1"

			def log_message(self, *a):
				pass

			def setup(self):
				super().setup()
				self.connection.setsockopt(
					socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

			def _any(self):
				n = int(self.headers.get("Content-Length") or 0)
				body = self.rfile.read(n) if n else b""
				with up.lock:
					up.seen.append((self.command, self.path,
							dict(self.headers), body))
					idx = len(up.seen)
				if self.path.startswith("/chunked"):
					self.send_response(200)
					self.send_header("Transfer-Encoding",
							 "chunked")
					self.end_headers()
					for part in (b"hello ", b"chunked"):
						self.wfile.write(b"%x\r\n%s\r\n"
								 % (len(part), part))
					self.wfile.write(b"0\r\n\r\n")
					return
				out = json.dumps({"n": idx, "len": len(body),
						  "path": self.path}).encode()
				if self.command == "POST" and \
				   self.path.startswith("/echo"):
					out = body
				self.send_response(201 if self.path ==
						   "/created" else 200)
				self.send_header("Content-Type",
						 "application/json")
				self.send_header("X-Upstream", "yes")
				self.send_header("Content-Length", str(len(out)))
				self.end_headers()
				if self.command != "HEAD":
					self.wfile.write(out)

			do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = \
				do_HEAD = _any

		self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
		self.srv.daemon_threads = True
		self.port = self.srv.server_address[1]
		self.t = threading.Thread(target=self.srv.serve_forever,
					  daemon=True)
		self.t.start()

	def count(self):
		with self.lock:
			return len(self.seen)

	def stop(self):
		self.srv.shutdown()
		self.srv.server_close()


class Proxy:
	def __init__(self, upstream_port):
		self.proc = subprocess.Popen(
			[sys.executable, PROXY, "--upstream",
			 "http://127.0.0.1:%d" % upstream_port],
			stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			stdin=subprocess.DEVNULL)
		sel = selectors.DefaultSelector()
		sel.register(self.proc.stdout, selectors.EVENT_READ)
		if not sel.select(15):
			self.stop()
			raise RuntimeError("fault_proxy did not start")
		line = self.proc.stdout.readline().decode().strip()
		assert line.startswith("PORT "), line
		self.port = int(line.split()[1])

	def conn(self):
		return http.client.HTTPConnection("127.0.0.1", self.port,
						  timeout=15)

	def control(self, method, path, body=None):
		c = self.conn()
		try:
			data = None if body is None else json.dumps(body)
			c.request(method, path, body=data)
			r = c.getresponse()
			return r.status, json.loads(r.read() or b"null")
		finally:
			c.close()

	def configure(self, rules, seed=1):
		st, cfg = self.control("POST", "/_proxy/config",
				       {"seed": seed, "rules": rules})
		assert st == 200, cfg
		return cfg

	def stats(self):
		st, s = self.control("GET", "/_proxy/stats")
		assert st == 200
		return s

	def stop(self):
		if self.proc.poll() is None:
			self.proc.terminate()
			try:
				self.proc.wait(10)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait(10)
		err = self.proc.stderr.read().decode(errors="replace")
		self.proc.stdout.close()
		self.proc.stderr.close()
		return err


@pytest.fixture(scope="module")
def upstream():
	u = Upstream()
	yield u
	u.stop()


@pytest.fixture(scope="module")
def proxy_proc(upstream):
	p = Proxy(upstream.port)
	yield p
	err = p.stop()
	assert "Traceback" not in err, err


@pytest.fixture
def proxy(proxy_proc):
	proxy_proc.control("POST", "/_proxy/reset")
	yield proxy_proc
	proxy_proc.control("POST", "/_proxy/reset")


def aws(conn, op, body=b'{"SecretId":"s"}'):
	"""One AWS JSON request; returns (status, body bytes)."""
	conn.request("POST", "/", body=body, headers={
		"X-Amz-Target": SM + op,
		"Content-Type": "application/x-amz-json-1.1",
		"Host": "secretsmanager.us-east-1.amazonaws.com"})
	r = conn.getresponse()
	return r.status, r.read()


def kms(conn, method, path, body=None):
	conn.request(method, path, body=body,
		     headers={"Content-Type": "application/json"})
	r = conn.getresponse()
	return r.status, r.read()


def test_forwards_with_keepalive_and_host(proxy, upstream):
	c = proxy.conn()
	n0 = upstream.count()
	st, body = aws(c, "GetSecretValue")
	assert st == 200
	sock = c.sock
	assert sock is not None
	for _ in range(5):
		st, body = aws(c, "GetSecretValue")
		assert st == 200
	assert c.sock is sock, "client connection was not kept alive"
	c.close()
	assert upstream.count() == n0 + 6
	method, path, headers, body = upstream.seen[-1]
	assert (method, path) == ("POST", "/")
	# Host and signed headers pass unchanged (SigV4 still verifies)
	assert headers["Host"] == "secretsmanager.us-east-1.amazonaws.com"
	assert headers["X-Amz-Target"] == SM + "GetSecretValue"
	assert body == b'{"SecretId":"s"}'
	s = proxy.stats()["ops"]["GetSecretValue"]
	assert (s["seen"], s["forwarded"], s["responded"]) == (6, 6, 6)
	assert s["faults"] == {}


def test_bodies_status_and_chunked(proxy, upstream):
	c = proxy.conn()
	big = os.urandom(300000)
	c.request("POST", "/echo", body=big)
	r = c.getresponse()
	assert r.status == 200 and r.read() == big
	c.request("PUT", "/created", body=b"x")
	r = c.getresponse()
	assert r.status == 201 and r.getheader("X-Upstream") == "yes"
	r.read()
	c.request("GET", "/chunked")
	r = c.getresponse()
	assert r.status == 200 and r.read() == b"hello chunked"
	assert r.getheader("Content-Length") == "13"
	# a chunked request body is forwarded with a Content-Length
	c.putrequest("POST", "/echo")
	c.putheader("Transfer-Encoding", "chunked")
	c.endheaders()
	c.send(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	r = c.getresponse()
	assert r.status == 200 and r.read() == b"abcde"
	assert upstream.seen[-1][2]["Content-Length"] == "5"
	c.request("HEAD", "/x")
	r = c.getresponse()
	assert r.status == 200 and r.read() == b""
	c.close()


def test_operation_names(proxy):
	c = proxy.conn()
	aws(c, "PutSecretValue")
	kms(c, "POST", "/v1/projects/p/locations/global/keyRings?keyRingId=r",
	    b"{}")
	kms(c, "POST", KMS_KEY + ":encrypt", b'{"plaintext":"eA=="}')
	kms(c, "POST", KMS_KEY + "/cryptoKeyVersions/3:encrypt", b"{}")
	kms(c, "POST", KMS_KEY + ":decrypt", b"{}")
	kms(c, "GET", KMS_KEY + "/cryptoKeyVersions?pageSize=5")
	kms(c, "PATCH", KMS_KEY + "?updateMask=labels", b"{}")
	kms(c, "POST", "/token", b"grant_type=x")
	kms(c, "GET", "/computeMetadata/v1/instance/service-accounts/"
	    "default/token")
	kms(c, "GET", "/v1/nothing/here")
	c.request("POST", "/", body=b"Action=AssumeRoleWithWebIdentity&"
		  b"Version=2011-06-15", headers={
			  "Content-Type": "application/x-www-form-urlencoded"})
	c.getresponse().read()
	c.close()
	ops = proxy.stats()["ops"]
	for op, n in [("PutSecretValue", 1), ("keyRings.create", 1),
		      ("cryptoKeys.encrypt", 2), ("cryptoKeys.decrypt", 1),
		      ("cryptoKeyVersions.list", 1), ("cryptoKeys.patch", 1),
		      ("oauth.token", 1), ("metadata.token", 1),
		      ("unknown", 1), ("AssumeRoleWithWebIdentity", 1)]:
		assert ops.get(op, {}).get("seen") == n, (op, ops)


def test_aws_http_faults(proxy, upstream):
	c = proxy.conn()
	for fault, status, typ in [("500", 500, "InternalFailure"),
				   ("503", 503, "ServiceUnavailable"),
				   ("throttle", 400, "ThrottlingException")]:
		proxy.configure([{"op": "PutSecretValue", "fault": fault}])
		n0 = upstream.count()
		st, body = aws(c, "PutSecretValue")
		assert st == status
		assert json.loads(body)["__type"] == typ
		assert upstream.count() == n0, "a faulted request was forwarded"
		# other operations are untouched, on the same connection
		st, _ = aws(c, "GetSecretValue")
		assert st == 200 and upstream.count() == n0 + 1
	c.close()
	s = proxy.stats()["ops"]
	assert s["PutSecretValue"]["faults"] == {"500": 1, "503": 1,
						 "throttle": 1}
	assert s["PutSecretValue"]["forwarded"] == 0
	assert s["GetSecretValue"]["faults"] == {}


def test_query_protocol_throttle_is_xml(proxy):
	proxy.configure([{"op": "AssumeRoleWithWebIdentity",
			  "fault": "throttle"}])
	c = proxy.conn()
	c.request("POST", "/", body=b"Action=AssumeRoleWithWebIdentity",
		  headers={"Content-Type": "application/x-www-form-urlencoded"})
	r = c.getresponse()
	body = r.read().decode()
	c.close()
	assert r.status == 400
	assert "<Code>Throttling</Code>" in body and "ErrorResponse" in body


def test_google_faults(proxy, upstream):
	c = proxy.conn()
	for fault, status, gstatus in [("throttle", 429, "RESOURCE_EXHAUSTED"),
				       ("503", 503, "UNAVAILABLE"),
				       ("500", 500, "INTERNAL")]:
		proxy.configure([{"op": "cryptoKeys.*", "fault": fault}])
		n0 = upstream.count()
		st, body = kms(c, "POST", KMS_KEY + ":encrypt", b"{}")
		e = json.loads(body)["error"]
		assert (st, e["code"], e["status"]) == (status, status, gstatus)
		assert upstream.count() == n0
		st, _ = kms(c, "POST", "/token", b"grant_type=x")
		assert st == 200 and upstream.count() == n0 + 1
	c.close()


def test_reset_before_never_reaches_upstream(proxy, upstream):
	proxy.configure([{"op": "PutSecretValue", "fault": "reset_before"}])
	c = proxy.conn()
	n0 = upstream.count()
	with pytest.raises(ConnectionResetError):
		aws(c, "PutSecretValue", b'{"SecretId":"s","SecretString":"v"}')
	c.close()
	assert upstream.count() == n0
	s = proxy.stats()["ops"]["PutSecretValue"]
	assert s["faults"] == {"reset_before": 1} and s["forwarded"] == 0


def test_reset_after_is_the_lost_response(proxy, upstream):
	proxy.configure([{"op": "PutSecretValue", "fault": "reset_after",
			  "count": 1}])
	c = proxy.conn()
	n0 = upstream.count()
	body = b'{"SecretId":"s","ClientRequestToken":"tok-1"}'
	with pytest.raises(ConnectionResetError):
		aws(c, "PutSecretValue", body)
	c.close()
	# the upstream applied it ...
	assert upstream.count() == n0 + 1
	assert upstream.seen[-1][3] == body
	s = proxy.stats()["ops"]["PutSecretValue"]
	# ... but no response went back
	assert (s["forwarded"], s["responded"]) == (1, 0)
	assert s["faults"] == {"reset_after": 1}
	# the retry (count exhausted) goes through: the upstream sees it twice
	c = proxy.conn()
	st, _ = aws(c, "PutSecretValue", body)
	c.close()
	assert st == 200 and upstream.count() == n0 + 2


def test_delay(proxy, upstream):
	proxy.configure([{"op": "GetSecretValue", "fault": "delay",
			  "delay_ms": 400}])
	c = proxy.conn()
	t0 = time.monotonic()
	st, _ = aws(c, "GetSecretValue")
	slow = time.monotonic() - t0
	t0 = time.monotonic()
	st2, _ = aws(c, "ListSecrets")
	fast = time.monotonic() - t0
	c.close()
	assert st == 200 and st2 == 200
	assert slow >= 0.4 and fast < 0.3
	s = proxy.stats()["ops"]["GetSecretValue"]
	assert s["faults"] == {"delay": 1} and s["responded"] == 1


def _pattern(proxy, seed, rate, n=200):
	proxy.control("POST", "/_proxy/reset")
	proxy.configure([{"op": "*", "fault": "503", "rate": rate}], seed=seed)
	c = proxy.conn()
	out = []
	for _ in range(n):
		st, _ = aws(c, "GetSecretValue")
		assert st in (200, 503)
		out.append(st == 503)
	c.close()
	return out


def test_seeded_rates_are_reproducible(proxy):
	a = _pattern(proxy, 1, 0.3)
	b = _pattern(proxy, 1, 0.3)
	c = _pattern(proxy, 2, 0.3)
	assert a == b, "same seed, different fault sequence"
	assert a != c, "different seeds, same fault sequence"
	assert 35 <= sum(a) <= 85, sum(a)	# ~60 expected at 0.3
	s = proxy.stats()["total"]
	assert s["seen"] == 200 and s["faults"]["503"] == sum(c)
	assert s["forwarded"] == 200 - sum(c)
	assert not any(_pattern(proxy, 1, 0.0, 40))
	assert all(_pattern(proxy, 1, 1.0, 40))


def test_count_and_rule_order(proxy, upstream):
	cfg = proxy.configure([
		{"op": "PutSecretValue", "fault": "500", "count": 2},
		{"op": "*", "fault": "throttle", "rate": 1, "count": 1}])
	assert [r["remaining"] for r in cfg["rules"]] == [2, 1]
	c = proxy.conn()
	got = [aws(c, "PutSecretValue")[0] for _ in range(4)]
	c.close()
	# two 500s from the first rule, then the catch-all once, then through
	assert got == [500, 500, 400, 200]
	st, cfg = proxy.control("GET", "/_proxy/config")
	assert [r["remaining"] for r in cfg["rules"]] == [0, 0]


def test_bad_config_and_reset(proxy):
	for bad in [{"rules": [{"op": "x", "fault": "explode"}]},
		    {"rules": [{"op": "x", "fault": "500", "rate": 2}]},
		    {"rules": [{"op": "x", "fault": "delay"}]},
		    {"rules": [{"op": "x", "fault": "500", "count": -1}]},
		    {"rules": [{"op": "x", "fault": "500", "oops": 1}]},
		    {"seed": "x"}, [1]]:
		st, body = proxy.control("POST", "/_proxy/config", bad)
		assert st == 400 and body["error"], bad
	proxy.configure([{"op": "*", "fault": "500"}])
	c = proxy.conn()
	assert aws(c, "GetSecretValue")[0] == 500
	st, _ = proxy.control("POST", "/_proxy/reset")
	assert st == 200
	assert aws(c, "GetSecretValue")[0] == 200
	c.close()
	s = proxy.stats()
	assert s["total"]["seen"] == 1 and s["total"]["faults"] == {}
	assert proxy.control("GET", "/_proxy/nope")[0] == 404


def test_upstream_down_is_502(upstream):
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	dead = s.getsockname()[1]
	s.close()
	p = Proxy(dead)
	try:
		c = p.conn()
		st, body = aws(c, "GetSecretValue")
		c.close()
		assert st == 502
		assert p.stats()["ops"]["GetSecretValue"]["upstream_errors"] == 1
	finally:
		p.stop()


BOTO_SCRIPT = r"""
import json, sys
import boto3
from botocore.config import Config
url = sys.argv[1]
c = boto3.client("secretsmanager", endpoint_url=url, region_name="us-east-1",
		 aws_access_key_id="AKIDPROXYTEST",
		 aws_secret_access_key="proxy-test-not-a-secret",
		 config=Config(retries={"mode": "standard", "max_attempts": 5},
			       connect_timeout=5, read_timeout=10))
step = sys.argv[2]
if step == "create":
	c.create_secret(Name="fp-test", SecretString="v0")
elif step == "get":
	print(json.dumps({"len": len(c.get_secret_value(
		SecretId="fp-test")["SecretString"])}))
elif step == "put":
	c.put_secret_value(SecretId="fp-test", SecretString="v1",
			   ClientRequestToken="fault-proxy-token-000000000000001")
	v = c.list_secret_version_ids(SecretId="fp-test")["Versions"]
	print(json.dumps({"versions": len(v)}))
"""


def _pyenv_python():
	import shutil
	p = shutil.which("python3", path="/root/.pyenv/shims")
	return p if p and os.path.exists(p) else None


@pytest.fixture(scope="module")
def moto_url():
	import shutil
	import urllib.request
	exe = shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
	if not os.path.exists(exe) or not _pyenv_python():
		pytest.fail("moto_server / pyenv python with boto3 not found")
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
				stdout=subprocess.DEVNULL,
				stderr=subprocess.DEVNULL)
	url = "http://127.0.0.1:%d" % port
	try:
		deadline = time.time() + 30
		while True:
			try:
				urllib.request.urlopen(url + "/moto-api/data.json",
						       timeout=1).read()
				break
			except OSError:
				if time.time() > deadline or \
				   proc.poll() is not None:
					pytest.fail("moto_server did not start")
				time.sleep(0.2)
		yield port
	finally:
		proc.terminate()
		try:
			proc.wait(timeout=10)
		except subprocess.TimeoutExpired:
			proc.kill()
			proc.wait()


def _boto(proxy, step):
	p = subprocess.run([_pyenv_python(), "-c", BOTO_SCRIPT,
			    "http://127.0.0.1:%d" % proxy.port, step],
			   capture_output=True, timeout=45)
	assert p.returncode == 0, p.stderr.decode()[-1500:]
	out = p.stdout.decode().strip()
	return json.loads(out) if out else None


def test_boto3_through_proxy_to_moto(moto_url):
	"""A real SDK and a real upstream: throttles are retried, and a
	PutSecretValue whose response was lost is retried with the same
	ClientRequestToken, reaching moto twice but making one version."""
	p = Proxy(moto_url)
	try:
		_boto(p, "create")
		p.configure([{"op": "GetSecretValue", "fault": "throttle",
			      "count": 2}])
		assert _boto(p, "get") == {"len": 2}
		g = p.stats()["ops"]["GetSecretValue"]
		assert (g["seen"], g["forwarded"]) == (3, 1)
		assert g["faults"] == {"throttle": 2}
		p.configure([{"op": "PutSecretValue", "fault": "reset_after",
			      "count": 1}])
		assert _boto(p, "put") == {"versions": 2}
		s = p.stats()["ops"]["PutSecretValue"]
		assert s["faults"] == {"reset_after": 1}
		assert (s["seen"], s["forwarded"], s["responded"]) == (2, 2, 1)
	finally:
		err = p.stop()
	assert "Traceback" not in err, err
