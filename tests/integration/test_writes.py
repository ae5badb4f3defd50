"""Writes a user can trust from any shell and tool: a failure whose cause
is known before the commit (cloud down, store full or read-only) reaches
the writer at open(), so bash, dash, printf, tee, cp, dd and python all
exit non-zero although shells ignore close(); a failed write keeps the
cached value; a failed first write creates nothing; a process killed
while sharing a file never discards the survivor's data."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PYENV_PYTHON, run
from test_faults import (PROJECT, gcp_mount, kms, moto,  # noqa: F401
                         versions)

REGION = "us-west-2"

# Each writes "new" (or a file holding it) to $1.
TOOLS = {
    "bash": ["bash", "-c", 'echo -n new > "$1"', "_"],
    "dash": ["dash", "-c", 'echo new > "$1"', "_"],
    "printf": ["dash", "-c", 'printf %s new > "$1"', "_"],
    "tee": ["bash", "-c", 'echo new | tee "$1" > /dev/null', "_"],
    "cp": ["cp", "{src}"],
    "dd": ["dd", "if={src}", "status=none"],
    "python": [sys.executable, "-c",
               "import sys; open(sys.argv[1], 'w').write('new')"],
}


def tool_cmd(name, target, src):
    cmd = [a.replace("{src}", src) for a in TOOLS[name]]
    if name == "dd":
        return cmd + ["of=" + target]
    return cmd + [target]


def all_tools_fail(targets, src, want_errno=None):
    """Every tool, on every target, exits non-zero (with want_errno's
    message when given).  Returns the failures as text for messages."""
    msg = os.strerror(want_errno) if want_errno else None
    for t in targets:
        for name in TOOLS:
            p = run(tool_cmd(name, t, src))
            assert p.returncode != 0, "%s exited 0 writing %s" % (name, t)
            if msg and name != "python":
                assert msg in p.stderr, (name, t, p.stderr)
            if msg and name == "python":
                assert "Errno %d]" % want_errno in p.stderr, p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def stats(m):
    return json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))


def api_calls(m, provider, op=None):
    """Calls of one operation, or of all of a provider's operations."""
    ops = stats(m)["api"].get(provider, {})
    if op is None:
        return sum(o.get("calls", 0) for o in ops.values())
    return ops.get(op, {}).get("calls", 0)


# ---- aws/ --------------------------------------------------------------

def aws_mount(keyfs, tmp_path, moto, name="k", **opts):
    url, proxy = moto
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp_path / "none-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none-cred"))
    o = dict(providers="aws", aws_region=REGION, aws_endpoint=proxy.url,
             timeout="2")
    o.update(opts)
    return keyfs(name=name, env=env, **o)


def test_aws_endpoint_down_fails_every_tool_at_open(keyfs, tmp_path, moto):
    url, proxy = moto
    m = aws_mount(keyfs, tmp_path, moto, ttl="300", max_stale="3600")
    d = m.path("aws", REGION)
    old = os.path.join(d, "old")
    write(old, b"old value")
    src = str(tmp_path / "src")
    write(src, b"new")
    before = versions(url, ["old"])
    assert read(old) == b"old value"                    # cached
    proxy.down()
    try:
        all_tools_fail([old, os.path.join(d, "new")], src, errno.EIO)
        assert read(old) == b"old value"                # still served
    finally:
        proxy.up()
    assert versions(url, ["old"]) == before
    assert not os.path.exists(os.path.join(d, "new"))
    assert read(old) == b"old value"


def test_aws_write_costs_one_describe_and_one_put(keyfs, tmp_path, moto):
    """The check at open is one DescribeSecret; each value one version."""
    url, _ = moto
    m = aws_mount(keyfs, tmp_path, moto)
    s = m.path("aws", REGION, "counted")
    write(s, b"first")
    assert read(s) == b"first"
    d0 = api_calls(m, "aws", "DescribeSecret")
    p0 = api_calls(m, "aws", "PutSecretValue")
    t0 = api_calls(m, "aws")
    for i in range(3):
        p = run(["bash", "-c", 'echo -n "v$2" > "$1"', "_", s, str(i)])
        assert p.returncode == 0, p.stderr
    assert api_calls(m, "aws", "DescribeSecret") - d0 == 3
    assert api_calls(m, "aws", "PutSecretValue") - p0 == 3
    assert api_calls(m, "aws") - t0 == 6, stats(m)["api"]["aws"]
    assert versions(url, ["counted"]) == {"counted": 4}
    assert read(s) == b"v2"


def test_aws_new_file_is_one_version_and_failed_first_write_creates_nothing(
        keyfs, tmp_path, moto):
    url, _ = moto
    m = aws_mount(keyfs, tmp_path, moto)
    d = m.path("aws", REGION)
    p = run(["bash", "-c", 'echo x > "$1"', "_", os.path.join(d, "echoed")])
    assert p.returncode == 0, p.stderr
    assert versions(url, ["echoed"]) == {"echoed": 1}
    big = os.path.join(d, "big")
    p = run(["bash", "-c", 'head -c 65537 /dev/zero > "$1"', "_", big])
    assert p.returncode != 0
    assert "File too large" in p.stderr
    assert not os.path.exists(big)
    names = secret_names(url)
    assert "big" not in names and "echoed" in names
    # touch still creates an empty secret
    t = os.path.join(d, "touched")
    assert run(["touch", t]).returncode == 0
    deadline = time.time() + 5
    while "touched" not in secret_names(url):
        assert time.time() < deadline, "touch created nothing"
        time.sleep(0.1)
    assert read(t) == b""


LIST = r'''
import boto3, json, sys
c = boto3.client("secretsmanager", endpoint_url=sys.argv[1],
                 region_name="us-west-2", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
print(json.dumps([s["Name"] for s in c.list_secrets()["SecretList"]]))
'''


def secret_names(url):
    """Every secret moto holds (scheduled deletions included)."""
    p = run([PYENV_PYTHON, "-c", LIST, url], timeout=120)
    assert p.returncode == 0, p.stderr[-500:]
    return json.loads(p.stdout)


def test_aws_failed_commit_keeps_serving_the_cached_value(keyfs, tmp_path,
                                                          moto):
    """The cloud fails between open and close: cp reports it, and `cat`
    still serves the previous value."""
    url, proxy = moto
    m = aws_mount(keyfs, tmp_path, moto, ttl="300", max_stale="3600")
    s = m.path("aws", REGION, "s")
    write(s, b"previous")
    assert read(s) == b"previous"
    src = str(tmp_path / "f")
    write(src, b"next")
    proxy.control("POST", "/_proxy/config", {"seed": 1, "rules": [
        {"op": "PutSecretValue", "fault": "reset_before"},
        {"op": "GetSecretValue", "fault": "reset_before"}]})
    try:
        p = run(["cp", src, s])
        assert p.returncode != 0
        assert read(s) == b"previous"
    finally:
        proxy.up()
    assert read(s) == b"previous"


# ---- gcp/ --------------------------------------------------------------

def test_gcp_endpoint_down_fails_every_tool_at_open(keyfs, tmp_path, kms):
    emu, proxy, key = kms
    m = gcp_mount(keyfs, tmp_path, kms, "g", timeout="2")
    k = m.path("gcp", PROJECT, "global", "ring", "key")
    os.makedirs(k)
    old = os.path.join(k, "old")
    write(old, b"old value")
    assert read(old) == b"old value"
    src = str(tmp_path / "src")
    write(src, b"new")
    proxy.down()
    try:
        all_tools_fail([old, os.path.join(k, "new")], src, errno.EIO)
        assert read(old) == b"old value"
    finally:
        proxy.up()
    assert read(old) == b"old value"
    assert not os.path.exists(os.path.join(k, "new"))


def test_gcp_failed_commit_keeps_serving_the_cached_value(keyfs, tmp_path,
                                                          kms):
    emu, proxy, key = kms
    m = gcp_mount(keyfs, tmp_path, kms, "g", ttl="300", max_stale="3600",
                  timeout="2")
    k = m.path("gcp", PROJECT, "global", "ring", "key")
    os.makedirs(k)
    s = os.path.join(k, "s")
    write(s, b"previous")
    assert read(s) == b"previous"
    src = str(tmp_path / "f")
    write(src, b"next")
    proxy.control("POST", "/_proxy/config", {"seed": 1, "rules": [
        {"op": "cryptoKeys.encrypt", "fault": "reset_before"},
        {"op": "cryptoKeys.decrypt", "fault": "reset_before"}]})
    try:
        assert run(["cp", src, s]).returncode != 0
        assert read(s) == b"previous"
    finally:
        proxy.up()
    assert read(s) == b"previous"


# ---- the store full or read-only (local/ and gcp/) -----------------------

class SmallStore:
    """A 1 MiB tmpfs as the store, made full or read-only on demand."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700",
                        "tmpfs", self.path], check=True)

    def fill(self):
        fd = os.open(os.path.join(self.path, "filler"),
                     os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)

    def read_only(self, ro=True):
        subprocess.run(["mount", "-o", "remount," + ("ro" if ro else "rw"),
                        self.path], check=True)

    def remove(self):
        r = subprocess.run(["umount", self.path])
        if r.returncode:
            subprocess.run(["umount", "-l", self.path])


@pytest.fixture
def small_store(tmp_path):
    s = SmallStore(tmp_path / "small")
    yield s
    s.remove()


def store_cases(m, small_store, d, src):
    old = os.path.join(d, "old")
    write(old, b"old value")
    assert read(old) == b"old value"
    targets = [old, os.path.join(d, "new")]
    small_store.read_only()
    try:
        all_tools_fail(targets, src, errno.EROFS)
    finally:
        small_store.read_only(False)
    small_store.fill()
    all_tools_fail(targets, src, errno.ENOSPC)
    assert read(old) == b"old value"
    assert not os.path.exists(os.path.join(d, "new"))
    assert "Input/output error" not in m.log()


def test_local_store_full_or_read_only_fails_every_tool(keyfs, tmp_path,
                                                        small_store):
    src = str(tmp_path / "src")
    write(src, b"new")
    m = keyfs("l", store=small_store.path, providers="local")
    d = m.path("local", "r", "k")
    os.makedirs(d)
    try:
        store_cases(m, small_store, d, src)
    finally:
        m.stop()


def test_gcp_store_full_or_read_only_fails_every_tool(keyfs, tmp_path, kms,
                                                      small_store):
    src = str(tmp_path / "src")
    write(src, b"new")
    m = gcp_mount(keyfs, tmp_path, kms, "g", store=small_store.path)
    d = m.path("gcp", PROJECT, "global", "ring", "key")
    os.makedirs(d)
    try:
        store_cases(m, small_store, d, src)
    finally:
        m.stop()


def test_store_full_at_commit_is_enospc_not_eio(keyfs, tmp_path,
                                                small_store):
    """The store fills between open and close: close() says ENOSPC."""
    m = keyfs("l", store=small_store.path, providers="local")
    d = m.path("local", "r", "k")
    os.makedirs(d)
    try:
        fd = os.open(os.path.join(d, "v"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, b"x" * 1000)
        small_store.fill()
        with pytest.raises(OSError) as e:
            os.close(fd)
        assert e.value.errno == errno.ENOSPC
    finally:
        m.stop()


# ---- processes sharing an open file ---------------------------------------

def test_killed_sharer_does_not_discard_the_survivors_data(keyfs):
    """Parent and child share a descriptor; the child writes nothing and
    is killed; the parent's data is committed."""
    m = keyfs("s", providers="local")
    d = m.path("local", "r", "k")
    os.makedirs(d)
    v = os.path.join(d, "v")
    write(v, b"old")
    fd = os.open(v, os.O_WRONLY | os.O_TRUNC)
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        os.write(fd, b"survivor's value")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)                        # must not raise
    assert read(v) == b"survivor's value"


def test_killed_writer_cancels_its_data_visibly(keyfs):
    """The child writes and is killed: nothing is committed and the
    parent's close reports it (EINTR)."""
    m = keyfs("s", providers="local")
    d = m.path("local", "r", "k")
    os.makedirs(d)
    v = os.path.join(d, "v")
    write(v, b"old")
    fd = os.open(v, os.O_WRONLY | os.O_TRUNC)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(fd, b"partial")
            os.write(w, b"1")
            time.sleep(60)
        finally:
            os._exit(0)
    assert os.read(r, 1) == b"1"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EINTR
    assert read(v) == b"old"
    assert "was killed by signal 9" in m.log()
