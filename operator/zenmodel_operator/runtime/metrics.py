"""Prometheus metrics: what an on-call engineer graphs and alerts on."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "zenmodel_reconcile", "Reconciles of ZenModelDeployments, by result (success or error).", ["result"]
)
RECONCILE_SECONDS = Histogram(
    "zenmodel_reconcile_duration_seconds",
    "Time one reconcile takes, API calls included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("zenmodel_api_writes", "API writes by the operator, by what was written.", ["kind"])
DEPLOYMENTS = Gauge("zenmodel_deployments", "ZenModelDeployments by mirrored state.", ["state"])
MIRROR_SECONDS = Histogram(
    "zenmodel_status_mirror_latency_seconds",
    "From a SeldonDeployment change reaching the operator to the parent's status written.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CREDENTIAL_ERRORS = Counter(
    "zenmodel_credential_errors", "Reconciles that found the credentials unusable, by reason.", ["reason"]
)
QUEUE_DEPTH = Gauge("zenmodel_workqueue_depth", "Keys waiting or being reconciled.")
LEADER = Gauge(
    "zenmodel_leader", "1 while this process holds the leader-election Lease (or runs alone), else 0."
)


def serve(port: int) -> None:
    if port:
        start_http_server(port)


def count_state(previous: str | None, current: str | None) -> None:
    """Moves one ZenModelDeployment between the state gauges (None: not counted). Constant work per
    reconcile: recounting every parent's state there made a fleet's reconciles quadratic."""
    if previous == current:
        return
    if previous is not None:
        DEPLOYMENTS.labels(state=previous).dec()
    if current is not None:
        DEPLOYMENTS.labels(state=current).inc()


def export_states(states: Iterable[str]) -> None:
    """Exports every state from the start, at 0."""
    for state in states:
        DEPLOYMENTS.labels(state=state)
