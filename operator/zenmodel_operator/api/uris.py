"""The rules of a model URI, as the API states them: which forms are accepted and what a bucket,
container or claim name may be. Checked as CEL by the apiserver and as Python by the operator
(`validation`); `core.storage` parses a URI these rules accepted.
"""

from __future__ import annotations

import re

from .validation import (
    DNS_SUBDOMAIN_PATTERN,
    SELF,
    Check,
    Expr,
    cel_string,
    found,
    lacks,
    matches,
    no_variable_reference,
    printable_ascii,
    python_pattern,
    quoted,
    size_between,
)

# The beginnings of the accepted model URIs; https:// only for Azure Blob Storage's.
URI_PREFIXES = ("s3://", "gs://", "az://", "https://", "pvc://")
_SCHEMES = "|".join(prefix.removesuffix("://") for prefix in URI_PREFIXES if prefix != "https://")
AZURE_ACCOUNT_PATTERN = "[a-z0-9]{3,24}"
_AZURE_BLOB_HOST = "[.]blob[.]core[.]windows[.]net"
AZURE_HTTPS = re.compile(f"^https://(?P<account>{AZURE_ACCOUNT_PATTERN}){_AZURE_BLOB_HOST}/(?P<rest>.+)$")
_AZURE_HTTPS_PREFIX = f"^https://{AZURE_ACCOUNT_PATTERN}{_AZURE_BLOB_HOST}/"
URI_FORMS = (
    "s3://<bucket>/<path>, gs://<bucket>/<path>, az://<container>/<path>, "
    "https://<account>.blob.core.windows.net/<container>/<path> or pvc://<claim>/<path>"
)


def _name_after(prefix: str) -> Expr:
    """The bucket, container or claim: what follows the URI's `prefix` (a pattern) up to the next '/'."""
    whole, head = python_pattern(prefix + "[^/]*"), python_pattern(prefix)
    return Expr(
        f"self.find({cel_string(prefix + '[^/]*')}).substring(self.find({cel_string(prefix)}).size())",
        lambda v: m[0][len(h[0]) :] if (m := whole.search(v)) and (h := head.search(v)) else "",
    )


def _name_checks(what: str, prefix: str, checks: tuple[Check, ...]) -> tuple[Check, ...]:
    """`checks` on a bare name, lifted onto the name inside URIs that begin with `prefix`."""
    name = _name_after(prefix)
    applies = Expr(f"self.matches({cel_string(prefix)})", python_pattern(prefix).search)
    return tuple(
        Check(check.holds, (quoted_name(what), *check.message)).on(name).when(applies) for check in checks
    )


def quoted_name(what: str) -> Expr:
    return Expr(f"{cel_string(what + ' ')} + {quoted(SELF).cel}", lambda v: f"{what} '{v}'")


_ALNUM_ENDS = "^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
_IP_ADDRESS = "^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$"

# AWS's bucket naming rules (S3-compatible stores follow them or are more lenient).
S3_BUCKET_CHECKS = (
    size_between(3, 63, " must be 3 to 63 characters long"),
    matches("^[a-z0-9.-]*$", " may hold only lower-case letters, digits, dots and hyphens"),
    matches(_ALNUM_ENDS, " must begin and end with a lower-case letter or a digit"),
    lacks("[.][.]", " must not hold two dots in a row"),
    lacks(_IP_ADDRESS, " must not be formatted as an IP address"),
)
# Google Cloud Storage's: names with dots may be longer, but each dot-separated part is at most 63.
GCS_BUCKET_CHECKS = (
    size_between(3, 222, " must be 3 to 222 characters long"),
    matches("^[a-z0-9._-]*$", " may hold only lower-case letters, digits, dots, hyphens and underscores"),
    matches(_ALNUM_ENDS, " must begin and end with a lower-case letter or a digit"),
    lacks("[.][.]", " must not hold two dots in a row"),
    lacks("[^.]{64}", " needs dots to be longer than 63 characters: at most 63 between two dots"),
    lacks(_IP_ADDRESS, " must not be formatted as an IP address"),
    lacks("^goog|google", " must not begin with 'goog' or contain 'google'"),
)
# Azure Blob Storage's container naming rules.
AZURE_CONTAINER_CHECKS = (
    size_between(3, 63, " must be 3 to 63 characters long"),
    matches("^[a-z0-9-]*$", " may hold only lower-case letters, digits and hyphens"),
    matches("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", " must begin and end with a lower-case letter or a digit"),
    lacks("--", " must not hold two hyphens in a row"),
)
# A PersistentVolumeClaim's name: a DNS-1123 subdomain.
PVC_CLAIM_CHECKS = (
    size_between(1, 253, " must be 1 to 253 characters long"),
    matches(
        DNS_SUBDOMAIN_PATTERN,
        " must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
        "beginning and ending with a letter or digit",
    ),
)

MODEL_URI_CHECKS: tuple[Check, ...] = (
    printable_ascii("a model URI takes visible ASCII characters only: retype it without that character"),
    no_variable_reference("the storage initializer's arguments, beside the credentials"),
    matches(
        f"^({_SCHEMES})://|{_AZURE_HTTPS_PREFIX}",
        f"unsupported model URI: use {URI_FORMS}",
    ),
    lacks(
        "[?#]",
        "has a query string or fragment (",
        quoted(found("[?#]")),
        "), which rclone would read as part of the object's name: remove it",
    ),
    *_name_checks("S3 bucket name", "^s3://", S3_BUCKET_CHECKS),
    *_name_checks("GCS bucket name", "^gs://", GCS_BUCKET_CHECKS),
    *_name_checks("Azure container name", "^az://", AZURE_CONTAINER_CHECKS),
    *_name_checks("Azure container name", _AZURE_HTTPS_PREFIX, AZURE_CONTAINER_CHECKS),
    *_name_checks("claim name", "^pvc://", PVC_CLAIM_CHECKS),
)
"""A model URI's rules, in the order they are reported: each one only where the ones before it hold."""
