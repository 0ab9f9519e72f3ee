"""Status with a canary: replicas attributed per predictor by Seldon's Deployment names, status.canary, and a
Ready message that names both predictors."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from unit.test_status import NOW, conditions, make_spec, observe
from zenmodel_operator.api.status import ZenModelDeploymentStatus
from zenmodel_operator.core.seldon import predictor_deployment_names
from zenmodel_operator.core.status import derive_status

SPLIT = {"uri": "s3://models/iris/v4", "trafficPercent": 10, "replicas": 1}
SHADOW = {"uri": "s3://models/iris/v4", "mode": "shadow", "replicas": 2}


def deployments(main: int, canary: int) -> dict[str, Any]:
    """Seldon's deploymentStatus, keyed by Deployment name (its GetDeploymentName)."""
    return {
        "iris-default-0-iris": {"replicas": 2, "availableReplicas": main},
        "iris-canary-0-iris": {"replicas": 1, "availableReplicas": canary},
    }


def test_a_split_canary_is_mirrored_and_its_replicas_counted_apart() -> None:
    spec = make_spec(canary=SPLIT)
    seldon = {"state": "Available", "deploymentStatus": deployments(main=2, canary=1)}
    status = derive_status(observe(seldon, spec=spec), {}, NOW)
    assert status["availableReplicas"] == 2  # the main predictor's only
    assert status["canary"] == {
        "uri": "s3://models/iris/v4",
        "mode": "split",
        "trafficPercent": 10,
        "traffic": "10%",
        "replicas": 1,
        "availableReplicas": 1,
    }
    ready = status["conditions"][2]
    assert ready["status"] == "True"
    assert "predictors default (s3://models/iris, 90% of requests)" in ready["message"]
    assert "canary (s3://models/iris/v4, 10%)" in ready["message"]
    ZenModelDeploymentStatus.model_validate(status)  # fits the CRD's status schema


def test_a_shadow_has_no_traffic_share() -> None:
    seldon = {"state": "Available", "deploymentStatus": deployments(main=2, canary=2)}
    status = derive_status(observe(seldon, spec=make_spec(canary=SHADOW)), {}, NOW)
    assert status["canary"]["traffic"] == "shadow"
    assert "trafficPercent" not in status["canary"]
    assert "shadowed by predictor canary (s3://models/iris/v4)" in status["conditions"][2]["message"]


def test_a_rollout_names_both_predictors() -> None:
    seldon = {"state": "Creating", "deploymentStatus": deployments(main=2, canary=0)}
    status = derive_status(observe(seldon, spec=make_spec(canary=SPLIT)), {}, NOW)
    assert conditions(status)["Ready"] == ("False", "Creating")
    assert (
        "predictor default 2/2, predictor canary 0/1 replicas available" in status["conditions"][2]["message"]
    )
    assert status["canary"]["availableReplicas"] == 0


def test_after_promotion_the_canary_leaves_the_status() -> None:
    """Seldon may still list the removed canary's Deployment: it counts for nothing."""
    seldon = {"state": "Available", "deploymentStatus": deployments(main=2, canary=1)}
    status = derive_status(observe(seldon, spec=make_spec()), {}, NOW)
    assert "canary" not in status
    assert status["availableReplicas"] == 2
    assert status["conditions"][2]["message"] == "model iris is served at " + status["predictionURL"]


def test_with_autoscaling_the_desired_count_is_the_autoscalers() -> None:
    spec = make_spec(autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70})
    spec = spec.model_copy(update={"replicas": None})
    assert derive_status(observe({"state": "Creating"}, spec=spec), {}, NOW)["replicas"] == 2  # minReplicas
    scaled = {"iris-default-0-iris": {"replicas": 4, "availableReplicas": 3}}
    status = derive_status(observe({"state": "Creating", "deploymentStatus": scaled}, spec=spec), {}, NOW)
    assert (status["replicas"], status["availableReplicas"]) == (4, 3)
    assert "3/4 replicas available" in status["conditions"][2]["message"]
    # Without autoscaling the spec decides, whatever Seldon reports mid-rollout.
    fixed = derive_status(observe({"state": "Creating", "deploymentStatus": scaled}), {}, NOW)
    assert fixed["replicas"] == 2


names = st.from_regex(r"[a-z]([-a-z0-9]{0,53}[a-z0-9])?", fullmatch=True)


@given(name=names, model=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_deployment_names_are_seldons_and_tell_the_predictors_apart(name: str, model: str) -> None:
    main = predictor_deployment_names(name, "default", model)
    canary = predictor_deployment_names(name, "canary", model)
    assert not main & canary
    for candidate in main | canary:
        assert len(candidate) <= 63 or candidate.startswith(f"{name}-")  # Seldon's prefix variant may exceed
    full = f"{name}-default-0-{model}"
    assert main == {full} if len(full) <= 63 else full not in main


def test_long_names_use_seldons_md5_names() -> None:
    # Seldon v1.19 hashes a name over 63 characters: md5 of "iris-default-0-" + 60 m's, from md5sum(1).
    digest = "3342bd9be98b1098a523efd5dd9ea577"
    assert predictor_deployment_names("iris", "default", "m" * 60) == {f"seldon-{digest}", f"iris-{digest}"}
