"""The transport to the Kubernetes API: configuration, authentication, TLS and proxy as the official
client sets them up; one request, a watch's stream, a readiness probe. It imports nothing of the
operator's, so anything that only talks to the API (the leader election) loads only this.

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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager
from functools import cached_property, partial
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from kubernetes import client, config
from kubernetes.client.rest import should_bypass_proxies
from yarl import URL

REQUEST_TIMEOUT_SECONDS = 30
PROBE_TIMEOUT_SECONDS = 2
WATCH_SECONDS = 300  # the apiserver ends each watch request after this; it is then resumed
WATCH_CLIENT_SECONDS = WATCH_SECONDS + 30  # our own cut-off for a watch the apiserver fails to end
# Each worker has one request on its way at a time; more only queue for a connection, never deadlock.
CONNECTION_LIMIT = 100


# The apiserver's answer (HTTP 500) to a server-side apply of a field the target's schema lacks, e.g. a
# ZenModelDeployment option the installed Seldon CRD does not know: the object, not the server, is wrong.
TYPED_PATCH_FAILURE = "failed to create typed patch object"


def rejects_the_object(status: int, method: str, message: str) -> bool:
    """Whether a failed write refused the object itself, so that retrying the same object cannot help.
    (A create asks for strict field validation, so a field the schema lacks is a 400 there.)"""
    if method not in ("PATCH", "POST"):
        return False
    return status in (400, 422) or (method == "PATCH" and status == 500 and TYPED_PATCH_FAILURE in message)


class ApplyRejected(Exception):
    """The apiserver refused an object as invalid (4xx): retrying the same object cannot help."""


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


def load_configuration(user_agent: str) -> client.ApiClient:
    """The official client's configuration and authentication. It carries no request: it has no
    retries to configure (a starting apiserver's "503, Retry-After: 5" would otherwise be slept out inside
    the reconcile, holding its key while newer events wait; the work queue retries instead, and outage.py's
    probe wakes it when the API is back)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiClient(client.Configuration.get_default_copy())
    api.user_agent = user_agent  # who wrote what, in the apiserver's audit log
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


def api_root(api_version: str) -> str:
    """The URL path under which the API group and version `api_version` is served."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class Transport:
    """Requests to the real API, awaited on the event loop (aiohttp).

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
        exchange = partial(
            self._exchange, method, path, query=query, body=body, content_type=content_type, accept=accept
        )
        if method != "GET" and self.fence is not None:
            with self.fence():  # spans the request: a clean stop waits for the writes on their way
                raw = await exchange()
        else:
            raw = await exchange()
        payload: dict[str, Any] = orjson.loads(raw or b"{}")
        return payload

    async def read_bytes(self, path: str, query: list[tuple[str, str]], *, timeout: float) -> bytes:
        """A GET of what is not a JSON object (a container's output), within `timeout` seconds."""
        return await self._exchange(
            "GET", path, query=query, body=None, content_type="", accept="*/*", timeout=timeout
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None,
        body: Mapping[str, Any] | None,
        content_type: str,
        accept: str,
        timeout: float | None = None,
    ) -> bytes:
        headers = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
        url, headers = authenticated(self.api, path, query, headers)
        data = orjson.dumps(body) if body is not None else None
        options = dict(self._options)
        if timeout is not None:
            options["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self._connections().request(
            method, url, headers=headers, data=data, **options
        ) as response:
            status = response.status
            raw = await response.read()
        if status >= 400:
            message = error_message(status, path, raw)
            error = ApiError(status, method, path, message)
            if rejects_the_object(status, method, message):
                raise ApplyRejected(str(error)) from error
            raise error
        return raw

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
