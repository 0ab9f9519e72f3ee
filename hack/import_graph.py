"""The operator package's import graph, by layer: modules per layer, imports that run back up, the
largest module, and how many of our modules (and whether pydantic) importing the leader election loads.

    .venv/bin/python hack/import_graph.py [leader module, default zenmodel_operator.runtime.leader]

Layers, lowest first: api, core, runtime, then the top (every module outside those sub-packages). An
arrow runs back up when a module imports one of a higher layer. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "zenmodel_operator"
ROOT = Path(__file__).resolve().parent.parent / "operator" / PACKAGE
LAYERS = ("api", "core", "runtime", "top")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "top"


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == PACKAGE}


def main() -> None:
    paths = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
    graph = {m: {i for i in imports_of(p, m) if i in paths and i != m} for m, p in paths.items()}
    per_layer: dict[str, list[str]] = defaultdict(list)
    for module in paths:
        per_layer[layer_of(module)].append(module)
    print("modules per layer:")
    for layer in LAYERS:
        print(f"  {layer}: {len(per_layer[layer])}")
    back = sorted(
        (m, i)
        for m, targets in graph.items()
        for i in targets
        if LAYERS.index(layer_of(i)) > LAYERS.index(layer_of(m))
    )
    print(f"arrows running back up: {len(back)}")
    for source, target in back:
        print(f"  {source} -> {target}")
    sizes = {m: len(p.read_text().splitlines()) for m, p in paths.items()}
    largest = max(sizes, key=lambda m: sizes[m])
    print(f"largest module: {largest} ({sizes[largest]} lines)")
    leader = sys.argv[1] if len(sys.argv) > 1 else f"{PACKAGE}.runtime.leader"
    probe = (
        f"import sys; import {leader}; "
        f"ours = [m for m in sys.modules if m == {PACKAGE!r} or m.startswith({PACKAGE!r} + '.')]; "
        "print(len(ours), 'pydantic' in sys.modules, 'kopf' in sys.modules); print(' '.join(sorted(ours)))"
    )
    counted, loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    count, pydantic, kopf = counted.split()
    print(f"importing {leader} loads {count} of our modules (pydantic: {pydantic}, kopf: {kopf}):")
    print(f"  {loaded}")


if __name__ == "__main__":
    main()
