"""The stand-ins for Seldon Core's pod images (`make seldon-images`), each run as Seldon's controller runs
it: the storage initializer with Seldon's arguments as UID 8888, the MLServer scikit-learn server with the
environment Seldon gives its container, reading /mnt/models read-only."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support import iris
from support.image import PODMAN_LIMITS, inspect, unavailable_reason
from support.operator_process import free_port
from support.seldon_images import (
    LIVE_PATH,
    MODEL_MOUNT,
    MODEL_SERVER_USER,
    READY_PATH,
    SKLEARN_V2_SERVER,
    STORAGE_INITIALIZER,
    STORAGE_INITIALIZER_USER,
    built_seldon_images,
    model_server_environment,
    storage_initializer_args,
)
from support.waiting import wait_for

reason = unavailable_reason()
pytestmark = [pytest.mark.image, pytest.mark.skipif(reason is not None, reason=reason or "")]

UNIT = "classifier"
FAILED_AT_STARTUP = "[mlserver] ERROR - Some of the models failed to load during startup!"
# Loading a model takes MLServer a few seconds here; Seldon's probes start after 20 s.
READY_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return built_seldon_images()


@pytest.fixture(scope="module")
def server_image(images: dict[str, str]) -> str:
    return images[SKLEARN_V2_SERVER]


def test_the_references_are_the_ones_seldon_config_names(images: dict[str, str]) -> None:
    assert set(images) == {STORAGE_INITIALIZER, SKLEARN_V2_SERVER}
    for reference in images.values():
        assert reference.startswith("docker.io/seldonio/"), reference
        assert inspect(reference)["Config"]["Labels"]["zenmodel.local/source-digest"]


def test_storage_initializer_copies_a_local_model_directory_as_uid_8888(
    images: dict[str, str], tmp_path: Path
) -> None:
    image = images[STORAGE_INITIALIZER]
    config = inspect(image)["Config"]
    assert config["Entrypoint"] == ["rclone", "copy"]
    assert config["User"] == STORAGE_INITIALIZER_USER
    source = tmp_path / "source"
    (source / "nested").mkdir(parents=True)
    (source / "model.joblib").write_bytes(os.urandom(4096))
    (source / "nested" / "settings.json").write_text('{"name": "classifier"}')
    # The pod's shared volume is an emptyDir, which the kubelet makes world-writable.
    models = tmp_path / "models"
    models.mkdir()
    for directory in (source, source / "nested"):
        directory.chmod(0o755)
    models.chmod(0o777)

    result = subprocess.run(
        [
            "podman", "run", "--rm", "--pull=never", "--network=none", "--passwd=false", *PODMAN_LIMITS,
            f"--volume={source}:/source:ro", f"--volume={models}:{MODEL_MOUNT}", image,
            *storage_initializer_args("/source"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    copied = sorted(path.relative_to(models).as_posix() for path in models.rglob("*") if path.is_file())
    assert copied == ["model.joblib", "nested/settings.json"]
    assert (models / "model.joblib").read_bytes() == (source / "model.joblib").read_bytes()
    assert {path.stat().st_uid for path in models.rglob("*")} == {int(STORAGE_INITIALIZER_USER)}
    # RCLONE_VERBOSE=1: rclone says what it copied (names only, never a credential).
    assert "model.joblib: Copied (new)" in result.stderr


@dataclass
class ModelServer:
    """An MLServer container started as Seldon's controller starts it, on the host's loopback."""

    container: str
    http_port: int
    started: float
    statuses: dict[str, set[int | str]] = field(default_factory=dict)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str) -> int | str:
        """The HTTP status of GET ``path``, or the name of the error when nothing answers; each is kept."""
        try:
            status: int | str = self.request("GET", path)[0]
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
        self.statuses.setdefault(path, set()).add(status)
        return status

    def infer(self, rows: list[list[float]]) -> dict[str, Any]:
        """A V2 inference request of one FP64 tensor; the model's answer."""
        body = {"inputs": [{"name": "predict", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
        status, answer = self.request("POST", f"/v2/models/{UNIT}/infer", body)
        assert status == 200, answer
        result: dict[str, Any] = json.loads(answer)
        return result

    def state(self) -> tuple[str, int]:
        """The container's state (running, exited...) and exit code."""
        out = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.container],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        return out[0], int(out[1])

    def logs(self) -> list[str]:
        """Its output, both streams interleaved as a kubelet keeps them."""
        return subprocess.run(
            ["podman", "logs", self.container], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ).stdout.splitlines()


@contextmanager
def model_server(image: str, models: Path) -> Iterator[ModelServer]:
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    environment = model_server_environment(
        unit=UNIT, deployment="iris", namespace="models", predictor="default", image=image,
        http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
    )  # fmt: skip
    # As in the pod: the image's own command and user, the shared volume read-only on /mnt/models.
    container = subprocess.run(
        [
            "podman", "run", "--detach", "--pull=never", "--network=host", *PODMAN_LIMITS,
            f"--volume={models}:{MODEL_MOUNT}:ro", *(f"--env={name}={value}" for name, value in environment.items()),
            image,
        ],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    try:
        yield ModelServer(container, http_port, time.monotonic())
    finally:
        subprocess.run(["podman", "rm", "--force", "--time=5", container], capture_output=True, check=False)


def served_model(image: str, directory: Path, variant: iris.IrisVariant) -> Path:
    """A directory as the storage initializer leaves it: the model, readable by the server's user."""
    iris.train(image, directory, variant)
    for path in (directory, *directory.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def test_model_server_runs_as_upstreams_with_seldons_pod_spec(server_image: str) -> None:
    config = inspect(server_image)["Config"]
    assert config["User"] == MODEL_SERVER_USER
    assert config["WorkingDir"] == "/opt/mlserver"
    assert not config.get("Entrypoint")
    assert "mlserver start" in " ".join(config["Cmd"])
    assert {"MLSERVER_MODELS_DIR=/mnt/models", "MLSERVER_PATH=/opt/mlserver"} <= set(config["Env"])


@pytest.mark.parametrize("variant", [iris.IRIS, iris.PERMUTED], ids=lambda variant: variant.name)
def test_model_server_loads_the_model_and_answers_v2_inference(
    server_image: str, tmp_path: Path, variant: iris.IrisVariant
) -> None:
    models = served_model(server_image, tmp_path / "models", variant)
    with model_server(server_image, models) as server:
        wait_for(
            lambda: server.get(READY_PATH) == 200 or server.state()[0] != "running",
            READY_TIMEOUT, "MLServer ready",
        )  # fmt: skip
        assert server.get(READY_PATH) == 200, "\n".join(server.logs()[-30:])
        print(f"\nMLServer ({variant.name}): start to ready in {time.monotonic() - server.started:.1f}s")
        assert server.get(LIVE_PATH) == 200
        assert server.get(f"/v2/models/{UNIT}/ready") == 200
        answer = server.infer([list(sample) for sample in iris.SAMPLES])

    assert answer["model_name"] == UNIT and answer["model_version"] == "v1"
    (output,) = answer["outputs"]
    assert output["name"] == "predict"
    assert output["data"] == variant.expected_classes()


def test_a_corrupt_model_ends_the_server_with_the_cause_in_its_log_and_never_a_ready_model(
    server_image: str, tmp_path: Path
) -> None:
    """What the operator sees of a model that does not load: MLServer logs the failure, stops its servers
    and exits, with status 0 (so the kubelet reports the container Completed, then CrashLoopBackOff). Its
    own model never reads ready; the server-wide /v2/health/ready may answer 200 for an instant between
    dropping the model and shutting down, long before Seldon's first probe at 20 s."""
    models = served_model(server_image, tmp_path / "models", iris.IRIS)
    # As an interrupted copy leaves it: the first half of a good model.
    model = models / iris.MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])

    with model_server(server_image, models) as server:

        def exited() -> bool:
            server.get(f"/v2/models/{UNIT}/ready")
            server.get(READY_PATH)
            return server.state()[0] != "running"

        wait_for(exited, READY_TIMEOUT, "MLServer exits on a corrupt model", interval=0.05)
        exit_code = server.state()[1]
        logs = server.logs()
        print(
            f"\nMLServer (corrupt model): exited {exit_code} after {time.monotonic() - server.started:.1f}s"
        )
        print(f"  last line: {logs[-1]!r}; readiness seen: {sorted(map(str, server.statuses[READY_PATH]))}")

    assert exit_code == 0
    assert 200 not in server.statuses[f"/v2/models/{UNIT}/ready"]
    assert f"Couldn't load model '{UNIT}'. Model will be removed from registry." in "\n".join(logs)
    (failure,) = [i for i, line in enumerate(logs) if FAILED_AT_STARTUP in line]
    cause = next(line for line in logs[failure:] if line.startswith("mlserver.parallel.errors.WorkerError"))
    print(f"  {len(logs) - failure} lines from the end: {logs[failure]!r}, the cause {cause!r}")
    # The cause is not the last line a person sees: after it come its traceback and the shutdown, which
    # ends in an ordinary INFO line (uvicorn's or MLServer's, whichever stream wrote last).
    assert logs[-1].endswith(
        ("INFO:     Finished server process [1]", "Shutdown of default inference pool complete")
    )
