"""Path names reach the daemon log escaped: a name holding a newline, used
on every provider (refused as invalid, or looked up and missing), never
forges a log line.  keyfs runs in the foreground with -o log=debug (not
-d, whose libfuse trace is not keyfs's log) and its stderr is captured."""
import errno
import os

import pytest

from test_bad_input import (  # noqa: F401 (fixtures)
    AwsTarget, GcpTarget, LocalTarget, boto, emu, moto_url, oserr, write)

FORGED = "keyfs: 2030-01-01T00:00:00Z error: forged line"


@pytest.fixture(params=["aws", "gcp", "local"])
def quiet_target(request, keyfs, tmp_path):
    def start(*a, **kw):
        kw["args"] = ()
        kw["log"] = "debug"
        return keyfs(*a, **kw)
    if request.param == "aws":
        return AwsTarget(start, tmp_path,
                         request.getfixturevalue("moto_url"),
                         request.getfixturevalue("boto"))
    if request.param == "gcp":
        return GcpTarget(start, tmp_path, request.getfixturevalue("emu"))
    return LocalTarget(start, tmp_path)


def test_newline_in_a_name_never_forges_a_log_line(quiet_target):
    t = quiet_target
    evil = "x\n" + FORGED + "\n"
    p = os.path.join(t.dir, evil)
    assert oserr(os.stat, p) == errno.ENOENT           # missing, logged
    assert oserr(write, p, b"v") in (errno.EINVAL, errno.ENOENT,
                                     errno.EPERM)       # refused, logged
    assert oserr(os.mkdir, os.path.join(t.mkdirs[-1], evil)) != 0
    assert oserr(os.unlink, p) != 0
    t.m.stop()
    log = t.m.log()
    assert "\\x0a" + FORGED in log, "the name was not logged at all"
    lines = log.splitlines()
    assert lines
    for line in lines:
        assert line.startswith("keyfs: "), repr(line)
        assert not line.startswith(FORGED), repr(line)
