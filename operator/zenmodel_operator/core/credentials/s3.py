"""S3 and S3-compatible stores: an access key, or the pod's own identity (IRSA, instance role)."""

# The constants below are the *names* of Secret keys, not secrets.
# ruff: noqa: S105

from __future__ import annotations

from ...api.spec import S3Options
from ..storage import RCLONE_BACKEND, Store
from .base import Input, Method, Options, StoreRules

AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"


def _s3_access_key(inp: Input) -> Options:
    options = {
        "access_key_id": inp.values[AWS_ACCESS_KEY_ID],
        "secret_access_key": inp.values[AWS_SECRET_ACCESS_KEY],
    }
    if AWS_SESSION_TOKEN in inp.values:
        options["session_token"] = inp.values[AWS_SESSION_TOKEN]
    return options


def _s3_ambient(_: Input) -> Options:
    # The AWS SDK's default chain: IRSA's web identity token, the node's instance role, ...
    return {"env_auth": "true"}


RULES = StoreRules(
    title="S3",
    backend=RCLONE_BACKEND[Store.S3],
    methods=(
        Method(
            "access key", (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), _s3_access_key, (AWS_SESSION_TOKEN,)
        ),
    ),
    without_credentials=_s3_ambient,
    spec_section="s3",
    options_model=S3Options,
    option_names={"provider": "provider", "region": "region", "endpoint": "endpoint"},
)
