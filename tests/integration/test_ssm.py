"""ssm/ (Parameter Store) against moto_server with signatures enforced (an
IAM user's key), the real keyfs binary mounted with providers=ssm and
AWS_ENDPOINT_URL_SSM, every change cross-checked with the AWS CLI (and,
for bulk work, boto3).  moto runs once for the module on an ephemeral
loopback port; each test works in a region of its own, so no test sees
another's parameters.  Every mount is always unmounted (conftest
`keyfs`)."""
import errno
import json
import os
import re
import subprocess
import time

import pytest

from conftest import KEYFS_BIN, PYENV_PYTHON, free_port, make_canary, oserr, \
    read_file as read, run, write_file
from test_aws import AWS_CLI, SETUP_IAM, start_moto, stop_moto

SEED_REGION = "us-west-2"
# One region per test: moto keeps Parameter Store state per region.
OTHER_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "ca-central-1",
                 "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
                 "eu-north-1", "ap-south-1", "ap-northeast-1",
                 "ap-northeast-2", "ap-northeast-3", "ap-southeast-1",
                 "ap-southeast-2", "sa-east-1"]
_regions = iter(OTHER_REGIONS)   # never reused: add regions with tests

API = r'''
import concurrent.futures as cf, json, sys, boto3
url, region, ak, sk = sys.argv[1:5]
c = boto3.client("ssm", endpoint_url=url, region_name=region,
                 aws_access_key_id=ak, aws_secret_access_key=sk)
out = []
for op, kw in json.loads(sys.stdin.read()):
    if op == "put_many":
        def one(n):
            c.put_parameter(Name=n, Value=kw["value"], Type=kw["type"])
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(one, kw["names"]))
        out.append(len(kw["names"]))
        continue
    if op in ("pages", "history_all", "describe_all"):
        fn = {"pages": c.describe_parameters,
              "describe_all": c.describe_parameters,
              "history_all": c.get_parameter_history}[op]
        key = "Parameters"
        pages, items, tok = 0, [], None
        while True:
            args = dict(kw, **({"NextToken": tok} if tok else {}))
            r = fn(**args)
            pages += 1
            items += r[key]
            tok = r.get("NextToken")
            if not tok:
                break
        out.append({"pages": pages, "items": items})
        continue
    try:
        r = getattr(c, op)(**kw)
        r.pop("ResponseMetadata", None)
        out.append(r)
    except c.exceptions.ClientError as e:
        out.append({"Error": e.response["Error"]["Code"]})
print(json.dumps(out, default=str))
'''


@pytest.fixture(scope="module")
def signed():
    """moto enforcing signatures; an IAM user's key that may do anything."""
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        r = run([PYENV_PYTHON, "-c", SETUP_IAM, url], timeout=60)
        assert r.returncode == 0, r.stderr[-800:]
        akid, secret = r.stdout.split()
        yield {"url": url, "key": akid, "secret": secret}
    finally:
        stop_moto(proc)


def ssm_env(home, endpoint, key, secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID=key,
               AWS_SECRET_ACCESS_KEY=secret,
               AWS_ENDPOINT_URL_SSM=endpoint,
               AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.path.join(str(home), "none-config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(str(home), "none-cred"))
    return env


class Ssm:
    """One test's region of the module's moto, the CLI and mounts."""

    def __init__(self, signed, keyfs, tmp_path, region):
        self.url = signed["url"]
        self.key = signed["key"]
        self.secret = signed["secret"]
        self.keyfs = keyfs
        self.tmp = tmp_path
        self.region = region

    def env(self, endpoint=None, secret=None):
        return ssm_env(self.tmp, endpoint or self.url, self.key,
                       secret or self.secret)

    def cli(self, *args, check=True):
        p = run([AWS_CLI, "--endpoint-url", self.url, "--region",
                 self.region, "--output", "json", "ssm"] + list(args),
                env=self.env(), timeout=60)
        if not check:
            return p
        assert p.returncode == 0, p.stderr[-300:]
        return json.loads(p.stdout) if p.stdout.strip() else None

    def api(self, *calls):
        """boto3 calls [(op, kwargs)...] in one process: their answers
        ({"Error": CODE} for a refused call)."""
        r = subprocess.run([PYENV_PYTHON, "-c", API, self.url, self.region,
                            self.key, self.secret],
                           input=json.dumps(calls), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-800:]
        return json.loads(r.stdout)

    def put(self, *params):
        """put_parameter of each (name, value, type[, extra kwargs]) with
        boto3, in one process (set-up that is not itself under test)."""
        calls = []
        for t in params:
            kw = {"Name": t[0], "Value": t[1], "Type": t[2]}
            kw.update(t[3] if len(t) > 3 else {})
            calls.append(("put_parameter", kw))
        out = self.api(*calls)
        assert not any("Error" in o for o in out), out
        return out

    def value(self, name):
        out = self.cli("get-parameter", "--name", name, "--with-decryption")
        return out["Parameter"]["Value"].encode()

    def describe(self, name):
        """DescribeParameters' record of name, or None."""
        out = self.api(("describe_parameters", {"ParameterFilters": [
            {"Key": "Name", "Option": "Equals", "Values": [name]}]}))[0]
        ps = out["Parameters"]
        return ps[0] if ps else None

    def names(self):
        """Every parameter name of the region."""
        return sorted(p["Name"] for p in self.api(
            ("describe_all", {"MaxResults": 50}))[0]["items"])

    def history(self, name):
        return self.api(("history_all", {"Name": name,
                                         "WithDecryption": True,
                                         "MaxResults": 50}))[0]["items"]

    def mount(self, name="k", env=None, **opts):
        opts.setdefault("providers", "ssm")
        opts.setdefault("ssm_region", self.region)
        opts.setdefault("timeout", "20")
        return self.keyfs(name=name, env=env or self.env(), **opts)


@pytest.fixture
def ssm(signed, keyfs, tmp_path):
    region = next(_regions, None)
    assert region, "test_ssm.py: more tests than OTHER_REGIONS"
    return Ssm(signed, keyfs, tmp_path, region)


@pytest.fixture
def seed(signed, keyfs, tmp_path):
    return Ssm(signed, keyfs, tmp_path, SEED_REGION)


def stats(m):
    return json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))


def calls(m, op):
    return stats(m)["api"].get("ssm", {}).get(op, {}).get("calls", 0)


def shell_write(path, value):
    """echo -n "$V" > PATH, the value passed in the environment."""
    return run(["sh", "-c", 'echo -n "$V" > "$P"'],
               env=dict(os.environ, V=value, P=path))


# ---- the seed flow ----------------------------------------------------------

def test_seed_flow_echo_then_cli_get_parameter(seed):
    key, key2 = make_canary(), make_canary()
    m = seed.mount(args=("-d",))
    assert os.listdir(m.path("ssm")) == [SEED_REGION]
    p = m.path("ssm", SEED_REGION, "prod", "model", "openai_key")
    r = run(["mkdir", "-p", os.path.dirname(p)])
    assert r.returncode == 0, r.stderr
    assert seed.names() == []               # held directories: no API call
    r = shell_write(p, key)
    assert r.returncode == 0, r.stderr
    out = seed.cli("get-parameter", "--name", "/prod/model/openai_key",
                   "--with-decryption")["Parameter"]
    assert out["Value"] == key
    assert out["Type"] == "SecureString" and out["Version"] == 1
    d = seed.describe("/prod/model/openai_key")
    assert d["KeyId"] == "alias/aws/ssm"    # the account's default key
    assert d["Tier"] == "Standard"
    assert read(p) == key.encode()
    assert os.listdir(m.path("ssm", SEED_REGION, "prod", "model")) == \
        ["openai_key"]
    # A second write is exactly one more version.
    r = shell_write(p, key2)
    assert r.returncode == 0, r.stderr
    hist = seed.cli("get-parameter-history", "--name",
                    "/prod/model/openai_key", "--with-decryption")
    assert [h["Version"] for h in hist["Parameters"]] == [1, 2]
    assert [h["Value"] == k for h, k in zip(hist["Parameters"],
                                            (key, key2))] == [True, True]
    # A fresh mount: the parent exists in Parameter Store, no mkdir.
    m.stop()
    m2 = seed.mount(name="k2", args=("-d",))
    p2 = m2.path("ssm", SEED_REGION, "prod", "model", "anthropic_key")
    r = shell_write(p2, key)
    assert r.returncode == 0, r.stderr
    assert seed.value("/prod/model/anthropic_key") == key.encode()
    assert seed.describe("/prod/model/anthropic_key")["Type"] == \
        "SecureString"
    hist = seed.cli("get-parameter-history", "--name",
                    "/prod/model/anthropic_key")["Parameters"]
    assert len(hist) == 1
    for mm in (m, m2):
        assert key not in mm.log() and key2 not in mm.log(), \
            "a value reached the keyfs log"


# ---- the AWS CLI the other way ----------------------------------------------

def test_cli_parameters_read_through_keyfs(ssm):
    c = make_canary()
    ssm.cli("put-parameter", "--name", "/app/db/host", "--type", "String",
            "--value", "db.internal")
    ssm.cli("put-parameter", "--name", "/app/db/password", "--type",
            "SecureString", "--key-id", "alias/keyfs-custom", "--value", c)
    ssm.cli("put-parameter", "--name", "/app/hosts", "--type", "StringList",
            "--value", "a.example,b.example,c.example")
    ssm.cli("put-parameter", "--name", "/app/deep/er/still/leaf", "--type",
            "String", "--value", "deep")
    ssm.cli("put-parameter", "--name", "foo", "--type", "String",
            "--value", "flat")
    m = ssm.mount()
    region = m.path("ssm", ssm.region)
    assert sorted(os.listdir(region)) == ["app", "foo"]
    assert sorted(os.listdir(os.path.join(region, "app"))) == \
        ["db", "deep", "hosts"]
    assert sorted(os.listdir(os.path.join(region, "app", "db"))) == \
        ["host", "password"]
    assert os.listdir(os.path.join(region, "app", "deep")) == ["er"]
    assert os.path.isdir(os.path.join(region, "app", "deep", "er", "still"))
    assert read(os.path.join(region, "app", "db", "host")) == b"db.internal"
    assert read(os.path.join(region, "app", "db", "password")) == c.encode()
    assert read(os.path.join(region, "app", "hosts")) == \
        b"a.example,b.example,c.example"
    assert read(os.path.join(region, "app", "deep", "er", "still",
                             "leaf")) == b"deep"
    assert read(os.path.join(region, "foo")) == b"flat"
    assert os.path.isfile(os.path.join(region, "foo"))
    r = run(["ls", "-lR", region])
    assert r.returncode == 0, r.stderr
    assert "password" in r.stdout and c not in r.stdout
    # `foo` written through keyfs is the same one parameter
    write_file(os.path.join(region, "foo"), b"flat2")
    out = ssm.cli("get-parameter", "--name", "foo")["Parameter"]
    assert out["Value"] == "flat2" and out["Version"] == 2
    assert c not in m.log()


def test_a_parameter_that_is_also_a_prefix_is_a_directory(ssm):
    ssm.put(("/a", "one", "String"), ("/a/b", "two", "String"))
    m = ssm.mount()
    region = m.path("ssm", ssm.region)
    assert os.path.isdir(os.path.join(region, "a"))
    assert os.listdir(region) == ["a"]
    assert os.listdir(os.path.join(region, "a")) == ["b"]
    assert read(os.path.join(region, "a", "b")) == b"two"
    assert read(os.path.join(region, "a:1")) == b"one"


# ---- overwrite keeps Type and KeyId; options for new names -----------------

def test_overwrite_keeps_type_and_key(ssm):
    ssm.put(("/k/custom", "c1", "SecureString",
             {"KeyId": "alias/keyfs-custom"}),
            ("/k/plain", "p1", "String"), ("/k/list", "x,y", "StringList"))
    m = ssm.mount()
    d = m.path("ssm", ssm.region, "k")
    write_file(os.path.join(d, "custom"), b"c2")
    write_file(os.path.join(d, "plain"), b"p2")
    write_file(os.path.join(d, "list"), b"x,y,z")
    got = ssm.api(*[("get_parameter", {"Name": "/k/" + n,
                                       "WithDecryption": True})
                    for n in ("custom", "plain", "list")])
    assert [g["Parameter"]["Value"] for g in got] == ["c2", "p2", "x,y,z"]
    assert [g["Parameter"]["Type"] for g in got] == \
        ["SecureString", "String", "StringList"]
    assert [g["Parameter"]["Version"] for g in got] == [2, 2, 2]
    assert ssm.describe("/k/custom")["KeyId"] == "alias/keyfs-custom"


def test_type_and_key_options_for_new_names(ssm):
    m = ssm.mount(ssm_type="String")
    write_file(m.path("ssm", ssm.region, "s1"), b"plain text")
    d = ssm.describe("/s1")
    assert d["Type"] == "String"
    assert ssm.value("/s1") == b"plain text"
    m.stop()
    m = ssm.mount(name="k2", ssm_kms_key="alias/keyfs-other")
    write_file(m.path("ssm", ssm.region, "s2"), b"secret text")
    d = ssm.describe("/s2")
    assert d["Type"] == "SecureString" and d["KeyId"] == "alias/keyfs-other"
    assert ssm.value("/s2") == b"secret text"
    m.stop()
    m = ssm.mount(name="k3", ssm_type="StringList")
    write_file(m.path("ssm", ssm.region, "s3"), b"a,b")
    assert ssm.describe("/s3")["Type"] == "StringList"


def test_tiers_and_size_limits(ssm):
    ssm.put(("/t/adv", "small", "String", {"Tier": "Advanced"}))
    m = ssm.mount()
    d = m.path("ssm", ssm.region, "t")
    big = b"b" * 5000
    write_file(os.path.join(d, "std"), b"s" * 4096)     # the Standard limit
    assert ssm.value("/t/std") == b"s" * 4096
    assert oserr(write_file, os.path.join(d, "big"), big) == errno.EFBIG
    assert oserr(write_file, os.path.join(d, "std"), big) == errno.EFBIG
    # at the write() that crosses 4,096 bytes, not only at close
    fd = os.open(os.path.join(d, "std"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"t" * 4096)
        assert oserr(os.write, fd, b"t") == errno.EFBIG
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert ssm.value("/t/std") == b"s" * 4096           # kept
    # an Advanced parameter takes up to 8192 bytes on a default mount
    write_file(os.path.join(d, "adv"), big)
    assert ssm.value("/t/adv") == big
    assert oserr(write_file, os.path.join(d, "adv"),
                 b"c" * 8193) == errno.EFBIG
    m.stop()
    m = ssm.mount(name="k2", ssm_tier="Advanced")
    d = m.path("ssm", ssm.region, "t")
    write_file(os.path.join(d, "big"), big)
    assert ssm.value("/t/big") == big
    assert ssm.describe("/t/big")["Tier"] == "Advanced"
    assert os.getxattr(os.path.join(d, "big"), "user.keyfs.tier") == \
        b"Advanced"
    assert oserr(write_file, os.path.join(d, "huge"),
                 b"h" * 8193) == errno.EFBIG
    # EFBIG at the write() that crosses the limit, not only at close
    fd = os.open(os.path.join(d, "huge2"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"h" * 8192)
        assert oserr(os.write, fd, b"h") == errno.EFBIG
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert sorted(ssm.names()) == ["/t/adv", "/t/big", "/t/std"]


def test_bytes_parameter_store_cannot_hold(ssm):
    ssm.put(("/e/keep", "kept", "SecureString"))
    m = ssm.mount()
    d = m.path("ssm", ssm.region, "e")
    # not UTF-8, or a NUL: EINVAL at the write() that shows it
    fd = os.open(os.path.join(d, "bin"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert oserr(os.write, fd, b"ok\xff\xfe") == errno.EINVAL
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert oserr(write_file, os.path.join(d, "keep"), b"a\x00b") == \
        errno.EINVAL
    assert ssm.value("/e/keep") == b"kept"
    # a UTF-8 character split across two write() calls is text
    fd = os.open(os.path.join(d, "utf"), os.O_WRONLY | os.O_CREAT, 0o600)
    snow = "caf\u00e9 \u2603".encode()
    os.write(fd, snow[:5])
    os.write(fd, snow[5:])
    os.close(fd)
    assert ssm.value("/e/utf") == snow
    # empty: a touch of a new name creates nothing
    run(["touch", os.path.join(d, "new")])
    fd = os.open(os.path.join(d, "new2"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.close(fd)
    except OSError:
        pass
    # truncating an existing one to 0 bytes fails and keeps the value
    fd = os.open(os.path.join(d, "keep"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert oserr(os.fsync, fd) == errno.EINVAL
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert ssm.value("/e/keep") == b"kept"
    assert len(ssm.history("/e/keep")) == 1
    assert sorted(ssm.names()) == ["/e/keep", "/e/utf"]
    assert "Parameter Store cannot hold an empty value" in m.log()
    assert read(os.path.join(d, "keep")) == b"kept"


def test_touch_of_a_new_name_fails_at_close(ssm):
    """An empty value cannot be stored: touch (open O_CREAT, close) of a
    new name must fail where the shell and touch(1) see it, not only in
    the log at release."""
    m = ssm.mount()
    d = m.path("ssm", ssm.region)
    r = run(["touch", os.path.join(d, "new")])
    fd = os.open(os.path.join(d, "new2"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.close(fd)
        closed = 0
    except OSError as e:
        closed = e.errno
    assert ssm.names() == []
    assert r.returncode != 0, "touch of a new name succeeded"
    assert closed == errno.EINVAL


# ---- rm, mkdir, rmdir ---------------------------------------------------------

def test_rm_mkdir_rmdir(ssm):
    m = ssm.mount()
    region = m.path("ssm", ssm.region)
    write_file(os.path.join(region, "gone"), b"v")
    assert ssm.value("/gone") == b"v"
    os.unlink(os.path.join(region, "gone"))
    p = ssm.cli("get-parameter", "--name", "/gone", check=False)
    assert p.returncode != 0 and "ParameterNotFound" in p.stderr
    assert "gone" not in os.listdir(region)
    assert oserr(os.unlink, os.path.join(region, "gone")) == errno.ENOENT
    # held directories: nothing in Parameter Store until a value is written
    os.makedirs(os.path.join(region, "held", "deeper"))
    assert os.path.isdir(os.path.join(region, "held", "deeper"))
    assert sorted(os.listdir(region)) == ["held"]
    assert oserr(os.mkdir, os.path.join(region, "held")) == errno.EEXIST
    os.rmdir(os.path.join(region, "held", "deeper"))
    os.rmdir(os.path.join(region, "held"))
    assert os.listdir(region) == []
    os.mkdir(os.path.join(region, "full"))
    write_file(os.path.join(region, "full", "x"), b"1")
    assert oserr(os.rmdir, os.path.join(region, "full")) == errno.ENOTEMPTY
    assert oserr(os.mkdir, os.path.join(region, "full", "x")) == errno.EEXIST
    assert ssm.names() == ["/full/x"]
    os.mkdir(os.path.join(region, "empty"))
    m.stop()
    # the held directory lived on that mount only
    m2 = ssm.mount(name="k2")
    assert sorted(os.listdir(m2.path("ssm", ssm.region))) == ["full"]
    assert ssm.names() == ["/full/x"]


# ---- names ------------------------------------------------------------------

def test_depth_and_name_rules(ssm):
    m = ssm.mount()
    region = m.path("ssm", ssm.region)
    levels = ["l%d" % i for i in range(1, 16)]
    # 15 levels: /l1/.../l14/p
    d14 = os.path.join(region, *levels[:14])
    os.makedirs(d14)
    write_file(os.path.join(d14, "p"), b"deep")
    name15 = "/" + "/".join(levels[:14]) + "/p"
    assert ssm.value(name15) == b"deep"
    assert read(os.path.join(d14, "p")) == b"deep"
    # 16 levels: refused (at mkdir of the 15th directory, or at the file)
    d15 = os.path.join(d14, "l15")
    try:
        os.mkdir(d15)
    except OSError as e:
        assert e.errno == errno.EINVAL
    else:
        assert oserr(write_file, os.path.join(d15, "p"), b"x") == \
            errno.EINVAL
    # characters outside [A-Za-z0-9_.-], reserved first components, length
    bad = ["bad@name", "per%cent", "sp ace", "star*", "awsthing", "AWS",
           "SSMthing", "ssm-x"]
    for n in bad:
        assert oserr(write_file, os.path.join(region, n), b"v") == \
            errno.EINVAL, n
        assert oserr(os.mkdir, os.path.join(region, n)) == errno.EINVAL, n
    # reserved only as the first component
    os.mkdir(os.path.join(region, "ok"))
    write_file(os.path.join(region, "ok", "aws-like"), b"v")
    long_dirs = [c * 250 for c in "abcd"]
    os.makedirs(os.path.join(region, *long_dirs))
    # "/" + 4 * 250 + 4 * "/" = 1004 bytes; a leaf of 7 is 1012 > 1011
    assert oserr(write_file, os.path.join(region, *long_dirs, "x" * 7),
                 b"v") == errno.EINVAL
    write_file(os.path.join(region, *long_dirs, "x" * 6), b"v")
    assert sorted(ssm.names()) == sorted(
        [name15, "/ok/aws-like", "/" + "/".join(long_dirs) + "/" + "x" * 6])


def test_thousand_parameters_list_costs_the_raw_pages(ssm):
    names = ["/big/p%04d" % i for i in range(1000)]
    ssm.api(("put_many", {"names": names, "value": "v", "type": "String"}))
    raw = ssm.api(("pages", {"ParameterFilters": [
        {"Key": "Path", "Option": "Recursive", "Values": ["/big"]}],
        "MaxResults": 50}))[0]
    assert len(raw["items"]) == 1000
    m = ssm.mount(ro=True)
    d = m.path("ssm", ssm.region, "big")
    assert os.path.isdir(d)
    d0, g0 = calls(m, "DescribeParameters"), calls(m, "GetParameter")
    listed = os.listdir(d)
    assert sorted(listed) == sorted(n.rsplit("/", 1)[1] for n in names)
    pages = calls(m, "DescribeParameters") - d0
    print("\nls of 1,000 parameters: %d DescribeParameters (raw listing: "
          "%d pages)" % (pages, raw["pages"]))
    assert pages == raw["pages"]
    # a stat of each: no value fetched, no lookup call (the listing was
    # complete)
    d1 = calls(m, "DescribeParameters")
    for n in listed:
        os.lstat(os.path.join(d, n))
    assert calls(m, "DescribeParameters") == d1
    # ls -l: its listing again (the same pages), and no value
    r = run(["ls", "-l", d])
    assert r.returncode == 0 and r.stdout.count("\n") == 1001
    assert calls(m, "DescribeParameters") - d1 == raw["pages"]
    assert calls(m, "GetParameter") == g0
    assert calls(m, "GetParameters") == 0


# ---- views and extended attributes ------------------------------------------

def parse_versions(text):
    rows = []
    for line in text.decode().splitlines():
        ver, created, labels = line.split(" ")
        rows.append((ver, created, set() if labels == "-" else
                     set(labels.split(","))))
    return rows


def test_versions_labels_and_xattrs(ssm):
    vals = [make_canary() for _ in range(3)]
    ssm.cli("put-parameter", "--name", "/v/x", "--type", "SecureString",
            "--description", "the model key", "--value", vals[0])
    for v in vals[1:]:
        time.sleep(0.01)
        ssm.put(("/v/x", v, "SecureString", {"Overwrite": True}))
    ssm.cli("label-parameter-version", "--name", "/v/x",
            "--parameter-version", "2", "--labels", "prod")
    ssm.put(("/v/plain", "p", "String"))
    m = ssm.mount()
    p = m.path("ssm", ssm.region, "v", "x")
    assert read(p) == vals[2].encode()
    assert [read(p + ":%d" % i) == vals[i - 1].encode()
            for i in (1, 2, 3)] == [True, True, True]
    assert read(p + ":prod") == vals[1].encode()
    assert oserr(read, p + ":9") == errno.ENOENT
    assert oserr(read, p + ":nolabel") == errno.ENOENT
    assert "x:1" not in os.listdir(os.path.dirname(p))
    rows = parse_versions(os.getxattr(p, "user.keyfs.versions"))
    assert [r[0] for r in rows] == ["3", "2", "1"]
    assert [r[2] for r in rows] == [set(), {"prod"}, set()]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT", r[1]) for r in rows)
    got = ssm.cli("get-parameter", "--name", "/v/x")["Parameter"]
    assert os.getxattr(p, "user.keyfs.id").decode() == got["ARN"]
    assert os.getxattr(p, "user.keyfs.version") == b"3"
    assert os.getxattr(p, "user.keyfs.type") == b"SecureString"
    assert os.getxattr(p, "user.keyfs.description") == b"the model key"
    assert os.getxattr(p, "user.keyfs.tier") == b"Standard"
    assert set(os.listxattr(p)) >= {
        "user.keyfs.id", "user.keyfs.version", "user.keyfs.type",
        "user.keyfs.description", "user.keyfs.tier"}
    q = m.path("ssm", ssm.region, "v", "plain")
    assert os.getxattr(q, "user.keyfs.type") == b"String"
    assert oserr(os.getxattr, q, "user.keyfs.description") == errno.ENODATA
    assert oserr(os.setxattr, p, "user.keyfs.description", b"new") == \
        errno.ENOTSUP
    # a write through keyfs: version 4, and the views still answer
    write_file(p, b"four")
    assert os.getxattr(p, "user.keyfs.version") == b"4"
    assert read(p + ":3") == vals[2].encode()
    assert not any(v in m.log() for v in vals)


# ---- read-only mounts, the change signal -------------------------------------

def test_read_only_mount_refuses_writes(ssm):
    ssm.put(("/ro/x", "v", "String"))
    m = ssm.mount(ro=True)
    d = m.path("ssm", ssm.region, "ro")
    assert read(os.path.join(d, "x")) == b"v"
    assert oserr(write_file, os.path.join(d, "x"), b"w") == errno.EROFS
    assert oserr(write_file, os.path.join(d, "y"), b"w") == errno.EROFS
    assert oserr(os.unlink, os.path.join(d, "x")) == errno.EROFS
    assert oserr(os.mkdir, os.path.join(d, "z")) == errno.EROFS
    assert ssm.names() == ["/ro/x"]
    assert ssm.value("/ro/x") == b"v"


def test_change_made_with_the_cli_is_an_event(ssm):
    old, new = make_canary(), make_canary()
    ssm.put(("/w/rot", old, "SecureString"))
    m = ssm.mount(ttl="2")
    p = os.path.realpath(m.path("ssm", ssm.region, "w", "rot"))
    assert read(p) == old.encode()
    ssm.cli("put-parameter", "--name", "/w/rot", "--overwrite",
            "--value", new)
    ev = m.path(".keyfs", "events")
    deadline = time.time() + 15
    lines = []
    while time.time() < deadline:
        with open(ev, "rb") as f:
            lines = f.read().decode().splitlines()
        if lines:
            break
        time.sleep(0.2)
    assert len(lines) == 1, "no event within 15 s"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ %s$" % re.escape(p),
                    lines[0])
    assert read(p) == new.encode()
    assert old not in m.log() and new not in m.log()


# ---- signatures and configuration errors -----------------------------------

def test_wrong_secret_key_is_eacces(ssm):
    ssm.put(("/sig/x", "v", "String"))
    good = ssm.mount()
    assert read(good.path("ssm", ssm.region, "sig", "x")) == b"v"
    wrong = ssm.secret[:-1] + ("X" if ssm.secret[-1] != "X" else "Y")
    bad = ssm.mount(name="bad", env=ssm.env(secret=wrong))
    assert oserr(os.listdir, bad.path("ssm", ssm.region)) == errno.EACCES
    assert oserr(read, bad.path("ssm", ssm.region, "sig", "x")) == \
        errno.EACCES
    assert ssm.secret not in bad.log() and ssm.secret not in good.log()


def test_unreachable_endpoint_fails_the_mount(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = ssm_env(tmp_path, "http://127.0.0.1:%d" % free_port(), "AKIDX",
                  "secretx")
    r = run([KEYFS_BIN, "-o",
             "providers=ssm,ssm_region=eu-west-1,timeout=3,store=%s"
             % (tmp_path / "store"), str(mnt)], env=env, timeout=60)
    if os.path.ismount(str(mnt)):
        subprocess.run(["fusermount3", "-uz", str(mnt)])
    assert r.returncode != 0
    assert "ssm: region eu-west-1: Parameter Store endpoint not usable" in \
        r.stderr, r.stderr[-500:]


def test_aws_region_serves_ssm_too(ssm):
    """ssm/ takes its regions from aws_region when ssm_region is not given,
    and that option is not reported as one for an unmounted aws/."""
    m = ssm.keyfs(name="shared", env=ssm.env(), providers="ssm",
                  aws_region=ssm.region, timeout="20")
    assert os.listdir(m.path("ssm")) == [ssm.region]
    assert "not mounted" not in m.log()
