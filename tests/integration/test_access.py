"""Access control: mounted by root with allow_other, another
uid is refused unless uid=/gid=/umask= grant it access; the kernel checks
the bits (default_permissions)."""
import os

import pytest

from conftest import run

NOBODY = 65534


@pytest.fixture
def keyfs(keyfs, tmp_path_factory):
    """Mountpoints other users can reach (pytest's tmp dirs are 0700)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="keyfs-access.", dir="/tmp")
    os.chmod(d, 0o755)

    def start(*a, **kw):
        kw.setdefault("mnt_dir", d)
        return keyfs(*a, **kw)
    yield start
    # This runs before the inner fixture unmounts: never walk into a mount.
    import subprocess
    from conftest import is_mounted
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if is_mounted(p):
            subprocess.run(["fusermount3", "-u", p], stderr=subprocess.DEVNULL)
        if is_mounted(p):
            subprocess.run(["fusermount3", "-uz", p], stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)


def as_user(uid, gid, *cmd):
    return run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                "--clear-groups", "--"] + list(cmd))


def prepare(m):
    os.makedirs(m.path("local", "r", "k"))
    with open(m.path("local", "r", "k", "v"), "wb") as f:
        f.write(b"guarded value")
    return m.path("local", "r", "k", "v")


def test_other_uid_refused_by_default_bits(keyfs):
    m = keyfs(allow_other=True)
    p = prepare(m)
    r = as_user(NOBODY, NOBODY, "cat", p)
    assert r.returncode != 0 and "guarded" not in r.stdout
    r = as_user(NOBODY, NOBODY, "ls", m.path("local"))
    assert r.returncode != 0
    r = as_user(NOBODY, NOBODY, "sh", "-c", "echo x > " + p)
    assert r.returncode != 0


def test_owner_option_grants_that_uid(keyfs):
    m = keyfs(allow_other=True)
    p = prepare(m)
    m.stop()
    m = keyfs("owned", store=m.store, allow_other=True, uid=NOBODY, gid=NOBODY)
    p = m.path("local", "r", "k", "v")
    r = as_user(NOBODY, NOBODY, "cat", p)
    assert r.returncode == 0 and r.stdout == "guarded value"
    # Another unprivileged uid is still refused.
    r = as_user(12345, 12345, "cat", p)
    assert r.returncode != 0


def test_group_read_through_gid_and_umask(keyfs):
    m = keyfs(allow_other=True)
    prepare(m)
    m.stop()
    m = keyfs("grp", store=m.store, allow_other=True, gid=4242, umask="027")
    p = m.path("local", "r", "k", "v")
    r = as_user(12345, 4242, "cat", p)          # in the group: may read
    assert r.returncode == 0 and r.stdout == "guarded value"
    r = as_user(12345, 4242, "sh", "-c", "echo x > " + p)   # 0640: no write
    assert r.returncode != 0
    r = as_user(12345, 999, "cat", p)           # not in the group
    assert r.returncode != 0
    with open(p, "rb") as f:
        assert f.read() == b"guarded value"


def test_without_allow_other_even_open_bits_refuse_others(keyfs):
    m = keyfs(umask="000")
    p = prepare(m)
    assert os.stat(p).st_mode & 0o777 == 0o666
    r = as_user(NOBODY, NOBODY, "cat", p)
    assert r.returncode != 0


def test_read_only_refuses_every_write_for_everyone(keyfs):
    m = keyfs(allow_other=True)
    prepare(m)
    m.stop()
    m = keyfs("ro", store=m.store, ro=True, allow_other=True, umask="000")
    p = m.path("local", "r", "k", "v")
    r = as_user(NOBODY, NOBODY, "cat", p)
    assert r.stdout == "guarded value"
    for cmd in (["sh", "-c", "echo x > " + p], ["rm", p],
                ["mkdir", m.path("local", "x")], ["truncate", "-s0", p],
                ["setfattr", "-n", "user.keyfs.rotate", "-v", "1",
                 m.path("local", "r", "k")]):
        r = as_user(NOBODY, NOBODY, *cmd)
        assert r.returncode != 0 and "Read-only file system" in r.stderr, cmd
        r = run(cmd)
        assert r.returncode != 0 and "Read-only file system" in r.stderr, cmd
    with open(p, "rb") as f:
        assert f.read() == b"guarded value"
