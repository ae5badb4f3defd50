"""docs/ must not drift from the binary: every option `keyfs --help`
lists is in keyfs(1) and every option keyfs(1) lists is in --help, with
the same defaults; the errno table matches fs/errmap.c; the page renders
without warnings; the documents name only files and functions that
exist."""
import os
import re
import shutil

import pytest

from conftest import KEYFS_BIN, ROOT, run

MAN = os.path.join(ROOT, "docs", "keyfs.1")
MDS = [os.path.join(ROOT, "docs", "architecture.md"),
       os.path.join(ROOT, "docs", "security.md"),
       os.path.join(ROOT, "docs", "gcp.md"),
       os.path.join(ROOT, "docs", "aws.md"),
       os.path.join(ROOT, "docs", "ssm.md"),
       os.path.join(ROOT, "docs", "design.md"),
       os.path.join(ROOT, "docs", "performance.md"),
       os.path.join(ROOT, "docs", "kubernetes.md"),
       os.path.join(ROOT, "README.md"),
       os.path.join(ROOT, "mount-helpers", "README.md")]


def help_text():
    r = run([KEYFS_BIN, "--help"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def deroff(s):
    """roff source to plain text, enough for matching words."""
    s = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\c", "", s)
    s = s.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"')
    s = s.replace("\\e", "\\").replace("\\ ", " ")
    out = []
    for line in s.splitlines():
        if line.startswith(".\\\"") or line.startswith("'\\\""):
            continue
        m = re.match(r"\.(B|I|BI|IB|BR|RB|IR|RI)\s+(.*)", line)
        if m:
            words = re.findall(r'"[^"]*"|\S+', m.group(2))
            line = "".join(w.strip('"') for w in words)
            if m.group(1) in ("B", "I"):
                line = " ".join(w.strip('"') for w in words)
        elif line.startswith("."):
            line = ""
        out.append(line)
    return "\n".join(out)


def man_sections():
    """{section name: roff source}."""
    secs, name = {}, None
    for line in open(MAN):
        m = re.match(r'\.SH\s+"?([^"\n]*)"?', line)
        if m:
            name = m.group(1).strip()
            secs[name] = ""
        elif name:
            secs[name] += line
    return secs


def man_option_items():
    """{tag text: paragraph text} of every .TP item in OPTIONS."""
    src = man_sections()["OPTIONS"]
    items = {}
    parts = re.split(r"^\.TP\n", src, flags=re.M)[1:]
    for part in parts:
        lines = part.splitlines()
        tag = deroff(lines[0]).strip()
        body = []
        for l in lines[1:]:
            if re.match(r"\.(SS|PP|SH)\b", l):
                break
            body.append(l)
        items[tag] = " ".join(deroff("\n".join(body)).split())
    return items


OPT_RE = re.compile(r"-o ([a-z_]+)")
FLAG_RE = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])")


def help_entries():
    """{tag: description} of every option line of --help."""
    entries, cur = {}, None
    for line in help_text().splitlines():
        m = re.match(r"    (-\S.*?)(?:\s{2,}(.*)|$)", line)
        if m and not line.startswith("     "):
            tag = m.group(1).strip()
            desc = m.group(2) or ""
            # Provider lines: "-o name=ARG help" with one space when long.
            if not m.group(2) and " " in tag:
                pm = re.match(r"(-o \S+)\s+(.*)", tag)
                if pm:
                    tag, desc = pm.group(1), pm.group(2)
            cur = tag
            entries[cur] = desc
        elif cur and re.match(r"\s{20,}\S", line):
            entries[cur] += " " + line.strip()
        else:
            cur = None
    return entries


def names_in(tag):
    return set(OPT_RE.findall(tag)), set(FLAG_RE.findall(re.sub(OPT_RE, "", tag)))


def test_help_parses():
    e = help_entries()
    opts = set()
    for tag in e:
        opts |= names_in(tag)[0]
    # A sanity floor, so an empty parse cannot pass the tests below.
    assert {"store", "providers", "timeout", "ro", "local_master_key"} <= opts


def test_every_help_option_is_in_the_man_page_and_back():
    help_opts, help_flags = set(), set()
    for tag in help_entries():
        o, f = names_in(tag)
        help_opts |= o
        help_flags |= f
    man_opts, man_flags = set(), set()
    for tag in man_option_items():
        o, f = names_in(tag)
        man_opts |= o
        man_flags |= f
    assert help_opts - man_opts == set(), "in --help, missing from keyfs(1)"
    assert man_opts - help_opts == set(), "in keyfs(1), missing from --help"
    assert help_flags - man_flags == set(), "flags missing from keyfs(1)"
    assert man_flags - help_flags == set(), "flags missing from --help"


def default_tokens(desc):
    """Words of a "(default: ...)" clause that must appear in the man
    page: the first word, and everything holding a digit, / $ or ~."""
    m = re.search(r"default:\s*([^)]*)", desc, re.I)
    if not m:
        return []
    words = [w.strip(",.;") for w in m.group(1).split()]
    keep = [words[0]] + [w for w in words[1:] if re.search(r"[0-9/$~]", w)]
    return [w for w in keep if w]


def test_defaults_match():
    man = man_option_items()
    checked = 0
    for tag, desc in help_entries().items():
        opts, flags = names_in(tag)
        toks = default_tokens(desc)
        if not toks:
            continue
        mans = [body for mtag, body in man.items()
                if names_in(mtag)[0] & opts or names_in(mtag)[1] & flags]
        assert mans, tag
        body = " ".join(mans)
        for t in toks:
            assert t in body, "%s: default %r not in keyfs(1)" % (tag, t)
            checked += 1
    assert checked >= 10


def test_fstab_words_and_version():
    text = deroff(open(MAN).read())
    for w in ("_netdev", "noauto", "nofail", "user", "x-systemd."):
        assert w in help_text()
        assert w in text, w
    r = run([KEYFS_BIN, "--version"])
    version = r.stdout.split()[1]
    th = [l for l in open(MAN) if l.startswith(".TH")][0]
    assert '"keyfs %s"' % version in th


def test_sections():
    secs = man_sections()
    for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "THE local/ TREE", "OPTIONS",
              "FILES", "ERRORS", "SECURITY", "EXAMPLES", "SEE ALSO"):
        assert s in secs, s


def test_errno_table_matches_errmap():
    src = open(os.path.join(ROOT, "fs", "errmap.c")).read()
    pairs = re.findall(r"\[(KF_E_\w+)\]\s*=\s*(E[A-Z0-9]+)", src)
    assert len(pairs) >= 15
    table = man_sections()["ERRORS"]
    rows = re.search(r"^\.TS\n.*?\n(.*?)^\.TE", table, re.S | re.M).group(1)
    man_errnos = [l.split("\t")[1].strip() for l in rows.splitlines() if "\t" in l]
    # One row per code, in the same order (KF_E_IO is "any other failure").
    assert man_errnos == [e for _, e in pairs]


def test_man_page_renders_without_warnings(tmp_path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    done = False
    if shutil.which("man"):
        r = run(["man", "--warnings", "-l", MAN], env=env)
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr
        assert "local_master_key=FILE" in r.stdout and "EXAMPLES" in r.stdout
        done = True
    if shutil.which("groff"):
        r = run(["groff", "-man", "-t", "-ww", "-Tutf8", MAN], env=env)
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr
        assert "ENOTEMPTY" in r.stdout
        done = True
    if not done:
        pytest.skip("neither man nor groff installed")


@pytest.mark.parametrize("doc", MDS, ids=lambda p: os.path.relpath(p, ROOT))
def test_markdown_names_only_what_exists(doc):
    """Source paths and kf_* / static function names in the documents
    exist in the tree, so a rename shows up here."""
    text = open(doc).read()
    paths = set(re.findall(r"\b((?:fs|cloud|tests|mount-helpers|docs)/[\w./@-]+\.(?:c|h|py|1|md|service))", text))
    for p in paths:
        if re.search(r"/[A-Z]+\.", p):
            continue    # a placeholder such as cloud/NAME.c
        assert os.path.exists(os.path.join(ROOT, p)), p
    srcs = ""
    for d in ("fs", "cloud"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            for n in names:
                if n.endswith((".c", ".h")):
                    srcs += open(os.path.join(dirpath, n)).read()
    for ident in set(re.findall(r"`([a-z_][a-z0-9_]*)\(\)`", text)):
        assert re.search(r"\b%s\b" % ident, srcs), ident


CSI_MAN = os.path.join(ROOT, "docs", "keyfs-csi-provider.1")
CSI_BIN = os.path.abspath(os.environ.get("KEYFS_CSI_BIN")
                          or os.path.join(ROOT, "build", "keyfs-csi-provider"))
CSI_FLAGS = {"--socket", "--node-identity-namespaces", "-o", "--log-level",
             "--probe", "-V", "--version", "-h", "--help"}


def csi_man_flags():
    src = open(CSI_MAN).read()
    opts = src.split(".SH OPTIONS", 1)[1].split(".SH", 1)[0]
    tags = [deroff(p.splitlines()[0]).strip()
            for p in re.split(r"^\.TP\n", opts, flags=re.M)[1:]]
    return {f for t in tags for f in FLAG_RE.findall(t)}


def test_csi_man_page_lists_the_providers_options():
    """keyfs-csi-provider(1) has every option of its contract, and, once
    the binary is built, exactly the flags its --help lists."""
    assert csi_man_flags() == CSI_FLAGS
    text = deroff(open(CSI_MAN).read())
    assert "/var/run/secrets-store-csi-providers/keyfs.sock" in text
    if not os.access(CSI_BIN, os.X_OK):
        pytest.skip("keyfs-csi-provider not built")
    r = run([CSI_BIN, "--help"])
    assert r.returncode == 0, r.stderr
    helped = set(FLAG_RE.findall(r.stdout))
    assert helped - csi_man_flags() == set(), "missing from the man page"
    assert csi_man_flags() - helped == set(), "missing from --help"
    r = run([CSI_BIN, "--version"])
    th = [l for l in open(CSI_MAN) if l.startswith(".TH")][0]
    version = re.search(r"\b\d+\.\d+\.\d+\b", r.stdout).group(0)
    assert '"keyfs %s"' % version in th


def test_csi_man_page_renders_without_warnings():
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    if not shutil.which("groff"):
        pytest.skip("groff not installed")
    r = run(["groff", "-man", "-ww", "-Tutf8", CSI_MAN], env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "node-identity-namespaces" in r.stdout
