"""The dispatcher's desk: create, attach, detach, note and close CAD calls, keeping each guild's live card in step.

The CAD pushes no event for changes made through its API, so every action here also changes the guild's live
dispatch card itself (``PushPipeline.update_card``) with the reducers of :mod:`bot.cards.state`.

Two reads come from the process's shared board (:class:`bot.cad.board.CadBoard`) because the CAD rate-limits
them hardest: open calls (the call picker and the "is this an open call?" check, ``GET_CALLS`` ~5/min) and
units on duty (whose unit a member is, so a card can show who attached, ``GET_ACTIVE_UNITS`` ~3/min). A cached
list that lacks what is looked for is read again once, so a call opened or a unit logged in a moment ago is
still found; creating or closing a call drops the cached calls.

Nothing here knows Discord: each action takes plain values and returns the sentence for the member, or raises
:class:`bot.errors.UserFacingError` / a typed CAD error that the command tree turns into one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

from bot.cad.board import CadBoard
from bot.cad.errors import NOT_LINKED_HOW_TO, CadError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials, CallsSnapshot, DispatchCall, MemberTarget, NewDispatch, Unit
from bot.cad.plans import plan_explained
from bot.cad.v2 import CadV2Client
from bot.cards.state import (
    CardKind,
    DispatchCardState,
    closed,
    dispatch_state_from_call,
    with_note,
    with_units_attached,
    with_units_detached,
)
from bot.errors import UserFacingError
from bot.formatting import dispatch as replies
from bot.push.pipeline import PushPipeline
from bot.services.members import RECHECK_AFTER_S, UnitTarget, units_on_duty
from bot.services.templates import NEEDS_V2, TemplateForm, bound_call_fields
from bot.storage.db import DatabaseError
from bot.timing import DateTimeClock, utc_now

log = logging.getLogger(__name__)

# Checking the call is a nicety next to the action itself; a slow CAD must not hold the action back longer.
CHECK_BUDGET_S = 5.0

CardReducer = Callable[[DispatchCardState | None], DispatchCardState | None]


@dataclass(frozen=True, slots=True)
class Responder:
    """A member a dispatcher acts for: how to name them and how the CAD targets their unit."""

    name: str
    target: UnitTarget
    is_invoker: bool

    @property
    def member(self) -> MemberTarget:
        return self.target.member


@dataclass(frozen=True, slots=True)
class CallCheck:
    """What the CAD said of a call that had no live card (None: it had one, or the CAD could not say)."""

    listed: DispatchCall | None

    def base_state(self, current: DispatchCardState | None) -> DispatchCardState | None:
        """The card state to change: the stored one, else one built from the CAD's listing (a call that
        never had a card gets one), else None (nothing trustworthy to show)."""
        if current is not None:
            return current
        if self.listed is not None:
            return dispatch_state_from_call(self.listed)
        return None


def open_calls_of(snapshot: CallsSnapshot) -> list[DispatchCall]:
    return [call for call in snapshot.active_calls if not call.is_closed]


class DispatchDesk:
    """Dispatch actions for one process: the CAD client, the shared board and the pipeline (None when this
    process has no pipeline: actions still reach the CAD, cards are not kept)."""

    def __init__(
        self,
        cad: CadApi,
        board: CadBoard,
        pipeline: PushPipeline | None,
        *,
        clock: DateTimeClock = utc_now,
    ) -> None:
        self._cad = cad
        self._board = board
        self._pipeline = pipeline
        self._clock = clock

    # -- reads ------------------------------------------------------------------------------------------

    async def find_open_call(self, creds: CadCredentials, call_id: int) -> DispatchCall | None:
        """The open call ``call_id`` from the shared board; a list older than :data:`RECHECK_AFTER_S` that
        lacks it is read once more (the call may have been opened since). ``CadError`` when the CAD can't
        say."""
        snapshot, age_s = await self._board.calls(creds)
        found = next((call for call in open_calls_of(snapshot) if call.call_id == call_id), None)
        if found is None and age_s >= RECHECK_AFTER_S:
            self._board.invalidate_calls(creds.community_id, creds.server_id)
            snapshot, _ = await self._board.calls(creds)
            found = next((call for call in open_calls_of(snapshot) if call.call_id == call_id), None)
        return found

    async def open_calls(self, creds: CadCredentials) -> list[DispatchCall]:
        """The open calls for a call picker (empty when the plan can't list calls); ``CadError`` when the CAD
        can't answer."""
        await self._cad.get_tier(creds)
        if self._cad.explain_refusal(creds, "GET_CALLS") is not None:
            return []
        snapshot, _ = await self._board.calls(creds)
        return open_calls_of(snapshot)

    async def units_on_duty(self, creds: CadCredentials, target: UnitTarget) -> list[Unit] | None:
        return await units_on_duty(self._cad, self._board, creds, target)

    async def _responder_units(self, creds: CadCredentials, responder: Responder) -> list[Unit] | None:
        """The responder's units on duty. Another member named by Discord ID whom the CAD knows no account
        for is refused here, by name: the CAD's own answer would tell the dispatcher to link *their* account."""
        if responder.target.discord_id is not None and not responder.is_invoker:
            try:
                account = await self._board.discord_account(creds, responder.target.discord_id)
            except CadError:
                account = None  # can't tell now: the CAD decides on the action itself
            else:
                if account is None:
                    raise UserFacingError(replies.member_not_linked(responder.name, discord_link=True))
        return await self.units_on_duty(creds, responder.target)

    # -- actions ----------------------------------------------------------------------------------------

    async def create(
        self,
        guild_id: int,
        creds: CadCredentials,
        dispatch: NewDispatch,
        responders: Sequence[Responder],
    ) -> str:
        """Create the call, attaching the responders' units; start the guild's live card."""
        cad = self._cad
        await cad.ensure_allowed(creds, "NEW_DISPATCH")
        on_duty = [await self.units_on_duty(creds, responder.target) for responder in responders]
        accounts = [responder.target.account for responder in responders if responder.target.account]
        for responder in responders:
            if responder.target.discord_id is not None:
                accounts.append(await self._account_of(creds, responder))
        dispatch = dispatch.model_copy(
            update={
                "accounts": accounts,
                "units": [responder.target.api_id for responder in responders if responder.target.api_id],
            }
        )
        async with plan_explained(cad, creds):
            call_id = await cad.new_dispatch(creds, dispatch)
        log.info("dispatch call %s created from guild %s", call_id, guild_id)
        self._board.invalidate_calls(creds.community_id, creds.server_id)

        attached: list[str] = []
        off_duty: list[str] = []
        idents: list[int] = []
        for responder, units in zip(responders, on_duty, strict=True):
            if units is None:  # not known: the CAD got the request, so say it was asked for
                attached.append(responder.name)
            elif units:
                attached.extend(unit.label for unit in units)
                idents.extend(unit.id for unit in units)
            else:
                off_duty.append(responder.name)
        await self._remember_units(creds, [unit for units in on_duty for unit in units or []])
        created = DispatchCall.model_validate(
            {
                **dispatch.to_wire(creds.server_id),
                "callId": call_id,
                "idents": idents,
                # The CAD makes the first attached unit primary.
                "primary": idents[0] if idents else None,
            }
        )
        await self._update_card(guild_id, call_id, lambda _: dispatch_state_from_call(created))
        return replies.dispatch_created(call_id, attached, off_duty)

    async def create_from_template(
        self,
        guild_id: int,
        creds: CadCredentials,
        form: TemplateForm,
        answers: Mapping[str, str],
        responder: Responder,
    ) -> str:
        """Create a call from a dispatch template (v2), the responder's unit attached (the CAD requires a unit
        target); start the guild's live card from the template's bound fields."""
        cad = self._cad
        if not isinstance(cad, CadV2Client):
            raise UserFacingError(NEEDS_V2)
        values = form.values(answers)
        units = await self.units_on_duty(creds, responder.target)
        if units == []:
            raise UserFacingError(replies.no_unit_on_duty(None if responder.is_invoker else responder.name))
        template = form.template
        call_id = await cad.new_custom_dispatch(creds, template.template_id, values, attach=responder.member)
        log.info(
            "dispatch call %s created from template %s in guild %s", call_id, template.template_id, guild_id
        )
        self._board.invalidate_calls(creds.community_id, creds.server_id)
        await self._remember_units(creds, units or [])
        idents = [unit.id for unit in units or []]
        created = DispatchCall.model_validate(
            {
                "callId": call_id,
                "title": template.display_name,
                "idents": idents,
                "primary": idents[0] if idents else None,
                **bound_call_fields(form, values),
            }
        )
        await self._update_card(guild_id, call_id, lambda _: dispatch_state_from_call(created))
        names = [unit.label for unit in units or []] or [responder.name]
        return replies.dispatch_created(call_id, names, []) + replies.template_left_out(
            [f.label or f.uid for f in form.left_out]
        )

    async def attach(self, guild_id: int, creds: CadCredentials, call_id: int, responder: Responder) -> str:
        cad = self._cad
        await cad.ensure_allowed(creds, "ATTACH_UNIT")
        check = await self._check_call(guild_id, creds, call_id)
        units = await self._responder_units(creds, responder)
        if units == []:
            raise UserFacingError(replies.no_unit_on_duty(None if responder.is_invoker else responder.name))
        async with plan_explained(cad, creds):
            await cad.attach_unit(creds, call_id, target=responder.member)
        log.info("attached a member's unit to call %s in guild %s", call_id, guild_id)
        idents = [unit.id for unit in units or []]
        await self._remember_units(creds, units or [])

        def attach(state: DispatchCardState | None) -> DispatchCardState | None:
            base = check.base_state(state)
            return with_units_attached(base, idents) if base is not None else None

        await self._update_card(guild_id, call_id, attach)
        return replies.units_attached(call_id, [unit.label for unit in units or []] or [responder.name])

    async def detach(
        self,
        guild_id: int,
        creds: CadCredentials,
        responder: Responder,
        *,
        from_call: int | None = None,
    ) -> str:
        """Detach the responder from whatever call they are on (the API takes no call ID). ``from_call``
        (a card's button) refuses when that card shows the responder's unit is not on it."""
        cad = self._cad
        await cad.ensure_allowed(creds, "DETACH_UNIT")
        if from_call is not None:
            card = await self._card_state(guild_id, from_call)
            if card is not None and card.closed:
                raise UserFacingError(replies.call_already_closed(from_call))
        units = await self._responder_units(creds, responder)
        if units == []:
            raise UserFacingError(replies.no_unit_on_duty(None if responder.is_invoker else responder.name))
        idents = {unit.id for unit in units or []}
        on_calls = await self._cards_with(guild_id, idents)
        if from_call is not None and idents and from_call not in on_calls:
            raise UserFacingError(replies.not_on_this_call(from_call))
        async with plan_explained(cad, creds):
            await cad.detach_unit(creds, target=responder.member)
        log.info("detached a member's unit in guild %s", guild_id)
        await self._remember_units(creds, units or [])

        def detach(state: DispatchCardState | None) -> DispatchCardState | None:
            return with_units_detached(state, idents) if state is not None else None

        for call_id in on_calls:
            await self._update_card(guild_id, call_id, detach)
        return replies.units_detached([unit.label for unit in units or []] or [responder.name], on_calls)

    async def _account_of(self, creds: CadCredentials, responder: Responder) -> str:
        """The account UUID of a responder named by Discord ID (a new call names its units by account); the
        how-to-link sentence when the CAD knows none."""
        assert responder.target.discord_id is not None
        account = await self._board.discord_account(creds, responder.target.discord_id)
        if account is None or not account.uuid.strip():
            raise UserFacingError(
                NOT_LINKED_HOW_TO
                if responder.is_invoker
                else replies.member_not_linked(responder.name, discord_link=True)
            )
        return account.uuid.strip()

    async def add_note(
        self, guild_id: int, creds: CadCredentials, call_id: int, label: str, content: str
    ) -> str:
        """Add a note signed ``label`` (the card shows it with the time it was written)."""
        cad = self._cad
        await cad.ensure_allowed(creds, "ADD_CALL_NOTE")
        check = await self._check_call(guild_id, creds, call_id)
        async with plan_explained(cad, creds):
            await cad.add_call_note(creds, call_id, content, label=label or None)
        written_at = self._clock().astimezone(UTC).strftime("%H:%M:%S")

        def add_note(state: DispatchCardState | None) -> DispatchCardState | None:
            base = check.base_state(state)
            return with_note(base, label, content, written_at) if base is not None else None

        await self._update_card(guild_id, call_id, add_note)
        return replies.note_added(call_id)

    async def close(self, guild_id: int, creds: CadCredentials, call_id: int) -> str:
        cad = self._cad
        await cad.ensure_allowed(creds, "CLOSE_CALL")
        await self._check_call(guild_id, creds, call_id)
        async with plan_explained(cad, creds):
            await cad.close_call(creds, call_id)
        log.info("dispatch call %s closed from guild %s", call_id, guild_id)
        self._board.invalidate_calls(creds.community_id, creds.server_id)

        def close_card(state: DispatchCardState | None) -> DispatchCardState | None:
            return closed(state) if state is not None else None

        await self._update_card(guild_id, call_id, close_card)
        return replies.call_closed(call_id)

    # -- the live card ----------------------------------------------------------------------------------

    async def _check_call(self, guild_id: int, creds: CadCredentials, call_id: int) -> CallCheck:
        """Refuse a call that is closed or not open in the CAD, before acting on it.

        A live card answers without asking the CAD. Without one, the open calls are read (when the plan
        allows); if the CAD can't say right now, the action goes ahead and no new card is started.
        """
        card = await self._card_state(guild_id, call_id)
        if card is not None:
            if card.closed:
                raise UserFacingError(replies.call_already_closed(call_id))
            return CallCheck(None)
        if self._cad.explain_refusal(creds, "GET_CALLS") is not None:
            return CallCheck(None)
        try:
            async with asyncio.timeout(CHECK_BUDGET_S):
                listed = await self.find_open_call(creds, call_id)
        except (CadError, TimeoutError) as exc:
            log.info(
                "could not check call %s of community %s: %s", call_id, creds.community_id, type(exc).__name__
            )
            return CallCheck(None)
        if listed is None:
            raise UserFacingError(replies.not_an_open_call(call_id))
        return CallCheck(listed)

    async def _card_state(self, guild_id: int, call_id: int) -> DispatchCardState | None:
        if self._pipeline is None:
            return None
        state = await self._pipeline.card_state(guild_id, CardKind.DISPATCH, call_id)
        return state if isinstance(state, DispatchCardState) else None

    async def _cards_with(self, guild_id: int, idents: set[int]) -> list[int]:
        """Call IDs of this guild's open dispatch cards that show any of ``idents``."""
        if self._pipeline is None or not idents:
            return []
        return [
            state.call_id
            for state in await self._pipeline.open_card_states(guild_id, CardKind.DISPATCH)
            if isinstance(state, DispatchCardState) and idents & set(state.attached)
        ]

    async def _remember_units(self, creds: CadCredentials, units: Sequence[Unit]) -> None:
        """Teach the card renderer the names the CAD just gave us, so cards show "1A-12 Jordan Reyes"."""
        if self._pipeline is None or not units:
            return
        try:
            await self._pipeline.learn_units(creds.community_id, units)
        except DatabaseError:
            log.exception("could not remember unit names for community %s", creds.community_id)

    async def _update_card(self, guild_id: int, call_id: int, reducer: CardReducer) -> None:
        if self._pipeline is None:
            log.info("no push pipeline in this process; card of call %s not updated", call_id)
            return
        try:
            await self._pipeline.update_card(guild_id, CardKind.DISPATCH, call_id, reducer)
        except DatabaseError:
            # The CAD already acted; the member must still hear so, even if the card could not follow.
            log.exception("could not update the live card of call %s in guild %s", call_id, guild_id)
