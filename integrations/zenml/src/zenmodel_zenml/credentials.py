"""The artifact store's credentials, as the operator reads them: an opted-in Secret with the store's native
keys, and the store's non-secret options (endpoint, region) in the spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .resource import secret_name

S3_PROVIDER_ELSEWHERE = "Other"  # any S3-compatible store reached through an endpoint URL


@dataclass(frozen=True)
class StoreCredentials:
    secret_name: str
    secret_data: Mapping[str, str] = field(default_factory=dict)  # empty: the pod's own identity
    options: Mapping[str, Any] = field(default_factory=dict)  # the spec's credentials block, sans secretRef


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


def artifact_store_credentials(artifact_store: Any, model_uri: str) -> StoreCredentials | None:
    """What reading `model_uri` takes, when it lives in the active artifact store; None when it does not
    (then only the config's credentials_secret can help) or needs nothing (pvc://)."""
    store_path = str(artifact_store.path)
    if not model_uri.startswith(store_path.rstrip("/") + "/"):
        return None
    name = secret_name(str(artifact_store.id))
    if _scheme(model_uri) == "s3" and artifact_store.flavor == "s3":
        key, secret, token, region = artifact_store.get_credentials()
        client_kwargs = artifact_store.config.client_kwargs or {}
        endpoint = client_kwargs.get("endpoint_url")
        region = region or client_kwargs.get("region_name")
        s3: dict[str, str] = {}
        if endpoint:
            s3 |= {"endpoint": str(endpoint), "provider": S3_PROVIDER_ELSEWHERE}
        if region:
            s3["region"] = str(region)
        data = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret} if key and secret else {}
        if data and token:
            data["AWS_SESSION_TOKEN"] = token
        return StoreCredentials(name, data, {"s3": s3} if s3 else {})
    if _scheme(model_uri) in ("", "pvc"):
        return None
    raise RuntimeError(
        f"credentials of a {artifact_store.flavor} artifact store are not converted by the zenmodel "
        "deployer yet: create a Secret with the store's keys, labelled zenml.io/model-credentials=true, "
        "and name it in the config's credentials_secret"
    )
