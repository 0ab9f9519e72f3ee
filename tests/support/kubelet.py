"""The kubelet's expansion of `$(VAR)` in a container's command, args and env values, as a pure function.

A transcription of k8s.io/kubernetes third_party/forked/golang/expansion (Expand, tryReadVariableName and
MappingFuncFor): `$(NAME)` becomes the variable's value when it is defined and stays as written when it is
not, `$$` becomes `$`, and any other `$` (a lone one at the end, or one before a character other than
`$` and `(`, or a `$(` that is never closed) is copied as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OPERATOR = "$"
OPENER = "("
CLOSER = ")"


def _read_variable_name(rest: str) -> tuple[str, bool, int]:
    """What follows a `$`: (text or name, whether it is a variable reference, characters consumed)."""
    if rest[0] == OPERATOR:
        return OPERATOR, False, 1  # escaped operator
    if rest[0] == OPENER:
        closer = rest.find(CLOSER, 1)
        if closer == -1:
            return OPERATOR + OPENER, False, 1  # incomplete reference: kept as written
        return rest[1:closer], True, closer + 1
    return OPERATOR + rest[0], False, 1


def expand(value: str, env: Mapping[str, str]) -> str:
    """`value` as the container sees it, given the variables `env` defines for it."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(value):
        if value[cursor] == OPERATOR and cursor + 1 < len(value):
            out.append(value[checkpoint:cursor])
            read, is_variable, advance = _read_variable_name(value[cursor + 1 :])
            if is_variable:
                out.append(env.get(read, OPERATOR + OPENER + read + CLOSER))
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + value[checkpoint:]


def seldon_container_strings(seldon_deployment: Mapping[str, Any]) -> dict[str, list[str]]:
    """The args and env values Seldon Core v1's controller derives from our SeldonDeployment's graph, by
    container (controllers/model_initializer_injector.go, seldondeployment_prepackaged_servers.go):
    the storage initializer runs with args [modelUri, /mnt/models] (pvc:// URIs become a mounted path)
    and the rclone Secret as envFrom; the model container gets PREDICTIVE_UNIT_PARAMETERS, the graph's
    parameters as JSON, plus Seldon's model_uri parameter."""
    graph = seldon_deployment["spec"]["predictors"][0]["graph"]
    uri = str(graph["modelUri"])
    if uri.startswith("pvc://"):
        uri = "/mnt/pvc/" + uri.removeprefix("pvc://").partition("/")[2]
    parameters = [
        *graph.get("parameters", []),
        {"name": "model_uri", "type": "STRING", "value": "/mnt/models"},
    ]
    return {
        "storage-initializer": [uri, "/mnt/models"],
        graph["name"]: [json.dumps(parameters, separators=(",", ":"))],
    }
