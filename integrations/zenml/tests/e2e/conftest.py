"""One real control plane (with Seldon Core's own controller and kwok's fake Node, from the repository's
tests/support), the operator as a process from the operator's own environment, moto's S3 server as the
artifact store, and a ZenML stack whose model deployer is the `zenmodel` flavor, registered with the CLI
commands the README gives."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from support.localcluster import LocalCluster
from support.objects import fresh_namespace
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenml.cli.cli import cli
from zenml.utils import source_utils

REPO = Path(__file__).resolve().parents[4]
OPERATOR_PYTHON = REPO / ".venv" / "bin" / "python"
INGRESS = "http://ingress.example.com"
BUCKET = "zenml"
ACCESS_KEY = "zenml-e2e-access-key"
SECRET_KEY = "zenml-e2e-secret-key"
REGION = "us-east-1"
# Seconds from the deploy step's start to its end (the model Available), per run, by ZenML's own step
# timestamps: printed at the end of the session.
STEP_SECONDS: list[float] = []


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    local.start(local.crds, scheduler=True, fake_node=True, seldon=True)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    if not OPERATOR_PYTHON.is_file():
        pytest.fail(
            f"the operator's environment is missing ({OPERATOR_PYTHON}): run `make venv`", pytrace=False
        )
    with OperatorProcess(
        {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": INGRESS},
        tmp_path_factory.mktemp("operator") / "operator.log",
        "--namespaces",
        "zenml-*",
        python=str(OPERATOR_PYTHON),
    ) as process:
        yield process


@pytest.fixture(scope="session")
def namespace(cluster: LocalCluster) -> Iterator[str]:
    with fresh_namespace(cluster, "zenml") as name:
        yield name


@dataclass(frozen=True)
class S3:
    endpoint: str

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 server on loopback, holding the artifact store's bucket."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    moto_server = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: _listening(port), 30, f"moto_server never listened; log: {log}")
        store = S3(f"http://127.0.0.1:{port}")
        store.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield store
    finally:
        process.terminate()
        process.wait(timeout=30)


def zenml(*args: str) -> str:
    """A `zenml` CLI command, in this process (as the README gives it). The CLI makes the working
    directory ZenML's source root, so it runs in the tests' own root (see tests/conftest.py): from the
    project directory, ../src would be user code and resolve as `src.zenmodel_zenml`."""
    with contextlib.chdir(source_utils.get_source_root()):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, f"zenml {' '.join(args)} exited with {result.exit_code}:\n{result.output}"
    return result.output


@pytest.fixture(scope="session")
def stack(cluster: LocalCluster, operator: OperatorProcess, namespace: str, s3: S3) -> str:
    """The stack: an S3 artifact store whose credentials are a ZenML secret, and the zenmodel deployer."""
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)  # what the deployer's kubernetes client reads
    suffix = secrets.token_hex(3)
    zenml(
        "secret",
        "create",
        f"s3-{suffix}",
        f"--aws_access_key_id={ACCESS_KEY}",
        f"--aws_secret_access_key={SECRET_KEY}",
    )
    zenml(
        "artifact-store",
        "register",
        f"s3-{suffix}",
        "--flavor=s3",
        f"--path=s3://{BUCKET}",
        f"--authentication_secret=s3-{suffix}",
        f'--client_kwargs={{"endpoint_url": "{s3.endpoint}", "region_name": "{REGION}"}}',
    )
    zenml("model-deployer", "flavor", "register", "zenmodel_zenml.ZenModelDeployerFlavor")
    zenml(
        "model-deployer",
        "register",
        f"zmd-{suffix}",
        "--flavor=zenmodel",
        f"--kubernetes_namespace={namespace}",
    )
    name = f"serving-{suffix}"
    zenml("stack", "register", name, "-o", "default", "-a", f"s3-{suffix}", "-d", f"zmd-{suffix}", "--set")
    return name


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STEP_SECONDS:
        seconds = ", ".join(f"{value:.1f}s" for value in STEP_SECONDS)
        terminalreporter.write_line(f"zenmodel deploy step, start -> end (Available or reused): {seconds}")
