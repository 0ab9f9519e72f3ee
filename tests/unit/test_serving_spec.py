"""The serving options' rules (autoscaling, canary, scheduling, env, executor), as pydantic checks them; the
CRD's CEL twins of the same rules are exercised on a real apiserver by tests/e2e/test_serving_options.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from zenmodel_operator.api.spec import (
    PROTOCOLS_BY_IMPLEMENTATION,
    RCLONE_ENV_PREFIX,
    Executor,
    Implementation,
    Protocol,
    ZenModelDeploymentSpec,
)
from zenmodel_operator.api.uris import MODEL_URI_CHECKS
from zenmodel_operator.api.validation import VARIABLE_REFERENCE, first_failure, python_pattern

MAIN_URIS = {
    "s3": "s3://models/iris/v3",
    "gs": "gs://models/iris/v3",
    "az": "az://models/iris/v3",
    "https": "https://acct1.blob.core.windows.net/models/iris/v3",
    "pvc": "pvc://models/iris/v3",
}


def spec(uri: str = MAIN_URIS["s3"], **overrides: Any) -> dict[str, Any]:
    return {"model": {"name": "iris", "uri": uri, "implementation": "SKLEARN_SERVER"}, **overrides}


def validate(document: dict[str, Any]) -> ZenModelDeploymentSpec:
    return ZenModelDeploymentSpec.model_validate(document)


@given(
    minimum=st.integers(1, 20),
    maximum=st.integers(1, 20),
    replicas=st.none() | st.integers(0, 25),
    cpu=st.none() | st.integers(1, 1000),
    memory=st.none() | st.integers(1, 1000),
)
def test_autoscaling_accepts_exactly_the_consistent_ranges(
    minimum: int, maximum: int, replicas: int | None, cpu: int | None, memory: int | None
) -> None:
    autoscaling: dict[str, Any] = {"minReplicas": minimum, "maxReplicas": maximum}
    if cpu is not None:
        autoscaling["targetCPUUtilizationPercentage"] = cpu
    if memory is not None:
        autoscaling["targetMemoryUtilizationPercentage"] = memory
    document = spec(autoscaling=autoscaling)
    if replicas is not None:
        document["replicas"] = replicas
    valid = (
        minimum <= maximum
        and (cpu is not None or memory is not None)
        and (replicas is None or minimum <= replicas <= maximum)
    )
    if valid:
        parsed = validate(document)
        assert parsed.desired_replicas == (minimum if replicas is None else replicas)
        assert minimum <= parsed.desired_replicas <= maximum
    else:
        with pytest.raises(ValidationError, match=r"spec\.(autoscaling|replicas)"):
            validate(document)


def test_replicas_default_to_one_without_autoscaling() -> None:
    assert validate(spec()).desired_replicas == 1
    assert validate(spec(replicas=0)).desired_replicas == 0


@given(main=st.sampled_from(sorted(MAIN_URIS)), canary=st.sampled_from(sorted(MAIN_URIS)))
def test_a_canary_must_share_the_main_models_scheme(main: str, canary: str) -> None:
    document = spec(
        MAIN_URIS[main], canary={"uri": MAIN_URIS[canary].replace("v3", "v4"), "trafficPercent": 5}
    )
    if main == canary:
        assert validate(document).canary is not None
    else:
        with pytest.raises(ValidationError, match=re.escape("spec.canary.uri: must have model.uri's scheme")):
            validate(document)


def test_an_azure_https_canary_must_name_the_same_account() -> None:
    other = "https://acct2.blob.core.windows.net/models/iris/v4"
    with pytest.raises(ValidationError, match=re.escape("must name model.uri's Azure storage account")):
        validate(spec(MAIN_URIS["https"], canary={"uri": other, "trafficPercent": 5}))


@given(
    mode=st.sampled_from(["split", "shadow", None]),
    percent=st.none() | st.integers(-5, 105),
)
def test_trafficpercent_is_required_for_a_split_and_refused_for_a_shadow(
    mode: str | None, percent: int | None
) -> None:
    canary: dict[str, Any] = {"uri": "s3://models/iris/v4"}
    if mode is not None:
        canary["mode"] = mode
    if percent is not None:
        canary["trafficPercent"] = percent
    split = mode in ("split", None)  # split is the default
    valid = (split and percent is not None and 1 <= percent <= 99) or (not split and percent is None)
    if valid:
        parsed = validate(spec(canary=canary)).canary
        assert parsed is not None and parsed.trafficPercent == percent
    else:
        with pytest.raises(ValidationError, match=r"trafficPercent"):
            validate(spec(canary=canary))


@pytest.mark.parametrize(
    "uri", ["s3://models/$(HOME)", "s3://models/$$x", "s3://m/x", "s3://models/x?v=1", "s3://models/\u00a0"]
)
def test_a_canary_uri_gets_exactly_the_model_uri_checks(uri: str) -> None:
    problem = first_failure(MODEL_URI_CHECKS, uri)
    assert problem is not None
    with pytest.raises(ValidationError, match=re.escape(problem)) as refused:
        validate(spec(canary={"uri": uri, "trafficPercent": 5}))
    assert ("canary", "uri") in [error["loc"][:2] for error in refused.value.errors()]


REFERENCE = python_pattern(VARIABLE_REFERENCE)
env_names = st.from_regex(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,30}", fullmatch=True)


@given(name=env_names, value=st.text(max_size=50))
def test_env_refuses_rclone_names_and_variable_references(name: str, value: str) -> None:
    document = spec(env=[{"name": name, "value": value}])
    if name.startswith(RCLONE_ENV_PREFIX) or REFERENCE.search(value):
        with pytest.raises(ValidationError, match=r"env\.0\.(name|value)"):
            validate(document)
    else:
        assert validate(document).env[0].value == value


@given(suffix=env_names, prefix=st.text(max_size=10), rest=st.text(max_size=10))
def test_every_rclone_name_and_every_reference_is_refused(suffix: str, prefix: str, rest: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"names starting with {RCLONE_ENV_PREFIX}")):
        validate(spec(env=[{"name": RCLONE_ENV_PREFIX + suffix, "value": "x"}]))
    for reference in ("$(", "$$"):
        with pytest.raises(
            ValidationError, match=re.escape("which Kubernetes expands as a variable reference")
        ):
            validate(spec(env=[{"name": "X", "value": f"{prefix}{reference}{rest}"}]))


@pytest.mark.parametrize("name", ["1=2", "A B", "", "X$"])
def test_env_names_follow_kubernetes(name: str) -> None:
    with pytest.raises(ValidationError, match=r"env\.0\.name"):
        validate(spec(env=[{"name": name, "value": "x"}]))


def test_env_names_are_unique_and_values_only() -> None:
    with pytest.raises(ValidationError, match=re.escape("duplicate names ['A']")):
        validate(spec(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        validate(spec(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))


@pytest.mark.parametrize(
    ("scheduling", "field"),
    [
        ({"nodeSelector": {"gpu type": "a100"}}, "spec.scheduling.nodeSelector: keys must be label keys"),
        ({"nodeSelector": {"gpu": "not a value"}}, "scheduling.nodeSelector.gpu"),
        ({"tolerations": [{"key": "k", "operator": "Maybe"}]}, "scheduling.tolerations.0.operator"),
        ({"tolerations": [{"key": "k", "effect": "Never"}]}, "scheduling.tolerations.0.effect"),
        ({"affinity": {"nodeAfinity": {}}}, "scheduling.affinity.nodeAfinity"),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}},
            "nodeSelectorTerms",
        ),
        (
            {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}},
            "topologyKey",
        ),
        (
            {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "-x"}]},
            "must be a label value",
        ),
    ],
)
def test_scheduling_mistakes_are_refused(scheduling: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(field)):
        validate(spec(scheduling=scheduling))


@pytest.mark.parametrize(
    ("implementation", "protocol"),
    [(impl, protocol) for impl, protocols in PROTOCOLS_BY_IMPLEMENTATION.items() for protocol in protocols],
)
def test_the_executor_may_be_left_out_exactly_under_v2(
    implementation: Implementation, protocol: Protocol
) -> None:
    document = spec(executor="Disabled")
    document["model"].update({"implementation": implementation.value, "protocol": protocol.value})
    if implementation is Implementation.CUSTOM:
        document["custom"] = {"image": "registry.example.com/iris:1.0"}
    assert validate({**document, "executor": "Enabled"}).executor is Executor.ENABLED
    if protocol is Protocol.V2:
        assert validate(document).executor is Executor.DISABLED
    else:
        with pytest.raises(
            ValidationError, match=re.escape("spec.executor: Disabled needs model.protocol v2")
        ):
            validate(document)


def test_the_executor_is_enabled_unless_disabled() -> None:
    assert validate(spec()).executor is Executor.ENABLED
    with pytest.raises(ValidationError, match="executor"):
        validate(spec(executor="disabled"))  # the enum's spelling, as the CRD's schema has it
