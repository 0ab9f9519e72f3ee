"""A failed run's output, read through the API: what is asked of the kubelet, once per run, and what is left
when it cannot be read (no kubelet answers, no permission): a DEBUG line and no output, never an error."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from zenmodel_operator.core.pods import OUTPUT_LIMIT_BYTES, OUTPUT_TAIL_LINES, PodProblem, pod_problem
from zenmodel_operator.runtime.informed import InformedCluster
from zenmodel_operator.runtime.informer import Informer
from zenmodel_operator.runtime.transport import ApiError
from zenmodel_operator.runtime.writes import KubeCluster

Answer = bytes | BaseException


class ScriptedOutput(KubeCluster):
    """Answers each output request with the next of `answers`, and records what was asked."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, str], float]] = []

    async def read_bytes(self, path: str, query: list[tuple[str, str]], *, timeout: float) -> bytes:
        self.asked.append((path, dict(query), timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def failing_pod(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": "iris-model-initializer",
        "state": state,
        "ready": False,
        "restartCount": 2,
    }
    if last is not None:
        status["lastState"] = {"terminated": last}
    return {
        "metadata": {
            "name": "iris-default-0-iris-abc",
            "namespace": "models",
            "uid": "u1",
            "labels": {"seldon-deployment-id": "iris"},
        },
        "status": {"initContainerStatuses": [status]},
    }


EXITED = {"terminated": {"exitCode": 1, "containerID": "containerd://a"}}


def read_twice(kube: ScriptedOutput, pod: dict[str, Any]) -> tuple[str, str]:
    informer = Informer()
    informer.pods.put(pod)
    problem: PodProblem | None = pod_problem(informer.pods.of_parent("models", "iris"), "iris")
    assert problem is not None
    cluster = InformedCluster(informer, kube)

    async def twice() -> tuple[str, str]:
        return await cluster.last_output_line(problem), await cluster.last_output_line(problem)

    return asyncio.run(twice())


def test_the_last_line_of_a_run_is_read_once_and_bounded() -> None:
    kube = ScriptedOutput(
        b"2026/05/01 10:00:01 NOTICE: starting\n2026/05/01 10:00:02 Failed to copy: not found\n"
    )
    assert read_twice(kube, failing_pod(EXITED)) == (
        "2026/05/01 10:00:02 Failed to copy: not found",
        "2026/05/01 10:00:02 Failed to copy: not found",
    )
    ((path, query, timeout),) = kube.asked
    assert path == "/api/v1/namespaces/models/pods/iris-default-0-iris-abc/log"
    assert query == {
        "container": "iris-model-initializer",
        "tailLines": str(OUTPUT_TAIL_LINES),
        "limitBytes": str(OUTPUT_LIMIT_BYTES),
    }
    assert timeout <= 5


def test_a_run_before_the_current_one_is_read_as_previous() -> None:
    kube = ScriptedOutput(b"Failed to copy: not found\n")
    read_twice(kube, failing_pod({"running": {}}, last=EXITED["terminated"]))
    ((_, query, _),) = kube.asked
    assert query["previous"] == "true"


@pytest.mark.parametrize(
    "failure",
    [
        ApiError(403, "GET", "/api/v1/namespaces/models/pods/p/log", 'pods "p" is forbidden'),
        ApiError(500, "GET", "/api/v1/namespaces/models/pods/p/log", "no preferred addresses found"),
        aiohttp.ClientConnectionError("connection refused"),
        TimeoutError(),
    ],
)
def test_an_output_that_cannot_be_read_leaves_one_debug_line_and_no_retry(
    failure: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    kube = ScriptedOutput(failure)
    with caplog.at_level(logging.DEBUG, logger="zenmodel_operator"):
        assert read_twice(kube, failing_pod(EXITED)) == ("", "")
    assert len(kube.asked) == 1
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]
    assert "iris-model-initializer" in caplog.records[0].getMessage()
