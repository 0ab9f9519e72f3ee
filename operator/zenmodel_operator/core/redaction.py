"""Credential values kept out of text the operator did not write (a container's output, the kubelet's
messages) before that text can reach a status, an Event, a log or an exception.

What is redacted is every value the operator holds for a parent's credentials: the referenced Secret's and
the rclone Secret's, as they are and in the pieces a program may print on their own (a JSON key file's
fields, a URL's query values, a connection string's values, each line of a PEM key), and URL-quoted. What the
parent's spec says (a region, an endpoint, the model URI) is public, as are the rclone backend names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from .credentials import SourceSecret
from .storage import RCLONE_BACKEND

PLACEHOLDER = "[redacted]"
# Shorter values (a flag, a number) would blank out ordinary words, and no credential is that short.
MIN_LENGTH = 4
# A piece of a value (a JSON field, a query value) that short is a word, not a secret of its own.
MIN_PIECE_LENGTH = 8
_ALWAYS_PUBLIC = frozenset({"true", "false", *RCLONE_BACKEND.values()})
_CONNECTION_STRING_PART = re.compile(r"[^;=]+=([^;]*)")


@dataclass(frozen=True)
class Redaction:
    values: tuple[str, ...]  # longest first, so a value inside another one goes with it

    def apply(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, PLACEHOLDER)
        return text


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _pieces(value: str) -> Iterator[str]:
    """The parts of a structured value a program may print on their own."""
    yield from value.splitlines()
    if value.startswith(("{", "[")):
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        for text in _strings(document):
            yield text
            yield from text.splitlines()
    if "://" in value:
        yield from (item for _, item in parse_qsl(urlsplit(value).query))
    yield from _CONNECTION_STRING_PART.findall(value)


def _forms(value: str) -> Iterator[tuple[str, int]]:
    """A value and its pieces, each with the shortest length that is redacted, plus URL-quoted forms."""
    for text, minimum in ((value, MIN_LENGTH), *((piece, MIN_PIECE_LENGTH) for piece in _pieces(value))):
        text = text.strip()
        yield text, minimum
        yield quote(text, safe=""), minimum


def _decoded(data: Mapping[str, Any]) -> Iterator[str]:
    """A Secret's data as the API holds it (base64), decoded; a value that is not base64 is taken as is."""
    for value in data.values():
        try:
            yield base64.b64decode(str(value), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            yield str(value)


def credential_redaction(
    spec: Mapping[str, Any], source: SourceSecret | None, rclone_secret: Mapping[str, Any] | None
) -> Redaction:
    """The redaction of one parent's credentials: the referenced Secret (`source`, decoded), and its rclone
    Secret as the pods read it (`rclone_secret`, as the API holds it), less what its `spec` makes public."""
    values: list[str] = []
    if source is not None:
        values += (value.decode("utf-8", errors="replace") for value in source.data.values())
    if rclone_secret is not None:
        values += _decoded(rclone_secret.get("data") or {})
    return redaction(values, public=_strings(spec))


def redaction(values: Iterable[str], public: Iterable[str] = ()) -> Redaction:
    shown = _ALWAYS_PUBLIC | {text.strip() for text in public}
    hidden = {
        text
        for value in values
        for text, minimum in _forms(value)
        if len(text) >= minimum and text not in shown
    }
    return Redaction(tuple(sorted(hidden, key=lambda text: (-len(text), text))))
