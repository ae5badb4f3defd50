"""keyfs-csi-provider rows of `make bench` (run_bench.py --only csi).

The provider serves gRPC Mount calls over a unix socket, reading aws/
objects from moto_server through the counting proxy (calls counted at the
proxy, never by the provider).  The client is tests/integration/
csi_client.py (python3-grpcio, python3-protobuf: Debian's /usr/bin/python3),
one channel, as the Secrets Store CSI driver keeps one per provider.

a. Mount of COLD objects, each never read before (fresh names per run),
   against the same number of raw GetSecretValue calls made back to back
   with libcurl (kfbench raw-get) through the same proxy, in the same run.
b. Mount of the same number of objects, warm, against an empty Version
   call on the same channel (what gRPC alone costs) and against reading
   as many files of the same size from tmpfs in this process.
c. 64 concurrent Mounts of one cold object: wall time, GetSecretValue
   count (single flight: exactly 1).
"""
import json
import os
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSI = os.environ.get("KEYFS_CSI_BIN",
                     os.path.join(ROOT, "build", "keyfs-csi-provider"))
CSI_REGION = "us-west-2"
NOBJ = 10
BURST = 64
VALUE = "v" * 40

SEED = r'''
import sys, boto3, concurrent.futures as cf
ep, region, value = sys.argv[1], sys.argv[2], sys.argv[3]
names = sys.argv[4:]
c = boto3.client("secretsmanager", endpoint_url=ep, region_name=region,
                 aws_access_key_id="x", aws_secret_access_key="y")
with cf.ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda n: c.create_secret(Name=n, SecretString=value), names))
'''


def _attrs(names):
    objs = [{"path": "aws/%s/%s" % (CSI_REGION, n), "fileName": n}
            for n in names]
    return {"objects": json.dumps(objs),
            "csi.storage.k8s.io/pod.name": "bench",
            "csi.storage.k8s.io/pod.namespace": "default",
            "csi.storage.k8s.io/pod.uid": "00000000-0000-0000-0000-0000b0e0c0e0",
            "csi.storage.k8s.io/serviceAccount.name": "default"}


def _check(resp, names):
    if resp.error.code:
        raise RuntimeError("Mount answered error %r" % resp.error.code)
    got = [(f.path, f.contents) for f in resp.files]
    want = [(n, VALUE.encode()) for n in names]
    if got != want:
        raise RuntimeError("Mount answered the wrong files")


def start_provider(env, proxy_url):
    """The provider on env.tmp/k.sock; returns the socket path."""
    sock = os.path.join(env.tmp, "k.sock")
    store = os.path.join(env.tmp, "csi-store")
    os.makedirs(store, exist_ok=True)
    opts = ",".join(["providers=aws", "aws_region=" + CSI_REGION,
                     "aws_endpoint=" + proxy_url, "store=" + store,
                     "ttl=300"])
    log = open(os.path.join(env.tmp, "csi.log"), "ab")
    p = subprocess.Popen([CSI, "-o", opts, "--node-identity-namespaces=*",
                          "--socket=" + sock],
                         env=env.env(AWS_REGION=CSI_REGION),
                         stdout=log, stderr=log, start_new_session=True)
    env.procs.append(p)
    end = time.time() + 30
    while time.time() < end:
        if p.poll() is not None:
            raise RuntimeError("keyfs-csi-provider exited: " +
                               open(log.name).read()[-2000:])
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.close()
            return sock
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("keyfs-csi-provider did not open its socket")


def csi_rows(env, args, rows, rb):
    """rb: run_bench (start_moto, kfbench, median, row, PYENV)."""
    from csi_client import Client
    start_moto, kfbench, median, row = (rb.start_moto, rb.kfbench,
                                        rb.median, rb.row)
    R = args.runs
    iters = max(50, min(1000, args.iters // 40))
    moto, proxy = start_moto(env)
    warm = ["csiwarm-%02d" % j for j in range(NOBJ)]
    cold = [["csicold-r%d-%02d" % (r, j) for j in range(NOBJ)]
            for r in range(R)]
    burst = "csiburst"
    subprocess.run([rb.PYENV, "-c", SEED, moto, CSI_REGION, VALUE,
                    "csiraw", burst] + warm + sum(cold, []),
                   check=True, timeout=300)
    sock = start_provider(env, proxy.url)
    cli = Client(sock)

    def gets():
        return proxy.count("GetSecretValue"), proxy.total()

    def ops():
        st = rb.http_json(proxy.url + "/_proxy/stats")["ops"]
        return {op: v.get("seen", 0) for op, v in st.items()}

    def ops_diff(b, a):
        return ", ".join("%s %d" % (op, a[op] - b.get(op, 0))
                         for op in sorted(a) if a[op] != b.get(op, 0))

    # Open the channel and the provider's connection to the proxy: one
    # Mount of one warm object, untimed (the raw baseline gets the same).
    _check(cli.mount(_attrs(warm[:1])), warm[:1])

    # --- a. cold Mount of NOBJ objects ------------------------------------
    raw, times, calls, per_op = [], [], [], {}
    for r in range(R):
        raw.append(float(kfbench("raw-get", proxy.url, CSI_REGION, "csiraw",
                                 NOBJ)[0]) * NOBJ)
        b, o0 = gets(), ops()
        t0 = time.perf_counter()
        resp = cli.mount(_attrs(cold[r]))
        times.append((time.perf_counter() - t0) * 1e9)
        a, o1 = gets(), ops()
        _check(resp, cold[r])
        calls.append((a[0] - b[0], a[1] - b[1]))
        for op in o1:
            per_op[op] = per_op.get(op, 0) + o1[op] - o0.get(op, 0)
    per_op = ", ".join("%s %d" % (op, n) for op, n in sorted(per_op.items())
                       if n)
    ratio = median(times) / median(raw)
    exact = all(c[0] == NOBJ for c in calls)
    per_call = median(raw) / NOBJ
    row(rows, "a. Mount of %d cold aws/ objects" % NOBJ,
        "%.2f ms" % (median(times) / 1e6),
        "%.2f ms %d raw GetSecretValue" % (median(raw) / 1e6, NOBJ),
        "%.2fx" % ratio, "<= 1.2x, %d GetSecretValue" % NOBJ,
        ratio <= 1.2 and exact,
        "GetSecretValue, all calls per Mount: %s (in all %d Mounts: %s); "
        "the raw calls are made back to back with libcurl on an open "
        "connection through the same proxy; the Mount's %d calls at the "
        "raw call's %.2f ms would take %.2f ms (%.2fx)"
        % (calls, R, per_op, median([c[1] for c in calls]), per_call / 1e6,
           median([c[1] for c in calls]) * per_call / 1e6,
           median(times) / (median([c[1] for c in calls]) * per_call)))

    # --- b. warm Mount of the same kind of objects ------------------------
    _check(cli.mount(_attrs(warm)), warm)          # warm every value
    cli.version()
    twins = []
    for n in warm:
        p = os.path.join(env.shm, "csi-" + n)
        with open(p, "w") as f:
            f.write(VALUE)
        twins.append(p)
    attrs = _attrs(warm)
    ms, vs, fs = [], [], []
    b = proxy.total()
    for _ in range(R):
        t0 = time.perf_counter()
        for _ in range(iters):
            cli.version()
        vs.append((time.perf_counter() - t0) * 1e9 / iters)
        t0 = time.perf_counter()
        for _ in range(iters):
            for p in twins:
                with open(p, "rb") as f:
                    f.read()
        fs.append((time.perf_counter() - t0) * 1e9 / iters)
        t0 = time.perf_counter()
        for _ in range(iters):
            resp = cli.mount(attrs)
        ms.append((time.perf_counter() - t0) * 1e9 / iters)
        _check(resp, warm)
    ncalls = proxy.total() - b
    ratio = median(ms) / median(vs)
    row(rows, "b. Mount of the same %d objects, warm" % NOBJ,
        "%.0f us" % (median(ms) / 1e3),
        "%.0f us empty Version call" % (median(vs) / 1e3),
        "%.2fx" % ratio, "<= 5x Version, <= 2 ms, 0 calls",
        ratio <= 5 and median(ms) <= 2e6 and ncalls == 0,
        "%d x %d warm Mounts made %d API calls; reading %d files of %d B "
        "from tmpfs in the client's process: %.0f us (Mount is %.0fx "
        "that)" % (R, iters, ncalls, NOBJ, len(VALUE), median(fs) / 1e3,
                   median(ms) / median(fs)))

    # --- c. BURST concurrent Mounts of one cold object --------------------
    go = threading.Barrier(BURST + 1)
    results = [None] * BURST
    battrs = _attrs([burst])

    def one(i):
        go.wait()
        try:
            results[i] = cli.mount(battrs)
        except Exception as e:          # noqa: BLE001 - reported below
            results[i] = e
    ths = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for t in ths:
        t.start()
    b, o0 = gets(), ops()
    go.wait()
    t0 = time.perf_counter()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    a = gets()
    ok = 0
    for res in results:
        try:
            _check(res, [burst])
            ok += 1
        except Exception:               # noqa: BLE001 - counted
            pass
    n = a[0] - b[0]
    row(rows, "c. %d concurrent Mounts of one cold object" % BURST,
        "%d call(s)" % n, "-", "%d call(s), %.1f ms" % (n, wall * 1000),
        "exactly 1", n == 1 and ok == BURST,
        "one channel, %d threads released together; %d of %d Mounts "
        "answered the value; all API calls: %d (%s)"
        % (BURST, ok, BURST, a[1] - b[1], ops_diff(o0, ops())))
    cli.close()

