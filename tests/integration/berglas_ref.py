#!/usr/bin/env python3
"""An independent berglas storage-format reader and writer (tests only).

Written from berglas's Go source (pkg/berglas in GoogleCloudPlatform/
berglas), not from keyfs's C code:
  berglas.go  envelopeEncrypt: a 32-byte random DEK, AES-256-GCM with
              Go's default 12-byte random nonce, Seal(nonce, nonce, pt, nil)
              = nonce || ciphertext || 16-byte tag, no AAD;
              CacheControl "private, no-cache, no-store, no-transform,
              max-age=0"; MetadataIDKey "berglas-secret" (value "1");
              MetadataKMSKey "berglas-kms-key"; kmsKeyTrimVersion keeps a
              key name up to its 8th '/'.
  writer.go   encryptAndWrite: KMS Encrypt(name=key, plaintext=DEK,
              additionalAuthenticatedData=object name); body
              base64(encDEK) ":" base64(nonce||ct||tag) (StdEncoding);
              conditions DoesNotExist (generation 0) or GenerationMatch +
              MetagenerationMatch; no ContentType, so Go's uploader sniffs
              "text/plain; charset=utf-8"; ChunkSize 1024 = a resumable
              upload.
  read.go     storageRead: attrs -> berglas-kms-key; media; SplitN(":", 2);
              StdEncoding decode of both; KMS Decrypt(name = the metadata
              key, AAD = object name); envelopeDecrypt.

It talks to the JSON APIs with urllib and a bearer token, uploading the way
berglas's Go client does (resumable), so it shares no code path with the C
client.  AES-GCM comes from `cryptography`; when this interpreter lacks it,
the work runs in a subprocess of one that has it (as gcp_keys.py does).

    write(gcs, kms, token, bucket, obj, key, value, gen=0, metagen=0)
        -> the object resource (dict); raises HTTPError (412 on conflict)
    read(gcs, kms, token, bucket, obj, generation=0) -> bytes

Command line (JSON request on stdin, JSON answer on stdout):
    berglas_ref.py write|read
"""

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
	from cryptography.hazmat.primitives.ciphers.aead import AESGCM
	HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
	HAVE_CRYPTOGRAPHY = False

CACHE_CONTROL = "private, no-cache, no-store, no-transform, max-age=0"
META_ID = "berglas-secret"
META_KMS = "berglas-kms-key"
SNIFFED_TYPE = "text/plain; charset=utf-8"
_HERE = os.path.abspath(__file__)


def trim_version(key):
	if key.count("/") > 7:
		return "/".join(key.split("/", 8)[:8])
	return key


def _call(method, url, token, body=None, headers=None):
	h = {"Authorization": "Bearer " + token}
	h.update(headers or {})
	req = urllib.request.Request(url, data=body, method=method, headers=h)
	with urllib.request.urlopen(req, timeout=20) as r:
		return r.status, dict(r.headers), r.read()


def _json(method, url, token, obj=None):
	body = None if obj is None else json.dumps(obj).encode()
	_, _, data = _call(method, url, token, body,
			   {"Content-Type": "application/json"})
	return json.loads(data or b"{}")


def _kms(kms, token, key, verb, fields):
	return _json("POST", "%s/v1/%s:%s" % (kms.rstrip("/"), key, verb),
		     token, fields)


def _q(name):
	return urllib.parse.quote(name, safe="")


def _write(gcs, kms, token, bucket, obj, key, value, gen, metagen):
	dek = os.urandom(32)
	nonce = os.urandom(12)
	sealed = nonce + AESGCM(dek).encrypt(nonce, value, None)
	enc = _kms(kms, token, key, "encrypt", {
		"plaintext": base64.b64encode(dek).decode(),
		"additionalAuthenticatedData":
			base64.b64encode(obj.encode()).decode()})
	blob = (enc["ciphertext"] + ":" +
		base64.b64encode(sealed).decode()).encode()
	q = {"uploadType": "resumable"}
	if gen == 0 or metagen == 0:
		q["ifGenerationMatch"] = "0"
	else:
		q["ifGenerationMatch"] = str(gen)
		q["ifMetagenerationMatch"] = str(metagen)
	meta = {"name": obj, "cacheControl": CACHE_CONTROL,
		"metadata": {META_ID: "1", META_KMS: trim_version(key)}}
	url = "%s/upload/storage/v1/b/%s/o?%s" % (
		gcs.rstrip("/"), bucket, urllib.parse.urlencode(q))
	_, hdrs, _ = _call("POST", url, token, json.dumps(meta).encode(),
			   {"Content-Type": "application/json; charset=UTF-8",
			    "X-Upload-Content-Type": SNIFFED_TYPE})
	loc = {k.lower(): v for k, v in hdrs.items()}["location"]
	_, _, data = _call("PUT", loc, token, blob,
			   {"Content-Range": "bytes 0-%d/%d" % (
				   len(blob) - 1, len(blob))})
	return json.loads(data)


def _read(gcs, kms, token, bucket, obj, generation):
	base = "%s/storage/v1/b/%s/o/%s" % (gcs.rstrip("/"), bucket, _q(obj))
	g = "generation=%d" % generation if generation else ""
	attrs = _json("GET", base + ("?" + g if g else ""), token)
	key = (attrs.get("metadata") or {}).get(META_KMS)
	if not key:
		raise ValueError("missing kms key in secret metadata")
	_, _, data = _call("GET", base + "?alt=media" + ("&" + g if g else ""),
			   token)
	parts = data.decode().split(":", 1)
	if len(parts) < 2:
		raise ValueError("invalid ciphertext: not enough parts")
	enc_dek = base64.b64decode(parts[0], validate=True)
	sealed = base64.b64decode(parts[1], validate=True)
	dek = base64.b64decode(_kms(kms, token, key, "decrypt", {
		"ciphertext": base64.b64encode(enc_dek).decode(),
		"additionalAuthenticatedData":
			base64.b64encode(obj.encode()).decode()})["plaintext"])
	return AESGCM(dek).decrypt(sealed[:12], sealed[12:], None)


def _other_python():
	for c in ("/usr/bin/python3", "/root/.pyenv/shims/python3"):
		if c == sys.executable or not os.path.exists(c):
			continue
		r = subprocess.run([c, "-c", "import cryptography"],
				   stdout=subprocess.DEVNULL,
				   stderr=subprocess.DEVNULL)
		if r.returncode == 0:
			return c
	raise RuntimeError("no python with the cryptography package found")


def _remote(verb, req):
	r = subprocess.run([_other_python(), _HERE, verb],
			   input=json.dumps(req).encode(),
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
	ans = json.loads(r.stdout or b"{}")
	if "http_error" in ans:
		raise urllib.error.HTTPError(req.get("obj", ""),
					     ans["http_error"], "remote", {},
					     None)
	if r.returncode:
		raise ValueError(ans.get("error", "berglas_ref failed"))
	return ans


def write(gcs, kms, token, bucket, obj, key, value, gen=0, metagen=0):
	if not HAVE_CRYPTOGRAPHY:
		return _remote("write", dict(
			gcs=gcs, kms=kms, token=token, bucket=bucket, obj=obj,
			key=key, value=base64.b64encode(value).decode(),
			gen=gen, metagen=metagen))["resource"]
	return _write(gcs, kms, token, bucket, obj, key, value, gen, metagen)


def read(gcs, kms, token, bucket, obj, generation=0):
	if not HAVE_CRYPTOGRAPHY:
		return base64.b64decode(_remote("read", dict(
			gcs=gcs, kms=kms, token=token, bucket=bucket, obj=obj,
			generation=generation))["value"])
	return _read(gcs, kms, token, bucket, obj, generation)


def main(argv):
	req = json.load(sys.stdin)
	try:
		if argv[:1] == ["write"]:
			res = _write(req["gcs"], req["kms"], req["token"],
				     req["bucket"], req["obj"], req["key"],
				     base64.b64decode(req["value"]), req["gen"],
				     req["metagen"])
			ans = {"resource": res}
		elif argv[:1] == ["read"]:
			v = _read(req["gcs"], req["kms"], req["token"],
				  req["bucket"], req["obj"], req["generation"])
			ans = {"value": base64.b64encode(v).decode()}
		else:
			sys.stderr.write(__doc__)
			return 2
	except urllib.error.HTTPError as e:
		ans = {"http_error": e.code}
	except Exception as e:  # noqa: BLE001 - reported to the caller
		json.dump({"error": type(e).__name__}, sys.stdout)
		return 1
	json.dump(ans, sys.stdout)
	return 0


if __name__ == "__main__":
	sys.exit(main(sys.argv[1:]))
