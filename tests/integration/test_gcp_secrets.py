"""gcp/PROJECT/secrets/ (Secret Manager) through a real mount, against the
Secret Manager emulator (and the Cloud KMS emulator's token endpoint) on
loopback, cross-checked with the real gcloud CLI run offline: listing,
writes read by `gcloud secrets versions access`, versions added by gcloud
read through the mount, rm, refused values and ids, views and the
versions xattr, project numbers in ids, an addVersion applied but not
answered, a first value that fails, the calls a cold read costs, and a
workload under 30 % injected faults."""
import base64
import errno
import json
import os
import random
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import (GCP_NUMBER, GCP_PROJECT, grep_tree, make_canary,
                      oserr, read_file as read, write_file as write)
from test_faults import FaultProxy

NOPS = 80            # operations of the fault workload
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"


def sdir(m, *names):
    return m.path("gcp", GCP_PROJECT, "secrets", *names)


def api(emus, method, path, body=None):
    req = urllib.request.Request(
        emus.gsm.url + "/v1/projects/%s/%s" % (GCP_PROJECT, path),
        data=None if body is None else json.dumps(body).encode(),
        method=method, headers={"Authorization": "Bearer " + emus.token,
                                "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def secret_ids(emus):
    return sorted(s["name"].rsplit("/", 1)[1]
                  for s in emus.gsm.admin("GET", "/_emu/secrets"))


def versions(emus, sid):
    for s in emus.gsm.admin("GET", "/_emu/secrets"):
        if s["name"].rsplit("/", 1)[1] == sid:
            return s["versions"]
    return None


def access(emus, sid, ver):
    ans = api(emus, "GET", "secrets/%s/versions/%s:access" % (sid, ver))
    return base64.b64decode(ans["payload"]["data"])


def create(emus, sid, value=None):
    api(emus, "POST", "secrets?secretId=" + sid,
        {"replication": {"automatic": {}}})
    if value is not None:
        api(emus, "POST", "secrets/%s:addVersion" % sid,
            {"payload": {"data": base64.b64encode(value).decode()}})


def faults(emus, cfg):
    emus.gsm.admin("POST", "/_emu/faults", cfg)


@pytest.fixture
def gcloud(gcp_emus, tmp_path):
    assert os.path.exists(GCLOUD), "gcloud CLI not installed"
    tok = tmp_path / "gcloud-token"
    tok.write_text(gcp_emus.token + "\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDSDK_", "GOOGLE_"))}
    env.update({
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-cfg"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_METRICS_ENVIRONMENT": "offline",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER":
            gcp_emus.gsm.url + "/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(tok),
        "CLOUDSDK_CORE_PROJECT": GCP_PROJECT,
    })

    def run(*args, stdin=None):
        r = subprocess.run([GCLOUD, "secrets"] + list(args), env=env,
                           input=stdin, capture_output=True, timeout=90,
                           cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr.decode()[-600:]
        return r.stdout
    return run


def test_list_write_read_rm_with_gcloud(gcp_mount, gcp_emus, gcloud):
    create(gcp_emus, "existing", b"from-api")
    m = gcp_mount(bucket=False, ttl="1")
    proj = os.listdir(m.path("gcp", GCP_PROJECT))
    assert "secrets" in proj and "global" in proj, proj
    assert os.listdir(sdir(m)) == ["existing"]
    assert read(sdir(m, "existing")) == b"from-api"
    # keyfs writes, gcloud reads
    canary = make_canary()
    r = subprocess.run(["sh", "-c", 'echo "$1" > "$2"', "_", canary,
                        sdir(m, "new-secret")], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert gcloud("versions", "access", "latest", "--secret",
                  "new-secret") == (canary + "\n").encode()
    assert [v["version"] for v in versions(gcp_emus, "new-secret")] == [1]
    # gcloud writes, keyfs reads (within ttl)
    c2 = make_canary()
    gcloud("versions", "add", "new-secret", "--data-file=-",
           stdin=c2.encode())
    deadline = time.time() + 5
    while read(sdir(m, "new-secret")) != c2.encode() and \
            time.time() < deadline:
        time.sleep(0.2)
    assert read(sdir(m, "new-secret")) == c2.encode()
    c3 = make_canary()
    gcloud("create", "by-gcloud",
           "--replication-policy=automatic", "--data-file=-",
           stdin=c3.encode())
    deadline = time.time() + 5
    while "by-gcloud" not in os.listdir(sdir(m)) and time.time() < deadline:
        time.sleep(0.2)
    assert sorted(os.listdir(sdir(m))) == ["by-gcloud", "existing",
                                           "new-secret"]
    assert read(sdir(m, "by-gcloud")) == c3.encode()
    # rm deletes the secret
    os.unlink(sdir(m, "new-secret"))
    assert secret_ids(gcp_emus) == ["by-gcloud", "existing"]
    assert oserr(read, sdir(m, "new-secret")) == errno.ENOENT
    assert not grep_tree(m.store, canary.encode())
    assert "KEYFS-CANARY-" not in m.log()


def test_refused_values_and_ids(gcp_mount, gcp_emus):
    m = gcp_mount(bucket=False)
    # empty value: EINVAL, and no secret is created
    assert oserr(write, sdir(m, "empty"), b"") == errno.EINVAL
    for bad in ("bad.id", "a b", "x" * 256, "caf\u00e9"):
        assert oserr(write, sdir(m, bad), b"v") in (
            errno.EINVAL, errno.ENAMETOOLONG), bad
    assert oserr(os.mkdir, sdir(m, "dir")) == errno.EPERM
    # over 64 KiB: EFBIG at the write that crosses it, nothing created
    fd = os.open(sdir(m, "big"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * 65536)
        assert oserr(os.write, fd, b"y") == errno.EFBIG
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert secret_ids(gcp_emus) in ([], ["big"])
    if secret_ids(gcp_emus) == ["big"]:     # the 64 KiB before it landed
        assert access(gcp_emus, "big", "latest") == b"x" * 65536
    assert "empty" not in os.listdir(sdir(m))
    # a 64 KiB value is fine
    write(sdir(m, "max"), b"m" * 65536)
    assert read(sdir(m, "max")) == b"m" * 65536


def test_views_versions_and_id(gcp_mount, gcp_emus):
    m = gcp_mount(bucket=False)
    vals = [make_canary().encode() for _ in range(3)]
    for v in vals:
        write(sdir(m, "api"), v)
    assert [v["version"] for v in versions(gcp_emus, "api")] == [1, 2, 3]
    for i, v in enumerate(vals, 1):
        assert read(sdir(m, "api:%d" % i)) == v
    assert read(sdir(m, "api:latest")) == vals[-1]
    assert read(sdir(m, "api")) == vals[-1]
    assert oserr(read, sdir(m, "api:9")) == errno.ENOENT
    p = sdir(m, "api")
    assert os.getxattr(p, "user.keyfs.id").decode() == \
        "projects/%s/secrets/api" % GCP_NUMBER
    rows = [line.split(" ") for line in
            os.getxattr(p, "user.keyfs.versions").decode().splitlines()]
    assert [r[0] for r in rows] == ["3", "2", "1"]
    assert [r[2] for r in rows] == ["latest", "-", "-"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[1])
               for r in rows), rows
    # disabled / destroyed states show as labels; latest = newest ENABLED
    api(gcp_emus, "POST", "secrets/api/versions/3:disable", {})
    api(gcp_emus, "POST", "secrets/api/versions/1:destroy", {})
    m2 = gcp_mount(name="g2", bucket=False)
    p2 = sdir(m2, "api")
    rows = {r.split(" ")[0]: r.split(" ")[2] for r in
            os.getxattr(p2, "user.keyfs.versions").decode().splitlines()}
    assert rows == {"3": "disabled", "2": "latest", "1": "destroyed"}, rows
    assert "KEYFS-CANARY-" not in m.log() + m2.log()


def test_apply_then_drop_makes_one_version(gcp_mount, gcp_emus):
    m = gcp_mount(bucket=False)
    write(sdir(m, "s"), b"one")
    for i in range(3):
        faults(gcp_emus, {"drop_count": 1,
                          "drop_methods": ["secrets.addVersion"]})
        write(sdir(m, "s"), b"v%d" % i)
        assert read(sdir(m, "s")) == b"v%d" % i
    assert [v["version"] for v in versions(gcp_emus, "s")] == [1, 2, 3, 4]
    assert [access(gcp_emus, "s", n) for n in (2, 3, 4)] == \
        [b"v0", b"v1", b"v2"]
    c = gcp_emus.gsm.admin("GET", "/_emu/counters")
    assert c["responses"]["secrets.addVersion"].get("dropped", 0) == 3


def test_a_failing_first_value_leaves_no_secret(gcp_mount, gcp_emus):
    m = gcp_mount(bucket=False)
    faults(gcp_emus, {"error_status": 400, "error_count": 1,
                      "error_methods": ["secrets.addVersion"]})
    assert oserr(write, sdir(m, "doomed"), b"value") in (errno.EIO,
                                                         errno.EINVAL)
    c = gcp_emus.gsm.admin("GET", "/_emu/counters")["calls"]
    assert c.get("secrets.create") == 1 and c.get("secrets.delete") == 1, c
    assert secret_ids(gcp_emus) == []
    assert "doomed" not in os.listdir(sdir(m))


def test_a_write_right_after_a_failed_create(gcp_mount, gcp_emus):
    """A failed first value leaves no name behind (stat: ENOENT), and a
    write once the kernel has dropped the entry create() gave it (its
    entry timeout, one second) creates it."""
    m = gcp_mount(bucket=False)
    faults(gcp_emus, {"error_status": 400, "error_count": 1,
                      "error_methods": ["secrets.addVersion"]})
    oserr(write, sdir(m, "doomed"), b"value")
    gcp_emus.gsm.admin("DELETE", "/_emu/faults")
    assert not os.path.exists(sdir(m, "doomed"))
    time.sleep(1.2)
    write(sdir(m, "doomed"), b"value")
    assert access(gcp_emus, "doomed", "latest") == b"value"


def test_cold_read_cost(gcp_mount, gcp_emus):
    create(gcp_emus, "cold", b"cold-value")
    m = gcp_mount(bucket=False)
    assert os.listdir(sdir(m)) == ["cold"]
    gcp_emus.reset_counters()
    assert read(sdir(m, "cold")) == b"cold-value"
    c = gcp_emus.counters(gcp_emus.gsm)
    print("\nsecret cold read: %s" % c)
    assert c == {"versions.access": 1}, c
    gcp_emus.reset_counters()
    assert read(sdir(m, "cold")) == b"cold-value"
    assert sum(gcp_emus.counters(gcp_emus.gsm).values()) == 0
    # Secret Manager calls count under "gcp", by their operation names
    st = json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))["api"]
    assert sum(v["calls"] for op, v in st.get("gcp", {}).items()
               if "access" in op) == 1, st


def test_fault_workload_secrets(gcp_mount, gcp_emus):
    """30 % of the Secret Manager calls fail (500, 503, 429, resets before
    and after the service acted, delays): no wrong value, no lost write,
    exactly one version per successful write (the landed check)."""
    names = ["s%d" % i for i in range(6)]
    first = {n: make_canary() for n in names}
    for n in names:
        create(gcp_emus, n, first[n].encode())
    proxy = FaultProxy(gcp_emus.gsm.url)
    try:
        m = gcp_mount(bucket=False, gsm_endpoint=proxy.url + "/", ttl="0",
                      max_stale="0", timeout="20")
        for n in names:
            assert read(sdir(m, n)) == first[n].encode()
        proxy.faults(["*"], 0.30, seed=21)
        rnd = random.Random(17)
        cands = {n: [first[n]] for n in names}
        written = {n: [] for n in names}
        ok_w = failed_w = ok_r = failed_r = wrong = 0
        t0 = time.time()
        for i in range(NOPS):
            n = rnd.choice(names)
            if rnd.random() < 0.6:
                v = make_canary()
                try:
                    write(sdir(m, n), v.encode())
                except OSError as e:
                    assert e.errno == errno.EIO, e
                    failed_w += 1
                    written[n].append((v, False))
                    cands[n].append(v)
                    continue
                ok_w += 1
                written[n].append((v, True))
                cands[n] = [v]
            else:
                try:
                    got = read(sdir(m, n)).decode()
                except OSError as e:
                    assert e.errno == errno.EIO, e
                    failed_r += 1
                    continue
                ok_r += 1
                if got in cands[n]:
                    cands[n] = [got]
                else:
                    wrong += 1
        loop_s = time.time() - t0
        st = proxy.control("GET", "/_proxy/stats")
        proxy.control("POST", "/_proxy/config", {"rules": []})
        final = {n: read(sdir(m, n)).decode() for n in names}
    finally:
        proxy.stop()
    injected = sum(sum(v.get("faults", {}).values())
                   for v in st["ops"].values())
    after = sum(v.get("faults", {}).get("reset_after", 0)
                for v in st["ops"].values())
    made_n = dup = lost = landed_failed = unknown = 0
    for n in names:
        made = [access(gcp_emus, n, v["version"]).decode()
                for v in versions(gcp_emus, n)][1:]
        made_n += len(made)
        mine = [v for v, _ in written[n]]
        unknown += sum(1 for v in made if v not in mine)
        for v, ok in written[n]:
            c = made.count(v)
            dup += max(0, c - 1)
            lost += ok and c == 0
            landed_failed += (not ok) and c > 0
        last = made[-1] if made else first[n]
        wrong += final[n] != last
    print("\nsecrets fault workload (%.0f s): %d operations, %d writes ok, "
          "%d failed (%d of those landed), %d reads ok, %d failed; %d "
          "faults injected (%d answers lost after the service acted); %d "
          "versions made, %d duplicate, %d lost, %d wrong values"
          % (loop_s, NOPS, ok_w, failed_w, landed_failed, ok_r, failed_r,
             injected, after, made_n, dup, lost, wrong + unknown))
    assert injected >= 0.3 * NOPS, injected
    assert after >= 3, after                    # the landed check ran
    assert wrong == 0 and unknown == 0
    assert lost == 0 and dup == 0
    assert made_n == ok_w + landed_failed
    assert ok_w + ok_r >= 0.6 * NOPS, (ok_w, ok_r)
    assert "KEYFS-CANARY-" not in m.log()
