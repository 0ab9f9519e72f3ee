"""The Kubernetes API, as the reconcile needs it: reads, server-side apply under one field manager, Events.

Requests go through the official client's ApiClient (its kubeconfig / in-cluster loading and auth), but
bodies stay plain dicts: the operator writes exactly the JSON it rendered. Errors become `ApiError`,
whose text never carries a Secret's body.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from kubernetes import client, config

from . import __version__
from .reconcile import ApplyRejected, Event, now_rfc3339
from .render import SELDON_API_VERSION, SELDON_PLURAL
from .spec import API_VERSION, KIND, PLURAL

FIELD_MANAGER = "zenmodel-operator"
REQUEST_TIMEOUT_SECONDS = 30
COMPONENT = "zenmodel-operator"


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status


def load_configuration() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    api.user_agent = f"zenmodel-operator/{__version__}"  # who wrote what, in the apiserver's audit log
    return api


def _object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


_PLURALS = {
    ("v1", "Secret"): "secrets",
    (SELDON_API_VERSION, "SeldonDeployment"): SELDON_PLURAL,
}


class KubeCluster:
    """`reconcile.Cluster` over the real API."""

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
    ) -> dict[str, Any] | None:
        """One API call; None for 404 on reads. Secret bodies never reach an error's text."""
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
    ) -> dict[str, Any] | None:
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
        if status == 404 and method == "GET":
            return None
        payload: dict[str, Any] = json.loads(response.data or b"{}")
        if status >= 400:
            message = (
                str(payload.get("message", "")) if "/secrets" not in path else str(payload.get("reason", ""))
            )
            error = ApiError(status, method, path, message)
            if status in (400, 422) and method == "PATCH":
                raise ApplyRejected(str(error)) from error
            raise error
        return payload

    def get_parent(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.request("GET", _object_path(API_VERSION, PLURAL, namespace, name))

    def get_seldon_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.request("GET", _object_path(SELDON_API_VERSION, SELDON_PLURAL, namespace, name))

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.request("GET", _object_path("v1", "secrets", namespace, name))

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        plural = _PLURALS[(obj["apiVersion"], obj["kind"])]
        path = _object_path(obj["apiVersion"], plural, meta["namespace"], meta["name"])
        return self._apply(path, obj)

    def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        meta = parent["metadata"]
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": dict(status),
        }
        self._apply(_object_path(API_VERSION, PLURAL, meta["namespace"], meta["name"]) + "/status", body)

    def _apply(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result = self.request(
            "PATCH",
            path,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=body,
            content_type="application/apply-patch+yaml",
        )
        assert result is not None  # only reads answer None
        return result

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
