"""/calls and /units: read-only views of the dispatch board (active calls, open 911 calls, units on duty).

``GET_ACTIVE_UNITS`` is the CAD's most tightly rate-limited read (v2 allows 3 a minute), so unit lists are
cached per community for a few seconds: a busy channel asking /units again and again costs one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.cad.models import Unit
from bot.formatting import replies
from bot.storage.models import CommandGroup
from bot.ui.pagination import send_pages
from cogs._plan import plan_explained, refuse_if_plan_too_low
from cogs._shared import NO_MENTIONS, check_group, guild_credentials, services

UNITS_TTL_S = 20.0
REFUSAL = "Only the person who ran this command can page it."
PUBLIC_HELP = "Post the list in this channel instead of only showing it to you"

_V = TypeVar("_V")


def _monotonic() -> float:
    # Looked up on every call (not bound at import) so a test clock that replaces time.monotonic applies.
    return time.monotonic()


@dataclass(frozen=True, slots=True)
class _Entry(Generic[_V]):
    value: _V
    fetched_at: float


class TtlCache(Generic[_V]):
    """Values kept for ``ttl_s`` per key; concurrent misses on one key share a single fetch.

    Failures are not cached, so the next caller tries again.
    """

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = _monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[Hashable, _Entry[_V]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def _fresh(self, key: Hashable) -> _Entry[_V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.fetched_at >= self.ttl_s:
            del self._entries[key]
            return None
        return entry

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[_V]]) -> tuple[_V, float]:
        """The cached value for ``key`` (fetched when missing or stale) and its age in seconds."""
        entry = self._fresh(key)
        if entry is None:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                entry = self._fresh(key)
                if entry is None:
                    value = await fetch()
                    self._forget_stale()
                    entry = _Entry(value, self._clock())
                    self._entries[key] = entry
        return entry.value, max(0.0, self._clock() - entry.fetched_at)

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def _forget_stale(self) -> None:
        now = self._clock()
        for key in [key for key, entry in self._entries.items() if now - entry.fetched_at >= self.ttl_s]:
            del self._entries[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]


class DispatchBoard(commands.Cog):
    def __init__(self, bot: commands.Bot, *, units_ttl_s: float = UNITS_TTL_S) -> None:
        self.bot = bot
        self.units_cache: TtlCache[list[Unit]] = TtlCache(units_ttl_s)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.DISPATCH)

    @app_commands.command(name="calls", description="Active dispatch calls and open 911 calls.")
    @app_commands.describe(public=PUBLIC_HELP)
    @app_commands.guild_only()
    async def calls(self, interaction: discord.Interaction[Any], public: bool = False) -> None:
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "GET_CALLS")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            # Only what is open matters here; closed calls would cost bandwidth and page space.
            snapshot = await cad.get_calls(creds, closed_limit=0)
        pages = replies.calls_pages(snapshot)
        if not pages:
            await interaction.followup.send(
                replies.no_calls_message(), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await send_pages(interaction, pages, public=public, refusal=REFUSAL)

    @app_commands.command(name="units", description="Units on duty: status, location and panic.")
    @app_commands.describe(public=PUBLIC_HELP)
    @app_commands.guild_only()
    async def units(self, interaction: discord.Interaction[Any], public: bool = False) -> None:
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "GET_ACTIVE_UNITS")
        await interaction.response.defer(ephemeral=True, thinking=True)

        async def fetch() -> list[Unit]:
            async with plan_explained(cad, creds):
                return await cad.get_active_units(creds)

        units, age_s = await self.units_cache.get((creds.community_id, creds.server_id), fetch)
        pages = replies.units_pages(units, age_s=age_s)
        if not pages:
            await interaction.followup.send(
                replies.no_units_message(), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await send_pages(interaction, pages, public=public, refusal=REFUSAL)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(DispatchBoard(bot))
