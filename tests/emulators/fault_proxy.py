#!/usr/bin/python3
"""Fault-injecting HTTP/1.1 reverse proxy for keyfs tests (stdlib only).

Sits between keyfs and moto_server or the KMS emulator, forwards every
request unchanged (the Host header included, so SigV4 signatures and JWT
audiences still match) and, at configured per-operation rates, injects
cloud faults instead.  It never logs a request or response body, a header
value or a query string.

    fault_proxy.py --upstream http://127.0.0.1:5000 [--port 0]
                   [--config JSON-or-@FILE]

The first stdout line is "PORT n".  Keep-alive on both sides; request
bodies with Content-Length (or chunked); responses are re-sent with a
Content-Length.

Operation of a request (what rules match on):
    AWS JSON protocol   X-Amz-Target suffix: "GetSecretValue"
    AWS query protocol  the form's Action: "AssumeRoleWithWebIdentity"
    Google Cloud KMS    the REST method: "cryptoKeys.encrypt",
                        "keyRings.create", ... (as the KMS emulator names
                        them), "oauth.token", "metadata.token", ...
    anything else       "unknown"

Control API (same port, never forwarded):
    POST /_proxy/config  {"seed": 1, "rules": [{"op": "PutSecretValue",
                          "fault": "500|503|throttle|reset_before|
                          reset_after|delay", "rate": 0.3, "delay_ms": 200,
                          "count": N}]}
                         replaces the rules and reseeds the generator.
                         op is an exact name or a glob ("*",
                         "cryptoKeys.*"); rate defaults to 1; count caps
                         the faults this rule injects (default unlimited).
                         For each request the matching rules are tried in
                         order, each drawing one number from the seeded
                         generator; the first that fires wins.  A delay
                         rule then still forwards the request.
    GET  /_proxy/config  the rules, with "remaining" counts
    GET  /_proxy/stats   {"ops": {op: {"seen", "forwarded", "responded",
                          "upstream_errors", "faults": {kind: n}}},
                          "total": {...same keys}}
    POST /_proxy/reset   no rules, zero stats

Faults:
    500, 503       AWS: {"__type": "InternalFailure" | "ServiceUnavailable"}
                   (query protocol: an XML ErrorResponse); Google: the
                   {"error": {"code", "message", "status"}} shape with
                   INTERNAL / UNAVAILABLE
    throttle       AWS: 400 {"__type": "ThrottlingException"} (query: 400
                   XML Code Throttling); Google: 429 RESOURCE_EXHAUSTED
    reset_before   TCP reset instead of forwarding: upstream never sees it
    reset_after    forwarded, the upstream's response read and dropped,
                   then a TCP reset: the lost-response case
    delay          sleep delay_ms, then forward
"""
import argparse
import fnmatch
import http.client
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "503", "throttle", "reset_before", "reset_after", "delay")
MAX_BODY = 64 << 20
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
       "proxy-authorization", "te", "trailer", "trailers",
       "transfer-encoding", "upgrade", "content-length"}

# Cloud KMS v1 REST methods, as tests/emulators/kms_emulator.py names them.
_P = r"projects/[^/:]+/locations/[^/:]+"
_R = _P + r"/keyRings/[^/:]+"
_K = _R + r"/cryptoKeys/[^/:]+"
_V = _K + r"/cryptoKeyVersions/[^/:]+"
GOOGLE_ROUTES = [(m, re.compile("/v1/" + rx + "$"), name) for m, rx, name in [
	("GET", r"projects/[^/:]+/locations", "locations.list"),
	("GET", _P, "locations.get"),
	("POST", _P + "/keyRings", "keyRings.create"),
	("GET", _P + "/keyRings", "keyRings.list"),
	("GET", _R, "keyRings.get"),
	("POST", _R + "/cryptoKeys", "cryptoKeys.create"),
	("GET", _R + "/cryptoKeys", "cryptoKeys.list"),
	("GET", _K, "cryptoKeys.get"),
	("PATCH", _K, "cryptoKeys.patch"),
	("POST", _K + ":updatePrimaryVersion", "cryptoKeys.updatePrimaryVersion"),
	("POST", _K + ":encrypt", "cryptoKeys.encrypt"),
	("POST", _V + ":encrypt", "cryptoKeys.encrypt"),
	("POST", _K + ":decrypt", "cryptoKeys.decrypt"),
	("POST", _K + "/cryptoKeyVersions", "cryptoKeyVersions.create"),
	("GET", _K + "/cryptoKeyVersions", "cryptoKeyVersions.list"),
	("GET", _V, "cryptoKeyVersions.get"),
	("PATCH", _V, "cryptoKeyVersions.patch"),
	("POST", _V + ":destroy", "cryptoKeyVersions.destroy"),
	("POST", _V + ":restore", "cryptoKeyVersions.restore"),
]]
METADATA = {
	"instance/service-accounts/default/token": "metadata.token",
	"instance/service-accounts/default/email": "metadata.email",
	"instance/service-accounts/default/": "metadata.info",
	"instance/service-accounts/default": "metadata.info",
	"project/project-id": "metadata.project_id",
}


def classify(method, path, headers, body):
	"""(api, op): api is "aws-json", "aws-query", "google" or "other"."""
	target = headers.get("X-Amz-Target")
	if target:
		return "aws-json", target.rsplit(".", 1)[-1] or "unknown"
	p = urllib.parse.urlsplit(path).path
	ctype = headers.get("Content-Type", "")
	if method == "POST" and p in ("/token", "/oauth2/v4/token"):
		return "google", "oauth.token"
	if p.startswith("/computeMetadata/v1/"):
		return "google", METADATA.get(p[len("/computeMetadata/v1/"):],
					      "unknown")
	if p.startswith("/v1/"):
		for m, rx, name in GOOGLE_ROUTES:
			if m == method and rx.match(p):
				return "google", name
		return "google", "unknown"
	if "x-www-form-urlencoded" in ctype or (
			method == "GET" and "Action=" in path):
		src = body.decode("latin-1") if method == "POST" else \
			urllib.parse.urlsplit(path).query
		action = urllib.parse.parse_qs(src).get("Action")
		if action:
			return "aws-query", action[0]
	return "other", "unknown"


def fault_response(kind, api, op):
	"""(status, content type, body bytes) for an HTTP-level fault."""
	if api == "google":
		code, status = {"500": (500, "INTERNAL"),
				"503": (503, "UNAVAILABLE"),
				"throttle": (429, "RESOURCE_EXHAUSTED")}[kind]
		msg = {"INTERNAL": "Internal error encountered.",
		       "UNAVAILABLE": "The service is currently unavailable.",
		       "RESOURCE_EXHAUSTED": "Quota exceeded for quota metric "
		       "'Requests' of service 'cloudkms.googleapis.com'."}[status]
		return code, "application/json; charset=UTF-8", json.dumps(
			{"error": {"code": code, "message": msg,
				   "status": status}}).encode()
	code, typ, msg = {
		"500": (500, "InternalFailure", "Internal service error "
			"(injected by fault_proxy)."),
		"503": (503, "ServiceUnavailable", "Service is unavailable "
			"(injected by fault_proxy)."),
		"throttle": (400, "ThrottlingException", "Rate exceeded"),
	}[kind]
	if api == "aws-query":
		if kind == "throttle":
			typ = "Throttling"
		body = ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
			"2011-06-15/\"><Error><Type>%s</Type><Code>%s</Code>"
			"<Message>%s</Message></Error><RequestId>fault-proxy"
			"</RequestId></ErrorResponse>" % (
				"Receiver" if code >= 500 else "Sender", typ, msg))
		return code, "text/xml", body.encode()
	return code, "application/x-amz-json-1.1", json.dumps(
		{"__type": typ, "message": msg}).encode()


class State:
	"""Rules, the seeded generator and counters; all under lock."""

	def __init__(self):
		self.lock = threading.Lock()
		self.reset()

	def reset(self):
		with self.lock:
			self.seed = 0
			self.rng = random.Random(0)
			self.rules = []
			self.stats = {}

	def configure(self, cfg):
		if not isinstance(cfg, dict):
			raise ValueError("config must be a JSON object")
		seed = cfg.get("seed", 0)
		if not isinstance(seed, int) or isinstance(seed, bool):
			raise ValueError("seed must be an integer")
		rules = []
		for r in cfg.get("rules", []):
			if not isinstance(r, dict):
				raise ValueError("a rule must be an object")
			unknown = set(r) - {"op", "fault", "rate", "delay_ms",
					    "count"}
			if unknown:
				raise ValueError("unknown rule field %s"
						 % sorted(unknown)[0])
			op = r.get("op", "*")
			fault = str(r.get("fault"))
			rate = r.get("rate", 1.0)
			delay = r.get("delay_ms", 0)
			count = r.get("count")
			if not isinstance(op, str) or not op:
				raise ValueError("op must be a non-empty string")
			if fault not in FAULTS:
				raise ValueError("fault must be one of %s"
						 % ", ".join(FAULTS))
			if not isinstance(rate, (int, float)) or \
			   isinstance(rate, bool) or not 0 <= rate <= 1:
				raise ValueError("rate must be in [0, 1]")
			if not isinstance(delay, (int, float)) or \
			   isinstance(delay, bool) or not 0 <= delay <= 600000:
				raise ValueError("delay_ms must be 0..600000")
			if fault == "delay" and not delay:
				raise ValueError("a delay rule needs delay_ms")
			if count is not None and (not isinstance(count, int) or
						  isinstance(count, bool) or
						  count < 0):
				raise ValueError("count must be a non-negative "
						 "integer")
			rules.append({"op": op, "fault": fault,
				      "rate": float(rate), "delay_ms": delay,
				      "count": count, "remaining": count})
		with self.lock:
			self.seed = seed
			self.rng = random.Random(seed)
			self.rules = rules

	def config(self):
		with self.lock:
			return {"seed": self.seed,
				"rules": [dict(r) for r in self.rules]}

	def _op(self, op):
		s = self.stats.get(op)
		if s is None:
			s = self.stats[op] = {"seen": 0, "forwarded": 0,
					      "responded": 0,
					      "upstream_errors": 0,
					      "faults": {}}
		return s

	def count(self, op, key):
		with self.lock:
			self._op(op)[key] += 1

	def decide(self, op):
		"""Count the request; return the rule that fires, or None."""
		with self.lock:
			self._op(op)["seen"] += 1
			for r in self.rules:
				if not fnmatch.fnmatchcase(op, r["op"]):
					continue
				if r["remaining"] == 0:
					continue
				if self.rng.random() >= r["rate"]:
					continue
				if r["remaining"] is not None:
					r["remaining"] -= 1
				f = self._op(op)["faults"]
				f[r["fault"]] = f.get(r["fault"], 0) + 1
				return dict(r)
			return None

	def snapshot(self):
		with self.lock:
			ops = json.loads(json.dumps(self.stats))
		total = {"seen": 0, "forwarded": 0, "responded": 0,
			 "upstream_errors": 0, "faults": {}}
		for s in ops.values():
			for k in ("seen", "forwarded", "responded",
				  "upstream_errors"):
				total[k] += s[k]
			for k, n in s["faults"].items():
				total["faults"][k] = total["faults"].get(k, 0) + n
		return {"ops": ops, "total": total}


class ResetConnection(Exception):
	"""Raised to drop the client connection with a TCP RST."""


class Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "keyfs-fault-proxy/1"
	state = None		# set on the subclass
	upstream = None		# (host, port, path prefix)
	timeout = 300		# idle keep-alive connections end eventually

	def log_message(self, fmt, *args):
		pass	# never log paths with queries, headers or bodies

	def setup(self):
		super().setup()
		self._up = None		# keep-alive connection to the upstream
		# Headers and body go out in separate writes: without this,
		# Nagle and delayed ACKs add ~40 ms to every exchange.
		self.connection.setsockopt(socket.IPPROTO_TCP,
					   socket.TCP_NODELAY, 1)

	def finish(self):
		try:
			super().finish()
		finally:
			if self._up is not None:
				self._up.close()

	def _reset(self):
		"""Abort the client connection with RST (SO_LINGER 0)."""
		try:
			self.connection.setsockopt(socket.SOL_SOCKET,
						   socket.SO_LINGER,
						   struct.pack("ii", 1, 0))
		except OSError:
			pass
		self.close_connection = True
		raise ResetConnection()

	def handle_one_request(self):
		try:
			super().handle_one_request()
		except ResetConnection:
			try:
				self.connection.close()
			except OSError:
				pass
			self.close_connection = True
		except (ConnectionError, socket.timeout):
			self.close_connection = True

	def _read_body(self):
		te = self.headers.get("Transfer-Encoding", "").lower()
		if "chunked" in te:
			out = bytearray()
			while True:
				line = self.rfile.readline(1024)
				size = int(line.split(b";")[0].strip() or b"0", 16)
				if size == 0:
					while self.rfile.readline(8192) not in \
					      (b"\r\n", b"\n", b""):
						pass
					return bytes(out)
				if len(out) + size > MAX_BODY:
					raise ValueError("body too large")
				out += self.rfile.read(size)
				self.rfile.readline(8)
		n = int(self.headers.get("Content-Length") or 0)
		if n < 0 or n > MAX_BODY:
			raise ValueError("bad Content-Length")
		return self.rfile.read(n) if n else b""

	def _send(self, code, ctype, body, extra=()):
		self.send_response(code)
		self.send_header("Content-Type", ctype)
		self.send_header("Content-Length", str(len(body)))
		for k, v in extra:
			self.send_header(k, v)
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(body)

	def _json(self, code, obj):
		self._send(code, "application/json",
			   (json.dumps(obj, sort_keys=True) + "\n").encode())

	def _control(self, body):
		path = urllib.parse.urlsplit(self.path).path
		st = self.state
		if path == "/_proxy/config" and self.command == "POST":
			try:
				st.configure(json.loads(body or b"{}"))
			except (ValueError, TypeError) as e:
				return self._json(400, {"error": str(e)})
			return self._json(200, st.config())
		if path == "/_proxy/config" and self.command == "GET":
			return self._json(200, st.config())
		if path == "/_proxy/stats" and self.command == "GET":
			return self._json(200, st.snapshot())
		if path == "/_proxy/reset" and self.command == "POST":
			st.reset()
			return self._json(200, {})
		return self._json(404, {"error": "no such control endpoint"})

	def _forward(self, body):
		"""One upstream exchange on the kept-alive connection; retried
		once on a fresh connection if the kept one had gone stale."""
		host, port, prefix = self.upstream
		headers = [(k, v) for k, v in self.headers.items()
			   if k.lower() not in HOP]
		if body or self.command in ("POST", "PUT", "PATCH"):
			headers.append(("Content-Length", str(len(body))))
		for attempt in (0, 1):
			fresh = self._up is None
			if fresh:
				self._up = http.client.HTTPConnection(
					host, port, timeout=120)
			try:
				self._up.putrequest(self.command,
						    prefix + self.path,
						    skip_host=True,
						    skip_accept_encoding=True)
				for k, v in headers:
					self._up.putheader(k, v)
				self._up.endheaders(body if body else None)
				r = self._up.getresponse()
				data = r.read()
				rh = [(k, v) for k, v in r.getheaders()
				      if k.lower() not in HOP]
				clen = r.getheader("Content-Length")
				if r.will_close:
					self._up.close()
					self._up = None
				return r.status, r.reason, rh, data, clen
			except (http.client.RemoteDisconnected,
				ConnectionResetError, BrokenPipeError):
				self._up.close()
				self._up = None
				if fresh or attempt:
					raise
		raise ConnectionError("unreachable")

	def _proxy(self):
		try:
			body = self._read_body()
		except (ValueError, OSError):
			self.close_connection = True
			return self._json(400, {"error": "bad request body"})
		if self.path.startswith("/_proxy/"):
			return self._control(body)
		api, op = classify(self.command, self.path, self.headers, body)
		st = self.state
		rule = st.decide(op)
		kind = rule["fault"] if rule else None
		if kind == "reset_before":
			self._reset()
		if kind in ("500", "503", "throttle"):
			code, ctype, data = fault_response(kind, api, op)
			extra = [("x-amzn-RequestId", "fault-proxy")] \
				if api.startswith("aws") else []
			return self._send(code, ctype, data, extra)
		if kind == "delay":
			time.sleep(rule["delay_ms"] / 1000.0)
		st.count(op, "forwarded")
		try:
			status, reason, rh, data, clen = self._forward(body)
		except (OSError, http.client.HTTPException):
			st.count(op, "upstream_errors")
			self.close_connection = True
			return self._json(502, {"error": "upstream unreachable"})
		if kind == "reset_after":
			self._reset()
		st.count(op, "responded")
		self.send_response(status, reason)
		for k, v in rh:
			self.send_header(k, v)
		if self.command == "HEAD" and clen is not None:
			self.send_header("Content-Length", clen)
		else:
			self.send_header("Content-Length", str(len(data)))
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(data)

	do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _proxy


def main(argv=None):
	ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	ap.add_argument("--upstream", required=True,
			help="http://HOST:PORT[/prefix] of moto_server or the "
			"KMS emulator")
	ap.add_argument("--port", type=int, default=0)
	ap.add_argument("--config", help="initial config: JSON text or @FILE")
	a = ap.parse_args(argv)
	u = urllib.parse.urlsplit(a.upstream)
	if u.scheme != "http" or not u.hostname:
		ap.error("--upstream must be an http:// URL")
	state = State()
	if a.config:
		text = a.config
		if text.startswith("@"):
			with open(text[1:]) as f:
				text = f.read()
		try:
			state.configure(json.loads(text))
		except ValueError as e:
			ap.error("--config: %s" % e)

	class H(Handler):
		pass
	H.state = state
	H.upstream = (u.hostname, u.port or 80, u.path.rstrip("/"))
	srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
	srv.daemon_threads = True
	print("PORT %d" % srv.server_address[1], flush=True)
	try:
		srv.serve_forever()
	except KeyboardInterrupt:
		pass
	finally:
		srv.server_close()
	return 0


if __name__ == "__main__":
	sys.exit(main())
