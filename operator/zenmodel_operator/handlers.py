"""Thin kopf adapters: every watch event becomes a key in the work queue, and nothing else.

kopf here is the watcher (listing, watching, re-connecting, login); the reconcile decides everything.
Only `on.event` handlers are used, so kopf keeps no progress state on our objects: it writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import labels, metrics
from .kube import KubeCluster, load_configuration
from .leader import Elector, elector_for
from .reconcile import Outcome, Reconciler, source_secret_name
from .render import SELDON_GROUP, SELDON_PLURAL, SELDON_VERSION
from .settings import OperatorSettings
from .spec import GROUP, PLURAL, VERSION
from .workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of a ZenModelDeployment

registry = kopf.OperatorRegistry()


@dataclass
class Runtime:
    """What the handlers share, kept in kopf's memo."""

    settings: OperatorSettings
    queue: WorkQueue[Key] | None = None
    elector: Elector | None = None
    parents: set[Key] = field(default_factory=set)
    # (namespace, Secret name) -> parents referencing it: a credentials event wakes exactly those.
    referenced_by: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    source_of: dict[Key, str] = field(default_factory=dict)
    states: dict[Key, str] = field(default_factory=dict)
    # When a SeldonDeployment change first reached us, per parent, for the mirroring latency.
    seldon_changed_at: dict[Key, float] = field(default_factory=dict)

    def enqueue(self, key: Key) -> None:
        if self.queue is not None:
            self.queue.add(key)

    def track_parent(self, key: Key, secret_name: str | None) -> None:
        previous = self.source_of.pop(key, None)
        if previous is not None:
            self.referenced_by[(key[0], previous)].discard(key[1])
        self.parents.add(key)
        if secret_name:
            self.source_of[key] = secret_name
            self.referenced_by[(key[0], secret_name)].add(key[1])

    def forget_parent(self, key: Key) -> None:
        self.track_parent(key, None)
        self.parents.discard(key)
        self.states.pop(key, None)
        self.seldon_changed_at.pop(key, None)
        if self.queue is not None:
            self.queue.forget(key)

    def record(self, key: Key, outcome: Outcome) -> None:
        for write in outcome.writes:
            metrics.WRITES.labels(kind=write.split(":")[0]).inc()
        if outcome.credentials_reason:
            metrics.CREDENTIAL_ERRORS.labels(reason=outcome.credentials_reason).inc()
        changed_at = self.seldon_changed_at.pop(key, None)
        if changed_at is not None and "status" in outcome.writes:
            metrics.MIRROR_SECONDS.observe(time.monotonic() - changed_at)
        if outcome.state:
            self.states[key] = outcome.state
        metrics.publish_states(Counter(self.states.values()))


def configure(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    """Every kopf setting the operator uses, in one place."""
    settings.posting.enabled = False  # we post our own Events, only where a person needs one
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    if operator.require_credentials_label:
        # Server-side: only opted-in Secrets and the ones we generate ever reach this process.
        settings.watching.label_selectors["v1", "secrets"] = labels.CREDENTIALS_KEY


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The same credentials as the reconcile's client: in-cluster ServiceAccount, else kubeconfig.
    info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
    return info


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    configure(settings, runtime.settings)
    api = load_configuration()
    runtime.elector = elector_for(runtime.settings.leader_election, KubeCluster(api))
    fence = runtime.elector.writing if runtime.elector is not None else None
    reconciler = Reconciler(KubeCluster(api, fence=fence), runtime.settings)

    async def process(key: Key) -> None:
        with metrics.RECONCILE_SECONDS.time():
            try:
                outcome = await asyncio.to_thread(reconciler.reconcile, *key)
            except Exception:
                metrics.RECONCILES.labels(result="error").inc()
                raise
        metrics.RECONCILES.labels(result="success").inc()
        if outcome is None:
            runtime.forget_parent(key)
        else:
            runtime.record(key, outcome)

    queue = runtime.queue = WorkQueue(process, workers=runtime.settings.workers)
    metrics.QUEUE_DEPTH.set_function(lambda: queue.depth)
    metrics.serve(runtime.settings.metrics_port)
    if runtime.elector is None:
        queue.start()
    else:
        # A standby keeps watching and queueing; the queue drains (everything cached) once it leads.
        runtime.elector.start(on_leading=queue.start)


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    if runtime.queue is not None:
        await runtime.queue.stop()
    if runtime.elector is not None:
        await runtime.elector.stop()


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
def parent_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type == "DELETED":
        runtime.forget_parent(key)  # the garbage collector takes the children
        return
    runtime.track_parent(key, source_secret_name(body))
    runtime.enqueue(key)


@kopf.on.event(SELDON_GROUP, SELDON_VERSION, SELDON_PLURAL, registry=registry)
def seldon_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Our SeldonDeployment has the parent's name; a foreign one of that name is a conflict to report.
    runtime: Runtime = memo["runtime"]
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if key in runtime.parents:
        runtime.seldon_changed_at.setdefault(key, time.monotonic())
        runtime.enqueue(key)


@kopf.on.event("v1", "secrets", registry=registry)
def secret_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    meta = body["metadata"]
    namespace = meta["namespace"]
    owner = (meta.get("labels") or {}).get(labels.PART_OF_KEY)
    if owner and (namespace, owner) in runtime.parents:
        runtime.enqueue((namespace, owner))  # one of our rclone Secrets: restore it on drift
    for parent in sorted(runtime.referenced_by.get((namespace, meta["name"]), ())):
        runtime.enqueue((namespace, parent))
