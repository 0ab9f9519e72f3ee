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
    GC_TIMEOUT,
    SECONDS_TO_COLLECT,
    TIMEOUT,
    apply_until_available,
    get,
    must_get,
    s3_secret,
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
