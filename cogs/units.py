"""/panic and /unit status: a member works their own CAD unit from Discord.

/panic posts its alert before the CAD is asked and amends the CAD's answer into it
(:class:`bot.services.panic.PanicButton`); members who may not press panic (no permission, not linked, a plan
known not to include it) get no alert at all.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.codes import SETTABLE_UNIT_STATUSES
from bot.cad.errors import NOT_LINKED_HOW_TO, CadNotLinkedError
from bot.errors import UserFacingError
from bot.formatting import member_actions
from bot.services.members import discord_member_linked
from bot.services.panic import PanicButton
from bot.storage.models import CommandGroup
from cogs._shared import (
    NO_MENTIONS,
    acting_member,
    guild_credentials,
    guild_id_of,
    requires_group,
    services,
)

log = logging.getLogger(__name__)

STATUS_CHOICES = [Choice(name=status.label, value=int(status)) for status in SETTABLE_UNIT_STATUSES]
# Communities define their own codes beyond the five defaults; the CAD's status picker stays in two digits.
MAX_STATUS_CODE = 99


class Units(commands.Cog):
    """A member's own unit: panic button and status."""

    unit = app_commands.Group(name="unit", description="Your CAD unit.", guild_only=True)

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="panic", description="Press your unit's panic button (state: off clears it).")
    @app_commands.describe(state="on raises your panic (the default); off clears it")
    @app_commands.choices(
        state=[
            Choice(name="on — alert dispatch", value="on"),
            Choice(name="off — clear my panic", value="off"),
        ]
    )
    @app_commands.guild_only()
    @requires_group(CommandGroup.UNITS)
    async def panic(self, interaction: discord.Interaction[Any], state: str = "on") -> None:
        is_panic = state != "off"
        target, link = await acting_member(interaction)
        creds = await guild_credentials(interaction)
        svc = services(interaction)
        # Only the plan already known counts here: reading it from the CAD first would hold the alert back.
        refusal = svc.cad.explain_refusal(creds, "UNIT_PANIC")
        if refusal is not None:
            raise refusal
        await interaction.response.defer(ephemeral=True, thinking=True)
        # A member named by Discord ID whom the CAD knows not to be linked raises no alert (asked once, kept
        # by the board; a CAD that can't say in time does not hold the alert back).
        if await discord_member_linked(svc.board, creds, target) is False:
            raise CadNotLinkedError("no CAD account for this Discord user", user_message=NOT_LINKED_HOW_TO)
        guild_id = guild_id_of(interaction)
        press = await PanicButton(svc.cad, svc.board, svc.pipeline).press(
            guild_id,
            creds,
            target,
            alert_id=interaction.id,
            is_panic=is_panic,
            pressed_by=(link.username if link else None) or interaction.user.display_name,
        )
        if press.problem is None:
            reply = member_actions.panic_confirmation(is_panic)
        elif not press.alerted:
            raise press.problem  # nothing was posted anywhere: the member hears the CAD's refusal as usual
        else:
            reply = member_actions.panic_not_confirmed(is_panic, press.problem.user_message)
        await interaction.followup.send(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @unit.command(name="status", description="Set your unit's status in the CAD.")
    @app_commands.describe(
        status="One of the CAD's standard statuses",
        code=f"Or a status number your community defined (0-{MAX_STATUS_CODE})",
    )
    @app_commands.choices(status=STATUS_CHOICES)
    @requires_group(CommandGroup.UNITS)
    async def status(
        self,
        interaction: discord.Interaction[Any],
        status: Choice[int] | None = None,
        code: app_commands.Range[int, 0, MAX_STATUS_CODE] | None = None,
    ) -> None:
        if status is not None and code is None:
            new_status = status.value
        elif code is not None and status is None:
            new_status = code
        else:
            raise UserFacingError(member_actions.STATUS_CHOICE_REQUIRED)
        target, _ = await acting_member(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        cad = services(interaction).cad
        await cad.ensure_allowed(creds, "UNIT_STATUS")
        await cad.unit_status(creds, status=new_status, target=target.member)
        await interaction.followup.send(
            member_actions.status_confirmation(new_status), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Units(bot))
