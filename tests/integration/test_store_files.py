"""Files of the on-disk store are what they claim to be: a FIFO, a
symbolic link or a directory where keyfs expects a regular file fails
promptly with EIO (never a hang), and a key file whose metadata was
changed outside keyfs is refused."""
import errno
import hashlib
import hmac
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import run


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def release_fifos(sdir):
    """Open every FIFO in sdir for writing and close it: a daemon thread
    blocked on one (code without the type check) gets end-of-file."""
    for name in os.listdir(sdir):
        p = os.path.join(sdir, name)
        if stat.S_ISFIFO(os.lstat(p).st_mode):
            os.close(os.open(p, os.O_RDWR | os.O_NONBLOCK))


def cat(path, sdir, timeout=10):
    """cat through the mount with a deadline: (returncode, stderr), or
    None when it hung (the FIFOs are then released so it can end)."""
    proc = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _, errb = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        release_fifos(sdir)
        proc.kill()
        proc.communicate(timeout=30)
        return None
    return proc.returncode, errb.decode("utf-8", "replace")


@pytest.fixture
def key(keyfs):
    m = keyfs(ttl=30)
    os.makedirs(m.path("local", "ring", "key"))
    sdir = os.path.join(m.store, "local", "ring", "key")
    yield m, m.path("local", "ring", "key"), sdir
    release_fifos(sdir)


def fifo_in_place(sdir, name):
    p = os.path.join(sdir, name)
    os.unlink(p)
    os.mkfifo(p, 0o600)


def written_and_looked_up(k, name, data):
    """A value written, then known as a file (its name looked up) but not
    cached: the store changes behind keyfs before the first read."""
    p = os.path.join(k, name)
    write(p, data)
    # Any change of attributes makes keyfs forget what it cached.
    with pytest.raises(OSError):
        os.setxattr(p, "user.other", b"1")
    assert os.stat(p).st_size == len(data)


def test_fifo_value_fails_promptly_and_the_mount_keeps_serving(key):
    m, k, sdir = key
    write(os.path.join(k, "good"), b"still served")
    names = ["f%02d" % i for i in range(20)]
    for n in names:
        written_and_looked_up(k, n, b"to be replaced")
        fifo_in_place(sdir, n)
    t0 = time.monotonic()
    for n in names:
        r = cat(os.path.join(k, n), sdir)
        assert r is not None, "cat of a FIFO value hung"
        assert r[0] != 0
        assert "Input/output error" in r[1]
    assert time.monotonic() - t0 < 20
    assert read(os.path.join(k, "good")) == b"still served"
    write(os.path.join(k, "later"), b"written after")
    assert read(os.path.join(k, "later")) == b"written after"
    time.sleep(0.2)
    assert "local/ring/key/f00 is not a regular file" in m.log()


def test_symlink_value_is_refused(key):
    m, k, sdir = key
    write(os.path.join(k, "target"), b"the target")
    written_and_looked_up(k, "link", b"the link")
    os.unlink(os.path.join(sdir, "link"))
    os.symlink("target", os.path.join(sdir, "link"))
    r = cat(os.path.join(k, "link"), sdir)
    assert r is not None and r[0] != 0
    assert "Input/output error" in r[1]
    time.sleep(0.2)
    assert "local/ring/key/link is a symbolic link" in m.log()
    assert read(os.path.join(k, "target")) == b"the target"


def test_directory_value_is_refused(key):
    m, k, sdir = key
    written_and_looked_up(k, "d", b"soon a directory")
    os.unlink(os.path.join(sdir, "d"))
    os.mkdir(os.path.join(sdir, "d"))
    r = cat(os.path.join(k, "d"), sdir)
    assert r is not None and r[0] != 0
    assert "Input/output error" in r[1]
    time.sleep(0.2)
    assert "local/ring/key/d is not a regular file" in m.log()


# ---- key files: their metadata is authenticated by the master key -------

def oserr(fn, *a):
    with pytest.raises(OSError) as e:
        fn(*a)
    return e.value.errno


def rotated_key(keyfs, name="k"):
    """A key rotated once (primary 2) holding v, written under version 2."""
    m = keyfs(name, ttl=0)
    k = m.path("local", "ring", "key")
    os.makedirs(k)
    write(os.path.join(k, "v"), b"under version 1")
    os.setxattr(k, "user.keyfs.rotate", b"1")
    assert os.getxattr(k, "user.keyfs.primary") == b"2"
    write(os.path.join(k, "v"), b"under version 2")
    return m, k, os.path.join(m.store, "local", "ring", "key")


def header_version(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8)[4:8], "big")


def edit_key_file(kf, change):
    with open(kf) as f:
        doc = json.load(f)
    change(doc)
    with open(kf, "w") as f:
        json.dump(doc, f)


def test_primary_set_back_is_refused_and_nothing_uses_the_old_version(keyfs):
    m, k, sdir = rotated_key(keyfs)
    kf = os.path.join(sdir, ".key.json")
    saved = open(kf, "rb").read()
    before = open(os.path.join(sdir, "v"), "rb").read()
    assert header_version(os.path.join(sdir, "v")) == 2
    # A store writer undoes the rotation: primary back to version 1.
    edit_key_file(kf, lambda d: d.__setitem__("primary", 1))
    assert oserr(write, os.path.join(k, "v"), b"would be version 1") == \
        errno.EIO
    r = subprocess.run(["bash", "-c", 'echo -n new > "$1"', "_",
                        os.path.join(k, "w")])
    assert r.returncode != 0
    assert oserr(os.getxattr, k, "user.keyfs.primary") == errno.EIO
    assert oserr(os.setxattr, k, "user.keyfs.rotate", b"1") == errno.EIO
    assert oserr(read, os.path.join(k, "v")) == errno.EIO
    # Nothing was encrypted under the old version, nothing was repaired.
    assert open(os.path.join(sdir, "v"), "rb").read() == before
    # (.versions keeps the value written before the rotation)
    assert sorted(os.listdir(sdir)) == [".key.json", ".versions", "v"]
    assert os.listdir(os.path.join(sdir, ".versions", "v")) == ["1"]
    assert json.load(open(kf))["primary"] == 1
    time.sleep(0.2)
    assert ("key file %s does not authenticate" % kf) in m.log()
    # The real file back: everything works again, under version 2.
    with open(kf, "wb") as f:
        f.write(saved)
    assert os.getxattr(k, "user.keyfs.primary") == b"2"
    write(os.path.join(k, "v"), b"rewritten")
    assert read(os.path.join(k, "v")) == b"rewritten"
    assert header_version(os.path.join(sdir, "v")) == 2


def test_edited_versions_missing_tag_or_copied_key_file_are_refused(keyfs):
    m, k, sdir = rotated_key(keyfs)
    kf = os.path.join(sdir, ".key.json")
    saved = open(kf, "rb").read()
    # The newest version dropped (primary still names an existing one).
    edit_key_file(kf, lambda d: (d.__setitem__("versions", d["versions"][:1]),
                                 d.__setitem__("primary", 1)))
    assert oserr(write, os.path.join(k, "v"), b"x") == errno.EIO
    # The tag removed: this store's key files all carry one.
    with open(kf, "wb") as f:
        f.write(saved)
    edit_key_file(kf, lambda d: d.pop("mac"))
    assert oserr(os.getxattr, k, "user.keyfs.primary") == errno.EIO
    assert oserr(write, os.path.join(k, "v"), b"x") == errno.EIO
    time.sleep(0.2)
    assert ("key file %s has no authentication tag" % kf) in m.log()
    with open(kf, "wb") as f:
        f.write(saved)
    # A key file copied from another key (tag and all) is not this key's.
    os.mkdir(m.path("local", "ring", "key2"))
    kf2 = os.path.join(m.store, "local", "ring", "key2", ".key.json")
    with open(kf2, "wb") as f:
        f.write(saved)
    assert oserr(os.getxattr, m.path("local", "ring", "key2"),
                 "user.keyfs.primary") == errno.EIO
    assert read(os.path.join(k, "v")) == b"under version 2"


def old_check_line(master):
    """The check value keyfs wrote before key files carried tags."""
    mac = hmac.new(master, b"keyfs-local-master-check-v1",
                   hashlib.sha256).hexdigest()
    return ("keyfs-master-check 1 %s\n" % mac).encode()


def test_store_from_before_tags_is_tagged_at_mount_then_enforced(keyfs):
    m, k, sdir = rotated_key(keyfs, "old")
    m.stop()
    kf = os.path.join(sdir, ".key.json")
    check = os.path.join(m.store, "local", ".master-check")
    master = open(os.path.join(m.store, "master.key"), "rb").read()
    # As an older keyfs left it: no tag, a version-1 check value.
    edit_key_file(kf, lambda d: d.pop("mac"))
    with open(check, "wb") as f:
        f.write(old_check_line(master))
    # A read-only mount uses it as it is and changes nothing.
    ro = keyfs("ro", store=m.store, ro=True, ttl=0)
    kro = ro.path("local", "ring", "key")
    assert read(os.path.join(kro, "v")) == b"under version 2"
    assert os.getxattr(kro, "user.keyfs.primary") == b"2"
    assert "mac" not in json.load(open(kf))
    ro.stop()
    # A writable mount (the master key proven by the check value) tags
    # every key file, then says so in the check file.
    m2 = keyfs("new", store=m.store, ttl=0)
    k2 = m2.path("local", "ring", "key")
    doc = json.load(open(kf))
    assert len(doc.get("mac", "")) == 64 and doc["primary"] == 2
    assert open(check, "rb").read().startswith(b"keyfs-master-check 2 ")
    assert read(os.path.join(k2, "v")) == b"under version 2"
    write(os.path.join(k2, "v"), b"after tagging")
    assert header_version(os.path.join(sdir, "v")) == 2
    # From now on a key file without its tag is refused.
    edit_key_file(kf, lambda d: (d.pop("mac"), d.__setitem__("primary", 1)))
    assert oserr(write, os.path.join(k2, "v"), b"x") == errno.EIO
    assert oserr(os.getxattr, k2, "user.keyfs.primary") == errno.EIO
