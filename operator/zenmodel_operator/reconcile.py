"""The one level-based reconcile: given a parent and what exists, converge.

Create, update, resume, child events, credential events and drift all come here with just a key. `plan`
is pure (what to write and the status that results); `Reconciler` reads the world, applies the plan and
writes only what differs, so a converged object costs no writes at all.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from . import credentials as creds
from .conditions import CREDENTIALS_READY, READY, SELDON_READY, Reason, find
from .drift import removal_patch
from .render import (
    ParentRef,
    is_controlled_by,
    is_subset,
    rclone_secret_name,
    render_rclone_secret,
    render_seldon_deployment,
)
from .settings import OperatorSettings
from .spec import ZenModelDeploymentSpec, ZenModelDeploymentStatus
from .status import CredentialsOutcome, Observation, derive_status, not_owned_message
from .storage import InvalidModelURI, ModelLocation, parse_model_uri
from .validation import field_path

log = logging.getLogger(__name__)

# The status fields the operator owns: the CRD's status schema, from the same model.
STATUS_KEYS = tuple(ZenModelDeploymentStatus.model_fields)
# False conditions that are progress, not trouble: every other new failure becomes a Warning Event.
QUIET_REASONS = frozenset({Reason.CREATING, Reason.WAITING_FOR_CREDENTIALS})


@dataclass(frozen=True)
class Observed:
    parent: Mapping[str, Any]
    seldon: Mapping[str, Any] | None
    rclone_secret: Mapping[str, Any] | None
    source_secret: creds.SourceSecret | None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    secret: dict[str, Any] | None  # to apply; None: nothing to write
    seldon: dict[str, Any] | None
    observation: Observation
    # Merge patches removing what others added to our children (see `drift`); written before applying.
    removals: tuple[dict[str, Any], ...] = ()


def format_validation_error(error: ValidationError) -> str:
    """Names each failing field; pydantic's input values are left out (they could be anything)."""
    return "; ".join(
        f"{field_path(item['loc'])}: {item['msg']}"
        if item["loc"]
        else item["msg"]  # cross-field: self-naming
        for item in error.errors(include_input=False, include_url=False)
    )


def source_secret_name(parent: Mapping[str, Any]) -> str | None:
    """The referenced credentials Secret, read without validating the rest of the spec."""
    ref = ((parent.get("spec") or {}).get("credentials") or {}).get("secretRef") or {}
    name = ref.get("name")
    return name if isinstance(name, str) and name else None


def _credentials(
    observed: Observed,
    spec: ZenModelDeploymentSpec,
    location: ModelLocation,
    ref: ParentRef,
    settings: OperatorSettings,
) -> tuple[CredentialsOutcome, dict[str, str] | None]:
    if not location.needs_rclone:
        return CredentialsOutcome(
            True, Reason.NOT_REQUIRED, f"{location.store.value}:// models need no credentials"
        ), None
    secret_name = rclone_secret_name(ref.name)
    existing = observed.rclone_secret
    if existing is not None and not is_controlled_by(existing, ref):
        return CredentialsOutcome(
            False, Reason.SECRET_CONFLICT, not_owned_message("Secret", secret_name)
        ), None
    try:
        config = creds.rclone_config(
            location,
            spec.credentials,
            observed.source_secret,
            require_opt_in=settings.require_credentials_label,
        )
    except creds.CredentialsError as error:
        # The last good rclone Secret (if any) stays in place and keeps serving.
        return CredentialsOutcome(
            False, error.reason, error.message, secret_name if existing is not None else None
        ), None
    return CredentialsOutcome(
        True,
        Reason.CREDENTIALS_RENDERED,
        f"rclone Secret {secret_name} configures remote {location.remote} for {location.seldon_uri}",
        secret_name,
    ), config


def plan(observed: Observed, settings: OperatorSettings) -> Plan:
    parent = observed.parent
    ref = ParentRef.of(parent)
    meta = parent["metadata"]
    base = Observation(
        namespace=ref.namespace,
        name=ref.name,
        generation=int(meta.get("generation") or 0),
        spec=None,
        spec_error=None,
        credentials=None,
        seldon=None,
        conflict=False,
        apply_error=None,
        default_base_url=settings.ingress_base_url,
    )
    try:
        spec = ZenModelDeploymentSpec.model_validate(parent.get("spec") or {})
        location = parse_model_uri(spec.model.uri)
    except ValidationError as error:
        return Plan(None, None, replace(base, spec_error=format_validation_error(error)))
    except InvalidModelURI as error:
        return Plan(None, None, replace(base, spec_error=f"spec.model.uri: {error}"))

    conflict = observed.seldon is not None and not is_controlled_by(observed.seldon, ref)
    outcome, config = _credentials(observed, spec, location, ref, settings)
    observation = replace(base, spec=spec, credentials=outcome, conflict=conflict, seldon=observed.seldon)
    if conflict or not outcome.ok:
        return Plan(None, None, observation)

    desired_secret = render_rclone_secret(ref, config) if config is not None else None
    desired_seldon = render_seldon_deployment(
        ref,
        spec,
        location,
        secret_name=outcome.secret_name,
        credentials_hash=creds.credentials_hash(config) if config is not None else None,
    )
    secret_write = None
    if desired_secret is not None and not (
        observed.rclone_secret is not None and is_subset(desired_secret, observed.rclone_secret)
    ):
        secret_write = desired_secret
    seldon_write = None
    if not (observed.seldon is not None and is_subset(desired_seldon, observed.seldon)):
        seldon_write = desired_seldon
    live_children = ((desired_secret, observed.rclone_secret), (desired_seldon, observed.seldon))
    removals = tuple(
        patch
        for desired, live in live_children
        if desired is not None and live is not None and (patch := removal_patch(desired, live)) is not None
    )
    return Plan(
        secret_write, seldon_write, replace(observation, seldon=observed.seldon or desired_seldon), removals
    )


def managed_status(status: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: status[key] for key in STATUS_KEYS if status and key in status}


def events_for(
    previous: Mapping[str, Any], current: Mapping[str, Any], *, created_seldon: str | None
) -> list[Event]:
    """Events a person needs, and only on a change: created, available, and each new failure.

    All but a re-creation (drift) follow from the status transition: the status is written first, so
    a restart after a crash between creating the child and recording it posts the missed Created then,
    and never twice. A crash between the status write and the post loses the Event: at most once.
    """
    events = []
    recorded = current.get("seldonDeploymentName")
    if created_seldon or (recorded and not previous.get("seldonDeploymentName")):
        events.append(Event("Normal", "Created", f"created SeldonDeployment {created_seldon or recorded}"))
    before = previous.get("conditions") or []
    after = current.get("conditions") or []
    for type_ in (CREDENTIALS_READY, SELDON_READY, READY):
        new = find(after, type_)
        if new is None:
            continue
        old = find(before, type_)
        changed = old is None or (old.get("status"), old.get("reason")) != (new["status"], new["reason"])
        if not changed:
            continue
        # Ready repeats the first failing condition's reason; only an invalid spec is its own.
        own_failure = type_ != READY or new["reason"] == Reason.INVALID_SPEC
        if type_ == READY and new["status"] == "True":
            events.append(Event("Normal", "Available", new["message"]))
        elif new["status"] == "False" and new["reason"] not in QUIET_REASONS and own_failure:
            events.append(Event("Warning", new["reason"], new["message"]))
    return events


class ApplyRejected(Exception):
    """The apiserver refused an object as invalid (4xx): retrying the same object cannot help."""


class Cluster(Protocol):
    """What the reconcile needs of the Kubernetes API (see `kube.KubeCluster`)."""

    def get_parent(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def get_seldon_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...
    def remove_foreign_keys(self, patch: Mapping[str, Any]) -> bool: ...
    def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> None: ...
    def post_event(self, parent: Mapping[str, Any], event: Event) -> None: ...


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def decode_source_secret(secret: Mapping[str, Any]) -> creds.SourceSecret:
    meta = secret.get("metadata") or {}
    data = secret.get("data") or {}
    return creds.SourceSecret(
        name=meta.get("name", ""),
        labels=meta.get("labels") or {},
        data={key: base64.b64decode(value) for key, value in data.items()},
    )


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for metrics and tests."""

    writes: Sequence[str]
    state: str | None
    credentials_reason: str | None


class Reconciler:
    def __init__(self, cluster: Cluster, settings: OperatorSettings) -> None:
        self.cluster = cluster
        self.settings = settings

    def observe(self, namespace: str, name: str) -> Observed | None:
        parent = self.cluster.get_parent(namespace, name)
        if parent is None or parent["metadata"].get("deletionTimestamp"):
            return None  # gone or going: the garbage collector takes the children
        source_name = source_secret_name(parent)
        source = self.cluster.get_secret(namespace, source_name) if source_name else None
        return Observed(
            parent=parent,
            seldon=self.cluster.get_seldon_deployment(namespace, name),
            rclone_secret=self.cluster.get_secret(namespace, rclone_secret_name(name)),
            source_secret=decode_source_secret(source) if source is not None else None,
        )

    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        observed = self.observe(namespace, name)
        if observed is None:
            return None
        result = plan(observed, self.settings)
        observation = result.observation
        writes: list[str] = []
        created_seldon = None
        try:
            for patch in result.removals:
                if self.cluster.remove_foreign_keys(patch):
                    writes.append(f"{str(patch['kind']).lower()}:removed-foreign-keys")
            if result.secret is not None:
                self.cluster.apply(result.secret)
                writes.append("secret")
            if result.seldon is not None:
                live = self.cluster.apply(result.seldon)
                writes.append("seldondeployment")
                observation = replace(observation, seldon=live)
                if observed.seldon is None:
                    created_seldon = f"{namespace}/{name}"
        except ApplyRejected as error:
            observation = replace(observation, apply_error=str(error), seldon=observed.seldon)

        previous = managed_status(observed.parent.get("status"))
        status = derive_status(observation, previous, now_rfc3339())
        if status != previous:
            self.cluster.apply_status(observed.parent, status)
            writes.append("status")
        for event in events_for(previous, status, created_seldon=created_seldon):
            try:
                self.cluster.post_event(observed.parent, event)
            except Exception:
                # Events are best effort (as client-go's recorder): the state they announce is in the
                # status already, and failing here would retry a reconcile that has nothing left to do.
                log.warning("could not post %s Event for %s/%s", event.reason, namespace, name, exc_info=True)
            else:
                writes.append(f"event:{event.reason}")
        if writes:
            log.info("reconciled %s/%s: wrote %s", namespace, name, ", ".join(writes))
        credentials = find(status.get("conditions") or [], CREDENTIALS_READY)
        return Outcome(
            writes=writes,
            state=status.get("state"),
            credentials_reason=str(credentials["reason"])
            if credentials and credentials["status"] == "False"
            else None,
        )
