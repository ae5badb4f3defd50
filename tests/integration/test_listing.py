"""Listing costs only list calls; `ls -l` and stat never fetch a value
(sizes of values not cached are 0 on writable mounts and the largest
possible value on read-only ones, and readers still get exactly the
value); with -o exact_sizes, `ls -l` of a read-only aws/ mount learns
exact sizes with one BatchGetSecretValue per 20 secrets.  Calls are
counted on the server side, by the proxy in front of moto."""
import mmap
import os
import subprocess

from conftest import PYENV_PYTHON
from test_faults import moto  # noqa: F401  (fixture)

SEED = r'''
import boto3, sys
c = boto3.client("secretsmanager", endpoint_url=sys.argv[1],
                 region_name="us-west-2", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
for i in range(int(sys.argv[2])):
    c.create_secret(Name="ls-%02d" % i, SecretString="x" * (i + 1))
'''


def aws_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return env


def calls(proxy, op):
    return proxy.stats().get("ops", {}).get(op, {}).get("seen", 0)


def test_ls_l_with_exact_sizes_costs_one_batch_call_per_20(keyfs, moto):  # noqa: F811,E501
    url, proxy = moto
    subprocess.run([PYENV_PYTHON, "-c", SEED, url, "45"], check=True,
                   timeout=120)
    m = keyfs(env=aws_env(), providers="aws", aws_region="us-west-2",
              aws_endpoint=proxy.url, ro=True, exact_sizes=True)
    region = m.path("aws", "us-west-2")
    before = {op: calls(proxy, op) for op in
              ("ListSecrets", "BatchGetSecretValue", "GetSecretValue",
               "DescribeSecret")}
    names = sorted(os.listdir(region))
    assert names == ["ls-%02d" % i for i in range(45)]
    listed = calls(proxy, "ListSecrets") - before["ListSecrets"]
    assert listed == 1                      # 45 names: one page
    sizes = {n: os.lstat(os.path.join(region, n)).st_size for n in names}
    assert sizes == {"ls-%02d" % i: i + 1 for i in range(45)}
    batch = calls(proxy, "BatchGetSecretValue") - before["BatchGetSecretValue"]
    single = calls(proxy, "GetSecretValue") - before["GetSecretValue"]
    desc = calls(proxy, "DescribeSecret") - before["DescribeSecret"]
    assert batch == 3 and single == 0 and desc == 0, (batch, single, desc)
    # The values are now cached: reading them costs nothing more.
    for i in (0, 21, 44):
        with open(os.path.join(region, "ls-%02d" % i), "rb") as f:
            assert f.read() == b"x" * (i + 1)
    assert calls(proxy, "GetSecretValue") - before["GetSecretValue"] == 0
    assert calls(proxy, "BatchGetSecretValue") - before["BatchGetSecretValue"] == 3


def test_plain_ls_never_fetches_values(keyfs, moto):  # noqa: F811
    url, proxy = moto
    subprocess.run([PYENV_PYTHON, "-c", SEED, url, "30"], check=True,
                   timeout=120)
    m = keyfs(env=aws_env(), providers="aws", aws_region="us-west-2",
              aws_endpoint=proxy.url)
    before = proxy.stats()["total"]["seen"]
    assert len(os.listdir(m.path("aws", "us-west-2"))) == 30
    st = proxy.stats()["ops"]
    assert proxy.stats()["total"]["seen"] - before == 1
    assert st.get("GetSecretValue", {}).get("seen", 0) == 0
    assert st.get("BatchGetSecretValue", {}).get("seen", 0) == 0


AWS_MAX = 65536  # the largest value Secrets Manager stores


def value_calls(proxy):
    return sum(calls(proxy, op) for op in
               ("BatchGetSecretValue", "GetSecretValue"))


def test_ls_l_and_stat_never_fetch_a_value(keyfs, moto):  # noqa: F811
    url, proxy = moto
    subprocess.run([PYENV_PYTHON, "-c", SEED, url, "25"], check=True,
                   timeout=120)
    for ro in (True, False):
        m = keyfs(name="ro" if ro else "rw", env=aws_env(), providers="aws",
                  aws_region="us-west-2", aws_endpoint=proxy.url,
                  **({"ro": True} if ro else {}))
        region = m.path("aws", "us-west-2")
        before = value_calls(proxy)
        out = subprocess.run(["ls", "-l", region], stdout=subprocess.PIPE,
                             check=True, timeout=60).stdout.decode()
        assert out.count("ls-") == 25
        sizes = {os.stat(os.path.join(region, "ls-%02d" % i)).st_size
                 for i in range(25)}
        assert value_calls(proxy) == before     # not one value fetched
        assert sizes == {AWS_MAX if ro else 0}
        # Reading one makes its size exact.
        with open(os.path.join(region, "ls-03"), "rb") as f:
            assert f.read() == b"x" * 4
        assert os.stat(os.path.join(region, "ls-03")).st_size == 4
        m.stop()


def test_readers_of_a_read_only_mount_get_exactly_the_value(keyfs, moto):  # noqa: F811,E501
    """Shown the largest possible size, page-cached readers still stop at
    the value: the first read's short answer sets the exact size."""
    url, proxy = moto
    subprocess.run([PYENV_PYTHON, "-c", SEED, url, "12"], check=True,
                   timeout=120)
    m = keyfs(env=aws_env(), providers="aws", aws_region="us-west-2",
              aws_endpoint=proxy.url, ro=True)
    region = m.path("aws", "us-west-2")
    p = lambda i: os.path.join(region, "ls-%02d" % i)  # noqa: E731
    assert subprocess.run(["cat", p(5)], stdout=subprocess.PIPE,
                          timeout=30).stdout == b"x" * 6
    assert subprocess.run(["head", "-c", "3", p(6)], stdout=subprocess.PIPE,
                          timeout=30).stdout == b"xxx"
    assert subprocess.run(["head", "-c", "100", p(7)],
                          stdout=subprocess.PIPE,
                          timeout=30).stdout == b"x" * 8
    assert subprocess.run(["dd", "if=" + p(8), "bs=3", "status=none"],
                          stdout=subprocess.PIPE,
                          timeout=30).stdout == b"x" * 9
    # A program that maps the file after a first read maps the value.
    with open(p(9), "rb") as f:
        assert f.read() == b"x" * 10
        assert os.fstat(f.fileno()).st_size == 10
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert mm[:] == b"x" * 10
