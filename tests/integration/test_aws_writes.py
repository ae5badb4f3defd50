"""aws/ writes that meet a name changed elsewhere, new directories held by
keyfs until something is created in them, and secret names that are not
plain path components, against moto_server (helpers from test_aws)."""
import errno
import json
import os
import subprocess
import time

import pytest

from conftest import run
from test_aws import REGION, cli, cli_value, moto, moto_url, mount, read, \
    write  # noqa: F401 (fixtures)


def sh(cmd, **env):
    """cmd in bash with env; its exit status and stderr."""
    r = run(["bash", "-c", cmd], env=dict(os.environ, **env))
    return r.returncode, r.stderr


def versions(endpoint, name):
    out = cli(endpoint, "list-secret-version-ids", "--secret-id", name)
    return len(out["Versions"])


# ---- a name deleted or restored elsewhere ---------------------------------

def test_write_recreates_secret_force_deleted_elsewhere(keyfs, tmp_path,
                                                        moto):
    m = mount(keyfs, tmp_path, moto)
    p = m.path("aws", REGION, "x")
    write(p, b"old")
    assert read(p) == b"old"                 # cached, and in the index
    cli(moto, "delete-secret", "--secret-id", "x",
        "--force-delete-without-recovery")
    rc, err = sh('echo new > "$P"', P=p)
    assert rc == 0, err
    assert cli_value(moto, "x") == b"new\n"
    assert read(p) == b"new\n"


def test_write_restores_secret_scheduled_for_deletion(keyfs, tmp_path, moto):
    m = mount(keyfs, tmp_path, moto)
    p = m.path("aws", REGION, "d")
    rc, err = sh('echo a > "$P" && rm "$P" && echo b > "$P"', P=p)
    assert rc == 0, err
    desc = cli(moto, "describe-secret", "--secret-id", "d")
    assert not desc.get("DeletedDate"), "the write must restore it"
    assert cli_value(moto, "d") == b"b\n"
    assert versions(moto, "d") == 2          # a, then b: one new version
    assert read(p) == b"b\n"
    assert "d" in os.listdir(m.path("aws", REGION))


def test_secret_restored_elsewhere_is_listed_within_ttl(keyfs, tmp_path,
                                                        moto):
    m = mount(keyfs, tmp_path, moto, ttl="2")
    region = m.path("aws", REGION)
    write(os.path.join(region, "back"), b"v")
    os.unlink(os.path.join(region, "back"))
    assert "back" not in os.listdir(region)
    cli(moto, "restore-secret", "--secret-id", "back")
    deadline = time.time() + 2 + 3
    while "back" not in os.listdir(region) and time.time() < deadline:
        time.sleep(0.5)
    assert "back" in os.listdir(region)
    assert read(os.path.join(region, "back")) == b"v"
