"""/calls and /units: read-only views of the dispatch board (active calls, open 911 calls, units on duty).

Both read through the process's shared :class:`bot.cad.board.CadBoard`: ``GET_ACTIVE_UNITS`` and ``GET_CALLS``
are the CAD's most tightly rate-limited reads, so a busy channel asking again and again (and /panic, and the
dispatcher's call picker) costs one request per community for a few seconds. The footer says how old the
list is.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.formatting import replies
from bot.storage.models import CommandGroup
from bot.ui.pagination import send_pages
from cogs._plan import plan_explained, refuse_if_plan_too_low
from cogs._shared import NO_MENTIONS, check_group, guild_credentials, services

REFUSAL = "Only the person who ran this command can page it."
PUBLIC_HELP = "Post the list in this channel instead of only showing it to you"


class DispatchBoard(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.DISPATCH)

    @app_commands.command(name="calls", description="Active dispatch calls and open 911 calls.")
    @app_commands.describe(public=PUBLIC_HELP)
    @app_commands.guild_only()
    async def calls(self, interaction: discord.Interaction[Any], public: bool = False) -> None:
        creds = await guild_credentials(interaction)
        svc = services(interaction)
        refuse_if_plan_too_low(svc.cad, creds, "GET_CALLS")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(svc.cad, creds):
            snapshot, age_s = await svc.board.calls(creds)
        pages = replies.calls_pages(snapshot, age_s=age_s)
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
        svc = services(interaction)
        refuse_if_plan_too_low(svc.cad, creds, "GET_ACTIVE_UNITS")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(svc.cad, creds):
            units, age_s = await svc.board.active_units(creds)
        pages = replies.units_pages(units, age_s=age_s)
        if not pages:
            await interaction.followup.send(
                replies.no_units_message(), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await send_pages(interaction, pages, public=public, refusal=REFUSAL)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(DispatchBoard(bot))
