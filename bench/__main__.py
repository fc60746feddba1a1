"""``python -m bench [NAME ...] [--quick] [--no-write] [--output PATH]``: run benchmarks and record their figures."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bench._common import PERFORMANCE_MD, SECTION_ORDER, BenchOptions, BenchReport, write_section

Benchmark = Callable[[BenchOptions], Coroutine[Any, Any, BenchReport]]
BENCHMARKS: tuple[str, ...] = SECTION_ORDER


def load(name: str) -> Benchmark:
    module = importlib.import_module(f"bench.{name}")
    runner: Benchmark = module.run
    return runner


def run_one(name: str, options: BenchOptions) -> BenchReport:
    """Run one benchmark on a fresh event loop, print it, and write its section unless told not to."""
    load_average = os.getloadavg()[0]
    report = asyncio.run(load(name)(options))
    report.load_average = load_average
    print(report.console(), flush=True)
    if options.write:
        write_section(options.output, name, report.markdown())
        print(f"(written to {options.output})", flush=True)
    return report


def parse_args(argv: Sequence[str]) -> tuple[list[str], BenchOptions]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a seconds-long run (smoke test), not representative"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    parser.add_argument("--output", type=Path, default=PERFORMANCE_MD, help="where to write the sections")
    args = parser.parse_args(list(argv))
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    return names, BenchOptions(quick=args.quick, write=not args.no_write, output=args.output)


def main(argv: Sequence[str] | None = None) -> int:
    names, options = parse_args(sys.argv[1:] if argv is None else argv)
    # The pipeline logs every listener start and stop at INFO; a benchmark wants only problems on screen.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # discord.py warns about voice support and intents SimCord leaves off; neither matters here.
    logging.getLogger("discord").setLevel(logging.ERROR)
    for name in names:
        run_one(name, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
