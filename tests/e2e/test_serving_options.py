"""The serving options on a real apiserver: the CEL rules refuse what `render` refuses, naming the field, and
a spec using every option is stored as written. Then Seldon Core's own controller rolls them out, with
nothing writing Seldon's status by hand: it creates the HorizontalPodAutoscaler for `autoscaling`, gives a
canary its own Deployment (mirrored in `status.canary`) and removes it on promotion, and kube-scheduler
places a GPU model's pods on the one fake kwok node with the GPUs, label and taint its spec asks for."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    get,
    must_get,
    s3_secret,
    status_of,
    storage_initializer,
    wait_state,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.api.uris import MODEL_URI_CHECKS
from zenmodel_operator.api.validation import first_failure
from zenmodel_operator.cli import RenderError, render_documents
from zenmodel_operator.core.seldon import CANARY_PREDICTOR_NAME, PREDICTOR_NAME, predictor_deployment_names

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

V3, V4 = "s3://models/iris/v3", "s3://models/iris/v4"  # zmd's default model URI and the next version
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
    pytest.param(
        {"executor": "Disabled"},  # zmd's model speaks the seldon protocol, which needs the executor
        "spec.executor: Disabled needs model.protocol v2",
        id="no-executor-seldon-protocol",
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
    header, row = cluster.kubectl("get", "zmd", "iris", "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "STATE", "READY", "MODEL", "URL", "CANARY", "AGE"]
    assert row.split()[5] == "25%"  # the CANARY column, from the status the operator wrote


def hpa(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any] | None:
    return get(cluster, "horizontalpodautoscalers.v2.autoscaling", namespace, name)


def controller_uid(obj: dict[str, Any]) -> str:
    (owner,) = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")]
    return str(owner["uid"])


def test_seldon_creates_the_horizontal_pod_autoscaler(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    """Seldon turns the hpaSpec we render into an HPA on its predictor Deployment, owned through the
    SeldonDeployment by the parent: an edit reaches it, and the garbage collector takes it with the parent."""
    autoscaling = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 70,
        "targetMemoryUtilizationPercentage": 80,
    }
    parent = apply_until_available(
        cluster, s3_secret(namespace), zmd("iris", namespace, autoscaling=autoscaling)
    )
    (deployment_name,) = predictor_deployment_names("iris", PREDICTOR_NAME, "iris")
    autoscaler = hpa(cluster, namespace, deployment_name)
    assert autoscaler is not None, "Seldon created no HorizontalPodAutoscaler"
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name}
    assert autoscaler["spec"]["scaleTargetRef"] == target
    assert must_get(cluster, "deployment", namespace, deployment_name)["status"]["availableReplicas"] == 1
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (1, 3)
    assert autoscaler["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": percent}},
        }
        for name, percent in (("cpu", 70), ("memory", 80))
    ]
    sdep = must_get(cluster, "seldondeployment", namespace, "iris")
    assert controller_uid(autoscaler) == sdep["metadata"]["uid"]
    assert controller_uid(sdep) == parent["metadata"]["uid"]

    apply(cluster, zmd("iris", namespace, autoscaling={**autoscaling, "maxReplicas": 5}))
    wait_for(
        lambda: (hpa(cluster, namespace, deployment_name) or {}).get("spec", {}).get("maxReplicas") == 5,
        TIMEOUT,
        "the new maxReplicas never reached the HorizontalPodAutoscaler",
    )
    wait_state(cluster, namespace, "iris", "Available", generation=2)

    cluster.kubectl("delete", "zmd", "iris", "-n", namespace, "--wait=false")
    wait_for(
        lambda: hpa(cluster, namespace, deployment_name) is None,
        GC_TIMEOUT,
        "the garbage collector left the HorizontalPodAutoscaler behind",
    )


def fetched_uri(deployment: dict[str, Any]) -> str:
    """The model URI the Deployment's pods fetch."""
    return str(storage_initializer(deployment["spec"]["template"]["spec"])["args"][0])


REVISION = "deployment.kubernetes.io/revision"  # the Deployment controller's, on it and its ReplicaSets


def current_replica_set(cluster: LocalCluster, namespace: str, deployment: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet of the Deployment's current pod template (its revision), once the controller made it."""
    items = json.loads(cluster.kubectl("get", "replicasets", "-n", namespace, "-o", "json").stdout)["items"]
    revision = deployment["metadata"].get("annotations", {}).get(REVISION)
    for replica_set in items:
        ours = controller_uid(replica_set) == deployment["metadata"]["uid"]
        if ours and replica_set["metadata"].get("annotations", {}).get(REVISION) == revision:
            return dict(replica_set)
    return {}


def test_promotion_rolls_the_main_predictor_and_removes_the_canarys(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    """Promotion is an edit (the canary's URI becomes model.uri, `canary` goes): Seldon rolls the main
    predictor's Deployment in place and deletes the canary's."""
    canary = {"uri": V4, "trafficPercent": 10}
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace, canary=canary))
    (main_name,) = predictor_deployment_names("iris", PREDICTOR_NAME, "iris")
    (canary_name,) = predictor_deployment_names("iris", CANARY_PREDICTOR_NAME, "iris")
    wait_for(
        lambda: status_of(cluster, namespace, "iris").get("canary", {}).get("availableReplicas") == 1,
        AVAILABLE_TIMEOUT,
        "the canary's replicas were never mirrored",
    )
    predictors = seldon_predictors(cluster, namespace)
    assert (predictors["default"]["traffic"], predictors["canary"]["traffic"]) == (90, 10)
    canary_deployment = must_get(cluster, "deployment", namespace, canary_name)
    assert canary_deployment["status"]["availableReplicas"] == 1
    initializer = storage_initializer(canary_deployment["spec"]["template"]["spec"])
    assert initializer["args"][0] == V4
    assert initializer["envFrom"] == [{"secretRef": {"name": "iris-rclone"}}]  # the main model's Secret
    main_before = must_get(cluster, "deployment", namespace, main_name)
    assert fetched_uri(main_before) == V3
    replica_set_before = current_replica_set(cluster, namespace, main_before)["metadata"]["uid"]

    apply(cluster, zmd("iris", namespace, uri=V4))  # promotion: the canary's URI, no canary
    wait_for(lambda: list(seldon_predictors(cluster, namespace)) == ["default"], TIMEOUT, "canary kept")
    assert "traffic" not in seldon_predictors(cluster, namespace)["default"]

    def rolled() -> bool:
        deployment = must_get(cluster, "deployment", namespace, main_name)
        replica_set = current_replica_set(cluster, namespace, deployment)
        status = deployment.get("status") or {}
        return (
            fetched_uri(deployment) == V4
            and status.get("observedGeneration") == deployment["metadata"]["generation"]
            and (status.get("updatedReplicas"), status.get("availableReplicas"), status.get("replicas"))
            == (1, 1, 1)  # the old pod is gone
            and replica_set.get("metadata", {}).get("uid") not in (None, replica_set_before)
            and (replica_set.get("status") or {}).get("availableReplicas") == 1
        )

    wait_for(rolled, AVAILABLE_TIMEOUT, "the main predictor never rolled to the promoted URI")
    main_after = must_get(cluster, "deployment", namespace, main_name)
    assert main_after["metadata"]["uid"] == main_before["metadata"]["uid"]  # rolled, not recreated
    wait_for(
        lambda: get(cluster, "deployment", namespace, canary_name) is None,
        AVAILABLE_TIMEOUT,
        "Seldon never removed the canary's Deployment",
    )
    parent = wait_state(cluster, namespace, "iris", "Available", generation=2)
    assert "canary" not in parent["status"]
    # Seldon's own status may still count the rollout's surge pod (2) when it reports Available; the
    # mirror follows once Seldon catches up with the Deployment.
    wait_for(
        lambda: status_of(cluster, namespace, "iris").get("availableReplicas") == 1,
        TIMEOUT,
        "the promoted predictor's single replica was never mirrored",
    )
    ready = condition(parent, "Ready")["message"]
    assert ready == f"model iris is served at {parent['status']['predictionURL']}"  # no canary named


GPU_NODE, DECOY_NODE = "kwok-gpu-0", "kwok-gpu-decoy-0"
GPU_PRESENT = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
GPU_PRODUCT = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
GPU_SCHEDULING: dict[str, Any] = {
    "nodeSelector": GPU_PRESENT,
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": key, "operator": "In", "values": [value]}
                            for key, value in GPU_PRODUCT.items()
                        ]
                    }
                ]
            }
        }
    },
}


def pods_on(cluster: LocalCluster, node: str) -> list[str]:
    listed = cluster.kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "name")
    return listed.stdout.split()


@pytest.fixture
def gpu_nodes(cluster: LocalCluster, namespace: str) -> Iterator[None]:
    """Two more kwok Nodes with four GPUs each, tainted as GPU nodes are: GPU_NODE carries the label the
    spec's nodeSelector names, the decoy does not. Other tests' pods cannot land there: they do not
    tolerate the taint, and EVERY_OPTION's (which do) need a gpu-type label neither node has."""
    gpus = {"nvidia.com/gpu": "4"}
    nodes = (GPU_NODE, DECOY_NODE)
    try:
        cluster.add_fake_node(GPU_NODE, {**GPU_PRESENT, **GPU_PRODUCT}, [GPU_TAINT], gpus)
        cluster.add_fake_node(DECOY_NODE, GPU_PRODUCT, [GPU_TAINT], gpus)
        yield
    finally:
        # The models go before their nodes: a pod left on a deleted Node waits out the pod garbage
        # collector's 40 s quarantine, and held its namespace's deletion (and the write budget test, which
        # waits for a quiet machine) that long.
        cluster.kubectl("delete", "zenmodeldeployments", "--all", "-n", namespace, "--wait=true", check=False)
        wait_for(
            lambda: not any(pods_on(cluster, node) for node in nodes), GC_TIMEOUT, "pods left on GPU nodes"
        )
        for node in nodes:
            cluster.delete_node(node)


@pytest.mark.usefixtures("gpu_nodes")
def test_kube_scheduler_places_a_gpu_model_on_the_gpu_node(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    """Both predictors' pods go to the one node with the label, the taint they tolerate and free GPUs:
    not the decoy (GPUs and taint but no label), not kwok's default node (no GPUs)."""
    spec: dict[str, Any] = {
        "replicas": 2,
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "scheduling": GPU_SCHEDULING,
        "canary": {"uri": V4, "trafficPercent": 10, "replicas": 1},
    }
    apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace, **spec))
    wait_for(
        lambda: status_of(cluster, namespace, "iris").get("canary", {}).get("availableReplicas") == 1,
        AVAILABLE_TIMEOUT,
        "the canary's replicas were never mirrored",
    )
    assert status_of(cluster, namespace, "iris")["availableReplicas"] == 2
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", "seldon-deployment-id=iris", "-o", "json")
    pods = json.loads(out.stdout)["items"]
    fetched = sorted(storage_initializer(pod["spec"])["args"][0] for pod in pods)
    assert fetched == [V3, V3, V4]  # two of the main predictor, one of the canary
    for pod in pods:
        assert pod["spec"]["nodeName"] == GPU_NODE
        assert pod["spec"]["nodeSelector"] == GPU_PRESENT
        assert GPU_SCHEDULING["tolerations"][0] in pod["spec"]["tolerations"]
        assert pod["spec"]["affinity"] == GPU_SCHEDULING["affinity"]
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        assert containers["iris"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
        for name, container in containers.items():  # the GPU is the model's alone
            resources = container.get("resources") or {}
            requested = {**resources.get("requests", {}), **resources.get("limits", {})}
            assert ("nvidia.com/gpu" in requested) == (name == "iris"), name
