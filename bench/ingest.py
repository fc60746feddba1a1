"""Ingest: push events POSTed over loopback to the real listener, against a bare aiohttp handler.

Arrangement: this process runs three servers on one event loop, each on its own 127.0.0.1 port:

* the **bot**: ``PushPipeline`` + ``PushServer`` on a real SQLite file in a temp folder, one guild whose units
  route points at a channel; the processor and delivery loops run as in production (they parse, route, format and
  queue every event, and deliver it to an :class:`~bench._world.InstantSender` that accepts at once, so no Discord
  fake competes for this loop);
* the **listener alone**: the same listener on a database of its own with no processor or delivery running, to
  separate what the listener costs from what the background work beside it costs;
* the **baseline**: a bare aiohttp handler that reads the body, parses the JSON and answers 200.

The load comes from a separate process (``bench._loadgen``): one shared ``aiohttp.ClientSession`` with keep-alive,
the same client, bodies and concurrency for every server. At each level the servers are measured in turn, and the
bot's backlog is drained after each round so every measurement starts from an idle bot. A last pair of runs times
every SQLite transaction of the bot, to show where an acknowledgement waits.

Once the servers are up, the process freezes its start-up objects as ``python -m bot run`` does
(:func:`bot.__main__.freeze_startup_objects`), and every full garbage collection during a run is timed: one
pauses all three servers, so a round's p99 says little without it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench._common import REPO_ROOT, BenchOptions, BenchReport, LatencySummary, clients, fmt_ms, fmt_ratio
from bench._world import API_KEY, InstantSender, open_storage, running_pipeline
from bot.__main__ import freeze_startup_objects
from bot.config import ServerSettings
from bot.push.pipeline import PushPipeline
from bot.storage.db import Database
from bot.storage.models import Category

NAME = "ingest"
THROUGHPUT_TARGET = 0.5
# The inbox group commit's label in the lock diagnosis (writers are named by qualified function name).
INBOX_COMMIT = "Inbox.add"
P99_TARGET_MS = 10.0
OPEN_RATE = 1000.0


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    rounds: int
    requests_per_round: int
    round_max_s: float
    open_duration_s: float
    open_rounds: int
    diagnosis_requests: int


FULL = Plan(
    levels=(1, 8, 32, 64),
    rounds=2,
    requests_per_round=1500,
    round_max_s=15.0,
    open_duration_s=3.0,
    open_rounds=3,
    diagnosis_requests=1000,
)
QUICK = Plan(
    levels=(1, 8),
    rounds=1,
    requests_per_round=100,
    round_max_s=5.0,
    open_duration_s=0.3,
    open_rounds=1,
    diagnosis_requests=100,
)
SERVERS = ("bare", "listener", "bot")


@dataclass(frozen=True)
class Run:
    """One or more load-generator runs against one server, pooled."""

    ok: int
    failed: int
    elapsed_s: float
    latencies_ms: tuple[float, ...]
    client_cpu_s: float
    server_cpu_s: float
    offered_rates: tuple[float, ...] = ()
    from_schedule_ms: tuple[float, ...] = ()
    # How long each full (generation 2) garbage collection during the run paused this process.
    full_gc_pauses_ms: tuple[float, ...] = ()

    @property
    def per_s(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def offered_per_s(self) -> float:
        return sum(self.offered_rates) / len(self.offered_rates) if self.offered_rates else math.nan

    @property
    def latency(self) -> LatencySummary:
        return LatencySummary.of_ms(self.latencies_ms)

    def __add__(self, other: Run) -> Run:
        return Run(
            ok=self.ok + other.ok,
            failed=self.failed + other.failed,
            elapsed_s=self.elapsed_s + other.elapsed_s,
            latencies_ms=self.latencies_ms + other.latencies_ms,
            client_cpu_s=self.client_cpu_s + other.client_cpu_s,
            server_cpu_s=self.server_cpu_s + other.server_cpu_s,
            offered_rates=self.offered_rates + other.offered_rates,
            from_schedule_ms=self.from_schedule_ms + other.from_schedule_ms,
            full_gc_pauses_ms=self.full_gc_pauses_ms + other.full_gc_pauses_ms,
        )


class FullCollections:
    """Times the full (generation 2) garbage collections of this process while installed."""

    def __init__(self) -> None:
        self.pauses_ms: list[float] = []
        self._started: float | None = None

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses_ms.append((time.perf_counter() - self._started) * 1000)
            self._started = None


async def _bare_handler(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.json_response({"ok": True})


async def _start_bare_server() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/sonorancad/event", _bare_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def _drive(spec: dict[str, Any]) -> Run:
    """Run the load generator in its own process; this loop keeps serving meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._loadgen",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    cpu_before = time.process_time()
    try:
        with FullCollections() as collections:
            async with asyncio.timeout(float(spec["max_seconds"]) + 30):
                out, _ = await process.communicate(json.dumps(spec).encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError("the load generator did not finish in time") from None
    server_cpu = time.process_time() - cpu_before
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed with exit code {process.returncode}")
    result = json.loads(out)
    return Run(
        ok=result["ok"],
        failed=sum(count for status, count in result["statuses"].items() if status != "200"),
        elapsed_s=result["elapsed_s"],
        latencies_ms=tuple(result["latencies_ms"]),
        client_cpu_s=result["client_cpu_s"],
        server_cpu_s=server_cpu,
        offered_rates=(result["offered_per_s"],) if result.get("offered_per_s") is not None else (),
        from_schedule_ms=tuple(result.get("from_schedule_ms") or ()),
        full_gc_pauses_ms=tuple(collections.pauses_ms),
    )


async def run(options: BenchOptions) -> BenchReport:
    plan = QUICK if options.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        root = Path(folder)
        (root / "bot").mkdir()
        (root / "listener").mkdir()
        bot_storage = await open_storage(root / "bot", [Category.UNITS])
        # The listener alone has its own database, so the running processor never picks up its events.
        listener_storage = await open_storage(root / "listener", [Category.UNITS])
        listener = PushPipeline(listener_storage, InstantSender()).create_server(
            ServerSettings(host="127.0.0.1", port=0)
        )
        sender = InstantSender()
        bare_runner, bare_url = await _start_bare_server()
        try:
            await listener.start()
            async with running_pipeline(bot_storage, sender) as pipeline:
                assert pipeline.server is not None
                freeze_startup_objects()
                urls = {"bare": bare_url, "listener": listener.url, "bot": pipeline.server.url}
                return await _measure(plan, options, urls, pipeline, sender)
        finally:
            await listener.stop()
            await bare_runner.cleanup()
            await listener_storage.close()
            await bot_storage.close()


@dataclass
class LockUse:
    waits_s: list[float] = field(default_factory=list)
    holds_s: list[float] = field(default_factory=list)


class TransactionTimer:
    """Times every write on the database: the wait for its write lock, and how long it held it.

    Installed on the benchmark's own ``Database`` object for the diagnosis runs only, around the write lock that
    every writer takes (a transaction, or a lone statement that SQLite commits on its own); each is named after
    the function that asked for it, by qualified name (through ``PushStore.atomic`` or ``Database.write``, the
    function that called that). Nested transactions are savepoints inside one already holding the lock: not timed on their own.
    """

    # Frames between a writer and the lock: skipped when naming the writer.
    _PLUMBING = frozenset(
        {"held", "_timed", "__aenter__", "transaction", "write", "write_returning", "atomic", "acquire"}
    )

    def __init__(self, db: Database) -> None:
        self._lock = db._write_lock
        self._original = self._lock.held
        self.uses: dict[str, LockUse] = defaultdict(LockUse)

    def __enter__(self) -> TransactionTimer:
        self._lock.held = self._held  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        del self._lock.held

    def _held(self, *, urgent: bool = False) -> AbstractAsyncContextManager[None]:
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_name in self._PLUMBING:
            frame = frame.f_back
        return self._timed(frame.f_code.co_qualname if frame is not None else "?", urgent)

    @asynccontextmanager
    async def _timed(self, label: str, urgent: bool) -> AsyncIterator[None]:
        requested = time.perf_counter()
        acquired: float | None = None
        try:
            async with self._original(urgent=urgent):
                acquired = time.perf_counter()
                yield
        finally:
            if acquired is not None:
                use = self.uses[label]
                use.waits_s.append(acquired - requested)
                use.holds_s.append(time.perf_counter() - acquired)


@dataclass(frozen=True)
class Diagnosis:
    concurrency: int
    run: Run
    uses: dict[str, LockUse]


async def _diagnose(plan: Plan, url: str, pipeline: PushPipeline, concurrency: int, first: int) -> Diagnosis:
    """A closed-loop run against the bot with every transaction timed: where does an ack's time go?"""
    with TransactionTimer(pipeline.storage.db) as timer:
        spec = {
            "mode": "closed",
            "url": url + "/sonorancad/event",
            "key": API_KEY,
            "concurrency": concurrency,
            "requests_per_client": max(1, plan.diagnosis_requests // concurrency),
            "max_seconds": plan.round_max_s,
            "first_number": first,
        }
        result = await _drive(spec)
        uses = dict(timer.uses)
    await pipeline.wait_until_idle(timeout_s=120.0)
    return Diagnosis(concurrency, result, uses)


async def _measure(
    plan: Plan, options: BenchOptions, urls: dict[str, str], pipeline: PushPipeline, sender: InstantSender
) -> BenchReport:
    numbers = iter(range(1, 1 << 40, 1_000_000))
    closed: list[tuple[int, dict[str, Run], float]] = []
    for concurrency in plan.levels:
        pooled: dict[str, Run] = {}
        drain_s = 0.0
        for _ in range(plan.rounds):
            for server in SERVERS:
                spec = {
                    "mode": "closed",
                    "url": urls[server] + "/sonorancad/event",
                    "key": API_KEY,
                    "concurrency": concurrency,
                    "requests_per_client": max(1, math.ceil(plan.requests_per_round / concurrency)),
                    "max_seconds": plan.round_max_s,
                    "first_number": next(numbers),
                }
                result = await _drive(spec)
                pooled[server] = pooled[server] + result if server in pooled else result
            # The next measurement starts from an idle bot: everything accepted is processed and delivered.
            drain_started = time.perf_counter()
            await pipeline.wait_until_idle(timeout_s=120.0)
            drain_s += time.perf_counter() - drain_started
        closed.append((concurrency, pooled, drain_s / plan.rounds))

    open_runs: dict[str, Run] = {}
    open_rounds: dict[str, list[Run]] = {server: [] for server in SERVERS}
    for _ in range(plan.open_rounds):
        for server in SERVERS:
            spec = {
                "mode": "open",
                "url": urls[server] + "/sonorancad/event",
                "key": API_KEY,
                "rate": OPEN_RATE,
                "duration_s": plan.open_duration_s,
                "connections": 64,
                "max_seconds": plan.open_duration_s * 2 + 5,
                "first_number": next(numbers),
            }
            result = await _drive(spec)
            open_rounds[server].append(result)
            open_runs[server] = open_runs[server] + result if server in open_runs else result
            await pipeline.wait_until_idle(timeout_s=120.0)
    diagnosis = [
        await _diagnose(plan, urls["bot"], pipeline, concurrency, next(numbers)) for concurrency in (1, 8)
    ]
    return _report(plan, options, closed, open_runs, open_rounds, diagnosis, sender)


def _diagnosis_figures(diagnosis: list[Diagnosis]) -> list[str]:
    figures = [
        "",
        "Where an ack's time goes: closed-loop runs against the bot with every SQLite write timed (named after "
        "the function that made it; a transaction, or a lone statement SQLite commits on its own). All writers "
        "share one connection and one write lock; *wait* runs from asking for the lock to getting it, *held* "
        "from then to releasing it (BEGIN to COMMIT done, or the statement done), *lock busy* is the share of "
        "the run's wall time the lock was held by that writer (the timing itself adds a little to every write):",
        "",
        "| clients | ack p50 / p99 ms | transaction | count | wait p50 / p99 ms | held p50 / p99 ms | lock busy |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for item in diagnosis:
        ack = item.run.latency
        ordered = sorted(item.uses.items(), key=lambda pair: -sum(pair[1].holds_s))
        for index, (label, use) in enumerate(ordered):
            wait = LatencySummary.of_seconds(use.waits_s)
            held = LatencySummary.of_seconds(use.holds_s)
            lead = (
                f"| {item.concurrency} | {fmt_ms(ack.p50_ms)} / {fmt_ms(ack.p99_ms)} "
                if index == 0
                else "| | "
            )
            figures.append(
                f"{lead}| `{label}` | {wait.count:,} | {fmt_ms(wait.p50_ms)} / {fmt_ms(wait.p99_ms)} "
                f"| {fmt_ms(held.p50_ms)} / {fmt_ms(held.p99_ms)} "
                f"| {sum(use.holds_s) / item.run.elapsed_s:.0%} |"
            )
    return figures


def _where_it_goes(item: Diagnosis) -> str:
    """One sentence from a diagnosis run: how much of an ack is waiting for the write lock, and who holds it."""
    inbox = item.uses.get(INBOX_COMMIT)
    if inbox is None or not inbox.holds_s:
        return ""
    wait = LatencySummary.of_seconds(inbox.waits_s)
    held = LatencySummary.of_seconds(inbox.holds_s)
    others = sorted(
        (
            (label, sum(use.holds_s) / item.run.elapsed_s)
            for label, use in item.uses.items()
            if label != INBOX_COMMIT
        ),
        key=lambda pair: -pair[1],
    )
    holders = ", ".join(f"`{label}` {share:.0%}" for label, share in others[:3])
    return (
        f"Where the time goes (diagnosis run, {clients(item.concurrency)}): of an ack's p50 "
        f"{fmt_ms(item.run.latency.p50_ms)} ms, the inbox commit waits p50 {fmt_ms(wait.p50_ms)} ms for the "
        f"database's write lock and then holds it {fmt_ms(held.p50_ms)} ms; meanwhile the lock is held by "
        f"{holders} of the time."
    )


def _pauses(pauses_ms: tuple[float, ...]) -> str:
    return " + ".join(fmt_ms(pause) for pause in pauses_ms) or "-"


def _report(
    plan: Plan,
    options: BenchOptions,
    closed: list[tuple[int, dict[str, Run], float]],
    open_runs: dict[str, Run],
    open_rounds: dict[str, list[Run]],
    diagnosis: list[Diagnosis],
    sender: InstantSender,
) -> BenchReport:
    figures = [
        "Closed loop (each client sends its next request when the previous one is answered). "
        "*listener alone* is the same listener with the processor and delivery not running (its own database): "
        "the difference between it and *bot* is what the background work on the same loop and the same SQLite "
        "connection costs the listener.",
        "",
        "| clients | bare events/s | listener alone events/s | bot events/s | **bot/bare** | listener/bare "
        "| bot errors | bot backlog drained in |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    numbers: dict[str, float] = {}
    ratios: list[float] = []
    for concurrency, runs, drain_s in closed:
        bare, listener, bot = runs["bare"], runs["listener"], runs["bot"]
        ratio = bot.per_s / bare.per_s if bare.per_s > 0 else math.nan
        ratios.append(ratio)
        figures.append(
            f"| {concurrency} | {bare.per_s:,.0f} | {listener.per_s:,.0f} | {bot.per_s:,.0f} "
            f"| **{fmt_ratio(ratio)}** | {fmt_ratio(listener.per_s / bare.per_s)} "
            f"| {bot.failed} | {drain_s:.2f} s |"
        )
        for server, result in runs.items():
            numbers[f"c{concurrency}_{server}_per_s"] = result.per_s
            numbers[f"c{concurrency}_{server}_p99_ms"] = result.latency.p99_ms
            numbers[f"c{concurrency}_{server}_failed"] = result.failed
    figures += [
        "",
        "Ack latency, closed loop (ms, p50 / p99):",
        "",
        "| clients | bare | listener alone | bot |",
        "|---:|---:|---:|---:|",
    ]
    for concurrency, runs, _ in closed:
        cells = " | ".join(
            f"{fmt_ms(runs[server].latency.p50_ms)} / {fmt_ms(runs[server].latency.p99_ms)}"
            for server in SERVERS
        )
        figures.append(f"| {concurrency} | {cells} |")
    peak = {server: max(runs[server].per_s for _, runs, _ in closed) for server in SERVERS}
    peak_ratio = peak["bot"] / peak["bare"]
    client_cpu = ", ".join(
        f"{clients(concurrency)} {runs['bare'].client_cpu_s / runs['bare'].elapsed_s:.0%}"
        for concurrency, runs, _ in closed
    )
    server_cpu = ", ".join(
        f"{clients(concurrency)} {runs['bot'].server_cpu_s / runs['bot'].elapsed_s:.0%}"
        for concurrency, runs, _ in closed
    )
    figures += [
        "",
        f"Peak throughput: bot {peak['bot']:,.0f}/s, listener alone {peak['listener']:,.0f}/s, bare "
        f"{peak['bare']:,.0f}/s (bot/bare {fmt_ratio(peak_ratio)}). Load generator's CPU during the bare runs "
        f"({client_cpu}; 100% would mean the client, not the bare server, set the pace). Bot process CPU during "
        f"the bot runs, all threads ({server_cpu}).",
        "",
        f"Open loop, {OPEN_RATE:,.0f} events/s offered, {plan.open_rounds} round(s) of {plan.open_duration_s:g} s "
        "per server, pooled (latency = request sent -> answer read; *from schedule* also counts any delay in "
        "sending it; *full GC pauses* lists each round's full garbage collections, which stop the whole process, "
        "and how long each took, `-` for none):",
        "",
        "| server | offered/s | answered 200 | errors | p50 ms | **p99 ms** | p99 of each round ms "
        "| full GC pauses in each round ms | max ms | p99 from schedule ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"bare": "bare", "listener": "listener alone", "bot": "**bot**"}
    for server in SERVERS:
        result = open_runs[server]
        latency = result.latency
        schedule = LatencySummary.of_ms(result.from_schedule_ms)
        figures.append(
            f"| {labels[server]} | {result.offered_per_s:,.0f} | {result.ok:,} | {result.failed} "
            f"| {fmt_ms(latency.p50_ms)} | **{fmt_ms(latency.p99_ms)}** "
            f"| {', '.join(fmt_ms(each.latency.p99_ms) for each in open_rounds[server])} "
            f"| {', '.join(_pauses(each.full_gc_pauses_ms) for each in open_rounds[server])} "
            f"| {fmt_ms(latency.max_ms)} | {fmt_ms(schedule.p99_ms)} |"
        )
        numbers[f"open_{server}_full_gcs"] = len(result.full_gc_pauses_ms)
        numbers[f"open_{server}_p99_ms"] = latency.p99_ms
        numbers[f"open_{server}_ok"] = result.ok
        numbers[f"open_{server}_failed"] = result.failed
    figures += [
        "",
        f"Delivered meanwhile by the bot (instant sender): {sender.embeds:,} embeds in {sender.messages:,} messages.",
    ]
    numbers.update(peak_ratio=peak_ratio, embeds_delivered=sender.embeds)
    figures += _diagnosis_figures(diagnosis)
    open_bot = open_runs["bot"]
    lowest = min(ratios)
    throughput_met = all(ratio >= THROUGHPUT_TARGET for ratio in ratios)
    latency_met = open_bot.latency.p99_ms <= P99_TARGET_MS and open_bot.failed == 0
    verdict = (
        f"Throughput {'met' if throughput_met else 'not met'}: lowest bot/bare ratio {fmt_ratio(lowest)} "
        f"(at {clients(closed[ratios.index(lowest)][0])}). Latency {'met' if latency_met else 'not met'}: "
        f"p99 ack {fmt_ms(open_bot.latency.p99_ms)} ms at {OPEN_RATE:,.0f} events/s. {_where_it_goes(diagnosis[0])}"
    )
    return BenchReport(
        name=NAME,
        title="Ingest: push listener vs a bare aiohttp handler",
        quick=options.quick,
        arrangement=(
            "all three servers in the benchmark process, on one event loop, each on its own 127.0.0.1 port: "
            "*bot* = PushPipeline + PushServer on a real SQLite file (WAL) with one guild whose units route points "
            "at a channel, processor and delivery running, delivering to an instant in-process sender (no Discord "
            "fake on the loop); *listener alone* = the same listener on its own database with no processor or "
            "delivery running; *bare* = an aiohttp handler that parses the JSON and answers 200. The load "
            "generator is a separate process (`bench/_loadgen.py`): one shared keep-alive ClientSession, the same "
            f"bodies (EVENT_UNIT_STATUS, ~90 bytes) for every server; {plan.rounds} round(s) of "
            f"{plan.requests_per_round:,} requests per level and server (split across the clients, each round "
            f"capped at {plan.round_max_s:g} s), servers measured in turn, the bot's backlog drained after each "
            "round; the process's start-up objects are frozen (`gc.freeze`) once the servers are up, as "
            "`python -m bot run` does"
        ),
        figures=figures,
        target=(
            f"bot throughput >= {THROUGHPUT_TARGET:.0%} of the bare handler's at every concurrency level, and "
            f"p99 ack <= {P99_TARGET_MS:g} ms at {OPEN_RATE:,.0f} events/s offered"
        ),
        target_met=throughput_met and latency_met,
        verdict=verdict,
        numbers=numbers,
    )
