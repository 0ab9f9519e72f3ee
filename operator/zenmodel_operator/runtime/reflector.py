"""List, then watch, one collection the operator only caches (SeldonDeployments, Secrets, Seldon's pods),
keeping its informer store whole: client-go's reflector.

kopf watches the parents, whose events it hands to our handler. The children need no handler, only a
cache: through kopf, each of their events also took a worker, a logger and cause detection, a quarter of
the operator's CPU while 1,000 new objects converged (the parents' own events remain with kopf).

A reflector resumes its watch from the last resourceVersion it saw. When that is too old (410 Gone, after
a long disconnection), it lists again, and whatever its store holds that the new list lacks (and that is
not newer than it, i.e. not our own later write) was deleted meanwhile: it is reported so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from .echo import Key
from .informer import Cache, key_of, resource_version
from .listing import Listing, list_pages
from .transport import ApiError, Transport, error_message

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5  # after a failed request: two tries a second cost an apiserver nothing
NOT_SERVED_RETRY_SECONDS = 10.0  # a kind without its CRD yet is listed again this often

OnEvent = Callable[[str, Mapping[str, Any]], None]  # ("ADDED" | "MODIFIED" | "DELETED", object)


class Reflector:
    def __init__(self, kube: Transport, listing: Listing, store: Cache, on_event: OnEvent) -> None:
        self.kube = kube
        self.listing = listing
        self.store = store
        self.on_event = on_event
        self.version = ""  # where the watch resumes; empty: list first

    async def list(self) -> None:
        """Lists the collection into the store: each object as ADDED (the informer ignores versions it
        holds), then each one it held and the list lacks as DELETED. A kind not served lists empty."""
        listed: set[Key] = set()
        version = ""
        try:
            async for page, page_version in list_pages(self.kube, self.listing):
                version = page_version
                for obj in page:
                    listed.add(key_of(obj))
                    self.on_event("ADDED", obj)
        except ApiError as error:
            if error.status != 404:
                raise
        self.version = version
        as_of = int(version) if version.isdigit() else None
        for key in self.store:
            if key in listed or not self.listing.holds(key):
                continue
            held = self.store.get(*key)
            held_version = resource_version(held) if held is not None else None
            if held is not None and (as_of is None or held_version is None or held_version <= as_of):
                self.on_event("DELETED", held)

    async def run(self) -> None:
        """Watches from the last listing on, for ever: resumes after each request ends, retries after a
        failure, lists again when the resumption point is gone."""
        while True:
            try:
                if not self.version:
                    await self.list()
                if not self.version:  # the kind is not served
                    await asyncio.sleep(NOT_SERVED_RETRY_SECONDS)
                    continue
                await self._watch()
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
                if isinstance(error, ApiError) and error.status == 410:
                    self.version = ""
                    continue
                log.warning("watching %s failed; retrying", self.listing.path, exc_info=error)
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # a bug: the store may have missed an event, so it is listed again
                log.exception("watching %s failed; listing it again", self.listing.path)
                self.version = ""
                await asyncio.sleep(RETRY_SECONDS)

    async def _watch(self) -> None:
        query = [("resourceVersion", self.version)]
        query += [("labelSelector", self.listing.selector)] if self.listing.selector else []
        async for event in self.kube.watch(self.listing.path, query):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # a Status: 410 when the resumption point is gone
                code = obj["code"] if isinstance(obj.get("code"), int) else 500
                path = self.listing.path
                raise ApiError(code, "GET", path, error_message(code, path, orjson.dumps(obj)))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if kind in ("ADDED", "MODIFIED", "DELETED") and self.listing.keeps(obj):
                self.on_event(kind, obj)
            if version:  # a BOOKMARK only moves the resumption point
                self.version = version
