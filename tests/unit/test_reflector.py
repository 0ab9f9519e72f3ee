"""The reflector's list-then-watch against scripted answers: what it resumes from, and what a new list
after a lost resumption point (410 Gone) reports deleted. Its normal path runs against the real apiserver
in the e2e tests; a 410 there needs a watch cache overrun, which no test can bring about quickly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from zenmodel_operator.runtime import reflector as reflector_module
from zenmodel_operator.runtime.informer import Cache, PodStore, Store
from zenmodel_operator.runtime.listing import Listing
from zenmodel_operator.runtime.reflector import Reflector
from zenmodel_operator.runtime.transport import ApiError
from zenmodel_operator.runtime.writes import KubeCluster

PATH = "/apis/machinelearning.seldon.io/v1/namespaces/models/seldondeployments"
LISTING = Listing("machinelearning.seldon.io/v1", PATH, None, "models")


def sdep(name: str, version: int, ns: str = "models") -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(version)},
    }


class ScriptedKube(KubeCluster):
    """Answers each LIST with the next of `lists` (one page, or a 404) and each watch with the next of
    `watches` (events, then an optional error); cancels the reflector when the script runs out."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], int] | int], watches: list[list[Any]]) -> None:
        self.lists = lists
        self.watches = watches
        self.watched_from: list[str] = []

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
        if not self.lists:
            raise asyncio.CancelledError
        answer = self.lists.pop(0)
        if isinstance(answer, int):
            raise ApiError(answer, method, path, "scripted")
        items, version = answer
        return {"kind": "SeldonDeploymentList", "metadata": {"resourceVersion": str(version)}, "items": items}

    async def watch(self, path: str, query: list[tuple[str, str]]) -> AsyncIterator[dict[str, Any]]:
        if not self.watches:
            raise asyncio.CancelledError
        self.watched_from.append(dict(query)["resourceVersion"])
        for step in self.watches.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step


def reflect(kube: ScriptedKube, store: Cache, listing: Listing = LISTING) -> list[tuple[str, str]]:
    """Runs a reflector until the script ends; returns the events it reported, applied to `store`."""
    seen: list[tuple[str, str]] = []

    def on_event(kind: str, obj: Mapping[str, Any]) -> None:
        seen.append((kind, obj["metadata"]["name"]))
        if kind == "DELETED":
            store.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
        else:
            store.put(obj)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Reflector(kube, listing, store, on_event).run())
    return seen


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reflector_module, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(reflector_module, "NOT_SERVED_RETRY_SECONDS", 0.0)


def test_the_watch_resumes_from_the_last_event_or_bookmark() -> None:
    kube = ScriptedKube(
        [([sdep("a", 5)], 10)],
        [
            [{"type": "ADDED", "object": sdep("b", 11)}, {"type": "BOOKMARK", "object": sdep("", 14)}],
            [{"type": "MODIFIED", "object": sdep("a", 15)}],
            [],
        ],
    )
    store = Store("seldondeployments")
    assert reflect(kube, store) == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a")]
    assert kube.watched_from == ["10", "14", "15"]


def test_after_a_lost_resumption_point_a_new_list_reports_what_was_deleted_meanwhile() -> None:
    kube = ScriptedKube(
        [([sdep("a", 5), sdep("b", 6)], 10), ([sdep("a", 5)], 30)],
        [[{"type": "ADDED", "object": sdep("ours", 12)}, ApiError(410, "GET", PATH, "too old")], []],
    )
    store = Store("seldondeployments")
    store.put(sdep("written-after-the-list", 31))  # our own write, newer than the second list
    store.put(sdep("elsewhere", 1, ns="other"))  # another namespace's listing holds it
    seen = reflect(kube, store)
    assert ("DELETED", "b") in seen and ("DELETED", "ours") in seen
    assert sorted(store) == [("models", "a"), ("models", "written-after-the-list"), ("other", "elsewhere")]
    assert kube.watched_from == ["10", "30"]


def test_an_error_event_410_lists_again_too() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}
    kube = ScriptedKube([([sdep("a", 5)], 10), ([], 20)], [[gone], []])
    assert reflect(kube, Store("seldondeployments"))[-1] == ("DELETED", "a")
    assert kube.watched_from == ["10", "20"]


def test_a_dropped_connection_resumes_from_where_it_was() -> None:
    kube = ScriptedKube(
        [([], 10)],
        [[{"type": "ADDED", "object": sdep("a", 11)}, aiohttp.ServerDisconnectedError()], [], []],
    )
    reflect(kube, Store("seldondeployments"))
    assert kube.watched_from == ["10", "11", "11"]


def test_a_kind_not_served_holds_nothing_until_it_is() -> None:
    kube = ScriptedKube([404, ([sdep("a", 5)], 10)], [[]])
    store = Store("seldondeployments")
    store.put(sdep("from-before-the-crd-went", 3))
    seen = reflect(kube, store)
    assert seen == [("DELETED", "from-before-the-crd-went"), ("ADDED", "a")]
    assert kube.watched_from == ["10"]


def test_namespace_globs_keep_only_matching_objects() -> None:
    listing = Listing(
        "machinelearning.seldon.io/v1",
        "/apis/machinelearning.seldon.io/v1/seldondeployments",
        None,
        None,
        ("team-*",),
    )
    kube = ScriptedKube(
        [([sdep("a", 5, ns="team-a"), sdep("b", 6, ns="kube-system")], 10)],
        [
            [
                {"type": "ADDED", "object": sdep("c", 11, ns="team-c")},
                {"type": "ADDED", "object": sdep("d", 12, ns="x")},
            ],
            [],
        ],
    )
    assert reflect(kube, Store("seldondeployments"), listing) == [("ADDED", "a"), ("ADDED", "c")]
    assert kube.watched_from == ["10", "12"]


def test_a_failing_pod_a_new_list_lacks_is_reported_deleted() -> None:
    failing = {
        "metadata": {
            "name": "p1",
            "namespace": "models",
            "uid": "u1",
            "labels": {"seldon-deployment-id": "iris"},
        },
        "status": {"containerStatuses": [{"name": "iris", "state": {"terminated": {"exitCode": 1}}}]},
    }
    pods = PodStore()
    assert pods.put(failing) == [("models", "iris")]
    listing = Listing("v1", "/api/v1/namespaces/models/pods", "seldon-deployment-id", "models")
    seen = reflect(ScriptedKube([([], 10)], [[]]), pods, listing)
    assert seen == [("DELETED", "p1")]
    assert len(pods) == 0
