"""Alerts: panics behind a flood of 600 events in the one channel a small community routes everything to.

Arrangement, all in this process on one event loop: the bot (PushPipeline + listener on a real SQLite file) with
every category routed to one channel, delivering through discord.py's own REST client and rate limiter to the
loopback ``DiscordRestFake`` at Discord's real per-channel limit of 5 messages per 5 s. The flood (unit status
changes, every 20th a record) is POSTed to the listener by 16 concurrent clients; then panics are POSTed while
the flood drains, the first right after it and the rest at uneven intervals, so they meet the rate-limit window
in different states.

Measured: each panic's latency, from just before its POST to its arrival at the fake (the floor is one message
slot, window / limit = 1 s: the wait for a slot when the flood holds the channel); and the flood's completion
time, first POST to arrival of its last message, against the theoretical minimum (every message packed with 10
embeds, ``limit`` messages per window).

Baselines in the same run: **discord.py alone**, sending the same number of already packed messages one after
another to another channel of the same fake while the bot runs (the best this rate limiter allows), and the
**first-in-first-out order** the bot had before: computed from this run, a panic would have arrived with the
flood's last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from discord.http import Route

from bench._common import BenchOptions, BenchReport, fmt_ratio
from bench._world import API_KEY, open_storage, post_event, rate_limited_discord, running_pipeline
from bot.storage.models import Category
from testing.discord_rest import DiscordRestFake, StoredMessage

NAME = "alerts"
CHANNEL = 1_000_100
BASELINE_CHANNEL = 9_000_002
EMBEDS_PER_MESSAGE = 10
POSTERS = 16
RECORD_EVERY = 20
LATENCY_TARGET_S = 1.0
TIME_TARGET = 1.2
PANIC_IDENT = 9_000
_UNIT = re.compile(r"^🔄 Unit #(\d+)\b")
_RECORD = re.compile(r"Bench record (\d+)\b")
_PANIC = re.compile(r"PANIC — Unit #(\d+)\b")


@dataclass(frozen=True)
class Scenario:
    events: int
    limit: int
    window_s: float
    # When each panic is POSTed, in seconds after the flood's POSTs are all answered.
    panic_offsets_s: tuple[float, ...]


FULL = Scenario(events=600, limit=5, window_s=5.0, panic_offsets_s=(0.0, 6.1, 12.7, 19.3, 26.9, 33.4))
QUICK = Scenario(events=150, limit=5, window_s=1.0, panic_offsets_s=(0.0, 0.6))


def flood_envelopes(events: int) -> list[dict[str, Any]]:
    """Unit status changes, every ``RECORD_EVERY``-th a record instead (two routine categories, interleaved)."""
    envelopes: list[dict[str, Any]] = []
    for number in range(1, events + 1):
        if number % RECORD_EVERY == 0:
            record = {"id": number, "name": f"Bench record {number}", "type": 2, "sections": []}
            envelopes.append({"key": API_KEY, "type": "EVENT_RECORD_ADD", "data": {"record": record}})
        else:
            data = {"identIds": [number], "status": 2}
            envelopes.append({"key": API_KEY, "type": "EVENT_UNIT_STATUS", "data": data})
    return envelopes


def theoretical_seconds(messages: int, limit: int, window_s: float) -> float:
    """The least time ``messages`` take from the first to the last when a window allows ``limit`` of them."""
    return (max(0, messages - 1) // limit) * window_s


async def _post_flood(url: str, envelopes: list[dict[str, Any]]) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for envelope in envelopes:
        queue.put_nowait(envelope)
    async with aiohttp.ClientSession() as session:

        async def poster() -> None:
            while not queue.empty():
                await post_event(session, url, queue.get_nowait())

        await asyncio.gather(*(poster() for _ in range(POSTERS)))


async def _window_just_used_up(fake: DiscordRestFake, *, before_reset_s: float) -> None:
    """Return once the channel's window has no request left, ``before_reset_s`` before it resets."""
    async with asyncio.timeout(30):
        while True:
            state = fake.bucket_state(CHANNEL)
            if state is not None and state[0] == 0 and state[1] - time.monotonic() > before_reset_s:
                await asyncio.sleep(state[1] - time.monotonic() - before_reset_s)
                return
            fake.request_arrived.clear()
            await fake.request_arrived.wait()


async def _post_panics(
    url: str, offsets: tuple[float, ...], start: float, fake: DiscordRestFake
) -> dict[int, float]:
    """POST one panic per offset, then one at the worst moment (a unit of its own each); returns when each
    POST began, by unit."""
    posted: dict[int, float] = {}
    async with aiohttp.ClientSession() as session:

        async def panic(ident: int) -> None:
            posted[ident] = time.monotonic()
            data = {"identIds": [ident], "isPanic": True}
            await post_event(session, url, {"key": API_KEY, "type": "EVENT_UNIT_PANIC", "data": data})

        for number, offset in enumerate(offsets, start=1):
            await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
            await panic(PANIC_IDENT + number)
        with contextlib.suppress(TimeoutError):
            await _window_just_used_up(fake, before_reset_s=0.3)
        await panic(PANIC_IDENT + len(offsets) + 1)
    return posted


async def _baseline(fake: DiscordRestFake, http: Any, messages: int) -> float:
    """discord.py alone: ``messages`` pre-packed messages in a row to a channel of their own."""
    packed = [{"title": f"Unit #{i} — Available"} for i in range(EMBEDS_PER_MESSAGE)]
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=BASELINE_CHANNEL)
    started = time.monotonic()
    for _ in range(messages):
        await http.request(route, json={"embeds": packed})
    return fake.requests_to(BASELINE_CHANNEL, "POST")[-1].at - started


def _numbers(messages: list[StoredMessage], pattern: re.Pattern[str]) -> list[int]:
    return [
        int(match.group(1))
        for message in messages
        for embed in message.embeds
        if (match := pattern.search(str(embed.get("title", ""))))
    ]


async def run(options: BenchOptions) -> BenchReport:
    scenario = QUICK if options.quick else FULL
    envelopes = flood_envelopes(scenario.events)
    panics = len(scenario.panic_offsets_s) + 1
    flood_messages = math.ceil(scenario.events / EMBEDS_PER_MESSAGE)
    min_seconds = theoretical_seconds(flood_messages + panics, scenario.limit, scenario.window_s)
    slot_s = scenario.window_s / scenario.limit
    limit_s = 60 + min_seconds * 3
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder:
        storage = await open_storage(Path(folder), list(Category), channel=CHANNEL)
        try:
            async with rate_limited_discord(scenario.limit, scenario.window_s) as discord_world:
                fake = discord_world.fake
                async with running_pipeline(storage, discord_world.sender()) as pipeline:
                    assert pipeline.server is not None
                    url = pipeline.server.url
                    started = time.monotonic()
                    baseline = asyncio.create_task(
                        _baseline(fake, discord_world.http, flood_messages + panics)
                    )
                    await _post_flood(url, envelopes)
                    flood_posted = time.monotonic()
                    posted = await _post_panics(url, scenario.panic_offsets_s, flood_posted, fake)
                    async with asyncio.timeout(limit_s):
                        while len(fake.all_embeds(CHANNEL)) < scenario.events + panics:
                            fake.request_arrived.clear()
                            await fake.request_arrived.wait()
                    await pipeline.wait_until_idle(timeout_s=limit_s)
                    baseline_s = await baseline
                messages = fake.messages(CHANNEL)
                rate_limited = [request for request in fake.requests_to(CHANNEL) if request.status == 429]
                exhausted = fake.exhausted_bucket_requests
        finally:
            await storage.close()

    # Correctness: every flood event exactly once and in order within its category; every panic once.
    units = _numbers(messages, _UNIT)
    records = _numbers(messages, _RECORD)
    expected_units = [n for n in range(1, scenario.events + 1) if n % RECORD_EVERY]
    expected_records = [n for n in range(1, scenario.events + 1) if n % RECORD_EVERY == 0]
    flood_ok = units == expected_units and records == expected_records
    panic_messages = {ident: message for message in messages for ident in _numbers([message], _PANIC)}
    panics_ok = sorted(_numbers(messages, _PANIC)) == sorted(posted)
    last_flood = [
        message for message in messages if _numbers([message], _UNIT) or _numbers([message], _RECORD)
    ][-1]
    flood_s = last_flood.created_at - started
    latencies = {
        ident: panic_messages[ident].created_at - posted[ident] for ident in posted if ident in panic_messages
    }
    fifo = {ident: max(0.0, last_flood.created_at - posted[ident]) for ident in posted}
    worst = max(latencies.values(), default=math.nan)
    ratio = flood_s / min_seconds if min_seconds > 0 else math.nan
    baseline_ratio = baseline_s / min_seconds if min_seconds > 0 else math.nan

    moments = [f"+{offset:.1f} s" for offset in scenario.panic_offsets_s]
    moments.append(f"+{posted[max(posted)] - flood_posted:.1f} s: the window's last request just gone")
    rows = [
        f"| {number} | {moment} | {latencies.get(ident, math.nan) * 1000:.0f} | {fifo[ident]:.1f} s |"
        for number, (moment, ident) in enumerate(zip(moments, sorted(posted), strict=True), start=1)
    ]
    figures = [
        f"Panic latency, its POST to its arrival at Discord (floor: one message slot, {slot_s:g} s):",
        "",
        "| panic | POSTed after the flood | **latency ms** | first-in-first-out (computed) |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
        f"Worst {worst * 1000:.0f} ms, median {statistics.median(latencies.values()) * 1000:.0f} ms"
        if latencies
        else "No panic arrived.",
        "",
        "The flood itself (first POST to its last message at Discord):",
        "",
        "| | messages | time (s) | time / theoretical |",
        "|---|---:|---:|---:|",
        f"| theoretical minimum (flood + panics, 10 embeds each) | {flood_messages + panics} "
        f"| {min_seconds:.1f} | 1.00× |",
        f"| discord.py alone, pre-packed (baseline, same run) | {flood_messages + panics} | {baseline_s:.1f} "
        f"| {fmt_ratio(baseline_ratio)} |",
        f"| **bot** | {len(messages)} | {flood_s:.1f} | **{fmt_ratio(ratio)}** |",
        "",
        f"Flood POSTed in {flood_posted - started:.2f} s. Received: {len(units)} unit and {len(records)} record "
        f"embeds ({'complete and in order in each category' if flood_ok else 'NOT complete or NOT in order'}), "
        f"{len(panic_messages)} of {panics} panics"
        f"{'' if panics_ok else ' (NOT each exactly once)'}. Requests into an exhausted bucket: {len(exhausted)}; "
        f"429 answers: {len(rate_limited)}.",
    ]
    latency_met = bool(latencies) and worst <= LATENCY_TARGET_S and len(latencies) == panics
    met = latency_met and flood_ok and panics_ok and ratio <= TIME_TARGET
    verdict = (
        f"worst panic latency {worst * 1000:.0f} ms (first-in-first-out would have been "
        f"{max(fifo.values()):.0f} s); the flood took {flood_s:.1f} s against a theoretical "
        f"{min_seconds:.1f} s ({fmt_ratio(ratio)}), "
        + ("complete and in order." if flood_ok and panics_ok else "NOT complete or NOT in order.")
    )
    return BenchReport(
        name=NAME,
        title=f"Alerts: panics behind a flood of {scenario.events:,} events in one channel",
        quick=options.quick,
        arrangement=(
            "one process, one event loop: PushPipeline + listener on a real SQLite file, every category routed to "
            "one channel, delivering through discord.py's HTTPClient (its own rate limiter) to the loopback "
            f"DiscordRestFake at {scenario.limit} messages per {scenario.window_s:g} s per channel (Discord's "
            f"limit for sending messages); the flood is {scenario.events:,} events (unit status changes, every "
            f"{RECORD_EVERY}th a record) POSTed by {POSTERS} concurrent clients; then {panics} EVENT_UNIT_PANIC "
            "are POSTed one by one at uneven times while the flood drains. discord.py alone sends its pre-packed "
            "messages to another channel of the same fake during the same run"
        ),
        figures=figures,
        target=(
            f"every panic at Discord within {LATENCY_TARGET_S:g} s of its POST; the flood complete and in order "
            f"within each category, in <= {TIME_TARGET}× the theoretical time"
        ),
        target_met=met,
        verdict=verdict,
        numbers={
            "events": scenario.events,
            "units": len(units),
            "records": len(records),
            "flood_in_order": float(flood_ok),
            "panics": panics,
            "panics_delivered": len(latencies),
            "panics_once": float(panics_ok),
            "worst_panic_s": worst,
            "flood_seconds": flood_s,
            "theoretical_seconds": min_seconds,
            "baseline_seconds": baseline_s,
            "ratio": ratio,
            "messages": len(messages),
            "exhausted_bucket_requests": len(exhausted),
            "first_panic_before_flood_end": float(
                min(posted) in panic_messages
                and panic_messages[min(posted)].created_at < last_flood.created_at
            ),
        },
    )
