"""Which failed writes are the object's fault (a condition), not the server's (a retry)."""

from __future__ import annotations

import pytest

from zenmodel_operator.kube import TYPED_PATCH_FAILURE, rejects_the_object

# The apiserver's words when Seldon's CRD lacks a field of the applied SeldonDeployment.
UNKNOWN_FIELD = (
    f"{TYPED_PATCH_FAILURE} (machinelearning.seldon.io/v1, Kind=SeldonDeployment): "
    ".spec.predictors[0].componentSpecs[0].spec.containers[0].newField: field not declared in schema"
)


@pytest.mark.parametrize(
    ("status", "method", "message", "rejected"),
    [
        (422, "PATCH", "SeldonDeployment.machinelearning.seldon.io is invalid", True),
        (400, "PATCH", "bad request", True),
        (500, "PATCH", UNKNOWN_FIELD, True),
        (500, "PATCH", "etcdserver: request timed out", False),
        (503, "PATCH", "service unavailable", False),
        (500, "POST", UNKNOWN_FIELD, False),
        (409, "PATCH", "conflict", False),
    ],
)
def test_only_the_objects_own_faults_are_rejections(
    status: int, method: str, message: str, rejected: bool
) -> None:
    assert rejects_the_object(status, method, message) is rejected
