"""The rclone config rendered from a user's Secret: golden cases, properties, and every error reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from unit.golden import check_golden
from zenmodel_operator.api.spec import Credentials
from zenmodel_operator.core.credentials import (
    AZURE_EMULATOR_ACCOUNT,
    FAILURE_REASONS,
    CredentialsError,
    SourceSecret,
    credentials_hash,
    rclone_config,
)
from zenmodel_operator.core.labels import CREDENTIALS_KEY
from zenmodel_operator.core.storage import RCLONE_BACKEND, Store, parse_model_uri

GOLDEN = Path(__file__).parent.parent / "golden" / "credentials"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))
OPTED_IN = {CREDENTIALS_KEY: "true"}


def render_case(case: dict[str, Any]) -> dict[str, Any]:
    """A golden input (URI, spec.credentials, the Secret as read) -> the config, or the error."""
    secret = case.get("secret")
    source = (
        None
        if secret is None
        else SourceSecret(
            name=secret["name"],
            labels=secret.get("labels", {}),
            data={k: v.encode() for k, v in secret.get("stringData", {}).items()},
        )
    )
    credentials = case.get("credentials")
    try:
        config = rclone_config(
            parse_model_uri(case["uri"]),
            None if credentials is None else Credentials.model_validate(credentials),
            source,
            require_opt_in=case.get("requireOptIn", True),
        )
    except CredentialsError as error:
        return {"error": {"reason": error.reason, "message": error.message}}
    return {"config": config}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    rendered = render_case(yaml.safe_load((GOLDEN / f"{case}.input.yaml").read_text()))
    check_golden(GOLDEN / f"{case}.expected.yaml", yaml.safe_dump(rendered, sort_keys=False, width=10_000))


def test_golden_cases_cover_every_store_and_reason() -> None:
    rendered = [yaml.safe_load((GOLDEN / f"{case}.expected.yaml").read_text()) for case in CASES]
    assert {r["error"]["reason"] for r in rendered if "error" in r} == FAILURE_REASONS
    types = {
        r["config"].get(f"RCLONE_CONFIG_{s.value.upper()}_TYPE")
        for r in rendered
        if "config" in r
        for s in Store
    }
    assert set(RCLONE_BACKEND.values()) <= types


# --- one test per error reason --------------------------------------------------------------------


def secret(
    data: dict[str, str], *, labels: dict[str, str] = OPTED_IN, name: str = "model-creds"
) -> SourceSecret:
    return SourceSecret(name=name, labels=labels, data={k: v.encode() for k, v in data.items()})


def refusal(
    uri: str, source: SourceSecret | None, *, require_opt_in: bool = True, **options: Any
) -> CredentialsError:
    credentials = Credentials.model_validate({"secretRef": {"name": "model-creds"}, **options})
    with pytest.raises(CredentialsError) as caught:
        rclone_config(parse_model_uri(uri), credentials, source, require_opt_in=require_opt_in)
    assert str(caught.value) == caught.value.message
    return caught.value


def test_a_missing_secret_is_named() -> None:
    error = refusal("s3://models/iris", None)
    assert error.reason == "SecretNotFound"
    assert "model-creds" in error.message


def test_an_unlabelled_secret_is_not_read() -> None:
    undecodable = SourceSecret("model-creds", {}, {"AWS_ACCESS_KEY_ID": b"\xff"})
    error = refusal("s3://models/iris", undecodable)
    assert error.reason == "SecretNotOptedIn"  # not InvalidCredentials: the data was never looked at
    assert CREDENTIALS_KEY in error.message
    assert "model-creds" in error.message


def test_missing_keys_are_listed() -> None:
    error = refusal("s3://models/iris", secret({"AWS_SECRET_ACCESS_KEY": "fake-secret"}))
    assert error.reason == "MissingKeys"
    assert "AWS_ACCESS_KEY_ID" in error.message
    assert "model-creds" in error.message


def test_malformed_credentials_are_invalid() -> None:
    error = refusal("az://models/iris", secret({"AZURE_STORAGE_CONNECTION_STRING": "AccountKey=fake-key"}))
    assert error.reason == "InvalidCredentials"
    assert "AZURE_STORAGE_CONNECTION_STRING" in error.message
    assert "AccountName" in error.message


def test_keys_of_another_store_are_a_provider_mismatch() -> None:
    error = refusal("gs://models/iris", secret({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
    assert error.reason == "ProviderMismatch"
    assert "AWS_ACCESS_KEY_ID" in error.message
    assert "gcloud-application-credentials.json" in error.message
    assert "gs://models/iris" in error.message


def test_a_remote_named_like_none_of_several_is_a_provider_mismatch() -> None:
    data = {"RCLONE_CONFIG_ONE_TYPE": "s3", "RCLONE_CONFIG_TWO_TYPE": "s3"}
    error = refusal("s3://models/iris", secret(data))
    assert error.reason == "ProviderMismatch"
    assert "ONE" in error.message
    assert "TWO" in error.message


# --- properties -------------------------------------------------------------------------------------

buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
paths = st.from_regex(r"([a-z0-9_.-]{1,10}/){0,3}[a-z0-9_.-]{1,10}", fullmatch=True) | st.just("")
accounts = st.from_regex(r"[a-z0-9]{3,24}", fullmatch=True).filter(lambda a: a != AZURE_EMULATOR_ACCOUNT)
tokens = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/=", min_size=1, max_size=40
)
remote_names = st.from_regex(r"[A-Z][A-Z0-9]{0,8}", fullmatch=True)


@st.composite
def model_uris(draw: st.DrawFn, store: Store) -> tuple[str, str | None]:
    """A URI of the store, and the Azure account it names (https:// form) if any."""
    bucket, path = draw(buckets), draw(paths)
    suffix = f"/{path}" if path else ""
    if store is Store.AZURE and draw(st.booleans()):
        account = draw(accounts)
        return f"https://{account}.blob.core.windows.net/{bucket}{suffix}", account
    return f"{store.value}://{bucket}{suffix}", None


def rclone_form(draw: st.DrawFn, backend_type: str, options: dict[str, str]) -> dict[str, str]:
    remote = draw(remote_names)
    prefix = draw(st.sampled_from([f"RCLONE_CONFIG_{remote}_", f"rclone_config_{remote.lower()}_"]))
    return {f"{prefix}{'type' if prefix.islower() else 'TYPE'}": backend_type} | {
        f"{prefix}{name if prefix.islower() else name.upper()}": value for name, value in options.items()
    }


@st.composite
def valid_inputs(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, str] | None]:
    """A URI, spec.credentials, and Secret data that together are valid."""
    store = draw(st.sampled_from([Store.S3, Store.GCS, Store.AZURE]))
    uri, uri_account = draw(model_uris(store))
    options: dict[str, Any] = {}
    data: dict[str, str] | None
    if store is Store.S3:
        data = draw(
            st.sampled_from(["none", "keys", "rclone"]).map(
                lambda form: {
                    "none": None,
                    "keys": {"AWS_ACCESS_KEY_ID": draw(tokens), "AWS_SECRET_ACCESS_KEY": draw(tokens)},
                    "rclone": rclone_form(
                        draw, "s3", {"access_key_id": draw(tokens), "secret_access_key": draw(tokens)}
                    ),
                }[form]
            )
        )
        options["s3"] = {"region": draw(st.sampled_from(["eu-west-1", "us-east-1"]))}
    elif store is Store.GCS:
        service_account = json.dumps(
            {"type": "service_account", "client_email": f"{draw(tokens)}@x", "private_key": draw(tokens)}
        )
        data = draw(
            st.sampled_from(["none", "service-account", "token", "rclone"]).map(
                lambda form: {
                    "none": None,
                    "service-account": {"gcloud-application-credentials.json": service_account},
                    "token": {"GCS_OAUTH_TOKEN": draw(tokens)},
                    "rclone": rclone_form(
                        draw,
                        draw(st.sampled_from(["google cloud storage", "gcs"])),
                        {"service_account_credentials": service_account},
                    ),
                }[form]
            )
        )
    else:
        account = uri_account or draw(accounts)
        form = draw(
            st.sampled_from(["key", "sas", "connection-string", "service-principal", "msi", "rclone"])
        )
        data = {
            "key": {"AZURE_STORAGE_ACCOUNT": account, "AZURE_STORAGE_KEY": draw(tokens)},
            "sas": {"AZURE_STORAGE_SAS_URL": f"https://{account}.blob.core.windows.net/?sig={draw(tokens)}"},
            "connection-string": {
                "AZURE_STORAGE_CONNECTION_STRING": f"AccountName={account};AccountKey={draw(tokens)};EndpointSuffix=core.windows.net"
            },
            "service-principal": {
                "AZURE_CLIENT_ID": draw(tokens),
                "AZURE_CLIENT_SECRET": draw(tokens),
                "AZURE_TENANT_ID": draw(tokens),
                "AZURE_STORAGE_ACCOUNT": account,
            },
            "msi": None,
            "rclone": rclone_form(draw, "azureblob", {"account": account, "key": draw(tokens)}),
        }[form]
        if form == "msi":
            options["azure"] = {"account": account, "useManagedIdentity": True}
    if data is not None:
        options["secretRef"] = {"name": "model-creds"}
    return uri, options, data


@given(valid_inputs())
def test_every_key_configures_the_remote_the_uri_names(
    case: tuple[str, dict[str, Any], dict[str, str] | None],
) -> None:
    uri, options, data = case
    location = parse_model_uri(uri)
    config = rclone_config(
        location,
        Credentials.model_validate(options),
        None if data is None else secret(data),
        require_opt_in=True,
    )
    assert location.remote is not None
    prefix = f"RCLONE_CONFIG_{location.remote.upper()}_"
    assert config
    assert all(key.startswith(prefix) for key in config)
    assert config[f"{prefix}TYPE"] in {RCLONE_BACKEND[location.store], "gcs"}
    assert location.seldon_uri.startswith(f"{location.remote}://")  # what rclone resolves with these keys


# Canaries: values a message must never show. Eight capitals from A-F in a row occur nowhere in a
# message's own words, key names or (lower-case) URIs, so any such run found there came from the Secret.
HEX = "ABCDEF"
canaries = st.text(alphabet=HEX, min_size=16, max_size=32)
WINDOW = 8


# The shapes credentials come in, well-formed or not, each built around a canary.
SHAPES: list[Callable[[str], str]] = [
    lambda c: c,
    lambda c: f"{c}\n{c}",
    lambda c: json.dumps({"type": c, "private_key": c}),
    lambda c: json.dumps({"type": "service_account", "client_email": c}),
    lambda c: json.dumps([c]),
    lambda c: "{" + c,
    lambda c: json.dumps({"access_token": 7, "x": c}),
    lambda c: f"AccountName={c};AccountKey={c}",
    lambda c: f"AccountName={c};AccountKey={c};BlobEndpoint=http://{c}/x",
    lambda c: f"AccountKey={c}",
    lambda c: f"SharedAccessSignature={c}",
    lambda c: f"{c};{c}",
    lambda c: f"https://{c}.blob.core.windows.net/c?sig={c}",
]
secret_values = st.builds(lambda shape, canary: shape(canary), st.sampled_from(SHAPES), canaries)


def shown_when_refused(uri: str, data: dict[str, str], options: dict[str, Any]) -> str:
    """What a logger would print of the refusal: the message and every exception chained behind it."""
    try:
        rclone_config(
            parse_model_uri(uri), Credentials.model_validate(options), secret(data), require_opt_in=True
        )
    except CredentialsError as error:
        shown: list[str] = []
        chained: BaseException | None = error
        while chained is not None:
            shown.append(f"{chained}{chained.args!r}")
            chained = chained.__cause__ or chained.__context__
        return "".join(shown)
    return ""


def leaks(data: dict[str, str], shown: str) -> set[str]:
    windows = {value[i : i + WINDOW] for value in data.values() for i in range(len(value) - WINDOW + 1)}
    return {w for w in windows if set(w) <= set(HEX) and w in shown}


# Per store: its native keys, rclone-form keys (fitting and not), and one key nobody reads.
KEYS_READ_FOR = {
    Store.S3: [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "RCLONE_CONFIG_S3_TYPE",
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID",
        "RCLONE_CONFIG_OTHER_TYPE",
    ],
    Store.GCS: [
        "gcloud-application-credentials.json",
        "GCS_OAUTH_TOKEN",
        "rclone_config_gs_type",
        "rclone_config_gs_token",
    ],
    Store.AZURE: [
        "AZURE_STORAGE_ACCOUNT",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_SAS_URL",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "RCLONE_CONFIG_AZ_ACCOUNT",
        "RCLONE_CONFIG_AZ_TYPE",
    ],
}


@st.composite
def secrets_for_some_store(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A URI, Secret data mostly in the URI's store's keys (sometimes another's), and spec options."""
    store = draw(st.sampled_from([Store.S3, Store.GCS, Store.AZURE]))
    uri, _ = draw(model_uris(store))
    other = draw(st.sampled_from([s for s in KEYS_READ_FOR if s is not store]))
    pool = KEYS_READ_FOR[store] * 3 + KEYS_READ_FOR[other] + ["unrelated"]
    data = draw(st.dictionaries(st.sampled_from(pool), secret_values, min_size=1, max_size=3))
    options: dict[str, Any] = {"secretRef": {"name": "model-creds"}}
    if store is Store.AZURE:
        azure = draw(
            st.fixed_dictionaries({}, optional={"account": accounts, "useManagedIdentity": st.booleans()})
        )
        options["azure"] = azure
    return uri, data, options


@given(secrets_for_some_store())
def test_no_error_shows_a_secret_value(case: tuple[str, dict[str, str], dict[str, Any]]) -> None:
    uri, data, options = case
    shown = shown_when_refused(uri, data, options)
    assert not leaks(data, shown), shown


SWEEP_URIS: dict[Store, list[tuple[str, dict[str, Any]]]] = {
    Store.S3: [("s3://models/iris", {})],
    Store.GCS: [("gs://models/iris", {})],
    Store.AZURE: [
        ("az://models/iris", {}),
        ("https://acct1.blob.core.windows.net/models/iris", {}),
        ("az://models/iris", {"azure": {"account": "acct1"}}),
        ("az://models/iris", {"azure": {"useManagedIdentity": True}}),
    ],
}


@pytest.mark.parametrize("store", [Store.S3, Store.GCS, Store.AZURE])
def test_no_error_shows_a_secret_value_for_any_key_pair_and_shape(store: Store) -> None:
    """Every key, and every pair of keys, of the store, in every shape: random search can miss one."""
    keys, canary = KEYS_READ_FOR[store], "FACADEBEEFCAFEDEADBEEF"
    secrets = [{k: shape(canary)} for k in keys for shape in SHAPES] + [
        {k1: s1(canary), k2: s2(canary)}
        for i, k1 in enumerate(keys)
        for k2 in keys[i + 1 :]
        for s1 in SHAPES
        for s2 in SHAPES
    ]
    for uri, options in SWEEP_URIS[store]:
        for data in secrets:
            shown = shown_when_refused(uri, data, {"secretRef": {"name": "model-creds"}, **options})
            assert not leaks(data, shown), shown


configs = st.dictionaries(st.from_regex(r"RCLONE_CONFIG_S3_[A-Z_]{1,12}", fullmatch=True), tokens, min_size=1)


@given(config=configs, data=st.data())
def test_the_hash_depends_on_content_not_order(config: dict[str, str], data: st.DataObject) -> None:
    shuffled = dict(data.draw(st.permutations(list(config.items()))))
    assert credentials_hash(shuffled) == credentials_hash(config)
    digest = credentials_hash(config)
    assert len(digest) == 16
    assert int(digest, 16) >= 0
    key = data.draw(st.sampled_from(sorted(config)))
    assert credentials_hash({**config, key: config[key] + "x"}) != digest
    assert credentials_hash({**config, "RCLONE_CONFIG_S3_added": "x"}) != digest
