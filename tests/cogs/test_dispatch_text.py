"""Pure pieces behind /dispatch: reply sentences, call-picker choices and the card buttons' JSON."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.cad.models import DispatchCall
from bot.cards.buttons import (
    CARD_BUTTON_TEMPLATE,
    card_button_id,
    card_button_label,
    card_button_style,
    dispatch_card_components,
    parse_card_button_id,
)
from bot.formatting import dispatch as replies


def call(call_id: int, title: str = "", address: str = "", **fields: Any) -> DispatchCall:
    return DispatchCall.model_validate({"callId": call_id, "title": title, "address": address, **fields})


# ---------------------------------------------------------------------------------------------- choices


def test_choice_name_is_number_title_and_address() -> None:
    assert (
        replies.call_choice_name(call(311, "Traffic Stop", "Legion Square"))
        == "#311 Traffic Stop — Legion Square"
    )
    assert replies.call_choice_name(call(4, code="10-71")) == "#4 10-71"
    assert replies.call_choice_name(call(5)) == "#5"


def test_choice_name_is_plain_one_line_text_within_100_characters() -> None:
    name = replies.call_choice_name(call(9, "Shots\nfired **now**\u202e", "x" * 200))

    assert name.startswith("#9 Shots fired **now** — xxx")  # Discord shows choice names without markdown
    assert "\n" not in name and "\u202e" not in name
    assert len(name) <= 100 and name.endswith("…")


def test_choices_match_every_typed_word_anywhere_in_the_call() -> None:
    calls = [
        call(7, "Traffic Stop", "Legion Square"),
        call(8, "Shots fired", "Grove St", code="10-71"),
        call(9, "Traffic collision", "Route 68", postal="7012"),
    ]

    assert [value for _, value in replies.call_choices(calls, "traffic")] == [9, 7]
    assert [value for _, value in replies.call_choices(calls, "TRAFFIC legion")] == [7]
    assert [value for _, value in replies.call_choices(calls, "10-71")] == [8]
    assert [value for _, value in replies.call_choices(calls, "7012")] == [9]
    assert replies.call_choices(calls, "nothing like it") == []


def test_a_hash_asks_for_call_numbers_only() -> None:
    calls = [call(8, "Stop", "Route 68"), call(68, "Fire", "Alta St"), call(681, "EMS", "Vinewood")]

    assert [value for _, value in replies.call_choices(calls, "#68")] == [681, 68]
    assert [value for _, value in replies.call_choices(calls, "68")] == [681, 68, 8]  # number matches first


def test_choices_skip_closed_calls_and_stop_at_25() -> None:
    calls = [call(number, f"Call {number}") for number in range(1, 41)]
    calls.append(call(99, "Closed one", status=2))

    choices = replies.call_choices(calls, "")

    assert len(choices) == replies.MAX_CHOICES == 25
    assert [value for _, value in choices[:3]] == [40, 39, 38]  # newest first
    assert 99 not in [value for _, value in choices]


# ---------------------------------------------------------------------------------------------- sentences


def test_created_names_who_was_attached_and_who_was_not() -> None:
    assert replies.dispatch_created(7, [], []) == "📟 Dispatch call **#7** created."
    assert replies.dispatch_created(7, ["1A-12 Jordan Reyes"], []) == (
        "📟 Dispatch call **#7** created with **1A-12 Jordan Reyes** attached."
    )
    assert replies.dispatch_created(7, ["A", "B"], ["C", "D"]) == (
        "📟 Dispatch call **#7** created with **A** and **B** attached. "
        "**C** and **D** have no unit on duty in the CAD, so nothing was attached for them."
    )


def test_names_are_neutralised_and_long_lists_summed_up() -> None:
    many = [f"U{number}" for number in range(8)]

    assert (
        replies.units_attached(3, ["@everyone *x*"])
        == "✅ **@\u200beveryone \\*x\\*** attached to call **#3**."
    )
    assert replies.units_attached(3, many) == (
        "✅ **U0**, **U1**, **U2**, **U3**, **U4** and 3 more attached to call **#3**."
    )


def test_detached_names_the_calls_when_known() -> None:
    assert replies.units_detached(["A"], [7]) == "✅ **A** detached from call **#7**."
    assert replies.units_detached(["A"], [7, 9]) == "✅ **A** detached from call **#7**, **#9**."
    assert replies.units_detached(["A"], []) == "✅ **A** detached from their call."


def test_refusals_speak_to_the_right_person() -> None:
    assert replies.no_unit_on_duty(None).startswith("You have no unit logged in")
    assert replies.no_unit_on_duty("officer") == "**officer** has no unit logged in to the CAD right now."
    assert replies.member_not_linked("<@1>") == (
        "**<\u200b@1>** hasn't linked a CAD account yet; they need to run /link first."
    )


# ---------------------------------------------------------------------------------------------- buttons


def test_button_ids_round_trip_through_the_template() -> None:
    for action in ("attach", "detach"):
        custom_id = card_button_id(action, 311)
        assert re.fullmatch(CARD_BUTTON_TEMPLATE, custom_id)
        assert parse_card_button_id(custom_id) == (action, 311)
    assert parse_card_button_id("cad:card:close:311") is None
    assert parse_card_button_id("cad:card:attach:") is None
    assert len(card_button_id("attach", 2**63)) <= 100


@pytest.mark.parametrize("call_id", [-1, -(2**63), 0, 2**63 - 1])
def test_any_call_id_the_cad_may_send_round_trips_through_the_template(call_id: int) -> None:
    for action in ("attach", "detach"):
        custom_id = card_button_id(action, call_id)
        assert re.fullmatch(CARD_BUTTON_TEMPLATE, custom_id)
        assert parse_card_button_id(custom_id) == (action, call_id)
        assert len(custom_id) <= 100
    assert parse_card_button_id("cad:card:attach:-") is None
    assert parse_card_button_id("cad:card:attach:--1") is None


def test_open_cards_get_one_row_of_two_buttons_and_closed_cards_none() -> None:
    assert dispatch_card_components(7, closed=False) == [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 3, "label": "Attach me", "custom_id": "cad:card:attach:7"},
                {"type": 2, "style": 2, "label": "Detach me", "custom_id": "cad:card:detach:7"},
            ],
        }
    ]
    assert dispatch_card_components(7, closed=True) == []
    assert (card_button_label("detach"), card_button_style("attach")) == ("Detach me", 3)
