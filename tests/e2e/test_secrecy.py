"""No credential value ever reaches a log, an Event or a status; Secrets are only watched by label.

A canary value goes through every path a Secret's data can take — success, rotation and each failure —
with the operator logging at DEBUG, and is then searched for (plain and base64) everywhere it must not be.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from support.localcluster import LocalCluster
from support.objects import SELDON_SKIPS, apply, condition, fresh_namespace, get, s3_secret, secret, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0
CANARY = f"canary-{secrets.token_hex(12)}"


def canary(tag: str) -> str:
    return f"{CANARY}-{tag}"


@pytest.fixture
def secrecy_namespace(cluster: LocalCluster) -> Iterator[str]:
    # Seldon's controller skips it, so the operator's Events are the only ones there: the set of their
    # reasons below is exact, not whatever Seldon, the scheduler and kwok's pods add by then.
    with fresh_namespace(cluster, "secrecy", labels=SELDON_SKIPS) as name:
        yield name


def reason(cluster: LocalCluster, namespace: str, name: str) -> str:
    return str(condition(get(cluster, "zmd", namespace, name), "CredentialsReady").get("reason", ""))


def has_reason(cluster: LocalCluster, namespace: str, name: str, expected: str) -> bool:
    return reason(cluster, namespace, name) == expected


def test_no_secret_value_reaches_logs_events_or_status(
    cluster: LocalCluster, secrecy_namespace: str, tmp_path: Path
) -> None:
    ns = secrecy_namespace
    process = OperatorProcess(
        cluster.env(), tmp_path / "operator.log", "--namespaces", "secrecy-*", "--log-level", "DEBUG"
    ).start()
    try:
        # Success, then a rotation.
        apply(cluster, s3_secret(ns, secret_key=canary("secret-key")), zmd("ok", ns))
        wait_for(lambda: reason(cluster, ns, "ok") == "CredentialsRendered", TIMEOUT, "never rendered")
        apply(cluster, s3_secret(ns, secret_key=canary("rotated")))
        wait_for(
            lambda: (
                base64.b64decode(
                    (get(cluster, "secret", ns, "ok-rclone") or {})["data"][
                        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"
                    ]
                ).decode()
                == canary("rotated")
            ),
            TIMEOUT,
            "rotation never reached the rclone Secret",
        )
        # Every failure path, each with canary values in the Secret it reads.
        failures = {
            "missing": (
                "s3://models/x",
                secret(ns, "partial", {"AWS_ACCESS_KEY_ID": canary("partial")}),
                "MissingKeys",
            ),
            "badjson": (
                "gs://models/x",
                secret(
                    ns,
                    "badjson",
                    {
                        "gcloud-application-credentials.json": '{"private_key": "'
                        + canary("json")
                        + '", "type": '
                    },
                ),
                "InvalidCredentials",
            ),
            "mismatch": (
                "s3://models/x",
                secret(ns, "azure", {"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": canary("azure")}),
                "ProviderMismatch",
            ),
            "unlabelled": (
                "s3://models/x",
                secret(
                    ns,
                    "unlabelled",
                    {"AWS_ACCESS_KEY_ID": canary("u-id"), "AWS_SECRET_ACCESS_KEY": canary("u-key")},
                    labels={},
                ),
                "SecretNotFound",  # never read: it is not among the labelled Secrets the operator watches
            ),
        }
        for name, (uri, source, _) in failures.items():
            parent = zmd(name, ns, uri=uri)
            parent["spec"]["credentials"] = {"secretRef": {"name": source["metadata"]["name"]}}
            apply(cluster, source, parent)
        for name, (_, _, expected) in failures.items():
            wait_for(
                partial(has_reason, cluster, ns, name, expected), TIMEOUT, f"{name} never reported {expected}"
            )
    finally:
        process.stop()

    places = {
        "operator log": process.log(),
        "events": cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout,
        "ZenModelDeployments (status included)": cluster.kubectl("get", "zmd", "-n", ns, "-o", "json").stdout,
    }
    assert "reconciled" in places["operator log"] and " DEBUG " in places["operator log"]
    reasons = {event["reason"] for event in json.loads(places["events"])["items"]}
    assert reasons == {"Created", "MissingKeys", "InvalidCredentials", "ProviderMismatch", "SecretNotFound"}
    leaks = [
        where
        for where, text in places.items()
        for tag in ("secret-key", "rotated", "partial", "json", "azure", "u-id", "u-key")
        for form in (canary(tag), base64.b64encode(canary(tag).encode()).decode())
        if form in text
    ]
    assert CANARY not in "".join(places.values())
    assert not leaks


def test_secrets_are_listed_and_watched_only_through_the_label_selector(
    cluster: LocalCluster, secrecy_namespace: str, tmp_path: Path
) -> None:
    process = OperatorProcess(cluster.env(), tmp_path / "operator.log", "--namespaces", "secrecy-*").start()
    try:
        apply(cluster, s3_secret(secrecy_namespace), zmd("iris", secrecy_namespace))
        wait_for(
            lambda: reason(cluster, secrecy_namespace, "iris") == "CredentialsRendered",
            TIMEOUT,
            "never rendered",
        )
    finally:
        process.stop()

    collections = [
        event
        for event in cluster.audit_events()
        if event["objectRef"].get("resource") == "secrets"
        and event["verb"] in ("list", "watch")
        and event["userAgent"].startswith(("kopf/", "zenmodel-operator/"))
    ]
    assert collections, "the operator never listed or watched Secrets"
    selectors = {
        parse_qs(urlsplit(event["requestURI"]).query).get("labelSelector", [""])[0] for event in collections
    }
    assert selectors == {"zenml.io/model-credentials"}
    reads = {
        event["verb"]
        for event in cluster.audit_events()
        if event["objectRef"].get("resource") == "secrets"
        and event["userAgent"].startswith("zenmodel-operator/")
        and event["objectRef"].get("namespace") in (None, secrecy_namespace)
    }
    # Its own requests: the LIST that primes its informer and the watch that keeps it (both behind the
    # selector, checked above), and its writes. It never GETs a Secret: the reconcile reads them from memory.
    # (Only a same-named Secret that is not ours costs a GET, of its metadata alone: the conflict test in
    # test_operator.py, in another namespace.)
    assert reads <= {"list", "watch", "create", "patch"}
    assert "get" not in reads
