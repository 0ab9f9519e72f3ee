"""Quiet and quick under faults: a real apiserver restart and freeze, a SIGKILLed operator.

These tests stop and freeze the API server, so they run on a control plane of their own (the session's
is shared with every other e2e test) and with their own operator. Figures are printed (`pytest -s`);
they are taken on a shared, loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from support.localcluster import LocalCluster
from support.objects import (
    CHILDREN_WRITTEN,
    apply,
    events,
    fresh_namespace,
    must_get,
    s3_secret,
    server_side_apply,
    wait_state,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.core.plan import Snapshot, decode_source_secret, plan
from zenmodel_operator.runtime.writes import FIELD_MANAGER
from zenmodel_operator.settings import OperatorSettings

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 30.0
RECOVERY_GOAL_SECONDS = 2.0
OUTAGE_LOG_LINES_GOAL = 3
RECOVERY_LINE = "the Kubernetes API is reachable again"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("faults-cluster"))
    local.start(local.crds)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def operator(cluster: LocalCluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster.env(), tmp_path / "operator.log", "--namespaces", "faults-*").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    with fresh_namespace(cluster, "faults") as name:
        yield name


def replicas_of(cluster: LocalCluster, namespace: str, name: str) -> int | None:
    path = f"/apis/machinelearning.seldon.io/v1/namespaces/{namespace}/seldondeployments/{name}"
    sdp = cluster.get_json(path)
    return int(sdp["spec"]["predictors"][0]["replicas"]) if sdp else None


def seconds_to_converge(cluster: LocalCluster, namespace: str, replicas: int, since: float) -> float:
    """Sets the parent's replicas and returns the seconds from `since` until its SeldonDeployment has them.

    Written and read straight through the API (no kubectl process), so the figure is the operator's."""
    path = f"/apis/zenml.io/v1alpha1/namespaces/{namespace}/zenmodeldeployments/iris"
    cluster.merge_patch(path, {"spec": {"replicas": replicas}})
    wait_for(
        lambda: replicas_of(cluster, namespace, "iris") == replicas,
        30,
        f"the SeldonDeployment never got {replicas} replicas",
        interval=0.02,
    )
    return time.monotonic() - since


def new_lines(process: OperatorProcess, offset: int) -> list[str]:
    return process.log()[offset:].splitlines()


def logged_before(line: str, wall_time: float) -> bool:
    """Whether a text-format log line ("2026-11-23 21:22:01,960 ERROR ...") was written before `wall_time`."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() < wall_time


def test_an_apiserver_restart_is_quiet_and_recovered_within_2s(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(cluster, s3_secret(namespace), zmd("iris", namespace))
    wait_state(cluster, namespace, "iris", CHILDREN_WRITTEN)
    offset = len(operator.log())

    # The outage's length is the fault being simulated, not a wait for a condition.
    answered = cluster.restart_apiserver(down_for=OUTAGE_SECONDS)
    answered_wall = time.time() - (time.monotonic() - answered)
    recovery = seconds_to_converge(cluster, namespace, 3, since=answered)
    wait_for(
        lambda: any(RECOVERY_LINE in line for line in new_lines(operator, offset)),
        10,
        "the operator never logged the API server's recovery",
    )
    lines = new_lines(operator, offset)
    during = [line for line in lines if logged_before(line, answered_wall) or RECOVERY_LINE in line]
    print(f"\nafter a {OUTAGE_SECONDS:.0f}s apiserver restart, a change made as it answered converged in")
    print(f"{recovery:.2f}s from its answering; operator log lines for the outage: {len(during)}")
    print("\n".join(line[:250] for line in lines))
    assert len(during) <= OUTAGE_LOG_LINES_GOAL
    assert recovery <= RECOVERY_GOAL_SECONDS


def test_an_apiserver_freeze_is_quiet_and_recovered_within_2s(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(cluster, s3_secret(namespace), zmd("iris", namespace))
    wait_state(cluster, namespace, "iris", CHILDREN_WRITTEN)
    offset = len(operator.log())

    cluster.freeze_apiserver()
    try:
        time.sleep(OUTAGE_SECONDS)  # the freeze's length is the fault being simulated
    finally:
        cluster.thaw_apiserver()
    thawed = time.monotonic()
    recovery = seconds_to_converge(cluster, namespace, 3, since=thawed)
    lines = new_lines(operator, offset)
    during = [line for line in lines if "reconciled" not in line]
    print(f"\nafter a {OUTAGE_SECONDS:.0f}s apiserver freeze, a change made as it was thawed converged in")
    print(f"{recovery:.2f}s; operator log lines for the freeze: {len(during)}")
    print("\n".join(line[:250] for line in lines))
    assert len(during) <= OUTAGE_LOG_LINES_GOAL
    assert recovery <= RECOVERY_GOAL_SECONDS


def test_liveness_probes_are_not_logged(operator: OperatorProcess) -> None:
    offset = len(operator.log())
    for _ in range(5):
        assert operator.healthy()
    assert not [line for line in new_lines(operator, offset) if "/healthz" in line]


def test_a_created_event_missed_by_a_crash_is_posted_after_the_restart_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """The state a SIGKILL leaves between creating the children and recording them in the status: the
    children exist exactly as the operator applies them, the parent has no status and no Event."""
    with fresh_namespace(cluster, "crash") as namespace:
        apply(cluster, s3_secret(namespace), zmd("iris", namespace))
        parent = must_get(cluster, "zmd", namespace, "iris")
        source = decode_source_secret(must_get(cluster, "secret", namespace, "s3-creds"))
        crashed = plan(Snapshot(parent, None, None, source), OperatorSettings())
        assert crashed.secret is not None and crashed.seldon is not None
        server_side_apply(cluster, crashed.secret, crashed.seldon, manager=FIELD_MANAGER)
        assert events(cluster, namespace, "iris") == [] and "status" not in parent

        for restart in range(2):
            run_until_settled(cluster, tmp_path / f"operator-{restart}.log", namespace)
            assert [e["reason"] for e in events(cluster, namespace, "iris")] == ["Created"]


def run_until_settled(cluster: LocalCluster, log: Path, namespace: str) -> None:
    """Starts an operator for `namespace`, waits until iris is Creating and nothing is left to do, stops it."""
    process = OperatorProcess(cluster.env(), log, "--namespaces", namespace).start()
    try:
        wait_state(cluster, namespace, "iris", CHILDREN_WRITTEN)
        wait_for(
            lambda: "zenmodel_workqueue_depth 0.0" in process.metrics(), 30, "the operator never settled"
        )
    finally:
        process.stop()
