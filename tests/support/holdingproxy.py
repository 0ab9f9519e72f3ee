"""A TLS-terminating HTTP proxy in front of the apiserver that can hold one request on its way.

A process given a kubeconfig that points here talks to the apiserver only through this proxy: its bearer
token passes through untouched (so the audit log still names it), and so do its watches, streamed chunk by
chunk. `hold` arms it to stop the next request matching a method and a path pattern before forwarding it,
until `release`: from the apiserver's side, exactly a client frozen after deciding to write and before the
request left (say, between a leader's fence check and its send).

It runs its own event loop in a daemon thread, on loopback, with a server certificate from the cluster's CA.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web
from yarl import URL

from support.election import audit_now
from support.localcluster import LocalCluster

# Per hop, not end to end (RFC 9110 7.6.1); Host and the body's framing are the proxy's own to set.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass
class Hold:
    """One request to hold: the first whose method is `method` and whose path fully matches `pattern`."""

    method: str
    pattern: re.Pattern[str]
    arrived_at: str | None = None  # as the audit log writes time
    answer: int | None = None  # the apiserver's HTTP status, once released and answered
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, request: web.Request) -> bool:
        return request.method == self.method and self.pattern.fullmatch(request.path) is not None


class HoldingProxy:
    def __init__(self, cluster: LocalCluster) -> None:
        cert, key = cluster.issue_server_certificate("holding-proxy")
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(cert, key)
        self._upstream_tls = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
        self._upstream = cluster.server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="holding-proxy", daemon=True)
        self._lock = threading.Lock()
        self._holds: list[Hold] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    def start(self) -> HoldingProxy:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def kubeconfig_through(self, kubeconfig: Path, path: Path) -> Path:
        """A copy of `kubeconfig` (same credentials) whose cluster is reached through this proxy."""
        config = yaml.safe_load(kubeconfig.read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = self.url
        path.touch(0o600)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def hold(self, method: str, path_pattern: str) -> Hold:
        """Holds the next request whose method is `method` and whose path fully matches `path_pattern`."""
        hold = Hold(method, re.compile(path_pattern))
        with self._lock:
            self._holds.append(hold)
        return hold

    def release(self, hold: Hold) -> None:
        self._loop.call_soon_threadsafe(hold.released.set)

    # ------------------------------------------------------------------------------------------ the loop

    async def _serve(self) -> str:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._upstream_tls, limit=0),
            timeout=aiohttp.ClientTimeout(total=None),  # watches last minutes
            auto_decompress=False,  # bodies pass through as the apiserver encoded them
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._server_tls)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"https://127.0.0.1:{port}"

    async def _close(self) -> None:
        for hold in self._holds:
            hold.released.set()  # held requests go on, so that their handlers end
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _to_hold(self, request: web.Request) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if hold.arrived_at is None and hold.matches(request):
                    hold.arrived_at = audit_now()
                    return hold
        return None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        held = self._to_hold(request)
        if held is not None:
            await held.released.wait()
        assert self._session is not None
        headers = {name: value for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP}
        async with self._session.request(
            request.method,
            URL(self._upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body or None,
        ) as upstream:
            if held is not None:
                held.answer = upstream.status
            response = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():  # a watch's events, as they come
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # the client went away (a stopped operator): nothing more to pass on
        return response
