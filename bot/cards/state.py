"""Pure reducers for the live cards: one Discord message per call (or per /panic alert), edited as it changes.

A card's state is a frozen pydantic model holding the raw CAD text (neutralised only when rendered), so
it can be stored as JSON and rebuilt after a restart. Reducers never mutate: they return a new state,
the same state when the event does not concern it, or None when there is nothing to show.

Push events describe changes made in the CAD; changes made through the API are not pushed back, so the
``with_*`` helpers let the command layer apply its own actions to a card in the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from bot.cad import events as ev
from bot.cad.codes import CallStatus
from bot.cad.coerce import coerce_mapping, coerce_text, sanitise_json
from bot.cad.models import DispatchCall, DispatchNote
from bot.storage.models import Category

# Notes kept in a stored card; older ones are only counted. Rendering shows fewer still.
MAX_STORED_NOTES = 50


class CardKind(StrEnum):
    DISPATCH = "dispatch"
    EMERGENCY_911 = "911"
    PANIC = "panic"


CardKey = tuple[CardKind, int]


class _CardModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class CardNote(_CardModel):
    time: str = ""
    label: str = ""
    content: str = ""
    type: str = "text"


class DispatchCardState(_CardModel):
    """Everything the live dispatch card shows. ``attached`` keeps attach order; ``bodycam`` lists units with
    their bodycam on (tracked even before they attach, so the indicator is right when they do)."""

    KIND: ClassVar[CardKind] = CardKind.DISPATCH

    call_id: int
    title: str = ""
    code: str = ""
    priority: int | None = None
    origin: int | None = None
    status: int | None = None
    address: str = ""
    postal: str = ""
    block: str = ""
    description: str = ""
    notes: tuple[CardNote, ...] = ()
    earlier_notes: int = 0
    attached: tuple[int, ...] = ()
    primary: int | None = None
    bodycam: tuple[int, ...] = ()
    closed: bool = False
    updated_at: datetime | None = None

    @property
    def key(self) -> CardKey:
        return (CardKind.DISPATCH, self.call_id)

    @property
    def total_notes(self) -> int:
        return self.earlier_notes + len(self.notes)


class Emergency911CardState(_CardModel):
    """Everything the live 911 card shows."""

    KIND: ClassVar[CardKind] = CardKind.EMERGENCY_911

    call_id: int
    is_emergency: bool = False
    caller: str = ""
    location: str = ""
    description: str = ""
    postal: str = ""
    metadata: dict[str, str] = {}
    removed: bool = False
    updated_at: datetime | None = None

    @property
    def key(self) -> CardKey:
        return (CardKind.EMERGENCY_911, self.call_id)


class CadOutcome(StrEnum):
    """What the CAD said to a request the bot made for a card (the UNIT_PANIC of a /panic alert)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class PanicCardState(_CardModel):
    """A panic raised (or cleared) with /panic, posted at once and amended as answers come in.

    The alert must not wait for the CAD, so it is posted before UNIT_PANIC is sent: ``cad`` then records the
    CAD's answer and ``cad_problem`` the member-facing sentence of why it did not confirm (never raw CAD
    text). ``ident_ids`` are the member's units once the CAD names them (until then ``pressed_by`` says who).
    ``alert_id`` keys the card (the interaction's snowflake: unique per press).
    """

    KIND: ClassVar[CardKind] = CardKind.PANIC

    alert_id: int
    is_panic: bool = True
    ident_ids: tuple[int, ...] = ()
    pressed_by: str = ""
    cad: CadOutcome = CadOutcome.PENDING
    cad_problem: str = ""
    pressed_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> CardKey:
        return (CardKind.PANIC, self.alert_id)

    def as_event(self) -> ev.UnitPanicEvent:
        """The alert as the panic event it stands for (rendered exactly like a panic pressed in the CAD)."""
        event = ev.UnitPanicEvent.model_validate({"identIds": list(self.ident_ids), "isPanic": self.is_panic})
        return event.model_copy(update={"pressed_by": self.pressed_by})


CardState = DispatchCardState | Emergency911CardState | PanicCardState

# The category each card kind is routed (and prioritised) as.
CARD_CATEGORY: Mapping[CardKind, Category] = {
    CardKind.DISPATCH: Category.DISPATCH,
    CardKind.EMERGENCY_911: Category.CALLS_911,
    CardKind.PANIC: Category.PANIC,
}


def load_state(kind: str, stored: Mapping[str, Any]) -> CardState:
    """A card's state from its stored JSON (``kind`` as stored)."""
    if kind == CardKind.DISPATCH:
        return DispatchCardState.model_validate(stored)
    if kind == CardKind.PANIC:
        return PanicCardState.model_validate(stored)
    return Emergency911CardState.model_validate(stored)


def dump_state(state: CardState) -> dict[str, Any]:
    """The state as JSON for storage (the inverse of :func:`load_state`)."""
    return state.model_dump(mode="json")


def is_finished(state: CardState) -> bool:
    """A closed call, a removed 911 call, or a /panic alert (a one-off: only the CAD's answer still amends it,
    and housekeeping waits for any edit owed, and a week of quiet)."""
    if isinstance(state, PanicCardState):
        return True
    return state.closed if isinstance(state, DispatchCardState) else state.removed


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _unique(idents: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(idents))


def _card_note(note: DispatchNote) -> CardNote:
    return CardNote(time=note.time, label=note.label, content=note.content, type=note.type)


def _cap_notes(notes: tuple[CardNote, ...], earlier: int) -> tuple[tuple[CardNote, ...], int]:
    if len(notes) <= MAX_STORED_NOTES:
        return notes, earlier
    dropped = len(notes) - MAX_STORED_NOTES
    return notes[dropped:], earlier + dropped


def _from_payload(
    payload: DispatchCall, previous: DispatchCardState | None, now: datetime
) -> DispatchCardState:
    notes = tuple(_card_note(note) for note in payload.notes)
    earlier = 0
    if not notes and previous is not None:
        # The push docs send notes as "" (i.e. not included); an empty list must not wipe known notes.
        notes, earlier = previous.notes, previous.earlier_notes
    notes, earlier = _cap_notes(notes, earlier)
    attached = _unique(payload.idents)
    primary = payload.primary
    if primary is None and previous is not None and previous.primary in attached:
        primary = previous.primary
    closed = (
        payload.status == CallStatus.CLOSED
        if payload.status is not None
        else bool(previous and previous.closed)
    )
    return DispatchCardState(
        call_id=payload.call_id,
        title=payload.title,
        code=payload.code,
        priority=payload.priority,
        origin=payload.origin,
        status=payload.status,
        address=payload.address,
        postal=payload.postal,
        block=payload.block,
        description=payload.description,
        notes=notes,
        earlier_notes=earlier,
        attached=attached,
        primary=primary,
        bodycam=previous.bodycam if previous is not None else (),
        closed=closed,
        updated_at=now,
    )


def apply_dispatch_event(
    state: DispatchCardState | None, event: ev.PushEvent, now: datetime | None = None
) -> DispatchCardState | None:
    """The dispatch card after ``event``.

    New/edit replace the call's fields (notes survive an edit that omits them). A note or an attach for a
    call we have no card for starts a minimal card; a detach, close or bodycam toggle for one does not.
    A bodycam event names no call: the caller applies it to every open card it wants to keep in sync.
    """
    moment = _now(now)
    if isinstance(event, ev.DispatchNewEvent | ev.DispatchEditEvent):
        if state is not None and state.call_id != event.dispatch.call_id:
            return state
        return _from_payload(event.dispatch, state, moment)
    if isinstance(event, ev.DispatchNoteEvent | ev.DispatchUnitAttachEvent | ev.DispatchUnitDetachEvent):
        return _apply_call_event(state, event, moment)
    if isinstance(event, ev.DispatchClosedEvent):
        if state is None or state.call_id not in event.call_ids:
            return state
        return closed(state, now=moment)
    if isinstance(event, ev.DispatchBodycamEvent):
        if state is None:
            return None
        return with_bodycam(state, event.ident, event.state, now=moment)
    return state


def _apply_call_event(
    state: DispatchCardState | None,
    event: ev.DispatchNoteEvent | ev.DispatchUnitAttachEvent | ev.DispatchUnitDetachEvent,
    moment: datetime,
) -> DispatchCardState | None:
    """A note, attach or detach, which name their call: a note or an attach starts a minimal card for a call
    without one; a detach does not."""
    if state is not None and state.call_id != event.call_id:
        return state
    if isinstance(event, ev.DispatchUnitDetachEvent):
        return with_units_detached(state, event.idents, now=moment) if state is not None else None
    base = state if state is not None else DispatchCardState(call_id=event.call_id)
    if isinstance(event, ev.DispatchNoteEvent):
        note = event.note
        return with_note(base, note.label, note.content, note.time, note_type=note.type, now=moment)
    return with_units_attached(base, event.idents, now=moment)


def apply_911_event(
    state: Emergency911CardState | None, event: ev.PushEvent, now: datetime | None = None
) -> Emergency911CardState | None:
    """The 911 card after ``event``: a new call (re)builds it; a removal marks it REMOVED."""
    moment = _now(now)
    if isinstance(event, ev.Emergency911Event):
        if state is not None and state.call_id != event.call.call_id:
            return state
        metadata = {**event.metadata, **event.call.metadata}
        return Emergency911CardState(
            call_id=event.call.call_id,
            is_emergency=event.call.is_emergency,
            caller=event.call.caller,
            location=event.call.location,
            description=event.call.description,
            postal=event.postal,
            metadata=_flat_metadata(metadata),
            removed=False,
            updated_at=moment,
        )
    if isinstance(event, ev.Remove911Event):
        if state is None or state.call_id not in event.call_ids:
            return state
        return removed_911(state, now=moment)
    return state


def _flat_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Scalar metadata as text (nested objects are integration plumbing, not something to show)."""
    flat: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, Mapping | list | tuple):
            continue
        text = coerce_text(value)
        if text.strip():
            flat[str(key)] = text
    return flat


def card_key(event: ev.PushEvent) -> list[CardKey]:
    """The cards ``event`` updates. Closed/remove events may name several; bodycam names none (see above)."""
    if isinstance(event, ev.Emergency911Event):
        return [(CardKind.EMERGENCY_911, event.call.call_id)]
    if isinstance(event, ev.Remove911Event):
        return [(CardKind.EMERGENCY_911, call_id) for call_id in event.call_ids]
    if isinstance(event, ev.DispatchNewEvent | ev.DispatchEditEvent):
        return [(CardKind.DISPATCH, event.dispatch.call_id)]
    if isinstance(event, ev.DispatchNoteEvent | ev.DispatchUnitAttachEvent | ev.DispatchUnitDetachEvent):
        return [(CardKind.DISPATCH, event.call_id)]
    if isinstance(event, ev.DispatchClosedEvent):
        return [(CardKind.DISPATCH, call_id) for call_id in event.call_ids]
    return []


def is_card_event(event: ev.PushEvent) -> bool:
    """True for events that change a live card (including bodycam, which has no key of its own)."""
    return bool(card_key(event)) or isinstance(event, ev.DispatchBodycamEvent)


# ---------------------------------------------------------------------------------------------------
# Helpers for changes made through the API (no push event comes back for those).


def dispatch_state_from_call(call: object, now: datetime | None = None) -> DispatchCardState:
    """A card for a call fetched or created through the API (a ``DispatchCall`` or a plain mapping;
    camelCase or snake_case fields).

    Raises ``pydantic.ValidationError`` when the object has no usable call ID.
    """
    if isinstance(call, DispatchCall):
        payload = call
    else:
        raw = coerce_mapping(call) if not isinstance(call, Mapping) else dict(call)
        payload = DispatchCall.model_validate(sanitise_json(raw))
    return _from_payload(payload, None, _now(now))


def with_note(
    state: DispatchCardState,
    label: str,
    content: str,
    time: str,
    *,
    note_type: str = "text",
    now: datetime | None = None,
) -> DispatchCardState:
    """``state`` with one more note at the end (the oldest stored note is dropped past the cap)."""
    note = CardNote(time=time, label=label, content=content, type=note_type)
    notes, earlier = _cap_notes((*state.notes, note), state.earlier_notes)
    return state.model_copy(update={"notes": notes, "earlier_notes": earlier, "updated_at": _now(now)})


def with_units_attached(
    state: DispatchCardState, idents: Iterable[int], *, now: datetime | None = None
) -> DispatchCardState:
    """``state`` with ``idents`` attached after the units already there (no duplicates)."""
    attached = _unique((*state.attached, *idents))
    return state.model_copy(update={"attached": attached, "updated_at": _now(now)})


def with_units_detached(
    state: DispatchCardState, idents: Iterable[int], *, now: datetime | None = None
) -> DispatchCardState:
    """``state`` without ``idents``; the primary unit is cleared if it left."""
    leaving = set(idents)
    attached = tuple(ident for ident in state.attached if ident not in leaving)
    primary = None if state.primary in leaving else state.primary
    return state.model_copy(update={"attached": attached, "primary": primary, "updated_at": _now(now)})


def with_bodycam(
    state: DispatchCardState, ident: int, on: bool, *, now: datetime | None = None
) -> DispatchCardState:
    """``state`` with ``ident``'s bodycam marked on or off."""
    if on:
        bodycam = _unique((*state.bodycam, ident))
    else:
        bodycam = tuple(other for other in state.bodycam if other != ident)
    if bodycam == state.bodycam:
        return state
    return state.model_copy(update={"bodycam": bodycam, "updated_at": _now(now)})


def closed(state: DispatchCardState, *, now: datetime | None = None) -> DispatchCardState:
    """``state`` marked CLOSED."""
    return state.model_copy(
        update={"closed": True, "status": int(CallStatus.CLOSED), "updated_at": _now(now)}
    )


def removed_911(state: Emergency911CardState, *, now: datetime | None = None) -> Emergency911CardState:
    """``state`` marked REMOVED."""
    return state.model_copy(update={"removed": True, "updated_at": _now(now)})


def panic_alert(
    alert_id: int, *, is_panic: bool, pressed_by: str, now: datetime | None = None
) -> PanicCardState:
    """A /panic alert as first posted: who pressed it, the CAD's answer still to come."""
    moment = _now(now)
    return PanicCardState(
        alert_id=alert_id, is_panic=is_panic, pressed_by=pressed_by, pressed_at=moment, updated_at=moment
    )


def with_units_named(
    state: PanicCardState, idents: Iterable[int], *, now: datetime | None = None
) -> PanicCardState:
    """``state`` naming the units the CAD listed for the member (an empty list changes nothing)."""
    named = _unique(idents)
    if not named or named == state.ident_ids:
        return state
    return state.model_copy(update={"ident_ids": named, "updated_at": _now(now)})


def shows_change(before: object, after: object) -> bool:
    """Whether a card changed from ``before`` to ``after`` looks different in Discord (else no edit is owed).

    Only one change does not: a /panic alert the CAD confirmed reads exactly as it did while the answer was
    awaited, so recording the confirmation costs no edit.
    """
    if isinstance(before, PanicCardState) and isinstance(after, PanicCardState):
        outcome_only = after == before.model_copy(
            update={"cad": after.cad, "cad_problem": after.cad_problem, "updated_at": after.updated_at}
        )
        if outcome_only and CadOutcome.NOT_CONFIRMED not in (before.cad, after.cad):
            return False
    return True


def cad_confirmed(state: PanicCardState, *, now: datetime | None = None) -> PanicCardState:
    """``state`` once the CAD accepted the request."""
    return state.model_copy(update={"cad": CadOutcome.CONFIRMED, "cad_problem": "", "updated_at": _now(now)})


def cad_not_confirmed(state: PanicCardState, problem: str, *, now: datetime | None = None) -> PanicCardState:
    """``state`` once the CAD refused the request or could not be reached; ``problem`` is the member-facing
    sentence of the typed CAD error."""
    return state.model_copy(
        update={"cad": CadOutcome.NOT_CONFIRMED, "cad_problem": problem, "updated_at": _now(now)}
    )
