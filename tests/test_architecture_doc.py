"""docs/ARCHITECTURE.md stays a true map: every path it names exists, every module of the bot has a place in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def test_every_path_the_map_names_exists() -> None:
    named = set(re.findall(r"`((?:bot|cogs|testing|tests)/[\w/.]+)`", DOC))
    assert named, "the map names no paths at all"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_bot_module_has_a_place_in_the_map() -> None:
    unmentioned = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(ROOT).as_posix()
        if f"`{relative}`" not in DOC and f"`{path.name}`" not in DOC and f"{path.name} " not in DOC:
            unmentioned.append(relative)
    assert unmentioned == [], f"modules missing from docs/ARCHITECTURE.md: {unmentioned}"
