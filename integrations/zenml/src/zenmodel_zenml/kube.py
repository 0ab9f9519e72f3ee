"""The few Kubernetes calls the deployer makes: server-side apply, read, delete, and a watch that waits."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from .resource import FIELD_MANAGER, GROUP, PLURAL, VERSION, Observed, observe

APPLY_PATCH = "application/apply-patch+yaml"
GONE = 410
NOT_FOUND = 404


class ApplyRefused(RuntimeError):
    """The apiserver refused an object (the CRD's schema or CEL rules); the message is the apiserver's."""


def api_client(context: str | None) -> Any:
    """In a pod: its service account. Elsewhere: the kubeconfig (KUBECONFIG or ~/.kube/config), `context`
    or its current one."""
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except k8s_config.ConfigException:
        # Read now: the client reads KUBECONFIG once, when it is first imported.
        return k8s_config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"), context=context)


def refusal(exc: ApiException) -> str:
    """The apiserver's own message (it names the field and the rule); never the request body."""
    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError):
        return str(exc.reason)


class Kube:
    def __init__(self, api: Any, namespace: str) -> None:
        self.namespace = namespace
        self.custom = k8s.CustomObjectsApi(api)
        self.core = k8s.CoreV1Api(api)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager `zenml`, forcing (ZenML owns these fields by definition)."""
        try:
            response = self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                obj["metadata"]["name"],
                obj,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
                # Read the body ourselves: the client decodes only a 200, and an apply that creates is a 201.
                _preload_content=False,
            )
        except ApiException as exc:
            raise ApplyRefused(refusal(exc)) from None
        applied: dict[str, Any] = json.loads(response.data)
        return applied

    def apply_secret(self, obj: Mapping[str, Any]) -> None:
        try:
            self.core.patch_namespaced_secret(
                obj["metadata"]["name"],
                self.namespace,
                obj,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
            )
        except ApiException as exc:
            raise ApplyRefused(refusal(exc)) from None

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return obj

    def delete(self, name: str) -> bool:
        """Deletes the ZenModelDeployment (the operator's owner references take its children); False if
        it was already gone."""
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            raise
        return True

    def wait(
        self, obj: Mapping[str, Any], done: Callable[[Observed], bool], timeout: float
    ) -> tuple[Observed, bool]:
        """Watches the object from the version in hand until `done` says so, it fails, or `timeout`
        passes; returns what was last seen and whether `done` held. One watch, no polling: each status
        write reaches us as it happens."""
        name = obj["metadata"]["name"]
        seen = observe(obj)
        if done(seen) or seen.failed:
            return seen, done(seen)
        version = obj["metadata"].get("resourceVersion")
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            watcher = k8s_watch.Watch()
            try:
                for event in watcher.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    field_selector=f"metadata.name={name}",
                    resource_version=version,
                    timeout_seconds=max(1, int(remaining)),
                ):
                    item = event["object"]
                    if event["type"] == "DELETED":
                        raise RuntimeError(f"ZenModelDeployment {self.namespace}/{name} was deleted")
                    version = item["metadata"]["resourceVersion"]
                    seen = observe(item)
                    if done(seen) or seen.failed:
                        return seen, done(seen)
                    if time.monotonic() >= deadline:
                        break
            except ApiException as exc:
                if exc.status != GONE:
                    raise
                # The version in hand was compacted away: start again from the object as it is now.
                current = self.get(name)
                if current is None:
                    raise RuntimeError(f"ZenModelDeployment {self.namespace}/{name} was deleted") from None
                version = current["metadata"]["resourceVersion"]
                seen = observe(current)
                if done(seen) or seen.failed:
                    return seen, done(seen)
            finally:
                watcher.stop()
        return seen, False
