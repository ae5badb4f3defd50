"""moto with IAM enforced, for the CSI provider's per-pod roles: an
in-process moto server (the same WSGI application ThreadedMotoServer
runs) on an ephemeral loopback port, behind a thin WSGI layer that
 - counts calls per action (X-Amz-Target for JSON APIs, Action= for
   query APIs): GET /_keyfs/calls (JSON), POST /_keyfs/calls/reset;
 - switches enforcement on once the fixture has set up users, roles and
   secrets: POST /_keyfs/enforce sets INITIAL_NO_AUTH_ACTION_COUNT to 0,
   after which every request's signature and IAM policy is checked;
 - answers STS AssumeRoleWithWebIdentity unsigned, as real STS does (moto
   refuses it with a 500 once auth is enforced), after checking the web
   identity token itself (moto never does): a JWT whose payload has
   "aud": "sts.amazonaws.com" (or the aud the trust policy names) and a
   "sub" the role's trust policy allows (Condition StringEquals
   "...:sub"); otherwise 400 InvalidIdentityToken / AccessDenied as STS
   XML;
 - gives Secrets Manager calls a resource (the secret's ARN-like name) so
   that IAM policies with Resource "...:secret:team-b/*" mean something.
Run with the pyenv python3 (the one with moto).  Prints "PORT\n" on
stdout once listening (and writes it to --port-file if given); stops on
SIGTERM.  Never downloads anything; binds 127.0.0.1 only."""
import argparse
import base64
import io
import json
import os
import signal
import sys
import threading
import urllib.parse

os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "inf")
os.environ.setdefault("MOTO_CALL_RESET_API", "true")

from moto import settings  # noqa: E402
from moto.core import authorization as A  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication, create_backend_app)
from werkzeug.serving import make_server  # noqa: E402

ACCOUNT = "123456789012"
settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")

_orig_auth = A.ActionAuthenticatorMixin._authenticate_and_authorize_action


def _auth(self, cls, resource="*"):
    # Real STS takes AssumeRoleWithWebIdentity unsigned; the token is
    # checked by the WSGI layer below before moto sees the request.
    if self._get_action() == "AssumeRoleWithWebIdentity":
        return None
    return _orig_auth(self, cls, resource)


A.ActionAuthenticatorMixin._authenticate_and_authorize_action = _auth


def _sm_resource(self):
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        return "*"
    sid = body.get("SecretId") or body.get("Name")
    if not isinstance(sid, str):
        return "*"
    if sid.startswith("arn:"):
        return sid
    return "arn:aws:secretsmanager:%s:%s:secret:%s" % (
        self.region, ACCOUNT, sid)


try:
    from moto.secretsmanager.responses import SecretsManagerResponse
    SecretsManagerResponse._determine_resource = _sm_resource
except ImportError:  # pragma: no cover
    pass

_lock = threading.Lock()
_calls = {}


def _count(action):
    with _lock:
        _calls[action] = _calls.get(action, 0) + 1


def _b64json(part):
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part.encode()))


def _sts_error(code, message, status="400 Bad Request"):
    body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/'
            '2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code>'
            '<Message>%s</Message></Error><RequestId>keyfs-test'
            '</RequestId></ErrorResponse>' % (code, message))
    return status, body.encode()


def _trust(role_arn):
    """The role's trust policy (dict) or None when there is no such role."""
    from moto.iam.models import iam_backends
    try:
        iam = iam_backends[ACCOUNT]["global"]
        role = iam.get_role_by_arn(role_arn)
    except Exception:
        return None
    doc = role.assume_role_policy_document
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            doc = json.loads(urllib.parse.unquote(doc))
    return doc


def _check_web_identity(params):
    """None when the token may assume the role, else (status, body)."""
    token = params.get("WebIdentityToken", "")
    role_arn = params.get("RoleArn", "")
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not a JWT")
        claims = _b64json(parts[1])
        if not isinstance(claims, dict):
            raise ValueError("payload")
    except Exception:
        return _sts_error("InvalidIdentityToken",
                          "Token is not a well-formed JWT")
    doc = _trust(role_arn)
    if doc is None:
        return _sts_error("AccessDenied", "Not authorized to perform "
                          "sts:AssumeRoleWithWebIdentity", "403 Forbidden")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    sub = claims.get("sub")
    want_aud = None
    for st in doc.get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        act = st.get("Action")
        acts = act if isinstance(act, list) else [act]
        if "sts:AssumeRoleWithWebIdentity" not in acts:
            continue
        cond = st.get("Condition", {}).get("StringEquals", {})
        ok = True
        for k, v in cond.items():
            vals = v if isinstance(v, list) else [v]
            if k.endswith(":sub") and sub not in vals:
                ok = False
            if k.endswith(":aud"):
                want_aud = vals
                if not any(a in vals for a in auds):
                    ok = False
        if ok and (want_aud is not None or "sts.amazonaws.com" in auds):
            return None
    if want_aud is None and "sts.amazonaws.com" not in auds:
        return _sts_error("InvalidIdentityToken",
                          "Incorrect token audience")
    return _sts_error("AccessDenied", "Not authorized to perform "
                      "sts:AssumeRoleWithWebIdentity", "403 Forbidden")


class App:
    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_keyfs/"):
            return self.admin(method, path, start_response)
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        body = environ["wsgi.input"].read(n) if n > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        target = environ.get("HTTP_X_AMZ_TARGET")
        params = {}
        if target:
            action = target.rsplit(".", 1)[-1]
        else:
            params = dict(urllib.parse.parse_qsl(
                environ.get("QUERY_STRING", "")))
            ctype = environ.get("CONTENT_TYPE", "")
            if "x-www-form-urlencoded" in ctype or (
                    body and b"Action=" in body[:200]):
                try:
                    params.update(urllib.parse.parse_qsl(body.decode()))
                except UnicodeDecodeError:
                    pass
            action = params.get("Action", "")
        if action:
            _count(action)
        if action == "AssumeRoleWithWebIdentity":
            refused = _check_web_identity(params)
            if refused is not None:
                status, data = refused
                start_response(status, [("Content-Type", "text/xml"),
                                        ("Content-Length", str(len(data)))])
                return [data]
        return self.moto(environ, start_response)

    def admin(self, method, path, start_response):
        global _calls
        out = {"ok": True}
        if path == "/_keyfs/calls" and method == "GET":
            with _lock:
                out = dict(_calls)
        elif path == "/_keyfs/calls/reset" and method == "POST":
            with _lock:
                _calls = {}
        elif path == "/_keyfs/enforce" and method == "POST":
            A.ActionAuthenticatorMixin.request_count = 0
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        elif path == "/_keyfs/open" and method == "POST":
            settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such admin path\n"]
        data = json.dumps(out).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(data)))])
        return [data]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file")
    args = ap.parse_args()
    srv = make_server("127.0.0.1", 0, App(), threaded=True)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()


if __name__ == "__main__":
    main()
