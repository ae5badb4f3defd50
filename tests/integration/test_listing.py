"""Listing costs only list calls; `ls -l` of a read-only aws/ mount
learns exact sizes with one BatchGetSecretValue per 20 secrets.  Calls are
counted on the server side, by the proxy in front of moto."""
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


def test_ls_l_costs_one_batch_call_per_20(keyfs, moto):  # noqa: F811
    url, proxy = moto
    subprocess.run([PYENV_PYTHON, "-c", SEED, url, "45"], check=True,
                   timeout=120)
    m = keyfs(env=aws_env(), providers="aws", aws_region="us-west-2",
              aws_endpoint=proxy.url, ro=True)
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
