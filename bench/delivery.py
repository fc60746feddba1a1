"""Delivery: a burst of events into one channel whose Discord bucket allows 5 messages per 0.5 s.

Arrangement, all in this process on one event loop: the bot (PushPipeline + listener on a real SQLite file)
delivers through discord.py's own REST client and rate limiter to the loopback ``DiscordRestFake``. The burst is
POSTed to the listener by 16 concurrent clients; the clock starts at the first POST and stops when the fake has
received the last embed.

Baselines in the same run: the **theoretical minimum** (every message packed with 10 embeds, the first window's
burst at once, then ``limit`` messages per ``window``), and **discord.py alone**: the same number of already packed
10-embed messages sent one after another through the same client to another channel of the same fake, which is
the best this rate limiter allows with perfect packing and no bot around it.
"""

from __future__ import annotations

import asyncio
import math
import re
import tempfile
import time
from pathlib import Path

import aiohttp
from discord.http import Route

from bench._common import BenchOptions, BenchReport, fmt_ratio
from bench._world import API_KEY, CHANNELS, open_storage, post_event, rate_limited_discord, running_pipeline
from bot.storage.models import Category
from testing.discord_rest import DiscordRestFake

NAME = "delivery"
LIMIT = 5
WINDOW_S = 0.5
EMBEDS_PER_MESSAGE = 10
TIME_TARGET = 1.2
POSTERS = 16
CHANNEL = CHANNELS[Category.UNITS]
BASELINE_CHANNEL = 9_000_001
_TITLE = re.compile(r"Unit #(\d+)\b")


def theoretical_seconds(events: int) -> tuple[int, float]:
    """The fewest messages for ``events`` embeds, and the least time Discord's bucket lets them take."""
    messages = math.ceil(events / EMBEDS_PER_MESSAGE)
    rate = LIMIT / WINDOW_S
    return messages, max(0, messages - LIMIT) / rate


async def _post_burst(url: str, events: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for ident in range(1, events + 1):
        queue.put_nowait(ident)
    async with aiohttp.ClientSession() as session:

        async def poster() -> None:
            while not queue.empty():
                ident = queue.get_nowait()
                envelope = {
                    "key": API_KEY,
                    "type": "EVENT_UNIT_STATUS",
                    "data": {"identIds": [ident], "status": 2},
                }
                await post_event(session, url, envelope)

        await asyncio.gather(*(poster() for _ in range(POSTERS)))


async def _wait_for_embeds(fake: DiscordRestFake, events: int, limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while len(fake.all_embeds(CHANNEL)) < events:
            fake.request_arrived.clear()
            await fake.request_arrived.wait()


async def run(options: BenchOptions) -> BenchReport:
    events = 100 if options.quick else 1000
    min_messages, min_seconds = theoretical_seconds(events)
    limit_s = 30 + min_seconds * 3
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as folder:
        storage = await open_storage(Path(folder), [Category.UNITS])
        try:
            async with rate_limited_discord(LIMIT, WINDOW_S) as discord_world:
                fake = discord_world.fake
                # Baseline first: discord.py alone, perfectly packed messages, on a channel of its own.
                packed = [{"title": f"Unit #{i} — Available"} for i in range(EMBEDS_PER_MESSAGE)]
                route = Route("POST", "/channels/{channel_id}/messages", channel_id=BASELINE_CHANNEL)
                baseline_started = time.monotonic()
                for _ in range(min_messages):
                    await discord_world.http.request(route, json={"embeds": packed})
                baseline_s = fake.requests_to(BASELINE_CHANNEL, "POST")[-1].at - baseline_started

                async with running_pipeline(storage, discord_world.sender()) as pipeline:
                    assert pipeline.server is not None
                    started = time.monotonic()
                    await _post_burst(pipeline.server.url, events)
                    posted_s = time.monotonic() - started
                    await _wait_for_embeds(fake, events, limit_s)
                    await pipeline.wait_until_idle(timeout_s=limit_s)
                posts = [request for request in fake.requests_to(CHANNEL, "POST") if request.status == 200]
                took_s = posts[-1].at - started
                embeds = fake.all_embeds(CHANNEL)
                messages = fake.messages(CHANNEL)
                rate_limited = [request for request in fake.requests_to(CHANNEL) if request.status == 429]
                exhausted = fake.exhausted_bucket_requests
        finally:
            await storage.close()

    idents = [int(match.group(1)) for embed in embeds if (match := _TITLE.search(str(embed.get("title"))))]
    missing = sorted(set(range(1, events + 1)) - set(idents))
    duplicates = len(idents) - len(set(idents))
    exactly_once = not missing and duplicates == 0 and len(embeds) == events
    ratio = took_s / min_seconds if min_seconds > 0 else math.nan
    baseline_ratio = took_s / baseline_s if baseline_s > 0 else math.nan
    full_messages = sum(1 for message in messages if len(message.embeds) == EMBEDS_PER_MESSAGE)
    figures = [
        "| | messages | time (s) | time / theoretical |",
        "|---|---:|---:|---:|",
        f"| theoretical minimum | {min_messages} | {min_seconds:.2f} | 1.00× |",
        f"| discord.py alone, pre-packed (baseline) | {min_messages} | {baseline_s:.2f} "
        f"| {fmt_ratio(baseline_s / min_seconds if min_seconds else math.nan)} |",
        f"| **bot** | {len(messages)} | {took_s:.2f} | **{fmt_ratio(ratio)}** |",
        "",
        f"Bot vs discord.py alone: {fmt_ratio(baseline_ratio)} the time. The {events:,} events were POSTed in "
        f"{posted_s:.2f} s; {full_messages} of the bot's {len(messages)} messages carried the full "
        f"{EMBEDS_PER_MESSAGE} embeds (the first ones leave before a backlog has formed). Embeds received: "
        f"{len(embeds):,} ({len(set(idents)):,} distinct events, {duplicates} duplicates, {len(missing)} missing). "
        f"Requests into an exhausted bucket: {len(exhausted)}; 429 answers: {len(rate_limited)}.",
    ]
    met = exactly_once and ratio <= TIME_TARGET
    verdict = f"{took_s:.2f} s against a theoretical {min_seconds:.2f} s ({fmt_ratio(ratio)}); " + (
        "every event delivered exactly once."
        if exactly_once
        else "NOT every event was delivered exactly once."
    )
    return BenchReport(
        name=NAME,
        title=f"Delivery: a burst of {events:,} events into one rate-limited channel",
        quick=options.quick,
        arrangement=(
            "one process, one event loop: PushPipeline + listener on a real SQLite file, delivering through "
            "discord.py's HTTPClient (its own rate limiter) to the loopback DiscordRestFake with a per-channel "
            f"limit of {LIMIT} messages per {WINDOW_S:g} s; the burst is {events:,} EVENT_UNIT_STATUS events "
            f"POSTed by {POSTERS} concurrent clients to the listener; time runs from the first POST to the arrival "
            "of the last message at the fake. Theoretical minimum: ceil(events / 10) messages, the first "
            f"{LIMIT} at once, then {LIMIT / WINDOW_S:g} per second"
        ),
        figures=figures,
        target=f"<= {TIME_TARGET}× the theoretical time, every event delivered (exactly once)",
        target_met=met,
        verdict=verdict,
        numbers={
            "events": events,
            "embeds": len(embeds),
            "distinct": len(set(idents)),
            "messages": len(messages),
            "min_messages": min_messages,
            "seconds": took_s,
            "theoretical_seconds": min_seconds,
            "baseline_seconds": baseline_s,
            "ratio": ratio,
            "exhausted_bucket_requests": len(exhausted),
        },
    )
