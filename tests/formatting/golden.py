"""Golden files: the exact embeds users see, stored as JSON. Regenerate with UPDATE_GOLDEN=1 and review."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"


def assert_matches_golden(name: str, value: Any) -> None:
    path = GOLDEN_DIR / f"{name}.json"
    rendered = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run the tests with UPDATE_GOLDEN=1 and review it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert value == expected, f"{name} differs from {path} (UPDATE_GOLDEN=1 to accept after review)"
