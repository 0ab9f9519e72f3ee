"""The one level-based reconcile: given a parent and what exists, converge.

Create, update, resume, child events, credential events and drift all come here with just a key. `plan`
is pure (what to write, and what was decided for the status); `Reconciler` takes a `Snapshot` of what
exists (from the informer's stores: no GETs), applies the plan and writes only what differs, so a
converged object costs no API call at all.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from . import credentials as creds
from .conditions import CREDENTIALS_READY, READY, SELDON_READY, Reason, find
from .drift import removal_patch
from .informer import source_secret_name
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

log = logging.getLogger(__name__)

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
    conflict: bool  # a SeldonDeployment of the parent's name that we do not own
    secret: dict[str, Any] | None  # to apply; None: nothing to write
    seldon: dict[str, Any] | None
    # Merge patches removing what others added to our children (see `drift`); written before applying.
    removals: tuple[dict[str, Any], ...] = ()

    def found_foreign(self, kind: str, name: str) -> Plan:
        """This plan once a write found `name` held by an object that is not ours (one the stores could
        not show, say a Secret without our label): it is reported, and nothing more is written."""
        if kind == "Secret":
            return replace(self, credentials=secret_conflict(name), secret=None, seldon=None)
        return replace(self, conflict=True, seldon=None)

    def observation(
        self,
        snapshot: Snapshot,
        settings: OperatorSettings,
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


def secret_conflict(name: str) -> CredentialsOutcome:
    return CredentialsOutcome(False, Reason.SECRET_CONFLICT, not_owned_message("Secret", name))


def _credentials(
    snapshot: Snapshot,
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
    existing = snapshot.rclone_secret
    if existing is not None and not is_controlled_by(existing, ref):
        return secret_conflict(secret_name), None
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


def plan(snapshot: Snapshot, settings: OperatorSettings) -> Plan:
    parent = snapshot.parent
    ref = ParentRef.of(parent)
    try:
        spec = ZenModelDeploymentSpec.model_validate(parent.get("spec") or {})
        location = parse_model_uri(spec.model.uri)
    except ValidationError as error:
        return Plan(None, format_validation_error(error), None, False, None, None)
    except InvalidModelURI as error:
        return Plan(None, f"spec.model.uri: {error}", None, False, None, None)

    conflict = snapshot.seldon is not None and not is_controlled_by(snapshot.seldon, ref)
    outcome, config = _credentials(snapshot, spec, location, ref, settings)
    if conflict or not outcome.ok:
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
    return Plan(spec, None, outcome, False, secret_write, seldon_write, removals)


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


class AlreadyExists(Exception):
    """A create found an object of that name already there (HTTP 409)."""


class Cluster(Protocol):
    """What the reconcile needs of the Kubernetes API (see `kube.InformedCluster`): reads from memory,
    writes that answer with the object as written."""

    def get_parent(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_seldon_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    async def create(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Creates `obj`; raises `AlreadyExists` (and writes nothing) if its name is taken."""
        ...

    async def read_metadata(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The metadata alone (never a Secret's data) of the live object named like `obj`; None if none."""
        ...

    async def apply(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Server-side apply; `obj`'s metadata.uid, when set, makes it fail (409) on any other object."""
        ...

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> bool: ...
    async def apply_status(
        self, parent: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Mapping[str, Any]: ...
    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None: ...


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def decode_source_secret(secret: Mapping[str, Any]) -> creds.SourceSecret:
    meta = secret.get("metadata") or {}
    data = secret.get("data") or {}
    return creds.SourceSecret(
        name=meta.get("name", ""),
        labels=meta.get("labels") or {},
        data={key: base64.b64decode(value) for key, value in data.items()},
    )


class WriteKind(StrEnum):
    SECRET = "secret"  # noqa: S105 (a kind of write, not a password)
    FOREIGN_KEYS_REMOVED = "foreign-keys-removed"  # what others added to a child (drift)
    SELDON_DEPLOYMENT = "seldondeployment"
    STATUS = "status"
    EVENT = "event"


@dataclass(frozen=True)
class Write:
    kind: WriteKind
    event_reason: str | None = None  # for an Event: its reason

    def __str__(self) -> str:
        return f"{self.kind} {self.event_reason}" if self.event_reason else str(self.kind)


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for metrics and tests."""

    writes: tuple[Write, ...]
    state: str | None
    credentials_reason: str | None  # why the credentials are unusable; None when they are fine
    # A write found a child's name held by an object no watch may report to us: look again later, as
    # nothing else will say when its owner deletes or renames it.
    recheck: bool = False

    def wrote(self, kind: WriteKind) -> bool:
        return any(write.kind is kind for write in self.writes)


def held_by(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` to apply onto exactly the object `live` (its uid a precondition): should the name have
    passed to another object since it was read, the apiserver refuses the write rather than merge into it."""
    return {**desired, "metadata": {**desired["metadata"], "uid": live["metadata"]["uid"]}}


class Reconciler:
    def __init__(self, cluster: Cluster, settings: OperatorSettings) -> None:
        self.cluster = cluster
        self.settings = settings

    async def write_child(
        self, desired: Mapping[str, Any], live: Mapping[str, Any] | None, parent: ParentRef
    ) -> Mapping[str, Any] | None:
        """Writes one child: created if the stores hold none, else applied onto the one they hold (which
        `plan` checked is ours). Returns it as written, or None if its name is held by an object that is
        not ours: that object is left exactly as it is.

        A create fails on any existing object, so nothing we did not create is ever written, labelled or
        owned, even one our label-selected watches cannot show; the normal path costs no extra request."""
        if live is None:
            try:
                return await self.cluster.create(desired)
            except AlreadyExists:
                # Ours but unseen (the answer to our create was lost, or someone removed the label our
                # Secret watch selects on), or someone else's: its ownerReferences tell.
                live = await self.cluster.read_metadata(desired)
                if live is None:
                    raise RuntimeError(  # noqa: B904 (a race, not a consequence of AlreadyExists)
                        f"{desired['kind']} {desired['metadata']['name']} was deleted as it was created"
                    )
                if not is_controlled_by(live, parent):
                    return None
        return await self.cluster.apply(held_by(desired, live))

    def snapshot(self, namespace: str, name: str) -> Snapshot | None:
        parent = self.cluster.get_parent(namespace, name)
        if parent is None or parent["metadata"].get("deletionTimestamp"):
            return None  # gone or going: the garbage collector takes the children
        source_name = source_secret_name(parent)
        source = self.cluster.get_secret(namespace, source_name) if source_name else None
        return Snapshot(
            parent=parent,
            seldon=self.cluster.get_seldon_deployment(namespace, name),
            rclone_secret=self.cluster.get_secret(namespace, rclone_secret_name(name)),
            source_secret=decode_source_secret(source) if source is not None else None,
        )

    async def reconcile(self, namespace: str, name: str) -> Outcome | None:
        snapshot = self.snapshot(namespace, name)
        if snapshot is None:
            return None
        decided = plan(snapshot, self.settings)
        ref = ParentRef.of(snapshot.parent)
        writes: list[Write] = []
        seldon = snapshot.seldon
        apply_error = None
        recheck = False
        try:
            for patch in decided.removals:
                if await self.cluster.remove_foreign_keys(patch):
                    writes.append(Write(WriteKind.FOREIGN_KEYS_REMOVED))
            for desired, live, kind in (
                (decided.secret, snapshot.rclone_secret, WriteKind.SECRET),
                (decided.seldon, snapshot.seldon, WriteKind.SELDON_DEPLOYMENT),
            ):
                if desired is None:
                    continue
                written = await self.write_child(desired, live, ref)
                if written is None:
                    decided = decided.found_foreign(desired["kind"], desired["metadata"]["name"])
                    recheck = True
                    break
                writes.append(Write(kind))
                if kind is WriteKind.SELDON_DEPLOYMENT:
                    seldon = written
        except ApplyRejected as error:
            apply_error = str(error)
        observation = decided.observation(snapshot, self.settings, seldon=seldon, apply_error=apply_error)

        previous = managed_status(snapshot.parent.get("status"))
        status = derive_status(observation, previous, now_rfc3339())
        if status != previous:
            await self.cluster.apply_status(snapshot.parent, status)
            writes.append(Write(WriteKind.STATUS))
        created = f"{namespace}/{name}" if snapshot.seldon is None and seldon is not None else None
        for event in events_for(previous, status, created_seldon=created):
            try:
                await self.cluster.post_event(snapshot.parent, event)
            except Exception:
                # Events are best effort (as client-go's recorder): the state they announce is in the
                # status already, and failing here would retry a reconcile that has nothing left to do.
                log.warning("could not post %s Event for %s/%s", event.reason, namespace, name, exc_info=True)
            else:
                writes.append(Write(WriteKind.EVENT, event.reason))
        if writes:
            log.info("reconciled %s/%s: wrote %s", namespace, name, ", ".join(map(str, writes)))
        credentials = decided.credentials
        return Outcome(
            writes=tuple(writes),
            state=status.get("state"),
            credentials_reason=str(credentials.reason) if credentials and not credentials.ok else None,
            recheck=recheck,
        )
