"""Commands: the bot's own overhead on ``/911``, against the bare CAD client call it wraps.

Arrangement, all in this process on one event loop: the real bot built by ``create_bot`` (as in production and
in ``tests/harness.py``) runs in a SimCord virtual guild; its CAD client talks to the loopback ``CadSimulator``,
which answers at once. The guild's /911 cooldown is 0 and the CAD client's pacing is 1,000 requests/s with a
burst of 1,000, so nothing throttles. The bot's client is the real ``CadClient`` with a stopwatch around the calls
the command makes (``ensure_allowed`` and ``call_911``).

For each of the N rounds, in turn: one bare ``CadClient.call_911`` (baseline: same simulator, same process, its
own client and pacing) and one ``/911`` through SimCord.

Overhead per command = end-to-end ``/911`` time - the time spent inside the CAD client during that command. It
includes SimCord's simulated Discord (interaction dispatch, the defer and follow-up requests, in memory). To show
where it goes, a separate batch of commands runs afterwards under ``cProfile`` and its CPU time is split by package.
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import simcord
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bench._common import BenchOptions, BenchReport, LatencySummary, fmt_ms, fmt_ratio
from bot.app import create_bot
from bot.cad.client import CadClient
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from bot.config import Settings
from bot.storage import Storage
from testing.cad_simulator import CadSimulator

NAME = "commands"
COMMUNITY_ID = "4711"
API_KEY = "bench-cad-key-0001"
PACING = {"requests_per_second": 1000.0, "burst": 1000}
WARMUP = 10


class TimedCadClient(CadClient):
    """The real client; adds up the time the current command spends inside it."""

    spent_s = 0.0

    async def ensure_allowed(self, creds: CadCredentials, request_type: str) -> None:
        started = time.perf_counter()
        try:
            await super().ensure_allowed(creds, request_type)
        finally:
            self.spent_s += time.perf_counter() - started

    async def call_911(self, creds: CadCredentials, **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            return await super().call_911(creds, **kwargs)
        finally:
            self.spent_s += time.perf_counter() - started


def _settings(sim_url: str, db_path: Path) -> Settings:
    return Settings(
        cad={"api_base": sim_url, "timeout_s": 5.0, **PACING},
        server={"enabled": False, "port": 0, "host": "127.0.0.1"},
        database={"path": db_path},
    )


def _client(
    session: aiohttp.ClientSession, settings: Settings, kind: type[CadClient] = CadClient
) -> CadClient:
    return kind(
        session,
        base_url=settings.cad.api_base,
        timeout_s=settings.cad.timeout_s,
        rate_per_s=settings.cad.requests_per_second,
        burst=settings.cad.burst,
    )


async def run(options: BenchOptions) -> BenchReport:
    rounds = 100 if options.quick else 1000
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as folder:
        db_path = Path(folder) / "bench.sqlite3"
        storage = await Storage.open(db_path, Fernet.generate_key().decode())
        try:
            async with CadSimulator() as sim, aiohttp.ClientSession() as session:
                sim.add_community(COMMUNITY_ID, API_KEY, Tier.PRO)
                settings = _settings(sim.base_url, db_path)
                timed = _client(session, settings, TimedCadClient)
                assert isinstance(timed, TimedCadClient)
                bare = _client(session, settings)
                bot = create_bot(settings, storage, session, with_pipeline=True, cad=timed)
                env = simcord.Env(bot)

                def idle_wait(awaitable: Any) -> Any:
                    return env.external_wait(awaitable, reason="push pipeline idle")

                bot.idle_wait = idle_wait
                await env.start()
                try:
                    samples = await _measure(env, bot, storage, timed, bare, rounds)
                finally:
                    await env.shutdown()
                cad_calls = len(sim.requests_of("CALL_911"))
        finally:
            await storage.close()
    return _report(options, rounds, samples, cad_calls)


async def _measure(
    env: simcord.Env, bot: Any, storage: Storage, timed: TimedCadClient, bare: CadClient, rounds: int
) -> dict[str, list[float]]:
    await bot.tree.sync()
    guild = env.create_guild(name="Bench County RP")
    channel = guild.create_text_channel("general")
    member = guild.add_member(env.create_user("caller"))
    await storage.guilds.set_cad(guild.id, COMMUNITY_ID, API_KEY, 1)
    await storage.guilds.set_cooldown(guild.id, 0)
    creds = CadCredentials(community_id=COMMUNITY_ID, api_key=SecretStr(API_KEY), server_id=1)
    samples: dict[str, list[float]] = {"bare": [], "slash": [], "inside_cad": [], "overhead": []}
    failures = 0
    for number in range(-WARMUP, rounds):
        started = time.perf_counter()
        await bare.call_911(
            creds, caller="Bench", location="Legion Square", description="Bench call", emergency=True
        )
        bare_s = time.perf_counter() - started

        timed.spent_s = 0.0
        started = time.perf_counter()
        result = await member.slash(
            channel, "911", location="Legion Square", description=f"Bench call {number}"
        )
        slash_s = time.perf_counter() - started
        inside_s = timed.spent_s
        response = result.response
        if response is None or not str(response.content).startswith("📞 911 call #"):
            failures += 1
        if number < 0:
            continue
        samples["bare"].append(bare_s)
        samples["slash"].append(slash_s)
        samples["inside_cad"].append(inside_s)
        samples["overhead"].append(slash_s - inside_s)
    samples["failures"] = [float(failures)]
    samples["profile"] = _profile_split(await _profiled(member, channel, max(20, rounds // 5)))
    return samples


async def _profiled(member: Any, channel: Any, count: int) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for number in range(count):
            await member.slash(
                channel, "911", location="Legion Square", description=f"Profiled call {number}"
            )
    finally:
        profiler.disable()
    return pstats.Stats(profiler)


# Where a function lives, by the first fragment of its file path that matches (order matters).
_PACKAGES = (
    ("/simcord/", "SimCord (simulated Discord)"),
    ("/discord/", "discord.py"),
    ("testing/cad_simulator.py", "CAD simulator"),
    ("/aiosqlite/", "aiosqlite + SQLite (incl. handing work to its thread)"),
    ("sqlite3", "aiosqlite + SQLite (incl. handing work to its thread)"),
    ("SimpleQueue", "aiosqlite + SQLite (incl. handing work to its thread)"),
    ("copy.py", "copy.deepcopy (SimCord's payload copies)"),
    ("/aiohttp/", "aiohttp (client and simulator server)"),
    ("/yarl/", "aiohttp (client and simulator server)"),
    ("/multidict/", "aiohttp (client and simulator server)"),
    ("/cryptography/", "cryptography (Fernet: the CAD key decrypted per command)"),
    ("ciphers.", "cryptography (Fernet: the CAD key decrypted per command)"),
    ("/pydantic", "pydantic"),
    ("/bot/", "bot/ and cogs/"),
    ("/cogs/", "bot/ and cogs/"),
    ("select.epoll", "waiting in epoll (idle: SQLite thread, sockets)"),
    ("selectors.py", "waiting in epoll (idle: SQLite thread, sockets)"),
    ("_socket.socket", "socket send/recv (loopback to the CAD simulator)"),
    ("/asyncio/", "asyncio event loop"),
)


def _profile_split(stats: pstats.Stats) -> list[float]:
    """Seconds of own time per package, in the order of ``_PACKAGE_LABELS``, plus everything else last."""
    totals = dict.fromkeys(_PACKAGE_LABELS, 0.0)
    other = 0.0
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own_s, _, _) in raw.items():
        where = f"{filename} {function}"
        label = next((label for fragment, label in _PACKAGES if fragment in where), None)
        if label is None:
            other += own_s
        else:
            totals[label] += own_s
    return [*totals.values(), other]


_PACKAGE_LABELS = tuple(dict.fromkeys(label for _, label in _PACKAGES))


def _report(
    options: BenchOptions, rounds: int, samples: dict[str, list[float]], cad_calls: int
) -> BenchReport:
    summary = {
        name: LatencySummary.of_seconds(values) for name, values in samples.items() if name != "failures"
    }
    failures = int(samples["failures"][0])
    bare, slash, overhead = summary["bare"], summary["slash"], summary["overhead"]
    rows = [
        ("bare `CadClient.call_911` (baseline)", "bare"),
        ("`/911` end to end through SimCord", "slash"),
        ("… of which inside the CAD client", "inside_cad"),
        ("**… the bot's own overhead** (end to end - CAD client)", "overhead"),
    ]
    figures = ["| per command | p50 ms | p99 ms | mean ms |", "|---|---:|---:|---:|"]
    for label, key in rows:
        stats = summary[key]
        figures.append(
            f"| {label} | {fmt_ms(stats.p50_ms)} | {fmt_ms(stats.p99_ms)} | {fmt_ms(stats.mean_ms)} |"
        )
    slash_ratio = slash.p50_ms / bare.p50_ms
    figures += [
        "",
        f"`/911` end to end / bare call (p50): {fmt_ratio(slash_ratio)}; overhead / bare call (p50): "
        f"{fmt_ratio(overhead.p50_ms / bare.p50_ms)}. Commands that did not confirm a call: "
        f"{failures} of {rounds} (+{WARMUP} warm-up rounds); CALL_911 requests at the simulator: {cad_calls:,}.",
        "",
        "Where a `/911`'s time goes (own time by package under cProfile, over a separate batch of commands after "
        "the measured ones; the profiler slows everything, so only the shares mean something):",
        "",
        "| package | share |",
        "|---|---:|",
    ]
    split = samples["profile"]
    total = sum(split) or 1.0
    for label, seconds in sorted(zip((*_PACKAGE_LABELS, "other"), split, strict=True), key=lambda p: -p[1]):
        figures.append(f"| {label} | {seconds / total:.0%} |")
    figures.append("")
    figures.append(
        "*other*: built-ins called from everywhere (isinstance, getattr, dict lookups) and the standard library."
    )
    return BenchReport(
        name=NAME,
        title=f"Commands: {rounds:,} `/911` through SimCord vs the bare CAD call",
        quick=options.quick,
        arrangement=(
            "one process, one event loop: the real bot from `create_bot` in a SimCord virtual guild (push "
            "pipeline running, as in production), the loopback CadSimulator answering at once, the guild's /911 "
            "cooldown 0, CAD pacing 1,000 requests/s with a burst of 1,000; each round runs a bare "
            "`CadClient.call_911` (own client, same simulator and session) and a `/911` in turn, "
            f"after {WARMUP} warm-up rounds"
        ),
        figures=figures,
        target="none set by issue #4 (report the overhead p50/p99 beside the bare call)",
        target_met=None if failures == 0 else False,
        verdict=(
            f"Overhead p50 {fmt_ms(overhead.p50_ms)} ms, p99 {fmt_ms(overhead.p99_ms)} ms; bare call p50 "
            f"{fmt_ms(bare.p50_ms)} ms, p99 {fmt_ms(bare.p99_ms)} ms"
            + ("." if failures == 0 else f"; {failures} commands failed.")
        ),
        numbers={
            "rounds": rounds,
            "failures": failures,
            "bare_p50_ms": bare.p50_ms,
            "slash_p50_ms": slash.p50_ms,
            "overhead_p50_ms": overhead.p50_ms,
            "overhead_p99_ms": overhead.p99_ms,
            "cad_calls": cad_calls,
        },
    )
