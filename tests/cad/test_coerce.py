"""The one set of lenient coercions: each rule where the two old copies disagreed is pinned here.

(The v1 models and the push parser each had their own; where they differed, the stricter/safer reading won.)
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel

from bot.cad import coerce as c


class _Model(BaseModel):
    x: int = 1


# ---------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),  # never "None"
        ("Maria", "Maria"),
        ("Ma\ud800ria", "Ma\ufffdria"),  # lone surrogate repaired (the v1 copy kept it, and JSON broke)
        ("\ud83d\ude00 ok", "😀 ok"),  # a valid pair becomes the character
        (True, "true"),
        (False, "false"),
        (1234, "1234"),
        (1234.0, "1234"),  # integral floats without ".0" (v1 wrote "1234.0")
        (1.5, "1.5"),
        (math.nan, ""),
        (math.inf, ""),
        ({"street": "Alta St"}, ""),  # an object is not text (v1 wrote its JSON)
        (["a", 2, None, "", {"x": 1}, ["y"]], "a, 2"),  # scalars joined, blanks and nesting dropped
        ([], ""),
        (b"bytes", ""),
    ],
    ids=repr,
)
def test_text(value: object, text: str) -> None:
    assert c.coerce_text(value) == text


def test_optional_text_keeps_not_given_apart_from_blank() -> None:
    assert c.coerce_optional_text(None) is None
    assert c.coerce_optional_text({"a": 1}) is None
    assert c.coerce_optional_text([1]) is None
    assert c.coerce_optional_text("") == ""
    assert c.coerce_optional_text(5) == "5"


# ---------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (12, 12),
        ("12", 12),
        (" 12 ", 12),
        (12.0, 12),
        ("12.0", 12),  # v1 refused this
        ("1e3", 1000),
        (1.5, None),  # not whole: not an ID (v1 refused the whole payload)
        ("1.5", None),
        (True, None),  # a bool is never a number (v1 read it as 1)
        (2**63, None),  # outside int64: SQLite could not store it
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        ("1e400", None),
        (math.nan, None),
        ("9" * 5000, None),
        ("abc", None),
        ("", None),
        (None, None),
        ([1], None),
        ({"id": 1}, None),
    ],
    ids=repr,
)
def test_int(value: object, number: int | None) -> None:
    assert c.coerce_int(value) == number


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (1, 1.0),
        ("215.4", 215.4),
        (" -3 ", -3.0),
        ("nan", None),  # never NaN: it cannot go through JSON
        (math.inf, None),
        (10**400, None),
        (True, None),
        ("x" * 100, None),
        (None, None),
    ],
    ids=repr,
)
def test_float(value: object, number: float | None) -> None:
    assert c.coerce_float(value) == number


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        (True, True),
        (1, True),
        ("true", True),
        (" Yes ", True),
        ("on", True),
        (0, False),
        ("false", False),
        ("maybe", False),  # junk is "off", never an error (v1 refused the payload)
        (math.nan, False),
        (None, False),
        ({"a": 1}, False),
    ],
    ids=repr,
)
def test_bool(value: object, flag: bool) -> None:
    assert c.coerce_bool(value) is flag


def test_optional_bool_keeps_absent_apart() -> None:
    assert c.coerce_optional_bool(None) is None
    assert c.coerce_optional_bool("") is None
    assert c.coerce_optional_bool("no") is False


# ---------------------------------------------------------------------------------------------- containers


def test_int_list_takes_a_scalar_drops_junk_and_duplicates() -> None:
    assert c.coerce_int_list("57") == [57]
    assert c.coerce_int_list([57, "58", None, "x", 2.5, 57, 2**80, True]) == [57, 58]
    assert c.coerce_int_list("") == []
    assert c.coerce_int_list({"a": 1}) == []


def test_text_list_keeps_only_non_blank_scalars() -> None:
    assert c.coerce_text_list("discord:5") == ["discord:5"]
    assert c.coerce_text_list(["", "a", None, 5, {"x": 1}, ["b"], "  "]) == ["a", "5"]


def test_text_map_is_string_to_string() -> None:
    # Scalars become text, null and nested values are dropped (v1 wrote nested ones as JSON text).
    assert c.coerce_text_map(
        {"x": 1.5, "silenceAlert": True, "none": None, "deep": {"a": 1}, "list": [1], "k\ud800": "v\udc00"}
    ) == {"x": "1.5", "silenceAlert": "true", "k\ufffd": "v\ufffd"}
    assert c.coerce_text_map("nope") == {}
    assert c.coerce_text_map({"plate": ""}) == {"plate": ""}


def test_flag_map() -> None:
    assert c.coerce_flag_map({"police": True, "dispatch": "false", "x": None, "y": [1]}) == {
        "police": True,
        "dispatch": False,
    }
    assert c.coerce_flag_map([1]) == {}


def test_objects() -> None:
    model = _Model()
    assert c.object_or_empty(model) is model
    assert c.object_or_empty({1: "a"}) == {"1": "a"}
    assert c.object_or_empty("text") == {}
    assert c.coerce_object_list([{"a": 1}, None, 5, "x", model]) == [{"a": 1}, model]
    assert c.coerce_object_list({"a": 1}) == [{"a": 1}]
    assert c.coerce_mapping(model) == {"x": 1}


def test_merged_values_and_first_present() -> None:
    payload = {"identId": 57, "identIds": [58, 59], "id": "", "callId": 0}
    assert c.merged_values(payload, "identIds", "identId") == [58, 59, 57]
    assert c.first_present(payload, "id", "callId") == 0


# ---------------------------------------------------------------------------------------------- whole JSON


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def test_sanitise_json_repairs_strings_and_cuts_nesting() -> None:
    deep: Any = "bottom"
    for _ in range(100):
        deep = {"a": deep}
    cleaned = c.sanitise_json({"k\ud800": ["v\udc00", 1, 2.5, None, True, object()], "deep": deep})
    assert cleaned["k\ufffd"] == ["v\ufffd", 1, 2.5, None, True, None]
    assert _depth(cleaned) <= c.MAX_DEPTH + 2
    json.dumps(cleaned).encode("utf-8")


def test_sanitise_json_walk_is_bounded_for_shared_references() -> None:
    shared: Any = "x"
    for _ in range(60):
        shared = [shared, shared]
    c.sanitise_json(shared)  # 2**60 paths: finishes only because the walk is budgeted
