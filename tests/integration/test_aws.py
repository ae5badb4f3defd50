"""aws/ against moto_server: the real keyfs binary mounted on a temporary
directory, driven with system calls and shell commands, cross-checked with
the AWS CLI (v1, pyenv).  moto runs on an ephemeral loopback port and is
always stopped; every mount is always unmounted (conftest `keyfs`)."""
import base64
import errno
import http.client
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import KEYFS_BIN, PYENV_PYTHON, free_port, make_canary, run

REGION = "us-west-2"
AWS_CLI = shutil.which("aws", path="/root/.pyenv/shims") or shutil.which("aws")


def start_moto(extra_env=None):
    exe = shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
    if not os.path.exists(exe):
        pytest.fail("moto_server not found")
    port = free_port()
    env = dict(os.environ)
    env.update(extra_env or {})
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while True:
        try:
            with socketserver.socket.create_connection(("127.0.0.1", port),
                                                       timeout=1):
                break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                stop_moto(proc)
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    return proc, url


def stop_moto(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_url():
    proc, url = start_moto()
    try:
        yield url
    finally:
        stop_moto(proc)


@pytest.fixture
def moto(moto_url):
    """A fresh moto state for each test."""
    req = urllib.request.Request(moto_url + "/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    return moto_url


def aws_env(home, endpoint, key="testing", secret="testing"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID=key,
               AWS_SECRET_ACCESS_KEY=secret,
               AWS_ENDPOINT_URL_SECRETS_MANAGER=endpoint,
               AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.path.join(str(home), "none-config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(str(home), "none-cred"))
    return env


def cli(endpoint, *args, check=True, home="/tmp"):
    """AWS CLI v1 against endpoint; parsed JSON output (or None)."""
    env = aws_env(home, endpoint)
    p = run([AWS_CLI, "--endpoint-url", endpoint, "--region", REGION,
             "--output", "json", "secretsmanager"] + list(args), env=env,
            timeout=60)
    if check:
        assert p.returncode == 0, p.stderr[-500:]
    else:
        return p
    return json.loads(p.stdout) if p.stdout.strip() else None


def cli_value(endpoint, name):
    """AWSCURRENT value bytes as the CLI sees them."""
    out = cli(endpoint, "get-secret-value", "--secret-id", name)
    if out.get("SecretString") is not None:
        return out["SecretString"].encode("utf-8")
    return base64.b64decode(out["SecretBinary"])


def mount(keyfs, tmp_path, endpoint, name="k", args=(), **opts):
    env = aws_env(tmp_path, endpoint)
    opts.setdefault("providers", "aws")
    opts.setdefault("aws_region", REGION)
    opts.setdefault("timeout", "20")
    return keyfs(name=name, env=env, args=args, **opts)


def write(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def no_canary(m, canary):
    assert canary not in m.log(), "a value reached the keyfs log"


# ---- the first-use flow (mkdir, write fields, rm, rmdir) and field secrets --

def test_seed_flow_field_secret(keyfs, tmp_path, moto):
    canary = make_canary()
    m = mount(keyfs, tmp_path, moto, args=("-d",))
    region = m.path("aws", REGION)
    assert os.listdir(m.path("aws")) == [REGION]
    os.mkdir(os.path.join(region, "apiSecret"))
    assert os.path.isdir(os.path.join(region, "apiSecret"))
    key = os.path.join(region, "apiSecret", "api_key")
    r = run(["sh", "-c", 'echo -n "$V" > "$P"'],
            env=dict(os.environ, V=canary, P=key))
    assert r.returncode == 0, r.stderr
    assert read(key) == canary.encode()
    assert os.listdir(os.path.join(region, "apiSecret")) == ["api_key"]
    assert os.stat(key).st_size == len(canary)
    # the secret holds a JSON object of fields, tagged as a field secret
    assert json.loads(cli_value(moto, "apiSecret")) == {"api_key": canary}
    desc = cli(moto, "describe-secret", "--secret-id", "apiSecret")
    assert {"Key": "keyfs:layout", "Value": "fields"} in desc["Tags"]
    # a second field; then remove one
    write(os.path.join(region, "apiSecret", "org"), b"acme")
    assert json.loads(cli_value(moto, "apiSecret")) == \
        {"api_key": canary, "org": "acme"}
    os.unlink(key)
    assert os.listdir(os.path.join(region, "apiSecret")) == ["org"]
    assert json.loads(cli_value(moto, "apiSecret")) == {"org": "acme"}
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(region, "apiSecret"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(os.path.join(region, "apiSecret", "org"))
    os.rmdir(os.path.join(region, "apiSecret"))
    assert "apiSecret" not in os.listdir(region)
    desc = cli(moto, "describe-secret", "--secret-id", "apiSecret")
    assert desc.get("DeletedDate"), "rmdir must schedule the deletion"
    # the name stays reserved while scheduled for deletion
    with pytest.raises(OSError) as e:
        os.mkdir(os.path.join(region, "apiSecret"))
    assert e.value.errno == errno.EBUSY
    assert "scheduled for deletion" in m.log()
    no_canary(m, canary)


def test_cli_tagged_json_secret_is_a_directory(keyfs, tmp_path, moto):
    cli(moto, "create-secret", "--name", "svc/cfg", "--secret-string",
        json.dumps({"user": "u1", "port": 5432, "nested": {"a": True}}),
        "--tags", "Key=keyfs:layout,Value=fields")
    m = mount(keyfs, tmp_path, moto)
    d = m.path("aws", REGION, "svc", "cfg")
    assert os.path.isdir(d)
    assert sorted(os.listdir(d)) == ["nested", "port", "user"]
    assert read(os.path.join(d, "user")) == b"u1"
    assert read(os.path.join(d, "port")) == b"5432"
    assert json.loads(read(os.path.join(d, "nested"))) == {"a": True}
    write(os.path.join(d, "user"), b"u2")
    assert json.loads(cli_value(moto, "svc/cfg")) == \
        {"user": "u2", "port": 5432, "nested": {"a": True}}
    # binary content cannot be a JSON field
    with pytest.raises(OSError) as e:
        write(os.path.join(d, "bin"), b"\xff\xfe")
    assert e.value.errno == errno.EINVAL


# ---- plain secrets ----------------------------------------------------------

def test_plain_echo_cat_overwrite_rm(keyfs, tmp_path, moto):
    canary = make_canary()
    m = mount(keyfs, tmp_path, moto, args=("-d",))
    p = m.path("aws", REGION, "plain")
    r = run(["sh", "-c", 'echo -n "$V" > "$P" && cat "$P"'],
            env=dict(os.environ, V=canary, P=p))
    assert r.returncode == 0 and r.stdout == canary, r.stderr
    assert cli_value(moto, "plain") == canary.encode()
    assert os.path.isfile(p)
    assert "plain" in os.listdir(m.path("aws", REGION))
    write(p, b"second value\n")
    assert read(p) == b"second value\n"
    assert cli_value(moto, "plain") == b"second value\n"
    versions = cli(moto, "list-secret-version-ids", "--secret-id", "plain")
    assert len(versions["Versions"]) == 2
    os.unlink(p)
    assert not os.path.exists(p)
    assert "plain" not in os.listdir(m.path("aws", REGION))
    desc = cli(moto, "describe-secret", "--secret-id", "plain")
    assert desc.get("DeletedDate")          # 30-day recovery window
    # writing an empty file to an existing secret fails and keeps the value
    write(m.path("aws", REGION, "keep"), b"kept")
    # (fs/ commits a bare O_TRUNC at fsync or at release; fsync reports)
    fd = os.open(m.path("aws", REGION, "keep"), os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as e:
            os.fsync(fd)
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert cli_value(moto, "keep") == b"kept"
    assert "cannot store an empty value" in m.log()
    no_canary(m, canary)


def test_touch_and_force_delete(keyfs, tmp_path, moto):
    m = mount(keyfs, tmp_path, moto, aws_recovery_window="0")
    p = m.path("aws", REGION, "touched")
    assert run(["touch", p]).returncode == 0
    desc = cli(moto, "describe-secret", "--secret-id", "touched")
    assert desc["Name"] == "touched"
    assert read(p) == b""                    # a secret with no value
    write(p, b"now set")
    assert cli_value(moto, "touched") == b"now set"
    os.unlink(p)
    r = cli(moto, "describe-secret", "--secret-id", "touched", check=False)
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr
    # force-deleted: the name is free again at once
    write(p, b"again")
    assert cli_value(moto, "touched") == b"again"


def test_binary_round_trip(keyfs, tmp_path, moto):
    data = bytes(range(256)) + b"\x00\xff" * 10
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x80\x81binary\x00")
    cli(moto, "create-secret", "--name", "clibin",
        "--secret-binary", "fileb://" + str(blob))
    m = mount(keyfs, tmp_path, moto)
    p = m.path("aws", REGION, "bin")
    write(p, data)
    assert read(p) == data
    out = cli(moto, "get-secret-value", "--secret-id", "bin")
    assert "SecretString" not in out or out["SecretString"] is None
    assert base64.b64decode(out["SecretBinary"]) == data
    assert read(m.path("aws", REGION, "clibin")) == blob.read_bytes()
    # valid UTF-8 goes out as SecretString
    write(p, "caf\u00e9 \u2603".encode())
    assert cli(moto, "get-secret-value", "--secret-id",
               "bin")["SecretString"] == "caf\u00e9 \u2603"


def test_size_limit(keyfs, tmp_path, moto):
    m = mount(keyfs, tmp_path, moto)
    ok = m.path("aws", REGION, "big")
    write(ok, b"a" * 65536)
    assert cli_value(moto, "big") == b"a" * 65536
    assert read(ok) == b"a" * 65536
    with pytest.raises(OSError) as e:
        write(m.path("aws", REGION, "toobig"), b"b" * 65537)
    assert e.value.errno == errno.EFBIG
    r = cli(moto, "describe-secret", "--secret-id", "toobig", check=False)
    assert r.returncode != 0        # nothing was created
    with pytest.raises(OSError) as e:
        write(ok, b"c" * 65537)
    assert e.value.errno == errno.EFBIG
    assert cli_value(moto, "big") == b"a" * 65536


def test_nested_names_and_cli_secrets(keyfs, tmp_path, moto):
    cli(moto, "create-secret", "--name", "team/db/pass",
        "--secret-string", "hunter2")
    cli(moto, "create-secret", "--name", "team/api", "--secret-string", "k1")
    cli(moto, "create-secret", "--name", "novalue")
    m = mount(keyfs, tmp_path, moto)
    region = m.path("aws", REGION)
    assert sorted(os.listdir(region)) == ["novalue", "team"]
    assert os.path.isdir(os.path.join(region, "team"))
    assert sorted(os.listdir(os.path.join(region, "team"))) == ["api", "db"]
    assert read(os.path.join(region, "team", "db", "pass")) == b"hunter2"
    assert read(os.path.join(region, "team", "api")) == b"k1"
    assert read(os.path.join(region, "novalue")) == b""
    # a new secret below an existing prefix directory
    write(os.path.join(region, "team", "db", "user"), b"admin")
    assert cli_value(moto, "team/db/user") == b"admin"
    assert sorted(os.listdir(os.path.join(region, "team", "db"))) == \
        ["pass", "user"]
    # a secret created elsewhere appears without a remount (Describe)
    cli(moto, "create-secret", "--name", "team/late", "--secret-string", "L")
    assert read(os.path.join(region, "team", "late")) == b"L"
    # invalid names are refused before any call
    with pytest.raises(OSError) as e:
        write(os.path.join(region, "bad name"), b"x")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        os.mkdir(os.path.join(region, "bad*dir"))
    assert e.value.errno == errno.EINVAL


def test_xattrs(keyfs, tmp_path, moto):
    m = mount(keyfs, tmp_path, moto)
    p = m.path("aws", REGION, "x1")
    write(p, b"v")
    desc = cli(moto, "describe-secret", "--secret-id", "x1")
    assert os.getxattr(p, "user.keyfs.id").decode() == desc["ARN"]
    cur = [v for v, st in desc["VersionIdsToStages"].items()
           if "AWSCURRENT" in st]
    assert os.getxattr(p, "user.keyfs.version").decode() == cur[0]
    assert set(os.listxattr(p)) >= {"user.keyfs.id", "user.keyfs.version",
                                    "user.keyfs.description"}
    os.setxattr(p, "user.keyfs.description", b"my key")
    assert cli(moto, "describe-secret", "--secret-id",
               "x1")["Description"] == "my key"
    assert os.getxattr(p, "user.keyfs.description") == b"my key"
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.keyfs.id", b"nope")
    assert e.value.errno == errno.EPERM


# ---- configuration errors, signatures --------------------------------------

def test_unreachable_endpoint_fails_before_detach(tmp_path):
    port = free_port()          # nothing listens here
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % port)
    r = run([KEYFS_BIN, "-o", "providers=aws,aws_region=%s,timeout=3,store=%s"
             % (REGION, tmp_path / "store"), str(mnt)], env=env, timeout=60)
    if os.path.ismount(str(mnt)):
        subprocess.run(["fusermount3", "-uz", str(mnt)])
    assert r.returncode != 0
    assert "aws" in r.stderr


def silent_server():
    """A loopback port that accepts connections and never answers."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_dead_endpoint_is_one_clear_line(tmp_path, kind):
    srv = silent_server() if kind == "silent" else None
    port = srv.getsockname()[1] if srv else free_port()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % port)
    try:
        r = run([KEYFS_BIN, "-f", "-o",
                 "providers=aws,aws_region=%s,timeout=3,log=warn,store=%s"
                 % (REGION, tmp_path / "store"), str(mnt)], env=env,
                timeout=60)
    finally:
        if srv:
            srv.close()
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    prefix = ("keyfs: aws: region %s: Secrets Manager endpoint not usable: "
              % REGION)
    assert line.startswith(prefix), line
    # Each part said once, and the line is whole (not cut mid-word).
    assert line.count("aws:") == 1 and line.count(REGION) == 1, line
    assert line.count("keyfs:") == 1, line
    assert "127.0.0.1" in line and line.endswith(")"), line
    if kind == "silent":
        assert "ListSecrets: deadline passed" in line, line
    else:
        assert "Couldn't connect to server" in line, line


def test_no_credentials_fails_before_detach(tmp_path, moto):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = aws_env(tmp_path, moto)
    del env["AWS_ACCESS_KEY_ID"]
    del env["AWS_SECRET_ACCESS_KEY"]
    r = run([KEYFS_BIN, "-o", "providers=aws,aws_region=%s,timeout=3,store=%s"
             % (REGION, tmp_path / "store"), str(mnt)], env=env, timeout=60)
    if os.path.ismount(str(mnt)):
        subprocess.run(["fusermount3", "-uz", str(mnt)])
    assert r.returncode != 0
    assert "credentials" in r.stderr.lower()


SETUP_IAM = r"""
import json, sys, boto3
url = sys.argv[1]
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="x")
iam.create_user(UserName="keyfs")
k = iam.create_access_key(UserName="keyfs")["AccessKey"]
iam.put_user_policy(UserName="keyfs", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
print(k["AccessKeyId"])
print(k["SecretAccessKey"])
"""


def test_signatures_enforced(keyfs, tmp_path):
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        r = run([PYENV_PYTHON, "-c", SETUP_IAM, url], timeout=60)
        assert r.returncode == 0, r.stderr[-800:]
        akid, secret = r.stdout.split()
        (tmp_path / "g").mkdir()
        env = aws_env(tmp_path / "g", url, akid, secret)
        good = keyfs(name="good", env=env, providers="aws",
                     aws_region=REGION, timeout="20")
        p = good.path("aws", REGION, "signed")
        write(p, b"ok")
        assert read(p) == b"ok"
        assert "signed" in os.listdir(good.path("aws", REGION))
        (tmp_path / "b").mkdir()
        wrong = secret[:-1] + ("X" if secret[-1] != "X" else "Y")
        assert wrong != secret
        env = aws_env(tmp_path / "b", url, akid, wrong)
        bad = keyfs(name="bad", env=env, providers="aws",
                    aws_region=REGION, timeout="20")
        with pytest.raises(OSError) as e:
            os.listdir(bad.path("aws", REGION))
        assert e.value.errno == errno.EACCES
        with pytest.raises(OSError) as e:
            read(bad.path("aws", REGION, "signed"))
        assert e.value.errno == errno.EACCES
        assert "SignatureDoesNotMatch" in bad.log()
        assert secret not in bad.log() and secret not in good.log()
    finally:
        stop_moto(proc)


# ---- a lost response: the retry reuses the token ---------------------------

class DropProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_proxy(target_port, state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            target = self.headers.get("X-Amz-Target", "")
            c = http.client.HTTPConnection("127.0.0.1", target_port,
                                           timeout=30)
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("connection", "expect")}
            c.request("POST", self.path, body=body, headers=hdrs)
            resp = c.getresponse()
            data = resp.read()
            with state["lock"]:
                state["targets"].append(target)
                drop = (target.endswith(".PutSecretValue") and
                        not state["dropped"])
                if drop:
                    state["dropped"] = True
            c.close()
            if drop:
                # moto applied it; the client never hears back
                self.close_connection = True
                return
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection",
                                     "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def test_lost_response_makes_one_version(keyfs, tmp_path, moto):
    port = int(moto.rsplit(":", 1)[1])
    state = {"lock": threading.Lock(), "targets": [], "dropped": False}
    srv = DropProxy(("127.0.0.1", 0), make_proxy(port, state))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        cli(moto, "create-secret", "--name", "idem", "--secret-string", "v1")
        proxy = "http://127.0.0.1:%d" % srv.server_address[1]
        m = mount(keyfs, tmp_path, proxy)
        write(m.path("aws", REGION, "idem"), b"v2")
        puts = [x for x in state["targets"] if x.endswith(".PutSecretValue")]
        assert state["dropped"] and len(puts) == 2, state["targets"]
        versions = cli(moto, "list-secret-version-ids", "--secret-id", "idem")
        assert len(versions["Versions"]) == 2      # v1 and exactly one v2
        assert cli_value(moto, "idem") == b"v2"
    finally:
        srv.shutdown()
        srv.server_close()


def test_concurrent_writers_and_readers(keyfs, tmp_path, moto):
    """Many threads at once: plain secrets, fields of one field secret
    (serialised read-modify-write: no field lost), listings."""
    m = mount(keyfs, tmp_path, moto)
    region = m.path("aws", REGION)
    os.mkdir(os.path.join(region, "shared"))
    errors = []

    def worker(i):
        try:
            p = os.path.join(region, "c%d" % i)
            write(p, b"value-%d" % i)
            assert read(p) == b"value-%d" % i
            write(os.path.join(region, "shared", "f%d" % i), b"%d" % i)
            os.listdir(region)
        except Exception as e:          # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(os.listdir(os.path.join(region, "shared"))) == \
        sorted("f%d" % i for i in range(8))
    assert json.loads(cli_value(moto, "shared")) == \
        {"f%d" % i: str(i) for i in range(8)}
    names = os.listdir(region)
    assert all("c%d" % i in names for i in range(8))
