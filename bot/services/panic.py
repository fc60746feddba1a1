"""The /panic alert: posted at once, never silenced by the CAD.

The CAD sends no push event for a panic set through the API, so /panic posts an alert of its own, which looks
and pings exactly like one pressed in the CAD. A life-safety alert must not wait for the CAD (whose timeout is
tens of seconds) nor be silenced by it, so the alert is a live card (:class:`bot.cards.state.PanicCardState`)
queued *before* UNIT_PANIC is sent: the live-card machinery posts it through the outbox and edits it in place,
so the CAD's answer ("the CAD did not confirm: <reason>") and the unit's name are amended into the one message
however the answers race its delivery, and the role pings once.

The unit is named from the shared board of units on duty (:class:`bot.cad.board.CadBoard`), so presses close
together, and a /units just before, cost one ``GET_ACTIVE_UNITS`` between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.cad.board import CadBoard
from bot.cad.errors import CadError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials
from bot.cards.state import (
    CardKind,
    PanicCardState,
    cad_confirmed,
    cad_not_confirmed,
    panic_alert,
    with_units_named,
)
from bot.formatting import member_actions
from bot.push.pipeline import PushPipeline
from bot.services.members import UnitTarget, units_on_duty
from bot.storage.db import DatabaseError

log = logging.getLogger(__name__)

# Naming the unit on the alert is a nicety: a slow CAD (timeouts, read retries) gets this long, then the alert
# keeps the member's name.
UNIT_LOOKUP_BUDGET_S = 2.5


@dataclass(frozen=True, slots=True)
class PanicAlert:
    """A /panic alert queued for one guild's panic route; :meth:`amend` edits it in place."""

    pipeline: PushPipeline
    guild_id: int
    alert_id: int

    @classmethod
    async def post(
        cls, pipeline: PushPipeline | None, guild_id: int, alert_id: int, *, is_panic: bool, pressed_by: str
    ) -> PanicAlert | None:
        """Queue the alert (raising a panic pings the route's role); None when there is nowhere to post it."""
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


@dataclass(frozen=True, slots=True)
class PanicPress:
    """How a press went: whether an alert was posted, and the CAD's refusal or failure (None: confirmed)."""

    alerted: bool
    problem: CadError | None


class PanicButton:
    """Presses a member's panic button: the alert first, then the CAD, amending the alert with its
    answer and the member's unit."""

    def __init__(self, cad: CadApi, board: CadBoard, pipeline: PushPipeline | None) -> None:
        self._cad = cad
        self._board = board
        self._pipeline = pipeline

    async def press(
        self,
        guild_id: int,
        creds: CadCredentials,
        target: UnitTarget,
        *,
        alert_id: int,
        is_panic: bool,
        pressed_by: str,
    ) -> PanicPress:
        alert = await PanicAlert.post(
            self._pipeline, guild_id, alert_id, is_panic=is_panic, pressed_by=pressed_by
        )
        naming = asyncio.create_task(self._name_units(creds, target, alert)) if alert else None
        try:
            problem = await self._send(creds, target, is_panic)
        except BaseException as error:
            if naming is not None:
                naming.cancel()
            if alert is not None and isinstance(error, Exception):
                # A bug, not the CAD's answer: the alert must not look confirmed.
                await alert.amend(lambda state: cad_not_confirmed(state, member_actions.PANIC_NOT_SENT))
            raise
        if naming is not None:
            try:
                await naming
            except Exception:  # naming is a nicety; it never decides what the member hears
                log.exception("naming the unit on a panic alert failed")
        turned = "on" if is_panic else "off"
        if problem is None:
            log.info("panic %s for a member of guild %s", turned, guild_id)
            if alert is not None:
                await alert.amend(cad_confirmed)
            return PanicPress(alerted=alert is not None, problem=None)
        log.warning(
            "panic %s for a member of guild %s: the CAD did not confirm (%s)",
            turned,
            guild_id,
            type(problem).__name__,
        )
        if alert is not None:
            reason = problem.user_message
            await alert.amend(lambda state: cad_not_confirmed(state, reason))
        return PanicPress(alerted=alert is not None, problem=problem)

    async def _send(self, creds: CadCredentials, target: UnitTarget, is_panic: bool) -> CadError | None:
        """Send UNIT_PANIC. The CAD's refusal or failure is returned, not raised: it amends the alert."""
        try:
            await self._cad.ensure_allowed(creds, "UNIT_PANIC")
            await self._cad.unit_panic(creds, is_panic=is_panic, target=target.member)
        except CadError as error:
            return error
        return None

    async def _name_units(self, creds: CadCredentials, target: UnitTarget, alert: PanicAlert) -> None:
        """Amend the alert with the member's units on duty, once the CAD lists them (within the budget)."""
        units = await units_on_duty(
            self._cad, self._board, creds, target, read_plan=True, budget_s=UNIT_LOOKUP_BUDGET_S
        )
        if not units:
            return  # not logged in as a unit, or the plan can't list units: the alert keeps the member's name
        # Teach the directory the names the CAD just gave us, so the alert says who pressed it.
        try:
            await alert.pipeline.learn_units(creds.community_id, units)
        except DatabaseError:
            log.exception("could not remember unit names for community %s", creds.community_id)
        idents = [unit.id for unit in units]
        await alert.amend(lambda state: with_units_named(state, idents))
