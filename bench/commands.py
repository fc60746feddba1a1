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
from bot.cad.v2 import CadV2Client
from bot.cad.v2_limits import KeyBudgets
from bot.config import Settings
from bot.storage import Storage
from testing.cad_simulator import CadSimulator

NAME = "commands"
COMMUNITY_ID = "4711"
API_KEY = "bench-cad-key-0001"
PACING = {"requests_per_second": 1000.0, "burst": 1000}
WARMUP = 10


class _Stopwatch:
    """Adds up the time the current command spends inside the CAD client it is mixed into."""

    spent_s = 0.0

    async def ensure_allowed(self, creds: CadCredentials, request_type: str) -> None:
        started = time.perf_counter()
        try:
            await super().ensure_allowed(creds, request_type)  # type: ignore[misc]
        finally:
            self.spent_s += time.perf_counter() - started

    async def call_911(self, creds: CadCredentials, **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            result: int = await super().call_911(creds, **kwargs)  # type: ignore[misc]
            return result
        finally:
            self.spent_s += time.perf_counter() - started


class TimedCadClient(_Stopwatch, CadClient):
    """The real v1 client, timed."""


class TimedV2Client(_Stopwatch, CadV2Client):
    """The real v2 client, timed."""


Timed = TimedCadClient | TimedV2Client
# v2 allows 10 new 911 calls a minute per key; a 1 us budget window keeps that limit from binding while its
# bookkeeping still runs on every request (the simulator's own limits are switched off likewise).
UNBOUND_WINDOW_S = 1e-6


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


def _v2_client(
    session: aiohttp.ClientSession, settings: Settings, kind: type[CadV2Client] = CadV2Client
) -> CadV2Client:
    return kind(
        session,
        base_url=settings.cad.api_base,
        timeout_s=settings.cad.timeout_s,
        budgets=KeyBudgets(window_s=UNBOUND_WINDOW_S),
    )


async def run(options: BenchOptions) -> BenchReport:
    rounds = 100 if options.quick else 1000
    v1 = await _run_version(1, rounds)
    v2 = await _run_version(2, rounds)
    return _report(options, rounds, v1, v2)


async def _run_version(version: int, rounds: int) -> dict[str, Any]:
    """One bot on CAD API ``version`` (its own database and simulator), measured against the bare call of
    the same API."""
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as folder:
        db_path = Path(folder) / "bench.sqlite3"
        storage = await Storage.open(db_path, Fernet.generate_key().decode())
        try:
            async with CadSimulator() as sim, aiohttp.ClientSession() as session:
                sim.add_community(COMMUNITY_ID, API_KEY, Tier.PRO)
                sim.v2.enforce_limits = False
                settings = _settings(sim.base_url, db_path)
                timed: Timed
                bare: CadClient | CadV2Client
                if version == 1:
                    timed = TimedCadClient(session, base_url=sim.base_url, timeout_s=5.0, **_pacing())
                    bare = _client(session, settings)
                else:
                    timed = TimedV2Client(
                        session,
                        base_url=sim.base_url,
                        timeout_s=5.0,
                        budgets=KeyBudgets(window_s=UNBOUND_WINDOW_S),
                    )
                    bare = _v2_client(session, settings)
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
                calls = [r for r in sim.requests if r.type in ("CALL_911", "create_911_call")]
                samples["cad_calls"] = len(calls)
                samples["v2_paths"] = sum(1 for r in calls if r.path.startswith("/v2/"))
        finally:
            await storage.close()
    return samples


def _pacing() -> dict[str, Any]:
    return {"rate_per_s": PACING["requests_per_second"], "burst": PACING["burst"]}


async def _measure(
    env: simcord.Env, bot: Any, storage: Storage, timed: Timed, bare: CadClient | CadV2Client, rounds: int
) -> dict[str, Any]:
    await bot.tree.sync()
    guild = env.create_guild(name="Bench County RP")
    channel = guild.create_text_channel("general")
    member = guild.add_member(env.create_user("caller"))
    await storage.guilds.set_cad(guild.id, COMMUNITY_ID, API_KEY, 1)
    await storage.guilds.set_cooldown(guild.id, 0)
    creds = CadCredentials(community_id=COMMUNITY_ID, api_key=SecretStr(API_KEY), server_id=1)
    samples: dict[str, Any] = {"bare": [], "slash": [], "inside_cad": [], "overhead": []}
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


def _report(options: BenchOptions, rounds: int, v1: dict[str, Any], v2: dict[str, Any]) -> BenchReport:
    keys = ("bare", "slash", "inside_cad", "overhead")
    summary = {
        version: {key: LatencySummary.of_seconds(samples[key]) for key in keys}
        for version, samples in (("v1", v1), ("v2", v2))
    }
    failures = {version: int(samples["failures"][0]) for version, samples in (("v1", v1), ("v2", v2))}
    rows = [
        ("bare `call_911` (baseline)", "bare"),
        ("`/911` end to end through SimCord", "slash"),
        ("… of which inside the CAD client", "inside_cad"),
        ("**… the bot's own overhead** (end to end - CAD client)", "overhead"),
    ]
    figures = ["| per command | API | p50 ms | p99 ms | mean ms |", "|---|---|---:|---:|---:|"]
    for label, key in rows:
        for version in ("v1", "v2"):
            stats = summary[version][key]
            figures.append(
                f"| {label} | {version} | {fmt_ms(stats.p50_ms)} | {fmt_ms(stats.p99_ms)} | {fmt_ms(stats.mean_ms)} |"
            )
    o1, o2 = summary["v1"]["overhead"], summary["v2"]["overhead"]
    b1, b2 = summary["v1"]["bare"], summary["v2"]["bare"]
    figures += [
        "",
        f"Bot overhead on v2 / on v1 (p50): **{fmt_ratio(o2.p50_ms / o1.p50_ms)}**; overhead / bare call (p50): "
        f"v1 {fmt_ratio(o1.p50_ms / b1.p50_ms)}, v2 {fmt_ratio(o2.p50_ms / b2.p50_ms)}; bare v2 call / bare v1 "
        f"call (p50): {fmt_ratio(b2.p50_ms / b1.p50_ms)}. Commands that did not confirm a call: v1 "
        f"{failures['v1']}, v2 {failures['v2']} of {rounds} each (+{WARMUP} warm-up rounds). 911 requests at the "
        f"simulator: v1 {v1['cad_calls']:,}, v2 {v2['cad_calls']:,} (of which on /v2/ paths: {v2['v2_paths']:,}).",
        "",
        "Where a `/911`'s time goes on v2 (own time by package under cProfile, over a separate batch of commands "
        "after the measured ones; the profiler slows everything, so only the shares mean something):",
        "",
        "| package | share |",
        "|---|---:|",
    ]
    split = v2["profile"]
    total = sum(split) or 1.0
    for label, seconds in sorted(zip((*_PACKAGE_LABELS, "other"), split, strict=True), key=lambda p: -p[1]):
        figures.append(f"| {label} | {seconds / total:.0%} |")
    figures.append("")
    figures.append(
        "*other*: built-ins called from everywhere (isinstance, getattr, dict lookups) and the standard library."
    )
    failed = failures["v1"] + failures["v2"]
    return BenchReport(
        name=NAME,
        title=f"Commands: {rounds:,} `/911` through SimCord vs the bare CAD call, on CAD v1 and v2",
        quick=options.quick,
        arrangement=(
            "one process, one event loop, v1 then v2: for each API the real bot from `create_bot` in a SimCord "
            "virtual guild (push pipeline running, as in production) with that API's client, the loopback "
            "CadSimulator answering at once (v1 routes, or its /v2 routes on the same state), the guild's /911 "
            "cooldown 0, v1 pacing 1,000 requests/s with a burst of 1,000, v2's per-key budget window shrunk to "
            "1 µs and the simulator's v2 limits off (v2 allows 10 new 911 calls a minute per key; its "
            "bookkeeping still runs on every request); each round runs a bare `call_911` of the same API (own "
            f"client, same simulator and session) and a `/911` in turn, after {WARMUP} warm-up rounds"
        ),
        figures=figures,
        target="issue #9: a benchmark line with the `/911` bot overhead on v2 vs v1 in one run (no number set)",
        target_met=None if failed == 0 else False,
        verdict=(
            f"Overhead p50 v1 {fmt_ms(o1.p50_ms)} ms, v2 {fmt_ms(o2.p50_ms)} ms "
            f"({fmt_ratio(o2.p50_ms / o1.p50_ms)}); p99 v1 {fmt_ms(o1.p99_ms)} ms, v2 {fmt_ms(o2.p99_ms)} ms"
            + ("." if failed == 0 else f"; {failed} commands failed.")
        ),
        numbers={
            "rounds": rounds,
            "failures": failed,
            "v1_overhead_p50_ms": o1.p50_ms,
            "v2_overhead_p50_ms": o2.p50_ms,
            "v1_bare_p50_ms": b1.p50_ms,
            "v2_bare_p50_ms": b2.p50_ms,
            "v2_paths": v2["v2_paths"],
        },
    )
