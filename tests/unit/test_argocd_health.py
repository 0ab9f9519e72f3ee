"""The Argo CD health check, run by gopher-lua (the Lua 5.1 interpreter Argo CD embeds) as Argo CD runs it:
the live object in the global `obj`, the script's returned table read as {status, message}.

`glua` is built from gopher-lua's Go module by `hack/tools.sh glua` (cached; the first run builds it)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARGOCD_DIR = ROOT / "charts" / "zenmodel-operator" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"
SNIPPET = ARGOCD_DIR / "argocd-cm-snippet.yaml"
HEALTH_KEY = "resource.customizations.health.zenml.io_ZenModelDeployment"

# Prints the table the script returns, one field a line; a missing field prints as "nil".
HARNESS = """\
obj = {obj}
local hs = dofile({script})
io.write(tostring(hs.status), "\\n", tostring(hs.message), "\\n")
"""


@cache
def glua() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "tools.sh"), "glua"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"hack/tools.sh glua failed:\n{result.stderr}"
    binary = Path(result.stdout.strip().splitlines()[-1]) / "glua"
    assert binary.is_file(), f"hack/tools.sh glua did not build {binary}"
    return binary


def lua_literal(value: Any) -> str:
    """A JSON value as a Lua table constructor, as Argo CD converts objects (arrays are 1-based tables)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for this text
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"[{json.dumps(key)}] = {lua_literal(item)}" for key, item in value.items()) + "}"
        )
    raise TypeError(f"no Lua literal for {value!r}")


def health(obj: Mapping[str, Any], tmp_path: Path) -> tuple[str, str]:
    harness = tmp_path / "harness.lua"
    harness.write_text(HARNESS.format(obj=lua_literal(obj), script=json.dumps(str(HEALTH_LUA))))
    result = subprocess.run(
        [str(glua()), str(harness)], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, f"glua failed:\n{result.stdout}\n{result.stderr}"
    status, message = result.stdout.splitlines()
    return status, message


def condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": 3,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def zmd(status: Mapping[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": "iris", "namespace": "models", "generation": generation},
        "spec": {"model": {"name": "iris", "uri": "s3://models/iris/v3", "implementation": "SKLEARN_SERVER"}},
    }
    if status is not None:
        obj["status"] = dict(status)
    return obj


CREDENTIALS_OK = condition(
    "CredentialsReady", "True", "CredentialsRendered", "rclone Secret iris-rclone is ready"
)
URL = "http://ingress.example.com/seldon/models/iris/api/v1.0/predictions"

HEALTHY: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Available",
    "predictionURL": URL,
    "conditions": [
        CREDENTIALS_OK,
        condition("SeldonDeploymentReady", "True", "Available", "SeldonDeployment iris is available"),
        condition("Ready", "True", "Available", f"model iris is served at {URL}"),
    ],
}
CREATING: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Creating",
    "conditions": [
        CREDENTIALS_OK,
        condition(
            "SeldonDeploymentReady", "False", "Creating", "waiting for Seldon Core: 1/2 replicas available"
        ),
        condition("Ready", "False", "Creating", "waiting for Seldon Core: 1/2 replicas available"),
    ],
}
FAILED: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Failed",
    "conditions": [
        CREDENTIALS_OK,
        condition("SeldonDeploymentReady", "False", "Failed", "iris-default: ImagePullBackOff"),
        condition("Ready", "False", "Failed", "iris-default: ImagePullBackOff"),
    ],
}
CREDENTIALS_ERROR: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Unknown",
    "conditions": [
        condition("CredentialsReady", "False", "SecretNotFound", "Secret s3-creds not found"),
        condition("SeldonDeploymentReady", "False", "WaitingForCredentials", "waiting for credentials"),
        condition("Ready", "False", "SecretNotFound", "Secret s3-creds not found"),
    ],
}
CONFLICT_MESSAGE = "a SeldonDeployment named iris exists and is not owned by this ZenModelDeployment"
CONFLICT: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Failed",
    "conditions": [
        CREDENTIALS_OK,
        condition("SeldonDeploymentReady", "False", "SeldonDeploymentConflict", CONFLICT_MESSAGE),
        condition("Ready", "False", "SeldonDeploymentConflict", CONFLICT_MESSAGE),
    ],
}

FETCH_FAILED_MESSAGE = (
    "init container iris-model-initializer of pod iris-default-0-iris-5d9f7c8b6-x2k4q cannot fetch the model: "
    "Failed to copy: directory not found"
)
MODEL_POD_FAILS: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Creating",
    "conditions": [
        CREDENTIALS_OK,
        condition("SeldonDeploymentReady", "False", "ModelFetchFailed", FETCH_FAILED_MESSAGE),
        condition("Ready", "False", "ModelFetchFailed", FETCH_FAILED_MESSAGE),
    ],
}

STOPPED_MESSAGE = "SeldonDeployment iris is scaled to zero on purpose (spec.replicas is 0)"
STOPPED: dict[str, Any] = {
    "observedGeneration": 3,
    "state": "Stopped",
    "conditions": [
        CREDENTIALS_OK,
        condition("SeldonDeploymentReady", "False", "Stopped", STOPPED_MESSAGE),
        condition("Ready", "False", "Stopped", STOPPED_MESSAGE),
    ],
}


@pytest.mark.parametrize(
    ("obj", "expected_status", "expected_in_message"),
    [
        pytest.param(zmd(HEALTHY), "Healthy", URL, id="healthy"),
        pytest.param(zmd(CREATING), "Progressing", "1/2 replicas available", id="creating"),
        pytest.param(zmd(HEALTHY, generation=4), "Progressing", "generation 4", id="generation-not-observed"),
        pytest.param(
            zmd({**HEALTHY, "observedGeneration": None}),
            "Progressing",
            "generation 3",
            id="observed-generation-missing",
        ),
        pytest.param(zmd(FAILED), "Degraded", "ImagePullBackOff", id="failed"),
        pytest.param(zmd(FAILED, generation=4), "Progressing", "generation 4", id="stale-failure"),
        pytest.param(zmd(CREDENTIALS_ERROR), "Degraded", "Secret s3-creds not found", id="credentials-error"),
        pytest.param(zmd(CONFLICT), "Degraded", CONFLICT_MESSAGE, id="conflict"),
        pytest.param(zmd(MODEL_POD_FAILS), "Degraded", FETCH_FAILED_MESSAGE, id="model-pod-fails"),
        pytest.param(zmd(STOPPED), "Suspended", STOPPED_MESSAGE, id="stopped"),
        pytest.param(zmd(STOPPED, generation=4), "Progressing", "generation 4", id="stopping"),
        pytest.param(zmd(None), "Progressing", "Waiting for the operator", id="no-status"),
        pytest.param(
            zmd({"observedGeneration": 3, "state": "Unknown"}),
            "Progressing",
            "Waiting for the model",
            id="no-conditions",
        ),
    ],
)
def test_health(obj: dict[str, Any], expected_status: str, expected_in_message: str, tmp_path: Path) -> None:
    status, message = health(obj, tmp_path)
    assert status == expected_status
    assert expected_in_message in message


def test_healthy_needs_ready_true_not_just_available(tmp_path: Path) -> None:
    not_ready = {
        **HEALTHY,
        "conditions": [*HEALTHY["conditions"][:2], condition("Ready", "False", "Creating", "")],
    }
    assert health(zmd(not_ready), tmp_path)[0] == "Progressing"


def test_the_argocd_cm_snippet_embeds_health_lua_verbatim() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    assert snippet["kind"] == "ConfigMap" and snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"][HEALTH_KEY] == HEALTH_LUA.read_text()


def with_canary(status: Mapping[str, Any] | None, canary_status: Mapping[str, Any] | None) -> dict[str, Any]:
    obj = zmd(status)
    obj["spec"]["canary"] = {"uri": "s3://models/iris/v4", "trafficPercent": 10, "replicas": 1}
    if canary_status is not None:
        obj["status"]["canary"] = dict(canary_status)
    return obj


CANARY_UP = {"uri": "s3://models/iris/v4", "traffic": "10%", "replicas": 1, "availableReplicas": 1}
SERVED_BY_BOTH = f"model iris is served at {URL} by predictors default (s3://models/iris/v3, 90% of requests)"
HEALTHY_WITH_CANARY = {
    **HEALTHY,
    "conditions": [*HEALTHY["conditions"][:2], condition("Ready", "True", "Available", SERVED_BY_BOTH)],
}


@pytest.mark.parametrize(
    ("obj", "expected_status", "expected_in_message"),
    [
        pytest.param(with_canary(HEALTHY_WITH_CANARY, CANARY_UP), "Healthy", SERVED_BY_BOTH, id="canary-up"),
        pytest.param(
            with_canary(HEALTHY_WITH_CANARY, {**CANARY_UP, "availableReplicas": 0}),
            "Progressing",
            "Canary predictor (s3://models/iris/v4): 0/1 replicas available",
            id="canary-not-available",
        ),
        pytest.param(
            with_canary(HEALTHY_WITH_CANARY, None),
            "Progressing",
            "Waiting for the operator to report the canary predictor",
            id="canary-not-reported",
        ),
        pytest.param(with_canary(FAILED, CANARY_UP), "Degraded", "ImagePullBackOff", id="canary-main-failed"),
    ],
)
def test_health_with_a_canary(
    obj: dict[str, Any], expected_status: str, expected_in_message: str, tmp_path: Path
) -> None:
    status, message = health(obj, tmp_path)
    assert status == expected_status
    assert expected_in_message in message
