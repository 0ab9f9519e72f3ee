"""What one reconcile decides, purely: given a parent and what exists (`Snapshot`), what to write and what
was decided for the status (`Plan`), and which Events a status change calls for. No I/O: the controller
(`runtime.controller`) reads the snapshot from the informer's stores and applies the plan.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import ValidationError

from ..api.spec import ZenModelDeploymentSpec
from ..api.status import ZenModelDeploymentStatus
from . import credentials as creds
from .conditions import CREDENTIALS_READY, READY, SELDON_READY, Reason, find
from .drift import removal_patch
from .pods import PodRecord
from .render import (
    ParentRef,
    earlier_parent_uid,
    is_controlled_by,
    is_subset,
    rclone_secret_name,
    render_rclone_secret,
    render_seldon_deployment,
)
from .status import CredentialsOutcome, Observation, left_behind_message, not_owned_message
from .storage import InvalidModelURI, ModelLocation, parse_model_uri


class PlanSettings(Protocol):
    """The two settings a plan reads: whether a source Secret must opt in with a label, and the
    ingress base URL of parents that name none."""

    @property
    def require_credentials_label(self) -> bool: ...
    @property
    def ingress_base_url(self) -> str | None: ...


# The status fields the operator owns: the CRD's status schema, from the same model.
STATUS_KEYS = tuple(ZenModelDeploymentStatus.model_fields)
# False conditions that are progress, not trouble: every other new failure becomes a Warning Event.
QUIET_REASONS = frozenset({Reason.CREATING, Reason.WAITING_FOR_CREDENTIALS})


@dataclass(frozen=True)
class Snapshot:
    """What exists for one parent, as the informer's stores hold it."""

    parent: Mapping[str, Any]
    seldon: Mapping[str, Any] | None
    rclone_secret: Mapping[str, Any] | None
    source_secret: creds.SourceSecret | None
    pods: tuple[PodRecord, ...] = ()  # its model pods that fail (see `pods.summarize`)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """What to write, and what was decided on the way (the status is derived from it after the writes)."""

    spec: ZenModelDeploymentSpec | None  # None: the spec did not validate
    spec_error: str | None
    credentials: CredentialsOutcome | None
    conflict: str | None  # why a SeldonDeployment of the parent's name is not ours; None: no conflict
    secret: dict[str, Any] | None  # to apply; None: nothing to write
    seldon: dict[str, Any] | None
    # Merge patches removing what others added to our children (see `drift`); written before applying.
    removals: tuple[dict[str, Any], ...] = ()

    def found_foreign(self, kind: str, name: str) -> Plan:
        """This plan once a write found `name` held by an object that is not ours (one the stores could
        not show, say a Secret without our label): it is reported, and nothing more is written."""
        if kind == "Secret":
            return replace(
                self, credentials=secret_conflict(not_owned_message(kind, name)), secret=None, seldon=None
            )
        return replace(self, conflict=not_owned_message(kind, name), seldon=None)

    def observation(
        self,
        snapshot: Snapshot,
        settings: PlanSettings,
        *,
        seldon: Mapping[str, Any] | None,
        apply_error: str | None = None,
    ) -> Observation:
        """The one place an `Observation` is built: the plan plus how its writes went."""
        ref = ParentRef.of(snapshot.parent)
        return Observation(
            namespace=ref.namespace,
            name=ref.name,
            generation=int(snapshot.parent["metadata"].get("generation") or 0),
            spec=self.spec,
            spec_error=self.spec_error,
            credentials=self.credentials,
            seldon=seldon,
            conflict=self.conflict,
            apply_error=apply_error,
            default_base_url=settings.ingress_base_url,
        )


def format_validation_error(error: ValidationError) -> str:
    """Names each failing field; pydantic's input values are left out (they could be anything)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(p) for p in item["loc"]) or "spec"
        parts.append(f"spec.{location}: {item['msg']}")
    return "; ".join(parts)


def secret_conflict(message: str) -> CredentialsOutcome:
    return CredentialsOutcome(False, Reason.SECRET_CONFLICT, message)


def conflict_message(kind: str, name: str, live: Mapping[str, Any], ref: ParentRef) -> str:
    """Why `live`, which holds the name of one of `ref`'s children, is not ours to write, and what to do."""
    earlier_uid = earlier_parent_uid(live, ref)
    if earlier_uid is None:
        return not_owned_message(kind, name)
    return left_behind_message(kind, ref.namespace, name, earlier_uid)


def _credentials(
    snapshot: Snapshot,
    spec: ZenModelDeploymentSpec,
    location: ModelLocation,
    ref: ParentRef,
    settings: PlanSettings,
) -> tuple[CredentialsOutcome, dict[str, str] | None]:
    if not location.needs_rclone:
        return CredentialsOutcome(
            True, Reason.NOT_REQUIRED, f"{location.store.value}:// models need no credentials"
        ), None
    secret_name = rclone_secret_name(ref.name)
    existing = snapshot.rclone_secret
    if existing is not None and not is_controlled_by(existing, ref):
        return secret_conflict(conflict_message("Secret", secret_name, existing, ref)), None
    try:
        config = creds.rclone_config(
            location,
            spec.credentials,
            snapshot.source_secret,
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


def plan(snapshot: Snapshot, settings: PlanSettings) -> Plan:
    parent = snapshot.parent
    ref = ParentRef.of(parent)
    try:
        spec = ZenModelDeploymentSpec.model_validate(parent.get("spec") or {})
        location = parse_model_uri(spec.model.uri)
    except ValidationError as error:
        return Plan(None, format_validation_error(error), None, None, None, None)
    except InvalidModelURI as error:
        return Plan(None, f"spec.model.uri: {error}", None, None, None, None)

    conflict = None
    if snapshot.seldon is not None and not is_controlled_by(snapshot.seldon, ref):
        conflict = conflict_message("SeldonDeployment", ref.name, snapshot.seldon, ref)
    outcome, config = _credentials(snapshot, spec, location, ref, settings)
    if conflict is not None or not outcome.ok:
        return Plan(spec, None, outcome, conflict, None, None)

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
        snapshot.rclone_secret is not None and is_subset(desired_secret, snapshot.rclone_secret)
    ):
        secret_write = desired_secret
    seldon_write = None
    if not (snapshot.seldon is not None and is_subset(desired_seldon, snapshot.seldon)):
        seldon_write = desired_seldon
    live_children = ((desired_secret, snapshot.rclone_secret), (desired_seldon, snapshot.seldon))
    removals = tuple(
        patch
        for desired, live in live_children
        if desired is not None and live is not None and (patch := removal_patch(desired, live)) is not None
    )
    return Plan(spec, None, outcome, None, secret_write, seldon_write, removals)


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


def source_secret_name(parent: Mapping[str, Any]) -> str | None:
    """The referenced credentials Secret, read without validating the rest of the spec."""
    ref = ((parent.get("spec") or {}).get("credentials") or {}).get("secretRef") or {}
    name = ref.get("name")
    return name if isinstance(name, str) and name else None


def decode_source_secret(secret: Mapping[str, Any]) -> creds.SourceSecret:
    meta = secret.get("metadata") or {}
    data = secret.get("data") or {}
    return creds.SourceSecret(
        name=meta.get("name", ""),
        labels=meta.get("labels") or {},
        data={key: base64.b64decode(value) for key, value in data.items()},
    )
