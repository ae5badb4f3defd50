"""Where a value and the cloud credentials live in the daemon's memory.

After writes (`echo >`) and reads (`cat`) through local/, aws/ (moto) and
gcp/ (the KMS emulator), the daemon's memory is scanned (memscan.py:
/proc/PID/smaps and /proc/PID/mem):

- no copy of the value, of the AWS secret access key or session token, or
  of the Google access token lies in a mapping that is not locked
  (for gcp/ also the base64 forms in which Cloud KMS carries plaintext);
- once the value cache has dropped the value (ttl=1, max_stale=1) and
  every file is closed, no copy of the value is left anywhere, locked or
  not: nothing outlives a read outside keyfs's own value store.

Failures report counts per mapping, never the bytes.
"""
import os
import secrets
import sys
import time

import pytest

from conftest import make_canary, run
import memscan

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulators"))

from test_aws import REGION, moto, moto_url  # noqa: E402,F401
from test_gcp import PROJECT, clean_env, emu, sakey  # noqa: E402,F401

# The guarantees are the production build's: under a sanitizer the
# allocator is the sanitizer's (freed blocks wait in its quarantine,
# unwiped) and its shadow memory spans terabytes of address space.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("KEYFS_SAN")),
    reason="memory scan of a sanitizer build: its allocator keeps freed "
    "blocks unwiped; the plain build is scanned by `make check`")

# ttl + max_stale + the refresher's 250 ms tick, with room for a slow host
DROP_WAIT = 3.5
SETTLE = 0.7  # FUSE release after close, the refresher's next pass


class Needles(dict):
    """{name: [bytes forms]} that never shows its contents in a report."""

    def __repr__(self):
        return "<secret needles: %s>" % ", ".join(sorted(self))


class Canary(str):
    """A canary value whose repr (pytest tracebacks) hides it."""

    def __repr__(self):
        return "<canary>"


def value_needles(canary, b64=False):
    raw = canary.encode()
    forms = [raw]
    if b64:
        forms += memscan.b64_forms(raw)
    return Needles(value=forms)


def same(data, canary):
    """data == canary, as a bare boolean (nothing for pytest to show)."""
    return bool(data == canary.encode())


def echo(path, text):
    r = run(["sh", "-c", 'printf %s "$V" > "$P"'],
            env=dict(os.environ, V=text, P=path))
    assert r.returncode == 0, r.stderr[-300:]


def cat(path):
    r = run(["cat", path], text=False)
    assert r.returncode == 0
    return r.stdout


def exercise(path, canary):
    """Write the value, read it back through several opens."""
    echo(path, canary)
    for _ in range(3):
        ok = same(cat(path), canary)
        assert ok, "value read back differs"
    with open(path, "rb") as f:
        ok = same(f.read(), canary)
    assert ok, "value read back differs"


def report(label, pid, hits):
    st = memscan.status(pid, "VmLck", "VmRSS")
    print("memscan %s: VmLck %s VmRSS %s hits %s"
          % (label, st.get("VmLck"), st.get("VmRSS"), memscan.summary(hits)))


def check(m, label, needles, value_gone=True):
    pid = m.pid()
    time.sleep(SETTLE)
    hits = memscan.scan(pid, needles)
    report(label + " after reads", pid, hits)
    unlocked = [h for h in hits if not h.locked]
    assert not unlocked, ("copies in unlocked memory: %s"
                          % memscan.summary(unlocked))
    if not value_gone:
        return
    time.sleep(DROP_WAIT)
    hits = memscan.scan(pid, Needles(value=needles["value"]))
    report(label + " after the cache dropped it", pid, hits)
    assert not hits, ("copies of the value left after the cache dropped it:"
                      " %s" % memscan.summary(hits))


def test_memscan_can_read_daemon_memory(keyfs):
    """The scanner itself: a value held open is found (locked)."""
    canary = Canary(make_canary())
    m = keyfs(providers="local")
    os.mkdir(m.path("local", "ring"))
    os.mkdir(m.path("local", "ring", "key"))
    p = m.path("local", "ring", "key", "v")
    echo(p, canary)
    with open(p, "rb") as f:
        ok = same(f.read(), canary)
        hits = memscan.scan(m.pid(), value_needles(canary))
    assert ok, "value read back differs"
    assert hits, "the scanner found no copy of a value held open"
    absent = Needles(x=[secrets.token_hex(20).encode()])
    assert memscan.scan(m.pid(), absent) == []


def test_memscan_local(keyfs):
    canary = Canary(make_canary())
    m = keyfs(providers="local", ttl="1", max_stale="1")
    os.mkdir(m.path("local", "ring"))
    os.mkdir(m.path("local", "ring", "key"))
    exercise(m.path("local", "ring", "key", "v"), canary)
    check(m, "local", value_needles(canary))


def aws_cred_env(tmp_path, endpoint, secret_key, token):
    creds = tmp_path / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = AKIAMEMSCAN\n"
                     "aws_secret_access_key = %s\naws_session_token = %s\n"
                     % (secret_key, token))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_SHARED_CREDENTIALS_FILE=str(creds),
               AWS_CONFIG_FILE=str(tmp_path / "none-config"),
               AWS_ENDPOINT_URL_SECRETS_MANAGER=endpoint,
               AWS_EC2_METADATA_DISABLED="true")
    return env


def test_memscan_aws(keyfs, tmp_path, moto):  # noqa: F811
    canary = Canary(make_canary())
    secret_key = Canary("SK" + secrets.token_hex(19))
    token = Canary("TOKEN" + secrets.token_hex(40))
    env = aws_cred_env(tmp_path, moto, secret_key, token)
    m = keyfs(env=env, providers="aws", aws_region=REGION, timeout="20",
              ttl="1", max_stale="1")
    p = m.path("aws", REGION, "memscan")
    exercise(p, canary)
    # a read that reaches the cloud, not the value written
    time.sleep(DROP_WAIT)
    ok = same(cat(p), canary)
    assert ok, "value read back differs"
    needles = value_needles(canary)
    needles.update(secret_key=[secret_key.encode()], token=[token.encode()])
    check(m, "aws", needles)


def test_memscan_gcp(keyfs, emu, sakey, tmp_path):  # noqa: F811
    canary = Canary(make_canary())  # 45 bytes: its base64 has no padding
    token = Canary("ya29.memscan-" + secrets.token_urlsafe(32))
    emu.admin("POST", "/_emu/config", {"issue_token": token})
    m = keyfs(name="g", env=clean_env(tmp_path), providers="gcp",
              gcp_endpoint=emu.url + "/", gcp_credentials=sakey,
              gcp_project=PROJECT, timeout="15", ttl="1", max_stale="1")
    os.mkdir(m.path("gcp", PROJECT, "global", "ring"))
    os.mkdir(m.path("gcp", PROJECT, "global", "ring", "key"))
    p = m.path("gcp", PROJECT, "global", "ring", "key", "v")
    exercise(p, canary)
    time.sleep(DROP_WAIT)
    ok = same(cat(p), canary)
    assert ok, "value read back differs"  # a decrypt call
    needles = value_needles(canary, b64=True)
    needles["token"] = [token.encode()]
    check(m, "gcp", needles)
