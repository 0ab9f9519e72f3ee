"""Status derivation: Seldon's status in, the parent's status out."""

from __future__ import annotations

from typing import Any

import pytest

from zenmodel_operator.api.spec import ZenModelDeploymentSpec
from zenmodel_operator.api.status import ZenModelDeploymentStatus
from zenmodel_operator.core.conditions import Condition, Reason, merge_conditions
from zenmodel_operator.core.plan import events_for
from zenmodel_operator.core.pods import PodReport
from zenmodel_operator.core.status import CredentialsOutcome, Observation, derive_status, prediction_url

NOW = "2026-11-21T10:00:00Z"
LATER = "2026-11-21T11:00:00Z"


def make_spec(
    protocol: str = "seldon", implementation: str = "SKLEARN_SERVER", **extra: Any
) -> ZenModelDeploymentSpec:
    return ZenModelDeploymentSpec.model_validate(
        {
            "model": {
                "name": "iris",
                "uri": "s3://models/iris",
                "implementation": implementation,
                "protocol": protocol,
            },
            "replicas": 2,
            **extra,
        }
    )


def observe(seldon_status: dict[str, Any] | None, **changes: Any) -> Observation:
    seldon = None if seldon_status is None else {"metadata": {"name": "iris"}, "status": seldon_status}
    fields: dict[str, Any] = {
        "namespace": "models",
        "name": "iris",
        "generation": 3,
        "spec": make_spec(),
        "spec_error": None,
        "credentials": CredentialsOutcome(True, "CredentialsRendered", "ok", "iris-rclone"),
        "seldon": seldon,
        "conflict": None,
        "apply_error": None,
        "default_base_url": "http://ingress.example.com",
    }
    fields.update(changes)
    return Observation(**fields)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("protocol", "implementation", "path"),
    [
        ("seldon", "SKLEARN_SERVER", "/api/v1.0/predictions"),
        ("v2", "SKLEARN_SERVER", "/v2/models/iris/infer"),
        ("tensorflow", "TENSORFLOW_SERVER", "/v1/models/iris:predict"),
    ],
)
def test_prediction_url_per_protocol(protocol: str, implementation: str, path: str) -> None:
    url = prediction_url("http://ingress.example.com/", "models", "iris", make_spec(protocol, implementation))
    assert url == f"http://ingress.example.com/seldon/models/iris{path}"


def test_spec_base_url_wins_over_the_operator_default() -> None:
    spec = make_spec(ingress={"baseURL": "https://models.example.org"})
    status = derive_status(observe({"state": "Available"}, spec=spec), {}, NOW)
    assert status["predictionURL"] == "https://models.example.org/seldon/models/iris/api/v1.0/predictions"


def test_available_mirrors_seldon() -> None:
    status = derive_status(
        observe(
            {
                "state": "Available",
                "address": {"url": "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"},
                "deploymentStatus": {"iris-default-0-iris": {"replicas": 2, "availableReplicas": 2}},
            }
        ),
        {},
        NOW,
    )
    assert status["state"] == "Available"
    assert status["availableReplicas"] == 2
    assert status["internalURL"] == "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"
    assert conditions(status) == {
        "CredentialsReady": ("True", "CredentialsRendered"),
        "SeldonDeploymentReady": ("True", "Available"),
        "Ready": ("True", "Available"),
    }
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    ZenModelDeploymentStatus.model_validate(status)  # fits the CRD's status schema


def test_no_seldon_status_reads_like_seldons_own_creating() -> None:
    waiting = derive_status(observe({}), {}, NOW)
    creating = derive_status(observe({"state": "Creating"}), {}, NOW)
    assert waiting == creating
    assert waiting["state"] == "Creating"
    assert "waiting for Seldon Core" in waiting["conditions"][1]["message"]


def test_failed_carries_seldons_description() -> None:
    status = derive_status(
        observe({"state": "Failed", "description": "Deployment iris-default failed: ImagePullBackOff"}),
        {},
        NOW,
    )
    assert status["state"] == "Failed"
    ready = status["conditions"][2]
    assert (ready["status"], ready["reason"]) == ("False", "Failed")
    assert "ImagePullBackOff" in ready["message"]


def deployment_status(available: int) -> dict[str, Any]:
    """Seldon's deploymentStatus for the main predictor's one Deployment (iris-default-0-iris)."""
    return {"iris-default-0-iris": {"replicas": available, "availableReplicas": available}}


@pytest.mark.parametrize("seldon_state", ["Creating", "Available"])
def test_zero_replicas_read_stopped_once_the_pods_are_gone(seldon_state: str) -> None:
    stopped = make_spec(replicas=0)
    status = derive_status(
        observe({"state": seldon_state, "deploymentStatus": deployment_status(0)}, spec=stopped), {}, NOW
    )
    assert status["state"] == "Stopped"
    assert (status["replicas"], status["availableReplicas"]) == (0, 0)
    assert conditions(status)["Ready"] == ("False", "Stopped")
    assert "scaled to zero on purpose" in status["conditions"][2]["message"]
    ZenModelDeploymentStatus.model_validate(status)


def test_zero_replicas_still_draining_read_as_seldon_says() -> None:
    status = derive_status(
        observe({"state": "Available", "deploymentStatus": deployment_status(1)}, spec=make_spec(replicas=0)),
        {},
        NOW,
    )
    assert status["state"] == "Available"
    assert status["availableReplicas"] == 1


def test_a_failure_wins_over_stopped() -> None:
    status = derive_status(observe({"state": "Failed"}, spec=make_spec(replicas=0)), {}, NOW)
    assert status["state"] == "Failed"


def test_zero_main_replicas_beside_a_canary_are_not_stopped() -> None:
    spec = make_spec(replicas=0, canary={"uri": "s3://models/iris-v4", "trafficPercent": 10})
    status = derive_status(observe({"state": "Available"}, spec=spec), {}, NOW)
    assert status["state"] == "Available"


def test_conflict_is_reported_and_not_mirrored() -> None:
    message = "a SeldonDeployment named iris exists and is not owned by this ZenModelDeployment"
    status = derive_status(observe({"state": "Available"}, conflict=message), {}, NOW)
    assert status["state"] == "Failed"
    assert conditions(status)["Ready"] == ("False", "SeldonDeploymentConflict")
    assert status["conditions"][1]["message"] == message
    assert "seldonDeploymentName" not in status
    assert status["availableReplicas"] == 0


def test_credentials_failure_keeps_the_last_good_deployment_visible() -> None:
    failure = CredentialsOutcome(
        False, "MissingKeys", "Secret s3-creds lacks AWS_SECRET_ACCESS_KEY", "iris-rclone"
    )
    status = derive_status(observe({"state": "Available"}, credentials=failure), {}, NOW)
    assert status["state"] == "Available"
    assert conditions(status)["Ready"] == ("False", "MissingKeys")
    assert status["credentialsSecretName"] == "iris-rclone"


def test_credentials_failure_before_any_deployment() -> None:
    failure = CredentialsOutcome(False, "SecretNotFound", "Secret s3-creds not found")
    status = derive_status(observe(None, credentials=failure), {}, NOW)
    assert status["state"] == "Unknown"
    assert conditions(status)["SeldonDeploymentReady"] == ("False", "WaitingForCredentials")


def test_invalid_spec() -> None:
    status = derive_status(
        observe(None, spec=None, spec_error="spec.model: Field required", credentials=None), {}, NOW
    )
    assert status["state"] == "Failed"
    assert conditions(status) == {"Ready": ("False", "InvalidSpec")}


def test_unchanged_status_is_identical_later() -> None:
    first = derive_status(observe({"state": "Available"}), {}, NOW)
    assert derive_status(observe({"state": "Available"}), first, LATER) == first


def test_transition_time_moves_only_when_status_changes() -> None:
    before = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Creating",
            "message": "m",
            "lastTransitionTime": NOW,
            "observedGeneration": 1,
        }
    ]
    same = merge_conditions(before, [Condition("Ready", False, "Failed", "other")], generation=2, now=LATER)
    flipped = merge_conditions(before, [Condition("Ready", True, "Available", "ok")], generation=2, now=LATER)
    assert same[0]["lastTransitionTime"] == NOW
    assert same[0]["reason"] == "Failed"
    assert flipped[0]["lastTransitionTime"] == LATER


@pytest.mark.parametrize(("executor", "port"), [("Enabled", 8000), ("Disabled", 9000)])
def test_internal_url_is_seldons_address_else_the_predictor_services_port(executor: str, port: int) -> None:
    spec = make_spec("v2", executor=executor)
    before_address = derive_status(observe({"state": "Creating"}, spec=spec), {}, NOW)
    assert (
        before_address["internalURL"]
        == f"http://iris-default.models.svc.cluster.local:{port}/v2/models/iris/infer"
    )
    reported = "http://iris-default.models.svc.cluster.local:9100/v2/models/iris/infer"  # Seldon's own ports
    status = derive_status(observe({"state": "Available", "address": {"url": reported}}, spec=spec), {}, NOW)
    assert status["internalURL"] == reported


FETCH_FAILED = PodReport(
    Reason.MODEL_FETCH_FAILED, "init container iris-model-initializer of pod p cannot fetch the model: x"
)


@pytest.mark.parametrize(
    ("seldon_status", "changes", "reason"),
    [
        ({}, {}, "ModelFetchFailed"),
        ({"state": "Creating"}, {}, "ModelFetchFailed"),
        ({"state": "Available"}, {}, "Available"),
        ({"state": "Failed"}, {}, "Failed"),
        ({}, {"conflict": "not ours"}, "SeldonDeploymentConflict"),
        ({}, {"apply_error": "refused"}, "ApplyFailed"),
    ],
)
def test_a_pod_problem_explains_only_a_rollout_that_does_not_end(
    seldon_status: dict[str, Any], changes: dict[str, Any], reason: str
) -> None:
    status = derive_status(observe(seldon_status, pod_problem=FETCH_FAILED, **changes), {}, NOW)
    assert conditions(status)["SeldonDeploymentReady"][1] == reason
    assert conditions(status)["Ready"][1] == reason
    if reason == "ModelFetchFailed":
        assert status["state"] == "Creating"
        assert status["conditions"][1]["message"] == FETCH_FAILED.message


def test_a_pod_problem_is_announced_once_and_its_end_quietly() -> None:
    creating = derive_status(observe({}), {}, NOW)
    failing = derive_status(observe({}, pod_problem=FETCH_FAILED), creating, LATER)
    assert [(e.type, e.reason, e.message) for e in events_for(creating, failing, created_seldon=None)] == [
        ("Warning", "ModelFetchFailed", FETCH_FAILED.message)
    ]
    reworded = PodReport(Reason.MODEL_FETCH_FAILED, "init container ... cannot fetch the model: y")
    still = derive_status(observe({}, pod_problem=reworded), failing, LATER)
    assert events_for(failing, still, created_seldon=None) == []
    recovered = derive_status(observe({}), still, LATER)
    assert events_for(still, recovered, created_seldon=None) == []
