"""Operator settings: command-line flags, each with an environment variable (what the Helm chart sets)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .api.validation import DNS_SUBDOMAIN_PATTERN, python_pattern

ENV_PREFIX = "ZENMODEL_"
# Where a pod finds its own namespace: the default home of the leader-election Lease.
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# client-go refuses a renew deadline within its jitter of the retry period (leaderelection.JitterFactor).
RETRY_JITTER_FACTOR = 1.2
_DNS_SUBDOMAIN = python_pattern(DNS_SUBDOMAIN_PATTERN)


@dataclass(frozen=True)
class LeaderElectionSettings:
    """One leader over a coordination.k8s.io/v1 Lease; the durations are client-go's defaults, in seconds."""

    enabled: bool = False
    namespace: str = ""  # empty: the pod's own namespace
    lease_id: str = "zenmodel-operator"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """What makes these settings unusable (client-go's checks); empty when they are fine."""
        found = []
        if not (0 < len(self.lease_id) <= 253 and _DNS_SUBDOMAIN.match(self.lease_id)):
            found.append(f"--leader-election-id {self.lease_id!r} is not a valid Lease name")
        if self.retry_period <= 0:
            found.append("--leader-election-retry-period must be positive")
        if self.renew_deadline <= RETRY_JITTER_FACTOR * self.retry_period:
            found.append(
                f"--leader-election-renew-deadline ({self.renew_deadline:g}s) must exceed "
                f"{RETRY_JITTER_FACTOR:g} x --leader-election-retry-period ({self.retry_period:g}s)"
            )
        if self.lease_duration <= self.renew_deadline:
            found.append(
                f"--leader-election-lease-duration ({self.lease_duration:g}s) must exceed "
                f"--leader-election-renew-deadline ({self.renew_deadline:g}s)"
            )
        return found


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
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)


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
    election = defaults.leader_election
    parser.add_argument(
        "--leader-election",
        type=parse_bool,
        nargs="?",
        metavar="BOOL",
        const=True,
        default=parse_bool(str(default("LEADER_ELECTION", "false"))),
        help="run as one of several replicas: only the holder of a Lease reconciles and writes "
        "(env ZENMODEL_LEADER_ELECTION, default false)",
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=default("LEADER_ELECTION_NAMESPACE", election.namespace),
        help="namespace of the Lease; default: the pod's own (env ZENMODEL_LEADER_ELECTION_NAMESPACE)",
    )
    parser.add_argument(
        "--leader-election-id",
        default=default("LEADER_ELECTION_ID", election.lease_id),
        help="name of the Lease; operators sharding namespaces need one each "
        "(env ZENMODEL_LEADER_ELECTION_ID, default zenmodel-operator)",
    )
    for flag, name, fallback, meaning in (
        (
            "lease-duration",
            "LEASE_DURATION",
            election.lease_duration,
            "how long standbys wait on a silent leader",
        ),
        (
            "renew-deadline",
            "RENEW_DEADLINE",
            election.renew_deadline,
            "how long the leader keeps writing unrenewed",
        ),
        ("retry-period", "RETRY_PERIOD", election.retry_period, "how often the Lease is renewed or tried"),
    ):
        parser.add_argument(
            f"--leader-election-{flag}",
            type=float,
            metavar="SECONDS",
            default=float(str(default(f"LEADER_ELECTION_{name}", fallback))),
            help=f"seconds: {meaning} (env ZENMODEL_LEADER_ELECTION_{name}, default {fallback:g})",
        )


def in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return ""


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    """The settings `run` was given; ValueError names every flag that is wrong."""
    election = LeaderElectionSettings(
        enabled=args.leader_election,
        namespace=args.leader_election_namespace or (in_cluster_namespace() if args.leader_election else ""),
        lease_id=args.leader_election_id,
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        retry_period=args.leader_election_retry_period,
    )
    if election.enabled:
        problems = election.problems()
        if not election.namespace:
            problems.append("--leader-election-namespace is needed outside a pod")
        if problems:
            raise ValueError("; ".join(problems))
    return OperatorSettings(
        ingress_base_url=args.ingress_base_url or None,
        namespaces=tuple(args.namespaces),
        require_credentials_label=args.require_credentials_label,
        log_format=args.log_format,
        log_level=args.log_level,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        workers=max(1, args.workers),
        leader_election=election,
    )
