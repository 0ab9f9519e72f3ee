"""The informer's stores, its Secret -> parents index, and the echo rule, as pure in-memory behaviour."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from zenmodel_operator.core.pods import pod_problem
from zenmodel_operator.runtime.informer import Informer, Store, slim
from zenmodel_operator.runtime.workqueue import WorkQueue
from zenmodel_operator.settings import OperatorSettings
from zenmodel_operator.wiring import Runtime


def parent(name: str, version: int, secret: str | None = "s3-creds", ns: str = "models") -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"name": name, "uri": "s3://m/x"}}
    if secret:
        spec["credentials"] = {"secretRef": {"name": secret}}
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": str(version)},
        "spec": spec,
    }


def seldon_deployment(name: str, version: int, ns: str = "models") -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(version)},
    }


def secret(
    name: str, version: int, labels: dict[str, str] | None = None, ns: str = "models"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(version), "labels": labels or {}},
        "data": {},
    }


def woken(informer: Informer, store_name: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    store = {s.name: s for s in (informer.parents, informer.seldon_deployments, informer.secrets)}[store_name]
    return [key for key, _, _ in informer.changed(store, obj)]


def test_an_older_event_never_replaces_a_newer_object() -> None:
    informer = Informer()
    assert woken(informer, "parents", parent("iris", 5)) == [("models", "iris")]
    assert woken(informer, "parents", parent("iris", 4)) == []
    assert woken(informer, "parents", parent("iris", 5)) == []
    stored = informer.parents.get("models", "iris")
    assert stored is not None and stored["metadata"]["resourceVersion"] == "5"


def test_the_echo_of_our_own_write_wakes_nothing_but_a_later_change_does() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("iris", 1))
    informer.wrote(seldon_deployment("iris", 7))
    assert woken(informer, "seldondeployments", seldon_deployment("iris", 7)) == []
    assert woken(informer, "seldondeployments", seldon_deployment("iris", 8)) == [("models", "iris")]


def test_a_foreign_seldon_deployment_wakes_only_a_parent_of_its_name() -> None:
    informer = Informer()
    assert woken(informer, "seldondeployments", seldon_deployment("other", 3)) == []
    informer.changed(informer.parents, parent("other", 1))
    assert woken(informer, "seldondeployments", seldon_deployment("other", 4)) == [("models", "other")]


def test_a_secret_wakes_the_parents_that_reference_it_and_its_owner() -> None:
    informer = Informer()
    for name in ("a", "b"):
        informer.changed(informer.parents, parent(name, 1))
    informer.changed(informer.parents, parent("c", 1, secret="other"))
    assert woken(informer, "secrets", secret("s3-creds", 2)) == [("models", "a"), ("models", "b")]
    rclone = secret("c-rclone", 3, {"zenml.io/deployment": "c"})
    assert woken(informer, "secrets", rclone) == [("models", "c")]
    # A label naming a parent is not enough: the name must be that parent's rclone Secret.
    assert woken(informer, "secrets", secret("not-ours", 4, {"zenml.io/deployment": "c"})) == []


def test_the_index_follows_a_changed_reference_and_a_deleted_parent() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("a", 1))
    informer.changed(informer.parents, parent("a", 2, secret="new-creds"))
    assert woken(informer, "secrets", secret("s3-creds", 3)) == []
    assert woken(informer, "secrets", secret("new-creds", 4)) == [("models", "a")]
    assert informer.deleted(informer.parents, parent("a", 5, secret="new-creds")) == []
    assert informer.parents.get("models", "a") is None
    assert woken(informer, "secrets", secret("new-creds", 6)) == []


def test_a_deleted_child_or_source_wakes_its_parents() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("a", 1))
    informer.changed(informer.secrets, secret("s3-creds", 2, {"zenml.io/model-credentials": "true"}))
    informer.changed(informer.seldon_deployments, seldon_deployment("a", 3))
    # Gone, or gone from the label selector: the watch says DELETED either way.
    assert informer.deleted(informer.secrets, secret("s3-creds", 4)) == [("models", "a")]
    assert informer.secrets.get("models", "s3-creds") is None
    assert informer.deleted(informer.seldon_deployments, seldon_deployment("a", 5)) == [("models", "a")]


def test_sync_returns_every_parent_once() -> None:
    informer = Informer()
    for name in ("b", "a"):
        informer.changed(informer.parents, parent(name, 1))
    assert informer.mark_synced() == [("models", "a"), ("models", "b")]
    assert informer.mark_synced() == []


def test_the_stores_drop_what_the_reconcile_never_reads() -> None:
    obj = parent("iris", 1)
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "keep": "me",
    }
    slimmed = slim(obj)
    assert "managedFields" not in slimmed["metadata"]
    assert slimmed["metadata"]["annotations"] == {"keep": "me"}
    assert "managedFields" in obj["metadata"]  # the watch's own object is left as it was


def run_one_reconcile(arriving_version: int) -> int:
    """Reconciles a parent once; meanwhile a change of it arrives, before our write's answer does.
    Returns how many reconciles it took to settle."""

    async def scenario() -> int:
        runtime = Runtime(OperatorSettings(), "test")
        runtime.informer.changed(runtime.informer.parents, parent("iris", 1))
        runtime.informer.mark_synced()
        key = ("models", "iris")
        calls = 0

        async def process(k: tuple[str, str]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                runtime.wake(k, ("parents", *k), arriving_version)  # the watch is faster than the answer
                runtime.informer.wrote(parent("iris", 5))  # the answer to our status write
            runtime.settle(k)

        queue = runtime.queue = WorkQueue(process, workers=1)
        queue.start()
        runtime.wake(key)
        for _ in range(100):
            await asyncio.sleep(0)
            if queue.depth == 0 and calls:
                break
        await queue.stop()
        return calls

    return asyncio.run(scenario())


def test_an_echo_arriving_during_the_reconcile_does_not_run_it_again() -> None:
    assert run_one_reconcile(arriving_version=5) == 1


def test_a_real_change_arriving_during_the_reconcile_runs_it_again() -> None:
    assert run_one_reconcile(arriving_version=6) == 2


def test_a_stored_object_costs_about_its_json_in_memory() -> None:
    # The store's point is compactness: what it keeps is the JSON, not a bigger buffer it came in.
    objects = [parent(f"model-{i:04d}", i) for i in range(500)]
    json_bytes = sum(len(json.dumps(slim(obj), separators=(",", ":"))) for obj in objects)
    store = Store("parents")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for obj in objects:
            store.put(obj)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_entry = 200  # the key tuple, the version string, the dict slot
    assert held < json_bytes + per_entry * len(objects), (held, json_bytes)


# What the apiserver sends: valid UTF-8 (no lone surrogates), finite numbers, integers within 64 bits.
text = st.text(st.characters(exclude_categories=["Cs"]))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_the_store_gives_back_any_json_it_was_given(value: Any) -> None:
    obj = {**seldon_deployment("iris", 1), "spec": {"anything": value}}
    store = Store("seldondeployments")
    store.put(obj)
    assert store.get("models", "iris") == obj


def test_an_integer_beyond_64_bits_is_kept_not_refused() -> None:
    # orjson cannot write it; a field someone else added to a watched object may hold it.
    store = Store("seldondeployments")
    assert store.put({**seldon_deployment("iris", 1), "spec": {"huge": 2**70}})
    stored = store.get("models", "iris")
    assert stored is not None and stored["spec"]["huge"] == 2**70


def model_pod(name: str, *, failing: bool, run: str = "containerd://a", **meta: Any) -> dict[str, Any]:
    """One of Seldon's pods for parent `iris`: its storage initializer exited 1, or every container fine."""
    initializer: dict[str, Any] = {"name": "iris-model-initializer", "ready": not failing, "restartCount": 0}
    initializer["state"] = {
        "terminated": {"exitCode": 1 if failing else 0, "reason": "Error" if failing else "Completed"}
        | {"containerID": run}
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "models",
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "labels": {"seldon-deployment-id": "iris"},
            **meta,
        },
        "status": {
            "initContainerStatuses": [initializer],
            "containerStatuses": [{"name": "iris", "state": {"running": {}}, "ready": not failing}],
        },
    }


def pod_woken(informer: Informer, obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [key for key, _, _ in informer.changed(informer.pods, obj)]


def test_healthy_pods_wake_nothing_and_cost_nothing() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("iris", 1))
    assert pod_woken(informer, model_pod("p1", failing=False)) == []
    assert len(informer.pods) == 0


def test_a_pod_wakes_its_parent_only_when_what_it_decides_changes() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("iris", 1))
    assert pod_woken(informer, model_pod("p1", failing=True)) == [("models", "iris")]
    # A new resourceVersion, the same failure (say, the pod's conditions moved): nothing.
    same = model_pod("p1", failing=True)
    same["metadata"]["resourceVersion"] = "2"
    assert pod_woken(informer, same) == []
    # The next run failed: news.
    assert pod_woken(informer, model_pod("p1", failing=True, run="containerd://b")) == [("models", "iris")]
    assert pod_woken(informer, model_pod("p1", failing=False)) == [("models", "iris")]  # recovered
    assert len(informer.pods) == 0


def test_a_failing_pod_leaves_and_wakes_its_parent_when_deleted_or_being_deleted() -> None:
    informer = Informer()
    informer.changed(informer.parents, parent("iris", 1))
    pod_woken(informer, model_pod("p1", failing=True))
    pod_woken(informer, model_pod("p2", failing=True))
    going = model_pod("p1", failing=True, deletionTimestamp="2026-05-01T10:00:00Z")
    assert pod_woken(informer, going) == [("models", "iris")]
    assert informer.deleted(informer.pods, model_pod("p2", failing=True)) == [("models", "iris")]
    assert informer.deleted(informer.pods, model_pod("p3", failing=False)) == []
    assert informer.pods.of_parent("models", "iris") == ()


def test_a_failing_pod_without_its_parent_wakes_nobody_until_the_parent_is_read() -> None:
    informer = Informer()
    assert pod_woken(informer, model_pod("p1", failing=True)) == []
    assert [pod.name for pod in informer.pods.of_parent("models", "iris")] == ["p1"]  # read by its reconcile


def test_a_runs_output_is_kept_while_the_pod_fails_that_way() -> None:
    informer = Informer()
    pod_woken(informer, model_pod("p1", failing=True))
    (held,) = informer.pods.of_parent("models", "iris")
    problem = pod_problem([held], "iris")
    assert problem is not None and informer.pods.output(problem) is None
    informer.pods.remember_output(problem, "Failed to copy: directory not found")
    assert informer.pods.output(problem) == "Failed to copy: directory not found"
    pod_woken(informer, model_pod("p1", failing=True, run="containerd://b"))
    assert informer.pods.output(problem) is None  # that run is over: its line is dropped
    informer.pods.remember_output(problem, "too late")  # a read that ends after its run: not kept
    assert informer.pods.output(problem) is None
