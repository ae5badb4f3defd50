"""ssm/ under 30 % injected faults: keyfs talks to moto_server (signatures
enforced) through tests/emulators/fault_proxy.py, which fails 30 % of the
Parameter Store calls (500, 503, throttling, resets before and after moto
acted, delays).  A workload of writes and reads over eight parameters ends
with no wrong value and no lost write, and Parameter Store's own version
history (read past the proxy) holds each successful write exactly once.

PutParameter has no idempotency token: a retry after a lost answer is
made safe by reading the parameter first (version above the one before
and the same value: it landed).  What that check cannot see is an attempt
still in flight at the service while it runs, or another writer putting
the same value meanwhile.  Neither can happen here: the proxy's delays
(100 ms) are far below an attempt's deadline (half of timeout=20), a
"reset_after" answer is dropped only after moto acted, and nothing else
writes.  So the honest figure to assert is exact: versions made =
successful writes + failed writes whose value landed, no value twice."""
import errno
import os
import random
import time

from conftest import make_canary, read_file as read, write_file
from test_faults import FaultProxy
from test_ssm import Ssm, signed  # noqa: F401,F811  (the module's moto)

REGION = "eu-west-1"
OPS = ["GetParameter", "GetParameters", "PutParameter", "DescribeParameters",
       "GetParameterHistory"]
NPARAMS = 8
NOPS = 200


def test_workload_under_30_percent_faults(signed, keyfs, tmp_path):  # noqa: F811
    ssm = Ssm(signed, keyfs, tmp_path, REGION)
    names = ["/load/p%d" % i for i in range(NPARAMS)]
    first = {n: make_canary() for n in names}
    ssm.put(*[(n, first[n], "SecureString") for n in names])
    proxy = FaultProxy(ssm.url)
    try:
        m = ssm.mount(env=ssm.env(endpoint=proxy.url), ttl="0",
                      max_stale="0")
        paths = {n: m.path("ssm", REGION, *n.strip("/").split("/"))
                 for n in names}
        for n in names:
            assert read(paths[n]) == first[n].encode()
        proxy.faults(OPS, 0.30, seed=9)
        rnd = random.Random(13)
        t0 = time.time()
        # What a read may return: the value of the last write known to
        # have landed, or that of any failed write after it.
        cands = {n: [first[n]] for n in names}
        written = {n: [] for n in names}        # (value, ok) in order
        ok_w = failed_w = ok_r = failed_r = wrong = 0
        for i in range(NOPS):
            n = rnd.choice(names)
            if rnd.random() < 3 / 4:
                value = make_canary()
                try:
                    write_file(paths[n], value.encode())
                except OSError as e:
                    assert e.errno == errno.EIO, e
                    failed_w += 1
                    written[n].append((value, False))
                    cands[n].append(value)
                    continue
                ok_w += 1
                written[n].append((value, True))
                cands[n] = [value]
            else:
                try:
                    got = read(paths[n]).decode()
                except OSError as e:
                    assert e.errno == errno.EIO, e
                    failed_r += 1
                    continue
                ok_r += 1
                if got in cands[n]:
                    cands[n] = [got]
                else:
                    wrong += 1
        st = proxy.stats()
        proxy.up()
        loop_s = time.time() - t0
        # durable and served once the faults stop
        final = {n: read(paths[n]).decode() for n in names}
    finally:
        proxy.stop()
    injected = sum(sum(v.get("faults", {}).values())
                   for v in st["ops"].values())
    put_lost = st["ops"].get("PutParameter", {}).get("faults", {}).get(
        "reset_after", 0)
    put_forwarded = st["ops"].get("PutParameter", {}).get("forwarded", 0)
    # Parameter Store's record, read past the proxy.
    versions = landed_failed = dup = lost = unknown = order_bad = 0
    for n in names:
        hist = ssm.history(n)
        vals = [h["Value"] for h in hist]
        assert vals[0] == first[n]
        made = vals[1:]
        versions += len(made)
        mine = [v for v, _ in written[n]]
        unknown += sum(1 for v in made if v not in mine)
        for v, ok in written[n]:
            c = made.count(v)
            dup += max(0, c - 1)
            if ok and c == 0:
                lost += 1
            if not ok and c:
                landed_failed += 1
        if [v for v in mine if v in made] != made:
            order_bad += 1
        last = made[-1] if made else first[n]
        wrong += final[n] != last
    print("\nssm fault workload (%.0f s): %d operations, %d writes ok, %d failed "
          "(%d of those landed), %d reads ok, %d failed; %d faults injected "
          "(%d PutParameter answers lost after moto acted, %d PutParameter "
          "reached moto); %d versions made, %d duplicate, %d lost, "
          "%d wrong values"
          % (loop_s, NOPS, ok_w, failed_w, landed_failed, ok_r, failed_r, injected,
             put_lost, put_forwarded, versions, dup, lost, wrong + unknown))
    assert injected >= 0.2 * NOPS, injected      # faults really happened
    assert put_lost >= 3, put_lost               # the landed check ran
    assert wrong == 0 and unknown == 0           # no wrong value
    assert lost == 0                             # no lost write
    assert dup == 0                              # one version per write
    assert order_bad == 0
    assert versions == ok_w + landed_failed
    assert versions == put_forwarded              # no put moto refused
    assert ok_w + ok_r >= 0.9 * NOPS, (ok_w, ok_r)
    log = m.log()
    assert "KEYFS-CANARY-" not in log, "a value reached the keyfs log"


def lose_one(proxy, op):
    """The next op call reaches moto, and its answer is lost (a reset)."""
    proxy.control("POST", "/_proxy/config", {"seed": 1, "rules": [
        {"op": op, "fault": "reset_after", "count": 1}]})


def test_a_lost_answer_on_a_kept_alive_connection(signed, keyfs,  # noqa: F811
                                                  tmp_path):
    """A PutParameter that landed but whose answer was lost, on a
    connection kept alive from the calls before: exactly one version (the
    check before a retry sees it landed; nothing may send the request
    again unseen).  The same for DeleteParameter: rm succeeds."""
    ssm = Ssm(signed, keyfs, tmp_path, "eu-central-1")
    ssm.put(("/lost/x", "v0", "SecureString"), ("/lost/y", "y", "String"))
    proxy = FaultProxy(ssm.url)
    try:
        m = ssm.mount(env=ssm.env(endpoint=proxy.url))
        p = m.path("ssm", "eu-central-1", "lost", "x")
        assert read(p) == b"v0"
        write_file(p, b"v1")                # the connection is warm
        for i in range(2, 5):
            lose_one(proxy, "PutParameter")
            write_file(p, b"v%d" % i)
            assert read(p) == b"v%d" % i
        lose_one(proxy, "DeleteParameter")
        try:
            os.unlink(m.path("ssm", "eu-central-1", "lost", "y"))
            rm = 0
        except OSError as e:
            rm = e.errno
        put = proxy.stats()["ops"]["PutParameter"]
        dele = proxy.stats()["ops"]["DeleteParameter"]
    finally:
        proxy.stop()
    hist = [h["Value"] for h in ssm.history("/lost/x")]
    print("\nlost answers: PutParameter seen by the proxy %d, versions %s"
          % (put["seen"], hist))
    assert put["faults"]["reset_after"] == 3
    assert hist == ["v0", "v1", "v2", "v3", "v4"]
    assert put["seen"] == 4                 # no request sent twice
    assert ssm.names() == ["/lost/x"]
    assert dele["seen"] == 1 and rm == 0, (dele["seen"], rm)
