"""Why the model pods never become ready: what the pod watch keeps of a pod, which problem a parent reports,
and its words (the failed run's last output line, redacted and bounded), against reviewed golden files and
properties for any input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from unit.golden import check_golden
from zenmodel_operator.core.conditions import Reason
from zenmodel_operator.core.pods import (
    MESSAGE_LIMIT,
    OUTPUT_LIMIT_BYTES,
    ContainerFailure,
    PodRecord,
    describe,
    last_line,
    pod_problem,
    summarize,
)
from zenmodel_operator.core.redaction import PLACEHOLDER, redaction
from zenmodel_operator.core.seldon import storage_initializer_name

GOLDEN = Path(__file__).parent.parent / "golden" / "pods"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))


def decided(case: dict[str, Any]) -> dict[str, Any]:
    """What the operator decides for the case's pods: the problem, and the status's words for it."""
    records = [record for pod in case["pods"] if (record := summarize(pod)) is not None]
    problem = pod_problem(records, case["model"])
    if problem is None:
        return {"problem": None}
    output = case.get("output")
    reads_output = problem.failure.exited
    line = last_line(output.encode()) if reads_output and output is not None else None
    report = describe(problem, line, redaction(case.get("secrets") or []))
    return {
        "reason": str(report.reason),
        "message": report.message,
        "readsOutput": reads_output,
        "ofThePreviousRun": problem.failure.previous,
    }


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    actual = decided(yaml.safe_load((GOLDEN / f"{case}.input.yaml").read_text()))
    check_golden(GOLDEN / f"{case}.expected.yaml", yaml.safe_dump(actual, sort_keys=False, width=1000))


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("classifier", "classifier-model-initializer"),
        ("m" * 45, "m" * 45 + "-model-initializer"),  # 63 exactly
        ("m" * 56, "m" * 56 + "-model"),  # cut on a dash, which goes
        ("m" * 62, "m" * 62),  # cut just after the model's name: its dash goes
        ("m" * 63, "m" * 63),
    ],
)
def test_the_storage_initializer_is_named_as_seldon_names_it(model: str, expected: str) -> None:
    assert storage_initializer_name(model) == expected


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (), **meta: Any) -> dict[str, Any]:
    metadata = {
        "name": "iris-default-0-iris-abc",
        "namespace": "models",
        "uid": "u1",
        "creationTimestamp": "2026-05-01T10:00:00Z",
        "labels": {"seldon-deployment-id": "iris"},
        **meta,
    }
    return {
        "metadata": metadata,
        "status": {"initContainerStatuses": list(init), "containerStatuses": list(containers)},
    }


def waiting(reason: str, message: str = "", name: str = "iris") -> dict[str, Any]:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}, "ready": False}


def test_a_healthy_or_starting_pod_is_not_kept() -> None:
    assert summarize(pod({"name": "iris", "state": {"running": {}}, "ready": True})) is None
    assert summarize(pod(waiting("ContainerCreating"))) is None
    assert summarize(pod(waiting("ErrImagePull"), labels={})) is None  # not Seldon's


def test_a_pod_being_deleted_is_not_kept() -> None:
    assert summarize(pod(waiting("ErrImagePull"), deletionTimestamp="2026-05-01T10:05:00Z")) is None


def test_the_kubelets_image_pull_alternation_changes_nothing_kept() -> None:
    pulling = summarize(pod(waiting("ErrImagePull", "failed to pull: not found")))
    assert pulling is not None
    backing_off = summarize(pod(waiting("ImagePullBackOff", 'Back-off pulling image "x"')), pulling)
    assert backing_off == pulling
    # Without what was kept before (a restart of the operator), the back-off is reported as it is...
    fresh = summarize(pod(waiting("ImagePullBackOff", 'Back-off pulling image "x"')))
    assert fresh is not None and fresh.failures[0].reason == "ImagePullBackOff"
    # ... and another pod's pull (a new uid) carries nothing over.
    other = summarize(pod(waiting("ImagePullBackOff", "back-off"), uid="u2"), pulling)
    assert other is not None and other.failures[0].reason == "ImagePullBackOff"


def crash_loop(restarts: int, container_id: str) -> dict[str, Any]:
    return {
        "name": "iris-model-initializer",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {10 * 2**restarts}s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "containerID": container_id}},
        "restartCount": restarts,
        "ready": False,
    }


def test_each_failed_run_is_its_own_and_a_back_off_message_is_not_kept() -> None:
    first = summarize(pod(init=(crash_loop(1, "containerd://a"),)))
    again = summarize(pod(init=(crash_loop(1, "containerd://a"),)))
    later = summarize(pod(init=(crash_loop(2, "containerd://b"),)))
    assert first is not None and later is not None
    assert first == again  # the growing back-off in the waiting message is not what is kept
    assert first.failures[0].run != later.failures[0].run


def record(name: str, created: str, *failures: ContainerFailure) -> PodRecord:
    return PodRecord("models", name, f"uid-{name}", "iris", created, failures)


def failure(name: str, init: bool = False) -> ContainerFailure:
    return ContainerFailure(name, init, True, "Error", "", 1, "containerd://x", False)


def test_which_problem_is_reported() -> None:
    fetch = failure("iris-model-initializer", init=True)
    load = failure("iris")
    engine = failure("seldon-container-engine")
    older = record("a", "2026-05-01T09:00:00Z", fetch, load)
    newer = record("b", "2026-05-01T10:00:00Z", engine, load)
    problem = pod_problem([older, newer], "iris")
    assert problem is not None and (problem.pod.name, problem.failure, problem.reason) == (
        "b",
        engine,
        Reason.SERVING_CONTAINER_FAILED,
    )
    assert reason_of(older) == Reason.MODEL_FETCH_FAILED
    assert reason_of(record("c", "2026-05-01T10:00:00Z", load)) == Reason.MODEL_LOAD_FAILED
    # An init container of another name is not the storage initializer, nor one that cannot start.
    assert reason_of(record("d", "x", failure("setup", init=True))) == Reason.SERVING_CONTAINER_FAILED
    cannot_start = ContainerFailure(
        "iris-model-initializer", True, False, "ErrImagePull", "", None, "", False
    )
    assert reason_of(record("e", "x", cannot_start)) == Reason.SERVING_CONTAINER_FAILED
    assert pod_problem([], "iris") is None


def reason_of(pod: PodRecord) -> Reason | None:
    problem = pod_problem([pod], "iris")
    return None if problem is None else problem.reason


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
failures = st.builds(
    ContainerFailure,
    name=st.sampled_from(["iris", "iris-model-initializer", "seldon-container-engine", "other"]),
    init=st.booleans(),
    exited=st.booleans(),
    reason=st.sampled_from(["Error", "OOMKilled", "ErrImagePull"]),
    message=st.text(max_size=20),
    exit_code=st.integers(1, 255),
    run=st.text(max_size=8),
    previous=st.booleans(),
)
records = st.builds(
    PodRecord,
    namespace=st.just("models"),
    name=names,
    uid=names,
    parent=st.just("iris"),
    created=st.sampled_from(["2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"]),
    failures=st.lists(failures, min_size=1, max_size=3).map(tuple),
)


@given(st.lists(records, max_size=5, unique_by=lambda r: r.name), st.randoms())
def test_the_problem_does_not_depend_on_the_order_of_the_pods(pods: list[PodRecord], rng: Any) -> None:
    shuffled = list(pods)
    rng.shuffle(shuffled)
    assert pod_problem(pods, "iris") == pod_problem(shuffled, "iris")


# Text a container may write: anything printable, control characters, escapes, lines.
output_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=400)
secret_values = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=60).filter(
    lambda s: s.strip() == s
)


@given(before=output_text, after=output_text, secret=secret_values, extra=secret_values)
def test_no_credential_value_survives_in_the_words_and_they_are_bounded(
    before: str, after: str, secret: str, extra: str
) -> None:
    output = f"{before}{secret}{after}\n{extra}{secret}".encode()[: OUTPUT_LIMIT_BYTES - 1]
    problem = pod_problem([record("p", "2026-05-01T10:00:00Z", failure("iris"))], "iris")
    assert problem is not None
    report = describe(problem, last_line(output), redaction([secret]))
    detail = report.message.split(": ", 1)[1]
    assert secret not in report.message
    assert len(detail) <= MESSAGE_LIMIT
    assert all(c.isprintable() for c in report.message)


@given(output_text)
def test_the_last_line_holds_no_control_character(text: str) -> None:
    line = last_line(text.encode())
    assert "\n" not in line and all(c.isprintable() for c in line)


def test_a_cut_last_line_is_left_out() -> None:
    whole = b"first line\n" + b"x" * (OUTPUT_LIMIT_BYTES - 11)
    assert len(whole) == OUTPUT_LIMIT_BYTES
    assert last_line(whole) == "first line"


@pytest.mark.parametrize(
    "stamp", ["2026/05/01 10:00:02 ", "2026-05-01T10:00:02.123456Z ", "[2026-05-01 10:00:02,123] ", ""]
)
def test_timestamps_are_left_out_so_every_run_reads_the_same(stamp: str) -> None:
    problem = pod_problem([record("p", "2026-05-01T10:00:00Z", failure("iris"))], "iris")
    assert problem is not None
    line = last_line(f"{stamp}Failed to copy: directory not found\n".encode())
    report = describe(problem, line, redaction([]))
    assert report.message.endswith("cannot load the model: Failed to copy: directory not found")


GCS_KEY = (
    '{"type":"service_account","client_email":"reader@project.iam.gserviceaccount.com",'
    '"private_key":"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n",'
    '"private_key_id":"0123456789abcdef"}'
)
SAS_URL = "https://acct.blob.core.windows.net/models?sv=2022-11-02&sig=AbCdEf%2BGhIjKlMnOp%3D"
CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWFjY291bnQta2V5"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (GCS_KEY, "private key id 0123456789abcdef rejected"),
        (GCS_KEY, "bad key MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        (SAS_URL, "signature AbCdEf%2BGhIjKlMnOp%3D expired"),
        (CONNECTION_STRING, "key c2VjcmV0LWFjY291bnQta2V5 refused"),
        ("secret/with+chars", "GET /?key=secret%2Fwith%2Bchars"),
    ],
)
def test_pieces_of_structured_values_are_redacted_too(value: str, printed: str) -> None:
    redacted = redaction([value]).apply(printed)
    assert PLACEHOLDER in redacted
    assert not any(
        piece in redacted
        for piece in ("0123456789abcdef", "MIIEvQ", "AbCdEf", "c2VjcmV0", "secret%2F", "secret/with")
    )


def test_what_the_spec_says_and_short_values_are_not_redacted() -> None:
    text = "Failed to copy: s3 bucket models in eu-west-1: 403"
    assert redaction(["eu-west-1", "s3", "403"], public=["eu-west-1"]).apply(text) == text


def test_a_value_inside_another_goes_with_it() -> None:
    assert redaction(["abcd1234", "abcd1234efgh5678"]).apply("k=abcd1234efgh5678") == f"k={PLACEHOLDER}"
