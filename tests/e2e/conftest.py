"""Fixtures for the end-to-end tests: one real control plane for the whole session (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok's fake Node and Seldon Core's own controller), with the
repository's CRDs and Seldon Core's SeldonDeployment CRD installed."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator

import pytest

from support.argocd import ArgoCD
from support.localcluster import LocalCluster
from support.objects import SECONDS_TO_AVAILABLE, SECONDS_TO_COLLECT, SELDON_SKIPS, fresh_namespace
from support.operator_process import OperatorProcess
from support.realnode import FIGURES as REAL_NODE_FIGURES

# Resident memory (KiB) of the parts this suite added to the control plane, read while it runs.
RSS_KIB: dict[str, int] = {}
MEASURED_PARTS = ("seldon-manager", "kwok", "kube-scheduler")
ARGOCD_PARTS = ("argocd-application-controller", "argocd-repo-server", "redis")
# The operator's write requests in the session, by verb and answer, from the audit log.
OPERATOR_WRITES: Counter[tuple[str, int]] = Counter()
OPERATOR_USER_AGENT = "zenmodel-operator/"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    local.start(local.crds, scheduler=True, fake_node=True, seldon=True)
    try:
        yield local
    finally:
        RSS_KIB.update({part: local.rss_kib(part) for part in MEASURED_PARTS if local.running})
        OPERATOR_WRITES.update(
            (event["verb"], event["responseStatus"]["code"])
            for event in local.audit_events()
            if event.get("userAgent", "").startswith(OPERATOR_USER_AGENT)
            and event["verb"] in ("create", "update", "patch")
            and event["objectRef"].get("resource") != "leases"
        )
        local.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A namespace Seldon Core's controller serves: SeldonDeployments there really roll out."""
    with fresh_namespace(cluster, "e2e") as name:
        yield name


@pytest.fixture
def namespace_without_seldon(cluster: LocalCluster) -> Iterator[str]:
    """A namespace Seldon Core's controller skips: tests there write Seldon's status themselves, for the
    states Seldon cannot reach on this control plane (it never fails a rollout within a test's time)."""
    with fresh_namespace(cluster, "e2e", labels=SELDON_SKIPS) as name:
        yield name


INGRESS = "http://ingress.example.com"


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator for the e2e-* namespaces (the write-budget tests run their own, elsewhere)."""
    with OperatorProcess(
        {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": INGRESS},
        tmp_path_factory.mktemp("operator") / "operator.log",
        "--namespaces",
        "e2e-*",
    ) as process:
        yield process


@pytest.fixture(scope="module")
def argocd(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgoCD]:
    """Argo CD's application controller and repo server (with redis) for one test module; their memory is
    read before they stop."""
    started = ArgoCD(cluster, tmp_path_factory.mktemp("argocd")).start()
    try:
        yield started
    finally:
        RSS_KIB.update({part: started.rss_kib(part) for part in ARGOCD_PARTS if started.running(part)})
        started.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the suite measured on the way: apply -> Available, and the added parts' memory."""
    if SECONDS_TO_AVAILABLE:
        seconds = SECONDS_TO_AVAILABLE
        terminalreporter.write_line(
            f"apply -> Available (Seldon's own controller): p50 {statistics.median(seconds):.2f}s, "
            f"max {max(seconds):.2f}s over {len(seconds)} deployments"
        )
    if SECONDS_TO_COLLECT:
        seconds = SECONDS_TO_COLLECT
        terminalreporter.write_line(
            f"delete -> garbage collected (ours and Seldon's): max {max(seconds):.2f}s over {len(seconds)}"
        )
    if OPERATOR_WRITES:
        writes = OPERATOR_WRITES
        terminalreporter.write_line(
            f"operator writes (Leases aside): {sum(writes.values())}; answered 409: "
            f"{writes['patch', 409]} of {sum(n for (verb, _), n in writes.items() if verb == 'patch')} patches "
            f"(a precondition: the object changed since it was read), {writes['create', 409]} of "
            f"{sum(n for (verb, _), n in writes.items() if verb == 'create')} creates (the name was taken)"
        )
    for name, value in REAL_NODE_FIGURES.items():
        terminalreporter.write_line(f"real node: {name}: {value:.1f}")
    if RSS_KIB:
        parts = ", ".join(f"{part} {kib / 1024:.0f} MiB" for part, kib in RSS_KIB.items())
        terminalreporter.write_line(f"RSS at the end of the session: {parts}")
