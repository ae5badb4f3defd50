"""Bad input against aws/ (moto), gcp/ (the Cloud KMS emulator)
and local/: illegal and over-long names, traversal attempts, oversized
values, NUL bytes, writes at offsets, O_APPEND/O_TRUNC, truncate(2),
refused operations and extended attributes.  Every refused operation is
checked twice: the errno the caller sees, and that nothing changed where
the data lives -- moto read back with boto3, the emulator's key rings and
keys over its HTTP API plus the store tree, the local/ store tree.  A
canary value is written on every mount and must never reach the log."""
import base64
import errno
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import PYENV_PYTHON, make_canary, read_file as read, \
    write_file as write

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulators"))

import gcp_keys  # noqa: E402
from kms_emulator import EmulatorProcess  # noqa: E402
from test_aws import REGION, aws_env, start_moto, stop_moto  # noqa: E402

PROJECT = "keyfs-badinput"
LIMIT = 65536

@pytest.fixture(autouse=True)
def deadline():
    """No test here may run longer than 120 s (no pytest-timeout here):
    SIGALRM fails it; the keyfs fixture still unmounts."""
    def fire(*_):
        raise TimeoutError("test exceeded its 120 s deadline")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---- server-side views ------------------------------------------------------

BOTO_HELPER = r'''
import base64, json, sys, boto3
c = boto3.client("secretsmanager", endpoint_url=sys.argv[1],
                 region_name=sys.argv[2], aws_access_key_id="testing",
                 aws_secret_access_key="testing")

def value(name):
    try:
        r = c.get_secret_value(SecretId=name)
    except c.exceptions.ResourceNotFoundException:
        return None
    except Exception as e:
        return "error:" + type(e).__name__
    if r.get("SecretString") is not None:
        return "s:" + base64.b64encode(r["SecretString"].encode()).decode()
    return "b:" + base64.b64encode(r["SecretBinary"]).decode()

def snapshot():
    out, tok = {}, None
    while True:
        kw = {"IncludePlannedDeletion": True, "MaxResults": 100}
        if tok:
            kw["NextToken"] = tok
        r = c.list_secrets(**kw)
        for s in r["SecretList"]:
            vs = c.list_secret_version_ids(SecretId=s["Name"],
                                           IncludeDeprecated=True)
            out[s["Name"]] = {
                "deleted": bool(s.get("DeletedDate")),
                "description": s.get("Description"),
                "tags": sorted((t["Key"], t["Value"])
                               for t in s.get("Tags") or []),
                "versions": sorted((v["VersionId"], sorted(v["VersionStages"]))
                                   for v in vs["Versions"]),
                "value": value(s["Name"])}
        tok = r.get("NextToken")
        if not tok:
            break
    return out

for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd["op"] == "snap":
            res = snapshot()
        elif cmd["op"] == "value":
            res = value(cmd["name"])
        elif cmd["op"] == "create":
            kw = {"Name": cmd["name"]}
            if "value" in cmd:
                kw["SecretString"] = cmd["value"]
            res = c.create_secret(**kw)["ARN"]
        else:
            res = "error:unknown op"
    except Exception as e:
        res = "error:" + type(e).__name__
    sys.stdout.write(json.dumps({"r": res}) + "\n")
    sys.stdout.flush()
'''


class Boto:
    """One long-lived boto3 process talking straight to moto."""

    def __init__(self, url):
        self.proc = subprocess.Popen(
            [PYENV_PYTHON, "-c", BOTO_HELPER, url, REGION],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)

    def call(self, timeout=60, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "boto3 helper did not answer in %ds" % timeout
        line = self.proc.stdout.readline()
        assert line, "boto3 helper died"
        return json.loads(line)["r"]

    def snapshot(self):
        return self.call(op="snap")

    def value(self, name):
        """The AWSCURRENT value as bytes (None: no value)."""
        v = self.call(op="value", name=name)
        if v is None:
            return None
        assert not v.startswith("error:"), v
        return base64.b64decode(v[2:])

    def kind(self, name):
        return self.call(op="value", name=name)[:2]

    def create(self, name, value=None):
        cmd = {"op": "create", "name": name}
        if value is not None:
            cmd["value"] = value
        r = self.call(**cmd)
        assert not r.startswith("error:"), r
        return r

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def tree(root):
    """{relative path: (mode, sha256 of the bytes)} of every file and dir."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            p = os.path.join(dirpath, d)
            out[os.path.relpath(p, root) + "/"] = (os.lstat(p).st_mode, "")
        for fn in files:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (os.lstat(p).st_mode, h)
    return out


class Kms:
    """The emulator's own view of key rings, keys and decryption."""

    def __init__(self, emu):
        self.emu = emu
        self.token = "static-" + os.urandom(8).hex()
        emu.admin("POST", "/_emu/static-tokens", {"token": self.token})

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.emu.url + "/v1/" + path, data=data,
                                     method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.loads(r.read() or b"null")

    def snapshot(self):
        loc = "projects/%s/locations/global" % PROJECT
        out = {}
        for ring in self.call("GET", loc + "/keyRings").get("keyRings", []):
            keys = self.call("GET", ring["name"] + "/cryptoKeys")
            out[ring["name"]] = sorted(
                (k["name"], k.get("primary", {}).get("name"),
                 k.get("rotationPeriod"), k.get("nextRotationTime"))
                for k in keys.get("cryptoKeys", []))
        return out

    def decrypt(self, ring, key, ciphertext):
        if not ciphertext:
            return b""
        name = "projects/%s/locations/global/keyRings/%s/cryptoKeys/%s" % (
            PROJECT, ring, key)
        r = self.call("POST", name + ":decrypt",
                      {"ciphertext": base64.b64encode(ciphertext).decode()})
        return base64.b64decode(r.get("plaintext", ""))


# ---- one fixture, three providers -------------------------------------------

@pytest.fixture(scope="module")
def moto_url():
    proc, url = start_moto()
    try:
        yield url
    finally:
        stop_moto(proc)


@pytest.fixture(scope="module")
def boto(moto_url):
    b = Boto(moto_url)
    try:
        yield b
    finally:
        b.stop()


class Target:
    """A mounted provider: .m (Mount), .dir (where value files go),
    .mkdirs (directories where mkdir creates provider objects),
    .snapshot() (everything the provider holds), .value(name) (a value
    read back where it lives, not through keyfs)."""
    prov = None

    def no_canary(self):
        assert self.canary not in self.m.log(), "a value reached the log"


class AwsTarget(Target):
    prov = "aws"

    def __init__(self, keyfs, tmp_path, moto_url, boto, **opts):
        urllib.request.urlopen(urllib.request.Request(
            moto_url + "/moto-api/reset", method="POST"), timeout=10).read()
        self.boto = boto
        o = dict(providers="aws", aws_region=REGION, timeout="20", ttl="0")
        o.update(opts)
        self.m = keyfs(env=aws_env(tmp_path, moto_url), args=("-d",), **o)
        self.dir = self.m.path("aws", REGION)
        self.mkdirs = [self.dir]

    def snapshot(self):
        return self.boto.snapshot()

    def value(self, name):
        return self.boto.value(name)


class StoreTarget(Target):
    def snapshot(self):
        return (self.server_snapshot(), tree(self.m.store))

    def server_snapshot(self):
        return None


class GcpTarget(StoreTarget):
    prov = "gcp"

    def __init__(self, keyfs, tmp_path, emu, **opts):
        self.emu = emu
        self.kms = Kms(emu)
        key = str(tmp_path / "sa.json")
        gcp_keys.make_sa_key(key, emu.url + "/token", PROJECT)
        emu.admin("POST", "/_emu/service-accounts", {"key_file": key})
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_",
                                    "GCE_"))}
        env["CLOUDSDK_CONFIG"] = str(tmp_path)
        env["GCE_METADATA_HOST"] = "127.0.0.1:9"
        o = dict(providers="gcp", gcp_endpoint=emu.url + "/",
                 gcp_credentials=key, gcp_project=PROJECT, timeout="15",
                 ttl="0")
        o.update(opts)
        self.m = keyfs(env=env, args=("-d",), **o)
        loc = self.m.path("gcp", PROJECT, "global")
        os.mkdir(os.path.join(loc, "ring"))
        os.mkdir(os.path.join(loc, "ring", "key"))
        self.dir = os.path.join(loc, "ring", "key")
        self.mkdirs = [loc, os.path.join(loc, "ring")]

    def server_snapshot(self):
        return self.kms.snapshot()

    def store_path(self, name):
        return os.path.join(self.m.store, "gcp", PROJECT, "global", "ring",
                            "key", name)

    def value(self, name):
        try:
            with open(self.store_path(name), "rb") as f:
                ct = f.read()
        except FileNotFoundError:
            return None
        return self.kms.decrypt("ring", "key", ct)


class LocalTarget(StoreTarget):
    prov = "local"

    def __init__(self, keyfs, tmp_path, **opts):
        o = dict(providers="local", ttl="0")
        o.update(opts)
        self.m = keyfs(args=("-d",), **o)
        os.mkdir(self.m.path("local", "ring"))
        os.mkdir(self.m.path("local", "ring", "key"))
        self.dir = self.m.path("local", "ring", "key")
        self.mkdirs = [self.m.path("local"), self.m.path("local", "ring")]

    def value(self, name):
        # The store format needs keyfs: read through the mount, which with
        # ttl=0 reads and decrypts the store file on every open.
        try:
            return read(os.path.join(self.dir, name))
        except FileNotFoundError:
            return None


@pytest.fixture
def emu():
    e = EmulatorProcess()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture(params=["aws", "gcp", "local"])
def target(request, keyfs, tmp_path):
    if request.param == "aws":
        t = AwsTarget(keyfs, tmp_path, request.getfixturevalue("moto_url"),
                      request.getfixturevalue("boto"))
    elif request.param == "gcp":
        t = GcpTarget(keyfs, tmp_path, request.getfixturevalue("emu"))
    else:
        t = LocalTarget(keyfs, tmp_path)
    t.canary = make_canary()
    write(os.path.join(t.dir, "canary"), t.canary.encode())
    assert t.value("canary") == t.canary.encode()
    yield t
    t.no_canary()


# ---- helpers ------------------------------------------------------------------

def oserr(fn, *a, **kw):
    """The errno fn raises (0 when it succeeds)."""
    try:
        fn(*a, **kw)
    except OSError as e:
        return e.errno
    return 0


def attempt_write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                  offset=None):
    """open + write (or pwrite) + close; the first errno, or 0."""
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        return e.errno
    err = 0
    try:
        if offset is None:
            os.write(fd, data)
        else:
            os.pwrite(fd, data, offset)
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    return err


def refused(t, expected, fn, *a, **kw):
    """fn fails with `expected` (an errno or a set) and the provider's
    state is exactly what it was."""
    before = t.snapshot()
    got = oserr(fn, *a, **kw)
    want = expected if isinstance(expected, (set, frozenset)) else {expected}
    assert got in want, "%s%r: errno %s (%s), expected %s" % (
        getattr(fn, "__name__", fn), tuple(str(x)[-60:] for x in a), got,
        errno.errorcode.get(got, "ok"),
        "/".join(errno.errorcode[e] for e in want))
    assert t.snapshot() == before, "a refused operation changed the provider"


def refused_write(t, expected, path, data, **kw):
    before = t.snapshot()
    got = attempt_write(path, data, **kw)
    want = expected if isinstance(expected, (set, frozenset)) else {expected}
    assert got in want, "write %s: errno %s, expected %s" % (
        os.path.basename(path)[:60], errno.errorcode.get(got, "ok"),
        "/".join(errno.errorcode[e] for e in want))
    assert t.snapshot() == before, "a refused write changed the provider"


def temporary_shape(name):
    """New names of these shapes are held in keyfs's memory, never sent
    to the provider (test_temp_names.py): not refused, but not stored."""
    return name.startswith(".") or name.endswith("~")


def held_write(t, path, data):
    """A write that succeeds and changes nothing where the data lives;
    the held file is listed until it is removed."""
    before = t.snapshot()
    assert attempt_write(path, data) == 0, path
    assert os.path.basename(path) in os.listdir(os.path.dirname(path))
    os.unlink(path)
    assert t.snapshot() == before, "a held file reached the provider"


def refused_or_held_write(t, expected, path, data):
    if temporary_shape(os.path.basename(path)):
        held_write(t, path, data)
    else:
        refused_write(t, expected, path, data)


# ---- names ---------------------------------------------------------------------

COMMON_BAD = ["sp ace", "star*", "semi;colon", "back\\slash", "quote'",
              'dq"', "new\nline", "tab\t", "\u00fcnicode", "%2e%2e",
              "..%2f..%2fetc", "a:b", "<x>", "pipe|x", "q?", "h#sh",
              "dollar$", "caret^", "tilde~", "excl!", "\x01ctl", "\x7fdel",
              "\u2603"]
BAD_VALUE_NAMES = {
    "aws": COMMON_BAD + ["com,ma"],
    "gcp": COMMON_BAD + [".hidden", ".kf-tmp.abcdef", "..."],
    "local": COMMON_BAD + [".hidden", ".kf-tmp.abcdef", "...", "com,ma"],
}
# Ring/key ids (gcp, local) and field-secret names (aws).
BAD_DIR_NAMES = COMMON_BAD + ["dot.ted", ".hid", "com,ma", "plus+",
                              "eq=", "at@"]


def test_illegal_characters_in_names(target):
    t = target
    for name in BAD_VALUE_NAMES[t.prov]:
        refused_or_held_write(t, errno.EINVAL, os.path.join(t.dir, name),
                              b"x")
        if not temporary_shape(name):
            refused(t, errno.EINVAL, os.mknod, os.path.join(t.dir, name),
                    0o600 | 0o100000)
    dirs = BAD_DIR_NAMES if t.prov != "aws" else \
        [n for n in BAD_DIR_NAMES if n not in ("dot.ted", ".hid", "plus+",
                                               "eq=", "at@")]
    for parent in t.mkdirs:
        for name in dirs:
            refused(t, errno.EINVAL, os.mkdir, os.path.join(parent, name))
    # the valid characters do work, and exactly as named
    good = {"aws": "ok_+=.@-Z9", "gcp": "ok_+=.@,-Z9",
            "local": "ok_+=.@-Z9"}[t.prov]
    write(os.path.join(t.dir, good), b"fine")
    assert t.value(good) == b"fine"
    assert good in os.listdir(t.dir)


# Depth of Target.dir below the mount root.
DEPTH = {"aws": 2, "gcp": 5, "local": 3}


def test_names_too_long(target):
    t = target
    # FUSE passes components up to 1024 bytes: 256 reaches keyfs.
    if t.prov == "aws":
        # 1 to 512 characters: 256 and 512 are fine, 513 is not
        for n in (256, 512):
            write(os.path.join(t.dir, "n" * n), b"ok %d" % n)
            assert t.value("n" * n) == b"ok %d" % n
        refused_write(t, errno.EINVAL, os.path.join(t.dir, "n" * 513), b"x")
        refused(t, errno.EINVAL, os.mkdir, os.path.join(t.dir, "m" * 513))
        # 512 characters in all, through prefix directories
        a, b = "a" * 255, "b" * 100
        t.boto.create(a + "/" + b + "/seed", "s")
        d = os.path.join(t.dir, a, b)
        assert os.listdir(d) == ["seed"]
        refused_write(t, errno.EINVAL, os.path.join(d, "c" * 156), b"x")
        refused(t, errno.EINVAL, os.mkdir, os.path.join(d, "c" * 156))
        ok = "c" * 155          # 255 + 1 + 100 + 1 + 155 = 512
        write(os.path.join(d, ok), b"fits")
        assert t.value("%s/%s/%s" % (a, b, ok)) == b"fits"
    else:
        # value names: 255 at most
        write(os.path.join(t.dir, "v" * 255), b"long name")
        assert t.value("v" * 255) == b"long name"
        refused_write(t, errno.EINVAL, os.path.join(t.dir, "v" * 256), b"x")
        # ring and key ids: 63 at most
        for parent in t.mkdirs:
            refused(t, errno.EINVAL, os.mkdir, os.path.join(parent, "i" * 64))
            refused(t, errno.EINVAL, os.mkdir,
                    os.path.join(parent, "i" * 256))
        os.mkdir(os.path.join(t.mkdirs[0], "r" * 63))
        os.mkdir(os.path.join(t.mkdirs[1], "k" * 63))
        assert "r" * 63 in os.listdir(t.mkdirs[0])
        assert "k" * 63 in os.listdir(t.mkdirs[1])
        if t.prov == "gcp":
            snap = t.server_snapshot()
            ring = "projects/%s/locations/global/keyRings/" % PROJECT
            assert ring + "r" * 63 in snap
            assert any(k[0] == ring + "ring/cryptoKeys/" + "k" * 63
                       for k in snap[ring + "ring"])
    # over FUSE's own limit (1024): refused before or by keyfs (gcp's
    # ENOENT is the bug of test_gcp_names_over_255_are_einval)
    refused_write(t, {errno.ENAMETOOLONG, errno.EINVAL} |
                  ({errno.ENOENT} if t.prov == "gcp" else set()),
                  os.path.join(t.dir, "n" * 1025), b"x")


def test_traversal(target):
    t = target
    write(os.path.join(t.dir, "v"), b"value")
    # ".." is resolved by the kernel before keyfs sees the path.
    # Up to the mount root: a new top-level name (EPERM).
    root_escape = os.path.join(t.dir, *([".."] * DEPTH[t.prov] + ["escape"]))
    refused_write(t, errno.EPERM, root_escape, b"x")
    refused(t, errno.EPERM, os.mkdir, root_escape)
    # One level up: aws/REGION/.. is aws/, where only regions live
    # (ENOENT); local/RING/KEY/.. is a ring, which holds no values (EPERM);
    # gcp: see test_gcp_value_in_a_ring_is_eperm.
    up = os.path.join(t.dir, "..", "escape")
    if t.prov == "aws":
        refused_write(t, errno.ENOENT, up, b"x")
    elif t.prov == "local":
        refused_write(t, errno.EPERM, up, b"x")
    else:
        before = t.snapshot()
        assert attempt_write(up, b"x") != 0
        assert t.snapshot() == before
    # names that only look like traversal reach keyfs as names
    for name in ("%2e%2e%2fescape", "..%5cescape", "%2E%2E",
                 "..\\..\\escape", "\u2024\u2024"):
        refused_or_held_write(t, errno.EINVAL, os.path.join(t.dir, name),
                              b"x")
    # a path through a value file
    refused_write(t, errno.ENOTDIR, os.path.join(t.dir, "v", "x"), b"x")
    refused(t, errno.ENOTDIR, os.mkdir, os.path.join(t.dir, "v", "x"))
    # paths of 4096 bytes or more: the kernel's PATH_MAX
    deep = os.path.join(t.dir, *(["d" * 200] * 21))
    refused_write(t, errno.ENAMETOOLONG, deep, b"x")
    assert read(os.path.join(t.dir, "v")) == b"value"


def test_aws_deeper_than_64_levels(keyfs, tmp_path, moto_url, boto):
    """A secret whose name has more than 64 levels exists on the server;
    keyfs refuses paths deeper than 64 levels with ENAMETOOLONG, and
    creating below them changes nothing."""
    t = AwsTarget(keyfs, tmp_path, moto_url, boto)
    t.canary = make_canary()
    write(os.path.join(t.dir, "canary"), t.canary.encode())
    boto.create("/".join(["d"] * 70) + "/leaf", "deep value")
    boto.create("/".join(["s"] * 10) + "/leaf", "shallow value")
    assert read(os.path.join(t.dir, *(["s"] * 10 + ["leaf"]))) == \
        b"shallow value"
    # aws/REGION/ + 62 prefix levels = 64 levels: still served; one more
    # level is refused (each path walk costs a lookup per level, so only
    # the boundary is probed)
    at = {n: os.path.join(t.dir, *(["d"] * (n - 2))) for n in (64, 65)}
    assert os.listdir(at[64]) == ["d"]
    refused(t, errno.ENAMETOOLONG, os.listdir, at[65])
    refused_write(t, errno.ENAMETOOLONG, os.path.join(at[64], "x"), b"x")
    refused(t, errno.ENAMETOOLONG, os.mkdir, os.path.join(at[64], "x"))
    assert canary_free(t)


def canary_free(t):
    return t.canary not in t.m.log()


# Errnos that gcp/ once got wrong (ENOENT for names over 255 bytes,
# EISDIR for a value file in a key ring); the operations change nothing.


@pytest.fixture
def gcp_target(keyfs, tmp_path, emu):
    t = GcpTarget(keyfs, tmp_path, emu)
    t.canary = make_canary()
    return t


@pytest.mark.parametrize("what", ["value", "ring", "key"])
def test_gcp_names_over_255_are_einval(gcp_target, what):
    t = gcp_target
    if what == "value":
        refused_write(t, errno.EINVAL, os.path.join(t.dir, "v" * 256), b"x")
    else:
        parent = t.mkdirs[0] if what == "ring" else t.mkdirs[1]
        refused(t, errno.EINVAL, os.mkdir, os.path.join(parent, "i" * 256))


def test_gcp_value_in_a_ring_is_eperm(gcp_target):
    refused_write(gcp_target, errno.EPERM,
                  os.path.join(gcp_target.dir, "..", "escape"), b"x")


# ---- values ------------------------------------------------------------------

def test_values_over_the_limit(target):
    t = target
    write(os.path.join(t.dir, "v"), b"old")
    p = os.path.join(t.dir, "v")
    refused_write(t, errno.EFBIG, p, b"x" * (LIMIT + 1))
    refused_write(t, errno.EFBIG, os.path.join(t.dir, "new"),
                  b"y" * (LIMIT + 1))
    assert "new" not in os.listdir(t.dir)
    # a pwrite whose end passes the limit, at the limit and far beyond
    refused_write(t, errno.EFBIG, p, b"z", flags=os.O_WRONLY, offset=LIMIT)
    refused_write(t, errno.EFBIG, p, b"z", flags=os.O_WRONLY,
                  offset=1 << 40)
    refused_write(t, errno.EFBIG, p, b"z" * 2, flags=os.O_WRONLY,
                  offset=LIMIT - 1)
    # O_APPEND past the limit
    write(p, b"a" * LIMIT)
    refused_write(t, errno.EFBIG, p, b"b", flags=os.O_WRONLY | os.O_APPEND)
    assert t.value("v") == b"a" * LIMIT
    # a failed write poisons the file: a later good write on the same
    # descriptor commits nothing
    before = t.snapshot()
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        assert oserr(os.write, fd, b"q" * (LIMIT + 1)) == errno.EFBIG
        os.write(fd, b"small")
    finally:
        assert oserr(os.close, fd) == errno.EFBIG
    assert t.snapshot() == before


@pytest.mark.parametrize("shape", ["one-nul", "inner-nul", "nul-run",
                                   "all-bytes-64k"])
def test_nul_bytes_round_trip(target, shape):
    t = target
    data = {"one-nul": b"\x00",
            "inner-nul": b"user\x00pass\x00",
            "nul-run": b"\x00" * 1000 + b"end",
            "all-bytes-64k": (bytes(range(256)) * 256)[:LIMIT]}[shape]
    p = os.path.join(t.dir, "nul")
    write(p, data)
    assert read(p) == data
    if t.prov == "local":       # aws, gcp: size 0 until cached (ttl=0)
        assert os.stat(p).st_size == len(data)
    assert t.value("nul") == data
    if t.prov == "aws":
        assert t.boto.kind("nul") == "b:", "NUL bytes must go as SecretBinary"


def test_writes_at_offsets(target):
    t = target
    p = os.path.join(t.dir, "v")
    write(p, b"hello")
    # pwrite past the end: the gap is zero-filled
    assert attempt_write(p, b"X", flags=os.O_WRONLY, offset=10) == 0
    assert t.value("v") == b"hello\x00\x00\x00\x00\x00X"
    assert read(p) == b"hello\x00\x00\x00\x00\x00X"
    # overwrite in the middle keeps the rest
    assert attempt_write(p, b"J", flags=os.O_WRONLY, offset=0) == 0
    assert t.value("v") == b"Jello\x00\x00\x00\x00\x00X"
    # pwrite that ends exactly at the limit
    assert attempt_write(p, b"E", flags=os.O_WRONLY, offset=LIMIT - 1) == 0
    got = t.value("v")
    assert len(got) == LIMIT and got[:11] == b"Jello\x00\x00\x00\x00\x00X"
    assert got[11:-1] == bytes(LIMIT - 12) and got[-1:] == b"E"
    # a new name written at an offset
    assert attempt_write(os.path.join(t.dir, "sparse"), b"tail",
                         offset=3) == 0
    assert t.value("sparse") == b"\x00\x00\x00tail"


def test_append_and_trunc(target):
    t = target
    p = os.path.join(t.dir, "v")
    write(p, b"hello")
    assert attempt_write(p, b" world", flags=os.O_WRONLY | os.O_APPEND) == 0
    assert t.value("v") == b"hello world"
    # O_APPEND ignores the offset of pwrite on Linux: still appended
    assert attempt_write(p, b"!", flags=os.O_WRONLY | os.O_APPEND,
                         offset=0) == 0
    assert t.value("v") == b"hello world!"
    # O_TRUNC + write: the new value only
    assert attempt_write(p, b"new", flags=os.O_WRONLY | os.O_TRUNC) == 0
    assert t.value("v") == b"new"
    # a bare O_TRUNC is committed at fsync: aws cannot store an empty value
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        if t.prov == "aws":
            before = t.snapshot()
            assert oserr(os.fsync, fd) == errno.EINVAL
        else:
            os.fsync(fd)
    finally:
        os.close(fd)
    if t.prov == "aws":
        assert t.snapshot() == before
        assert t.value("v") == b"new"
    else:
        assert t.value("v") == b""


def test_truncate(target):
    t = target
    p = os.path.join(t.dir, "v")
    write(p, b"0123456789")
    os.truncate(p, 4)                    # committed at once
    assert t.value("v") == b"0123"
    os.truncate(p, 8)                    # grows with zeros
    assert t.value("v") == b"0123\x00\x00\x00\x00"
    if t.prov == "local":
        assert os.stat(p).st_size == 8
    os.truncate(p, LIMIT)
    assert t.value("v") == b"0123" + bytes(LIMIT - 4)
    os.truncate(p, 8)
    refused(t, errno.EFBIG, os.truncate, p, LIMIT + 1)
    refused(t, errno.EFBIG, os.truncate, p, 1 << 40)
    refused(t, errno.EINVAL, os.truncate, p, -1)
    if t.prov == "aws":
        refused(t, errno.EINVAL, os.truncate, p, 0)
    else:
        os.truncate(p, 0)
        assert t.value("v") == b""
        os.truncate(p, 3)
        assert t.value("v") == b"\x00\x00\x00"
    # ftruncate on an open descriptor edits its buffer; close commits
    write(p, b"abcdef")
    fd = os.open(p, os.O_RDWR)
    try:
        assert oserr(os.ftruncate, fd, LIMIT + 1) == errno.EFBIG
        os.ftruncate(fd, 2)
        os.pwrite(fd, b"Z", 4)
    finally:
        os.close(fd)
    assert t.value("v") == b"ab\x00\x00Z"
    # truncate of a name that does not exist creates nothing
    refused(t, errno.ENOENT, os.truncate, os.path.join(t.dir, "absent"), 4)


# ---- refused operations ------------------------------------------------------

def test_forbidden_operations_change_nothing(target):
    t = target
    a, b = os.path.join(t.dir, "a"), os.path.join(t.dir, "b")
    write(a, b"A")
    write(b, b"B")
    refused(t, errno.EPERM, os.rename, a, os.path.join(t.dir, "c"))
    refused(t, errno.EPERM, os.rename, a, b)           # over an existing one
    refused(t, errno.EPERM, os.rename, t.dir, t.dir + "2")
    refused(t, errno.EPERM, os.link, a, os.path.join(t.dir, "hard"))
    refused(t, errno.EPERM, os.symlink, "a", os.path.join(t.dir, "sym"))
    refused(t, errno.EPERM, os.symlink, "/etc/passwd",
            os.path.join(t.dir, "sym2"))
    refused(t, errno.EPERM, os.mknod, os.path.join(t.dir, "fifo"),
            0o600 | 0o010000)
    refused(t, errno.EPERM, os.mknod, os.path.join(t.dir, "chr"),
            0o600 | 0o020000, os.makedev(1, 3))
    before = t.snapshot()
    os.utime(a, (1, 1))                  # accepted and ignored
    assert t.snapshot() == before
    for n in ("c", "hard", "sym", "sym2", "fifo", "chr"):
        assert oserr(os.lstat, os.path.join(t.dir, n)) == errno.ENOENT
    assert t.value("a") == b"A" and t.value("b") == b"B"


def test_xattrs_unknown_and_huge(target):
    t = target
    p = os.path.join(t.dir, "v")
    write(p, b"value")
    for obj in (p, t.dir):
        refused(t, errno.ENODATA, os.getxattr, obj, "user.nope")
        refused(t, errno.ENODATA, os.getxattr, obj, "user.keyfs.nope")
        refused(t, errno.ENOTSUP, os.setxattr, obj, "user.nope", b"x")
        refused(t, errno.ENOTSUP, os.setxattr, obj, "user.keyfs.nope", b"x")
        refused(t, errno.ENOTSUP, os.removexattr, obj, "user.keyfs.id")
        # read-only where it exists; aws regions have no user.keyfs.id
        refused(t, errno.ENOTSUP if (t.prov, obj) == ("aws", t.dir)
                else errno.EPERM, os.setxattr, obj, "user.keyfs.id", b"x")
        # over XATTR_SIZE_MAX: the kernel refuses it before keyfs
        refused(t, errno.E2BIG, os.setxattr, obj, "user.keyfs.id",
                b"x" * (LIMIT + 1))
    if t.prov == "aws":
        refused(t, errno.EINVAL, os.setxattr, p, "user.keyfs.description",
                b"d" * 2049)
        refused(t, errno.EINVAL, os.setxattr, p, "user.keyfs.description",
                b"\xff\xfe")
        refused(t, errno.EINVAL, os.setxattr, p, "user.keyfs.description",
                b"d" * LIMIT)
        os.setxattr(p, "user.keyfs.description", b"d" * 2048)
        assert t.snapshot()["v"]["description"] == "d" * 2048
    elif t.prov == "gcp":
        refused(t, errno.EINVAL, os.setxattr, t.dir,
                "user.keyfs.rotation_period", b"9" * 256)
        refused(t, errno.EINVAL, os.setxattr, t.dir, "user.keyfs.primary",
                b"1" * 300)
        refused(t, errno.EINVAL, os.setxattr, t.dir,
                "user.keyfs.rotation_period", b"1" * LIMIT)
        refused(t, errno.ENOTSUP, os.setxattr, p,
                "user.keyfs.rotation_period", b"100000s")
    else:
        refused(t, errno.EINVAL, os.setxattr, t.dir, "user.keyfs.rotate",
                b"")
        refused(t, errno.EINVAL, os.setxattr, t.dir, "user.keyfs.rotate",
                b"0")
        refused(t, errno.EPERM, os.setxattr, p, "user.keyfs.rotate", b"1")
    # a buffer too small: ERANGE
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(1)
    n = libc.getxattr(p.encode(), b"user.keyfs.id", buf, 1)
    assert n == -1 and ctypes.get_errno() == errno.ERANGE


# ---- a large local/ directory ------------------------------------------------

def test_local_large_directory(keyfs):
    """Entries created through keyfs (the store format needs it), then
    listed: 10,000 when creating them is fast enough (about 13 s here),
    else 2,000, else 500, so the file stays within its time budget."""
    m = keyfs(providers="local")
    os.mkdir(m.path("local", "big"))
    k = m.path("local", "big", "key")
    os.mkdir(k)
    start = time.monotonic()
    n = 0
    target_n = 10000
    while n < target_n:
        write(os.path.join(k, "e%05d" % n), b"%d" % n)
        n += 1
        if n == 500 and time.monotonic() - start > 3:
            target_n = 2000             # > 6 ms each: 10,000 is too slow
        if n == 200 and time.monotonic() - start > 12:
            target_n = 500              # > 60 ms each: 2,000 is too slow
    names = os.listdir(k)
    assert len(names) == n and sorted(names) == ["e%05d" % i
                                                 for i in range(n)]
    r = subprocess.run(["ls", "-l", k], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.count("\n") == n + 1
    store = os.path.join(m.store, "local", "big", "key")
    assert len([f for f in os.listdir(store) if f.startswith("e")]) == n
    for i in (0, n // 2, n - 1):
        assert read(os.path.join(k, "e%05d" % i)) == b"%d" % i
