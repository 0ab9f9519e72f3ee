"""The local control plane is a real one: CRDs are served, the garbage collector collects, RBAC denies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.localcluster import LocalCluster
from support.objects import exists, server_side_apply
from support.waiting import wait_for

pytestmark = pytest.mark.e2e


def seldon_deployment(name: str, namespace: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": metadata,
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "replicas": 1,
                    "graph": {
                        "name": "classifier",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": "gs://seldon-models/v1.16.0/sklearn/iris",
                    },
                }
            ]
        },
    }


def test_seldon_deployment_crd_is_served(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("get", "seldondeployments", "-A")

    server_side_apply(cluster, seldon_deployment("iris", namespace))

    got = json.loads(
        cluster.kubectl(
            "get", "seldondeployment", "iris", "-n", namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert got["spec"]["predictors"][0]["graph"]["implementation"] == "SKLEARN_SERVER"
    managers = {entry["manager"] for entry in got["metadata"]["managedFields"]}
    assert "e2e" in managers


def test_garbage_collector_deletes_owned_seldon_deployment(cluster: LocalCluster, namespace: str) -> None:
    parent = json.loads(
        cluster.kubectl("create", "configmap", "parent", "-n", namespace, "-o", "json").stdout
    )
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "parent",
        "uid": parent["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    server_side_apply(cluster, seldon_deployment("child", namespace, owner))
    assert exists(cluster, "seldondeployment", "child", namespace)

    cluster.kubectl("delete", "configmap", "parent", "-n", namespace)

    wait_for(
        lambda: not exists(cluster, "seldondeployment", "child", namespace),
        timeout=90,
        message="the garbage collector did not delete the SeldonDeployment owned by the deleted ConfigMap",
    )


def test_rbac_denies_service_account_without_bindings(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "bot", "-n", namespace)
    user = f"system:serviceaccount:{namespace}:bot"

    can_i = cluster.kubectl("auth", "can-i", "list", "secrets", "-n", namespace, f"--as={user}", check=False)
    assert can_i.stdout.strip() == "no"

    kubeconfig = cluster.create_service_account_kubeconfig(namespace, "bot", tmp_path / "bot.kubeconfig")
    # The token authenticates (so a denial below is authorization, not a bad credential)...
    whoami = cluster.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    )
    assert whoami.stdout == user
    # ...and RBAC refuses it.
    denied = cluster.kubectl("get", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr, denied.stderr

    # A binding lets the same identity in, so the denial was RBAC and not a blanket refusal.
    cluster.kubectl("create", "role", "secret-reader", "--verb=list", "--resource=secrets", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "bot-reads-secrets", "--role=secret-reader",
        f"--serviceaccount={namespace}:bot", "-n", namespace,
    )  # fmt: skip
    wait_for(
        lambda: (
            cluster.kubectl("get", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False).returncode
            == 0
        ),
        timeout=30,
        message="the RoleBinding did not grant the ServiceAccount list on secrets",
    )


def test_apiserver_metrics(cluster: LocalCluster) -> None:
    assert "apiserver_request_total" in cluster.metrics()
