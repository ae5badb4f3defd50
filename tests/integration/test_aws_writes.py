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


# ---- a secret named like a prefix; names that are not path components ----

def test_directory_wins_over_secret_named_like_its_prefix(keyfs, tmp_path,
                                                         moto):
    cli(moto, "create-secret", "--name", "prod", "--secret-string", "p")
    cli(moto, "create-secret", "--name", "prod/db/password",
        "--secret-string", "pw")
    # a fresh mount, straight to the path
    m = mount(keyfs, tmp_path, moto, name="a")
    region = m.path("aws", REGION)
    assert read(os.path.join(region, "prod", "db", "password")) == b"pw"
    assert os.path.isdir(os.path.join(region, "prod"))
    # a fresh mount that lists first
    m2 = mount(keyfs, tmp_path, moto, name="b")
    region2 = m2.path("aws", REGION)
    assert os.listdir(region2) == ["prod"]
    assert os.listdir(os.path.join(region2, "prod")) == ["db"]
    assert os.listdir(os.path.join(region2, "prod", "db")) == ["password"]
    assert read(os.path.join(region2, "prod", "db", "password")) == b"pw"


def test_prefix_created_elsewhere_wins_after_ttl(keyfs, tmp_path, moto):
    cli(moto, "create-secret", "--name", "svc", "--secret-string", "s")
    m = mount(keyfs, tmp_path, moto, ttl="2")
    region = m.path("aws", REGION)
    assert read(os.path.join(region, "svc")) == b"s"
    cli(moto, "create-secret", "--name", "svc/key", "--secret-string", "k")
    time.sleep(3.5)
    assert os.path.isdir(os.path.join(region, "svc"))
    assert os.listdir(os.path.join(region, "svc")) == ["key"]
    assert read(os.path.join(region, "svc", "key")) == b"k"


ODD = {".": "dot", "..": "dotdot", "a//b": "ab", "/lead": "lead",
       "trail/": "trail", "x/..": "xdd", "x/y": "xy"}


def test_names_that_are_not_path_components_are_escaped(keyfs, tmp_path,
                                                        moto):
    for name, value in ODD.items():
        cli(moto, "create-secret", "--name", name, "--secret-string", value)
    m = mount(keyfs, tmp_path, moto)
    region = m.path("aws", REGION)
    top = os.listdir(region)
    assert sorted(top) == ["%2E", "%2E%2E", "%2Flead", "a%2F", "trail%2F",
                           "x"], top
    assert sorted(os.listdir(os.path.join(region, "x"))) == ["%2E%2E", "y"]
    assert os.listdir(os.path.join(region, "a%2F")) == ["b"]
    assert read(os.path.join(region, "%2E")) == b"dot"
    assert read(os.path.join(region, "%2E%2E")) == b"dotdot"
    assert read(os.path.join(region, "a%2F", "b")) == b"ab"
    assert read(os.path.join(region, "%2Flead")) == b"lead"
    assert read(os.path.join(region, "trail%2F")) == b"trail"
    assert read(os.path.join(region, "x", "%2E%2E")) == b"xdd"
    # written and removed through the escaped name
    rc, err = sh('printf new > "$P"', P=os.path.join(region, "%2E%2E"))
    assert rc == 0, err
    assert cli_value(moto, "..") == b"new"
    write(os.path.join(region, "x", "%2E%2E"), b"new2")
    assert cli_value(moto, "x/..") == b"new2"
    os.unlink(os.path.join(region, "trail%2F"))
    assert cli(moto, "describe-secret", "--secret-id",
               "trail/").get("DeletedDate")
    assert "trail%2F" not in os.listdir(region)
    # a spelling that is not the escaped form names nothing
    for alias in ("%2e%2e", "%2Ex", "%41", "%"):
        assert not os.path.exists(os.path.join(region, alias))
    # keyfs never creates a name that needs escaping
    for new in ("%2E", "new%2F", "%2Fnew", "%2Ex"):
        rc, err = sh('printf v > "$P"', P=os.path.join(region, "x", new))
        assert rc != 0 and "Invalid argument" in err, new


# ---- mkdir: a directory held by keyfs until something is made in it -------

def secret_names(endpoint):
    out = cli(endpoint, "list-secrets")
    return sorted(s["Name"] for s in out["SecretList"])


def test_mkdir_is_held_until_the_first_thing_made_in_it(keyfs, tmp_path,
                                                        moto):
    m = mount(keyfs, tmp_path, moto)
    region = m.path("aws", REGION)
    d = os.path.join(region, "apiSecret")
    os.mkdir(d)
    assert os.path.isdir(d) and os.listdir(d) == []
    assert "apiSecret" in os.listdir(region)
    assert secret_names(moto) == []          # no API call yet
    with pytest.raises(OSError) as e:
        os.mkdir(d)
    assert e.value.errno == errno.EEXIST
    # the first file makes it a field secret holding that field
    rc, err = sh('echo -n K > "$P"', P=os.path.join(d, "api_key"))
    assert rc == 0, err
    assert json.loads(cli_value(moto, "apiSecret")) == {"api_key": "K"}
    desc = cli(moto, "describe-secret", "--secret-id", "apiSecret")
    assert {"Key": "keyfs:layout", "Value": "fields"} in desc["Tags"]
    assert os.listdir(d) == ["api_key"]
    assert read(os.path.join(d, "api_key")) == b"K"
    # a directory first makes it a prefix: mkdir -p works
    rc, err = sh('mkdir -p "$P"', P=os.path.join(region, "team", "db"))
    assert rc == 0, err
    assert os.path.isdir(os.path.join(region, "team", "db"))
    assert os.listdir(os.path.join(region, "team")) == ["db"]
    assert secret_names(moto) == ["apiSecret"]
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(region, "team"))
    assert e.value.errno == errno.ENOTEMPTY
    rc, err = sh('echo -n pw > "$P"',
                 P=os.path.join(region, "team", "db", "password"))
    assert rc == 0, err
    assert json.loads(cli_value(moto, "team/db")) == {"password": "pw"}
    write(os.path.join(region, "team", "api"), b"k1")   # a plain secret
    assert cli_value(moto, "team/api") == b"k1"
    assert secret_names(moto) == ["apiSecret", "team/api", "team/db"]
    # an empty held directory creates nothing; rmdir just forgets it
    os.mkdir(os.path.join(region, "empty"))
    os.mkdir(os.path.join(region, "left"))
    os.rmdir(os.path.join(region, "empty"))
    assert "empty" not in os.listdir(region)
    assert not os.path.exists(os.path.join(region, "empty"))
    assert secret_names(moto) == ["apiSecret", "team/api", "team/db"]
    m.stop()
    # held directories are gone at unmount
    m2 = mount(keyfs, tmp_path, moto, name="again")
    assert "left" not in os.listdir(m2.path("aws", REGION))


def test_cp_r_into_a_new_directory(keyfs, tmp_path, moto):
    src = tmp_path / "src"
    src.mkdir()
    (src / "user").write_text("admin")
    (src / "pass").write_text("hunter2")
    tree = tmp_path / "tree"
    (tree / "x").mkdir(parents=True)
    (tree / "y").mkdir()
    (tree / "x" / "k1").write_text("v1")
    (tree / "y" / "k2").write_text("v2")
    m = mount(keyfs, tmp_path, moto)
    region = m.path("aws", REGION)
    r = run(["cp", "-r", str(src), os.path.join(region, "copied")])
    assert r.returncode == 0, r.stderr
    assert json.loads(cli_value(moto, "copied")) == \
        {"user": "admin", "pass": "hunter2"}
    assert read(os.path.join(region, "copied", "pass")) == b"hunter2"
    r = run(["cp", "-r", str(tree), os.path.join(region, "tree")])
    assert r.returncode == 0, r.stderr
    assert json.loads(cli_value(moto, "tree/x")) == {"k1": "v1"}
    assert json.loads(cli_value(moto, "tree/y")) == {"k2": "v2"}
    assert secret_names(moto) == ["copied", "tree/x", "tree/y"]
    assert sorted(os.listdir(os.path.join(region, "tree"))) == ["x", "y"]
    r = run(["diff", "-r", str(tree), os.path.join(region, "tree")])
    assert r.returncode == 0, r.stdout + r.stderr


# ---- binary bytes into a field: refused at write() ------------------------

def test_binary_bytes_into_a_field_are_refused_at_write(keyfs, tmp_path,
                                                       moto):
    cli(moto, "create-secret", "--name", "cfg", "--secret-string",
        json.dumps({"user": "u1"}), "--tags",
        "Key=keyfs:layout,Value=fields")
    m = mount(keyfs, tmp_path, moto)
    d = m.path("aws", REGION, "cfg")
    # write() itself fails, so nothing is ever committed
    f = open(os.path.join(d, "bin"), "wb", buffering=0)
    try:
        with pytest.raises(OSError) as e:
            f.write(b"ok \xff\xfe")
        assert e.value.errno == errno.EINVAL
    finally:
        try:
            f.close()
        except OSError:
            pass
    assert json.loads(cli_value(moto, "cfg")) == {"user": "u1"}
    # shells see the failure too (they ignore close())
    for shell in ("bash", "dash"):
        for cmd in (r'printf "\377\376" > "$P"', r'printf "a\000b" > "$P"',
                    r'printf "\377" | dd of="$P" status=none'):
            r = run([shell, "-c", cmd],
                    env=dict(os.environ, P=os.path.join(d, "user")))
            assert r.returncode != 0, (shell, cmd)
            # (dash's printf says "I/O error" whatever the errno)
            if shell == "bash" or "dd" in cmd:
                assert "Invalid argument" in r.stderr, (shell, cmd)
    assert json.loads(cli_value(moto, "cfg")) == {"user": "u1"}
    # a NEW field from a shell: the failed first write creates nothing
    for shell in ("bash", "dash"):
        r = run([shell, "-c", r'printf "\377" > "$P"'],
                env=dict(os.environ, P=os.path.join(d, "new")))
        assert r.returncode != 0, shell
    assert json.loads(cli_value(moto, "cfg")) == {"user": "u1"}
    assert "new" not in os.listdir(d)
    # UTF-8 split across write() calls is text
    with open(os.path.join(d, "user"), "wb", buffering=0) as f:
        f.write("caf\u00e9".encode()[:4])
        f.write("caf\u00e9".encode()[4:])
    assert json.loads(cli_value(moto, "cfg"))["user"] == "caf\u00e9"
    assert "a field holds UTF-8 text only" in m.log()
    # a plain secret still takes binary bytes
    write(m.path("aws", REGION, "blob"), b"\xff\x00\xfe")
    assert read(m.path("aws", REGION, "blob")) == b"\xff\x00\xfe"
