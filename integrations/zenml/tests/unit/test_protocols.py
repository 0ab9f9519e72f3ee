"""The request each protocol's servers read, and their answers read back: pure logic."""

from __future__ import annotations

from zenmodel_zenml.service import predictions, request_body

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_seldon_protocol_sends_an_ndarray() -> None:
    assert request_body("seldon", ROWS) == {"data": {"ndarray": ROWS}}
    assert predictions("seldon", {"data": {"names": [], "ndarray": [0, 2]}}) == [0, 2]


def test_v2_sends_one_flat_tensor_with_its_shape() -> None:
    body = request_body("v2", ROWS)
    assert body == {
        "inputs": [
            {"name": "predict", "shape": [2, 4], "datatype": "FP64", "data": [*ROWS[0], *ROWS[1]]},
        ]
    }
    assert request_body("v2", [[1, 2]])["inputs"][0]["datatype"] == "INT64"
    answer = {"model_name": "iris", "outputs": [{"name": "predict", "shape": [2, 1], "data": [0, 2]}]}
    assert predictions("v2", answer) == [0, 2]


def test_tensorflow_sends_instances() -> None:
    assert request_body("tensorflow", ROWS) == {"instances": ROWS}
    assert predictions("tensorflow", {"predictions": [[0.9, 0.1]]}) == [[0.9, 0.1]]
