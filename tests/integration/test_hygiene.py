"""Secret hygiene: a canary value and the credentials never
reach a log, the audit trail, a file under the store, /tmp or the working
directory, or a core dump; the process is not dumpable; value memory is
locked."""
import os
import resource
import signal
import subprocess
import time

import pytest

from conftest import KEYFS_BIN, grep_tree, make_canary, run, sanitizer_env


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_canary_and_credentials_never_leak(keyfs, tmp_path):
    canary = make_canary()
    audit = tmp_path / "audit.log"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    tmp_before = set(os.listdir("/tmp"))
    m = keyfs("h", args=("-d",), audit=str(audit))
    k = m.path("local", "r", "k")
    os.makedirs(k)
    for i in range(5):
        write(os.path.join(k, "v%d" % i), canary.encode())
        assert read(os.path.join(k, "v%d" % i)) == canary.encode()
    os.setxattr(k, "user.keyfs.rotate", b"1")
    write(os.path.join(k, "v0"), canary.encode() + b"2")
    os.truncate(os.path.join(k, "v1"), 10)
    m.stop()
    needle = canary.encode()
    part = canary[:24].encode()          # a prefix is a leak too
    for text in (m.log(), audit.read_text()):
        assert canary not in text and canary[:24] not in text
    assert "[REDACTED" in m.log()        # the debug log was really on
    assert grep_tree(m.store, part) == []
    assert grep_tree(str(tmp_path), part) == []
    new_tmp = set(os.listdir("/tmp")) - tmp_before
    for name in new_tmp:
        assert grep_tree(os.path.join("/tmp", name), part) == [], name
    # The master key never shows in a log either.
    mk = open(os.path.join(m.store, "master.key"), "rb").read()
    assert mk.hex() not in m.log() and mk not in m.log().encode()


def _core_files(d):
    return [f for f in os.listdir(d) if f.startswith("core")]


def _allow_cores():
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    os.setsid()


@pytest.mark.skipif(open("/proc/sys/kernel/core_pattern").read().strip()
                    not in ("core", "core.%p"),
                    reason="needs core_pattern 'core' to see core files")
def test_no_core_dump_even_when_allowed(tmp_path):
    """With RLIMIT_CORE unlimited in its environment, a crashing keyfs
    still leaves no core file (it sets RLIMIT_CORE 0 and is not
    dumpable).  A control process in the same setting does dump."""
    if os.environ.get("KEYFS_SAN"):
        pytest.skip("sanitizers handle SIGSEGV themselves")
    d = tmp_path / "cwd"
    d.mkdir()
    ctl = subprocess.Popen(["sleep", "30"], cwd=d, preexec_fn=_allow_cores)
    time.sleep(0.2)
    os.kill(ctl.pid, signal.SIGSEGV)
    ctl.wait(timeout=10)
    deadline = time.time() + 5
    while not _core_files(d) and time.time() < deadline:
        time.sleep(0.05)
    if not _core_files(d):
        pytest.skip("this machine writes no core files at all")
    for f in _core_files(d):
        os.unlink(d / f)

    mnt = tmp_path / "m"
    mnt.mkdir()
    p = subprocess.Popen([KEYFS_BIN, "-f", "-o", "store=%s" % (tmp_path / "s"),
                          str(mnt)], cwd=d, preexec_fn=_allow_cores,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not os.path.ismount(mnt) and time.time() < deadline:
            time.sleep(0.05)
        os.makedirs(mnt / "local" / "r" / "k")
        write(mnt / "local" / "r" / "k" / "v", b"in memory now")
        assert read(mnt / "local" / "r" / "k" / "v") == b"in memory now"
        os.kill(p.pid, signal.SIGSEGV)
        p.wait(timeout=10)
        time.sleep(0.5)
        assert _core_files(d) == []
    finally:
        subprocess.run(["fusermount3", "-uz", str(mnt)], stderr=subprocess.DEVNULL)
        if p.poll() is None:
            p.kill()


def test_not_dumpable_and_no_core_limit():
    """keyfs makes itself non-dumpable and sets RLIMIT_CORE to 0 first
    thing, before it even parses its options.  (This sandbox does not enforce the ptrace rules of a
    non-dumpable process, so the system calls themselves are checked.)"""
    r = run(["strace", "-e", "trace=prctl,prlimit64,setrlimit",
             KEYFS_BIN, "--version"], env=sanitizer_env(os.environ))
    assert r.returncode == 0, r.stderr
    assert "prctl(PR_SET_DUMPABLE, SUID_DUMP_DISABLE) = 0" in r.stderr
    assert "RLIMIT_CORE, {rlim_cur=0, rlim_max=0}" in r.stderr


def test_values_live_in_locked_memory(keyfs):
    if os.environ.get("KEYFS_SAN"):
        pytest.skip("sanitizers turn mlock into a no-op")
    m = keyfs(ttl=300)
    os.makedirs(m.path("local", "r", "k"))
    for i in range(20):
        write(m.path("local", "r", "k", "v%d" % i), b"x" * 5000)
        read(m.path("local", "r", "k", "v%d" % i))
    status = open("/proc/%d/status" % m.pid()).read()
    vmlck = int([l for l in status.splitlines() if l.startswith("VmLck:")][0].split()[1])
    # 20 cached values (a page each, at least) plus the master key.
    assert vmlck >= 21 * 4


def test_busy_mount_lazy_unmount_leaves_no_process(keyfs):
    m = keyfs("busy")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"busy")
    f = open(m.path("local", "r", "k", "v"), "rb")
    pid = m.pid()
    r = run(["fusermount3", "-u", m.mnt])
    assert r.returncode != 0                         # busy
    assert run(["umount", "-l", m.mnt]).returncode == 0
    assert f.read() == b"busy"                       # still served
    f.close()
    # The last reference gone, the daemon ends by itself.
    assert m.proc.wait(timeout=10) == 0
