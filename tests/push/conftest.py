"""A real push pipeline on a real SQLite file, its listener on a loopback port, and discord.py's own REST
client talking to the loopback Discord fake. Tests POST what the CAD would and assert what Discord got."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from cryptography.fernet import Fernet
from discord.http import Route

from bot.config import ServerSettings
from bot.push.delivery import DeliveryConfig
from bot.push.discord_sender import DiscordPySender
from bot.push.ingest import AuthThrottle
from bot.push.pipeline import PushPipeline
from bot.storage import Storage
from bot.storage.models import Category
from testing.discord_rest import DiscordRestFake

COMMUNITY_ID = "4711"
OTHER_COMMUNITY_ID = "9000"
# Distinctive, so a leak into any answer or log is easy to search for.
API_KEY = "push-key-LEAKCHECK-7f3a"
OTHER_KEY = "other-key-LEAKCHECK-9c1b"
BOT_TOKEN = "fake-bot-token"

GUILD_A = 111_000_000_000_000_001
GUILD_B = 222_000_000_000_000_002
GUILD_OTHER = 333_000_000_000_000_003
PING_ROLE = 999_000_000_000_000_009

_CATEGORY_OFFSET = {category: index for index, category in enumerate(Category, start=1)}

FAST_DELIVERY = DeliveryConfig(
    backoff_base_s=0.05,
    backoff_max_s=0.3,
    drain_timeout_s=1.0,
    channel_cooldown_s=60.0,
    housekeeping_interval_s=3600.0,
    storage_retry_s=0.1,
)


def channel_of(guild_id: int, category: Category | str) -> int:
    """Each guild routes each category to its own channel: guild A's 911 channel is 1_001, and so on."""
    base = {GUILD_A: 1_000, GUILD_B: 2_000, GUILD_OTHER: 3_000}[guild_id]
    return base + _CATEGORY_OFFSET[Category(category)]


async def configure_guild(
    storage: Storage,
    guild_id: int,
    community_id: str,
    api_key: str,
    *,
    server_id: int = 1,
    ping_role: int | None = None,
) -> None:
    await storage.guilds.set_cad(guild_id, community_id, api_key, server_id)
    for category in Category:
        await storage.routes.set_channel(guild_id, category, channel_of(guild_id, category))
        if ping_role is not None:
            await storage.routes.set_ping_role(guild_id, category, ping_role)


def envelope(type_: str, data: Any, key: str = API_KEY, **extra: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "data": data, **extra}


@dataclass
class PushWorld:
    db_path: Path
    secret_key: str
    fake: DiscordRestFake
    session: aiohttp.ClientSession
    storage: Storage
    pipeline: PushPipeline
    http: discord.http.HTTPClient
    connected: list[bool] = field(default_factory=lambda: [True])

    @property
    def url(self) -> str:
        server = self.pipeline.server
        assert server is not None
        return server.url

    async def post(
        self,
        body: Any = None,
        *,
        path: str = "/sonorancad/event",
        params: dict[str, str] | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.session.post(
            self.url + path,
            data=data,
            params=params,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            text = await response.text()
            try:
                answer = json.loads(text)
            except json.JSONDecodeError:
                answer = {"text": text}
            return response.status, answer, response.headers

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=10)) as response:
            return response.status, await response.text()

    async def settle(self, timeout_s: float = 15.0) -> None:
        await self.pipeline.wait_until_idle(timeout_s)

    def build_pipeline(
        self,
        *,
        sender_timeout_s: float = 10.0,
        server: ServerSettings | None = None,
        **overrides: Any,
    ) -> PushPipeline:
        options: dict[str, Any] = {
            "delivery": FAST_DELIVERY,
            "throttle": AuthThrottle(max_failures=5, window_s=60.0, block_s=30.0),
            "discord_connected": lambda: self.connected[0],
        }
        options.update(overrides)
        sender = DiscordPySender(self.http, timeout_s=sender_timeout_s)
        pipeline = PushPipeline(self.storage, sender, **options)
        pipeline.attach_server(pipeline.create_server(server or ServerSettings(host="127.0.0.1", port=0)))
        return pipeline

    async def restart(self, *, reopen_storage: bool = True, **overrides: Any) -> None:
        """Stop the pipeline and start a new one on the same database file, as a redeploy would."""
        await self.pipeline.stop()
        if reopen_storage:
            await self.storage.close()
            self.storage = await Storage.open(self.db_path, self.secret_key)
        self.pipeline = self.build_pipeline(**overrides)
        await self.pipeline.start()


@pytest.fixture
def discord_route_base() -> Iterator[None]:
    original = Route.BASE
    try:
        yield
    finally:
        Route.BASE = original


@pytest.fixture
async def rest_fake(discord_route_base: None) -> AsyncIterator[DiscordRestFake]:
    async with DiscordRestFake(limit=5, window=0.5, token=BOT_TOKEN) as fake:
        Route.BASE = fake.api_base
        yield fake


@pytest.fixture
async def discord_http(rest_fake: DiscordRestFake) -> AsyncIterator[discord.http.HTTPClient]:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    await http.static_login(BOT_TOKEN)
    try:
        yield http
    finally:
        await http.close()


@pytest.fixture
async def push_world(
    tmp_path: Path, rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient
) -> AsyncIterator[PushWorld]:
    secret_key = Fernet.generate_key().decode()
    db_path = tmp_path / "push.sqlite3"
    storage = await Storage.open(db_path, secret_key)
    await configure_guild(storage, GUILD_A, COMMUNITY_ID, API_KEY, ping_role=PING_ROLE)
    await configure_guild(storage, GUILD_B, COMMUNITY_ID, API_KEY, server_id=2)
    await configure_guild(storage, GUILD_OTHER, OTHER_COMMUNITY_ID, OTHER_KEY)
    async with aiohttp.ClientSession() as session:
        world = PushWorld(
            db_path=db_path,
            secret_key=secret_key,
            fake=rest_fake,
            session=session,
            storage=storage,
            pipeline=None,  # type: ignore[arg-type]
            http=discord_http,
        )
        world.pipeline = world.build_pipeline()
        await world.pipeline.start()
        try:
            yield world
        finally:
            await world.pipeline.stop()
            await world.storage.close()
