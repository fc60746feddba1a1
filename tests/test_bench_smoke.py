"""The benchmarks still run: each one's ``--quick`` mode, checked for sane figures (never for targets: timing
asserts flake on a loaded machine). Nothing here writes docs/PERFORMANCE.md."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import alerts, cards, commands, delivery, ingest, websocket
from bench.__main__ import parse_args
from bench._common import PERFORMANCE_MD, REPO_ROOT, BenchOptions, BenchReport, write_section

QUICK = BenchOptions(quick=True, write=False)


def _run(module: object) -> BenchReport:
    report = asyncio.run(module.run(QUICK))  # type: ignore[attr-defined]
    assert report.quick
    assert "--quick" in report.command
    text = report.markdown()
    assert text.startswith(f"## {report.title}")
    assert "Python 3." in text and "cores" in text
    return report


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_ingest_quick_serves_every_request_and_measures_all_three_servers() -> None:
    numbers = _run(ingest).numbers

    for level in ingest.QUICK.levels:
        for server in ingest.SERVERS:
            assert _finite_positive(numbers[f"c{level}_{server}_per_s"]), (level, server)
            assert _finite_positive(numbers[f"c{level}_{server}_p99_ms"]), (level, server)
            assert numbers[f"c{level}_{server}_failed"] == 0, (level, server)
    offered = int(ingest.OPEN_RATE * ingest.QUICK.open_duration_s) * ingest.QUICK.open_rounds
    for server in ingest.SERVERS:
        assert numbers[f"open_{server}_ok"] == offered
        assert numbers[f"open_{server}_failed"] == 0
    # The bot really processed and delivered what it acknowledged (to the instant sender).
    assert numbers["embeds_delivered"] >= offered


def test_delivery_quick_delivers_every_event_exactly_once_within_the_bucket() -> None:
    numbers = _run(delivery).numbers

    assert numbers["embeds"] == numbers["distinct"] == numbers["events"] == 100
    assert numbers["exhausted_bucket_requests"] == 0
    assert numbers["min_messages"] <= numbers["messages"] < numbers["events"]  # packed
    assert _finite_positive(numbers["seconds"]) and _finite_positive(numbers["baseline_seconds"])
    assert numbers["theoretical_seconds"] == delivery.theoretical_seconds(100)[1] == 0.5


def test_alerts_quick_puts_every_panic_ahead_of_the_flood_and_delivers_the_flood_in_order() -> None:
    numbers = _run(alerts).numbers

    assert numbers["units"] + numbers["records"] == numbers["events"] == alerts.QUICK.events
    assert numbers["flood_in_order"] == 1.0
    assert numbers["panics_delivered"] == numbers["panics"] == len(alerts.QUICK.panic_offsets_s) + 1
    assert numbers["panics_once"] == 1.0
    # The first panic was POSTed behind the whole flood, which needs several rate-limit windows to drain.
    assert numbers["first_panic_before_flood_end"] == 1.0
    assert numbers["exhausted_bucket_requests"] == 0
    assert _finite_positive(numbers["flood_seconds"]) and _finite_positive(numbers["baseline_seconds"])
    assert numbers["theoretical_seconds"] == alerts.theoretical_seconds(18, 5, 1.0) == 3.0


def test_cards_quick_coalesces_edits_and_ends_with_the_right_card() -> None:
    numbers = _run(cards).numbers

    assert numbers["state_correct"] == 1.0
    assert numbers["shown_correct"] == 1.0
    assert numbers["posts"] == 1
    assert 1 <= numbers["patches"] < numbers["updates"]
    assert numbers["exhausted_bucket_requests"] == 0


def test_cards_expected_state_depends_on_the_order_of_acceptance() -> None:
    """The correctness check is not vacuous: the same updates in another order give another card."""
    new_call = {"key": "k", "type": "EVENT_DISPATCH_NEW", "data": cards._dispatch(0, [57])}
    envelopes = cards.updates(40)
    in_order = cards.expected_state([(0, new_call), *enumerate(envelopes, start=1)])
    reversed_order = cards.expected_state([(0, new_call), *zip(range(40, 0, -1), envelopes, strict=True)])
    assert in_order is not None and reversed_order is not None
    assert cards._comparable(in_order) != cards._comparable(reversed_order)


def test_commands_quick_confirms_every_911_on_v1_and_v2_and_splits_the_overhead() -> None:
    report = _run(commands)
    numbers = report.numbers

    assert numbers["failures"] == 0
    rounds = numbers["rounds"]
    # Each round and warm-up round makes one bare call and one /911 on v2; the profiled batch adds its own.
    assert numbers["v2_paths"] >= 2 * (rounds + commands.WARMUP)
    for key in ("v1_bare_p50_ms", "v2_bare_p50_ms", "v1_overhead_p50_ms", "v2_overhead_p50_ms"):
        assert _finite_positive(numbers[key]), key
    figures = "\n".join(report.figures)
    assert "Bot overhead on v2 / on v1 (p50)" in figures
    assert "SimCord (simulated Discord)" in figures


def test_websocket_quick_accepts_every_event_both_ways() -> None:
    report = _run(websocket)
    numbers = report.numbers

    assert _finite_positive(numbers["websocket_per_s"]) and _finite_positive(numbers["http_per_s"])
    assert numbers["duplicates"] == 0
    assert "websocket / HTTP" in "\n".join(report.figures)


def test_write_section_keeps_a_recorded_section_no_benchmark_writes(tmp_path: Path) -> None:
    target = tmp_path / "PERFORMANCE.md"
    write_section(target, "cards", "## Cards\n\nfirst\n")
    with target.open("a", encoding="utf-8") as file:
        file.write(
            "\n<!-- bench:issue8-before-after start -->\n## Before/after\n\nkept\n<!-- bench:issue8-before-after end -->\n"
        )
    write_section(target, "cards", "## Cards\n\nsecond\n")

    text = target.read_text(encoding="utf-8")
    assert "## Before/after\n\nkept" in text and "second" in text and "first" not in text


def test_write_section_replaces_its_own_section_and_keeps_the_others(tmp_path: Path) -> None:
    target = tmp_path / "PERFORMANCE.md"
    write_section(target, "cards", "## Cards\n\nfirst\n")
    write_section(target, "ingest", "## Ingest\n\nonly\n")
    write_section(target, "cards", "## Cards\n\nsecond\n")

    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Performance")
    assert "second" in text and "first" not in text and "only" in text
    # Canonical order whatever ran last, each section exactly once between its markers.
    assert text.index("<!-- bench:ingest start -->") < text.index("<!-- bench:cards start -->")
    assert text.count("<!-- bench:cards start -->") == 1 and text.count("<!-- bench:cards end -->") == 1


def test_cli_arguments() -> None:
    names, options = parse_args(["delivery", "--quick", "--no-write"])
    assert names == ["delivery"] and options.quick and not options.write
    names, options = parse_args([])
    assert names == ["ingest", "delivery", "alerts", "cards", "commands", "websocket"] and options.write
    assert options.output == PERFORMANCE_MD
    with pytest.raises(SystemExit):
        parse_args(["nonsense"])


def test_the_command_line_writes_only_where_it_is_told(tmp_path: Path) -> None:
    before = PERFORMANCE_MD.read_bytes() if PERFORMANCE_MD.exists() else None
    output = tmp_path / "PERFORMANCE.md"

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "cards", "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "Cards:" in completed.stdout
    text = output.read_text(encoding="utf-8")
    assert "<!-- bench:cards start -->" in text and "`python3 manage.py bench cards --quick`" in text
    assert (PERFORMANCE_MD.read_bytes() if PERFORMANCE_MD.exists() else None) == before
