"""Logging set-up: human text by default, one JSON object a line on request."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .runtime.clock import rfc3339
from .runtime.outage import OutageFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": rfc3339(datetime.fromtimestamp(record.created, UTC), 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s = getattr(record, "k8s_ref", None)  # kopf's per-object loggers name the object here
        if isinstance(k8s, dict):
            entry["object"] = {k: k8s.get(k) for k in ("namespace", "name", "kind") if k8s.get(k)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, fmt: str) -> OutageFilter:
    """Sets up the one handler; returns its outage filter, which the operator tells of recoveries."""
    handler = logging.StreamHandler()
    outages = OutageFilter()
    handler.addFilter(outages)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kopf's own debug output includes raw watch events, so it never goes below INFO: Secrets pass
    # through those streams, and their values must not reach a log.
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLevelName(level)))
    # kopf reports every handled watch event at INFO ("Handler ... succeeded"): noise, as every
    # event is only a key for the work queue. Its warnings and errors still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # The liveness endpoint's access log: a line per /healthz probe, thousands a day, says nothing.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return outages
