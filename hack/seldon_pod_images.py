"""The images Seldon Core's controller puts in a SKLEARN_SERVER (protocol v2) pod, as its own seldon-config
ConfigMap names them, each with the directory under images/ that builds a stand-in for it.

    python hack/seldon_pod_images.py CONFIGMAP    prints "<directory under images/> <reference>" lines

References are printed fully qualified (docker.io/seldonio/...), as containerd and podman name what they
hold; the ConfigMap writes them short (seldonio/...), which a kubelet resolves to the same name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_REGISTRY = "docker.io"


def storage_initializer(data: Mapping[str, str]) -> str:
    """The init container that copies the model into /mnt/models (``storageInitializer.image``)."""
    image: str = json.loads(data["storageInitializer"])["image"]
    return image


def sklearn_v2_server(data: Mapping[str, str]) -> str:
    """The model server of SKLEARN_SERVER under protocol v2 (``predictor_servers``), image:version as
    Seldon's controller joins them."""
    v2: dict[str, str] = json.loads(data["predictor_servers"])["SKLEARN_SERVER"]["protocols"]["v2"]
    return f"{v2['image']}:{v2['defaultImageVersion']}" if v2.get("defaultImageVersion") else v2["image"]


# images/<directory> -> where its reference is read from.
STAND_INS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "rclone-storage-initializer": storage_initializer,
    "mlserver-sklearn": sklearn_v2_server,
}


def fully_qualified(reference: str) -> str:
    """A short reference with the registry a container runtime assumes: ``seldonio/x:t`` ->
    ``docker.io/seldonio/x:t``, ``busybox`` -> ``docker.io/library/busybox``."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return reference
    return f"{DEFAULT_REGISTRY}/{reference}" if slash else f"{DEFAULT_REGISTRY}/library/{reference}"


def pod_images(configmap: Path) -> dict[str, str]:
    """images/<directory> -> fully qualified reference, from Seldon's ConfigMap manifest."""
    document: dict[str, Any] = yaml.safe_load(configmap.read_text())
    data: dict[str, str] = document["data"]
    return {directory: fully_qualified(read(data)) for directory, read in STAND_INS.items()}


def main(argv: list[str]) -> int:
    (configmap,) = argv
    for directory, reference in pod_images(Path(configmap)).items():
        print(directory, reference)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
