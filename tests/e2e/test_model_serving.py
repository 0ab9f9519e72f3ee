"""Models that answer: Seldon's pods run on the real node, fetch the model with the operator's rclone
Secret, load it in MLServer and return predictions through Seldon's own address.

The control plane of the other e2e tests, Seldon's real controller, and a real node (support.realnode)
whose containerd holds the images Seldon's pod spec names, built here (`make seldon-images`). The models
are trained in the test, inside the MLServer image (so the pickle matches its scikit-learn), and served
from moto's S3 listening on the node's host address, which pods reach through their gateway. The operator
runs as a process on the host. Requests go to the predictor Service's ClusterIP: kube-proxy, on this
host, rewrites them to the pod.

The tests run in order against one model: it answers, a new model.uri rolls it, a rotated key rolls it,
and another model with a wrong key fails its fetch for real.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from support import iris
from support.localcluster import LocalCluster
from support.objects import apply, condition, decoded, events, fresh_namespace, must_get, secret, wait_state
from support.objectstores import BUCKET, S3, azurite_blob, azurite_connection_string, moto_s3
from support.operator_process import OperatorProcess
from support.realnode import API_ADDRESS, FIGURES, REAL_NODE
from support.realnode import unavailable_reason as node_unavailable
from support.seldon_images import SKLEARN_V2_SERVER, built_seldon_images
from support.serving import MODEL_NAME, serving_zmd, wait_for_classes
from support.waiting import wait_for
from zenmodel_operator.core.credentials import AZURE_EMULATOR_KEY

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(node_unavailable() is not None, reason=node_unavailable() or ""),
]

NAME = "iris"
FIRST, SECOND = "iris/v1", "iris/v2"
CORRUPT = "iris/corrupt"  # the first half of a good model.joblib
# Apply to first prediction: scheduling, the fetch, MLServer's start (its readiness probe polls every 5 s).
SERVE_TIMEOUT = 180.0
ROLL_TIMEOUT = 180.0
FAIL_TIMEOUT = 120.0
# Seconds from `kubectl apply` to the first right answer, per model applied here.
SECONDS_TO_PREDICTION: list[float] = []
CANARY = "canary-9f2c1e7d-secret-value"  # a secret key that must never be seen outside the Secrets


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("serving-cluster"))
    local.start(
        local.crds,
        scheduler=True,
        fake_node=True,
        seldon=True,
        real_node=True,
        real_node_images=list(built_seldon_images().values()),
        timeout=300,
    )
    assert local.real_node is not None
    try:
        local.real_node.wait_for_images()
        yield local
    finally:
        if SECONDS_TO_PREDICTION:
            FIGURES["apply to first prediction, p50 (s)"] = statistics.median(SECONDS_TO_PREDICTION)
            FIGURES["apply to first prediction, max (s)"] = max(SECONDS_TO_PREDICTION)
        local.stop()
        assert local.host_differences == [], "the real node left the host changed"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 on the node's host address, holding two models that answer differently."""
    models = tmp_path_factory.mktemp("models")
    server = built_seldon_images()[SKLEARN_V2_SERVER]
    objects = {
        f"{path}/{iris.MODEL_FILE}": iris.train(server, models / path, variant).read_bytes()
        for path, variant in ((FIRST, iris.IRIS), (SECOND, iris.PERMUTED))
    }
    good = objects[f"{FIRST}/{iris.MODEL_FILE}"]
    objects[f"{CORRUPT}/{iris.MODEL_FILE}"] = good[: len(good) // 2]
    with moto_s3(tmp_path_factory.mktemp("moto"), host=API_ADDRESS, objects=objects) as s3:
        yield s3


@pytest.fixture(scope="module")
def operator(
    node_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with OperatorProcess(node_cluster.env(), log, "--namespaces", "serve-*") as process:
        yield process


@pytest.fixture(scope="module")
def namespace(node_cluster: LocalCluster, operator: OperatorProcess, store: S3) -> Iterator[str]:
    """A namespace with `s3-creds`, the store's key in an opted-in Secret (a rotation test changes it)."""
    with fresh_namespace(node_cluster, "serve") as name:
        apply(node_cluster, s3_credentials(name, "s3-creds", store.access_key_id, store.secret_access_key))
        yield name


def s3_credentials(namespace: str, name: str, access_key_id: str, secret_access_key: str) -> dict[str, Any]:
    return secret(
        namespace, name, {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    )


def model_pods(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The pods Seldon made for the model (not being deleted), newest first."""
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"seldon-deployment-id={name}", "-o", "json")
    pods = [p for p in json.loads(out.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]
    return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)


def initializer_status(pod: dict[str, Any]) -> dict[str, Any]:
    (status,) = pod["status"].get("initContainerStatuses") or [{}]
    return dict(status)


def fetch_seconds(cluster: LocalCluster, namespace: str, pod: dict[str, Any]) -> tuple[float, float]:
    """How long the storage initializer took: rclone's own figure for the copy (it prints tenths of a
    second), and the container's start to finish as the kubelet reports it (whole seconds)."""
    container = pod["spec"]["initContainers"][0]["name"]
    log = cluster.kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", container).stdout
    match = re.findall(r"Elapsed time:\s+([0-9.]+)(ms|s)", log)
    assert match, f"rclone reported no elapsed time:\n{log}"
    value, unit = match[-1]
    terminated = initializer_status(pod)["state"]["terminated"]
    started, finished = (datetime.fromisoformat(terminated[key]) for key in ("startedAt", "finishedAt"))
    return float(value) / (1000 if unit == "ms" else 1), (finished - started).total_seconds()


def serve_and_measure(cluster: LocalCluster, *docs: dict[str, Any]) -> None:
    """Applies ``docs`` (the last one the ZenModelDeployment) and waits for the first right answer, recording
    how long it took."""
    parent = docs[-1]
    namespace, name = parent["metadata"]["namespace"], parent["metadata"]["name"]
    started = time.monotonic()
    apply(cluster, *docs)
    wait_for_classes(cluster, namespace, name, iris.SAMPLES, iris.IRIS.expected_classes(), SERVE_TIMEOUT)
    SECONDS_TO_PREDICTION.append(time.monotonic() - started)


# ----------------------------------------------------------------------------------------------- tests


def test_the_model_is_fetched_loaded_and_answers_through_seldons_service(
    node_cluster: LocalCluster, store: S3, namespace: str
) -> None:
    serve_and_measure(node_cluster, serving_zmd(NAME, namespace, f"s3://{BUCKET}/{FIRST}", store.endpoint))

    (pod,) = model_pods(node_cluster, namespace, NAME)
    assert pod["spec"]["nodeName"] == REAL_NODE
    fetched = initializer_status(pod)
    assert fetched["state"]["terminated"]["exitCode"] == 0, fetched
    copy, container = fetch_seconds(node_cluster, namespace, pod)
    FIGURES["storage initializer: rclone's copy of the model, as rclone reports it (s)"] = copy
    FIGURES["storage initializer: the container's start to finish, whole seconds (s)"] = container
    available = wait_state(node_cluster, namespace, NAME, "Available", timeout=SERVE_TIMEOUT)
    assert condition(available, "Ready")["status"] == "True"


def test_a_new_model_uri_rolls_the_pods_and_the_new_model_answers(
    node_cluster: LocalCluster, store: S3, namespace: str
) -> None:
    (before,) = model_pods(node_cluster, namespace, NAME)
    started = time.monotonic()
    apply(node_cluster, serving_zmd(NAME, namespace, f"s3://{BUCKET}/{SECOND}", store.endpoint))

    wait_for_classes(
        node_cluster, namespace, NAME, iris.SAMPLES, iris.PERMUTED.expected_classes(), ROLL_TIMEOUT
    )
    FIGURES["new model.uri: apply to the new model's first answer (s)"] = time.monotonic() - started
    wait_for(
        lambda: (
            [p["metadata"]["uid"] for p in model_pods(node_cluster, namespace, NAME)]
            not in ([], [before["metadata"]["uid"]])
        ),
        ROLL_TIMEOUT,
        "the pods never rolled",
    )


def test_a_rotated_key_rolls_the_pods_and_the_model_still_answers(
    node_cluster: LocalCluster, store: S3, namespace: str
) -> None:
    (before,) = model_pods(node_cluster, namespace, NAME)
    rotated = store.rotate_key()  # the old key reads nothing from now on
    started = time.monotonic()
    apply(
        node_cluster, s3_credentials(namespace, "s3-creds", rotated.access_key_id, rotated.secret_access_key)
    )

    def rolled() -> dict[str, Any] | None:
        pods = model_pods(node_cluster, namespace, NAME)
        fresh = [p for p in pods if p["metadata"]["uid"] != before["metadata"]["uid"]]
        ready = [p for p in fresh if condition(p, "Ready").get("status") == "True"]
        return ready[0] if ready and len(pods) == 1 else None

    wait_for(lambda: rolled() is not None, ROLL_TIMEOUT, "the pods never rolled onto the rotated key")
    FIGURES["key rotation: Secret change to a rolled, ready pod (s)"] = time.monotonic() - started
    pod = rolled()
    assert pod is not None
    # The new pod fetched the model with the new key: the old one no longer exists in IAM.
    assert initializer_status(pod)["state"]["terminated"]["exitCode"] == 0
    wait_for_classes(
        node_cluster, namespace, NAME, iris.SAMPLES, iris.PERMUTED.expected_classes(), ROLL_TIMEOUT
    )


def test_a_wrong_key_fails_the_fetch_for_real_says_so_and_recovers(
    node_cluster: LocalCluster, store: S3, namespace: str, operator: OperatorProcess
) -> None:
    name = "wrong-key"
    access_key_id, secret_access_key = current_key(node_cluster, namespace)
    apply(
        node_cluster,
        s3_credentials(namespace, "wrong-creds", access_key_id, CANARY),
        serving_zmd(name, namespace, f"s3://{BUCKET}/{FIRST}", store.endpoint, secret="wrong-creds"),
    )

    def failed_fetch() -> dict[str, Any] | None:
        for pod in model_pods(node_cluster, namespace, name):
            status = initializer_status(pod)
            terminated = (status.get("lastState") or {}).get("terminated") or (status.get("state") or {}).get(
                "terminated"
            )
            if terminated and terminated["exitCode"] != 0:
                return pod
        return None

    wait_for(lambda: failed_fetch() is not None, FAIL_TIMEOUT, "the storage initializer never failed")
    pod = failed_fetch()
    assert pod is not None
    started = time.monotonic()
    message, warnings = reported_problem(node_cluster, namespace, name, "ModelFetchFailed")
    FIGURES["failed fetch seen to ModelFetchFailed and its Warning Event (s)"] = time.monotonic() - started
    # The init container's name, and rclone's own last word on it: the store refused the key.
    assert pod["spec"]["initContainers"][0]["name"] in message
    assert "Failed to copy: SignatureDoesNotMatch" in message
    seen = json.dumps([must_get(node_cluster, "zmd", namespace, name), warnings]) + operator.log()
    assert CANARY not in seen

    # The right key: the pods roll, the fetch succeeds, the model answers and the condition clears.
    started = time.monotonic()
    apply(node_cluster, s3_credentials(namespace, "wrong-creds", access_key_id, secret_access_key))
    wait_for_classes(node_cluster, namespace, name, iris.SAMPLES, iris.IRIS.expected_classes(), ROLL_TIMEOUT)
    wait_state(node_cluster, namespace, name, "Available", timeout=ROLL_TIMEOUT)
    FIGURES["right key after a wrong one: edit to the model's first answer (s)"] = time.monotonic() - started
    assert condition(must_get(node_cluster, "zmd", namespace, name), "Ready")["status"] == "True"
    node_cluster.kubectl("delete", "zmd", name, "-n", namespace)


def current_key(cluster: LocalCluster, namespace: str) -> tuple[str, str]:
    """The store's key as `s3-creds` holds it now (a rotation test replaces it)."""
    data = decoded(must_get(cluster, "secret", namespace, "s3-creds"))
    return data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"]


def test_a_model_the_server_cannot_load_says_so(
    node_cluster: LocalCluster, store: S3, namespace: str
) -> None:
    name = "corrupt"
    apply(node_cluster, serving_zmd(name, namespace, f"s3://{BUCKET}/{CORRUPT}", store.endpoint))

    message, _ = reported_problem(node_cluster, namespace, name, "ModelLoadFailed")
    # The model's container, and MLServer's own word on the load: above its orderly shutdown's last lines.
    assert f"container {MODEL_NAME} of pod" in message
    assert "ValueError" in message
    assert model_pods(node_cluster, namespace, name)[0]["spec"]["nodeName"] == REAL_NODE
    node_cluster.kubectl("delete", "zmd", name, "-n", namespace)


def reported_problem(
    cluster: LocalCluster, namespace: str, name: str, reason: str
) -> tuple[str, list[dict[str, Any]]]:
    """Waits until the parent's Ready condition gives ``reason`` and a Warning Event says it too; the
    condition's message and the Warning Events."""

    def ready() -> dict[str, Any]:
        return condition(must_get(cluster, "zmd", namespace, name), "Ready")

    def warnings() -> list[dict[str, Any]]:
        return [e for e in events(cluster, namespace, name) if e["type"] == "Warning"]

    wait_for(lambda: ready().get("reason") == reason, FAIL_TIMEOUT, f"{reason} never reported: {ready()}")
    wait_for(lambda: any(e["reason"] == reason for e in warnings()), FAIL_TIMEOUT, f"no {reason} Event")
    return str(ready()["message"]), warnings()


def test_a_model_in_azure_blob_storage_answers_too(
    node_cluster: LocalCluster, store: S3, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Azurite's Blob service on the node's host address, read with a connection string (rclone's emulator
    mode for the development account)."""
    model = iris.train(built_seldon_images()[SKLEARN_V2_SERVER], tmp_path_factory.mktemp("azure-model"))
    objects = {f"{FIRST}/{iris.MODEL_FILE}": model.read_bytes()}
    with azurite_blob(tmp_path_factory.mktemp("azurite"), host=API_ADDRESS, objects=objects) as endpoint:
        credentials = secret(
            namespace,
            "azure-creds",
            {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(endpoint, AZURE_EMULATOR_KEY)},
        )
        model_doc = serving_zmd("azure", namespace, f"az://{BUCKET}/{FIRST}", store.endpoint)
        model_doc["spec"]["credentials"] = {"secretRef": {"name": "azure-creds"}}
        serve_and_measure(node_cluster, credentials, model_doc)
        node_cluster.kubectl("delete", "zmd", "azure", "-n", namespace)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_each_new_model_answers_from_its_own_pod(
    node_cluster: LocalCluster, store: S3, namespace: str, number: int
) -> None:
    """More applies to first prediction, for the figures; each model deleted again, its pod with it."""
    name = f"iris-{number}"
    serve_and_measure(node_cluster, serving_zmd(name, namespace, f"s3://{BUCKET}/{FIRST}", store.endpoint))
    node_cluster.kubectl("delete", "zmd", name, "-n", namespace)
    wait_for(
        lambda: not model_pods(node_cluster, namespace, name), ROLL_TIMEOUT, "its pods were never deleted"
    )
