"""The `zenmodel` flavor: its name, its stack-component configuration and where its implementation is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml.model_deployers.base_model_deployer import BaseModelDeployerConfig, BaseModelDeployerFlavor

if TYPE_CHECKING:
    from .deployer import ZenModelDeployer


class ZenModelDeployerConfig(BaseModelDeployerConfig):
    """Where the models go.

    Attributes:
        kubernetes_namespace: the namespace of the ZenModelDeployments (one the operator watches).
        kubernetes_context: the kubeconfig context to use; in a pod its service account is used instead.
        ingress_base_url: Seldon's ingress for the prediction URLs; empty leaves it to the operator's
            default.
    """

    kubernetes_namespace: str
    kubernetes_context: str | None = None
    ingress_base_url: str | None = None


class ZenModelDeployerFlavor(BaseModelDeployerFlavor):
    """ZenML's side of zenmodel-operator."""

    @property
    def name(self) -> str:
        return "zenmodel"

    @property
    def docs_url(self) -> str | None:
        return None

    @property
    def sdk_docs_url(self) -> str | None:
        return None

    @property
    def logo_url(self) -> str:
        return "https://public-flavor-logos.s3.eu-central-1.amazonaws.com/model_deployer/seldon.png"

    @property
    def config_class(self) -> type[ZenModelDeployerConfig]:
        return ZenModelDeployerConfig

    @property
    def implementation_class(self) -> type[ZenModelDeployer]:
        from .deployer import ZenModelDeployer

        return ZenModelDeployer
