"""Golden files: compare with the stored text; `UPDATE_GOLDEN=1 pytest` rewrites them after a review."""

from __future__ import annotations

import os
from pathlib import Path


def check_golden(path: Path, actual: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(), f"{path} differs: run with UPDATE_GOLDEN=1 and review the diff"
