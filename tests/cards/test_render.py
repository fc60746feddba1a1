"""The live call cards as users see them: status line, units, bodycam, notes kept inside the limits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.cards import state as cards
from bot.cards.render import render_911_card, render_dispatch_card, render_panic_card
from bot.cards.state import DispatchCardState, Emergency911CardState
from bot.formatting import limits
from bot.formatting.context import Colour
from bot.formatting.events import format_event
from tests.formatting.golden import assert_matches_golden
from tests.formatting.samples import make_context, parse_one, sample_event

T0 = datetime(2025, 3, 14, 21, 0, tzinfo=UTC)


def life_of_a_call() -> list[tuple[str, DispatchCardState]]:
    """The states of call #311 after each event of its life, named for the golden files."""
    steps: list[tuple[str, Any]] = [
        ("new", sample_event("EVENT_DISPATCH_NEW")),
        ("edit", sample_event("EVENT_DISPATCH_EDIT")),
        ("note", sample_event("EVENT_DISPATCH_NOTE")),
        ("attach", parse_one("EVENT_DISPATCH_UNIT_ATTACH", {"idents": [61], "callId": 311})),
        ("detach", parse_one("EVENT_DISPATCH_UNIT_DETACH", {"ident": 58, "callId": 311})),
        ("bodycam", parse_one("EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 57, "state": True})),
        ("closed", sample_event("EVENT_DISPATCH_CLOSED")),
    ]
    states = []
    state: DispatchCardState | None = None
    for minute, (name, event) in enumerate(steps):
        state = cards.apply_dispatch_event(state, event, now=T0 + timedelta(minutes=minute))
        assert state is not None
        states.append((name, state))
    return states


@pytest.mark.parametrize("step", range(7))
def test_dispatch_card_golden_through_the_calls_life(step: int) -> None:
    name, state = life_of_a_call()[step]
    assert_matches_golden(f"cards/dispatch-{step + 1}-{name}", render_dispatch_card(state, make_context()))


def test_911_card_goldens() -> None:
    active = cards.apply_911_event(None, sample_event("EVENT_911"), now=T0)
    assert active is not None
    assert_matches_golden("cards/911-emergency-active", render_911_card(active, make_context()))
    removed = cards.apply_911_event(active, sample_event("EVENT_REMOVE_911"), now=T0 + timedelta(minutes=3))
    assert removed is not None
    assert_matches_golden("cards/911-emergency-removed", render_911_card(removed, make_context()))
    civil = Emergency911CardState(call_id=1043, caller="Dale", location="Vinewood", updated_at=T0)
    assert_matches_golden("cards/911-civil-active", render_911_card(civil, make_context()))


def test_status_line_active_closed_removed() -> None:
    states = dict(life_of_a_call())
    ctx = make_context()
    assert render_dispatch_card(states["edit"], ctx)["description"].startswith("**Active** · P1")
    closed = render_dispatch_card(states["closed"], ctx)
    assert closed["description"].startswith("**Closed ✅**")
    assert closed["color"] == Colour.GREY
    pending = render_dispatch_card(DispatchCardState(call_id=1, status=0), ctx)
    assert pending["description"].startswith("**Pending**")
    removed = render_911_card(Emergency911CardState(call_id=1, is_emergency=True, removed=True), ctx)
    assert removed["description"].startswith("**Removed**")
    assert removed["color"] == Colour.GREY
    active = render_911_card(Emergency911CardState(call_id=1, is_emergency=True), ctx)
    assert active["description"] == "**Active**"
    assert active["color"] == Colour.RED


def _units_field(embed: dict[str, Any]) -> str:
    return next(field["value"] for field in embed["fields"] if field["name"] == "Units")


def test_units_show_names_primary_and_bodycam() -> None:
    state = DispatchCardState(call_id=1, attached=(57, 58, 404), primary=58, bodycam=(57, 999))
    assert _units_field(render_dispatch_card(state, make_context())) == (
        "1A-12 Jordan Reyes 📹\n1A-14 Sam Ortiz ★\nUnit #404"
    )
    assert _units_field(render_dispatch_card(DispatchCardState(call_id=1), make_context())) == "None attached"


def test_notes_newest_last() -> None:
    state = DispatchCardState(call_id=1)
    for index in range(3):
        state = cards.with_note(state, "DISP", f"note {index}", f"21:0{index}:00")
    description = render_dispatch_card(state, make_context())["description"]
    assert description.index("note 0") < description.index("note 1") < description.index("note 2")
    assert "earlier" not in description


def test_many_long_notes_drop_the_oldest_with_a_count_and_stay_within_limits() -> None:
    state = DispatchCardState(call_id=1, title="Pursuit", description="D" * 5000)
    total = 120
    for index in range(total):
        state = cards.with_note(state, "1A-12", f"#{index} " + "update " * 60, "21:00:00")
    embed = render_dispatch_card(state, make_context())
    description = embed["description"]
    assert limits.embed_size(embed) <= limits.EMBED_TOTAL_LIMIT
    assert len(description) <= limits.DESCRIPTION_LIMIT
    assert embed == limits.clamp_embed(embed)
    assert f"#{total - 1} " in description  # the newest note is always shown
    shown = len(re.findall(r"\*\*1A-12:\*\*", description))
    match = re.search(r"\((\d+) earlier notes\)", description)
    assert match is not None
    assert int(match.group(1)) + shown == total


def test_notes_budget_accounts_for_large_fields() -> None:
    names = {ident: "N" * 200 for ident in range(1, 30)}
    state = DispatchCardState(call_id=1, attached=tuple(range(1, 30)), address="A" * 1000, code="C" * 1000)
    for _ in range(60):
        state = cards.with_note(state, "L", "note " * 50, "21:00:00")
    embed = render_dispatch_card(state, make_context(unit_names=names))
    assert limits.embed_size(embed) <= limits.EMBED_TOTAL_LIMIT
    assert "earlier notes" in embed["description"]


def test_card_text_is_neutralised() -> None:
    attack = "@everyone <@&1> [x](https://evil.example)"
    state = DispatchCardState(
        call_id=1, title=attack, code=attack, address=attack, postal=attack, description=attack, block=attack
    )
    state = cards.with_note(state, attack, attack, attack)
    emergency = Emergency911CardState(
        call_id=2, caller=attack, location=attack, description=attack, postal=attack
    )
    ctx = make_context(unit_names={57: attack}, community_label=attack)
    for embed in (render_dispatch_card(state, ctx), render_911_card(emergency, ctx)):
        encoded = json.dumps(embed, ensure_ascii=False)
        assert "@everyone" not in encoded
        assert "<@&" not in encoded
        assert "[x](" not in encoded


def test_card_timestamp_is_the_last_change() -> None:
    state = DispatchCardState(call_id=1, updated_at=T0)
    assert render_dispatch_card(state, make_context())["timestamp"] == T0.isoformat()
    naive = DispatchCardState(call_id=1, updated_at=datetime(2025, 1, 1, 12, 0))
    assert render_dispatch_card(naive, make_context())["timestamp"] == "2025-01-01T12:00:00+00:00"
    assert (
        render_dispatch_card(DispatchCardState(call_id=1), make_context())["timestamp"]
        == make_context().timestamp
    )


# ------------------------------------------------------------------------------------------ /panic alerts


def test_a_panic_alert_reads_like_a_cad_panic_until_the_cad_refuses_it() -> None:
    ctx = make_context()
    pressed = cards.panic_alert(9001, is_panic=True, pressed_by="jreyes", now=T0)
    named = cards.with_units_named(pressed, [57], now=T0 + timedelta(seconds=1))
    as_pushed = format_event(parse_one("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": True}), ctx)
    assert as_pushed is not None

    shown = render_panic_card(named, ctx)
    assert shown["title"] == as_pushed["title"] == "🚨 PANIC — 1A-12 Jordan Reyes"
    assert shown["description"] == as_pushed["description"]
    assert shown["timestamp"] == T0.isoformat()  # when it was pressed, not when it was last amended
    assert render_panic_card(pressed, ctx)["title"] == "🚨 PANIC — jreyes"
    assert render_panic_card(cards.cad_confirmed(named), ctx) == shown

    refused = cards.cad_not_confirmed(named, "The CAD took too long to answer <@&1>.")
    lines = render_panic_card(refused, ctx)["description"].split("\n")
    assert lines == [
        as_pushed["description"],
        "⚠️ The CAD did not confirm: The CAD took too long to answer <\u200b@&1>.",
    ]


def test_a_cleared_panic_does_not_claim_the_cad_cleared_it() -> None:
    cleared = cards.cad_not_confirmed(cards.panic_alert(1, is_panic=False, pressed_by="jreyes"), "Down.")
    shown = render_panic_card(cleared, make_context())
    assert shown["title"] == "✅ Panic cleared — jreyes"
    assert shown["description"] == "The panic was cleared from Discord.\n⚠️ The CAD did not confirm: Down."


def test_only_a_confirmation_leaves_a_panic_alert_looking_the_same() -> None:
    pressed = cards.panic_alert(1, is_panic=True, pressed_by="jreyes", now=T0)
    assert not cards.shows_change(pressed, cards.cad_confirmed(pressed))
    assert cards.shows_change(pressed, cards.cad_not_confirmed(pressed, "Down."))
    assert cards.shows_change(pressed, cards.with_units_named(pressed, [57]))
    assert cards.with_units_named(pressed, []) is pressed
