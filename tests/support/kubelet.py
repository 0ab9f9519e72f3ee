"""What a kubelet hands a container, without a kubelet: its environment and its expanded command and args.

Pure functions over a container spec (a dict, as the API returns it) and the Secrets it names, following
the kubelet: `envFrom` first (a Secret's keys, with the optional prefix), then `env`, whose values may
refer to variables defined before them; `command` and `args` are then expanded against the whole
environment. The `$(VAR)` rules are those of k8s.io/kubernetes third_party/forked/golang/expansion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OPERATOR = "$"
OPENER = "("
CLOSER = ")"


class UnsupportedSource(ValueError):
    """An environment source this stand-in does not resolve (a fieldRef, a ConfigMap, ...)."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`$(NAME)` becomes the variable's value; an undefined `$(NAME)` stays as written; `$$` is an escaped
    `$` (so `$$(NAME)` stays `$(NAME)`); any other `$`, and an unterminated `$(`, stay as written."""
    out: list[str] = []
    cursor = 0
    checkpoint = 0
    while cursor < len(text):
        if text[cursor] == OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            consumed = 1
            if following == OPERATOR:
                out.append(OPERATOR)
            elif following == OPENER:
                closer = text.find(CLOSER, cursor + 2)
                if closer == -1:
                    out.append(OPERATOR + OPENER)
                else:
                    name = text[cursor + 2 : closer]
                    out.append(variables.get(name, f"$({name})"))
                    consumed = closer - cursor
            else:
                out.append(OPERATOR + following)
            cursor += consumed
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def environment(container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The container's environment from `envFrom` Secrets and `env`, given the Secrets' decoded data by
    name. A missing Secret fails, as the kubelet refuses to start the container (unless it is optional)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("secretRef")
        if ref is None:
            raise UnsupportedSource(f"envFrom {source}")
        if ref["name"] not in secrets:
            if ref.get("optional"):
                continue
            raise KeyError(f"Secret {ref['name']!r} not found")
        prefix = source.get("prefix", "")
        env.update({prefix + key: value for key, value in secrets[ref["name"]].items()})
    for var in container.get("env") or []:
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = expand(var.get("value", ""), env)
            continue
        ref = var["valueFrom"].get("secretKeyRef")
        if ref is None:
            raise UnsupportedSource(f"env {var['name']} from {var['valueFrom']}")
        env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def command_line(
    container: Mapping[str, Any], image_entrypoint: list[str], env: Mapping[str, str]
) -> list[str]:
    """What runs: `command` replaces the image's entrypoint (and drops its default args; this stand-in
    takes images whose entrypoint has none), `args` follow; both expanded against `env`."""
    command = [expand(part, env) for part in container.get("command") or []] or list(image_entrypoint)
    return command + [expand(arg, env) for arg in container.get("args") or []]


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
