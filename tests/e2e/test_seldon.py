"""Seldon Core's own controller in the loop: what we render, Seldon accepts and rolls out.

The session control plane runs kube-scheduler, kwok (a fake Node whose pods turn Running and Ready) and
Seldon Core's v1 controller manager, so every state here is Seldon's own: nothing writes its status by hand.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from support.localcluster import LocalCluster
from support.objects import (
    AVAILABLE_TIMEOUT,
    GC_TIMEOUT,
    SECONDS_TO_COLLECT,
    TIMEOUT,
    apply,
    apply_until_available,
    get,
    must_get,
    s3_secret,
    status_of,
    storage_initializer,
    wait_state,
    zmd,
)
from support.waiting import wait_for
from zenmodel_operator.api.spec import (
    PROTOCOLS_BY_IMPLEMENTATION,
    Implementation,
    Protocol,
    ZenModelDeploymentSpec,
)
from zenmodel_operator.core.status import internal_url

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]

CUSTOM_IMAGE = "registry.example.com/iris-server:1.0"


def seldon_workloads(cluster: LocalCluster, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
    """The objects of `kind` Seldon's controller made for SeldonDeployment `name` (by its own label)."""
    out = cluster.kubectl("get", kind, "-n", namespace, "-l", f"seldon-deployment-id={name}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def model_deployment(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    """The one Deployment Seldon generated for the model's predictor."""
    (deployment,) = seldon_workloads(cluster, "deployments", namespace, name)
    return deployment


def init_container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The storage initializer Seldon injected into its Deployment's pod template (named after the
    container it serves: the model's, or tfserving's for TENSORFLOW_SERVER with the seldon protocol)."""
    return storage_initializer(deployment["spec"]["template"]["spec"])


CASES = [
    (impl, protocol) for impl, protocols in PROTOCOLS_BY_IMPLEMENTATION.items() for protocol in protocols
]


@pytest.mark.parametrize(
    ("implementation", "protocol"), CASES, ids=[f"{i.value}-{p.value}" for i, p in CASES]
)
def test_seldon_makes_each_server_and_protocol_available(
    cluster: LocalCluster, namespace: str, implementation: Implementation, protocol: Protocol
) -> None:
    doc = zmd("iris", namespace)
    doc["spec"]["model"].update({"implementation": implementation.value, "protocol": protocol.value})
    if implementation is Implementation.CUSTOM:
        doc["spec"]["custom"] = {"image": CUSTOM_IMAGE}
    parent = apply_until_available(cluster, s3_secret(namespace), doc)

    sdep = must_get(cluster, "seldondeployment", namespace, "iris")
    assert sdep["status"]["state"] == "Available"
    expected = internal_url(namespace, "iris", ZenModelDeploymentSpec.model_validate(doc["spec"]))
    assert sdep["status"]["address"]["url"] == expected  # Seldon's own address is the URL we predict
    assert parent["status"]["internalURL"] == expected
    deployment = model_deployment(cluster, namespace, "iris")
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("SeldonDeployment", sdep["metadata"]["uid"])
    assert deployment["status"]["availableReplicas"] == 1
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    if implementation is Implementation.CUSTOM:
        assert images["iris"] == CUSTOM_IMAGE
    initializer = init_container(deployment)
    assert initializer["args"] == [sdep["spec"]["predictors"][0]["graph"]["modelUri"], "/mnt/models"]
    assert initializer["envFrom"] == [{"secretRef": {"name": "iris-rclone"}}]


def test_an_update_rolls_the_same_seldon_deployment_and_deployment(
    cluster: LocalCluster, namespace: str
) -> None:
    before = apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    sdep_before = must_get(cluster, "seldondeployment", namespace, "iris")
    deployment_before = model_deployment(cluster, namespace, "iris")

    apply_until_available(
        cluster, zmd("iris", namespace, uri="s3://models/iris/v4", replicas=2), generation=2
    )

    def rolled() -> bool:
        deployment = model_deployment(cluster, namespace, "iris")
        status = deployment.get("status") or {}
        return (
            deployment["spec"]["replicas"] == 2
            and "iris/v4" in init_container(deployment)["args"][0]
            and status.get("updatedReplicas") == 2
            and status.get("availableReplicas") == 2
            and status.get("replicas") == 2  # the old pod is gone
        )

    wait_for(rolled, TIMEOUT, "Seldon's Deployment never rolled to the new model URI and two replicas")
    after = wait_state(cluster, namespace, "iris", "Available", generation=2)
    wait_for(
        lambda: (
            (get(cluster, "zmd", namespace, "iris") or {}).get("status", {}).get("availableReplicas") == 2
        ),
        TIMEOUT,
        "the two available replicas were never mirrored",
    )
    sdep = must_get(cluster, "seldondeployment", namespace, "iris")
    deployment = model_deployment(cluster, namespace, "iris")
    assert sdep["metadata"]["uid"] == sdep_before["metadata"]["uid"]
    assert deployment["metadata"]["uid"] == deployment_before["metadata"]["uid"]
    assert sdep["status"]["address"]["url"] == sdep_before["status"]["address"]["url"]
    for key in ("internalURL", "predictionURL"):
        assert after["status"][key] == before["status"][key]


def test_delete_lets_the_garbage_collector_take_ours_and_seldons(
    cluster: LocalCluster, namespace: str
) -> None:
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    seldon_kinds = ("deployments", "services", "pods")
    assert all(seldon_workloads(cluster, kind, namespace, "iris") for kind in seldon_kinds)

    started = time.monotonic()
    cluster.kubectl("delete", "zmd", "iris", "-n", namespace, "--wait=false")

    def collected() -> bool:
        return (
            get(cluster, "seldondeployment", namespace, "iris") is None
            and get(cluster, "secret", namespace, "iris-rclone") is None
            and not any(seldon_workloads(cluster, kind, namespace, "iris") for kind in seldon_kinds)
        )

    wait_for(collected, GC_TIMEOUT, "the garbage collector left our children or Seldon's behind")
    SECONDS_TO_COLLECT.append(time.monotonic() - started)
    assert get(cluster, "secret", namespace, "s3-creds") is not None  # the user's own Secret stays


EXECUTOR_CONTAINER = "seldon-container-engine"  # the name Seldon Core v1.19 gives its executor's container


def container_ports(deployment: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Each container of the Deployment's pods, with its ports by name."""
    return {
        c["name"]: {p.get("name", ""): p["containerPort"] for p in c.get("ports") or []}
        for c in deployment["spec"]["template"]["spec"]["containers"]
    }


def http_port(service: dict[str, Any]) -> tuple[int, int]:
    """The Service's HTTP port and the container port it targets."""
    (port,) = (p for p in service["spec"]["ports"] if p["name"] == "http")
    return port["port"], port["targetPort"]


def test_without_the_executor_the_predictors_service_targets_the_model_container(
    cluster: LocalCluster, namespace: str
) -> None:
    canary = {"uri": "s3://models/iris/v4", "trafficPercent": 20}
    doc = zmd("iris", namespace, executor="Disabled", canary=canary)
    doc["spec"]["model"]["protocol"] = "v2"
    parent = apply_until_available(cluster, s3_secret(namespace), doc)

    deployments = seldon_workloads(cluster, "deployments", namespace, "iris")
    assert len(deployments) == 2  # the main predictor's and the canary's
    for deployment in deployments:
        assert list(container_ports(deployment)) == ["iris"]  # the model server alone: no executor
    model_port = container_ports(deployments[0])["iris"]["http"]
    assert model_port == 9000  # Seldon's first model port: MLServer listens there (MLSERVER_HTTP_PORT)
    for predictor in ("default", "canary"):
        service = must_get(cluster, "service", namespace, f"iris-{predictor}")
        assert http_port(service) == (model_port, model_port)
    sdep = must_get(cluster, "seldondeployment", namespace, "iris")
    expected = f"http://iris-default.{namespace}.svc.cluster.local:{model_port}/v2/models/iris/infer"
    assert sdep["status"]["address"]["url"] == expected  # what Seldon itself reports without its executor
    assert parent["status"]["internalURL"] == expected
    assert internal_url(namespace, "iris", ZenModelDeploymentSpec.model_validate(doc["spec"])) == expected

    doc["spec"]["executor"] = "Enabled"
    apply(cluster, doc)
    enabled_url = internal_url(namespace, "iris", ZenModelDeploymentSpec.model_validate(doc["spec"]))
    assert enabled_url == expected.replace(f":{model_port}/", ":8000/")  # the executor's port, same path

    def executor_is_back() -> bool:
        deployments = seldon_workloads(cluster, "deployments", namespace, "iris")
        services = [get(cluster, "service", namespace, f"iris-{p}") for p in ("default", "canary")]
        status = status_of(cluster, namespace, "iris")
        return (
            all(EXECUTOR_CONTAINER in container_ports(d) for d in deployments)
            and all(s is not None and http_port(s) == (8000, 8000) for s in services)
            and status.get("observedGeneration") == 2
            and status.get("state") == "Available"
            and status.get("internalURL") == enabled_url
        )

    wait_for(executor_is_back, AVAILABLE_TIMEOUT, "switching back to Enabled never restored the executor")
    assert must_get(cluster, "seldondeployment", namespace, "iris")["status"]["address"]["url"] == enabled_url
