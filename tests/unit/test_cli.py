"""The command line, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from zenmodel_operator.crd import render_crd_yaml

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
