"""The serving options on a real apiserver: the CEL rules refuse what `render` refuses, naming the field; a
spec using every option is stored as written; and the operator writes it into a SeldonDeployment that
Seldon's own CRD accepts, mirrors a canary and drops it on promotion. The tests play Seldon Core's
controller by writing the SeldonDeployment's status where the spec asks for GPUs (which kwok's node lacks),
and let Seldon's real controller roll out a canary otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from support.localcluster import LocalCluster
from support.objects import (
    AVAILABLE_TIMEOUT,
    TIMEOUT,
    apply,
    apply_until_available,
    condition,
    get,
    must_get,
    patch_seldon_status,
    s3_secret,
    status_of,
    wait_state,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.cli import RenderError, render_documents
from zenmodel_operator.storage import MODEL_URI_CHECKS
from zenmodel_operator.validation import first_failure

pytestmark = pytest.mark.e2e

EVERY_OPTION: dict[str, Any] = {
    "replicas": 2,
    "resources": {"limits": {"nvidia.com/gpu": "1"}},
    "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
    "canary": {"uri": "s3://models/iris/v4", "trafficPercent": 10, "replicas": 1},
    "scheduling": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu-type", "operator": "In", "values": ["a100"]}]}
                    ]
                }
            }
        },
    },
    "env": [{"name": "LOG_LEVEL", "value": "debug"}],
}

ACCOUNT_1 = "https://acct1.blob.core.windows.net/models/iris/v3"

REFUSED = [
    pytest.param(
        {"autoscaling": {"minReplicas": 3, "maxReplicas": 2, "targetCPUUtilizationPercentage": 70}},
        "spec.autoscaling.maxReplicas",
        id="min-above-max",
    ),
    pytest.param({"autoscaling": {"maxReplicas": 2}}, "spec.autoscaling: needs", id="no-target"),
    pytest.param(
        {"replicas": 9, "autoscaling": {"maxReplicas": 5, "targetMemoryUtilizationPercentage": 80}},
        "spec.replicas: with autoscaling",
        id="replicas-outside-range",
    ),
    pytest.param(
        {"canary": {"uri": "gs://models/iris/v4", "trafficPercent": 10}},
        "spec.canary.uri: must have model.uri's scheme",
        id="canary-other-scheme",
    ),
    pytest.param(
        {"canary": {"uri": "s3://models/$(AWS_SECRET_ACCESS_KEY)", "trafficPercent": 10}},
        f'spec.canary.uri: Invalid value: "string": {first_failure(MODEL_URI_CHECKS, "s3://models/$(")}',
        id="canary-variable-reference",
    ),
    pytest.param(
        {"canary": {"uri": "s3://m/iris/v4", "trafficPercent": 10}},
        f'spec.canary.uri: Invalid value: "string": {first_failure(MODEL_URI_CHECKS, "s3://m/iris/v4")}',
        id="canary-bad-bucket",
    ),
    pytest.param(
        {
            "uri": ACCOUNT_1,
            "credentials": {"secretRef": {"name": "az-creds"}},
            "canary": {"uri": ACCOUNT_1.replace("acct1", "acct2"), "trafficPercent": 10},
        },
        "spec.canary.uri: must name model.uri's Azure storage account",
        id="canary-other-azure-account",
    ),
    pytest.param(
        {"canary": {"uri": "s3://models/iris/v4"}}, "spec.canary.trafficPercent", id="split-no-share"
    ),
    pytest.param(
        {"canary": {"uri": "s3://models/iris/v4", "mode": "shadow", "trafficPercent": 5}},
        "spec.canary.trafficPercent: a shadow takes no trafficPercent",
        id="shadow-with-share",
    ),
    pytest.param(
        {"canary": {"uri": "s3://models/iris/v4", "trafficPercent": 100}},
        "spec.canary.trafficPercent",
        id="share-100",
    ),
    pytest.param(
        {"env": [{"name": "RCLONE_CONFIG_S3_ENDPOINT", "value": "http://evil.example.com"}]},
        'spec.env[0].name: Invalid value: "string": names starting with RCLONE_CONFIG_',
        id="env-rclone-name",
    ),
    pytest.param(
        {"env": [{"name": "TOKEN", "value": "$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)"}]},
        "spec.env[0].value: Invalid value: \"string\": contains '$(', which Kubernetes expands",
        id="env-variable-reference",
    ),
    pytest.param(
        {"env": [{"name": "PRICE", "value": "$$5"}]},
        "spec.env[0].value: Invalid value: \"string\": contains '$$', which Kubernetes expands",
        id="env-escaped-dollar",
    ),
    pytest.param({"env": [{"name": "1=2", "value": "x"}]}, "spec.env[0].name", id="env-bad-name"),
    pytest.param(
        {"scheduling": {"nodeSelector": {"gpu type": "a100"}}},
        "spec.scheduling.nodeSelector: keys must be label keys",
        id="node-selector-key",
    ),
    pytest.param(
        {"scheduling": {"nodeSelector": {"gpu": "not a value"}}},
        "must be a label value",
        id="node-selector-value",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "nvidia gpu", "operator": "Exists"}]}},
        'spec.scheduling.tolerations[0].key: Invalid value: "string": must be a label key',
        id="toleration-key",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Maybe"}]}},
        "spec.scheduling.tolerations[0].operator",
        id="toleration-operator",
    ),
    pytest.param(
        # Seldon's CRD would refuse this only when the operator writes the SeldonDeployment (with a 500).
        {
            "scheduling": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
            }
        },
        "nodeSelectorTerms",
        id="affinity-missing-terms",
    ),
    pytest.param(
        {
            "scheduling": {
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 1, "podAffinityTerm": {"topologyKey": "k", "labelSelecter": {}}}
                        ]
                    }
                }
            }
        },
        "labelSelecter",
        id="affinity-deep-typo",
    ),
]


@pytest.mark.parametrize(("change", "message"), REFUSED)
def test_the_apiserver_and_render_refuse_the_same_specs(
    cluster: LocalCluster, namespace: str, change: dict[str, Any], message: str
) -> None:
    doc = zmd("bad", namespace, **change)
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert get(cluster, "zmd", namespace, "bad") is None
    with pytest.raises(RenderError):
        render_documents([doc], show_secrets=False, require_credentials_label=True)


def test_every_option_is_stored_as_written_and_explained(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(zmd("iris", namespace, **EVERY_OPTION)))
    stored = must_get(cluster, "zmd", namespace, "iris")["spec"]
    assert stored["scheduling"]["affinity"] == EVERY_OPTION["scheduling"]["affinity"]  # not pruned
    assert stored["canary"] == {**EVERY_OPTION["canary"], "mode": "split"}
    assert stored["env"] == EVERY_OPTION["env"]

    without_replicas = {k: v for k, v in EVERY_OPTION.items() if k != "replicas"}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(zmd("auto", namespace, **without_replicas)))
    assert "replicas" not in must_get(cluster, "zmd", namespace, "auto")["spec"]  # minReplicas decides

    for field, words in [
        ("spec.canary.trafficPercent", "Share of requests the canary answers"),
        ("spec.autoscaling.targetMemoryUtilizationPercentage", "Average memory use"),
        ("spec.scheduling.affinity.nodeAffinity", "NodeAffinity"),
        ("spec.env.value", "may not contain"),
        ("status.canary.availableReplicas", "Canary replicas available"),
    ]:
        assert words in cluster.kubectl("explain", f"zmd.{field}").stdout, field


def test_the_canary_column_shows_its_traffic(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(zmd("iris", namespace, **EVERY_OPTION)))
    canary = {"uri": "s3://models/iris/v4", "mode": "split", "trafficPercent": 10, "traffic": "10%"}
    status = {"canary": {**canary, "replicas": 1, "availableReplicas": 1}}
    cluster.kubectl(
        "patch", "zmd", "iris", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    header, row = cluster.kubectl("get", "zmd", "iris", "-n", namespace).stdout.splitlines()[:2]
    columns = header.split()
    assert columns == ["NAME", "STATE", "READY", "MODEL", "URL", "CANARY", "AGE"]
    assert "10%" in row.split()


def seldon_predictors(cluster: LocalCluster, namespace: str) -> dict[str, dict[str, Any]]:
    sdp = get(cluster, "seldondeployment", namespace, "iris") or {"spec": {"predictors": []}}
    return {p["name"]: p for p in sdp["spec"]["predictors"]}


def test_seldon_rolls_out_a_canary_and_the_operator_mirrors_it(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    """Seldon Core's real controller creates the canary's own Deployment; kwok's node makes it Ready."""
    canary = {"uri": "s3://models/iris/v4", "trafficPercent": 25}
    apply_until_available(
        cluster, s3_secret(namespace), zmd("iris", namespace, canary=canary, env=EVERY_OPTION["env"])
    )
    wait_for(
        lambda: status_of(cluster, namespace, "iris").get("canary", {}).get("availableReplicas") == 1,
        AVAILABLE_TIMEOUT,
        "the canary's replicas were never mirrored",
    )
    parent = must_get(cluster, "zmd", namespace, "iris")
    assert parent["status"]["availableReplicas"] == 1
    assert parent["status"]["canary"]["traffic"] == "25%"
    deployments = must_get(cluster, "seldondeployment", namespace, "iris")["status"]["deploymentStatus"]
    assert set(deployments) == {"iris-default-0-iris", "iris-canary-0-iris"}
    for deployment in deployments:  # Seldon merged the env into each predictor's model container
        pod = must_get(cluster, "deployment", namespace, deployment)["spec"]["template"]["spec"]
        (model,) = [c for c in pod["containers"] if c["name"] == "iris"]
        assert {"name": "LOG_LEVEL", "value": "debug"} in model["env"]
    ready = condition(parent, "Ready")
    assert "canary (s3://models/iris/v4, 25%)" in ready["message"]


def test_a_canary_is_served_mirrored_and_promoted(
    cluster: LocalCluster, namespace_without_seldon: str, operator: OperatorProcess
) -> None:
    # Here the test plays Seldon: GPU scheduling would leave real pods Pending on kwok's node.
    namespace = namespace_without_seldon
    apply(cluster, s3_secret(namespace), zmd("iris", namespace, **EVERY_OPTION))
    wait_for(lambda: len(seldon_predictors(cluster, namespace)) == 2, TIMEOUT, "no canary predictor")
    predictors = seldon_predictors(cluster, namespace)
    main, canary = predictors["default"], predictors["canary"]
    assert (main["traffic"], canary["traffic"]) == (90, 10)
    assert canary["graph"]["modelUri"] == "s3://models/iris/v4"
    assert canary["graph"]["envSecretRefName"] == main["graph"]["envSecretRefName"] == "iris-rclone"
    assert main["componentSpecs"][0]["hpaSpec"]["metricsv2"][0]["resource"]["name"] == "cpu"
    for predictor in (main, canary):
        pod = predictor["componentSpecs"][0]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["affinity"] == EVERY_OPTION["scheduling"]["affinity"]
        assert pod["containers"][0]["env"] == EVERY_OPTION["env"]
        assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}

    patch_seldon_status(
        cluster,
        namespace,
        "iris",
        {
            "state": "Available",
            "deploymentStatus": {
                "iris-default-0-iris": {"replicas": 2, "availableReplicas": 2},
                "iris-canary-0-iris": {"replicas": 1, "availableReplicas": 1},
            },
        },
    )
    parent = wait_state(cluster, namespace, "iris", "Available")
    wait_for(
        lambda: status_of(cluster, namespace, "iris").get("canary", {}).get("availableReplicas") == 1,
        TIMEOUT,
        "the canary's replicas were never mirrored",
    )
    status = status_of(cluster, namespace, "iris")
    assert status["availableReplicas"] == 2
    assert status["canary"]["traffic"] == "10%"
    ready = condition(must_get(cluster, "zmd", namespace, "iris"), "Ready")
    assert "predictors default (s3://models/iris/v3, 90% of requests)" in ready["message"]
    assert "canary (s3://models/iris/v4, 10%)" in ready["message"]
    assert parent["metadata"]["generation"] == 1

    promoted = zmd("iris", namespace, uri="s3://models/iris/v4", **EVERY_OPTION)
    del promoted["spec"]["canary"]
    apply(cluster, promoted)
    wait_for(lambda: list(seldon_predictors(cluster, namespace)) == ["default"], TIMEOUT, "canary kept")
    (main,) = seldon_predictors(cluster, namespace).values()
    assert main["graph"]["modelUri"] == "s3://models/iris/v4"
    assert "traffic" not in main
    wait_for(
        lambda: (
            status_of(cluster, namespace, "iris").get("observedGeneration") == 2
            and "canary" not in status_of(cluster, namespace, "iris")
        ),
        TIMEOUT,
        "status.canary outlived the promotion",
    )
