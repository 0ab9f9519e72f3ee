"""From the Secret a user references to the rclone config that Seldon's storage initializer reads.

Pure: no I/O. The result is the environment of `rclone copy <modelUri> /mnt/models`, as
`RCLONE_CONFIG_<REMOTE>_<OPTION>` keys whose remote is the model URI's scheme (see `storage`).

Which rclone reads it: Seldon Core v1's storage initializer image (seldonio/rclone-storage-initializer)
is built FROM rclone/rclone:1.59.1, whose Azure backend predates rclone 1.61's SDK rewrite. The rendering therefore keeps to what that rclone
understands (Azure `endpoint` is a domain suffix there, not a URL), and uses newer options only where the
old rclone has no equivalent at all (an Azure service principal without a file: `client_id`,
`client_secret`, `tenant`, read by rclone >= 1.61).

Error messages name keys, the Secret and the URI, never a value read from the Secret.
"""

# The constants below are the *names* of Secret keys and condition reasons, not secrets.
# ruff: noqa: S105

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel

from zenmodel_operator.spec import AzureOptions, Credentials, GCSOptions, S3Options
from zenmodel_operator.storage import RCLONE_BACKEND, ModelLocation, Store

OPT_IN_LABEL = "zenml.io/model-credentials"

Options = dict[str, str]
"""rclone options of one remote, lower-case option name -> value."""


@dataclass(frozen=True)
class SourceSecret:
    """The user's referenced Secret, as read from the API."""

    name: str
    labels: Mapping[str, str]
    data: Mapping[str, bytes]  # base64-decoded values


class Reason(StrEnum):
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_NOT_OPTED_IN = "SecretNotOptedIn"
    MISSING_KEYS = "MissingKeys"
    INVALID_CREDENTIALS = "InvalidCredentials"
    PROVIDER_MISMATCH = "ProviderMismatch"


class CredentialsError(Exception):
    """Why no rclone config can be rendered; `reason` is the condition reason, `message` is for humans."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: str = reason.value  # a plain str: it goes into YAML and JSON as-is
        self.message = message


# Native keys (the contract's table of Secret keys).
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
GCS_SERVICE_ACCOUNT_KEY = "gcloud-application-credentials.json"
GCS_OAUTH_TOKEN = "GCS_OAUTH_TOKEN"  # an OAuth2 access token, or rclone's token JSON
AZURE_STORAGE_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
AZURE_STORAGE_KEY = "AZURE_STORAGE_KEY"
AZURE_STORAGE_SAS_URL = "AZURE_STORAGE_SAS_URL"
AZURE_STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
AZURE_TENANT_ID = "AZURE_TENANT_ID"

# Keys already in rclone form: Seldon's RCLONE_CONFIG_<REMOTE>_<OPTION>, or ZenML's lower-case
# rclone_config_<remote>_<option> (its seldon_s3 / seldon_gs / seldon_az secret schemas).
_RCLONE_KEY = re.compile(r"^rclone_config_(?P<rest>[a-z0-9_]+)$", re.IGNORECASE)
_TYPE_SUFFIX = "_TYPE"

AZURE_DEFAULT_DOMAIN = "blob.core.windows.net"
# Azurite's (and the old storage emulator's) documented development account. rclone <= 1.60 reaches an
# http:// or path-style blob endpoint only in its emulator mode, which signs with exactly this account.
AZURE_EMULATOR_ACCOUNT = "devstoreaccount1"
AZURE_EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_EMULATOR_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"

_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key")


@dataclass(frozen=True)
class _Input:
    """What a store's rules read: the Secret's values of the store's native keys, decoded and non-empty."""

    location: ModelLocation
    credentials: Credentials | None
    secret_name: str | None
    values: Mapping[str, str]

    @property
    def secret(self) -> str:
        return f"Secret {self.secret_name!r}"

    @property
    def uri(self) -> str:
        account = f" (storage account {self.location.account})" if self.location.account else ""
        return f"{self.location.seldon_uri}{account}"


@dataclass(frozen=True)
class _Method:
    """One way a Secret authenticates to a store, recognised by its keys."""

    name: str
    required: tuple[str, ...]
    build: Callable[[_Input], Options]
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class _StoreRules:
    """How one store's Secrets and spec options become rclone options."""

    title: str
    backend: str
    """The rclone backend (`type`) rendered for native credentials."""
    methods: tuple[_Method, ...]
    without_credentials: Callable[[_Input], Options]
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
    check: Callable[[Options, _Input], None] = lambda *_: None

    @property
    def native_keys(self) -> tuple[str, ...]:
        return tuple(k for m in self.methods for k in m.keys) + tuple(self.account_keys)

    @property
    def rclone_types(self) -> frozenset[str]:
        return self.type_aliases | {self.backend}

    def spec_options(self, credentials: Credentials | None) -> BaseModel | None:
        section: BaseModel | None = getattr(credentials, self.spec_section) if credentials else None
        return section


def _keys(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


# --- S3 ----------------------------------------------------------------------------------------


def _s3_access_key(inp: _Input) -> Options:
    options = {
        "access_key_id": inp.values[AWS_ACCESS_KEY_ID],
        "secret_access_key": inp.values[AWS_SECRET_ACCESS_KEY],
    }
    if AWS_SESSION_TOKEN in inp.values:
        options["session_token"] = inp.values[AWS_SESSION_TOKEN]
    return options


def _s3_ambient(_: _Input) -> Options:
    # The AWS SDK's default chain: IRSA's web identity token, the node's instance role, ...
    return {"env_auth": "true"}


# --- Google Cloud Storage ------------------------------------------------------------------------


def _json_object(inp: _Input, key: str, what: str) -> dict[str, object]:
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


def _one_line(document: Mapping[str, object]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _gcs_service_account(inp: _Input) -> Options:
    key = GCS_SERVICE_ACCOUNT_KEY
    document = _json_object(inp, key, "a service-account key")
    if document.get("type") != "service_account":
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"key {key} of {inp.secret} is not a service-account key: its field type must be service_account",
        )
    absent = [f for f in _SERVICE_ACCOUNT_FIELDS if not (isinstance(document.get(f), str) and document[f])]
    if absent:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"service-account key {key} of {inp.secret} lacks the fields {_keys(absent)}",
        )
    return {"service_account_credentials": _one_line(document)}


def _gcs_oauth_token(inp: _Input) -> Options:
    value = inp.values[GCS_OAUTH_TOKEN]
    if value.startswith("{"):
        token = _json_object(inp, GCS_OAUTH_TOKEN, "rclone's OAuth token JSON")
        if not (isinstance(token.get("access_token"), str) and token["access_token"]):
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"OAuth token JSON in key {GCS_OAUTH_TOKEN} of {inp.secret} lacks the field access_token",
            )
    elif re.search(r"\s", value):
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"key {GCS_OAUTH_TOKEN} of {inp.secret} must be one access token, or rclone's token JSON",
        )
    else:
        # A bare access token: no expiry (so rclone never tries to refresh it); rotating the Secret
        # before it expires rolls the pods with a fresh one.
        token = {"access_token": value, "token_type": "Bearer"}
    return {"token": _one_line(token)}


def _gcs_anonymous(_: _Input) -> Options:
    return {"anonymous": "true"}


# --- Azure Blob Storage --------------------------------------------------------------------------


def _azure_account(inp: _Input) -> str | None:
    options = inp.credentials.azure if inp.credentials else None
    return (
        inp.values.get(AZURE_STORAGE_ACCOUNT)
        or (options.account if options else None)
        or inp.location.account
    )


def _azure_account_key(inp: _Input) -> Options:
    return {"key": inp.values[AZURE_STORAGE_KEY]}


def _azure_sas_url(inp: _Input) -> Options:
    return {"sas_url": inp.values[AZURE_STORAGE_SAS_URL]}


def _azure_service_principal(inp: _Input) -> Options:
    # rclone >= 1.61 names; rclone 1.59/1.60 read a service principal only from a file.
    return {
        "client_id": inp.values[AZURE_CLIENT_ID],
        "client_secret": inp.values[AZURE_CLIENT_SECRET],
        "tenant": inp.values[AZURE_TENANT_ID],
    }


def _connection_string_fields(inp: _Input) -> dict[str, str]:
    fields: dict[str, str] = {}
    for segment in inp.values[AZURE_STORAGE_CONNECTION_STRING].split(";"):
        if not segment.strip():
            continue
        name, sep, value = segment.partition("=")  # values (keys, signatures) may contain '='
        if not sep or not name.strip():
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"key {AZURE_STORAGE_CONNECTION_STRING} of {inp.secret} is not a connection string: "
                "expected Name=value pairs separated by ';'",
            )
        fields[name.strip().lower()] = value.strip()
    return fields


def _azure_domain(inp: _Input, fields: Mapping[str, str], account: str) -> Options:
    """rclone <= 1.60 reaches https://<account>.<endpoint>: the endpoint option is that domain."""
    blob_endpoint = fields.get("blobendpoint")
    if blob_endpoint:
        parts = urlsplit(blob_endpoint)
        prefix = f"{account}.".lower()
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host.startswith(prefix) or parts.path.strip("/"):
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"BlobEndpoint in key {AZURE_STORAGE_CONNECTION_STRING} of {inp.secret} must have the form "
                "https://<AccountName>.<domain> to be used with AccountKey",
            )
        domain = parts.netloc.lower()[len(prefix) :]
    elif fields.get("endpointsuffix"):
        domain = f"blob.{fields['endpointsuffix'].lower()}"
    else:
        domain = AZURE_DEFAULT_DOMAIN
    return {} if domain == AZURE_DEFAULT_DOMAIN else {"endpoint": domain}


def _azure_connection_string(inp: _Input) -> Options:
    fields = _connection_string_fields(inp)
    where = f"connection string in key {AZURE_STORAGE_CONNECTION_STRING} of {inp.secret}"
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return {"use_emulator": "true", "endpoint": AZURE_EMULATOR_ENDPOINT}
    account, key, sas = (
        fields.get("accountname"),
        fields.get("accountkey"),
        fields.get("sharedaccesssignature"),
    )
    if key:
        if not account:
            raise CredentialsError(Reason.INVALID_CREDENTIALS, f"{where} has AccountKey but no AccountName")
        if (account, key) == (AZURE_EMULATOR_ACCOUNT, AZURE_EMULATOR_KEY):
            return {"use_emulator": "true", "endpoint": fields.get("blobendpoint") or AZURE_EMULATOR_ENDPOINT}
        return {"account": account, "key": key, **_azure_domain(inp, fields, account)}
    if sas:
        if fields.get("blobendpoint"):
            base = fields["blobendpoint"]
        elif account:
            base = f"https://{account}.blob.{fields.get('endpointsuffix') or 'core.windows.net'}"
        else:
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"{where} has SharedAccessSignature but neither BlobEndpoint nor AccountName",
            )
        return {
            **({"account": account} if account else {}),
            "sas_url": f"{base.rstrip('/')}?{sas.lstrip('?')}",
        }
    raise CredentialsError(
        Reason.INVALID_CREDENTIALS, f"{where} has neither AccountKey nor SharedAccessSignature"
    )


def _azure_without_credentials(inp: _Input) -> Options:
    if inp.credentials and inp.credentials.azure and inp.credentials.azure.useManagedIdentity:
        return {}  # the spec's options add use_msi; the account check follows
    account = _azure_account(inp)
    if not account:
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"no Azure credentials for {inp.uri}: anonymous access needs the storage account "
            f"(credentials.azure.account, {AZURE_STORAGE_ACCOUNT} in the Secret, or an "
            "https://<account>.blob.core.windows.net URI); to authenticate, reference a Secret with "
            f"{_keys(_AZURE.native_keys)}",
        )
    # rclone 1.59/1.60 refuse an account without a key ("no authentication method configured"), but
    # read a public container through a SAS URL that carries no signature.
    return {"sas_url": f"https://{account}.{AZURE_DEFAULT_DOMAIN}/{inp.location.bucket}"}


def _azure_location_options(location: ModelLocation) -> Options:
    return {"account": location.account} if location.account else {}


def _azure_ambient_setting(credentials: Credentials | None) -> str | None:
    azure = credentials.azure if credentials else None
    return "credentials.azure.useManagedIdentity" if azure and azure.useManagedIdentity else None


def _azure_check(options: Options, inp: _Input) -> None:
    if "account" not in options and not options.keys() & {"sas_url", "use_emulator"}:
        source = f"{AZURE_STORAGE_ACCOUNT} in {inp.secret}, " if inp.secret_name else ""
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"Azure access to {inp.uri} needs the storage account: set {source}credentials.azure.account, "
            "or use an https://<account>.blob.core.windows.net URI",
        )


# --- the registry ---------------------------------------------------------------------------------

_S3 = _StoreRules(
    title="S3",
    backend=RCLONE_BACKEND[Store.S3],
    methods=(
        _Method(
            "access key", (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), _s3_access_key, (AWS_SESSION_TOKEN,)
        ),
    ),
    without_credentials=_s3_ambient,
    spec_section="s3",
    options_model=S3Options,
    option_names={"provider": "provider", "region": "region", "endpoint": "endpoint"},
)
_GCS = _StoreRules(
    title="Google Cloud Storage",
    backend=RCLONE_BACKEND[Store.GCS],
    methods=(
        _Method("service-account key", (GCS_SERVICE_ACCOUNT_KEY,), _gcs_service_account),
        _Method("OAuth token", (GCS_OAUTH_TOKEN,), _gcs_oauth_token),
    ),
    without_credentials=_gcs_anonymous,
    spec_section="gcs",
    options_model=GCSOptions,
    option_names={"projectNumber": "project_number", "endpoint": "endpoint"},
    type_aliases=frozenset({"gcs"}),  # the backend's prefix, which rclone also accepts as its type
    # Seldon's storage initializer image sets RCLONE_CONFIG_GS_ANONYMOUS=true, and rclone's gcs backend
    # prefers anonymous access over any credentials it is given.
    pinned={"anonymous": "false"},
)
_AZURE = _StoreRules(
    title="Azure Blob Storage",
    backend=RCLONE_BACKEND[Store.AZURE],
    methods=(
        _Method("account key", (AZURE_STORAGE_KEY,), _azure_account_key),
        _Method("SAS URL", (AZURE_STORAGE_SAS_URL,), _azure_sas_url),
        _Method("connection string", (AZURE_STORAGE_CONNECTION_STRING,), _azure_connection_string),
        _Method(
            "service principal",
            (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID),
            _azure_service_principal,
        ),
    ),
    without_credentials=_azure_without_credentials,
    spec_section="azure",
    options_model=AzureOptions,
    option_names={
        "account": "account",
        "useManagedIdentity": "use_msi",
        "managedIdentityClientId": "msi_client_id",
    },
    account_keys={AZURE_STORAGE_ACCOUNT: "account"},
    location_options=_azure_location_options,
    identity_options={"account": "storage accounts"},
    ambient_setting=_azure_ambient_setting,
    check=_azure_check,
)

_RULES: dict[Store, _StoreRules] = {Store.S3: _S3, Store.GCS: _GCS, Store.AZURE: _AZURE}
_KNOWN_TYPES = frozenset(t for rules in _RULES.values() for t in rules.rclone_types)


# --- rendering ------------------------------------------------------------------------------------


def rclone_config(
    location: ModelLocation,
    credentials: Credentials | None,
    secret: SourceSecret | None,
    *,
    require_opt_in: bool,
) -> dict[str, str]:
    """The environment of Seldon's rclone storage initializer: RCLONE_CONFIG_<REMOTE>_<OPTION> -> value.

    {} for pvc://. Raises CredentialsError. `secret` is None when no secretRef is given OR when the
    referenced Secret does not exist (then: SecretNotFound).
    """
    if location.remote is None:
        return {}
    rules = _RULES[location.store]
    if secret is None and credentials is not None and credentials.secretRef is not None:
        raise CredentialsError(
            Reason.SECRET_NOT_FOUND,
            f"Secret {credentials.secretRef.name!r} (credentials.secretRef) does not exist in the namespace",
        )
    if secret is not None and require_opt_in and secret.labels.get(OPT_IN_LABEL) != "true":
        raise CredentialsError(
            Reason.SECRET_NOT_OPTED_IN,
            f"Secret {secret.name!r} lacks the label {OPT_IN_LABEL}=true that lets the operator read it",
        )
    remote = location.remote.upper()
    inp = _Input(location, credentials, secret.name if secret else None, values={})
    rclone_keys = _rclone_keys(secret, inp) if secret else {}
    if rclone_keys:
        base = _from_rclone_keys(rclone_keys, rules, inp, remote)
    else:
        inp = replace(inp, values=_native_values(secret, rules, inp, remote))
        base = _from_native(rules, inp)
    located = rules.location_options(location)
    spec = _spec_options(rules, credentials, explicit_only=bool(rclone_keys))
    _check_identity(rules, inp, located, spec, base)
    options = {**rules.pinned, **base, **located, **spec}
    rules.check(options, inp)
    return {f"RCLONE_CONFIG_{remote}_{name.upper()}": value for name, value in sorted(options.items())}


def credentials_hash(config: Mapping[str, str]) -> str:
    """Stable short hex digest of the rendered config (goes on the pod template to roll pods on rotation)."""
    canonical = json.dumps(sorted(config.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _decoded(secret: SourceSecret, key: str) -> str:
    try:
        return secret.data[key].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS, f"key {key} of Secret {secret.name!r} is not UTF-8 text"
        ) from None


def _rclone_keys(secret: SourceSecret, inp: _Input) -> dict[str, str]:
    """The Secret's rclone-form keys, upper-cased without the prefix (`S3_ACCESS_KEY_ID`), non-empty."""
    found: dict[str, tuple[str, str]] = {}
    for key in secret.data:
        match = _RCLONE_KEY.match(key)
        value = _decoded(secret, key) if match else ""
        if not match or not value:
            continue
        rest = match["rest"].upper()
        if rest in found and found[rest][1] != value:
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"{inp.secret} sets the same rclone option twice, differently: {_keys([found[rest][0], key])}",
            )
        found[rest] = (key, value)
    native = [k for k in secret.data if k in _ALL_NATIVE_KEYS and _decoded(secret, k)]
    if found and native:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{inp.secret} mixes rclone-form keys ({_keys(k for k, _ in found.values())}) with native keys "
            f"({_keys(native)}); keep one form",
        )
    return {rest: value for rest, (_, value) in found.items()}


def _from_rclone_keys(keys: Mapping[str, str], rules: _StoreRules, inp: _Input, remote: str) -> Options:
    # A remote is whatever has a TYPE; longest first, so a remote named S3_X wins over S3 for S3_X_*.
    remotes = sorted(
        {k.removesuffix(_TYPE_SUFFIX) for k in keys if k.endswith(_TYPE_SUFFIX)}, key=len, reverse=True
    )
    if not remotes:
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"{inp.secret} has rclone-form keys but no RCLONE_CONFIG_<REMOTE>_TYPE; "
            f"expected RCLONE_CONFIG_{remote}_TYPE for {inp.uri}",
        )
    if remote in remotes:
        chosen = remote
    elif len(remotes) == 1:
        chosen = remotes[0]  # re-keyed to the URI's remote below, if its type fits
    else:
        raise CredentialsError(
            Reason.PROVIDER_MISMATCH,
            f"{inp.secret} configures rclone remotes {_keys(remotes)} but none named {remote}, "
            f"the remote of {inp.uri}",
        )
    options: Options = {}
    for rest, value in keys.items():
        owner = next((r for r in remotes if rest.startswith(f"{r}_")), None)
        if owner is None:
            raise CredentialsError(
                Reason.INVALID_CREDENTIALS,
                f"rclone-form key of {inp.secret} for option {rest} belongs to no remote that has a TYPE key",
            )
        if owner == chosen:
            options[rest[len(owner) + 1 :].lower()] = value
    remote_type = options.get("type", "")
    if remote_type not in rules.rclone_types:
        shown = f"type {remote_type!r}" if remote_type in _KNOWN_TYPES else "an unsupported type"
        raise CredentialsError(
            Reason.PROVIDER_MISMATCH,
            f"rclone remote {chosen} in {inp.secret} has {shown}, which cannot read {inp.uri}: "
            f"expected type {' or '.join(repr(t) for t in sorted(rules.rclone_types))}",
        )
    return options


def _native_values(
    secret: SourceSecret | None, rules: _StoreRules, inp: _Input, remote: str
) -> dict[str, str]:
    if secret is None:
        return {}
    own = {k: v for k in secret.data if k in rules.native_keys and (v := _decoded(secret, k))}
    if own:
        return own  # other stores' keys may share the Secret: they are not ours to read
    expected = f"{_keys(rules.native_keys)}, or RCLONE_CONFIG_{remote}_*"
    foreign = {k for k in secret.data if k in _ALL_NATIVE_KEYS and k not in rules.native_keys}
    if foreign:
        others = [r.title for r in _RULES.values() if foreign & set(r.native_keys)]
        raise CredentialsError(
            Reason.PROVIDER_MISMATCH,
            f"{inp.secret} holds {' and '.join(others)} keys ({_keys(foreign)}), but {inp.uri} is in "
            f"{rules.title}, which needs {expected}",
        )
    raise CredentialsError(
        Reason.MISSING_KEYS,
        f"{inp.secret} has none of the keys {rules.title} needs for {inp.uri}: {expected}",
    )


def _from_native(rules: _StoreRules, inp: _Input) -> Options:
    used = [m for m in rules.methods if any(k in inp.values for k in m.keys)]
    if len(used) > 1:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{inp.secret} holds credentials of several kinds ("
            + "; ".join(f"{m.name}: {_keys(k for k in m.keys if k in inp.values)}" for m in used)
            + "); keep one",
        )
    named = {option: inp.values[key] for key, option in rules.account_keys.items() if key in inp.values}
    if not used:
        return {"type": rules.backend, **named, **rules.without_credentials(inp)}
    method = used[0]
    missing = [k for k in method.required if k not in inp.values]
    if missing:
        given = [k for k in method.keys if k in inp.values]
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"{inp.secret} has {_keys(given)} but lacks {_keys(missing)} ({rules.title} {method.name} for {inp.uri})",
        )
    ambient = rules.ambient_setting(inp.credentials)
    if ambient:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{ambient} is set, and {inp.secret} also holds {method.name} credentials "
            f"({_keys(method.required)}); use one",
        )
    return {"type": rules.backend, **named, **method.build(inp)}


def _spec_options(rules: _StoreRules, credentials: Credentials | None, *, explicit_only: bool) -> Options:
    """The spec's non-secret options as rclone options. Over rclone-form keys only the ones the user set
    count; native credentials get the defaults too (S3's provider)."""
    model = rules.spec_options(credentials)
    if model is None:
        if explicit_only:
            return {}
        model = rules.options_model()
    names = model.model_fields_set if explicit_only else set(type(model).model_fields)
    options: Options = {}
    for field_name, option in rules.option_names.items():
        value = getattr(model, field_name)
        if field_name in names and value is not None:
            options[option] = str(value).lower() if isinstance(value, bool) else str(value)
    return options


def _check_identity(rules: _StoreRules, inp: _Input, located: Options, spec: Options, base: Options) -> None:
    spec_fields = {option: field_name for field_name, option in rules.option_names.items()}
    for option, what in rules.identity_options.items():
        claims = [
            (f"the model URI ({located.get(option)})", located.get(option)),
            (
                f"credentials.{rules.spec_section}.{spec_fields[option]} ({spec.get(option)})",
                spec.get(option),
            ),
            (inp.secret, base.get(option)),  # a value from the Secret: named, never shown
        ]
        given = [(source, value) for source, value in claims if value]
        if len({value for _, value in given}) > 1:
            raise CredentialsError(
                Reason.PROVIDER_MISMATCH,
                f"{' and '.join(source for source, _ in given)} name different {what} for "
                f"{inp.location.seldon_uri}; they must agree",
            )


_ALL_NATIVE_KEYS = frozenset(k for rules in _RULES.values() for k in rules.native_keys)
