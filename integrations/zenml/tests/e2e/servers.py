"""Real model servers for the prediction tests, on loopback: MLServer (from PyPI) and a stand-in for
Seldon's ingress, which routes /seldon/<namespace>/<name>/<path> to the predictor as /<path>."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from support.waiting import wait_for

STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@contextmanager
def mlserver(model_dir: Path, model_name: str, port: int) -> Iterator[str]:
    """MLServer's sklearn runtime serving `model_dir`/model.joblib as `model_name`, on `port`."""
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    (model_dir / "settings.json").write_text(json.dumps({**settings, "parallel_workers": 0}))
    model_settings = {
        "name": model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    log = model_dir.parent / "mlserver.log"
    executable = Path(sys.executable).with_name("mlserver")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(executable), "start", str(model_dir)], stdout=out, stderr=subprocess.STDOUT, cwd=model_dir
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"mlserver exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            return _answers(f"{url}/v2/models/{model_name}/ready")

        wait_for(ready, STARTUP_TIMEOUT, f"MLServer never served {model_name}; log: {log}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def ingress(upstream_port: int) -> Iterator[str]:
    """Seldon's ingress, as far as a prediction goes: strips /seldon/<namespace>/<name> and forwards."""

    class Route(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = self.path.split("/", 4)  # ["", "seldon", namespace, name, rest]
            if len(parts) < 5 or parts[1] != "seldon":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            response = requests.post(
                f"http://127.0.0.1:{upstream_port}/{parts[4]}",
                data=body,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                timeout=60,
            )
            answer = response.content
            self.send_response(response.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Route)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
