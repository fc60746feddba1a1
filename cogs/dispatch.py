"""/dispatch new|attach|detach|note|close, and the Attach me / Detach me buttons on live dispatch cards.

The CAD pushes no event for changes made through its API, so every action here also changes the guild's live
dispatch card itself (``pipeline.update_card``) with the reducers of :mod:`bot.cards.state`.

Two reads come from the process's shared board (:class:`bot.cad.board.CadBoard`) because the CAD rate-limits
them hardest: open calls (the call picker and the "is this an open call?" check, ``GET_CALLS`` ~5/min) and
units on duty (whose unit a member is, so a card can show who attached, ``GET_ACTIVE_UNITS`` ~3/min). A cached
list that lacks what is looked for is read again once, so a call opened or a unit logged in a moment ago is
still found; creating or closing a call drops the cached calls.

The card buttons carry the call ID in their ``custom_id`` (:mod:`bot.cards.buttons`); the
:class:`CardButton` dynamic item registered in :func:`setup` answers them, also for cards posted before a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.board import CadBoard
from bot.cad.codes import CallOrigin, CallStatus
from bot.cad.errors import CadError
from bot.cad.models import (
    CadCredentials,
    CallsSnapshot,
    DispatchCall,
    NewDispatch,
    Unit,
)
from bot.errors import UserFacingError
from bot.formatting import dispatch_replies as replies
from bot.cards.buttons import (
    CARD_BUTTON_TEMPLATE,
    CardAction,
    card_button_id,
    card_button_label,
    card_button_style,
)
from bot.cards.state import (
    CardKind,
    DispatchCardState,
    closed,
    dispatch_state_from_call,
    with_note,
    with_units_attached,
    with_units_detached,
)
from bot.storage.db import DatabaseError
from bot.storage.models import CommandGroup, UserLink
from bot.tree import UserCheckFailure, report_interaction_error
from cogs._links import UnitTarget, unit_target
from cogs._plan import plan_explained
from cogs._shared import (
    NO_MENTIONS,
    check_group,
    guild_credentials,
    guild_id_of,
    linked_account,
    services,
)

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# A cached list older than this that lacks the call or unit looked for is read once more.
RECHECK_AFTER_S = 3.0
# Autocomplete cannot be deferred: Discord drops choices that arrive after 3 s.
AUTOCOMPLETE_BUDGET_S = 2.0
# Naming the member's unit and checking the call are niceties next to the action itself; a slow CAD must
# not hold the action back by more than this each.
ROSTER_BUDGET_S = 2.5
CHECK_BUDGET_S = 5.0
NOTE_MAX = 500
TITLE_MAX = 200
ADDRESS_MAX = 200
DESCRIPTION_MAX = 1000
CODE_MAX = 50
POSTAL_MAX = 20
LABEL_MAX = 64
CALL_ID_MAX = 2**31 - 1

CallId = app_commands.Range[int, 0, CALL_ID_MAX]

PRIORITY_CHOICES = [
    Choice(name="1 — urgent", value=1),
    Choice(name="2 — normal", value=2),
    Choice(name="3 — low", value=3),
]
ORIGIN_CHOICES = [Choice(name=origin.label, value=int(origin)) for origin in CallOrigin]
STATUS_CHOICES = [
    Choice(name=CallStatus.ACTIVE.label, value=int(CallStatus.ACTIVE)),
    Choice(name=CallStatus.PENDING.label, value=int(CallStatus.PENDING)),
]
CALL_HELP = "The call: type its number, title or address to search the open calls"


def _now_hms() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _required(value: str, option: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise UserFacingError(replies.blank_option(option))
    return stripped


def _open_calls(snapshot: CallsSnapshot) -> list[DispatchCall]:
    return [call for call in snapshot.active_calls if not call.is_closed]


async def find_open_call(board: CadBoard, creds: CadCredentials, call_id: int) -> DispatchCall | None:
    """The open call ``call_id`` from the shared board; a list older than :data:`RECHECK_AFTER_S` that lacks
    it is read once more (the call may have been opened since). ``CadError`` when the CAD can't say."""
    snapshot, age_s = await board.calls(creds)
    found = next((call for call in _open_calls(snapshot) if call.call_id == call_id), None)
    if found is None and age_s >= RECHECK_AFTER_S:
        board.invalidate_calls(creds.community_id, creds.server_id)
        snapshot, _ = await board.calls(creds)
        found = next((call for call in _open_calls(snapshot) if call.call_id == call_id), None)
    return found


async def units_on_duty(svc: Services, creds: CadCredentials, target: UnitTarget) -> list[Unit] | None:
    """The target's units on duty (``[]``: none), from the shared board and read once more when a list older
    than :data:`RECHECK_AFTER_S` lacks them (they may have logged in since); None when that can't be known
    now (plan, CAD trouble, or no answer within :data:`ROSTER_BUDGET_S`)."""
    if svc.cad.explain_refusal(creds, "GET_ACTIVE_UNITS") is not None:
        return None
    board = svc.board
    try:
        async with asyncio.timeout(ROSTER_BUDGET_S):
            units, age_s = await board.active_units(creds)
            mine = [unit for unit in units if target.owns(unit)]
            if not mine and age_s >= RECHECK_AFTER_S:
                board.invalidate_units(creds.community_id, creds.server_id)
                units, _ = await board.active_units(creds)
                mine = [unit for unit in units if target.owns(unit)]
    except (CadError, TimeoutError) as exc:
        log.info("could not list units on duty for community %s: %s", creds.community_id, type(exc).__name__)
        return None
    return mine


@dataclass(frozen=True, slots=True)
class Responder:
    """A linked member a dispatcher acts for: how to name them and how the CAD targets their unit."""

    name: str
    target: UnitTarget
    is_invoker: bool

    @property
    def account(self) -> str | None:
        return self.target.account

    @property
    def api_ids(self) -> list[str] | None:
        return [self.target.api_id] if self.target.api_id else None


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


CardReducer = Callable[[DispatchCardState | None], DispatchCardState | None]


@app_commands.guild_only()
class Dispatch(
    commands.GroupCog, group_name="dispatch", group_description="Dispatcher actions on CAD calls."
):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.DISPATCH)

    # ------------------------------------------------------------------------------------------ helpers

    async def _responder(
        self, interaction: discord.Interaction[Any], member: discord.Member | None
    ) -> Responder:
        """The invoker (``member`` None or themselves) or another member, who must have linked an account."""
        if member is None or member.id == interaction.user.id:
            link = await linked_account(interaction)
            return Responder(interaction.user.display_name, unit_target(link), is_invoker=True)
        found: UserLink | None = await services(interaction).storage.links.get(
            guild_id_of(interaction), member.id
        )
        if found is None:
            raise UserFacingError(replies.member_not_linked(member.display_name))
        return Responder(member.display_name, unit_target(found), is_invoker=False)

    @staticmethod
    async def _card_state(svc: Services, guild_id: int, call_id: int) -> DispatchCardState | None:
        pipeline = svc.pipeline
        if pipeline is None:
            return None
        card = await pipeline.store.cards.get(guild_id, CardKind.DISPATCH.value, call_id)
        return DispatchCardState.model_validate(card.state) if card is not None else None

    @staticmethod
    async def _cards_with(svc: Services, guild_id: int, idents: set[int]) -> list[int]:
        """Call IDs of this guild's open dispatch cards that show any of ``idents``."""
        pipeline = svc.pipeline
        if pipeline is None or not idents:
            return []
        calls = []
        for card in await pipeline.store.cards.unfinished(guild_id, CardKind.DISPATCH.value):
            state = DispatchCardState.model_validate(card.state)
            if idents & set(state.attached):
                calls.append(state.call_id)
        return calls

    @staticmethod
    async def _remember_units(svc: Services, creds: CadCredentials, units: Sequence[Unit]) -> None:
        """Teach the card renderer the names the CAD just gave us, so cards show "1A-12 Jordan Reyes"."""
        if svc.pipeline is None or not units:
            return
        try:
            await svc.pipeline.units.learn_units(creds.community_id, units)
        except DatabaseError:
            log.exception("could not remember unit names for community %s", creds.community_id)

    @staticmethod
    async def _update_card(svc: Services, guild_id: int, call_id: int, reducer: CardReducer) -> None:
        pipeline = svc.pipeline
        if pipeline is None:
            log.info("no push pipeline in this process; card of call %s not updated", call_id)
            return
        try:
            await pipeline.update_card(guild_id, CardKind.DISPATCH, call_id, reducer)
        except DatabaseError:
            # The CAD already acted; the member must still hear so, even if the card could not follow.
            log.exception("could not update the live card of call %s in guild %s", call_id, guild_id)

    async def _check_call(
        self, svc: Services, guild_id: int, creds: CadCredentials, call_id: int
    ) -> CallCheck:
        """Refuse a call that is closed or not open in the CAD, before acting on it.

        A live card answers without asking the CAD. Without one, the open calls are read (when the plan
        allows); if the CAD can't say right now, the action goes ahead and no new card is started.
        """
        card = await self._card_state(svc, guild_id, call_id)
        if card is not None:
            if card.closed:
                raise UserFacingError(replies.call_already_closed(call_id))
            return CallCheck(None)
        if svc.cad.explain_refusal(creds, "GET_CALLS") is not None:
            return CallCheck(None)
        try:
            async with asyncio.timeout(CHECK_BUDGET_S):
                listed = await find_open_call(svc.board, creds, call_id)
        except (CadError, TimeoutError) as exc:
            log.info(
                "could not check call %s of community %s: %s", call_id, creds.community_id, type(exc).__name__
            )
            return CallCheck(None)
        if listed is None:
            raise UserFacingError(replies.not_an_open_call(call_id))
        return CallCheck(listed)

    # ------------------------------------------------------------------------------------------ actions

    async def _attach(
        self, svc: Services, guild_id: int, creds: CadCredentials, call_id: int, responder: Responder
    ) -> str:
        cad = svc.cad
        await cad.ensure_allowed(creds, "ATTACH_UNIT")
        check = await self._check_call(svc, guild_id, creds, call_id)
        units = await units_on_duty(svc, creds, responder.target)
        if units == []:
            raise UserFacingError(replies.no_unit_on_duty(None if responder.is_invoker else responder.name))
        async with plan_explained(cad, creds):
            await cad.attach_unit(creds, call_id, account=responder.account, api_ids=responder.api_ids)
        log.info("attached a linked member's unit to call %s in guild %s", call_id, guild_id)
        idents = [unit.id for unit in units or []]
        await self._remember_units(svc, creds, units or [])

        def attach(state: DispatchCardState | None) -> DispatchCardState | None:
            base = check.base_state(state)
            return with_units_attached(base, idents) if base is not None else None

        await self._update_card(svc, guild_id, call_id, attach)
        return replies.units_attached(call_id, [unit.label for unit in units or []] or [responder.name])

    async def _detach(
        self,
        svc: Services,
        guild_id: int,
        creds: CadCredentials,
        responder: Responder,
        *,
        from_call: int | None = None,
    ) -> str:
        """Detach the responder from whatever call they are on (the API takes no call ID). ``from_call``
        (a card's button) refuses when that card shows the responder's unit is not on it."""
        cad = svc.cad
        await cad.ensure_allowed(creds, "DETACH_UNIT")
        if from_call is not None:
            card = await self._card_state(svc, guild_id, from_call)
            if card is not None and card.closed:
                raise UserFacingError(replies.call_already_closed(from_call))
        units = await units_on_duty(svc, creds, responder.target)
        if units == []:
            raise UserFacingError(replies.no_unit_on_duty(None if responder.is_invoker else responder.name))
        idents = {unit.id for unit in units or []}
        on_calls = await self._cards_with(svc, guild_id, idents)
        if from_call is not None and idents and from_call not in on_calls:
            raise UserFacingError(replies.not_on_this_call(from_call))
        async with plan_explained(cad, creds):
            await cad.detach_unit(creds, account=responder.account, api_ids=responder.api_ids)
        log.info("detached a linked member's unit in guild %s", guild_id)
        await self._remember_units(svc, creds, units or [])

        def detach(state: DispatchCardState | None) -> DispatchCardState | None:
            return with_units_detached(state, idents) if state is not None else None

        for call_id in on_calls:
            await self._update_card(svc, guild_id, call_id, detach)
        return replies.units_detached([unit.label for unit in units or []] or [responder.name], on_calls)

    # ------------------------------------------------------------------------------------------ autocomplete

    async def call_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[Choice[int]]:
        """Open calls matching what was typed, from the shared board (kept a few seconds per community); nothing
        for members who may not dispatch (checks do not run for autocomplete) or when the CAD can't answer in time."""
        try:
            await check_group(interaction, CommandGroup.DISPATCH)
            creds = await guild_credentials(interaction)
        except (UserCheckFailure, UserFacingError):
            return []
        svc = services(interaction)
        try:
            async with asyncio.timeout(AUTOCOMPLETE_BUDGET_S):
                await svc.cad.get_tier(creds)
                if svc.cad.explain_refusal(creds, "GET_CALLS") is not None:
                    return []
                snapshot, _ = await svc.board.calls(creds)
        except (CadError, TimeoutError) as exc:
            log.info("no call choices for community %s: %s", creds.community_id, type(exc).__name__)
            return []
        return [
            Choice(name=name, value=call_id)
            for name, call_id in replies.call_choices(_open_calls(snapshot), str(current or ""))
        ]

    # ------------------------------------------------------------------------------------------ commands

    @app_commands.command(name="new", description="Create a dispatch call in the CAD.")
    @app_commands.describe(
        title="What the call is, e.g. Traffic Stop",
        address="Where, e.g. Legion Square",
        description="Details for responding units",
        priority="1 is the most urgent",
        code="10-code, e.g. 10-38 (optional)",
        postal="Postal code (optional)",
        origin="How the call came in (default: caller)",
        status="Active (default) or pending",
        attach_me="Attach your own unit (needs /link)",
        member="Also attach this linked member's unit",
    )
    @app_commands.choices(priority=PRIORITY_CHOICES, origin=ORIGIN_CHOICES, status=STATUS_CHOICES)
    async def new(
        self,
        interaction: discord.Interaction[Any],
        title: app_commands.Range[str, 1, TITLE_MAX],
        address: app_commands.Range[str, 1, ADDRESS_MAX],
        description: app_commands.Range[str, 1, DESCRIPTION_MAX],
        priority: Choice[int],
        code: app_commands.Range[str, 1, CODE_MAX] | None = None,
        postal: app_commands.Range[str, 1, POSTAL_MAX] | None = None,
        origin: Choice[int] | None = None,
        status: Choice[int] | None = None,
        attach_me: bool = False,
        member: discord.Member | None = None,
    ) -> None:
        dispatch = NewDispatch(
            title=_required(title, "title"),
            address=_required(address, "address"),
            description=_required(description, "description"),
            priority=priority.value,
            code=(code or "").strip(),
            postal=(postal or "").strip(),
            origin=origin.value if origin is not None else int(CallOrigin.CALLER),
            status=status.value if status is not None else int(CallStatus.ACTIVE),
        )
        responders: list[Responder] = []
        if attach_me:
            responders.append(await self._responder(interaction, None))
        if member is not None and not (attach_me and member.id == interaction.user.id):
            responders.append(await self._responder(interaction, member))
        guild_id = guild_id_of(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        svc = services(interaction)
        cad = svc.cad
        await cad.ensure_allowed(creds, "NEW_DISPATCH")
        on_duty = [await units_on_duty(svc, creds, responder.target) for responder in responders]
        dispatch = dispatch.model_copy(
            update={
                "accounts": [responder.account for responder in responders if responder.account],
                "units": [responder.target.api_id for responder in responders if responder.target.api_id],
            }
        )
        async with plan_explained(cad, creds):
            call_id = await cad.new_dispatch(creds, dispatch)
        log.info("dispatch call %s created from guild %s", call_id, guild_id)
        svc.board.invalidate_calls(creds.community_id, creds.server_id)

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
        await self._remember_units(svc, creds, [unit for units in on_duty for unit in units or []])
        created = DispatchCall.model_validate(
            {
                **dispatch.to_wire(creds.server_id),
                "callId": call_id,
                "idents": idents,
                # The CAD makes the first attached unit primary.
                "primary": idents[0] if idents else None,
            }
        )
        await self._update_card(svc, guild_id, call_id, lambda _: dispatch_state_from_call(created))
        await interaction.followup.send(
            replies.dispatch_created(call_id, attached, off_duty),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(
        name="attach", description="Attach a linked member's unit (yours by default) to a call."
    )
    @app_commands.describe(call=CALL_HELP, member="Whose unit to attach (default: yours)")
    @app_commands.autocomplete(call=call_autocomplete)
    async def attach(
        self, interaction: discord.Interaction[Any], call: CallId, member: discord.Member | None = None
    ) -> None:
        responder = await self._responder(interaction, member)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await self._attach(services(interaction), guild_id_of(interaction), creds, call, responder)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(
        name="detach", description="Take a linked member's unit (yours by default) off its call."
    )
    @app_commands.describe(member="Whose unit to detach (default: yours)")
    async def detach(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        responder = await self._responder(interaction, member)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await self._detach(services(interaction), guild_id_of(interaction), creds, responder)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="note", description="Add a note to a call, signed with your display name.")
    @app_commands.describe(call=CALL_HELP, text=f"The note (up to {NOTE_MAX} characters)")
    @app_commands.autocomplete(call=call_autocomplete)
    async def note(
        self, interaction: discord.Interaction[Any], call: CallId, text: app_commands.Range[str, 1, NOTE_MAX]
    ) -> None:
        content = _required(text, "note")
        label = interaction.user.display_name.strip()[:LABEL_MAX]
        guild_id = guild_id_of(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        svc = services(interaction)
        cad = svc.cad
        await cad.ensure_allowed(creds, "ADD_CALL_NOTE")
        check = await self._check_call(svc, guild_id, creds, call)
        async with plan_explained(cad, creds):
            await cad.add_call_note(creds, call, content, label=label or None)
        written_at = _now_hms()

        def add_note(state: DispatchCardState | None) -> DispatchCardState | None:
            base = check.base_state(state)
            return with_note(base, label, content, written_at) if base is not None else None

        await self._update_card(svc, guild_id, call, add_note)
        await interaction.followup.send(
            replies.note_added(call), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="close", description="Close a call in the CAD.")
    @app_commands.describe(call=CALL_HELP)
    @app_commands.autocomplete(call=call_autocomplete)
    async def close(self, interaction: discord.Interaction[Any], call: CallId) -> None:
        guild_id = guild_id_of(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        svc = services(interaction)
        cad = svc.cad
        await cad.ensure_allowed(creds, "CLOSE_CALL")
        await self._check_call(svc, guild_id, creds, call)
        async with plan_explained(cad, creds):
            await cad.close_call(creds, call)
        log.info("dispatch call %s closed from guild %s", call, guild_id)
        svc.board.invalidate_calls(creds.community_id, creds.server_id)

        def close_card(state: DispatchCardState | None) -> DispatchCardState | None:
            return closed(state) if state is not None else None

        await self._update_card(svc, guild_id, call, close_card)
        await interaction.followup.send(
            replies.call_closed(call), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    # ------------------------------------------------------------------------------------------ card buttons

    async def press_card_button(
        self, interaction: discord.Interaction[Any], action: CardAction, call_id: int
    ) -> None:
        """Attach me / Detach me on a live card: the clicker's own linked unit, if they may dispatch."""
        await check_group(interaction, CommandGroup.DISPATCH)
        link = await linked_account(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        responder = Responder(interaction.user.display_name, unit_target(link), is_invoker=True)
        svc = services(interaction)
        guild_id = guild_id_of(interaction)
        if action == "attach":
            message = await self._attach(svc, guild_id, creds, call_id, responder)
        else:
            message = await self._detach(svc, guild_id, creds, responder, from_call=call_id)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)


class CardButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CARD_BUTTON_TEMPLATE):
    """A live card's Attach me / Detach me button, rebuilt from its ``custom_id`` on every click."""

    def __init__(self, action: CardAction, call_id: int) -> None:
        self.action: CardAction = action
        self.call_id = call_id
        super().__init__(
            discord.ui.Button(
                label=card_button_label(action),
                style=discord.ButtonStyle(card_button_style(action)),
                custom_id=card_button_id(action, call_id),
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CardButton:
        action: CardAction = "attach" if match["action"] == "attach" else "detach"
        return cls(action, int(match["call_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # discord.py only logs what a dynamic item raises; members get the same sentences commands give.
        try:
            cog = interaction.client.get_cog(Dispatch.__cog_name__)
            if not isinstance(cog, Dispatch):
                raise UserFacingError("Dispatch actions are switched off right now; try again later.")
            await cog.press_card_button(interaction, self.action, self.call_id)
        except Exception as error:
            await report_interaction_error(interaction, error)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Dispatch(bot))
    bot.add_dynamic_items(CardButton)


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(CardButton)
