"""The one clock of timestamps the operator writes: UTC, RFC 3339."""

from __future__ import annotations

import time


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
