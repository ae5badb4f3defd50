#!/usr/bin/env python3
"""Test-only Google credentials: service-account key files and RS256 JWTs.

    make_sa_key(path, token_uri, project_id="keyfs-test", email=None)
        writes a service-account JSON key file (type service_account,
        project_id, private_key_id, private_key = PKCS#8 PEM, client_email,
        client_id, auth_uri, token_uri, universe_domain), mode 0600, and
        returns the parsed dict.
    sign_jwt(sa_info, claims, kid=None) -> compact RS256 JWT (header typ JWT,
        alg RS256, kid = private_key_id unless given) signed with
        sa_info["private_key"].
    jwt_grant_assertion(sa_info, aud, scope, lifetime=3600, now=None)
        the JWT google-auth sends to the token endpoint.

Works without `cryptography` in the calling interpreter: it then runs this
file as a subprocess of an interpreter that has it (pyenv python), passing
data through stdin/stdout only.

Command line:  gcp_keys.py make-sa-key PATH TOKEN_URI [PROJECT [EMAIL]]
               gcp_keys.py sign-jwt   (JSON {"sa","claims","kid"} on stdin)
"""

import base64
import json
import os
import subprocess
import sys
import time

try:
	from cryptography.hazmat.primitives import hashes, serialization
	from cryptography.hazmat.primitives.asymmetric import padding, rsa
	HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
	HAVE_CRYPTOGRAPHY = False

_HERE = os.path.abspath(__file__)


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


def _b64url(data):
	return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sa_info(token_uri, project_id, email):
	key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
	pem = key.private_bytes(serialization.Encoding.PEM,
				serialization.PrivateFormat.PKCS8,
				serialization.NoEncryption()).decode("ascii")
	kid = os.urandom(20).hex()
	email = email or "keyfs-test@%s.iam.gserviceaccount.com" % project_id
	return {
		"type": "service_account",
		"project_id": project_id,
		"private_key_id": kid,
		"private_key": pem,
		"client_email": email,
		"client_id": str(int.from_bytes(os.urandom(8), "big")),
		"auth_uri": "https://accounts.google.com/o/oauth2/auth",
		"token_uri": token_uri,
		"auth_provider_x509_cert_url":
			"https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":
			"https://www.googleapis.com/robot/v1/metadata/x509/" + email,
		"universe_domain": "googleapis.com",
	}


def make_sa_key(path, token_uri, project_id="keyfs-test", email=None):
	if not HAVE_CRYPTOGRAPHY:
		args = [_other_python(), _HERE, "make-sa-key", path, token_uri,
			project_id] + ([email] if email else [])
		subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
		with open(path) as f:
			return json.load(f)
	info = _sa_info(token_uri, project_id, email)
	fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
	with os.fdopen(fd, "w") as f:
		json.dump(info, f, indent=2)
	return info


def sign_jwt(sa_info, claims, kid=None):
	if not HAVE_CRYPTOGRAPHY:
		r = subprocess.run([_other_python(), _HERE, "sign-jwt"],
				   input=json.dumps({"sa": sa_info,
						     "claims": claims,
						     "kid": kid}).encode(),
				   stdout=subprocess.PIPE, check=True)
		return r.stdout.decode().strip()
	header = {"typ": "JWT", "alg": "RS256",
		  "kid": kid if kid is not None else sa_info["private_key_id"]}
	signing = (_b64url(json.dumps(header, separators=(",", ":")).encode())
		   + "." +
		   _b64url(json.dumps(claims, separators=(",", ":")).encode()))
	key = serialization.load_pem_private_key(
		sa_info["private_key"].encode("ascii"), password=None)
	sig = key.sign(signing.encode("ascii"), padding.PKCS1v15(),
		       hashes.SHA256())
	return signing + "." + _b64url(sig)


def jwt_grant_assertion(sa_info, aud, scope, lifetime=3600, now=None):
	now = int(time.time() if now is None else now)
	return sign_jwt(sa_info, {"iss": sa_info["client_email"],
				  "scope": scope, "aud": aud, "iat": now,
				  "exp": now + lifetime})


def main(argv):
	if argv[:1] == ["make-sa-key"] and 3 <= len(argv) <= 5:
		make_sa_key(*argv[1:])
		return 0
	if argv[:1] == ["sign-jwt"]:
		req = json.load(sys.stdin)
		sys.stdout.write(sign_jwt(req["sa"], req["claims"],
					  req.get("kid")) + "\n")
		return 0
	sys.stderr.write(__doc__)
	return 2


if __name__ == "__main__":
	sys.exit(main(sys.argv[1:]))
