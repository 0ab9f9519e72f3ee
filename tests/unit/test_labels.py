from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zenmodel_operator.core.labels import is_valid_label_value, sanitize_label_value


@given(st.text(max_size=300))
def test_sanitized_values_are_always_valid(value: str) -> None:
    assert is_valid_label_value(sanitize_label_value(value))


@given(st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True))
def test_valid_values_are_kept(value: str) -> None:
    assert sanitize_label_value(value) == value


@given(st.text(alphabet="abc", min_size=64, max_size=100), st.text(alphabet="xyz", min_size=1, max_size=5))
def test_long_values_that_differ_stay_distinct(prefix: str, suffix: str) -> None:
    assert sanitize_label_value(prefix) != sanitize_label_value(prefix + suffix)


def test_readable_sanitisation() -> None:
    assert sanitize_label_value("my training pipeline") == "my-training-pipeline"
    assert sanitize_label_value("run/2026-11-21 10:00") == "run-2026-11-21-10-00"
