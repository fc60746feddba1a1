"""Routing: every push event type goes to its category (legacy names like their current ones)."""

from __future__ import annotations

import pytest

from bot.push.routing import category_for
from bot.storage.models import Category
from tests.formatting.samples import SAMPLE_ENVELOPES, sample_event

ROUTES = {
    "EVENT_911": "911",
    "EVENT_REMOVE_911": "911",
    "EVENT_UNIT_PANIC": "panic",
    "EVENT_DISPATCH_NEW": "dispatch",
    "EVENT_DISPATCH_EDIT": "dispatch",
    "EVENT_DISPATCH_CLOSED": "dispatch",
    "EVENT_DISPATCH_NOTE": "dispatch",
    "EVENT_DISPATCH_UNIT_ATTACH": "dispatch",
    "EVENT_DISPATCH_UNIT_DETACH": "dispatch",
    "EVENT_DISPATCH_TOGGLE_BODYCAM": "dispatch",
    "EVENT_UNIT_LOGIN": "units",
    "EVENT_UNIT_LOGOUT": "units",
    "EVENT_UNIT_STATUS": "units",
    "EVENT_UNIT_GROUP_ADD": "units",
    "EVENT_UNIT_GROUP_REMOVE": "units",
    "EVENT_UNIT_GROUP_CHANGE_NAME": "units",
    "EVENT_UNIT_UPDATE": "units",
    "EVENT_RECORD_ADD": "records",
    "EVENT_RECORD_EDIT": "records",
    "EVENT_RECORD_REMOVE": "records",
    "EVENT_STREETSIGN_UPDATED": "other",
    "EVENT_TONE": "other",
    "EVENT_NEW_CALLOUT": "other",
    "EVENT_STATION_ALERT": "other",
    "EVENT_PAGER_REBORN": "other",
    "EVENT_CHAR_SELECTED": "other",
    "EVENT_COMMUNITY_LINK_VERIFIED": "other",
}


def test_routing_table_covers_every_sample() -> None:
    assert set(ROUTES) == set(SAMPLE_ENVELOPES)


@pytest.mark.parametrize(("type_", "category"), ROUTES.items())
def test_category_for_event_class_and_type_string(type_: str, category: str) -> None:
    event = sample_event(type_)
    assert category_for(event) == Category(category)
    assert category_for(type(event)) == Category(category)
    assert category_for(type_.lower()) == Category(category)


@pytest.mark.parametrize(
    ("type_", "category"),
    [("EVENT_UNIT_ATTACH", "dispatch"), ("EVENT_UNIT_DETACH", "dispatch"), ("TOGGLE_BODYCAM", "dispatch")],
)
def test_legacy_names_route_like_their_current_names(type_: str, category: str) -> None:
    assert category_for(type_) == Category(category)


def test_unknown_type_routes_to_other() -> None:
    assert category_for("EVENT_FROM_THE_FUTURE") == Category.OTHER
