"""The parent's status, derived from what the reconcile saw: pure, so every case is a unit test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import seldon
from .conditions import CREDENTIALS_READY, READY, SELDON_READY, Condition, Reason, merge_conditions
from .seldon import available_replicas
from .spec import ZenModelDeploymentSpec


class State(StrEnum):
    UNKNOWN = "Unknown"
    CREATING = "Creating"
    AVAILABLE = "Available"
    FAILED = "Failed"


def prediction_url(
    base_url: str | None, namespace: str, name: str, spec: ZenModelDeploymentSpec
) -> str | None:
    if not base_url:
        return None
    return seldon.ingress_url(
        base_url, namespace, name, seldon.prediction_path(spec.model.protocol, spec.model.name)
    )


def internal_url(namespace: str, name: str, spec: ZenModelDeploymentSpec) -> str:
    return seldon.internal_url(namespace, name, seldon.prediction_path(spec.model.protocol, spec.model.name))


def not_owned_message(kind: str, name: str) -> str:
    return (
        f"a {kind} named {name} exists and is not owned by this ZenModelDeployment; "
        "it is left untouched: delete or rename it"
    )


@dataclass(frozen=True)
class CredentialsOutcome:
    """What became of the credentials: a ready Secret (or none needed), or a failure to report."""

    ok: bool
    reason: str
    message: str
    secret_name: str | None = None


@dataclass(frozen=True)
class Observation:
    """Everything status derivation needs, already decided by the reconcile."""

    namespace: str
    name: str
    generation: int
    spec: ZenModelDeploymentSpec | None  # None: the spec did not validate
    spec_error: str | None
    credentials: CredentialsOutcome | None
    seldon: Mapping[str, Any] | None  # our SeldonDeployment as it is now (None if absent)
    conflict: bool
    apply_error: str | None
    default_base_url: str | None


def seldon_condition(obs: Observation) -> tuple[State, Condition]:
    name = obs.name
    if obs.conflict:
        return State.FAILED, Condition(
            SELDON_READY,
            False,
            Reason.CONFLICT,
            not_owned_message("SeldonDeployment", name),
        )
    if obs.apply_error is not None:
        return State.FAILED, Condition(SELDON_READY, False, Reason.APPLY_FAILED, obs.apply_error)
    if obs.seldon is None:
        waiting = obs.credentials is not None and not obs.credentials.ok
        return State.UNKNOWN, Condition(
            SELDON_READY,
            False,
            Reason.WAITING_FOR_CREDENTIALS if waiting else Reason.CREATING,
            f"SeldonDeployment {name} is not created until its credentials are ready"
            if waiting
            else f"SeldonDeployment {name} is being created",
        )
    seldon_status = obs.seldon.get("status") or {}
    state = seldon_status.get("state")
    description = seldon_status.get("description") or ""
    if state == seldon.AVAILABLE:
        return State.AVAILABLE, Condition(
            SELDON_READY,
            True,
            Reason.AVAILABLE,
            description or f"SeldonDeployment {name} is available",
        )
    if state == seldon.FAILED:
        return State.FAILED, Condition(
            SELDON_READY,
            False,
            Reason.FAILED,
            description or f"Seldon Core reports {name} as failed",
        )
    # No status yet reads the same as Seldon's own "Creating", so Seldon's first report costs no write.
    if state in (None, seldon.CREATING):
        replicas = obs.spec.replicas if obs.spec else 0
        message = (
            f"waiting for Seldon Core to roll out SeldonDeployment {name}: "
            f"{available_replicas(seldon_status)}/{replicas} replicas available"
        )
        return State.CREATING, Condition(
            SELDON_READY,
            False,
            Reason.CREATING,
            f"{message}: {description}" if description else message,
        )
    return State.UNKNOWN, Condition(
        SELDON_READY,
        False,
        Reason.UNKNOWN,
        f"Seldon Core reports an unknown state {state!r} for {name}",
    )


def credentials_condition(obs: Observation) -> Condition:
    if obs.credentials is None:
        return Condition(CREDENTIALS_READY, False, Reason.INVALID_SPEC, "the spec is invalid")
    return Condition(CREDENTIALS_READY, obs.credentials.ok, obs.credentials.reason, obs.credentials.message)


def ready_condition(credentials: Condition, seldon_ready: Condition, url: str | None, name: str) -> Condition:
    if credentials.status and seldon_ready.status:
        return Condition(
            READY, True, Reason.AVAILABLE, f"model {name} is served" + (f" at {url}" if url else "")
        )
    first_failure = credentials if not credentials.status else seldon_ready
    return Condition(READY, False, first_failure.reason, first_failure.message)


def derive_status(obs: Observation, previous: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The whole status to write. Equal to `previous` whenever nothing changed (then nothing is written)."""
    if obs.spec is None:
        invalid = Condition(READY, False, Reason.INVALID_SPEC, obs.spec_error or "the spec is invalid")
        return {
            "observedGeneration": obs.generation,
            "state": State.FAILED.value,
            "conditions": merge_conditions(
                previous.get("conditions") or [], [invalid], generation=obs.generation, now=now
            ),
        }
    spec = obs.spec
    base_url = (spec.ingress.baseURL if spec.ingress else None) or obs.default_base_url
    url = prediction_url(base_url, obs.namespace, obs.name, spec)
    state, seldon_ready = seldon_condition(obs)
    credentials = credentials_condition(obs)
    ready = ready_condition(credentials, seldon_ready, url, obs.name)
    owned_seldon = obs.seldon if not obs.conflict else None
    seldon_status = (owned_seldon or {}).get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "state": state.value,
        "replicas": spec.replicas,
        "availableReplicas": available_replicas(seldon_status),
        "conditions": merge_conditions(
            previous.get("conditions") or [],
            [credentials, seldon_ready, ready],
            generation=obs.generation,
            now=now,
        ),
    }
    if url:
        status["predictionURL"] = url
    if owned_seldon is not None:
        status["seldonDeploymentName"] = obs.name
        status["internalURL"] = (seldon_status.get("address") or {}).get("url") or internal_url(
            obs.namespace, obs.name, spec
        )
    if obs.credentials is not None and obs.credentials.secret_name:
        status["credentialsSecretName"] = obs.credentials.secret_name
    return status
