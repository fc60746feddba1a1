"""Embeds for every push event: golden files, urgency colours, names, limits, and injection safety."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.cad import events as ev
from bot.formatting import limits
from bot.formatting.context import Colour, FormatContext
from bot.formatting.events import FORMATTERS, format_event
from tests.formatting.golden import assert_matches_golden
from tests.formatting.samples import SAMPLE_ENVELOPES, make_context, parse_one

# Variants that change what users see (beyond the contract's one example per type).
VARIANTS: dict[str, tuple[str, Any]] = {
    "EVENT_911-civil": (
        "EVENT_911",
        {"call": {"callId": 1043, "isEmergency": False, "caller": "Dale Whitfield", "location": "Vinewood Blvd",
                  "description": "Loud music next door"}},
    ),
    "EVENT_REMOVE_911-several": ("EVENT_REMOVE_911", {"callIds": [1042, 1043]}),
    "EVENT_UNIT_PANIC-cleared": ("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": False}),
    "EVENT_UNIT_PANIC-unknown-unit": ("EVENT_UNIT_PANIC", {"identIds": [99], "isPanic": True}),
    "EVENT_UNIT_PANIC-several": ("EVENT_UNIT_PANIC", {"identIds": [57, 58, 99], "isPanic": True}),
    "EVENT_UNIT_STATUS-units-shape": (
        "EVENT_UNIT_STATUS",
        {"units": [{"id": 57, "status": 4, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}},
                   {"id": 99, "status": 7}]},
    ),
    "EVENT_DISPATCH_NEW-with-notes": (
        "EVENT_DISPATCH_NEW",
        {"eventOriginIdent": 12, "dispatch": {
            "callId": 312, "origin": 1, "status": 0, "priority": 3, "block": "21", "address": "Vespucci Blvd",
            "postal": "", "title": "", "code": "10-50 Vehicle collision", "description": "",
            "notes": [{"time": "21:01:00", "label": "DISP-1", "content": "Caller reports minor damage"},
                      "Tow requested"],
            "idents": [57, 99], "primary": 99}},
    ),
    "EVENT_DISPATCH_CLOSED-several": ("EVENT_DISPATCH_CLOSED", {"callIds": [311, 312]}),
    "EVENT_DISPATCH_TOGGLE_BODYCAM-off": ("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": False}),
    "EVENT_STATION_ALERT-audio": (
        "EVENT_STATION_ALERT",
        {"locations": [{"name": "Fire Station 7", "open": ["Bay 1"], "close": ["Bay 2"]}, {"name": "Station 8"}],
         "message": "UklGR" + "A" * 400, "colors": [], "tone": ""},
    ),
    "EVENT_TONE-mixed-targets": (
        "EVENT_TONE",
        {"url": "https://tones.example/alert.mp3",
         "playTonesTo": [{"type": 0}, {"type": 1, "value": 311}, {"type": 5, "value": 57}, {"type": 6, "label": "Ladder"}]},
    ),
}  # fmt: skip

GOLDEN_CASES: dict[str, tuple[str, Any]] = {
    **{name: (name, envelope["data"]) for name, envelope in SAMPLE_ENVELOPES.items()},
    **VARIANTS,
}


def render(type_: str, data: Any, ctx: FormatContext | None = None) -> dict[str, Any]:
    embed = format_event(parse_one(type_, data), ctx or make_context())
    assert embed is not None
    return embed


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_golden(name: str) -> None:
    type_, data = GOLDEN_CASES[name]
    assert_matches_golden(f"events/{name}", render(type_, data))


def test_every_event_class_has_a_formatter() -> None:
    assert set(FORMATTERS) == set(ev.EVENT_CLASSES)


# ------------------------------------------------------------------------------------------------
# What users must be able to rely on


def test_panic_is_red_and_names_the_unit() -> None:
    embed = render("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": True})
    assert embed["title"] == "🚨 PANIC — 1A-12 Jordan Reyes"
    assert embed["color"] == Colour.RED


def test_panic_cleared_does_not_look_like_a_panic() -> None:
    embed = render("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": False})
    assert embed["color"] in (Colour.GREEN, Colour.GREY)
    assert "PANIC" not in embed["title"]
    assert "🚨" not in json.dumps(embed, ensure_ascii=False)


def test_emergency_911_is_red_and_civil_is_amber() -> None:
    emergency = render("EVENT_911", {"call": {"callId": 1042, "isEmergency": True}})
    civil = render("EVENT_911", {"call": {"callId": 1043, "isEmergency": False}})
    assert (emergency["title"], emergency["color"]) == ("🚨 911 #1042 — EMERGENCY", Colour.RED)
    assert civil["color"] == Colour.AMBER
    assert "EMERGENCY" not in civil["title"]


@pytest.mark.parametrize(
    ("priority", "colour"),
    [(1, Colour.PRIORITY[1]), (2, Colour.PRIORITY[2]), (3, Colour.PRIORITY[3]), (None, Colour.DISPATCH)],
)
def test_dispatch_colour_follows_priority(priority: int | None, colour: int) -> None:
    embed = render("EVENT_DISPATCH_NEW", {"dispatch": {"callId": 1, "priority": priority}})
    assert embed["color"] == colour


def test_unknown_units_are_numbered_and_known_ones_named() -> None:
    embed = render("EVENT_DISPATCH_UNIT_ATTACH", {"idents": [57, 404], "callId": 1})
    assert embed["description"] == "1A-12 Jordan Reyes\nUnit #404"


def test_status_labels_default_community_override_and_code_fallback() -> None:
    assert render("EVENT_UNIT_STATUS", {"identIds": [57], "status": 4})["title"].endswith("On scene")
    custom = make_context(status_labels={3: "Responding"})
    assert render("EVENT_UNIT_STATUS", {"identIds": [57], "status": 3}, custom)["title"].endswith(
        "Responding"
    )
    assert render("EVENT_UNIT_STATUS", {"identIds": [57], "status": 7})["title"].endswith("Code 7")


def test_call_codes_the_table_does_not_know_are_shown_by_number() -> None:
    # The same "Code 7" as unknown unit statuses (these fields used to be left out).
    embed = render("EVENT_DISPATCH_NEW", {"dispatch": {"callId": 1, "status": 7, "origin": 9, "priority": 5}})
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (fields["Status"], fields["Origin"], fields["Priority"]) == ("Code 7", "Code 9", "P5")


def test_footer_names_the_community_and_timestamp_is_context_time() -> None:
    embed = render("EVENT_UNIT_LOGOUT", {"identId": 57}, make_context(community_label="Blaine County RP"))
    assert embed["footer"] == {"text": "Blaine County RP"}
    assert embed["timestamp"] == "2025-03-14T21:14:05+00:00"
    assert render("EVENT_UNIT_LOGOUT", {"identId": 57}, make_context(community_label=""))["footer"]["text"]


def test_events_with_nothing_to_show_give_none() -> None:
    ctx = make_context()
    for type_, data in [
        ("EVENT_REMOVE_911", {}),
        ("EVENT_DISPATCH_CLOSED", {}),
        ("EVENT_UNIT_STATUS", {"status": 3}),
        ("EVENT_UNIT_UPDATE", {"units": []}),
    ]:
        assert format_event(parse_one(type_, data), ctx) is None


def test_unregistered_event_class_gives_none() -> None:
    class Mystery(ev.PushEvent):
        EVENT_TYPES = ("EVENT_MYSTERY",)

    assert format_event(Mystery(), make_context()) is None


# ------------------------------------------------------------------------------------------------
# Never None/null, always within limits — for sparse payloads too

SPARSE: dict[str, Any] = {
    "EVENT_911": {"call": {"callId": 1}},
    "EVENT_UNIT_LOGIN": {"unit": {"id": 1}},
    "EVENT_UNIT_LOGOUT": {"identId": 1},
    "EVENT_DISPATCH_NEW": {"dispatch": {"callId": 1}},
    "EVENT_DISPATCH_EDIT": {"dispatch": {"callId": 1}},
    "EVENT_DISPATCH_NOTE": {"callId": 1},
    "EVENT_DISPATCH_UNIT_ATTACH": {"callId": 1},
    "EVENT_DISPATCH_UNIT_DETACH": {"callId": 1},
    "EVENT_DISPATCH_TOGGLE_BODYCAM": {"ident": 1},
    "EVENT_RECORD_ADD": {"record": {}},
    "EVENT_RECORD_EDIT": {"record": {}},
    "EVENT_RECORD_REMOVE": {"record": {}},
    "EVENT_COMMUNITY_LINK_VERIFIED": {"communityUserId": "x"},
    "EVENT_UNIT_UPDATE": {"units": [{"id": 1}]},
}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def assert_clean(embed: dict[str, Any]) -> None:
    assert None not in _leaves(embed), embed
    for text in _strings(embed):
        assert text.strip(), embed
        assert text.strip().lower() not in ("none", "null", "undefined"), embed
        assert "None" not in text.split(), embed
    assert embed == limits.clamp_embed(embed)


@pytest.mark.parametrize("type_", [name for name in SAMPLE_ENVELOPES])
def test_sparse_payloads_never_print_none_or_null(type_: str) -> None:
    event = parse_one(type_, SPARSE.get(type_, {}))
    embed = format_event(event, make_context(unit_names={}))
    if embed is not None:
        assert_clean(embed)


def test_huge_text_in_every_field_stays_within_limits() -> None:
    huge = "🚓 long text " * 2000
    for name, envelope in SAMPLE_ENVELOPES.items():
        data = _replace_strings(envelope["data"], lambda text: huge)
        if name == "EVENT_CHAR_SELECTED":
            data["id"] = 2451
        embed = format_event(parse_one(envelope["type"], data), make_context())
        assert embed is not None
        assert embed == limits.clamp_embed(embed)
        assert limits.embed_size(embed) <= limits.EMBED_TOTAL_LIMIT


def test_many_record_sections_and_units_stay_within_limits() -> None:
    record = {
        "record": {
            "id": 1,
            "name": "Report",
            "sections": [
                {
                    "label": f"Section {i}",
                    "fields": [{"label": f"F{j}", "value": "v" * 90} for j in range(20)],
                }
                for i in range(40)
            ],
        }
    }
    embed = render("EVENT_RECORD_ADD", record)
    assert 1 <= len(embed["fields"]) <= limits.FIELD_COUNT_LIMIT
    assert limits.embed_size(embed) <= limits.EMBED_TOTAL_LIMIT
    units = render("EVENT_DISPATCH_NEW", {"dispatch": {"callId": 1, "idents": list(range(1, 200))}})
    unit_field = next(field for field in units["fields"] if field["name"] == "Units")
    assert unit_field["value"].endswith("+179 more")


# ------------------------------------------------------------------------------------------------
# Injection: CAD text in any field must never ping, link or hide

ATTACK = "@everyone <@&1> <@2> <#3> </ban:4> [x](https://evil.example) ||hide|| @here"
LIVE = [
    re.compile(r"@(everyone|here)", re.IGNORECASE),
    re.compile(r"<[@#/]"),
    re.compile(r"(?<!\\)\]\("),  # a masked link's "](" that is not escaped
    re.compile(r"(?<!\\)\|\|"),  # an unescaped spoiler
]


def _replace_strings(value: Any, replace: Any) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {key: _replace_strings(item, replace) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_strings(item, replace) for item in value]
    return value


def assert_no_live_markup(embed: dict[str, Any]) -> None:
    for text in _strings(embed):
        for pattern in LIVE:
            assert not pattern.search(text), (pattern.pattern, text)


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_injection_in_every_text_field_is_neutralised(name: str) -> None:
    type_, data = GOLDEN_CASES[name]
    attacked = _replace_strings(data, lambda text: f"{text} {ATTACK}")
    hostile_names = {ident: f"Unit {ident} {ATTACK}" for ident in (12, 57, 58, 61, 99)}
    ctx = make_context(
        community_label=f"RP {ATTACK}",
        unit_names=hostile_names,
        status_labels={3: f"EN {ATTACK}", 4: ATTACK},
    )
    embed = format_event(parse_one(type_, attacked), ctx)
    assert embed is not None
    assert_no_live_markup(embed)


def test_injected_text_is_still_readable() -> None:
    embed = render("EVENT_911", {"call": {"callId": 1, "caller": "[x](https://evil.example) @everyone"}})
    caller = next(field for field in embed["fields"] if field["name"] == "Caller")["value"]
    assert "https://evil.example" in caller
    assert "everyone" in caller


def test_emoji_and_unicode_reach_the_embed_unchanged() -> None:
    text = "Zoë 🚓 مرحبا 日本語 👩🏽‍🚒 🇺🇸"
    embed = render(
        "EVENT_911", {"call": {"callId": 1, "caller": text, "description": text, "location": text}}
    )
    assert embed["description"] == text
    assert {field["value"] for field in embed["fields"]} == {text}
