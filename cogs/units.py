"""/panic and /unit status: a linked member works their own CAD unit from Discord.

The CAD sends no push event for a panic set through the API, so /panic posts an alert of its own, which looks
and pings exactly like one pressed in the CAD. A life-safety alert must not wait for the CAD (whose timeout is
tens of seconds) nor be silenced by it, so the alert is a live card (:class:`bot.cards.state.PanicCardState`)
posted *before* UNIT_PANIC is sent: the live-card machinery posts it through the outbox and edits it in place,
so the CAD's answer ("the CAD did not confirm: <reason>") and the unit's name are amended into the one message
however the answers race its delivery, and the role pings once. Members who may not press panic (no
permission, not linked, a plan known not to include it) get no alert at all.

The unit is named from the shared board of units on duty (:class:`bot.cad.board.CadBoard`), so presses close
together, and a /units just before, cost one ``GET_ACTIVE_UNITS`` between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.codes import SETTABLE_UNIT_STATUSES
from bot.cad.errors import CadError
from bot.cad.models import CadCredentials, Unit
from bot.errors import UserFacingError
from bot.formatting import member_replies
from bot.cards.state import (
    CardKind,
    PanicCardState,
    cad_confirmed,
    cad_not_confirmed,
    panic_alert,
    with_units_named,
)
from bot.storage.db import DatabaseError
from bot.storage.models import CommandGroup
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
    from bot.push.pipeline import PushPipeline

log = logging.getLogger(__name__)

STATUS_CHOICES = [Choice(name=status.label, value=int(status)) for status in SETTABLE_UNIT_STATUSES]
# Communities define their own codes beyond the five defaults; the CAD's status picker stays in two digits.
MAX_STATUS_CODE = 99
# Naming the unit on the alert is a nicety: a slow CAD (timeouts, read retries) gets this long, then the alert
# keeps the member's name.
UNIT_LOOKUP_BUDGET_S = 2.5


async def units_to_name(svc: Services, creds: CadCredentials, target: UnitTarget) -> list[Unit]:
    """The target's logged-in units, from the shared board; empty when the plan can't list units or the CAD
    didn't answer within :data:`UNIT_LOOKUP_BUDGET_S`."""
    try:
        async with asyncio.timeout(UNIT_LOOKUP_BUDGET_S):
            # Shares the plan read with the press's own check, so a plan without unit lists costs no request.
            await svc.cad.get_tier(creds)
            if svc.cad.explain_refusal(creds, "GET_ACTIVE_UNITS") is not None:
                return []
            units, _ = await svc.board.active_units(creds)
    except (CadError, TimeoutError) as exc:
        log.info("could not list active units for community %s: %s", creds.community_id, type(exc).__name__)
        return []
    return [unit for unit in units if target.owns(unit)]


@dataclass(frozen=True, slots=True)
class PanicAlert:
    """A /panic alert queued for one guild's panic route; :meth:`amend` edits it in place."""

    pipeline: PushPipeline
    guild_id: int
    alert_id: int

    @classmethod
    async def post(
        cls, svc: Services, guild_id: int, alert_id: int, *, is_panic: bool, pressed_by: str
    ) -> PanicAlert | None:
        """Queue the alert (raising a panic pings the route's role); None when there is nowhere to post it."""
        pipeline = svc.pipeline
        if pipeline is None:
            log.info("no push pipeline in this process; panic alert for guild %s not posted", guild_id)
            return None
        first = panic_alert(alert_id, is_panic=is_panic, pressed_by=pressed_by)

        def start(current: PanicCardState | None) -> PanicCardState:
            return current if current is not None else first

        try:
            posted = await pipeline.update_card(guild_id, CardKind.PANIC, alert_id, start, ping=is_panic)
        except DatabaseError:
            # The press itself must still reach the CAD.
            log.exception("could not queue the panic alert of guild %s", guild_id)
            return None
        return cls(pipeline, guild_id, alert_id) if posted else None

    async def amend(self, change: Callable[[PanicCardState], PanicCardState]) -> None:
        def amended(current: PanicCardState | None) -> PanicCardState | None:
            return change(current) if current is not None else None

        try:
            await self.pipeline.update_card(self.guild_id, CardKind.PANIC, self.alert_id, amended)
        except DatabaseError:
            log.exception("could not amend the panic alert of guild %s", self.guild_id)


class Units(commands.Cog):
    """A member's own unit: panic button and status."""

    unit = app_commands.Group(name="unit", description="Your CAD unit.", guild_only=True)

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @staticmethod
    async def _name_units(
        svc: Services, creds: CadCredentials, target: UnitTarget, alert: PanicAlert
    ) -> None:
        """Amend the alert with the member's units on duty, once the CAD lists them (within the budget)."""
        units = await units_to_name(svc, creds, target)
        if not units:
            return  # not logged in as a unit, or the plan can't list units: the alert keeps the member's name
        # Teach the directory the names the CAD just gave us, so the alert says who pressed it.
        try:
            await alert.pipeline.units.learn_units(creds.community_id, units)
        except DatabaseError:
            log.exception("could not remember unit names for community %s", creds.community_id)
        idents = [unit.id for unit in units]
        await alert.amend(lambda state: with_units_named(state, idents))

    @staticmethod
    async def _press(
        svc: Services, creds: CadCredentials, target: UnitTarget, is_panic: bool
    ) -> CadError | None:
        """Send UNIT_PANIC. The CAD's refusal or failure is returned, not raised: it amends the alert."""
        try:
            await svc.cad.ensure_allowed(creds, "UNIT_PANIC")
            await svc.cad.unit_panic(creds, is_panic=is_panic, account=target.account, api_id=target.api_id)
        except CadError as error:
            return error
        return None

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
        svc = services(interaction)
        # Only the plan already known counts here: reading it from the CAD first would hold the alert back.
        refusal = svc.cad.explain_refusal(creds, "UNIT_PANIC")
        if refusal is not None:
            raise refusal
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = guild_id_of(interaction)
        alert = await PanicAlert.post(
            svc,
            guild_id,
            interaction.id,
            is_panic=is_panic,
            pressed_by=link.username or interaction.user.display_name,
        )
        target = unit_target(link)
        naming = asyncio.create_task(self._name_units(svc, creds, target, alert)) if alert else None
        try:
            problem = await self._press(svc, creds, target, is_panic)
        except BaseException as error:
            if naming is not None:
                naming.cancel()
            if alert is not None and isinstance(error, Exception):
                # A bug, not the CAD's answer: the alert must not look confirmed.
                await alert.amend(lambda state: cad_not_confirmed(state, member_replies.PANIC_NOT_SENT))
            raise
        if naming is not None:
            try:
                await naming
            except Exception:  # naming is a nicety; it never decides what the member hears
                log.exception("naming the unit on a panic alert failed")
        turned = "on" if is_panic else "off"
        if problem is None:
            log.info("panic %s for a linked member of guild %s", turned, guild_id)
            if alert is not None:
                await alert.amend(cad_confirmed)
            await interaction.followup.send(
                member_replies.panic_confirmation(is_panic), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        log.warning(
            "panic %s for a linked member of guild %s: the CAD did not confirm (%s)",
            turned,
            guild_id,
            type(problem).__name__,
        )
        if alert is None:
            raise problem  # nothing was posted anywhere: the member hears the CAD's refusal as usual
        reason = problem.user_message
        await alert.amend(lambda state: cad_not_confirmed(state, reason))
        await interaction.followup.send(
            member_replies.panic_not_confirmed(is_panic, reason), ephemeral=True, allowed_mentions=NO_MENTIONS
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
