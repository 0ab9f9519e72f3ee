"""The ZenModelDeployment the deployer applies and how its status reads to ZenML: pure logic."""

from __future__ import annotations

import re
from typing import Any

import pytest

from zenmodel_zenml.resource import (
    FIELD_MANAGER,
    MAX_NAME_LENGTH,
    Deployment,
    label_value,
    manifest,
    observe,
    resource_name,
)

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # the operator's CRD rule for metadata.name
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "model_name",
    ["iris", "Iris_Classifier v2", "7-layers", "---", "x" * 200, "model-with-a-very-long-name" * 3],
)
def test_resource_names_are_valid_and_stable(model_name: str) -> None:
    name = resource_name("training", "deploy", model_name)
    assert len(name) <= MAX_NAME_LENGTH
    assert NAME_PATTERN.match(name), name
    assert name == resource_name("training", "deploy", model_name)


def test_pipeline_step_and_model_each_make_their_own_name() -> None:
    names = {
        resource_name("training", "deploy", "iris"),
        resource_name("retraining", "deploy", "iris"),
        resource_name("training", "deploy_canary", "iris"),
        resource_name("training", "deploy", "iris2"),
    }
    assert len(names) == 4
    assert all(name.startswith("iris") for name in names)


@pytest.mark.parametrize("text", ["my pipeline", "-a/b-", "é", "x" * 100, "deploy_model.v2"])
def test_label_values_are_valid(text: str) -> None:
    assert LABEL_VALUE.match(label_value(text)), label_value(text)
    assert len(label_value(text)) <= 63


def deployment(**changes: Any) -> Deployment:
    fields: dict[str, Any] = {
        "namespace": "models",
        "pipeline_name": "training",
        "step_name": "deploy",
        "model_name": "iris",
        "model_uri": "s3://zenml/zenmodel/0f1e",
        "implementation": "SKLEARN_SERVER",
        "protocol": "seldon",
        "replicas": 2,
    }
    return Deployment(**(fields | changes))


def test_manifest_carries_the_model_provenance_and_labels() -> None:
    obj = manifest(
        deployment(
            env={"B": "2", "A": "1"},
            credentials={"secretRef": {"name": "zenml-artifact-store-1"}},
            parameters=({"name": "method", "type": "STRING", "value": "predict_proba"},),
        ),
        "uuid-1",
    )
    assert obj["metadata"]["name"] == resource_name("training", "deploy", "iris")
    assert obj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        "zenml.io/service-uuid": "uuid-1",
        "zenml.io/pipeline-name": "training",
        "zenml.io/step-name": "deploy",
        "zenml.io/model-name": "iris",
    }
    spec = obj["spec"]
    assert spec["model"] == {
        "name": "iris",
        "uri": "s3://zenml/zenmodel/0f1e",
        "implementation": "SKLEARN_SERVER",
        "protocol": "seldon",
        "parameters": [{"name": "method", "type": "STRING", "value": "predict_proba"}],
    }
    assert spec["replicas"] == 2
    assert spec["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert spec["credentials"] == {"secretRef": {"name": "zenml-artifact-store-1"}}
    assert spec["provenance"] == {"pipelineName": "training", "stepName": "deploy"}
    assert "ingress" not in spec and "resources" not in spec


def test_stopping_changes_the_replicas_only() -> None:
    running = manifest(deployment(), "uuid-1")
    stopped = manifest(deployment(), "uuid-1", replicas=0)
    assert stopped["spec"].pop("replicas") == 0
    running["spec"].pop("replicas")
    assert stopped == running


def status(state: str, generation: int = 2, observed: int = 2, message: str = "m") -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "state": state,
            "predictionURL": "http://ingress/seldon/models/iris/api/v1.0/predictions",
            "conditions": [{"type": "Ready", "status": "False", "message": message}],
        },
    }


def test_a_status_of_an_older_generation_is_not_current() -> None:
    seen = observe(status("Available", generation=3, observed=2))
    assert not seen.current and not seen.reached("Available") and not seen.failed
    assert seen.message == "waiting for the operator to observe generation 3"


def test_a_failure_carries_the_ready_message() -> None:
    seen = observe(status("Failed", message="protocol v2 does not fit TENSORFLOW_SERVER"))
    assert seen.failed
    assert seen.message == "protocol v2 does not fit TENSORFLOW_SERVER"
    assert seen.prediction_url == "http://ingress/seldon/models/iris/api/v1.0/predictions"


def test_no_status_yet() -> None:
    seen = observe({"metadata": {"generation": 1}})
    assert (seen.state, seen.current, seen.prediction_url) == (None, False, None)


def test_available_counts_only_with_every_replica_available() -> None:
    rolling = status("Available")
    rolling["status"] |= {"replicas": 2, "availableReplicas": 1}
    assert not observe(rolling).reached("Available")
    rolling["status"]["availableReplicas"] = 2
    assert observe(rolling).reached("Available")
