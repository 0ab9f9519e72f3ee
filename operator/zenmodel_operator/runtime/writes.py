"""The operator's own writes, through the transport: server-side apply under one field manager, a create
that never takes over a same-named object, the removal of what others added, the status, and Events.
Each object's URL comes from the one kind table (`core.kinds`). And the two reads no watch can serve: a
same-named object's metadata, and a failed container's output."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..core.kinds import PARENT, kind_of
from ..core.plan import Event
from ..core.pods import OUTPUT_LIMIT_BYTES, OUTPUT_TAIL_LINES
from .clock import now_rfc3339
from .transport import ApiError, Transport, api_root

log = logging.getLogger(__name__)

FIELD_MANAGER = "zenmodel-operator"
# A container's output comes through the apiserver from the pod's kubelet, which may not answer: the
# reconcile waiting on it holds its key meanwhile.
OUTPUT_TIMEOUT_SECONDS = 5.0
COMPONENT = "zenmodel-operator"
# Asks for an object's metadata alone: how the operator looks at a Secret it may not read.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class AlreadyExists(Exception):
    """A create found an object of that name already there (HTTP 409)."""


class Stale(Exception):
    """An apply was refused (HTTP 409) because its preconditions failed: the object changed since the
    state the write was planned from (another resourceVersion), or the name holds another object now
    (another uid). Not a failure: the object's watch event brings the newer state."""


def _path_of(obj: Mapping[str, Any]) -> str:
    """The URL path of an object we write, from its apiVersion, kind, namespace and name."""
    meta = obj["metadata"]
    kind = kind_of(obj)
    return f"{api_root(kind.api_version)}/namespaces/{meta['namespace']}/{kind.plural}/{meta['name']}"


class KubeCluster(Transport):
    """The writes of `controller.Cluster` over the real API (see `informed.InformedCluster` for its reads)."""

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self._apply(_path_of(obj), obj)

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """POST: unlike an apply, it fails if the name is taken (`AlreadyExists`), touching nothing."""
        collection = _path_of(obj).rsplit("/", 1)[0]
        try:
            # Strict: a field the installed CRD lacks is refused, as server-side apply refuses it, rather
            # than silently dropped.
            query = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
            return await self.request("POST", collection, query=query, body=obj)
        except ApiError as error:
            if error.status == 409:
                raise AlreadyExists(str(error)) from error
            raise

    async def read_metadata(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The metadata of the live object named like `obj`, as PartialObjectMetadata (so never a
        Secret's data); None if there is none."""
        try:
            return await self.request("GET", _path_of(obj), accept=METADATA_ONLY)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def container_output(
        self, namespace: str, pod: str, container: str, *, previous: bool
    ) -> bytes | None:
        """The end of a container's output (its last lines, bounded; `previous`: of its run before the current
        one), or None if it cannot be read (no kubelet answers, no permission, ...): a status then says less,
        which is no failure of the reconcile, so it is logged at DEBUG only."""
        query = [
            ("container", container),
            ("tailLines", str(OUTPUT_TAIL_LINES)),
            ("limitBytes", str(OUTPUT_LIMIT_BYTES)),
            *([("previous", "true")] if previous else []),
        ]
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        try:
            return await self.read_bytes(path, query, timeout=OUTPUT_TIMEOUT_SECONDS)
        except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
            log.debug(
                "could not read the output of container %s of pod %s/%s: %s", container, namespace, pod, error
            )
            return None

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> dict[str, Any] | None:
        """Applies a `drift.removal_patch`; None if the object changed since it was read (409), as its
        watch event then brings the key back with the newer object."""
        try:
            return await self.request(
                "PATCH",
                _path_of(patch),
                query=[("fieldManager", FIELD_MANAGER)],
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 409:
                return None
            raise

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        meta = parent["metadata"]
        body = {
            "apiVersion": PARENT.api_version,
            "kind": PARENT.kind,
            # Preconditions: the uid, so a parent deleted and re-created meanwhile never gets the old one's
            # status; the resourceVersion, so a status derived from a parent that has changed since (or
            # that another leader has written since) is refused.
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "status": dict(status),
        }
        return await self._apply(_path_of(body) + "/status", body)

    async def _apply(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply; forced, so a 409 can only be a failed precondition (`Stale`)."""
        try:
            return await self.request(
                "PATCH",
                path,
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                body=body,
                content_type="application/apply-patch+yaml",
            )
        except ApiError as error:
            if error.status == 409:
                raise Stale(str(error)) from error
            raise

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        meta = parent["metadata"]
        now = now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": PARENT.api_version,
                "kind": PARENT.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "action": "Reconcile",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)
