"""No spec string reaches a secret through Kubernetes' `$(VAR)` expansion, end to end.

A reference in the model URI is refused by `kubectl apply`. A reference in a parameter value is arbitrary
text and is accepted: the operator's SeldonDeployment carries it so that the kubelet's expansion (run here
over the args and env Seldon derives from that SeldonDeployment, with the real rclone Secret as the
environment) gives the model server exactly what the user wrote, and never a credential.
"""

from __future__ import annotations

import json

import pytest

from support.kubelet import expand, seldon_container_strings
from support.localcluster import LocalCluster
from support.objects import TIMEOUT, apply, decoded, get, must_get, s3_secret, zmd
from support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]

SECRET_KEY = "expansion-secret-key"
REFERENCE = "$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)"


def test_a_reference_in_the_model_uri_is_refused_by_kubectl(cluster: LocalCluster, namespace: str) -> None:
    apply(cluster, s3_secret(namespace, secret_key=SECRET_KEY))
    document = zmd("leak", namespace, uri=f"s3://models/{REFERENCE}")
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(document), check=False)
    assert result.returncode != 0
    assert "spec.model.uri" in result.stderr
    assert "contains '$(', which Kubernetes expands as a variable reference" in result.stderr
    assert get(cluster, "zmd", namespace, "leak") is None


def test_parameters_reach_the_model_server_as_written(cluster: LocalCluster, namespace: str) -> None:
    values = [REFERENCE, "a$$b", "$", "cost in $(USD)"]
    parameters = [{"name": f"p{i}", "type": "STRING", "value": v} for i, v in enumerate(values)]
    model = {
        "name": "iris",
        "uri": "s3://models/iris",
        "implementation": "SKLEARN_SERVER",
        "parameters": parameters,
    }
    apply(cluster, s3_secret(namespace, secret_key=SECRET_KEY), zmd("params", namespace, model=model))
    wait_for(lambda: get(cluster, "seldondeployment", namespace, "params") is not None, TIMEOUT, "no child")
    seldon = must_get(cluster, "seldondeployment", namespace, "params")
    rclone_env = decoded(must_get(cluster, "secret", namespace, "params-rclone"))
    assert rclone_env["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"] == SECRET_KEY

    strings = seldon_container_strings(seldon)
    for container, container_strings in strings.items():
        for value in container_strings:
            seen = expand(value, rclone_env)  # as if every container had the credentials
            assert SECRET_KEY not in seen, container
    (parameters_env,) = strings["iris"]
    received = {p["name"]: p["value"] for p in json.loads(expand(parameters_env, rclone_env))}
    assert [received[f"p{i}"] for i in range(len(values))] == values
