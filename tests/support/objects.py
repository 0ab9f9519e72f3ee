"""Reading and writing objects through the real kubectl, for the end-to-end tests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from localcluster import LocalCluster
from waiting import wait_for


def get(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else None


def must_get(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    obj = get(cluster, kind, namespace, name)
    assert obj is not None, f"{kind} {namespace}/{name} not found"
    return obj


def apply(cluster: LocalCluster, *docs: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def patch_seldon_status(cluster: LocalCluster, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Plays Seldon Core's controller: it alone writes a SeldonDeployment's status."""
    cluster.kubectl(
        "patch",
        "seldondeployment",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return {}


def events(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The object's Events, oldest first. The API lists them by name (random here), and timestamps have
    one-second resolution, so they are ordered by resourceVersion: our single etcd's revision."""
    result = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    return sorted(json.loads(result.stdout)["items"], key=lambda e: int(e["metadata"]["resourceVersion"]))


def zmd(name: str, namespace: str, uri: str = "s3://models/iris/v3", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "iris", "uri": uri, "implementation": "SKLEARN_SERVER"},
            "credentials": {"secretRef": {"name": "s3-creds"}, "s3": {"region": "eu-west-1"}},
            **spec,
        },
    }


def s3_secret(namespace: str, secret_key: str = "e2e-secret-key", name: str = "s3-creds") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"zenml.io/model-credentials": "true"}},
        "stringData": {"AWS_ACCESS_KEY_ID": "e2e-access-key", "AWS_SECRET_ACCESS_KEY": secret_key},
    }


@contextmanager
def fresh_namespace(cluster: LocalCluster, prefix: str) -> Iterator[str]:
    """A new namespace `<prefix>-<random>`; deleted (without waiting) afterwards. The prefix chooses
    which operator serves it: the session operator watches e2e-*, other tests run their own."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


GC_TIMEOUT = 120.0  # kube-controller-manager's garbage collector works through its own queue


def delete_and_wait_for_garbage_collection(cluster: LocalCluster, namespace: str, name: str) -> None:
    """Deletes a ZenModelDeployment and waits for the real garbage collector to take both children."""
    cluster.kubectl("delete", "zmd", name, "-n", namespace)
    wait_for(
        lambda: get(cluster, "seldondeployment", namespace, name) is None,
        GC_TIMEOUT,
        "the SeldonDeployment outlived its parent",
    )
    wait_for(
        lambda: get(cluster, "secret", namespace, f"{name}-rclone") is None,
        GC_TIMEOUT,
        "the rclone Secret outlived its parent",
    )
