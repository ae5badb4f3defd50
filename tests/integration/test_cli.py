"""The command line: --help, --version, option errors reported on the
terminal before detaching, the mount(8) form, daemon mode."""
import os
import subprocess
import time

from conftest import KEYFS_BIN, is_mounted, run, wait_enotconn


def test_help_lists_every_option():
    r = run([KEYFS_BIN, "--help"])
    assert r.returncode == 0
    for opt in ("providers=", "store=", "timeout=", "threads=", "log=",
                "uid=", "gid=", "umask=", "-o ro", "allow_other",
                "local_master_key=", "--version", "-f", "-d"):
        assert opt in r.stdout, opt
    assert "default" in r.stdout


def test_version():
    r = run([KEYFS_BIN, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("keyfs ")


def test_bad_options_fail_on_the_terminal(tmp_path):
    mnt = str(tmp_path / "m")
    os.mkdir(mnt)
    store = "store=" + str(tmp_path / "s")
    cases = [
        (["-o", store + ",timeout=abc", mnt], "timeout=abc"),
        (["-o", store + ",umask=999", mnt], "umask=999"),
        (["-o", store + ",uid=-1", mnt], "uid=-1"),
        (["-o", store + ",providers=nosuch", mnt], "unknown provider 'nosuch'"),
        (["-o", store + ",aws_bogus=1", mnt], "aws_bogus"),
        (["-o", store + ",log=loud", mnt], "log=loud"),
        (["-o", store + ",not_an_option", mnt], "not_an_option"),
        (["-o", store, str(tmp_path / "missing")], "missing"),
        (["-o", store], "no mountpoint"),
        (["-o", store, "a", "b", "c"], "unexpected argument"),
    ]
    for args, msg in cases:
        r = run([KEYFS_BIN] + args, timeout=20)
        assert r.returncode != 0, args
        assert msg in r.stderr, (args, r.stderr)
        assert not is_mounted(mnt)


def test_unusable_store_fails_before_detaching(tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    f = tmp_path / "file"
    f.write_text("x")
    r = run([KEYFS_BIN, "-o", "store=%s" % f, str(mnt)], timeout=20)
    assert r.returncode != 0 and "store" in r.stderr
    # A store inside the mountpoint would make keyfs read its own mount.
    r = run([KEYFS_BIN, "-o", "store=%s/inner" % mnt, str(mnt)], timeout=20)
    assert r.returncode != 0 and "inside the mountpoint" in r.stderr
    # A master key readable by others is refused.
    s = tmp_path / "s"
    s.mkdir(mode=0o700)
    mk = tmp_path / "mk"
    mk.write_bytes(os.urandom(32))
    os.chmod(mk, 0o644)
    r = run([KEYFS_BIN, "-o", "store=%s,local_master_key=%s" % (s, mk), str(mnt)],
            timeout=20)
    assert r.returncode != 0 and "chmod 600" in r.stderr
    assert not is_mounted(str(mnt))


def test_mount8_form_drops_fstab_words(keyfs, tmp_path):
    m = keyfs(args=("keyfs",), _netdev=True, nofail=True, noauto=True,
              **{"x-systemd.automount": True, "x-systemd.idle-timeout": "60"})
    assert sorted(os.listdir(m.mnt)) == [".keyfs", "local"]


def test_providers_list_with_commas(keyfs):
    m = keyfs(providers="local")
    assert sorted(os.listdir(m.mnt)) == [".keyfs", "local"]


def test_daemon_mode_detaches_and_unmounts(keyfs, tmp_path):
    m = keyfs(foreground=False)
    assert m.proc.wait(timeout=10) == 0      # the parent returned
    pid = m.pid()
    assert pid and pid != m.proc.pid
    os.makedirs(m.path("local", "r", "k"))
    with open(m.path("local", "r", "k", "v"), "w") as f:
        f.write("daemon")
    with open(m.path("local", "r", "k", "v")) as f:
        assert f.read() == "daemon"
    # Hardening: not dumpable (so /proc/PID/environ etc. are root-only).
    with open("/proc/%d/status" % pid) as f:
        status = f.read()
    assert "VmLck:" in status
    run(["fusermount3", "-u", m.mnt])
    deadline = time.time() + 10
    while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists("/proc/%d" % pid)


def test_process_hardening(keyfs):
    m = keyfs()
    pid = m.pid()
    # Reading a value locks memory for it; values stay in locked pages.
    os.makedirs(m.path("local", "r", "k"))
    with open(m.path("local", "r", "k", "v"), "w") as f:
        f.write("x")
    with open(m.path("local", "r", "k", "v")) as f:
        fd_value = f.read()
    assert fd_value == "x"
    with open("/proc/%d/limits" % pid) as f:
        limits = f.read()
    core = [l for l in limits.splitlines() if l.startswith("Max core file size")][0]
    assert core.split()[4] == "0"
    # Secret memory is locked (mlock), visible as VmLck.  The sanitizers
    # turn mlock into a no-op, so only plain builds can show it.
    if os.environ.get("KEYFS_SAN"):
        return
    with open("/proc/%d/status" % pid) as f:
        vmlck = [l for l in f.read().splitlines() if l.startswith("VmLck:")][0]
    assert int(vmlck.split()[1]) > 0


def keyfs_mounts_at(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f
                   if line.split()[4] == path and " - fuse.keyfs " in line)


def test_refuses_to_stack_on_a_live_keyfs_mount(keyfs, tmp_path):
    m = keyfs()
    os.makedirs(m.path("local", "r", "k"))
    with open(m.path("local", "r", "k", "v"), "w") as f:
        f.write("first")
    for fg in (["-f"], []):
        r = run([KEYFS_BIN] + fg + ["-o", "store=" + str(tmp_path / "other"),
                                    m.mnt + "/"], timeout=20)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
        assert "already a live keyfs mount" in r.stderr, r.stderr
        assert "fusermount3 -u " + m.mnt in r.stderr, r.stderr
    assert keyfs_mounts_at(m.mnt) == 1
    with open(m.path("local", "r", "k", "v")) as f:
        assert f.read() == "first"


def test_dead_mount_says_how_to_clear_it(keyfs, tmp_path):
    import signal
    m = keyfs()
    os.kill(m.pid(), signal.SIGKILL)
    m.proc.wait(timeout=10)
    assert wait_enotconn(m.mnt) == 107  # ENOTCONN
    r = run([KEYFS_BIN, "-f", "-o", "store=" + m.store, m.mnt], timeout=20)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Transport endpoint is not connected" in r.stderr
    assert "clear it with: fusermount3 -u " + m.mnt in r.stderr
    # Doing what it says makes the mountpoint usable again.
    assert run(["fusermount3", "-u", m.mnt]).returncode == 0
    m.start()
    assert sorted(os.listdir(m.mnt)) == [".keyfs", "local"]
