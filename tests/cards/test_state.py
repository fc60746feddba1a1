"""Live call card reducers: a call's whole life, keys, API-side helpers, and JSON storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bot.cad.codes import CallStatus
from bot.cad.events import PushEvent
from bot.cards import state as cards
from bot.cards.state import CardKind, DispatchCardState, Emergency911CardState
from tests.formatting.samples import parse_one, sample_event

T0 = datetime(2025, 3, 14, 21, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(type_: str, data: Any) -> PushEvent:
    return parse_one(type_, data)


def reduce_dispatch(state: DispatchCardState | None, *steps: tuple[PushEvent, datetime]) -> DispatchCardState:
    for step, moment in steps:
        state = cards.apply_dispatch_event(state, step, now=moment)
    assert state is not None
    return state


# ------------------------------------------------------------------------------------------------
# A dispatch call's whole life


def test_dispatch_card_through_a_calls_whole_life() -> None:
    state = cards.apply_dispatch_event(None, sample_event("EVENT_DISPATCH_NEW"), now=at(0))
    assert state is not None
    assert (state.call_id, state.title, state.priority, state.status) == (311, "Traffic Stop", 2, 1)
    assert (state.address, state.postal, state.code) == ("Legion Square", "7153", "10-38 - Traffic Stop")
    assert state.attached == (57,)
    assert not state.closed
    assert state.updated_at == at(0)

    state = reduce_dispatch(state, (sample_event("EVENT_DISPATCH_EDIT"), at(1)))
    assert (state.title, state.priority, state.description) == (
        "Traffic Stop - Felony",
        1,
        "Driver fled on foot",
    )
    assert state.attached == (57, 58)
    assert state.primary == 57

    state = reduce_dispatch(state, (sample_event("EVENT_DISPATCH_NOTE"), at(2)))
    assert [(n.time, n.label, n.content) for n in state.notes] == [
        ("21:14:05", "1A-12", "Suspect in custody")
    ]

    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_UNIT_ATTACH", {"idents": [61, 58], "callId": 311}), at(3))
    )
    assert state.attached == (57, 58, 61)

    state = reduce_dispatch(state, (event("EVENT_DISPATCH_UNIT_DETACH", {"ident": 57, "callId": 311}), at(4)))
    assert state.attached == (58, 61)
    assert state.primary is None  # the primary unit left

    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 58, "state": True}), at(5))
    )
    assert state.bodycam == (58,)

    state = reduce_dispatch(state, (sample_event("EVENT_DISPATCH_CLOSED"), at(6)))
    assert state.closed
    assert state.status == CallStatus.CLOSED
    assert state.updated_at == at(6)
    # Earlier facts survive the later events.
    assert state.notes[0].content == "Suspect in custody"
    assert state.title == "Traffic Stop - Felony"


def test_edit_without_notes_keeps_known_notes_and_edit_with_notes_replaces_them() -> None:
    state = reduce_dispatch(
        None,
        (sample_event("EVENT_DISPATCH_NEW"), at(0)),
        (sample_event("EVENT_DISPATCH_NOTE"), at(1)),
        (event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "title": "T", "notes": ""}}), at(2)),
    )
    assert [note.content for note in state.notes] == ["Suspect in custody"]
    edit = event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "notes": ["a", {"content": "b"}]}})
    state = reduce_dispatch(state, (edit, at(3)))
    assert [note.content for note in state.notes] == ["a", "b"]


def test_edit_with_closed_status_closes_and_reopening_clears_it() -> None:
    state = reduce_dispatch(None, (sample_event("EVENT_DISPATCH_NEW"), at(0)))
    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "status": 2}}), at(1))
    )
    assert state.closed
    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "status": 1}}), at(2))
    )
    assert not state.closed


def test_edit_keeps_primary_when_event_omits_it_and_unit_still_attached() -> None:
    state = reduce_dispatch(None, (sample_event("EVENT_DISPATCH_EDIT"), at(0)))
    assert state.primary == 57
    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "idents": [57, 58]}}), at(1))
    )
    assert state.primary == 57
    state = reduce_dispatch(
        state, (event("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 311, "idents": [58]}}), at(2))
    )
    assert state.primary is None


def test_bodycam_is_tracked_and_turned_off() -> None:
    state = reduce_dispatch(None, (sample_event("EVENT_DISPATCH_NEW"), at(0)))
    on = event("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": True})
    off = event("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": False})
    state = reduce_dispatch(state, (on, at(1)), (on, at(2)))
    assert state.bodycam == (57,)
    assert state.updated_at == at(1)  # a repeat toggle changes nothing
    state = reduce_dispatch(state, (off, at(3)))
    assert state.bodycam == ()


@pytest.mark.parametrize(
    ("type_", "data", "creates"),
    [
        ("EVENT_DISPATCH_NOTE", {"callId": 9, "note": "first words"}, True),
        ("EVENT_DISPATCH_UNIT_ATTACH", {"callId": 9, "ident": 57}, True),
        ("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 9, "title": "X"}}, True),
        ("EVENT_DISPATCH_UNIT_DETACH", {"callId": 9, "ident": 57}, False),
        ("EVENT_DISPATCH_CLOSED", {"callIds": [9]}, False),
        ("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": True}, False),
        ("EVENT_UNIT_LOGOUT", {"identId": 57}, False),
    ],
)
def test_events_for_an_unknown_call_create_a_minimal_card_only_where_sensible(
    type_: str, data: dict[str, Any], creates: bool
) -> None:
    state = cards.apply_dispatch_event(None, event(type_, data), now=at(0))
    assert (state is not None) is creates
    if state is not None:
        assert state.call_id == 9


def test_minimal_card_from_a_note_has_the_note() -> None:
    state = cards.apply_dispatch_event(
        None, event("EVENT_DISPATCH_NOTE", {"callId": 9, "note": "first"}), now=at(0)
    )
    assert state is not None
    assert [note.content for note in state.notes] == ["first"]
    assert state.title == ""


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("EVENT_DISPATCH_NOTE", {"callId": 999, "note": "x"}),
        ("EVENT_DISPATCH_UNIT_ATTACH", {"callId": 999, "ident": 1}),
        ("EVENT_DISPATCH_UNIT_DETACH", {"callId": 999, "ident": 57}),
        ("EVENT_DISPATCH_CLOSED", {"callIds": [999]}),
        ("EVENT_DISPATCH_EDIT", {"dispatch": {"callId": 999}}),
        ("EVENT_911", {"call": {"callId": 311}}),
    ],
)
def test_events_for_another_call_leave_the_card_untouched(type_: str, data: dict[str, Any]) -> None:
    state = reduce_dispatch(None, (sample_event("EVENT_DISPATCH_NEW"), at(0)))
    assert cards.apply_dispatch_event(state, event(type_, data), now=at(1)) is state


def test_closed_event_naming_several_calls_closes_each() -> None:
    closing = event("EVENT_DISPATCH_CLOSED", {"callIds": [1, 2]})
    assert cards.card_key(closing) == [(CardKind.DISPATCH, 1), (CardKind.DISPATCH, 2)]
    for call_id in (1, 2):
        state = cards.apply_dispatch_event(DispatchCardState(call_id=call_id), closing, now=at(1))
        assert state is not None and state.closed


def test_note_history_is_capped_and_counted() -> None:
    state = DispatchCardState(call_id=1)
    for index in range(cards.MAX_STORED_NOTES + 7):
        state = cards.with_note(state, "1A-12", f"note {index}", "21:00:00", now=at(index))
    assert len(state.notes) == cards.MAX_STORED_NOTES
    assert state.earlier_notes == 7
    assert state.total_notes == cards.MAX_STORED_NOTES + 7
    assert state.notes[-1].content == f"note {cards.MAX_STORED_NOTES + 6}"
    assert state.notes[0].content == "note 7"


def test_reducers_do_not_mutate_their_input() -> None:
    state = reduce_dispatch(None, (sample_event("EVENT_DISPATCH_NEW"), at(0)))
    before = state.model_dump()
    cards.apply_dispatch_event(state, sample_event("EVENT_DISPATCH_NOTE"), now=at(1))
    cards.with_units_attached(state, [99])
    cards.closed(state)
    assert state.model_dump() == before


# ------------------------------------------------------------------------------------------------
# 911 cards


def test_911_card_created_then_removed() -> None:
    state = cards.apply_911_event(None, sample_event("EVENT_911"), now=at(0))
    assert state is not None
    assert (state.call_id, state.is_emergency, state.caller, state.postal) == (
        1042,
        True,
        "Maria Lopez",
        "7012",
    )
    assert state.metadata == {"postal": "7012"}
    assert not state.removed
    removed = cards.apply_911_event(state, sample_event("EVENT_REMOVE_911"), now=at(1))
    assert removed is not None and removed.removed
    assert removed.updated_at == at(1)


def test_911_removal_for_unknown_or_other_call() -> None:
    removal = event("EVENT_REMOVE_911", {"callIds": [5]})
    assert cards.apply_911_event(None, removal) is None
    state = Emergency911CardState(call_id=6)
    assert cards.apply_911_event(state, removal) is state


def test_911_metadata_keeps_only_scalars_as_text() -> None:
    data = {
        "call": {"callId": 1, "metaData": {"postal": 7012, "nested": {"a": 1}, "silent": True, "blank": ""}}
    }
    state = cards.apply_911_event(None, event("EVENT_911", data))
    assert state is not None
    assert state.metadata == {"postal": "7012", "silent": "true"}
    assert state.postal == "7012"


# ------------------------------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize(
    ("type_", "keys"),
    [
        ("EVENT_911", [(CardKind.EMERGENCY_911, 1042)]),
        ("EVENT_REMOVE_911", [(CardKind.EMERGENCY_911, 1042)]),
        ("EVENT_DISPATCH_NEW", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_EDIT", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_NOTE", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_UNIT_ATTACH", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_UNIT_DETACH", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_CLOSED", [(CardKind.DISPATCH, 311)]),
        ("EVENT_DISPATCH_TOGGLE_BODYCAM", []),
        ("EVENT_UNIT_PANIC", []),
        ("EVENT_RECORD_ADD", []),
    ],
)
def test_card_key(type_: str, keys: list[tuple[CardKind, int]]) -> None:
    sample = sample_event(type_)
    assert cards.card_key(sample) == keys
    assert cards.is_card_event(sample) is (bool(keys) or type_ == "EVENT_DISPATCH_TOGGLE_BODYCAM")


def test_card_kinds_are_plain_strings_for_storage() -> None:
    assert CardKind.DISPATCH == "dispatch"
    assert CardKind.EMERGENCY_911 == "911"
    assert DispatchCardState(call_id=1).key == ("dispatch", 1)
    assert Emergency911CardState(call_id=2).key == ("911", 2)


def test_remove_911_naming_several_calls_keys_each() -> None:
    assert cards.card_key(event("EVENT_REMOVE_911", {"callIds": [1, 2], "callId": 3})) == [
        (CardKind.EMERGENCY_911, 1),
        (CardKind.EMERGENCY_911, 2),
        (CardKind.EMERGENCY_911, 3),
    ]


# ------------------------------------------------------------------------------------------------
# Helpers for API-made changes


class ApiCall(BaseModel):
    """Shaped like ``bot.cad.models.DispatchCall`` (snake_case attributes, notes as objects)."""

    call_id: int
    title: str = ""
    priority: int | None = None
    status: int = 1
    address: str = ""
    idents: list[int] = []
    primary: int | None = None
    notes: list[dict[str, str]] = []


@pytest.mark.parametrize(
    "call",
    [
        ApiCall(call_id=77, title="Robbery", priority=1, address="Fleeca", idents=[57, 58], primary=58,
                notes=[{"label": "DISP", "content": "Alarm", "time": "20:00:00"}]),
        {"callId": "77", "title": "Robbery", "priority": "1", "address": "Fleeca", "idents": [57, 58],
         "primary": 58, "notes": [{"label": "DISP", "content": "Alarm", "time": "20:00:00"}]},
        {"call_id": 77, "title": "Robbery", "priority": 1, "address": "Fleeca", "idents": [57, 58],
         "primary": 58, "notes": ["Alarm"]},
    ],
    ids=["pydantic-model", "camel-mapping", "snake-mapping"],
)  # fmt: skip
def test_dispatch_state_from_call(call: object) -> None:
    state = cards.dispatch_state_from_call(call, now=at(0))
    assert (state.call_id, state.title, state.priority, state.address) == (77, "Robbery", 1, "Fleeca")
    assert state.attached == (57, 58)
    assert state.primary == 58
    assert [note.content for note in state.notes] == ["Alarm"]
    assert state.updated_at == at(0)


def test_dispatch_state_from_the_real_cad_model() -> None:
    models = pytest.importorskip("bot.cad.models")
    call = models.DispatchCall.model_validate(
        {"callId": 5, "title": "Fire", "priority": 2, "idents": [61], "notes": [{"content": "Smoke"}]}
    )
    state = cards.dispatch_state_from_call(call, now=at(0))
    assert (state.call_id, state.title, state.attached) == (5, "Fire", (61,))
    assert [note.content for note in state.notes] == ["Smoke"]


def test_dispatch_state_from_call_without_id_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        cards.dispatch_state_from_call({"title": "no id"})


def test_api_helpers() -> None:
    state = DispatchCardState(call_id=1, attached=(57,), primary=57)
    state = cards.with_units_attached(state, [58, 57, 59], now=at(1))
    assert state.attached == (57, 58, 59)
    state = cards.with_units_detached(state, [57, 100], now=at(2))
    assert (state.attached, state.primary) == ((58, 59), None)
    state = cards.with_note(state, "Discord: Alex", "Units en route", "21:30:00", now=at(3))
    assert state.notes[-1] == cards.CardNote(time="21:30:00", label="Discord: Alex", content="Units en route")
    state = cards.closed(state, now=at(4))
    assert state.closed and state.updated_at == at(4)
    assert cards.removed_911(Emergency911CardState(call_id=3)).removed


# ------------------------------------------------------------------------------------------------
# Storage round trip


def test_states_round_trip_through_json() -> None:
    dispatch = reduce_dispatch(
        None,
        (sample_event("EVENT_DISPATCH_EDIT"), at(0)),
        (event("EVENT_DISPATCH_NOTE", {"callId": 311, "note": "Zoë 🚓 \ud800 ok"}), at(1)),
        (event("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": True}), at(2)),
    )
    restored = DispatchCardState.model_validate_json(dispatch.model_dump_json())
    assert restored == dispatch
    assert restored.notes[-1].content == "Zoë 🚓 \ufffd ok"

    emergency = cards.apply_911_event(None, sample_event("EVENT_911"), now=at(0))
    assert emergency is not None
    assert Emergency911CardState.model_validate_json(emergency.model_dump_json()) == emergency
