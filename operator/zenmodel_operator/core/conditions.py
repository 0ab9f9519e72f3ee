"""Status conditions per the Kubernetes API conventions.

As in cert-manager's condition helpers, `lastTransitionTime` moves only when `status` changes, so a
reconcile that finds nothing new computes a status identical to the live one and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import seldon

CREDENTIALS_READY = "CredentialsReady"
SELDON_READY = "SeldonDeploymentReady"
READY = "Ready"


class Reason(StrEnum):
    """Every condition reason the operator writes (CamelCase, per the API conventions): one vocabulary."""

    # CredentialsReady
    CREDENTIALS_RENDERED = "CredentialsRendered"
    NOT_REQUIRED = "NotRequired"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 (a condition reason)
    SECRET_NOT_OPTED_IN = "SecretNotOptedIn"  # noqa: S105
    MISSING_KEYS = "MissingKeys"
    INVALID_CREDENTIALS = "InvalidCredentials"
    PROVIDER_MISMATCH = "ProviderMismatch"
    SECRET_CONFLICT = "SecretConflict"  # noqa: S105
    # SeldonDeploymentReady (Available, Creating and Failed are Seldon's own states, mirrored)
    AVAILABLE = seldon.AVAILABLE
    CREATING = seldon.CREATING
    FAILED = seldon.FAILED
    UNKNOWN = "Unknown"
    CONFLICT = "SeldonDeploymentConflict"
    APPLY_FAILED = "ApplyFailed"
    WAITING_FOR_CREDENTIALS = "WaitingForCredentials"
    STOPPED = "Stopped"  # spec.replicas is 0
    # ... and while Seldon still rolls out, why its pods never become ready (see `pods`)
    MODEL_FETCH_FAILED = "ModelFetchFailed"  # the storage initializer exited with an error
    MODEL_LOAD_FAILED = "ModelLoadFailed"  # the model server container exited or cannot start
    SERVING_CONTAINER_FAILED = "ServingContainerFailed"  # another container (Seldon's executor, ...)
    # Ready, when the spec itself is refused
    INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    @property
    def status_text(self) -> str:
        return "True" if self.status else "False"


def merge_conditions(
    previous: Iterable[Mapping[str, Any]], current: Iterable[Condition], *, generation: int, now: str
) -> list[dict[str, Any]]:
    """The conditions to write: `current`, keeping each one's previous `lastTransitionTime` if its
    status did not change. Conditions of types we no longer set are dropped."""
    before = {str(c.get("type")): c for c in previous}
    merged = []
    for condition in current:
        old = before.get(condition.type)
        unchanged = old is not None and old.get("status") == condition.status_text
        merged.append(
            {
                "type": condition.type,
                "status": condition.status_text,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": str(old["lastTransitionTime"])
                if unchanged and old is not None and old.get("lastTransitionTime")
                else now,
                "observedGeneration": generation,
            }
        )
    return merged


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
