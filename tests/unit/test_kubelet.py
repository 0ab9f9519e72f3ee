"""The kubelet's variable expansion (tests/support/kubelet.py), against the cases of its Go original."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.kubelet import expand

ENV = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_B)-$(VAR_C)", "A-B-C"),
        ("$(VAR_EMPTY)", ""),
        ("$(UNDEFINED)", "$(UNDEFINED)"),  # left as written
        ("$$(VAR_A)", "$(VAR_A)"),  # escaped
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$$", "$"),
        ("$", "$"),  # a lone operator at the end
        ("foo$", "foo$"),
        ("$VAR_A", "$VAR_A"),  # no parentheses: not a reference
        ("$(VAR_A", "$(VAR_A"),  # never closed
        ("$()", "$()"),  # the empty name is undefined
        ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
        ("s3://b/$(VAR_A)/x", "s3://b/A/x"),
    ],
)
def test_expansion_follows_the_kubelet(value: str, expected: str) -> None:
    assert expand(value, ENV) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_text_without_a_dollar_is_never_changed(value: str) -> None:
    assert expand(value, ENV) == value


@given(st.text(alphabet=st.sampled_from("$()AVR_x")))
def test_doubling_every_dollar_makes_any_text_literal(value: str) -> None:
    assert expand(value.replace("$", "$$"), ENV) == value
