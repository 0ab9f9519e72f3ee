"""Fixtures for the end-to-end tests: one real control plane (etcd, kube-apiserver, kube-controller-manager)
for the whole session, with the repository's CRDs and Seldon Core's SeldonDeployment CRD installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.localcluster import LocalCluster
from support.objects import fresh_namespace
from support.operator_process import OperatorProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    crds = [*sorted((REPO / "crds").glob("*.yaml")), local.tools_dir / "seldon-crd.yaml"]
    local.start(crds)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    with fresh_namespace(cluster, "e2e") as name:
        yield name


INGRESS = "http://ingress.example.com"


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator for the e2e-* namespaces (the write-budget tests run their own, elsewhere)."""
    process = OperatorProcess(
        {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": INGRESS},
        tmp_path_factory.mktemp("operator") / "operator.log",
        "--namespaces",
        "e2e-*",
    ).start()
    try:
        yield process
    finally:
        process.stop()
