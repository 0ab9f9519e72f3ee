"""The `zenmodel` model deployer: deploy, find, stop, start and delete models as ZenModelDeployments."""

from __future__ import annotations

from typing import Any, ClassVar, cast
from uuid import UUID

from zenml.client import Client
from zenml.enums import ServiceState
from zenml.logger import get_logger
from zenml.model_deployers import BaseModelDeployer, BaseModelDeployerFlavor
from zenml.model_deployers.base_model_deployer import DEFAULT_DEPLOYMENT_START_STOP_TIMEOUT
from zenml.models.v2.misc.service import ServiceType
from zenml.services.service import BaseDeploymentService, BaseService, ServiceConfig
from zenml.utils.pagination_utils import depaginate

from .credentials import artifact_store_credentials
from .flavor import ZenModelDeployerConfig, ZenModelDeployerFlavor
from .kube import Kube, api_client
from .resource import secret_manifest
from .service import FLAVOR, ZenModelDeploymentConfig, ZenModelDeploymentService

logger = get_logger(__name__)


class ZenModelDeployer(BaseModelDeployer):
    """Serves models through zenmodel-operator: one ZenModelDeployment per (pipeline, step, model), applied
    server-side and followed with a watch; the operator does the rest, in the cluster."""

    NAME: ClassVar[str] = "zenmodel"
    FLAVOR: ClassVar[type[BaseModelDeployerFlavor]] = ZenModelDeployerFlavor
    _kube: Kube | None = None

    @property
    def config(self) -> ZenModelDeployerConfig:
        return cast(ZenModelDeployerConfig, self._config)

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(api_client(self.config.kubernetes_context), self.config.kubernetes_namespace)
        return self._kube

    @staticmethod
    def get_model_server_info(  # type: ignore[override]  # ZenML passes its own service subclass
        service_instance: ZenModelDeploymentService,
    ) -> dict[str, str | None]:
        return {
            "STATE": service_instance.status.state.value,
            "STATUS_MESSAGE": service_instance.status.last_error,
            "PREDICTION_URL": service_instance.prediction_url,
            "INTERNAL_URL": service_instance.internal_url,
            "MODEL_URI": service_instance.config.model_uri,
            "MODEL_NAME": service_instance.config.model_name,
            "ZENMODELDEPLOYMENT": service_instance.resource_name,
        }

    def credentials_for(self, config: ZenModelDeploymentConfig) -> dict[str, Any] | None:
        """The spec's credentials block: the Secret named in the config, else one made (or updated) from
        the artifact store's credentials when the model lives in that store; never deleted by us, since
        other models may read the same store."""
        found = artifact_store_credentials(Client().active_stack.artifact_store, config.model_uri)
        credentials: dict[str, Any] = dict(found.options) if found else {}
        if config.credentials_secret:
            credentials["secretRef"] = {"name": config.credentials_secret}
        elif found and found.secret_data:
            self.kube.apply_secret(secret_manifest(self.kube.namespace, found.secret_name, found.secret_data))
            credentials["secretRef"] = {"name": found.secret_name}
        return credentials or None

    def perform_deploy_model(
        self, id: UUID, config: ServiceConfig, timeout: int = DEFAULT_DEPLOYMENT_START_STOP_TIMEOUT
    ) -> BaseService:
        config = cast(ZenModelDeploymentConfig, config)
        service = ZenModelDeploymentService(uuid=id, config=config, admin_state=ServiceState.ACTIVE)
        service.apply(self.credentials_for(config), timeout)
        self._forget_replaced(service)
        return service

    def _forget_replaced(self, service: ZenModelDeploymentService) -> None:
        """Earlier records of the same (pipeline, step, model) now name the object this service rolled:
        ZenML's store keeps one record per ZenModelDeployment."""
        client = Client()
        for record in self._records(
            pipeline_name=service.config.pipeline_name, pipeline_step_name=service.config.pipeline_step_name
        ):
            if record.id != service.uuid and _config(record.config).resource_name == service.resource_name:
                client.delete_service(record.id)

    @staticmethod
    def _records(**filters: Any) -> list[Any]:
        kind = ZenModelDeploymentService.SERVICE_TYPE
        return depaginate(
            Client().list_services,
            sort_by="desc:created",
            type=kind.type,
            flavor=kind.flavor,
            hydrate=True,
            **{key: value for key, value in filters.items() if value is not None},
        )

    def find_model_server(
        self,
        config: dict[str, Any] | None = None,
        running: bool | None = None,
        service_uuid: UUID | None = None,
        pipeline_name: str | None = None,
        pipeline_step_name: str | None = None,
        service_name: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        service_type: ServiceType | None = None,
        type: str | None = None,
        flavor: str | None = None,
        pipeline_run_id: str | None = None,
    ) -> list[BaseService]:
        """ZenML's records of this flavor, matched here: ZenML 0.98 ignores `config` and turns `model_name`
        into a Model lookup that is dropped when no such Model exists, so it would return other models'
        services. A `config` matches a service that serves the same thing the same way."""
        if (flavor or (service_type.flavor if service_type else FLAVOR)) != FLAVOR:
            return []
        wanted = ZenModelDeploymentConfig.model_validate(config).deployment_fields() if config else None
        services: list[BaseService] = []
        for record in self._records(
            id=service_uuid,
            service_name=service_name,
            pipeline_name=pipeline_name,
            pipeline_step_name=pipeline_step_name,
            pipeline_run_id=pipeline_run_id,
        ):
            stored = _config(record.config)
            if model_name is not None and stored.model_name != model_name:
                continue
            if model_version is not None and stored.model_version != model_version:
                continue
            if wanted is not None and stored.deployment_fields() != wanted:
                continue
            service = BaseDeploymentService.from_model(record)
            service.update_status()
            if running and not service.is_running:
                continue
            services.append(service)
        return services

    def perform_stop_model(
        self, service: BaseService, timeout: int = DEFAULT_DEPLOYMENT_START_STOP_TIMEOUT, force: bool = False
    ) -> BaseService:
        service.stop(timeout=timeout, force=force)
        return service

    def perform_start_model(
        self, service: BaseService, timeout: int = DEFAULT_DEPLOYMENT_START_STOP_TIMEOUT
    ) -> BaseService:
        service.start(timeout=timeout)
        return service

    def perform_delete_model(
        self, service: BaseService, timeout: int = DEFAULT_DEPLOYMENT_START_STOP_TIMEOUT, force: bool = False
    ) -> None:
        """Deletes the ZenModelDeployment only: the operator's owner references take the SeldonDeployment
        and its rclone Secret; the shared credentials Secret stays for the store's other models."""
        name = cast(ZenModelDeploymentService, service).resource_name
        if not self.kube.delete(name):
            logger.info("ZenModelDeployment %s was already gone", name)


def _config(stored: dict[str, Any]) -> ZenModelDeploymentConfig:
    return ZenModelDeploymentConfig.model_validate(stored)
