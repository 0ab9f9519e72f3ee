"""`Reconciler` against a fake `Cluster`: the whole reconcile path, its writes and its outcome."""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
from collections.abc import Mapping
from typing import Any

from zenmodel_operator.core.plan import Event
from zenmodel_operator.core.pods import PodProblem, PodRecord
from zenmodel_operator.runtime.controller import Outcome, Reconciler, Write, WriteKind
from zenmodel_operator.runtime.informer import PodStore, RunKey
from zenmodel_operator.runtime.transport import ApplyRejected
from zenmodel_operator.runtime.writes import AlreadyExists, Stale
from zenmodel_operator.settings import OperatorSettings

SETTINGS = OperatorSettings(ingress_base_url="http://ingress.example.com")
Key = tuple[str, str, str]  # (kind, namespace, name)


class FakeCluster:
    """Objects in a dict; a write returns the object as stored, with a new resourceVersion."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.events: list[Event] = []
        self.reject: set[str] = set()  # kinds whose apply the "apiserver" refuses
        self.changed_meanwhile: set[str] = set()  # kinds another writer changes just before our apply
        self._versions = itertools.count(1)
        self.pods = PodStore()  # as the pod watch keeps them
        self.output_line = ""  # the last line of every failed run's output
        self.output_reads: list[RunKey] = []

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        live = copy.deepcopy(obj)
        live["metadata"]["resourceVersion"] = str(next(self._versions))
        live["metadata"].setdefault("uid", f"uid-{live['metadata']['name']}")
        meta = live["metadata"]
        self.objects[(live["kind"], meta["namespace"], meta["name"])] = live
        return live

    def remove(self, kind: str, namespace: str, name: str) -> None:
        del self.objects[(kind, namespace, name)]

    def get_parent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get(("ZenModelDeployment", namespace, name))

    def get_seldon_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get(("SeldonDeployment", namespace, name))

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """As the operator's label-selected watch: a Secret without the label is not there."""
        secret = self.objects.get(("Secret", namespace, name))
        has_label = secret is not None and "zenml.io/model-credentials" in secret["metadata"].get(
            "labels", {}
        )
        return secret if has_label else None

    def get_failing_pods(self, namespace: str, parent: str) -> tuple[PodRecord, ...]:
        return self.pods.of_parent(namespace, parent)

    async def last_output_line(self, problem: PodProblem) -> str:
        self.output_reads.append(problem.run_key)
        return self.output_line

    @staticmethod
    def key(obj: Mapping[str, Any]) -> Key:
        return (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])

    async def create(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        if obj["kind"] in self.reject:
            raise ApplyRejected(f"POST {obj['kind']}: HTTP 422: invalid")
        if self.key(obj) in self.objects:
            raise AlreadyExists(f"POST {obj['kind']}: HTTP 409: AlreadyExists")
        self.writes.append(f"create {obj['kind']}")
        return self.put(copy.deepcopy(dict(obj)))

    async def read_metadata(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        live = self.objects.get(self.key(obj))
        return None if live is None else {"metadata": copy.deepcopy(live["metadata"])}

    def check_preconditions(self, obj: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
        """The live object `meta` names, if its uid and resourceVersion are still those; else `Stale`."""
        if obj["kind"] in self.changed_meanwhile:
            self.put(self.objects[self.key(obj)])  # a new resourceVersion
        existing = self.objects[self.key(obj)]
        for field in ("uid", "resourceVersion"):
            if meta[field] != existing["metadata"][field]:
                raise Stale(f"PATCH {obj['kind']}: HTTP 409: the object has been modified")
        return existing

    async def apply(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """Server-side apply onto an existing object, with the preconditions the reconcile sets."""
        if obj["kind"] in self.reject:
            raise ApplyRejected(f"PATCH {obj['kind']}: HTTP 422: invalid")
        existing = self.check_preconditions(obj, obj["metadata"])
        self.writes.append(str(obj["kind"]))
        return self.put({**existing, **copy.deepcopy(dict(obj))})

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """A JSON merge patch (null removes) with the apiserver's resourceVersion precondition."""
        meta = patch["metadata"]
        live = self.objects[(patch["kind"], meta["namespace"], meta["name"])]
        if live["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            return None
        self.writes.append(f"removal from {patch['kind']}")
        patched = copy.deepcopy(live)
        for field in ("data", "spec"):
            for key, value in (patch.get(field) or {}).items():
                assert value is None, "a removal patch only removes"
                patched[field].pop(key)
        for field in ("labels", "annotations"):
            for key in meta.get(field) or {}:
                patched["metadata"][field].pop(key)
        return self.put(patched)

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
        live = self.check_preconditions(parent, parent["metadata"])
        self.writes.append("status")
        return self.put({**live, "status": copy.deepcopy(dict(status))})

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        self.events.append(event)


def zmd(secret: str = "s3-creds") -> dict[str, Any]:
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": "iris", "namespace": "models", "generation": 1},
        "spec": {
            "model": {"name": "iris", "uri": "s3://models/iris", "implementation": "SKLEARN_SERVER"},
            "credentials": {"secretRef": {"name": secret}, "s3": {"region": "eu-west-1"}},
        },
    }


def s3_secret(secret_key: str = "canary-secret") -> dict[str, Any]:
    data = {"AWS_ACCESS_KEY_ID": "canary-id", "AWS_SECRET_ACCESS_KEY": secret_key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s3-creds",
            "namespace": "models",
            "labels": {"zenml.io/model-credentials": "true"},
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def reconcile(cluster: FakeCluster) -> Outcome | None:
    return asyncio.run(Reconciler(cluster, SETTINGS).reconcile("models", "iris"))


def credentials_condition(cluster: FakeCluster) -> dict[str, Any]:
    parent = cluster.get_parent("models", "iris")
    assert parent is not None
    return next(c for c in parent["status"]["conditions"] if c["type"] == "CredentialsReady")


def converged_cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.put(zmd())
    cluster.put(s3_secret())
    reconcile(cluster)
    cluster.writes.clear()
    cluster.events.clear()
    return cluster


def test_a_new_parent_costs_its_writes_once_and_then_nothing() -> None:
    cluster = FakeCluster()
    cluster.put(zmd())
    cluster.put(s3_secret())
    first = reconcile(cluster)
    assert first == Outcome(
        writes=(
            Write(WriteKind.SECRET),
            Write(WriteKind.SELDON_DEPLOYMENT),
            Write(WriteKind.STATUS),
            Write(WriteKind.EVENT, "Created"),
        ),
        state="Creating",
        credentials_reason=None,
    )
    assert cluster.writes == ["create Secret", "create SeldonDeployment", "status"]
    again = reconcile(cluster)
    assert again is not None and again.writes == ()


def foreign_rclone_secret() -> dict[str, Any]:
    """A person's own Secret that happens to have our child's name: no label of ours, no owner."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "iris-rclone", "namespace": "models", "labels": {"team": "data"}},
        "data": {"foo": base64.b64encode(b"bar").decode()},
    }


def test_a_foreign_secret_of_our_childs_name_is_reported_never_written() -> None:
    cluster = FakeCluster()
    cluster.put(zmd())
    cluster.put(s3_secret())
    foreign = cluster.put(foreign_rclone_secret())
    outcome = reconcile(cluster)
    assert outcome is not None and outcome.recheck
    assert outcome.credentials_reason == "SecretConflict"
    assert cluster.objects[("Secret", "models", "iris-rclone")] == foreign
    assert cluster.writes == ["status"]  # no SeldonDeployment either: it would use that Secret
    condition = credentials_condition(cluster)
    assert condition["reason"] == "SecretConflict"
    assert "iris-rclone" in condition["message"] and "delete or rename it" in condition["message"]
    assert [(e.type, e.reason) for e in cluster.events] == [("Warning", "SecretConflict")]

    cluster.writes.clear()
    again = reconcile(cluster)  # the recheck: still there, nothing new to say
    assert again is not None and again.recheck and cluster.writes == []

    cluster.remove("Secret", "models", "iris-rclone")
    cleared = reconcile(cluster)
    assert cleared is not None and not cleared.recheck and cleared.credentials_reason is None
    assert cluster.writes == ["create Secret", "create SeldonDeployment", "status"]


def test_our_secret_that_lost_its_label_is_recognised_by_its_owner_and_restored() -> None:
    cluster = converged_cluster()
    ours = cluster.objects[("Secret", "models", "iris-rclone")]
    del ours["metadata"]["labels"]["zenml.io/model-credentials"]  # now invisible to the watch
    outcome = reconcile(cluster)
    assert outcome is not None and not outcome.recheck
    assert outcome.writes == (Write(WriteKind.SECRET),)
    restored = cluster.get_secret("models", "iris-rclone")
    assert restored is not None and restored["metadata"]["uid"] == ours["metadata"]["uid"]


def test_seldon_becoming_available_is_mirrored_with_one_status_write() -> None:
    cluster = converged_cluster()
    seldon = cluster.get_seldon_deployment("models", "iris")
    assert seldon is not None
    cluster.put({**seldon, "status": {"state": "Available"}})
    outcome = reconcile(cluster)
    assert outcome is not None
    assert [w.kind for w in outcome.writes] == [WriteKind.STATUS, WriteKind.EVENT]
    assert outcome.state == "Available"


def test_a_key_someone_added_to_the_rclone_secret_is_removed_once() -> None:
    cluster = converged_cluster()
    secret = cluster.get_secret("models", "iris-rclone")
    assert secret is not None
    endpoint = base64.b64encode(b"https://attacker.example.com").decode()
    cluster.put({**secret, "data": {**secret["data"], "RCLONE_CONFIG_S3_ENDPOINT": endpoint}})
    outcome = reconcile(cluster)
    assert outcome is not None and outcome.writes == (Write(WriteKind.FOREIGN_KEYS_REMOVED),)
    restored = cluster.get_secret("models", "iris-rclone")
    assert restored is not None and restored["data"] == secret["data"]
    again = reconcile(cluster)
    assert again is not None and again.writes == ()


def test_a_removal_and_an_apply_of_one_child_chain_their_preconditions() -> None:
    """The apply names the version the removal wrote, not the one read before it: no 409 of our own."""
    cluster = converged_cluster()
    secret = cluster.get_secret("models", "iris-rclone")
    assert secret is not None
    edited = {"RCLONE_CONFIG_S3_REGION": base64.b64encode(b"us-east-1").decode(), "EXTRA": "eA=="}
    cluster.put({**secret, "data": {**secret["data"], **edited}})
    outcome = reconcile(cluster)
    assert outcome is not None
    assert outcome.writes == (Write(WriteKind.FOREIGN_KEYS_REMOVED), Write(WriteKind.SECRET))
    restored = cluster.get_secret("models", "iris-rclone")
    assert restored is not None and restored["data"] == secret["data"]


def test_a_write_refused_as_stale_is_no_failure_and_nothing_planned_after_it_is_written() -> None:
    """Another writer (say, a new leader) changed the object after the stores read it: the apiserver
    refuses the write, and the reconcile stops quietly, to run again from the newer state."""
    cluster = converged_cluster()
    parent = cluster.get_parent("models", "iris")
    assert parent is not None
    cluster.put({**parent, "spec": {**parent["spec"], "replicas": 3}})
    cluster.changed_meanwhile.add("SeldonDeployment")
    outcome = reconcile(cluster)
    assert outcome == Outcome(writes=(), state=None, credentials_reason=None, recheck=True)
    assert (cluster.writes, cluster.events) == ([], [])
    cluster.changed_meanwhile = {"ZenModelDeployment"}  # now the parent, after the child's write
    outcome = reconcile(cluster)
    assert outcome == Outcome(
        writes=(Write(WriteKind.SELDON_DEPLOYMENT),), state=None, credentials_reason=None, recheck=True
    )
    assert cluster.writes == ["SeldonDeployment"]
    cluster.changed_meanwhile.clear()
    outcome = reconcile(cluster)
    assert outcome is not None and outcome.writes == (Write(WriteKind.STATUS),) and not outcome.recheck


def test_a_secret_that_leaves_the_watch_is_reported_and_stays_reported_once_deleted() -> None:
    cluster = converged_cluster()
    cluster.remove("Secret", "models", "s3-creds")  # label removed: the watch reports it DELETED
    outcome = reconcile(cluster)
    assert outcome is not None and outcome.credentials_reason == "SecretNotFound"
    condition = credentials_condition(cluster)
    assert condition["status"] == "False"
    assert "'s3-creds'" in condition["message"]
    assert "does not exist" in condition["message"]
    assert "lacks the label zenml.io/model-credentials=true" in condition["message"]
    assert cluster.writes == ["status"]  # the last good rclone Secret and SeldonDeployment stay
    # Then deleted as well: the operator sees no change, and the status is as true as it was.
    again = reconcile(cluster)
    assert again is not None and again.writes == ()

    cluster.put(s3_secret(secret_key="rotated"))
    fixed = reconcile(cluster)
    assert fixed is not None and fixed.credentials_reason is None
    assert credentials_condition(cluster)["status"] == "True"


def test_a_rejected_apply_is_reported_not_raised() -> None:
    cluster = FakeCluster()
    cluster.put(zmd())
    cluster.put(s3_secret())
    cluster.reject.add("SeldonDeployment")
    outcome = reconcile(cluster)
    assert outcome is not None and outcome.state == "Failed"
    parent = cluster.get_parent("models", "iris")
    assert parent is not None
    ready = next(c for c in parent["status"]["conditions"] if c["type"] == "SeldonDeploymentReady")
    assert ready["reason"] == "ApplyFailed"
    assert [e.reason for e in cluster.events] == ["ApplyFailed"]


def test_a_parent_gone_or_going_is_not_reconciled() -> None:
    cluster = FakeCluster()
    assert reconcile(cluster) is None
    going = zmd()
    going["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    cluster.put(going)
    assert reconcile(cluster) is None
    assert cluster.writes == []


def crash_looping_initializer(run: str) -> dict[str, Any]:
    """A pod of ours whose storage initializer exited 1 and waits to be run again."""
    initializer = {
        "name": "iris-model-initializer",
        "state": {
            "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}
        },
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "containerID": run}},
        "ready": False,
        "restartCount": 2,
    }
    return {
        "metadata": {
            "name": "iris-default-0-iris-5d9f7-x2k4q",
            "namespace": "models",
            "uid": "uid-pod",
            "creationTimestamp": "2026-11-21T10:00:00Z",
            "labels": {"seldon-deployment-id": "iris"},
        },
        "status": {"initContainerStatuses": [initializer]},
    }


def seldon_ready(cluster: FakeCluster) -> dict[str, Any]:
    parent = cluster.get_parent("models", "iris")
    assert parent is not None
    return {c["type"]: c for c in parent["status"]["conditions"]}


def test_a_failing_storage_initializer_is_reported_once_with_its_output_redacted() -> None:
    cluster = converged_cluster()
    # The canary: the rclone Secret's secret key, in the output the status would quote.
    cluster.output_line = "Failed to copy: SignatureDoesNotMatch: signed with canary-secret"
    cluster.pods.put(crash_looping_initializer("containerd://a"))
    outcome = reconcile(cluster)
    assert outcome is not None and cluster.writes == ["status"] and outcome.state == "Creating"
    message = (
        "init container iris-model-initializer of pod iris-default-0-iris-5d9f7-x2k4q cannot fetch the model: "
        "Failed to copy: SignatureDoesNotMatch: signed with [redacted]"
    )
    conditions = seldon_ready(cluster)
    for type_ in ("SeldonDeploymentReady", "Ready"):
        assert (conditions[type_]["reason"], conditions[type_]["message"]) == ("ModelFetchFailed", message)
    assert cluster.events == [Event("Warning", "ModelFetchFailed", message)]
    assert cluster.output_reads == [("uid-pod", "iris-model-initializer", "containerd://a")]

    # The same problem, and the next run failing the same way: nothing more to write or say.
    cluster.writes.clear()
    cluster.events.clear()
    reconcile(cluster)
    cluster.pods.put(crash_looping_initializer("containerd://b"))
    reconcile(cluster)
    assert cluster.writes == [] and cluster.events == []

    # The pod recovers (it leaves the pod store): back to Creating, quietly.
    cluster.pods.remove("models", "iris-default-0-iris-5d9f7-x2k4q")
    reconcile(cluster)
    assert cluster.writes == ["status"] and cluster.events == []
    assert seldon_ready(cluster)["SeldonDeploymentReady"]["reason"] == "Creating"


def test_pods_are_not_looked_into_once_seldon_reports_available_nor_when_healthy() -> None:
    cluster = converged_cluster()
    healthy = crash_looping_initializer("containerd://a")
    healthy["status"]["initContainerStatuses"][0] |= {"state": {"terminated": {"exitCode": 0}}, "ready": True}
    cluster.pods.put(healthy)
    reconcile(cluster)
    assert cluster.output_reads == [] and cluster.writes == []

    seldon = cluster.get_seldon_deployment("models", "iris")
    assert seldon is not None
    cluster.put({**seldon, "status": {"state": "Available"}})
    cluster.pods.put(crash_looping_initializer("containerd://a"))
    reconcile(cluster)
    assert cluster.output_reads == []
    assert seldon_ready(cluster)["Ready"]["status"] == "True"
