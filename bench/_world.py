"""The push pipeline the benchmarks drive: real SQLite in a temp folder, a configured guild, a Discord to send to.

Two Discords: :class:`InstantSender` accepts every message at once (to measure the bot, not a fake server), and
:func:`rate_limited_discord` is the loopback ``DiscordRestFake`` with per-channel buckets, reached through
discord.py's own REST client and rate limiter, as in production.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
from cryptography.fernet import Fernet
from discord.http import Route

from bot.config import ServerSettings
from bot.push.delivery import DeliveryConfig
from bot.push.discord_sender import DiscordPySender
from bot.push.pipeline import PushPipeline
from bot.push.sender import BucketState, DiscordSender, RequestKind
from bot.storage import Storage
from bot.storage.models import Category
from testing.discord_rest import DiscordRestFake

GUILD_ID = 111_000_000_000_000_001
COMMUNITY_ID = "4711"
API_KEY = "bench-push-key-0001"
BOT_TOKEN = "bench-bot-token"
CHANNELS = {
    Category.UNITS: 1_000_001,
    Category.DISPATCH: 1_000_002,
    Category.CALLS_911: 1_000_003,
    Category.PANIC: 1_000_004,
}
POST_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Production settings, with a shorter drain on stop so a benchmark ends promptly.
BENCH_DELIVERY = DeliveryConfig(drain_timeout_s=2.0)


class InstantSender:
    """A Discord that accepts every message and edit at once (the ingest benchmark measures the bot alone)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self.messages = 0
        self.embeds = 0
        self.edits = 0

    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        self.messages += 1
        self.embeds += len(payload.get("embeds") or [])
        return next(self._ids)

    async def edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        self.edits += 1

    def bucket(self, channel_id: int, kind: RequestKind) -> BucketState | None:
        return None  # no rate limits here


async def open_storage(folder: Path, routes: Sequence[Category], *, channel: int | None = None) -> Storage:
    """A fresh database with one guild connected to the community and ``routes`` pointed at channels (each at
    its own, or all at ``channel``, as a small community does)."""
    storage = await Storage.open(folder / "bench.sqlite3", Fernet.generate_key().decode())
    await storage.guilds.set_cad(GUILD_ID, COMMUNITY_ID, API_KEY, 1)
    for category in routes:
        await storage.routes.set_channel(
            GUILD_ID, category, CHANNELS[category] if channel is None else channel
        )
    return storage


@asynccontextmanager
async def running_pipeline(storage: Storage, sender: DiscordSender) -> AsyncIterator[PushPipeline]:
    """The pipeline with its listener on a free loopback port, stopped on the way out."""
    pipeline = PushPipeline(storage, sender, delivery=BENCH_DELIVERY)
    pipeline.attach_server(pipeline.create_server(ServerSettings(host="127.0.0.1", port=0)))
    await pipeline.start()
    try:
        yield pipeline
    finally:
        await pipeline.stop()


@dataclass
class RateLimitedDiscord:
    fake: DiscordRestFake
    http: discord.http.HTTPClient

    def sender(self) -> DiscordPySender:
        return DiscordPySender(self.http, timeout_s=30.0)


@asynccontextmanager
async def rate_limited_discord(limit: int, window_s: float) -> AsyncIterator[RateLimitedDiscord]:
    """The loopback Discord fake (``limit`` requests per ``window_s`` per channel) and discord.py's client."""
    original_base = Route.BASE
    async with DiscordRestFake(limit=limit, window=window_s, token=BOT_TOKEN) as fake:
        Route.BASE = fake.api_base
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        try:
            await http.static_login(BOT_TOKEN)
            yield RateLimitedDiscord(fake, http)
        finally:
            await http.close()
            Route.BASE = original_base


async def post_event(session: aiohttp.ClientSession, url: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """POST one push event; returns the listener's JSON answer (raises unless it answered 200)."""
    async with session.post(
        url + "/sonorancad/event",
        data=json.dumps(envelope).encode(),
        headers={"Content-Type": "application/json"},
        timeout=POST_TIMEOUT,
    ) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"the listener answered {response.status}: {body}")
        return dict(body)
