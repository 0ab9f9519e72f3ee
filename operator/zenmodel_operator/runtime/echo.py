"""The one rule of echoes: is a watch event the echo of our own write, and must a parent run again?

Every write's answer records the resourceVersion it wrote (`wrote`); a watch event carrying that very
version is our write coming back, not news (`is_echo`). An event that names a parent while that parent is
being reconciled cannot be judged yet: the answer to the reconcile's own write may still be on its way
(the watch is sometimes faster than the answer). So it is held (`arrived_during`) and judged once the
reconcile has ended (`runs_again`), when every write it made is recorded: the parent runs again only if
something held was not an echo. The work queue carries the decision out (a key added while it is
processed runs once more after); it decides nothing itself.
"""

from __future__ import annotations

from collections import defaultdict

Key = tuple[str, str]  # (namespace, name) of a parent
ObjectKey = tuple[str, str, str]  # (store name, namespace, name) of any watched object


class Echoes:
    def __init__(self) -> None:
        # The resourceVersion of our last write to each object.
        self._written: dict[ObjectKey, int | None] = {}
        # Changes that arrived while their parent was being reconciled.
        self._held: dict[Key, list[tuple[ObjectKey, int | None]]] = defaultdict(list)

    def wrote(self, source: ObjectKey, version: int | None) -> None:
        """The apiserver answered one of our writes to `source` with `version`."""
        self._written[source] = version

    def is_echo(self, source: ObjectKey, version: int | None) -> bool:
        """Whether a watch event of `source` at `version` is the echo of our last write to it."""
        return version is not None and self._written.get(source) == version

    def gone(self, source: ObjectKey) -> None:
        """`source` was deleted: a later object of that name is news whatever its version."""
        self._written.pop(source, None)

    def arrived_during(self, key: Key, source: ObjectKey, version: int | None) -> None:
        """A change of `source` woke `key` while `key` was being reconciled: judged when it ends."""
        self._held[key].append((source, version))

    def runs_again(self, key: Key) -> bool:
        """The reconcile of `key` has ended: whether anything that arrived meanwhile was news."""
        return any(not self.is_echo(*item) for item in self._held.pop(key, ()))

    def forget(self, key: Key) -> None:
        """The parent `key` is gone: what arrived for it no longer matters."""
        self._held.pop(key, None)
