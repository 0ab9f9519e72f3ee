"""Label keys and values the operator writes, always valid whatever the user's input."""

from __future__ import annotations

import hashlib
import re

from ..api.validation import LABEL_VALUE_PATTERN, python_pattern

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "zenmodel-operator"
PART_OF_KEY = "zenml.io/deployment"  # the parent's name, on every child
# A user's Secret opts in to being read with value "true"; the rclone Secrets we generate carry
# "generated", so one server-side selector (the key exists) watches both and no other Secret.
CREDENTIALS_KEY = "zenml.io/model-credentials"
CREDENTIALS_OPTED_IN = "true"
CREDENTIALS_GENERATED = "generated"
# ZenML's own provenance labels, as its client-side Seldon deployer set them.
PROVENANCE_KEYS = {
    "pipelineName": "zenml.pipeline_name",
    "runId": "zenml.run_id",
    "stepName": "zenml.step_name",
}

MAX_VALUE_LENGTH = 63
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
_VALID = python_pattern(LABEL_VALUE_PATTERN)


def is_valid_label_value(value: str) -> bool:
    return len(value) <= MAX_VALUE_LENGTH and _VALID.fullmatch(value) is not None


def sanitize_label_value(value: str) -> str:
    """A valid label value that reads like `value`.

    Invalid characters become `-`, the ends are trimmed to alphanumerics, and a value that had to be
    shortened keeps a digest suffix, so two long values that differ only at the end stay distinct.
    """
    if is_valid_label_value(value):
        return value
    cleaned = _INVALID.sub("-", value).strip("-_.")
    if len(cleaned) <= MAX_VALUE_LENGTH:
        return cleaned
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    head = cleaned[: MAX_VALUE_LENGTH - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest
