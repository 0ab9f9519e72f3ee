"""A served model as ZenML sees it: the configuration a step passes, and the service read from the
ZenModelDeployment's status (the operator's, never a guess of our own)."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Literal, cast

import requests
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from zenml.enums import ServiceState
from zenml.models.v2.misc.service import ServiceType
from zenml.services.service import BaseDeploymentService, ServiceConfig
from zenml.services.service_status import ServiceStatus

from .resource import AVAILABLE, FAILED, STOPPED, Deployment, Observed, manifest, observe, resource_name

if TYPE_CHECKING:
    from .deployer import ZenModelDeployer

FLAVOR = "zenmodel"
PREDICTION_TIMEOUT = 60.0


class ServingParameter(BaseModel):
    """A model server parameter (Seldon's PREDICTIVE_UNIT_PARAMETERS entry)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["STRING", "INT", "FLOAT", "DOUBLE", "BOOL"]
    value: str


class ZenModelDeploymentConfig(ServiceConfig):
    """What to serve and how. Checked by the operator's CRD when applied (its messages reach the step).

    Attributes:
        model_uri: where the served files are; the step fills it in from the model artifact.
        model_name: the model's name, a DNS-1123 label (it names the Seldon graph node).
        implementation: Seldon Core's prepackaged server, e.g. SKLEARN_SERVER.
        protocol: seldon, v2 or tensorflow.
        replicas: model server replicas.
        parameters: model server parameters.
        resources: the model container's {requests: {...}, limits: {...}}.
        env: the model container's environment.
        credentials_secret: an opted-in Secret in the namespace to read the model with, instead of the one
            the deployer makes from the artifact store's credentials.
    """

    model_uri: str = ""
    implementation: str = "SKLEARN_SERVER"
    protocol: str = "seldon"
    replicas: int = 1
    parameters: list[ServingParameter] = Field(default_factory=list)
    resources: dict[str, dict[str, str]] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    credentials_secret: str | None = None

    @property
    def resource_name(self) -> str:
        return resource_name(self.pipeline_name, self.pipeline_step_name, self.model_name)

    def deployment_fields(self) -> dict[str, Any]:
        """What makes two configurations the same deployment (ZenML's own name fields aside)."""
        return self.model_dump(
            include={
                "pipeline_name",
                "pipeline_step_name",
                "model_name",
                "model_version",
                "model_uri",
                "implementation",
                "protocol",
                "replicas",
                "parameters",
                "resources",
                "env",
                "credentials_secret",
            }
        )


class ZenModelDeploymentService(BaseDeploymentService):
    """One ZenModelDeployment. Its state, URLs and errors are the resource's status."""

    SERVICE_TYPE = ServiceType(
        name="zenmodel-deployment",
        type="model-serving",
        flavor=FLAVOR,
        description="A model served by zenmodel-operator (Seldon Core underneath)",
        logo_url="https://public-flavor-logos.s3.eu-central-1.amazonaws.com/model_deployer/seldon.png",
    )

    config: ZenModelDeploymentConfig
    status: ServiceStatus = Field(default_factory=ServiceStatus)
    _observed: Observed | None = PrivateAttr(default=None)

    @staticmethod
    def _deployer() -> ZenModelDeployer:
        from .deployer import ZenModelDeployer

        return cast(ZenModelDeployer, ZenModelDeployer.get_active_model_deployer())

    @property
    def resource_name(self) -> str:
        return self.config.resource_name

    def deployment(self, credentials: dict[str, Any] | None) -> Deployment:
        config = self.config
        deployer_config = self._deployer().config
        return Deployment(
            namespace=deployer_config.kubernetes_namespace,
            pipeline_name=config.pipeline_name,
            step_name=config.pipeline_step_name,
            model_name=config.model_name,
            model_uri=config.model_uri,
            implementation=config.implementation,
            protocol=config.protocol,
            replicas=config.replicas,
            parameters=tuple(p.model_dump() for p in config.parameters),
            resources=config.resources,
            env=config.env,
            credentials=credentials,
            ingress_base_url=deployer_config.ingress_base_url,
        )

    def _record(self, seen: Observed) -> None:
        self._observed = seen
        self.status.update_state(*self._zenml_state(seen))

    @staticmethod
    def _zenml_state(seen: Observed) -> tuple[ServiceState, str]:
        if not seen.current:
            return ServiceState.PENDING_STARTUP, seen.message
        if seen.state == AVAILABLE:
            return ServiceState.ACTIVE, seen.message
        if seen.state == FAILED:
            return ServiceState.ERROR, seen.message
        if seen.state == STOPPED:
            return ServiceState.SCALED_TO_ZERO, seen.message
        return ServiceState.PENDING_STARTUP, seen.message

    def apply(self, credentials: dict[str, Any] | None, timeout: float, replicas: int | None = None) -> None:
        """Applies the ZenModelDeployment and waits on a watch until the operator reports the wanted state
        (Available, or Stopped for 0 replicas); raises at once with the operator's message on Failed, and
        on a timeout."""
        kube = self._deployer().kube
        obj = manifest(self.deployment(credentials), str(self.uuid), replicas)
        wanted = STOPPED if obj["spec"]["replicas"] == 0 else AVAILABLE
        applied = kube.apply(obj)
        seen, reached = kube.wait(applied, lambda s: s.reached(wanted), timeout)
        self._record(seen)
        if seen.failed:
            raise RuntimeError(
                f"ZenModelDeployment {kube.namespace}/{self.resource_name} failed: {seen.message}"
            )
        if not reached:
            raise RuntimeError(
                f"ZenModelDeployment {kube.namespace}/{self.resource_name} did not become {wanted} within "
                f"{timeout:.0f}s: {seen.message}"
            )

    def _live_credentials(self) -> dict[str, Any] | None:
        """The credentials block as last applied (stop and start change replicas only)."""
        live = self._deployer().kube.get(self.resource_name)
        if live is None:
            raise RuntimeError(
                f"ZenModelDeployment {self.resource_name} does not exist; deploy the model again"
            )
        credentials = (live.get("spec") or {}).get("credentials")
        return dict(credentials) if credentials else None

    def start(self, timeout: int = 0) -> None:
        """Scales back to the configured replicas and waits (a watch) until Available."""
        self.admin_state = ServiceState.ACTIVE
        self.apply(self._live_credentials(), timeout or DEFAULT_TIMEOUT)

    def stop(self, timeout: int = 0, force: bool = False) -> None:
        """Scales to zero (the resource, its URL and its credentials stay) and waits until Stopped."""
        self.admin_state = ServiceState.INACTIVE
        self.apply(self._live_credentials(), timeout or DEFAULT_TIMEOUT, replicas=0)

    def check_status(self) -> tuple[ServiceState, str]:
        obj = self._deployer().kube.get(self.resource_name)
        if obj is None:
            self._observed = None
            return ServiceState.INACTIVE, f"ZenModelDeployment {self.resource_name} does not exist"
        self._observed = observe(obj)
        return self._zenml_state(self._observed)

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, bool, None]:
        raise NotImplementedError(
            "model server logs are the pods' logs: kubectl logs -l seldon-deployment-id="
            f"{self.resource_name} -n {self._deployer().config.kubernetes_namespace}"
        )

    def _urls(self) -> Observed | None:
        if self._observed is None:
            self.update_status()
        return self._observed

    @property
    def prediction_url(self) -> str | None:
        """The resource's status.predictionURL (through Seldon's ingress)."""
        observed = self._urls()
        return observed.prediction_url if observed else None

    @property
    def internal_url(self) -> str | None:
        """The resource's status.internalURL (the predictor's Service, inside the cluster)."""
        observed = self._urls()
        return observed.internal_url if observed else None

    def predict(self, request: Any, internal: bool | None = None) -> Any:
        """Sends `request` (rows of features: a nested list or a numpy array) in the model's protocol and
        returns the predictions as a list. Inside the cluster (or with internal=True) through the internal
        URL, otherwise through the prediction URL."""
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ if internal is None else internal
        url = self.internal_url if in_cluster else self.prediction_url
        if not url:
            raise RuntimeError(f"ZenModelDeployment {self.resource_name} has no prediction URL yet")
        rows = request.tolist() if hasattr(request, "tolist") else list(request)
        response = requests.post(
            url, json=request_body(self.config.protocol, rows), timeout=PREDICTION_TIMEOUT
        )
        response.raise_for_status()
        return predictions(self.config.protocol, response.json())


DEFAULT_TIMEOUT = 300


def request_body(protocol: str, rows: list[Any]) -> dict[str, Any]:
    """The request each protocol's servers read: Seldon's ndarray, Open Inference (v2) and TF Serving."""
    if protocol == "v2":
        width = len(rows[0]) if rows and isinstance(rows[0], list) else 1
        flat = [value for row in rows for value in (row if isinstance(row, list) else [row])]
        datatype = "FP64" if any(isinstance(v, float) for v in flat) else "INT64"
        return {
            "inputs": [{"name": "predict", "shape": [len(rows), width], "datatype": datatype, "data": flat}]
        }
    if protocol == "tensorflow":
        return {"instances": rows}
    return {"data": {"ndarray": rows}}


def predictions(protocol: str, body: dict[str, Any]) -> list[Any]:
    if protocol == "v2":
        return list(body["outputs"][0]["data"])
    if protocol == "tensorflow":
        return list(body["predictions"])
    return list(body["data"]["ndarray"])
