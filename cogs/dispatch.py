"""/dispatch new|attach|detach|note|close, and the Attach me / Detach me buttons on live dispatch cards.

The actions themselves (the CAD requests, the call checks, keeping each guild's live card in step) are the
Discord-free :class:`bot.services.dispatch.DispatchDesk`; this cog parses options, checks who may dispatch, defers
and replies. The card buttons carry the call ID in their ``custom_id`` (:mod:`bot.cards.buttons`); the
:class:`CardButton` dynamic item registered in :func:`setup` answers them, also for cards posted before a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.codes import CallOrigin, CallStatus
from bot.cad.errors import CadError
from bot.cad.models import CadCredentials, NewDispatch
from bot.cad.v2 import CadV2Client
from bot.cards.buttons import (
    CARD_BUTTON_TEMPLATE,
    CardAction,
    card_button_id,
    card_button_label,
    card_button_style,
)
from bot.errors import NotLinkedError, UserFacingError
from bot.formatting import dispatch as replies
from bot.services.dispatch import DispatchDesk, Responder
from bot.services.members import member_target
from bot.services.templates import LONG_TYPES, NEEDS_V2, TemplateForm, plan_form, template_choices
from bot.storage.models import CommandGroup, UserLink
from bot.tree import UserCheckFailure, report_interaction_error
from cogs._shared import (
    NO_MENTIONS,
    acting_member,
    check_group,
    guild_credentials,
    guild_id_of,
    services,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Autocomplete cannot be deferred: Discord drops choices that arrive after 3 s.
AUTOCOMPLETE_BUDGET_S = 2.0
NOTE_MAX = 500
# Discord's limits for a modal's title, an input's label and its placeholder.
MODAL_TITLE_MAX = 45
INPUT_LABEL_MAX = 45
PLACEHOLDER_MAX = 100
MODAL_TIMEOUT_S = 600.0
TEMPLATES_SLOW = "The CAD is slow to list its dispatch templates right now; try again in a moment."
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


def _required(value: str, option: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise UserFacingError(replies.blank_option(option))
    return stripped


async def _dispatcher_credentials(interaction: discord.Interaction[Any]) -> CadCredentials | None:
    """The guild's credentials when the member may dispatch; None otherwise (checks do not run for
    autocomplete, and a refusal there would only be an empty list)."""
    try:
        await check_group(interaction, CommandGroup.DISPATCH)
        return await guild_credentials(interaction)
    except (UserCheckFailure, UserFacingError):
        return None


async def _within_autocomplete_budget(read: Awaitable[T], creds: CadCredentials, what: str) -> T | None:
    """``read``'s answer, or None when the CAD can't give it within the budget (Discord drops late choices)."""
    try:
        async with asyncio.timeout(AUTOCOMPLETE_BUDGET_S):
            return await read
    except (CadError, TimeoutError) as exc:
        log.info("no %s choices for community %s: %s", what, creds.community_id, type(exc).__name__)
        return None


def desk(interaction: discord.Interaction[Any]) -> DispatchDesk:
    """The dispatch actions over this process's CAD client, shared board and pipeline (read now: tests swap
    the client)."""
    svc = services(interaction)
    return DispatchDesk(svc.cad, svc.board, svc.pipeline)


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
        """The invoker (``member`` None or themselves) or another member, named by their link or (CAD v2)
        their Discord user ID."""
        if member is None or member.id == interaction.user.id:
            target, _ = await acting_member(interaction)
            return Responder(interaction.user.display_name, target, is_invoker=True)
        found: UserLink | None = await services(interaction).storage.links.get(
            guild_id_of(interaction), member.id
        )
        try:
            target = member_target(services(interaction).cad, found, member.id)
        except NotLinkedError:
            raise UserFacingError(replies.member_not_linked(member.display_name)) from None
        return Responder(member.display_name, target, is_invoker=False)

    # ------------------------------------------------------------------------------------------ autocomplete

    async def call_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[Choice[int]]:
        """Open calls matching what was typed, from the shared board (kept a few seconds per community); nothing
        for members who may not dispatch (checks do not run for autocomplete) or when the CAD can't answer in time."""
        creds = await _dispatcher_credentials(interaction)
        if creds is None:
            return []
        calls = await _within_autocomplete_budget(desk(interaction).open_calls(creds), creds, "call")
        if calls is None:
            return []
        return [
            Choice(name=name, value=call_id)
            for name, call_id in replies.call_choices(calls, str(current or ""))
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
        attach_me="Attach your own unit",
        member="Also attach this member's unit",
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
        message = await desk(interaction).create(guild_id, creds, dispatch, responders)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def template_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[Choice[int]]:
        """The community's dispatch templates (v2), default first; nothing when they can't be listed in time."""
        cad = services(interaction).cad
        if not isinstance(cad, CadV2Client):
            return []
        creds = await _dispatcher_credentials(interaction)
        if creds is None:
            return []
        board = services(interaction).board
        templates = await _within_autocomplete_budget(board.dispatch_templates(cad, creds), creds, "template")
        if templates is None:
            return []
        return [Choice(name=name, value=tid) for name, tid in template_choices(templates, str(current or ""))]

    @app_commands.command(
        name="template", description="Create a dispatch call from one of your CAD's dispatch templates."
    )
    @app_commands.describe(template="Which template (your CAD's dispatch templates)")
    @app_commands.autocomplete(template=template_autocomplete)
    async def template(
        self, interaction: discord.Interaction[Any], template: app_commands.Range[int, 1, None]
    ) -> None:
        cad = services(interaction).cad
        if not isinstance(cad, CadV2Client):
            raise UserFacingError(NEEDS_V2)
        responder = await self._responder(interaction, None)
        creds = await guild_credentials(interaction)
        # The form must be the first answer, within 3 s: the template comes from the board (the autocomplete
        # just read it), else one quick read.
        try:
            async with asyncio.timeout(AUTOCOMPLETE_BUDGET_S):
                listed = await services(interaction).board.dispatch_templates(cad, creds)
        except TimeoutError:
            raise UserFacingError(TEMPLATES_SLOW) from None
        chosen = next((t for t in listed if t.template_id == template), None)
        if chosen is None:
            raise UserFacingError(f"This CAD has no dispatch template #{template}; pick one from the list.")
        await interaction.response.send_modal(TemplateModal(plan_form(chosen), responder))

    @app_commands.command(name="attach", description="Attach a member's unit (yours by default) to a call.")
    @app_commands.describe(call=CALL_HELP, member="Whose unit to attach (default: yours)")
    @app_commands.autocomplete(call=call_autocomplete)
    async def attach(
        self, interaction: discord.Interaction[Any], call: CallId, member: discord.Member | None = None
    ) -> None:
        responder = await self._responder(interaction, member)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await desk(interaction).attach(guild_id_of(interaction), creds, call, responder)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="detach", description="Take a member's unit (yours by default) off its call.")
    @app_commands.describe(member="Whose unit to detach (default: yours)")
    async def detach(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        responder = await self._responder(interaction, member)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await desk(interaction).detach(guild_id_of(interaction), creds, responder)
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
        message = await desk(interaction).add_note(guild_id, creds, call, label, content)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="close", description="Close a call in the CAD.")
    @app_commands.describe(call=CALL_HELP)
    @app_commands.autocomplete(call=call_autocomplete)
    async def close(self, interaction: discord.Interaction[Any], call: CallId) -> None:
        guild_id = guild_id_of(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await desk(interaction).close(guild_id, creds, call)
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # ------------------------------------------------------------------------------------------ card buttons

    async def press_card_button(
        self, interaction: discord.Interaction[Any], action: CardAction, call_id: int
    ) -> None:
        """Attach me / Detach me on a live card: the clicker's own linked unit, if they may dispatch."""
        await check_group(interaction, CommandGroup.DISPATCH)
        target, _ = await acting_member(interaction)
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        responder = Responder(interaction.user.display_name, target, is_invoker=True)
        actions = desk(interaction)
        guild_id = guild_id_of(interaction)
        if action == "attach":
            message = await actions.attach(guild_id, creds, call_id, responder)
        else:
            message = await actions.detach(guild_id, creds, responder, from_call=call_id)
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


class TemplateModal(discord.ui.Modal):
    """The template's fields (at most five, required first) as one form; submitting creates the call."""

    def __init__(self, form: TemplateForm, responder: Responder) -> None:
        super().__init__(title=form.template.display_name[:MODAL_TITLE_MAX], timeout=MODAL_TIMEOUT_S)
        self.form = form
        self.responder = responder
        self.inputs: dict[str, discord.ui.TextInput[TemplateModal]] = {}
        for field in form.asked:
            hint = ", ".join(field.options) or field.placeholder
            text_input: discord.ui.TextInput[TemplateModal] = discord.ui.TextInput(
                label=(field.label or field.uid)[:INPUT_LABEL_MAX],
                custom_id=f"template:{field.uid}"[:100],
                required=field.required,
                style=discord.TextStyle.long if field.type in LONG_TYPES else discord.TextStyle.short,
                placeholder=hint[:PLACEHOLDER_MAX] or None,
                max_length=DESCRIPTION_MAX if field.type in LONG_TYPES else TITLE_MAX,
            )
            self.inputs[field.uid] = text_input
            self.add_item(text_input)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await check_group(
            interaction, CommandGroup.DISPATCH
        )  # a role may have changed while the form was open
        creds = await guild_credentials(interaction)
        answers = {uid: text_input.value for uid, text_input in self.inputs.items()}
        self.form.values(answers)  # a wrong select option is answered at once, before deferring
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = await desk(interaction).create_from_template(
            guild_id_of(interaction), creds, self.form, answers, self.responder
        )
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]  # discord.py types Modal.on_error like View.on_error
        await report_interaction_error(interaction, error)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Dispatch(bot))
    bot.add_dynamic_items(CardButton)


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(CardButton)
