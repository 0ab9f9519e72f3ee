"""The pod Seldon Core's own controller generates for a SKLEARN_SERVER v2 model asks for the images
`make seldon-images` builds, and runs them as tests/image/test_seldon_images.py runs them: the same
arguments, environment, probes, mounts and users."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.localcluster import LocalCluster
from support.objects import apply_until_available, must_get, s3_secret, zmd
from support.seldon_images import (
    FIRST_METRICS_PORT,
    LIVE_PATH,
    MODEL_MOUNT,
    READY_PATH,
    SKLEARN_V2_SERVER,
    STORAGE_INITIALIZER,
    model_server_environment,
    seldon_image_references,
    storage_initializer_args,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]


def named(containers: list[dict[str, Any]], reference: str) -> dict[str, Any]:
    """The one container whose image is ``reference`` as a runtime resolves a short name."""
    found = [c for c in containers if reference == c["image"] or reference.endswith("/" + c["image"])]
    assert len(found) == 1, f"not one {reference} among {[c['image'] for c in containers]}"
    return found[0]


def test_seldons_sklearn_v2_pod_runs_the_images_built_here_as_their_tests_run_them(
    cluster: LocalCluster, namespace: str
) -> None:
    doc = zmd("iris", namespace)
    doc["spec"]["model"]["protocol"] = "v2"
    apply_until_available(cluster, s3_secret(namespace), doc)
    sdep = must_get(cluster, "seldondeployment", namespace, "iris")
    (predictor,) = sdep["spec"]["predictors"]
    listed = cluster.kubectl(
        "get", "deployments", "-n", namespace, "-l", "seldon-deployment-id=iris", "-o", "json"
    )
    (deployment,) = json.loads(listed.stdout)["items"]
    pod = deployment["spec"]["template"]["spec"]
    references = seldon_image_references()

    initializer = named(pod["initContainers"], references[STORAGE_INITIALIZER])
    assert "command" not in initializer
    assert initializer["args"] == storage_initializer_args(doc["spec"]["model"]["uri"])

    server = named(pod["containers"], references[SKLEARN_V2_SERVER])
    assert "command" not in server and "args" not in server
    ports = {port["name"]: port["containerPort"] for port in server["ports"]}
    expected = model_server_environment(
        unit=server["name"],
        deployment=sdep["metadata"]["name"],
        namespace=namespace,
        predictor=predictor["name"],
        image=server["image"],
        http_port=ports["http"],
        grpc_port=ports["grpc"],
        metrics_port=FIRST_METRICS_PORT,
    )
    assert [(variable["name"], variable["value"]) for variable in server["env"]] == list(expected.items())
    assert server["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "http", "scheme": "HTTP"}
    assert server["livenessProbe"]["httpGet"] == {"path": LIVE_PATH, "port": "http", "scheme": "HTTP"}
    (models,) = [mount for mount in server["volumeMounts"] if mount["mountPath"] == MODEL_MOUNT]
    assert models.get("readOnly") is True
    # No user is set for either: each image's own USER applies, as in the image tests.
    assert "runAsUser" not in (pod.get("securityContext") or {})
    assert all("securityContext" not in container for container in (initializer, server))
