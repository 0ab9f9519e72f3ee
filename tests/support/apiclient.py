"""Creating objects through one persistent HTTPS connection: hundreds of apiserver verdicts a second."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from support.localcluster import LocalCluster

USER_AGENT = "zenmodel-e2e-apiclient"


@dataclass(frozen=True)
class Verdict:
    """The apiserver's answer to a create: accepted, or refused with its causes (field -> messages)."""

    status: int
    causes: dict[str, list[str]]
    message: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class ApiClient:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.connection = cluster.api_connection()

    def close(self) -> None:
        self.connection.close()

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        # Named, as every client is: the audit log (which other tests read) keys on the user agent.
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (http.client.HTTPException, OSError):
                if attempt:
                    raise
                self.connection.close()
                self.connection = self.cluster.api_connection()
        raise AssertionError("unreachable")

    def get_zmd(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, body = self._request(
            "GET", f"/apis/zenml.io/v1alpha1/namespaces/{namespace}/zenmodeldeployments/{name}"
        )
        return body if status == 200 else None

    def create(self, obj: dict[str, Any], *, dry_run: bool) -> Verdict:
        group_version = obj["apiVersion"]
        namespace = obj["metadata"]["namespace"]
        plural = {"ZenModelDeployment": "zenmodeldeployments", "Secret": "secrets"}[obj["kind"]]
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        # Strict, as kubectl asks: an unknown field is an error, not silently dropped.
        query = "fieldValidation=Strict" + ("&dryRun=All" if dry_run else "")
        path = f"{prefix}/namespaces/{namespace}/{plural}?{query}"
        status, payload = self._request("POST", path, json.dumps(obj).encode())
        causes: dict[str, list[str]] = {}
        for cause in (payload.get("details") or {}).get("causes") or []:
            causes.setdefault(str(cause.get("field", "")), []).append(str(cause.get("message", "")))
        return Verdict(status, causes, str(payload.get("message", "")))
