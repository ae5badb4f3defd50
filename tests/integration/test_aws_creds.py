"""The AWS credential chain end to end through build/tools/awscreds_tool:
environment, shared credentials/config profiles, web identity against
moto_server's STS, IMDSv2 against moto_server's instance metadata, container
credentials against a small local server, and the "nothing configured"
error.  The tool prints only hashes of secrets; every test also checks that
no secret text reaches its output."""

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.environ.get("KEYFS_TOOLS") or os.path.join(ROOT, "build", "tools")
TOOL = os.path.join(TOOLS, "awscreds_tool")


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def tool():
    if not os.environ.get("KEYFS_TOOLS"):
        subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                        "build/tools/awscreds_tool"], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    assert os.access(TOOL, os.X_OK), TOOL
    return TOOL


@pytest.fixture
def home(tmp_path):
    d = tmp_path / "home"
    (d / ".aws").mkdir(parents=True)
    return d


def base_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def run(env, *args, secrets=(), timeout=30):
    p = subprocess.run([TOOL, *args], env=env, capture_output=True,
                       text=True, timeout=timeout)
    for s in secrets:
        assert s not in p.stdout, "secret text on stdout"
        assert s not in p.stderr, "secret text on stderr"
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return p.returncode, out, p.stderr


@pytest.fixture(scope="module")
def moto():
    exe = shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
    if not os.path.exists(exe):
        pytest.fail("moto_server not found")
    port = free_port()
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
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_environment_beats_profile(home):
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDFILE\n"
        "aws_secret_access_key = file-secret-canary\n")
    env = base_env(home)
    env.update(AWS_ACCESS_KEY_ID="AKIDENV",
               AWS_SECRET_ACCESS_KEY="env-secret-canary",
               AWS_SESSION_TOKEN="env-token-canary", AWS_PROFILE="default")
    rc, out, err = run(env, secrets=("env-secret-canary", "env-token-canary",
                                     "file-secret-canary"))
    assert rc == 0, err
    assert out["source"] == "environment"
    assert out["access_key"] == "AKIDENV"
    assert out["secret_sha256"] == sha("env-secret-canary")
    assert out["token_sha256"] == sha("env-token-canary")


def test_profiles_from_files(home):
    (home / ".aws" / "credentials").write_text(
        "# comment\n[default]\naws_access_key_id=AKIDDEF\n"
        "aws_secret_access_key=def-secret-canary\n\n"
        "[dev]\n  aws_access_key_id = AKIDDEV  \n"
        "aws_secret_access_key = dev-secret-canary\n")
    (home / ".aws" / "config").write_text(
        "[default]\nregion = eu-west-1\n"
        "[profile ops]\nregion = us-east-2\naws_access_key_id = AKIDOPS\n"
        "aws_secret_access_key = ops-secret-canary\n")
    secrets = ("def-secret-canary", "dev-secret-canary", "ops-secret-canary")
    env = base_env(home)

    rc, out, err = run(env, secrets=secrets)
    assert rc == 0, err
    assert (out["source"], out["access_key"]) == ("profile default", "AKIDDEF")
    assert out["secret_sha256"] == sha("def-secret-canary")
    assert out["token_sha256"] == "none"

    env["AWS_PROFILE"] = "dev"
    rc, out, err = run(env, secrets=secrets)
    assert rc == 0, err
    assert (out["source"], out["access_key"]) == ("profile dev", "AKIDDEV")
    assert out["secret_sha256"] == sha("dev-secret-canary")

    # the -o aws_profile equivalent beats AWS_PROFILE; config-file keys
    rc, out, err = run(env, "-p", "ops", secrets=secrets)
    assert rc == 0, err
    assert (out["source"], out["access_key"]) == ("config profile ops",
                                                  "AKIDOPS")
    assert out["secret_sha256"] == sha("ops-secret-canary")

    # custom file locations
    alt = home / "alt-credentials"
    alt.write_text("[dev]\naws_access_key_id=AKIDALT\n"
                   "aws_secret_access_key=alt-secret-canary\n")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(alt)
    rc, out, err = run(env, secrets=secrets + ("alt-secret-canary",))
    assert rc == 0, err
    assert out["access_key"] == "AKIDALT"

    rc, out, err = run(env, "-p", "missing", secrets=secrets)
    assert rc != 0
    assert "NOTFOUND" in err and "missing" in err


def test_web_identity_via_moto_sts(home, moto):
    token = home / "token"
    token.write_text("  web-identity-token-canary\n")
    env = base_env(home)
    env.update(AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
               AWS_ROLE_ARN="arn:aws:iam::123456789012:role/keyfs-test",
               AWS_ROLE_SESSION_NAME="keyfs-it",
               AWS_ENDPOINT_URL_STS=moto, AWS_REGION="us-east-1")
    rc, out, err = run(env, secrets=("web-identity-token-canary",))
    assert rc == 0, err
    assert out["source"] == "web identity"
    assert out["access_key"].startswith("ASIA")
    # moto remembers the credentials it handed out: compare hashes.
    data = json.load(urllib.request.urlopen(moto + "/moto-api/data.json",
                                            timeout=5))
    roles = [r for r in data["sts"]["AssumedRole"]
             if r["access_key_id"] == out["access_key"]]
    assert len(roles) == 1
    role = roles[0]
    assert role["role_arn"] == "arn:aws:iam::123456789012:role/keyfs-test"
    assert role["session_name"] == "keyfs-it"
    assert out["secret_sha256"] == sha(role["secret_access_key"])
    assert out["token_sha256"] == sha(role["session_token"])
    assert int(out["expiration"]) > time.time() + 600
    _, _, err2 = run(env)
    assert role["secret_access_key"] not in err2
    assert role["session_token"] not in err2

    # a missing token file is a clear error, not a fall-through
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(home / "nope")
    rc, out, err = run(env)
    assert rc != 0
    assert "web identity" in err and "NOTFOUND" in err


def test_imds_via_moto(home, moto):
    env = base_env(home)
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = moto
    rc, out, err = run(env, "-g", "3",
                       secrets=("test-secret-key", "test-session-token"))
    assert rc == 0, err
    assert out["source"] == "imds"
    assert out["access_key"] == "test-key"
    assert out["secret_sha256"] == sha("test-secret-key")
    assert out["token_sha256"] == sha("test-session-token")


class ContainerHandler(http.server.BaseHTTPRequestHandler):
    expected = "container-auth-canary"
    hits = []

    def do_GET(self):
        auth = self.headers.get("Authorization")
        ContainerHandler.hits.append((self.path, auth))
        if self.path != "/creds" or auth != self.expected:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"message":"unauthorized"}')
            return
        body = json.dumps({
            "AccessKeyId": "ASIACONTAINER",
            "SecretAccessKey": "container-secret-canary",
            "Token": "container-token-canary",
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                        time.gmtime(time.time() + 3600)),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def container_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ContainerHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    ContainerHandler.hits = []
    try:
        yield "http://127.0.0.1:%d" % srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_container_credentials(home, container_server):
    secrets = ("container-secret-canary", "container-token-canary",
               "container-auth-canary")
    env = base_env(home)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = container_server + "/creds"
    tok = home / "auth-token"
    tok.write_text("container-auth-canary\n")
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(tok)
    rc, out, err = run(env, secrets=secrets)
    assert rc == 0, err
    assert out["source"] == "container"
    assert out["access_key"] == "ASIACONTAINER"
    assert out["secret_sha256"] == sha("container-secret-canary")
    assert out["token_sha256"] == sha("container-token-canary")
    assert ContainerHandler.hits[-1] == ("/creds", "container-auth-canary")

    # token from the variable; a wrong one is refused by the server
    del env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong-auth-canary"
    rc, out, err = run(env, secrets=secrets + ("wrong-auth-canary",))
    assert rc != 0
    assert "DENIED" in err and "container" in err
    assert ContainerHandler.hits[-1] == ("/creds", "wrong-auth-canary")


def test_nothing_configured(home):
    env = base_env(home)
    rc, out, err = run(env)
    assert rc != 0
    assert out == {}
    assert "NOTFOUND" in err and "no AWS credentials found" in err
    for what in ("environment", "web identity", "profile default",
                 "container", "imds"):
        assert what in err
    # IMDS enabled but nothing listening: still a quick, clear NOTFOUND
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:%d" % free_port()
    t0 = time.time()
    rc, out, err = run(env)
    assert rc != 0 and "NOTFOUND" in err and "imds" in err
    assert time.time() - t0 < 10
