"""Tools that write through a temporary file and rename it (sed -i, vim,
rsync, install, editors' backup files) on aws/ (moto), gcp/ (the Cloud
KMS emulator) and local/.  After each tool: the value is right, aws/ has
exactly one new version, and nothing else exists where the data lives --
no secret named after a temporary file in AWS (scheduled deletions
included), no stray file in the local/ or gcp/ store.  New names shaped
like temporary files are held in keyfs's memory only until renamed or
removed; other renames stay refused."""
import base64
import ctypes
import errno
import os
import shutil
import subprocess

import pytest

from conftest import make_canary, run
from test_aws import REGION, aws_env, start_moto, stop_moto
from test_bad_input import (AwsTarget, Boto, GcpTarget,  # noqa: F401
                            LocalTarget, boto, emu, moto_url, oserr, read,
                            tree, write)

VIM = shutil.which("vim") or shutil.which("vim.tiny")
RSYNC = shutil.which("rsync")


@pytest.fixture(params=["aws", "gcp", "local"])
def target(request, keyfs, tmp_path):
    if request.param == "aws":
        t = AwsTarget(keyfs, tmp_path, request.getfixturevalue("moto_url"),
                      request.getfixturevalue("boto"))
    elif request.param == "gcp":
        t = GcpTarget(keyfs, tmp_path, request.getfixturevalue("emu"))
    else:
        t = LocalTarget(keyfs, tmp_path)
    t.canary = make_canary()
    write(os.path.join(t.dir, "canary"), t.canary.encode())
    yield t
    t.no_canary()


def where(t):
    """Every name where the data lives, and aws/ version counts."""
    if t.prov == "aws":
        snap = t.snapshot()
        return set(snap), {n: len(s["versions"]) for n, s in snap.items()}
    # STORE/modes holds per-host owners and modes (chmod), not values;
    # local/ keeps a value's older versions in KEY/.versions/NAME/N.
    names, versions = set(), {}
    for n in tree(t.m.store):
        if "/.versions/" in n:
            kept = n.split("/.versions/", 1)[1].split("/")
            if len(kept) == 2 and kept[1].isdigit():
                versions[kept[0]] = versions.get(kept[0], 1) + 1
        elif n != "modes":
            names.add(n)
    return names, versions


def changed_once(t, before, name, value):
    """name now holds value with one more version; nothing else appeared
    or disappeared where the data lives; no held file is left."""
    names, versions = where(t)
    assert t.value(name) == value
    assert names == before[0], "stray names: %r" % (names ^ before[0])
    if t.prov in ("aws", "local"):
        assert versions.get(name, 1) == before[1].get(name, 1) + 1, \
            "not one new version"
    assert sorted(os.listdir(t.dir)) == sorted(
        n.rsplit("/", 1)[-1] for n in before[2])


def seed(t, name, value):
    write(os.path.join(t.dir, name), value)
    return where(t) + (os.listdir(t.dir),)


def test_sed_in_place(target):
    t = target
    before = seed(t, "F", b"aaa\n")
    r = run(["sed", "-i", "s/a/b/", "F"], cwd=t.dir)
    assert r.returncode == 0, r.stderr
    changed_once(t, before, "F", b"baa\n")


def test_vim_write(target):
    t = target
    assert VIM, "vim is missing: make deps"
    before = seed(t, "F", b"aaa\n")
    # As the brief writes it, and with the backup vim makes outside /tmp
    # (F~, written by copying, removed after the write).
    r = run([VIM, "-es", "-i", "NONE", "-c", "%s/a/b/", "-c", "wq", "F"],
            cwd=t.dir, env=dict(os.environ, HOME=t.m.base))
    assert r.returncode == 0, r.stdout + r.stderr
    changed_once(t, before, "F", b"baa\n")
    before = where(t) + (os.listdir(t.dir),)
    r = run([VIM, "-es", "-i", "NONE", "-c", "set backupskip= writebackup",
             "-c", "%s/aa/c/", "-c", "wq", "F"], cwd=t.dir,
            env=dict(os.environ, HOME=t.m.base))
    assert r.returncode == 0, r.stdout + r.stderr
    changed_once(t, before, "F", b"bc\n")


def test_perl_in_place(target):
    """perl -pi writes its work file as XX + 6 random characters (mkstemp
    of "XXXXXXXX") and renames it over F: held in memory, then one
    version of F, nothing stray in the provider."""
    t = target
    before = seed(t, "F", b"aaa\n")
    r = run(["perl", "-pi", "-e", "s/a/b/", "F"], cwd=t.dir)
    assert r.returncode == 0, r.stderr
    changed_once(t, before, "F", b"baa\n")


def test_rsync_onto_a_file(target, tmp_path):
    t = target
    assert RSYNC, "rsync is missing: make deps"
    before = seed(t, "F", b"old\n")
    src = tmp_path / "src"
    src.write_bytes(b"from rsync, longer\n")
    r = run([RSYNC, str(src), "F"], cwd=t.dir)
    assert r.returncode == 0, r.stderr
    changed_once(t, before, "F", b"from rsync, longer\n")
    # a new name: created with its value.  rsync sets the mode of its
    # temporary file before the rename (kept per file, moved by rename).
    before = where(t)
    r = run([RSYNC, str(src), "G"], cwd=t.dir)
    assert r.returncode == 0, r.stderr
    assert t.value("G") == b"from rsync, longer\n"
    names, versions = where(t)
    if t.prov == "aws":
        assert names == before[0] | {"G"} and versions["G"] == 1
    else:
        assert len(names - before[0]) == 1


def test_install_a_file(target, tmp_path):
    t = target
    src = tmp_path / "src"
    src.write_bytes(b"installed\n")
    before = where(t)
    r = run(["install", "-m", "600", str(src), "N"], cwd=t.dir)
    # install sets the mode after writing; until modes are kept per file
    # that chmod may fail: the value must have arrived all the same.
    assert r.returncode == 0 or "permissions" in r.stderr, r.stderr
    assert t.value("N") == b"installed\n"
    names, versions = where(t)
    if t.prov == "aws":
        assert names == before[0] | {"N"} and versions["N"] == 1
    else:
        assert len(names - before[0]) == 1


def test_backup_file_copy_and_remove(target):
    t = target
    before = seed(t, "F", b"value\n")
    r = run(["cp", "F", "F~"], cwd=t.dir)
    assert r.returncode == 0, r.stderr
    assert read(os.path.join(t.dir, "F~")) == b"value\n"
    assert "F~" in os.listdir(t.dir)
    assert os.stat(os.path.join(t.dir, "F~")).st_size == 6
    assert where(t)[0] == before[0], "a backup file reached the provider"
    os.unlink(os.path.join(t.dir, "F~"))
    assert "F~" not in os.listdir(t.dir)
    assert where(t) == before[:2]


def test_held_files_behave_as_files(target):
    t = target
    d = t.dir
    before = seed(t, "F", b"x")
    tmp = os.path.join(d, "sedAb12Cd")
    write(tmp, b"held value")
    with open(tmp, "r+b") as f:
        assert f.read() == b"held value"
        f.seek(0)
        f.write(b"H")
        f.truncate(6)
    assert read(tmp) == b"Held v"
    os.truncate(tmp, 2)
    assert os.stat(tmp).st_size == 2
    with open(tmp, "ab") as f:
        f.write(b"++")
    assert read(tmp) == b"He++"
    assert sorted(os.listdir(d)) == sorted(before[2] + ["sedAb12Cd"])
    # no extended attributes, and none can be set
    assert os.listxattr(tmp) == []
    assert oserr(os.getxattr, tmp, "user.keyfs.id") == errno.ENODATA
    assert oserr(os.setxattr, tmp, "user.keyfs.description",
                 b"d") == errno.ENOTSUP
    # the provider's size limit applies as to any file
    limit = 65536
    assert oserr(write, tmp, b"z" * (limit + 1)) == errno.EFBIG
    write(tmp, b"z" * limit)
    assert os.stat(tmp).st_size == limit
    os.unlink(tmp)
    assert oserr(os.stat, tmp) == errno.ENOENT
    assert where(t) == before[:2]
    # never sent anywhere, and gone at unmount
    write(os.path.join(d, ".kept.swp"), b"kept until unmount")
    t.m.stop()
    assert where(t)[0] == before[0]
    t.m.start()
    assert ".kept.swp" not in os.listdir(d)


def test_existing_names_of_temporary_shapes_are_ordinary(target):
    t = target
    if t.prov == "local":
        pytest.skip("local/ values are only ever made through keyfs")
    # (NAME~ and #NAME# are not valid cloud names; .NAME is not on gcp/)
    names = {"sedAAAAAA": "cloud", "4913": "probe"}
    if t.prov == "aws":
        names[".env"] = "dot"
    for name, v in names.items():
        if t.prov == "aws":
            t.boto.create(name, v)
        else:   # what `gcloud kms encrypt` would leave in the store
            ct = t.kms.call("POST", "projects/%s/locations/global/keyRings/"
                            "ring/cryptoKeys/key:encrypt" % t.m.opts[
                                "gcp_project"],
                            {"plaintext": base64.b64encode(
                                v.encode()).decode()})["ciphertext"]
            with open(t.store_path(name), "wb") as f:
                f.write(base64.b64decode(ct))
    assert read(os.path.join(t.dir, "sedAAAAAA")) == b"cloud"
    write(os.path.join(t.dir, "sedAAAAAA"), b"changed")
    assert t.value("sedAAAAAA") == b"changed"
    if t.prov == "aws":
        assert read(os.path.join(t.dir, ".env")) == b"dot"
    os.unlink(os.path.join(t.dir, "4913"))
    if t.prov == "aws":
        assert t.snapshot()["4913"]["deleted"]
    else:
        assert not os.path.exists(t.store_path("4913"))
    # renaming a cloud name stays refused
    assert oserr(os.rename, os.path.join(t.dir, "sedAAAAAA"),
                 os.path.join(t.dir, "other")) == errno.EPERM


def renameat2(src, dst, flags):
    """The errno of renameat2(2) with flags (0 when it works)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, src.encode(), at_fdcwd, dst.encode(),
                      flags) == 0:
        return 0
    return ctypes.get_errno()


def test_rename_rules(target):
    t = target
    d = t.dir
    write(os.path.join(d, "a"), b"A")
    before = where(t)
    tmp = os.path.join(d, ".a.XXXXXX")
    write(tmp, b"new A")
    # cloud names never move; flags are not supported (EINVAL: mv and
    # gnulib then fall back to a plain rename)
    assert oserr(os.rename, os.path.join(d, "a"),
                 os.path.join(d, "b")) == errno.EPERM
    assert oserr(os.rename, os.path.join(d, "a"),
                 os.path.join(d, "a~")) == errno.EPERM
    assert renameat2(tmp, os.path.join(d, "z"), 1) == errno.EINVAL
    assert renameat2(tmp, os.path.join(d, "a"), 2) == errno.EINVAL
    # another directory: EXDEV, so mv copies and removes instead
    assert oserr(os.rename, tmp, os.path.join(os.path.dirname(d),
                                              "x")) == errno.EXDEV
    # onto a new temporary name: still held, nothing sent
    os.rename(tmp, os.path.join(d, "a~"))
    assert read(os.path.join(d, "a~")) == b"new A"
    assert where(t)[0] == before[0]
    # a failed commit: rename says why and the held file stays
    bad = os.path.join(d, "sp ace")
    assert oserr(os.rename, os.path.join(d, "a~"), bad) == errno.EINVAL
    assert read(os.path.join(d, "a~")) == b"new A"
    # mv onto the real name: one new version
    r = run(["mv", os.path.join(d, "a~"), os.path.join(d, "a")])
    assert r.returncode == 0, r.stderr
    assert t.value("a") == b"new A"
    names, versions = where(t)
    assert names == before[0]
    if t.prov == "aws":
        assert versions["a"] == before[1]["a"] + 1


def test_rename_reports_an_outage_and_keeps_the_held_file(keyfs, tmp_path):
    proc, url = start_moto()
    try:
        m = keyfs(env=aws_env(tmp_path, url), providers="aws",
                  aws_region=REGION, timeout="3", ttl="0")
        d = m.path("aws", REGION)
        write(os.path.join(d, "s"), b"old")
        write(os.path.join(d, "sedQQQQQQ"), b"new")
        stop_moto(proc)
        proc = None
        assert oserr(os.rename, os.path.join(d, "sedQQQQQQ"),
                     os.path.join(d, "s")) in (errno.EIO, errno.ETIMEDOUT)
        assert read(os.path.join(d, "sedQQQQQQ")) == b"new"
    finally:
        if proc:
            stop_moto(proc)
