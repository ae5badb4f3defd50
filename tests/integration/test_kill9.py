"""kill -9 of keyfs during writes and during reads, for aws/
(moto), gcp/ (the Cloud KMS emulator) and local/.  A writer process writes
v1, v2, ... to a few files in 4 KiB chunks while a reader process reads
them; keyfs is killed at a seeded random moment and lazily unmounted.
Then, checked where the data lives (moto through boto3; for gcp/ the
emulator decrypting the store files; for local/ a fresh mount), each file
holds a complete value some writer wrote -- never a partial one, never
older than the writer's last successful close -- leftover `.kf-tmp.*`
files are never listed, and a new mount reads every file."""
import errno
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_canary

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulators"))

import gcp_keys  # noqa: E402
from kms_emulator import EmulatorProcess  # noqa: E402
from test_aws import REGION, aws_env, start_moto, stop_moto  # noqa: E402
from test_bad_input import PROJECT, Boto, Kms  # noqa: E402

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


FILES = ["f0", "f1", "f2"]
SIZE = 16384            # four 4 KiB write(2) calls per value
ITERATIONS = ["write", "read", "write"]
TMP_PREFIX = ".kf-tmp."

# Value number i of file j: a header and a body derived from (j, i), so a
# partial or mixed value is detected and the number is recovered.
VALUE_CODE = r'''
import hashlib
def make_value(j, i, size):
    head = b"F%d:V%d:" % (j, i)
    unit = hashlib.sha256(b"%d-%d" % (j, i)).hexdigest().encode()
    body = (unit * (size // len(unit) + 1))[:size - len(head)]
    return head + body

def value_number(j, data, size):
    try:
        f, v = data.split(b":", 2)[:2]
        i = int(v[1:])
    except ValueError:
        return None
    if f != b"F%d" % j or data != make_value(j, i, size):
        return None
    return i
'''
_ns = {}
exec(VALUE_CODE, _ns)
make_value, value_number = _ns["make_value"], _ns["value_number"]

WRITER = VALUE_CODE + r'''
import errno, os, sys, time
d, base, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = sys.argv[4:]
deadline = time.time() + 30
i = base
dead = 0
while time.time() < deadline and dead < 20:
    i += 1
    for j, name in enumerate(files):
        v = make_value(j, i, size)
        print("A", j, i, flush=True)
        try:
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_TRUNC)
            try:
                for k in range(0, len(v), 4096):
                    os.write(fd, v[k:k + 4096])
            finally:
                os.close(fd)
        except OSError as e:
            print("E", j, i, e.errno, flush=True)
            dead += 1
            continue
        dead = 0
        print("C", j, i, flush=True)
'''

READER = VALUE_CODE + r'''
import os, sys, time
d, size = sys.argv[1], int(sys.argv[2])
files = sys.argv[3:]
deadline = time.time() + 30
dead = reads = 0
while time.time() < deadline and dead < 20:
    for j, name in enumerate(files):
        try:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
        except OSError as e:
            dead += 1
            continue
        dead = 0
        reads += 1
        if value_number(j, data, size) is None:
            print("BAD", j, len(data), flush=True)
print("READS", reads, flush=True)
'''


def wait_out(proc, timeout=40):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        pytest.fail("a load process did not stop after keyfs died")
    return out


def write_all(d, j, i):
    with open(os.path.join(d, FILES[j]), "wb") as f:
        f.write(make_value(j, i, SIZE))


def store_tmp_files(store):
    return [os.path.join(dp, fn) for dp, _, fns in os.walk(store)
            for fn in fns if fn.startswith(TMP_PREFIX)]


class Prov:
    """Per provider: mount(name) -> (Mount, dir of the files);
    server_values() -> {file: bytes} read where the values live."""


class Aws(Prov):
    def __init__(self, keyfs, tmp_path, url):
        self.keyfs, self.tmp, self.url = keyfs, tmp_path, url
        self.boto = Boto(url)

    def mount(self, name):
        m = self.keyfs(name=name, env=aws_env(self.tmp, self.url),
                       providers="aws", aws_region=REGION, timeout="10")
        return m, m.path("aws", REGION)

    def prepare(self, m, d):
        pass

    def server_values(self):
        return {f: self.boto.value(f) for f in FILES}

    def server_names(self):
        return sorted(self.boto.snapshot())

    def close(self):
        self.boto.stop()


class Store(Prov):
    def prepare(self, m, d):
        os.mkdir(os.path.dirname(d))
        os.mkdir(d)

    def store_dir(self):
        return os.path.join(self.store, self.rel)


class Gcp(Store):
    rel = os.path.join("gcp", PROJECT, "global", "ring", "key")

    def __init__(self, keyfs, tmp_path, emu):
        self.keyfs, self.tmp, self.emu = keyfs, tmp_path, emu
        self.kms = Kms(emu)
        self.key = str(tmp_path / "sa.json")
        gcp_keys.make_sa_key(self.key, emu.url + "/token", PROJECT)
        emu.admin("POST", "/_emu/service-accounts", {"key_file": self.key})
        self.store = str(tmp_path / "store")

    def mount(self, name):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_",
                                    "GCE_"))}
        env["CLOUDSDK_CONFIG"] = str(self.tmp)
        env["GCE_METADATA_HOST"] = "127.0.0.1:9"
        m = self.keyfs(name=name, env=env, store=self.store, providers="gcp",
                       gcp_endpoint=self.emu.url + "/",
                       gcp_credentials=self.key, gcp_project=PROJECT,
                       timeout="10")
        return m, m.path("gcp", PROJECT, "global", "ring", "key")

    def server_values(self):
        out = {}
        for f in FILES:
            with open(os.path.join(self.store_dir(), f), "rb") as fh:
                out[f] = self.kms.decrypt("ring", "key", fh.read())
        return out

    def close(self):
        pass


class Local(Store):
    rel = os.path.join("local", "ring", "key")

    def __init__(self, keyfs, tmp_path):
        self.keyfs = keyfs
        self.store = str(tmp_path / "store")
        self.n = 0

    def mount(self, name):
        m = self.keyfs(name=name, store=self.store, providers="local")
        return m, m.path("local", "ring", "key")

    def server_values(self):
        # The store format needs keyfs: a fresh mount of the same store.
        self.n += 1
        m, d = self.mount("check%d" % self.n)
        try:
            return {f: open(os.path.join(d, f), "rb").read() for f in FILES}
        finally:
            m.stop()

    def close(self):
        pass


@pytest.fixture(params=["aws", "gcp", "local"])
def prov(request, keyfs, tmp_path):
    procs = []
    if request.param == "aws":
        proc, url = start_moto()
        procs.append(lambda: stop_moto(proc))
        p = Aws(keyfs, tmp_path, url)
    elif request.param == "gcp":
        emu = EmulatorProcess()
        procs.append(emu.stop)
        p = Gcp(keyfs, tmp_path, emu)
    else:
        p = Local(keyfs, tmp_path)
    p.name = request.param
    try:
        yield p
    finally:
        p.close()
        for stop in procs:
            stop()


def test_kill9_during_writes_and_reads(prov, request):
    seed = 6003 + ["aws", "gcp", "local"].index(prov.name)
    rnd = random.Random(seed)
    m, d = prov.mount("k0")
    prov.prepare(m, d)
    canary = make_canary()
    with open(os.path.join(d, "canary"), "wb") as f:
        f.write(canary.encode())
    for j in range(len(FILES)):
        write_all(d, j, 0)
    prev = {f: 0 for f in FILES}
    logs = [m.log_path]
    planted = None
    for it, mode in enumerate(ITERATIONS):
        if it:
            m, d = prov.mount("k%d" % it)
            logs.append(m.log_path)
        assert sorted(os.listdir(d)) == sorted(FILES + ["canary"])
        base = (it + 1) * 100000
        reader = subprocess.Popen(
            ["/usr/bin/python3", "-c", READER, d, str(SIZE)] + FILES,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        writer = None
        if mode == "write":
            writer = subprocess.Popen(
                ["/usr/bin/python3", "-c", WRITER, d, str(base), str(SIZE)]
                + FILES, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
        time.sleep(rnd.uniform(0.3, 2.0))
        if writer is not None:
            assert writer.poll() is None, "the writer stopped early"
        m.kill9()                       # SIGKILL, then fusermount3 -uz
        assert not os.path.ismount(m.mnt)
        rout = wait_out(reader)
        if mode == "read":
            # (while a writer writes, readers on the same mount can see
            # its uncommitted data: test_readers_see_only_committed_values)
            assert "BAD" not in rout, "a reader saw a partial value"
        assert "READS" in rout and int(rout.split("READS")[1]) > 0
        attempted = {f: set() for f in FILES}
        committed = {f: None for f in FILES}
        if writer is not None:
            for line in wait_out(writer).splitlines():
                kind, j, i = line.split()[:3]
                f = FILES[int(j)]
                if kind == "A":
                    attempted[f].add(int(i))
                elif kind == "C":
                    committed[f] = int(i)
            assert any(committed.values()), "no write committed before kill"
        # Each value is complete: the previous one, or one that was
        # attempted and not older than the last successful close.
        values = prov.server_values()
        for j, f in enumerate(FILES):
            i = value_number(j, values[f] or b"", SIZE)
            assert i is not None, "%s holds a partial value (%d bytes)" % (
                f, len(values[f] or b""))
            if committed[f] is not None:
                assert i in attempted[f] and i >= committed[f], \
                    "%s: value %d, last commit %d" % (f, i, committed[f])
            else:
                assert i == prev[f] or i in attempted[f], (f, i, prev[f])
            if mode == "read":
                assert i == prev[f]
            prev[f] = i
        if isinstance(prov, Aws):
            assert prov.server_names() == sorted(FILES + ["canary"])
        else:
            # Leftover temp files may stay; keyfs must not show them.
            # Plant one so the check never depends on the kill's timing.
            if planted is None:
                planted = os.path.join(prov.store_dir(),
                                       TMP_PREFIX + "plant%d" % it)
                with open(planted, "wb") as fh:
                    fh.write(os.urandom(100))
                os.chmod(planted, 0o600)
            assert planted in store_tmp_files(prov.store)
            # (local/ keeps its key as .key.json beside the values)
            names = [n for n in os.listdir(prov.store_dir())
                     if not n.startswith(".")]
            assert sorted(names) == sorted(FILES + ["canary"])
    # A final mount lists exactly the files and reads every one.
    m, d = prov.mount("final")
    logs.append(m.log_path)
    assert sorted(os.listdir(d)) == sorted(FILES + ["canary"])
    for j, f in enumerate(FILES):
        assert value_number(j, open(os.path.join(d, f), "rb").read(),
                            SIZE) == prev[f]
    assert open(os.path.join(d, "canary"), "rb").read() == canary.encode()
    if planted:
        name = os.path.basename(planted)
        with pytest.raises(OSError) as e:
            os.stat(os.path.join(d, name))
        assert e.value.errno in (errno.ENOENT, errno.EINVAL)
        for leftover in store_tmp_files(prov.store):
            assert os.path.basename(leftover) not in os.listdir(d)
    m.stop()
    for path in logs:
        with open(path, "rb") as fh:
            assert canary.encode() not in fh.read(), "a value reached a log"


def test_readers_see_only_committed_values(prov):
    """No kill: one writer, one reader, 2 s; every read is a complete
    value (the old one or the new one)."""
    m, d = prov.mount("k")
    prov.prepare(m, d)
    for j in range(len(FILES)):
        write_all(d, j, 0)
    reader = subprocess.Popen(
        ["/usr/bin/python3", "-c", READER, d, str(SIZE)] + FILES,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    writer = subprocess.Popen(
        ["/usr/bin/python3", "-c", WRITER, d, "0", str(SIZE)] + FILES,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(2)
    m.stop()                    # both loops end on ENOTCONN/ENOENT
    rout = wait_out(reader)
    wait_out(writer)
    bad = rout.count("BAD")
    assert bad == 0, "%d torn or uncommitted reads" % bad
