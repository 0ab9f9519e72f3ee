"""Leader election over a coordination.k8s.io/v1 Lease, with client-go's semantics, and the fence every write passes.

One process holds the Lease and reconciles; the others (standbys) keep their watches and caches warm and
wait. The decisions are pure functions of the Lease as last read, our identity and our own monotonic clock:

- a candidate takes the Lease when it is free, or when its record has not changed for leaseDurationSeconds
  *by the candidate's clock, since the candidate saw it change*: renewTime is never compared with the local
  wall clock, so clock skew between nodes cannot make two leaders;
- the leader renews every retry period; once renewing has failed for the renew deadline (shorter than the
  lease duration) it stops writing and exits, before any candidate may take the Lease over;
- every write first passes `Elector.writing`, which measures from the start of the last successful renew by
  the same clock: CLOCK_BOOTTIME, which runs on while the process is stopped and while its machine is
  suspended, so a leader frozen past the deadline (SIGSTOP, a long GC pause, a suspended VM) fails the
  check on resuming, before its pending work can write.

Writes are guarded by the clock, not by a token the apiserver checks: a write that passed the fence just
before the deadline can still land after it, and the lease duration's margin over the renew deadline is
what keeps it inside the leader's tenure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from . import metrics
from .clock import micro_time
from .transport import ApiError, Transport

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
# EX_TEMPFAIL: the process exits so that its pod restarts as a standby.
EXIT_LEASE_LOST = 75


class LeaseTiming(Protocol):
    """What the election reads of its settings (`settings.LeaderElectionSettings`), in seconds."""

    @property
    def enabled(self) -> bool: ...
    @property
    def namespace(self) -> str: ...
    @property
    def lease_id(self) -> str: ...
    @property
    def lease_duration(self) -> float: ...
    @property
    def renew_deadline(self) -> float: ...
    @property
    def retry_period(self) -> float: ...


class LeaseLost(Exception):
    """A write was refused: this process does not hold a Lease renewed within the renew deadline."""


# ------------------------------------------------------------------------------------------ pure decisions


@dataclass(frozen=True)
class LeaseRecord:
    """The leader-election fields of a Lease's spec."""

    holder: str  # "" when nobody holds it (released)
    lease_duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Sighting:
    """A Lease record and when, by our monotonic clock, we first saw it as it is."""

    record: LeaseRecord
    seen_at: float


class Move(Enum):
    CREATE = "create"  # no Lease yet
    TAKE = "take"  # free, or its holder has been silent for the lease duration
    RENEW = "renew"  # ours
    WAIT = "wait"  # someone else's, and alive


def sight(previous: Sighting | None, record: LeaseRecord, now: float) -> Sighting:
    """Expiry counts from when the record last changed as we saw it, never from the times written in it."""
    if previous is not None and previous.record == record:
        return previous
    return Sighting(record, now)


def expires_at(sighting: Sighting) -> float:
    return sighting.seen_at + sighting.record.lease_duration_seconds


def decide(sighting: Sighting | None, identity: str, now: float) -> Move:
    if sighting is None:
        return Move.CREATE
    holder = sighting.record.holder
    if holder == identity:
        return Move.RENEW
    if not holder or now >= expires_at(sighting):
        return Move.TAKE
    return Move.WAIT


def claim(current: LeaseRecord | None, identity: str, lease_duration: float, now: str) -> LeaseRecord:
    """The record to write to take or renew the Lease: a change of holder counts one transition."""
    seconds = math.ceil(lease_duration)  # the API's field is whole seconds: round towards waiting longer
    if current is not None and current.holder == identity:
        return replace(current, lease_duration_seconds=seconds, renew_time=now)
    return LeaseRecord(
        holder=identity,
        lease_duration_seconds=seconds,
        acquire_time=now,
        renew_time=now,
        transitions=current.transitions + 1 if current is not None else 0,
    )


def released(current: LeaseRecord, now: str) -> LeaseRecord:
    """What a leader that stops cleanly writes (as client-go's ReleaseOnCancel): free, so a standby takes
    over at its next try instead of after the lease duration."""
    return replace(current, holder="", lease_duration_seconds=1, acquire_time=now, renew_time=now)


def wait_before_trying(sighting: Sighting | None, identity: str, now: float, retry_period: float) -> float:
    """A candidate tries every retry period, or sooner when the holder's lease runs out sooner."""
    if sighting is not None and decide(sighting, identity, now) is Move.WAIT:
        return max(0.0, min(retry_period, expires_at(sighting) - now))
    return retry_period


def still_leading(renewed_at: float | None, now: float, renew_deadline: float) -> bool:
    """The fence: the Lease was renewed (counting from the start of that renew) within the deadline."""
    return renewed_at is not None and now - renewed_at < renew_deadline


def new_identity() -> str:
    """Unique per process, as client-go's callers make it: the pod's name (its hostname) and a UUID.

    This process's one identity: the Lease's holder, and kopf's own, given to it explicitly because
    kopf's default asks the password database for the user's name, which fails for a numeric user without
    a passwd entry (the chart's UID 65532 in an image that has none)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


# ----------------------------------------------------------------------------------------------- the API


class LeaseApi:
    """The Lease through the operator's own client; these requests are the only writes the fence allows."""

    def __init__(self, cluster: Transport, namespace: str, name: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/{LEASE_API_VERSION}/namespaces/{namespace}/leases"

    async def get(self) -> dict[str, Any] | None:
        """The Lease; None if nobody has created it yet."""
        try:
            return await self.cluster.request("GET", f"{self._collection}/{self.name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def create(self, record: LeaseRecord) -> dict[str, Any]:
        body = {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec(),
        }
        return await self.cluster.request("POST", self._collection, body=body)

    async def update(self, record: LeaseRecord, resource_version: str) -> dict[str, Any]:
        """Optimistic concurrency: the apiserver refuses (409) if anyone wrote since `resource_version`."""
        body = {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": resource_version},
            "spec": record.spec(),
        }
        return await self.cluster.request("PUT", f"{self._collection}/{self.name}", body=body)


# ----------------------------------------------------------------------------------------------- elector


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def elapsed_clock() -> float:
    """Seconds on a clock that never stops: CLOCK_BOOTTIME (Linux) counts suspends, CLOCK_MONOTONIC does not."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


def exit_lease_lost() -> None:
    """Stops everything at once, as client-go's callers do (klog.Fatal): no worker may write after this."""
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_LEASE_LOST)


class Elector:
    def __init__(
        self,
        leases: LeaseApi,
        settings: LeaseTiming,
        *,
        identity: str | None = None,
        clock: Callable[[], float] = elapsed_clock,
        on_lost: Callable[[], None] = exit_lease_lost,
    ) -> None:
        self.leases = leases
        self.settings = settings
        self.identity = identity or new_identity()
        self._clock = clock
        self._on_lost = on_lost
        self._renewed_at: float | None = None
        self._sighting: Sighting | None = None
        self._resource_version: str | None = None
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        metrics.LEADER.set(0)

    @property
    def name(self) -> str:
        return f"{self.leases.namespace}/{self.leases.name}"

    @property
    def holder(self) -> str | None:
        """Who holds the Lease, as last read."""
        return self._sighting.record.holder if self._sighting is not None else None

    def leading(self) -> bool:
        return still_leading(self._renewed_at, self._clock(), self.settings.renew_deadline)

    def check(self) -> None:
        if not self.leading():
            raise LeaseLost(f"not the leader of Lease {self.name} (or not renewed in time): write refused")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The fence around every write (KubeCluster enters it around the awaited request). It refuses
        unless we lead, and counts the write while it is on its way, so that a clean stop releases the
        Lease only after it."""
        self.check()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    def _close_fence(self) -> None:
        self._renewed_at = None
        metrics.LEADER.set(0)

    def start(self, on_leading: Callable[[], None]) -> None:
        self._task = asyncio.create_task(self.run(on_leading), name="leader-election")

    async def stop(self) -> None:
        """Stops electing; a leader closes its fence first, then releases the Lease for a quick handover."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._renewed_at is None or self._resource_version is None or self._sighting is None:
            return
        self._close_fence()
        # A write already past the fence must land before a standby may take over.
        deadline = self._clock() + self.settings.renew_deadline
        while self._in_flight and self._clock() < deadline:
            await asyncio.sleep(0.05)
        if self._in_flight:
            log.warning("writes still on their way: Lease %s is left to expire, not released", self.name)
            return
        record = released(self._sighting.record, micro_time(datetime.now(UTC)))
        try:
            await self.leases.update(record, self._resource_version)
        except Exception:
            log.warning("could not release Lease %s; standbys take over once it expires", self.name)
        else:
            log.info("released Lease %s", self.name)

    async def run(self, on_leading: Callable[[], None]) -> None:
        log.info("standing for the leadership of Lease %s as %s", self.name, self.identity)
        try:
            await self._acquire()
            metrics.LEADER.set(1)
            log.info("became the leader of Lease %s as %s", self.name, self.identity)
            on_leading()
            await self._renew()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("leader election failed")
        self._close_fence()  # before anything else happens
        log.info(
            "lost the leadership of Lease %s (not renewed within %gs, or taken over); exiting",
            self.name,
            self.settings.renew_deadline,
        )
        self._on_lost()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's tryAcquireOrRenew: True if we hold the Lease now."""
        started = self._clock()
        lease = await self.leases.get()
        if lease is None:
            move = Move.CREATE
        else:
            previous_holder = self.holder
            # Seen once read (as client-go does): the holder may have renewed while our read was on its way.
            self._sighting = sight(self._sighting, LeaseRecord.of(lease), self._clock())
            if self.holder != previous_holder and self.holder != self.identity:
                log.info("Lease %s is held by %r", self.name, self.holder or None)
            move = decide(self._sighting, self.identity, self._clock())
        if move is Move.WAIT:
            return False
        current = self._sighting.record if self._sighting is not None and lease is not None else None
        record = claim(current, self.identity, self.settings.lease_duration, micro_time(datetime.now(UTC)))
        try:
            if move is Move.CREATE:
                written = await self.leases.create(record)
            else:
                assert lease is not None
                version = lease["metadata"]["resourceVersion"]
                written = await self.leases.update(record, version)
        except ApiError as error:
            if error.status == 409:  # someone else wrote first: read again next time
                return False
            raise
        # Counted from before the read: a standby sees this record only after we wrote it.
        self._renewed_at = started
        self._sighting = Sighting(record, self._clock())
        self._resource_version = written["metadata"]["resourceVersion"]
        return True

    async def _acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except Exception as error:
                log.warning("could not read or take Lease %s: %s", self.name, error)
            delay = wait_before_trying(
                self._sighting, self.identity, self._clock(), self.settings.retry_period
            )
            await asyncio.sleep(delay)

    async def _renew(self) -> None:
        """Renews every retry period; returns once the renew deadline passed or someone else holds it."""
        while True:
            await asyncio.sleep(self.settings.retry_period)
            if not self.leading():
                return
            assert self._renewed_at is not None
            time_left = self._renewed_at + self.settings.renew_deadline - self._clock()
            try:
                renewed = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=time_left)
            except TimeoutError:
                continue  # the deadline has passed: the check above ends it
            except Exception as error:
                log.warning("could not renew Lease %s: %s", self.name, error)
                continue
            if not renewed and self.holder != self.identity:
                return


def elector_for(settings: LeaseTiming, cluster: Transport, identity: str) -> Elector | None:
    """The elector when leader election is on; None when this process is the only replica."""
    if not settings.enabled:
        metrics.LEADER.set(1)
        return None
    return Elector(LeaseApi(cluster, settings.namespace, settings.lease_id), settings, identity=identity)
