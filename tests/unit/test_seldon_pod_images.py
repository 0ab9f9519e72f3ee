"""hack/seldon_pod_images.py: which images Seldon's ConfigMap names for a SKLEARN_SERVER v2 pod, and under
which fully qualified reference each is built (the name containerd will look it up by)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dockerfile as dockerfile_parser
import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "seldon_pod_images.py"


def listed(tmp_path: Path, storage_initializer: str, sklearn_v2: dict[str, str]) -> dict[str, str]:
    """What the script prints for a seldon-config with these entries (and the others Seldon's has)."""
    servers = {
        "SKLEARN_SERVER": {"protocols": {"seldon": {"image": "seldonio/sklearnserver"}, "v2": sklearn_v2}},
        "XGBOOST_SERVER": {"protocols": {"v2": {"image": "seldonio/mlserver", "defaultImageVersion": "x"}}},
    }
    configmap = tmp_path / "configmap.yaml"
    configmap.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "config"},
                "data": {
                    "predictor_servers": json.dumps(servers, indent=4),
                    "storageInitializer": json.dumps({"image": storage_initializer, "cpuLimit": "1"}),
                },
            }
        )
    )
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(configmap)], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_seldons_short_references_are_qualified_as_a_runtime_resolves_them(tmp_path: Path) -> None:
    assert listed(
        tmp_path,
        "seldonio/rclone-storage-initializer:1.19.0",
        {"image": "seldonio/mlserver", "defaultImageVersion": "1.7.1-sklearn"},
    ) == {
        "rclone-storage-initializer": "docker.io/seldonio/rclone-storage-initializer:1.19.0",
        "mlserver-sklearn": "docker.io/seldonio/mlserver:1.7.1-sklearn",
    }


@pytest.mark.parametrize(
    ("reference", "qualified"),
    [
        ("registry.example.com/seldon/rclone:1", "registry.example.com/seldon/rclone:1"),
        ("localhost:5000/rclone:1", "localhost:5000/rclone:1"),
        ("localhost/rclone:1", "localhost/rclone:1"),
        ("rclone:1", "docker.io/library/rclone:1"),
    ],
)
def test_a_registry_is_kept_and_a_bare_name_is_an_official_image(
    tmp_path: Path, reference: str, qualified: str
) -> None:
    images = listed(tmp_path, reference, {"image": "seldonio/mlserver", "defaultImageVersion": "1"})
    assert images["rclone-storage-initializer"] == qualified


def test_a_server_without_a_default_version_is_named_without_a_tag(tmp_path: Path) -> None:
    images = listed(tmp_path, "seldonio/rclone", {"image": "seldonio/mlserver"})
    assert images["mlserver-sklearn"] == "docker.io/seldonio/mlserver"


def base_of(dockerfile: Path) -> set[str]:
    """The images its stages start FROM (stage names aside)."""
    return {c.value[0] for c in dockerfile_parser.parse_file(str(dockerfile)) if c.cmd == "FROM"}


def test_every_image_here_is_built_on_the_operators_base() -> None:
    """One base, made once (hack/base-image.sh debootstraps it when podman lacks it)."""
    root = SCRIPT.parents[1]
    stand_ins = sorted((root / "images").glob("*/Dockerfile"))
    assert [path.parent.name for path in stand_ins] == ["mlserver-sklearn", "rclone-storage-initializer"]
    for dockerfile in stand_ins:
        assert base_of(dockerfile) == base_of(root / "Dockerfile"), dockerfile
