"""Writes and reads are a budget, counted by the apiserver itself (`apiserver_request_total`), not by
the operator.

The counts are deterministic, so they are asserted; they are also printed (`pytest -s`) for the notes.
The apiserver's metrics do not say who made a request, so reads are counted over windows in which the
test itself only lists (verb LIST) and the operator's reads would show as GETs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.localcluster import LocalCluster
from support.objects import apply, condition, fresh_namespace, get, patch_seldon_status, s3_secret, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

# Everything the operator may write. The tests' own writes (creating parents and Secrets, playing
# Seldon on the status subresource) fall outside it, and so do the controller manager's deletions.
OPERATOR_WRITES = {
    ("seldondeployments", ""),
    ("secrets", ""),
    ("zenmodeldeployments", "status"),
    ("events", ""),
}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
# Everything the reconcile reads: from its informer's stores, so a GET of these is a budget overrun.
OPERATOR_READS = {"zenmodeldeployments", "seldondeployments", "secrets"}
TIMEOUT = 60.0


def requests(cluster: LocalCluster, verbs: set[str], resources: set[tuple[str, str]]) -> int:
    """Requests the apiserver counted with one of `verbs` on one of (resource, subresource)."""
    total = 0.0
    for family in text_string_to_metric_families(cluster.metrics()):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "apiserver_request_total"
                and labels.get("verb") in verbs
                and (labels.get("resource"), labels.get("subresource", "")) in resources
            ):
                total += sample.value
    return int(total)


def operator_writes(cluster: LocalCluster) -> int:
    return requests(cluster, WRITE_VERBS, OPERATOR_WRITES)


def operator_gets(cluster: LocalCluster) -> int:
    return requests(cluster, {"GET"}, {(resource, "") for resource in OPERATOR_READS})


def metric(process: OperatorProcess, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(process.metrics())
        for sample in family.samples
        if sample.name == name
    )


def wait_converged(process: OperatorProcess, reconciles: int) -> None:
    """The operator has reconciled at least `reconciles` times and has nothing left to do."""
    wait_for(
        lambda: (
            metric(process, "zenmodel_reconcile_total") >= reconciles
            and metric(process, "zenmodel_workqueue_depth") == 0
        ),
        TIMEOUT,
        f"the operator did not settle after {reconciles} reconciles",
    )


def no_namespace_terminating(cluster: LocalCluster) -> bool:
    items = json.loads(cluster.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
    return all(ns["status"].get("phase") != "Terminating" for ns in items)


@pytest.fixture
def budget_namespace(cluster: LocalCluster) -> Iterator[str]:
    # Other tests' namespaces are torn down first, so nothing else writes while we count.
    wait_for(lambda: no_namespace_terminating(cluster), 120, "namespaces still terminating")
    with fresh_namespace(cluster, "budget") as name:
        yield name


def start_operator(cluster: LocalCluster, log_dir: Path) -> OperatorProcess:
    return OperatorProcess(
        {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com"},
        log_dir / "operator.log",
        "--namespaces",
        "budget-*",
    ).start()


def test_one_object_to_available(cluster: LocalCluster, budget_namespace: str, tmp_path: Path) -> None:
    ns = budget_namespace
    apply(cluster, s3_secret(ns))
    process = start_operator(cluster, tmp_path)
    try:
        before = operator_writes(cluster)
        apply(cluster, zmd("iris", ns, replicas=2))
        wait_for(
            lambda: get(cluster, "seldondeployment", ns, "iris") is not None, TIMEOUT, "no SeldonDeployment"
        )
        patch_seldon_status(
            cluster,
            ns,
            "iris",
            {
                "state": "Creating",
                "deploymentStatus": {"iris-default-0-iris": {"replicas": 2}},
            },
        )
        patch_seldon_status(
            cluster,
            ns,
            "iris",
            {
                "state": "Available",
                "address": {"url": f"http://iris-default.{ns}.svc.cluster.local:8000/api/v1.0/predictions"},
                "deploymentStatus": {"iris-default-0-iris": {"replicas": 2, "availableReplicas": 2}},
            },
        )
        wait_for(
            lambda: condition(get(cluster, "zmd", ns, "iris"), "Ready").get("status") == "True",
            TIMEOUT,
            "never became Ready",
        )
        wait_converged(process, reconciles=1)
        writes = operator_writes(cluster) - before
    finally:
        process.stop()
    print(f"\nwrite budget: apply -> Available cost {writes} operator writes (budget 6)")
    assert 0 < writes <= 6


def test_restart_over_converged_objects_costs_nothing(
    cluster: LocalCluster, budget_namespace: str, tmp_path: Path
) -> None:
    ns = budget_namespace
    count = 50
    apply(cluster, s3_secret(ns), *(zmd(f"model-{i:02d}", ns) for i in range(count)))
    gets_before = operator_gets(cluster)
    first = start_operator(cluster, tmp_path)
    try:
        wait_converged(first, reconciles=count)
        wait_for(
            lambda: all(
                (item.get("status") or {}).get("state") == "Creating"
                for item in json.loads(cluster.kubectl("get", "zmd", "-n", ns, "-o", "json").stdout)["items"]
            ),
            TIMEOUT,
            "not every object converged",
        )
        wait_converged(first, reconciles=count)
        first_gets = operator_gets(cluster) - gets_before
        first_reconciles = int(metric(first, "zenmodel_reconcile_total"))
    finally:
        first.stop()
    print(
        f"\nread budget: {count} new objects converged with {first_gets} GETs "
        f"and {first_reconciles} reconciles (budget: 1 of each per object)"
    )
    # The echoes of its own writes wake nothing, and everything it reads is in its stores.
    assert first_reconciles == count
    assert first_gets <= count

    before = operator_writes(cluster)
    gets_before = operator_gets(cluster)
    second = start_operator(cluster, tmp_path)
    try:
        wait_converged(second, reconciles=count)
        writes = operator_writes(cluster) - before
        gets = operator_gets(cluster) - gets_before
        reconciles = int(metric(second, "zenmodel_reconcile_total"))
    finally:
        second.stop()
    print(
        f"write budget: restart over {count} converged objects: {reconciles} reconciles, "
        f"{writes} writes, {gets} GETs"
    )
    assert writes == 0
    assert gets == 0
    assert reconciles == count
