"""The kubelet's `$(VAR)` expansion and environment, as tests/support/kubelet.py reproduces them.

The cases follow k8s.io/kubernetes third_party/forked/golang/expansion/expand_test.go.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.kubelet import UnsupportedSource, command_line, environment, expand

VARIABLES = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_EMPTY": "", "VAR_REF": "$(VAR_A)"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$$(VAR_B)", "$(VAR_B)"),  # escaped: stays a reference, literally
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),  # undefined: left as written
        ("$(VAR_EMPTY)", ""),
        ("$(VAR_REF)", "$(VAR_A)"),  # a value is not expanded again
        ("$(VAR_A", "$(VAR_A"),  # unterminated
        ("$()", "$()"),
        ("$VAR_A", "$VAR_A"),  # no parentheses: not a reference
        ("$", "$"),
        ("$$", "$"),
        ("foo$", "foo$"),
        ("$(VAR_$(VAR_A))", "$(VAR_$(VAR_A))"),  # the name ends at the first ')': VAR_$(VAR_A is undefined
        ("s3://models/iris/v3", "s3://models/iris/v3"),
        ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
        ("s3://b/$(VAR_A)/x", "s3://b/A/x"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, VARIABLES) == expected


@given(st.text())
def test_text_without_a_dollar_is_unchanged(text: str) -> None:
    plain = text.replace("$", "")
    assert expand(plain, VARIABLES) == plain


@given(st.text())
def test_doubling_every_dollar_escapes_everything(text: str) -> None:
    assert expand(text.replace("$", "$$"), VARIABLES) == text


def test_environment_takes_env_from_first_then_env_in_order() -> None:
    container = {
        "envFrom": [{"secretRef": {"name": "creds"}}, {"secretRef": {"name": "more"}, "prefix": "X_"}],
        "env": [
            {"name": "KEY", "value": "overridden"},
            {"name": "DERIVED", "value": "$(KEY)-$(X_ONE)-$(LATER)"},
            {"name": "LATER", "value": "late"},
            {"name": "PICKED", "valueFrom": {"secretKeyRef": {"name": "more", "key": "ONE"}}},
        ],
    }
    secrets = {"creds": {"KEY": "from-secret", "OTHER": "o"}, "more": {"ONE": "1"}}
    assert environment(container, secrets) == {
        "KEY": "overridden",
        "OTHER": "o",
        "X_ONE": "1",
        "DERIVED": "overridden-1-$(LATER)",  # only variables defined before it
        "LATER": "late",
        "PICKED": "1",
    }


def test_a_missing_secret_fails_unless_optional() -> None:
    with pytest.raises(KeyError):
        environment({"envFrom": [{"secretRef": {"name": "gone"}}]}, {})
    assert environment({"envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}, {}) == {}


def test_sources_it_cannot_resolve_are_refused() -> None:
    with pytest.raises(UnsupportedSource):
        environment({"envFrom": [{"configMapRef": {"name": "c"}}]}, {})
    field = {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    with pytest.raises(UnsupportedSource):
        environment({"env": [field]}, {})


def test_command_line_expands_args_after_the_entrypoint() -> None:
    env = {"MODEL": "s3:models/iris"}
    container = {"args": ["$(MODEL)", "/mnt/models", "$$(MODEL)"]}
    assert command_line(container, ["rclone", "copy"], env) == [
        "rclone",
        "copy",
        "s3:models/iris",
        "/mnt/models",
        "$(MODEL)",
    ]
    assert command_line({"command": ["sh", "-c"], "args": ["echo $(MODEL)"]}, ["rclone"], env) == [
        "sh",
        "-c",
        "echo s3:models/iris",
    ]
