"""The Helm chart through the real `helm` client (built by hack/tools.sh): what the chart tests share."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from support.localcluster import LocalCluster, resolve_tools_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "zenmodel-operator"
OPERATOR_NAMESPACE = "zenmodel-system"


class HelmError(AssertionError):
    """helm exited non-zero; the message carries its stderr."""


@cache
def helm_binary() -> Path:
    binary = resolve_tools_dir() / "helm"
    if not binary.is_file():
        raise HelmError(f"{binary} is missing: run hack/tools.sh")
    return binary


def helm(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    if check and result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def set_flags(values: dict[str, Any]) -> list[str]:
    """`--set-json key=<json>` flags: the values keep their types (a --set of "1" would be an integer)."""
    return [flag for key, value in values.items() for flag in ("--set-json", f"{key}={json.dumps(value)}")]


def template(
    values: dict[str, Any] | None = None,
    release: str = "zenmodel-operator",
    namespace: str = OPERATOR_NAMESPACE,
    extra: Sequence[str] = (),
) -> str:
    """`helm template` of the chart; `values` maps dotted keys to values (e.g. {"rbac.scope": "namespaced"})."""
    return helm(
        "template", release, str(CHART), "--namespace", namespace, *set_flags(values or {}), *extra
    ).stdout


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """The chart's objects, parsed."""
    return [doc for doc in yaml.safe_load_all(template(values, **kwargs)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def helm_env(cluster: LocalCluster, home: Path) -> dict[str, str]:
    """helm as cluster-admin, with its config and caches kept out of the user's home."""
    return {
        **cluster.env(),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@contextmanager
def installed_release(
    cluster: LocalCluster,
    env: dict[str, str],
    release: str,
    namespace: str,
    values: dict[str, Any],
    path: Path,
) -> Iterator[Path]:
    """`helm install` of the chart, then uninstall; yields a kubeconfig with its ServiceAccount's real token."""
    helm("install", release, str(CHART), "--namespace", namespace, *set_flags(values), env=env)
    try:
        yield cluster.create_service_account_kubeconfig(namespace, f"{release}-zenmodel-operator", path)
    finally:
        helm("uninstall", release, "--namespace", namespace, "--ignore-not-found", env=env, check=False)
