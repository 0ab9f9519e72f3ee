"""The serving options' schema on a real apiserver: its CEL rules refuse what `render` refuses, naming the
field, and a spec using every option is stored as written (nothing pruned or defaulted away)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from support.localcluster import LocalCluster
from support.objects import get, must_get, zmd
from zenmodel_operator.cli import RenderError, render_documents

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
        "spec.canary.uri: may not contain $(",
        id="canary-variable-reference",
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
        "spec.env: names starting with RCLONE_CONFIG_",
        id="env-rclone-name",
    ),
    pytest.param(
        {"env": [{"name": "TOKEN", "value": "$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)"}]},
        "spec.env: values may not contain $(",
        id="env-variable-reference",
    ),
    pytest.param({"env": [{"name": "1=2", "value": "x"}]}, "spec.env[0].name", id="env-bad-name"),
    pytest.param(
        {"scheduling": {"nodeSelector": {"gpu type": "a100"}}},
        "spec.scheduling.nodeSelector: keys must be label keys",
        id="node-selector-key",
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
