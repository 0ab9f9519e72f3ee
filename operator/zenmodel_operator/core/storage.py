"""Model URIs: which store they point at, and the rclone remote that Seldon's storage initializer uses.

Seldon's rclone storage initializer runs `rclone copy <modelUri> /mnt/models`; rclone reads `s3://b/p` as
remote `s3`, path `//b/p` (bucket backends trim the slashes). So the remote's name must be the URI's
scheme, or rclone silently falls back to anonymous access (seldon-core#3839). Azure's https:// blob URIs
have no usable scheme for that and are rewritten to `az://<container>/<path>`, with the account kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..api.uris import AZURE_HTTPS


class Store(StrEnum):
    S3 = "s3"
    GCS = "gs"
    AZURE = "az"
    PVC = "pvc"


# rclone backend type of each store that rclone reads.
RCLONE_BACKEND: dict[Store, str] = {
    Store.S3: "s3",
    Store.GCS: "google cloud storage",
    Store.AZURE: "azureblob",
}


class InvalidModelURI(ValueError):
    pass


@dataclass(frozen=True)
class ModelLocation:
    store: Store
    bucket: str  # bucket, container or claim
    path: str  # inside the bucket, without leading slash; may be empty
    account: str | None = None  # Azure storage account named by an https:// URI

    @property
    def remote(self) -> str | None:
        """rclone remote name, equal to the scheme Seldon hands to rclone; None where rclone is not used."""
        return None if self.store is Store.PVC else self.store.value

    @property
    def seldon_uri(self) -> str:
        """The modelUri Seldon receives: what rclone (or, for pvc://, Seldon itself) resolves."""
        suffix = f"/{self.path}" if self.path else ""
        return f"{self.store.value}://{self.bucket}{suffix}"

    @property
    def needs_rclone(self) -> bool:
        return self.store is not Store.PVC


def parse_model_uri(uri: str) -> ModelLocation:
    """Parses a model URI; the spec schema has already checked its shape, this checks it again."""
    account: str | None = None
    azure = AZURE_HTTPS.match(uri)
    if azure:
        store, rest, account = Store.AZURE, azure["rest"], azure["account"]
    else:
        scheme, sep, rest = uri.partition("://")
        if not sep or scheme not in {s.value for s in Store}:
            raise InvalidModelURI(
                f"unsupported model URI scheme in {uri!r}: use s3://, gs://, az://, "
                "https://<account>.blob.core.windows.net/ or pvc://"
            )
        store = Store(scheme)
    bucket, _, path = rest.partition("/")
    if not bucket:
        raise InvalidModelURI(f"model URI {uri!r} names no bucket, container or claim")
    return ModelLocation(store=store, bucket=bucket, path=path.strip("/"), account=account)
