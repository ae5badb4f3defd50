"""Files of the on-disk store are what they claim to be: a FIFO, a
symbolic link or a directory where keyfs expects a regular file fails
promptly with EIO (never a hang), and a key file whose metadata was
changed outside keyfs is refused."""
import errno
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
