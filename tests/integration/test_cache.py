"""Caching and freshness (docs/architecture.md, "The value cache"), through
the local provider.  Counters come from the mount root's user.keyfs.stats."""
import json
import os
import threading
import time

import pytest

from conftest import run


def stats(m):
    return json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def store_with_value(keyfs):
    m = keyfs("writer")
    os.makedirs(m.path("local", "r", "k"))
    write(m.path("local", "r", "k", "v"), b"first value")
    return m


def test_read_only_mount_serves_warm_reads_from_page_cache(store_with_value, keyfs):
    r = keyfs("reader", store=store_with_value.store, ro=True)
    p = r.path("local", "r", "k", "v")
    assert read(p) == b"first value"
    before = stats(r)
    assert before["mode"] == "read-only, page cache"
    for _ in range(200):
        assert read(p) == b"first value"
    after = stats(r)
    # No open and no read reached the daemon for the warm reads.
    assert after["fuse"]["reads"] == before["fuse"]["reads"]
    assert after["fuse"]["opens"] == before["fuse"]["opens"]
    assert after["cache"]["misses"] == 1


def test_direct_io_keeps_values_out_of_the_page_cache(store_with_value, keyfs):
    r = keyfs("reader", store=store_with_value.store, ro=True, direct_io=True)
    p = r.path("local", "r", "k", "v")
    for _ in range(20):
        assert read(p) == b"first value"
    s = stats(r)
    assert s["mode"] == "direct_io"
    assert s["fuse"]["reads"] >= 20          # every read reached keyfs
    assert s["cache"]["misses"] == 1         # ...and was served from memory


def test_change_reaches_a_caching_reader_within_ttl(store_with_value, keyfs):
    w = store_with_value
    r = keyfs("reader", store=w.store, ro=True, ttl=2)
    p = r.path("local", "r", "k", "v")
    assert read(p) == b"first value"
    write(w.path("local", "r", "k", "v"), b"second, longer value")
    deadline = time.time() + 2 + 1.5       # ttl + refresher slack
    seen = None
    while time.time() < deadline:
        seen = read(p)
        if seen == b"second, longer value":
            break
        assert seen == b"first value"      # old or new, never a mix
        time.sleep(0.05)
    assert seen == b"second, longer value"
    # Same length, new bytes: the kernel's cached pages must go too.
    write(w.path("local", "r", "k", "v"), b"third, longer valueX")
    assert len(b"third, longer valueX") == len(b"second, longer value")
    deadline = time.time() + 2 + 1.5
    while time.time() < deadline and read(p) != b"third, longer valueX":
        time.sleep(0.05)
    assert read(p) == b"third, longer valueX"


def test_refresh_ahead_keeps_readers_off_the_network(store_with_value, keyfs):
    r = keyfs("reader", store=store_with_value.store, ro=True, ttl=2)
    p = r.path("local", "r", "k", "v")
    end = time.time() + 5
    while time.time() < end:
        assert read(p) == b"first value"
        os.stat(p)
        time.sleep(0.02)
    s = stats(r)["cache"]
    assert s["refreshes"] >= 1      # refetched ahead of expiry...
    assert s["misses"] == 1         # ...so no reader ever waited on a fetch


def test_single_flight_for_concurrent_first_reads(store_with_value, keyfs):
    w = store_with_value
    w.stop()
    r = keyfs("rw2", store=w.store, ttl=300)
    p = r.path("local", "r", "k", "v")
    barrier = threading.Barrier(32)
    results = []

    def reader():
        barrier.wait()
        results.append(read(p))

    ts = [threading.Thread(target=reader) for _ in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=30)
    assert results == [b"first value"] * 32
    s = stats(r)["cache"]
    assert s["misses"] == 1
    assert s["hits"] + s["misses"] >= 32


def test_negative_cache_and_own_create(keyfs):
    m = keyfs(ttl=60)
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "later")
    for _ in range(5):
        assert not os.path.exists(p)
    s = stats(m)["cache"]
    assert s["negative_hits"] >= 3
    # keyfs's own create is visible at once despite the negative entry.
    write(p, b"now it exists")
    assert read(p) == b"now it exists"
    os.unlink(p)
    assert not os.path.exists(p)


def test_own_writes_are_read_back_immediately(keyfs):
    m = keyfs(ttl=300)
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "v")
    for i in range(20):
        write(p, b"value %d" % i)
        assert read(p) == b"value %d" % i
        assert os.stat(p).st_size == len(b"value %d" % i)


def test_ttl_zero_always_fetches(store_with_value, keyfs):
    r = keyfs("reader", store=store_with_value.store, ttl=0)
    p = r.path("local", "r", "k", "v")
    for _ in range(5):
        assert read(p) == b"first value"
    assert stats(r)["cache"]["misses"] >= 5


def test_audit_trail(keyfs, tmp_path):
    audit = tmp_path / "audit.log"
    m = keyfs(audit=str(audit))
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "v")
    write(p, b"audited canary value")
    assert read(p) == b"audited canary value"
    try:
        read(m.path("local", "r", "k", "missing"))
    except OSError:
        pass
    os.unlink(p)
    time.sleep(0.2)
    text = audit.read_text()
    assert "audited canary value" not in text
    lines = text.splitlines()
    ops = [l.split(" op=")[1].split()[0] for l in lines]
    for op in ("mkdir", "create", "write", "commit", "open", "read", "unlink"):
        assert op in ops, (op, text)
    line = [l for l in lines if " op=open " in l][0]
    assert "uid=%d gid=%d pid=" % (os.getuid(), os.getgid()) in line
    assert 'path="/local/r/k/v" result=ok' in line
    assert 'comm="python3"' in line or 'comm="pytest' in line
    assert stat_mode(audit) == 0o600
    # Audited mounts send every open to keyfs even when read-only.
    m.stop()
    m2 = keyfs("ro", store=m.store, ro=True, audit=str(audit))
    assert stats(m2)["mode"] != "read-only, page cache"


def stat_mode(p):
    return os.stat(p).st_mode & 0o777


def test_audit_covers_truncate_and_release_commits(keyfs, tmp_path):
    audit = tmp_path / "audit2.log"
    m = keyfs(audit=str(audit))
    os.makedirs(m.path("local", "r", "k"))
    p = m.path("local", "r", "k", "v")
    write(p, b"abcdef")
    os.truncate(p, 2)
    assert run(["sh", "-c", ": > " + p]).returncode == 0
    time.sleep(0.3)                       # release is asynchronous
    assert read(p) == b""
    lines = audit.read_text().splitlines()
    assert any(" op=truncate " in l and "result=ok" in l for l in lines)
    commits = [l for l in lines if " op=commit " in l]
    assert len(commits) == 2              # the new file, the bare O_TRUNC
    # The release-time commit names the process that opened the file.
    assert 'comm="sh"' in commits[1] or "pid=0 " not in commits[1]
