"""Quiet under an outage: which records are outage failures, and which of them reach the log."""

from __future__ import annotations

import asyncio
import itertools
import logging

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from zenmodel_operator.logs import configure_logging
from zenmodel_operator.runtime.outage import (
    Decision,
    Failure,
    OutageFilter,
    OutageLog,
    announce_recovery,
    classify,
    classify_exception,
    classify_kopf,
)
from zenmodel_operator.runtime.transport import ApiError
from zenmodel_operator.runtime.workqueue import WorkQueue
from zenmodel_operator.runtime.writes import KubeCluster

WATCH = "GET https://10.0.0.1:443/apis/zenml.io/v1alpha1/zenmodeldeployments?watch=true"
REFUSED = (
    f"Request attempt #2/9 failed; will retry: {WATCH} -> ClientConnectorError("
    "ConnectionKey(host='10.0.0.1', port=443), ConnectionRefusedError(111, 'Connect call failed'))"
)
STARTING = (
    f"Request attempt #1/9 failed; will retry: {WATCH} -> APIServerError('the request has been made before')"
)


def test_kopf_request_failures() -> None:
    assert classify_kopf(REFUSED) is Failure.UNREACHABLE
    assert (
        classify_kopf(f"Request attempt #9/9 failed; escalating: {WATCH} -> TimeoutError()")
        is Failure.UNREACHABLE
    )
    assert classify_kopf(f"Request attempt #1 failed; TCP closed; will re-authenticate: {WATCH}") is (
        Failure.UNREACHABLE
    )
    assert classify_kopf(STARTING) is Failure.API_ERROR
    assert classify_kopf(
        f"Request attempt #3/9 failed; will retry: {WATCH} -> APITooManyRequestsError('x')"
    ) is (Failure.API_ERROR)
    assert classify_kopf("Handler 'parent_event' succeeded.") is Failure.NONE


def test_reconcile_failures_follow_their_causes() -> None:
    assert classify_exception(aiohttp.ServerDisconnectedError()) is Failure.UNREACHABLE
    assert classify_exception(aiohttp.ConnectionTimeoutError("connect timed out")) is Failure.UNREACHABLE
    assert classify_exception(aiohttp.ClientPayloadError("answer cut short")) is Failure.UNREACHABLE
    wrapped = RuntimeError("reconcile failed")
    wrapped.__cause__ = TimeoutError("read timed out")
    assert classify_exception(wrapped) is Failure.UNREACHABLE
    assert classify_exception(ApiError(503, "GET", "/x", "starting")) is Failure.API_ERROR
    assert classify_exception(ApiError(429, "GET", "/x", "slow down")) is Failure.API_ERROR
    assert classify_exception(ApiError(404, "GET", "/x", "gone")) is Failure.NONE
    assert classify_exception(ValueError("a bug")) is Failure.NONE
    assert classify_exception(None) is Failure.NONE


def test_the_carriers_own_failures_on_a_closed_port_are_unreachable() -> None:
    """No apiserver at all: the reconcile's write fails as an outage's, and the probe says not ready."""
    kube = KubeCluster(client.ApiClient(client.Configuration(host="https://127.0.0.1:9")))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}

    async def scenario() -> tuple[BaseException, bool]:
        try:
            with pytest.raises(aiohttp.ClientConnectionError) as refused:
                await kube.apply(secret)
            return refused.value, await kube.ready()
        finally:
            await kube.close()

    error, ready = asyncio.run(scenario())
    assert classify_exception(error) is Failure.UNREACHABLE
    assert not ready


def record(
    name: str, message: str, level: int = logging.ERROR, error: BaseException | None = None
) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord(name, level, __file__, 1, message, (), exc_info)


def test_records_are_classified_by_source() -> None:
    assert classify(record("kopf._cogs.clients.watching", REFUSED)) is Failure.UNREACHABLE
    failed = record("zenmodel_operator.workqueue", "reconcile of x failed", error=ConnectionRefusedError())
    assert classify(failed) is Failure.UNREACHABLE
    assert (
        classify(record("zenmodel_operator.reconcile", "reconciled models/iris", logging.INFO))
        is Failure.NONE
    )


def test_an_outage_is_one_line_then_a_summary_each_30s_then_one_recovery_line() -> None:
    state = OutageLog()
    assert state.recovered(0.0) is None  # no outage, nothing to say
    assert state.failure(Failure.API_ERROR, 0.0) is Decision.AS_IS  # an answer alone is no outage
    assert state.failure(Failure.UNREACHABLE, 1.0) is Decision.FIRST
    decisions = [state.failure(Failure.UNREACHABLE, 1.0 + t / 10) for t in range(1, 300)]
    assert set(decisions) == {Decision.DROP}
    assert state.failure(Failure.API_ERROR, 31.0) is Decision.SUMMARY  # a starting apiserver's answers count
    assert (
        state.summary(31.0) == "the Kubernetes API is still unreachable after 30s: 300 more failed requests"
    )
    assert state.failure(Failure.UNREACHABLE, 32.0) is Decision.DROP
    assert state.recovered(33.0) == (
        "the Kubernetes API is reachable again after 32s (302 failed requests, 1 since the last line)"
    )
    assert state.recovered(34.0) is None and not state.in_outage
    assert state.failure(Failure.UNREACHABLE, 100.0) is Decision.FIRST  # a new outage is news again


@given(st.lists(st.floats(min_value=0.0, max_value=600.0), min_size=1, max_size=400))
def test_never_more_than_one_line_per_30s_plus_the_first(times: list[float]) -> None:
    state = OutageLog()
    logged = [t for t in sorted(times) if state.failure(Failure.UNREACHABLE, t) is not Decision.DROP]
    assert logged[0] == min(times)
    assert all(later - earlier >= 30.0 for earlier, later in itertools.pairwise(logged))


def test_the_filter_rewrites_passes_and_drops() -> None:
    now = [0.0]
    outages = OutageFilter(clock=lambda: now[0])
    first = record(
        "zenmodel_operator.workqueue", "reconcile of x failed", error=ConnectionRefusedError(111, "refused")
    )
    assert outages.filter(first)
    assert first.exc_info is None and "ConnectionRefusedError" in first.getMessage()
    assert "summarised every 30s" in first.getMessage()
    now[0] = 5.0
    assert not outages.filter(record("kopf._cogs.clients.watching", REFUSED))
    assert outages.filter(record("zenmodel_operator.reconcile", "reconciled models/iris", logging.INFO))
    now[0] = 31.0
    summary = record("kopf._cogs.clients.watching", REFUSED)
    assert outages.filter(summary) and summary.getMessage().startswith(
        "the Kubernetes API is still unreachable"
    )
    assert summary.name == "zenmodel_operator.runtime.outage"
    assert outages.in_outage
    assert outages.recovered() is not None and not outages.in_outage


def test_configure_logging_installs_the_filter_and_silences_probes() -> None:
    outages = configure_logging("INFO", "text")
    (handler,) = logging.getLogger().handlers
    assert outages in handler.filters
    assert logging.getLogger("aiohttp.access").getEffectiveLevel() == logging.WARNING


def test_recovery_is_announced_once_and_wakes_the_backed_off_keys() -> None:
    attempts: list[str] = []
    api_up = False

    async def process(key: str) -> None:
        attempts.append(key)
        if not api_up:
            raise ConnectionRefusedError(111, "refused")

    async def scenario() -> None:
        nonlocal api_up
        queue = WorkQueue(process, workers=1, base_delay=60.0, max_delay=300.0)
        outages = OutageFilter()
        outages.filter(record("kopf._cogs.clients.watching", REFUSED))
        recoveries: list[None] = []

        def on_recovery() -> None:
            recoveries.append(None)
            queue.retry_now()

        async def api_ready() -> bool:
            return api_up

        probe = asyncio.create_task(announce_recovery(outages, api_ready, on_recovery))
        queue.start()
        queue.add("iris")
        async with asyncio.timeout(5):
            while not attempts:  # failed once (synchronously): now waiting out a minute's backoff
                await asyncio.sleep(0.01)
        api_up = True
        async with asyncio.timeout(5):
            while queue.depth:
                await asyncio.sleep(0.01)
        probe.cancel()
        await queue.stop()
        assert recoveries == [None]

    asyncio.run(scenario())
    assert attempts == ["iris", "iris"]
