"""The operator's core, end to end: a real operator process against a real control plane.

Seldon Core's own controller rolls the SeldonDeployments out (on kwok's fake Node), so Available is
Seldon's doing; only the states it cannot reach here are written by hand, in a namespace it skips. The
garbage collector is kube-controller-manager's own.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from support.localcluster import LocalCluster
from support.objects import (
    AVAILABLE_TIMEOUT,
    GC_TIMEOUT,
    TIMEOUT,
    apply,
    apply_until_available,
    condition,
    delete_and_wait_for_garbage_collection,
    events,
    get,
    must_get,
    patch_seldon_status,
    s3_secret,
    scale_seldon_deployment_by_hand,
    secret,
    wait_state,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]


def test_create_makes_owned_children(cluster: LocalCluster, namespace: str) -> None:
    parent = apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace, replicas=2))

    sdp = must_get(cluster, "seldondeployment", namespace, "iris")
    secret = must_get(cluster, "secret", namespace, "iris-rclone")
    for child in (sdp, secret):
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == parent["metadata"]["uid"]
        assert owner["controller"] is True and owner["kind"] == "ZenModelDeployment"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zenmodel-operator"
    predictor = sdp["spec"]["predictors"][0]
    assert predictor["replicas"] == 2
    assert predictor["graph"]["modelUri"] == "s3://models/iris/v3"
    assert predictor["graph"]["envSecretRefName"] == "iris-rclone"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["RCLONE_CONFIG_S3_TYPE"] == "s3"
    assert data["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"] == "e2e-secret-key"
    assert data["RCLONE_CONFIG_S3_REGION"] == "eu-west-1"

    status = parent["status"]
    assert status["seldonDeploymentName"] == "iris"
    assert status["credentialsSecretName"] == "iris-rclone"
    assert (
        status["predictionURL"] == f"http://ingress.example.com/seldon/{namespace}/iris/api/v1.0/predictions"
    )
    assert condition(parent, "CredentialsReady")["status"] == "True"
    assert (condition(parent, "Ready")["status"], condition(parent, "Ready")["reason"]) == (
        "True",
        "Available",
    )
    assert parent["status"]["availableReplicas"] == 2
    wait_for(
        lambda: [e["reason"] for e in events(cluster, namespace, "iris")] == ["Created", "Available"],
        TIMEOUT,
        "expected exactly the Created and Available events",
    )


def test_status_mirrors_seldon(
    cluster: LocalCluster, namespace_without_seldon: str, operator: OperatorProcess
) -> None:
    """Seldon's status written by hand: Seldon cannot reach Failed here (it fails a rollout only once a
    Deployment's progress deadline passes), nor hold a half-available state long enough to observe."""
    namespace = namespace_without_seldon
    apply(cluster, s3_secret(namespace), zmd("iris", namespace, replicas=2))
    wait_state(cluster, namespace, "iris", "Creating")

    patch_seldon_status(
        cluster,
        namespace,
        "iris",
        {
            "state": "Creating",
            "deploymentStatus": {"iris-default-0-iris": {"replicas": 2, "availableReplicas": 1}},
        },
    )
    wait_for(
        lambda: (
            ((get(cluster, "zmd", namespace, "iris") or {}).get("status") or {}).get("availableReplicas") == 1
        ),
        TIMEOUT,
        "availableReplicas never mirrored",
    )

    address = f"http://iris-default.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"
    patch_seldon_status(
        cluster,
        namespace,
        "iris",
        {
            "state": "Available",
            "address": {"url": address},
            "deploymentStatus": {"iris-default-0-iris": {"replicas": 2, "availableReplicas": 2}},
        },
    )
    parent = wait_state(cluster, namespace, "iris", "Available")
    assert parent["status"]["internalURL"] == address
    assert parent["status"]["availableReplicas"] == 2
    assert condition(parent, "Ready")["status"] == "True"
    metrics = operator.metrics()
    assert 'zenmodel_deployments{state="Available"}' in metrics
    assert "zenmodel_status_mirror_latency_seconds_count" in metrics

    patch_seldon_status(
        cluster, namespace, "iris", {"state": "Failed", "description": "iris-default: ImagePullBackOff"}
    )
    parent = wait_state(cluster, namespace, "iris", "Failed")
    ready = condition(parent, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Failed")
    assert "ImagePullBackOff" in ready["message"]
    wait_for(
        lambda: (
            [e["reason"] for e in events(cluster, namespace, "iris")] == ["Created", "Available", "Failed"]
        ),
        TIMEOUT,
        "expected exactly the Created, Available and Failed events",
    )


def test_update_is_in_place(cluster: LocalCluster, namespace: str) -> None:
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    uid = must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]["uid"]

    parent = apply_until_available(cluster, zmd("iris", namespace, uri="s3://models/iris/v4"), generation=2)
    sdp = must_get(cluster, "seldondeployment", namespace, "iris")
    assert sdp["spec"]["predictors"][0]["graph"]["modelUri"] == "s3://models/iris/v4"
    assert sdp["metadata"]["uid"] == uid  # rolled, not recreated: the URL stays
    assert all(c["observedGeneration"] == 2 for c in parent["status"]["conditions"])


def test_delete_lets_the_garbage_collector_take_the_children(cluster: LocalCluster, namespace: str) -> None:
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    delete_and_wait_for_garbage_collection(cluster, namespace, "iris")
    assert get(cluster, "secret", namespace, "s3-creds") is not None  # the user's own Secret stays


def test_drift_is_restored(cluster: LocalCluster, namespace: str) -> None:
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace, replicas=2))
    first_uid = must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]["uid"]

    cluster.kubectl("delete", "seldondeployment", "iris", "-n", namespace)
    wait_for(
        lambda: (
            (get(cluster, "seldondeployment", namespace, "iris") or {}).get("metadata", {}).get("uid")
            not in (None, first_uid)
        ),
        TIMEOUT,
        "a deleted SeldonDeployment was not recreated",
    )

    scale_seldon_deployment_by_hand(cluster, namespace, "iris", 7)
    wait_for(
        lambda: (
            must_get(cluster, "seldondeployment", namespace, "iris")["spec"]["predictors"][0]["replicas"] == 2
        ),
        TIMEOUT,
        "an edited SeldonDeployment was not restored",
    )

    cluster.kubectl(
        "patch",
        "secret",
        "iris-rclone",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data": {"RCLONE_CONFIG_S3_REGION": "' + base64.b64encode(b"us-east-2").decode() + '"}}',
    )
    wait_for(
        lambda: (
            base64.b64decode(
                must_get(cluster, "secret", namespace, "iris-rclone")["data"]["RCLONE_CONFIG_S3_REGION"]
            )
            == b"eu-west-1"
        ),
        TIMEOUT,
        "an edited rclone Secret was not restored",
    )

    cluster.kubectl("delete", "secret", "iris-rclone", "-n", namespace)
    wait_for(
        lambda: get(cluster, "secret", namespace, "iris-rclone") is not None,
        TIMEOUT,
        "a deleted rclone Secret was not recreated",
    )


def test_a_foreign_seldon_deployment_is_left_alone(
    cluster: LocalCluster, namespace_without_seldon: str
) -> None:
    """Where Seldon's controller does not run: it would write the foreign object's status, and the test
    compares resourceVersions to show that nothing else (the operator) wrote it."""
    namespace = namespace_without_seldon
    foreign = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "iris", "namespace": namespace},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "graph": {
                        "name": "other",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": "gs://theirs/model",
                    },
                }
            ]
        },
    }
    apply(cluster, foreign)
    before = must_get(cluster, "seldondeployment", namespace, "iris")
    apply(cluster, s3_secret(namespace), zmd("iris", namespace))
    wait_for(
        lambda: (
            condition(get(cluster, "zmd", namespace, "iris"), "Ready").get("reason")
            == "SeldonDeploymentConflict"
        ),
        TIMEOUT,
        "the conflict was not reported",
    )
    after = must_get(cluster, "seldondeployment", namespace, "iris")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"]
    assert "Warning" in {e["type"] for e in events(cluster, namespace, "iris")}

    cluster.kubectl("delete", "seldondeployment", "iris", "-n", namespace)
    wait_state(cluster, namespace, "iris", "Creating")  # once it's gone, ours takes its place
    assert must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]["ownerReferences"]


def test_a_foreign_secret_of_the_rclone_secrets_name_is_left_alone(
    cluster: LocalCluster, namespace: str
) -> None:
    """A person's own `x-rclone` Secret, without our label, so the operator's label-selected watch cannot
    show it: the operator's first write must not merge into it, own it, or hand it to the garbage
    collector with the parent."""
    foreign = secret(namespace, "x-rclone", {"foo": "their own rclone config"}, labels={"team": "data"})
    apply(cluster, foreign)
    before = must_get(cluster, "secret", namespace, "x-rclone")

    def unchanged() -> None:
        after = must_get(cluster, "secret", namespace, "x-rclone")
        for field in ("data", "type"):
            assert after[field] == before[field]
        for field in ("labels", "resourceVersion", "uid", "managedFields"):
            assert after["metadata"].get(field) == before["metadata"].get(field)
        assert "ownerReferences" not in after["metadata"]

    def conflict_reported() -> bool:
        parent = get(cluster, "zmd", namespace, "x")
        return (
            condition(parent, "Ready").get("reason")
            == condition(parent, "CredentialsReady").get("reason")
            == "SecretConflict"
        )

    apply(cluster, s3_secret(namespace), zmd("x", namespace))
    wait_for(conflict_reported, TIMEOUT, "the conflict was not reported")
    message = condition(get(cluster, "zmd", namespace, "x"), "Ready")["message"]
    assert "x-rclone" in message and "delete or rename it" in message
    warnings = [e for e in events(cluster, namespace, "x") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["SecretConflict"]
    assert get(cluster, "seldondeployment", namespace, "x") is None  # it would have used that Secret
    unchanged()

    # Deleting the parent: the garbage collector has nothing of the person's to take. A sentinel the
    # parent owns shows when the collector has dealt with the parent.
    parent_uid = must_get(cluster, "zmd", namespace, "x")["metadata"]["uid"]
    sentinel = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "x-sentinel",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "zenml.io/v1alpha1",
                    "kind": "ZenModelDeployment",
                    "name": "x",
                    "uid": parent_uid,
                }
            ],
        },
    }
    apply(cluster, sentinel)
    cluster.kubectl("delete", "zmd", "x", "-n", namespace)
    wait_for(
        lambda: get(cluster, "configmap", namespace, "x-sentinel") is None,
        GC_TIMEOUT,
        "the garbage collector never dealt with the deleted parent",
    )
    unchanged()

    # Once the person removes their Secret, the model converges on its own (no watch reports that
    # Secret: the operator looks again, soon and then once a minute).
    apply(cluster, zmd("x", namespace))
    wait_for(conflict_reported, TIMEOUT, "the conflict was not reported again")
    unchanged()
    cluster.kubectl("delete", "secret", "x-rclone", "-n", namespace)
    wait_state(cluster, namespace, "x", "Available", timeout=AVAILABLE_TIMEOUT)
    ours = must_get(cluster, "secret", namespace, "x-rclone")
    assert (
        ours["metadata"]["ownerReferences"][0]["uid"]
        == must_get(cluster, "zmd", namespace, "x")["metadata"]["uid"]
    )
    assert "foo" not in ours["data"]


def test_children_the_garbage_collector_missed_are_reported_with_what_to_delete(
    cluster: LocalCluster, namespace_without_seldon: str
) -> None:
    """After an apiserver restart the garbage collector can miss a parent deleted and created again under
    the same name (kubernetes/kubernetes#109748): the earlier parent's children stay, with our labels and
    field manager, controlled by a uid that no longer exists. Built here for real, with the controller
    manager (and so the collector) stopped. They are not the current parent's: the operator never adopts,
    writes or deletes them, and says what happened and exactly what to delete."""
    namespace = namespace_without_seldon
    apply(cluster, s3_secret(namespace), zmd("m", namespace))
    wait_state(cluster, namespace, "m", "Creating")
    earlier = must_get(cluster, "zmd", namespace, "m")["metadata"]["uid"]
    children = (("seldondeployment", "m"), ("secret", "m-rclone"))
    cluster.stop_controller_manager()
    try:
        cluster.kubectl("delete", "zmd", "m", "-n", namespace)
        apply(cluster, zmd("m", namespace))
        before = {kind: must_get(cluster, kind, namespace, name)["metadata"] for kind, name in children}
        assert {meta["ownerReferences"][0]["uid"] for meta in before.values()} == {earlier}

        def reported() -> bool:
            parent = get(cluster, "zmd", namespace, "m")
            return (
                condition(parent, "CredentialsReady").get("reason"),
                condition(parent, "Ready").get("reason"),
            ) == (
                "SecretConflict",
                "SecretConflict",
            ) and condition(parent, "SeldonDeploymentReady").get("reason") == "SeldonDeploymentConflict"

        wait_for(reported, TIMEOUT, "the earlier parent's children were not reported")
        parent = must_get(cluster, "zmd", namespace, "m")
        for type_, command in (
            ("CredentialsReady", f"kubectl delete secret m-rclone -n {namespace}"),
            ("SeldonDeploymentReady", f"kubectl delete seldondeployment m -n {namespace}"),
        ):
            message = condition(parent, type_)["message"]
            assert earlier in message and "garbage collector" in message and command in message, message
        warnings = {
            e["reason"]: e["message"] for e in events(cluster, namespace, "m") if e["type"] == "Warning"
        }
        assert earlier in warnings["SecretConflict"] and earlier in warnings["SeldonDeploymentConflict"]
        for kind, name in children:  # not adopted, not written
            after = must_get(cluster, kind, namespace, name)["metadata"]
            assert after["resourceVersion"] == before[kind]["resourceVersion"], f"{kind} {name} was written"

        # Deleted as the message says, they are made again for the current parent.
        for kind, name in children:
            cluster.kubectl("delete", kind, name, "-n", namespace)
        wait_state(cluster, namespace, "m", "Creating")
        current = must_get(cluster, "zmd", namespace, "m")["metadata"]["uid"]
        for kind, name in children:
            assert (
                must_get(cluster, kind, namespace, name)["metadata"]["ownerReferences"][0]["uid"] == current
            )
    finally:
        cluster.start_controller_manager()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model": {"name": "iris", "uri": "s3://models/i", "implementation": "CUSTOM"}},
            "implementation CUSTOM needs custom.image",
        ),
        (
            {"model": {"name": "iris", "uri": "s3://models/i", "implementation": "TRITON_SERVER"}},
            "the protocol must fit the implementation",
        ),
        (
            {"model": {"name": "iris", "uri": "ftp://m/i", "implementation": "SKLEARN_SERVER"}},
            "spec.model.uri",
        ),
        ({"replicas": -1}, "spec.replicas"),
    ],
)
def test_bad_input_is_refused_at_apply_time(
    cluster: LocalCluster, namespace: str, change: dict[str, Any], message: str
) -> None:
    doc = zmd("bad", namespace)
    doc["spec"].update(change)
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert get(cluster, "zmd", namespace, "bad") is None


def test_a_too_long_name_is_refused(cluster: LocalCluster, namespace: str) -> None:
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(zmd("a" * 56, namespace)), check=False)
    assert result.returncode != 0
    assert "metadata.name" in result.stderr


def test_kubectl_explain_and_columns(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    explained = cluster.kubectl("explain", "zmd.spec.model.uri").stdout
    assert "Where the model artifact lives" in explained
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    table = cluster.kubectl("get", "zmd", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "STATE", "READY", "MODEL", "URL", "CANARY", "AGE"]
    assert row.split()[:5] == [
        "iris",
        "Available",
        "True",
        "s3://models/iris/v3",
        f"http://ingress.example.com/seldon/{namespace}/iris/api/v1.0/predictions",
    ]


def test_the_operator_writes_only_the_parents_status(cluster: LocalCluster, namespace: str) -> None:
    """GitOps tools (Argo CD) compare spec and labels: the operator must never own any of them."""
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace))
    entries = json.loads(
        cluster.kubectl("get", "zmd", "iris", "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    )["metadata"]["managedFields"]
    ours = [e for e in entries if e["manager"] == "zenmodel-operator"]
    assert ours and all(e.get("subresource") == "status" for e in ours)
    assert {e["manager"] for e in entries} == {"zenmodel-operator", "kubectl-client-side-apply"}
