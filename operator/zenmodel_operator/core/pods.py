"""Why Seldon's model pods never become ready: pure decisions over what the pod watch keeps of them.

Seldon Core v1 leaves a SeldonDeployment Creating for as long as its pods fail, say when the storage
initializer cannot fetch the model or the model server cannot load it. The pod watch keeps, of each pod
Seldon makes (`summarize`), only its failing containers; `pod_problem` picks one problem per parent, and
`describe` words it for the status, with the last line of the failed container's output when there is one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import seldon
from .conditions import Reason
from .redaction import Redaction

# Waiting reasons of a container that cannot start (the kubelet's own words); a container waiting on any
# other reason (ContainerCreating, PodInitializing, ...) is on its way.
CANNOT_START = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "InvalidImageName",
        "CreateContainerError",
        "RunContainerError",
    }
)
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
MESSAGE_LIMIT = 300  # characters of a kubelet message or output line kept, and shown
# What the output request asks of the kubelet: enough lines to reach back past a shutdown's lines to the
# error (MLServer logs a failed load, a traceback, then about 40 lines of orderly shutdown), and a bound
# on the bytes, which a process that writes one endless line would otherwise make large.
OUTPUT_TAIL_LINES = 60
OUTPUT_LIMIT_BYTES = 16384
# A line that says something went wrong, as rclone ("Failed to copy: ...", "ERROR : ..."), Python
# ("ValueError: ...") and Go programs write one.
_SAYS_WHAT_WENT_WRONG = re.compile(r"error|exception|fail|fatal|panic|couldn't|cannot|can't|denied", re.I)


@dataclass(frozen=True, slots=True)
class ContainerFailure:
    """One container of a pod that exited with an error or cannot start."""

    name: str
    init: bool
    exited: bool  # it ran and exited non-zero (else it cannot start: `reason` says why)
    reason: str  # the kubelet's: Error, OOMKilled, ErrImagePull, ...
    message: str  # the kubelet's (bounded): a termination message, or why it cannot start
    exit_code: int | None
    run: str  # which run of the container failed: its containerID, else its restart count
    previous: bool  # that run is not the current one (a new one runs): its output is `previous=true`


@dataclass(frozen=True, slots=True)
class PodRecord:
    """What the pod watch keeps of a pod with failing containers: the rest of the pod decides nothing."""

    namespace: str
    name: str
    uid: str
    parent: str  # its seldon-deployment-id label: the SeldonDeployment's name, so the parent's
    created: str  # creationTimestamp (RFC 3339, so it sorts as it reads)
    failures: tuple[ContainerFailure, ...]  # init containers first, each group in the pod's order


@dataclass(frozen=True)
class PodProblem:
    """The one failure the parent's status reports, and why."""

    reason: Reason
    pod: PodRecord
    failure: ContainerFailure

    @property
    def run_key(self) -> tuple[str, str, str]:
        """The failed run, whose output is read at most once: pod uid, container, run."""
        return self.pod.uid, self.failure.name, self.failure.run


@dataclass(frozen=True)
class PodReport:
    """A pod problem as the status words it."""

    reason: Reason
    message: str


def _exit_code(terminated: Mapping[str, Any]) -> int:
    code = terminated.get("exitCode")
    return code if isinstance(code, int) else 0


def _bounded(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _run(status: Mapping[str, Any], terminated: Mapping[str, Any]) -> str:
    return str(terminated.get("containerID") or f"restart {status.get('restartCount') or 0}")


def _failure(status: Mapping[str, Any], init: bool, held: ContainerFailure | None) -> ContainerFailure | None:
    """The container's failure, if it is failing: exited (now, or in its last run while it is not ready
    again: in CrashLoopBackOff, or running again) non-zero, or at all for a server, which should not exit
    (MLServer exits 0 when its model fails to load); or waiting on a reason that says it cannot start."""
    name = str(status.get("name") or "")
    state = status.get("state") or {}
    terminated = state.get("terminated") or {}
    waiting = state.get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}

    def failed(exited: Mapping[str, Any]) -> bool:
        return bool(exited) and (not init or _exit_code(exited) != 0)

    if failed(terminated):
        exited, previous = terminated, False
    elif waiting.get("reason") in CANNOT_START:
        reason = str(waiting["reason"])
        # The kubelet alternates ErrImagePull (with the registry's answer) and ImagePullBackOff (without):
        # the answer is kept, so the alternation changes nothing.
        if reason == IMAGE_PULL_BACK_OFF and held is not None and held.reason == ERR_IMAGE_PULL:
            return held
        message = _bounded(str(waiting.get("message") or ""))
        return ContainerFailure(name, init, False, reason, message, None, "", False)
    elif failed(last) and not terminated and not status.get("ready"):
        exited, previous = last, "running" in state
    else:
        return None
    return ContainerFailure(
        name,
        init,
        True,
        str(exited.get("reason") or ""),
        _bounded(str(exited.get("message") or "")),
        _exit_code(exited),
        _run(status, exited),
        previous,
    )


def summarize(pod: Mapping[str, Any], held: PodRecord | None = None) -> PodRecord | None:
    """What to keep of a pod Seldon made: its failing containers; None if it has none, is being deleted,
    or is not Seldon's. `held`, what was kept of the same pod before, carries an image pull's answer."""
    meta = pod.get("metadata") or {}
    parent = (meta.get("labels") or {}).get(seldon.DEPLOYMENT_ID_LABEL)
    if not parent or meta.get("deletionTimestamp"):
        return None
    uid = str(meta.get("uid") or "")
    held_failures = (
        {(f.init, f.name): f for f in held.failures} if held is not None and held.uid == uid else {}
    )
    status = pod.get("status") or {}
    failures = tuple(
        failure
        for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses"))
        for container in status.get(key) or []
        if (failure := _failure(container, init, held_failures.get((init, str(container.get("name"))))))
        is not None
    )
    if not failures:
        return None
    return PodRecord(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=uid,
        parent=str(parent),
        created=str(meta.get("creationTimestamp") or ""),
        failures=failures,
    )


def _reason(failure: ContainerFailure, model_name: str) -> Reason:
    if failure.init and failure.exited and failure.name == seldon.storage_initializer_name(model_name):
        return Reason.MODEL_FETCH_FAILED
    if not failure.init and failure.name == model_name:
        return Reason.MODEL_LOAD_FAILED
    return Reason.SERVING_CONTAINER_FAILED


def pod_problem(pods: Iterable[PodRecord], model_name: str) -> PodProblem | None:
    """The problem to report among a parent's failing pods: the newest pod's first failure (init containers
    run, and fail, before the others). `model_name` names the model server's container."""
    for pod in sorted(pods, key=lambda p: (p.created, p.name), reverse=True):
        if pod.failures:
            failure = pod.failures[0]
            return PodProblem(_reason(failure, model_name), pod, failure)
    return None


# Terminal escape sequences (colours, cursor moves); then every other control, format (bidirectional
# overrides included), private or unassigned character, and every separator, becomes a plain space.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
# A leading timestamp, as rclone (2024/05/01 10:00:00), Python's logging and Go's write them: left in, it
# would make every run's line differ, and so cost a status write per restart.
_TIMESTAMP = re.compile(
    r"^\[?\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?[\s:-]*"
)


def _visible(line: str) -> str:
    line = _ESCAPE_SEQUENCE.sub("", line)
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in line)
    return " ".join(kept.split())


def last_line(output: bytes) -> str:
    """The line of a container's output that tells a person most: the last one that says what went wrong,
    else the last one with something visible in it; without terminal escapes or control characters; ""
    if there is none. `output` is what the kubelet answered to an output request bounded by
    OUTPUT_LIMIT_BYTES: at that size its last line may be cut, and is left out. Neither redacted nor
    bounded yet: `describe` does both, in that order, so no cut can leave part of a secret."""
    text = output.decode("utf-8", errors="replace")
    if len(output) >= OUTPUT_LIMIT_BYTES:
        text = text.rpartition("\n")[0]
    lines = [visible for line in reversed(text.splitlines()) if (visible := _visible(line))]
    return next((line for line in lines if _SAYS_WHAT_WENT_WRONG.search(line)), lines[0] if lines else "")


def _detail(failure: ContainerFailure, output_line: str | None) -> str:
    if not failure.exited:
        return f"{failure.reason}: {failure.message}" if failure.message else failure.reason
    said = output_line or failure.message or f"exit code {failure.exit_code}"
    # "Error" and "Completed" are the kubelet's words for any non-zero exit and for exit 0; another
    # (OOMKilled, StartError) says more.
    return f"{failure.reason}: {said}" if failure.reason not in ("", "Error", "Completed") else said


def describe(problem: PodProblem, output_line: str | None, redaction: Redaction) -> PodReport:
    """The status's words for `problem`: the container, the pod, what failed, and the detail: the last line
    of the failed run's output (`last_line`; None or "" when it could not be read), else the kubelet's
    reason and message, else the exit code. Every credential value in the detail is redacted before it
    is bounded."""
    failure = problem.failure
    what = {
        Reason.MODEL_FETCH_FAILED: "cannot fetch the model",
        Reason.MODEL_LOAD_FAILED: "cannot load the model" if failure.exited else "cannot start",
    }.get(problem.reason, "failed" if failure.exited else "cannot start")
    container = f"{'init container' if failure.init else 'container'} {failure.name}"
    line = _TIMESTAMP.sub("", redaction.apply(output_line)) if output_line else None
    # Redacted before and after the invisible characters go (they could split a value), then bounded.
    detail = _bounded(redaction.apply(_visible(redaction.apply(_detail(failure, line)))))
    return PodReport(problem.reason, f"{container} of pod {problem.pod.name} {what}: {detail}")
