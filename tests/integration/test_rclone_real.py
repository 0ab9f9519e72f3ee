"""The rendered rclone config, proven with the real rclone against local object-store servers.

Each test renders a config from native credentials with `rclone_config` and runs `rclone copy
<modelUri> <dir>` the way Seldon's storage initializer does: the rendered keys as the environment, over
the ENV its image sets, with PATH and a fresh HOME (so no rclone.conf is read) and nothing else. The
servers listen on 127.0.0.1 only, on free ports; hack/test-deps.sh installs them. A missing one fails
the test: nothing here is skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.objectstores import (
    BUCKET,
    INITIALIZER_IMAGE_ENV,
    MODEL,
    MODEL_DIR,
    MODEL_FILE,
    S3,
    WRONG_KEY,
    TokenEndpoint,
    account_sas,
    azurite_blob,
    azurite_connection_string,
    fake_gcs,
    google_token_endpoint,
    moto_s3,
    require_tool,
    service_account_key,
)
from zenmodel_operator.api.spec import Credentials
from zenmodel_operator.core.credentials import (
    AZURE_EMULATOR_KEY,
    CredentialsError,
    SourceSecret,
    rclone_config,
)
from zenmodel_operator.core.labels import CREDENTIALS_KEY
from zenmodel_operator.core.storage import parse_model_uri

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite_blob(tmp_path_factory.mktemp("azurite")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fake_gcs(tmp_path_factory.mktemp("gcs")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def service_account() -> Iterator[tuple[TokenEndpoint, rsa.RSAPrivateKey]]:
    with google_token_endpoint() as endpoint_and_key:
        yield endpoint_and_key


def rclone_copy(config: Mapping[str, str], uri: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`rclone copy <uri> <home>/models` as the storage initializer runs it, into a fresh directory."""
    rclone = require_tool("rclone")
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), **INITIALIZER_IMAGE_ENV, **config}
    # One try each, so that refused credentials fail in seconds; the authentication itself is untouched.
    args = [str(rclone), "copy", uri, str(home / "models"), "--retries", "1", "--low-level-retries", "1"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)


def assert_copied(result: subprocess.CompletedProcess[str], home: Path) -> None:
    assert result.returncode == 0, result.stderr
    assert (home / "models" / MODEL_FILE).read_bytes() == MODEL


def assert_refused(result: subprocess.CompletedProcess[str], home: Path) -> None:
    assert result.returncode != 0, result.stderr
    assert not (home / "models" / MODEL_FILE).exists()


def opted_in(name: str, data: Mapping[str, str]) -> SourceSecret:
    return SourceSecret(name, {CREDENTIALS_KEY: "true"}, {k: v.encode() for k, v in data.items()})


def render(
    uri: str, options: Mapping[str, Any], data: Mapping[str, str] | None
) -> tuple[dict[str, str], str]:
    credentials = Credentials.model_validate(
        {**options, **({"secretRef": {"name": "creds"}} if data else {})}
    )
    location = parse_model_uri(uri)
    secret = opted_in("creds", data) if data is not None else None
    return rclone_config(location, credentials, secret, require_opt_in=True), location.seldon_uri


def test_rclone_is_installed() -> None:
    version = subprocess.run(
        [str(require_tool("rclone")), "version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("rclone v1.")


# --- S3: moto's server, with IAM authentication enforced -------------------------------------------


@pytest.mark.parametrize("provider", ["Minio", "Other"])
def test_s3_access_key_copies_the_model(s3: S3, provider: str, tmp_path: Path) -> None:
    config, uri = render(
        f"s3://{BUCKET}/{MODEL_DIR}",
        {"s3": {"endpoint": s3.endpoint, "region": "us-east-1", "provider": provider}},
        {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": s3.secret_access_key},
    )
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)


def test_s3_zenml_rclone_secret_copies_the_model(s3: S3, tmp_path: Path) -> None:
    config, uri = render(
        f"s3://{BUCKET}/{MODEL_DIR}",
        {"s3": {"endpoint": s3.endpoint, "region": "us-east-1"}},
        {
            "rclone_config_s3_type": "s3",
            "rclone_config_s3_provider": "Minio",
            "rclone_config_s3_env_auth": "False",
            "rclone_config_s3_access_key_id": s3.access_key_id,
            "rclone_config_s3_secret_access_key": s3.secret_access_key,
        },
    )
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)


def test_s3_wrong_secret_key_is_refused(s3: S3, tmp_path: Path) -> None:
    config, uri = render(
        f"s3://{BUCKET}/{MODEL_DIR}",
        {"s3": {"endpoint": s3.endpoint, "region": "us-east-1", "provider": "Minio"}},
        {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": "not-the-" + s3.secret_access_key},
    )
    result = rclone_copy(config, uri, tmp_path)
    assert_refused(result, tmp_path)
    assert "SignatureDoesNotMatch" in result.stderr


# --- Azure Blob: Azurite -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "copies"), [(AZURE_EMULATOR_KEY, True), (WRONG_KEY, False)], ids=["right", "wrong"]
)
def test_azure_sas_url(azurite: str, key: str, copies: bool, tmp_path: Path) -> None:
    config, uri = render(
        f"az://{BUCKET}/{MODEL_DIR}", {}, {"AZURE_STORAGE_SAS_URL": f"{azurite}?{account_sas(key)}"}
    )
    result = rclone_copy(config, uri, tmp_path)
    (assert_copied if copies else assert_refused)(result, tmp_path)


@pytest.mark.parametrize(
    ("key", "copies"), [(AZURE_EMULATOR_KEY, True), (WRONG_KEY, False)], ids=["right", "wrong"]
)
def test_azure_connection_string_with_sas(azurite: str, key: str, copies: bool, tmp_path: Path) -> None:
    connection = f"BlobEndpoint={azurite};SharedAccessSignature={account_sas(key)}"
    config, uri = render(f"az://{BUCKET}/{MODEL_DIR}", {}, {"AZURE_STORAGE_CONNECTION_STRING": connection})
    result = rclone_copy(config, uri, tmp_path)
    (assert_copied if copies else assert_refused)(result, tmp_path)


def test_azure_connection_string_with_account_key(azurite: str, tmp_path: Path) -> None:
    connection = azurite_connection_string(azurite, AZURE_EMULATOR_KEY)
    config, uri = render(f"az://{BUCKET}/{MODEL_DIR}", {}, {"AZURE_STORAGE_CONNECTION_STRING": connection})
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)


def test_azure_connection_string_with_wrong_account_key_is_refused(azurite: str) -> None:
    # rclone <= 1.60 signs requests to an http:// endpoint only as the emulator's development account,
    # so another key there cannot work: refused when rendering, before any pod starts.
    connection = azurite_connection_string(azurite, WRONG_KEY)
    with pytest.raises(CredentialsError) as refused:
        render(f"az://{BUCKET}/{MODEL_DIR}", {}, {"AZURE_STORAGE_CONNECTION_STRING": connection})
    assert refused.value.reason == "InvalidCredentials"


# --- Google Cloud Storage: fake-gcs-server, and an OAuth token endpoint -----------------------------


def test_gcs_anonymous_copies_a_public_model(gcs: str, tmp_path: Path) -> None:
    config, uri = render(f"gs://{BUCKET}/{MODEL_DIR}", {"gcs": {"endpoint": gcs}}, None)
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)


def test_gcs_oauth_token_copies_the_model(gcs: str, tmp_path: Path) -> None:
    config, uri = render(
        f"gs://{BUCKET}/{MODEL_DIR}", {"gcs": {"endpoint": gcs}}, {"GCS_OAUTH_TOKEN": "ya29.test"}
    )
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)


def test_gcs_service_account_key_copies_the_model(
    gcs: str, service_account: tuple[TokenEndpoint, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    endpoint, key = service_account
    granted_before = len(endpoint.granted)
    config, uri = render(
        f"gs://{BUCKET}/{MODEL_DIR}",
        {"gcs": {"endpoint": gcs}},
        {"gcloud-application-credentials.json": service_account_key(endpoint, key)},
    )
    assert_copied(rclone_copy(config, uri, tmp_path), tmp_path)
    # rclone authenticated with the key, although the initializer image presets anonymous access.
    assert len(endpoint.granted) > granted_before


def test_gcs_service_account_with_another_key_is_refused(
    gcs: str, service_account: tuple[TokenEndpoint, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    endpoint, _ = service_account
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    config, uri = render(
        f"gs://{BUCKET}/{MODEL_DIR}",
        {"gcs": {"endpoint": gcs}},
        {"gcloud-application-credentials.json": service_account_key(endpoint, impostor)},
    )
    result = rclone_copy(config, uri, tmp_path)
    assert_refused(result, tmp_path)
    assert "invalid_grant" in result.stderr
