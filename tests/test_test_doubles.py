"""The test doubles (``testing/``: CAD simulator, Discord REST fake, SignalR hub) stay out of the product.

Three ways they could leak into it: the package build picks them up, the Docker image copies them, or a module
of ``bot/``/``cogs/`` imports them (then the installed bot would fail to start without a checkout).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from setuptools import find_packages

from tests.imports import imported_modules

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("bot", "cogs")
TEST_ONLY = ("testing", "tests")


def _is_test_only(module: str) -> bool:
    return module.split(".")[0] in TEST_ONLY


def test_the_package_build_leaves_out_the_test_doubles() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]

    packages = find_packages(str(ROOT), include=include)

    assert {"bot", "bot.cad", "bot.push", "bot.storage", "cogs"} <= set(packages)
    assert not [p for p in packages if _is_test_only(p)]


def test_the_docker_image_copies_only_the_product() -> None:
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+\s*$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)

    sources = {source for line in copied for source in line.split()}
    assert {"bot", "cogs"} <= sources
    assert not [s for s in sources if s.strip("./").split("/")[0] in TEST_ONLY]


def test_no_product_module_imports_a_test_double() -> None:
    files = [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 20  # the walk found the product

    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if _is_test_only(m))
        for path in files
    }

    assert {file: modules for file, modules in offenders.items() if modules} == {}


def test_the_import_reader_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import testing.cad_simulator\n"
        "from tests import harness\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from testing.discord_rest import DiscordRestFake\n"
        "def late():\n"
        "    import testing\n"
        "from . import sibling\n",
        encoding="utf-8",
    )

    found = sorted(m for m in imported_modules(sample) if _is_test_only(m))

    assert found == [
        "testing",
        "testing.cad_simulator",
        "testing.discord_rest",
        "testing.discord_rest.DiscordRestFake",
        "tests",
        "tests.harness",
    ]
