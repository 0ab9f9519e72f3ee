"""Drift is exact: what someone else adds to our children goes, within the 2 s of any other drift.

Server-side apply under our manager keeps fields another manager owns, so these additions are made the
ways people make them: a merge patch (kubectl patch/edit, client-side apply) and a server-side apply
under another field manager. Timings are printed (`pytest -s`); they are taken on a shared machine.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest

from support.localcluster import LocalCluster
from support.objects import (
    CHILDREN_WRITTEN,
    apply,
    decoded,
    must_get,
    s3_secret,
    server_side_apply,
    wait_state,
    zmd,
)
from support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]

DRIFT_SECONDS = 2.0


def restored_within(check: Callable[[], bool], what: str) -> float:
    """Seconds until `check` holds, failing past DRIFT_SECONDS; printed for the notes."""
    start = time.monotonic()
    wait_for(check, DRIFT_SECONDS, what, interval=0.05)
    seconds = time.monotonic() - start
    print(f"\n{what}: {seconds:.2f}s")
    return seconds


def merge_patch(
    cluster: LocalCluster, kind: str, namespace: str, name: str, patch: dict[str, object]
) -> None:
    cluster.kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def test_keys_added_to_the_rclone_secret_are_removed(cluster: LocalCluster, namespace: str) -> None:
    apply(cluster, s3_secret(namespace), zmd("iris", namespace))
    wait_state(cluster, namespace, "iris", CHILDREN_WRITTEN)
    rendered = decoded(must_get(cluster, "secret", namespace, "iris-rclone"))

    endpoint = base64.b64encode(b"https://collector.example.com").decode()
    merge_patch(
        cluster, "secret", namespace, "iris-rclone", {"data": {"RCLONE_CONFIG_S3_ENDPOINT": endpoint}}
    )
    restored_within(
        lambda: decoded(must_get(cluster, "secret", namespace, "iris-rclone")) == rendered,
        "a key added by kubectl patch removed from the rclone Secret",
    )

    # Another field manager's server-side apply: its fields survive our own apply, not our removal.
    server_side_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "iris-rclone", "namespace": namespace},
            "stringData": {"RCLONE_CONFIG_S3_ENDPOINT": "https://collector.example.com"},
        },
        manager="someone-else",
    )
    restored_within(
        lambda: decoded(must_get(cluster, "secret", namespace, "iris-rclone")) == rendered,
        "a key added by another manager's server-side apply removed from the rclone Secret",
    )


def test_our_labels_and_annotations_are_exact_and_theirs_are_kept(
    cluster: LocalCluster, namespace: str
) -> None:
    apply(cluster, s3_secret(namespace), zmd("iris", namespace))
    wait_state(cluster, namespace, "iris", CHILDREN_WRITTEN)
    ours = must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]

    cluster.kubectl(
        "label", "seldondeployment", "iris", "-n", namespace, "--overwrite", "zenml.io/deployment=elsewhere"
    )
    restored_within(
        lambda: (
            must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]["labels"] == ours["labels"]
        ),
        "an edited owned label restored on the SeldonDeployment",
    )

    merge_patch(
        cluster,
        "seldondeployment",
        namespace,
        "iris",
        {
            "metadata": {
                "labels": {"zenml.io/extra": "added", "team": "vision"},
                "annotations": {"zenml.io/credentials-hash": "forged", "example.com/note": "kept"},
            }
        },
    )

    def exact() -> bool:
        meta = must_get(cluster, "seldondeployment", namespace, "iris")["metadata"]
        return bool(meta["labels"] == {**ours["labels"], "team": "vision"}) and meta["annotations"] == {
            **ours["annotations"],
            "example.com/note": "kept",
        }

    restored_within(exact, "owned keys added to the SeldonDeployment removed, others kept")

    cluster.kubectl("label", "secret", "iris-rclone", "-n", namespace, "zenml.io/extra=added")
    secret_labels = must_get(cluster, "secret", namespace, "iris-rclone")["metadata"]["labels"]
    restored_within(
        lambda: (
            must_get(cluster, "secret", namespace, "iris-rclone")["metadata"]["labels"]
            == {k: v for k, v in secret_labels.items() if k != "zenml.io/extra"}
        ),
        "an owned label added to the rclone Secret removed",
    )
