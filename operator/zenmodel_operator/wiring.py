"""The composition root: builds the operator's parts and connects them. kopf's handlers (`handlers`) call
`start`, `stop` and `on_event`; nothing here knows kopf.

The stores are primed by one LIST per kind in `start`, before anything is reconciled: so the first
reconcile reads whole stores, and kopf's own initial listing of the parents then replays versions the
stores already hold, which wake nothing. (kopf's index handlers would also hold reconciles until every
kind is listed, but their readiness check costs time quadratic in the number of objects: 47 s to restart
over 1,000 parents.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import __version__
from .core.status import State
from .runtime import metrics
from .runtime.controller import Outcome, Reconciler, WriteKind
from .runtime.echo import Key, ObjectKey
from .runtime.informed import InformedCluster
from .runtime.informer import Cache, Informer
from .runtime.leader import Elector, LeaseLost, elector_for
from .runtime.listing import list_watched, listings
from .runtime.outage import OutageFilter, announce_recovery
from .runtime.reflector import Reflector
from .runtime.transport import Transport, load_configuration
from .runtime.workqueue import WorkQueue
from .runtime.writes import KubeCluster
from .settings import OperatorSettings

log = logging.getLogger(__name__)

metrics.export_states(state.value for state in State)


@dataclass
class Runtime:
    """What the operator's parts share (kopf's memo holds it for the handlers)."""

    settings: OperatorSettings
    identity: str  # this process, in the Lease and in kopf (`leader.new_identity`)
    informer: Informer = field(default_factory=Informer)
    queue: WorkQueue[Key] | None = None
    elector: Elector | None = None
    # The API clients' connection pools, closed at cleanup.
    clusters: list[Transport] = field(default_factory=list)
    reflections: list[asyncio.Task[None]] = field(default_factory=list)  # the children's watches
    recovery_probe: asyncio.Task[None] | None = None  # see `outage.announce_recovery`
    states: dict[Key, str] = field(default_factory=dict)
    # When a SeldonDeployment change first reached us, per parent, for the mirroring latency.
    seldon_changed_at: dict[Key, float] = field(default_factory=dict)

    def wake(self, key: Key, source: ObjectKey | None = None, version: int | None = None) -> None:
        if self.queue is None or not self.informer.synced:
            return  # the first sync wakes every parent
        if source is not None and self.queue.is_processing(key):
            self.informer.echoes.arrived_during(key, source, version)  # judged when it ends: `settle`
            return
        self.queue.add(key)

    def settle(self, key: Key) -> None:
        """After a reconcile: wake the parent again for what changed meanwhile, but not for echoes."""
        if self.informer.echoes.runs_again(key) and self.queue is not None:
            self.queue.add(key)

    def forget_parent(self, key: Key) -> None:
        metrics.count_state(self.states.pop(key, None), None)
        self.seldon_changed_at.pop(key, None)
        self.informer.echoes.forget(key)
        if self.queue is not None:
            self.queue.forget(key)

    def record(self, key: Key, outcome: Outcome) -> None:
        for write in outcome.writes:
            metrics.WRITES.labels(kind=write.kind.value).inc()
        if outcome.credentials_reason:
            metrics.CREDENTIAL_ERRORS.labels(reason=outcome.credentials_reason).inc()
        changed_at = self.seldon_changed_at.pop(key, None)
        if changed_at is not None and outcome.wrote(WriteKind.STATUS):
            metrics.MIRROR_SECONDS.observe(time.monotonic() - changed_at)
        if outcome.state:
            metrics.count_state(self.states.get(key), outcome.state)
            self.states[key] = outcome.state


async def start(runtime: Runtime, outages: OutageFilter | None) -> None:
    """Builds and starts everything: the API clients, the leader election, the reconciler and its work
    queue, the stores (primed by one LIST per kind) and the children's reflectors."""
    api = load_configuration(f"zenmodel-operator/{__version__}")
    leases = Transport(api)  # its own connections: a renewal never queues behind the reconciles' writes
    runtime.elector = elector_for(runtime.settings.leader_election, leases, runtime.identity)
    fence = runtime.elector.writing if runtime.elector is not None else None
    kube = KubeCluster(api, fence=fence)
    runtime.clusters += [leases, kube]
    reconciler = Reconciler(InformedCluster(runtime.informer, kube), runtime.settings)

    async def process(key: Key) -> None:
        with metrics.RECONCILE_SECONDS.time():
            try:
                outcome = await reconciler.reconcile(*key)
            except LeaseLost:
                # The fence refused a write: not this object's failure to retry, but the end of leading.
                assert runtime.elector is not None
                runtime.elector.give_up()
                return
            except Exception:
                metrics.RECONCILES.labels(result="error").inc()
                runtime.settle(key)  # news that arrived meanwhile is worth trying now, not after the backoff
                raise
        metrics.RECONCILES.labels(result="success").inc()
        if outcome is None:
            runtime.forget_parent(key)
        else:
            runtime.record(key, outcome)
            runtime.settle(key)
            if outcome.recheck:
                queue.recheck(key)

    queue = runtime.queue = WorkQueue(process, workers=runtime.settings.workers)
    metrics.QUEUE_DEPTH.set_function(lambda: queue.depth)
    metrics.serve(runtime.settings.metrics_port)
    informer = runtime.informer
    async for page in list_watched(kube, informer.parents.name, runtime.settings):
        for obj in page:
            informer.changed(informer.parents, obj)
    # Their own connections: a watch holds one for minutes, which the writes' pool must not run short of.
    # One per reflector (two per watched namespace), so no limit, as kopf's own watches have none.
    watches = KubeCluster(api, connection_limit=0)
    runtime.clusters.append(watches)
    reflectors = [
        Reflector(watches, listing, store, partial(on_event, runtime, store))
        for store in (informer.seldon_deployments, informer.secrets, informer.pods)
        for listing in listings(store.name, runtime.settings)
    ]
    for reflector in reflectors:
        await reflector.list()
    runtime.reflections = [asyncio.create_task(reflector.run()) for reflector in reflectors]
    for key in informer.mark_synced():
        runtime.wake(key)
    # What lives now (modules, kopf, the stores' keys) lives as long as the process: kept out of the
    # garbage collector's full passes, which otherwise walk it all again (two thirds of their CPU).
    gc.freeze()
    log.info(
        "caches synced: %d parents, %d SeldonDeployments, %d Secrets, %d failing model pods",
        len(informer.parents),
        len(informer.seldon_deployments),
        len(informer.secrets),
        len(informer.pods),
    )
    if runtime.elector is None:
        queue.start()
    else:
        # A standby keeps watching and queueing; the queue drains (everything cached) once it leads.
        runtime.elector.start(on_leading=queue.start)
    if outages is not None:
        runtime.recovery_probe = asyncio.create_task(announce_recovery(outages, kube.ready, queue.retry_now))


async def stop(runtime: Runtime) -> None:
    if runtime.recovery_probe is not None:
        runtime.recovery_probe.cancel()
    for reflection in runtime.reflections:
        reflection.cancel()
    if runtime.queue is not None:
        await runtime.queue.stop()
    if runtime.elector is not None:
        await runtime.elector.stop()
    for cluster in runtime.clusters:
        await cluster.close()


def on_event(runtime: Runtime, store: Cache, kind: str | None, obj: Mapping[str, Any]) -> None:
    """A watch event: `kind` is ADDED, MODIFIED, DELETED, or None for kopf's listing."""
    if kind == "DELETED":
        if store is runtime.informer.parents:
            runtime.forget_parent((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        for key in runtime.informer.deleted(store, obj):
            runtime.wake(key)
        return
    for key, source, version in runtime.informer.changed(store, obj):
        if store is runtime.informer.seldon_deployments:
            runtime.seldon_changed_at.setdefault(key, time.monotonic())
        runtime.wake(key, source, version)
