"""The parent's status, derived from what the reconcile saw: pure, so every case is a unit test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..api.spec import CanaryMode, ZenModelDeploymentSpec
from . import seldon
from .conditions import CREDENTIALS_READY, READY, SELDON_READY, Condition, Reason, merge_conditions
from .pods import PodReport


class State(StrEnum):
    """status.state: Seldon's own state, mirrored, or Unknown before there is one."""

    UNKNOWN = "Unknown"
    CREATING = seldon.CREATING
    AVAILABLE = seldon.AVAILABLE
    FAILED = seldon.FAILED
    STOPPED = "Stopped"  # replicas 0 on purpose: rolled out, serving nothing


def prediction_url(
    base_url: str | None, namespace: str, name: str, spec: ZenModelDeploymentSpec
) -> str | None:
    if not base_url:
        return None
    return seldon.ingress_url(
        base_url, namespace, name, seldon.prediction_path(spec.model.protocol, spec.model.name)
    )


def internal_url(namespace: str, name: str, spec: ZenModelDeploymentSpec) -> str:
    return seldon.internal_url(
        namespace,
        name,
        seldon.predictor_http_port(spec.executor),
        seldon.prediction_path(spec.model.protocol, spec.model.name),
    )


def not_owned_message(kind: str, name: str) -> str:
    return (
        f"a {kind} named {name} exists and is not owned by this ZenModelDeployment; "
        "it is left untouched: delete or rename it"
    )


def left_behind_message(kind: str, namespace: str, name: str, earlier_uid: str) -> str:
    """For a child of an earlier parent of the same name that the garbage collector missed: not this
    parent's to take over (nor ours to delete), so a person deletes it, and it is made again."""
    return (
        f"{kind} {name} belongs to an earlier ZenModelDeployment of this name (uid {earlier_uid}), deleted "
        "since: Kubernetes' garbage collector missed it (as it can after an apiserver restart, "
        "kubernetes/kubernetes#109748). It is left untouched: delete it "
        f"(kubectl delete {kind.lower()} {name} -n {namespace}) and it is made again for this one"
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
    conflict: str | None  # why a SeldonDeployment of the parent's name is not ours; None: no conflict
    apply_error: str | None
    default_base_url: str | None
    # Why the model pods never become ready, while Seldon rolls out (see `awaits_rollout`); None: no problem
    pod_problem: PodReport | None = None

    @property
    def owned_seldon(self) -> Mapping[str, Any] | None:
        """Our SeldonDeployment; a foreign one of the parent's name is never mirrored."""
        return None if self.conflict is not None else self.seldon

    @property
    def seldon_status(self) -> Mapping[str, Any]:
        return (self.owned_seldon or {}).get("status") or {}


def _replicas(obs: Observation, spec: ZenModelDeploymentSpec, predictor: str, field: str) -> int | None:
    return seldon.predictor_replicas(
        obs.seldon_status, seldon.predictor_deployment_names(obs.name, predictor, spec.model.name), field
    )


def _available(obs: Observation, spec: ZenModelDeploymentSpec, predictor: str) -> int:
    return _replicas(obs, spec, predictor, "availableReplicas") or 0


def _desired(obs: Observation, spec: ZenModelDeploymentSpec) -> int:
    """The main predictor's desired replicas: with autoscaling, the HorizontalPodAutoscaler's count as
    Seldon reports it (Seldon v1.19 leaves an autoscaled Deployment's replicas to the HPA)."""
    if spec.autoscaling is not None:
        reported = _replicas(obs, spec, seldon.PREDICTOR_NAME, "replicas")
        if reported:
            return reported
    return spec.desired_replicas


def _stopped(obs: Observation, spec: ZenModelDeploymentSpec) -> bool:
    """Scaled to zero on purpose, and every main replica gone (a canary would still serve)."""
    return (
        spec.desired_replicas == 0
        and spec.canary is None
        and _available(obs, spec, seldon.PREDICTOR_NAME) == 0
    )


def _rollout_progress(obs: Observation, spec: ZenModelDeploymentSpec) -> str:
    main = f"{_available(obs, spec, seldon.PREDICTOR_NAME)}/{_desired(obs, spec)}"
    if spec.canary is None:
        return f"{main} replicas available"
    canary = f"{_available(obs, spec, seldon.CANARY_PREDICTOR_NAME)}/{spec.canary.replicas}"
    return f"predictor {seldon.PREDICTOR_NAME} {main}, predictor {seldon.CANARY_PREDICTOR_NAME} {canary} replicas available"


def serving_predictors(spec: ZenModelDeploymentSpec) -> str:
    """Which predictor serves what, for the Ready message; empty without a canary."""
    canary = spec.canary
    if canary is None:
        return ""
    if canary.mode is CanaryMode.SHADOW:
        return (
            f" by predictor {seldon.PREDICTOR_NAME} ({spec.model.uri}), shadowed by predictor "
            f"{seldon.CANARY_PREDICTOR_NAME} ({canary.uri})"
        )
    percent = canary.trafficPercent or 0
    return (
        f" by predictors {seldon.PREDICTOR_NAME} ({spec.model.uri}, {100 - percent}% of requests) and "
        f"{seldon.CANARY_PREDICTOR_NAME} ({canary.uri}, {percent}%)"
    )


def canary_status(obs: Observation, spec: ZenModelDeploymentSpec) -> dict[str, Any] | None:
    canary = spec.canary
    if canary is None:
        return None
    status: dict[str, Any] = {"uri": canary.uri, "mode": canary.mode.value}
    if canary.trafficPercent is not None:
        status["trafficPercent"] = canary.trafficPercent
    status["traffic"] = (
        f"{canary.trafficPercent}%" if canary.trafficPercent is not None else canary.mode.value
    )
    status["replicas"] = canary.replicas
    status["availableReplicas"] = _available(obs, spec, seldon.CANARY_PREDICTOR_NAME)
    return status


def seldon_condition(obs: Observation) -> tuple[State, Condition]:
    """SeldonDeploymentReady and the state: Seldon's, mirrored; while it rolls out, a problem of its pods
    says why the rollout does not end, in place of the plain Creating."""
    state, condition = _seldon_condition(obs)
    if condition.reason == Reason.CREATING and obs.pod_problem is not None:
        return state, Condition(SELDON_READY, False, obs.pod_problem.reason, obs.pod_problem.message)
    return state, condition


def awaits_rollout(obs: Observation) -> bool:
    """Whether the status waits for Seldon to roll the model out: what its pods' problems explain."""
    return _seldon_condition(obs)[1].reason == Reason.CREATING


def _seldon_condition(obs: Observation) -> tuple[State, Condition]:
    name = obs.name
    if obs.conflict is not None:
        return State.FAILED, Condition(SELDON_READY, False, Reason.CONFLICT, obs.conflict)
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
    if state != seldon.FAILED and obs.spec is not None and _stopped(obs, obs.spec):
        return State.STOPPED, Condition(
            SELDON_READY,
            False,
            Reason.STOPPED,
            f"SeldonDeployment {name} is scaled to zero on purpose (spec.replicas is 0): the model is not "
            "served until replicas is raised again",
        )
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
        message = f"waiting for Seldon Core to roll out SeldonDeployment {name}"
        if obs.spec is not None:
            message += f": {_rollout_progress(obs, obs.spec)}"
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


def ready_condition(
    credentials: Condition, seldon_ready: Condition, url: str | None, name: str, spec: ZenModelDeploymentSpec
) -> Condition:
    if credentials.status and seldon_ready.status:
        return Condition(
            READY,
            True,
            Reason.AVAILABLE,
            f"model {name} is served" + (f" at {url}" if url else "") + serving_predictors(spec),
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
    ready = ready_condition(credentials, seldon_ready, url, obs.name, spec)
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "state": state.value,
        "replicas": _desired(obs, spec),
        "availableReplicas": _available(obs, spec, seldon.PREDICTOR_NAME),
        "conditions": merge_conditions(
            previous.get("conditions") or [],
            [credentials, seldon_ready, ready],
            generation=obs.generation,
            now=now,
        ),
    }
    if url:
        status["predictionURL"] = url
    if obs.owned_seldon is not None:
        status["seldonDeploymentName"] = obs.name
        status["internalURL"] = (obs.seldon_status.get("address") or {}).get("url") or internal_url(
            obs.namespace, obs.name, spec
        )
    if obs.credentials is not None and obs.credentials.secret_name:
        status["credentialsSecretName"] = obs.credentials.secret_name
    canary = canary_status(obs, spec)
    if canary is not None:
        status["canary"] = canary
    return status
