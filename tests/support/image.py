"""The operator's container image as `make image` builds it (hack/image.sh), and podman to run it here."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SCRIPT = ROOT / "hack" / "image.sh"
# The chart's pod runs as this user and group (values.yaml: securityContext).
CHART_USER = "65532:65532"
# Root here lacks CAP_SYS_RESOURCE, so runc cannot raise a limit above the host's hard one; podman's
# defaults would (nofile 1048576).
PODMAN_LIMITS = ("--ulimit=nofile=1024:1024", "--ulimit=nproc=4096:4096")


def unavailable_reason() -> str | None:
    """Why this machine cannot build or run the image, or None. debootstrap, chroot and podman's storage
    (/var/lib/containers) need root."""
    if os.geteuid() != 0:
        return "building and running the image needs root (debootstrap, chroot, podman's root storage)"
    return None


@cache
def built_image() -> str:
    """Builds the image if needed (cached: seconds when nothing changed); its reference."""
    out = subprocess.run(
        ["bash", str(IMAGE_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=1800
    ).stdout
    return out.strip().splitlines()[-1]


def inspect(image: str) -> dict[str, Any]:
    """The image's configuration (``podman image inspect``)."""
    out = subprocess.run(
        ["podman", "image", "inspect", image], check=True, capture_output=True, text=True
    ).stdout
    (document,) = json.loads(out)
    result: dict[str, Any] = document
    return result


def run(image: str, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Runs the image once with no network, as the chart's user and with no passwd entry added for it
    (as a kubelet runs it), and returns what it printed."""
    return subprocess.run(
        [
            "podman", "run", "--rm", "--pull=never", "--network=none", "--passwd=false", f"--user={CHART_USER}",
            *PODMAN_LIMITS, *options, image, *args,
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
