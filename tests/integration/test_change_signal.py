"""The change signal: values read through the mount are watched, a change
made elsewhere (the AWS CLI against moto, a second mount of a local/
store) runs -o on_change once and appends one line to .keyfs/events,
which `tail -F` follows on a read-only mount and poll() waits on on a
writable one; user.keyfs.stale says when a stale value is served."""
import errno
import json
import os
import re
import select
import stat
import subprocess
import time

import pytest

from conftest import KEYFS_BIN, make_canary, run
from test_aws import REGION, cli, moto, moto_url, mount, read  # noqa: F401
from test_faults import FaultProxy

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (/\S.*)$")


def events(m):
    with open(m.path(".keyfs", "events"), "rb") as f:
        return f.read().decode()


def event_paths(m):
    """The paths of the events file's lines (blank lines skipped)."""
    out = []
    for line in events(m).splitlines():
        if line:
            mt = LINE.match(line)
            assert mt, "malformed event line"
            out.append(mt.group(1))
    return out


def wait_for(cond, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def recorder(tmp_path):
    """An on_change program that appends its argv, environment and open
    descriptors to a log, one block per run."""
    log = tmp_path / "runs.log"
    prog = tmp_path / "on-change.sh"
    prog.write_text("#!/bin/sh\n{ echo \"ARGV $*\"; env | sed 's/^/ENV /';"
                    " ls -l /proc/$$/fd | sed 's/^/FD /'; } >> %s\n" % log)
    prog.chmod(0o755)
    return str(prog), log


def runs(log):
    text = log.read_text() if log.exists() else ""
    return [l[5:] for l in text.splitlines() if l.startswith("ARGV ")], text


# ---- aws/: a rotation with the AWS CLI while nobody reads -----------------

def test_rotation_elsewhere_runs_on_change_once(keyfs, tmp_path, moto):
    old, new = make_canary(), make_canary()
    cli(moto, "create-secret", "--name", "rot", "--secret-string", old)
    cli(moto, "create-secret", "--name", "still", "--secret-string", "same")
    prog, log = recorder(tmp_path)
    m = mount(keyfs, tmp_path, moto, ttl="2", on_change=prog)
    rot = os.path.realpath(m.path("aws", REGION, "rot"))
    still = os.path.realpath(m.path("aws", REGION, "still"))
    assert read(rot) == old.encode() and read(still) == b"same"
    assert wait_for(lambda: False, 5) is False  # two rounds: no change
    assert runs(log)[0] == [] and event_paths(m) == []
    cli(moto, "put-secret-value", "--secret-id", "rot", "--secret-string",
        new)
    assert wait_for(lambda: runs(log)[0], 10), "on_change did not run"
    time.sleep(5)  # more rounds: nothing more
    argv, text = runs(log)
    assert argv == [rot]
    env = [l for l in text.splitlines() if l.startswith("ENV ")]
    assert "ENV KEYFS_PATH=" + rot in env
    assert not any(l.startswith("ENV AWS_") for l in env)
    assert old not in text and new not in text
    assert not any("/dev/fuse" in l for l in text.splitlines()
                   if l.startswith("FD "))
    assert event_paths(m) == [rot]
    assert read(rot) == new.encode()
    assert old not in m.log() and new not in m.log()


# ---- local/: another route, tail -F on a read-only mount, poll() ---------

def local_pair(keyfs, ro_reader, **opts):
    """A writer mount and a reader mount of one local/ store."""
    w = keyfs(name="w", ttl="1")
    k = w.path("local", "ring", "key")
    os.makedirs(k)
    with open(os.path.join(k, "v"), "wb") as f:
        f.write(b"one")
    extra = {"ro": True} if ro_reader else {}
    r = keyfs(name="r", store=w.store, ttl="1", **extra, **opts)
    return w, r


def test_tail_follows_events_on_a_read_only_mount(keyfs):
    w, r = local_pair(keyfs, True)
    v = os.path.realpath(r.path("local", "ring", "key", "v"))
    assert read(v) == b"one"
    tail = subprocess.Popen(["tail", "-F", "-n", "+1",
                             r.path(".keyfs", "events")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5)
        with open(w.path("local", "ring", "key", "v"), "wb") as f:
            f.write(b"two")
        ready, _, _ = select.select([tail.stdout], [], [], 15)
        assert ready, "tail -F saw no event"
        line = tail.stdout.readline().decode().rstrip("\n")
    finally:
        tail.kill()
        tail.wait(timeout=10)
    mt = LINE.match(line)
    assert mt and mt.group(1) == v
    assert read(v) == b"two"
    assert event_paths(r) == [v]


def test_poll_waits_for_a_change_on_a_writable_mount(keyfs):
    w, r = local_pair(keyfs, False)
    v = os.path.realpath(r.path("local", "ring", "key", "v"))
    assert read(v) == b"one"
    fd = os.open(r.path(".keyfs", "events"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(2500) == []  # no change: poll() blocks
        with open(w.path("local", "ring", "key", "v"), "wb") as f:
            f.write(b"two")
        got = p.poll(15000)
        assert got and got[0][1] & select.POLLIN
        line = os.read(fd, 4096).decode().rstrip("\n")
        assert LINE.match(line).group(1) == v
        assert p.poll(1500) == []  # read to the end: blocks again
    finally:
        os.close(fd)


def test_keyfs_directory_is_read_only_and_apart(keyfs):
    m = keyfs(name="k")
    assert sorted(os.listdir(m.mnt)) == [".keyfs", "local"]
    assert os.listdir(m.path(".keyfs")) == ["events"]
    d, e = os.stat(m.path(".keyfs")), os.stat(m.path(".keyfs", "events"))
    assert stat.S_ISDIR(d.st_mode) and stat.S_IMODE(d.st_mode) == 0o555
    assert stat.S_ISREG(e.st_mode) and stat.S_IMODE(e.st_mode) == 0o444
    assert e.st_size == 0
    ev = m.path(".keyfs", "events")
    for fn in (lambda: open(ev, "wb"), lambda: os.unlink(ev),
               lambda: os.chmod(ev, 0o644),
               lambda: os.mkdir(m.path(".keyfs", "x")),
               lambda: open(m.path(".keyfs", "new"), "wb"),
               lambda: os.rmdir(m.path(".keyfs")),
               lambda: os.setxattr(ev, "user.x", b"1")):
        with pytest.raises(OSError) as ei:
            fn()
        assert ei.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS,
                                  errno.ENOTEMPTY)
    assert os.listdir(m.path(".keyfs")) == ["events"]
    assert stat.S_IMODE(os.stat(ev).st_mode) == 0o444
    assert os.getxattr(m.mnt, "user.keyfs.stats")


def test_change_options_are_checked_before_mounting(keyfs, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opt, why in (("on_change=true", "an absolute path"),
                     ("on_change=/nonexistent/prog", "an absolute path"),
                     ("on_change=/etc/passwd", "an absolute path"),
                     ("watch_max=lots", "0 to 1000000"),
                     ("watch_max=1000001", "0 to 1000000")):
        r = run([KEYFS_BIN, "-o", "store=%s,%s" % (tmp_path / "s", opt),
                 str(mnt)], timeout=20)
        assert r.returncode != 0, opt
        assert opt in r.stderr and why in r.stderr, r.stderr
    m = keyfs(name="ok", watch_max="0", on_change="/bin/true --quiet")
    assert os.listdir(m.path(".keyfs")) == ["events"]


# ---- user.keyfs.stale ---------------------------------------------------

def test_stale_attribute_while_the_provider_is_down(keyfs, tmp_path, moto):
    cli(moto, "create-secret", "--name", "s", "--secret-string", "val")
    proxy = FaultProxy(moto)
    try:
        m = mount(keyfs, tmp_path, proxy.url, ttl="1", max_stale="3600",
                  timeout="5")
        p = m.path("aws", REGION, "s")
        assert read(p) == b"val"
        assert "user.keyfs.stale" in os.listxattr(p)
        assert os.getxattr(p, "user.keyfs.stale") == b"0"
        proxy.down()
        time.sleep(1.5)
        assert read(p) == b"val"  # served stale
        assert os.getxattr(p, "user.keyfs.stale") == b"1"
        proxy.up()

        def fresh_again():
            return read(p) == b"val" and \
                os.getxattr(p, "user.keyfs.stale") == b"0"
        assert wait_for(fresh_again, 20, step=0.5)
    finally:
        proxy.stop()


def test_a_write_through_the_mount_is_one_event_too(keyfs, tmp_path):
    """A value read once, then written through the same mount and never
    read again: the next round reports it once, and the views read from
    it once each."""
    prog, log = recorder(tmp_path)
    m = keyfs(ttl="1", on_change=prog)
    k = m.path("local", "ring", "key")
    os.makedirs(k)
    v = os.path.join(k, "v")
    with open(v, "w") as f:
        f.write('{"a":"1","b":"1"}')
    assert read(v) == b'{"a":"1","b":"1"}'
    assert read(v + "#a") == b"1" and read(v + "#b") == b"1"
    time.sleep(2.5)
    assert event_paths(m) == []
    with open(v, "w") as f:
        f.write('{"a":"2","b":"1"}')
    real = os.path.realpath(v)
    assert wait_for(lambda: len(event_paths(m)) >= 2, 10)
    time.sleep(2.5)  # two more rounds: nothing more
    assert sorted(event_paths(m)) == sorted([real, real + "#a"])
    assert sorted(runs(log)[0]) == sorted([real, real + "#a"])
    st = json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))["watch"]
    assert (st["watched"], st["changes"], st["gone"]) == (3, 2, 0)
    assert st["rounds"] >= 3 and st["stamps"] >= st["rounds"] - 1
