"""gcp/ values in a Cloud Storage bucket (-o gcp_bucket=BUCKET[/PREFIX]),
in berglas's storage format, through real mounts against the Cloud KMS,
Cloud Storage (bucket versioning on) and Secret Manager emulators on
loopback: byte-exact interop with an independent berglas reader/writer
(berglas_ref.py), two hosts sharing one bucket (the fleet case),
concurrent writers on two mounts (no torn value, no write lost
silently), a copied or re-keyed object refused with EIO, the calls a
listing and a cold read cost, generations as views, an unreachable
bucket, and a workload under 30 % injected faults."""
import base64
import errno
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (GCP_BUCKET, GCP_PROJECT, free_port, grep_tree, make_canary, oserr, read_file as read,
                      run, write_file as write)
from test_faults import FaultProxy

import berglas_ref

PREFIX = "kf"
NOPS = 60            # operations of each fault workload


def key_name(ring, key):
    return "projects/%s/locations/global/keyRings/%s/cryptoKeys/%s" % (
        GCP_PROJECT, ring, key)


def obj(ring, key, name, prefix=PREFIX):
    parts = [prefix] if prefix else []
    return "/".join(parts + [GCP_PROJECT, "global", ring, key, name])


def make_key(m, ring, key):
    d = m.path("gcp", GCP_PROJECT, "global", ring)
    if not os.path.isdir(d):
        os.mkdir(d)
    os.mkdir(os.path.join(d, key))
    return os.path.join(d, key)


def kdir(m, ring, key):
    return m.path("gcp", GCP_PROJECT, "global", ring, key)


def generations(emus, name):
    """Every generation of object name: [(generation, live)], oldest
    first."""
    rows = emus.gcs.admin("GET", "/_emu/objects?bucket=" + GCP_BUCKET)
    if isinstance(rows, dict):
        rows = rows.get("objects", rows.get("items", []))
    out = [(int(r["generation"]), bool(r["live"])) for r in rows
           if r["name"] == name]
    return sorted(out)


def bref_read(emus, name, generation=0):
    return berglas_ref.read(emus.gcs.url, emus.kms.url, emus.token,
                            GCP_BUCKET, name, generation)


def bref_write(emus, name, key, value, gen=0, metagen=0):
    return berglas_ref.write(emus.gcs.url, emus.kms.url, emus.token,
                             GCP_BUCKET, name, key, value, gen, metagen)


def gcs_call(emus, method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(
        emus.gcs.url + path, data=body, method=method,
        headers={"Authorization": "Bearer " + emus.token,
                 "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def resource(emus, name):
    return json.loads(gcs_call(emus, "GET", "/storage/v1/b/%s/o/%s" % (
        GCP_BUCKET, urllib.parse.quote(name, safe=""))))


def copy_object(emus, src, dst, kms_key=None):
    """dst gets src's body and metadata (what `gsutil cp` of the object
    does), with berglas-kms-key replaced when kms_key is given."""
    body = gcs_call(emus, "GET", "/storage/v1/b/%s/o/%s?alt=media" % (
        GCP_BUCKET, urllib.parse.quote(src, safe="")))
    meta = dict(resource(emus, src).get("metadata") or {})
    if kms_key:
        meta["berglas-kms-key"] = kms_key
    gcs_call(emus, "POST", "/upload/storage/v1/b/%s/o?uploadType=media&"
             "name=%s" % (GCP_BUCKET, urllib.parse.quote(dst, safe="")),
             body, "text/plain")
    gcs_call(emus, "PATCH", "/storage/v1/b/%s/o/%s" % (
        GCP_BUCKET, urllib.parse.quote(dst, safe="")),
        json.dumps({"metadata": meta}).encode())


def gstats(m):
    st = json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))["api"]
    return st.get("gcs", {}), st.get("gcp", {})


def calls(ops, name):
    return ops.get(name, {}).get("calls", 0)


def eventually(fn, timeout=6.0):
    """fn() until it returns a true value (or the deadline: its last)."""
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except OSError:
            v = None
        if v or time.time() > deadline:
            return v
        time.sleep(0.2)


def test_berglas_interop_both_ways(gcp_mount, gcp_emus, tmp_path):
    m = gcp_mount(bucket=GCP_BUCKET + "/" + PREFIX)
    k = make_key(m, "fleet", "api")
    canary = make_canary()
    r = run(["sh", "-c", 'echo "$1" > "$2"', "_", canary, k + "/openai"])
    assert r.returncode == 0, r.stderr
    name = obj("fleet", "api", "openai")
    # the object, in berglas's format, read by the independent reader
    assert [live for _, live in generations(gcp_emus, name)] == [True]
    assert bref_read(gcp_emus, name) == (canary + "\n").encode()
    res = resource(gcp_emus, name)
    assert res["metadata"] == {"berglas-secret": "1",
                               "berglas-kms-key": key_name("fleet", "api")}
    assert res["cacheControl"] == berglas_ref.CACHE_CONTROL
    body = gcs_call(gcp_emus, "GET", "/storage/v1/b/%s/o/%s?alt=media" % (
        GCP_BUCKET, urllib.parse.quote(name, safe="")))
    assert canary.encode() not in body
    wrapped, sealed = body.split(b":", 1)
    base64.b64decode(wrapped, validate=True)
    assert len(base64.b64decode(sealed, validate=True)) == \
        12 + len(canary) + 1 + 16
    assert os.getxattr(k + "/openai", "user.keyfs.id").decode() == \
        "gs://%s/%s" % (GCP_BUCKET, name)
    # what berglas writes, keyfs reads; ':' in an object name is %3A
    v2, v3 = make_canary().encode(), make_canary().encode()
    bref_write(gcp_emus, obj("fleet", "api", "from-berglas"),
               key_name("fleet", "api"), v2)
    bref_write(gcp_emus, obj("fleet", "api", "db:prod"),
               key_name("fleet", "api"), v3)
    m2 = gcp_mount(name="g2", bucket=GCP_BUCKET + "/" + PREFIX)
    k2 = kdir(m2, "fleet", "api")
    assert sorted(os.listdir(k2)) == ["db%3Aprod", "from-berglas", "openai"]
    assert read(k2 + "/from-berglas") == v2
    assert read(k2 + "/db%3Aprod") == v3
    assert read(k2 + "/openai") == (canary + "\n").encode()
    # an overwrite through keyfs is read by berglas again
    v4 = make_canary().encode()
    write(k2 + "/from-berglas", v4)
    assert bref_read(gcp_emus, obj("fleet", "api", "from-berglas")) == v4
    # never in a local store, never in a log
    for mm in (m, m2):
        assert not grep_tree(mm.store, canary.encode())
        assert not grep_tree(mm.store, v2)
        assert "KEYFS-CANARY-" not in mm.log()


def test_two_hosts_one_bucket(gcp_mount, gcp_emus):
    a = gcp_mount(name="a", ttl="1")
    b = gcp_mount(name="b", ttl="1")
    assert a.store != b.store
    make_key(a, "ring", "key")
    ka, kb = kdir(a, "ring", "key"), kdir(b, "ring", "key")
    v1 = make_canary().encode()
    write(ka + "/shared", v1)
    assert eventually(lambda: read(kb + "/shared") == v1)
    assert os.listdir(kb) == ["shared"]
    v2 = make_canary().encode()
    write(kb + "/shared", v2)           # b read a's generation: an update
    assert eventually(lambda: read(ka + "/shared") == v2)
    v3 = make_canary().encode()
    write(kb + "/new", v3)
    assert eventually(lambda: read(ka + "/new") == v3)
    os.unlink(ka + "/new")
    assert eventually(lambda: not os.path.exists(kb + "/new"))
    assert oserr(read, kb + "/new") == errno.ENOENT
    # the two local stores hold no value
    for m in (a, b):
        assert not grep_tree(m.store, v1) and not grep_tree(m.store, v2)
        assert "KEYFS-CANARY-" not in m.log()


def test_concurrent_writers_on_two_mounts(gcp_mount, gcp_emus):
    a = gcp_mount(name="a", ttl="1")
    b = gcp_mount(name="b", ttl="1")
    make_key(a, "ring", "key")
    os.listdir(kdir(b, "ring", "key"))
    write(kdir(a, "ring", "key") + "/hot", b"seed")
    name = obj("ring", "key", "hot", prefix="")
    results = []                        # (value, errno or 0)
    lock = threading.Lock()
    N = 20

    def writer(m, tag):
        p = kdir(m, "ring", "key") + "/hot"
        for i in range(N):
            v = ("%s-%02d-" % (tag, i) + make_canary()).encode() * 4
            try:
                write(p, v)
                e = 0
            except OSError as ex:
                e = ex.errno
            with lock:
                results.append((v, e))

    ts = [threading.Thread(target=writer, args=(m, t))
          for m, t in ((a, "A"), (b, "B"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    ok = [v for v, e in results if e == 0]
    failed = [(v, e) for v, e in results if e]
    assert len(results) == 2 * N
    assert all(e == errno.EBUSY for _, e in failed), failed
    gens = generations(gcp_emus, name)
    values = [bref_read(gcp_emus, name, g) for g, _ in gens]
    live = [bref_read(gcp_emus, name, g) for g, lv in gens if lv]
    attempted = {v for v, _ in results} | {b"seed"}
    print("\nconcurrent writers: %d writes ok, %d EBUSY, %d generations"
          % (len(ok), len(failed), len(gens)))
    assert all(v in attempted for v in values)      # nothing torn or mixed
    assert all(values.count(v) == 1 for v in ok)    # each write once
    assert not [v for v in ok if v not in values]   # none lost
    assert len(live) == 1 and live[0] in ok
    assert len(ok) >= N                             # most writes succeed
    time.sleep(1.2)
    assert read(kdir(a, "ring", "key") + "/hot") == live[0]
    assert read(kdir(b, "ring", "key") + "/hot") == live[0]
    assert "KEYFS-CANARY-" not in a.log() + b.log()


def test_copied_or_rekeyed_object_is_eio(gcp_mount, gcp_emus):
    m = gcp_mount(ttl="1")
    k = make_key(m, "ring", "key")
    make_key(m, "ring", "other")
    v = make_canary().encode()
    write(k + "/orig", v)
    src = obj("ring", "key", "orig", prefix="")
    # same body and metadata under another name: the AAD no longer matches
    copy_object(gcp_emus, src, obj("ring", "key", "copy", prefix=""))
    # a value sealed with the other key, placed under this key's name
    bref_write(gcp_emus, obj("ring", "key", "rekeyed", prefix=""),
               key_name("ring", "other"), make_canary().encode())
    # this key's own body, labelled as the other key's
    copy_object(gcp_emus, src, obj("ring", "key", "relabelled", prefix=""),
                kms_key=key_name("ring", "other"))
    assert eventually(lambda: "copy" in os.listdir(k))
    for n in ("copy", "rekeyed", "relabelled"):
        assert oserr(read, k + "/" + n) == errno.EIO, n
    assert read(k + "/orig") == v
    assert "KEYFS-CANARY-" not in m.log()


def test_listing_costs_the_pages_only(gcp_mount, gcp_emus):
    m = gcp_mount(name="w")
    make_key(m, "ring", "big")
    key = key_name("ring", "big")
    names = ["v%03d" % i for i in range(100)]
    for n in names:
        bref_write(gcp_emus, obj("ring", "big", n, prefix=""), key, b"x" * 9)
    r = gcp_mount(name="r")
    d = kdir(r, "ring", "big")
    os.stat(d)
    gcp_emus.reset_counters()
    g0, k0 = gstats(r)
    assert sorted(os.listdir(d)) == names
    gc = gcp_emus.counters(gcp_emus.gcs)
    kc = gcp_emus.counters(gcp_emus.kms)
    g1, k1 = gstats(r)
    print("\nls of 100 values: gcs %s, kms %s" % (gc, kc))
    assert set(gc) == {"objects.list"}, gc
    assert 1 <= gc["objects.list"] <= 2
    assert not {op for op in kc if op.startswith("cryptoKeys.")}, kc
    assert calls(g1, "objects.list") - calls(g0, "objects.list") == \
        gc["objects.list"]
    assert calls(g1, "objects.get") == calls(g0, "objects.get")
    assert calls(g1, "objects.media") == calls(g0, "objects.media")


def test_cold_read_is_stat_media_and_one_decrypt(gcp_mount, gcp_emus):
    m = gcp_mount(name="w")
    make_key(m, "ring", "key")
    v = make_canary().encode()
    bref_write(gcp_emus, obj("ring", "key", "cold", prefix=""),
               key_name("ring", "key"), v)
    r = gcp_mount(name="r")
    d = kdir(r, "ring", "key")
    assert os.listdir(d) == ["cold"]
    gcp_emus.reset_counters()
    g0, k0 = gstats(r)
    assert read(d + "/cold") == v
    gc = gcp_emus.counters(gcp_emus.gcs)
    kc = gcp_emus.counters(gcp_emus.kms)
    g1, k1 = gstats(r)
    print("\ncold read: gcs %s, kms %s" % (gc, kc))
    assert gc == {"objects.get": 1, "objects.media": 1}, gc
    assert {op: n for op, n in kc.items() if n} == \
        {"cryptoKeys.decrypt": 1}, kc
    assert calls(g1, "objects.get") - calls(g0, "objects.get") == 1
    assert calls(g1, "objects.media") - calls(g0, "objects.media") == 1
    # warm: no call
    gcp_emus.reset_counters()
    assert read(d + "/cold") == v
    assert sum(gcp_emus.counters(gcp_emus.gcs).values()) == 0
    assert "KEYFS-CANARY-" not in r.log() + m.log()


def test_generations_are_views(gcp_mount, gcp_emus):
    m = gcp_mount()
    k = make_key(m, "ring", "key")
    vals = [make_canary().encode() for _ in range(3)]
    for v in vals:
        write(k + "/api", v)
    gens = generations(gcp_emus, obj("ring", "key", "api", prefix=""))
    assert len(gens) == 3 and [lv for _, lv in gens] == [False, False, True]
    rows = [line.split(" ") for line in
            os.getxattr(k + "/api", "user.keyfs.versions").decode()
            .splitlines()]
    assert sorted(int(r[0]) for r in rows) == [g for g, _ in gens]
    labels = {int(r[0]): r[2] for r in rows}
    assert labels[gens[-1][0]] == "latest"
    assert all(labels[g] == "-" for g, _ in gens[:-1])
    for (g, _), v in zip(gens, vals):
        assert read(k + "/api:%d" % g) == v
    assert read(k + "/api") == vals[-1]
    # a generation is read-only; an unknown one does not exist
    assert oserr(write, k + "/api:%d" % gens[0][0], b"x") in (
        errno.EROFS, errno.EACCES, errno.EPERM)
    assert oserr(read, k + "/api:1") == errno.ENOENT
    assert "KEYFS-CANARY-" not in m.log()


def test_unreachable_or_missing_bucket_fails_the_mount(gcp_mount):
    """The mount probes the bucket: an endpoint that does not answer or a
    bucket that does not exist is refused at mount, saying which."""
    dead = "http://127.0.0.1:%d/" % free_port()
    for label, bucket, opts, why in (
            ("unreachable", True, dict(gcs_endpoint=dead),
             "gs://%s/" % GCP_BUCKET),
            ("missing", "no-such-bucket", {}, "gs://no-such-bucket/")):
        t0 = time.time()
        with pytest.raises(RuntimeError) as e:
            gcp_mount(name="x" + label, bucket=bucket, timeout="4", **opts)
        msg = str(e.value)
        assert "exit 1" in msg and why in msg, msg
        assert label != "unreachable" or dead.rstrip("/") in msg, msg
        assert label != "missing" or "does not exist" in msg or \
            "no such bucket" in msg, msg
        assert time.time() - t0 < 15
    # a malformed bucket name is refused at mount
    with pytest.raises(RuntimeError):
        gcp_mount(name="bad", bucket="Not_A..Bucket!")


def test_fault_workload_bucket(gcp_mount, gcp_emus):
    """30 % of the Cloud Storage and Cloud KMS calls fail (500, 503, 429,
    resets before and after the service acted, delays): no wrong value,
    no lost write; every successful write is a generation."""
    w = gcp_mount(name="w")
    make_key(w, "ring", "load")
    names = ["p%d" % i for i in range(6)]
    first = {n: make_canary() for n in names}
    for n in names:
        write(kdir(w, "ring", "load") + "/" + n, first[n].encode())
    gp, kp = FaultProxy(gcp_emus.gcs.url), FaultProxy(gcp_emus.kms.url)
    try:
        m = gcp_mount(name="f", gcs_endpoint=gp.url + "/",
                      gcp_endpoint=kp.url + "/", ttl="0", max_stale="0",
                      timeout="20")
        d = kdir(m, "ring", "load")
        for n in names:
            assert read(d + "/" + n) == first[n].encode()
        # The proxy speaks Google's errors for Cloud KMS paths only: on
        # Cloud Storage paths its 429 would be an AWS-shaped 400, so the
        # emulator itself answers the 429s there (about 6 % more).
        gp.faults(["*"], 0.25, seed=11,
                  kinds=["500", "503", "reset_before", "reset_after",
                         "delay"])
        gcp_emus.gcs.admin("POST", "/_emu/faults", {
            "error_status": 429, "error_rate": 0.06, "seed": 3})
        kp.faults(["cryptoKeys.*"], 0.30, seed=12)
        rnd = random.Random(5)
        cands = {n: [first[n]] for n in names}
        written = {n: [] for n in names}
        ok_w = failed_w = ok_r = failed_r = wrong = 0
        t0 = time.time()
        for i in range(NOPS):
            n = rnd.choice(names)
            if rnd.random() < 0.6:
                v = make_canary()
                try:
                    write(d + "/" + n, v.encode())
                except OSError as e:
                    assert e.errno in (errno.EIO, errno.EBUSY), e
                    failed_w += 1
                    written[n].append((v, False))
                    cands[n].append(v)
                    continue
                ok_w += 1
                written[n].append((v, True))
                cands[n] = [v]
            else:
                try:
                    got = read(d + "/" + n).decode()
                except OSError as e:
                    assert e.errno == errno.EIO, e
                    failed_r += 1
                    continue
                ok_r += 1
                if got in cands[n]:
                    cands[n] = [got]
                else:
                    wrong += 1
        loop_s = time.time() - t0
        injected = sum(sum(v.get("faults", {}).values())
                       for p in (gp, kp)
                       for v in p.control("GET", "/_proxy/stats")["ops"]
                       .values())
        injected += sum(gcp_emus.gcs.admin("GET", "/_emu/counters")
                        ["faults_injected"].values())
        gcp_emus.gcs.admin("DELETE", "/_emu/faults")
        gp.control("POST", "/_proxy/config", {"rules": []})
        kp.control("POST", "/_proxy/config", {"rules": []})
        final = {n: read(d + "/" + n).decode() for n in names}
    finally:
        gp.stop()
        kp.stop()
    lost = landed_failed = unknown = gens_n = 0
    for n in names:
        name = obj("ring", "load", n, prefix="")
        gens = generations(gcp_emus, name)
        made = [bref_read(gcp_emus, name, g).decode() for g, _ in gens][1:]
        gens_n += len(made)
        mine = [v for v, _ in written[n]]
        unknown += sum(1 for v in made if v not in mine)
        for v, ok in written[n]:
            if ok and v not in made:
                lost += 1
            if not ok and v in made:
                landed_failed += 1
        last = made[-1] if made else first[n]
        wrong += final[n] != last
        wrong += final[n] not in cands[n]
    print("\nbucket fault workload (%.0f s): %d operations, %d writes ok, "
          "%d failed (%d of those landed), %d reads ok, %d failed; %d "
          "faults injected; %d generations made, %d lost, %d wrong values"
          % (loop_s, NOPS, ok_w, failed_w, landed_failed, ok_r, failed_r,
             injected, gens_n, lost, wrong + unknown))
    assert injected >= 20, injected
    assert wrong == 0 and unknown == 0
    assert lost == 0
    assert gens_n >= ok_w
    assert ok_w + ok_r >= 0.6 * NOPS, (ok_w, ok_r)
    assert "KEYFS-CANARY-" not in m.log() + w.log()
