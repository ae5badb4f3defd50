"""Cloud faults: keyfs behind tests/emulators/fault_proxy.py.
Under 30 % injected faults a mixed workload ends with no wrong value and
no lost write; with the provider down, cached values are served stale up
to max_stale and uncached reads fail with EIO within the deadline."""
import errno
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "emulators"))
import gcp_keys  # noqa: E402
from kms_emulator import EmulatorProcess  # noqa: E402

PROJECT = "keyfs-faults"
PROXY = os.path.join(ROOT, "tests", "emulators", "fault_proxy.py")

FAULT_MIX = ["500", "503", "throttle", "reset_before", "reset_after", "delay"]


class FaultProxy:
    def __init__(self, upstream):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", PROXY, "--upstream", upstream, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "PORT", line
        self.url = "http://127.0.0.1:%s" % line[1]

    def control(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as r:
            data = r.read()
        return json.loads(data) if data else {}

    def faults(self, ops, rate, seed=7, kinds=FAULT_MIX):
        """Spread `rate` over the fault kinds for the given operations."""
        rules = []
        left = 1.0
        for i, kind in enumerate(kinds):
            # P(rule i fires | earlier ones did not) so the total is rate.
            share = rate / len(kinds)
            p = share / (1 - (rate / len(kinds)) * i)
            for op in ops:
                rules.append({"op": op, "fault": kind, "rate": p,
                              "delay_ms": 100})
        self.control("POST", "/_proxy/config", {"seed": seed, "rules": rules})
        return left

    def down(self):
        self.control("POST", "/_proxy/config",
                     {"seed": 1, "rules": [{"op": "*", "fault": "reset_before"}]})

    def up(self):
        self.control("POST", "/_proxy/config", {"seed": 1, "rules": []})

    def stats(self):
        return self.control("GET", "/_proxy/stats")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def kms(tmp_path):
    emu = EmulatorProcess()
    proxy = FaultProxy(emu.url)
    key = str(tmp_path / "sa.json")
    gcp_keys.make_sa_key(key, emu.url + "/token", PROJECT)
    emu.admin("POST", "/_emu/service-accounts", {"key_file": key})
    try:
        yield emu, proxy, key
    finally:
        proxy.stop()
        emu.stop()


def gcp_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_"))}
    env["CLOUDSDK_CONFIG"] = str(tmp_path)
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"
    return env


def gcp_mount(keyfs, tmp_path, kms, name, **opts):
    emu, proxy, key = kms
    o = dict(providers="gcp", gcp_endpoint=proxy.url + "/",
             gcp_credentials=key, gcp_project=PROJECT, timeout="10")
    o.update(opts)
    return keyfs(name=name, env=gcp_env(tmp_path), **o)


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def workload(paths, n_ops, seed):
    """Mixed reads and writes; returns (ok_ops, failed_ops, wrong, lost)."""
    rnd = random.Random(seed)
    truth = {}
    for p in paths:
        truth[p] = read(p)
    ok = failed = wrong = lost = 0
    for i in range(n_ops):
        p = rnd.choice(paths)
        if rnd.random() < 0.5:
            value = b"v%d-" % i + os.urandom(rnd.randint(1, 64))
            try:
                write(p, value)
            except OSError as e:
                assert e.errno in (errno.EIO, errno.EAGAIN, errno.EBUSY), e
                failed += 1
                # A failed commit may or may not have reached the server
                # (a lost response): learn which from a clean read later.
                truth[p] = None
                continue
            ok += 1
            truth[p] = value
        else:
            try:
                got = read(p)
            except OSError as e:
                assert e.errno == errno.EIO, e
                failed += 1
                continue
            ok += 1
            if truth[p] is None:
                truth[p] = got          # resolved by the server
            elif got != truth[p]:
                # an older value after a successful write = lost write
                wrong += 1
                lost += 1
    return ok, failed, wrong, lost, truth


@pytest.fixture
def moto():
    import shutil
    from conftest import free_port
    exe = shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    proxy = FaultProxy(url)
    try:
        yield url, proxy
    finally:
        proxy.stop()
        proc.terminate()
        proc.wait(timeout=10)


VERSIONS = r'''
import boto3, json, sys
c = boto3.client("secretsmanager", endpoint_url=sys.argv[1],
                 region_name="us-west-2", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
out = {}
for name in sys.argv[2:]:
    ids, tok = [], None
    while True:
        kw = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 100}
        if tok:
            kw["NextToken"] = tok
        r = c.list_secret_version_ids(**kw)
        ids += [v["VersionId"] for v in r["Versions"]]
        tok = r.get("NextToken")
        if not tok:
            break
    out[name] = len(ids)
print(json.dumps(out))
'''


def versions(moto_url, names):
    from conftest import PYENV_PYTHON
    r = subprocess.run([PYENV_PYTHON, "-c", VERSIONS, moto_url] + names,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    return json.loads(r.stdout)


def test_workload_under_30_percent_faults_aws_and_gcp(keyfs, tmp_path, kms,
                                                      moto):
    """500 mixed reads and writes over aws/ and gcp/ with 30 % of their
    API calls failing (500, 503, throttling, resets before and after the
    server acted, delays): no wrong value, no lost write, and on the
    Secrets Manager side exactly one new version per successful write."""
    emu, kproxy, key = kms
    moto_url, aproxy = moto
    env = gcp_env(tmp_path)
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    m = keyfs(name="w", env=env, providers="aws,gcp", ttl="0",
              max_stale="0", timeout="20", aws_region="us-west-2",
              aws_endpoint=aproxy.url, gcp_endpoint=kproxy.url + "/",
              gcp_credentials=key, gcp_project=PROJECT)
    k = m.path("gcp", PROJECT, "global", "ring", "key")
    os.makedirs(k)
    names = ["load%d" % i for i in range(8)]
    paths = [os.path.join(k, "v%d" % i) for i in range(8)] + \
        [m.path("aws", "us-west-2", n) for n in names]
    for p in paths:
        write(p, b"initial " + p.encode())
    before = versions(moto_url, names)
    ops = ["cryptoKeys.encrypt", "cryptoKeys.decrypt", "GetSecretValue",
           "PutSecretValue", "DescribeSecret", "ListSecrets"]
    kproxy.faults(ops, 0.30, seed=5)
    aproxy.faults(ops, 0.30, seed=6)
    rnd = random.Random(11)
    truth = {p: read(p) for p in paths}
    writes_ok = {n: 0 for n in names}
    writes_failed = {n: 0 for n in names}
    ok = failed = wrong = 0
    for i in range(500):
        p = rnd.choice(paths)
        name = os.path.basename(p)
        if rnd.random() < 0.5:
            value = b"v%d-" % i + os.urandom(rnd.randint(1, 64))
            try:
                write(p, value)
            except OSError as e:
                assert e.errno in (errno.EIO, errno.EBUSY), e
                failed += 1
                truth[p] = None            # the server may have it or not
                if name in writes_failed:
                    writes_failed[name] += 1
                continue
            ok += 1
            truth[p] = value
            if name in writes_ok:
                writes_ok[name] += 1
        else:
            try:
                got = read(p)
            except OSError as e:
                assert e.errno == errno.EIO, e
                failed += 1
                continue
            ok += 1
            if truth[p] is None:
                truth[p] = got
            elif got != truth[p]:
                wrong += 1
    injected = 0
    for proxy in (kproxy, aproxy):
        st = proxy.stats()
        injected += sum(sum(v.get("faults", {}).values())
                        for v in st["ops"].values())
        proxy.up()
    print("\nfault workload: %d operations, %d ok, %d failed cleanly, "
          "%d faults injected, %d wrong values" % (500, ok, failed, injected,
                                                  wrong))
    assert injected >= 150, injected     # faults really happened
    assert wrong == 0                    # no wrong value, no lost write
    assert ok >= 450, (ok, failed)       # retries absorb nearly all faults
    for p in paths:                      # durable once the faults stop
        if truth[p] is not None:
            assert read(p) == truth[p]
    after = versions(moto_url, names)
    for n in names:
        made = after[n] - before[n]
        assert writes_ok[n] <= made <= writes_ok[n] + writes_failed[n], \
            (n, made, writes_ok[n], writes_failed[n])


def test_gcp_down_serves_stale_then_fails(keyfs, tmp_path, kms):
    emu, proxy, key = kms
    w = gcp_mount(keyfs, tmp_path, kms, "writer")
    k = w.path("gcp", PROJECT, "global", "ring", "key")
    os.makedirs(k)
    write(os.path.join(k, "cached"), b"cached value")
    write(os.path.join(k, "cold"), b"never read")
    w.stop()
    m = gcp_mount(keyfs, tmp_path, kms, "reader", store=w.store, ttl="1",
                  max_stale="6", timeout="3")
    k = m.path("gcp", PROJECT, "global", "ring", "key")
    assert read(os.path.join(k, "cached")) == b"cached value"
    fetched = time.time()
    proxy.down()
    time.sleep(1.3)                                  # past the ttl
    assert read(os.path.join(k, "cached")) == b"cached value"   # stale
    t0 = time.time()
    with pytest.raises(OSError) as e:
        read(os.path.join(k, "cold"))
    assert e.value.errno == errno.EIO
    assert time.time() - t0 < 3 + 3                  # within the deadline
    time.sleep(max(0, fetched + 1 + 6 + 0.5 - time.time()))
    with pytest.raises(OSError) as e:                # past max_stale
        read(os.path.join(k, "cached"))
    assert e.value.errno == errno.EIO
    assert "serving the value fetched" in m.log()
    proxy.up()
    assert read(os.path.join(k, "cached")) == b"cached value"
    assert read(os.path.join(k, "cold")) == b"never read"
