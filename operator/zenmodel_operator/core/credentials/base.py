"""What every store's rules are made of: the Secret as read, the error, and the shapes of a store's rules.

Error messages name keys, the Secret and the URI, never a value read from the Secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from ...api.spec import Credentials
from ..conditions import Reason
from ..storage import ModelLocation

Options = dict[str, str]
"""rclone options of one remote, lower-case option name -> value."""


@dataclass(frozen=True)
class SourceSecret:
    """The user's referenced Secret, as read from the API."""

    name: str
    labels: Mapping[str, str]
    data: Mapping[str, bytes]  # base64-decoded values


FAILURE_REASONS = frozenset(
    {
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_NOT_OPTED_IN,
        Reason.MISSING_KEYS,
        Reason.INVALID_CREDENTIALS,
        Reason.PROVIDER_MISMATCH,
    }
)
"""The CredentialsReady reasons that a Secret and the spec's options can cause."""


class CredentialsError(Exception):
    """Why no rclone config can be rendered; `reason` is the condition reason, `message` is for humans."""

    def __init__(self, reason: Reason, message: str) -> None:
        assert reason in FAILURE_REASONS, reason
        super().__init__(message)
        self.reason: str = reason.value  # a plain str: it goes into YAML and JSON as-is
        self.message = message


@dataclass(frozen=True)
class Input:
    """What a store's rules read: the Secret's values of the store's native keys, decoded and non-empty."""

    location: ModelLocation
    credentials: Credentials | None
    secret_name: str | None
    values: Mapping[str, str]
    native_keys: tuple[str, ...] = ()
    """The store's native keys, for messages that list what would authenticate."""

    @property
    def secret(self) -> str:
        return f"Secret {self.secret_name!r}"

    @property
    def uri(self) -> str:
        account = f" (storage account {self.location.account})" if self.location.account else ""
        return f"{self.location.seldon_uri}{account}"


@dataclass(frozen=True)
class Method:
    """One way a Secret authenticates to a store, recognised by its keys."""

    name: str
    required: tuple[str, ...]
    build: Callable[[Input], Options]
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class StoreRules:
    """How one store's Secrets and spec options become rclone options."""

    title: str
    backend: str
    """The rclone backend (`type`) rendered for native credentials."""
    methods: tuple[Method, ...]
    without_credentials: Callable[[Input], Options]
    """Options when the Secret names no method: ambient identity or anonymous access."""
    spec_section: str
    """The field of `spec.credentials` that holds this store's non-secret options."""
    options_model: type[BaseModel]
    option_names: Mapping[str, str]
    """Field of the options model -> rclone option."""
    type_aliases: frozenset[str] = frozenset()
    """Other rclone `type` values whose remote reads this store's URIs."""
    account_keys: Mapping[str, str] = field(default_factory=dict)
    """Native keys that name, rather than authenticate, something: key -> rclone option."""
    pinned: Options = field(default_factory=dict)
    """Options rendered even when nothing asks for them, because the initializer image presets them."""
    location_options: Callable[[ModelLocation], Options] = lambda _: {}
    identity_options: Mapping[str, str] = field(default_factory=dict)
    """Options that name what is read, with what they name: every source that sets one must agree."""
    ambient_setting: Callable[[Credentials | None], str | None] = lambda _: None
    """The spec field, if set, that selects the pod's own identity (so Secret credentials conflict)."""
    check: Callable[[Options, Input], None] = lambda *_: None

    @property
    def native_keys(self) -> tuple[str, ...]:
        return tuple(k for m in self.methods for k in m.keys) + tuple(self.account_keys)

    @property
    def rclone_types(self) -> frozenset[str]:
        return self.type_aliases | {self.backend}

    def spec_options(self, credentials: Credentials | None) -> BaseModel | None:
        section: BaseModel | None = getattr(credentials, self.spec_section) if credentials else None
        return section


def keys_text(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


def json_object(inp: Input, key: str, what: str) -> dict[str, object]:
    try:
        parsed = json.loads(inp.values[key])
    except json.JSONDecodeError as exc:
        # Position only: the decoder's own message is safe, but its exception carries the document.
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"key {key} of {inp.secret} is not valid JSON ({what}): error at line {exc.lineno} column {exc.colno}",
        ) from None
    if not isinstance(parsed, dict):
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS, f"key {key} of {inp.secret} must hold a JSON object ({what})"
        )
    return parsed


def one_line(document: Mapping[str, object]) -> str:
    return json.dumps(document, separators=(",", ":"))
