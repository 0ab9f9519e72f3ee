"""Leader election as the tests and the failover benchmark see it: each operator's gauges, and the apiserver's
audit log (who wrote what, and who held the Lease when)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from support.localcluster import LocalCluster
from support.operator_process import OperatorProcess

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def audit_now() -> str:
    """Now, as the audit log writes its timestamps (same machine, same clock: comparable as strings)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds_between(earlier: str, later: str) -> float:
    def parse(stamp: str) -> datetime:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    return (parse(later) - parse(earlier)).total_seconds()


def metric(process: OperatorProcess, name: str) -> float | None:
    """A sample of the operator's /metrics (`name` with its labels, as exposed), None if absent."""
    for line in process.metrics().splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return None


def leading(process: OperatorProcess) -> bool:
    return metric(process, "zenmodel_leader") == 1.0


def identity_of(process: OperatorProcess) -> str:
    """The holder identity the process stands with (it logs it once, on starting)."""
    found = re.search(r"standing for the leadership of Lease \S+ as (\S+)", process.log())
    assert found, f"{process.log_path} names no identity"
    return found.group(1)


def writes_by(cluster: LocalCluster, username: str, since: str) -> list[dict[str, Any]]:
    """Every write request (attempt, whatever its answer) `username` made since `since`."""
    return [
        event
        for event in cluster.audit_events()
        if event["user"]["username"] == username
        and event["verb"] in WRITE_VERBS
        and event["requestReceivedTimestamp"] >= since
    ]


def is_lease(event: dict[str, Any]) -> bool:
    return bool(event["objectRef"].get("resource") == "leases")


@dataclass(frozen=True)
class LeaseWrite:
    at: str  # when the apiserver answered
    username: str
    holder: str
    transitions: int


def lease_history(cluster: LocalCluster, namespace: str, name: str, since: str) -> list[LeaseWrite]:
    """The Lease's successful writes since `since`, in the order etcd took them."""
    events = [
        event
        for event in cluster.audit_events()
        if is_lease(event)
        and event["verb"] in WRITE_VERBS
        and event["objectRef"].get("namespace") == namespace
        and event["objectRef"].get("name", name) == name
        and event["requestReceivedTimestamp"] >= since
        and event["responseStatus"]["code"] < 300
        and (event.get("responseObject") or {}).get("metadata", {}).get("name") == name
    ]
    events.sort(key=lambda event: int(event["responseObject"]["metadata"]["resourceVersion"]))
    return [
        LeaseWrite(
            at=event["stageTimestamp"],
            username=event["user"]["username"],
            holder=event["responseObject"]["spec"].get("holderIdentity") or "",
            transitions=int(event["responseObject"]["spec"].get("leaseTransitions") or 0),
        )
        for event in events
    ]


def assert_one_leader_at_a_time(
    cluster: LocalCluster, namespace: str, name: str, since: str, users: set[str]
) -> list[LeaseWrite]:
    """The Lease passes from holder to holder, each change counted once in leaseTransitions, and every other
    write by `users` falls within its writer's own tenure. Returns the Lease's history."""
    history = lease_history(cluster, namespace, name, since)
    assert history, f"no write of Lease {namespace}/{name} since {since}"
    tenures: list[tuple[str, str, str]] = []  # (holder's username, from, until the next holder took over)
    for before, after in itertools.pairwise(history):
        if after.holder == before.holder:
            assert after.transitions == before.transitions, f"a renewal counted a transition: {after}"
        else:
            assert after.transitions == before.transitions + 1, f"a change of holder not counted: {after}"
    runs = [write for i, write in enumerate(history) if i == 0 or history[i - 1].holder != write.holder]
    holders = [run.holder for run in runs if run.holder]
    assert len(holders) == len(set(holders)), f"a holder came back: {[r.holder for r in runs]}"
    for run, following in zip(runs, [*runs[1:], None], strict=True):
        if run.holder:
            tenures.append((run.username, run.at, following.at if following else "9999"))
    for username in users:
        mine = [t for t in tenures if t[0] == username]
        for event in writes_by(cluster, username, since):
            if is_lease(event):
                continue
            at = event["requestReceivedTimestamp"]
            assert any(start <= at < end for _, start, end in mine), (
                f"{username} wrote {event['objectRef']} at {at}, outside its tenures {mine}"
            )
    return history
