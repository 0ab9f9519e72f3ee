"""The shared engine: from the user's Secret and the spec's options to the rclone config for one URI.

Pure: no I/O. The result is the environment of `rclone copy <modelUri> /mnt/models` in Seldon's storage
initializer, as `RCLONE_CONFIG_<REMOTE>_<OPTION>` keys whose remote is the model URI's scheme (see
`storage`). The Secret holds either the store's native keys (each store's module says which) or keys
already in rclone form.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace

from ...api.spec import Credentials
from .. import labels
from ..conditions import Reason
from ..storage import ModelLocation, Store
from . import azure, gcs, s3
from .base import CredentialsError, Input, Options, SourceSecret, StoreRules, keys_text

RULES: dict[Store, StoreRules] = {Store.S3: s3.RULES, Store.GCS: gcs.RULES, Store.AZURE: azure.RULES}
_KNOWN_TYPES = frozenset(t for rules in RULES.values() for t in rules.rclone_types)
_ALL_NATIVE_KEYS = frozenset(k for rules in RULES.values() for k in rules.native_keys)


# Keys already in rclone form: Seldon's RCLONE_CONFIG_<REMOTE>_<OPTION>, or ZenML's lower-case
# rclone_config_<remote>_<option> (its seldon_s3 / seldon_gs / seldon_az secret schemas).
_RCLONE_KEY = re.compile(r"^rclone_config_(?P<rest>[a-z0-9_]+)$", re.IGNORECASE)
_TYPE_SUFFIX = "_TYPE"


def _decoded(secret: SourceSecret, key: str) -> str:
    try:
        return secret.data[key].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS, f"key {key} of Secret {secret.name!r} is not UTF-8 text"
        ) from None


def _rclone_keys(secret: SourceSecret, inp: Input) -> dict[str, str]:
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
                f"{inp.secret} sets the same rclone option twice, differently: {keys_text([found[rest][0], key])}",
            )
        found[rest] = (key, value)
    native = [k for k in secret.data if k in _ALL_NATIVE_KEYS and _decoded(secret, k)]
    if found and native:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{inp.secret} mixes rclone-form keys ({keys_text(k for k, _ in found.values())}) with native keys "
            f"({keys_text(native)}); keep one form",
        )
    return {rest: value for rest, (_, value) in found.items()}


def _from_rclone_keys(keys: Mapping[str, str], rules: StoreRules, inp: Input, remote: str) -> Options:
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
            f"{inp.secret} configures rclone remotes {keys_text(remotes)} but none named {remote}, "
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


def _native_values(secret: SourceSecret | None, rules: StoreRules, inp: Input, remote: str) -> dict[str, str]:
    if secret is None:
        return {}
    own = {k: v for k in secret.data if k in rules.native_keys and (v := _decoded(secret, k))}
    if own:
        return own  # other stores' keys may share the Secret: they are not ours to read
    expected = f"{keys_text(rules.native_keys)}, or RCLONE_CONFIG_{remote}_*"
    foreign = {k for k in secret.data if k in _ALL_NATIVE_KEYS and k not in rules.native_keys}
    if foreign:
        others = [r.title for r in RULES.values() if foreign & set(r.native_keys)]
        raise CredentialsError(
            Reason.PROVIDER_MISMATCH,
            f"{inp.secret} holds {' and '.join(others)} keys ({keys_text(foreign)}), but {inp.uri} is in "
            f"{rules.title}, which needs {expected}",
        )
    raise CredentialsError(
        Reason.MISSING_KEYS,
        f"{inp.secret} has none of the keys {rules.title} needs for {inp.uri}: {expected}",
    )


def _from_native(rules: StoreRules, inp: Input) -> Options:
    used = [m for m in rules.methods if any(k in inp.values for k in m.keys)]
    if len(used) > 1:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{inp.secret} holds credentials of several kinds ("
            + "; ".join(f"{m.name}: {keys_text(k for k in m.keys if k in inp.values)}" for m in used)
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
            f"{inp.secret} has {keys_text(given)} but lacks {keys_text(missing)} ({rules.title} {method.name} for {inp.uri})",
        )
    ambient = rules.ambient_setting(inp.credentials)
    if ambient:
        raise CredentialsError(
            Reason.INVALID_CREDENTIALS,
            f"{ambient} is set, and {inp.secret} also holds {method.name} credentials "
            f"({keys_text(method.required)}); use one",
        )
    return {"type": rules.backend, **named, **method.build(inp)}


def _spec_options(rules: StoreRules, credentials: Credentials | None, *, explicit_only: bool) -> Options:
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


def _check_identity(rules: StoreRules, inp: Input, located: Options, spec: Options, base: Options) -> None:
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
    rules = RULES[location.store]
    opt_in = f"{labels.CREDENTIALS_KEY}={labels.CREDENTIALS_OPTED_IN}"
    if secret is None and credentials is not None and credentials.secretRef is not None:
        absent = "does not exist in the namespace"
        if require_opt_in:
            # Only labelled Secrets are watched, so a missing one may exist unlabelled: the operator cannot
            # tell (it never reads an unlabelled Secret), and a message naming both stays true either way.
            absent += f" or lacks the label {opt_in} that lets the operator read it"
        raise CredentialsError(
            Reason.SECRET_NOT_FOUND, f"Secret {credentials.secretRef.name!r} (credentials.secretRef) {absent}"
        )
    if (
        secret is not None
        and require_opt_in
        and secret.labels.get(labels.CREDENTIALS_KEY) != labels.CREDENTIALS_OPTED_IN
    ):
        raise CredentialsError(
            Reason.SECRET_NOT_OPTED_IN,
            f"Secret {secret.name!r} lacks the label {opt_in} that lets the operator read it",
        )
    remote = location.remote.upper()
    inp = Input(
        location, credentials, secret.name if secret else None, values={}, native_keys=rules.native_keys
    )
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
