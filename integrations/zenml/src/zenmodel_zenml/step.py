"""The pipeline step: serve a model artifact through the active `zenmodel` model deployer."""

from __future__ import annotations

import posixpath
from typing import cast

from zenml import get_step_context, step
from zenml.artifacts.unmaterialized_artifact import UnmaterializedArtifact
from zenml.client import Client
from zenml.io import fileio
from zenml.logger import get_logger

from .deployer import ZenModelDeployer
from .service import DEFAULT_TIMEOUT, ZenModelDeploymentConfig, ZenModelDeploymentService

logger = get_logger(__name__)

# What ZenML's sklearn (cloudpickle) materializer writes, and what Seldon's sklearn server (and MLServer's
# sklearn runtime) loads: joblib.load reads a plain pickle.
MATERIALIZED_FILE = "artifact.pkl"
SKLEARN_SERVER_FILE = "model.joblib"
SERVED_PREFIX = "zenmodel"


def served_model_uri(model: UnmaterializedArtifact, implementation: str) -> str:
    """Where the model server finds the model. SKLEARN_SERVER: a copy of the materialized pickle named as
    the server expects, at a place fixed by the artifact's ID, so serving the same artifact again leaves
    the spec (and the running pods) alone. Other servers read the artifact where it is."""
    if implementation != "SKLEARN_SERVER":
        return str(model.uri)
    source = posixpath.join(model.uri, MATERIALIZED_FILE)
    if not fileio.exists(source):
        raise RuntimeError(
            f"{model.uri} has no {MATERIALIZED_FILE}: SKLEARN_SERVER serves what ZenML's sklearn materializer "
            "writes (return a scikit-learn estimator from the training step)"
        )
    served = posixpath.join(Client().active_stack.artifact_store.path, SERVED_PREFIX, str(model.id))
    target = posixpath.join(served, SKLEARN_SERVER_FILE)
    if not fileio.exists(target):
        fileio.makedirs(served)
        fileio.copy(source, target)
    return served


@step(enable_cache=False)
def zenmodel_model_deployer_step(
    model: UnmaterializedArtifact,
    service_config: ZenModelDeploymentConfig,
    deploy_decision: bool = True,
    timeout: int = DEFAULT_TIMEOUT,
) -> ZenModelDeploymentService:
    """Serves `model` as a ZenModelDeployment and returns once the operator reports it Available (raises
    with the operator's message if it fails). The same pipeline, step and model always update the same
    object; an unchanged configuration reuses it. With deploy_decision False the model served before
    stays (started again if stopped)."""
    deployer = cast(ZenModelDeployer, ZenModelDeployer.get_active_model_deployer())
    context = get_step_context()
    config = service_config.model_copy(
        update={"pipeline_name": context.pipeline.name, "pipeline_step_name": context.step_run.name}
    )
    service: ZenModelDeploymentService | None = None
    if not deploy_decision:
        existing = deployer.find_model_server(
            pipeline_name=config.pipeline_name,
            pipeline_step_name=config.pipeline_step_name,
            model_name=config.model_name,
        )
        if existing:
            logger.info("Not deploying: keeping the model served by %s", existing[0].uuid)
            service = cast(ZenModelDeploymentService, existing[0])
    if service is None:
        config.model_uri = served_model_uri(model, config.implementation)
        service = cast(
            ZenModelDeploymentService,
            deployer.deploy_model(
                config, service_type=ZenModelDeploymentService.SERVICE_TYPE, timeout=timeout
            ),
        )
    if not service.is_running:
        service.start(timeout=timeout)
    logger.info("Model served at %s (in the cluster: %s)", service.prediction_url, service.internal_url)
    return service
