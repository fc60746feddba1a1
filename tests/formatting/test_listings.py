"""Pure formatter tests for command replies: lookups, calls, units and blips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.cad.codes import RecordType
from bot.cad.models import (
    Blip,
    CallsSnapshot,
    CustomRecord,
    Unit,
)
from bot.formatting import listings
from bot.formatting.limits import EMBED_TOTAL_LIMIT, FIELD_COUNT_LIMIT, FIELD_VALUE_LIMIT, embed_size


def record(
    record_type: int | None,
    fields: dict[str, str],
    *,
    record_id: int | None = 1,
    name: str = "",
    previewed: bool = True,
    labels: dict[str, str] | None = None,
) -> CustomRecord:
    labels = labels or {}
    return CustomRecord.model_validate(
        {
            "id": record_id,
            "type": record_type,
            "recordTypeId": record_type,
            "name": name,
            "sections": [
                {
                    "label": "Information",
                    "fields": [
                        {
                            "uid": uid,
                            "label": labels.get(uid, uid.title()),
                            "value": value,
                            "isPreviewed": previewed,
                        }
                        for uid, value in fields.items()
                    ],
                }
            ],
        }
    )


def dumped(pages: list[dict[str, Any]]) -> str:
    return json.dumps(pages, ensure_ascii=False)


def assert_fits_discord(pages: list[dict[str, Any]]) -> None:
    for page in pages:
        assert embed_size(page) <= EMBED_TOTAL_LIMIT
        assert len(page.get("fields", [])) <= FIELD_COUNT_LIMIT
        assert all(len(field["value"]) <= FIELD_VALUE_LIMIT for field in page.get("fields", []))
    text = dumped(pages).lower()
    for leaked in ('"none"', "null", "none ", " none"):
        assert leaked not in text


# ---------------------------------------------------------------------------------------------- lookups


def test_records_are_ordered_characters_then_warrants_and_bolos_then_the_rest() -> None:
    given = [
        record(RecordType.LICENSE, {"first": "A"}, record_id=1),
        record(None, {"first": "Z"}, record_id=2),
        record(RecordType.BOLO, {"plate": "B"}, record_id=3),
        record(99, {"first": "Q"}, record_id=4),
        record(RecordType.VEHICLE_REGISTRATION, {"plate": "V"}, record_id=5),
        record(RecordType.WARRANT, {"first": "W"}, record_id=6),
        record(RecordType.CHARACTER, {"first": "C"}, record_id=7),
        record(RecordType.WARRANT, {"first": "W2"}, record_id=8),
    ]

    ordered = [r.id for r in listings.order_records(given)]

    assert ordered == [7, 6, 8, 3, 1, 5, 2, 4]  # the CAD's order is kept within a type


def test_key_fields_come_first_and_are_found_by_uid_or_label() -> None:
    warrant = record(
        RecordType.WARRANT,
        {
            "notes": "Seen near the docks",
            "first": "Dale",
            "last": "Whitfield",
            "mi": "J",
            "f_77": "Armed and dangerous",
            "warrant_status": "Active",
        },
        labels={"f_77": "Flags", "warrant_status": "Warrant Status"},
    )

    assert listings.record_key_fields(warrant) == [
        ("Name", "Dale J Whitfield"),
        ("Status", "Active"),
        ("Flags", "Armed and dangerous"),
        ("Notes", "Seen near the docks"),
    ]


def test_key_fields_skip_blanks_and_cap_the_extras() -> None:
    busy = record(
        RecordType.CHARACTER,
        {"first": "Ann", "last": "", "plate": " ", **{f"extra{n}": f"value {n}" for n in range(9)}},
    )
    hidden = record(RecordType.CHARACTER, {"dob": "1990-01-01"}, previewed=False)

    fields = listings.record_key_fields(busy)
    assert fields[0] == ("Name", "Ann")
    assert len(fields) == 1 + 4
    assert all(value.strip() for _label, value in fields)
    assert listings.record_key_fields(hidden) == []


def test_lookup_pages_paginate_with_footers_and_turn_red_for_warrants() -> None:
    records = [record(RecordType.CHARACTER, {"first": f"P{n}"}, record_id=n) for n in range(11)]
    records.append(record(RecordType.WARRANT, {"first": "W"}, record_id=99))

    pages = listings.lookup_pages(records, listings.name_query("Dale", "Whitfield"))

    assert [page["footer"]["text"] for page in pages] == [
        "Page 1/3 · 12 records",
        "Page 2/3 · 12 records",
        "Page 3/3 · 12 records",
    ]
    assert [len(page["fields"]) for page in pages] == [5, 5, 2]
    assert pages[0]["description"] == "11 Characters · 1 Warrant"
    assert pages[2]["fields"][-1]["name"] == "⚠️ Warrant #99"
    assert all(page["color"] == listings.Colour.RED for page in pages)
    assert_fits_discord(pages)


def test_a_single_page_has_no_page_number() -> None:
    pages = listings.lookup_pages([record(RecordType.LICENSE, {"first": "A"})], listings.plate_query("X"))

    assert pages[0]["footer"]["text"] == "1 record"
    assert pages[0]["color"] == listings.Colour.INFO


def test_no_records_gives_no_pages_and_a_clear_sentence() -> None:
    assert listings.lookup_pages([], "plate “X”") == []
    assert listings.no_records_message(listings.record_query(12)) == "No records found for record #12."


def test_records_with_nothing_known_never_show_none() -> None:
    bare = CustomRecord.model_validate({"id": None, "type": None, "name": None, "sections": None})
    pages = listings.lookup_pages([bare, record(None, {}, record_id=None)], "name “x”")

    assert pages[0]["fields"][0] == {"name": "Record", "value": "No details on this record.", "inline": False}
    assert_fits_discord(pages)


def test_community_template_names_are_used_as_the_heading() -> None:
    custom = record(RecordType.WARRANT, {"first": "A"}, record_id=5, name="Arrest Warrant (County)")

    field = listings.record_field(custom)

    assert field["name"] == "⚠️ Arrest Warrant (County) #5"


def test_huge_records_are_clamped_to_discord_limits() -> None:
    giant = [
        record(RecordType.CHARACTER, {f"f{n}": "x" * 3000 for n in range(8)}, record_id=i) for i in range(5)
    ]

    pages = listings.lookup_pages(giant, "name “x”")

    assert_fits_discord(pages)
    assert pages[0]["fields"][0]["value"].endswith("…")


def test_cad_and_member_text_is_neutralised() -> None:
    hostile = record(
        RecordType.CHARACTER,
        {"first": "@everyone", "last": "<@123>", "flags": "**bold** [x](http://evil)"},
        labels={"flags": "<@&9> Flags"},
    )

    pages = listings.lookup_pages([hostile], listings.name_query("@here", "`x`"))
    text = dumped(pages)

    assert "@everyone" not in text and "@here" not in text
    assert "<@123>" not in text and "<@&9>" not in text
    assert "\\\\*\\\\*bold\\\\*\\\\*" in text  # JSON doubles each escaping backslash
    assert "\\\\[x\\\\]" in text


def test_line_start_markdown_is_escaped_only_where_it_could_restyle() -> None:
    calls = CallsSnapshot.model_validate(
        {
            "activeCalls": [
                {
                    "callId": 1,
                    "status": 1,
                    "title": "# Loud title",
                    "address": "> quoted",
                    "description": "# header",
                }
            ]
        }
    )

    field = listings.calls_pages(calls)[0]["fields"][0]

    assert field["name"] == "Call #1 · # Loud title"  # mid-line: nothing to restyle, no stray backslash
    assert field["value"].splitlines() == ["📍 > quoted", "👮 No units attached", "\\# header"]


# ---------------------------------------------------------------------------------------------- calls


def test_calls_order_priority_then_911_emergencies_first() -> None:
    snapshot = CallsSnapshot.model_validate(
        {
            "activeCalls": [
                {"callId": 3, "title": "No priority", "priority": None},
                {"callId": 2, "title": "Low", "priority": 3, "idents": [1]},
                {"callId": 1, "title": "High", "priority": 1, "idents": [1, 2, 3], "postal": "7012"},
                {"callId": 4, "title": "Pending", "priority": 2, "status": 0},
                {"callId": 5, "title": "Closed", "status": 2},
            ],
            "emergencyCalls": [
                {"callId": 11, "isEmergency": False, "caller": "", "location": ""},
                {"callId": 10, "isEmergency": True, "caller": "Jane", "location": "Legion"},
            ],
        }
    )

    pages = listings.calls_pages(snapshot, per_page=4)
    fields = [field for page in pages for field in page["fields"]]
    names = [field["name"] for field in fields]

    assert names == [
        "Call #1 · P1 · High",
        "Call #4 · P2 · Pending",
        "Call #2 · P3 · Low",
        "Call #3 · No priority",
        "911 #10 · Emergency",
        "911 #11 · Civil",
    ]
    # A call whose status the CAD did not send shows none (it used to read as "Pending").
    assert fields[0]["value"] == "📍 Postal 7012\n👮 3 units attached"
    assert fields[1]["value"] == "📍 No location given\n👮 No units attached\nStatus: Pending"
    assert fields[5]["value"] == "**Caller:** Unknown\n**Location:** Not given"
    assert [page["footer"]["text"] for page in pages] == ["Page 1/2", "Page 2/2"]
    assert pages[0]["description"] == "4 dispatch calls · 2 open 911 calls"
    assert pages[0]["color"] == listings.Colour.RED
    assert_fits_discord(pages)


def test_no_calls_gives_no_pages() -> None:
    assert listings.calls_pages(CallsSnapshot()) == []
    assert (
        listings.calls_pages(CallsSnapshot.model_validate({"activeCalls": [{"callId": 1, "status": 2}]}))
        == []
    )


# ---------------------------------------------------------------------------------------------- units


def unit(ident: int, unit_num: str, name: str, status: int = 2, **extra: Any) -> Unit:
    return Unit.model_validate(
        {"id": ident, "status": status, "data": {"unitNum": unit_num, "name": name}, **extra}
    )


@pytest.mark.parametrize(
    ("code", "label"), [(0, "Unavailable"), (2, "Available"), (4, "On scene"), (7, "Code 7"), (12, "Code 12")]
)
def test_unit_status_labels_fall_back_to_code_numbers(code: int, label: str) -> None:
    # The same labels as the status picker and push embeds (bot.cad.codes).
    [page] = listings.units_pages([unit(1, "A-1", "Al", status=code)])
    assert page["description"] == f"**A-1 Al** — {label}"


def test_units_put_panics_first_then_sort_by_unit_number() -> None:
    units = [
        unit(1, "B-2", "Bea"),
        unit(2, "", "Nameless"),
        unit(3, "A-1", "Al", status=9, location="Legion"),
        unit(4, "C-3", "Cy", isPanic=True),
    ]

    [page] = listings.units_pages(units, age_s=3.4)

    assert page["description"].splitlines() == [
        "🚨 1 unit in panic",
        "",
        "🚨 **C-3 Cy** — Available · **PANIC**",
        "**A-1 Al** — Code 9 · Legion",
        "**B-2 Bea** — Available",
        "**Nameless** — Available",
    ]
    assert page["footer"]["text"] == "4 units · as of 3 s ago"
    assert page["color"] == listings.Colour.RED


def test_units_without_names_or_a_fresh_list() -> None:
    [page] = listings.units_pages([Unit.model_validate({"id": 12})], age_s=0.2)

    # No number or name: the one placeholder; no status sent: "Unknown" (it used to read as Unavailable).
    assert page["description"] == "**Unit #12** — Unknown"
    assert page["footer"]["text"] == "1 unit"
    assert page["color"] == listings.Colour.GREEN
    assert listings.units_pages([]) == []


def test_unit_lines_are_neutralised() -> None:
    line = listings.unit_line(unit(1, "@everyone", "<@1>", location="**x**"))

    assert "@everyone" not in line and "<@1>" not in line
    assert "\\*\\*x\\*\\*" in line


# ---------------------------------------------------------------------------------------------- blips


def test_blip_lines_and_numbers() -> None:
    blips = [
        Blip.model_validate({"id": 2, "coordinates": {"x": -0.001, "y": 1e5}, "subType": "hazard"}),
        Blip.model_validate(
            {"id": 1, "coordinates": {"x": 12.345, "y": 3}, "radius": 0, "color": "#ff0000", "icon": "cone"}
        ),
        Blip.model_validate({"id": 3, "tooltip": "@here"}),
    ]

    [page] = listings.blips_pages(blips)

    assert page["description"].splitlines() == [
        "**#1** Untitled blip — (12.35, 3) · radius 0 · #ff0000 · icon cone",
        "**#2** hazard — (0, 100000)",
        "**#3** @\u200bhere — (0, 0)",
    ]
    assert page["title"] == "Live-map blips (3)"


def test_blip_messages() -> None:
    added = Blip.model_validate({"id": 9, "coordinates": {"x": 1.5, "y": -2}})

    assert listings.blip_added_message(added) == "Added blip #9 at (1.5, -2)."
    assert listings.blip_removed_message(9) == "Removed blip #9 from the live map."
    assert listings.blip_updated_message(
        9,
        {"coordinates": {"x": 1.0, "y": 2.0}, "radius": 5.0, "color": "#00ff00", "sub_type": "*x*"},
    ) == ("Updated blip #9: position (1, 2), radius 5, colour “#00ff00”, subtype “\\*x\\*”.")
    assert listings.blip_updated_message(9, {}) == "Updated blip #9."
    assert listings.no_blips_message() == "There are no custom blips on the live map."
