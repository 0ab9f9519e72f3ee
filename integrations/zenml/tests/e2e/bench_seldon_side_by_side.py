"""Figures, not checks (not collected by default; run `pytest -s tests/e2e/bench_seldon_side_by_side.py`):
seconds from `deploy_model` to a served model, for the same model through this flavor (a watch on the
ZenModelDeployment, the operator and Seldon's controller) and through ZenML's stock Seldon deployer (it
creates the SeldonDeployment itself and polls it once a second), on the same control plane.

The stock `seldon_model_deployer_step` cannot serve a scikit-learn model in zenml 0.98 (it copies
`<artifact>/model`, which the sklearn materializer never writes), so both deployers are called the way
their steps call them, with the model.joblib our step copied. (ZenML's seldon integration asks for
kubernetes==18.20.0; its flavor is listed all the same and runs with 36.x.)"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from typing import Any, cast

from kubernetes.config import kube_config
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.integrations.seldon.model_deployers import SeldonModelDeployer
from zenml.integrations.seldon.services.seldon_deployment import (
    SeldonDeploymentConfig,
    SeldonDeploymentService,
)

from iris_pipeline import serve_iris
from zenmodel_zenml import ZenModelDeployer, ZenModelDeploymentConfig, ZenModelDeploymentService

from .conftest import INGRESS, zenml

ROUNDS = 5


def test_deploy_model_to_served_side_by_side(stack: str, namespace: str) -> None:
    first = serve_iris(ZenModelDeploymentConfig(model_name="iris"))
    assert first is not None
    model_uri = cast(
        ZenModelDeploymentService,
        Client().get_pipeline_run(first.id).steps["zenmodel_model_deployer_step"].outputs["output"][0].load(),
    ).config.model_uri
    # The stock client reads KUBECONFIG when kubernetes is first imported, before the fixture set it.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = os.environ["KUBECONFIG"]
    ours: list[float] = []
    stock: list[float] = []
    artifact_store = Client().active_stack.artifact_store.name
    suffix = secrets.token_hex(3)
    # Through the client: its config requires `secret` and `kubernetes_secret_name` (None: the artifact
    # store's credentials), which the CLI cannot pass empty.
    configuration: dict[str, Any] = {  # ZenML annotates str values; its config takes None
        "kubernetes_namespace": namespace,
        "base_url": INGRESS,
        "secret": None,
        "kubernetes_secret_name": None,
    }
    Client().create_stack_component(
        name=f"seldon-{suffix}",
        flavor="seldon",
        component_type=StackComponentType.MODEL_DEPLOYER,
        configuration=configuration,
    )
    zenml(
        "stack",
        "register",
        f"seldon-{suffix}",
        "-o",
        "default",
        "-a",
        artifact_store,
        "-d",
        f"seldon-{suffix}",
    )
    for round_ in range(ROUNDS):
        zenml("stack", "set", stack)
        deployer = cast(ZenModelDeployer, ZenModelDeployer.get_active_model_deployer())
        config = ZenModelDeploymentConfig(
            model_name=f"bench-{round_}",
            model_uri=model_uri,
            pipeline_name="bench",
            pipeline_step_name="ours",
        )
        started = time.monotonic()
        service = deployer.deploy_model(
            config, service_type=ZenModelDeploymentService.SERVICE_TYPE, timeout=120
        )
        assert service.is_running
        ours.append(time.monotonic() - started)

        zenml("stack", "set", f"seldon-{suffix}")
        seldon = cast(SeldonModelDeployer, SeldonModelDeployer.get_active_model_deployer())
        seldon_config = SeldonDeploymentConfig(
            model_name=f"bench-{round_}",
            model_uri=model_uri,
            implementation="SKLEARN_SERVER",
            pipeline_name=f"bench-{round_}",
            pipeline_step_name="stock",
            parameters=None,
            resources=None,
            secret_name=None,
        )
        started = time.monotonic()
        stock_service = seldon.deploy_model(
            seldon_config,
            service_type=SeldonDeploymentService.SERVICE_TYPE,
            timeout=120,
            # Else 0.98's find_model_server (it ignores the config) hands back round 0's service.
            continuous_deployment_mode=True,
        )
        assert stock_service.is_running  # its start() polled until Available, once a second
        stock.append(time.monotonic() - started)
    zenml("stack", "set", stack)
    print(
        f"\ndeploy_model -> served, {ROUNDS} rounds: zenmodel flavor median {statistics.median(ours):.2f}s "
        f"({', '.join(f'{s:.2f}' for s in ours)}); ZenML's Seldon deployer median {statistics.median(stock):.2f}s "
        f"({', '.join(f'{s:.2f}' for s in stock)})"
    )
