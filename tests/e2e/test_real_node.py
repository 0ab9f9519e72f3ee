"""The operator's own image, installed by its Helm chart, running as pods on a real kubelet.

The control plane of the other e2e tests plus a real node (support.realnode: containerd, runc, a bridge
CNI, the kubelet, kube-proxy). The image is the one `make image` builds, imported into the node's
containerd (nothing is pulled: pullPolicy Never). The release runs in a namespace that enforces the
`restricted` Pod Security Standard, pinned to the real node; Seldon's model pods stay on kwok's node.

The tests run in order against one release: it comes up, reconciles, loses its leader's pod, survives
SIGTERM, is upgraded, and meets a drain. The chart's own leader-election defaults are used (lease 15 s).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from support.election import WRITE_VERBS, audit_now, lease_history, seconds_between
from support.helmchart import CHART, helm, helm_env, set_flags
from support.image import built_image, inspect
from support.image import unavailable_reason as image_unavailable
from support.localcluster import LocalCluster
from support.measures import rss_kib
from support.objects import apply, fresh_namespace, s3_secret, wait_state, zmd
from support.realnode import CGROUP_ROOT, FIGURES, REAL_NODE, REAL_NODE_TAINT
from support.realnode import unavailable_reason as node_unavailable
from support.waiting import wait_for

reason = node_unavailable() or image_unavailable()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(reason is not None, reason=reason or "")]

RELEASE = "rn"
FULLNAME = f"{RELEASE}-zenmodel-operator"
SERVICE_ACCOUNT_USER = "system:serviceaccount:{namespace}:" + FULLNAME
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
LEASE_SECONDS = 15  # the chart's default leaderElection.leaseDuration
GRACE_SECONDS = 30  # the pod's terminationGracePeriodSeconds (Kubernetes' default; the chart sets none)
READY_TIMEOUT = 120.0
METRICS_PORT = 8080  # the chart's default metrics.port
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    image = built_image()
    FIGURES["image size (MB)"] = inspect(image)["Size"] / 1e6
    local = LocalCluster(tmp_path_factory.mktemp("real-node-cluster"))
    started = time.monotonic()
    local.start(local.crds, scheduler=True, fake_node=True, seldon=True, real_node=True, timeout=300)
    FIGURES["control plane + real node up (s)"] = time.monotonic() - started
    assert local.real_node is not None
    started = time.monotonic()
    local.real_node.import_from_podman(image)
    FIGURES["image import into containerd (s)"] = time.monotonic() - started
    try:
        yield local
    finally:
        local.stop()
        assert local.host_differences == [], "the real node left the host changed"


@pytest.fixture(scope="module")
def operator_namespace(node_cluster: LocalCluster) -> Iterator[str]:
    with fresh_namespace(node_cluster, "operator", labels=RESTRICTED) as name:
        yield name


@pytest.fixture(scope="module")
def model_namespace(node_cluster: LocalCluster) -> Iterator[str]:
    with fresh_namespace(node_cluster, "rn") as name:
        yield name


@pytest.fixture(scope="module")
def helm_environment(node_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return helm_env(node_cluster, tmp_path_factory.mktemp("helm"))


def release_values(tag: str) -> dict[str, Any]:
    repository, _ = built_image().rsplit(":", 1)
    return {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": REAL_NODE},
        "tolerations": [{**REAL_NODE_TAINT, "operator": "Equal"}],
        "watchNamespaces": ["rn-*"],
        # LocalCluster installed the CRD already.
        "crds.install": False,
    }


@pytest.fixture(scope="module")
def release(
    node_cluster: LocalCluster, operator_namespace: str, helm_environment: dict[str, str]
) -> Iterator[str]:
    """The chart installed with the local image; yields its namespace once both replicas are Ready."""
    started = time.monotonic()
    helm(
        "install", RELEASE, str(CHART), "--namespace", operator_namespace,
        *set_flags(release_values(built_image().rsplit(":", 1)[1])), env=helm_environment,
    )  # fmt: skip
    wait_for(
        lambda: len(ready_pods(node_cluster, operator_namespace)) == 2,
        READY_TIMEOUT,
        f"both replicas Ready; pods: {describe_pods(node_cluster, operator_namespace)}",
        interval=0.5,
    )
    FIGURES["helm install -> both replicas Ready (s)"] = time.monotonic() - started
    try:
        yield operator_namespace
    finally:
        helm("uninstall", RELEASE, "--namespace", operator_namespace, env=helm_environment, check=False)


# ----------------------------------------------------------------------------------------------- helpers


def pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.get_json(f"/api/v1/namespaces/{namespace}/pods?labelSelector={SELECTOR}")
    assert found is not None
    return [pod for pod in found["items"] if not pod["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    return [pod for pod in pods(cluster, namespace) if is_ready(pod)]


def describe_pods(cluster: LocalCluster, namespace: str) -> str:
    return json.dumps(
        [
            {
                "name": pod["metadata"]["name"],
                "node": pod["spec"].get("nodeName"),
                "phase": pod["status"].get("phase"),
                "containers": pod["status"].get("containerStatuses"),
            }
            for pod in pods(cluster, namespace)
        ]
    )[:4000]


def timestamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def http_get(address: str, port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def operator_metrics(pod: dict[str, Any]) -> str:
    """The pod's /metrics, straight from its IP (the host routes the pod network through the bridge)."""
    return http_get(pod["status"]["podIP"], METRICS_PORT, "/metrics")


def is_leader(pod: dict[str, Any]) -> bool:
    try:
        return any(line == "zenmodel_leader 1.0" for line in operator_metrics(pod).splitlines())
    except OSError:
        return False


def leaders(cluster: LocalCluster, namespace: str) -> list[str]:
    return [pod["metadata"]["name"] for pod in ready_pods(cluster, namespace) if is_leader(pod)]


def kubelet_probe_metrics(cluster: LocalCluster) -> str:
    """The real kubelet's prober metrics (its /metrics/probes), through the API server's node proxy."""
    return cluster.kubectl("get", "--raw", f"/api/v1/nodes/{REAL_NODE}/proxy/metrics/probes").stdout


def successful_probes(cluster: LocalCluster, pod: str, probe_type: str) -> float:
    total = 0.0
    for line in kubelet_probe_metrics(cluster).splitlines():
        wanted = (f'pod="{pod}"', f'probe_type="{probe_type}"', 'result="successful"')
        if line.startswith("prober_probe_total{") and all(label in line for label in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def writes_by_the_operator(cluster: LocalCluster, namespace: str, since: str) -> list[dict[str, Any]]:
    user = SERVICE_ACCOUNT_USER.format(namespace=namespace)
    return [
        event
        for event in cluster.audit_events()
        if event["user"]["username"] == user
        and event["verb"] in WRITE_VERBS
        and event["requestReceivedTimestamp"] >= since
        and event["responseStatus"]["code"] < 300
    ]


def leadership_gaps(cluster: LocalCluster, namespace: str, since: str) -> list[float]:
    """Seconds between one holder's last Lease write and the next holder's first: how long no replica
    led (or might have) while the Lease passed on."""
    history = lease_history(cluster, namespace, FULLNAME, since)
    gaps = []
    for index in range(1, len(history)):
        if history[index].holder and history[index].holder != history[index - 1].holder:
            previous = max(
                (w for w in history[:index] if w.holder and w.holder != history[index].holder),
                key=lambda w: w.at,
                default=None,
            )
            if previous is not None:
                gaps.append(seconds_between(previous.at, history[index].at))
    return gaps


def operator_rss_kib() -> dict[int, int]:
    """The operator's processes in the real node's pods (found by their cgroup), by pid: their RSS."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"/{CGROUP_ROOT}/" in cgroups and b"zenmodel-operator" in command:
            found[int(entry.name)] = rss_kib(int(entry.name))
    return found


# ----------------------------------------------------------------------------------------------- tests


def test_both_replicas_run_ready_on_the_real_node_under_restricted(
    node_cluster: LocalCluster, release: str
) -> None:
    running = ready_pods(node_cluster, release)
    assert [pod["spec"]["nodeName"] for pod in running] == [REAL_NODE, REAL_NODE]
    for pod in running:
        (container,) = pod["status"]["containerStatuses"]
        assert container["restartCount"] == 0, describe_pods(node_cluster, release)
        assert container["image"].endswith(built_image().split("/", 1)[1])
        ready_at = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
        started_at = container["state"]["running"]["startedAt"]
        FIGURES.setdefault("container start -> Ready (s)", 0.0)
        FIGURES["container start -> Ready (s)"] = max(
            FIGURES["container start -> Ready (s)"],
            (timestamp(ready_at) - timestamp(started_at)).total_seconds(),
        )
        FIGURES["pod created -> Ready (s)"] = max(
            FIGURES.get("pod created -> Ready (s)", 0.0),
            (timestamp(ready_at) - timestamp(pod["metadata"]["creationTimestamp"])).total_seconds(),
        )
    # The namespace enforces `restricted` for real: a pod that breaks it is refused there.
    privileged = node_cluster.kubectl(
        "run", "breaks-restricted", "-n", release, "--image=localhost/none", "--dry-run=server",
        "--overrides", json.dumps({"spec": {"containers": [{
            "name": "breaks-restricted", "image": "localhost/none", "securityContext": {"privileged": True},
        }]}}),
        check=False,
    )  # fmt: skip
    assert privileged.returncode != 0 and "violates PodSecurity" in privileged.stderr, privileged.stderr


def test_the_kubelet_probes_are_answered(node_cluster: LocalCluster, release: str) -> None:
    names = [pod["metadata"]["name"] for pod in ready_pods(node_cluster, release)]
    # The liveness probe first runs 10 s after the container starts (initialDelaySeconds).
    wait_for(
        lambda: all(successful_probes(node_cluster, name, "Liveness") >= 1 for name in names),
        60,
        "the kubelet counted no successful liveness probe of each pod",
        interval=1.0,
    )
    assert all(successful_probes(node_cluster, name, "Readiness") >= 1 for name in names)


def test_one_leader_and_metrics_through_the_service(node_cluster: LocalCluster, release: str) -> None:
    wait_for(lambda: len(leaders(node_cluster, release)) == 1, 60, "one leader among the replicas")
    service = node_cluster.get_json(f"/api/v1/namespaces/{release}/services/{FULLNAME}-metrics")
    assert service is not None
    # From the host to the Service's ClusterIP: kube-proxy's rules send it to one of the pods.
    body = http_get(service["spec"]["clusterIP"], METRICS_PORT, "/metrics")
    assert "zenmodel_leader " in body


def test_a_model_becomes_available_reconciled_by_the_pod(
    node_cluster: LocalCluster, release: str, model_namespace: str
) -> None:
    since = audit_now()
    apply(node_cluster, s3_secret(model_namespace), zmd("iris", model_namespace))
    wait_state(node_cluster, model_namespace, "iris", "Available", timeout=120)
    created = {
        event["objectRef"]["resource"]
        for event in writes_by_the_operator(node_cluster, release, since)
        if event["verb"] == "create" and event["objectRef"].get("namespace") == model_namespace
    }
    assert {"seldondeployments", "secrets"} <= created, created


def test_the_standby_takes_over_when_the_leaders_pod_is_deleted(
    node_cluster: LocalCluster, release: str, model_namespace: str
) -> None:
    (leader,) = leaders(node_cluster, release)
    since = audit_now()
    before = writes_by_the_operator(node_cluster, release, "")
    deleted = time.monotonic()
    node_cluster.kubectl("delete", "pod", leader, "-n", release, "--wait=false")
    wait_for(
        lambda: any(name != leader for name in leaders(node_cluster, release)),
        LEASE_SECONDS + 30,
        "the standby never led",
        interval=0.2,
    )
    FIGURES["leader pod deleted -> standby leads (s)"] = time.monotonic() - deleted
    # SIGTERM: the deleted pod's operator exits well inside its grace period (not killed at its end).
    wait_for(
        lambda: node_cluster.get_json(f"/api/v1/namespaces/{release}/pods/{leader}") is None,
        GRACE_SECONDS + 15,
        "the deleted pod never went",
        interval=0.2,
    )
    FIGURES["leader pod deleted -> gone (SIGTERM exit) (s)"] = gone = time.monotonic() - deleted
    assert gone < GRACE_SECONDS * 0.8, f"the pod took {gone:.1f}s of its {GRACE_SECONDS}s grace"
    # The model stays Available, and the new leader did not make anything a second time.
    wait_state(node_cluster, model_namespace, "iris", "Available", timeout=60)
    wait_for(lambda: len(ready_pods(node_cluster, release)) == 2, READY_TIMEOUT, "a new standby")
    everything = [*before, *writes_by_the_operator(node_cluster, release, since)]
    creates = [
        (event["objectRef"]["resource"], event["objectRef"].get("name"))
        for event in everything
        if event["verb"] == "create" and event["objectRef"].get("namespace") == model_namespace
    ]
    assert len(creates) == len(set(creates)), f"created twice: {creates}"
    assert ("seldondeployments", "iris") in creates


def test_helm_upgrade_rolls_with_no_leadership_gap_longer_than_the_lease(
    node_cluster: LocalCluster, release: str, helm_environment: dict[str, str]
) -> None:
    assert node_cluster.real_node is not None
    old = {pod["metadata"]["name"] for pod in pods(node_cluster, release)}
    new_tag = built_image().rsplit(":", 1)[1] + "-upgrade"
    node_cluster.real_node.import_from_podman(
        built_image(), tag=f"{built_image().rsplit(':', 1)[0]}:{new_tag}"
    )
    since = audit_now()
    started = time.monotonic()
    helm(
        "upgrade", RELEASE, str(CHART), "--namespace", release, "--reuse-values",
        *set_flags({"image.tag": new_tag}), env=helm_environment,
    )  # fmt: skip

    def rolled() -> bool:
        current = pods(node_cluster, release)
        names = {pod["metadata"]["name"] for pod in current}
        return not (names & old) and len([p for p in current if is_ready(p)]) == 2

    wait_for(rolled, READY_TIMEOUT * 2, f"the rollout: {describe_pods(node_cluster, release)}", interval=0.5)
    wait_for(lambda: len(leaders(node_cluster, release)) == 1, 60, "one leader after the upgrade")
    FIGURES["helm upgrade -> rolled (s)"] = time.monotonic() - started
    gaps = leadership_gaps(node_cluster, release, since)
    assert gaps, "the leadership never moved to a new pod"
    FIGURES["helm upgrade: longest leadership gap (s)"] = max(gaps)
    assert max(gaps) <= LEASE_SECONDS, gaps


def test_drain_meets_the_pod_disruption_budget(node_cluster: LocalCluster, release: str) -> None:
    """One real node holds both replicas: a drain may evict one of them, never the second while the
    first's replacement cannot run anywhere (minAvailable: 1)."""
    started = time.monotonic()
    drain = subprocess.run(
        [
            str(node_cluster.tools_dir / "kubectl"), f"--kubeconfig={node_cluster.kubeconfig}", "drain", REAL_NODE,
            "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s", f"--pod-selector={SELECTOR}",
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    FIGURES["kubectl drain (1 node, PDB minAvailable 1): gave up after (s)"] = time.monotonic() - started
    try:
        assert drain.returncode != 0, drain.stdout
        assert "disruption budget" in drain.stderr, drain.stderr
        remaining = ready_pods(node_cluster, release)
        assert len(remaining) == 1, describe_pods(node_cluster, release)
        wait_for(
            lambda: len(leaders(node_cluster, release)) == 1, LEASE_SECONDS + 30, "a leader during the drain"
        )
    finally:
        node_cluster.kubectl("uncordon", REAL_NODE)
    wait_for(lambda: len(ready_pods(node_cluster, release)) == 2, READY_TIMEOUT, "both replicas back")


def test_memory_of_the_node_and_the_operator(node_cluster: LocalCluster, release: str) -> None:
    assert node_cluster.real_node is not None
    for part, pid in node_cluster.real_node.pids().items():
        FIGURES[f"RSS {part} (MiB)"] = rss_kib(pid) / 1024
    operators = operator_rss_kib()
    assert len(operators) == 2, operators
    FIGURES["RSS operator pod, max of 2 (MiB)"] = max(operators.values()) / 1024
