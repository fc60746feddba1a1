"""bot/push speaks to Discord through one module: the pipeline runs (and is tested) without discord.py."""

from __future__ import annotations

from pathlib import Path

from tests.imports import imported_modules

PUSH = Path(__file__).resolve().parents[2] / "bot" / "push"
ADAPTER = "discord_sender.py"


def _imports_discord(path: Path) -> bool:
    return any(module == "discord" or module.startswith("discord.") for module in imported_modules(path))


def test_only_the_sender_adapter_imports_discord_py() -> None:
    modules = sorted(PUSH.glob("*.py"))
    assert {"delivery.py", "processor.py", ADAPTER} <= {path.name for path in modules}

    assert [path.name for path in modules if _imports_discord(path)] == [ADAPTER]
