"""mount-helpers/kubernetes/: the manifests parse, have the kinds
docs/kubernetes.md promises, and keep the rules it states: the provider's
socket where the driver and the provider's default expect it, no
privileged container, IPC_LOCK for locked memory, every other capability
dropped; the example class's objects are the JSON list keyfs-csi-provider
reads, with valid paths, file names and modes."""
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT

yaml = pytest.importorskip("yaml")

K8S = os.path.join(ROOT, "mount-helpers", "kubernetes")
SOCKET = "/var/run/secrets-store-csi-providers/keyfs.sock"
PROVIDERS_DIR = os.path.dirname(SOCKET)
CSI_BIN = os.environ.get("KEYFS_CSI_BIN") or os.path.join(
    ROOT, "build", "keyfs-csi-provider")


def docs(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def by_kind(ds, kind):
    found = [d for d in ds if d["kind"] == kind]
    assert found, "no %s" % kind
    return found


def test_every_manifest_parses_with_known_kinds():
    names = sorted(n for n in os.listdir(K8S) if n.endswith(".yaml"))
    assert names == ["csidriver-tokenrequests.yaml", "keyfs-csi-provider.yaml",
                     "secretproviderclass-example.yaml"]
    kinds = {"ServiceAccount", "DaemonSet", "Namespace", "Pod", "CSIDriver",
             "SecretProviderClass"}
    for n in names:
        for d in docs(n):
            assert d["kind"] in kinds, (n, d["kind"])
            assert d["apiVersion"] and d["metadata"]["name"]


def provider_pod():
    ds = by_kind(docs("keyfs-csi-provider.yaml"), "DaemonSet")[0]
    return ds, ds["spec"]["template"]["spec"]


def test_daemonset_serves_the_drivers_socket():
    ds, pod = provider_pod()
    assert ds["apiVersion"] == "apps/v1"
    sel = ds["spec"]["selector"]["matchLabels"]
    assert all(ds["spec"]["template"]["metadata"]["labels"][k] == v
               for k, v in sel.items())
    (c,) = pod["containers"]
    assert "--socket=" + SOCKET in c["args"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    hp = vols[mounts[PROVIDERS_DIR]]["hostPath"]
    assert hp == {"path": PROVIDERS_DIR, "type": "DirectoryOrCreate"}
    # The store option names a writable volume (the root file system is
    # read-only).
    opts = ",".join(c["args"][i + 1] for i, a in enumerate(c["args"])
                    if a == "-o")
    store = re.search(r"store=([^,]+)", opts).group(1)
    assert "emptyDir" in vols[mounts[store]]
    assert not re.search(r"\b(uid|gid|umask|ro|allow_other|direct_io|"
                         r"exact_sizes|watch_max|on_change)\b", opts), \
        "mount-only options are refused by keyfs-csi-provider"
    assert pod["serviceAccountName"] == by_kind(
        docs("keyfs-csi-provider.yaml"), "ServiceAccount")[0]["metadata"]["name"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert any(e["name"] == "AWS_REGION" for e in c["env"])
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_socket_path_is_the_providers_default():
    """The DaemonSet's --socket is the provider's own default: from its
    --help when the binary is built, else from its sources."""
    if os.access(CSI_BIN, os.X_OK):
        r = subprocess.run([CSI_BIN, "--help"], capture_output=True,
                           text=True, timeout=30)
        assert SOCKET in r.stdout + r.stderr
        return
    srcs = ""
    csi = os.path.join(ROOT, "csi")
    for n in os.listdir(csi):
        if n.endswith((".c", ".h")):
            srcs += open(os.path.join(csi, n)).read()
    if ".sock" not in srcs:
        pytest.skip("keyfs-csi-provider not built and its default not in csi/")
    assert SOCKET in srcs


def test_daemonset_is_unprivileged():
    _, pod = provider_pod()
    assert not pod.get("hostNetwork", False)
    assert not pod.get("hostPID", False) and not pod.get("hostIPC", False)
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc.get("privileged", False) is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["capabilities"]["add"] == ["IPC_LOCK"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    text = open(os.path.join(K8S, "keyfs-csi-provider.yaml")).read()
    assert "privileged: true" not in text
    if sc.get("runAsUser") == 0:
        # Root must say why (the socket directory), next to the setting.
        assert re.search(r"#.*[Rr]oot only for the socket", text)
    # The liveness probe is the provider's own --probe on its socket.
    probe = c["livenessProbe"]["exec"]["command"]
    assert probe[0].endswith("/keyfs-csi-provider") and "--probe" in probe
    assert "--socket=" + SOCKET in probe, probe


def test_csidriver_asks_for_tokens_and_republish():
    (d,) = by_kind(docs("csidriver-tokenrequests.yaml"), "CSIDriver")
    assert d["metadata"]["name"] == "secrets-store.csi.k8s.io"
    assert {"audience": "sts.amazonaws.com"} in d["spec"]["tokenRequests"]
    assert d["spec"]["requiresRepublish"] is True
    assert d["spec"]["volumeLifecycleModes"] == ["Ephemeral"]


ROLE_RE = re.compile(r"^arn:[a-z-]+:iam::\d{12}:role/[\w+=,.@/-]+$")


def test_example_class_objects_follow_the_spec():
    ds = docs("secretproviderclass-example.yaml")
    (spc,) = by_kind(ds, "SecretProviderClass")
    assert spc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
    assert spc["spec"]["provider"] == "keyfs"
    params = spc["spec"]["parameters"]
    assert all(isinstance(v, str) for v in params.values())
    assert ROLE_RE.match(params["roleArn"])
    objs = json.loads(params["objects"])
    assert isinstance(objs, list) and 0 < len(objs) <= 256
    seen = set()
    for o in objs:
        assert set(o) <= {"path", "fileName", "mode"}, o
        path = o["path"].lstrip("/")
        prov, _, rest = path.partition("/")
        assert prov in ("aws", "ssm", "gcp", "local") and rest, path
        name = o.get("fileName", path.rsplit("/", 1)[-1])
        assert not name.startswith("/") and ".." not in name.split("/")
        assert all(0 < len(c.encode()) <= 255 for c in name.split("/"))
        assert name not in seen
        seen.add(name)
        if "mode" in o:
            assert isinstance(o["mode"], str)
            assert re.fullmatch(r"0?[0-7]{3}", o["mode"])
            assert int(o["mode"], 8) <= 0o777
    first = objs[0]
    assert first == {"path": "aws/us-west-2/prod/db#password",
                     "fileName": "db-pass", "mode": "0400"}
    provs = {o["path"].split("/")[0] for o in objs}
    assert {"aws", "ssm", "gcp"} <= provs

    (pod,) = by_kind(ds, "Pod")
    assert pod["metadata"]["namespace"] == spc["metadata"]["namespace"]
    (vol,) = [v for v in pod["spec"]["volumes"] if "csi" in v]
    assert vol["csi"]["driver"] == "secrets-store.csi.k8s.io"
    assert vol["csi"]["readOnly"] is True
    assert vol["csi"]["volumeAttributes"]["secretProviderClass"] == \
        spc["metadata"]["name"]
    mounts = [m for c in pod["spec"]["containers"]
              for m in c["volumeMounts"] if m["name"] == vol["name"]]
    assert mounts and all(m["readOnly"] for m in mounts)


def test_example_namespace_may_use_the_node_identity():
    """The example's gcp/ object is read with the node's identity: the
    DaemonSet lets the example's namespace do so (and no wildcard)."""
    _, pod = provider_pod()
    (c,) = pod["containers"]
    arg = [a for a in c["args"] if a.startswith("--node-identity-namespaces=")]
    assert arg, "say which namespaces may use the node identity"
    ns = arg[0].split("=", 1)[1].split(",")
    assert "*" not in ns
    (spc,) = by_kind(docs("secretproviderclass-example.yaml"),
                     "SecretProviderClass")
    assert spc["metadata"]["namespace"] in ns


# ---------------------------------------------------------------------------
# The image (no container engine here: its package lists are checked
# against what the binary links and what the build needs)


def dockerfile_stages():
    """The apt-get install package lists of the Dockerfile's stages."""
    text = open(os.path.join(K8S, "Dockerfile")).read().replace("\\\n", " ")
    stages = []
    for line in text.splitlines():
        if line.startswith("FROM "):
            stages.append({"from": line.split()[1], "pkgs": set()})
        m = re.search(r"apt-get install (.*?)(&&|$)", line)
        if m:
            stages[-1]["pkgs"] |= {w for w in m.group(1).split()
                                   if not w.startswith("-")}
    return stages


def dpkg_depends(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}",
                        pkg], capture_output=True, text=True)
    names = set()
    for alt in re.split(r"[,|]", r.stdout):
        name = alt.strip().split(" ")[0].split(":")[0]
        if name:
            names.add(name)
    return names


def closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(dpkg_depends(p))
    return seen


def test_image_build_stage_has_the_build_dependencies():
    build, _ = dockerfile_stages()
    for pkg in ("build-essential", "pkg-config", "libfuse3-dev",
                "libcurl4-openssl-dev", "libssl-dev", "libjansson-dev",
                "libnghttp2-dev"):
        assert pkg in build["pkgs"], pkg
        assert pkg in open(os.path.join(ROOT, "Makefile")).read(), pkg


def test_image_runtime_stage_has_every_linked_library():
    """Every shared library the built provider links comes from a package
    the runtime stage installs, or one those depend on."""
    if not os.access(CSI_BIN, os.X_OK):
        pytest.skip("keyfs-csi-provider not built")
    if os.environ.get("KEYFS_SAN"):
        # A sanitizer build links its runtime (libasan, libtsan); the
        # image builds the plain binary.
        pytest.skip("sanitizer build: the image holds the plain binary")
    _, run = dockerfile_stages()
    assert run["from"] == "debian:12-slim"
    have = closure(run["pkgs"])
    out = subprocess.run(["ldd", CSI_BIN], capture_output=True, text=True,
                         check=True).stdout
    libs = [l.split("=>")[1].split("(")[0].strip() for l in out.splitlines()
            if "=>" in l and "/" in l.split("=>")[1]]
    assert libs
    for lib in libs:
        owner = None
        for path in (lib, os.path.realpath(lib),
                     "/usr" + lib if not lib.startswith("/usr") else lib):
            r = subprocess.run(["dpkg", "-S", path], capture_output=True,
                               text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        assert owner, "no package owns %s" % lib
        assert owner in have, "%s (%s) is not in the image" % (lib, owner)
