"""The one table of the kinds the operator reads and writes: apiVersion, kind and plural (the URL's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api import spec
from . import seldon


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str


PARENT = Kind(spec.API_VERSION, spec.KIND, spec.PLURAL)
SELDON_DEPLOYMENT = Kind(seldon.API_VERSION, seldon.KIND, seldon.PLURAL)
SECRET = Kind("v1", "Secret", "secrets")
POD = Kind("v1", "Pod", "pods")  # Seldon's model pods: watched, never written

_BY_IDENTITY = {(k.api_version, k.kind): k for k in (PARENT, SELDON_DEPLOYMENT, SECRET, POD)}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    """The kind of one of our objects, from its apiVersion and kind; ValueError for any other."""
    identity = (obj.get("apiVersion"), obj.get("kind"))
    found = _BY_IDENTITY.get(identity)  # type: ignore[arg-type]
    if found is None:
        raise ValueError(f"not a kind the operator handles: {identity[0]}/{identity[1]}")
    return found
