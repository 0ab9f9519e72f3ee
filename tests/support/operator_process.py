"""The operator as a real process, as it runs in a cluster: `python -m zenmodel_operator run` (tests, demo)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from support.measures import rss_kib, sample_sum
from support.waiting import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *args: str,
        wrapper: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        """`wrapper`: a command that runs the operator (e.g. as another user); `python`: an interpreter with
        the operator installed (another environment's, for the ZenML flavor's tests)."""
        self.env = env
        self.python = python
        self.log_path = log_path
        self.args = args
        self.wrapper = tuple(wrapper)
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        command = [
            *self.wrapper,
            self.python,
            "-m",
            "zenmodel_operator",
            "run",
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self.healthy, timeout, f"operator never became healthy; log: {self.log_path}")
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def metric_sum(self, name: str) -> float:
        """The sum of the operator's samples called `name`, whatever their labels."""
        return sample_sum(self.metrics(), name)

    def drained(self, reconciles: float) -> bool:
        """At least `reconciles` reconciles done and none waiting; False until /metrics answers."""
        try:
            return (
                self.metric_sum("zenmodel_reconcile_total") >= reconciles
                and self.metric_sum("zenmodel_workqueue_depth") == 0
            )
        except OSError:
            return False

    def rss_mib(self) -> float:
        assert self.proc is not None
        return rss_kib(self.proc.pid) / 1024

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> OperatorProcess:
        """Starts it; leaving the block stops it."""
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
