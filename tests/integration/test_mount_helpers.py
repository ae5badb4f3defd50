"""mount-helpers/: the mount(8) helper, fstab lines, the systemd unit and
`make install`, driven for real: mount.keyfs with the argv mount(8) uses,
`mount -t keyfs`, `mount -T FSTAB`, the unit's command lines run by hand
under its limits, the unit itself started, killed and restarted by a real
systemd (a `systemd --user` manager in a mount namespace of its own, since
systemd is not PID 1 here), and `systemd-analyze verify`.  Every mount made here is unmounted, and every
keyfs started here is gone, when a test ends."""
import errno
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import (KEYFS_BIN, ROOT, SANITIZER_MARKS, is_mounted, run,
                      sanitizer_env, wait_enotconn)

HELPER = os.path.join(ROOT, "mount-helpers", "mount.keyfs")
UNIT = os.path.join(ROOT, "mount-helpers", "keyfs@.service")
FSTAB_EXAMPLE = os.path.join(ROOT, "mount-helpers", "fstab.example")
SBIN_HELPER = "/sbin/mount.keyfs"

FSTAB_WORDS = "_netdev,nofail,noauto,user,x-systemd.automount,x-systemd.idle-timeout=60"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) needs root")


def helper_env(**extra):
    env = sanitizer_env(dict(os.environ))
    env["KEYFS_BIN"] = KEYFS_BIN
    env.update(extra)
    return env


def keyfs_pids(mnt):
    """Pids of keyfs processes whose argv names mnt."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"keyfs") and mnt.encode() in argv:
            pids.append(int(d))
    return pids


def wait_gone(mnt, timeout=10):
    deadline = time.time() + timeout
    while keyfs_pids(mnt) and time.time() < deadline:
        time.sleep(0.05)
    return not keyfs_pids(mnt)


def wait_mounted(mnt, timeout=10):
    deadline = time.time() + timeout
    while not is_mounted(mnt) and time.time() < deadline:
        time.sleep(0.05)
    return is_mounted(mnt)


def fstype(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[1] == mnt:
                return parts[0], parts[2], parts[3].split(",")
    return None


def force_unmount(mnt):
    """Unmount by every means, then stop any keyfs left for mnt (only
    processes this test started: their argv holds its temporary path)."""
    for cmd in (["umount", mnt], ["umount", "-l", mnt],
                ["fusermount3", "-uz", mnt]):
        if not is_mounted(mnt):
            break
        subprocess.run(cmd, stderr=subprocess.DEVNULL, timeout=20)
    if not wait_gone(mnt):
        for pid in keyfs_pids(mnt):
            os.kill(pid, signal.SIGKILL)
        wait_gone(mnt)


@pytest.fixture
def mnts():
    """Mountpoints to clean up whatever happens."""
    made = []
    yield made
    for m in made:
        force_unmount(m)
    for m in made:
        assert not is_mounted(m), "left mounted: " + m
        assert not keyfs_pids(m), "keyfs left running for " + m


@pytest.fixture
def sbin_helper():
    """/sbin/mount.keyfs for the duration of the test: the installed one
    if there is one (KEYFS_BIN still picks the binary), else a symlink to
    the repo's helper, removed afterwards."""
    made = False
    if not os.path.lexists(SBIN_HELPER):
        os.symlink(HELPER, SBIN_HELPER)
        made = True
    yield SBIN_HELPER
    if made:
        os.unlink(SBIN_HELPER)


def roundtrip(mnt, value=b"helper value"):
    os.makedirs(os.path.join(mnt, "local", "r", "k"), exist_ok=True)
    p = os.path.join(mnt, "local", "r", "k", "v")
    with open(p, "wb") as f:
        f.write(value)
    with open(p, "rb") as f:
        assert f.read() == value


def reap_in_background(proc):
    """Reap proc as soon as it exits, as systemd does with its main
    process (a zombie would still answer kill -0 $MAINPID)."""
    t = threading.Thread(target=proc.wait, daemon=True)
    t.start()
    return t


def store_dir(tmp_path, name="store"):
    s = tmp_path / name
    s.mkdir(mode=0o700)
    return str(s)


# --- mount.keyfs called directly ------------------------------------------

def test_helper_is_posix_sh():
    with open(HELPER) as f:
        assert f.readline() == "#!/bin/sh\n"
    assert os.access(HELPER, os.X_OK)
    for sh in ("sh", "dash", "bash"):
        if shutil.which(sh):
            r = run([sh, "-n", HELPER])
            assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):
        r = run(["shellcheck", "-s", "sh", HELPER])
        assert r.returncode == 0, r.stdout


def test_helper_direct_mount_ignores_fstab_words(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    store = str(tmp_path / "st ore 'q'")     # quoting: a space and quotes
    opts = "rw,%s,store=%s" % (FSTAB_WORDS, store)
    # The argv mount(8) gives a helper (seen with a probe helper):
    # SOURCE MOUNTPOINT [-sfnv] -o OPTIONS [-t TYPE].
    r = run([HELPER, "keyfs", mnt, "-s", "-n", "-o", opts, "-t", "keyfs"],
            env=helper_env())
    assert r.returncode == 0, r.stderr
    assert wait_mounted(mnt)
    src, typ, _ = fstype(mnt)
    assert (src, typ) == ("keyfs", "fuse.keyfs")
    roundtrip(mnt)
    assert os.path.isdir(os.path.join(store, "local", "r", "k"))
    r = run(["umount", mnt]) if os.geteuid() == 0 else \
        run(["fusermount3", "-u", mnt])
    assert r.returncode == 0, r.stderr
    assert not is_mounted(mnt)
    assert wait_gone(mnt)


def test_helper_verbose_and_combined_flags(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    store = store_dir(tmp_path)
    r = run([HELPER, "keyfs", mnt, "-nv", "-o", "_netdev",
             "-ostore=" + store], env=helper_env())
    assert r.returncode == 0, r.stderr
    # Repeated -o options are joined with commas.
    assert ("running: '%s' 'keyfs' '%s' -o '_netdev,store=%s'"
            % (KEYFS_BIN, mnt, store)) in r.stderr
    assert wait_mounted(mnt)
    roundtrip(mnt)


def test_helper_fake_mounts_nothing(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    store = str(tmp_path / "never-created")
    r = run([HELPER, "keyfs", mnt, "-f", "-o", "store=" + store],
            env=helper_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    r = run([HELPER, "keyfs", mnt, "-fv", "-o", "store=" + store],
            env=helper_env())
    assert r.returncode == 0, r.stderr
    assert "would run: '%s' 'keyfs' '%s' -o 'store=%s'" % (
        KEYFS_BIN, mnt, store) in r.stderr
    time.sleep(0.3)
    assert not is_mounted(mnt)
    assert not os.path.exists(store)
    assert not keyfs_pids(mnt)


@pytest.mark.parametrize("argv,msg", [
    ([], "usage"),
    (["keyfs"], "usage"),
    (["keyfs", "MNT", "extra"], "unexpected argument"),
    (["keyfs", "MNT", "-x"], "unknown flag -x"),
    (["keyfs", "MNT", "-o"], "usage"),
    (["keyfs", "MNT", "-N", "/proc/1/ns/mnt"], "not supported"),
    (["keyfs", "MNT/nonexistent"], "is not a directory"),
    (["--", "-keyfs", "MNT"], "must not start with"),
], ids=["none", "no-mountpoint", "extra", "bad-flag", "o-without-arg",
        "namespace", "no-dir", "dash-source"])
def test_helper_bad_invocation(tmp_path, mnts, argv, msg):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    argv = [a.replace("MNT", mnt) for a in argv]
    r = run([HELPER] + argv, env=helper_env())
    assert r.returncode == 1
    assert msg in r.stderr
    assert not is_mounted(mnt)


def test_helper_binary_missing(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    r = run([HELPER, "keyfs", mnt], env=helper_env(
        KEYFS_BIN=str(tmp_path / "no-keyfs")))
    assert r.returncode == 1
    assert "cannot run" in r.stderr and "no-keyfs" in r.stderr
    # Without KEYFS_BIN the repo's copy still holds the placeholder.
    env = helper_env()
    del env["KEYFS_BIN"]
    r = run([HELPER, "keyfs", mnt], env=env)
    assert r.returncode == 1 and "@BINDIR@/keyfs" in r.stderr


def test_helper_passes_keyfs_failure(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    store = store_dir(tmp_path)
    r = run([HELPER, "keyfs", mnt, "-o", "store=%s,timeout=0" % store],
            env=helper_env())
    assert r.returncode != 0
    assert "timeout=0" in r.stderr
    assert not is_mounted(mnt)


# --- mount(8) and fstab ---------------------------------------------------

@needs_root
def test_mount_t_keyfs(tmp_path, mnts, sbin_helper):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    store = store_dir(tmp_path)
    r = run(["mount", "-t", "keyfs", "-o", "_netdev,nofail,store=" + store,
             "keyfs", mnt], env=helper_env())
    assert r.returncode == 0, r.stderr
    assert wait_mounted(mnt)
    src, typ, _ = fstype(mnt)
    assert (src, typ) == ("keyfs", "fuse.keyfs")
    roundtrip(mnt, b"via mount -t")
    r = run(["umount", mnt])
    assert r.returncode == 0, r.stderr
    assert not is_mounted(mnt)
    assert wait_gone(mnt), "keyfs still running after umount"


@needs_root
def test_fstab_lines(tmp_path, mnts, sbin_helper):
    store = store_dir(tmp_path)
    rw = str(tmp_path / "rw")
    ro = str(tmp_path / "ro")
    os.mkdir(rw)
    os.mkdir(ro)
    mnts.extend([rw, ro])
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# test fstab\n"
        "keyfs %s keyfs rw,_netdev,nofail,providers=local,store=%s 0 0\n"
        "keyfs %s keyfs ro,_netdev,nofail,x-systemd.automount,"
        "providers=local,store=%s 0 0\n" % (rw, store, ro, store))
    r = run(["mount", "-T", str(fstab), rw], env=helper_env())
    assert r.returncode == 0, r.stderr
    assert wait_mounted(rw)
    roundtrip(rw, b"written through fstab")
    r = run(["mount", "-T", str(fstab), ro], env=helper_env())
    assert r.returncode == 0, r.stderr
    assert wait_mounted(ro)
    assert "ro" in fstype(ro)[2]
    p = os.path.join(ro, "local", "r", "k", "v")
    with open(p, "rb") as f:
        assert f.read() == b"written through fstab"
    with pytest.raises(OSError) as e:
        with open(p, "wb") as f:
            f.write(b"x")
    assert e.value.errno == errno.EROFS
    for m in (ro, rw):
        r = run(["umount", m])
        assert r.returncode == 0, r.stderr
        assert not is_mounted(m)
        assert wait_gone(m)


def test_fstab_example_lines_parse(tmp_path):
    """Every line of fstab.example is a keyfs line whose options keyfs
    accepts (checked with mount.keyfs -f, which runs nothing)."""
    lines = [l.split() for l in open(FSTAB_EXAMPLE)
             if l.strip() and not l.startswith("#")]
    assert len(lines) == 2
    kinds = set()
    for fields in lines:
        assert len(fields) == 6 and fields[0] == "keyfs" and fields[2] == "keyfs"
        opts = fields[3].split(",")
        kinds.add("ro" if "ro" in opts else "rw")
        assert "_netdev" in opts and "nofail" in opts
        assert "providers=local" in opts
    assert kinds == {"ro", "rw"}
    ro_opts = [f[3] for f in lines if "ro" in f[3].split(",")][0]
    assert "x-systemd.automount" in ro_opts.split(",")


# --- the systemd unit -------------------------------------------------------

def unit_directives():
    """[(section, key, value)] of keyfs@.service, comments dropped."""
    out, section = [], None
    for line in open(UNIT):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.append((section, k.strip(), v.strip()))
    return out


def unit_get(key, section="Service"):
    vals = [v for s, k, v in unit_directives() if s == section and k == key]
    return vals


def systemd_escape_path(path):
    if shutil.which("systemd-escape"):
        r = run(["systemd-escape", "--path", path])
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    out = []
    for i, ch in enumerate(path.strip("/")):
        if ch == "/":
            out.append("-")
        elif ch.isalnum() and ch.isascii() or ch in ":_" or (ch == "." and i):
            out.append(ch)
        else:
            out.append("\\x%02x" % ord(ch))
    return "".join(out)


def expand(cmdline, mnt, instance, env):
    """A unit command line as systemd would run it: @BINDIR@ as make
    install sets it, %f/%i, ${VAR} as one word, $$ as $."""
    bindir = os.path.dirname(KEYFS_BIN)
    line = cmdline.replace("@BINDIR@", bindir)
    prefix = ""
    while line[:1] in "-@+!:":
        prefix += line[0]
        line = line[1:]
    words = []
    for w in shlex.split(line):
        w = w.replace("%f", mnt).replace("%i", instance)
        m = re.fullmatch(r"\$\{(\w+)\}", w)
        if m:
            words.append(env.get(m.group(1), ""))
            continue
        assert not re.search(r"(?<!\$)\$\{?\w", w.replace("$$", "")), \
            "unexpected variable in " + w
        words.append(w.replace("$$", "$"))
    return prefix, words


def unit_env(extra_file):
    """Environment= of the unit, overridden by an environment file."""
    env = {}
    for v in unit_get("Environment"):
        k, _, val = v.partition("=")
        env[k] = val
    for line in open(extra_file):
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, val = line.partition("=")
            env[k] = val
    return env


def hardening_prefix():
    """setpriv/prlimit wrapper applying the unit's capability bounding
    set, NoNewPrivileges, LimitCORE, LimitMEMLOCK and UMask."""
    caps = unit_get("CapabilityBoundingSet")
    assert caps == ["CAP_SYS_ADMIN"]
    assert unit_get("NoNewPrivileges") == ["yes"]
    assert unit_get("LimitCORE") == ["0"]
    mem = unit_get("LimitMEMLOCK")
    assert mem == ["64M"]
    bounding = "-all," + ",".join(
        "+" + c[4:].lower() for c in caps[0].split())
    # systemd (PID 1) can raise the hard limit; here, without
    # CAP_SYS_RESOURCE, the most is the current hard limit.
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    memlock = 64 << 20
    if hard != resource.RLIM_INFINITY and hard < memlock:
        memlock = hard
    return ["prlimit", "--core=0", "--memlock=%d" % memlock, "--",
            "setpriv", "--no-new-privs", "--bounding-set", bounding,
            "--inh-caps", "-all", "--"]


@pytest.fixture
def instance(tmp_path, mnts):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    mnts.append(mnt)
    inst = systemd_escape_path(mnt)
    if shutil.which("systemd-escape"):
        r = run(["systemd-escape", "--unescape", "--path", inst])
        assert r.stdout.strip() == mnt    # what %f gives keyfs
    return mnt, inst


def test_unit_directives():
    d = {(s, k): v for s, k, v in unit_directives()}
    assert d[("Unit", "After")] == "network-online.target"
    assert d[("Unit", "Wants")] == "network-online.target"
    assert d[("Service", "Type")] == "simple"
    assert d[("Service", "Restart")] == "on-failure"
    assert d[("Service", "RestartSec")]
    assert d[("Service", "EnvironmentFile")] == "-/etc/keyfs/%i.env"
    assert d[("Service", "ExecStopPost")] == "-/bin/fusermount3 -uz %f"
    exe = shlex.split(d[("Service", "ExecStart")])
    assert exe[:4] == ["@BINDIR@/keyfs", "-f", "keyfs", "%f"]
    assert exe[4] == "-o"
    for k, v in [("LimitCORE", "0"), ("LimitMEMLOCK", "64M"),
                 ("UMask", "0077"), ("MemoryDenyWriteExecute", "yes"),
                 ("LockPersonality", "yes"), ("RestrictRealtime", "yes"),
                 ("SystemCallArchitectures", "native"),
                 ("DeviceAllow", "/dev/fuse rw"),
                 ("RestrictAddressFamilies",
                  "AF_UNIX AF_INET AF_INET6 AF_NETLINK")]:
        assert d[("Service", k)] == v, k
    assert d[("Install", "WantedBy")] == "multi-user.target"


def test_unit_makes_no_mount_namespace():
    """Each of these puts the service in a mount namespace whose mounts do
    not reach the host (systemd.exec(5)): the FUSE mount would be
    invisible outside the service."""
    namespacing = {"ProtectSystem", "ProtectHome", "PrivateTmp",
                   "PrivateDevices", "PrivateMounts", "ReadWritePaths",
                   "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths",
                   "NoExecPaths", "TemporaryFileSystem", "BindPaths",
                   "BindReadOnlyPaths", "ProtectKernelTunables",
                   "ProtectKernelModules", "ProtectKernelLogs",
                   "ProtectControlGroups", "ProtectProc", "ProcSubset",
                   "MountAPIVFS", "RootDirectory", "RootImage",
                   "DynamicUser", "PrivateUsers", "MountFlags"}
    used = {k for _, k, _ in unit_directives()}
    assert not used & namespacing


def test_unit_exec_lines_mount_restart_and_stop(tmp_path, instance):
    """ExecStart as systemd would run it (with the unit's capability
    bounding set, no_new_privs and limits) mounts; ExecStartPost returns
    once the mount is live; after a SIGKILL, ExecStopPost clears the dead
    mount so the restart can mount again; SIGTERM (systemctl stop)
    unmounts cleanly."""
    if os.geteuid() != 0:
        pytest.skip("the unit runs as root")
    for tool in ("prlimit", "setpriv", "mountpoint"):
        if not shutil.which(tool):
            pytest.skip(tool + " missing")
    mnt, inst = instance
    store = store_dir(tmp_path)
    envfile = tmp_path / (inst + ".env")
    envfile.write_text("# as /etc/keyfs/%s.env\nKEYFS_OPTIONS=store=%s\n"
                       % (inst, store))
    env = unit_env(str(envfile))
    assert env["KEYFS_OPTIONS"] == "store=" + store
    _, start = expand(unit_get("ExecStart")[0], mnt, inst, env)
    _, post = expand(unit_get("ExecStartPost")[0], mnt, inst, env)
    stop_prefix, stoppost = expand(unit_get("ExecStopPost")[0], mnt, inst, env)
    assert stop_prefix == "-"
    assert start == [KEYFS_BIN, "-f", "keyfs", mnt, "-o", "store=" + store]
    log = open(tmp_path / "unit.log", "ab")

    def start_main():
        pe = sanitizer_env(dict(os.environ))
        return subprocess.Popen(hardening_prefix() + start, stdout=log,
                                stderr=log, stdin=subprocess.DEVNULL,
                                env=pe, start_new_session=True,
                                preexec_fn=lambda: os.umask(0o077))

    main = start_main()
    reap_in_background(main)
    try:
        r = run(post, env=dict(os.environ, MAINPID=str(main.pid)), timeout=60)
        assert r.returncode == 0, r.stderr
        assert is_mounted(mnt)
        roundtrip(mnt, b"unit value")
        # Crash: the mount is left dead until ExecStopPost clears it.
        os.kill(main.pid, signal.SIGKILL)
        main.wait(timeout=10)
        assert is_mounted(mnt)
        assert wait_enotconn(mnt) == errno.ENOTCONN
        r = run(stoppost)
        assert r.returncode == 0, r.stderr
        assert not is_mounted(mnt)
        # Restart=on-failure: the same lines again.
        main = start_main()
        reap_in_background(main)
        r = run(post, env=dict(os.environ, MAINPID=str(main.pid)), timeout=60)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(mnt, "local", "r", "k", "v"), "rb") as f:
            assert f.read() == b"unit value"
        # systemctl stop: SIGTERM, keyfs unmounts and exits (its exit
        # status: test_sigterm_is_a_clean_exit); then ExecStopPost finds
        # nothing to do (its failure is ignored: "-").
        os.kill(main.pid, signal.SIGTERM)
        main.wait(timeout=20)
        assert not is_mounted(mnt)
        r = run(stoppost)
        assert r.returncode != 0
    finally:
        if main.poll() is None:
            main.kill()
            main.wait(timeout=10)
        log.close()
    text = open(tmp_path / "unit.log").read()
    assert "could not lock secret memory" not in text   # LimitMEMLOCK is enough
    assert "unit value" not in text


def test_sigterm_is_a_clean_exit(keyfs):
    """systemd stops the unit with SIGTERM; by default only exit status 0
    (or death by SIGTERM) counts as a clean stop."""
    m = keyfs("term")
    os.kill(m.proc.pid, signal.SIGTERM)
    rc = m.proc.wait(timeout=20)
    assert not is_mounted(m.mnt)
    assert rc == 0


def test_unit_start_post_fails_fast_when_keyfs_exits(tmp_path, instance):
    mnt, inst = instance
    envfile = tmp_path / "bad.env"
    envfile.write_text("KEYFS_OPTIONS=store=%s,timeout=0\n"
                       % store_dir(tmp_path))
    env = unit_env(str(envfile))
    _, start = expand(unit_get("ExecStart")[0], mnt, inst, env)
    _, post = expand(unit_get("ExecStartPost")[0], mnt, inst, env)
    main = subprocess.Popen(start, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    reap_in_background(main)
    try:
        t0 = time.time()
        r = run(post, env=dict(os.environ, MAINPID=str(main.pid)), timeout=60)
        assert r.returncode == 1
        assert time.time() - t0 < 10
        assert main.wait(timeout=10) == 1
        assert b"timeout=0" in main.stderr.read()
    finally:
        if main.poll() is None:
            main.kill()
        main.wait(timeout=10)
        main.stderr.close()
    assert not is_mounted(mnt)


def test_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    d = tmp_path / "units"
    d.mkdir()
    text = open(UNIT).read().replace("@BINDIR@", os.path.dirname(KEYFS_BIN))
    for name in ("keyfs@.service", "keyfs@mnt-keys.service"):
        (d / name).write_text(text)
    # Documentation=man:keyfs(1) is checked against our own page.
    man1 = tmp_path / "man" / "man1"
    man1.mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "docs", "keyfs.1"), man1 / "keyfs.1")
    env = dict(os.environ, MANPATH=str(tmp_path / "man"),
               SYSTEMD_LOG_LEVEL="notice")
    r = run(["systemd-analyze", "verify", str(d / "keyfs@mnt-keys.service")],
            env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keyfs@" not in r.stderr, r.stderr   # no warning about our unit
    # It does fail on a broken unit, so the check above means something.
    (d / "broken@x.service").write_text(text.replace(
        "ExecStart=" + os.path.dirname(KEYFS_BIN), "ExecStart=/nonexistent"))
    r = run(["systemd-analyze", "verify", "--man=no",
             str(d / "broken@x.service")], env=env, timeout=120)
    assert r.returncode != 0


# --- make install -----------------------------------------------------------

def test_make_install(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make missing")
    dest = tmp_path / "dest"
    r = run(["make", "-C", ROOT, "--no-print-directory", "install",
             "DESTDIR=" + str(dest), "PREFIX=/usr"], timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    keyfs = dest / "usr" / "bin" / "keyfs"
    helper = dest / "sbin" / "mount.keyfs"
    man = dest / "usr" / "share" / "man" / "man1" / "keyfs.1"
    unit = dest / "lib" / "systemd" / "system" / "keyfs@.service"
    assert os.access(keyfs, os.X_OK)
    assert run([str(keyfs), "--version"]).stdout.startswith("keyfs ")
    assert os.stat(helper).st_mode & 0o777 == 0o755
    htext = helper.read_text()
    assert "@BINDIR@" not in htext
    assert "keyfs=${KEYFS_BIN:-/usr/bin/keyfs}" in htext
    assert man.read_bytes() == open(os.path.join(ROOT, "docs", "keyfs.1"), "rb").read()
    csi = dest / "usr" / "bin" / "keyfs-csi-provider"
    csi_man = man.parent / "keyfs-csi-provider.1"
    assert os.access(csi, os.X_OK)
    assert csi_man.read_bytes() == open(
        os.path.join(ROOT, "docs", "keyfs-csi-provider.1"), "rb").read()
    utext = unit.read_text()
    assert "@BINDIR@" not in utext
    assert "ExecStart=/usr/bin/keyfs -f keyfs %f -o ${KEYFS_OPTIONS}" in utext
    # The installed helper runs /usr/bin/keyfs by default.
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ)
    env.pop("KEYFS_BIN", None)
    r = run(["sh", str(helper), "keyfs", str(mnt), "-fv"], env=env)
    assert "/usr/bin/keyfs" in r.stderr
    assert not is_mounted(str(mnt))


# --- the unit under a real systemd ----------------------------------------

SYSTEMD = "/lib/systemd/systemd"


class UserManager:
    """A real systemd (252, Debian's) running the shipped unit: `systemd
    --user` as root, in a private mount namespace of its own.  systemd only
    runs where /run/systemd/system exists; a tmpfs over /run/systemd (or
    over /run, where that is missing) inside that namespace provides it
    without telling the host's tools that systemd booted this machine.  The keyfs mounts it starts live in that
    namespace too, so tests look at them with nsenter; when the namespace's
    last process ends, they are gone."""

    def __init__(self, base):
        self.base = base
        self.home = os.path.join(base, "home")
        self.runtime = os.path.join(base, "run")
        self.units = os.path.join(self.home, ".config", "systemd", "user")
        os.makedirs(self.units)
        os.makedirs(self.runtime, mode=0o700)
        # An empty default target: nothing but what a test starts.
        with open(os.path.join(self.units, "keyfs-test.target"), "w") as f:
            f.write("[Unit]\nDescription=keyfs test default target\n")
        self.log = open(os.path.join(base, "systemd.log"), "ab")
        self.proc = None

    def env(self):
        return dict(os.environ, HOME=self.home, XDG_RUNTIME_DIR=self.runtime)

    def start(self):
        # (Over /run itself where /run/systemd does not exist.)
        over = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
        setup = ("mount -t tmpfs -o mode=0755 tmpfs %s && "
                 "mkdir -p /run/systemd/system && exec %s --user "
                 "--unit=keyfs-test.target --log-target=console"
                 % (over, SYSTEMD))
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             setup], env=self.env(), stdout=self.log, stderr=self.log,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 30
        sock = os.path.join(self.runtime, "systemd", "private")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("systemd exited: " + self.text())
            if os.path.exists(sock) and \
                    self.ctl("is-system-running").stdout.strip() in \
                    ("running", "degraded"):
                return
            time.sleep(0.1)
        raise AssertionError("systemd --user did not come up: " + self.text())

    def text(self):
        self.log.flush()
        return open(self.log.name, errors="replace").read()[-3000:]

    def ns(self, argv, timeout=60):
        """Run argv in the manager's mount namespace."""
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m",
                               "--"] + argv, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def ctl(self, *args, timeout=120):
        return self.ns(["systemctl", "--user", "--no-pager"] + list(args),
                       timeout=timeout)

    def show(self, unit, prop):
        return self.ctl("show", "-p", prop, "--value", unit).stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.ctl("exit", timeout=30)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


def test_unit_under_systemd_restarts_killed_keyfs(tmp_path):
    """The shipped unit, started by a real systemd: `systemctl start`
    returns once the mount is live; after kill -9 of keyfs, systemd's
    Restart=on-failure (RestartSec=5s) runs ExecStopPost, which clears the
    dead mount, and starts keyfs again, and the value written before the
    crash reads back; `systemctl stop` is a clean stop that unmounts."""
    if os.geteuid() != 0:
        pytest.skip("the unit runs as root")
    for tool in ("unshare", "nsenter", "mountpoint"):
        if not shutil.which(tool):
            pytest.skip(tool + " missing")
    if not os.path.exists(SYSTEMD):
        pytest.skip("systemd is not installed")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    inst = systemd_escape_path(mnt)
    unit = "keyfs@%s.service" % inst
    store = store_dir(tmp_path)
    log = str(tmp_path / "unit.log")
    m = UserManager(str(tmp_path / "sd"))
    text = open(UNIT).read().replace("@BINDIR@", os.path.dirname(KEYFS_BIN))
    with open(os.path.join(m.units, "keyfs@.service"), "w") as f:
        f.write(text)
    # What an operator would put in /etc/keyfs/INST.env, as a drop-in
    # (systemctl edit), plus the unit's output in a file (no journald).
    dropin = os.path.join(m.units, "keyfs@.service.d")
    os.mkdir(dropin)
    # The sanitizer builds (make SAN=...) get their usual options too.
    env = sanitizer_env({})
    with open(os.path.join(dropin, "test.conf"), "w") as f:
        f.write("[Service]\nEnvironment=KEYFS_OPTIONS=store=%s,"
                "providers=local\n" % store)
        for k in sorted(env):
            f.write("Environment=%s=%s\n" % (k, env[k]))
        f.write("StandardOutput=append:%s\nStandardError=append:%s\n"
                % (log, log))
    value = b"value written before the crash"
    m.start()
    try:
        r = m.ctl("start", unit)
        assert r.returncode == 0, r.stderr + m.text()
        assert m.ns(["mountpoint", "-q", mnt]).returncode == 0
        v = os.path.join(mnt, "local", "r", "k", "v")
        r = m.ns(["sh", "-c", 'mkdir -p "$(dirname "$1")" && '
                  'printf %s "$2" > "$1" && cat "$1"', "sh", v,
                  value.decode()])
        assert r.returncode == 0 and r.stdout == value.decode(), r.stderr
        pid1 = int(m.show(unit, "MainPID"))
        assert pid1 > 0 and keyfs_pids(mnt) == [pid1]
        os.kill(pid1, signal.SIGKILL)
        # systemd notices, clears the mount (ExecStopPost), waits
        # RestartSec=5s and starts keyfs again.
        deadline = time.time() + 60
        while time.time() < deadline:
            if m.show(unit, "NRestarts") == "1" and \
                    m.show(unit, "ActiveState") == "active" and \
                    m.show(unit, "SubState") == "running":
                break
            time.sleep(0.2)
        assert m.show(unit, "NRestarts") == "1", m.text()
        assert m.show(unit, "ActiveState") == "active", m.text()
        pid2 = int(m.show(unit, "MainPID"))
        assert pid2 not in (0, pid1)
        # The restarted keyfs runs with the unit's hardening applied.
        status = dict(line.split(":", 1) for line in
                      open("/proc/%d/status" % pid2).read().splitlines())
        assert int(status["CapBnd"], 16) == 1 << 21     # CAP_SYS_ADMIN only
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"        # filter mode
        limits = open("/proc/%d/limits" % pid2).read()
        assert re.search(r"Max core file size\s+0\s+0", limits)
        # LimitMEMLOCK=64M; a user manager cannot go above its own hard
        # limit (PID 1 can), so here it gets min(64 MiB, that limit).
        want = 64 << 20
        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        if hard != resource.RLIM_INFINITY and hard < want:
            want = hard
        assert re.search(r"Max locked memory\s+%d\s+%d" % (want, want),
                         limits), limits
        r = m.ns(["cat", v])
        assert r.returncode == 0 and r.stdout == value.decode(), r.stderr
        # systemctl stop: SIGTERM, keyfs unmounts and exits 0.
        r = m.ctl("stop", unit)
        assert r.returncode == 0, r.stderr
        assert m.show(unit, "ActiveState") == "inactive"
        assert m.show(unit, "Result") == "success"
        assert m.ns(["mountpoint", "-q", mnt]).returncode != 0
        assert wait_gone(mnt)
    finally:
        m.ctl("stop", unit, timeout=60)
        m.stop()
        for pid in keyfs_pids(mnt):
            os.kill(pid, signal.SIGKILL)
        wait_gone(mnt)
    out = open(log, "rb").read()
    assert b"mounted at " + mnt.encode() in out
    assert b"could not lock secret memory" not in out
    for mark in SANITIZER_MARKS:
        assert mark.encode() not in out, mark
    assert value not in out
    assert not is_mounted(mnt)
