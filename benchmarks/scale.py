#!/usr/bin/env python3
"""The operator side by side with two baselines, on one local control plane, in one run.

- Bare client: an aiohttp client that makes exactly the operator's writes for each new parent (a create of
  the rclone Secret and of the SeldonDeployment, a server-side apply of the status, the Created Event), with the
  operator's concurrency and no reads. It is the floor: no operator can converge faster.
- Poll loop: a SeldonDeployment polled once a second, the way ZenML's client-side deployer waits.

Prints: convergence of `--objects` new parents (operator / bare client) in `--rounds` rounds whose order
alternates, and their median ratio, with the CPU each side and the apiserver and etcd used meanwhile (on a
small machine convergence is bound by CPU, all of it shared); GETs and reconciles per object (GETs counted
by the apiserver's own `apiserver_request_total`, as are the applies it refused with 409: the cost of
writing conditionally); the restart over the converged objects (time to a drained queue, writes, GETs);
status propagation p50/p99 against the poll loop; and the operator's RSS at
`--objects` (grown, and after the restart) and at `--scale-objects`, with the slope. With `--model-pods`,
each of the first `--objects` parents has a pod as Seldon makes it, all running or all failing, which the
operator's pod watch sees as in a cluster (the RSS figures then include it).
Figures, not pass/fail: the goals are printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from support.localcluster import LocalCluster
from support.measures import cpu_seconds
from support.modelpods import failing_status, running_status, seldon_pod
from support.objects import s3_secret, zmd
from support.operator_process import OperatorProcess
from zenmodel_operator.core import seldon
from zenmodel_operator.core.plan import Snapshot, decode_source_secret, plan
from zenmodel_operator.core.status import derive_status
from zenmodel_operator.runtime.clock import now_rfc3339
from zenmodel_operator.runtime.writes import KubeCluster
from zenmodel_operator.settings import OperatorSettings

WORKERS = OperatorSettings().workers  # the operator's default concurrency, given to the bare client too
CREATORS = 8  # concurrent parent creations, the same load in every run
FIELD_MANAGER = "zenmodel-operator"
READ_RESOURCES = {("zenmodeldeployments", ""), ("seldondeployments", ""), ("secrets", "")}
OPERATOR_WRITES = {
    ("seldondeployments", ""),
    ("secrets", ""),
    ("zenmodeldeployments", "status"),
    ("events", ""),
}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
PARENTS = "/apis/zenml.io/v1alpha1/namespaces/{ns}/zenmodeldeployments"
SELDONS = f"/apis/{seldon.API_VERSION}/namespaces/{{ns}}/{seldon.PLURAL}"


class Api:
    """A bare aiohttp client as cluster-admin: the baseline's carrier and the benchmark's own."""

    def __init__(self, server: str, pki: Path) -> None:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.server = server
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=64), timeout=aiohttp.ClientTimeout(total=60)
        )

    async def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json", **query: str
    ) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        async with self.session.request(
            method, self.server + path, data=data, params=query, headers={"Content-Type": content_type}
        ) as response:
            payload: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload.get('message')}")
            return payload

    async def exists(self, path: str) -> bool:
        async with self.session.get(self.server + path) as response:
            return response.status == 200

    async def apply(self, path: str, body: Any) -> dict[str, Any]:
        return await self.call(
            "PATCH", path, body, "application/apply-patch+yaml", fieldManager=FIELD_MANAGER, force="true"
        )

    async def metrics(self) -> str:
        async with self.session.get(self.server + "/metrics") as response:
            return await response.text()

    async def requests(
        self, verbs: set[str], resources: set[tuple[str, str]], codes: set[str] | None = None
    ) -> int:
        """Requests the apiserver counted with one of `verbs` on one of (resource, subresource), and
        answered with one of `codes` (any, if None)."""
        total = 0.0
        for family in text_string_to_metric_families(await self.metrics()):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "apiserver_request_total"
                    and labels.get("verb") in verbs
                    and (labels.get("resource"), labels.get("subresource", "")) in resources
                    and (codes is None or labels.get("code") in codes)
                ):
                    total += sample.value
        return int(total)

    async def gets(self) -> int:
        return await self.requests({"GET"}, READ_RESOURCES)

    async def writes(self) -> int:
        return await self.requests(WRITE_VERBS, OPERATOR_WRITES)

    async def refused_applies(self) -> int:
        """Applies and patches of our kinds answered 409: their precondition (uid, resourceVersion) failed."""
        return await self.requests({"APPLY", "PATCH"}, OPERATOR_WRITES, {"409"})


class Watcher:
    """Watches the parents of a namespace; records when each first has a state, and reaches Available."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.first_state: dict[str, float] = {}
        self.available: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.api.call("GET", PARENTS.format(ns=self.namespace))
        for item in listed["items"]:
            self._see(item)
        self.task = asyncio.create_task(self._watch(listed["metadata"]["resourceVersion"]))

    async def _watch(self, version: str) -> None:
        path = PARENTS.format(ns=self.namespace)
        while True:
            params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
            async with self.api.session.get(
                self.api.server + path, params=params, timeout=aiohttp.ClientTimeout(total=None)
            ) as response:
                async for line in response.content:
                    event = json.loads(line)
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(event["object"])

    def _see(self, obj: dict[str, Any]) -> None:
        name, state = obj["metadata"]["name"], (obj.get("status") or {}).get("state")
        now = time.monotonic()
        if state:
            self.first_state.setdefault(name, now)
        if state == seldon.AVAILABLE:
            self.available.setdefault(name, now)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def names(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(start, stop)]


async def create_model_pods(api: Api, namespace: str, parent_names: list[str], *, failing: bool) -> None:
    """One pod per parent as Seldon makes it, its status written as a kubelet would: every container
    running, or the storage initializer failing."""
    gate = asyncio.Semaphore(CREATORS)
    status = failing_status() if failing else running_status()

    async def one(name: str) -> None:
        async with gate:
            pod = seldon_pod(namespace, f"{name}-default-0-iris", name)
            await api.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
            path = f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status"
            await api.call("PATCH", path, {"status": status}, "application/merge-patch+json")

    # The pods' ServiceAccount admission needs the namespace's default ServiceAccount first.
    default_account = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    await wait_until(partial(api.exists, default_account), 60, "no default ServiceAccount")
    await asyncio.gather(*(one(name) for name in parent_names))


async def create_parents(api: Api, namespace: str, parent_names: list[str]) -> None:
    gate = asyncio.Semaphore(CREATORS)

    async def one(name: str) -> None:
        async with gate:
            await api.call("POST", PARENTS.format(ns=namespace), zmd(name, namespace))

    await asyncio.gather(*(one(name) for name in parent_names))


def bare_bodies(namespace: str, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What the operator writes for a new parent: rendered before the clock starts (uid filled in later)."""
    parent = zmd(name, namespace)
    parent["metadata"]["generation"] = 1
    source = s3_secret(namespace)
    source["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in source.pop("stringData").items()}
    snapshot = Snapshot(parent, None, None, decode_source_secret(source))
    decided = plan(snapshot, OperatorSettings())
    assert decided.secret is not None
    assert decided.seldon is not None
    observation = decided.observation(snapshot, OperatorSettings(), seldon=decided.seldon)
    status = derive_status(observation, {}, now_rfc3339())
    return decided.secret, decided.seldon, status


async def bare_client(api: Api, namespace: str, parent_names: list[str]) -> None:
    """The baseline, in its own process as the operator is: a watch of the parents (its only read) feeds
    `WORKERS` workers that make the operator's writes, rendered beforehand. Returns once all are done."""
    bodies = {name: bare_bodies(namespace, name) for name in parent_names}
    created: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    path = PARENTS.format(ns=namespace)
    listed = await api.call("GET", path)
    remaining = len(parent_names)
    all_done = asyncio.Event()

    async def watch() -> None:
        params = {"watch": "1", "resourceVersion": listed["metadata"]["resourceVersion"]}
        async with api.session.get(
            api.server + path, params=params, timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            async for line in response.content:
                event = json.loads(line)
                if event["type"] == "ADDED":
                    await created.put(event["object"])

    async def worker() -> None:
        nonlocal remaining
        while True:
            parent = await created.get()
            meta = parent["metadata"]
            secret, seldon_deployment, status = bodies[meta["name"]]
            for child in (secret, seldon_deployment):
                child["metadata"]["ownerReferences"][0]["uid"] = meta["uid"]
            strict = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
            await api.call("POST", f"/api/v1/namespaces/{namespace}/secrets", secret, **strict)
            await api.call("POST", SELDONS.format(ns=namespace), seldon_deployment, **strict)
            status_body = {
                "apiVersion": parent["apiVersion"],
                "kind": parent["kind"],
                "metadata": {"name": meta["name"], "namespace": namespace, "uid": meta["uid"]},
                "status": status,
            }
            await api.apply(f"{path}/{meta['name']}/status", status_body)
            await api.call("POST", f"/api/v1/namespaces/{namespace}/events", created_event(parent))
            remaining -= 1
            if remaining == 0:
                all_done.set()

    tasks = [asyncio.create_task(watch()), *(asyncio.create_task(worker()) for _ in range(WORKERS))]
    print("watching", flush=True)
    cpu_at_start = time.process_time()
    await all_done.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"cpu {time.process_time() - cpu_at_start:.3f}", flush=True)


def created_event(parent: dict[str, Any]) -> dict[str, Any]:
    meta, now = parent["metadata"], now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": parent["apiVersion"],
            "kind": parent["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": "Normal",
        "reason": "Created",
        "message": f"created SeldonDeployment {meta['namespace']}/{meta['name']}",
        "source": {"component": "zenmodel-operator"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def converge(
    api: Api, namespace: str, parent_names: list[str], timeout: float, bare: BareClient | None = None
) -> float:
    """Seconds from the first parent created to the last one with a status."""
    watcher = Watcher(api, namespace)
    await watcher.start()
    started = time.monotonic()
    await create_parents(api, namespace, parent_names)
    wanted = set(parent_names)
    try:
        await wait_until(
            lambda: wanted <= watcher.first_state.keys(), timeout, f"{namespace} never converged"
        )
    finally:
        await watcher.stop()
        if bare is not None:
            bare.wait()
    return max(watcher.first_state[name] for name in parent_names) - started


class BareClient:
    """`bare_client` in a process of its own, as the operator is."""

    def __init__(self, cluster: LocalCluster, namespace: str, parent_names: list[str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--bare-client",
                cluster.server,
                str(cluster.pki),
                namespace,
                parent_names[0],
                str(len(parent_names)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "watching":
            raise RuntimeError("the bare client did not start")
        self.cpu_seconds = 0.0  # its CPU from watching to done, once it has exited

    def wait(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.wait(timeout=60) != 0:
            raise RuntimeError("the bare client failed")
        self.cpu_seconds = float(self.proc.stdout.read().split()[-1])


def mirrored_within(process: OperatorProcess, seconds: float) -> tuple[float, float]:
    """The operator's own view (`zenmodel_status_mirror_latency_seconds`: from a SeldonDeployment event
    reaching it to the status written): how many mirrors so far, and how many took at most `seconds`."""
    total = within = 0.0
    for family in text_string_to_metric_families(process.metrics()):
        for sample in family.samples:
            if sample.name == "zenmodel_status_mirror_latency_seconds_count":
                total += sample.value
            if (
                sample.name == "zenmodel_status_mirror_latency_seconds_bucket"
                and float(sample.labels["le"]) == seconds
            ):
                within += sample.value
    return total, within


def control_plane_cpu(cluster: LocalCluster) -> float:
    return sum(cpu_seconds(cluster.pid(name)) for name in ("kube-apiserver", "etcd"))


async def propagation(api: Api, namespace: str, parent_names: list[str]) -> tuple[list[float], list[float]]:
    """Each sample: Seldon reports Available; the operator's watcher sees it on the parent, and a 1 s poll
    loop (started at a random phase) sees it on the SeldonDeployment. Latencies in ms."""
    watcher = Watcher(api, namespace)
    await watcher.start()
    operator_ms: list[float] = []
    poll_ms: list[float] = []

    async def sample(name: str) -> None:
        path = f"{SELDONS.format(ns=namespace)}/{name}"
        patched: list[float] = []

        async def poll() -> None:
            while True:
                obj = await api.call("GET", path)
                if patched and (obj.get("status") or {}).get("state") == seldon.AVAILABLE:
                    poll_ms.append(1000 * (time.monotonic() - patched[0]))
                    return
                await asyncio.sleep(1.0)

        poller = asyncio.create_task(poll())
        await asyncio.sleep(random.uniform(0, 1))  # noqa: S311 (a phase, not a secret)
        status = {"status": {"state": seldon.AVAILABLE, "deploymentStatus": {}}}
        patched.append(time.monotonic())
        await api.call("PATCH", f"{path}/status", status, "application/merge-patch+json")
        await wait_until(lambda: name in watcher.available, 30, f"{name} never mirrored")
        operator_ms.append(1000 * (watcher.available[name] - patched[0]))
        await poller

    samples = []
    for name in parent_names:
        samples.append(asyncio.create_task(sample(name)))
        await asyncio.sleep(0.1)
    await asyncio.gather(*samples)
    await watcher.stop()
    return operator_ms, poll_ms


def official_apply(api: client.ApiClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A server-side apply as the operator made it before aiohttp carried its requests: the official
    client's blocking call (urllib3), run in a thread. Kept here only as the baseline."""
    _, url, headers, serialized, _ = api.param_serialize(
        method="PATCH",
        resource_path=path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Accept": "application/json", "Content-Type": "application/apply-patch+yaml"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api("PATCH", url, header_params=headers, body=serialized, _request_timeout=30)
    response.read()  # type: ignore[no-untyped-call]
    if int(response.status) >= 400:
        raise RuntimeError(f"PATCH {path}: HTTP {response.status}")
    payload: dict[str, Any] = json.loads(response.data or b"{}")
    return payload


async def carriers(api: Api, kube: KubeCluster, namespace: str, writes: int) -> None:
    """The same server-side applies, `WORKERS` at a time, through the official client's blocking calls
    in threads (the old carrier), the operator's `KubeCluster` (aiohttp on the event loop) and a bare
    aiohttp client: wall time and this process's CPU per write."""

    def secret(carrier: str, i: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{carrier}-{i:05d}", "namespace": namespace},
            "data": {"KEY": base64.b64encode(f"value-{i}".encode()).decode()},
        }

    async def official(i: int) -> None:
        path = f"/api/v1/namespaces/{namespace}/secrets/official-{i:05d}"
        await asyncio.to_thread(official_apply, kube.api, path, secret("official", i))

    async def operator(i: int) -> None:
        await kube.apply(secret("operator", i))

    async def bare(i: int) -> None:
        await api.apply(f"/api/v1/namespaces/{namespace}/secrets/bare-{i:05d}", secret("bare", i))

    async def gated(write: Callable[[int], Awaitable[None]], gate: asyncio.Semaphore, i: int) -> None:
        async with gate:
            await write(i)

    for name, write in (
        ("official client in threads (old carrier)", official),
        ("KubeCluster on aiohttp (operator)", operator),
        ("bare aiohttp", bare),
    ):
        gate = asyncio.Semaphore(WORKERS)
        wall, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(gated(write, gate, i) for i in range(writes)))
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        print(
            f"carrier, {writes} server-side applies: {name}: {wall:.1f} s, "
            f"{1000 * cpu / writes:.2f} ms of client CPU per write",
            flush=True,
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def kube_client(cluster: LocalCluster) -> client.ApiClient:
    """The official client, configured from the cluster's kubeconfig as the operator configures it."""
    configuration = client.Configuration()
    config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass
class Convergence:
    """One side's convergence of new parents: wall seconds, and the CPU seconds used meanwhile by that side
    and by the apiserver and etcd."""

    seconds: float
    client_cpu: float
    control_plane_cpu: float


async def bare_round(api: Api, cluster: LocalCluster, namespace: str, count: int) -> Convergence:
    parent_names = names("bare", 0, count)
    bare = BareClient(cluster, namespace, parent_names)
    control_plane_before = control_plane_cpu(cluster)
    seconds = await converge(api, namespace, parent_names, timeout=600, bare=bare)
    return Convergence(seconds, bare.cpu_seconds, control_plane_cpu(cluster) - control_plane_before)


async def operator_round(
    api: Api, cluster: LocalCluster, operator: OperatorProcess, namespace: str, count: int
) -> Convergence:
    assert operator.proc is not None
    operator_before, control_plane_before = cpu_seconds(operator.proc.pid), control_plane_cpu(cluster)
    seconds = await converge(api, namespace, names("op", 0, count), timeout=600)
    return Convergence(
        seconds,
        cpu_seconds(operator.proc.pid) - operator_before,
        control_plane_cpu(cluster) - control_plane_before,
    )


async def run(
    cluster: LocalCluster,
    workdir: Path,
    objects: int,
    rounds: int,
    scale_objects: int,
    scale_timeout: float,
    model_pods: str,
) -> None:
    api = Api(cluster.server, cluster.pki)
    try:
        for namespace in ("carrier", *(f"{side}-{r}" for r in range(rounds) for side in ("bare", "op"))):
            cluster.kubectl("create", "namespace", namespace)
            await api.call("POST", f"/api/v1/namespaces/{namespace}/secrets", s3_secret(namespace))
        if model_pods != "none":
            await create_model_pods(api, "op-0", names("op", 0, objects), failing=model_pods == "failing")
            print(f"model pods: {objects} in op-0, {model_pods}", flush=True)

        kube = KubeCluster(kube_client(cluster))
        try:
            await carriers(api, kube, "carrier", 500)
        finally:
            await kube.close()

        def start_operator(*namespaces: str) -> OperatorProcess:
            return OperatorProcess(
                {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com"},
                workdir / "operator.log",
                "--namespaces",
                ",".join(namespaces),
                "--log-level",
                "WARNING",
            ).start()

        # The machine's speed drifts (other load, caches): the sides alternate, bare client first in even
        # rounds and operator first in odd ones, each round in fresh namespaces, and the median ratio counts.
        operator = start_operator(*(f"op-{r}" for r in range(rounds)))
        ratios = []
        try:
            for r in range(rounds):
                sides = ["bare", "op"] if r % 2 == 0 else ["op", "bare"]
                measured = {}
                for side in sides:
                    namespace = f"{side}-{r}"
                    if side == "bare":
                        measured[side] = await bare_round(api, cluster, namespace, objects)
                        continue
                    gets_before, refused_before, reconciles_before = (
                        await api.gets(),
                        await api.refused_applies(),
                        operator.metric_sum("zenmodel_reconcile_total"),
                    )
                    measured[side] = await operator_round(api, cluster, operator, namespace, objects)
                    wanted = partial(operator.drained, reconciles_before + objects)
                    await wait_until(wanted, 120, "the operator never drained")
                    gets = await api.gets() - gets_before
                    refused = await api.refused_applies() - refused_before
                    reconciles = operator.metric_sum("zenmodel_reconcile_total") - reconciles_before
                    if r == 0:
                        rss_grown = operator.rss_mib()
                bare, op = measured["bare"], measured["op"]
                ratios.append(op.seconds / bare.seconds)
                print(
                    f"round {r + 1} of {rounds}, {objects} new objects each ({' then '.join(sides)}): bare client "
                    f"{bare.seconds:.1f} s, operator {op.seconds:.1f} s = {ratios[-1]:.2f}x\n"
                    f"  GETs per object {gets / objects:.2f}, reconciles per object {reconciles / objects:.2f} "
                    f"(goal <= 1 each: {verdict(gets <= objects and reconciles <= objects)}); applies refused "
                    f"(409, the object changed since it was read): {refused}\n"
                    f"  CPU seconds (2 cores: {2 * bare.seconds:.0f} and {2 * op.seconds:.0f} available): bare "
                    f"client {bare.client_cpu:.1f} + apiserver and etcd {bare.control_plane_cpu:.1f}; operator "
                    f"{op.client_cpu:.1f} + apiserver and etcd {op.control_plane_cpu:.1f} (operator / bare "
                    f"client: {op.client_cpu / bare.client_cpu:.1f}x)",
                    flush=True,
                )
        finally:
            operator.stop()
        ratio = statistics.median(ratios)
        print(
            f"convergence: operator / bare client, median of {rounds} rounds: {ratio:.2f}x "
            f"(goal <= 1.25x: {verdict(ratio <= 1.25)})",
            flush=True,
        )

        writes_before, gets_before = await api.writes(), await api.gets()
        started = time.monotonic()
        operator = start_operator("op-0")
        try:
            await wait_until(lambda: operator.drained(objects), 120, "the restart never drained")
            restart_s = time.monotonic() - started
            writes, gets = await api.writes() - writes_before, await api.gets() - gets_before
            rss_restarted = operator.rss_mib()
            print(
                f"restart over {objects} converged objects: drained in {restart_s:.1f} s from process start, "
                f"{writes} writes, {gets} GETs (goal <= 5 s, 0, 0: "
                f"{verdict(restart_s <= 5 and writes == 0 and gets == 0)})",
                flush=True,
            )
            mirrors_before, refused_before = mirrored_within(operator, 0.1), await api.refused_applies()
            operator_ms, poll_ms = await propagation(api, "op-0", names("op", 0, min(100, objects)))
            mirrors = [
                after - before
                for after, before in zip(mirrored_within(operator, 0.1), mirrors_before, strict=True)
            ]
            print(
                f"status propagation over {len(operator_ms)} Seldon changes: operator p50 "
                f"{statistics.median(operator_ms):.0f} ms, p99 {percentile(operator_ms, 0.99):.0f} ms "
                f"(goal p99 <= 100 ms: {verdict(percentile(operator_ms, 0.99) <= 100)}); 1 s poll loop p50 "
                f"{statistics.median(poll_ms):.0f} ms, p99 {percentile(poll_ms, 0.99):.0f} ms\n"
                f"  inside the operator (event in to status written): {mirrors[1]:.0f} of {mirrors[0]:.0f} "
                f"within 100 ms; applies refused (409): {await api.refused_applies() - refused_before}",
                flush=True,
            )
            rss_settled = operator.rss_mib()
            print(
                f"RSS at {objects} objects: {rss_grown:.0f} MiB grown; after a restart {rss_restarted:.0f} MiB "
                f"when drained, {rss_settled:.0f} MiB once settled (after the propagation run) "
                f"(goal <= 100 MiB: {verdict(max(rss_grown, rss_restarted, rss_settled) <= 100)})",
                flush=True,
            )
            if scale_objects > objects:
                more = names("op", objects, scale_objects)
                try:
                    scale_s = await converge(api, "op-0", more, timeout=scale_timeout)
                    await wait_until(lambda: operator.drained(len(more)), 120, "never drained")
                except TimeoutError:
                    print(f"RSS at {scale_objects}: not reached within {scale_timeout:.0f} s", flush=True)
                    return
                rss_scaled = operator.rss_mib()
                slope_kib = 1024 * (rss_scaled - rss_settled) / (scale_objects - objects)
                print(
                    f"RSS at {scale_objects} objects: {rss_scaled:.0f} MiB (goal <= 250 MiB: "
                    f"{verdict(rss_scaled <= 250)}); slope {slope_kib:.1f} KiB per object "
                    f"(the {len(more)} more converged in {scale_s:.0f} s)",
                    flush=True,
                )
        finally:
            operator.stop()
    finally:
        await api.session.close()


async def run_bare_client(server: str, pki: Path, namespace: str, first: str, count: int) -> None:
    api = Api(server, pki)
    prefix, start = first.rsplit("-", 1)
    try:
        await bare_client(api, namespace, names(prefix, int(start), int(start) + count))
    finally:
        await api.session.close()


def main() -> int:
    if sys.argv[1:2] == ["--bare-client"]:
        server, pki, namespace, first, count = sys.argv[2:7]
        asyncio.run(run_bare_client(server, Path(pki), namespace, first, int(count)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="convergence rounds, sides alternating")
    parser.add_argument("--scale-objects", type=int, default=10000, help="0 skips the RSS scale step")
    parser.add_argument("--scale-timeout", type=float, default=900, help="seconds allowed for the scale step")
    parser.add_argument(
        "--model-pods",
        choices=("none", "running", "failing"),
        default="none",
        help="a pod as Seldon makes it for each of the first --objects parents: running, or failing",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="zenmodel-bench-") as workdir,
        LocalCluster(Path(workdir) / "c") as cluster,
    ):
        cluster.start(cluster.crds)
        asyncio.run(
            run(
                cluster,
                Path(workdir),
                args.objects,
                args.rounds,
                args.scale_objects,
                args.scale_timeout,
                args.model_pods,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
