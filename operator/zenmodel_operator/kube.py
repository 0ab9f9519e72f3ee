"""The Kubernetes API, as the reconcile needs it: server-side apply under one field manager, and Events.
Reads come from the informer's stores (`InformedCluster`), never from a GET.

Requests go through the official client's ApiClient (its kubeconfig / in-cluster loading and auth), but
bodies stay plain dicts: the operator writes exactly the JSON it rendered. Errors become `ApiError`,
whose text never carries a Secret's body.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import urllib3
from kopf._cogs.structs.references import NamespaceName, match_namespace, select_specific_namespaces
from kubernetes import client, config

from . import __version__, seldon
from .informer import Informer, secrets_label_selector
from .reconcile import ApplyRejected, Event, now_rfc3339
from .settings import OperatorSettings
from .spec import API_VERSION, KIND, PLURAL

FIELD_MANAGER = "zenmodel-operator"
REQUEST_TIMEOUT_SECONDS = 30
PROBE_TIMEOUT_SECONDS = 2
COMPONENT = "zenmodel-operator"


# The apiserver's answer (HTTP 500) to a server-side apply of a field the target's schema lacks, e.g. a
# ZenModelDeployment option the installed Seldon CRD does not know: the object, not the server, is wrong.
TYPED_PATCH_FAILURE = "failed to create typed patch object"


def rejects_the_object(status: int, method: str, message: str) -> bool:
    """Whether a failed write refused the object itself, so that retrying the same object cannot help."""
    if method != "PATCH":
        return False
    return status in (400, 422) or (status == 500 and TYPED_PATCH_FAILURE in message)


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status


def load_configuration() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    # urllib3 would sleep out a starting apiserver's "503, Retry-After: 5" inside the reconcile, holding
    # its key while newer events wait; the work queue retries instead, and is woken when the API is back.
    configuration.retries = urllib3.Retry(total=3, respect_retry_after_header=False)
    api = client.ApiClient(configuration)
    api.user_agent = f"zenmodel-operator/{__version__}"  # who wrote what, in the apiserver's audit log
    return api


def _object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


_PLURALS = {
    ("v1", "Secret"): "secrets",
    (seldon.API_VERSION, seldon.KIND): seldon.PLURAL,
}


class KubeCluster:
    """The writes of `reconcile.Cluster` over the real API, as blocking calls of the official client."""

    def __init__(
        self, api: client.ApiClient, fence: Callable[[], AbstractContextManager[None]] | None = None
    ) -> None:
        self.api = api
        # Entered around every write; raises when this process may not write (leader.Elector.writing).
        self.fence = fence

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call. Secret bodies never reach an error's text."""
        if method != "GET" and self.fence is not None:
            with self.fence():
                return self._request(method, path, query=query, body=body, content_type=content_type)
        return self._request(method, path, query=query, body=body, content_type=content_type)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None,
        body: Mapping[str, Any] | None,
        content_type: str,
    ) -> dict[str, Any]:
        _, url, headers, serialized, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=dict(body) if body is not None else None,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, body=serialized, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        response.read()  # type: ignore[no-untyped-call]
        status = int(response.status)
        payload: dict[str, Any] = json.loads(response.data or b"{}")
        if status >= 400:
            message = (
                str(payload.get("message", "")) if "/secrets" not in path else str(payload.get("reason", ""))
            )
            error = ApiError(status, method, path, message)
            if rejects_the_object(status, method, message):
                raise ApplyRejected(str(error)) from error
            raise error
        return payload

    def ready(self) -> bool:
        """Whether the apiserver answers /readyz: one quick try, no retries (an outage's probe)."""
        _, url, headers, _, _ = self.api.param_serialize(
            method="GET", resource_path="/readyz", auth_settings=["BearerToken"]
        )
        try:
            response = self.api.rest_client.pool_manager.request(
                "GET", url, headers=headers, timeout=PROBE_TIMEOUT_SECONDS, retries=False
            )
        except (urllib3.exceptions.HTTPError, OSError):
            return False
        return int(response.status) == 200

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        plural = _PLURALS[(obj["apiVersion"], obj["kind"])]
        path = _object_path(obj["apiVersion"], plural, meta["namespace"], meta["name"])
        return self._apply(path, obj)

    def remove_foreign_keys(self, patch: Mapping[str, Any]) -> dict[str, Any] | None:
        """Applies a `drift.removal_patch`; None if the object changed since it was read (409), as its
        watch event then brings the key back with the newer object."""
        meta = patch["metadata"]
        plural = _PLURALS[(patch["apiVersion"], patch["kind"])]
        path = _object_path(patch["apiVersion"], plural, meta["namespace"], meta["name"])
        try:
            return self.request(
                "PATCH",
                path,
                query=[("fieldManager", FIELD_MANAGER)],
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 409:
                return None
            raise

    def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        meta = parent["metadata"]
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": dict(status),
        }
        return self._apply(
            _object_path(API_VERSION, PLURAL, meta["namespace"], meta["name"]) + "/status", body
        )

    def _apply(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH",
            path,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=body,
            content_type="application/apply-patch+yaml",
        )

    def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        meta = parent["metadata"]
        now = now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
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
        self.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)


class InformedCluster:
    """`reconcile.Cluster`: reads from the informer's stores, writes through the official client in a
    thread (its calls block), and writes each answer through into the stores, so the next read is never
    older than our own write."""

    def __init__(self, informer: Informer, kube: KubeCluster) -> None:
        self.informer = informer
        self.kube = kube

    def get_parent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.parents.get(namespace, name)

    def get_seldon_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.seldon_deployments.get(namespace, name)

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.secrets.get(namespace, name)

    async def apply(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        live = await asyncio.to_thread(self.kube.apply, obj)
        self.informer.wrote(live)
        return live

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> bool:
        live = await asyncio.to_thread(self.kube.remove_foreign_keys, patch)
        if live is None:
            return False
        self.informer.wrote(live)
        return True

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            live = await asyncio.to_thread(self.kube.apply_status, parent, status)
        except ApiError as error:
            if error.status == 404:
                # Deleted between our startup LIST and kopf's, so no watch event will say so.
                self.informer.deleted(self.informer.parents, parent)
            raise
        self.informer.wrote(live)
        return live

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        await asyncio.to_thread(self.kube.post_event, parent, event)


LIST_PAGE_SIZE = 250
_LISTED = {  # informer store -> what it holds
    "parents": (API_VERSION, PLURAL),
    "seldondeployments": (seldon.API_VERSION, seldon.PLURAL),
    "secrets": ("v1", "secrets"),
}


def list_watched(
    kube: KubeCluster, store_name: str, settings: OperatorSettings
) -> Iterator[list[dict[str, Any]]]:
    """Every object of one watched kind, as kopf watches it: the same namespaces (kopf's own pattern
    matching), and for Secrets the same label selector. A kind not served (no CRD yet) lists empty.

    Page by page, so that no more than a page is ever parsed at once."""
    api_version, plural = _LISTED[store_name]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    selector = secrets_label_selector(settings) if plural == "secrets" else None
    patterns = settings.namespaces
    exact = select_specific_namespaces(patterns)
    globbed = bool(patterns) and len(exact) != len(patterns)
    paths = (
        [f"{prefix}/{plural}"]  # globs need the cluster-wide list (and the chart's cluster scope)
        if not patterns or globbed
        else [f"{prefix}/namespaces/{namespace}/{plural}" for namespace in sorted(exact)]
    )
    for path in paths:
        token = ""
        while True:
            query = [("limit", str(LIST_PAGE_SIZE))]
            query += [("labelSelector", selector)] if selector else []
            query += [("continue", token)] if token else []
            try:
                listed = kube.request("GET", path, query=query)
            except ApiError as error:
                if error.status != 404:
                    raise
                break
            # A list's items of built-in kinds come without apiVersion and kind; a watch event's have them.
            kind = str(listed.get("kind", "")).removesuffix("List")
            yield [
                {"apiVersion": api_version, "kind": kind, **item}
                for item in listed.get("items") or []
                if not globbed
                or any(match_namespace(NamespaceName(item["metadata"]["namespace"]), p) for p in patterns)
            ]
            token = str((listed.get("metadata") or {}).get("continue") or "")
            if not token:
                break
