"""Every timestamp the operator writes is RFC 3339 in UTC with a Z, only its fraction's length differs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from zenmodel_operator.runtime.clock import rfc3339

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_one_format_with_the_fraction_each_field_takes() -> None:
    assert rfc3339(MOMENT) == "2026-01-02T03:04:05Z"
    assert rfc3339(MOMENT, 3) == "2026-01-02T03:04:05.123Z"
    assert rfc3339(MOMENT, 6) == "2026-01-02T03:04:05.123456Z"


def test_a_moment_in_another_zone_is_written_in_utc() -> None:
    elsewhere = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert rfc3339(elsewhere, 6) == "2026-01-02T03:04:05.123456Z"
