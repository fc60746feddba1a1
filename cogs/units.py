"""/panic and /unit status: a linked member works their own CAD unit from Discord.

The CAD sends no push event for a panic set through the API, so /panic hands the pipeline a panic event of
its own; the alert then looks and pings exactly like one pressed in the CAD. The unit is named from the
shared board of units on duty (:class:`bot.cad.board.CadBoard`), so presses close together, and a /units
just before, cost one ``GET_ACTIVE_UNITS`` between them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.errors import CadError
from bot.cad.models import CadCredentials, Unit
from bot.errors import UserFacingError
from bot.formatting import member_replies
from bot.formatting.context import DEFAULT_STATUS_LABELS
from bot.push import events as ev
from bot.storage.models import CommandGroup, UserLink
from cogs._links import UnitTarget, unit_target
from cogs._shared import (
    NO_MENTIONS,
    guild_credentials,
    guild_id_of,
    linked_account,
    requires_group,
    services,
)

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

STATUS_CHOICES = [Choice(name=label, value=code) for code, label in DEFAULT_STATUS_LABELS.items()]
# Communities define their own codes beyond the five defaults; the CAD's status picker stays in two digits.
MAX_STATUS_CODE = 99
# The alert waits for the unit lookup, and a slow CAD (timeouts, read retries) must not hold a panic back.
UNIT_LOOKUP_BUDGET_S = 2.5


async def units_to_name(svc: Services, creds: CadCredentials, target: UnitTarget) -> list[Unit]:
    """The target's logged-in units, from the shared board; empty when the plan can't list units or the CAD
    didn't answer within :data:`UNIT_LOOKUP_BUDGET_S`."""
    if svc.cad.explain_refusal(creds, "GET_ACTIVE_UNITS") is not None:
        return []
    try:
        async with asyncio.timeout(UNIT_LOOKUP_BUDGET_S):
            units, _ = await svc.board.active_units(creds)
    except (CadError, TimeoutError) as exc:
        # Naming the unit is a nicety; the panic itself already reached the CAD.
        log.info("could not list active units for community %s: %s", creds.community_id, type(exc).__name__)
        return []
    return [unit for unit in units if target.owns(unit)]


class Units(commands.Cog):
    """A member's own unit: panic button and status."""

    unit = app_commands.Group(name="unit", description="Your CAD unit.", guild_only=True)

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def _publish_panic(
        self, interaction: discord.Interaction[Any], creds: CadCredentials, link: UserLink, is_panic: bool
    ) -> None:
        pipeline = services(interaction).pipeline
        if pipeline is None:
            log.info(
                "no push pipeline in this process; panic alert for guild %s not posted", interaction.guild_id
            )
            return
        units = await units_to_name(services(interaction), creds, unit_target(link))
        if units:
            # Teach the directory the names the CAD just gave us, so the alert says who pressed it.
            named = [{"id": u.id, "data": {"unitNum": u.unit_num, "name": u.name}} for u in units]
            await pipeline.units.learn_from(
                creds.community_id, ev.UnitUpdateEvent.model_validate({"units": named})
            )
        event = ev.UnitPanicEvent.model_validate({"identIds": [u.id for u in units], "isPanic": is_panic})
        if not units:
            # No unit to name (not logged in as a unit, or the plan can't list units): say who pressed it.
            who = link.username or interaction.user.display_name
            event = event.model_copy(update={"pressed_by": who})
        await pipeline.publish_local(guild_id_of(interaction), event)

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
        link = await linked_account(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        cad = services(interaction).cad
        await cad.ensure_allowed(creds, "UNIT_PANIC")
        target = unit_target(link)
        await cad.unit_panic(creds, is_panic=is_panic, account=target.account, api_id=target.api_id)
        log.info(
            "panic %s for a linked member of guild %s", "on" if is_panic else "off", interaction.guild_id
        )
        await self._publish_panic(interaction, creds, link, is_panic)
        await interaction.followup.send(
            member_replies.panic_confirmation(is_panic), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

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
            raise UserFacingError(member_replies.STATUS_CHOICE_REQUIRED)
        link = await linked_account(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        cad = services(interaction).cad
        await cad.ensure_allowed(creds, "UNIT_STATUS")
        target = unit_target(link)
        await cad.unit_status(creds, status=new_status, account=target.account, api_id=target.api_id)
        await interaction.followup.send(
            member_replies.status_confirmation(new_status), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Units(bot))
