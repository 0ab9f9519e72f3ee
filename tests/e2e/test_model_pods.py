"""Why Seldon's model pods never become ready, on the parent's status: a pod of the parent's SeldonDeployment
whose storage initializer or model server fails, written as a kubelet would write it (kwok would make it
Running), on a Node nothing else runs; its output served by a loopback stand-in for that Node's kubelet
(`support.modelpods`) or by no one.

The parents live in a namespace Seldon's controller skips, so Seldon's state stays "no status" (Creating)
and the test's pods are the only ones. Requests are counted by the apiserver (its audit log).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from support.budget import CONTAINER_OUTPUT, operator_requests, operator_writes
from support.localcluster import LocalCluster
from support.modelpods import (
    INITIALIZER,
    MODEL,
    SERVER_IMAGE,
    ContainerLogs,
    container_status,
    failing_status,
    initializer_crash_looping,
    node_nothing_runs,
    running_status,
    seldon_pod,
)
from support.objects import apply, condition, events, get, s3_secret, wait_state, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.core.pods import OUTPUT_LIMIT_BYTES, OUTPUT_TAIL_LINES

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0
POD = "iris-default-0-iris-5d9f7c8b6-x2k4q"
ACCESS_KEY = "e2e-access-key"  # what support.objects.s3_secret sets beside the secret key


@pytest.fixture(scope="module")
def container_logs(cluster: LocalCluster) -> Iterator[ContainerLogs]:
    with ContainerLogs(cluster) as logs:
        yield logs


@pytest.fixture(scope="module")
def logging_node(cluster: LocalCluster, container_logs: ContainerLogs) -> Iterator[str]:
    with node_nothing_runs(cluster, "model-pods-logging", container_logs) as name:
        yield name


@pytest.fixture(scope="module")
def silent_node(cluster: LocalCluster) -> Iterator[str]:
    with node_nothing_runs(cluster, "model-pods-silent") as name:
        yield name


def write_pod_status(cluster: LocalCluster, namespace: str, name: str, status: dict[str, Any]) -> None:
    """As the kubelet does: through the pods/status subresource."""
    cluster.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def create_pod(cluster: LocalCluster, pod: dict[str, Any]) -> None:
    namespace = pod["metadata"]["namespace"]
    # The pod's ServiceAccount admission needs the namespace's "default" ServiceAccount, which the
    # controller manager makes a moment after the namespace.
    wait_for(
        lambda: get(cluster, "serviceaccount", namespace, "default") is not None,
        TIMEOUT,
        "no default ServiceAccount",
    )
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))


def ready_condition(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    return condition(get(cluster, "zmd", namespace, "iris"), "SeldonDeploymentReady")


def wait_reason(cluster: LocalCluster, namespace: str, reason: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(ready_condition(cluster, namespace))
        return seen.get("reason") == reason

    wait_for(reached, TIMEOUT, f"SeldonDeploymentReady never read {reason}; last: {seen}")
    return seen


def warnings(cluster: LocalCluster, namespace: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in events(cluster, namespace, "iris") if e["type"] == "Warning"]


def settled(operator: OperatorProcess) -> None:
    wait_for(lambda: operator.metric_sum("zenmodel_workqueue_depth") == 0, TIMEOUT, "the operator is busy")


def output_reads(cluster: LocalCluster, namespace: str) -> int:
    return operator_requests(cluster, namespace, {"get"}, CONTAINER_OUTPUT, answered=False)


def test_a_storage_initializer_that_cannot_fetch_the_model_is_reported_without_the_secret(
    cluster: LocalCluster,
    operator: OperatorProcess,
    namespace_without_seldon: str,
    container_logs: ContainerLogs,
    logging_node: str,
) -> None:
    ns = namespace_without_seldon
    secret_key = f"canary-{secrets.token_hex(12)}"
    apply(cluster, s3_secret(ns, secret_key=secret_key), zmd("iris", ns))
    wait_state(cluster, ns, "iris", "Creating")
    settled(operator)
    writes_before, reads_before = operator_writes(cluster, ns), output_reads(cluster, ns)

    # rclone's last line, as the storage initializer writes it, quoting the credentials it was given.
    container_logs.outputs[(ns, POD, INITIALIZER)] = (
        b"2026/05/01 10:00:01 NOTICE: Config file not found - using defaults\n"
        b"2026/05/01 10:00:02 Failed to copy: SignatureDoesNotMatch: the request signed with "
        + f"{ACCESS_KEY}/{secret_key} was refused\n".encode()
    )
    create_pod(cluster, seldon_pod(ns, POD, "iris", logging_node))
    write_pod_status(cluster, ns, POD, failing_status(run=1))

    failing = wait_reason(cluster, ns, "ModelFetchFailed")
    message = (
        f"init container {INITIALIZER} of pod {POD} cannot fetch the model: Failed to copy: "
        "SignatureDoesNotMatch: the request signed with [redacted]/[redacted] was refused"
    )
    assert failing["message"] == message
    ready = condition(get(cluster, "zmd", ns, "iris"), "Ready")
    assert (ready["reason"], ready["message"]) == ("ModelFetchFailed", message)
    assert (get(cluster, "zmd", ns, "iris") or {})["status"]["state"] == "Creating"
    wait_for(lambda: warnings(cluster, ns) == [("ModelFetchFailed", message)], TIMEOUT, "no Warning Event")
    settled(operator)
    # The output of that run, asked once, through the apiserver to the node's kubelet.
    bounds = {"tailLines": str(OUTPUT_TAIL_LINES), "limitBytes": str(OUTPUT_LIMIT_BYTES)}
    assert container_logs.asked(ns, POD, INITIALIZER) == [bounds]
    assert output_reads(cluster, ns) - reads_before == 1
    assert operator_writes(cluster, ns) - writes_before == 2  # the status, the Event
    everything = json.dumps([get(cluster, "zmd", ns, "iris"), events(cluster, ns, "iris")]) + operator.log()
    assert secret_key not in everything

    # The next run fails the same way: its output is read once more, and nothing is written.
    write_pod_status(cluster, ns, POD, {"initContainerStatuses": initializer_crash_looping(2)})
    wait_for(
        lambda: len(container_logs.asked(ns, POD, INITIALIZER)) == 2, TIMEOUT, "the next run was not read"
    )
    # A change that decides nothing (the pod's conditions) wakes nobody.
    write_pod_status(cluster, ns, POD, {"conditions": [{"type": "PodScheduled", "status": "True"}]})
    settled(operator)
    assert operator_writes(cluster, ns) - writes_before == 2
    assert output_reads(cluster, ns) - reads_before == 2

    # Recovered: the model is fetched and the containers run. Back to Creating, with one status write.
    write_pod_status(cluster, ns, POD, running_status(runs=2))
    wait_reason(cluster, ns, "Creating")
    settled(operator)
    assert operator_writes(cluster, ns) - writes_before == 3
    assert warnings(cluster, ns) == [("ModelFetchFailed", message)]  # one Warning, for the one transition


def test_an_output_no_kubelet_serves_falls_back_and_a_deleted_pod_clears_the_problem(
    cluster: LocalCluster, operator: OperatorProcess, namespace_without_seldon: str, silent_node: str
) -> None:
    ns = namespace_without_seldon
    apply(cluster, s3_secret(ns), zmd("iris", ns))
    wait_state(cluster, ns, "iris", "Creating")
    log_lines_before = len(operator.log().splitlines())
    reads_before = output_reads(cluster, ns)

    # The model server was killed for want of memory, and waits to be run again.
    oom = {"exitCode": 137, "reason": "OOMKilled", "containerID": "containerd://server-1"}
    status = running_status()
    status["containerStatuses"][0] = container_status(
        MODEL,
        SERVER_IMAGE,
        {"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": oom},
        restartCount=1,
    )
    create_pod(cluster, seldon_pod(ns, POD, "iris", silent_node))
    write_pod_status(cluster, ns, POD, status)

    failing = wait_reason(cluster, ns, "ModelLoadFailed")
    assert (
        failing["message"] == f"container iris of pod {POD} cannot load the model: OOMKilled: exit code 137"
    )
    settled(operator)
    # Asked once: the apiserver could not reach a kubelet, and the exit code is what the status says.
    assert output_reads(cluster, ns) - reads_before == 1
    said = [line for line in operator.log().splitlines()[log_lines_before:] if ns in line or POD in line]
    assert not [line for line in said if any(word in line for word in ("WARNING", "ERROR", "Traceback"))]

    # Deleting the pod (it lingers, being deleted, as no kubelet confirms it) clears the problem.
    cluster.kubectl("delete", "pod", POD, "-n", ns, "--wait=false")
    wait_reason(cluster, ns, "Creating")


def test_only_seldons_pods_are_listed_and_watched(cluster: LocalCluster, operator: OperatorProcess) -> None:
    requests = [
        event
        for event in cluster.audit_events()
        if event["objectRef"].get("resource") == "pods"
        and event["verb"] in ("list", "watch")
        and event["userAgent"].startswith("zenmodel-operator/")
    ]
    assert {event["verb"] for event in requests} == {"list", "watch"}
    selectors = {
        parse_qs(urlsplit(event["requestURI"]).query).get("labelSelector", [""])[0] for event in requests
    }
    assert selectors == {"seldon-deployment-id"}
