"""Quiet under an apiserver outage: the first failure is logged, then one summary line per 30 s with a
count, and one line when the API answers again (which also retries the reconciles waiting on a backoff).

The lines come from kopf's watch requests ("Request attempt #N failed") and our work queue's failed
reconciles (whose requests are not retried in place). A logging filter on the one handler classifies
each record; `OutageLog` decides, purely, what is written.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from .transport import ApiError

log = logging.getLogger(__name__)

SUMMARY_SECONDS = 30.0
PROBE_INTERVAL_SECONDS = 0.5


class Failure(enum.Enum):
    """What a log record says about the API."""

    UNREACHABLE = "unreachable"  # no answer at all: refused, reset, timed out
    API_ERROR = "api-error"  # an answer, but an error a starting apiserver gives (5xx, 429, 403)
    NONE = "none"  # anything else: always logged as is


class Decision(enum.Enum):
    AS_IS = "as-is"
    FIRST = "first"  # the first failure of an outage: logged, and says what follows
    SUMMARY = "summary"  # replaced by a line with the count since the last one
    DROP = "drop"


@dataclass
class OutageLog:
    """When an outage's failures are worth a line. Pure: times are passed in."""

    summary_seconds: float = SUMMARY_SECONDS
    since: float | None = None  # when the outage's first failure was seen
    last_line: float = 0.0
    unlogged: int = 0  # failures since the last line
    total: int = 0

    @property
    def in_outage(self) -> bool:
        return self.since is not None

    def failure(self, kind: Failure, now: float) -> Decision:
        # An API error is expected while an apiserver starts; alone it is not an outage (RBAC, say).
        if kind is Failure.NONE or (kind is Failure.API_ERROR and self.since is None):
            return Decision.AS_IS
        self.total += 1
        if self.since is None:
            self.since = self.last_line = now
            return Decision.FIRST
        if now - self.last_line >= self.summary_seconds:
            self.last_line = now
            return Decision.SUMMARY
        self.unlogged += 1
        return Decision.DROP

    def summary(self, now: float) -> str:
        """The summary line (call on `Decision.SUMMARY`); it counts the failure it replaces."""
        count, self.unlogged = self.unlogged + 1, 0
        assert self.since is not None
        return f"the Kubernetes API is still unreachable after {now - self.since:.0f}s: {count} more failed requests"

    def recovered(self, now: float) -> str | None:
        """The recovery line, once per outage; None when there was none."""
        if self.since is None:
            return None
        line = (
            f"the Kubernetes API is reachable again after {now - self.since:.0f}s "
            f"({self.total} failed requests, {self.unlogged} since the last line)"
        )
        self.since, self.unlogged, self.total = None, 0, 0
        return line


_KOPF_FAILURE = re.compile(r"^Request attempt #\d+(?:/\d+)? failed; (?:(?:TCP|SSL) closed|.* -> (\w+)\()")


def classify_kopf(message: str) -> Failure:
    """kopf logs each failed request as "Request attempt #1/9 failed; will retry: GET ... -> Error(...)"."""
    match = _KOPF_FAILURE.match(message)
    if match is None:
        return Failure.NONE
    error = match.group(1) or ""
    # kopf's own errors (APIServerError, APIForbiddenError, APITooManyRequestsError) are answers;
    # aiohttp's connection errors and timeouts mean no answer.
    return Failure.API_ERROR if error.startswith("API") else Failure.UNREACHABLE


def classify_exception(error: BaseException | None) -> Failure:
    """A failed reconcile's exception, following its causes."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ApiError):
            return Failure.API_ERROR if error.status >= 500 or error.status in (403, 429) else Failure.NONE
        # aiohttp's connection errors (refused, reset, disconnected, an answer cut short) and timeouts.
        if isinstance(
            error, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | ConnectionError | TimeoutError
        ):
            return Failure.UNREACHABLE
        error, seen = error.__cause__ or error.__context__, seen + 1
    return Failure.NONE


def classify(record: logging.LogRecord) -> Failure:
    if record.name.startswith("kopf."):
        return classify_kopf(record.getMessage())
    if record.exc_info and record.levelno >= logging.WARNING:
        return classify_exception(record.exc_info[1])
    return Failure.NONE


class OutageFilter(logging.Filter):
    """The logging side of `OutageLog`: classifies, then passes, rewrites or drops each record."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.state = OutageLog()
        self._clock = clock
        self._lock = threading.Lock()  # records may come from any thread (kopf's executor runs `login`)

    @property
    def in_outage(self) -> bool:
        return self.state.in_outage

    def filter(self, record: logging.LogRecord) -> bool:
        kind = classify(record)
        if kind is Failure.NONE:
            return True
        with self._lock:
            now = self._clock()
            decision = self.state.failure(kind, now)
            if decision is Decision.DROP:
                return False
            if decision is Decision.SUMMARY:
                _rewrite(record, self.state.summary(now))
                record.name = __name__  # it speaks for every source, not the one whose record it replaced
            elif decision is Decision.FIRST:
                _rewrite(
                    record,
                    f"{_one_line(record)} (the Kubernetes API looks unreachable: further failures are "
                    f"counted and summarised every {self.state.summary_seconds:.0f}s until it answers)",
                )
        return True

    def recovered(self) -> str | None:
        with self._lock:
            return self.state.recovered(self._clock())


def _one_line(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        message = f"{message}: {type(error).__name__}: {error}"
    return message


def _rewrite(record: logging.LogRecord, message: str) -> None:
    # Connection failures need no traceback: one line each.
    record.msg, record.args = message, ()
    record.exc_info, record.exc_text = None, None


async def announce_recovery(
    outages: OutageFilter, api_ready: Callable[[], Awaitable[bool]], on_recovery: Callable[[], None]
) -> None:
    """While an outage is on, probes the API; once it answers, logs one line and calls `on_recovery`."""
    while True:
        await asyncio.sleep(PROBE_INTERVAL_SECONDS)
        if outages.in_outage and await api_ready():
            line = outages.recovered()
            if line is not None:
                log.info(line)
                on_recovery()
