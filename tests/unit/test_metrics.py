"""The state gauges follow each parent from state to state, and forget it when it goes."""

from __future__ import annotations

from prometheus_client import REGISTRY

from zenmodel_operator.core.status import State
from zenmodel_operator.runtime.controller import Outcome
from zenmodel_operator.settings import OperatorSettings
from zenmodel_operator.wiring import Runtime


def gauges() -> dict[str, float]:
    return {
        state.value: REGISTRY.get_sample_value("zenmodel_deployments", {"state": state.value}) or 0.0
        for state in State
    }


def outcome(state: str | None) -> Outcome:
    return Outcome(writes=(), state=state, credentials_reason=None)


def test_each_parent_is_counted_once_in_its_latest_state_and_not_after_it_is_gone() -> None:
    before = gauges()
    runtime = Runtime(OperatorSettings(), "test")
    runtime.record(("ns", "a"), outcome(State.CREATING.value))
    runtime.record(("ns", "b"), outcome(State.CREATING.value))
    runtime.record(("ns", "a"), outcome(State.AVAILABLE.value))
    runtime.record(("ns", "a"), outcome(State.AVAILABLE.value))
    runtime.record(("ns", "b"), outcome(None))  # no state decided: b stays where it was
    after = gauges()
    assert after[State.CREATING.value] - before[State.CREATING.value] == 1
    assert after[State.AVAILABLE.value] - before[State.AVAILABLE.value] == 1

    runtime.forget_parent(("ns", "a"))
    runtime.forget_parent(("ns", "b"))
    runtime.forget_parent(("ns", "b"))
    assert gauges() == before
