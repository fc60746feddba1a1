"""/calls and /units: read-only views of the dispatch board (active calls, open 911 calls, units on duty).

Both read through the process's shared :class:`bot.cad.board.CadBoard`: ``GET_ACTIVE_UNITS`` and ``GET_CALLS``
are the CAD's most tightly rate-limited reads, so a busy channel asking again and again (and /panic, and the
dispatcher's call picker) costs one request per community for a few seconds. The footer says how old the
list is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cad.models import CadCredentials
from bot.cad.plans import plan_explained, refuse_if_plan_too_low
from bot.formatting import listings
from bot.formatting.limits import EmbedDict
from bot.storage.models import CommandGroup
from bot.ui.pagination import send_pages
from cogs._shared import NO_MENTIONS, check_group, guild_credentials, services

if TYPE_CHECKING:
    from bot.app import Services

REFUSAL = "Only the person who ran this command can page it."
PUBLIC_HELP = "Post the list in this channel instead of only showing it to you"


class DispatchBoard(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.DISPATCH)

    async def _show_board(
        self,
        interaction: discord.Interaction[Any],
        public: bool,
        request_type: str,
        read_and_render: Callable[[Services, CadCredentials], Awaitable[list[EmbedDict]]],
        empty_message: str,
    ) -> None:
        """/calls and /units: plan check, defer, read through the shared board, page or say it's empty."""
        creds = await guild_credentials(interaction)
        svc = services(interaction)
        refuse_if_plan_too_low(svc.cad, creds, request_type)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(svc.cad, creds):
            pages = await read_and_render(svc, creds)
        if not pages:
            await interaction.followup.send(empty_message, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await send_pages(interaction, pages, public=public, refusal=REFUSAL)

    @app_commands.command(name="calls", description="Active dispatch calls and open 911 calls.")
    @app_commands.describe(public=PUBLIC_HELP)
    @app_commands.guild_only()
    async def calls(self, interaction: discord.Interaction[Any], public: bool = False) -> None:
        async def read(svc: Services, creds: CadCredentials) -> list[EmbedDict]:
            snapshot, age_s = await svc.board.calls(creds)
            return listings.calls_pages(snapshot, age_s=age_s)

        await self._show_board(interaction, public, "GET_CALLS", read, listings.no_calls_message())

    @app_commands.command(name="units", description="Units on duty: status, location and panic.")
    @app_commands.describe(public=PUBLIC_HELP)
    @app_commands.guild_only()
    async def units(self, interaction: discord.Interaction[Any], public: bool = False) -> None:
        async def read(svc: Services, creds: CadCredentials) -> list[EmbedDict]:
            units, age_s = await svc.board.active_units(creds)
            return listings.units_pages(units, age_s=age_s)

        await self._show_board(interaction, public, "GET_ACTIVE_UNITS", read, listings.no_units_message())


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(DispatchBoard(bot))
