"""Shared fixtures for keyfs integration tests.

Every test that mounts uses the `keyfs` fixture: it starts the real binary
in the foreground on a temporary mountpoint, waits until the mount is live,
and always unmounts (fusermount3 -u, then -uz) and stops the process, even
when the test fails.  The daemon's log is kept per mount and scanned for
sanitizer reports.  Nothing is downloaded; servers bind 127.0.0.1.
"""
import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Absolute: unit files and helpers run it from other directories.
KEYFS_BIN = os.path.abspath(os.environ.get("KEYFS_BIN")
                            or os.path.join(ROOT, "build", "keyfs"))
PYENV_PYTHON = shutil.which("python3", path="/root/.pyenv/shims") or "python3"

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer",
                   "ERROR: ThreadSanitizer")


def sanitizer_env(env):
    env = dict(env)
    # Tests never reach a real cloud metadata address (169.254.169.254):
    # unless a test points them somewhere, they point at a closed port.
    env.setdefault("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    # LeakSanitizer cannot follow a process that is not dumpable; the
    # ASan/UBSan reports themselves still work.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault("TSAN_OPTIONS", "halt_on_error=0")
    return env


def make_canary():
    """A value that must never show up in a log or in plaintext on disk."""
    return "KEYFS-CANARY-" + secrets.token_hex(16)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[1] == path:
                return True
    return False


class Mount:
    """One running keyfs: .mnt (mountpoint), .store, .log_path, .proc."""

    def __init__(self, base, name, opts, env, args, foreground, mnt_dir=None):
        self.base = base
        self.mnt = os.path.join(mnt_dir or base, name + "-mnt")
        self.store = opts.pop("store", None) or os.path.join(base, "store")
        self.log_path = os.path.join(base, name + ".log")
        self.opts = opts
        self.env = env
        self.args = args
        self.foreground = foreground
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)

    def command(self):
        o = ["store=" + self.store]
        for k, v in self.opts.items():
            o.append(k if v is True else "%s=%s" % (k, v))
        fg = ["-f"] if self.foreground else []
        return [KEYFS_BIN] + fg + list(self.args) + ["-o", ",".join(o), self.mnt]

    def start(self, timeout=15):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=logf,
                                     env=sanitizer_env(self.env),
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if is_mounted(self.mnt):
                return self
            if self.proc.poll() is not None and self.foreground:
                break
            time.sleep(0.05)
        raise RuntimeError("keyfs did not mount (exit %r):\n%s"
                           % (self.proc.poll(), self.log()))

    def pid(self):
        if self.foreground:
            return self.proc.pid
        out = subprocess.run(["pgrep", "-f", "keyfs.*" + self.mnt],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def stop(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt],
                           stderr=subprocess.DEVNULL, timeout=20)
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt],
                           stderr=subprocess.DEVNULL, timeout=20)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not self.foreground:
            deadline = time.time() + 10
            while self.pid() and time.time() < deadline:
                time.sleep(0.05)

    def kill9(self):
        os.kill(self.pid(), signal.SIGKILL)
        if self.foreground:
            self.proc.wait(timeout=10)
        subprocess.run(["fusermount3", "-uz", self.mnt],
                       stderr=subprocess.DEVNULL, timeout=20)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)


@pytest.fixture
def keyfs(tmp_path):
    """Factory: keyfs(name="k", store=..., foreground=True, env=None,
    args=(), mnt_dir=None, **opts) -> started Mount (mountpoint under
    mnt_dir, default the test's private tmp_path).  Unmounts everything afterwards and
    fails the test on any sanitizer report."""
    mounts = []

    def start(name="k", foreground=True, env=None, args=(), mnt_dir=None,
              **opts):
        m = Mount(str(tmp_path), name, dict(opts), env or dict(os.environ),
                  args, foreground, mnt_dir)
        mounts.append(m)
        return m.start()

    yield start
    for m in mounts:
        m.stop()
    for m in mounts:
        text = m.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in %s" % m.log_path


def run(cmd, **kw):
    """subprocess.run with a timeout; returns CompletedProcess (text)."""
    kw.setdefault("timeout", 60)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def wait_enotconn(path, timeout=5):
    """Wait until stat(path) fails with ENOTCONN (the daemon is gone).  The
    kernel may first answer from attributes it keeps (up to 1 s on a
    writable mount, ttl/2 on a read-only one)."""
    deadline = time.time() + timeout
    while True:
        try:
            os.stat(path)
        except OSError as e:
            return e.errno
        if time.time() >= deadline:
            return 0
        time.sleep(0.1)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def grep_tree(root, needle):
    """Paths of files under root whose bytes contain needle (bytes)."""
    hits = []
    for dirpath, _, files in os.walk(root):
        for fn in files:
            p = os.path.join(dirpath, fn)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def write_file(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """Write all of data (bytes) through one open of path (mode 0600 when
    created), then close it."""
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def oserr(fn, *a):
    """The errno fn(*a) fails with (the test fails if it succeeds)."""
    with pytest.raises(OSError) as e:
        fn(*a)
    return e.value.errno


# ---------------------------------------------------------------------------
# gcp/ with its fleet stores: Cloud KMS, Cloud Storage and Secret Manager
# emulators on loopback, sharing one bearer token (the KMS emulator's token
# endpoint issues it for a service-account key; the other two accept it).

GCP_PROJECT = "keyfs-test"
GCP_NUMBER = "480213377105"
GCP_BUCKET = "fleet-bucket"
GCP_TOKEN = "ya29.fleet-" + secrets.token_hex(12)


def gcp_clean_env(tmp_path, **extra):
    """A mount's environment without ambient Google configuration."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_"))}
    cfg = os.path.join(str(tmp_path), "gcloud-empty")
    os.makedirs(cfg, exist_ok=True)
    env["CLOUDSDK_CONFIG"] = cfg
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"
    env.update(extra)
    return env


class GcpEmus:
    """.kms, .gcs (bucket GCP_BUCKET, versioning on), .gsm (GCP_PROJECT =
    GCP_NUMBER), .token, .sakey; counters(emu) -> {method: calls}."""

    def __init__(self, tmp_path):
        import sys
        sys.path.insert(0, os.path.join(ROOT, "tests", "emulators"))
        import gcp_keys
        import gcs_emulator
        import gsm_emulator
        import kms_emulator
        self.token = GCP_TOKEN
        self.kms = self.gcs = self.gsm = None
        try:
            self.kms = kms_emulator.EmulatorProcess(
                ["--static-token", self.token])
            self.gcs = gcs_emulator.EmulatorProcess(
                ["--versioned-bucket", GCP_BUCKET,
                 "--static-token", self.token])
            self.gsm = gsm_emulator.EmulatorProcess(
                ["--static-token", self.token,
                 "--project", "%s=%s" % (GCP_PROJECT, GCP_NUMBER)])
            self.sakey = os.path.join(str(tmp_path), "sa.json")
            gcp_keys.make_sa_key(self.sakey, self.kms.url + "/token",
                                 GCP_PROJECT)
            self.kms.admin("POST", "/_emu/service-accounts",
                           {"key_file": self.sakey})
            self.kms.admin("POST", "/_emu/config",
                           {"issue_token": self.token})
        except Exception:
            self.stop()
            raise

    def all(self):
        return [e for e in (self.kms, self.gcs, self.gsm) if e is not None]

    def stop(self):
        for e in self.all():
            e.stop()

    def counters(self, emu):
        return dict(emu.admin("GET", "/_emu/counters")["calls"])

    def reset_counters(self):
        for e in self.all():
            e.admin("POST", "/_emu/counters/reset", {})

    def opts(self, bucket=True, **extra):
        """Mount options for gcp/ against these emulators."""
        o = dict(providers="gcp", gcp_endpoint=self.kms.url + "/",
                 gcp_credentials=self.sakey, gcp_project=GCP_PROJECT,
                 gsm_endpoint=self.gsm.url + "/",
                 gcs_endpoint=self.gcs.url + "/", timeout="15")
        if bucket:
            o["gcp_bucket"] = GCP_BUCKET if bucket is True else bucket
        o.update(extra)
        return o


@pytest.fixture
def gcp_emus(tmp_path):
    e = GcpEmus(tmp_path)
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def gcp_mount(keyfs, gcp_emus, tmp_path):
    """factory(name="g", store=None, bucket=True, env=None, **opts) ->
    Mount of gcp/ (KMS, Cloud Storage and Secret Manager emulators; with
    gcp_bucket=GCP_BUCKET unless bucket is False or another BUCKET[/P]).
    Each name gets its own local store unless store= is given."""
    def start(name="g", store=None, bucket=True, env=None, args=(), **opts):
        o = gcp_emus.opts(bucket, **opts)
        o["store"] = store or os.path.join(str(tmp_path), name + "-store")
        return keyfs(name=name, env=env or gcp_clean_env(tmp_path),
                     args=args, **o)
    return start
