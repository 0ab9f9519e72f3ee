"""A real ZenML pipeline serving a real scikit-learn model through the operator and Seldon Core's own
controller: deploy, reuse, roll, find, stop, start, delete, and a refused configuration.

The tests run in file order on one stack; each names what it relies on from the ones before."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any, cast

import joblib
import pytest
from sklearn.datasets import load_iris
from support.localcluster import LocalCluster
from support.objects import OPT_IN, decoded, get, must_get, wait_state
from zenml.client import Client
from zenml.enums import ServiceState

from iris_pipeline import serve_iris
from zenmodel_zenml import ZenModelDeployer, ZenModelDeploymentConfig, ZenModelDeploymentService
from zenmodel_zenml.resource import resource_name

from .conftest import ACCESS_KEY, BUCKET, INGRESS, S3, SECRET_KEY, STEP_SECONDS, zenml
from .servers import free_port, ingress, mlserver

PIPELINE = "serve_iris"
STEP = "zenmodel_model_deployer_step"
MODEL = "iris"
NAME = resource_name(PIPELINE, STEP, MODEL)


def run(config: ZenModelDeploymentConfig) -> ZenModelDeploymentService:
    """Runs the pipeline; returns the deploy step's output (the service), recording how long the step took."""
    pipeline_run = serve_iris(config)
    assert pipeline_run is not None
    step = Client().get_pipeline_run(pipeline_run.id).steps[STEP]
    assert step.start_time is not None
    assert step.end_time is not None
    STEP_SECONDS.append((step.end_time - step.start_time).total_seconds())
    return cast(ZenModelDeploymentService, step.outputs["output"][0].load())


def deployer() -> ZenModelDeployer:
    return cast(ZenModelDeployer, ZenModelDeployer.get_active_model_deployer())


def zmd(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    return must_get(cluster, "zmd", namespace, NAME)


CONFIG = ZenModelDeploymentConfig(model_name=MODEL, implementation="SKLEARN_SERVER", replicas=1)


@pytest.fixture(scope="module")
def first(stack: str) -> ZenModelDeploymentService:
    return run(CONFIG)


def test_the_pipeline_serves_the_model_until_available(
    first: ZenModelDeploymentService, cluster: LocalCluster, namespace: str, s3: S3
) -> None:
    obj = zmd(cluster, namespace)
    status = obj["status"]
    assert status["state"] == "Available"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert first.status.state == ServiceState.ACTIVE
    assert first.prediction_url == status["predictionURL"]
    assert first.prediction_url == f"{INGRESS}/seldon/{namespace}/{NAME}/api/v1.0/predictions"
    assert first.internal_url == status["internalURL"]
    # Server-side applied by `zenml`, labelled for people and selectors.
    shown = cluster.kubectl("get", "zmd", NAME, "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    managed = json.loads(shown)["metadata"]["managedFields"]
    managers = {entry["manager"] for entry in managed if "subresource" not in entry}  # the operator's: status
    assert managers == {"zenml"}
    labels = obj["metadata"]["labels"]
    assert labels["zenml.io/pipeline-name"] == PIPELINE
    assert labels["zenml.io/step-name"] == STEP
    assert labels["zenml.io/model-name"] == MODEL
    assert labels["zenml.io/service-uuid"] == str(first.uuid)
    # What the sklearn server loads: the materialized pickle, copied to model.joblib under the artifact ID.
    uri = obj["spec"]["model"]["uri"]
    assert uri == first.config.model_uri
    assert uri.startswith(f"s3://{BUCKET}/zenmodel/")
    model_artifact = Client().get_pipeline(PIPELINE).last_run.steps["train"].outputs["output"][0]
    assert uri.endswith(str(model_artifact.id))
    client: Any = s3.client()
    served = client.get_object(Bucket=BUCKET, Key=f"{uri.removeprefix(f's3://{BUCKET}/')}/model.joblib")
    pickled_key = f"{model_artifact.uri.removeprefix(f's3://{BUCKET}/')}/artifact.pkl"
    assert served["Body"].read() == client.get_object(Bucket=BUCKET, Key=pickled_key)["Body"].read()
    # The artifact store's credentials, as an opted-in Secret the resource names; S3 options in the spec.
    credentials = obj["spec"]["credentials"]
    assert credentials["s3"] == {"endpoint": s3.endpoint, "provider": "Other", "region": "us-east-1"}
    secret = must_get(cluster, "secret", namespace, credentials["secretRef"]["name"])
    assert secret["metadata"]["labels"].items() >= OPT_IN.items()
    assert decoded(secret) == {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    assert obj["status"]["credentialsSecretName"] == f"{NAME}-rclone"
    # The CLI's table wraps long values: compare without its borders and line breaks.
    described = re.sub(r"[\s│]", "", zenml("model-deployer", "models", "describe", str(first.uuid)))
    assert status["predictionURL"] in described
    assert uri in described
    info = ZenModelDeployer.get_model_server_info(first)
    assert info["PREDICTION_URL"] == status["predictionURL"]
    assert info["MODEL_URI"] == uri
    assert info["STATE"] == "active"


def test_a_second_run_with_the_same_config_reuses_the_service(
    first: ZenModelDeploymentService, cluster: LocalCluster, namespace: str
) -> None:
    before = zmd(cluster, namespace)
    again = run(CONFIG)  # the training step is cached: the same artifact, so the same served URI
    assert again.uuid == first.uuid
    after = zmd(cluster, namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_changed_config_rolls_the_same_resource(
    first: ZenModelDeploymentService, cluster: LocalCluster, namespace: str
) -> None:
    generation = zmd(cluster, namespace)["metadata"]["generation"]
    rolled = run(CONFIG.model_copy(update={"replicas": 2, "env": {"LOG_LEVEL": "DEBUG"}}))
    assert rolled.uuid != first.uuid
    obj = zmd(cluster, namespace)
    assert obj["metadata"]["generation"] == generation + 1
    assert obj["status"]["observedGeneration"] == generation + 1
    assert obj["status"]["availableReplicas"] == 2
    # Seldon v1.19 reports no observedGeneration, so the step can return while Seldon's rollout of the
    # new pod template is still to come; it ends Available.
    rolled_out = wait_state(cluster, namespace, NAME, "Available", generation=generation + 1, timeout=60)
    assert rolled_out["status"]["availableReplicas"] == 2
    assert obj["spec"]["env"] == [{"name": "LOG_LEVEL", "value": "DEBUG"}]
    assert rolled.prediction_url == first.prediction_url  # same object, same URL
    # ZenML keeps one record per resource: the one that rolled it.
    found = deployer().find_model_server(pipeline_name=PIPELINE, pipeline_step_name=STEP, model_name=MODEL)
    assert [service.uuid for service in found] == [rolled.uuid]


def test_find_stop_start_delete(cluster: LocalCluster, namespace: str) -> None:
    model_deployer = deployer()
    (service,) = model_deployer.find_model_server(
        pipeline_name=PIPELINE, pipeline_step_name=STEP, model_name=MODEL
    )
    assert model_deployer.find_model_server(model_name="another-model") == []
    assert model_deployer.find_model_server(pipeline_name=PIPELINE, pipeline_step_name="other_step") == []
    assert model_deployer.find_model_server(running=True, model_name=MODEL)[0].uuid == service.uuid

    model_deployer.stop_model_server(service.uuid, timeout=60)
    stopped = zmd(cluster, namespace)
    assert stopped["spec"]["replicas"] == 0
    assert stopped["status"]["state"] == "Stopped"
    assert stopped["status"]["availableReplicas"] == 0
    (found,) = model_deployer.find_model_server(service_uuid=service.uuid)
    assert found.status.state == ServiceState.SCALED_TO_ZERO
    assert model_deployer.find_model_server(running=True, model_name=MODEL) == []

    model_deployer.start_model_server(service.uuid, timeout=60)
    started = zmd(cluster, namespace)
    assert started["spec"]["replicas"] == 2
    assert started["status"]["state"] == "Available"
    assert started["status"]["availableReplicas"] == 2

    credentials_secret = started["spec"]["credentials"]["secretRef"]["name"]
    model_deployer.delete_model_server(service.uuid)
    assert get(cluster, "zmd", namespace, NAME) is None
    assert model_deployer.find_model_server(model_name=MODEL) == []
    # The shared credentials Secret stays for the store's other models; the operator's children go with
    # their owner (Kubernetes' garbage collector).
    assert get(cluster, "secret", namespace, credentials_secret) is not None


def test_a_config_the_crd_refuses_fails_the_step_with_its_message(stack: str) -> None:
    refused = ZenModelDeploymentConfig(
        model_name="iris-triton", implementation="TRITON_SERVER", protocol="seldon"
    )
    with pytest.raises(RuntimeError):
        serve_iris(refused)
    step = Client().get_pipeline(PIPELINE).last_run.steps[STEP]
    assert step.exception_info is not None
    assert "the protocol must fit the implementation" in str(step.exception_info.message)


def test_predictions_from_mlserver_through_the_prediction_url(
    stack: str, cluster: LocalCluster, namespace: str, s3: S3, tmp_path: Path
) -> None:
    """The v2 protocol end to end with a real server: MLServer's sklearn runtime (from PyPI) loads the
    model.joblib the step copied, behind a stand-in for Seldon's ingress; the service predicts through
    the resource's predictionURL. (kwok's pods run nothing, so MLServer runs here, not in a pod.)"""
    model_name = "iris-v2"
    name = resource_name(PIPELINE, STEP, model_name)
    mlserver_port = free_port()
    with ingress(mlserver_port) as ingress_url:
        # A second deployer whose ingress is the stand-in, in a stack of its own (then the first again).
        artifact_store = Client().active_stack.artifact_store.name
        suffix = secrets.token_hex(3)
        zenml(
            "model-deployer",
            "register",
            f"zmd-ingress-{suffix}",
            "--flavor=zenmodel",
            f"--kubernetes_namespace={namespace}",
            f"--ingress_base_url={ingress_url}",
        )
        zenml(
            "stack",
            "register",
            f"ingress-{suffix}",
            "-o",
            "default",
            "-a",
            artifact_store,
            "-d",
            f"zmd-ingress-{suffix}",
            "--set",
        )
        try:
            service = run(ZenModelDeploymentConfig(model_name=model_name, protocol="v2"))
        finally:
            zenml("stack", "set", stack)
        obj = must_get(cluster, "zmd", namespace, name)
        assert service.prediction_url == obj["status"]["predictionURL"]
        assert (
            service.prediction_url == f"{ingress_url}/seldon/{namespace}/{name}/v2/models/{model_name}/infer"
        )
        model_dir = tmp_path / "model"
        model_dir.mkdir()
        client: Any = s3.client()
        key = f"{service.config.model_uri.removeprefix(f's3://{BUCKET}/')}/model.joblib"
        (model_dir / "model.joblib").write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        features, _ = load_iris(return_X_y=True)
        expected = joblib.load(model_dir / "model.joblib").predict(features[::30]).tolist()
        with mlserver(model_dir, model_name, mlserver_port):
            assert service.predict(features[::30], internal=False) == expected
