"""The gcp/ provider (Google Cloud KMS) through a real mount, against the
project's Cloud KMS emulator (tests/emulators/kms_emulator.py) on a loopback
port: key rings, keys, values, rotation, the three credential sources,
gcloud interoperability of the ciphertext store, integrity failures and
error mapping.  Nothing is downloaded; gcloud runs fully offline."""
import base64
import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

from conftest import (
    grep_tree, make_canary, run, write_file as write, read_file as read,
    oserr)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulators"))

import gcp_keys  # noqa: E402
from kms_emulator import EmulatorProcess  # noqa: E402

PROJECT = "keyfs-test"
# Every mount gets a short operation deadline so no test can hang on it.
TIMEOUT = "15"


def clean_env(tmp_path, **extra):
    """The environment of a mount: no ambient Google configuration."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_"))}
    cfg = tmp_path / "gcloud-empty"
    cfg.mkdir(exist_ok=True)
    env["CLOUDSDK_CONFIG"] = str(cfg)
    # Never let a test reach a real metadata server (169.254.169.254):
    # a closed loopback port stands in for "not on GCE".
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"
    env.update(extra)
    return env


@pytest.fixture
def emu():
    e = EmulatorProcess()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def sakey(emu, tmp_path):
    path = str(tmp_path / "sa.json")
    gcp_keys.make_sa_key(path, emu.url + "/token", PROJECT)
    emu.admin("POST", "/_emu/service-accounts", {"key_file": path})
    return path


@pytest.fixture
def gcpfs(keyfs, emu, sakey, tmp_path):
    """factory(**opts) -> Mount of gcp/ with the service-account key."""
    def start(name="g", env=None, args=(), **opts):
        o = dict(providers="gcp", gcp_endpoint=emu.url + "/",
                 gcp_credentials=sakey, gcp_project=PROJECT, timeout=TIMEOUT)
        o.update(opts)
        return keyfs(name=name, env=env or clean_env(tmp_path), args=args,
                     **o)
    return start


def counters(emu):
    return emu.admin("GET", "/_emu/counters")["calls"]


def key_name(ring, key, location="global"):
    return "projects/%s/locations/%s/keyRings/%s/cryptoKeys/%s" % (
        PROJECT, location, ring, key)


def make_key(m, ring="ring", key="key"):
    os.mkdir(m.path("gcp", PROJECT, "global", ring))
    os.mkdir(m.path("gcp", PROJECT, "global", ring, key))
    return m.path("gcp", PROJECT, "global", ring, key)


def store_file(m, *parts):
    return os.path.join(m.store, "gcp", PROJECT, "global", *parts)


def test_seed_flow(gcpfs, emu):
    m = gcpfs(gcp_rotation_period="100000s")
    assert os.listdir(m.path("gcp")) == [PROJECT]
    assert "global" in os.listdir(m.path("gcp", PROJECT))
    os.mkdir(m.path("gcp", PROJECT, "global", "ml-keys"))
    assert os.listdir(m.path("gcp", PROJECT, "global")) == ["ml-keys"]
    os.mkdir(m.path("gcp", PROJECT, "global", "ml-keys", "api"))
    assert os.listdir(m.path("gcp", PROJECT, "global", "ml-keys")) == ["api"]
    k = m.path("gcp", PROJECT, "global", "ml-keys", "api")
    assert run(["sh", "-c", "echo -n sk-test-123 > " + k + "/openai"]
               ).returncode == 0
    assert run(["cat", k + "/openai"]).stdout == "sk-test-123"
    assert os.listdir(k) == ["openai"]
    # Store: ciphertext, 0600 file in 0700 directories.
    sf = store_file(m, "ml-keys", "api", "openai")
    assert os.stat(sf).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(sf)).st_mode & 0o777 == 0o700
    assert b"sk-test-123" not in open(sf, "rb").read()
    # The key in KMS: ENCRYPT_DECRYPT with the requested schedule.
    out = run(["getfattr", "-d", "-m", "user.keyfs", k]).stdout
    assert 'user.keyfs.id="%s"' % key_name("ml-keys", "api") in out
    assert 'user.keyfs.rotation_period="100000s"' in out
    assert 'user.keyfs.primary="%s/cryptoKeyVersions/1"' % key_name(
        "ml-keys", "api") in out
    ring_id = run(["getfattr", "--only-values", "-n", "user.keyfs.id",
                   os.path.dirname(k)]).stdout
    assert ring_id == "projects/%s/locations/global/keyRings/ml-keys" % PROJECT
    # Unmount, mount again, read again.
    m.stop()
    m2 = gcpfs(name="g2", store=m.store)
    assert read(m2.path("gcp", PROJECT, "global", "ml-keys", "api",
                        "openai")) == b"sk-test-123"
    # mkdir of an existing ring: EEXIST.
    assert oserr(os.mkdir, m2.path("gcp", PROJECT, "global", "ml-keys")) \
        == errno.EEXIST


def gcloud_env(tmp_path, emu, token):
    cfg = tmp_path / "gcloud-cfg"
    cfg.mkdir(exist_ok=True)
    tok = tmp_path / "token"
    tok.write_text(token)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(CLOUDSDK_CONFIG=str(cfg), CLOUDSDK_CORE_DISABLE_PROMPTS="1",
               CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
               CLOUDSDK_METRICS_ENVIRONMENT="offline",
               CLOUDSDK_CORE_CHECK_GCE_METADATA="false",
               CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
               CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=emu.url + "/",
               CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(tok))
    return env


@pytest.mark.skipif(not shutil.which("gcloud"), reason="gcloud not installed")
def test_gcloud_interop(gcpfs, emu, tmp_path):
    token = "static-" + os.urandom(8).hex()
    emu.admin("POST", "/_emu/static-tokens", {"token": token})
    env = gcloud_env(tmp_path, emu, token)
    m = gcpfs()
    k = make_key(m)
    write(os.path.join(k, "from-keyfs"), b"made by keyfs \x00\xff")
    kms = ["--key", "key", "--keyring", "ring", "--location", "global",
           "--project", PROJECT]
    out = tmp_path / "plain.out"
    r = run(["gcloud", "kms", "decrypt", "--ciphertext-file",
             store_file(m, "ring", "key", "from-keyfs"),
             "--plaintext-file", str(out)] + kms, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"made by keyfs \x00\xff"
    # gcloud encrypts, the file is dropped into the store, keyfs reads it.
    pt = tmp_path / "plain.in"
    pt.write_bytes(b"made by gcloud")
    r = run(["gcloud", "kms", "encrypt", "--plaintext-file", str(pt),
             "--ciphertext-file", store_file(m, "ring", "key", "from-gcloud")]
            + kms, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "from-gcloud" in os.listdir(k)
    assert read(os.path.join(k, "from-gcloud")) == b"made by gcloud"


def ct_version(path):
    """Version id in the emulator's ciphertext header (see its docs)."""
    return struct.unpack(">I", open(path, "rb").read()[20:24])[0]


def test_rotation_via_xattr(gcpfs, emu):
    m = gcpfs(ttl="0", max_stale="0")   # reads really decrypt via KMS
    k = make_key(m)
    write(os.path.join(k, "old"), b"old value")
    assert ct_version(store_file(m, "ring", "key", "old")) == 1
    assert run(["setfattr", "-n", "user.keyfs.rotate", "-v", "1", k]
               ).returncode == 0
    primary = run(["getfattr", "--only-values", "-n", "user.keyfs.primary",
                   k]).stdout
    assert primary == key_name("ring", "key") + "/cryptoKeyVersions/2"
    assert counters(emu).get("cryptoKeyVersions.create") == 1
    write(os.path.join(k, "new"), b"new value")
    assert ct_version(store_file(m, "ring", "key", "new")) == 2
    before = counters(emu).get("cryptoKeys.decrypt", 0)
    assert read(os.path.join(k, "old")) == b"old value"
    assert read(os.path.join(k, "new")) == b"new value"
    assert counters(emu).get("cryptoKeys.decrypt", 0) >= before + 2
    # Settable rotation period, and back to version 1 as primary.
    assert run(["setfattr", "-n", "user.keyfs.rotation_period", "-v",
                "200000s", k]).returncode == 0
    assert run(["getfattr", "--only-values", "-n",
                "user.keyfs.rotation_period", k]).stdout == "200000s"
    r = run(["setfattr", "-n", "user.keyfs.rotation_period", "-v", "5s", k])
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert run(["setfattr", "-n", "user.keyfs.primary", "-v", "1", k]
               ).returncode == 0
    write(os.path.join(k, "newer"), b"v1 again")
    assert ct_version(store_file(m, "ring", "key", "newer")) == 1


def round_trip(m):
    k = make_key(m)
    write(os.path.join(k, "v"), b"value")
    assert read(os.path.join(k, "v")) == b"value"


def test_auth_authorized_user(keyfs, emu, tmp_path):
    emu.admin("POST", "/_emu/authorized-users",
              {"client_id": "cid.apps.example", "client_secret": "cs-x",
               "refresh_token": "1//rt-test"})
    au = tmp_path / "adc.json"
    au.write_text(json.dumps({
        "type": "authorized_user", "client_id": "cid.apps.example",
        "client_secret": "cs-x", "refresh_token": "1//rt-test",
        "token_uri": emu.url + "/token"}))
    # Found as GOOGLE_APPLICATION_CREDENTIALS; project from the env.
    env = clean_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(au),
                    GOOGLE_CLOUD_PROJECT=PROJECT)
    m = keyfs(env=env, providers="gcp", gcp_endpoint=emu.url + "/")
    assert "authorized_user" in m.log()
    round_trip(m)
    assert counters(emu).get("oauth.token", 0) >= 1


def test_auth_gcloud_adc_file(keyfs, emu, tmp_path):
    emu.admin("POST", "/_emu/authorized-users",
              {"client_id": "c2", "client_secret": "s2",
               "refresh_token": "r2"})
    env = clean_env(tmp_path)
    cfg = env["CLOUDSDK_CONFIG"]
    with open(os.path.join(cfg, "application_default_credentials.json"),
              "w") as f:
        json.dump({"type": "authorized_user", "client_id": "c2",
                   "client_secret": "s2", "refresh_token": "r2",
                   "token_uri": emu.url + "/token"}, f)
    os.makedirs(os.path.join(cfg, "configurations"))
    with open(os.path.join(cfg, "active_config"), "w") as f:
        f.write("default\n")
    with open(os.path.join(cfg, "configurations", "config_default"),
              "w") as f:
        f.write("[core]\nproject = %s\n" % PROJECT)
    m = keyfs(env=env, providers="gcp", gcp_endpoint=emu.url + "/")
    assert "gcloud ADC file" in m.log()
    assert os.listdir(m.path("gcp")) == [PROJECT]
    round_trip(m)


def test_auth_metadata_server(keyfs, emu, tmp_path):
    host = emu.url[len("http://"):]
    emu.admin("POST", "/_emu/config", {"project_id": PROJECT})
    env = clean_env(tmp_path, GCE_METADATA_HOST=host)
    m = keyfs(env=env, providers="gcp", gcp_endpoint=emu.url + "/")
    assert "metadata server" in m.log()
    # Project discovered from the metadata server.
    assert os.listdir(m.path("gcp")) == [PROJECT]
    round_trip(m)
    c = counters(emu)
    assert c.get("metadata.token", 0) >= 1
    assert c.get("oauth.token", 0) == 0


def test_wrong_credentials(keyfs, emu, tmp_path):
    # An unregistered key: the mount fails before daemonizing, clearly.
    bad = str(tmp_path / "bad.json")
    gcp_keys.make_sa_key(bad, emu.url + "/token", PROJECT)
    with pytest.raises(RuntimeError) as e:
        keyfs(env=clean_env(tmp_path), providers="gcp",
              gcp_endpoint=emu.url + "/", gcp_credentials=bad,
              gcp_project=PROJECT)
    assert "refused the credentials" in str(e.value)
    assert "invalid_grant" in str(e.value)
    # Credentials revoked while mounted: EACCES and a log line.
    emu.admin("POST", "/_emu/service-accounts", {"key_file": bad})
    m = keyfs(name="ok", env=clean_env(tmp_path), providers="gcp",
              gcp_endpoint=emu.url + "/", gcp_credentials=bad,
              gcp_project=PROJECT)
    emu.admin("POST", "/_emu/reset", {})   # forgets the key and its tokens
    assert oserr(os.listdir, m.path("gcp", PROJECT, "global")) == errno.EACCES
    assert "refused the credentials" in m.log()


def test_corrupted_crc_is_eio(gcpfs, emu):
    # No value cache: every read goes to KMS.
    m = gcpfs(ttl="0", max_stale="0")
    k = make_key(m)
    p = os.path.join(k, "v")
    write(p, b"the real value")
    emu.admin("POST", "/_emu/faults", {"corrupt_crc": True})
    before = counters(emu).get("cryptoKeys.decrypt", 0)
    assert oserr(read, p) == errno.EIO
    assert counters(emu).get("cryptoKeys.decrypt", 0) > before
    # A write whose encrypt answer is corrupt fails and keeps the old value.
    assert oserr(write, p, b"replacement") == errno.EIO
    emu.admin("DELETE", "/_emu/faults")
    assert read(p) == b"the real value"
    assert "corrupted in transit" in m.log()


def test_unverified_encrypt_is_refused(gcpfs, emu):
    m = gcpfs()
    k = make_key(m)
    emu.admin("POST", "/_emu/faults", {"unverified": True})
    assert oserr(write, os.path.join(k, "v"), b"x") == errno.EIO
    assert not os.path.exists(store_file(m, "ring", "key", "v"))


def test_size_limits_and_empty(gcpfs, emu):
    m = gcpfs()
    k = make_key(m)
    big = os.urandom(65536)
    write(os.path.join(k, "max"), big)
    assert read(os.path.join(k, "max")) == big
    assert oserr(write, os.path.join(k, "over"), b"x" * 65537) == errno.EFBIG
    # Empty value: zero-length file, no KMS call either way.
    before = counters(emu)
    write(os.path.join(k, "empty"), b"")
    assert read(os.path.join(k, "empty")) == b""
    # A file created and never written is made at release, which the
    # kernel sends just after the last close returns.
    deadline = time.time() + 5
    while not os.path.exists(store_file(m, "ring", "key", "empty")):
        assert time.time() < deadline, "the empty value was never stored"
        time.sleep(0.05)
    assert os.path.getsize(store_file(m, "ring", "key", "empty")) == 0
    after = counters(emu)
    for meth in ("cryptoKeys.encrypt", "cryptoKeys.decrypt"):
        assert after.get(meth, 0) == before.get(meth, 0)


def test_invalid_ids_and_forbidden_ops(gcpfs, emu):
    m = gcpfs()
    loc = m.path("gcp", PROJECT, "global")
    assert oserr(os.mkdir, os.path.join(loc, "bad.ring")) == errno.EINVAL
    assert oserr(os.mkdir, os.path.join(loc, "r" * 64)) == errno.EINVAL
    assert oserr(os.mkdir, os.path.join(loc, "sp ace")) == errno.EINVAL
    os.mkdir(os.path.join(loc, "r" * 63))
    k = make_key(m)
    assert oserr(os.mkdir, os.path.join(os.path.dirname(k), "bad!key")) \
        == errno.EINVAL
    assert oserr(write, os.path.join(k, "bad!name"), b"x") == errno.EINVAL
    # (a new .hidden is a temporary-looking name, held in memory and never
    # stored: see test_temp_names.py)
    write(os.path.join(k, ".hidden"), b"x")
    assert not os.path.exists(store_file(m, "ring", "key", ".hidden"))
    os.unlink(os.path.join(k, ".hidden"))
    # Cloud KMS cannot delete rings or keys.
    assert oserr(os.rmdir, k) == errno.EPERM
    assert oserr(os.rmdir, os.path.dirname(k)) == errno.EPERM
    assert "Cloud KMS cannot delete key rings or crypto keys" in m.log()
    assert os.path.isdir(k)
    # Unknown locations and projects do not exist.
    assert oserr(os.listdir, m.path("gcp", "other-project")) == errno.ENOENT
    assert oserr(os.listdir, m.path("gcp", PROJECT, "nowhere")) \
        == errno.ENOENT
    # rm removes the ciphertext.
    write(os.path.join(k, "gone"), b"bye")
    os.unlink(os.path.join(k, "gone"))
    assert not os.path.exists(store_file(m, "ring", "key", "gone"))
    assert oserr(read, os.path.join(k, "gone")) == errno.ENOENT


def test_canary_never_logged_or_stored(gcpfs, emu, sakey):
    canary = make_canary().encode()
    m = gcpfs(args=("-d",))
    k = make_key(m)
    write(os.path.join(k, "secret"), canary)
    assert read(os.path.join(k, "secret")) == canary
    m.stop()
    log = m.log()
    assert log, "the -d log is empty"
    b64 = base64.b64encode(canary).decode()
    token_like = json.load(open(sakey))["private_key"].splitlines()[1]
    for needle in (canary.decode(), b64, token_like):
        assert needle not in log
    assert grep_tree(m.store, canary) == []
    assert grep_tree(m.store, b64.encode()) == []


def test_help_lists_gcp_options():
    from conftest import KEYFS_BIN
    r = run([KEYFS_BIN, "--help"])
    text = r.stdout + r.stderr
    for opt in ("gcp_project", "gcp_credentials", "gcp_endpoint",
                "gcp_rotation_period"):
        assert opt in text
    assert "7776000s" in text


def test_no_credentials_fails_before_mount(keyfs, tmp_path):
    with pytest.raises(RuntimeError) as e:
        keyfs(env=clean_env(tmp_path), providers="gcp", gcp_project=PROJECT,
              gcp_endpoint="http://127.0.0.1:9/")
    assert "no Google credentials found" in str(e.value)


def test_unreachable_endpoint_fails_before_mount(keyfs, emu, sakey, tmp_path):
    from conftest import free_port
    with pytest.raises(RuntimeError) as e:
        keyfs(env=clean_env(tmp_path), providers="gcp", gcp_project=PROJECT,
              gcp_credentials=sakey, timeout="5",
              gcp_endpoint="http://127.0.0.1:%d/" % free_port())
    assert "Cloud KMS endpoint" in str(e.value)


def test_detected_from_environment(keyfs, emu, sakey, tmp_path):
    env = clean_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=sakey,
                    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=emu.url)
    del env["GCE_METADATA_HOST"]   # detected from the key file alone
    m = keyfs(env=env)          # no providers=: gcp found by detect
    assert "gcp" in os.listdir(m.mnt)
    # Project from the key file, endpoint from the gcloud variable (no /).
    assert os.listdir(m.path("gcp")) == [PROJECT]
    round_trip(m)


def test_a_fifo_in_place_of_a_ciphertext_fails_promptly(gcpfs):
    """A ciphertext file replaced by a FIFO is refused (EIO), never read:
    reading it would block a worker thread forever."""
    m = gcpfs(ttl=30)
    k = m.path("gcp", PROJECT, "global", "r", "k")
    os.makedirs(k)
    write(os.path.join(k, "v"), b"value")
    write(os.path.join(k, "w"), b"other")
    # Known as a file, its value not cached (a change of attributes makes
    # keyfs forget it): the next read goes to the store.
    with pytest.raises(OSError):
        os.setxattr(os.path.join(k, "v"), "user.other", b"1")
    time.sleep(1.2)  # past the kernel's attributes: keyfs is asked
    assert os.stat(os.path.join(k, "v")).st_size == 0
    sf = store_file(m, "r", "k", "v")
    os.unlink(sf)
    os.mkfifo(sf, 0o600)
    proc = subprocess.Popen(["cat", os.path.join(k, "v")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, errb = proc.communicate(timeout=20)
        assert proc.returncode != 0
        assert "Input/output error" in errb.decode()
        assert read(os.path.join(k, "w")) == b"other"  # still serving
    except subprocess.TimeoutExpired:
        raise AssertionError("cat of a FIFO ciphertext hung")
    finally:
        # Unblock a reader stuck on the FIFO (code without the check).
        os.close(os.open(sf, os.O_RDWR | os.O_NONBLOCK))
        proc.kill()
        proc.communicate(timeout=30)
