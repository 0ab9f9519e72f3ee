"""How the serving options reach the SeldonDeployment, for any valid input (the golden files show examples)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from zenmodel_operator.api.spec import ZenModelDeploymentSpec
from zenmodel_operator.core.render import (
    ParentRef,
    is_subset,
    render_seldon_deployment,
)
from zenmodel_operator.core.seldon import CANARY_PREDICTOR_NAME, NO_ENGINE_ANNOTATION, PREDICTOR_NAME
from zenmodel_operator.core.storage import parse_model_uri

PARENT = ParentRef("iris", "models", "uid-1")


def render(document: dict[str, Any]) -> dict[str, Any]:
    spec = ZenModelDeploymentSpec.model_validate(document)
    return render_seldon_deployment(
        PARENT, spec, parse_model_uri(spec.model.uri), secret_name="iris-rclone", credentials_hash="abc"
    )


def base(**overrides: Any) -> dict[str, Any]:
    model = {
        "name": "iris",
        "uri": "s3://models/iris/v3",
        "implementation": "SKLEARN_SERVER",
        "protocol": "v2",
        "parameters": [{"name": "method", "type": "STRING", "value": "predict_proba"}],
    }
    return {"model": model, **overrides}


def predictors(sdp: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in sdp["spec"]["predictors"]}


def pod(predictor: dict[str, Any]) -> dict[str, Any]:
    return dict(predictor["componentSpecs"][0]["spec"])


canaries = st.fixed_dictionaries(
    {
        "uri": st.sampled_from(["s3://models/iris/v4", "s3://other-bucket/iris"]),
        "replicas": st.integers(1, 10),
    }
).flatmap(
    lambda c: st.one_of(
        st.integers(1, 99).map(lambda p: {**c, "trafficPercent": p}),
        st.just({**c, "mode": "shadow"}),
    )
)


@given(canary=canaries, replicas=st.integers(0, 10))
def test_a_canary_is_a_second_predictor_sharing_all_but_its_uri(
    canary: dict[str, Any], replicas: int
) -> None:
    sdp = render(base(replicas=replicas, canary=canary))
    by_name = predictors(sdp)
    assert list(by_name) == [
        PREDICTOR_NAME,
        CANARY_PREDICTOR_NAME,
    ]  # the URL and Service names keep "default"
    main, second = by_name[PREDICTOR_NAME], by_name[CANARY_PREDICTOR_NAME]
    assert second["graph"] == {**main["graph"], "modelUri": canary["uri"]}  # credentials, server, parameters
    assert pod(second) == pod(main)
    assert (main["replicas"], second["replicas"]) == (replicas, canary["replicas"])
    if canary.get("mode") == "shadow":
        assert second["shadow"] is True and "traffic" not in second
        assert main["traffic"] == 100
    else:
        assert "shadow" not in second
        assert second["traffic"] == canary["trafficPercent"]
        assert main["traffic"] + second["traffic"] == 100


@given(canary=canaries)
def test_promotion_rolls_the_main_predictor_and_drops_the_canary(canary: dict[str, Any]) -> None:
    before = render(base(canary=canary))
    promoted = base()
    promoted["model"] = {**promoted["model"], "uri": canary["uri"]}
    after = render(promoted)
    assert [p["name"] for p in after["spec"]["predictors"]] == [PREDICTOR_NAME]
    assert after["spec"]["predictors"][0]["graph"]["modelUri"] == canary["uri"]
    assert "traffic" not in after["spec"]["predictors"][0]
    assert not is_subset(after, before)  # the operator writes the change: the list shrinks to one


targets = st.fixed_dictionaries(
    {},
    optional={
        "targetCPUUtilizationPercentage": st.integers(1, 1000),
        "targetMemoryUtilizationPercentage": st.integers(1, 1000),
    },
).filter(bool)


@given(minimum=st.integers(1, 10), extra=st.integers(0, 10), targets=targets, with_canary=st.booleans())
def test_autoscaling_becomes_the_main_components_hpa_spec(
    minimum: int, extra: int, targets: dict[str, int], with_canary: bool
) -> None:
    autoscaling = {"minReplicas": minimum, "maxReplicas": minimum + extra, **targets}
    canary = {"canary": {"uri": "s3://models/iris/v4", "trafficPercent": 10}} if with_canary else {}
    by_name = predictors(render(base(autoscaling=autoscaling, **canary)))
    hpa = by_name[PREDICTOR_NAME]["componentSpecs"][0]["hpaSpec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (minimum, minimum + extra)
    assert by_name[PREDICTOR_NAME]["replicas"] == minimum  # the starting count when replicas is left out
    metrics = {m["resource"]["name"]: m for m in hpa["metricsv2"]}
    expected = {
        "cpu": targets.get("targetCPUUtilizationPercentage"),
        "memory": targets.get("targetMemoryUtilizationPercentage"),
    }
    assert set(metrics) == {name for name, target in expected.items() if target is not None}
    for name, metric in metrics.items():
        assert metric["type"] == "Resource"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": expected[name]}
    if with_canary:
        assert "hpaSpec" not in by_name[CANARY_PREDICTOR_NAME]["componentSpecs"][0]


env_lists = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True).filter(
                lambda n: not n.startswith("RCLONE_CONFIG_")
            ),
            "value": st.text(max_size=30).filter(lambda v: "$(" not in v and "$$" not in v),
        }
    ),
    max_size=5,
    unique_by=lambda e: e["name"],
)
label_values = st.from_regex(r"([a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?)?", fullmatch=True)


@given(
    env=env_lists,
    node_selector=st.dictionaries(st.sampled_from(["nvidia.com/gpu.present", "pool", "zone"]), label_values),
    gpus=st.integers(0, 8),
    with_canary=st.booleans(),
)
def test_scheduling_env_and_gpus_reach_every_predictors_model_pod(
    env: list[dict[str, str]], node_selector: dict[str, str], gpus: int, with_canary: bool
) -> None:
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    affinity = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
            ]
        }
    }
    document = base(
        resources={"limits": {"nvidia.com/gpu": str(gpus)}},
        scheduling={"nodeSelector": node_selector, "tolerations": tolerations, "affinity": affinity},
        env=env,
    )
    if with_canary:
        document["canary"] = {"uri": "s3://models/iris/v4", "mode": "shadow"}
    for predictor in render(document)["spec"]["predictors"]:
        spec = pod(predictor)
        (container,) = spec["containers"]
        assert container["name"] == "iris"  # Seldon merges it into the model server's container
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
        expected_env = [{k: v for k, v in e.items() if v != ""} for e in env]
        assert container.get("env", []) == expected_env
        assert spec.get("nodeSelector", {}) == node_selector
        assert spec["tolerations"] == tolerations
        assert spec["affinity"] == affinity


def test_without_serving_options_the_output_is_unchanged() -> None:
    sdp = render(base(replicas=2))
    (predictor,) = sdp["spec"]["predictors"]
    assert set(predictor) == {"name", "replicas", "graph", "componentSpecs"}
    assert set(predictor["componentSpecs"][0]) == {"metadata", "spec"}
    assert set(pod(predictor)) == {"containers"}


@given(executor=st.sampled_from(["Enabled", "Disabled", None]), canary=st.none() | canaries)
def test_a_disabled_executor_is_seldons_no_engine_on_every_predictor(
    executor: str | None, canary: dict[str, Any] | None
) -> None:
    document = base(
        **({} if executor is None else {"executor": executor}),
        **({} if canary is None else {"canary": canary}),
    )
    sdp = render(document)
    for predictor in sdp["spec"]["predictors"]:
        if executor == "Disabled":
            assert predictor["annotations"] == {NO_ENGINE_ANNOTATION: "true"}
        else:
            assert "annotations" not in predictor
    if executor == "Enabled":  # the default renders as before the field existed: no write on upgrade
        assert sdp == render({k: v for k, v in document.items() if k != "executor"})
