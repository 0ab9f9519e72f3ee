"""The work queue's guarantees, on a real asyncio loop."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

from zenmodel_operator.runtime.workqueue import WorkQueue, backoff_delay


async def settle(queue: WorkQueue[str], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while queue.depth:
            await asyncio.sleep(0.001)


def test_a_burst_of_events_for_one_key_is_processed_once_not_in_parallel() -> None:
    calls: Counter[str] = Counter()
    running: set[str] = set()
    overlaps = 0

    async def process(key: str) -> None:
        nonlocal overlaps
        overlaps += key in running
        running.add(key)
        calls[key] += 1
        await asyncio.sleep(0.01)
        running.discard(key)

    async def scenario() -> None:
        queue = WorkQueue(process, workers=4)
        for _ in range(100):
            queue.add("a")
        queue.start()
        await asyncio.sleep(0.001)  # let "a" start, then more events arrive while it runs
        for _ in range(100):
            queue.add("a")
        await settle(queue)
        await queue.stop()

    asyncio.run(scenario())
    assert overlaps == 0
    assert calls["a"] == 2  # once for the first burst, once more for events seen while processing


def test_one_failing_key_is_retried_with_backoff_and_does_not_block_others() -> None:
    attempts: Counter[str] = Counter()

    async def process(key: str) -> None:
        attempts[key] += 1
        if key == "bad" and attempts[key] < 3:
            raise RuntimeError("transient")

    async def scenario() -> None:
        queue = WorkQueue(process, workers=1, base_delay=0.01, max_delay=0.05)
        queue.start()
        queue.add("bad")
        for i in range(10):
            queue.add(f"good-{i}")
        await settle(queue)
        await queue.stop()

    asyncio.run(scenario())
    assert attempts["bad"] == 3
    assert all(attempts[f"good-{i}"] == 1 for i in range(10))


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_delay(n, 0.5, 4) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_a_recheck_comes_back_later_and_later_until_the_key_settles() -> None:
    seen: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def process(key: str) -> None:
            seen.append(loop.time() - start)
            if len(seen) < 4:
                queue.recheck(key)

        queue = WorkQueue(process, workers=1, recheck_delay=0.05, max_recheck_delay=0.1)
        queue.start()
        queue.add("foreign")
        async with asyncio.timeout(10):
            while len(seen) < 4 or queue.depth:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)  # longer than any recheck: none may come after the last pass
        await queue.stop()

    asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(seen)]
    assert len(seen) == 4
    assert 0.05 <= gaps[0] < 0.1  # the first delay
    assert 0.1 <= gaps[1] < 0.2 and 0.1 <= gaps[2] < 0.2  # doubled, then capped
