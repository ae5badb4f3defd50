"""Versions of local/ values through real mounts: every commit of NAME
makes the next version number, the last ten are kept, read as NAME:N and
NAME:latest (with #FIELD on JSON values), listed by the attribute
user.keyfs.versions newest first, never listed as files, read-only; a
bad write is undone with `cat NAME:N > NAME`; rm takes the versions with
it and numbers are never given twice."""
import errno
import json
import os
import re
import subprocess
import time

import pytest

from conftest import make_canary, run

VERSIONS = "user.keyfs.versions"


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def oserr(fn, *a):
    with pytest.raises(OSError) as e:
        fn(*a)
    return e.value.errno


def key_dir(m):
    k = m.path("local", "ring", "key")
    os.makedirs(k, exist_ok=True)
    return k


def versions(path):
    """[(version, created, labels)] from user.keyfs.versions."""
    text = os.getxattr(path, VERSIONS).decode()
    assert text.endswith("\n")
    return [tuple(line.split(" ")) for line in text.splitlines()]


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_the_last_ten_values_are_versions(keyfs):
    m = keyfs()
    v = os.path.join(key_dir(m), "v")
    for i in range(1, 13):
        write(v, b"value %d" % i)
    for i in range(3, 13):
        assert read(v + ":%d" % i) == b"value %d" % i
        assert os.stat(v + ":%d" % i).st_size == len(b"value %d" % i)
    assert read(v + ":latest") == b"value 12"
    assert read(v) == b"value 12"
    # Dropped, not made yet, not a version: no such file.
    for bad in ("1", "2", "13", "0", "03", "abc", "latest2"):
        assert oserr(read, v + ":" + bad) == errno.ENOENT
        assert not os.path.exists(v + ":" + bad)
    lines = versions(v)
    assert [x[0] for x in lines] == [str(i) for i in range(12, 2, -1)]
    assert lines[0][2] == "latest"
    assert all(x[2] == "-" for x in lines[1:])
    assert all(ISO.match(x[1]) for x in lines)
    assert [x[1] for x in lines] == sorted((x[1] for x in lines),
                                           reverse=True)
    assert VERSIONS in os.listxattr(v)
    # The versions stay across mounts (they are in the store).
    m.stop()
    m2 = keyfs("again", store=m.store)
    v2 = m2.path("local", "ring", "key", "v")
    assert read(v2 + ":7") == b"value 7"
    assert [x[0] for x in versions(v2)][0] == "12"


def test_cat_an_old_version_over_the_value_undoes_a_bad_write(keyfs):
    m = keyfs()
    v = os.path.join(key_dir(m), "api")
    good = make_canary().encode()
    write(v, good)
    write(v, b"oops, a bad paste")
    assert read(v + ":1") == good
    r = subprocess.run(["sh", "-c", 'cat "$1:1" > "$1"', "_", v],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert read(v) == good
    # The undo is itself a commit: a new version, the bad one kept.
    assert [x[0] for x in versions(v)] == ["3", "2", "1"]
    assert read(v + ":3") == good
    assert read(v + ":2") == b"oops, a bad paste"
    assert read(v + ":latest") == good
    assert good.decode() not in m.log()


def test_fields_of_versions_of_json_values(keyfs):
    m = keyfs()
    db = os.path.join(key_dir(m), "db")
    write(db, json.dumps({"user": "bob", "password": "first"}).encode())
    write(db, json.dumps({"user": "bob", "password": "second",
                          "port": 5432}).encode())
    assert read(db + "#password") == b"second"
    assert read(db + ":1#password") == b"first"
    assert read(db + ":2#password") == b"second"
    assert read(db + ":latest#password") == b"second"
    assert read(db + ":2#port") == b"5432"
    assert oserr(read, db + ":1#port") == errno.ENOENT
    assert oserr(read, db + ":1#nope") == errno.ENOENT
    assert oserr(read, db + ":9#password") == errno.ENOENT
    assert oserr(read, db + ":x#password") == errno.ENOENT


def test_versions_are_never_listed(keyfs):
    m = keyfs()
    k = key_dir(m)
    v = os.path.join(k, "v")
    for i in range(3):
        write(v, b'{"a":"%d"}' % i)
    read(v + ":1")
    read(v + ":2#a")
    read(v + ":latest")
    assert os.listdir(k) == ["v"]
    found = run(["find", m.mnt]).stdout.split()
    assert not [p for p in found if ":" in os.path.basename(p) or
                "#" in p or ".versions" in p]
    assert run(["ls", "-la", k]).stdout.count(" v") == 1
    # The store keeps them beside the value, under a name no value has.
    sdir = os.path.join(m.store, "local", "ring", "key")
    assert sorted(os.listdir(os.path.join(sdir, ".versions", "v"))) == \
        ["1", "2"]


def test_versions_are_read_only_and_change_nothing(keyfs):
    m = keyfs()
    v = os.path.join(key_dir(m), "v")
    write(v, b"one")
    write(v, b"two")
    before = os.getxattr(v, VERSIONS)
    old = v + ":1"
    assert oserr(os.open, old, os.O_WRONLY) == errno.EROFS
    assert oserr(os.open, old, os.O_RDWR) == errno.EROFS
    assert oserr(os.open, old, os.O_WRONLY | os.O_TRUNC) == errno.EROFS
    assert oserr(os.open, v + ":latest", os.O_WRONLY) == errno.EROFS
    assert oserr(os.truncate, old, 0) == errno.EROFS
    assert oserr(os.unlink, old) == errno.EROFS
    assert oserr(os.unlink, v + ":latest") == errno.EROFS
    assert oserr(os.rename, old, v) == errno.EROFS
    r = subprocess.run(["sh", "-c", 'echo x > "$1"', "_", old],
                       capture_output=True, text=True)
    assert r.returncode != 0
    r = subprocess.run(["rm", "-f", old], capture_output=True, text=True)
    assert r.returncode != 0
    assert read(old) == b"one" and read(v) == b"two"
    assert os.getxattr(v, VERSIONS) == before


def test_a_rename_over_the_value_is_one_version(keyfs):
    """Editors save by writing a temporary name and renaming it over the
    value: one commit, one version."""
    m = keyfs()
    k = key_dir(m)
    v = os.path.join(k, "conf")
    write(v, b"first")
    for tmp in (".conf.swp", "conf~", "sedAbC123"):
        write(os.path.join(k, tmp), b"saved via " + tmp.encode())
        os.rename(os.path.join(k, tmp), v)
    assert [x[0] for x in versions(v)] == ["4", "3", "2", "1"]
    assert read(v + ":2") == b"saved via .conf.swp"
    assert read(v + ":4") == b"saved via sedAbC123"
    assert os.listdir(k) == ["conf"]


def test_rm_takes_the_versions_and_numbers_go_on(keyfs):
    m = keyfs(ttl=0)
    k = key_dir(m)
    v = os.path.join(k, "v")
    for i in range(1, 4):
        write(v, b"old %d" % i)
    assert read(v + ":2") == b"old 2"
    os.unlink(v)
    sdir = os.path.join(m.store, "local", "ring", "key")
    assert not [n for n in os.listdir(os.path.join(sdir, ".versions", "v"))
                if n.isdigit()]
    for i in range(1, 4):
        assert oserr(read, v + ":%d" % i) == errno.ENOENT
    assert oserr(os.getxattr, v, VERSIONS) == errno.ENOENT
    # Made again: it goes on counting, so 1..3 never name a new value
    # (and the mount that removed it forgot the ones it had cached).
    write(v, b"new")
    assert [x[0] for x in versions(v)] == ["4"]
    assert read(v + ":4") == b"new"
    # The rm also dropped the versions this mount had cached.
    for i in range(1, 4):
        assert oserr(read, v + ":%d" % i) == errno.ENOENT
    m2 = keyfs("fresh", store=m.store)
    v2 = m2.path("local", "ring", "key", "v")
    for i in range(1, 4):
        assert oserr(read, v2 + ":%d" % i) == errno.ENOENT
    assert read(v2 + ":4") == b"new"
    m2.stop()
    # The key goes once its values are gone, versions and all.
    os.unlink(v)
    os.rmdir(k)
    assert not os.path.exists(sdir)


def test_latest_follows_the_value(keyfs):
    m = keyfs(ttl=1)
    v = os.path.join(key_dir(m), "v")
    write(v, b"first")
    assert read(v + ":latest") == b"first"
    assert read(v + ":1") == b"first"
    w = keyfs("writer", store=m.store)
    write(w.path("local", "ring", "key", "v"), b"second")
    deadline = time.time() + 10
    while read(v + ":latest") != b"second" and time.time() < deadline:
        time.sleep(0.2)
    assert read(v + ":latest") == b"second"
    assert read(v + ":1") == b"first"
    assert read(v + ":2") == b"second"


def test_the_store_file_carries_its_number(keyfs):
    """The value file holds its version number in its header (files of an
    older keyfs have none and read as version 1: see the unit tests)."""
    m = keyfs()
    v = os.path.join(key_dir(m), "v")
    write(v, b"from before")
    m.stop()
    sfile = os.path.join(m.store, "local", "ring", "key", "v")
    data = open(sfile, "rb").read()
    assert data[:4] == b"KFL2" and int.from_bytes(data[8:12], "big") == 1
    m2 = keyfs("again", store=m.store)
    v = m2.path("local", "ring", "key", "v")
    assert [x[0] for x in versions(v)] == ["1"]
    write(v, b"after")
    assert read(v + ":1") == b"from before"
    assert read(v + ":2") == b"after"
