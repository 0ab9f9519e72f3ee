"""Thin kopf adapters: watch events feed the informer's stores and wake the parents they concern.

kopf here watches the parents (listing, watching, re-connecting, login); the reconcile decides everything.
Only an event handler is used, so kopf keeps no progress state on our objects: it writes nothing. Every
handler is `async def`: it runs on the event loop, as the stores and the queue need. The children, which
need a cache and no handler, are watched by `reflector.Reflector`s.

The stores are primed by one LIST per kind in the startup handler, before anything is reconciled: so the
first reconcile reads whole stores, and kopf's own initial listing of the parents then replays versions
the stores already hold, which wake nothing. (kopf's index handlers would also hold reconciles until every
kind is listed, but their readiness check costs time quadratic in the number of objects: 47 s to restart
over 1,000 parents.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import kopf

from . import metrics
from .informer import Informer, Key, ObjectKey, Store
from .kube import (
    LIST_PAGE_SIZE,
    WATCH_CLIENT_SECONDS,
    WATCH_SECONDS,
    InformedCluster,
    KubeCluster,
    list_watched,
    listings,
    load_configuration,
)
from .leader import Elector, elector_for
from .outage import OutageFilter, announce_recovery
from .reconcile import Outcome, Reconciler, WriteKind
from .reflector import Reflector
from .settings import OperatorSettings
from .spec import GROUP, PLURAL, VERSION
from .workqueue import WorkQueue

log = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()


@dataclass
class Runtime:
    """What the handlers share, kept in kopf's memo."""

    settings: OperatorSettings
    identity: str  # this process, in the Lease and in kopf (`leader.new_identity`)
    informer: Informer = field(default_factory=Informer)
    queue: WorkQueue[Key] | None = None
    elector: Elector | None = None
    # The API clients' connection pools, closed at cleanup.
    clusters: list[KubeCluster] = field(default_factory=list)
    reflections: list[asyncio.Task[None]] = field(default_factory=list)  # the children's watches
    states: dict[Key, str] = field(default_factory=dict)
    # When a SeldonDeployment change first reached us, per parent, for the mirroring latency.
    seldon_changed_at: dict[Key, float] = field(default_factory=dict)
    # Changes that arrived while their parent was being reconciled: each wakes it again afterwards,
    # unless it turns out to be the echo of a write that reconcile made.
    arrived_during: dict[Key, list[tuple[ObjectKey, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def wake(self, key: Key, source: ObjectKey | None = None, version: int | None = None) -> None:
        if self.queue is None or not self.informer.synced:
            return  # the first sync wakes every parent
        if source is not None and self.queue.is_processing(key):
            self.arrived_during[key].append((source, version))
            return
        self.queue.add(key)

    def settle(self, key: Key) -> None:
        """After a reconcile: wake the parent again for what changed meanwhile, but not for echoes."""
        arrived = self.arrived_during.pop(key, ())
        if self.queue is not None and any(not self.informer.is_own_write(*item) for item in arrived):
            self.queue.add(key)

    def forget_parent(self, key: Key) -> None:
        metrics.count_state(self.states.pop(key, None), None)
        self.seldon_changed_at.pop(key, None)
        self.arrived_during.pop(key, None)
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


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base serves change handlers, of which this operator has none; by default kopf still
    deep-copies every event's body to build one (a seventh of the operator's CPU while 1,000 new objects
    converge). Builds, keeps and reads nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """kopf's handler progress serves change handlers too; by default kopf still deep-copies every event's
    (empty) diff base to strip progress marks from it. Keeps and reads nothing."""

    def fetch(self, *, key: kopf.HandlerId, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(
        self, *, key: kopf.HandlerId, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch
    ) -> None:
        return None

    def purge(self, *, key: kopf.HandlerId, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


def configure(settings: kopf.OperatorSettings) -> None:
    """Every kopf setting the operator uses, in one place."""
    settings.posting.enabled = False  # we post our own Events, only where a person needs one
    settings.watching.server_timeout = WATCH_SECONDS  # as the reflectors' watches
    settings.watching.client_timeout = WATCH_CLIENT_SECONDS
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    # kopf's default backoffs (1, 1, 2, 3, 5, 8, 13, 21 s) left a watch asleep for up to 21 s after
    # an apiserver came back; two tries a second per watch cost an apiserver nothing, and the outage
    # filter keeps them quiet.
    settings.networking.error_backoffs = (0.5,) * 8
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()
    # kopf lists each kind before watching it: page by page, as our startup LIST does, not all at once.
    settings.watching.chunk_size = LIST_PAGE_SIZE
    # kopf runs a worker per object, which holds the object's last event while it idles for the next
    # one (5 s by default): after a restart's listing, every object at once, and the peak stays in the
    # process's RSS. Our handlers only feed the stores, so a worker gains nothing by waiting.
    settings.queueing.idle_timeout = 0.1


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The same credentials as the reconcile's client: in-cluster ServiceAccount, else kubeconfig.
    info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
    return info


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    configure(settings)
    api = load_configuration()
    leases = KubeCluster(api)  # its own connections: a renewal never queues behind the reconciles' writes
    runtime.elector = elector_for(runtime.settings.leader_election, leases, runtime.identity)
    fence = runtime.elector.writing if runtime.elector is not None else None
    kube = KubeCluster(api, fence=fence)
    runtime.clusters += [leases, kube]
    reconciler = Reconciler(InformedCluster(runtime.informer, kube), runtime.settings)

    async def process(key: Key) -> None:
        with metrics.RECONCILE_SECONDS.time():
            try:
                outcome = await reconciler.reconcile(*key)
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
        for store in (informer.seldon_deployments, informer.secrets)
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
        "caches synced: %d parents, %d SeldonDeployments, %d Secrets",
        len(informer.parents),
        len(informer.seldon_deployments),
        len(informer.secrets),
    )
    if runtime.elector is None:
        queue.start()
    else:
        # A standby keeps watching and queueing; the queue drains (everything cached) once it leads.
        runtime.elector.start(on_leading=queue.start)
    outages: OutageFilter | None = memo.get("outages")
    if outages is not None:
        memo["recovery_probe"] = asyncio.create_task(announce_recovery(outages, kube.ready, queue.retry_now))


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    probe: asyncio.Task[None] | None = memo.get("recovery_probe")
    if probe is not None:
        probe.cancel()
    for reflection in runtime.reflections:
        reflection.cancel()
    if runtime.queue is not None:
        await runtime.queue.stop()
    if runtime.elector is not None:
        await runtime.elector.stop()
    for cluster in runtime.clusters:
        await cluster.close()


def on_event(runtime: Runtime, store: Store, kind: str | None, obj: Mapping[str, Any]) -> None:
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


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def parent_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    # The watch's own dict, not kopf's `body` view, whose every key lookup resolves a field path.
    on_event(runtime, runtime.informer.parents, event["type"], event["object"])
