#!/usr/bin/env python3
"""One entry point for people and CI: ``python3 manage.py run|test|lint|check|bench``.

Needs only Python 3.11+. On first use it creates ``.venv`` and installs the project into it
(again whenever ``pyproject.toml`` changes), then runs the requested command inside it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BOT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")

USAGE = """usage: python3 manage.py COMMAND [ARGS...]

  run [ARGS]     run the bot (python -m bot ARGS; e.g. `run --config config.toml`)
  bot [ARGS]     any bot CLI verb (`bot guild show 123`, `bot sync-commands`)
  test [ARGS]    run the whole test suite (pytest ARGS)
  lint           ruff check, ruff format --check, mypy
  check          lint + test (what CI runs)
  bench [NAME]   run the benchmarks under bench/ and update docs/PERFORMANCE.md
"""


def _ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - manage.py runs under whatever python3 the user has
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{extras or 'runtime'}-{digest}"
    if stamp.exists():
        return
    if not PY.exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"Installing {target} into {VENV} (first use or pyproject.toml changed) ...", flush=True)
    subprocess.check_call(
        [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target], cwd=ROOT
    )
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    if extras:  # a dev install is a superset of the runtime install
        (VENV / f".installed-runtime-{digest}").touch()


def _run(*args: str) -> int:
    return subprocess.call([str(PY), *args], cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        _ensure_env("")
        return _run("-m", "bot", "run", *rest)
    if command == "bot":
        _ensure_env("")
        return _run("-m", "bot", *rest)
    _ensure_env("dev")
    if command == "test":
        return _run("-m", "pytest", *rest)
    if command in {"lint", "check"}:
        steps = [
            ("-m", "ruff", "check", "."),
            ("-m", "ruff", "format", "--check", "."),
            ("-m", "mypy"),
        ]
        if command == "check":
            steps.append(("-m", "pytest", *rest))
        failed = [" ".join(step[1:3]) for step in steps if _run(*step) != 0]
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0
    if command == "bench":
        return _run("-m", "bench", *rest)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
