"""Writes and reads are a budget, counted by the apiserver itself (its audit log, see `support.budget`),
not by the operator. The counts are deterministic, so they are asserted; they are also printed
(`pytest -s`) for the notes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.budget import operator_gets, operator_writes
from support.localcluster import LocalCluster
from support.objects import SELDON_SKIPS, apply, condition, fresh_namespace, get, s3_secret, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0
# What a person watching needs from apply to Available with two replicas: the two children (2 writes), the
# Created and Available Events (2), the status once Creating and once Available (2), and one status write
# per replica that becomes available, so `kubectl get` shows the rollout progress (2).
AVAILABLE_BUDGET = 8


def wait_converged(process: OperatorProcess, reconciles: int) -> None:
    """The operator has reconciled at least `reconciles` times and has nothing left to do."""
    wait_for(
        lambda: process.drained(reconciles),
        TIMEOUT,
        f"the operator did not settle after {reconciles} reconciles",
    )


def no_namespace_terminating(cluster: LocalCluster) -> bool:
    items = json.loads(cluster.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
    return all(ns["status"].get("phase") != "Terminating" for ns in items)


@pytest.fixture
def budget_namespace(cluster: LocalCluster) -> Iterator[str]:
    # Other tests' namespaces are torn down first, so the machine is quiet while we count.
    wait_for(lambda: no_namespace_terminating(cluster), 120, "namespaces still terminating")
    with fresh_namespace(cluster, "budget") as name:
        yield name


@pytest.fixture
def budget_namespace_without_seldon(cluster: LocalCluster) -> Iterator[str]:
    wait_for(lambda: no_namespace_terminating(cluster), 120, "namespaces still terminating")
    with fresh_namespace(cluster, "budget", labels=SELDON_SKIPS) as name:
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
        apply(cluster, zmd("iris", ns, replicas=2))

        def available_and_mirrored() -> bool:
            parent = get(cluster, "zmd", ns, "iris") or {}
            return (
                condition(parent, "Ready").get("status") == "True"
                and (parent.get("status") or {}).get("availableReplicas") == 2
            )

        wait_for(available_and_mirrored, TIMEOUT, "Seldon's controller never made both replicas available")
        wait_converged(process, reconciles=1)
        writes = operator_writes(cluster, ns)
        gets = operator_gets(cluster, ns)
    finally:
        process.stop()
    print(
        f"\nwrite budget: apply -> Available cost {writes} operator writes (budget {AVAILABLE_BUDGET}) "
        f"and {gets} GETs (budget 1)"
    )
    assert 0 < writes <= AVAILABLE_BUDGET
    assert gets <= 1


def test_restart_over_converged_objects_costs_nothing(
    cluster: LocalCluster, budget_namespace_without_seldon: str, tmp_path: Path
) -> None:
    """In a namespace Seldon's controller skips, so the objects rest in Creating: a restart's cost does not
    depend on Seldon, and rolling out fifty model Deployments would only load the machine."""
    ns = budget_namespace_without_seldon
    count = 50
    apply(cluster, s3_secret(ns), *(zmd(f"model-{i:02d}", ns) for i in range(count)))
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
        first_gets = operator_gets(cluster, ns)
        first_reconciles = int(first.metric_sum("zenmodel_reconcile_total"))
    finally:
        first.stop()
    print(
        f"\nread budget: {count} new objects converged with {first_gets} GETs "
        f"and {first_reconciles} reconciles (budget: 1 of each per object)"
    )
    # The echoes of its own writes wake nothing, and everything it reads is in its stores.
    assert first_reconciles == count
    assert first_gets <= count

    before = operator_writes(cluster, ns)
    gets_before = operator_gets(cluster, ns)
    second = start_operator(cluster, tmp_path)
    try:
        wait_converged(second, reconciles=count)
        writes = operator_writes(cluster, ns) - before
        gets = operator_gets(cluster, ns) - gets_before
        reconciles = int(second.metric_sum("zenmodel_reconcile_total"))
    finally:
        second.stop()
    print(
        f"write budget: restart over {count} converged objects: {reconciles} reconciles, "
        f"{writes} writes, {gets} GETs"
    )
    assert writes == 0
    assert gets == 0
    assert reconciles == count
