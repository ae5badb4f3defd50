"""Reads through the kernel's page cache on a writable mount, and the sizes
`stat` shows: page-cached readers always get one whole committed value
(never an empty, padded or mixed one) while writers replace it, a commit
is seen by the next open, and stat never fetches a value."""
import json
import mmap
import os
import subprocess
import threading
import time

from conftest import run

# Values of different lengths and bytes: a padded, truncated or mixed
# read matches none of them.
VALUES = [b"a" * 5 + b"\n", b"b" * 300 + b"\n", b"c" * 3000 + b"\n",
          b"d" * 17 + b"\n"]


def _key(keyfs, **opts):
    m = keyfs(**opts)
    os.makedirs(m.path("local", "r", "k"))
    return m, m.path("local", "r", "k")


# A file written through the mount is read directly for this long after
# its last commit (then through the page cache again).
QUIET = 1.0


def settle():
    time.sleep(QUIET + 0.3)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fuse_counters(m):
    """What reached keyfs, from the mount's own statistics."""
    return json.loads(os.getxattr(m.mnt, "user.keyfs.stats"))["fuse"]


def test_readers_never_see_a_partial_value_while_writers_replace_it(keyfs):
    m, k = _key(keyfs)
    f = os.path.join(k, "v")
    write(f, VALUES[0])
    settle()  # the readers start on the page cache
    stop = threading.Event()
    bad = {}
    reads = [0]

    def reader():
        while not stop.is_set():
            got = read(f)
            reads[0] += 1
            if got not in VALUES:
                kind = ("empty" if not got else
                        "padded" if got.rstrip(b"\0") in VALUES else
                        "mixed")
                bad[kind] = bad.get(kind, 0) + 1
                bad.setdefault("samples", []).append(
                    (len(got), sorted(set(got))[:4], got[:1], got[-2:]))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    # The shell's own `echo >`: open with O_TRUNC, one write, close.
    script = ('for i in $(seq 150); do for v in %s; do '
              'printf "%%s\\n" "$v" > %s; done; done' %
              (" ".join(v.rstrip(b"\n").decode() for v in VALUES), f))
    try:
        r = run(["sh", "-c", script], timeout=240)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r.returncode == 0, r.stderr
    # `cat` itself, in a tight loop, while the value keeps changing.
    catter = subprocess.Popen(
        ["sh", "-c", 'for i in $(seq 400); do cat %s; echo "|"; done' % f],
        stdout=subprocess.PIPE)
    for i in range(100):
        write(f, VALUES[i % len(VALUES)])
    out, _ = catter.communicate(timeout=120)
    cats = out.split(b"|\n")[:-1]
    assert len(cats) == 400
    bad_cat = sum(1 for c in cats if c not in VALUES)
    assert reads[0] > 100, "the readers hardly ran"
    assert bad == {}, "partial values read: %r of %d" % (bad, reads[0])
    assert bad_cat == 0, "%d of 400 cat outputs were not a whole value" % bad_cat
    assert read(f) == VALUES[(100 - 1) % len(VALUES)]
    # Quiet again: reads go back to the page cache, with the last value.
    settle()
    before = fuse_counters(m)
    for _ in range(20):
        assert read(f) == VALUES[(100 - 1) % len(VALUES)]
    # (the first open fills the kernel's pages: one read reaches keyfs)
    assert fuse_counters(m)["reads"] - before["reads"] <= 1


def test_a_commit_is_seen_by_the_next_open_and_by_stat(keyfs):
    m, k = _key(keyfs)
    f = os.path.join(k, "v")
    for i in range(30):
        v = VALUES[i % len(VALUES)]
        write(f, v)
        assert read(f) == v
        assert os.stat(f).st_size == len(v)
        # A second read reuses the kernel's pages: still this value.
        assert read(f) == v
    # `: > f` empties it; the next reader sees the empty value at once.
    # The shell's last close (a release, which the kernel sends without
    # waiting) commits it.
    run(["sh", "-c", ": > %s" % f])
    deadline = time.time() + 5
    while read(f) != b"" and time.time() < deadline:
        time.sleep(0.01)
    assert read(f) == b""
    assert os.stat(f).st_size == 0


def test_a_reader_open_across_a_commit_keeps_a_whole_value(keyfs):
    m, k = _key(keyfs)
    f = os.path.join(k, "v")
    write(f, VALUES[2])
    with open(f, "rb") as held:
        assert held.read() == VALUES[2]
        write(f, VALUES[0])
        assert read(f) == VALUES[0]
        held.seek(0)
        again = held.read()
        assert again in (VALUES[2], VALUES[0])
    assert read(f) == VALUES[0]


def test_mmap_and_partial_readers_get_exactly_the_value(keyfs):
    m, k = _key(keyfs)
    f = os.path.join(k, "v")
    write(f, VALUES[1])
    settle()
    with open(f, "rb") as fh:
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert mm[:] == VALUES[1]
    assert run(["head", "-c", "7", f]).stdout == VALUES[1][:7].decode()
    dd = subprocess.run(["dd", "if=" + f, "bs=64", "status=none"],
                        stdout=subprocess.PIPE, timeout=30)
    assert dd.stdout == VALUES[1]


def test_the_page_cache_serves_warm_reads(keyfs):
    """A warm read's open reaches keyfs, but its reads do not: the
    kernel's pages serve them (counted by keyfs's own statistics)."""
    m, k = _key(keyfs)
    f = os.path.join(k, "v")
    write(f, VALUES[2])
    settle()
    read(f)

    before = fuse_counters(m)
    for _ in range(50):
        assert read(f) == VALUES[2]
    after = fuse_counters(m)
    assert after["opens"] - before["opens"] == 50
    assert after["reads"] - before["reads"] == 0


def test_direct_io_and_audit_mounts_bypass_the_page_cache(keyfs, tmp_path):
    for opts in ({"direct_io": True},
                 {"audit": str(tmp_path / "audit.log")}):
        m = keyfs(name=list(opts)[0], **opts)
        os.makedirs(m.path("local", "r", "k"), exist_ok=True)
        f = m.path("local", "r", "k", "v")
        write(f, VALUES[0])
        read(f)
        before = fuse_counters(m)
        for _ in range(5):
            assert read(f) == VALUES[0]
        # Every read() reaches keyfs (one for the data, one for the end).
        assert fuse_counters(m)["reads"] - before["reads"] >= 10
