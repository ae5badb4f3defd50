"""The embedded local/ provider and the common filesystem semantics,
driven through a real mount with system calls and shell commands."""
import errno
import os
import stat
import subprocess
import time

import pytest

from conftest import (
    KEYFS_BIN, grep_tree, make_canary, run, write_file as write,
    read_file as read, oserr)


def _key(keyfs, **opts):
    m = keyfs(**opts)
    os.mkdir(m.path("local", "ring"))
    os.mkdir(m.path("local", "ring", "key"))
    return m, m.path("local", "ring", "key")


@pytest.fixture
def key(keyfs):
    return _key(keyfs)


@pytest.fixture
def key_nocache(keyfs):
    """For tests that change the store behind keyfs's back."""
    return _key(keyfs, ttl=0)


def test_layout_and_listing(key):
    m, k = key
    assert sorted(os.listdir(m.mnt)) == [".keyfs", "local"]
    assert os.listdir(m.path("local")) == ["ring"]
    assert os.listdir(m.path("local", "ring")) == ["key"]
    assert os.listdir(k) == []
    write(os.path.join(k, "a"), b"1")
    write(os.path.join(k, "b"), b"22")
    assert sorted(os.listdir(k)) == ["a", "b"]
    assert os.stat(os.path.join(k, "b")).st_size == 2
    out = run(["ls", "-l", k]).stdout
    assert " a\n" in out and " b\n" in out


@pytest.mark.parametrize("data", [
    b"hello", b"x", b"", bytes(range(256)) * 3, b"\x00\x00\x01\x00",
    os.urandom(65536), "héllo wörld ✓".encode(),
], ids=["text", "one-byte", "empty", "binary", "nuls", "64KiB", "utf8"])
def test_round_trip(key, data):
    m, k = key
    p = os.path.join(k, "v")
    write(p, data)
    assert read(p) == data
    assert os.stat(p).st_size == len(data)


def test_shell_round_trip_and_overwrite(key):
    m, k = key
    p = os.path.join(k, "openai")
    assert run(["sh", "-c", "echo -n first > " + p]).returncode == 0
    assert run(["cat", p]).stdout == "first"
    assert run(["sh", "-c", "echo -n second-longer > " + p]).returncode == 0
    assert read(p) == b"second-longer"
    assert run(["sh", "-c", "echo -n 2 > " + p]).returncode == 0
    assert read(p) == b"2"
    assert run(["sh", "-c", "echo -n more >> " + p]).returncode == 0
    assert read(p) == b"2more"
    os.truncate(p, 2)
    assert read(p) == b"2m"
    os.truncate(p, 0)
    assert read(p) == b""
    # A write at an offset keeps the rest of the value.
    write(p, b"abcdef")
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, b"XY", 2)
    os.close(fd)
    assert read(p) == b"abXYef"


def test_rm(key):
    m, k = key
    p = os.path.join(k, "gone")
    write(p, b"v")
    os.unlink(p)
    assert not os.path.exists(p)
    assert oserr(read, p) == errno.ENOENT
    assert oserr(os.unlink, p) == errno.ENOENT


def test_touch_creates_empty(key):
    m, k = key
    p = os.path.join(k, "t")
    assert run(["touch", p]).returncode == 0
    assert read(p) == b""
    assert run(["touch", p]).returncode == 0   # utimens on an existing file


def test_too_big(key):
    m, k = key
    p = os.path.join(k, "big")
    write(p, b"a" * 65536)
    assert read(p) == b"a" * 65536
    assert oserr(write, p, b"b" * 65537) == errno.EFBIG
    # Nothing changed: the previous value is still there.
    assert read(p) == b"a" * 65536


def test_rmdir_rules(key):
    m, k = key
    write(os.path.join(k, "v"), b"1")
    assert oserr(os.rmdir, k) == errno.ENOTEMPTY
    assert oserr(os.rmdir, m.path("local", "ring")) == errno.ENOTEMPTY
    os.unlink(os.path.join(k, "v"))
    os.rmdir(k)
    assert not os.path.exists(k)
    os.rmdir(m.path("local", "ring"))
    assert os.listdir(m.path("local")) == []
    assert not os.path.exists(os.path.join(m.store, "local", "ring"))
    assert oserr(os.rmdir, m.path("local")) == errno.EPERM


def test_mkdir_rules(key):
    m, k = key
    assert oserr(os.mkdir, k) == errno.EEXIST
    assert oserr(os.mkdir, m.path("local", "nope", "key")) == errno.ENOENT
    assert oserr(os.mkdir, os.path.join(k, "sub")) == errno.EPERM
    assert oserr(os.mkdir, m.path("newprovider")) == errno.EPERM
    # A value file needs an existing key.
    assert oserr(write, m.path("local", "ring", "nokey", "v"), b"1") == errno.ENOENT
    # Values live only at RING/KEY/NAME.
    assert oserr(write, m.path("local", "ring", "file"), b"1") == errno.EPERM


@pytest.mark.parametrize("name", ["bad.name", "sp ace", "x" * 64, "dollar$", "ümlaut"])
def test_invalid_ring_and_key_names(key, name):
    m, k = key
    assert oserr(os.mkdir, m.path("local", name)) == errno.EINVAL
    assert oserr(os.mkdir, m.path("local", "ring", name)) == errno.EINVAL
    assert name not in os.listdir(m.path("local"))


# (.hidden is a new temporary-looking name: held in memory, see
# test_temp_names.py)
@pytest.mark.parametrize("name", ["sp ace", "a" * 256, "semi;colon", "quo'te"])
def test_invalid_value_names(key, name):
    m, k = key
    assert oserr(write, os.path.join(k, name), b"v") in (errno.EINVAL, errno.ENAMETOOLONG)
    assert os.listdir(k) == []


def test_unsupported_operations_change_nothing(key):
    m, k = key
    p = os.path.join(k, "v")
    write(p, b"value")
    assert oserr(os.rename, p, os.path.join(k, "w")) == errno.EPERM
    assert oserr(os.link, p, os.path.join(k, "w")) == errno.EPERM
    assert oserr(os.symlink, "v", os.path.join(k, "w")) == errno.EPERM
    assert oserr(os.mknod, os.path.join(k, "w"), stat.S_IFIFO | 0o600) == errno.EPERM
    assert oserr(os.rename, k, m.path("local", "ring", "k2")) == errno.EPERM
    assert os.listdir(k) == ["v"]
    assert read(p) == b"value"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600


def test_rotation_old_files_still_read(key):
    m, k = key
    write(os.path.join(k, "old"), b"before rotation")
    assert os.getxattr(k, "user.keyfs.primary") == b"1"
    assert os.getxattr(os.path.join(k, "old"), "user.keyfs.version") == b"1"
    r = run(["setfattr", "-n", "user.keyfs.rotate", "-v", "1", k])
    assert r.returncode == 0, r.stderr
    assert os.getxattr(k, "user.keyfs.primary") == b"2"
    write(os.path.join(k, "new"), b"after rotation")
    assert os.getxattr(os.path.join(k, "new"), "user.keyfs.version") == b"2"
    assert read(os.path.join(k, "old")) == b"before rotation"
    assert read(os.path.join(k, "new")) == b"after rotation"
    # Rewriting an old file moves it to the new primary.
    write(os.path.join(k, "old"), b"rewritten")
    assert os.getxattr(os.path.join(k, "old"), "user.keyfs.version") == b"2"


def test_xattrs(key):
    m, k = key
    write(os.path.join(k, "v"), b"1")
    out = run(["getfattr", "-d", k]).stdout
    assert 'user.keyfs.id="local/ring/key"' in out
    assert 'user.keyfs.primary="1"' in out
    assert os.getxattr(os.path.join(k, "v"), "user.keyfs.id") == b"local/ring/key/v"
    assert oserr(os.getxattr, k, "user.nothing") == errno.ENODATA
    assert oserr(os.setxattr, k, "user.keyfs.id", b"x") == errno.EPERM
    assert oserr(os.setxattr, k, "user.other", b"x") == errno.ENOTSUP
    assert oserr(os.setxattr, k, "user.keyfs.rotate", b"0") == errno.EINVAL
    assert oserr(os.setxattr, os.path.join(k, "v"), "user.keyfs.rotate", b"1") == errno.EPERM
    assert set(os.listxattr(k)) == {"user.keyfs.id", "user.keyfs.primary"}


def test_persistence_across_remount(keyfs, tmp_path):
    m = keyfs("a")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"persisted \x00 value")
    m.stop()
    assert not os.path.exists(m.path("local"))
    m2 = keyfs("b", store=m.store)
    assert read(m2.path("local", "r", "k", "v")) == b"persisted \x00 value"


def test_moved_ciphertext_fails_to_decrypt(key_nocache):
    m, k = key_nocache
    write(os.path.join(k, "a"), b"bound to a")
    write(os.path.join(k, "b"), b"bound to b")
    sdir = os.path.join(m.store, "local", "ring", "key")
    os.replace(os.path.join(sdir, "a"), os.path.join(sdir, "b"))
    assert oserr(read, os.path.join(k, "b")) == errno.EIO
    time.sleep(0.2)
    assert "bound to another path" in m.log()
    # Tampering with one byte is caught the same way.
    write(os.path.join(k, "c"), b"tamper me")
    p = os.path.join(sdir, "c")
    data = bytearray(open(p, "rb").read())
    data[25] ^= 1
    open(p, "wb").write(bytes(data))
    assert oserr(read, os.path.join(k, "c")) == errno.EIO


def test_failed_commit_keeps_old_value(key_nocache):
    m, k = key_nocache
    p = os.path.join(k, "v")
    write(p, b"old value")
    keyfile = os.path.join(m.store, "local", "ring", "key", ".key.json")
    saved = open(keyfile, "rb").read()
    # A key file damaged before the open: the open for writing says so.
    open(keyfile, "wb").write(b"{damaged")
    with pytest.raises(OSError) as e:
        os.open(p, os.O_WRONLY | os.O_TRUNC)
    assert e.value.errno == errno.EIO
    r = subprocess.run(["bash", "-c", 'echo -n new > "$1"', "_", p])
    assert r.returncode != 0
    open(keyfile, "wb").write(saved)
    # Damaged between the open and the close: the close says so.
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"new value")
    open(keyfile, "wb").write(b"{damaged")
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EIO
    open(keyfile, "wb").write(saved)
    assert read(p) == b"old value"
    # fsync reports the failure too.
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    open(keyfile, "wb").write(b"{damaged")
    os.write(fd, b"X")
    with pytest.raises(OSError) as e:
        os.fsync(fd)
    assert e.value.errno == errno.EIO
    os.close(fd)
    open(keyfile, "wb").write(saved)
    assert read(p) == b"old value"


def test_permission_bits_default(key):
    m, k = key
    write(os.path.join(k, "v"), b"1")
    st = os.stat(os.path.join(k, "v"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid() and st.st_gid == os.getgid()
    for d in (m.mnt, m.path("local"), m.path("local", "ring"), k):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    # Nothing in the store is readable by others either.
    for dirpath, dirs, files in os.walk(m.store):
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode) == 0o600


def test_uid_gid_umask(keyfs):
    m = keyfs(uid=1234, gid=2345, umask="027")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"1")
    st = os.stat(m.path("local", "r", "k", "v"))
    assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert stat.S_IMODE(os.stat(m.path("local", "r")).st_mode) == 0o750


def test_other_user_refused_without_allow_other(key):
    m, k = key
    write(os.path.join(k, "v"), b"secret")
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "cat", os.path.join(k, "v")])
    assert r.returncode != 0
    assert "secret" not in r.stdout


def test_allow_other_still_checks_bits(keyfs):
    m = keyfs(allow_other=True)
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"secret")
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "cat", m.path("local", "r", "k", "v")])
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_read_only(keyfs):
    m = keyfs("rw")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"ro value")
    m.stop()
    m = keyfs("ro", store=m.store, ro=True)
    k = m.path("local", "r", "k")
    assert read(os.path.join(k, "v")) == b"ro value"
    assert oserr(write, os.path.join(k, "v"), b"x") == errno.EROFS
    assert oserr(write, os.path.join(k, "new"), b"x") == errno.EROFS
    assert oserr(os.mkdir, m.path("local", "r2")) == errno.EROFS
    assert oserr(os.unlink, os.path.join(k, "v")) == errno.EROFS
    assert oserr(os.rmdir, k) == errno.EROFS
    assert oserr(os.setxattr, k, "user.keyfs.rotate", b"1") == errno.EROFS
    assert oserr(os.truncate, os.path.join(k, "v"), 0) == errno.EROFS
    assert read(os.path.join(k, "v")) == b"ro value"


def test_kill9_mid_write_keeps_old_value(keyfs):
    m = keyfs("w")
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "v")
    write(p, b"the old value")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"half of a new val")
    m.kill9()
    try:
        os.close(fd)
    except OSError:
        pass
    sdir = os.path.join(m.store, "local", "r", "k")
    assert sorted(os.listdir(sdir)) == [".key.json", "v"]
    m2 = keyfs("w2", store=m.store)
    assert read(m2.path("local", "r", "k", "v")) == b"the old value"


def test_killed_writer_never_commits(key):
    """A writer killed by a signal mid-write leaves the old value: the
    kernel's close-on-exit flush must not commit the partial data."""
    m, k = key
    p = os.path.join(k, "v")
    write(p, b"the old value")
    code = ("import os,time; fd=os.open(%r, os.O_WRONLY|os.O_TRUNC); "
            "os.write(fd, b'partial'); print('ready', flush=True); "
            "time.sleep(60)" % p)
    w = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE)
    assert w.stdout.readline().strip() == b"ready"
    w.kill()
    w.wait(timeout=10)
    assert read(p) == b"the old value"
    time.sleep(0.2)
    assert "killed by signal 9" in m.log()


def test_canary_never_logged_or_stored_in_plaintext(keyfs):
    canary = make_canary()
    m = keyfs("c", args=("-d",))
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "v")
    write(p, canary.encode())
    assert read(p) == canary.encode()
    os.setxattr(m.path("local", "r", "k"), "user.keyfs.rotate", b"1")
    write(p, canary.encode() + b"-2")
    assert read(p) == canary.encode() + b"-2"
    m.stop()
    log = m.log()
    assert "committed /local/r/k/v [REDACTED" in log   # the log is on
    assert canary not in log
    assert grep_tree(m.store, canary.encode()) == []
    assert grep_tree(m.base, canary.encode()) == []


def test_statfs_and_df(key):
    m, k = key
    st = os.statvfs(m.mnt)
    assert st.f_namemax == 255
    assert run(["df", m.mnt]).returncode == 0


# ---- the master key: never invented for a store that has one ------------

def _store_with_value(keyfs, tmp_path, **opts):
    m = keyfs("mk1", ttl="0", **opts)
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"kept value")
    m.stop()
    return m


def test_missing_master_key_is_eio_and_never_replaced(keyfs, tmp_path):
    mk = str(tmp_path / "keys" / "master.key")
    os.makedirs(os.path.dirname(mk))
    m = _store_with_value(keyfs, tmp_path, local_master_key=mk)
    check = os.path.join(m.store, "local", ".master-check")
    assert os.path.getsize(check) > 0
    saved = open(mk, "rb").read()
    os.unlink(mk)                      # a tmpfs key file not filled yet
    m2 = keyfs("mk2", store=m.store, ttl="0", local_master_key=mk)
    assert "master key file %s is missing" % mk in m2.log()
    p = m2.path("local", "r", "k", "v")
    assert oserr(read, p) == errno.EIO
    assert oserr(os.mkdir, m2.path("local", "r", "k2")) == errno.EIO
    assert not os.path.exists(mk), "a new master key was invented"
    assert "master key file %s is missing" % mk in m2.log()
    assert os.listdir(m2.path("local", "r")) == ["k"]
    # The real key comes back: everything works again, nothing was lost.
    with open(mk, "wb") as f:
        f.write(saved)
    os.chmod(mk, 0o600)
    assert read(p) == b"kept value"
    os.mkdir(m2.path("local", "r", "k2"))
    write(m2.path("local", "r", "k2", "w"), b"later")
    assert read(m2.path("local", "r", "k2", "w")) == b"later"


def test_wrong_master_key_is_refused_with_a_clear_message(keyfs, tmp_path):
    m = _store_with_value(keyfs, tmp_path)
    mk = os.path.join(m.store, "master.key")
    saved = open(mk, "rb").read()
    with open(mk, "wb") as f:
        f.write(os.urandom(32))
    r = run([KEYFS_BIN, "-f", "-o", "store=" + m.store,
             str(tmp_path / "mk1-mnt")], timeout=20)
    assert r.returncode == 1
    assert "is not the key of this store" in r.stderr, r.stderr
    # Missing at mount, then a wrong key appears: EIO, and the log says
    # which file is wrong.
    os.unlink(mk)
    m2 = keyfs("mk2", store=m.store, ttl="0")
    with open(mk, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(mk, 0o600)
    p = m2.path("local", "r", "k", "v")
    assert oserr(read, p) == errno.EIO
    assert "master key file %s is not the key of this store" % mk in m2.log()
    with open(mk, "wb") as f:
        f.write(saved)
    assert read(p) == b"kept value"


def test_store_without_check_value_gets_one_and_keeps_its_key(keyfs,
                                                              tmp_path):
    # A store made before the check value existed: the key files alone
    # forbid a new master key.
    m = _store_with_value(keyfs, tmp_path)
    check = os.path.join(m.store, "local", ".master-check")
    os.unlink(check)
    mk = os.path.join(m.store, "master.key")
    saved = open(mk, "rb").read()
    os.unlink(mk)
    m2 = keyfs("mk2", store=m.store, ttl="0")
    assert oserr(os.mkdir, m2.path("local", "r", "k2")) == errno.EIO
    assert not os.path.exists(mk)
    m2.stop()
    with open(mk, "wb") as f:
        f.write(saved)
    os.chmod(mk, 0o600)
    m3 = keyfs("mk3", store=m.store, ttl="0")
    assert read(m3.path("local", "r", "k", "v")) == b"kept value"
    assert os.path.exists(check)       # written once the key was proven


def test_relative_master_key_path_resolved_before_detaching(keyfs, tmp_path):
    os.makedirs(tmp_path / "keys")
    mnt = tmp_path / "rel-mnt"
    mnt.mkdir()
    store = tmp_path / "relstore"
    r = run([KEYFS_BIN, "-o", "store=%s,local_master_key=keys/mk" % store,
             str(mnt)], cwd=str(tmp_path), timeout=20)
    try:
        assert r.returncode == 0, r.stderr
        os.makedirs(mnt / "local" / "r" / "k")
        write(str(mnt / "local" / "r" / "k" / "v"), b"x")
        assert os.path.getsize(tmp_path / "keys" / "mk") == 32
        assert not os.path.exists("/keys/mk")
    finally:
        run(["fusermount3", "-u", str(mnt)])
