"""The command line, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from zenmodel_operator.api.crd import render_crd_yaml

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zenmodel_operator", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_crd_command_prints_the_crd() -> None:
    result = run("crd")
    assert result.returncode == 0
    assert result.stdout == render_crd_yaml()


def test_render_an_example_redacts_secrets() -> None:
    result = run("render", "-f", str(EXAMPLES / "iris-s3.yaml"))
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["Secret", "SeldonDeployment"]
    assert "minio-secret-key" not in result.stdout
    shown = run("render", "-f", str(EXAMPLES / "iris-s3.yaml"), "--show-secrets")
    assert "bWluaW8tc2VjcmV0LWtleQ==" in shown.stdout  # base64 of the example's secret key


def test_every_example_renders() -> None:
    for example in sorted(EXAMPLES.glob("*.yaml")):
        result = run("render", "-f", str(example))
        assert result.returncode == 0, f"{example.name}: {result.stderr}"


def test_invalid_input_exits_non_zero_naming_the_field() -> None:
    bad = {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": "x"},
        "spec": {
            "model": {"name": "x", "uri": "s3://models/m", "implementation": "SKLEARN_SERVER"},
            "replicas": "two",
        },
    }
    result = run("render", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode == 2
    assert "spec.replicas" in result.stderr
    assert result.stdout == ""


def test_a_missing_secret_is_a_clear_error() -> None:
    doc = yaml.safe_load_all((EXAMPLES / "iris-s3.yaml").read_text())
    parent = [d for d in doc if d["kind"] == "ZenModelDeployment"]
    result = run("render", "-f", "-", stdin=yaml.safe_dump_all(parent))
    assert result.returncode == 2
    assert "SecretNotFound" in result.stderr and "s3-creds" in result.stderr


def rendered_predictors(example: str) -> list[dict[str, Any]]:
    result = run("render", "-f", str(EXAMPLES / example))
    assert result.returncode == 0, result.stderr
    (sdp,) = [d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "SeldonDeployment"]
    return list(sdp["spec"]["predictors"])


def test_render_shows_every_serving_option() -> None:
    (autoscaled,) = rendered_predictors("autoscaling.yaml")
    hpa = autoscaled["componentSpecs"][0]["hpaSpec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"], len(hpa["metricsv2"])) == (2, 8, 2)

    main, canary = rendered_predictors("canary.yaml")
    assert (main["name"], main["traffic"], canary["name"], canary["traffic"]) == ("default", 90, "canary", 10)
    assert canary["graph"]["modelUri"] == "s3://models/iris/v4"
    assert canary["graph"]["envSecretRefName"] == main["graph"]["envSecretRefName"] == "iris-rclone"

    main, shadow = rendered_predictors("shadow.yaml")
    assert (main["traffic"], shadow["shadow"]) == (100, True)

    (gpu,) = rendered_predictors("gpu.yaml")
    pod = gpu["componentSpecs"][0]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert set(pod["affinity"]) == {"nodeAffinity", "podAntiAffinity"}

    (with_env,) = rendered_predictors("env.yaml")
    assert with_env["componentSpecs"][0]["spec"]["containers"][0]["env"] == [
        {"name": "MLSERVER_PARALLEL_WORKERS", "value": "2"},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]


def test_render_refuses_an_env_variable_reference_naming_the_field() -> None:
    doc = yaml.safe_load((EXAMPLES / "env.yaml").read_text())
    doc["spec"]["env"] = [{"name": "X", "value": "$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)"}]
    result = run("render", "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 2
    assert "spec.env.0.value: contains '$(', which Kubernetes expands" in result.stderr
