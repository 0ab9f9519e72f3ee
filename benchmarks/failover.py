#!/usr/bin/env python3
"""Leader-election figures on the local control plane: failover time, the standby's memory and API load.

Two operator processes elect a leader over converged objects. The leader is SIGKILLed `--kills` times (a
fresh standby replaces it each time, as its pod would restart); each failover is the time from the kill to
the apiserver answering the standby's write that takes the Lease (read from the audit log). Then the idle
cost of a standby: its RSS beside the leader's, and apiserver requests per second with and without it.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from support.election import audit_now, identity_of, leading, lease_history, metric, seconds_between
from support.localcluster import LocalCluster
from support.measures import sample_sum
from support.objects import apply, patch_seldon_status, s3_secret, wait_state, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for

MODELS = "bench-models"
LEASE_NAMESPACE = "bench-system"
LEASE_NAME = "zenmodel-operator"


def requests_per_second(cluster: LocalCluster, window: float) -> float:
    before = sample_sum(cluster.metrics(), "apiserver_request_total")
    started = time.monotonic()
    time.sleep(window)  # a measuring window, not a wait for a condition
    after = sample_sum(cluster.metrics(), "apiserver_request_total")
    # Reading /metrics is itself one request.
    return (after - before - 1) / (time.monotonic() - started)


class Fleet:
    """Operator processes standing for one Lease, with the given durations."""

    def __init__(self, cluster: LocalCluster, workdir: Path, durations: tuple[float, float, float]) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.durations = durations
        self.started: list[OperatorProcess] = []

    def start(self) -> OperatorProcess:
        lease, renew, retry = self.durations
        process = OperatorProcess(
            self.cluster.env(),
            self.workdir / f"operator-{len(self.started)}.log",
            "--namespaces",
            MODELS,
            "--leader-election",
            "--leader-election-namespace",
            LEASE_NAMESPACE,
            "--leader-election-lease-duration",
            str(lease),
            "--leader-election-renew-deadline",
            str(renew),
            "--leader-election-retry-period",
            str(retry),
        )
        self.started.append(process)
        return process.start()

    def stop(self) -> None:
        for process in self.started:
            process.stop()


@contextmanager
def fleet(cluster: LocalCluster, workdir: Path, durations: tuple[float, float, float]) -> Iterator[Fleet]:
    running = Fleet(cluster, workdir, durations)
    try:
        yield running
    finally:
        running.stop()


def logged(process: OperatorProcess, text: str) -> bool:
    return text in process.log()


def settled(process: OperatorProcess, parents: int) -> bool:
    done = metric(process, 'zenmodel_reconcile_total{result="success"}') or 0
    return done >= parents and metric(process, "zenmodel_workqueue_depth") == 0


def failovers(
    cluster: LocalCluster, workdir: Path, durations: tuple[float, float, float], kills: int, parents: int
) -> tuple[list[float], list[float]]:
    """Seconds from each SIGKILL to the takeover, and the writes each new leader made after taking over."""
    lease = durations[0]
    seconds, writes = [], []
    with fleet(cluster, workdir, durations) as running:
        leader = running.start()
        wait_for(lambda: leading(leader), lease * 3 + 60, "no leader")
        for _ in range(kills):
            standby = running.start()
            held_by = f"is held by '{identity_of(leader)}'"
            wait_for(partial(logged, standby, held_by), 60, "the standby never read the Lease")
            assert leader.proc is not None
            killed_at = audit_now()
            os.killpg(leader.proc.pid, signal.SIGKILL)
            leader.proc.wait()
            wait_for(partial(leading, standby), lease * 3 + 60, "no takeover")
            successor = identity_of(standby)
            history = lease_history(cluster, LEASE_NAMESPACE, LEASE_NAME, killed_at)
            takeover = next(w.at for w in history if w.holder == successor)
            seconds.append(seconds_between(killed_at, takeover))
            wait_for(partial(settled, standby, parents), 60, "the new leader never settled")
            writes.append(standby.metric_sum("zenmodel_api_writes_total"))
            leader = standby
    return seconds, writes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--parents", type=int, default=5, help="converged ZenModelDeployments")
    parser.add_argument("--load-window", type=float, default=30.0, help="seconds per API-load sample")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="zmo-failover-") as workdir,
        LocalCluster(Path(workdir) / "c") as cluster,
    ):
        cluster.start(cluster.crds)
        for namespace in (MODELS, LEASE_NAMESPACE):
            cluster.kubectl("create", "namespace", namespace)
        work = Path(workdir)
        with fleet(cluster, work / "setup", (15.0, 10.0, 2.0)) as running:
            (work / "setup").mkdir()
            first = running.start()
            wait_for(lambda: leading(first), 60, "no leader")
            apply(cluster, s3_secret(MODELS), *(zmd(f"m{i}", MODELS) for i in range(args.parents)))
            for i in range(args.parents):
                wait_state(cluster, MODELS, f"m{i}", "Creating")
                patch_seldon_status(cluster, MODELS, f"m{i}", {"state": "Available"})
                wait_state(cluster, MODELS, f"m{i}", "Available")

        print(f"failover after SIGKILL, {args.kills} kills, {args.parents} converged objects:")
        for label, durations in (
            ("client-go defaults 15/10/2 s", (15.0, 10.0, 2.0)),
            ("short 3/2/0.5 s", (3.0, 2.0, 0.5)),
        ):
            run_dir = work / label.split()[0]
            run_dir.mkdir()
            seconds, writes = failovers(cluster, run_dir, durations, args.kills, args.parents)
            print(
                f"  {label}: p50 {statistics.median(seconds):.2f}s, max {max(seconds):.2f}s "
                f"(each: {', '.join(f'{s:.2f}' for s in seconds)}); "
                f"writes by each new leader: {', '.join(f'{w:g}' for w in writes)}"
            )

        idle_dir = work / "idle"
        idle_dir.mkdir()
        baseline = requests_per_second(cluster, args.load_window)
        with fleet(cluster, idle_dir, (15.0, 10.0, 2.0)) as running:
            leader = running.start()
            wait_for(lambda: leading(leader) and settled(leader, args.parents), 60, "no leader")
            with_leader = requests_per_second(cluster, args.load_window)
            standby = running.start()
            wait_for(lambda: (metric(standby, "zenmodel_workqueue_depth") or 0) >= args.parents, 60, "cold")
            with_standby = requests_per_second(cluster, args.load_window)
            print(f"idle, default durations, {args.parents} objects:")
            print(f"  RSS: leader {leader.rss_mib():.1f} MiB, standby {standby.rss_mib():.1f} MiB")
            print(
                f"  apiserver requests/s: control plane alone {baseline:.2f}, + leader {with_leader:.2f}, "
                f"+ standby {with_standby:.2f} (the standby's share: {with_standby - with_leader:.2f}/s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
