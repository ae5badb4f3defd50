"""Versions and fields of aws/ secrets as paths (NAME:VERSION, NAME#FIELD,
NAME:VERSION#FIELD, a field secret's DIR:VERSION/), against moto_server
with signatures enforced, cross-checked with the AWS CLI.  A proxy in
front of moto counts keyfs's calls, gives every version the creation
time it was made at (moto's ListSecretVersionIds answers "now" for all)
and splits keyfs's version listings into pages of two, so ordering and
paging are checked end to end."""
import datetime
import errno
import http.client
import http.server
import json
import os
import socketserver
import threading
import uuid

import pytest

from conftest import make_canary, run, read_file as read, oserr
from test_aws import AWS_CLI, PYENV_PYTHON, REGION, SETUP_IAM, aws_env, \
    start_moto, stop_moto

VERSIONS = "user.keyfs.versions"


class Proxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def handler(target_port, state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            op = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
            mine = not self.headers.get("User-Agent", "").startswith(
                "aws-cli")
            c = http.client.HTTPConnection("127.0.0.1", target_port,
                                           timeout=30)
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("connection", "expect")}
            c.request("POST", self.path, body=body, headers=hdrs)
            resp = c.getresponse()
            data = resp.read()
            c.close()
            if op == "ListSecretVersionIds" and resp.status == 200:
                data = self.versions(json.loads(body or b"{}"), data, mine)
            with state["lock"]:
                if mine:
                    state["calls"].append(op)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection",
                                     "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def versions(self, req, data, mine):
            out = json.loads(data)
            for v in out.get("Versions", []):
                if v["VersionId"] in state["created"]:
                    v["CreatedDate"] = state["created"][v["VersionId"]]
            out.pop("NextToken", None)
            if mine:
                with state["lock"]:
                    state["list_reqs"].append(req)
                if "MaxResults" in req:
                    start = int(req.get("NextToken") or 0)
                    allv = out["Versions"]
                    out["Versions"] = allv[start:start + 2]
                    if start + 2 < len(allv):
                        out["NextToken"] = str(start + 2)
            return json.dumps(out).encode()

    return Handler


@pytest.fixture(scope="module")
def signed():
    """moto enforcing signatures (an IAM user's key), behind the proxy."""
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    srv = None
    try:
        r = run([PYENV_PYTHON, "-c", SETUP_IAM, url], timeout=60)
        assert r.returncode == 0, r.stderr[-800:]
        akid, secret = r.stdout.split()
        state = {"lock": threading.Lock(), "calls": [], "list_reqs": [],
                 "created": {}}
        srv = Proxy(("127.0.0.1", 0),
                    handler(int(url.rsplit(":", 1)[1]), state))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        yield {"url": "http://127.0.0.1:%d" % srv.server_address[1],
               "key": akid, "secret": secret, "state": state}
    finally:
        if srv:
            srv.shutdown()
            srv.server_close()
        stop_moto(proc)


class Env:
    def __init__(self, signed, keyfs, tmp_path):
        self.s = signed
        self.keyfs = keyfs
        self.tmp = tmp_path
        self.state = signed["state"]

    def env(self):
        return aws_env(self.tmp, self.s["url"], self.s["key"],
                       self.s["secret"])

    def cli(self, *args):
        p = run([AWS_CLI, "--endpoint-url", self.s["url"], "--region",
                 REGION, "--output", "json", "secretsmanager"] + list(args),
                env=self.env(), timeout=60)
        assert p.returncode == 0, p.stderr[-300:]
        return json.loads(p.stdout) if p.stdout.strip() else None

    def mount(self, name="k", **opts):
        opts.setdefault("providers", "aws")
        opts.setdefault("aws_region", REGION)
        opts.setdefault("timeout", "20")
        return self.keyfs(name=name, env=self.env(), **opts)

    def put(self, name, doc, *extra):
        """put-secret-value; the new VersionId, given a creation time."""
        out = self.cli("put-secret-value", "--secret-id", name,
                       "--secret-string", json.dumps(doc), *extra)
        vid = out["VersionId"]
        with self.state["lock"]:
            t = 1700000000.125 + 1.25 * len(self.state["created"])
            self.state["created"][vid] = t
        return vid

    def value(self, name, stage=None, vid=None):
        args = ["get-secret-value", "--secret-id", name]
        if stage:
            args += ["--version-stage", stage]
        if vid:
            args += ["--version-id", vid]
        return self.cli(*args)["SecretString"].encode()

    def calls(self, op):
        with self.state["lock"]:
            return self.state["calls"].count(op)


@pytest.fixture
def aws(signed, keyfs, tmp_path):
    return Env(signed, keyfs, tmp_path)


def rotated(aws, name):
    """name set three times with put-secret-value, a custom label on the
    second and a pending fourth: (version ids, canary passwords)."""
    pws = [make_canary() for _ in range(4)]
    aws.cli("create-secret", "--name", name)
    ids = [aws.put(name, {"username": "app%d" % i, "password": pws[i]})
           for i in range(3)]
    aws.cli("update-secret-version-stage", "--secret-id", name,
            "--version-stage", "blue", "--move-to-version-id", ids[1])
    ids.append(aws.put(name, {"username": "app3", "password": pws[3]},
                       "--version-stages", "AWSPENDING"))
    return ids, pws


def test_versions_and_fields_equal_the_cli(aws):
    name = "db-" + uuid.uuid4().hex[:8]
    ids, pws = rotated(aws, name)
    m = aws.mount()
    p = m.path("aws", REGION, name)
    assert read(p) == aws.value(name)
    for stage in ("AWSCURRENT", "AWSPREVIOUS", "AWSPENDING", "blue"):
        assert read(p + ":" + stage) == aws.value(name, stage=stage), stage
    for vid in ids:  # ids[0] has no label left: deprecated, still there
        assert read(p + ":" + vid) == aws.value(name, vid=vid)
    assert read(p + ":AWSPREVIOUS") != read(p + ":AWSCURRENT")
    # fields: json.loads of what the CLI returns
    cur = json.loads(aws.value(name))
    prev = json.loads(aws.value(name, stage="AWSPREVIOUS"))
    assert read(p + "#password") == cur["password"].encode()
    assert read(p + "#username") == cur["username"].encode()
    assert read(p + ":AWSPREVIOUS#password") == prev["password"].encode()
    assert read(p + ":blue#password") == prev["password"].encode()
    assert read(p + ":" + ids[0] + "#password") == pws[0].encode()
    assert read(p + ":AWSPENDING#password") == pws[3].encode()
    assert os.stat(p + ":AWSPREVIOUS#password").st_size == len(pws[1])
    # no such version, field or secret: ENOENT
    for bad in (":nope", ":" + str(uuid.uuid4()), "#nofield",
                ":AWSPREVIOUS#nofield", ":" + ids[0] + "#nofield"):
        assert oserr(read, p + bad) == errno.ENOENT, bad
        assert not os.path.exists(p + bad)
    assert oserr(read, m.path("aws", REGION, "no-such") + ":AWSCURRENT") \
        == errno.ENOENT
    log = m.log()
    assert not any(pw in log for pw in pws)


def parse_versions(text):
    rows = []
    for line in text.decode().splitlines():
        vid, created, labels = line.split(" ")
        rows.append((vid, created, set() if labels == "-" else
                     set(labels.split(","))))
    return rows


def iso(epoch):
    return datetime.datetime.fromtimestamp(
        int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cli_epoch(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.datetime.fromisoformat(v).timestamp()


def test_versions_xattr_lists_every_version_newest_first(aws):
    name = "rot-" + uuid.uuid4().hex[:8]
    ids, _ = rotated(aws, name)
    m = aws.mount()
    p = m.path("aws", REGION, name)
    before = len(aws.state["list_reqs"])
    rows = parse_versions(os.getxattr(p, VERSIONS))
    listed = aws.cli("list-secret-version-ids", "--secret-id", name,
                     "--include-deprecated")["Versions"]
    want = {v["VersionId"]: (iso(cli_epoch(v["CreatedDate"])),
                             set(v["VersionStages"])) for v in listed}
    assert {r[0]: (r[1], r[2]) for r in rows} == want
    assert len(rows) == 4 and set(want) == set(ids)
    # newest first: the pending version, the current one, ... the first
    assert [r[0] for r in rows] == list(reversed(ids))
    # keyfs asked with IncludeDeprecated and followed every page: each
    # listing (getxattr may be called again with a larger buffer) is the
    # first page, then the second
    reqs = aws.state["list_reqs"][before:]
    assert reqs and len(reqs) % 2 == 0
    assert all(r.get("IncludeDeprecated") is True for r in reqs)
    assert [r.get("NextToken") for r in reqs] == [None, "2"] * (len(reqs) // 2)
    r = run(["getfattr", "--only-values", "-n", VERSIONS, p])
    assert r.returncode == 0 and r.stdout.encode() == os.getxattr(p, VERSIONS)
    assert VERSIONS in os.listxattr(p)
    assert oserr(os.setxattr, p, VERSIONS, b"x") == errno.EPERM


def test_views_are_never_listed_and_never_written(aws):
    name = "ro-" + uuid.uuid4().hex[:8]
    ids, pws = rotated(aws, name)
    m = aws.mount()
    region = m.path("aws", REGION)
    p = os.path.join(region, name)
    views = [p + ":AWSPREVIOUS", p + ":" + ids[0], p + "#password",
             p + ":AWSPREVIOUS#password"]
    for v in views:
        read(v)
    assert name in os.listdir(region)
    assert not [n for n in os.listdir(region) if ":" in n or "#" in n]
    found = run(["find", m.path("aws")]).stdout.split()
    assert not [f for f in found if ":" in os.path.basename(f) or "#" in f]
    assert run(["ls", "-la", region]).stdout.count(name) == 1
    nvers = len(aws.cli("list-secret-version-ids", "--secret-id", name,
                        "--include-deprecated")["Versions"])
    for v in views:
        # fs/view.c: every change to a view is refused with EROFS
        assert oserr(os.open, v, os.O_WRONLY) == errno.EROFS
        assert oserr(os.open, v, os.O_RDWR | os.O_TRUNC) == errno.EROFS
        assert oserr(os.truncate, v, 0) == errno.EROFS
        assert oserr(os.unlink, v) == errno.EROFS
    r = run(["sh", "-c", 'echo x > "$P"'], env=dict(os.environ, P=views[0]))
    assert r.returncode != 0
    assert aws.value(name, stage="AWSPREVIOUS") == read(views[0])
    assert aws.value(name) == read(p)
    assert len(aws.cli("list-secret-version-ids", "--secret-id", name,
                       "--include-deprecated")["Versions"]) == nvers


def test_field_secret_version_is_a_directory(aws):
    m = aws.mount()
    name = "cfg-" + uuid.uuid4().hex[:8]
    d = m.path("aws", REGION, name)
    old, new = make_canary(), make_canary()
    os.mkdir(d)
    for field, value in (("user", "svc"), ("password", old)):
        r = run(["sh", "-c", 'echo -n "$V" > "$P"'],
                env=dict(os.environ, V=value, P=os.path.join(d, field)))
        assert r.returncode == 0, r.stderr
    r = run(["sh", "-c", 'echo -n "$V" > "$P"'],
            env=dict(os.environ, V=new, P=os.path.join(d, "password")))
    assert r.returncode == 0, r.stderr
    prev = d + ":AWSPREVIOUS"
    assert os.path.isdir(prev)
    assert sorted(os.listdir(prev)) == ["password", "user"]
    assert read(os.path.join(prev, "password")) == old.encode()
    assert read(os.path.join(prev, "password")) == json.loads(
        aws.value(name, stage="AWSPREVIOUS"))["password"].encode()
    assert read(os.path.join(d + ":AWSCURRENT", "password")) == new.encode()
    assert read(os.path.join(d, "password")) == new.encode()
    assert oserr(read, os.path.join(prev, "nofield")) == errno.ENOENT
    assert oserr(os.listdir, d + ":nope") == errno.ENOENT
    assert oserr(os.open, os.path.join(prev, "password"),
                 os.O_WRONLY) == errno.EROFS
    assert oserr(os.open, os.path.join(prev, "x"),
                 os.O_WRONLY | os.O_CREAT) == errno.EROFS
    assert not [n for n in os.listdir(m.path("aws", REGION)) if ":" in n]
    # its versions: on the directory and on a field file alike
    rows = parse_versions(os.getxattr(d, VERSIONS))
    listed = aws.cli("list-secret-version-ids", "--secret-id", name,
                     "--include-deprecated")["Versions"]
    assert {r[0] for r in rows} == {v["VersionId"] for v in listed}
    # (moto dates these versions "now": compare ids and labels)
    assert sorted((r[0], sorted(r[2])) for r in parse_versions(
        os.getxattr(os.path.join(d, "user"), VERSIONS))) == \
        sorted((r[0], sorted(r[2])) for r in rows)
    log = m.log()
    assert old not in log and new not in log


def test_five_fields_of_a_cold_secret_cost_one_get(aws):
    name = "five-" + uuid.uuid4().hex[:8]
    doc = {c: make_canary() for c in "abcde"}
    aws.cli("create-secret", "--name", name, "--secret-string",
            json.dumps(doc))
    m = aws.mount()
    p = m.path("aws", REGION, name)
    gets = aws.calls("GetSecretValue")
    batches = aws.calls("BatchGetSecretValue")
    for c in "abcde":
        assert read(p + "#" + c) == doc[c].encode()
    assert aws.calls("GetSecretValue") - gets == 1
    assert aws.calls("BatchGetSecretValue") == batches
    # the same version, pinned by its id: one more, then none
    vid = aws.cli("describe-secret", "--secret-id", name)
    vid = [k for k, v in vid["VersionIdsToStages"].items()
           if "AWSCURRENT" in v][0]
    for c in "abcde":
        assert read(p + ":" + vid + "#" + c) == doc[c].encode()
    assert aws.calls("GetSecretValue") - gets == 2


def test_audit_names_the_version_served_and_the_one_written(aws, tmp_path):
    """Audit lines of reads carry the VersionId served, views included;
    after a write through keyfs, the version it made (its
    ClientRequestToken, which Secrets Manager makes the VersionId)."""
    name = "aud-" + uuid.uuid4().hex[:8]
    ids, _ = rotated(aws, name)
    trail = str(tmp_path / "audit.log")
    m = aws.mount(audit=trail)
    p = m.path("aws", REGION, name)
    read(p)
    read(p + ":AWSPREVIOUS#password")
    with open(p, "w") as f:
        f.write(json.dumps({"password": make_canary()}))
    read(p)
    cur = aws.cli("describe-secret", "--secret-id", name)
    now = [v for v, st in cur["VersionIdsToStages"].items()
           if "AWSCURRENT" in st][0]
    assert now not in ids
    rel = "/aws/%s/%s" % (REGION, name)
    opens = [ln for ln in open(trail).read().splitlines()
             if " op=open " in ln and ' result=ok' in ln]

    def version_of(line):
        return line.rsplit(' version="', 1)[1].rstrip('"')

    plain = [version_of(ln) for ln in opens if 'path="%s"' % rel in ln
             and "version=" in ln]
    assert plain[0] == ids[2]          # read before the write
    assert plain[-1] == now            # read after it, from the cache
    view = [version_of(ln) for ln in opens
            if 'path="%s:AWSPREVIOUS#password"' % rel in ln]
    assert view == [ids[1]]
