"""Leader election's decisions as pure functions, and its flags; the API side runs in tests/e2e."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenmodel_operator import cli, settings
from zenmodel_operator.runtime.clock import micro_time
from zenmodel_operator.runtime.leader import (
    LeaseRecord,
    Move,
    Sighting,
    claim,
    decide,
    elapsed_clock,
    expires_at,
    new_identity,
    released,
    sight,
    still_leading,
    wait_before_trying,
)

ME, OTHER = "pod-a_1", "pod-b_2"
NOW = "2026-01-01T00:00:00.000000Z"

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
durations = st.integers(min_value=1, max_value=3600)
wall_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(micro_time)
records = st.builds(
    LeaseRecord,
    holder=st.sampled_from(["", ME, OTHER]),
    lease_duration_seconds=durations,
    acquire_time=st.none() | wall_times,
    renew_time=st.none() | wall_times,
    transitions=st.integers(min_value=0, max_value=1000),
)


def record(holder: str, duration: int = 15, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, duration, NOW, NOW, transitions)


def test_a_missing_lease_is_created() -> None:
    assert decide(None, ME, 0.0) is Move.CREATE


def test_our_own_lease_is_renewed() -> None:
    assert decide(Sighting(record(ME), 0.0), ME, 1e6) is Move.RENEW


def test_a_released_lease_is_taken_at_once() -> None:
    assert decide(Sighting(record(""), 10.0), ME, 10.0) is Move.TAKE


def test_a_live_lease_is_waited_on_until_it_expires_by_our_clock() -> None:
    seen = Sighting(record(OTHER, duration=15), 100.0)
    assert decide(seen, ME, 114.9) is Move.WAIT
    assert decide(seen, ME, 115.0) is Move.TAKE


@given(records, times, times)
def test_expiry_counts_from_the_sighting_never_from_the_times_in_the_record(
    lease: LeaseRecord, seen_at: float, elapsed: float
) -> None:
    """renewTime may be anything (another node's skewed clock): only our own observation counts."""
    other_holder = LeaseRecord(OTHER, lease.lease_duration_seconds, None, None, lease.transitions)
    move = decide(Sighting(lease if lease.holder == OTHER else other_holder, seen_at), ME, seen_at + elapsed)
    assert (move is Move.TAKE) == (elapsed >= lease.lease_duration_seconds)


@given(records, times, times)
def test_only_a_changed_record_restarts_the_expiry(lease: LeaseRecord, first: float, later: float) -> None:
    seen = sight(None, lease, first)
    assert sight(seen, lease, first + later) == seen
    renewed = LeaseRecord(
        lease.holder, lease.lease_duration_seconds, lease.acquire_time, "changed", lease.transitions
    )
    assert sight(seen, renewed, first + later) == Sighting(renewed, first + later)


@given(records, durations, wall_times)
def test_a_new_holder_counts_one_transition_and_a_renewal_none(
    lease: LeaseRecord, seconds: int, now: str
) -> None:
    mine = claim(lease, ME, seconds, now)
    assert mine.holder == ME and mine.renew_time == now and mine.lease_duration_seconds == seconds
    if lease.holder == ME:
        assert (mine.transitions, mine.acquire_time) == (lease.transitions, lease.acquire_time)
    else:
        assert (mine.transitions, mine.acquire_time) == (lease.transitions + 1, now)


def test_the_first_holder_starts_at_zero_transitions_and_fractions_round_up() -> None:
    assert claim(None, ME, 2.5, NOW) == LeaseRecord(ME, 3, NOW, NOW, 0)


def test_a_released_lease_keeps_its_count_and_the_next_holder_adds_one() -> None:
    free = released(record(OTHER, transitions=4), NOW)
    assert (free.holder, free.lease_duration_seconds, free.transitions) == ("", 1, 4)
    assert claim(free, ME, 15, NOW).transitions == 5


def test_the_record_round_trips_through_a_lease() -> None:
    lease = record(OTHER, transitions=3)
    assert LeaseRecord.of({"spec": lease.spec()}) == lease
    assert LeaseRecord.of({"spec": {}}) == LeaseRecord("", 0, None, None, 0)


@given(records, times, times, st.floats(min_value=0.01, max_value=60))
def test_a_candidate_never_waits_past_the_retry_period_or_the_expiry(
    lease: LeaseRecord, seen_at: float, elapsed: float, retry: float
) -> None:
    seen = Sighting(lease, seen_at)
    delay = wait_before_trying(seen, ME, seen_at + elapsed, retry)
    assert 0 <= delay <= retry
    if decide(seen, ME, seen_at + elapsed) is Move.WAIT:
        assert seen_at + elapsed + delay <= expires_at(seen) + 1e-6


def test_the_fence_opens_only_within_the_renew_deadline() -> None:
    assert not still_leading(None, 0.0, 10.0)
    assert still_leading(100.0, 109.9, 10.0)
    assert not still_leading(100.0, 110.0, 10.0)


@given(
    renew_started=times,
    seen_after=st.floats(min_value=0, max_value=100),
    now=times,
    leader_offset=st.floats(min_value=-1e6, max_value=1e6),
    standby_offset=st.floats(min_value=-1e6, max_value=1e6),
    lease_seconds=durations,
    deadline_share=st.floats(min_value=0.01, max_value=0.99),
)
def test_the_leaders_fence_closes_before_a_standby_may_take_over(
    renew_started: float,
    seen_after: float,
    now: float,
    leader_offset: float,
    standby_offset: float,
    lease_seconds: int,
    deadline_share: float,
) -> None:
    """Each process has its own monotonic clock (any offset, same rate). The standby sees the renewed
    record after the leader started that renew; with renew deadline < lease duration, at no instant may
    the leader still write while the standby may take the Lease."""
    renew_deadline = lease_seconds * deadline_share
    leader_may_write = still_leading(renew_started + leader_offset, now + leader_offset, renew_deadline)
    seen = Sighting(record(OTHER, duration=lease_seconds), renew_started + seen_after + standby_offset)
    standby_may_take = decide(seen, ME, now + standby_offset) is Move.TAKE
    assert not (leader_may_write and standby_may_take)


@pytest.mark.skipif(not hasattr(time, "CLOCK_BOOTTIME"), reason="CLOCK_BOOTTIME is Linux's")
def test_the_fence_clock_counts_suspends() -> None:
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    reading = elapsed_clock()
    assert before <= reading <= time.clock_gettime(time.CLOCK_BOOTTIME)


def test_micro_time_and_identity() -> None:
    moment = datetime(2026, 11, 23, 21, 5, 7, 123456, tzinfo=UTC) + timedelta(hours=1)
    assert micro_time(moment) == "2026-11-23T22:05:07.123456Z"
    first, second = new_identity(), new_identity()
    assert first != second
    assert re.fullmatch(r".+_[0-9a-f-]{36}", first)


# ------------------------------------------------------------------------------------------------- flags


def parse(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, environ or {})
    return parser.parse_args(argv)


def test_leader_election_is_off_by_default_with_client_gos_durations() -> None:
    election = settings.from_arguments(parse([])).leader_election
    assert election == settings.LeaderElectionSettings(
        enabled=False,
        namespace="",
        lease_id="zenmodel-operator",
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
    )


def test_flags_and_their_environment_variables() -> None:
    from_flags = parse(
        [
            "--leader-election",
            "--leader-election-namespace=ops",
            "--leader-election-id=shard-a",
            "--leader-election-lease-duration=3",
            "--leader-election-renew-deadline=2",
            "--leader-election-retry-period=0.5",
        ]
    )
    from_env = parse(
        [],
        {
            "ZENMODEL_LEADER_ELECTION": "true",
            "ZENMODEL_LEADER_ELECTION_NAMESPACE": "ops",
            "ZENMODEL_LEADER_ELECTION_ID": "shard-a",
            "ZENMODEL_LEADER_ELECTION_LEASE_DURATION": "3",
            "ZENMODEL_LEADER_ELECTION_RENEW_DEADLINE": "2",
            "ZENMODEL_LEADER_ELECTION_RETRY_PERIOD": "0.5",
        },
    )
    expected = settings.LeaderElectionSettings(True, "ops", "shard-a", 3, 2, 0.5)
    assert settings.from_arguments(from_flags).leader_election == expected
    assert settings.from_arguments(from_env).leader_election == expected
    off = parse(["--leader-election=false"], {"ZENMODEL_LEADER_ELECTION": "true"})
    assert not settings.from_arguments(off).leader_election.enabled


@given(
    lease=st.floats(min_value=-5, max_value=60),
    renew=st.floats(min_value=-5, max_value=60),
    retry=st.floats(min_value=-5, max_value=60),
)
def test_durations_must_be_ordered_as_client_go_demands(lease: float, renew: float, retry: float) -> None:
    problems = settings.LeaderElectionSettings(
        True, "ops", "zenmodel-operator", lease, renew, retry
    ).problems()
    assert (not problems) == (lease > renew > settings.RETRY_JITTER_FACTOR * retry > 0)


@pytest.mark.parametrize("lease_id", ["", "Upper", "-leading", "a" * 254, "under_score"])
def test_the_lease_id_must_be_a_valid_name(lease_id: str) -> None:
    assert settings.LeaderElectionSettings(lease_id=lease_id).problems()


def test_run_refuses_bad_durations_and_a_missing_namespace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(settings, "IN_CLUSTER_NAMESPACE_FILE", tmp_path / "namespace")
    argv = ["run", "--leader-election", "--leader-election-namespace=ops"]
    assert cli.main([*argv, "--leader-election-renew-deadline=20"]) == 2
    assert "must exceed --leader-election-renew-deadline" in capsys.readouterr().err
    assert cli.main(["run", "--leader-election"]) == 2
    assert "--leader-election-namespace is needed outside a pod" in capsys.readouterr().err


def test_in_a_pod_the_lease_lives_in_the_pods_namespace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "namespace").write_text("zenmodel-system\n")
    monkeypatch.setattr(settings, "IN_CLUSTER_NAMESPACE_FILE", tmp_path / "namespace")
    assert (
        settings.from_arguments(parse(["--leader-election"])).leader_election.namespace == "zenmodel-system"
    )
    assert settings.from_arguments(parse([])).leader_election.namespace == ""
