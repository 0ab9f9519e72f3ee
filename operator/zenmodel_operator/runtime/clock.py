"""The one way the operator writes a timestamp: RFC 3339 in UTC, ending in Z, with as many digits of the
second's fraction as the field takes (none in a condition or an Event, six in a Lease's MicroTime, three
in a log line)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime, fraction_digits: int = 0) -> str:
    whole = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if not fraction_digits:
        return f"{whole}Z"
    return f"{whole}.{moment.microsecond:06d}"[: len(whole) + 1 + fraction_digits] + "Z"


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (a Lease's acquireTime and renewTime)."""
    return rfc3339(moment, 6)


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))
