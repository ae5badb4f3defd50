"""keyfs on "/dev/fd/N": the caller (a FUSE CSI driver, a container
runtime) opens /dev/fuse, mounts it itself with mount(2), and hands keyfs
the descriptor; libfuse then serves that descriptor instead of mounting.
Driven for real: this test mounts with ctypes' mount(2), starts keyfs with
the descriptor (pass_fds), uses the mount, unmounts with umount2(2), and
checks that keyfs exits 0.  Descriptors that are not /dev/fuse are
refused before anything starts.  Every mount made here is unmounted."""
import ctypes
import ctypes.util
import os
import subprocess
import time

import pytest

from conftest import (KEYFS_BIN, SANITIZER_MARKS, is_mounted, make_canary,
                      run, sanitizer_env)

MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="mount(2) of a /dev/fuse descriptor needs root (CAP_SYS_ADMIN)")

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def fuse_mount(fd, mnt, extra=""):
    """mount(2) /dev/fuse descriptor fd on mnt as a fuse.keyfs mount, the
    way a CSI driver does (default_permissions: the kernel checks modes,
    which keyfs's own mount(2) would have asked for)."""
    data = "fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions%s" % (
        fd, extra)
    rc = libc.mount(b"keyfs", mnt.encode(), b"fuse.keyfs",
                    MS_NOSUID | MS_NODEV, data.encode())
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount(2): " + os.strerror(e))


def umount(mnt, flags=0):
    if libc.umount2(mnt.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "umount2: " + os.strerror(e))


def wait_log(path, needle, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, "rb") as f:
            if needle in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture
def devfd(tmp_path):
    """(fd, mountpoint): /dev/fuse opened and mounted on a tmp dir; always
    unmounted afterwards (lazily if still busy)."""
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        pytest.skip("cannot open /dev/fuse: %s" % e)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    state = {"fd": fd}
    try:
        fuse_mount(fd, mnt)
    except OSError as e:
        os.close(fd)
        pytest.skip("cannot mount a /dev/fuse descriptor here: %s" % e)
    yield state, mnt
    if state["fd"] is not None:
        os.close(state["fd"])
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)
        if is_mounted(mnt):
            umount(mnt, MNT_DETACH)
    assert not is_mounted(mnt), "left mounted: " + mnt


@needs_root
def test_devfd_mount_serves_and_exits_on_unmount(devfd, tmp_path):
    state, mnt = devfd
    fd = state["fd"]
    canary = make_canary().encode()
    store = str(tmp_path / "store")
    log_path = str(tmp_path / "keyfs.log")
    arg = "/dev/fd/%d" % fd
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [KEYFS_BIN, "-f", "-o", "providers=local,store=" + store, arg],
            stdout=logf, stderr=subprocess.STDOUT, pass_fds=(fd,),
            env=sanitizer_env(dict(os.environ)))
    try:
        # Our copy closed: when keyfs goes, the connection goes with it
        # (ENOTCONN) instead of hanging callers on a descriptor nobody reads.
        os.close(fd)
        state["fd"] = None
        assert wait_log(log_path, b"mounted at " + arg.encode(), proc), \
            open(log_path, "rb").read()

        ring = os.path.join(mnt, "local", "ring")
        os.mkdir(ring)
        os.mkdir(os.path.join(ring, "key"))
        p = os.path.join(ring, "key", "v")
        with open(p, "wb") as f:
            f.write(canary)
        with open(p, "rb") as f:
            assert f.read() == canary
        assert sorted(os.listdir(os.path.join(mnt, "local"))) == ["ring"]
        # The caller's mount options are the kernel's: ours were not used.
        with open("/proc/mounts") as f:
            line = [l for l in f if l.split()[1] == os.path.realpath(mnt)][0]
        assert line.split()[2] == "fuse.keyfs"

        umount(mnt)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = open(log_path, "rb").read()
    assert canary not in log
    for m in SANITIZER_MARKS:
        assert m.encode() not in log, log
    assert not is_mounted(mnt)
    # The value outlived the mount, encrypted in the store.
    assert os.listdir(store)


@needs_root
def test_devfd_keyfs_killed_leaves_a_dead_mount(devfd, tmp_path):
    """keyfs gone (SIGTERM): the mount answers ENOTCONN, not a hang, since
    nobody else holds the descriptor; the caller unmounts."""
    state, mnt = devfd
    fd = state["fd"]
    log_path = str(tmp_path / "keyfs.log")
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [KEYFS_BIN, "-f", "-o",
             "providers=local,store=" + str(tmp_path / "store"),
             "/dev/fd/%d" % fd],
            stdout=logf, stderr=subprocess.STDOUT, pass_fds=(fd,),
            env=sanitizer_env(dict(os.environ)))
    try:
        os.close(fd)
        state["fd"] = None
        assert wait_log(log_path, b"mounted at", proc)
        assert os.listdir(mnt) != []
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        with pytest.raises(OSError) as e:
            os.stat(os.path.join(mnt, "local"))
        assert e.value.errno == 107  # ENOTCONN
        assert is_mounted(mnt)  # keyfs never unmounts what it did not mount
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_devfd_not_dev_fuse_is_refused(tmp_path):
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        r = subprocess.run(
            [KEYFS_BIN, "-f", "-o",
             "providers=local,store=" + str(tmp_path / "store"),
             "/dev/fd/%d" % fd],
            capture_output=True, text=True, pass_fds=(fd,), timeout=30,
            env=sanitizer_env(dict(os.environ)))
    finally:
        os.close(fd)
    assert r.returncode == 1
    assert "mountpoint /dev/fd/%d: descriptor %d is not /dev/fuse" % (fd, fd) \
        in r.stderr


def test_devfd_closed_descriptor_is_refused(tmp_path):
    r = run([KEYFS_BIN, "-f", "-o",
             "providers=local,store=" + str(tmp_path / "store"),
             "/dev/fd/987"])
    assert r.returncode == 1
    assert "mountpoint /dev/fd/987: descriptor 987 is not open" in r.stderr
