"""The model-fetch chain end to end, without a kubelet: from the Deployment Seldon Core's controller
generated, take the storage initializer exactly as a kubelet would start it, and run it.

kwok's fake Node runs no containers, so this test plays the kubelet for the one init container that
matters: its environment comes from its `envFrom` (our rclone Secret, read back from the API) over the
image's ENV, its command line is the image's entrypoint followed by its `$(VAR)`-expanded args, and its
volume mount is a local directory. The image is Seldon's rclone storage initializer; what it runs is in
SeldonIO/seldon-core components/rclone-storage-initializer/Dockerfile: ENTRYPOINT ["rclone", "copy"],
with ENV RCLONE_CONFIG_GS_TYPE, RCLONE_CONFIG_GS_ANONYMOUS and RCLONE_VERBOSE. The real rclone then
copies from local moto S3, Azurite and fake-gcs-server.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support import kubelet
from support.localcluster import LocalCluster
from support.objects import STORAGE_INITIALIZER_IMAGE, apply_until_available, must_get, secret, zmd
from support.objectstores import (
    BUCKET,
    INITIALIZER_ENTRYPOINT,
    INITIALIZER_IMAGE_ENV,
    MODEL,
    MODEL_DIR,
    MODEL_FILE,
    S3,
    WRONG_KEY,
    TokenEndpoint,
    account_sas,
    azurite_blob,
    fake_gcs,
    google_token_endpoint,
    moto_s3,
    require_tool,
    service_account_key,
)
from zenmodel_operator.core.credentials import AZURE_EMULATOR_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]

URI_PATH = f"{BUCKET}/{MODEL_DIR}"


Model = tuple[str, dict[str, Any], dict[str, str]]  # the URI, the credentials' options, the Secret's data


@dataclass(frozen=True)
class Stores:
    s3: S3
    azurite: str
    gcs: str
    token_endpoint: TokenEndpoint
    service_account: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    with (
        moto_s3(tmp_path_factory.mktemp("moto")) as s3,
        azurite_blob(tmp_path_factory.mktemp("azurite")) as azurite,
        fake_gcs(tmp_path_factory.mktemp("gcs")) as gcs,
        google_token_endpoint() as (token_endpoint, key),
    ):
        yield Stores(s3, azurite, gcs, token_endpoint, key)


def s3_model(stores: Stores, secret_key: str) -> Model:
    options = {"s3": {"endpoint": stores.s3.endpoint, "region": "us-east-1", "provider": "Minio"}}
    data = {"AWS_ACCESS_KEY_ID": stores.s3.access_key_id, "AWS_SECRET_ACCESS_KEY": secret_key}
    return f"s3://{URI_PATH}", options, data


def azure_model(stores: Stores, account_key: str) -> Model:
    connection = f"BlobEndpoint={stores.azurite};SharedAccessSignature={account_sas(account_key)}"
    return f"az://{URI_PATH}", {}, {"AZURE_STORAGE_CONNECTION_STRING": connection}


def gcs_model(stores: Stores, signing_key: rsa.RSAPrivateKey) -> Model:
    key = service_account_key(stores.token_endpoint, signing_key)
    return f"gs://{URI_PATH}", {"gcs": {"endpoint": stores.gcs}}, {"gcloud-application-credentials.json": key}


IMPOSTOR = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# Each case: how to reference the model, and None if the credentials must be accepted, else what the
# store's refusal says.
CASES: dict[str, tuple[Callable[[Stores], Model], str | None]] = {
    "s3": (lambda stores: s3_model(stores, stores.s3.secret_access_key), None),
    "s3-wrong-secret-key": (
        lambda stores: s3_model(stores, "not-the-" + stores.s3.secret_access_key),
        "SignatureDoesNotMatch",
    ),
    "azure-sas": (lambda stores: azure_model(stores, AZURE_EMULATOR_KEY), None),
    "azure-sas-signed-with-another-key": (
        lambda stores: azure_model(stores, WRONG_KEY),
        "AuthorizationFailure",
    ),
    "gcs-service-account": (lambda stores: gcs_model(stores, stores.service_account), None),
    "gcs-service-account-signed-with-another-key": (
        lambda stores: gcs_model(stores, IMPOSTOR),
        "invalid_grant",
    ),
}


def storage_initializer(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    out = cluster.kubectl(
        "get", "deployments", "-n", namespace, "-l", "seldon-deployment-id=iris", "-o", "json"
    )
    (deployment,) = json.loads(out.stdout)["items"]
    (container,) = [
        c
        for c in deployment["spec"]["template"]["spec"]["initContainers"]
        if c["image"] == STORAGE_INITIALIZER_IMAGE
    ]
    return dict(container)


def secrets_for(
    cluster: LocalCluster, namespace: str, container: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """The decoded data of every Secret the container's `envFrom` names, read from the API as a kubelet does."""
    names = [
        source["secretRef"]["name"] for source in container.get("envFrom") or [] if "secretRef" in source
    ]
    return {
        name: {
            key: base64.b64decode(value).decode()
            for key, value in (must_get(cluster, "secret", namespace, name).get("data") or {}).items()
        }
        for name in names
    }


def run_as_kubelet_would(
    container: dict[str, Any], secrets: dict[str, dict[str, str]], root: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Starts the init container's process here: the image's ENV under the container's environment, the
    image's entrypoint with the expanded args, and each volume mount as a directory under `root`."""
    env = {**INITIALIZER_IMAGE_ENV, **kubelet.environment(container, secrets)}
    argv = kubelet.command_line(container, INITIALIZER_ENTRYPOINT, env)
    mounts = {mount["mountPath"]: root / mount["name"] for mount in container.get("volumeMounts") or []}
    for local in mounts.values():
        local.mkdir(parents=True)
    argv = [str(mounts[arg]) if arg in mounts else arg for arg in argv]
    assert argv[0] == "rclone"
    argv[0] = str(require_tool("rclone"))
    home = root / "home"
    home.mkdir()
    process_env = {"PATH": os.environ["PATH"], "HOME": str(home), **env}
    # One try each, so that refused credentials fail in seconds; the authentication itself is untouched.
    argv += ["--retries", "1", "--low-level-retries", "1"]
    result = subprocess.run(argv, env=process_env, capture_output=True, text=True, timeout=120, check=False)
    (target,) = [mounts[arg] for arg in container["args"] if arg in mounts]
    return result, target


@pytest.mark.parametrize("case", list(CASES))
def test_the_storage_initializer_seldon_generates_fetches_the_model_with_our_secret(
    cluster: LocalCluster, namespace: str, stores: Stores, case: str, tmp_path: Path
) -> None:
    model, refusal = CASES[case]
    uri, options, data = model(stores)
    doc = zmd("iris", namespace, uri=uri)
    doc["spec"]["credentials"] = {"secretRef": {"name": "creds"}, **options}
    apply_until_available(cluster, secret(namespace, "creds", data), doc)

    container = storage_initializer(cluster, namespace)
    assert container["envFrom"] == [{"secretRef": {"name": "iris-rclone"}}]
    result, target = run_as_kubelet_would(container, secrets_for(cluster, namespace, container), tmp_path)

    if refusal is None:
        assert result.returncode == 0, result.stderr
        assert (target / MODEL_FILE).read_bytes() == MODEL
    else:
        assert result.returncode != 0, result.stderr
        assert refusal in result.stderr
        assert not (target / MODEL_FILE).exists()
