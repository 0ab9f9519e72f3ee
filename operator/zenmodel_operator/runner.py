"""`zenmodel-operator run`: kopf with our registry, settings and memo."""

from __future__ import annotations

import logging

import kopf

from .handlers import Runtime, registry
from .logs import configure_logging
from .settings import OperatorSettings

log = logging.getLogger(__name__)


def run(settings: OperatorSettings) -> None:
    outages = configure_logging(settings.log_level, settings.log_format)
    scope = ", ".join(settings.namespaces) if settings.namespaces else "all namespaces"
    log.info("zenmodel-operator starting; watching %s", scope)
    kopf.run(
        registry=registry,
        standalone=True,  # kopf's peering stays off: replicas elect a leader over a Lease (leader.py)
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None,
        memo=kopf.Memo(runtime=Runtime(settings), outages=outages),
    )
