"""The push-event parser: every event type, every ambiguity in the contract, and hostile input."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bot.cad import events as ev
from bot.cad.events import parse_event
from tests.formatting.samples import DOCUMENTED_TYPES, SAMPLE_ENVELOPES, parse_one, sample_event

# ------------------------------------------------------------------------------------------------
# Every type


def test_contract_documents_26_types_and_each_has_a_model() -> None:
    assert len(DOCUMENTED_TYPES) == 26
    assert all(type_ in ev.EVENT_MODELS for type_ in DOCUMENTED_TYPES)


def test_every_model_declares_its_types_and_has_a_sample() -> None:
    for event_class in ev.EVENT_CLASSES:
        assert event_class.EVENT_TYPES, event_class
        assert event_class.EVENT_TYPES[0] in SAMPLE_ENVELOPES, event_class


@pytest.mark.parametrize("type_", list(SAMPLE_ENVELOPES))
def test_contract_example_parses_to_its_model(type_: str) -> None:
    event = sample_event(type_)
    assert isinstance(event, ev.EVENT_MODELS[type_])
    assert event.event_type == type_
    assert event.canonical_type == type_
    json.dumps(event.model_dump(mode="json"))


def test_contract_examples_carry_their_values() -> None:
    call = sample_event("EVENT_911")
    assert isinstance(call, ev.Emergency911Event)
    assert (call.call.call_id, call.call.is_emergency, call.call.caller) == (1042, True, "Maria Lopez")
    assert call.postal == "7012"
    assert call.caller_ids == ["steam:11000010a1b2c3d"]

    login = sample_event("EVENT_UNIT_LOGIN")
    assert isinstance(login, ev.UnitLoginEvent)
    assert login.unit.display_name == "1A-12 Jordan Reyes"
    assert login.unit.data.department == "LSPD"
    assert login.unit.status == 2

    edit = sample_event("EVENT_DISPATCH_EDIT")
    assert isinstance(edit, ev.DispatchEditEvent)
    assert edit.dispatch.idents == [57, 58]
    assert edit.dispatch.primary == 57
    assert edit.dispatch.track_primary is True
    assert edit.event_origin_ident == 12

    record = sample_event("EVENT_RECORD_ADD")
    assert isinstance(record, ev.RecordAddEvent)
    assert [f.value for f in record.record.sections[0].fields] == ["Dale", "Whitfield"]

    tone = sample_event("EVENT_TONE")
    assert isinstance(tone, ev.ToneEvent)
    assert tone.play_tones_to[0].type == 3
    assert tone.play_tones_to[0].value == "LSFD"

    character = sample_event("EVENT_CHAR_SELECTED")
    assert isinstance(character, ev.CharacterSelectedEvent)
    assert character.id == "2451"


# ------------------------------------------------------------------------------------------------
# The README's ambiguity list, one case each


def _911(event: ev.PushEvent) -> ev.Emergency911Event:
    assert isinstance(event, ev.Emergency911Event)
    return event


AMBIGUITIES: list[tuple[str, str, Any, dict[str, Any] | None, dict[str, Any]]] = [
    # (id, type, data, envelope, expected attribute values)
    ("1-array-data-one-element", "EVENT_UNIT_PANIC", [{"identIds": [57], "isPanic": True}], None,
     {"ident_ids": [57], "is_panic": True}),
    ("2-status-scalar-identIds", "EVENT_UNIT_STATUS", {"identIds": 57, "status": 3}, None,
     {"ident_ids": [57], "status": 3}),
    ("2-status-units-shape", "EVENT_UNIT_STATUS",
     {"units": [{"id": 57, "status": 4, "data": {"unitNum": "1A-12"}}, {"id": "58", "status": "1"}]}, None,
     {"ident_ids": [57, 58]}),
    ("4-bodycam-heading-name", "TOGGLE_BODYCAM", {"ident": "1", "state": True}, None,
     {"ident": 1, "state": True, "canonical_type": "EVENT_DISPATCH_TOGGLE_BODYCAM"}),
    ("5-attach-single-ident", "EVENT_DISPATCH_UNIT_ATTACH", {"ident": 58, "callId": 311}, None,
     {"idents": [58], "call_id": 311}),
    ("5-detach-idents-list", "EVENT_DISPATCH_UNIT_DETACH", {"idents": [58, 59], "callId": 311}, None,
     {"idents": [58, 59]}),
    ("5-attach-both-forms-merge", "EVENT_DISPATCH_UNIT_ATTACH", {"ident": 60, "idents": [58, 60], "callId": 1},
     None, {"idents": [58, 60]}),
    ("5-legacy-attach-name", "EVENT_UNIT_ATTACH", {"idents": [58], "callId": 311}, None,
     {"idents": [58], "canonical_type": "EVENT_DISPATCH_UNIT_ATTACH", "event_type": "EVENT_UNIT_ATTACH"}),
    ("5-legacy-detach-name", "EVENT_UNIT_DETACH", {"ident": 58, "callId": 311}, None,
     {"idents": [58], "canonical_type": "EVENT_DISPATCH_UNIT_DETACH"}),
    ("5-panic-legacy-identId", "EVENT_UNIT_PANIC", {"identId": 57, "isPanic": False}, None,
     {"ident_ids": [57], "is_panic": False}),
    ("5-remove-911-legacy-callId", "EVENT_REMOVE_911", {"callId": 1042}, None, {"call_ids": [1042]}),
    ("5-closed-legacy-callId", "EVENT_DISPATCH_CLOSED", {"callId": "311"}, None, {"call_ids": [311]}),
    ("8-group-add-ids-at-envelope-top", "EVENT_UNIT_GROUP_ADD", {"groupName": "Ladder 61"},
     {"type": "EVENT_UNIT_GROUP_ADD", "identId": 57, "data": {"groupName": "Ladder 61"}},
     {"ident_ids": [57], "group_name": "Ladder 61"}),
    ("8-group-add-idents-at-envelope-top", "EVENT_UNIT_GROUP_ADD", {"groupName": "Ladder 61"},
     {"identIds": [57, "58"]}, {"ident_ids": [57, 58]}),
    ("8-group-add-data-wins-over-envelope", "EVENT_UNIT_GROUP_ADD", {"identId": 57, "groupName": "L"},
     {"identId": 99}, {"ident_ids": [57]}),
    ("15-numbers-as-strings", "EVENT_UNIT_STATUS", {"identIds": ["57", " 58 "], "status": "3"}, None,
     {"ident_ids": [57, 58], "status": 3}),
    ("15-float-ids", "EVENT_DISPATCH_NOTE", {"callId": 311.0, "note": "x"}, None, {"call_id": 311}),
    ("logout-page-name", "EVENT_UNIT_LOGOUT", {"identId": "57"}, None, {"ident_id": 57}),
    ("type-is-upper-cased", "event_unit_logout", {"identId": 57}, None, {"event_type": "EVENT_UNIT_LOGOUT"}),
    ("extra-fields-ignored", "EVENT_UNIT_LOGOUT", {"identId": 57, "surprise": {"deep": [1]}, "x": None}, None,
     {"ident_id": 57}),
    ("undocumented-unit-update", "EVENT_UNIT_UPDATE", {"units": [{"id": "57", "status": 2}]}, None, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("type_", "data", "envelope", "expected"),
    [case[1:] for case in AMBIGUITIES],
    ids=[case[0] for case in AMBIGUITIES],
)
def test_ambiguity_is_read_leniently(
    type_: str, data: Any, envelope: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    event = parse_one(type_, data, envelope)
    for name, value in expected.items():
        assert getattr(event, name) == value, name


def test_1_array_data_gives_one_event_per_element() -> None:
    outcome = parse_event(
        "EVENT_911",
        [{"call": {"callId": 1, "caller": "A"}}, {"call": {"callId": 2, "caller": "B"}}],
    )
    assert [_911(event).call.call_id for event in outcome.events] == [1, 2]


def test_2_status_units_shape_keeps_each_units_own_status() -> None:
    event = parse_one("EVENT_UNIT_STATUS", {"units": [{"id": 57, "status": 4}, {"id": 58}], "status": 1})
    assert isinstance(event, ev.UnitStatusEvent)
    assert event.unit_statuses() == [(57, 4), (58, 1)]
    scalar = parse_one("EVENT_UNIT_STATUS", {"identIds": 57, "status": 3})
    assert isinstance(scalar, ev.UnitStatusEvent)
    assert scalar.unit_statuses() == [(57, 3)]


def test_3_unit_api_ids_from_either_shape_merge() -> None:
    login = parse_one(
        "EVENT_UNIT_LOGIN",
        {
            "unit": {
                "id": 57,
                "data": {"apiId1": "steam:1", "apiId2": "discord:2", "apiIds": ["steam:1", "fivem:3"]},
            }
        },
    )
    assert isinstance(login, ev.UnitLoginEvent)
    assert login.unit.data.api_ids == ["steam:1", "fivem:3", "discord:2"]


def test_4_bodycam_type_names_all_map_to_one_model() -> None:
    for name in ("EVENT_DISPATCH_TOGGLE_BODYCAM", "EVENT_TOGGLE_BODYCAM", "TOGGLE_BODYCAM"):
        assert isinstance(parse_one(name, {"ident": 57, "state": "true"}), ev.DispatchBodycamEvent)


@pytest.mark.parametrize(
    "data",
    [
        {"call": {"callId": 1042, "isEmergency": True, "metaData": {"postal": "7012"}}},
        {"call": {"callId": 1042, "isEmergency": True}, "metaData": {"postal": "7012"}},
        {"callId": 1042, "isEmergency": True, "metaData": {"postal": "7012"}},
    ],
    ids=["6-metaData-inside-call", "6-metaData-beside-call", "older-flat-shape"],
)
def test_6_911_metadata_inside_or_beside_call_and_flat_shape(data: dict[str, Any]) -> None:
    event = _911(parse_one("EVENT_911", data))
    assert event.call.call_id == 1042
    assert event.call.is_emergency is True
    assert event.postal == "7012"


def test_6_metadata_inside_call_wins_over_beside() -> None:
    event = _911(
        parse_one(
            "EVENT_911", {"call": {"callId": 1, "metaData": {"postal": "A"}}, "metaData": {"postal": "B"}}
        )
    )
    assert event.postal == "A"


@pytest.mark.parametrize(
    ("data", "emergency"),
    [
        ({"call": {"callId": 1, "emergency": True}}, True),
        ({"call": {"callId": 1, "emergency": "true"}}, True),
        ({"call": {"callId": 1, "isEmergency": False, "emergency": True}}, False),
        ({"call": {"callId": 1}}, False),
        ({"call": {"callId": 1, "isEmergency": 1}}, True),
    ],
    ids=["emergency-flag", "emergency-string", "isEmergency-wins", "absent-is-civil", "numeric-flag"],
)
def test_6_emergency_flag_from_either_name(data: dict[str, Any], emergency: bool) -> None:
    assert _911(parse_one("EVENT_911", data)).call.is_emergency is emergency


@pytest.mark.parametrize(
    "callers",
    [
        {"apiIds": ["steam:1", "discord:2"]},
        {"identities": ["steam:1", "discord:2"]},
        {"communityUserIds": ["steam:1", "discord:2"]},
        {"apiIds": "steam:1", "identities": ["discord:2", "steam:1"]},
    ],
    ids=["apiIds", "identities", "communityUserIds", "mixed-and-scalar"],
)
def test_6_caller_list_under_any_name(callers: dict[str, Any]) -> None:
    event = _911(parse_one("EVENT_911", {"call": {"callId": 1}, **callers}))
    assert event.caller_ids == ["steam:1", "discord:2"]


@pytest.mark.parametrize(
    "callout",
    [
        {"calloutLocations": [{"x": 215.4, "y": -810.2, "z": 0}]},
        {"data": {"CalloutLocations": [{"x": "215.4", "y": "-810.2", "z": 0}]}},
    ],
    ids=["docs-shape", "7-fivem-ers-shape"],
)
def test_7_callout_locations_in_either_place(callout: dict[str, Any]) -> None:
    event = parse_one("EVENT_NEW_CALLOUT", {"callout": callout})
    assert isinstance(event, ev.NewCalloutEvent)
    location = event.callout.callout_locations[0]
    assert (location.x, location.y) == (215.4, -810.2)


@pytest.mark.parametrize(
    ("notes", "contents"),
    [
        ("", []),
        (None, []),
        ([], []),
        ("Suspect fled north", ["Suspect fled north"]),
        ([{"label": "1A-12", "content": "one"}, "two"], ["one", "two"]),
        ({"content": "lone object"}, ["lone object"]),
        ([None, 5, {"content": "ok"}, "   "], ["5", "ok"]),
    ],
    ids=[
        "9-empty-string",
        "null",
        "empty-list",
        "9-bare-string",
        "9-list-mixed",
        "single-object",
        "junk-items",
    ],
)
def test_9_dispatch_notes_in_any_shape(notes: Any, contents: list[str]) -> None:
    event = parse_one("EVENT_DISPATCH_NEW", {"dispatch": {"callId": 1, "notes": notes}})
    assert isinstance(event, ev.DispatchNewEvent)
    assert [note.content for note in event.dispatch.notes] == contents


@pytest.mark.parametrize(
    ("note", "content", "label"),
    [
        (
            {"time": "21:14:05", "label": "1A-12", "type": "text", "content": "In custody"},
            "In custody",
            "1A-12",
        ),
        ("In custody", "In custody", ""),
        (None, "", ""),
        (["weird"], "", ""),
    ],
    ids=["object", "9-bare-string", "null", "list"],
)
def test_9_single_note_as_object_or_string(note: Any, content: str, label: str) -> None:
    event = parse_one("EVENT_DISPATCH_NOTE", {"callId": 311, "note": note})
    assert isinstance(event, ev.DispatchNoteEvent)
    assert (event.note.content, event.note.label) == (content, label)


def test_dispatch_flat_shape_and_zero_primary() -> None:
    event = parse_one("EVENT_DISPATCH_EDIT", {"callId": "311", "title": "Stop", "primary": 0, "idents": "57"})
    assert isinstance(event, ev.DispatchEditEvent)
    assert (event.dispatch.call_id, event.dispatch.title) == (311, "Stop")
    assert event.dispatch.primary is None
    assert event.dispatch.idents == [57]


def test_get_logs_is_recognised_and_ignored() -> None:
    outcome = parse_event("GET_LOGS", None, {"type": "GET_LOGS", "logKey": "abc"})
    assert outcome.ignored and not outcome.unknown and not outcome.events and not outcome.invalid


def test_a_printed_record_is_recognised_and_ignored() -> None:
    outcome = parse_event("EVENT_PRINT_RECORD", {"identId": 57, "url": "https://x/y.pdf"})
    assert outcome.ignored and not outcome.unknown and not outcome.events and not outcome.invalid


def test_unknown_type_is_flagged_not_parsed() -> None:
    outcome = parse_event("EVENT_SOMETHING_NEW", {"a": 1})
    assert outcome.unknown and not outcome.events and not outcome.invalid
    assert outcome.event_type == "EVENT_SOMETHING_NEW"


@pytest.mark.parametrize("data", [None, 5, "text", True, 1.5], ids=["null", "int", "str", "bool", "float"])
def test_data_missing_or_wrong_kind_gives_no_events(data: Any) -> None:
    outcome = parse_event("EVENT_911", data)
    assert outcome.events == ()
    assert not outcome.unknown


def test_missing_data_is_not_reported_invalid_but_wrong_kind_is() -> None:
    assert parse_event("EVENT_911", None).invalid == ()
    assert parse_event("EVENT_911", "text").invalid_count == 1


def test_invalid_elements_are_reported_with_index_and_reason_and_good_ones_kept() -> None:
    outcome = parse_event(
        "EVENT_DISPATCH_NOTE",
        [{"callId": 1, "note": "a"}, {"note": "no call id"}, "junk", {"callId": "abc", "note": "b"}],
    )
    assert [event.call_id for event in outcome.events if isinstance(event, ev.DispatchNoteEvent)] == [1]
    assert [item.index for item in outcome.invalid] == [1, 2, 3]
    assert "callId" in outcome.invalid[0].reason or "call_id" in outcome.invalid[0].reason
    assert outcome.invalid_count == 3


def test_invalid_reason_never_quotes_the_input() -> None:
    secret_looking = "SECRET-VALUE-1234567890"
    outcome = parse_event("EVENT_DISPATCH_NOTE", {"callId": secret_looking})
    assert outcome.invalid_count == 1
    assert secret_looking not in outcome.invalid[0].reason


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("EVENT_911", {"call": {"caller": "no id"}}),
        ("EVENT_911", {"call": "a string"}),
        ("EVENT_UNIT_LOGIN", {"unit": {"status": 2}}),
        ("EVENT_UNIT_LOGOUT", {}),
        ("EVENT_COMMUNITY_LINK_VERIFIED", {"communityUserId": "  "}),
        ("EVENT_DISPATCH_TOGGLE_BODYCAM", {"state": True}),
        ("EVENT_RECORD_ADD", {"record": None}),
    ],
)
def test_payloads_without_their_key_fields_are_invalid(type_: str, data: Any) -> None:
    outcome = parse_event(type_, data)
    assert outcome.events == ()
    assert outcome.invalid_count == 1


def test_ids_out_of_int64_range_or_not_finite_are_not_ids() -> None:
    event = parse_one("EVENT_UNIT_STATUS", {"identIds": [57, 2**80, "x", None, 57], "status": "inf"})
    assert isinstance(event, ev.UnitStatusEvent)
    assert (event.ident_ids, event.status) == ([57], None)


def test_callout_coordinates_never_hold_nan() -> None:
    event = parse_one(
        "EVENT_NEW_CALLOUT", {"callout": {"calloutLocations": [{"x": "NaN", "y": 1e999, "z": 3}]}}
    )
    assert isinstance(event, ev.NewCalloutEvent)
    location = event.callout.callout_locations[0]
    assert (location.x, location.y, location.z) == (None, None, 3.0)


# ------------------------------------------------------------------------------------------------
# Hostile input: parse_event never raises


def _chain(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"call": value, "dispatch": [{"callId": 1}]}
    return value


def _shared(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"call": value, "dispatch": [value]}
    return value


WEIRD_DATA: list[Any] = [
    None,
    0,
    -1,
    10**100,
    math.nan,
    math.inf,
    True,
    "",
    "x" * 200_000,
    "\ud800",
    b"bytes",
    object(),
    {1, 2},
    [],
    [None],
    [[[]]],
    [1, "a", {}, None, []],
    {},
    {"call": None},
    {"call": "x"},
    {"call": []},
    {"call": {"callId": {"nested": [[[{}]]]}}},
    {"call": {"callId": "\udfff", "caller": "\ud83d"}},
    {"callId": [1, 2], "callIds": {"a": 1}, "identIds": {"x": 1}, "ident": [[57]], "idents": "abc"},
    {"unit": {"id": 1, "data": "string"}, "units": "nope"},
    {"units": [None, 1, {"id": None}, {"id": "x"}, {"id": 5, "data": []}]},
    {"dispatch": {"callId": 1, "notes": {"content": {"deep": 1}}, "idents": [None, "1", 2.5]}},
    {"record": {"sections": [None, {"fields": [None, {"value": {"a": 1}}, {"value": [1, "b", None]}]}]}},
    {"signData": "x", "playTonesTo": [1, None], "callout": [], "locations": "a", "colors": {"a": 1}},
    {"note": {"content": ["a", "b"]}, "callId": 1},
    {"\ud800key": "\udc00value", "communityUserId": "\ud800"},
    _chain(5),
    _chain(5_000),
]


@pytest.mark.parametrize("type_", [*ev.EVENT_MODELS, "GET_LOGS", "EVENT_NOPE", ""])
def test_parse_event_never_raises_and_output_always_encodes(type_: str) -> None:
    for data in WEIRD_DATA:
        for shaped in (data, [data]):
            outcome = parse_event(type_, shaped, {"type": type_, "identId": "\ud800", "data": None})
            for event in outcome.events:
                json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
            assert all(isinstance(item.reason, str) for item in outcome.invalid)


@pytest.mark.parametrize(
    "type_", [None, 5, b"EVENT_911", ["EVENT_911"], "\ud800", "x" * 100_000, " event_911 "]
)
def test_parse_event_survives_odd_type_values(type_: Any) -> None:
    outcome = parse_event(type_, {"call": {"callId": 1}})
    assert isinstance(outcome, ev.ParseOutcome)
    if type_ == " event_911 ":
        assert len(outcome.events) == 1


def test_shared_references_do_not_explode_the_walk() -> None:
    # 2**60 paths through 60 shared levels: only a bounded walk finishes.
    outcome = parse_event("EVENT_911", [_shared(60)], {"identIds": _shared(60)})
    assert outcome.events == ()
    assert outcome.invalid_count == 1


def test_parse_event_survives_odd_envelopes() -> None:
    for envelope in (None, {}, {"identId": object()}, {"identIds": [[["x"]]]}, {1: 2}):
        outcome = parse_event("EVENT_UNIT_GROUP_ADD", {"groupName": "G"}, envelope)  # type: ignore[arg-type]
        assert len(outcome.events) == 1


def test_lone_surrogates_are_replaced_everywhere() -> None:
    event = parse_one(
        "EVENT_911",
        {
            "call": {"callId": 1, "caller": "Ma\ud800ria", "location": "A\udfffB"},
            "metaData": {"k\ud800": "v\udc00"},
        },
    )
    call = _911(event)
    assert call.call.caller == "Ma\ufffdria"
    assert call.call.location == "A\ufffdB"
    assert call.metadata == {"k\ufffd": "v\ufffd"}
    event.model_dump_json()


def test_valid_surrogate_pairs_become_the_character() -> None:
    event = _911(parse_one("EVENT_911", {"call": {"callId": 1, "caller": "\ud83d\ude00 Maria"}}))
    assert event.call.caller == "😀 Maria"


def test_unicode_and_emoji_round_trip_unchanged() -> None:
    text = "Zoë 🚓 مرحبا 日本語 👩🏽‍🚒 🇺🇸 e\u0301"
    event = _911(parse_one("EVENT_911", {"call": {"callId": 1, "caller": text, "description": text}}))
    assert event.call.caller == text
    assert event.call.description == text


def test_models_are_frozen() -> None:
    event = sample_event("EVENT_UNIT_LOGOUT")
    with pytest.raises(Exception, match="frozen"):
        event.ident_id = 5  # type: ignore[misc]


def test_a_pushed_payload_cannot_set_the_local_pressed_by_label() -> None:
    outcome = parse_event("EVENT_UNIT_PANIC", {"identIds": [], "isPanic": True, "pressed_by": "@everyone"})
    [event] = outcome.events
    assert event.pressed_by == ""
