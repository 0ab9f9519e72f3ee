"""Reading, writing and waiting on objects through the real kubectl: what the end-to-end tests share."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from support.localcluster import LocalCluster
from support.waiting import wait_for


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


def exists(cluster: LocalCluster, kind: str, name: str, namespace: str | None = None) -> bool:
    scope = ["-n", namespace] if namespace else []
    result = cluster.kubectl("get", kind, name, *scope, "-o", "name", "--ignore-not-found")
    return bool(result.stdout.strip())


def apply(cluster: LocalCluster, *docs: dict[str, Any]) -> None:
    """`kubectl apply` as a person runs it (client-side, kubectl's own field manager)."""
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def server_side_apply(cluster: LocalCluster, *docs: dict[str, Any], manager: str = "e2e") -> None:
    """`kubectl apply --server-side` under field manager `manager`, as another controller would write."""
    cluster.kubectl(
        "apply", "--server-side", f"--field-manager={manager}", "-f", "-", input=yaml.safe_dump_all(docs)
    )


def patch_seldon_status(cluster: LocalCluster, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Plays Seldon Core's controller, which alone writes a SeldonDeployment's status: only in a namespace
    labelled SELDON_SKIPS (or on a cluster without Seldon), else the real controller overwrites it."""
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


def events(
    cluster: LocalCluster, namespace: str, name: str, kind: str = "ZenModelDeployment"
) -> list[dict[str, Any]]:
    """The Events of the `kind` object `name` (Seldon's controller records its own on the SeldonDeployment
    of the same name), oldest first. The API lists them by name (random here), and timestamps have
    one-second resolution, so they are ordered by resourceVersion: our single etcd's revision."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    result = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json")
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


# The image seldon-config names for Seldon v1.19's rclone storage initializer (the init container that fetches
# the model with our rclone Secret).
STORAGE_INITIALIZER_IMAGE = "seldonio/rclone-storage-initializer:1.19.0"
OPT_IN = {"zenml.io/model-credentials": "true"}


def storage_initializer(pod: dict[str, Any]) -> dict[str, Any]:
    """The storage initializer Seldon injected into a pod spec it generated: the init container that fetches
    the model."""
    containers = pod.get("initContainers") or []
    found = [c for c in containers if c["image"] == STORAGE_INITIALIZER_IMAGE]
    assert len(found) == 1, f"not one {STORAGE_INITIALIZER_IMAGE} among {containers}"
    return dict(found[0])


def secret(
    namespace: str, name: str, data: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A credentials Secret with `data` as stringData, opted in unless `labels` says otherwise."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": OPT_IN if labels is None else labels},
        "stringData": data,
    }


def s3_secret(namespace: str, secret_key: str = "e2e-secret-key", name: str = "s3-creds") -> dict[str, Any]:
    return secret(
        namespace, name, {"AWS_ACCESS_KEY_ID": "e2e-access-key", "AWS_SECRET_ACCESS_KEY": secret_key}
    )


def decoded(obj: dict[str, Any]) -> dict[str, str]:
    """A Secret's data, base64-decoded."""
    return {key: base64.b64decode(value).decode() for key, value in (obj.get("data") or {}).items()}


def set_s3_secret_key(cluster: LocalCluster, namespace: str, key: str) -> None:
    """Sets the secret key in `s3-creds`, as a person would (kubectl patch)."""
    cluster.kubectl(
        "patch",
        "secret",
        "s3-creds",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"AWS_SECRET_ACCESS_KEY": key}}),
    )


def rotate_s3_secret_key(
    cluster: LocalCluster, namespace: str, key: str, parent: str = "iris", timeout: float = 30.0
) -> None:
    """Rotates the secret key in `s3-creds` and waits until the operator has written it into `parent`'s
    rclone Secret."""
    set_s3_secret_key(cluster, namespace, key)
    wait_for(
        lambda: (
            decoded(must_get(cluster, "secret", namespace, f"{parent}-rclone")).get(
                "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"
            )
            == key
        ),
        timeout,
        "the rotated key never reached the rclone Secret",
    )


TIMEOUT = 30.0


def status_of(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    return dict((get(cluster, "zmd", namespace, name) or {}).get("status") or {})


# The states in which the operator has written both children: Seldon's rollout on kwok's fake Node can
# reach Available before a poll ever sees Creating.
CHILDREN_WRITTEN = ("Creating", "Available")


def wait_state(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    state: str | tuple[str, ...],
    generation: int = 1,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """Waits until the ZenModelDeployment reports `state` (or one of them) for `generation`; returns it as
    read then (a second read could already show the next state, e.g. Seldon's rollout that a rotation
    starts)."""

    states = (state,) if isinstance(state, str) else state
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.clear()
        seen.update(get(cluster, "zmd", namespace, name) or {})
        status = seen.get("status") or {}
        return status.get("state") in states and status.get("observedGeneration") == generation

    try:
        wait_for(
            reached, timeout, f"{namespace}/{name} never reached state {state} at generation {generation}"
        )
    except AssertionError as exc:
        seldon = (get(cluster, "seldondeployment", namespace, name) or {}).get("status")
        workloads = cluster.kubectl(
            "get", "deployments,replicasets,pods", "-n", namespace, "-o", "wide", check=False
        ).stdout
        raise AssertionError(
            f"{exc}\nlast status: {json.dumps(seen.get('status'))}\nSeldon's status: {json.dumps(seldon)}\n{workloads}"
        ) from None
    return seen


# Seldon Core's cluster-wide controller skips every SeldonDeployment in a namespace that carries this
# label (it means "another Seldon controller serves this namespace"): there the tests write Seldon's status.
SELDON_SKIPS = {"seldon.io/controller-id": "played-by-the-tests"}


@contextmanager
def fresh_namespace(
    cluster: LocalCluster, prefix: str, labels: dict[str, str] | None = None
) -> Iterator[str]:
    """A new namespace `<prefix>-<random>` with `labels`; deleted (without waiting) afterwards. The prefix
    chooses which operator serves it: the session operator watches e2e-*, other tests run their own."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(namespace))
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


AVAILABLE_TIMEOUT = 60.0  # scheduling, kwok's fake kubelet and Seldon's own reconciles
# Seconds from `kubectl apply` of a ZenModelDeployment to its Available state, per test: the e2e session
# reports their median and maximum.
SECONDS_TO_AVAILABLE: list[float] = []
# Seconds from deleting a ZenModelDeployment until the garbage collector took its children and Seldon's.
SECONDS_TO_COLLECT: list[float] = []


def apply_until_available(
    cluster: LocalCluster, *docs: dict[str, Any], generation: int = 1
) -> dict[str, Any]:
    """Applies `docs` (the last one a ZenModelDeployment), waits until Seldon's controller has made it
    Available, records how long that took, and returns the parent."""
    parent = docs[-1]
    started = time.monotonic()
    apply(cluster, *docs)
    available = wait_state(
        cluster,
        parent["metadata"]["namespace"],
        parent["metadata"]["name"],
        "Available",
        generation=generation,
        timeout=AVAILABLE_TIMEOUT,
    )
    SECONDS_TO_AVAILABLE.append(time.monotonic() - started)
    return available


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


def scale_seldon_deployment_by_hand(cluster: LocalCluster, namespace: str, name: str, replicas: int) -> None:
    """Drift as a person makes it: the main predictor's replicas edited on our SeldonDeployment."""
    cluster.kubectl(
        "patch",
        "seldondeployment",
        name,
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/predictors/0/replicas", "value": replicas}]),
    )
