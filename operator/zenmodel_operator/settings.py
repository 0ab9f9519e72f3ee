"""Operator settings: command-line flags, each with an environment variable (what the Helm chart sets)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "ZENMODEL_"


@dataclass(frozen=True)
class OperatorSettings:
    ingress_base_url: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    require_credentials_label: bool = True
    log_format: str = "text"
    log_level: str = "INFO"
    metrics_port: int = 8080
    health_port: int = 8081
    workers: int = 4


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _namespaces(value: str) -> tuple[str, ...]:
    return tuple(ns.strip() for ns in value.split(",") if ns.strip())


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """Adds the `run` flags; an environment variable ZENMODEL_<FLAG> gives each flag's default."""
    env = os.environ if environ is None else environ
    defaults = OperatorSettings()

    def default(name: str, fallback: object) -> object:
        return env.get(ENV_PREFIX + name, fallback)

    parser.add_argument(
        "--ingress-base-url",
        default=default("INGRESS_BASE_URL", defaults.ingress_base_url),
        help="base URL of Seldon's ingress, for status.predictionURL (env ZENMODEL_INGRESS_BASE_URL)",
    )
    parser.add_argument(
        "--namespaces",
        type=_namespaces,
        default=_namespaces(str(default("NAMESPACES", ""))),
        help="comma-separated namespaces to watch; empty watches all (env ZENMODEL_NAMESPACES)",
    )
    parser.add_argument(
        "--require-credentials-label",
        type=parse_bool,
        default=parse_bool(str(default("REQUIRE_CREDENTIALS_LABEL", "true"))),
        help="read only Secrets labelled zenml.io/model-credentials=true "
        "(env ZENMODEL_REQUIRE_CREDENTIALS_LABEL, default true)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default("LOG_FORMAT", defaults.log_format),
        help="log format (env ZENMODEL_LOG_FORMAT)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        default=default("LOG_LEVEL", defaults.log_level),
        help="log level (env ZENMODEL_LOG_LEVEL)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(str(default("METRICS_PORT", defaults.metrics_port))),
        help="port of the Prometheus /metrics endpoint; 0 disables it (env ZENMODEL_METRICS_PORT)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(str(default("HEALTH_PORT", defaults.health_port))),
        help="port of the /healthz liveness endpoint; 0 disables it (env ZENMODEL_HEALTH_PORT)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(str(default("WORKERS", defaults.workers))),
        help="objects reconciled at once (env ZENMODEL_WORKERS)",
    )


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    return OperatorSettings(
        ingress_base_url=args.ingress_base_url or None,
        namespaces=tuple(args.namespaces),
        require_credentials_label=args.require_credentials_label,
        log_format=args.log_format,
        log_level=args.log_level,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        workers=max(1, args.workers),
    )
