"""The Secret Manager client (cloud/gcp/gsm.c, gsm_value.c) end to end
through build/tools/gsm_tool against tests/emulators/gsm_emulator.py on
loopback: round trips, gcloud reading what the client wrote and the client
reading what gcloud wrote, addVersion's landed check after an applied but
unanswered call, retries of a plain 503, corrupted checksums, a failed
first value leaving no secret, project numbers in answers and etag
conflicts.  Tokens come from the Cloud KMS emulator's token endpoint (a
service-account JWT grant, as keyfs does it), which issues the one token
the Secret Manager emulator accepts.  No value, canary or token may reach
the tool's stderr."""

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulators"))

import gcp_keys  # noqa: E402
import gsm_emulator  # noqa: E402
import kms_emulator  # noqa: E402

TOOLS = os.environ.get("KEYFS_TOOLS") or os.path.join(ROOT, "build", "tools")
TOOL = os.path.join(TOOLS, "gsm_tool")
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"
PROJECT = "keyfs-test"
NUMBER = "480213377105"
TOKEN = "ya29.gsm-client-" + secrets.token_urlsafe(12)
CANARY = "KEYFS-CANARY-" + secrets.token_hex(16)


@pytest.fixture(scope="module", autouse=True)
def tool():
    if not os.environ.get("KEYFS_TOOLS"):
        subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                        "build/tools/gsm_tool"], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    assert os.access(TOOL, os.X_OK), TOOL
    return TOOL


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    """The token endpoint: the KMS emulator, issuing TOKEN to our key."""
    d = tmp_path_factory.mktemp("gsm-creds")
    e = kms_emulator.EmulatorProcess()
    try:
        key = str(d / "sa.json")
        gcp_keys.make_sa_key(key, e.url + "/token", PROJECT)
        e.admin("POST", "/_emu/service-accounts", {"key_file": key})
        e.admin("POST", "/_emu/config", {"issue_token": TOKEN})
        e.key = key
        yield e
    finally:
        e.stop()


@pytest.fixture(scope="module")
def emu_proc():
    e = gsm_emulator.EmulatorProcess(["--static-token", TOKEN, "--project",
                                      "%s=%s" % (PROJECT, NUMBER)])
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def emu(emu_proc):
    emu_proc.admin("POST", "/_emu/reset", {})
    yield emu_proc
    emu_proc.admin("DELETE", "/_emu/faults")


@pytest.fixture
def gsm(emu, tokens, tmp_path):
    """gsm(*args, stdin=b"", ok=True) -> (stdout bytes, stderr text)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env.update(GOOGLE_APPLICATION_CREDENTIALS=tokens.key,
               CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER=emu.url + "/",
               CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud"),
               GCE_METADATA_HOST="127.0.0.1:9")

    def run(*args, stdin=b"", ok=True, secrets_=()):
        r = subprocess.run([TOOL, "-p", PROJECT] + list(args), input=stdin,
                           env=env, capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        for s in (CANARY, TOKEN) + tuple(secrets_):
            assert s not in err, "a secret reached gsm_tool's stderr"
        if len(stdin) >= 8:
            assert stdin not in r.stderr, "the value reached stderr"
        if ok:
            assert r.returncode == 0, "gsm_tool %s: %s" % (args[0], err)
        else:
            assert r.returncode == 1, "gsm_tool %s: rc %d" % (
                args[0], r.returncode)
        return r.stdout, err
    return run


def fields(out):
    return dict(line.split("=", 1) for line in out.decode().splitlines())


def counters(emu):
    return emu.admin("GET", "/_emu/counters")


def stored(emu, sid):
    """[(version, state)] of secret sid in the emulator, or None."""
    for s in emu.admin("GET", "/_emu/secrets"):
        if s["name"].rsplit("/", 1)[1] == sid:
            return [(v["version"], v["state"]) for v in s["versions"]]
    return None


def api(emu, method, path, body=None):
    req = urllib.request.Request(
        emu.url + "/v1/projects/%s/%s" % (PROJECT, path), method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN,
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_round_trip_names_and_etags(gsm, emu):
    value = b"\x00" + CANARY.encode() + b"\xff\n"
    out, _ = gsm("create-with-value", "db", stdin=value)
    assert fields(out) == {"version": "1"}
    out, _ = gsm("access", "db", "latest")
    assert out == value
    # Answers name the project by number; the client takes the last parts.
    info = fields(gsm("get", "db")[0])
    assert info["id"] == "db" and info["project"] == NUMBER
    assert info["replication"] == "automatic" and info["kms_key"] == ""
    assert info["etag"].startswith('"')
    assert fields(gsm("add", "db", stdin=b"second")[0]) == {"version": "2"}
    assert gsm("access", "db", "1")[0] == value
    assert gsm("access", "db", "2")[0] == b"second"
    vers = gsm("versions", "db")[0].decode().splitlines()
    assert [v.split()[:2] for v in vers[:-1]] == [["2", "ENABLED"],
                                                   ["1", "ENABLED"]]
    assert vers[-1] == "next="
    assert int(vers[0].split()[2]) >= int(vers[1].split()[2]) > 1.6e12
    # Pages of one.
    gsm("create", "zz")
    out = gsm("list", "1")[0].decode().splitlines()
    assert out[0].split()[0] == "db" and out[1].startswith("next=")
    tok = out[1][5:]
    out = gsm("list", "1", tok)[0].decode().splitlines()
    assert out[0].split()[0] == "zz" and out[1] == "next="
    # A disabled version: FAILED_PRECONDITION -> STATE.
    assert api(emu, "POST", "secrets/db/versions/2:disable", {})[0] == 200
    _, e = gsm("access", "db", "latest", ok=False)
    assert "STATE" in e and "FAILED_PRECONDITION" in e
    # Delete with a stale etag: refused; with the current one: gone.
    _, e = gsm("delete", "db", '"0"', ok=False)
    assert "STATE" in e and "FAILED_PRECONDITION" in e
    assert stored(emu, "db") is not None
    gsm("delete", "db", info["etag"])
    assert stored(emu, "db") is None
    _, e = gsm("get", "db", ok=False)
    assert "NOTFOUND" in e
    _, e = gsm("create", "bad.id", ok=False)
    assert "INVALID" in e
    assert counters(emu)["calls"]["secrets.create"] == 2  # db, zz


def test_cmek_create(gsm, emu):
    key = "projects/%s/locations/global/keyRings/r/cryptoKeys/k" % PROJECT
    gsm("create-with-value", "cm", key, stdin=b"v")
    info = fields(gsm("get", "cm")[0])
    assert info["kms_key"] == key


@pytest.fixture
def gcloud(emu, tmp_path):
    if not os.path.exists(GCLOUD):
        pytest.fail("gcloud CLI not installed")
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDSDK_", "GOOGLE_"))}
    env.update({
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-cfg"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_METRICS_ENVIRONMENT": "offline",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": emu.url + "/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(tok),
        "CLOUDSDK_CORE_PROJECT": PROJECT,
    })

    def run(*args, stdin=None):
        r = subprocess.run([GCLOUD, "secrets"] + list(args), env=env,
                           input=stdin, capture_output=True, timeout=90,
                           cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr.decode()[-600:]
        return r.stdout
    return run


def test_gcloud_interop(gsm, gcloud, emu):
    mine = b"written by keyfs \x00\x01 " + CANARY.encode()
    gsm("create-with-value", "shared", stdin=mine)
    assert gcloud("versions", "access", "latest", "--secret",
                  "shared") == mine
    theirs = b"written by gcloud\n\xfe"
    gcloud("versions", "add", "shared", "--data-file=-", stdin=theirs)
    assert gsm("access", "shared", "latest")[0] == theirs
    assert gsm("access", "shared", "2")[0] == theirs
    gcloud("create", "from-gcloud", "--data-file=-", stdin=b"g1")
    assert gsm("access", "from-gcloud", "1")[0] == b"g1"


def test_applied_then_dropped_add_makes_one_version(gsm, emu):
    gsm("create-with-value", "d", stdin=b"v1")
    emu.admin("POST", "/_emu/counters/reset")
    emu.admin("POST", "/_emu/faults", {"drop_count": 1,
                                       "drop_methods": ["secrets.addVersion"]})
    out, _ = gsm("add", "d", stdin=CANARY.encode())
    assert fields(out) == {"version": "2"}
    assert stored(emu, "d") == [(1, "ENABLED"), (2, "ENABLED")]
    c = counters(emu)
    assert c["calls"]["secrets.addVersion"] == 1
    assert c["responses"]["secrets.addVersion"] == {"dropped": 1}
    assert c["calls"]["versions.list"] == 1
    assert gsm("access", "d", "latest")[0] == CANARY.encode()
    # Applied, then answered 503: the same check, one version.
    emu.admin("POST", "/_emu/faults", {"drop_count": 1, "drop_status": 503,
                                       "drop_methods": ["secrets.addVersion"]})
    assert fields(gsm("add", "d", stdin=b"v3")[0]) == {"version": "3"}
    assert len(stored(emu, "d")) == 3
    # Dropped before it was applied: the check says so, it is sent again.
    emu.admin("POST", "/_emu/counters/reset")
    emu.admin("POST", "/_emu/faults", {"drop_count": 1, "drop_before": True,
                                       "drop_methods": ["secrets.addVersion"]})
    assert fields(gsm("add", "d", stdin=b"v4")[0]) == {"version": "4"}
    assert len(stored(emu, "d")) == 4
    assert counters(emu)["calls"]["secrets.addVersion"] == 2


def test_plain_503_is_retried(gsm, emu):
    gsm("create-with-value", "r", stdin=b"v1")
    emu.admin("POST", "/_emu/counters/reset")
    emu.admin("POST", "/_emu/faults", {"error_count": 1, "error_status": 503,
                                       "error_methods": ["secrets.addVersion"]})
    assert fields(gsm("add", "r", stdin=b"v2")[0]) == {"version": "2"}
    assert stored(emu, "r") == [(1, "ENABLED"), (2, "ENABLED")]
    c = counters(emu)
    assert c["responses"]["secrets.addVersion"] == {"503": 1, "200": 1}
    emu.admin("POST", "/_emu/faults", {"error_count": 2, "error_status": 503,
                                       "error_methods": ["versions.access"]})
    assert gsm("access", "r", "latest")[0] == b"v2"
    # Always 503: it gives up, and says so.
    emu.admin("POST", "/_emu/faults", {"error_rate": 1.0, "error_status": 503,
                                       "error_methods": ["secrets.get"]})
    _, e = gsm("get", "r", ok=False)
    assert "UNAVAILABLE" in e and "Cloud KMS" not in e


def test_corrupted_crc_is_detected(gsm, emu):
    value = CANARY.encode()
    gsm("create-with-value", "c", stdin=value)
    for fault in ({"corrupt_crc": True}, {"corrupt_data": True}):
        emu.admin("POST", "/_emu/faults", fault)
        out, e = gsm("access", "c", "latest", ok=False)
        assert out == b"" and "INTEGRITY" in e, fault
    emu.admin("POST", "/_emu/counters/reset")
    emu.admin("POST", "/_emu/faults", {"corrupt_crc": True,
                                       "corrupt_count": 1})
    assert gsm("access", "c", "latest")[0] == value
    assert counters(emu)["calls"]["versions.access"] == 2
    # addVersion answered without clientSpecifiedPayloadChecksum: the
    # stored bytes are read back before the version is trusted.
    emu.admin("POST", "/_emu/faults", {"unverified": True})
    assert fields(gsm("add", "c", stdin=b"v2")[0]) == {"version": "2"}
    assert len(stored(emu, "c")) == 2


def test_failed_value_leaves_no_secret(gsm, emu):
    emu.admin("POST", "/_emu/faults", {"error_count": 1,
                                       "error_status": "PERMISSION_DENIED",
                                       "error_methods": ["secrets.addVersion"]})
    _, e = gsm("create-with-value", "f", stdin=CANARY.encode(), ok=False)
    assert "DENIED" in e
    assert stored(emu, "f") is None
    c = counters(emu)["calls"]
    assert c["secrets.create"] == 1 and c["secrets.delete"] == 1
    # Limits: nothing is sent at all.
    emu.admin("POST", "/_emu/counters/reset")
    _, e = gsm("create-with-value", "big", stdin=b"x" * 65537, ok=False)
    assert "TOOBIG" in e
    _, e = gsm("create-with-value", "empty", stdin=b"", ok=False)
    assert "INVALID" in e
    _, e = gsm("add", "nope", stdin=b"", ok=False)
    assert "INVALID" in e
    assert counters(emu)["total"] == 0
    assert stored(emu, "big") is None and stored(emu, "empty") is None
    # The largest value fits.
    gsm("create-with-value", "max", stdin=b"m" * 65536)
    assert gsm("access", "max", "1")[0] == b"m" * 65536
