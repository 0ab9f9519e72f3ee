"""Leader election as the tests and the failover benchmark see it: each operator's gauges, and the apiserver's
audit log (who wrote what, and who held the Lease when).

A process is told apart in the audit log by its token's credential id (the apiserver records a bound
ServiceAccount token's `jti`), so two replicas under one ServiceAccount are still two writers.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from support.localcluster import LocalCluster
from support.operator_process import OperatorProcess

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def credential_of(kubeconfig: Path) -> str:
    """The credential id the audit log records for the kubeconfig's ServiceAccount token."""
    (user,) = yaml.safe_load(kubeconfig.read_text())["users"]
    payload = user["user"]["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"JTI={claims['jti']}"


def credential(event: dict[str, Any]) -> str | None:
    ids = (event["user"].get("extra") or {}).get(CREDENTIAL_ID) or [None]
    return str(ids[0]) if ids[0] else None


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


def writes_by(cluster: LocalCluster, who: str, since: str) -> list[dict[str, Any]]:
    """Every write request (attempt, whatever its answer) made with credential `who` since `since`."""
    return [
        event
        for event in cluster.audit_events()
        if credential(event) == who
        and event["verb"] in WRITE_VERBS
        and event["requestReceivedTimestamp"] >= since
    ]


def is_lease(event: dict[str, Any]) -> bool:
    return bool(event["objectRef"].get("resource") == "leases")


@dataclass(frozen=True)
class LeaseWrite:
    at: str  # when the apiserver answered
    writer: str  # credential id
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
            writer=credential(event) or event["user"]["username"],
            holder=event["responseObject"]["spec"].get("holderIdentity") or "",
            transitions=int(event["responseObject"]["spec"].get("leaseTransitions") or 0),
        )
        for event in events
    ]


def assert_one_leader_at_a_time(
    cluster: LocalCluster, namespace: str, name: str, since: str, writers: set[str]
) -> list[LeaseWrite]:
    """The Lease passes from holder to holder, each change counted once in leaseTransitions, and every other
    write by `writers` (credential ids) falls within its writer's own tenure. Returns the Lease's history."""
    history = lease_history(cluster, namespace, name, since)
    assert history, f"no write of Lease {namespace}/{name} since {since}"
    tenures: list[tuple[str, str, str]] = []  # (holder's credential, from, until the next holder took over)
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
            tenures.append((run.writer, run.at, following.at if following else "9999"))
    for writer in writers:
        mine = [t for t in tenures if t[0] == writer]
        for event in writes_by(cluster, writer, since):
            if is_lease(event):
                continue
            at = event["requestReceivedTimestamp"]
            assert any(start <= at < end for _, start, end in mine), (
                f"{writer} wrote {event['objectRef']} at {at}, outside its tenures {mine}"
            )
    return history
