"""/911 and /311: members report emergencies and civil matters straight into the CAD's 911 queue.

The confirmation is ephemeral and carries the CAD's call ID. The public 911 card is not posted here: the CAD
pushes ``EVENT_911`` for API-made calls too, and the push pipeline draws the card from that.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cooldowns import MemberCooldowns
from bot.errors import CooldownError, UserFacingError
from bot.formatting import member_actions
from bot.storage.models import CommandGroup
from cogs._shared import NO_MENTIONS, guild_credentials, guild_id_of, requires_group, services

log = logging.getLogger(__name__)

# Shared by /911 and /311 so switching command cannot dodge the cooldown.
CALL_BUCKET = "911"
LOCATION_MAX = 200
DESCRIPTION_MAX = 1000
CALLER_MAX = 100


class CallInProgressError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Your previous call is still being sent to the CAD; wait for its confirmation.")


def _required(value: str, option: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise UserFacingError(member_actions.blank_option(option))
    return cleaned


class Community(commands.Cog):
    """Calls from the community to dispatch."""

    def __init__(self, bot: commands.Bot, cooldowns: MemberCooldowns | None = None) -> None:
        self.bot = bot
        self.cooldowns = cooldowns or MemberCooldowns()
        # Members whose call is on its way to the CAD: a double submit must not create two calls, and the
        # cooldown only starts once the CAD accepted the first one.
        self._sending: set[tuple[int, int]] = set()

    async def _send_call(
        self,
        interaction: discord.Interaction[Any],
        *,
        emergency: bool,
        location: str,
        description: str,
        caller: str | None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        user_id = interaction.user.id
        location = _required(location, "location")
        description = _required(description, "description")
        caller_name = _required(caller, "caller") if caller is not None else None
        if caller_name is None:
            caller_name = interaction.user.display_name.strip()[:CALLER_MAX] or "Discord caller"
        creds = await guild_credentials(interaction)
        storage = services(interaction).storage
        config = await storage.guilds.get(guild_id)
        cooldown_s = config.cooldown_911_s if config is not None else 0
        waiting = self.cooldowns.retry_after(CALL_BUCKET, guild_id, user_id)
        if cooldown_s > 0 and waiting > 0:
            raise CooldownError(waiting)
        key = (guild_id, user_id)
        if key in self._sending:
            raise CallInProgressError()

        self._sending.add(key)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            cad = services(interaction).cad
            await cad.ensure_allowed(creds, "CALL_911")
            call_id = await cad.call_911(
                creds, caller=caller_name, location=location, description=description, emergency=emergency
            )
            self.cooldowns.start(CALL_BUCKET, guild_id, user_id, cooldown_s)
        finally:
            self._sending.discard(key)
        log.info(
            "%s call %s sent for guild %s (community %s)",
            "911" if emergency else "311",
            call_id,
            guild_id,
            creds.community_id,
        )
        await interaction.followup.send(
            member_actions.call_sent(call_id, emergency=emergency),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="911", description="Report an emergency to dispatch.")
    @app_commands.describe(
        location="Where it is happening (street, postal or landmark)",
        description="What is happening",
        caller="Name to give dispatch (defaults to your server name)",
    )
    @app_commands.guild_only()
    @requires_group(CommandGroup.CALLS_911)
    async def call_911(
        self,
        interaction: discord.Interaction[Any],
        location: app_commands.Range[str, 1, LOCATION_MAX],
        description: app_commands.Range[str, 1, DESCRIPTION_MAX],
        caller: app_commands.Range[str, 1, CALLER_MAX] | None = None,
    ) -> None:
        await self._send_call(
            interaction, emergency=True, location=location, description=description, caller=caller
        )

    @app_commands.command(name="311", description="Report a non-emergency (civil) matter to dispatch.")
    @app_commands.describe(
        location="Where it is happening (street, postal or landmark)",
        description="What is happening",
        caller="Name to give dispatch (defaults to your server name)",
    )
    @app_commands.guild_only()
    @requires_group(CommandGroup.CALLS_911)
    async def call_311(
        self,
        interaction: discord.Interaction[Any],
        location: app_commands.Range[str, 1, LOCATION_MAX],
        description: app_commands.Range[str, 1, DESCRIPTION_MAX],
        caller: app_commands.Range[str, 1, CALLER_MAX] | None = None,
    ) -> None:
        await self._send_call(
            interaction, emergency=False, location=location, description=description, caller=caller
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Community(bot))
