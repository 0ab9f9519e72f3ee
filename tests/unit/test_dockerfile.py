"""The Dockerfile, read with the real Dockerfile parser (moby/buildkit's, through the `dockerfile` package)."""

from __future__ import annotations

import re
from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|make|clang|python3?-dev|libc6?-dev|git|setuptools|wheel|build|poetry|hatch)\b"
)
VERSION_TAG = re.compile(r"^\d+\.\d+\.\d+(-[a-z0-9.-]+)?$")  # e.g. 3.11.14-slim-bookworm


def parse() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def stages(commands: list[dockerfile.Command]) -> list[list[dockerfile.Command]]:
    """The instructions of each stage, FROM first; instructions before the first FROM (ARG) are dropped."""
    result: list[list[dockerfile.Command]] = []
    for command in commands:
        if command.cmd == "FROM":
            result.append([command])
        elif result:
            result[-1].append(command)
    return result


def final_stage() -> list[dockerfile.Command]:
    return stages(parse())[-1]


def shell_commands(stage: list[dockerfile.Command]) -> list[str]:
    return [" ".join(command.value) for command in stage if command.cmd == "RUN"]


def test_is_multi_stage_with_a_named_builder() -> None:
    all_stages = stages(parse())
    assert len(all_stages) >= 2
    builder_from = all_stages[0][0].value
    assert len(builder_from) == 3 and builder_from[1].upper() == "AS"
    builder = builder_from[2]
    takes_from_builder = re.compile(rf"^--from={builder}$|^--mount=(.*,)?from={builder}(,|$)")
    assert any(takes_from_builder.match(flag) for command in final_stage() for flag in command.flags), (
        "the final stage takes nothing from the builder"
    )


def test_every_base_image_is_slim_python_pinned_by_version() -> None:
    for stage in stages(parse()):
        image = stage[0].value[0]
        assert "$" not in image, f"{image}: the base must be literal, not an ARG"
        repository, _, tag = image.partition("@")[0].partition(":")
        assert repository == "python", image
        assert tag and tag != "latest", f"{image}: not pinned"
        assert VERSION_TAG.match(tag), f"{image}: the tag must carry a full version (x.y.z)"
        assert tag.startswith("3.11."), f"{image}: the project targets Python 3.11"
        assert "slim" in tag, f"{image}: not a slim image"


def test_builder_builds_the_wheel() -> None:
    builder = stages(parse())[0]
    assert any(re.search(r"\bpip wheel\b|\bpython -m build\b", run) for run in shell_commands(builder))


def test_final_stage_installs_only_the_wheel() -> None:
    runs = shell_commands(final_stage())
    installs = [run for run in runs if re.search(r"\bpip install\b", run)]
    assert len(installs) == 1, runs
    (install,) = installs
    assert "--no-index" in install, "the runtime stage must not reach an index"
    assert re.search(r"zenmodel_operator-[^\s]*\.whl", install), (
        "the operator must be installed from its wheel"
    )
    assert "--no-cache-dir" in install or any(
        command.cmd == "ENV" and "PIP_NO_CACHE_DIR" in command.value for command in final_stage()
    ), "pip's cache must not end up in the image"


def test_final_stage_installs_no_build_tools() -> None:
    final = final_stage()
    for run in shell_commands(final):
        for step in re.split(r"&&|;|\|\|", run):
            if re.search(r"\b(apt-get|apt|apk|yum|dnf) (-\S+ )*install\b", step) or re.search(
                r"\bpip install\b", step
            ):
                assert not BUILD_TOOLS.search(step.split("install", 1)[1]), f"build tools installed: {step}"
    copied = [command for command in final if command.cmd in ("COPY", "ADD")]
    assert all(any(flag.startswith("--from=") for flag in command.flags) for command in copied), (
        "the final stage copies from the build context: sources do not belong in the runtime image"
    )


def test_runs_as_numeric_non_root_user() -> None:
    final = final_stage()
    users = [command for command in final if command.cmd == "USER"]
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].value[0].partition(":")
    assert user.isdigit() and int(user) != 0, f"USER {users[-1].value[0]}: must be a numeric non-root UID"
    assert not group or (group.isdigit() and int(group) != 0)
    later = final[final.index(users[-1]) + 1 :]
    assert not any(command.cmd == "RUN" for command in later), "RUN after USER would run unprivileged"


def test_entrypoint_runs_the_operator() -> None:
    entrypoints = [command for command in final_stage() if command.cmd == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    entrypoint = entrypoints[-1]
    assert entrypoint.json, "ENTRYPOINT must be exec form (JSON), so signals reach the operator"
    assert list(entrypoint.value) == ["zenmodel-operator", "run"]
    assert not [command for command in final_stage() if command.cmd == "CMD"]


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "the context must be an allow-list"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = {
        source.rstrip("/")
        for command in parse()
        if command.cmd == "COPY" and not any(flag.startswith("--from=") for flag in command.flags)
        for source in command.value[:-1]
    }
    assert copied <= allowed, f"COPY of files the .dockerignore leaves out: {copied - allowed}"
