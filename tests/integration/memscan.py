"""Scan a running process's memory for secret bytes.

`scan(pid, needles)` walks /proc/PID/smaps (every mapping and its VmFlags:
"lo" = locked with mlock) and reads each mapping with pages in memory
through /proc/PID/mem (root may read it although keyfs makes itself
undumpable).  It returns one `Hit` per occurrence: which needle, which
mapping (its path, "[heap]", "[stack]" or "anon") and whether the mapping
is locked.  A hit never carries the bytes found, so a report can be
printed safely.
"""
import base64
import collections
import re

Hit = collections.namedtuple("Hit", "needle kind locked start end")

_HEAD = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
_CHUNK = 4 << 20


def mappings(pid):
    """[(start, end, perms, name, vmflags set, rss_kb, swap_kb)]."""
    out = []
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = _HEAD.match(line)
            if m:
                if cur:
                    out.append(cur)
                cur = [int(m.group(1), 16), int(m.group(2), 16),
                       m.group(3), m.group(4).strip() or "anon", set(), 0, 0]
                continue
            if cur is None:
                continue
            if line.startswith("VmFlags:"):
                cur[4] = set(line.split()[1:])
            elif line.startswith("Rss:"):
                cur[5] = int(line.split()[1])
            elif line.startswith("Swap:"):
                cur[6] = int(line.split()[1])
    if cur:
        out.append(cur)
    return out


def kind_of(name):
    """A short, stable name for a mapping: the library's file name, or
    [heap], [stack], anon."""
    if name.startswith("/"):
        return name.rsplit("/", 1)[-1]
    return name


def _find_all(data, needle):
    i = data.find(needle)
    while i >= 0:
        yield i
        i = data.find(needle, i + 1)


def scan(pid, needles):
    """needles: {name: [bytes, ...]} (several encodings of one secret).
    Returns [Hit].  Mappings with no page in memory or swap are skipped
    (they hold nothing); so are [vvar] and [vsyscall]."""
    hits = []
    longest = max(len(n) for forms in needles.values() for n in forms)
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, name, flags, rss, swap in mappings(pid):
            if name in ("[vvar]", "[vsyscall]") or (rss == 0 and swap == 0):
                continue
            locked = "lo" in flags
            pos = start
            while pos < end:
                n = min(_CHUNK + longest, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError:
                    data = b""
                for nname, forms in needles.items():
                    for form in forms:
                        for i in _find_all(data, form):
                            # an occurrence in the overlap is counted by
                            # the next chunk
                            if i < _CHUNK or pos + n >= end:
                                hits.append(Hit(nname, kind_of(name), locked,
                                                start, end))
                pos += _CHUNK
    return hits


def b64_forms(raw, length=32):
    """Substrings of standard base64 that any encoding of raw contains,
    whatever its alignment in the encoded bytes (three shifts)."""
    forms = []
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + raw)
        first = (shift * 4 + 2) // 3  # first char free of the prefix
        forms.append(enc[first:first + length])
    return forms


def summary(hits):
    """Counts per (needle, mapping kind, locked): safe to print."""
    c = collections.Counter((h.needle, h.kind, "locked" if h.locked
                             else "UNLOCKED") for h in hits)
    return sorted(c.items())


def status(pid, *fields):
    """{field: "N kB"} from /proc/PID/status (VmLck, VmRSS, ...)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in fields:
                out[k] = v.strip()
    return out
