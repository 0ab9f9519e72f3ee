"""A work queue of object keys, in the manner of client-go's: the heart of level-based reconciling.

A key waiting in the queue is there once however many events name it; a key is never processed by two
workers at once (an event during processing marks it to run once more after); a failure is retried with
capped exponential backoff, and one bad object never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Delay before the next try after `failures` consecutive failures: doubling from `base`, capped."""
    return min(cap, base * 2.0 ** max(0, failures - 1))


class WorkQueue(Generic[K]):
    def __init__(
        self,
        process: Callable[[K], Awaitable[None]],
        *,
        workers: int,
        base_delay: float = 0.5,
        max_delay: float = 300.0,
        recheck_delay: float = 5.0,
        max_recheck_delay: float = 60.0,
    ) -> None:
        self._process = process
        self._workers = workers
        self._base_delay = base_delay
        self._max_delay = max_delay
        # Looking again at an object that waits on what no watch reports: soon, then once a minute.
        self._recheck_delay = recheck_delay
        self._max_recheck_delay = max_recheck_delay
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._processing: set[K] = set()
        # Keys added while processed: each runs once more after (whether an event is news is `echo`'s).
        self._again: set[K] = set()
        self._failures: dict[K, int] = {}
        self._rechecks: dict[K, int] = {}
        self._retries: dict[K, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        """Only on the event loop's thread: asyncio's queue is not thread-safe."""
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()  # an event is news: try now rather than at the backoff's end
        if key in self._processing:
            self._again.add(key)
        elif key not in self._waiting:
            self._waiting.add(key)
            self._queue.put_nowait(key)

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def forget(self, key: K) -> None:
        """The object is gone: drop its pending retry and backoff."""
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()
        self._failures.pop(key, None)
        self._rechecks.pop(key, None)

    def recheck(self, key: K) -> None:
        """Processes `key` again later, less and less often, unless an event comes first: for an object
        that waits on a change no watch reports. Called while `key` is processed."""
        count = self._rechecks[key] = self._rechecks.get(key, 0) + 1
        self._schedule_retry(key, backoff_delay(count, self._recheck_delay, self._max_recheck_delay))

    def retry_now(self) -> None:
        """Retries every key waiting out a backoff at once: what failed them (an outage) is over."""
        for key in list(self._retries):
            self.add(key)

    def backoff(self, key: K) -> float:
        return backoff_delay(self._failures.get(key, 0), self._base_delay, self._max_delay)

    @property
    def depth(self) -> int:
        """Keys waiting, being processed or due for a retry: 0 means every object has converged."""
        return len(self._waiting | self._processing | self._retries.keys())

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"reconcile-worker-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._processing.add(key)
            try:
                await self._process(key)
            except Exception:
                self._failures[key] = self._failures.get(key, 0) + 1
                delay = self.backoff(key)
                log.exception("reconcile of %s failed; retrying in %.1fs", key, delay)
                self._schedule_retry(key, delay)
            else:
                self._failures.pop(key, None)
                if key not in self._retries:  # processed without asking for a recheck
                    self._rechecks.pop(key, None)
            finally:
                self._processing.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)

    def _schedule_retry(self, key: K, delay: float) -> None:
        def retry() -> None:
            self._retries.pop(key, None)
            self.add(key)

        self._retries[key] = asyncio.get_running_loop().call_later(delay, retry)
