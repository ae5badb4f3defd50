"""getfattr -d (and listxattr) on every provider: every attribute listed
can be read back, on value files and on each directory level."""
import os

from conftest import run
from test_bad_input import (  # noqa: F401 (fixtures)
    boto, emu, moto_url, target, write)


def objects(t):
    """Value files and directories of every level the provider has."""
    f = os.path.join(t.dir, "v")
    write(f, b"value")
    empty = os.path.join(t.dir, "empty")
    write(empty, b"")
    objs = [t.m.mnt, os.path.dirname(t.m.path(t.prov, "x")), t.dir, f,
            empty]
    objs += list(t.mkdirs)
    if t.prov == "aws":
        os.mkdir(os.path.join(t.dir, "fs"))
        write(os.path.join(t.dir, "fs", "field"), b"x")
        objs += [os.path.join(t.dir, "fs"),
                 os.path.join(t.dir, "fs", "field")]
        t.boto.create("novalue")           # a secret without a version
        objs.append(os.path.join(t.dir, "novalue"))
    return sorted(set(objs))


def test_getfattr_dump_lists_only_readable_attributes(target):
    t = target
    for obj in objects(t):
        names = os.listxattr(obj)
        for n in names:
            os.getxattr(obj, n)        # listed, so it must be readable
        r = run(["getfattr", "-d", "-m", "-", "--absolute-names", obj])
        assert r.returncode == 0, (obj, r.stderr)
        for n in names:
            assert n in r.stdout, (obj, n)
