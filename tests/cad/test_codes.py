"""One label per CAD code, the same on every screen; one rendering for codes the table does not know."""

from __future__ import annotations

import pytest

from bot.cad.codes import (
    CALL_ORIGIN,
    CALL_PRIORITY,
    CALL_STATUS,
    RECORD_TYPE,
    SETTABLE_UNIT_STATUSES,
    TONE_TARGET,
    UNIT_STATUS,
    CallOrigin,
    CallPriority,
    CallStatus,
    RecordType,
    UnitStatus,
)
from bot.formatting.context import FormatContext, unit_status_text
from bot.formatting.member_actions import status_confirmation


@pytest.mark.parametrize(
    ("code", "label"),
    [
        (0, "Unavailable"),
        (1, "Busy"),
        (2, "Available"),
        (3, "En route"),
        (4, "On scene"),
        (100, "Offline"),  # v2's code
        (7, "Code 7"),  # a status the community defined
        (None, "Unknown"),  # the CAD sent none
    ],
)
def test_unit_status_labels(code: int | None, label: str) -> None:
    assert UNIT_STATUS.label(code) == label
    # The push context, /units and the member's reply all read it the same way.
    assert FormatContext(community_label="x").status_label(code) == label
    assert unit_status_text(code) == label


def test_the_community_relabels_statuses_and_its_labels_are_made_safe() -> None:
    custom = {3: "Responding", 4: "  ", 9: "@everyone **10-97**"}
    assert unit_status_text(3, custom) == "Responding"
    assert unit_status_text(4, custom) == "On scene"  # a blank label falls back to the CAD's
    assert unit_status_text(9, custom) == "@\u200beveryone \\*\\*10-97\\*\\*"
    assert unit_status_text(8, custom) == "Code 8"
    assert FormatContext(community_label="x", status_labels=custom).status_label(3) == "Responding"
    assert status_confirmation(3, custom) == "Your unit status is now **Responding**."
    assert status_confirmation(7) == "Your unit status is now **Code 7**."


def test_the_picker_offers_the_settable_defaults_by_the_same_labels() -> None:
    assert [status.label for status in SETTABLE_UNIT_STATUSES] == [
        "Unavailable",
        "Busy",
        "Available",
        "En route",
        "On scene",
    ]
    assert UnitStatus.ENROUTE.label == "En route"


@pytest.mark.parametrize(
    ("table", "code", "label"),
    [
        (CALL_STATUS, CallStatus.PENDING, "Pending"),
        (CALL_STATUS, CallStatus.ACTIVE, "Active"),
        (CALL_STATUS, CallStatus.CLOSED, "Closed"),
        (CALL_STATUS, 7, "Code 7"),
        (CALL_ORIGIN, CallOrigin.CALLER, "Caller"),
        (CALL_ORIGIN, CallOrigin.RADIO_DISPATCH, "Radio dispatch"),
        (CALL_ORIGIN, CallOrigin.WALK_UP, "Walk-up"),
        (CALL_ORIGIN, 9, "Code 9"),
        (CALL_PRIORITY, CallPriority.URGENT, "P1"),
        (CALL_PRIORITY, 4, "P4"),
        (RECORD_TYPE, RecordType.BOLO, "BOLO"),
        (RECORD_TYPE, RecordType.DMV_RECORD, "DMV Record"),
        (RECORD_TYPE, RecordType.VEHICLE_REGISTRATION, "Vehicle Registration"),
        (RECORD_TYPE, 99, "Record"),
        (RECORD_TYPE, None, "Record"),
        (TONE_TARGET, 0, "All active units"),
        (TONE_TARGET, 42, "Target"),
    ],
)
def test_call_record_and_tone_labels(table: object, code: int | None, label: str) -> None:
    assert table.label(code) == label  # type: ignore[attr-defined]


def test_enum_labels_come_from_the_tables() -> None:
    for enum, table in (
        (UnitStatus, UNIT_STATUS),
        (CallStatus, CALL_STATUS),
        (CallOrigin, CALL_ORIGIN),
        (CallPriority, CALL_PRIORITY),
        (RecordType, RECORD_TYPE),
    ):
        assert {member.label for member in enum} == set(table.labels.values()), enum  # type: ignore[attr-defined]
        assert set(table.labels) == set(enum), enum  # every code has its label, every label its code
