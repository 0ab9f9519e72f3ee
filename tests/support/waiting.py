"""Polling with a deadline: how the tests and the demo wait for a condition (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], bool], timeout: float, message: str, interval: float = 0.2) -> None:
    """Polls ``predicate`` until it returns true; fails with ``message`` once ``timeout`` seconds pass."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {time.monotonic() - start:.1f}s: {message}")
        time.sleep(interval)
