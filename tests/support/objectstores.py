"""Local object-store servers holding one model, for the real rclone: moto's S3 (IAM authentication
enforced), Azurite's Blob service, fake-gcs-server, and a Google OAuth token endpoint for service-account
keys. They listen on 127.0.0.1 only, on free ports; hack/test-deps.sh installs them, and a missing one
fails the test (nothing is skipped).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import boto3  # type: ignore[import-untyped]  # (no stubs in the dev extra)
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from zenmodel_operator.core.credentials import AZURE_EMULATOR_ACCOUNT

REPO = Path(__file__).resolve().parents[2]
MODEL = b"\x80\x04model bytes \x00\xff" + os.urandom(4096)  # binary, so a text-mode copy would show
MODEL_FILE = "model.joblib"
BUCKET = "models"
MODEL_DIR = "iris/v3"
# ENV of Seldon Core's rclone storage initializer image (components/rclone-storage-initializer/Dockerfile);
# the Secret's keys come on top of it, as envFrom overrides an image's ENV.
INITIALIZER_IMAGE_ENV = {
    "RCLONE_CONFIG_GS_TYPE": "google cloud storage",
    "RCLONE_CONFIG_GS_ANONYMOUS": "true",
    "RCLONE_VERBOSE": "1",
}
# ... and its entrypoint: the init container's args follow it.
INITIALIZER_ENTRYPOINT = ["rclone", "copy"]
STARTUP_TIMEOUT = 30.0


def tool_paths() -> dict[str, Path]:
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "test-deps.sh"), "--print"], check=True, capture_output=True, text=True
    ).stdout
    return {name: Path(path) for name, _, path in (line.partition("=") for line in out.splitlines())}


def require_tool(name: str) -> Path:
    path = tool_paths()[name]
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} is not installed at {path}: run hack/test-deps.sh", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{process.args!r} exited with {process.returncode}:\n{log.read_text()}", pytrace=False
            )
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(
        f"{process.args!r} did not listen on {host}:{port} in {STARTUP_TIMEOUT}s:\n{log.read_text()}",
        pytrace=False,
    )


@contextmanager
def serve(
    args: list[str], port: int, workdir: Path, env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Runs a server listening on ``host`` until the block ends; gives its http:// endpoint once it listens."""
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], "HOME": str(workdir), **(env or {})},
        )
    try:
        wait_for_port(port, process, log, host)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class S3:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    iam: Any  # moto's IAM, as an administrator: to rotate the reader's key

    def rotate_key(self) -> S3:
        """A new key for the reader, the old one deleted: from now on only the new one reads the models."""
        new = self.iam.create_access_key(UserName=S3_READER)["AccessKey"]
        self.iam.delete_access_key(UserName=S3_READER, AccessKeyId=self.access_key_id)
        return replace(self, access_key_id=new["AccessKeyId"], secret_access_key=new["SecretAccessKey"])


S3_READER = "model-reader"


def _iam_user(iam: Any, name: str, actions: str) -> dict[str, str]:
    """An IAM user allowed ``actions`` on everything, and its access key."""
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName=actions, PolicyDocument=json.dumps(policy))
    key: dict[str, str] = iam.create_access_key(UserName=name)["AccessKey"]
    return key


@contextmanager
def moto_s3(
    workdir: Path, host: str = "127.0.0.1", objects: Mapping[str, bytes] | None = None
) -> Iterator[S3]:
    """moto's S3 server with IAM authentication enforced, listening on ``host``, holding ``objects`` (keys
    in BUCKET; by default the one model); its endpoint and a key that may read them."""
    port = free_port()
    # moto accepts any key unless told otherwise: after this many unauthenticated requests (the IAM calls
    # making an administrator), every request must be signed by a key IAM knows, with a policy that
    # allows it.
    auth = {"INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    args = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    with serve(args, port, workdir, auth, host) as endpoint:
        session = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        setup = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **session)
        admin = _iam_user(setup, "administrator", "iam:*")
        iam = boto3.client(
            "iam",
            aws_access_key_id=admin["AccessKeyId"],
            aws_secret_access_key=admin["SecretAccessKey"],
            **session,
        )
        key = _iam_user(iam, S3_READER, "s3:*")
        s3 = boto3.client(
            "s3",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            **session,
        )
        s3.create_bucket(Bucket=BUCKET)
        for name, body in (objects or {f"{MODEL_DIR}/{MODEL_FILE}": MODEL}).items():
            s3.put_object(Bucket=BUCKET, Key=name, Body=body)
        yield S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], iam)


def account_sas(account_key: str) -> str:
    """A read/list account SAS for Azurite's development account, signed as Azure Storage specifies
    (account SAS, version 2019-12-12)."""
    fields = {"sv": "2019-12-12", "ss": "b", "srt": "sco", "sp": "rl", "se": "2099-01-01T00:00:00Z"}
    to_sign = "\n".join(
        [
            AZURE_EMULATOR_ACCOUNT,
            fields["sp"],
            fields["ss"],
            fields["srt"],
            "",
            fields["se"],
            "",
            "",
            fields["sv"],
            "",
        ]
    )
    signature = hmac.new(base64.b64decode(account_key), to_sign.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "sig": base64.b64encode(signature).decode()})


WRONG_KEY = base64.b64encode(b"not the development account key!").decode()


def azurite_connection_string(blob_endpoint: str, key: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURE_EMULATOR_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={blob_endpoint};"
    )


@contextmanager
def azurite_blob(
    workdir: Path, host: str = "127.0.0.1", objects: Mapping[str, bytes] | None = None
) -> Iterator[str]:
    """Azurite's blob endpoint for the development account, listening on ``host``, holding ``objects``
    (paths in the BUCKET container; by default the one model)."""
    port = free_port()
    args = [
        str(require_tool("azurite-blob")),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(workdir),
        "--silent",
        "--skipApiVersionCheck",
    ]
    with serve(args, port, workdir, host=host) as endpoint:
        blob_endpoint = f"{endpoint}/{AZURE_EMULATOR_ACCOUNT}"
        # Upload with rclone's emulator mode (setup, not under test).
        upload = {
            "RCLONE_CONFIG_UP_TYPE": "azureblob",
            "RCLONE_CONFIG_UP_USE_EMULATOR": "true",
            "RCLONE_CONFIG_UP_ENDPOINT": blob_endpoint,
        }
        for number, (key, body) in enumerate((objects or {f"{MODEL_DIR}/{MODEL_FILE}": MODEL}).items()):
            source = workdir / f"upload-{number}"
            source.write_bytes(body)
            subprocess.run(
                [str(require_tool("rclone")), "copyto", str(source), f"up:{BUCKET}/{key}"],
                env={"PATH": os.environ["PATH"], "HOME": str(workdir), **upload},
                check=True,
                capture_output=True,
                timeout=60,
            )
        yield blob_endpoint


@contextmanager
def fake_gcs(workdir: Path) -> Iterator[str]:
    """fake-gcs-server's JSON API endpoint, holding the model."""
    port = free_port()
    seed = workdir / "seed" / BUCKET / MODEL_DIR
    seed.mkdir(parents=True)
    (seed / MODEL_FILE).write_bytes(MODEL)
    url = f"http://127.0.0.1:{port}"
    args = [
        str(require_tool("fake-gcs-server")),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-data",
        str(workdir / "seed"),
        "-external-url",
        url,
        "-public-host",
        f"127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]
    with serve(args, port, workdir) as endpoint:
        yield f"{endpoint}/storage/v1/"


@dataclass
class TokenEndpoint:
    """Google's OAuth token endpoint for the JWT-bearer grant of service-account keys: it answers only
    assertions signed by the key it knows, for the account it knows."""

    url: str
    client_email: str
    public_key: rsa.RSAPublicKey
    granted: list[str]


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def make_handler(endpoint: TokenEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            assertion = form.get("assertion", [""])[0]
            header, _, signed = assertion.partition(".")
            payload, _, signature = signed.partition(".")
            try:
                endpoint.public_key.verify(
                    b64url_decode(signature),
                    f"{header}.{payload}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
                claims = json.loads(b64url_decode(payload))
                valid = claims["iss"] == endpoint.client_email and claims["aud"] == endpoint.url
            except Exception:  # a bad signature or a malformed assertion: both refused
                valid = False
            if valid:
                token = f"access-{len(endpoint.granted)}"
                endpoint.granted.append(token)
                self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
            else:
                self.answer(400, {"error": "invalid_grant"})

        def answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows the test's own output

    return Handler


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@contextmanager
def google_token_endpoint() -> Iterator[tuple[TokenEndpoint, rsa.RSAPrivateKey]]:
    """A token endpoint that knows one service account's key; the endpoint and that key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    port = free_port()
    endpoint = TokenEndpoint(
        f"http://127.0.0.1:{port}/token", "model-reader@test.iam.gserviceaccount.com", key.public_key(), []
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(endpoint))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint, key
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def service_account_key(endpoint: TokenEndpoint, key: rsa.RSAPrivateKey) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "k1",
            "private_key": private_key_pem(key),
            "client_email": endpoint.client_email,
            "client_id": "1",
            "token_uri": endpoint.url,
        }
    )
