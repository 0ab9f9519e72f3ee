"""Exact drift: what others added to our children that server-side apply under our manager keeps.

Server-side apply removes only fields its own manager stops applying; a key that `kubectl edit`, a
client-side apply or another field manager added stays. So, purely, we find such keys and remove them
with a merge patch that carries the resourceVersion we saw (the apiserver refuses it with 409 Conflict
if the object changed since), and a converged object still costs no write at all.

What we enforce: the rclone Secret's `data` entirely (an added `RCLONE_CONFIG_S3_ENDPOINT` would send
the credentials elsewhere), and on both children the label and annotation keys that are ours (see
`is_owned_key`). Everything else others add (Argo CD's tracking annotations, kubectl's
last-applied-configuration, a team's own labels) is theirs and left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import labels

OWNED_PREFIX = "zenml.io/"
_OWNED_KEYS = frozenset({labels.MANAGED_BY_KEY, *labels.PROVENANCE_KEYS.values()})


def is_owned_key(key: str) -> bool:
    """A label or annotation key only the operator may set on its children."""
    return key.startswith(OWNED_PREFIX) or key in _OWNED_KEYS


def _extra_keys(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None, *, owned_only: bool
) -> list[str]:
    wanted = desired or {}
    return sorted(key for key in live or {} if key not in wanted and (not owned_only or is_owned_key(key)))


def removal_patch(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch that removes what others added to a child we own; None when nothing was.

    `desired` is what we render, `live` the object as read. The patch names the object (so it can be
    addressed like the applied one) and carries `live`'s resourceVersion as a precondition.
    """
    desired_meta = desired.get("metadata") or {}
    live_meta = live.get("metadata") or {}
    metadata: dict[str, Any] = {}
    for field in ("labels", "annotations"):
        extra = _extra_keys(desired_meta.get(field), live_meta.get(field), owned_only=True)
        if extra:
            metadata[field] = dict.fromkeys(extra)
    patch: dict[str, Any] = {}
    if "data" in desired:
        extra_data = _extra_keys(desired.get("data"), live.get("data"), owned_only=False)
        if extra_data:
            patch["data"] = dict.fromkeys(extra_data)
    if not metadata and not patch:
        return None
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {
            "name": desired_meta["name"],
            "namespace": desired_meta["namespace"],
            "resourceVersion": live_meta.get("resourceVersion"),
            **metadata,
        },
        **patch,
    }
