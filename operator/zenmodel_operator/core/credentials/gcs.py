"""Google Cloud Storage: a service-account key, an OAuth token, or anonymous access."""

# The constants below are the *names* of Secret keys, not secrets.
# ruff: noqa: S105

from __future__ import annotations

import re

from ...api.spec import GCSOptions
from ..conditions import Reason
from ..storage import RCLONE_BACKEND, Store
from .base import CredentialsError, Input, Method, Options, StoreRules, json_object, keys_text, one_line

GCS_SERVICE_ACCOUNT_KEY = "gcloud-application-credentials.json"
GCS_OAUTH_TOKEN = "GCS_OAUTH_TOKEN"  # an OAuth2 access token, or rclone's token JSON

_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key")


def _gcs_service_account(inp: Input) -> Options:
    key = GCS_SERVICE_ACCOUNT_KEY
    document = json_object(inp, key, "a service-account key")
    if document.get("type") != "service_account":
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"key {key} of {inp.secret} is not a service-account key: its field type must be service_account",
        )
    absent = [f for f in _SERVICE_ACCOUNT_FIELDS if not (isinstance(document.get(f), str) and document[f])]
    if absent:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"service-account key {key} of {inp.secret} lacks the fields {keys_text(absent)}",
        )
    return {"service_account_credentials": one_line(document)}


def _gcs_oauth_token(inp: Input) -> Options:
    value = inp.values[GCS_OAUTH_TOKEN]
    if value.startswith("{"):
        token = json_object(inp, GCS_OAUTH_TOKEN, "rclone's OAuth token JSON")
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
    return {"token": one_line(token)}


def _gcs_anonymous(_: Input) -> Options:
    return {"anonymous": "true"}


RULES = StoreRules(
    title="Google Cloud Storage",
    backend=RCLONE_BACKEND[Store.GCS],
    methods=(
        Method("service-account key", (GCS_SERVICE_ACCOUNT_KEY,), _gcs_service_account),
        Method("OAuth token", (GCS_OAUTH_TOKEN,), _gcs_oauth_token),
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
