"""The startup LIST that primes the informer lists what kopf then watches: page by page, in the same
namespaces, behind the same Secret selector, with each item's apiVersion and kind filled in."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from zenmodel_operator.runtime.listing import LIST_PAGE_SIZE, list_watched, listings
from zenmodel_operator.runtime.transport import ApiError
from zenmodel_operator.runtime.writes import KubeCluster
from zenmodel_operator.settings import OperatorSettings


class FakeKube(KubeCluster):
    """Answers LISTs from a fixed set of Secrets, paginated as the apiserver does."""

    def __init__(self, namespaces: Mapping[str, int]) -> None:
        self.items = [
            {"metadata": {"name": f"s{i}", "namespace": ns}}
            for ns, count in namespaces.items()
            for i in range(count)
        ]
        self.requests: list[tuple[str, dict[str, str]]] = []

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
        params = dict(query or [])
        self.requests.append((path, params))
        if "/namespaces/absent/" in path:
            raise ApiError(404, method, path, "not found")
        namespace = path.split("/namespaces/")[1].split("/")[0] if "/namespaces/" in path else None
        items = [i for i in self.items if namespace in (None, i["metadata"]["namespace"])]
        start = int(params.get("continue") or 0)
        end = start + int(params["limit"])
        return {
            "kind": "SecretList",
            "metadata": {"continue": str(end) if end < len(items) else ""},
            "items": items[start:end],
        }


def listed(kube: FakeKube, settings: OperatorSettings) -> list[dict[str, Any]]:
    async def every_page() -> list[dict[str, Any]]:
        return [item async for page in list_watched(kube, "secrets", settings) for item in page]

    return asyncio.run(every_page())


def test_every_page_is_listed_with_the_secret_selector_and_kinds_filled_in() -> None:
    kube = FakeKube({"a": LIST_PAGE_SIZE + 3})
    items = listed(kube, OperatorSettings())
    assert len(items) == LIST_PAGE_SIZE + 3
    assert {(i["apiVersion"], i["kind"]) for i in items} == {("v1", "Secret")}
    assert [path for path, _ in kube.requests] == ["/api/v1/secrets", "/api/v1/secrets"]
    assert all(params["labelSelector"] == "zenml.io/model-credentials" for _, params in kube.requests)


def test_without_the_label_requirement_every_secret_is_listed() -> None:
    kube = FakeKube({"a": 1})
    listed(kube, OperatorSettings(require_credentials_label=False))
    assert all("labelSelector" not in params for _, params in kube.requests)


def test_exact_namespaces_are_listed_one_by_one_and_a_missing_one_is_empty() -> None:
    kube = FakeKube({"a": 2, "b": 1, "c": 5})
    items = listed(kube, OperatorSettings(namespaces=("a", "b", "absent")))
    assert sorted(i["metadata"]["namespace"] for i in items) == ["a", "a", "b"]
    assert [path for path, _ in kube.requests] == [
        "/api/v1/namespaces/a/secrets",
        "/api/v1/namespaces/absent/secrets",
        "/api/v1/namespaces/b/secrets",
    ]


def test_globs_list_cluster_wide_and_keep_what_kopf_would_watch() -> None:
    kube = FakeKube({"team-a": 2, "team-b": 1, "other": 4})
    items = listed(kube, OperatorSettings(namespaces=("team-*",)))
    assert sorted(i["metadata"]["namespace"] for i in items) == ["team-a", "team-a", "team-b"]
    assert [path for path, _ in kube.requests] == ["/api/v1/secrets"]


def test_pods_are_listed_behind_seldons_label_in_small_pages() -> None:
    (pods,) = listings("pods", OperatorSettings(namespaces=("models",)))
    assert (pods.path, pods.selector, pods.page_size) == (
        "/api/v1/namespaces/models/pods",
        "seldon-deployment-id",
        50,
    )
    (secrets,) = listings("secrets", OperatorSettings(namespaces=("models",)))
    assert secrets.page_size == LIST_PAGE_SIZE
