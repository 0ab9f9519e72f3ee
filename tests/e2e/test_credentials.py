"""Credentials end to end: each store's wiring, rotation, and every failure reason, on the real control plane.

A real operator process watches the namespace; the garbage collector that removes the rclone Secret is
kube-controller-manager's own, and Seldon Core's own controller rolls the SeldonDeployments out (on kwok's
fake Node). Nothing here sleeps: every wait polls with a deadline.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.localcluster import LocalCluster
from support.objects import (
    AVAILABLE_TIMEOUT,
    TIMEOUT,
    apply,
    apply_until_available,
    condition,
    decoded,
    delete_and_wait_for_garbage_collection,
    events,
    get,
    must_get,
    rotate_s3_secret_key,
    s3_secret,
    secret,
    set_s3_secret_key,
    wait_state,
    zmd,
)
from support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]

# A Secret event re-queues its parent at once; a failed credentials check is not retried on a timer
# (the work queue's backoff starts at 0.5 s but reaches minutes), so recovery well inside this deadline
# can only have been driven by the event.
RECOVERY_TIMEOUT = 15.0

HASH_ANNOTATION = "zenml.io/credentials-hash"
INGRESS = "http://ingress.example.com"

# A syntactically valid, entirely fake service-account key (what the renderer checks: JSON, the type,
# client_email and private_key).
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "fake-project",
    "private_key_id": "fake-key-id",
    "private_key": "-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n",
    "client_email": "model-reader@fake-project.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}
SERVICE_ACCOUNT_ONE_LINE = json.dumps(SERVICE_ACCOUNT, separators=(",", ":"))
MALFORMED_SERVICE_ACCOUNT = '{"type": "service_account", "private_key": "fake-private-'


# --- helpers --------------------------------------------------------------------------------------


def parent(name: str, namespace: str, uri: str, credentials: dict[str, Any] | None) -> dict[str, Any]:
    doc = zmd(name, namespace, uri=uri)
    if credentials is None:
        del doc["spec"]["credentials"]
    else:
        doc["spec"]["credentials"] = credentials
    return doc


def set_secret_data(cluster: LocalCluster, namespace: str, name: str, data: dict[str, str]) -> None:
    """Replaces the whole `data` of a Secret (kubectl apply of stringData never removes keys)."""
    value = {key: base64.b64encode(v.encode()).decode() for key, v in data.items()}
    cluster.kubectl(
        "patch",
        "secret",
        name,
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/data", "value": value}]),
    )


def wait_credentials(
    cluster: LocalCluster, namespace: str, name: str, status: str, reason: str, timeout: float = TIMEOUT
) -> dict[str, Any]:
    def reached() -> bool:
        found = condition(get(cluster, "zmd", namespace, name), "CredentialsReady")
        return (found.get("status"), found.get("reason")) == (status, reason)

    wait_for(reached, timeout, f"{namespace}/{name} never reported CredentialsReady={status} ({reason})")
    return must_get(cluster, "zmd", namespace, name)


def wait_warning(cluster: LocalCluster, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def warnings() -> list[dict[str, Any]]:
        return [
            e for e in events(cluster, namespace, name) if e["type"] == "Warning" and e["reason"] == reason
        ]

    wait_for(lambda: bool(warnings()), TIMEOUT, f"no Warning Event {reason} on {namespace}/{name}")
    return warnings()[0]


def assert_owned(child: dict[str, Any], owner: dict[str, Any]) -> None:
    (reference,) = child["metadata"]["ownerReferences"]
    assert reference["uid"] == owner["metadata"]["uid"]
    assert reference["name"] == owner["metadata"]["name"]
    assert reference["kind"] == "ZenModelDeployment"
    assert reference["apiVersion"] == "zenml.io/v1alpha1"
    assert reference["controller"] is True


def graph(sdp: dict[str, Any]) -> dict[str, Any]:
    return dict(sdp["spec"]["predictors"][0]["graph"])


def credentials_hash(sdp: dict[str, Any]) -> str | None:
    component = sdp["spec"]["predictors"][0]["componentSpecs"][0]
    return ((component.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)


# --- 1. each store's wiring, ownership and garbage collection ----------------------------------------


@dataclass(frozen=True)
class Store:
    uri: str
    credentials: dict[str, Any] | None
    secret_data: dict[str, str] | None  # the user's Secret `creds`; None: no Secret at all
    rclone: dict[str, str] | None  # the whole rclone Secret expected; None: none is made
    model_uri: str  # what Seldon's rclone initializer receives
    extra: dict[str, Any] = field(default_factory=dict)


STORES = {
    "s3-aws": Store(
        uri="s3://models/iris/v3",
        credentials={
            "secretRef": {"name": "creds"},
            "s3": {"region": "eu-west-1", "endpoint": "https://s3.eu-west-1.amazonaws.com"},
        },
        secret_data={
            "AWS_ACCESS_KEY_ID": "fake-access-key-id",
            "AWS_SECRET_ACCESS_KEY": "fake-secret-access-key",
            "AWS_SESSION_TOKEN": "fake-session-token",
        },
        rclone={
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "AWS",
            "RCLONE_CONFIG_S3_REGION": "eu-west-1",
            "RCLONE_CONFIG_S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com",
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "fake-access-key-id",
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "fake-secret-access-key",
            "RCLONE_CONFIG_S3_SESSION_TOKEN": "fake-session-token",
        },
        model_uri="s3://models/iris/v3",
    ),
    "s3-minio": Store(
        uri="s3://models/iris/v3",
        credentials={
            "secretRef": {"name": "creds"},
            "s3": {"endpoint": "http://minio.minio:9000", "region": "us-east-1", "provider": "Minio"},
        },
        secret_data={
            "AWS_ACCESS_KEY_ID": "fake-minio-access-key",
            "AWS_SECRET_ACCESS_KEY": "fake-minio-secret",
        },
        rclone={
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "Minio",
            "RCLONE_CONFIG_S3_REGION": "us-east-1",
            "RCLONE_CONFIG_S3_ENDPOINT": "http://minio.minio:9000",
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "fake-minio-access-key",
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "fake-minio-secret",
        },
        model_uri="s3://models/iris/v3",
    ),
    "gcs-service-account": Store(
        uri="gs://models/iris/v3",
        credentials={"secretRef": {"name": "creds"}, "gcs": {"projectNumber": "123456789"}},
        secret_data={"gcloud-application-credentials.json": json.dumps(SERVICE_ACCOUNT, indent=2)},
        rclone={
            "RCLONE_CONFIG_GS_TYPE": "google cloud storage",
            "RCLONE_CONFIG_GS_ANONYMOUS": "false",
            "RCLONE_CONFIG_GS_PROJECT_NUMBER": "123456789",
            "RCLONE_CONFIG_GS_SERVICE_ACCOUNT_CREDENTIALS": SERVICE_ACCOUNT_ONE_LINE,
        },
        model_uri="gs://models/iris/v3",
    ),
    "azure-az-uri": Store(
        uri="az://models/iris/v3",
        credentials={"secretRef": {"name": "creds"}},
        secret_data={"AZURE_STORAGE_ACCOUNT": "fakeaccount", "AZURE_STORAGE_KEY": "ZmFrZS1henVyZS1rZXk="},
        rclone={
            "RCLONE_CONFIG_AZ_TYPE": "azureblob",
            "RCLONE_CONFIG_AZ_ACCOUNT": "fakeaccount",
            "RCLONE_CONFIG_AZ_KEY": "ZmFrZS1henVyZS1rZXk=",
            "RCLONE_CONFIG_AZ_USE_MSI": "false",
        },
        model_uri="az://models/iris/v3",
    ),
    "azure-https-uri": Store(
        # The account comes from the URI; the https:// URI becomes rclone's az://<container>/<path>.
        uri="https://fakeaccount.blob.core.windows.net/models/iris/v3",
        credentials={"secretRef": {"name": "creds"}},
        secret_data={"AZURE_STORAGE_KEY": "ZmFrZS1henVyZS1rZXk="},
        rclone={
            "RCLONE_CONFIG_AZ_TYPE": "azureblob",
            "RCLONE_CONFIG_AZ_ACCOUNT": "fakeaccount",
            "RCLONE_CONFIG_AZ_KEY": "ZmFrZS1henVyZS1rZXk=",
            "RCLONE_CONFIG_AZ_USE_MSI": "false",
        },
        model_uri="az://models/iris/v3",
    ),
    "pvc": Store(
        uri="pvc://model-store/iris/v3",
        credentials=None,
        secret_data=None,
        rclone=None,
        model_uri="pvc://model-store/iris/v3",
    ),
}


def model_store_claim(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    """The claim `pvc://model-store/...` names, bound (by kube-controller-manager) to a volume of its own,
    so Seldon's pods that mount it can be scheduled."""
    volume = f"model-store-{namespace}"
    cluster.kubectl("delete", "pv", volume, "--ignore-not-found", "--wait=false")
    storage = {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual"}
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                **storage,
                "capacity": {"storage": "1Gi"},
                "hostPath": {"path": f"/tmp/{volume}"},
                "claimRef": {"namespace": namespace, "name": "model-store"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "model-store", "namespace": namespace},
            "spec": {**storage, "resources": {"requests": {"storage": "1Gi"}}},
        },
    ]


@pytest.mark.parametrize("store", list(STORES.values()), ids=list(STORES))
def test_each_store_is_wired_owned_and_collected(cluster: LocalCluster, namespace: str, store: Store) -> None:
    docs = [] if store.secret_data is None else [secret(namespace, "creds", store.secret_data)]
    if store.uri.startswith("pvc://"):
        docs += model_store_claim(cluster, namespace)
    try:
        owner = apply_until_available(cluster, *docs, parent("iris", namespace, store.uri, store.credentials))
        assert_wired(cluster, namespace, store, owner)
    finally:
        cluster.kubectl("delete", "pv", f"model-store-{namespace}", "--ignore-not-found", "--wait=false")


def assert_wired(cluster: LocalCluster, namespace: str, store: Store, owner: dict[str, Any]) -> None:
    """The children are owned and wired to the store, and the garbage collector takes them."""
    sdp = must_get(cluster, "seldondeployment", namespace, "iris")
    assert_owned(sdp, owner)
    node = graph(sdp)
    assert node["modelUri"] == store.model_uri
    credentials = condition(owner, "CredentialsReady")

    if store.rclone is None:
        assert get(cluster, "secret", namespace, "iris-rclone") is None
        assert "envSecretRefName" not in node
        assert credentials_hash(sdp) is None
        assert (credentials["status"], credentials["reason"]) == ("True", "NotRequired")
        assert "credentialsSecretName" not in owner["status"]
    else:
        rclone = must_get(cluster, "secret", namespace, "iris-rclone")
        assert_owned(rclone, owner)
        assert decoded(rclone) == store.rclone
        remote = store.model_uri.split("://")[0].upper()
        assert all(key.startswith(f"RCLONE_CONFIG_{remote}_") for key in decoded(rclone))
        assert rclone["metadata"]["labels"]["zenml.io/model-credentials"] == "generated"
        assert node["envSecretRefName"] == "iris-rclone"
        assert credentials_hash(sdp)
        assert (credentials["status"], credentials["reason"]) == ("True", "CredentialsRendered")
        assert owner["status"]["credentialsSecretName"] == "iris-rclone"
    assert owner["status"]["seldonDeploymentName"] == "iris"

    delete_and_wait_for_garbage_collection(cluster, namespace, "iris")
    if store.secret_data is not None:
        kept = must_get(cluster, "secret", namespace, "creds")  # the user's own Secret stays
        assert decoded(kept) == store.secret_data


# --- 2. rotation ------------------------------------------------------------------------------------


def test_rotation_updates_the_secret_and_rolls_the_pods_in_place(
    cluster: LocalCluster, namespace: str
) -> None:
    """The pods roll because the credentials hash is in the pod template Seldon generates: its
    Deployment gets a new template (a new pod-template-hash) and the new ReplicaSet becomes available."""
    before = apply_until_available(
        cluster, s3_secret(namespace, secret_key="old-secret-key"), zmd("iris", namespace)
    )
    sdp_before = must_get(cluster, "seldondeployment", namespace, "iris")
    deployment_before = seldon_deployment(cluster, namespace)
    template_hash_before = available_template_hash(cluster, namespace)
    hash_before = credentials_hash(sdp_before)
    assert hash_before
    assert (
        decoded(must_get(cluster, "secret", namespace, "iris-rclone"))["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"]
        == "old-secret-key"
    )

    rotate_s3_secret_key(cluster, namespace, "new-secret-key", timeout=RECOVERY_TIMEOUT)
    wait_for(
        lambda: credentials_hash(must_get(cluster, "seldondeployment", namespace, "iris")) != hash_before,
        RECOVERY_TIMEOUT,
        "the pod template's credentials hash never changed, so the model pods would not roll",
    )

    sdp_after = must_get(cluster, "seldondeployment", namespace, "iris")
    hash_after = credentials_hash(sdp_after)
    wait_for(
        lambda: pod_template_annotation(seldon_deployment(cluster, namespace)) == hash_after,
        RECOVERY_TIMEOUT,
        "Seldon never put the new credentials hash into its Deployment's pod template",
    )
    wait_for(
        lambda: available_template_hash(cluster, namespace) not in (None, template_hash_before),
        AVAILABLE_TIMEOUT,
        "no new ReplicaSet (pod-template-hash) of Seldon's Deployment became available: the pods did not roll",
    )
    assert seldon_deployment(cluster, namespace)["metadata"]["uid"] == deployment_before["metadata"]["uid"]
    assert pod_template_annotation(deployment_before) == hash_before
    assert sdp_after["metadata"]["uid"] == sdp_before["metadata"]["uid"]  # rolled, not recreated
    assert sdp_after["metadata"]["name"] == "iris"
    assert graph(sdp_after) == graph(sdp_before)  # only the pods' credentials changed
    rclone = decoded(must_get(cluster, "secret", namespace, "iris-rclone"))
    assert rclone["RCLONE_CONFIG_S3_ACCESS_KEY_ID"] == "e2e-access-key"
    after = must_get(cluster, "zmd", namespace, "iris")
    assert after["status"]["predictionURL"] == before["status"]["predictionURL"]
    assert after["status"]["predictionURL"] == f"{INGRESS}/seldon/{namespace}/iris/api/v1.0/predictions"
    assert condition(after, "CredentialsReady")["status"] == "True"
    messages = " ".join(e["message"] for e in events(cluster, namespace, "iris"))
    assert "old-secret-key" not in messages and "new-secret-key" not in messages


def seldon_deployment(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    """The one Deployment Seldon's controller generated for SeldonDeployment `iris`."""
    out = cluster.kubectl(
        "get", "deployments", "-n", namespace, "-l", "seldon-deployment-id=iris", "-o", "json"
    )
    (deployment,) = json.loads(out.stdout)["items"]
    return dict(deployment)


def pod_template_annotation(deployment: dict[str, Any]) -> str | None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(HASH_ANNOTATION)


def available_template_hash(cluster: LocalCluster, namespace: str) -> str | None:
    """The pod-template-hash of the ReplicaSet whose pods are all available, once it is the only one with
    pods (the Deployment finished rolling); None while it rolls."""
    out = cluster.kubectl(
        "get", "replicasets", "-n", namespace, "-l", "seldon-deployment-id=iris", "-o", "json"
    )
    with_pods = [rs for rs in json.loads(out.stdout)["items"] if rs["spec"].get("replicas")]
    if len(with_pods) != 1:
        return None
    (current,) = with_pods
    if (current.get("status") or {}).get("availableReplicas") != current["spec"]["replicas"]:
        return None
    return str(current["metadata"]["labels"]["pod-template-hash"])


# --- 3. every failure reason, and event-driven recovery -------------------------------------------


Fix = Callable[[LocalCluster, str], None]


def create_s3_secret(cluster: LocalCluster, namespace: str) -> None:
    apply(cluster, s3_secret(namespace))


def opt_in(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("label", "secret", "s3-creds", "-n", namespace, "zenml.io/model-credentials=true")


def add_secret_access_key(cluster: LocalCluster, namespace: str) -> None:
    set_s3_secret_key(cluster, namespace, "e2e-secret-key")


def repair_service_account_key(cluster: LocalCluster, namespace: str) -> None:
    set_secret_data(
        cluster, namespace, "gcs-creds", {"gcloud-application-credentials.json": json.dumps(SERVICE_ACCOUNT)}
    )


def replace_with_aws_keys(cluster: LocalCluster, namespace: str) -> None:
    set_secret_data(
        cluster,
        namespace,
        "s3-creds",
        {"AWS_ACCESS_KEY_ID": "e2e-access-key", "AWS_SECRET_ACCESS_KEY": "e2e-secret-key"},
    )


@dataclass(frozen=True)
class Failure:
    uri: str
    credentials: dict[str, Any]
    source: dict[str, Any] | None  # the referenced Secret as first created (namespace filled in)
    named: tuple[str, ...]  # what the condition's message must name
    fix: Fix
    rclone_keys: frozenset[str]  # of the rclone Secret after the fix
    reason: str | None = None  # the reason reported, when it is not the case's name


S3_REF = {"secretRef": {"name": "s3-creds"}, "s3": {"region": "eu-west-1"}}
S3_KEYS = frozenset(
    {
        "RCLONE_CONFIG_S3_TYPE",
        "RCLONE_CONFIG_S3_PROVIDER",
        "RCLONE_CONFIG_S3_REGION",
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID",
        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY",
    }
)
FAILURES = {
    "SecretNotFound": Failure(
        uri="s3://models/iris/v3",
        credentials=S3_REF,
        source=None,
        named=("'s3-creds'", "does not exist"),
        fix=create_s3_secret,
        rclone_keys=S3_KEYS,
    ),
    # Only labelled Secrets are watched: an unlabelled one is never read, so it reads as missing.
    "SecretNotFound-unlabelled": Failure(
        uri="s3://models/iris/v3",
        credentials=S3_REF,
        source={
            "name": "s3-creds",
            "labels": {},
            "data": {"AWS_ACCESS_KEY_ID": "e2e-access-key", "AWS_SECRET_ACCESS_KEY": "e2e-secret-key"},
        },
        named=("'s3-creds'", "does not exist", "lacks the label zenml.io/model-credentials=true"),
        fix=opt_in,
        rclone_keys=S3_KEYS,
        reason="SecretNotFound",
    ),
    "MissingKeys": Failure(
        uri="s3://models/iris/v3",
        credentials=S3_REF,
        source={"name": "s3-creds", "data": {"AWS_ACCESS_KEY_ID": "e2e-access-key"}},
        named=("'s3-creds'", "AWS_ACCESS_KEY_ID", "lacks AWS_SECRET_ACCESS_KEY"),
        fix=add_secret_access_key,
        rclone_keys=S3_KEYS,
    ),
    "InvalidCredentials": Failure(
        uri="gs://models/iris/v3",
        credentials={"secretRef": {"name": "gcs-creds"}},
        source={
            "name": "gcs-creds",
            "data": {"gcloud-application-credentials.json": MALFORMED_SERVICE_ACCOUNT},
        },
        named=("'gcs-creds'", "gcloud-application-credentials.json", "not valid JSON"),
        fix=repair_service_account_key,
        rclone_keys=frozenset(
            {
                "RCLONE_CONFIG_GS_TYPE",
                "RCLONE_CONFIG_GS_ANONYMOUS",
                "RCLONE_CONFIG_GS_SERVICE_ACCOUNT_CREDENTIALS",
            }
        ),
    ),
    "ProviderMismatch": Failure(
        uri="s3://models/iris/v3",
        credentials=S3_REF,
        source={
            "name": "s3-creds",
            "data": {"AZURE_STORAGE_ACCOUNT": "fakeaccount", "AZURE_STORAGE_KEY": "fake-azure-key"},
        },
        named=(
            "'s3-creds'",
            "AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY",
            "s3://models/iris/v3",
            "AWS_ACCESS_KEY_ID",
        ),
        fix=replace_with_aws_keys,
        rclone_keys=S3_KEYS,
    ),
}


@pytest.mark.parametrize(
    ("reason", "failure"), [(f.reason or case, f) for case, f in FAILURES.items()], ids=list(FAILURES)
)
def test_each_failure_reason_is_reported_and_recovers_on_the_secret_event(
    cluster: LocalCluster, namespace: str, reason: str, failure: Failure
) -> None:
    docs = []
    if failure.source is not None:
        docs.append(
            secret(namespace, failure.source["name"], failure.source["data"], failure.source.get("labels"))
        )
    apply(cluster, *docs, parent("iris", namespace, failure.uri, failure.credentials))

    broken = wait_credentials(cluster, namespace, "iris", "False", reason)
    message = condition(broken, "CredentialsReady")["message"]
    for name in failure.named:
        assert name in message, f"{name!r} not in {message!r}"
    seldon = condition(broken, "SeldonDeploymentReady")
    assert (seldon["status"], seldon["reason"]) == ("False", "WaitingForCredentials")
    ready = condition(broken, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert broken["status"]["state"] == "Unknown"
    assert "credentialsSecretName" not in broken["status"]

    warning = wait_warning(cluster, namespace, "iris", reason)
    assert warning["message"] == message
    assert warning["involvedObject"]["uid"] == broken["metadata"]["uid"]
    secret_values = [v for v in ((failure.source or {}).get("data") or {}).values() if len(v) > 8]
    for value in secret_values:  # values never leak into the status or Events
        assert value not in json.dumps(broken["status"])
        assert value not in json.dumps(events(cluster, namespace, "iris"))
    # Nothing is created from credentials that are not ready.
    assert get(cluster, "seldondeployment", namespace, "iris") is None
    assert get(cluster, "secret", namespace, "iris-rclone") is None

    failure.fix(cluster, namespace)
    fixed_at = time.monotonic()
    recovered = wait_credentials(cluster, namespace, "iris", "True", "CredentialsRendered", RECOVERY_TIMEOUT)
    wait_for(
        lambda: get(cluster, "seldondeployment", namespace, "iris") is not None,
        RECOVERY_TIMEOUT - (time.monotonic() - fixed_at),
        "the SeldonDeployment did not appear once the Secret was fixed",
    )
    sdp = must_get(cluster, "seldondeployment", namespace, "iris")
    rclone = must_get(cluster, "secret", namespace, "iris-rclone")
    assert_owned(sdp, recovered)
    assert_owned(rclone, recovered)
    assert set(decoded(rclone)) == failure.rclone_keys
    assert graph(sdp)["envSecretRefName"] == "iris-rclone"
    assert graph(sdp)["modelUri"] == failure.uri
    recovered = wait_state(cluster, namespace, "iris", "Available", timeout=AVAILABLE_TIMEOUT)
    assert recovered["status"]["credentialsSecretName"] == "iris-rclone"
    # One Warning for the one failure: the operator did not loop on it.
    assert [e["reason"] for e in events(cluster, namespace, "iris") if e["type"] == "Warning"] == [reason]


# --- 4. the last good configuration keeps serving ----------------------------------------------------


BREAKS = {
    # How it breaks -> (the reason reported, what its message names, the kubectl command that breaks it).
    "key-removed": (
        "MissingKeys",
        "lacks AWS_SECRET_ACCESS_KEY",
        [
            "patch",
            "secret",
            "s3-creds",
            "--type=json",
            "-p",
            json.dumps([{"op": "remove", "path": "/data/AWS_SECRET_ACCESS_KEY"}]),
        ],
    ),
    # With the label gone the server-side selector reports the Secret as DELETED to the operator,
    # which can no longer tell it from a deleted one (it never reads an unlabelled Secret).
    "label-removed": (
        "SecretNotFound",
        "lacks the label zenml.io/model-credentials=true",
        ["label", "secret", "s3-creds", "zenml.io/model-credentials-"],
    ),
    "secret-deleted": ("SecretNotFound", "does not exist", ["delete", "secret", "s3-creds"]),
}


@pytest.mark.parametrize(("reason", "named", "action"), list(BREAKS.values()), ids=list(BREAKS))
def test_broken_credentials_leave_the_last_good_configuration_serving(
    cluster: LocalCluster, namespace: str, reason: str, named: str, action: list[str]
) -> None:
    converged = apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    assert condition(converged, "Ready")["status"] == "True"
    sdp_before = must_get(cluster, "seldondeployment", namespace, "iris")
    rclone_before = must_get(cluster, "secret", namespace, "iris-rclone")

    cluster.kubectl(*action, "-n", namespace)
    broken = wait_credentials(cluster, namespace, "iris", "False", reason)
    message = condition(broken, "CredentialsReady")["message"]
    assert "'s3-creds'" in message and named in message
    ready = condition(broken, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    seldon = condition(broken, "SeldonDeploymentReady")
    assert (seldon["status"], seldon["reason"]) == ("True", "Available")
    assert broken["status"]["state"] == "Available"  # still Seldon's state, mirrored
    assert broken["status"]["availableReplicas"] == 1
    assert broken["status"]["credentialsSecretName"] == "iris-rclone"  # the last good one still serves
    wait_warning(cluster, namespace, "iris", reason)

    sdp = must_get(cluster, "seldondeployment", namespace, "iris")
    # Seldon's controller writes the status; the spec (generation) is what the operator would have changed.
    assert sdp["metadata"]["generation"] == sdp_before["metadata"]["generation"]
    assert sdp["spec"] == sdp_before["spec"]
    rclone = must_get(cluster, "secret", namespace, "iris-rclone")
    assert rclone["metadata"]["resourceVersion"] == rclone_before["metadata"]["resourceVersion"]
    assert decoded(rclone) == decoded(rclone_before)

    # The fix also rotates the key, so converging again is visible on both children.
    apply(cluster, s3_secret(namespace, secret_key="rotated-secret-key"))
    wait_credentials(cluster, namespace, "iris", "True", "CredentialsRendered", RECOVERY_TIMEOUT)
    # The rotated key rolls the pods (Seldon reports Creating meanwhile); whenever the parent reads
    # Available, before the roll or after it, it is Ready: the credentials stay rendered.
    fixed = wait_state(cluster, namespace, "iris", "Available", timeout=AVAILABLE_TIMEOUT)
    assert condition(fixed, "Ready")["status"] == "True"
    assert (
        decoded(must_get(cluster, "secret", namespace, "iris-rclone"))["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"]
        == "rotated-secret-key"
    )
    sdp_after = must_get(cluster, "seldondeployment", namespace, "iris")
    assert sdp_after["metadata"]["uid"] == sdp_before["metadata"]["uid"]
    assert credentials_hash(sdp_after) != credentials_hash(sdp_before)
