"""Azure Blob Storage: account key, SAS URL, connection string, service principal or managed identity.

The rendering keeps to what Seldon's storage initializer image's rclone (1.59.1, before rclone 1.61's
Azure SDK rewrite) understands: its `endpoint` is a domain suffix, not a URL. Newer options are used only
where the old rclone has no equivalent at all (a service principal without a file: `client_id`,
`client_secret`, `tenant`, read by rclone >= 1.61). The Azure-only hooks of a store's rules (the account
named by an https:// URI, managed identity, the account check) live here.
"""

# The constants below are the *names* of Secret keys, not secrets.
# ruff: noqa: S105

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ...api.spec import AzureOptions, Credentials
from ..conditions import Reason
from ..storage import RCLONE_BACKEND, ModelLocation, Store
from .base import CredentialsError, Input, Method, Options, StoreRules, keys_text

AZURE_STORAGE_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
AZURE_STORAGE_KEY = "AZURE_STORAGE_KEY"
AZURE_STORAGE_SAS_URL = "AZURE_STORAGE_SAS_URL"
AZURE_STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
AZURE_TENANT_ID = "AZURE_TENANT_ID"

AZURE_DEFAULT_DOMAIN = "blob.core.windows.net"
# Azurite's (and the old storage emulator's) documented development account. rclone <= 1.60 reaches an
# http:// or path-style blob endpoint only in its emulator mode, which signs with exactly this account.
AZURE_EMULATOR_ACCOUNT = "devstoreaccount1"
AZURE_EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_EMULATOR_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"


def _azure_account(inp: Input) -> str | None:
    options = inp.credentials.azure if inp.credentials else None
    return (
        inp.values.get(AZURE_STORAGE_ACCOUNT)
        or (options.account if options else None)
        or inp.location.account
    )


def _azure_account_key(inp: Input) -> Options:
    return {"key": inp.values[AZURE_STORAGE_KEY]}


def _azure_sas_url(inp: Input) -> Options:
    return {"sas_url": inp.values[AZURE_STORAGE_SAS_URL]}


def _azure_service_principal(inp: Input) -> Options:
    # rclone >= 1.61 names; rclone 1.59/1.60 read a service principal only from a file.
    return {
        "client_id": inp.values[AZURE_CLIENT_ID],
        "client_secret": inp.values[AZURE_CLIENT_SECRET],
        "tenant": inp.values[AZURE_TENANT_ID],
    }


def _connection_string_fields(inp: Input) -> dict[str, str]:
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


def _azure_domain(inp: Input, fields: Mapping[str, str], account: str) -> Options:
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


def _azure_connection_string(inp: Input) -> Options:
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


def _azure_without_credentials(inp: Input) -> Options:
    if inp.credentials and inp.credentials.azure and inp.credentials.azure.useManagedIdentity:
        return {}  # the spec's options add use_msi; the account check follows
    account = _azure_account(inp)
    if not account:
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"no Azure credentials for {inp.uri}: anonymous access needs the storage account "
            f"(credentials.azure.account, {AZURE_STORAGE_ACCOUNT} in the Secret, or an "
            "https://<account>.blob.core.windows.net URI); to authenticate, reference a Secret with "
            f"{keys_text(inp.native_keys)}",
        )
    # rclone 1.59/1.60 refuse an account without a key ("no authentication method configured"), but
    # read a public container through a SAS URL that carries no signature.
    return {"sas_url": f"https://{account}.{AZURE_DEFAULT_DOMAIN}/{inp.location.bucket}"}


def _azure_location_options(location: ModelLocation) -> Options:
    return {"account": location.account} if location.account else {}


def _azure_ambient_setting(credentials: Credentials | None) -> str | None:
    azure = credentials.azure if credentials else None
    return "credentials.azure.useManagedIdentity" if azure and azure.useManagedIdentity else None


def _azure_check(options: Options, inp: Input) -> None:
    if "account" not in options and not options.keys() & {"sas_url", "use_emulator"}:
        source = f"{AZURE_STORAGE_ACCOUNT} in {inp.secret}, " if inp.secret_name else ""
        raise CredentialsError(
            Reason.MISSING_KEYS,
            f"Azure access to {inp.uri} needs the storage account: set {source}credentials.azure.account, "
            "or use an https://<account>.blob.core.windows.net URI",
        )


RULES = StoreRules(
    title="Azure Blob Storage",
    backend=RCLONE_BACKEND[Store.AZURE],
    methods=(
        Method("account key", (AZURE_STORAGE_KEY,), _azure_account_key),
        Method("SAS URL", (AZURE_STORAGE_SAS_URL,), _azure_sas_url),
        Method("connection string", (AZURE_STORAGE_CONNECTION_STRING,), _azure_connection_string),
        Method(
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
