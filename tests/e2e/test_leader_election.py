"""Leader election on the real control plane: the elector against the real Lease API, then two operator
processes under the chart's RBAC, told apart in the audit log by their tokens: either the chart's
ServiceAccount for both (two tokens, as two replicas of the chart run), or a ServiceAccount each (the
chart's, and a second bound to the chart's Roles).

Durations are short (lease 3 s, renew deadline 2 s, retry 0.5 s) so that failovers take seconds. The
models live in namespaces Seldon's controller skips: a converged object rests in Creating, so every write
counted is the operator's answer to a change the test made, not to Seldon's rollout.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from support.election import (
    assert_one_leader_at_a_time,
    audit_now,
    credential_of,
    identity_of,
    is_lease,
    leading,
    metric,
    seconds_between,
    writes_by,
)
from support.helmchart import helm_env, installed_release
from support.holdingproxy import HoldingProxy
from support.localcluster import LocalCluster
from support.objects import (
    SELDON_SKIPS,
    apply,
    exists,
    fresh_namespace,
    get,
    must_get,
    patch_seldon_status,
    s3_secret,
    status_of,
    wait_state,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.runtime.leader import EXIT_LEASE_LOST, Elector, LeaseApi, LeaseLost
from zenmodel_operator.runtime.writes import KubeCluster
from zenmodel_operator.settings import LeaderElectionSettings

pytestmark = pytest.mark.e2e

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
SHORT = LeaderElectionSettings(True, "", "unused", LEASE, RENEW, RETRY)
TIMEOUT = 60.0
# Takeover is bounded by lease + retry after the kill, plus a read and a write of the Lease: on this shared,
# loaded machine those take up to a few hundred milliseconds.
API_SLACK = 1.0


# ------------------------------------------------------------------------ the elector against the Lease API


class StoppedClock:
    """A monotonic clock that moves only when told: a process frozen for exactly as long as a test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admin_api(cluster: LocalCluster) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    return api


def in_process_elector(
    cluster: LocalCluster, namespace: str, name: str, clock: StoppedClock, lost: list[str]
) -> Elector:
    api = admin_api(cluster)
    settings = LeaderElectionSettings(True, namespace, name, LEASE, RENEW, RETRY)
    elector: Elector | None = None

    def on_lost() -> None:
        assert elector is not None
        lost.append(elector.identity)

    elector = Elector(LeaseApi(KubeCluster(api), namespace, name), settings, clock=clock, on_lost=on_lost)
    return elector


async def close(*electors: Elector) -> None:
    for elector in electors:
        await elector.leases.cluster.close()


def lease_spec(cluster: LocalCluster, namespace: str, name: str) -> dict[str, object]:
    return dict(must_get(cluster, "lease", namespace, name)["spec"])


def test_electors_take_renew_and_release_the_lease_as_client_go_does(
    cluster: LocalCluster, namespace: str
) -> None:
    clock, lost = StoppedClock(), list[str]()
    first, second = (in_process_elector(cluster, namespace, "electors", clock, lost) for _ in range(2))

    async def scenario() -> None:
        try:
            await steps()
        finally:
            await close(first, second)

    async def steps() -> None:
        assert await first.try_acquire_or_renew()  # no Lease yet: created
        assert not await second.try_acquire_or_renew()  # held, and alive by second's clock
        assert lease_spec(cluster, namespace, "electors")["holderIdentity"] == first.identity
        assert lease_spec(cluster, namespace, "electors")["leaseTransitions"] == 0
        renewed = clock.now = clock.now + 1.0
        assert await first.try_acquire_or_renew()
        assert not await second.try_acquire_or_renew()  # second sees the record change now
        clock.now = renewed + LEASE - 0.1
        assert not await second.try_acquire_or_renew(), "taken before the lease ran out since it changed"
        clock.now = renewed + LEASE
        assert await second.try_acquire_or_renew()
        spec = lease_spec(cluster, namespace, "electors")
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == (second.identity, 1)
        # first was silent past its renew deadline: its fence is shut, and it cannot take the Lease back.
        with pytest.raises(LeaseLost):
            first.check()
        assert not await first.try_acquire_or_renew()
        await second.stop()  # a clean stop releases the Lease: first takes it at once
        assert lease_spec(cluster, namespace, "electors")["holderIdentity"] == ""
        assert await first.try_acquire_or_renew()
        assert lease_spec(cluster, namespace, "electors")["leaseTransitions"] == 2

    asyncio.run(scenario())


def test_of_two_candidates_for_a_free_lease_exactly_one_wins(cluster: LocalCluster, namespace: str) -> None:
    clock, lost = StoppedClock(), list[str]()
    candidates = [in_process_elector(cluster, namespace, "race", clock, lost) for _ in range(3)]

    async def scenario() -> None:
        try:
            for _ in range(5):
                won = list(await asyncio.gather(*(c.try_acquire_or_renew() for c in candidates)))
                assert won.count(True) == 1
                winner = candidates[won.index(True)]
                assert lease_spec(cluster, namespace, "race")["holderIdentity"] == winner.identity
                await winner.stop()  # released: the next round races again
        finally:
            await close(*candidates)

    asyncio.run(scenario())


def test_the_fence_refuses_writes_once_the_renew_deadline_passed(
    cluster: LocalCluster, namespace: str
) -> None:
    clock, lost = StoppedClock(), list[str]()
    elector = in_process_elector(cluster, namespace, "fence", clock, lost)
    api = admin_api(cluster)
    writer = KubeCluster(api, fence=elector.writing)

    def secret(name: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}

    async def scenario() -> str:
        try:
            with pytest.raises(LeaseLost):
                await writer.apply(secret("before-leading"))
            renewed = clock.now
            assert await elector.try_acquire_or_renew()
            clock.now = renewed + RENEW - 0.01
            await writer.apply(secret("while-leading"))
            # Frozen up to the deadline, then resumed: the next write must not leave.
            clock.now = renewed + RENEW
            since = audit_now()
            with pytest.raises(LeaseLost):
                await writer.apply(secret("after-the-deadline"))
            return since
        finally:
            await writer.close()
            await close(elector)

    since = asyncio.run(scenario())
    assert exists(cluster, "secret", "while-leading", namespace)
    assert not exists(cluster, "secret", "after-the-deadline", namespace)
    assert not [
        e
        for e in cluster.audit_events()
        if e["requestReceivedTimestamp"] >= since
        and e["objectRef"].get("name") == "after-the-deadline"
        and e["verb"] != "get"
    ], "a fenced write reached the apiserver"


def test_a_clean_stop_releases_the_lease_only_after_the_writes_on_their_way(
    cluster: LocalCluster, namespace: str
) -> None:
    clock, lost = StoppedClock(), list[str]()
    elector = in_process_elector(cluster, namespace, "handover", clock, lost)

    async def scenario() -> None:
        try:
            await steps()
        finally:
            await close(elector)

    async def steps() -> None:
        entered, finish = asyncio.Event(), asyncio.Event()

        async def slow_write() -> None:
            with elector.writing():
                entered.set()
                await finish.wait()

        assert await elector.try_acquire_or_renew()
        writer = asyncio.create_task(slow_write())
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        stopping = asyncio.create_task(elector.stop())
        await asyncio.sleep(RETRY)  # time enough for a stop that did not wait to have released
        with pytest.raises(LeaseLost):
            elector.check()  # no new write may start...
        held = lease_spec(cluster, namespace, "handover")["holderIdentity"]
        assert held == elector.identity, "released while a write was on its way"
        finish.set()  # ...and once the last one has landed, the Lease is released
        await asyncio.wait_for(stopping, TIMEOUT)
        await writer
        assert lease_spec(cluster, namespace, "handover")["holderIdentity"] == ""

    asyncio.run(scenario())


def elector_on_real_clock(cluster: LocalCluster, namespace: str, name: str) -> tuple[Elector, asyncio.Event]:
    """An elector with the test's durations and the real monotonic clock, and what it sets once it gives up."""
    lost = asyncio.Event()
    leases = LeaseApi(KubeCluster(admin_api(cluster)), namespace, name)
    return Elector(leases, SHORT, on_lost=lost.set), lost


def run_until_lost(elector: Elector, lost: asyncio.Event, cut_off: Callable[[], Awaitable[None]]) -> float:
    """Runs the elector until it leads, calls `cut_off`, and returns how long it then took to give up; its
    fence must be shut by then."""

    async def scenario() -> float:
        try:
            leads = asyncio.Event()
            elector.start(on_leading=leads.set)
            await asyncio.wait_for(leads.wait(), TIMEOUT)
            elector.check()
            cut = time.monotonic()
            await cut_off()
            await asyncio.wait_for(lost.wait(), TIMEOUT)
            gave_up = time.monotonic() - cut
            with pytest.raises(LeaseLost):
                elector.check()
            await elector.stop()
            return gave_up
        finally:
            await close(elector)

    return asyncio.run(scenario())


def test_a_leader_cut_off_from_the_apiserver_gives_up_within_the_renew_deadline(
    cluster: LocalCluster, namespace: str
) -> None:
    elector, lost = elector_on_real_clock(cluster, namespace, "partition")
    unreachable = client.ApiClient(client.Configuration(host="https://127.0.0.1:9"))

    async def partition() -> None:
        reachable, elector.leases.cluster = elector.leases.cluster, KubeCluster(unreachable)
        await reachable.close()

    gave_up = run_until_lost(elector, lost, partition)
    assert gave_up <= RENEW + RETRY + API_SLACK
    # It could not say so either: the Lease still names it, and standbys wait for it to expire.
    assert lease_spec(cluster, namespace, "partition")["holderIdentity"] == elector.identity


def test_a_leader_whose_lease_was_taken_gives_up_at_its_next_renewal(
    cluster: LocalCluster, namespace: str
) -> None:
    elector, lost = elector_on_real_clock(cluster, namespace, "taken")

    async def take() -> None:
        patch = '{"spec":{"holderIdentity":"someone-else"}}'
        cluster.kubectl("patch", "lease", "taken", "-n", namespace, "--type=merge", "-p", patch)

    assert run_until_lost(elector, lost, take) <= RETRY + API_SLACK


# ------------------------------------------------------------------ two operator processes, the chart's RBAC


@dataclass(frozen=True)
class Release:
    operator_namespace: str
    lease: str
    models: str  # served by both processes
    solo: str  # served by the first process only (see the freeze test)
    kubeconfigs: tuple[Path, Path]
    credentials: tuple[str, str]  # the audit log's ids of their tokens


@pytest.fixture(scope="module", params=["chart-account-twice", "an-account-each"])
def release(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Release]:
    tmp = tmp_path_factory.mktemp("ha")
    with ExitStack() as stack:
        operator_namespace = stack.enter_context(fresh_namespace(cluster, "ha-system"))
        models = stack.enter_context(fresh_namespace(cluster, "ha-models", labels=SELDON_SKIPS))
        solo = stack.enter_context(fresh_namespace(cluster, "ha-solo", labels=SELDON_SKIPS))
        name = "zmo-ha"
        values = {
            "crds.install": False,
            "rbac.scope": "namespaced",
            "watchNamespaces": [models, solo],
            "leaderElection.leaseDuration": LEASE,
            "leaderElection.renewDeadline": RENEW,
            "leaderElection.retryPeriod": RETRY,
        }
        chart_account = stack.enter_context(
            installed_release(
                cluster,
                helm_env(cluster, tmp / "helm"),
                name,
                operator_namespace,
                values,
                tmp / "a.kubeconfig",
            )
        )
        fullname = f"{name}-zenmodel-operator"
        second = fullname if request.param == "chart-account-twice" else f"{name}-second"
        if second != fullname:
            cluster.kubectl("create", "serviceaccount", second, "-n", operator_namespace)
            subject = f"--serviceaccount={operator_namespace}:{second}"
            for role, role_namespace in (
                (fullname, models),
                (fullname, solo),
                (f"{fullname}-leader-election", operator_namespace),
            ):
                cluster.kubectl(
                    "create", "rolebinding", second, f"--role={role}", subject, "-n", role_namespace
                )
            discovery = f"{operator_namespace}-{second}"
            cluster.kubectl(
                "create", "clusterrolebinding", discovery, f"--clusterrole={fullname}-discovery", subject
            )
            stack.callback(cluster.kubectl, "delete", "clusterrolebinding", discovery, check=False)
        second_account = cluster.create_service_account_kubeconfig(
            operator_namespace, second, tmp / "b.kubeconfig"
        )
        yield Release(
            operator_namespace,
            fullname,
            models,
            solo,
            (chart_account, second_account),
            (credential_of(chart_account), credential_of(second_account)),
        )


@pytest.fixture
def processes() -> Iterator[list[OperatorProcess]]:
    """The test's operators, stopped (and resumed, if frozen) afterwards."""
    started: list[OperatorProcess] = []
    yield started
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            os.kill(process.proc.pid, signal.SIGCONT)
        process.stop()


def start(
    cluster: LocalCluster,
    release: Release,
    processes: list[OperatorProcess],
    kubeconfig: Path,
    log: Path,
    namespaces: str,
) -> OperatorProcess:
    process = OperatorProcess(
        {**cluster.env(), "KUBECONFIG": str(kubeconfig)},
        log,
        "--namespaces",
        namespaces,
        "--leader-election",
        "--leader-election-namespace",
        release.operator_namespace,
        "--leader-election-id",
        release.lease,
        "--leader-election-lease-duration",
        str(LEASE),
        "--leader-election-renew-deadline",
        str(RENEW),
        "--leader-election-retry-period",
        str(RETRY),
    )
    processes.append(process)
    return process.start()


def start_leader_and_standby(
    cluster: LocalCluster,
    release: Release,
    processes: list[OperatorProcess],
    tmp_path: Path,
    leader_namespaces: str,
    leader_kubeconfig: Path | None = None,
) -> tuple[OperatorProcess, OperatorProcess]:
    """The first process (the first kubeconfig's, unless `leader_kubeconfig` is given) leads; the second
    stands by."""
    leader_kubeconfig = leader_kubeconfig or release.kubeconfigs[0]
    leader = start(cluster, release, processes, leader_kubeconfig, tmp_path / "leader.log", leader_namespaces)
    # The previous test's holder may still hold the Lease until it expires.
    wait_for(lambda: leading(leader), LEASE + TIMEOUT, "the first operator never became the leader")
    standby = start(
        cluster, release, processes, release.kubeconfigs[1], tmp_path / "standby.log", release.models
    )
    return leader, standby


def converge(cluster: LocalCluster, namespace: str, name: str) -> None:
    """A ZenModelDeployment taken to Available (Seldon's part played by the test)."""
    apply(cluster, s3_secret(namespace), zmd(name, namespace, replicas=2))
    wait_state(cluster, namespace, name, "Creating")
    patch_seldon_status(
        cluster,
        namespace,
        name,
        {
            "state": "Available",
            "deploymentStatus": {f"{name}-default-0-iris": {"replicas": 2, "availableReplicas": 2}},
        },
    )
    wait_state(cluster, namespace, name, "Available")


def idle(process: OperatorProcess, reconciles: float = 1) -> bool:
    """Reconciled at least `reconciles` times and nothing left to do."""
    done = metric(process, 'zenmodel_reconcile_total{result="success"}') or 0
    return done >= reconciles and metric(process, "zenmodel_workqueue_depth") == 0


def test_one_leader_a_standby_that_writes_nothing_and_a_takeover_after_sigkill(
    cluster: LocalCluster, release: Release, processes: list[OperatorProcess], tmp_path: Path
) -> None:
    since = audit_now()
    leader, standby = start_leader_and_standby(cluster, release, processes, tmp_path, release.models)
    leader_user, standby_user = release.credentials
    name = f"kill-{os.getpid()}"
    converge(cluster, release.models, name)

    # Hot: the standby has the object queued (from its own watch), unprocessed, and wrote nothing at all.
    wait_for(
        lambda: (metric(standby, "zenmodel_workqueue_depth") or 0) >= 1,
        TIMEOUT,
        "the standby never saw the object",
    )
    assert (leading(leader), leading(standby)) == (True, False)
    assert metric(standby, 'zenmodel_reconcile_total{result="success"}') in (None, 0.0)
    assert lease_spec(cluster, release.operator_namespace, release.lease)["holderIdentity"] == identity_of(
        leader
    )
    assert writes_by(cluster, standby_user, since) == []
    assert writes_by(cluster, leader_user, since), "the leader wrote nothing: nothing was tested"

    assert leader.proc is not None
    killed_at = audit_now()
    os.killpg(leader.proc.pid, signal.SIGKILL)
    leader.proc.wait()
    wait_for(lambda: leading(standby), LEASE + RETRY + TIMEOUT, "the standby never took over")
    (takeover,) = [
        e
        for e in writes_by(cluster, standby_user, killed_at)
        if is_lease(e) and e["responseStatus"]["code"] == 200
    ][:1]
    failover = seconds_between(killed_at, takeover["stageTimestamp"])
    print(f"\nfailover after SIGKILL: {failover:.2f}s (lease {LEASE:g}s, retry {RETRY:g}s)")
    assert failover <= LEASE + RETRY + API_SLACK

    # The new leader reconciles everything it had cached: the object is converged, so it writes nothing.
    wait_for(lambda: idle(standby), TIMEOUT, "the new leader never drained its queue")
    assert [e for e in writes_by(cluster, standby_user, killed_at) if not is_lease(e)] == []
    # ...but it does write where something is to be done: drift is restored.
    cluster.kubectl("delete", "seldondeployment", name, "-n", release.models)
    wait_for(
        lambda: get(cluster, "seldondeployment", release.models, name) is not None,
        TIMEOUT,
        "the new leader never restored the deleted SeldonDeployment",
    )
    history = assert_one_leader_at_a_time(
        cluster, release.operator_namespace, release.lease, since, set(release.credentials)
    )
    assert [w.holder for w in history][-1] == identity_of(standby)


def test_a_leader_frozen_past_its_lease_never_writes_again(
    cluster: LocalCluster, release: Release, processes: list[OperatorProcess], tmp_path: Path
) -> None:
    """SIGSTOP for 3x the lease. While it is frozen, both objects change: the standby takes over and converges
    the one it serves; the other, in a namespace only the frozen leader serves, stays pending, so that after
    SIGCONT the frozen process has work that would write, and its fence must stop it."""
    since = audit_now()
    leader, standby = start_leader_and_standby(
        cluster, release, processes, tmp_path, f"{release.models},{release.solo}"
    )
    leader_user = release.credentials[0]
    name = f"freeze-{os.getpid()}"
    converge(cluster, release.models, name)
    converge(cluster, release.solo, name)
    wait_for(lambda: (metric(standby, "zenmodel_workqueue_depth") or 0) >= 1, TIMEOUT, "standby is cold")

    assert leader.proc is not None
    frozen_at = audit_now()
    frozen = time.monotonic()
    os.kill(leader.proc.pid, signal.SIGSTOP)
    for namespace in (release.models, release.solo):
        cluster.kubectl(
            "patch", "zmd", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":3}}'
        )
    wait_for(lambda: leading(standby), LEASE + RETRY + TIMEOUT, "the standby never took over")
    wait_for(
        lambda: status_of(cluster, release.models, name).get("observedGeneration") == 2,
        TIMEOUT,
        "the new leader never converged the change",
    )
    # The freeze itself is the scenario's parameter, not a wait for a condition.
    time.sleep(max(0.0, 3 * LEASE - (time.monotonic() - frozen)))
    resumed_at = audit_now()
    os.kill(leader.proc.pid, signal.SIGCONT)
    try:
        code = leader.proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the resumed leader kept running:\n{leader.log()[-3000:]}")
    assert code == EXIT_LEASE_LOST
    assert "lost the leadership" in leader.log()

    # Not one write once resumed, not even of the Lease; and none but a renewal in flight as it froze.
    assert writes_by(cluster, leader_user, resumed_at) == [], "the resumed leader wrote"
    assert [e for e in writes_by(cluster, leader_user, frozen_at) if not is_lease(e)] == []
    solo = status_of(cluster, release.solo, name)
    assert solo.get("observedGeneration") == 1, "the pending change was written after all"
    assert must_get(cluster, "seldondeployment", release.solo, name)["spec"]["predictors"][0]["replicas"] == 2
    history = assert_one_leader_at_a_time(
        cluster, release.operator_namespace, release.lease, since, set(release.credentials)
    )
    # After the freeze the Lease is the standby's. The frozen leader's renewal in flight as it froze (its
    # one allowed write, above) may still land just after `frozen_at`; after it resumed, nothing of it.
    frozen_leader = identity_of(leader)
    assert {w.holder for w in history if w.at >= frozen_at} - {frozen_leader} == {identity_of(standby)}
    assert frozen_leader not in {w.holder for w in history if w.at >= resumed_at}


@pytest.fixture
def proxy(cluster: LocalCluster) -> Iterator[HoldingProxy]:
    """Requested before `processes`, so that it outlives the operators that talk through it."""
    holding = HoldingProxy(cluster).start()
    yield holding
    holding.stop()


def stopped(pid: int) -> bool:
    """Whether the process has taken its SIGSTOP (state T in /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"


def test_a_write_held_past_the_lease_is_refused_and_the_resumed_leader_stops_in_one_line(
    cluster: LocalCluster,
    release: Release,
    proxy: HoldingProxy,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    """The leader reaches the apiserver through a proxy that holds its status write of one object: the
    write has passed the leader's fence when the process is frozen (SIGSTOP), as if frozen between the
    check and the send. The proxy holds its next Lease renewal too, so the freeze also catches the elector
    mid-renewal, and other objects change meanwhile, so the resumed process has work queued: the worst
    moment to resume. The standby takes the Lease over and writes that status; only then does the held
    write go on to the apiserver, which must refuse it. Resumed (SIGCONT), the process says in one line
    that it lost the leadership, writes nothing more, and exits 75."""
    leader, standby = start_leader_and_standby(
        cluster,
        release,
        processes,
        tmp_path,
        release.models,
        proxy.kubeconfig_through(release.kubeconfigs[0], tmp_path / "through-proxy.kubeconfig"),
    )
    since = audit_now()
    leader_user, standby_user = release.credentials
    name = f"held-{os.getpid()}"
    busy = [f"busy-{os.getpid()}-{i}" for i in range(3)]
    converge(cluster, release.models, name)
    apply(cluster, *(zmd(other, release.models) for other in busy))
    for other in busy:
        wait_state(cluster, release.models, other, "Creating")
    wait_for(lambda: (metric(standby, "zenmodel_workqueue_depth") or 0) >= 4, TIMEOUT, "standby is cold")

    collection = f"/apis/zenml.io/v1alpha1/namespaces/{release.models}/zenmodeldeployments"
    status_write = proxy.hold("PATCH", re.escape(f"{collection}/{name}/status"))
    replicas = '{"spec":{"replicas":3}}'
    cluster.kubectl("patch", "zmd", name, "-n", release.models, "--type=merge", "-p", replicas)
    wait_for(lambda: status_write.arrived_at is not None, TIMEOUT, "the leader never wrote the status")
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{release.operator_namespace}/leases/{release.lease}"
    renewal = proxy.hold("GET", re.escape(lease))
    wait_for(lambda: renewal.arrived_at is not None, TIMEOUT, "the leader never renewed")
    assert leader.proc is not None
    os.kill(leader.proc.pid, signal.SIGSTOP)
    wait_for(partial(stopped, leader.proc.pid), TIMEOUT, "the leader never stopped")
    logged_before_resuming = leader.log_path.stat().st_size
    for other in busy:
        cluster.kubectl("patch", "zmd", other, "-n", release.models, "--type=merge", "-p", replicas)

    wait_for(lambda: leading(standby), LEASE + RETRY + TIMEOUT, "the standby never took over")

    def observed_the_change(model: str) -> bool:
        return status_of(cluster, release.models, model).get("observedGeneration") == 2

    for changed in (name, *busy):
        wait_for(partial(observed_the_change, changed), TIMEOUT, f"the new leader never converged {changed}")
    (takeover, *_) = [
        e
        for e in writes_by(cluster, standby_user, since)
        if is_lease(e) and e["responseStatus"]["code"] == 200
    ]
    lost_at = takeover["stageTimestamp"]  # from here on the frozen process no longer holds the Lease
    proxy.release(status_write)
    wait_for(lambda: status_write.answer is not None, TIMEOUT, "the held write was never answered")

    def held_write_audited() -> list[dict[str, Any]]:
        return [
            e
            for e in writes_by(cluster, leader_user, lost_at)
            if e["objectRef"].get("subresource") == "status" and e["objectRef"].get("name") == name
        ]

    wait_for(lambda: bool(held_write_audited()), TIMEOUT, "the held write is not in the audit log")
    accepted = [e for e in writes_by(cluster, leader_user, lost_at) if e["responseStatus"]["code"] < 300]
    assert accepted == [], (
        f"the apiserver accepted writes of the old leader after it lost the Lease: {accepted}"
    )
    assert [e["responseStatus"]["code"] for e in held_write_audited()] == [409]

    resumed_at = audit_now()
    os.kill(leader.proc.pid, signal.SIGCONT)
    try:
        code = leader.proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the resumed leader kept running:\n{leader.log()[-3000:]}")
    resumed = leader.log_path.read_bytes()[logged_before_resuming:].decode(errors="replace")
    assert len(resumed.splitlines()) == 1 and "lost the leadership" in resumed, (
        f"the resumed leader logged more than the one line:\n{resumed[-6000:]}"
    )
    assert code == EXIT_LEASE_LOST
    assert writes_by(cluster, leader_user, resumed_at) == [], "the resumed leader wrote"
    assert all(map(observed_the_change, (name, *busy))), "the new leader's status was overwritten"


def test_sharded_releases_elect_apart_and_never_touch_each_others_objects(
    cluster: LocalCluster, processes: list[OperatorProcess], tmp_path: Path
) -> None:
    """Two chart releases (cluster-scoped RBAC: either could write anywhere) with disjoint namespace globs."""
    since = audit_now()
    env = helm_env(cluster, tmp_path / "helm")
    with ExitStack() as stack:
        operator_namespace = stack.enter_context(fresh_namespace(cluster, "ha-shards"))
        shards = {}
        for shard in ("a", "b"):
            glob = f"ha-shard-{shard}-*"
            release = f"zmo-shard-{shard}"
            kubeconfig = stack.enter_context(
                installed_release(
                    cluster,
                    env,
                    release,
                    operator_namespace,
                    {"crds.install": False, "rbac.scope": "cluster", "watchNamespaces": [glob]},
                    tmp_path / f"{shard}.kubeconfig",
                )
            )
            namespace = stack.enter_context(
                fresh_namespace(cluster, f"ha-shard-{shard}", labels=SELDON_SKIPS)
            )
            lease = f"{release}-zenmodel-operator"
            process = OperatorProcess(
                {**cluster.env(), "KUBECONFIG": str(kubeconfig)},
                tmp_path / f"{shard}.log",
                "--namespaces",
                glob,
                "--leader-election",
                "--leader-election-namespace",
                operator_namespace,
                "--leader-election-id",
                lease,
                "--leader-election-retry-period",
                str(RETRY),
            )
            processes.append(process)
            process.start()
            stack.callback(process.stop)  # before its release goes
            shards[shard] = (process, namespace, lease, credential_of(kubeconfig))

        for process, namespace, _, _ in shards.values():
            wait_for(partial(leading, process), TIMEOUT, "a shard's operator never led its own Lease")
            apply(cluster, s3_secret(namespace), zmd("iris", namespace))
        for process, namespace, lease, user in shards.values():
            wait_state(cluster, namespace, "iris", "Creating")
            assert lease_spec(cluster, operator_namespace, lease)["holderIdentity"] == identity_of(process)
            written = writes_by(cluster, user, since)
            assert {e["objectRef"]["namespace"] for e in written if not is_lease(e)} == {namespace}
            assert {e["objectRef"]["name"] for e in written if is_lease(e)} == {lease}
