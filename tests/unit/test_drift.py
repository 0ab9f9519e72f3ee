"""Exact drift, purely: what others added to our children is found, and only what is ours is removed."""

from __future__ import annotations

import base64
import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from unit.test_plan import PARENT, SETTINGS, SOURCE, as_live
from zenmodel_operator.core.drift import is_owned_key, removal_patch
from zenmodel_operator.core.plan import Snapshot, plan


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the apiserver applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def children() -> tuple[dict[str, Any], dict[str, Any]]:
    first = plan(Snapshot(PARENT, None, None, SOURCE), SETTINGS)
    assert first.secret is not None and first.seldon is not None
    return first.secret, first.seldon


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_converged_children_need_no_removal() -> None:
    secret, seldon = children()
    assert removal_patch(secret, as_live(secret)) is None
    assert removal_patch(seldon, as_live(seldon)) is None
    again = plan(Snapshot(PARENT, as_live(seldon), as_live(secret), SOURCE), SETTINGS)
    assert again.removals == () and again.secret is None and again.seldon is None


def test_an_added_secret_key_is_removed_with_a_resource_version_precondition() -> None:
    secret, seldon = children()
    live = as_live(secret)
    live["data"]["RCLONE_CONFIG_S3_ENDPOINT"] = b64("https://attacker.example.com")
    result = plan(Snapshot(PARENT, as_live(seldon), live, SOURCE), SETTINGS)
    # Server-side apply would change nothing (every key we render is there): only the removal is written.
    assert result.secret is None and result.seldon is None
    assert result.removals == (
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "iris-rclone", "namespace": "models", "resourceVersion": "7"},
            "data": {"RCLONE_CONFIG_S3_ENDPOINT": None},
        },
    )
    assert merge_patch(live, result.removals[0])["data"] == secret["data"]


def test_only_our_labels_and_annotations_are_enforced() -> None:
    _, seldon = children()
    live = as_live(seldon)
    live["metadata"]["labels"].update({"zenml.io/extra": "x", "team": "vision", "zenml.run_id": "run-9"})
    live["metadata"]["annotations"].update(
        {
            "zenml.io/credentials-hash": "forged",
            "argocd.argoproj.io/tracking-id": "app:machinelearning.seldon.io/SeldonDeployment:models/iris",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        }
    )
    patch = removal_patch(seldon, live)
    assert patch is not None
    assert patch["metadata"]["labels"] == {"zenml.io/extra": None, "zenml.run_id": None}
    assert patch["metadata"]["annotations"] == {"zenml.io/credentials-hash": None}
    assert "data" not in patch and "spec" not in patch


def test_owned_keys() -> None:
    owned = [
        "zenml.io/deployment",
        "zenml.io/anything",
        "app.kubernetes.io/managed-by",
        "zenml.pipeline_name",
    ]
    assert all(is_owned_key(key) for key in owned)
    theirs = [
        "app.kubernetes.io/name",
        "argocd.argoproj.io/tracking-id",
        "zenml.io",
        "example.com/zenml.io/x",
    ]
    assert not any(is_owned_key(key) for key in theirs)


KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-./", min_size=1, max_size=20)
ADDED_KEYS = st.one_of(KEYS, KEYS.map(lambda key: "zenml.io/" + key))


@given(
    added_data=st.dictionaries(KEYS.map(str.upper), st.text(max_size=10), max_size=4),
    added_labels=st.dictionaries(ADDED_KEYS, st.text(max_size=10), max_size=4),
    added_annotations=st.dictionaries(ADDED_KEYS, st.text(max_size=10), max_size=4),
)
def test_after_the_removal_the_child_is_exactly_ours_and_theirs_is_kept(
    added_data: dict[str, str], added_labels: dict[str, str], added_annotations: dict[str, str]
) -> None:
    secret, _ = children()
    live = as_live(secret)
    live["data"] = {**{key: b64(value) for key, value in added_data.items()}, **live["data"]}
    original_labels = dict(live["metadata"]["labels"])
    original_annotations = dict(live["metadata"]["annotations"])
    live["metadata"]["labels"] = {**added_labels, **original_labels}
    live["metadata"]["annotations"] = {**added_annotations, **original_annotations}

    patch = removal_patch(secret, live)
    fixed = merge_patch(copy.deepcopy(live), patch) if patch is not None else live

    assert fixed["data"] == secret["data"]
    for field in ("labels", "annotations"):
        kept = fixed["metadata"][field]
        assert {key: v for key, v in kept.items() if is_owned_key(key)} == secret["metadata"][field]
        assert all(
            kept[key] == value for key, value in live["metadata"][field].items() if not is_owned_key(key)
        )
    if patch is not None:
        assert patch["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    nothing_added = set(added_data) <= set(secret["data"]) and not any(
        is_owned_key(key) and key not in secret["metadata"][field]
        for field, added in (("labels", added_labels), ("annotations", added_annotations))
        for key in added
    )
    assert (patch is None) == nothing_added
