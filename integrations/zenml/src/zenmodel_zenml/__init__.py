"""ZenML's side of zenmodel-operator: the `zenmodel` model-deployer flavor and its pipeline step."""

from .deployer import ZenModelDeployer
from .flavor import ZenModelDeployerConfig, ZenModelDeployerFlavor
from .service import ZenModelDeploymentConfig, ZenModelDeploymentService
from .step import zenmodel_model_deployer_step

__all__ = [
    "ZenModelDeployer",
    "ZenModelDeployerConfig",
    "ZenModelDeployerFlavor",
    "ZenModelDeploymentConfig",
    "ZenModelDeploymentService",
    "zenmodel_model_deployer_step",
]
