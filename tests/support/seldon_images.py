"""The images Seldon Core's own pods run for a SKLEARN_SERVER model under protocol v2, as
`make seldon-images` builds stand-ins for them (hack/seldon-images.sh), and how Seldon's controller (v1.19.0,
its operator module's controllers/) runs each of them."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "seldon-images.sh"
# The directories under images/ (hack/seldon_pod_images.py names them).
STORAGE_INITIALIZER = "rclone-storage-initializer"
SKLEARN_V2_SERVER = "mlserver-sklearn"

# Where the storage initializer writes the model and the model server reads it (DefaultModelLocalMountPath).
MODEL_MOUNT = "/mnt/models"
# What Seldon's controller names MLServer's runtime for SKLEARN_SERVER (MLServerSKLearnImplementation).
SKLEARN_IMPLEMENTATION = "mlserver_sklearn.SKLearnModel"
# What Seldon's readiness and liveness probes of that container ask (KFServingProbeReadyPath / LivePath).
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
# The metrics port Seldon gives the first unit of a predictor (constants.FirstMetricsPortNumber).
FIRST_METRICS_PORT = 6000
# The user each image runs as: Seldon sets none (DEFAULT_USER_ID is empty in its manager's manifest).
STORAGE_INITIALIZER_USER = "8888"
MODEL_SERVER_USER = "1000"


def _listed(*options: str) -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(SCRIPT), *options], check=True, stdout=subprocess.PIPE, text=True, timeout=3600
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


@cache
def built_seldon_images() -> dict[str, str]:
    """Builds what is missing or stale (seconds when nothing changed); directory under images/ ->
    reference."""
    return _listed()


def seldon_image_references() -> dict[str, str]:
    """Directory under images/ -> the reference it is built as, without building anything."""
    return _listed("--print")


def storage_initializer_args(model_uri: str) -> list[str]:
    """The init container's arguments (model_initializer_injector.go): the model's URI and the shared
    volume; the image's entrypoint is `rclone copy`."""
    return [model_uri, MODEL_MOUNT]


def model_server_environment(
    *,
    unit: str,
    deployment: str,
    namespace: str,
    predictor: str,
    image: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
) -> dict[str, str]:
    """The environment Seldon's controller gives the MLServer container of a SKLEARN_SERVER unit named
    ``unit``, in its order (mlserver.go getMLServerEnvVars, then seldondeployment_controller.go
    createContainerService: the ports, the unit's identity, the metrics port and path). It sets no command
    or args. tests/e2e/test_seldon_pod_images.py holds this to what Seldon's controller generates."""
    return {
        "MLSERVER_HTTP_PORT": str(http_port),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_MODEL_IMPLEMENTATION": SKLEARN_IMPLEMENTATION,
        "MLSERVER_MODEL_NAME": unit,
        "MLSERVER_MODEL_VERSION": "v1",
        "MLSERVER_MODEL_URI": MODEL_MOUNT,
        "TEMPO_RUNTIME_OPTIONS": json.dumps(
            {
                "k8s_options": {
                    "defaultRuntime": "tempo.seldon.SeldonKubernetesRuntime",
                    "namespace": namespace,
                }
            },
            separators=(", ", ": "),
        ),
        "PREDICTIVE_UNIT_SERVICE_PORT": str(http_port),
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http_port),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc_port),
        "PREDICTIVE_UNIT_ID": unit,
        "PREDICTIVE_UNIT_IMAGE": image,
        "PREDICTOR_ID": predictor,
        "PREDICTOR_LABELS": json.dumps({"version": predictor}, separators=(",", ":")),
        "SELDON_DEPLOYMENT_ID": deployment,
        "SELDON_EXECUTOR_ENABLED": "true",
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(metrics_port),
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "MLSERVER_METRICS_PORT": str(metrics_port),
        "MLSERVER_METRICS_ENDPOINT": "/prometheus",
    }
