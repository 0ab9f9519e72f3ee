"""The image `make image` builds, checked as built and run (the Dockerfile's text is checked in
tests/unit/test_dockerfile.py): who it runs as, what it leaves out, how it starts, where it can write."""

from __future__ import annotations

import pytest

from support.image import CHART_USER, built_image, inspect, run, unavailable_reason

reason = unavailable_reason()
pytestmark = [pytest.mark.image, pytest.mark.skipif(reason is not None, reason=reason or "")]

# As the chart's pod: a read-only root filesystem and an emptyDir on /tmp, nothing else writable.
CHART_FILESYSTEM = ("--read-only", "--read-only-tmpfs=false", "--tmpfs=/tmp")
# Every directory the process may create a file in, found by trying (/proc, /sys and /dev are the kernel's).
WRITABLE_DIRECTORIES = """
import os, tempfile
writable = []
for directory, subdirectories, _ in os.walk("/"):
    if directory.startswith(("/proc", "/sys", "/dev")):
        subdirectories[:] = []
        continue
    try:
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        continue
    writable.append(directory)
print(" ".join(writable))
"""


@pytest.fixture(scope="module")
def image() -> str:
    return built_image()


def test_runs_as_a_numeric_non_root_user_without_a_passwd_entry(image: str) -> None:
    assert inspect(image)["Config"]["User"] == CHART_USER
    result = run(image, "-c", "import os; print(os.getuid(), os.getgid())", options=("--entrypoint=python3",))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["65532", "65532"]
    passwd = run(image, "/etc/passwd", options=("--entrypoint=cat",))
    assert ":65532:" not in passwd.stdout, "the image names the user: the operator must not need it to"


def test_has_no_pip(image: str) -> None:
    result = run(image, "-m", "pip", "--version", options=("--entrypoint=python3",))
    assert result.returncode != 0 and "No module named pip" in result.stderr, result.stdout + result.stderr
    which = run(image, "-c", "command -v pip pip3 easy_install || true", options=("--entrypoint=sh",))
    assert which.stdout.strip() == ""


def test_entrypoint_is_the_operator_and_answers_help(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["Entrypoint"] == ["zenmodel-operator", "run"]
    assert not config.get("Cmd")
    result = run(image, "--help", options=CHART_FILESYSTEM)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: zenmodel-operator run")


def test_under_the_charts_filesystem_only_tmp_is_writable(image: str) -> None:
    result = run(image, "-c", WRITABLE_DIRECTORIES, options=("--entrypoint=python3", *CHART_FILESYSTEM))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/tmp"]
    # Everything the operator imports loads from the read-only root (no bytecode written beside it).
    imports = run(
        image,
        "-c",
        "import zenmodel_operator.cli, kopf, kubernetes, aiohttp, pydantic, prometheus_client",
        options=("--entrypoint=python3", *CHART_FILESYSTEM),
    )
    assert imports.returncode == 0, imports.stderr


def test_the_image_itself_gives_its_user_only_the_scratch_directories(image: str) -> None:
    """Even on a writable root, the user owns nothing of the operator or of Python: it may write only
    where every user may (the sticky, world-writable scratch directories)."""
    result = run(image, "-c", WRITABLE_DIRECTORIES, options=("--entrypoint=python3",))
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) <= {"/tmp", "/var/tmp", "/run/lock"}, result.stdout
