"""Thin kopf adapters: kopf watches the parents (listing, watching, re-connecting, login) and hands each
event to `wiring.on_event`; startup and cleanup call `wiring.start` and `wiring.stop`.

Only an event handler is used, so kopf keeps no progress state on our objects: it writes nothing. Every
handler is `async def`: it runs on the event loop, as the stores and the queue need. The children, which
need a cache and no handler, are watched by `runtime.reflector.Reflector`s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from .api.spec import GROUP, PLURAL, VERSION
from .runtime.listing import LIST_PAGE_SIZE
from .runtime.outage import OutageFilter
from .runtime.transport import WATCH_CLIENT_SECONDS, WATCH_SECONDS
from .wiring import Runtime, on_event, start, stop

registry = kopf.OperatorRegistry()


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
    configure(settings)
    outages: OutageFilter | None = memo.get("outages")
    await start(memo["runtime"], outages)


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await stop(memo["runtime"])


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def parent_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    # The watch's own dict, not kopf's `body` view, whose every key lookup resolves a field path.
    on_event(runtime, runtime.informer.parents, event["type"], event["object"])
