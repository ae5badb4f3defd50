"""chmod and chown on every provider: owner, group and mode kept per file
on this host (STORE/modes), surviving remounts; setting what is already
there always succeeds, so install -m, cp -a, tar x and rsync -a work; the
kernel enforces the bits for other users."""
import errno
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import run
from test_bad_input import (  # noqa: F401 (fixtures)
    boto, emu, moto_url, oserr, read, target, write)

NOBODY = 65534


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def owner(p):
    st = os.stat(p)
    return st.st_uid, st.st_gid


def test_chmod_chown_kept_per_file_and_across_remount(target):
    t = target
    f = os.path.join(t.dir, "f")
    write(f, b"value")
    # No-ops always succeed, on files and directories.
    for obj in (f, t.dir):
        os.chmod(obj, mode(obj))
        os.chown(obj, os.getuid(), os.getgid())
        os.chown(obj, -1, -1)
    for cmd in (["chmod", "600", f], ["chown", "%d:%d" % (os.getuid(),
                                                          os.getgid()), f],
                ["chmod", "640", f], ["chown", "1234:2345", f],
                ["chmod", "750", t.dir]):
        r = run(cmd)
        assert r.returncode == 0, (cmd, r.stderr)
    assert mode(f) == 0o640 and owner(f) == (1234, 2345)
    assert mode(t.dir) == 0o750
    # Only that file changed.
    assert mode(t.dir + "/canary") == 0o600
    assert read(f) == b"value" and t.value("f") == b"value"
    t.m.stop()
    t.m.start()
    assert mode(f) == 0o640 and owner(f) == (1234, 2345)
    assert mode(t.dir) == 0o750
    assert read(f) == b"value"
    # A removed name forgets its mode: created again, it has the defaults.
    rel = f[len(t.m.mnt):]
    with open(os.path.join(t.m.store, "modes")) as fh:
        assert " %s\n" % rel in fh.read()
    os.unlink(f)
    with open(os.path.join(t.m.store, "modes")) as fh:
        assert " %s\n" % rel not in fh.read()
    g = os.path.join(t.dir, "g")
    write(g, b"again")
    assert mode(g) == 0o600 and owner(g) == (os.getuid(), os.getgid())


def test_everyday_tools_exit_zero(target, tmp_path):
    t = target
    src = tmp_path / "src"
    src.mkdir()
    for n, m in (("a", 0o600), ("b", 0o640)):
        (src / n).write_bytes(b"value " + n.encode())
        os.chmod(src / n, m)
    r = run(["install", "-m", "600", str(src / "a"), t.dir + "/inst"])
    assert r.returncode == 0, r.stderr
    r = run(["install", "-m", "640", str(src / "a"), t.dir + "/inst640"])
    assert r.returncode == 0, r.stderr
    assert mode(t.dir + "/inst640") == 0o640
    r = run(["cp", "-a", str(src / "b"), t.dir + "/cpa"])
    assert r.returncode == 0, r.stderr
    assert mode(t.dir + "/cpa") == 0o640
    tarball = tmp_path / "t.tar"
    with tarfile.open(tarball, "w") as tf:
        tf.add(src / "b", arcname="tarred")
    r = run(["tar", "-C", t.dir, "-xf", str(tarball)])
    assert r.returncode == 0, r.stderr
    assert mode(t.dir + "/tarred") == 0o640
    # In place: replace-by-rename is not what this test is about.
    r = run(["rsync", "-a", "--inplace", str(src / "b"),
             t.dir + "/synced"])
    assert r.returncode == 0, r.stderr
    assert mode(t.dir + "/synced") == 0o640
    r = run(["rsync", "-a", "--inplace", str(src / "b"),
             t.dir + "/synced"])              # again: all no-ops
    assert r.returncode == 0, r.stderr
    for n, want in (("inst", b"value a"), ("inst640", b"value a"),
                    ("cpa", b"value b"), ("tarred", b"value b"),
                    ("synced", b"value b")):
        assert read(os.path.join(t.dir, n)) == want
        assert t.value(n) == want


def access_mount(keyfs, **opts):
    import tempfile
    d = tempfile.mkdtemp(prefix="keyfs-modes.", dir="/tmp")
    os.chmod(d, 0o755)
    return keyfs(mnt_dir=d, allow_other=True, **opts), d


def as_user(uid, gid, *cmd):
    return run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                "--clear-groups", "--"] + list(cmd))


def test_chmod_600_denies_another_uid_chown_grants(keyfs):
    m, d = access_mount(keyfs, umask="022")
    try:
        os.makedirs(m.path("local", "r", "k"))
        p = m.path("local", "r", "k", "v")
        write(p, b"guarded")
        assert as_user(NOBODY, NOBODY, "cat", p).stdout == "guarded"
        os.chmod(p, 0o600)
        r = as_user(NOBODY, NOBODY, "cat", p)
        assert r.returncode != 0 and "guarded" not in r.stdout
        assert "Permission denied" in r.stderr
        os.chown(p, NOBODY, NOBODY)
        assert as_user(NOBODY, NOBODY, "cat", p).stdout == "guarded"
        # The owner may chmod; nobody else, and only root gives a file away.
        r = as_user(12345, 12345, "chmod", "644", p)
        assert r.returncode != 0
        r = as_user(NOBODY, NOBODY, "chmod", "400", p)
        assert r.returncode == 0, r.stderr
        assert mode(p) == 0o400
        r = as_user(NOBODY, NOBODY, "chown", "12345", p)
        assert r.returncode != 0
        assert owner(p) == (NOBODY, NOBODY)
        # The kept bits survive a remount.
        m.stop()
        m.start()
        r = as_user(12345, 12345, "cat", p)
        assert r.returncode != 0 and "guarded" not in r.stdout
        assert mode(p) == 0o400 and owner(p) == (NOBODY, NOBODY)
    finally:
        m.stop()
        subprocess.run(["rmdir", d + "/k-mnt", d], stderr=subprocess.DEVNULL)


def test_chmod_on_read_only_mount_is_erofs(keyfs):
    m = keyfs("rw")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"1")
    os.chmod(m.path("local", "r", "k", "v"), 0o400)
    m.stop()
    m = keyfs("ro", store=m.store, ro=True)
    p = m.path("local", "r", "k", "v")
    assert mode(p) == 0o400
    assert oserr(os.chmod, p, 0o600) == errno.EROFS
    assert oserr(os.chown, p, 1, 1) == errno.EROFS
    assert mode(p) == 0o400


def test_modes_file_format_and_damage(keyfs):
    m = keyfs()
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"1")
    os.chmod(m.path("local", "r", "k", "v"), 0o400)
    modes = os.path.join(m.store, "modes")
    assert stat.S_IMODE(os.stat(modes).st_mode) == 0o600
    with open(modes) as f:
        assert f.read() == ("keyfs-modes 1\n0400 %d %d /local/r/k/v\n"
                            % (os.getuid(), os.getgid()))
    # rmdir of the key and ring forgets what was under them.
    os.unlink(m.path("local", "r", "k", "v"))
    with open(modes) as f:
        assert f.read() == "keyfs-modes 1\n"
    m.stop()
    # A damaged file stops the mount: keyfs never guesses who may read.
    with open(modes, "w") as f:
        f.write("keyfs-modes 1\n0400 zero 0 /x\n")
    with pytest.raises(RuntimeError) as e:
        keyfs("again", store=m.store)
    assert "modes: line 2 is damaged" in str(e.value)
