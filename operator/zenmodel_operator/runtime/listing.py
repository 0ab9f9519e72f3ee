"""Listing the watched kinds page by page, in the namespaces kopf watches (its own pattern matching, see
`namespaces`), with the Secrets' and the pods' label selectors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.kinds import PARENT, POD, SECRET, SELDON_DEPLOYMENT, Kind
from ..core.labels import CREDENTIALS_KEY
from ..core.seldon import DEPLOYMENT_ID_LABEL
from .echo import Key
from .namespaces import matches_any, specific_namespaces
from .transport import ApiError, Transport, api_root


class Watching(Protocol):
    """What the operator is told to watch: its namespaces (kopf's patterns; none: all) and whether
    Secrets must opt in with a label."""

    @property
    def namespaces(self) -> Sequence[str]: ...
    @property
    def require_credentials_label(self) -> bool: ...


def secrets_label_selector(watching: Watching) -> str | None:
    """Which Secrets are watched (and so may be read): opted-in ones and ours, unless told otherwise."""
    return CREDENTIALS_KEY if watching.require_credentials_label else None


LIST_PAGE_SIZE = 250
# A pod is the largest object listed (a whole spec and status, and managedFields): a parsed page of them is
# the listing's memory peak, which the process's RSS keeps. Their list is only read for failing containers.
POD_PAGE_SIZE = 50
_LISTED: dict[str, Kind] = {  # informer store -> what it holds
    "parents": PARENT,
    "seldondeployments": SELDON_DEPLOYMENT,
    "secrets": SECRET,
    "pods": POD,
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
    page_size: int = LIST_PAGE_SIZE

    def keeps(self, obj: Mapping[str, Any]) -> bool:
        """Whether a listed or watched object belongs to the operator's namespaces."""
        return not self.globs or matches_any(obj["metadata"].get("namespace") or "", self.globs)

    def holds(self, key: Key) -> bool:
        """Whether an object of this kind with `key` (namespace, name) would be in this collection."""
        return self.namespace is None or key[0] == self.namespace


def listings(store_name: str, settings: Watching) -> list[Listing]:
    """The collections of one watched kind, as kopf watches it: the same namespaces (kopf's own pattern
    matching), and for Secrets and pods their label selectors."""
    kind = _LISTED[store_name]
    api_version, plural, prefix = kind.api_version, kind.plural, api_root(kind.api_version)
    # Pods: Seldon's only (every pod it makes carries the label); Secrets: see `secrets_label_selector`.
    selector = {"secrets": secrets_label_selector(settings), "pods": DEPLOYMENT_ID_LABEL}.get(plural)
    page_size = POD_PAGE_SIZE if kind is POD else LIST_PAGE_SIZE
    patterns = settings.namespaces
    exact = specific_namespaces(patterns)
    if not patterns:
        return [Listing(api_version, f"{prefix}/{plural}", selector, None, page_size=page_size)]
    if len(exact) != len(patterns):  # globs need the cluster-wide list (and the chart's cluster scope)
        return [Listing(api_version, f"{prefix}/{plural}", selector, None, tuple(patterns), page_size)]
    return [
        Listing(
            api_version, f"{prefix}/namespaces/{namespace}/{plural}", selector, namespace, page_size=page_size
        )
        for namespace in sorted(exact)
    ]


async def list_pages(kube: Transport, listing: Listing) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """One collection, page by page (no more than a page is ever parsed at once), each page with the
    list's resourceVersion, from which a watch resumes. Raises `ApiError` 404 if the kind is not served."""
    token = ""
    while True:
        query = [("limit", str(listing.page_size))]
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
    kube: Transport, store_name: str, settings: Watching
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of one watched kind, page by page. A kind not served (no CRD yet) lists empty."""
    for listing in listings(store_name, settings):
        try:
            async for page, _ in list_pages(kube, listing):
                yield page
        except ApiError as error:
            if error.status != 404:
                raise
