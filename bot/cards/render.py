"""The live cards: one message per call (or /panic alert), re-rendered from its stored state after every change."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.cad.codes import CALL_ORIGIN, CALL_STATUS, CallStatus
from bot.cards.state import (
    CadOutcome,
    CardKind,
    CardNote,
    DispatchCardState,
    Emergency911CardState,
    PanicCardState,
    load_state,
)
from bot.formatting.context import Colour, FormatContext
from bot.formatting.events import (
    call_name,
    call_title,
    embed,
    field,
    format_unit_panic,
    listing,
    location_text,
    note_line,
    priority_text,
)
from bot.formatting.limits import DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT, EmbedDict, clamp_embed, embed_size
from bot.formatting.text import discord_len, neutralise, truncate
from bot.storage.cards import CardRow

log = logging.getLogger(__name__)

# The call's own description is capped on the card so the notes below it keep room.
_CARD_DESCRIPTION_LIMIT = 1500
_NOTE_CONTENT_LIMIT = 400
_NOTES_HEADING = "\n\n**Notes**\n"
# Room kept for the "(N earlier notes)" line and rounding, so the total never crosses a limit.
_NOTES_SLACK = 40
_PANIC_PROBLEM_LIMIT = 300


def _status_word(state: DispatchCardState) -> str:
    """The call's status as every screen names it; a call the CAD sent no status for is on the board, so
    Active."""
    if state.closed:
        return f"{CALL_STATUS.label(CallStatus.CLOSED)} ✅"
    return CALL_STATUS.label(state.status if state.status is not None else CallStatus.ACTIVE)


def _iso(moment: datetime | None, ctx: FormatContext) -> str:
    if moment is None:
        return ctx.timestamp
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()


def _card_timestamp(state: DispatchCardState | Emergency911CardState, ctx: FormatContext) -> str:
    return _iso(state.updated_at, ctx)


def _unit_lines(state: DispatchCardState, ctx: FormatContext) -> list[str]:
    lines = []
    bodycams = set(state.bodycam)
    for ident in state.attached:
        marks = (" ★" if ident == state.primary else "") + (" 📹" if ident in bodycams else "")
        lines.append(ctx.unit_label(ident) + marks)
    return lines


def _notes_block(notes: tuple[CardNote, ...], earlier: int, budget: int) -> str:
    """The newest notes that fit in ``budget`` (oldest dropped first), newest last."""
    lines = [note_line(note.time, note.label, note.content, _NOTE_CONTENT_LIMIT) for note in notes]
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = discord_len(line) + 1
        if used + cost > budget:
            break
        kept.insert(0, line)
        used += cost
    hidden = earlier + len(lines) - len(kept)
    if hidden:
        kept.insert(0, f"*({hidden} earlier note{'s' if hidden != 1 else ''})*")
    return "\n".join(kept)


def render_dispatch_card(state: DispatchCardState, ctx: FormatContext) -> EmbedDict:
    """The live message for a dispatch call: status line, details, units (★ primary, 📹 bodycam), notes."""
    status_line = " · ".join(
        part for part in (f"**{_status_word(state)}**", priority_text(state.priority)) if part
    )
    description = truncate(neutralise(state.description), _CARD_DESCRIPTION_LIMIT)
    head = status_line + (f"\n{description}" if description.strip() else "")
    units = _unit_lines(state, ctx)
    code = neutralise(state.code).strip()
    card = embed(
        ctx,
        call_title(state.call_id, state.title, state.code, "📟 Call #{id}"),
        Colour.GREY if state.closed else Colour.for_priority(state.priority),
        head,
        [
            field("Code", code if code and code != call_name(state.title, state.code) else None),
            field("Location", location_text(state.address, state.block)),
            field("Postal", neutralise(state.postal)),
            field("Origin", CALL_ORIGIN.label(state.origin) if state.origin is not None else None),
            field("Units", listing(units) if units else "None attached", inline=False),
        ],
    )
    card["timestamp"] = _card_timestamp(state, ctx)
    if state.notes or state.earlier_notes:
        card = clamp_embed(card)
        used_elsewhere = embed_size(card) - discord_len(card.get("description", ""))
        room = min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - used_elsewhere) - discord_len(head)
        budget = room - discord_len(_NOTES_HEADING) - _NOTES_SLACK
        if budget > 0:
            card["description"] = (
                head + _NOTES_HEADING + _notes_block(state.notes, state.earlier_notes, budget)
            )
    return clamp_embed(card)


def render_911_card(state: Emergency911CardState, ctx: FormatContext) -> EmbedDict:
    """The live message for a 911 call: Active or Removed, caller, location, postal, description."""
    if state.is_emergency:
        title, colour = f"🚨 911 #{state.call_id} — EMERGENCY", Colour.RED
    else:
        title, colour = f"📞 911 #{state.call_id} — Civil", Colour.AMBER
    if state.removed:
        colour = Colour.GREY
    description = neutralise(state.description)
    head = f"**{'Removed' if state.removed else CALL_STATUS.label(CallStatus.ACTIVE)}**" + (
        f"\n{description}" if description.strip() else ""
    )
    card = embed(
        ctx,
        title,
        colour,
        head,
        [
            field("Caller", neutralise(state.caller)),
            field("Location", neutralise(state.location)),
            field("Postal", neutralise(state.postal)),
        ],
    )
    card["timestamp"] = _card_timestamp(state, ctx)
    return clamp_embed(card)


def render_panic_card(state: PanicCardState, ctx: FormatContext) -> EmbedDict:
    """A /panic alert: it looks exactly like a panic pressed in the CAD, plus one line when the CAD did not
    confirm it (none while the answer is awaited or once it confirmed). Timed when the member pressed it."""
    alert = format_unit_panic(state.as_event(), ctx)
    # A clear made here is not known to be done in the CAD until it answers: say where it was made.
    lines = [str(alert.get("description", "")) if state.is_panic else "The panic was cleared from Discord."]
    if state.cad == CadOutcome.NOT_CONFIRMED:
        problem = truncate(neutralise(state.cad_problem), _PANIC_PROBLEM_LIMIT).strip()
        lines.append(f"⚠️ The CAD did not confirm: {problem or 'it gave no reason.'}")
    alert["description"] = "\n".join(lines)
    alert["timestamp"] = _iso(state.pressed_at, ctx)
    return clamp_embed(alert)


def render_card(card: CardRow, ctx: FormatContext) -> EmbedDict:
    """A stored card's latest state as an embed, for its post and every edit.

    Never raises: a card that cannot be drawn (a formatter bug, an unreadable stored state) is shown as a plain
    placeholder rather than left unsent, and a /panic alert still reads as an alert.
    """
    try:
        state = load_state(card.kind, card.state)
        if isinstance(state, DispatchCardState):
            return clamp_embed(render_dispatch_card(state, ctx))
        if isinstance(state, PanicCardState):
            return clamp_embed(render_panic_card(state, ctx))
        return clamp_embed(render_911_card(state, ctx))
    except Exception:  # a formatter bug or an unreadable stored state must not stall the channel
        log.exception("live card %s cannot be drawn", card.id)
        if card.kind == CardKind.PANIC:
            return clamp_embed(
                {
                    "title": "🚨 Panic alert",
                    "description": "A /panic alert that cannot be shown in full; check the unit in the CAD.",
                }
            )
        return clamp_embed(
            {"title": f"Call #{card.call_id}", "description": "This call card cannot be shown."}
        )
