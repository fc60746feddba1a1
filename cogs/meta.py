"""/about: what this bot is and how to reach help (also proves the extension loader end to end)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs._shared import NO_MENTIONS


class Meta(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="about", description="What this bot does and where to start.")
    async def about(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(
            "Sonoran CAD dispatch bot: /911 and /311 send calls, /link connects your CAD account, "
            "/panic and /unit status work your unit, /lookup searches records, and admins start with /setup.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Meta(bot))
