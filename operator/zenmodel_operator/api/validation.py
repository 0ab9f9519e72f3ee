"""Rules written once and checked twice: as CEL by the apiserver, as Python by the operator.

A `Check` is one rule on a string with one readable message (the problem and the fix). `Checked(...)`
attaches an ordered list of them to a pydantic string field: the CRD gets one `x-kubernetes-validations`
entry per check, and pydantic runs the same checks in the same order. Check k fires only when checks
1..k-1 hold, so a bad value gets exactly one message, the first that applies, from both sides alike.

The regular expressions are written in the subset on which RE2 (CEL's `matches`/`find`) and Python's
`re` agree: explicit ASCII classes (never `\\s`, `\\w`, `\\d`, which differ), `^`/`$` anchors (`$`
becomes `\\Z` for Python, whose `$` also matches before a final newline), groups and bounded repeats.
Both count lengths and positions in Unicode code points.

A new string field takes its rules the same way, e.g. `Annotated[str, Checked(*plain_url(example))]`
with `Field(max_length=...)`: the apiserver refuses a CEL rule whose cost it cannot bound, so every
checked string needs a maxLength (a unit test insists). A field whose value Seldon or Kubernetes puts
into a container's args, command or env must also exclude `$(` (`no_variable_reference`) or be
rendered through `kubelet_literal` (see the README's security notes).

Rules across fields are `Check`s too, over the whole object: `field`, `has`, `starts_with`, `equals`
and the other expressions below read it as CEL's `self.a.b` does (an unset field is None), and `any_of`,
`all_of` and `not_` combine them, evaluating lazily in both languages so a `has` guards what follows it.
`CrossFieldRule` gives such a check the field it reports on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


def cel_string(text: str) -> str:
    """A CEL string literal (single-quoted) holding `text`."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def python_pattern(pattern: str) -> re.Pattern[str]:
    """The RE2 pattern as Python reads it: `$` outside a class means end of text (`\\Z`)."""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        elif char == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(char)
    return re.compile("".join(out))


@dataclass(frozen=True)
class Expr:
    """A value computed from the checked string, in both languages: CEL over `self`, and Python."""

    cel: str
    python: Callable[[Any], Any]
    constant: str | None = None  # the text of a literal, which needs no messageExpression

    def on(self, subject: Expr) -> Expr:
        """This expression evaluated on `subject` (itself computed from the field) instead of the field."""
        if self.constant is not None:
            return self
        return Expr(_substitute(self.cel, subject.cel), lambda v: self.python(subject.python(v)))


def _substitute(cel: str, subject: str) -> str:
    return re.sub(r"\bself\b", lambda _: f"({subject})", cel)


SELF = Expr("self", lambda v: v)


def literal(text: str) -> Expr:
    return Expr(cel_string(text), lambda _: text, constant=text)


def found(pattern: str) -> Expr:
    """The first match of `pattern` (RE2 syntax), or '' where there is none."""
    compiled = python_pattern(pattern)
    return Expr(f"self.find({cel_string(pattern)})", lambda v: m[0] if (m := compiled.search(v)) else "")


_QUOTE = cel_string("'")


def quoted(value: Expr) -> Expr:
    return Expr(f"{_QUOTE} + {value.cel} + {_QUOTE}", lambda v: f"'{value.python(v)}'")


@dataclass(frozen=True)
class Check:
    """One rule: `holds` (a CEL boolean over `self`) and the message when it does not."""

    holds: Expr
    message: tuple[Expr, ...]
    scope: str | None = None
    """CEL of the condition under which the rule applies (see `when`); None: everywhere."""

    def on(self, subject: Expr) -> Check:
        return Check(self.holds.on(subject), tuple(part.on(subject) for part in self.message), self.scope)

    def when(self, condition: Expr) -> Check:
        """The rule applies only where `condition` holds. Checks of one field with different scopes must
        exclude each other (e.g. one URI scheme each): then a check is guarded only by the earlier checks
        of its own scope and the unscoped ones, as the others hold wherever it applies."""
        return Check(
            Expr(
                f"!({condition.cel}) || ({self.holds.cel})",
                lambda v: not condition.python(v) or self.holds.python(v),
            ),
            self.message,
            condition.cel,
        )

    def message_for(self, value: str) -> str:
        return "".join(str(part.python(value)) for part in self.message)

    def message_cel(self) -> str:
        """A messageExpression: one format() call, whose cost the apiserver can estimate (see UNPRINTABLE)."""
        return f"{cel_string('%s' * len(self.message))}.format([{', '.join(p.cel for p in self.message)}])"

    @property
    def is_static(self) -> bool:
        return all(part.constant is not None for part in self.message)


def _parts(message: Sequence[str | Expr]) -> tuple[Expr, ...]:
    return tuple(literal(part) if isinstance(part, str) else part for part in message)


def matches(pattern: str, *message: str | Expr) -> Check:
    """Holds where `pattern` (RE2 syntax; anchor it to test the whole string) finds a match."""
    compiled = python_pattern(pattern)
    return Check(
        Expr(f"self.matches({cel_string(pattern)})", lambda v: compiled.search(v) is not None),
        _parts(message),
    )


def lacks(pattern: str, *message: str | Expr) -> Check:
    """Holds where `pattern` finds no match."""
    compiled = python_pattern(pattern)
    return Check(
        Expr(f"!self.matches({cel_string(pattern)})", lambda v: compiled.search(v) is None),
        _parts(message),
    )


def size_between(low: int, high: int, *message: str | Expr) -> Check:
    return Check(
        Expr(f"self.size() >= {low} && self.size() <= {high}", lambda v: low <= len(v) <= high),
        _parts(message),
    )


# --- the characters a value may hold ----------------------------------------------------------------

PRINTABLE_ASCII = "[!-~]"
"""Visible ASCII: no space, no control character, nothing a terminal or a diff can hide."""

_CONTROL = ((0x00, 0x1F), (0x7F, 0x9F))
# Characters that render as nothing or as blank space (Unicode White_Space and Default_Ignorable).
_INVISIBLE = (
    (0xA0, 0xA0),
    (0xAD, 0xAD),
    (0x34F, 0x34F),
    (0x61C, 0x61C),
    (0x115F, 0x1160),
    (0x1680, 0x1680),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x206F),
    (0x3000, 0x3000),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _in_ranges(ranges: Sequence[tuple[int, int]]) -> tuple[str, Callable[[int], bool]]:
    """Membership of the code point `n` in `ranges`: in CEL, and in Python."""
    cel = " || ".join(f"n == {a}" if a == b else f"(n >= {a} && n <= {b})" for a, b in ranges)
    return f"({cel})", lambda n: any(a <= n <= b for a, b in ranges)


_HEX_DIGITS = "0123456789abcdef"


def _code_point_cel(char: str) -> str:
    """CEL for the code point of the one-character string `char`, decoded from its UTF-8 bytes (CEL has
    no ord(): `'%x'.format([s])` spells the bytes in hex). Comprehensions bind the intermediate values."""

    def byte(k: int) -> str:
        return (
            f"(16 * {cel_string(_HEX_DIGITS)}.indexOf(h.charAt({2 * k})) + "
            f"{cel_string(_HEX_DIGITS)}.indexOf(h.charAt({2 * k + 1})))"
        )

    b0, b1, b2, b3 = (byte(k) for k in range(4))
    decoded = (
        f"h.size() == 2 ? {b0} : h.size() == 4 ? ({b0} - 192) * 64 + {b1} - 128 : "
        f"h.size() == 6 ? ({b0} - 224) * 4096 + ({b1} - 128) * 64 + {b2} - 128 : "
        f"({b0} - 240) * 262144 + ({b1} - 128) * 4096 + ({b2} - 128) * 64 + {b3} - 128"
    )
    return f"['%x'.format([{char}])].map(h, {decoded})[0]"


_CONTROL_CEL, _is_control = _in_ranges(_CONTROL)
_INVISIBLE_CEL, _is_invisible = _in_ranges(_INVISIBLE)


def _kind(n: int) -> str:
    if n == 0x20:
        return "space"
    if _is_control(n):
        return "control character"
    return "invisible character" if _is_invisible(n) else "non-ASCII character"


def _describe_python(value: str) -> str:
    match = re.search("[^!-~]", value)
    char = match[0] if match else ""
    n = ord(char) if char else 0
    return f"{_kind(n)} U+{n:04X} at position {value.index(char) + 1}"


def _describe_cel() -> str:
    # CEL's cost estimator cannot bound the size of format()'s result, so the parts are joined by one
    # format() call rather than by `+` (which it would estimate as unbounded).
    kind = (
        f"(n == 32 ? 'space' : {_CONTROL_CEL} ? 'control character' : "
        f"{_INVISIBLE_CEL} ? 'invisible character' : 'non-ASCII character')"
    )
    zeros = "(n < 16 ? '000' : n < 256 ? '00' : n < 4096 ? '0' : '')"
    return (
        f"[self.find('[^!-~]')].map(c, [{_code_point_cel('c')}].map(n, "
        f"'%s U+%s%X at position %d'.format([{kind}, {zeros}, n, self.indexOf(c) + 1]))[0])[0]"
    )


UNPRINTABLE = Expr(_describe_cel(), _describe_python)
"""'invisible character U+00A0 at position 12' for the first character that is not visible ASCII."""


def printable_ascii(fix: str) -> Check:
    return matches(f"^{PRINTABLE_ASCII}*$", UNPRINTABLE, f": {fix}")


# --- what a kubelet would expand ----------------------------------------------------------------------

VARIABLE_REFERENCE = "[$][($]"
"""`$(` starts a reference the kubelet expands in container args, command and env; `$$` becomes `$`."""


def no_variable_reference(where: str) -> Check:
    return lacks(
        VARIABLE_REFERENCE,
        "contains ",
        quoted(found(VARIABLE_REFERENCE)),
        f", which Kubernetes expands as a variable reference in {where}: remove it",
    )


def kubelet_literal(value: str) -> str:
    """`value` spelled so that the kubelet's expansion gives it back unchanged: every `$` doubled."""
    return value.replace("$", "$$")


# --- attaching checks to pydantic fields -------------------------------------------------------------


def validations(checks: Sequence[Check]) -> list[dict[str, str]]:
    """`x-kubernetes-validations` for `checks`, each guarded by the ones before it (of its scope)."""
    out = []
    for k, check in enumerate(checks):
        guards = [c for c in checks[:k] if c.scope is None or c.scope == check.scope]
        earlier = " && ".join(f"({c.holds.cel})" for c in guards)
        rule = f"!({earlier}) || ({check.holds.cel})" if earlier else check.holds.cel
        entry = {"rule": rule}
        if check.is_static:
            entry["message"] = check.message_for("")
        else:
            entry["messageExpression"] = check.message_cel()
        out.append(entry)
    return out


def invalid(problem: str) -> PydanticCustomError:
    """The error for a broken rule: pydantic reports `problem` as it is (type `invalid_value`)."""
    return PydanticCustomError("invalid_value", "{problem}", {"problem": problem})


def first_failure(checks: Sequence[Check], value: str) -> str | None:
    for check in checks:
        if not check.holds.python(value):
            return check.message_for(value)
    return None


class Checked:
    """Annotation for a `str` field: the checks go into its JSON schema and into its validation."""

    def __init__(self, *checks: Check) -> None:
        self.checks = checks

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-kubernetes-validations"] = validations(self.checks)
        return json_schema

    def validate(self, value: str) -> str:
        problem = first_failure(self.checks, value)
        if problem is not None:
            raise invalid(problem)
        return value


# --- reusable rules for common kinds of string -------------------------------------------------------

DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def dns_label(example: str) -> tuple[Check, ...]:
    return (
        matches(
            DNS_LABEL_PATTERN,
            "must be a DNS-1123 label: lower-case letters, digits and '-', beginning and ending with a "
            f"letter or digit, e.g. {example}",
        ),
    )


def dns_subdomain(example: str) -> tuple[Check, ...]:
    return (
        matches(
            DNS_SUBDOMAIN_PATTERN,
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', beginning and ending "
            f"with a letter or digit, e.g. {example}",
        ),
    )


# Kubernetes' label syntax (IsQualifiedName, IsValidLabelValue), also that of taint keys and values.
_LABEL_NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
LABEL_KEY_PATTERN = f"^({DNS_SUBDOMAIN_PATTERN[1:-1]}/)?{_LABEL_NAME}$"
MAX_LABEL_KEY_LENGTH = 317  # a 253-character prefix, a slash and a 63-character name
LABEL_VALUE_PATTERN = f"^({_LABEL_NAME})?$"


def label_key(example: str) -> tuple[Check, ...]:
    """A label key; give its field max_length=MAX_LABEL_KEY_LENGTH."""
    name = found("[^/]*$")
    return (
        matches(
            LABEL_KEY_PATTERN,
            "must be a label key: an optional DNS subdomain and '/', then a name of letters, digits, '-', "
            f"'_' and '.' beginning and ending with a letter or digit, e.g. {example}",
        ),
        Check(
            Expr(f"{name.cel}.size() <= 63", lambda v: len(name.python(v)) <= 63),
            (literal("the name part of a label key (after any '/') must be at most 63 characters"),),
        ),
    )


def label_value(example: str) -> tuple[Check, ...]:
    """A label value (empty allowed); give its field max_length=63."""
    return (
        matches(
            LABEL_VALUE_PATTERN,
            "must be a label value: letters, digits, '-', '_' and '.', beginning and ending with a letter "
            f"or digit, e.g. {example}",
        ),
    )


_HOST = (
    "([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
    "|\\[[0-9A-Fa-f:.]+\\])"
)
PLAIN_URL_PATTERN = f"^https?://{_HOST}(:[0-9]{{1,5}})?(/[A-Za-z0-9._~%/-]*)?$"


def plain_url(example: str) -> tuple[Check, ...]:
    """An http(s) URL with nothing a shell, a config file or a log could read differently."""
    return (
        printable_ascii("a URL takes visible ASCII characters only: retype it without that character"),
        matches("^https?://", f"must begin with http:// or https://, e.g. {example}"),
        matches(
            PLAIN_URL_PATTERN,
            "must be a plain URL, http(s)://host[:port][/path] with letters, digits and . _ ~ % / - in the "
            f"path and no user, query or fragment, e.g. {example}",
        ),
    )


# The distribution project's reference grammar (github.com/distribution/reference, regexp.go), which
# container runtimes parse image names with.
_ALNUM = "[a-z0-9]+"
_SEPARATOR = "(?:[._]|__|[-]+)"
_PATH_COMPONENT = f"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = f"(?:{_DOMAIN_COMPONENT}(?:[.]{_DOMAIN_COMPONENT})*|\\[(?:[a-fA-F0-9:]+)\\])(?::[0-9]+)?"
IMAGE_NAME_PATTERN = f"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE_PATTERN = f"{IMAGE_NAME_PATTERN}(?::{_TAG})?(?:@{_DIGEST})?$"
MAX_IMAGE_NAME_LENGTH = 255


def image_reference(example: str) -> tuple[Check, ...]:
    name = found(IMAGE_NAME_PATTERN)
    return (
        printable_ascii(
            "an image reference takes visible ASCII characters only: retype it without that character"
        ),
        matches(
            IMAGE_REFERENCE_PATTERN,
            "is not a valid image reference: expected [registry[:port]/]repository[:tag][@digest] with a "
            f"lower-case repository, e.g. {example}",
        ),
        Check(
            Expr(
                f"{name.cel}.size() <= {MAX_IMAGE_NAME_LENGTH}",
                lambda v: len(name.python(v)) <= MAX_IMAGE_NAME_LENGTH,
            ),
            (
                literal(
                    f"the image's name (registry and repository) must be at most {MAX_IMAGE_NAME_LENGTH} characters"
                ),
            ),
        ),
    )


# --- rules across fields, over the whole object ------------------------------------------------------


def _attribute(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


def field(dotted: str) -> Expr:
    """`self.<dotted>`: a field of the object, None where it (or a field on its way) is unset."""
    return Expr(f"self.{dotted}", lambda obj: _attribute(obj, dotted))


def has(dotted: str) -> Expr:
    return Expr(f"has(self.{dotted})", lambda obj: _attribute(obj, dotted) is not None)


def not_(value: Expr) -> Expr:
    """The negation of a call or `has` (no parentheses added: give it no operator expression)."""
    return Expr(f"!{value.cel}", lambda obj: not value.python(obj))


def any_of(*values: Expr) -> Expr:
    return Expr(" || ".join(v.cel for v in values), lambda obj: any(v.python(obj) for v in values))


def all_of(*values: Expr) -> Expr:
    return Expr(" && ".join(v.cel for v in values), lambda obj: all(v.python(obj) for v in values))


def grouped(value: Expr) -> Expr:
    """`value` in parentheses, to combine it with other operators."""
    return Expr(f"({value.cel})", value.python)


def equals(value: Expr, text: str) -> Expr:
    return Expr(f"{value.cel} == {cel_string(text)}", lambda obj: value.python(obj) == text)


def differs(value: Expr, text: str) -> Expr:
    return Expr(f"{value.cel} != {cel_string(text)}", lambda obj: value.python(obj) != text)


def one_of(value: Expr, texts: Sequence[str]) -> Expr:
    return Expr(
        f"{value.cel} in [{', '.join(cel_string(t) for t in texts)}]", lambda obj: value.python(obj) in texts
    )


def same(left: Expr, right: Expr) -> Expr:
    return Expr(f"{left.cel} == {right.cel}", lambda obj: left.python(obj) == right.python(obj))


def at_most(left: Expr, right: Expr) -> Expr:
    return Expr(f"{left.cel} <= {right.cel}", lambda obj: left.python(obj) <= right.python(obj))


def at_least(left: Expr, right: Expr) -> Expr:
    return Expr(f"{left.cel} >= {right.cel}", lambda obj: left.python(obj) >= right.python(obj))


def size_at_most(value: Expr, limit: int) -> Expr:
    return Expr(f"{value.cel}.size() <= {limit}", lambda obj: len(value.python(obj)) <= limit)


def starts_with(value: Expr, prefix: str) -> Expr:
    return Expr(
        f"{value.cel}.startsWith({cel_string(prefix)})", lambda obj: value.python(obj).startswith(prefix)
    )


def fullmatches(value: Expr, pattern: str) -> Expr:
    """`value` matches `pattern` (RE2 syntax, anchored by the pattern itself)."""
    compiled = python_pattern(pattern)
    return Expr(
        f"{value.cel}.matches({cel_string(pattern)})",
        lambda obj: compiled.search(value.python(obj)) is not None,
    )


def url_host(value: Expr) -> Expr:
    """What follows `scheme://` up to the next '/' in the URL `value`."""
    return Expr(f"{value.cel}.split('/')[2]", lambda obj: value.python(obj).split("/")[2])


KEY = Expr("k", lambda key: key)
"""The key, inside `every_key`'s condition."""


def every_key(mapping: Expr, condition: Expr) -> Expr:
    """`condition` (an expression over `KEY`) holds for every key of `mapping`."""
    return Expr(
        f"{mapping.cel}.all(k, {condition.cel})",
        lambda obj: all(condition.python(k) for k in mapping.python(obj)),
    )


@dataclass(frozen=True)
class CrossFieldRule:
    """A rule on the whole object from one `Check`: CEL for the apiserver, Python for the operator, and the
    field it reports on."""

    field: str
    check: Check

    @property
    def cel(self) -> str:
        return self.check.holds.cel

    @property
    def message(self) -> str:
        return self.check.message_for("")

    def holds(self, obj: Any) -> bool:
        return bool(self.check.holds.python(obj))


def cross_field(field_name: str, holds: Expr, message: str) -> CrossFieldRule:
    return CrossFieldRule(field_name, Check(holds, (literal(message),)))


def field_path(location: Sequence[int | str]) -> str:
    """pydantic's error location as the apiserver spells a field: `spec.model.parameters[0].value`."""
    path = "spec"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
