"""What every benchmark shares: options, statistics, the report it returns, and docs/PERFORMANCE.md sections."""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = REPO_ROOT / "docs" / "PERFORMANCE.md"
# Canonical order of the sections in docs/PERFORMANCE.md, whichever benchmark ran last.
SECTION_ORDER = ("ingest", "delivery", "alerts", "cards", "commands", "websocket")

_HEADER = """# Performance

Measured by the benchmarks in `bench/` (`python3 manage.py bench [NAME]`, or `python -m bench [NAME]` inside the
virtualenv). Each section below is rewritten by its own benchmark, with the date, the Python version, the
machine's core count and the exact command. Every benchmark measures a baseline in the same run: the machine
this runs on is small (2 cores) and shared, so the **ratios** are the figures to compare between runs; the
absolute times move with the load around them. All traffic goes to 127.0.0.1.
"""


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    write: bool = True
    output: Path = PERFORMANCE_MD


@dataclass(frozen=True)
class LatencySummary:
    """Nearest-rank percentiles of a sample, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> LatencySummary:
        return cls.of_ms([value * 1000 for value in samples])

    @classmethod
    def of_ms(cls, samples: Sequence[float]) -> LatencySummary:
        if not samples:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            p50_ms=percentile(ordered, 50),
            p99_ms=percentile(ordered, 99),
            max_ms=ordered[-1],
            mean_ms=sum(ordered) / len(ordered),
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sample."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class BenchReport:
    """What a benchmark found: printed to the console and written as its section of PERFORMANCE.md."""

    name: str
    title: str
    quick: bool
    arrangement: str
    figures: list[str]
    target: str
    target_met: bool | None
    verdict: str
    # Machine-readable numbers, for the smoke test to check they are sane.
    numbers: dict[str, float] = field(default_factory=dict)
    # Other work on the machine moves absolute times; recorded so a reader can judge a run.
    load_average: float = math.nan

    @property
    def command(self) -> str:
        return f"python3 manage.py bench {self.name}" + (" --quick" if self.quick else "")

    def markdown(self, when: datetime | None = None) -> str:
        moment = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
        met = {True: " — **met**", False: " — **not met**", None: ""}[self.target_met]
        lines = [
            f"## {self.title}",
            "",
            f"- Run: {moment}; Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"1-minute load average {self.load_average:.2f} when it started"
            + ("; **quick run** (small sample, not representative)" if self.quick else ""),
            f"- Command: `{self.command}`",
            f"- Arrangement: {self.arrangement}",
            "",
            *self.figures,
            "",
            f"Target: {self.target}{met}. {self.verdict}",
        ]
        return "\n".join(lines).rstrip() + "\n"

    def console(self) -> str:
        met = {True: "MET", False: "NOT MET", None: "n/a"}[self.target_met]
        return "\n".join([f"== {self.title}", *self.figures, f"target: {self.target}: {met}. {self.verdict}"])


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} start -->", f"<!-- bench:{name} end -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or add) the section of ``name`` in ``path``, keeping every other section as it was."""
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    sections: dict[str, str] = {}
    # Every marked section is kept, also ones no benchmark writes (e.g. a recorded before/after comparison).
    for match in re.finditer(
        r"<!-- bench:([\w-]+) start -->\n(.*?)<!-- bench:\1 end -->", text, flags=re.DOTALL
    ):
        sections[match.group(1)] = match.group(2)
    sections[name] = body
    first = min(
        (text.find(_markers(other)[0]) for other in sections if _markers(other)[0] in text),
        default=-1,
    )
    header = (text[:first] if first >= 0 else text).rstrip() + "\n"
    parts = [header]
    for other in (*SECTION_ORDER, *sorted(set(sections) - set(SECTION_ORDER))):
        if other in sections:
            start, end = _markers(other)
            parts.append(f"\n{start}\n{sections[other].rstrip()}\n{end}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")


def clients(count: int) -> str:
    return f"{count} client" + ("" if count == 1 else "s")


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) or math.isinf(value) else f"{value:.2f}×"
