"""The one level-based reconcile: given a parent's key, converge.

Create, update, resume, child events, credential events and drift all come here with just a key. The
controller takes a `Snapshot` of what exists (from the informer's stores: no GETs), asks the pure
`core.plan` what to write, and writes only what differs, so a converged object costs no API call at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from ..core.plan import (
    Event,
    PlanSettings,
    Snapshot,
    decode_source_secret,
    events_for,
    managed_status,
    plan,
    source_secret_name,
)
from ..core.pods import PodProblem, PodRecord, describe, pod_problem
from ..core.redaction import credential_redaction
from ..core.render import ParentRef, is_controlled_by, rclone_secret_name
from ..core.status import Observation, awaits_rollout, derive_status
from .clock import now_rfc3339
from .leader import LeaseLost
from .transport import ApplyRejected
from .writes import AlreadyExists, Stale

log = logging.getLogger(__name__)


class Cluster(Protocol):
    """What the reconcile needs of the Kubernetes API (see `informed.InformedCluster`): reads from memory,
    writes that answer with the object as written."""

    def get_parent(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_seldon_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    def get_failing_pods(self, namespace: str, parent: str) -> tuple[PodRecord, ...]: ...
    async def last_output_line(self, problem: PodProblem) -> str:
        """The last line of the output of the problem's failed run, read once per run; "" if none."""
        ...

    async def create(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Creates `obj`; raises `AlreadyExists` (and writes nothing) if its name is taken."""
        ...

    async def read_metadata(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The metadata alone (never a Secret's data) of the live object named like `obj`; None if none."""
        ...

    async def apply(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Server-side apply; `obj`'s metadata.uid and resourceVersion, when set, make it fail (`Stale`)
        on any other object or version."""
        ...

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """A `drift.removal_patch`, conditional on its resourceVersion: the object as written, or None if
        it changed since it was read."""
        ...

    async def apply_status(
        self, parent: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Mapping[str, Any]: ...
    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None: ...


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
    """`desired` to apply onto exactly the object `live`, as it was read (its uid and resourceVersion
    preconditions): should the name have passed to another object, or the object have changed (say,
    another leader wrote it), since it was read, the apiserver refuses the write rather than merge it."""
    meta = live["metadata"]
    return {
        **desired,
        "metadata": {**desired["metadata"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
    }


class Reconciler:
    def __init__(self, cluster: Cluster, settings: PlanSettings) -> None:
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
            pods=self.cluster.get_failing_pods(namespace, name),
        )

    async def explain_rollout(self, snapshot: Snapshot, observation: Observation) -> Observation:
        """While Seldon rolls the model out, what keeps its pods from becoming ready, if anything does: the
        failed run's last output line is read only then, and once per run."""
        if not snapshot.pods or observation.spec is None or not awaits_rollout(observation):
            return observation
        problem = pod_problem(snapshot.pods, observation.spec.model.name)
        if problem is None:
            return observation
        line = await self.cluster.last_output_line(problem) if problem.failure.exited else None
        redaction = credential_redaction(
            snapshot.parent.get("spec") or {}, snapshot.source_secret, snapshot.rclone_secret
        )
        return replace(observation, pod_problem=describe(problem, line, redaction))

    async def reconcile(self, namespace: str, name: str) -> Outcome | None:
        snapshot = self.snapshot(namespace, name)
        if snapshot is None:
            return None
        writes: list[Write] = []
        try:
            return await self._converge(snapshot, writes)
        except Stale as refused:
            # Not a failure: the object changed since the state this reconcile planned from, and its watch
            # event brings the newer state and this parent back (the recheck only guards against missing
            # it). Nothing after the refused write was written: no status or Event from a stale plan.
            log.debug("%s/%s changed as it was reconciled: %s", namespace, name, refused)
            return Outcome(tuple(writes), state=None, credentials_reason=None, recheck=True)

    async def _converge(self, snapshot: Snapshot, writes: list[Write]) -> Outcome:
        """Writes what `plan` decided, each write appended to `writes` as it lands."""
        namespace, name = snapshot.parent["metadata"]["namespace"], snapshot.parent["metadata"]["name"]
        decided = plan(snapshot, self.settings)
        ref = ParentRef.of(snapshot.parent)
        seldon = snapshot.seldon
        apply_error = None
        recheck = False
        # Each child as last read or written: what the next write's preconditions name.
        live_children = {"Secret": snapshot.rclone_secret, "SeldonDeployment": snapshot.seldon}
        try:
            for patch in decided.removals:
                removed = await self.cluster.remove_foreign_keys(patch)
                if removed is not None:
                    live_children[patch["kind"]] = removed
                    writes.append(Write(WriteKind.FOREIGN_KEYS_REMOVED))
            for desired, kind in (
                (decided.secret, WriteKind.SECRET),
                (decided.seldon, WriteKind.SELDON_DEPLOYMENT),
            ):
                if desired is None:
                    continue
                written = await self.write_child(desired, live_children[desired["kind"]], ref)
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
        observation = await self.explain_rollout(snapshot, observation)

        previous = managed_status(snapshot.parent.get("status"))
        status = derive_status(observation, previous, now_rfc3339())
        if status != previous:
            await self.cluster.apply_status(snapshot.parent, status)
            writes.append(Write(WriteKind.STATUS))
        created = f"{namespace}/{name}" if snapshot.seldon is None and seldon is not None else None
        for event in events_for(previous, status, created_seldon=created):
            try:
                await self.cluster.post_event(snapshot.parent, event)
            except LeaseLost:
                raise  # not this Event's failure: the process stops writing altogether
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
