"""The Kubernetes API, as the reconcile needs it: server-side apply under one field manager, and Events.
Reads come from the informer's stores (`InformedCluster`), never from a GET.

The official client loads the configuration (in-cluster or kubeconfig) and authenticates each request
(its default headers, and a bearer token its refresh hook keeps fresh); aiohttp carries the requests, on
the event loop, with bodies encoded by orjson. The official client's own carrier, blocking urllib3 calls
run in threads, cost 0.60-0.84 ms of client CPU per server-side apply against 0.34-0.45 ms for this one
(`benchmarks/scale.py`'s carrier step, 5 runs on 2 shared cores); converging 1,000 new objects, the
operator used 5.1 s of CPU instead of 7.1 (means of 3 runs): CPU the apiserver beside it lacked.
Bodies stay plain dicts: the operator writes exactly the JSON it rendered. Errors become `ApiError`,
whose text never carries a Secret's body.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from kopf._cogs.structs.references import NamespaceName, match_namespace, select_specific_namespaces
from kubernetes import client, config
from kubernetes.client.rest import should_bypass_proxies
from yarl import URL

from . import __version__, seldon
from .informer import Informer, Key, secrets_label_selector
from .reconcile import AlreadyExists, ApplyRejected, Event, now_rfc3339
from .settings import OperatorSettings
from .spec import API_VERSION, KIND, PLURAL

FIELD_MANAGER = "zenmodel-operator"
REQUEST_TIMEOUT_SECONDS = 30
PROBE_TIMEOUT_SECONDS = 2
WATCH_SECONDS = 300  # the apiserver ends each watch request after this; it is then resumed
WATCH_CLIENT_SECONDS = WATCH_SECONDS + 30  # our own cut-off for a watch the apiserver fails to end
# Each worker has one request on its way at a time; more only queue for a connection, never deadlock.
CONNECTION_LIMIT = 100
COMPONENT = "zenmodel-operator"
# Asks for an object's metadata alone: how the operator looks at a Secret it may not read.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


# The apiserver's answer (HTTP 500) to a server-side apply of a field the target's schema lacks, e.g. a
# ZenModelDeployment option the installed Seldon CRD does not know: the object, not the server, is wrong.
TYPED_PATCH_FAILURE = "failed to create typed patch object"


def rejects_the_object(status: int, method: str, message: str) -> bool:
    """Whether a failed write refused the object itself, so that retrying the same object cannot help.
    (A create asks for strict field validation, so a field the schema lacks is a 400 there.)"""
    if method not in ("PATCH", "POST"):
        return False
    return status in (400, 422) or (method == "PATCH" and status == 500 and TYPED_PATCH_FAILURE in message)


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status


def error_message(status: int, path: str, raw: bytes) -> str:
    """What an error answer may say in our logs: a Secret's only by its reason, as its message may quote
    the body we sent."""
    try:
        payload = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return f"HTTP {status} without a Kubernetes Status"  # a proxy's page, say
    if not isinstance(payload, dict):
        return ""
    return str(payload.get("message", "")) if "/secrets" not in path else str(payload.get("reason", ""))


def load_configuration() -> client.ApiClient:
    """The official client's configuration and authentication. It carries no request: it has no
    retries to configure (a starting apiserver's "503, Retry-After: 5" would otherwise be slept out inside
    the reconcile, holding its key while newer events wait; the work queue retries instead, and outage.py's
    probe wakes it when the API is back)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiClient(client.Configuration.get_default_copy())
    api.user_agent = f"zenmodel-operator/{__version__}"  # who wrote what, in the apiserver's audit log
    return api


def ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    """The TLS the official client would use: its CA, client certificate and verification settings."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert, cadata=configuration.ca_cert_data)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    return context


def proxy_of(configuration: client.Configuration) -> str | None:
    proxy: str | None = configuration.proxy
    if not proxy or should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
        return None
    if URL(proxy).scheme.startswith("socks"):  # the official client's would need PySocks anyway
        raise ValueError("a SOCKS proxy is not supported: use an HTTP(S) proxy for the Kubernetes API")
    return proxy


def authenticated(
    api: client.ApiClient, path: str, query: list[tuple[str, str]] | None, headers: Mapping[str, str]
) -> tuple[URL, dict[str, str]]:
    """A request's URL and headers, authenticated as the official client would (its User-Agent included).

    Not through its `param_serialize`, which walks every header and parameter through its model serializer:
    a tenth of the CPU of each of our small requests."""
    configuration = api.configuration
    prepared = {**api.default_headers, **headers}
    if api.cookie:
        prepared["Cookie"] = api.cookie
    # Runs the refresh hook: in-cluster, the ServiceAccount token re-read as the kubelet rotates it.
    token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        prepared["authorization"] = token
    url = configuration.host + path + (f"?{urlencode(query)}" if query else "")
    return URL(url, encoded=True), prepared


def _api_root(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


_PLURALS = {
    ("v1", "Secret"): "secrets",
    (seldon.API_VERSION, seldon.KIND): seldon.PLURAL,
    (API_VERSION, KIND): PLURAL,
}


def _path_of(obj: Mapping[str, Any]) -> str:
    """The URL path of an object we write, from its apiVersion, kind, namespace and name."""
    meta = obj["metadata"]
    plural = _PLURALS[(obj["apiVersion"], obj["kind"])]
    return f"{_api_root(obj['apiVersion'])}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


class KubeCluster:
    """The writes of `reconcile.Cluster` over the real API, awaited on the event loop (aiohttp).

    One connection pool (an `aiohttp.ClientSession`) per instance, opened on first use inside the running
    loop; `close()` it before the loop ends."""

    def __init__(
        self,
        api: client.ApiClient,
        fence: Callable[[], AbstractContextManager[None]] | None = None,
        connection_limit: int = CONNECTION_LIMIT,
    ) -> None:
        self.api = api
        # Entered around every write; raises when this process may not write (leader.Elector.writing).
        self.fence = fence
        self.connection_limit = connection_limit  # 0: none
        self._session: aiohttp.ClientSession | None = None

    def _connections(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            configuration = self.api.configuration
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_context(configuration), limit=self.connection_limit),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
                proxy=proxy_of(configuration),
                # As the official client: no compression, whose CPU the apiserver's machine may lack.
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @cached_property
    def _options(self) -> dict[str, Any]:
        """Per-request aiohttp options from the configuration, which never changes: worked out once."""
        configuration = self.api.configuration
        options: dict[str, Any] = {}
        if configuration.tls_server_name:
            options["server_hostname"] = configuration.tls_server_name
        if configuration.proxy_headers:
            options["proxy_headers"] = configuration.proxy_headers
        return options

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        """One API call, no retry (see `load_configuration`). Secret bodies never reach an error's text."""
        if method != "GET" and self.fence is not None:
            with self.fence():  # spans the request: a clean stop waits for the writes on their way
                return await self._request(
                    method, path, query=query, body=body, content_type=content_type, accept=accept
                )
        return await self._request(
            method, path, query=query, body=body, content_type=content_type, accept=accept
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None,
        body: Mapping[str, Any] | None,
        content_type: str,
        accept: str,
    ) -> dict[str, Any]:
        url, headers = authenticated(self.api, path, query, {"Accept": accept, "Content-Type": content_type})
        data = orjson.dumps(body) if body is not None else None
        async with self._connections().request(
            method, url, headers=headers, data=data, **self._options
        ) as response:
            status = response.status
            raw = await response.read()
        if status >= 400:
            message = error_message(status, path, raw)
            error = ApiError(status, method, path, message)
            if rejects_the_object(status, method, message):
                raise ApplyRejected(str(error)) from error
            raise error
        payload: dict[str, Any] = orjson.loads(raw or b"{}")
        return payload

    async def ready(self) -> bool:
        """Whether the apiserver answers /readyz: one quick try (an outage's probe)."""
        url, headers = authenticated(self.api, "/readyz", None, {})
        try:
            async with self._connections().get(
                url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS),
                **self._options,
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def watch(self, path: str, query: list[tuple[str, str]]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, parsed, until the apiserver ends it (after `WATCH_SECONDS`).
        Raises `ApiError` for an error answer: 410 when the resourceVersion is too old to resume from."""
        query = [
            *query,
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ]
        url, headers = authenticated(self.api, path, query, {"Accept": "application/json"})
        # No total timeout: the apiserver ends the request; a silent connection is cut after a grace.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=REQUEST_TIMEOUT_SECONDS, sock_read=WATCH_CLIENT_SECONDS
        )
        async with self._connections().get(
            url, headers=headers, timeout=timeout, **self._options
        ) as response:
            if response.status >= 400:
                raise ApiError(
                    response.status, "GET", path, error_message(response.status, path, await response.read())
                )
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending += chunk
                start = 0
                while (end := pending.find(b"\n", start)) >= 0:
                    if end > start:
                        event: dict[str, Any] = orjson.loads(memoryview(pending)[start:end])
                        yield event
                    start = end + 1
                del pending[:start]

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
            "apiVersion": API_VERSION,
            "kind": KIND,
            # The uid: a parent deleted and re-created meanwhile never gets the old one's status.
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "status": dict(status),
        }
        return await self._apply(_path_of(body) + "/status", body)

    async def _apply(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            path,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=body,
            content_type="application/apply-patch+yaml",
        )

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
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
        await self.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)


class InformedCluster:
    """`reconcile.Cluster`: reads from the informer's stores, writes through `KubeCluster` on the event
    loop, and writes each answer through into the stores, so the next read is never older than our own
    write."""

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
        live = await self.kube.apply(obj)
        self.informer.wrote(live)
        return live

    async def create(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        live = await self.kube.create(obj)
        self.informer.wrote(live)
        return live

    async def read_metadata(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return await self.kube.read_metadata(obj)  # metadata alone: nothing for the stores

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> bool:
        live = await self.kube.remove_foreign_keys(patch)
        if live is None:
            return False
        self.informer.wrote(live)
        return True

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            live = await self.kube.apply_status(parent, status)
        except ApiError as error:
            if error.status == 404:
                # Deleted between our startup LIST and kopf's, so no watch event will say so.
                self.informer.deleted(self.informer.parents, parent)
            raise
        self.informer.wrote(live)
        return live

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        await self.kube.post_event(parent, event)


LIST_PAGE_SIZE = 250
_LISTED = {  # informer store -> what it holds
    "parents": (API_VERSION, PLURAL),
    "seldondeployments": (seldon.API_VERSION, seldon.PLURAL),
    "secrets": ("v1", "secrets"),
}


@dataclass(frozen=True)
class Listing:
    """One collection of a watched kind: its URL path, label selector, and the namespace patterns an item
    must match (only when globs make the path cluster-wide)."""

    api_version: str
    path: str
    selector: str | None
    namespace: str | None  # the path's namespace; None when cluster-wide
    globs: tuple[str, ...] = ()

    def keeps(self, obj: Mapping[str, Any]) -> bool:
        """Whether a listed or watched object belongs to the operator's namespaces."""
        namespace = NamespaceName(obj["metadata"].get("namespace") or "")
        return not self.globs or any(match_namespace(namespace, pattern) for pattern in self.globs)

    def holds(self, key: Key) -> bool:
        """Whether an object of this kind with `key` (namespace, name) would be in this collection."""
        return self.namespace is None or key[0] == self.namespace


def listings(store_name: str, settings: OperatorSettings) -> list[Listing]:
    """The collections of one watched kind, as kopf watches it: the same namespaces (kopf's own pattern
    matching), and for Secrets the same label selector."""
    api_version, plural = _LISTED[store_name]
    prefix = _api_root(api_version)
    selector = secrets_label_selector(settings) if plural == "secrets" else None
    patterns = settings.namespaces
    exact = select_specific_namespaces(patterns)
    if not patterns:
        return [Listing(api_version, f"{prefix}/{plural}", selector, None)]
    if len(exact) != len(patterns):  # globs need the cluster-wide list (and the chart's cluster scope)
        return [Listing(api_version, f"{prefix}/{plural}", selector, None, tuple(patterns))]
    return [
        Listing(api_version, f"{prefix}/namespaces/{namespace}/{plural}", selector, namespace)
        for namespace in sorted(exact)
    ]


async def list_pages(kube: KubeCluster, listing: Listing) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """One collection, page by page (no more than a page is ever parsed at once), each page with the
    list's resourceVersion, from which a watch resumes. Raises `ApiError` 404 if the kind is not served."""
    token = ""
    while True:
        query = [("limit", str(LIST_PAGE_SIZE))]
        query += [("labelSelector", listing.selector)] if listing.selector else []
        query += [("continue", token)] if token else []
        listed = await kube.request("GET", listing.path, query=query)
        # A list's items of built-in kinds come without apiVersion and kind; a watch event's have them.
        kind = str(listed.get("kind", "")).removesuffix("List")
        metadata = listed.get("metadata") or {}
        items = [
            {"apiVersion": listing.api_version, "kind": kind, **item} for item in listed.get("items") or []
        ]
        yield [item for item in items if listing.keeps(item)], str(metadata.get("resourceVersion") or "")
        token = str(metadata.get("continue") or "")
        if not token:
            return


async def list_watched(
    kube: KubeCluster, store_name: str, settings: OperatorSettings
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of one watched kind, page by page. A kind not served (no CRD yet) lists empty."""
    for listing in listings(store_name, settings):
        try:
            async for page, _ in list_pages(kube, listing):
                yield page
        except ApiError as error:
            if error.status != 404:
                raise
