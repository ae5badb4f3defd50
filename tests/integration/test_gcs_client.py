"""The Cloud Storage client and the berglas format end to end, through
build/tools/gcs_tool, against the project's Cloud Storage and Cloud KMS
emulators on loopback: byte-exact interop with an independent berglas
reader/writer (berglas_ref.py, written from berglas's Go source), berglas's
metadata and Cache-Control, a renamed, swapped or re-keyed object refused,
precondition conflicts, corrupted x-goog-hash answers, a retried upload
that met its own first attempt, list pages, and the calls a cold read
costs.  The tool authenticates with a service-account key through the KMS
emulator's token endpoint; both emulators accept the token it issues."""
import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulators"))
sys.path.insert(0, HERE)

import berglas_ref  # noqa: E402
import gcp_keys  # noqa: E402
import gcs_emulator  # noqa: E402
import kms_emulator  # noqa: E402

BUILD = (os.path.dirname(os.environ["KEYFS_BIN"]) if os.environ.get("KEYFS_BIN")
         else os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "tools", "gcs_tool")
PROJECT = "keyfs-test"
BUCKET = "fleet-bucket"
TOKEN = "ya29.gcs-test-token-0123456789"
KEY = ("projects/%s/locations/global/keyRings/fleet/cryptoKeys/api"
       % PROJECT)
KEY2 = ("projects/%s/locations/global/keyRings/fleet/cryptoKeys/other"
        % PROJECT)


@pytest.fixture(scope="module", autouse=True)
def tool():
    if not os.environ.get("KEYFS_BIN"):
        subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                        "build/tools/gcs_tool"], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    assert os.access(TOOL, os.X_OK), TOOL
    return TOOL


@pytest.fixture(scope="module")
def emus(tmp_path_factory):
    d = tmp_path_factory.mktemp("gcs")
    kms = kms_emulator.EmulatorProcess(["--static-token", TOKEN])
    gcs = gcs_emulator.EmulatorProcess(["--bucket", BUCKET,
                                        "--versioned-bucket", "fleet-vers",
                                        "--static-token", TOKEN])
    try:
        sa = str(d / "sa.json")
        gcp_keys.make_sa_key(sa, kms.url + "/token", PROJECT)
        kms.admin("POST", "/_emu/service-accounts", {"key_file": sa})
        kms.admin("POST", "/_emu/config", {"issue_token": TOKEN})
        parent = "projects/%s/locations/global" % PROJECT
        api(kms.url + "/v1/%s/keyRings?keyRingId=fleet" % parent, {})
        for k in ("api", "other"):
            api(kms.url + "/v1/%s/keyRings/fleet/cryptoKeys?cryptoKeyId=%s"
                % (parent, k), {"purpose": "ENCRYPT_DECRYPT"})
        cfg = d / "gcloud"
        cfg.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_",
                                    "GCE_"))}
        env.update(GOOGLE_APPLICATION_CREDENTIALS=sa,
                   CLOUDSDK_CONFIG=str(cfg), GCE_METADATA_HOST="127.0.0.1:9",
                   CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=gcs.url + "/",
                   CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=kms.url + "/")
        yield kms, gcs, env
    finally:
        gcs.stop()
        kms.stop()


@pytest.fixture
def env(emus):
    kms, gcs, e = emus
    for x in (kms, gcs):
        x.admin("DELETE", "/_emu/faults")
        x.admin("POST", "/_emu/counters/reset", {})
    return e


def api(url, body, method="POST"):
    req = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(),
        method=method, headers={"Authorization": "Bearer " + TOKEN,
                                "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def gt(env, *args, value=None):
    return subprocess.run([TOOL] + list(args), env=env, input=value,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def stat(env, obj, bucket=BUCKET):
    r = gt(env, "stat", bucket, obj)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.decode().splitlines():
        k, v = line.split("=", 1)
        out[k] = v
    return out


def media(gcs, obj, bucket=BUCKET):
    url = "%s/storage/v1/b/%s/o/%s?alt=media" % (
        gcs.url, bucket, urllib.parse.quote(obj, safe=""))
    req = urllib.request.Request(url, headers={
        "Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def raw_copy(env, gcs, src, dst, body=None, meta=None):
    """Put src's body (or body) at dst with src's metadata (or meta)."""
    s = stat(env, src)
    md = meta or {k[5:]: v for k, v in s.items() if k.startswith("meta.")}
    data = body if body is not None else media(gcs, src)
    url = "%s/upload/storage/v1/b/%s/o?uploadType=multipart" % (
        gcs.url, BUCKET)
    bnd = "xx-boundary-xx"
    mp = ("--%s\r\nContent-Type: application/json\r\n\r\n%s\r\n--%s\r\n"
          "Content-Type: text/plain\r\n\r\n" % (
              bnd, json.dumps({"name": dst, "metadata": md,
                               "cacheControl": s["cache_control"]}), bnd)
          ).encode() + data + ("\r\n--%s--\r\n" % bnd).encode()
    req = urllib.request.Request(url, data=mp, method="POST", headers={
        "Authorization": "Bearer " + TOKEN,
        "Content-Type": "multipart/related; boundary=" + bnd})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def ref_read(emus, obj, gen=0):
    kms, gcs, _ = emus
    return berglas_ref.read(gcs.url, kms.url, TOKEN, BUCKET, obj, gen)


def ref_write(emus, obj, value, key=KEY, gen=0, metagen=0):
    kms, gcs, _ = emus
    return berglas_ref.write(gcs.url, kms.url, TOKEN, BUCKET, obj, key,
                             value, gen, metagen)


VALUES = [b"sk-test-123", b"", b"\x00\x01binary\xff\xfe" * 3,
          bytes(range(256)) * 400, "pässwörd ☃".encode()]


def test_tool_writes_berglas_reads(env, emus):
    _, gcs, _ = emus
    for i, v in enumerate(VALUES):
        obj = "ml/keys/api:v%d#x %%2F" % i
        r = gt(env, "put", BUCKET, obj, KEY, value=v)
        assert r.returncode == 0, r.stderr
        assert ref_read(emus, obj) == v
        s = stat(env, obj)
        assert s["meta.berglas-secret"] == "1"
        assert s["meta.berglas-kms-key"] == KEY
        assert s["cache_control"] == berglas_ref.CACHE_CONTROL
        assert s["content_type"] == berglas_ref.SNIFFED_TYPE
        assert "generation=" + s["generation"] in r.stdout.decode()
        body = media(gcs, obj)
        assert re.fullmatch(rb"[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*", body)
        sealed = base64.b64decode(body.split(b":")[1])
        assert len(sealed) == 12 + len(v) + 16
        assert v[:8] not in body or not v
    # A key name with a version: the metadata keeps the key (berglas).
    r = gt(env, "put", BUCKET, "versioned", KEY + "/cryptoKeyVersions/1",
           value=b"v")
    assert r.returncode == 0, r.stderr
    assert stat(env, "versioned")["meta.berglas-kms-key"] == KEY
    assert ref_read(emus, "versioned") == b"v"


def test_berglas_writes_tool_reads(env, emus):
    for i, v in enumerate(VALUES):
        obj = "from-ref/%d" % i
        ref_write(emus, obj, v)
        r = gt(env, "get", BUCKET, obj, KEY)
        assert r.returncode == 0, r.stderr
        assert r.stdout == v
    ref_write(emus, "from-ref/ver", b"x", key=KEY + "/cryptoKeyVersions/1")
    assert gt(env, "get", BUCKET, "from-ref/ver", KEY).stdout == b"x"
    # The value is bound to its key: read under another key -> refused.
    r = gt(env, "get", BUCKET, "from-ref/0", KEY2)
    assert r.returncode == 1 and b"INTEGRITY" in r.stderr


def test_renamed_swapped_or_rekeyed_object_refused(env, emus):
    kms, gcs, _ = emus
    assert gt(env, "put", BUCKET, "a/one", KEY, value=b"one").returncode == 0
    assert gt(env, "put", BUCKET, "a/two", KEY, value=b"two").returncode == 0
    one, two = media(gcs, "a/one"), media(gcs, "a/two")
    raw_copy(env, gcs, "a/one", "a/copy")
    r = gt(env, "get", BUCKET, "a/copy", KEY)
    assert r.returncode == 1 and b"INTEGRITY" in r.stderr, r.stderr
    assert b"one" not in r.stdout
    # Swap the bodies of two names: both refused.
    raw_copy(env, gcs, "a/one", "a/one", body=two)
    raw_copy(env, gcs, "a/two", "a/two", body=one)
    for o in ("a/one", "a/two"):
        r = gt(env, "get", BUCKET, o, KEY)
        assert r.returncode == 1 and b"INTEGRITY" in r.stderr
    # berglas-kms-key naming another key: refused before any KMS call.
    assert gt(env, "put", BUCKET, "a/k", KEY, value=b"k").returncode == 0
    raw_copy(env, gcs, "a/k", "a/k", meta={"berglas-secret": "1",
                                           "berglas-kms-key": KEY2})
    kms.admin("POST", "/_emu/counters/reset", {})
    r = gt(env, "get", BUCKET, "a/k", KEY)
    assert r.returncode == 1 and b"INTEGRITY" in r.stderr
    assert "cryptoKeys.decrypt" not in kms.admin("GET",
                                                 "/_emu/counters")["calls"]
    # A body that does not parse.
    raw_copy(env, gcs, "a/k", "a/k", body=b"not-a-berglas-body")
    r = gt(env, "get", BUCKET, "a/k", KEY2)
    assert r.returncode == 1 and b"INTEGRITY" in r.stderr


def test_precondition_conflicts(env, emus):
    assert gt(env, "put", BUCKET, "p/x", KEY, value=b"1").returncode == 0
    s = stat(env, "p/x")
    # Create over an existing object: a conflict.
    r = gt(env, "put", BUCKET, "p/x", KEY, value=b"2")
    assert r.returncode == 1 and b"STATE conflict" in r.stderr, r.stderr
    # Someone else (berglas) updates between our stat and our write.
    ref_write(emus, "p/x", b"theirs", gen=int(s["generation"]),
              metagen=int(s["metageneration"]))
    r = gt(env, "put", BUCKET, "p/x", KEY, "-g", s["generation"], "-m",
           s["metageneration"], value=b"mine")
    assert r.returncode == 1 and b"STATE conflict" in r.stderr, r.stderr
    assert ref_read(emus, "p/x") == b"theirs"
    # With the current generation the update lands.
    s2 = stat(env, "p/x")
    r = gt(env, "put", BUCKET, "p/x", KEY, "-g", s2["generation"], "-m",
           s2["metageneration"], value=b"mine")
    assert r.returncode == 0, r.stderr
    assert ref_read(emus, "p/x") == b"mine"
    # berglas refuses a stale update from its side too.
    with pytest.raises(urllib.error.HTTPError) as e:
        ref_write(emus, "p/x", b"late", gen=int(s2["generation"]),
                  metagen=int(s2["metageneration"]))
    assert e.value.code == 412
    # Delete with a stale generation: a conflict; with the live one: gone.
    r = gt(env, "rm", BUCKET, "p/x", "-g", s2["generation"])
    assert r.returncode == 1 and b"conflict" in r.stderr
    assert gt(env, "rm", BUCKET, "p/x", "-g",
              stat(env, "p/x")["generation"]).returncode == 0
    r = gt(env, "stat", BUCKET, "p/x")
    assert r.returncode == 1 and b"NOTFOUND" in r.stderr


def test_corrupted_answers_detected(env, emus):
    _, gcs, _ = emus
    assert gt(env, "put", BUCKET, "c/x", KEY, value=b"val").returncode == 0
    # One corrupted x-goog-hash: discarded, read again, value right.
    gcs.admin("POST", "/_emu/faults", {"corrupt_hash_header": True,
                                       "corrupt_count": 1})
    r = gt(env, "get", BUCKET, "c/x", KEY)
    assert r.returncode == 0 and r.stdout == b"val", r.stderr
    assert gcs.admin("GET", "/_emu/counters")["calls"]["objects.media"] == 2
    # Always corrupted: an integrity error, no value.
    for fault in ("corrupt_hash_header", "corrupt_media",
                  "corrupt_resource_hash"):
        gcs.admin("POST", "/_emu/faults", {fault: True})
        r = gt(env, "get", BUCKET, "c/x", KEY)
        assert r.returncode == 1 and b"INTEGRITY" in r.stderr, fault
        assert r.stdout == b""
        r = gt(env, "raw-get", BUCKET, "c/x")
        if fault != "corrupt_resource_hash":
            assert r.returncode == 1 and b"INTEGRITY" in r.stderr, fault
    gcs.admin("DELETE", "/_emu/faults")
    assert gt(env, "get", BUCKET, "c/x", KEY).stdout == b"val"


def test_cold_read_costs_three_calls(env, emus):
    kms, gcs, _ = emus
    assert gt(env, "put", BUCKET, "n/x", KEY, value=b"v").returncode == 0
    gcs.admin("POST", "/_emu/counters/reset", {})
    kms.admin("POST", "/_emu/counters/reset", {})
    assert gt(env, "get", BUCKET, "n/x", KEY).stdout == b"v"
    g = gcs.admin("GET", "/_emu/counters")["calls"]
    k = kms.admin("GET", "/_emu/counters")["calls"]
    assert g == {"objects.get": 1, "objects.media": 1}, g
    k.pop("oauth.token", None)  # the tool's one token fetch
    assert k == {"cryptoKeys.decrypt": 1}, k


def test_retried_upload_that_landed(env, emus):
    _, gcs, _ = emus
    # The create is applied, then its answer lost: the retry meets 412,
    # finds its own bytes and reports success.
    gcs.admin("POST", "/_emu/faults", {"drop_count": 1,
                                       "drop_methods": ["objects.insert"]})
    r = gt(env, "put", BUCKET, "r/x", KEY, value=b"once")
    assert r.returncode == 0, r.stderr
    c = gcs.admin("GET", "/_emu/counters")
    assert c["calls"]["objects.insert"] == 2
    assert c["responses"]["objects.insert"].get("412") == 1
    assert gt(env, "get", BUCKET, "r/x", KEY).stdout == b"once"
    # Another writer's object in between is still a conflict.
    gcs.admin("POST", "/_emu/faults", {"drop_count": 1,
                                       "drop_methods": ["objects.insert"]})
    r = gt(env, "raw-put", BUCKET, "r/y", "-g", "0", value=b"abc")
    assert r.returncode == 0, r.stderr
    r = gt(env, "raw-put", BUCKET, "r/y", "-g", "0", value=b"abd")
    assert r.returncode == 1 and b"conflict" in r.stderr
    # 503s are retried.
    gcs.admin("POST", "/_emu/faults", {"error_status": 503,
                                       "error_count": 2})
    assert gt(env, "get", BUCKET, "r/x", KEY).stdout == b"once"


def test_list_pages_prefixes_versions(env, emus):
    for o in ("l/a", "l/b", "l/c", "l/d/e", "l/d/f", "other"):
        assert gt(env, "put", BUCKET, o, KEY, value=b"x").returncode == 0
    r = gt(env, "list", BUCKET, "l/", "-d")
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "prefix l/d/"
    assert [x.split()[1] for x in lines[1:]] == ["l/a", "l/b", "l/c"]
    assert all(x.endswith("live berglas") for x in lines[1:])
    seen, page = [], None
    for _ in range(10):
        args = ["list", BUCKET, "l/", "-n", "2"] + (["-p", page] if page
                                                    else [])
        out = gt(env, *args).stdout.decode().splitlines()
        page = None
        for x in out:
            if x.startswith("next "):
                page = x[5:]
            else:
                seen.append(x.split()[1])
        if not page:
            break
    assert seen == ["l/a", "l/b", "l/c", "l/d/e", "l/d/f"]
    # Versions: noncurrent generations in a versioned bucket.
    env2 = dict(env)
    for v in (b"1", b"2"):
        assert gt(env2, "put", "fleet-vers", "v/x", KEY, "-g", "-1",
                  value=v).returncode == 0
    out = gt(env, "list", "fleet-vers", "v/", "-v").stdout.decode()
    assert out.count("v/x") == 2 and "noncurrent" in out
    gens = [x.split()[2] for x in out.splitlines()]
    r = gt(env, "get", "fleet-vers", "v/x", KEY, "-g", gens[0])
    assert r.returncode == 0 and r.stdout in (b"1", b"2")


def test_no_secret_in_errors(env, emus):
    canary = b"canary-gcs-3b1f9e"
    assert gt(env, "put", BUCKET, "s/x", KEY, value=canary).returncode == 0
    r = gt(env, "put", BUCKET, "s/x", KEY, value=canary)
    assert r.returncode == 1 and canary not in r.stderr
    _, gcs, _ = emus
    gcs.admin("POST", "/_emu/faults", {"corrupt_media": True})
    r = gt(env, "get", BUCKET, "s/x", KEY)
    assert canary not in r.stderr + r.stdout
    assert TOKEN.encode() not in r.stderr
