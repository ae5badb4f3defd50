"""Views on every mount: NAME#FIELD of any JSON object value, looked up
but never listed, read-only, showing their base file's owner and mode,
and following the value when it changes.  Driven through real mounts of
the embedded local/ provider (versions of local/ values and of aws/ have
their own files: test_views_local.py, test_views_aws.py)."""
import errno
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import (
    grep_tree, make_canary, run, write_file as write, read_file as read,
    oserr)


def _db(m, value):
    k = m.path("local", "ring", "key")
    os.makedirs(k, exist_ok=True)
    write(os.path.join(k, "db"), value)
    return os.path.join(k, "db")


DOC = {"username": "bob", "port": 5432, "tls": {"ca": "x", "on": True},
       "tags": ["a", "b"], "empty": "", "nothing": None}


def test_fields_of_a_json_value(keyfs):
    m = keyfs()
    pw = make_canary()
    doc = dict(DOC, password=pw)
    db = _db(m, json.dumps(doc, indent=2).encode())
    assert read(db + "#password") == pw.encode()  # raw string bytes
    assert read(db + "#username") == b"bob"
    assert read(db + "#empty") == b""
    # Any other JSON value: its compact JSON text.
    assert read(db + "#port") == b"5432"
    assert read(db + "#tls") == b'{"ca":"x","on":true}'
    assert read(db + "#tags") == b'["a","b"]'
    assert read(db + "#nothing") == b"null"
    assert os.stat(db + "#password").st_size == len(pw)
    # A shell reads it the same way.
    assert run(["cat", db + "#password"]).stdout == pw
    assert pw not in m.log()


def test_missing_field_and_non_object_values_are_enoent(keyfs):
    m = keyfs()
    db = _db(m, b'{"a":"1"}')
    assert oserr(read, db + "#b") == errno.ENOENT
    assert not os.path.exists(db + "#b")
    for text in (b"not json", b"[1,2]", b'"s"', b""):
        write(db, text)
        assert oserr(read, db + "#a") == errno.ENOENT
    assert oserr(read, db + "-missing#a") == errno.ENOENT
    # A version of a store that keeps none is no file either.
    assert oserr(os.stat, m.path("local", "ring", "key") + ":1") \
        == errno.ENOENT


def test_views_are_never_listed(keyfs):
    m = keyfs()
    db = _db(m, b'{"a":"1","b":"2"}')
    read(db + "#a")
    read(db + "#b")
    k = os.path.dirname(db)
    assert os.listdir(k) == ["db"]
    found = run(["find", m.mnt]).stdout.split()
    assert not [p for p in found if "#" in p or ":" in os.path.basename(p)]
    assert run(["ls", "-la", k]).stdout.count("db") == 1


def test_views_are_read_only_and_change_nothing(keyfs):
    m = keyfs()
    db = _db(m, b'{"a":"1"}')
    v = db + "#a"
    assert oserr(os.open, v, os.O_WRONLY) == errno.EROFS
    assert oserr(os.open, v, os.O_RDWR) == errno.EROFS
    assert oserr(os.open, v, os.O_WRONLY | os.O_TRUNC) == errno.EROFS
    # A new name with ':' or '#' is no valid name.
    assert oserr(os.open, db + "#new", os.O_WRONLY | os.O_CREAT) \
        == errno.EINVAL
    assert oserr(os.truncate, v, 0) == errno.EROFS
    assert oserr(os.unlink, v) == errno.EROFS
    # (db:1 exists where values keep versions: mkdir is then EEXIST)
    assert oserr(os.mkdir, db + ":99") == errno.EINVAL
    assert oserr(os.chmod, v, 0o644) == errno.EROFS
    assert oserr(os.rename, v, db + "2") == errno.EROFS
    assert oserr(os.setxattr, v, "user.x", b"1") == errno.EROFS
    r = subprocess.run(["sh", "-c", "echo x > '%s'" % v],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Read-only" in r.stderr
    assert read(db) == b'{"a":"1"}' and read(v) == b"1"
    assert os.listdir(os.path.dirname(db)) == ["db"]
    assert os.listxattr(v) == []


def test_a_view_shows_its_base_owner_and_mode_without_write_bits(keyfs):
    m = keyfs()
    db = _db(m, b'{"a":"1"}')
    os.chmod(db, 0o640)
    os.chown(db, 1234, 2345)
    st = os.stat(db + "#a")
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o440
    assert (st.st_uid, st.st_gid) == (1234, 2345)
    # Another user cannot read what the base forbids (kernel check).
    os.chmod(db, 0o600)
    r = subprocess.run(["setpriv", "--reuid=4321", "--regid=4321",
                        "--clear-groups", "cat", db + "#a"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr


@pytest.mark.parametrize("opts", [{}, {"ro": True}, {"direct_io": True}])
def test_a_field_follows_its_value(keyfs, opts):
    """A field read once, then its value rewritten: the next read of the
    field shows the new value on writable, read-only (page cache kept by
    the kernel) and direct-I/O mounts."""
    rw = keyfs("rw", ttl=1)
    db = _db(rw, b'{"a":"old-1"}')
    if opts:
        rw.stop()
        m = keyfs("other", store=rw.store, ttl=1, **opts)
        db = m.path("local", "ring", "key", "db")
    else:
        m = rw
    assert read(db + "#a") == b"old-1"
    assert read(db + "#a") == b"old-1"
    if opts:
        m2 = keyfs("writer", store=rw.store)
        write(m2.path("local", "ring", "key", "db"), b'{"a":"new-2"}')
    else:
        write(db, b'{"a":"new-2"}')
    deadline = time.time() + 10
    while read(db + "#a") != b"new-2" and time.time() < deadline:
        time.sleep(0.2)
    assert read(db + "#a") == b"new-2"
    assert os.stat(db + "#a").st_size == 5


def test_one_fetch_serves_every_field(keyfs):
    """Five fields of one value: one provider read (the stats document
    counts cache misses)."""
    m = keyfs()
    vals = {c: make_canary() for c in "abcde"}
    db = _db(m, json.dumps(vals).encode())
    m.stop()
    m = keyfs("again", store=m.store)
    db = m.path("local", "ring", "key", "db")

    def misses():
        return json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))[
            "cache"]["misses"]

    before = misses()
    for c in "abcde":
        assert read(db + "#" + c) == vals[c].encode()
    assert misses() - before == 1
    assert read(db)[:1] == b"{"  # the plain value: the same entry
    assert misses() - before == 1
    assert not any(grep_tree(m.store, v.encode()) for v in vals.values())


def test_audit_lines_name_the_version_served(keyfs, tmp_path):
    trail = str(tmp_path / "audit.log")
    m = keyfs(audit=trail)
    pw = make_canary()
    db = _db(m, json.dumps({"password": pw}).encode())
    write(db, json.dumps({"password": pw + "2"}).encode())
    assert read(db + "#password") == (pw + "2").encode()
    assert read(db + ":1#password") == pw.encode()
    assert read(db) != b""
    lines = open(trail).read().splitlines()

    def served(path, op):
        return [ln.rsplit(" version=", 1)[-1] for ln in lines
                if ' op=%s path="%s"' % (op, path) in ln and
                " version=" in ln]

    rel = "/local/ring/key/db"
    assert served(rel + "#password", "open") == ['"2"']
    assert served(rel + "#password", "read")[:1] == ['"2"']
    assert served(rel + ":1#password", "open") == ['"1"']
    assert served(rel, "open") == ['"2"']
    assert pw not in open(trail).read()
