"""`zenmodel-operator run`: kopf with our registry, settings and memo."""

from __future__ import annotations

import logging

import kopf

from .handlers import registry
from .logs import configure_logging
from .runtime.leader import new_identity
from .settings import OperatorSettings
from .wiring import Runtime

log = logging.getLogger(__name__)


def run(settings: OperatorSettings) -> None:
    outages = configure_logging(settings.log_level, settings.log_format)
    scope = ", ".join(settings.namespaces) if settings.namespaces else "all namespaces"
    identity = new_identity()
    log.info("zenmodel-operator starting as %s; watching %s", identity, scope)
    kopf.run(
        registry=registry,
        identity=identity,  # type: ignore[arg-type]  # kopf's Identity: a NewType of str it does not export
        standalone=True,  # kopf's peering stays off: replicas elect a leader over a Lease (leader.py)
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None,
        memo=kopf.Memo(runtime=Runtime(settings, identity), outages=outages),
    )
