"""The operator's one seam into kopf's private modules: its namespace pattern matching.

The reflectors and the startup LIST must watch exactly the namespaces kopf watches, and kopf offers its
matching (globs, `!` exclusions, comma-separated parts) only in `kopf._cogs`. Using it here, and only
here, keeps the two in agreement; a kopf upgrade that moves it breaks this one module (and its tests).
"""

from __future__ import annotations

from collections.abc import Iterable

from kopf._cogs.structs.references import NamespaceName, match_namespace, select_specific_namespaces


def matches_any(namespace: str, patterns: Iterable[str]) -> bool:
    """Whether `namespace` matches one of kopf's namespace patterns."""
    return any(match_namespace(NamespaceName(namespace), pattern) for pattern in patterns)


def specific_namespaces(patterns: Iterable[str]) -> set[str]:
    """The patterns that name one namespace each (no glob, exclusion or list)."""
    return {str(name) for name in select_specific_namespaces(patterns)}
