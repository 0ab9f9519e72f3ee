"""`zenmodel-operator run | render | crd`."""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from . import settings as operator_settings
from .api.crd import render_crd_yaml
from .api.spec import API_VERSION, KIND, NAME_RULE
from .core.plan import Snapshot, decode_source_secret, plan, source_secret_name

REDACTED = "<redacted: pass --show-secrets to see>"


class RenderError(Exception):
    pass


def _documents(text: str) -> list[dict[str, Any]]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    except yaml.YAMLError as error:
        raise RenderError(f"not valid YAML: {error}") from error


def _as_api_secret(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's Secret as the API would return it: stringData folded into base64 data."""
    data = dict(doc.get("data") or {})
    for key, value in (doc.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return {**doc, "data": data}


def render_documents(
    docs: Iterable[Mapping[str, Any]], *, show_secrets: bool, require_credentials_label: bool
) -> list[dict[str, Any]]:
    """The children the operator would create for each ZenModelDeployment among `docs`."""
    docs = list(docs)
    parents = [d for d in docs if d.get("apiVersion") == API_VERSION and d.get("kind") == KIND]
    if not parents:
        raise RenderError(f"no {KIND} ({API_VERSION}) in the input")
    secrets = {
        (d.get("metadata", {}).get("namespace"), d.get("metadata", {}).get("name")): _as_api_secret(d)
        for d in docs
        if d.get("apiVersion") == "v1" and d.get("kind") == "Secret"
    }
    settings = operator_settings.OperatorSettings(require_credentials_label=require_credentials_label)
    out: list[dict[str, Any]] = []
    for doc in parents:
        meta = dict(doc.get("metadata") or {})
        name = str(meta.get("name", ""))
        if not NAME_RULE.holds(name):
            raise RenderError(f"{NAME_RULE.field}: {name!r} {NAME_RULE.message}")
        meta.setdefault("namespace", "default")
        parent = {**doc, "metadata": meta}
        source_name = source_secret_name(parent)
        source = secrets.get((meta["namespace"], source_name)) or secrets.get((None, source_name))
        result = plan(
            Snapshot(
                parent=parent,
                seldon=None,
                rclone_secret=None,
                source_secret=decode_source_secret(source) if source else None,
            ),
            settings,
        )
        if result.spec is None:
            raise RenderError(f"{KIND} {name}: {result.spec_error}")
        if result.credentials is not None and not result.credentials.ok:
            raise RenderError(
                f"{KIND} {name}: credentials: {result.credentials.reason}: {result.credentials.message}"
            )
        if result.secret is not None:
            secret = result.secret
            if not show_secrets:
                secret = {**secret, "data": dict.fromkeys(secret["data"], REDACTED)}
            out.append(secret)
        if result.seldon is not None:
            out.append(result.seldon)
    return out


def _render(args: argparse.Namespace, stdout: TextIO) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    docs = render_documents(
        _documents(text),
        show_secrets=args.show_secrets,
        require_credentials_label=args.require_credentials_label,
    )
    stdout.write(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True))
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runner import run  # imports kopf: only for `run`

    try:
        settings = operator_settings.from_arguments(args)
    except ValueError as error:
        print(f"zenmodel-operator run: {error}", file=sys.stderr)
        return 2
    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zenmodel-operator",
        description="Serve ZenML models on Seldon Core from ZenModelDeployment resources.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator")
    operator_settings.add_arguments(run)
    render = commands.add_parser(
        "render", help="print the SeldonDeployment and rclone Secret the operator would create (offline)"
    )
    render.add_argument(
        "-f",
        "--file",
        required=True,
        help="YAML file with a ZenModelDeployment (and its Secret); - for stdin",
    )
    render.add_argument(
        "--show-secrets", action="store_true", help="print Secret values instead of redacting them"
    )
    render.add_argument(
        "--require-credentials-label",
        type=operator_settings.parse_bool,
        default=True,
        help="as the operator's setting: refuse Secrets without zenml.io/model-credentials=true (default true)",
    )
    commands.add_parser("crd", help="print the ZenModelDeployment CustomResourceDefinition")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    args = build_parser().parse_args(argv)
    if args.command == "crd":
        out.write(render_crd_yaml())
        return 0
    if args.command == "render":
        try:
            return _render(args, out)
        except (RenderError, OSError) as error:
            print(f"zenmodel-operator render: {error}", file=sys.stderr)
            return 2
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
