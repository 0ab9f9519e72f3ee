"""The reconcile's pure half: what to write, given what exists."""

from __future__ import annotations

import copy
from typing import Any

from zenmodel_operator.core.credentials import SourceSecret
from zenmodel_operator.core.plan import Snapshot, events_for, plan
from zenmodel_operator.core.status import Observation, derive_status
from zenmodel_operator.settings import OperatorSettings

SETTINGS = OperatorSettings(ingress_base_url="http://ingress.example.com")
PARENT: dict[str, Any] = {
    "apiVersion": "zenml.io/v1alpha1",
    "kind": "ZenModelDeployment",
    "metadata": {"name": "iris", "namespace": "models", "uid": "uid-1", "generation": 1},
    "spec": {
        "model": {"name": "iris", "uri": "s3://models/iris", "implementation": "SKLEARN_SERVER"},
        "credentials": {"secretRef": {"name": "s3-creds"}, "s3": {"region": "eu-west-1"}},
    },
}
SOURCE = SourceSecret(
    name="s3-creds",
    labels={"zenml.io/model-credentials": "true"},
    data={"AWS_ACCESS_KEY_ID": b"AKIA-canary", "AWS_SECRET_ACCESS_KEY": b"secret-canary"},
)


def as_live(obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What the apiserver returns: our object plus server-set fields."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="child-uid", resourceVersion="7", managedFields=[])
    live.update(extra)
    return live


def observe(snapshot: Snapshot) -> Observation:
    """The observation after the plan's writes went through (the SeldonDeployment as written)."""
    result = plan(snapshot, SETTINGS)
    return result.observation(snapshot, SETTINGS, seldon=result.seldon or snapshot.seldon)


def pod_annotations(seldon: dict[str, Any]) -> dict[str, str]:
    return dict(seldon["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["annotations"])


def test_a_new_parent_creates_both_children() -> None:
    result = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert result.secret is not None and result.seldon is not None
    graph = result.seldon["spec"]["predictors"][0]["graph"]
    assert graph["envSecretRefName"] == result.secret["metadata"]["name"] == "iris-rclone"
    status = derive_status(observe(Snapshot(PARENT, None, None, SOURCE)), {}, "2026-11-21T10:00:00Z")
    assert status["state"] == "Creating"


def test_converged_children_cost_no_writes() -> None:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert first.secret is not None and first.seldon is not None
    live_seldon = as_live(first.seldon, status={"state": "Available"})
    again = plan(Snapshot(PARENT, live_seldon, as_live(first.secret), SOURCE), SETTINGS)
    assert again.secret is None and again.seldon is None


def test_drift_is_restored() -> None:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert first.secret is not None and first.seldon is not None
    edited = as_live(first.seldon)
    edited["spec"]["predictors"][0]["replicas"] = 9
    again = plan(Snapshot(PARENT, edited, as_live(first.secret), SOURCE), SETTINGS)
    assert again.seldon == first.seldon and again.secret is None


def test_rotation_rewrites_the_secret_and_rolls_the_pods() -> None:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert first.secret is not None and first.seldon is not None
    rotated = SourceSecret(SOURCE.name, SOURCE.labels, {**SOURCE.data, "AWS_SECRET_ACCESS_KEY": b"rotated"})
    again = plan(Snapshot(PARENT, as_live(first.seldon), as_live(first.secret), rotated), SETTINGS)
    assert again.secret is not None and again.seldon is not None
    assert pod_annotations(again.seldon) != pod_annotations(first.seldon)
    assert again.seldon["metadata"]["name"] == first.seldon["metadata"]["name"]


def test_a_foreign_seldon_deployment_is_never_touched() -> None:
    foreign = {"metadata": {"name": "iris", "namespace": "models", "uid": "other"}, "spec": {}}
    result = plan(Snapshot(PARENT, foreign, None, SOURCE), SETTINGS)
    assert result.secret is None and result.seldon is None
    assert result.conflict


def test_bad_credentials_keep_the_last_good_deployment() -> None:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert first.secret is not None and first.seldon is not None
    broken = SourceSecret(SOURCE.name, SOURCE.labels, {"AWS_ACCESS_KEY_ID": b"AKIA-canary"})
    result = plan(Snapshot(PARENT, as_live(first.seldon), as_live(first.secret), broken), SETTINGS)
    assert result.secret is None and result.seldon is None
    assert result.credentials is not None and not result.credentials.ok


def test_events_only_on_change() -> None:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    creating = derive_status(observe(Snapshot(PARENT, None, None, SOURCE)), {}, "2026-11-21T10:00:00Z")
    assert [e.reason for e in events_for({}, creating, created_seldon="models/iris")] == ["Created"]
    assert events_for(creating, creating, created_seldon=None) == []
    # A restart after a crash between creating the SeldonDeployment and recording it in the status:
    # the transition still announces it, once.
    assert [e.reason for e in events_for({}, creating, created_seldon=None)] == ["Created"]
    assert first.seldon is not None
    available_obs = observe(
        Snapshot(PARENT, as_live(first.seldon, status={"state": "Available"}), None, SOURCE)
    )
    available = derive_status(available_obs, creating, "2026-11-21T10:01:00Z")
    assert [(e.type, e.reason) for e in events_for(creating, available, created_seldon=None)] == [
        ("Normal", "Available")
    ]
    failed_obs = observe(
        Snapshot(
            PARENT, as_live(first.seldon, status={"state": "Failed", "description": "boom"}), None, SOURCE
        )
    )
    failed = derive_status(failed_obs, available, "2026-11-21T10:02:00Z")
    assert [(e.type, e.reason) for e in events_for(available, failed, created_seldon=None)] == [
        ("Warning", "Failed")
    ]
