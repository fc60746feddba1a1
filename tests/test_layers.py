"""The import graph points one way: ``cad <- storage, formatting, cards <- push <- services <- app <- cogs``.

Every import statement of every module under ``bot/`` and ``cogs/`` is read with ``ast`` (function-level and
``TYPE_CHECKING`` imports included: an import that hides a circle is still a circle), mapped to its unit (a
package under ``bot/``, a top-level module of ``bot/``, or ``cogs``), and checked against the layer table
below: a unit may import only units of a lower layer. That also rules out any circle between units. A new
package under ``bot/`` must be given its place here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imports import imported_modules

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A unit may import the units of the layers before its own, never its own layer's others
# or a later layer's.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bot.timing", "bot.errors", "bot.config"),
    ("bot.logs", "bot.cooldowns"),
    ("bot.cad",),
    ("bot.storage",),
    ("bot.formatting",),
    ("bot.cards",),
    ("bot.push",),
    ("bot.services",),
    ("bot.tree",),
    ("bot.ui",),
    ("bot.app",),
    ("bot.cli",),
    ("bot.__main__",),
    ("cogs",),
)
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """The unit a module belongs to (None for anything outside ``bot`` and ``cogs``)."""
    parts = module.split(".")
    if parts[0] == "cogs":
        return "cogs"
    if parts[0] != "bot":
        return None
    return "bot" if len(parts) == 1 else f"bot.{parts[1]}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> Iterator[tuple[str, Path]]:
    for top in ("bot", "cogs"):
        for path in sorted((ROOT / top).rglob("*.py")):
            yield module_name(path), path


def layer_violations(modules: dict[str, set[str]]) -> list[str]:
    """Every import (module -> imported name) that points to the same or a higher layer than its importer."""
    problems: list[str] = []
    for module, imported in sorted(modules.items()):
        unit = unit_of(module)
        if unit is None or unit == "bot":
            continue
        for name in sorted(imported):
            target = unit_of(name)
            if target is None or target == unit or target == "bot":
                continue
            if target not in LAYER_OF:
                problems.append(f"{module} imports {name}: {target} has no place in LAYERS")
            elif LAYER_OF[target] >= LAYER_OF[unit]:
                problems.append(
                    f"{module} imports {name}: {unit} (layer {LAYER_OF[unit]}) may not depend on "
                    f"{target} (layer {LAYER_OF[target]})"
                )
    return problems


def test_every_unit_has_a_place_in_the_layers() -> None:
    units = {unit_of(module) for module, _ in product_modules()} - {None, "bot"}
    assert sorted(units - set(LAYER_OF)) == []


def test_imports_only_point_to_lower_layers() -> None:
    modules = {module: imported_modules(path) for module, path in product_modules()}
    assert layer_violations(modules) == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("bot.formatting.cards", "bot.push.cards"),  # formatting drawing the pipeline's own card states
        ("bot.push.wiring", "bot.app"),  # a TYPE_CHECKING import of the bot class below the app
        ("bot.cad.models", "bot.storage.models"),  # the CAD model reaching up into storage
        ("bot.storage.db", "bot.storage.db"),  # not a violation: within one unit
    ],
)
def test_the_check_names_what_points_the_wrong_way(module: str, imported: str) -> None:
    problems = layer_violations({module: {imported}})
    if unit_of(module) == unit_of(imported):
        assert problems == []
    else:
        assert len(problems) == 1 and module in problems[0] and imported in problems[0]
