"""clamp_embed / embed_size / pack_embeds: every Discord limit, and never a None on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.formatting import limits
from bot.formatting.limits import clamp_embed, embed_size, pack_embeds
from bot.formatting.text import ELLIPSIS, discord_len


def assert_within_limits(embed: dict[str, Any]) -> None:
    assert discord_len(embed.get("title", "")) <= limits.TITLE_LIMIT
    assert discord_len(embed.get("description", "")) <= limits.DESCRIPTION_LIMIT
    fields = embed.get("fields", [])
    assert len(fields) <= limits.FIELD_COUNT_LIMIT
    for field in fields:
        assert 0 < discord_len(field["name"]) <= limits.FIELD_NAME_LIMIT
        assert 0 < discord_len(field["value"]) <= limits.FIELD_VALUE_LIMIT
    assert discord_len(embed.get("footer", {}).get("text", "")) <= limits.FOOTER_TEXT_LIMIT
    assert discord_len(embed.get("author", {}).get("name", "")) <= limits.AUTHOR_NAME_LIMIT
    assert embed_size(embed) <= limits.EMBED_TOTAL_LIMIT
    encoded = json.dumps(embed, ensure_ascii=False)
    assert "null" not in encoded and "None" not in encoded


def test_limits_are_discords() -> None:
    assert (limits.TITLE_LIMIT, limits.DESCRIPTION_LIMIT, limits.FIELD_COUNT_LIMIT) == (256, 4096, 25)
    assert (limits.FIELD_NAME_LIMIT, limits.FIELD_VALUE_LIMIT, limits.FOOTER_TEXT_LIMIT) == (256, 1024, 2048)
    assert (limits.AUTHOR_NAME_LIMIT, limits.EMBED_TOTAL_LIMIT, limits.EMBEDS_PER_MESSAGE) == (256, 6000, 10)
    assert limits.CONTENT_LIMIT == 2000


@pytest.mark.parametrize(
    ("embed", "path", "limit"),
    [
        ({"title": "T" * 300}, ("title",), 256),
        ({"description": "D" * 5000}, ("description",), 4096),
        ({"footer": {"text": "F" * 3000}}, ("footer", "text"), 2048),
        ({"author": {"name": "A" * 300}}, ("author", "name"), 256),
        ({"fields": [{"name": "N" * 300, "value": "v"}]}, ("fields", 0, "name"), 256),
        ({"fields": [{"name": "n", "value": "V" * 2000}]}, ("fields", 0, "value"), 1024),
    ],
    ids=["title", "description", "footer", "author", "field-name", "field-value"],
)
def test_each_text_limit_is_truncated_with_an_ellipsis(
    embed: dict[str, Any], path: tuple[Any, ...], limit: int
) -> None:
    clamped = clamp_embed(embed)
    value: Any = clamped
    for key in path:
        value = value[key]
    assert discord_len(value) == limit
    assert value.endswith(ELLIPSIS)
    assert_within_limits(clamped)


def test_more_than_25_fields_keeps_the_first_25() -> None:
    clamped = clamp_embed({"fields": [{"name": f"n{i}", "value": f"v{i}"} for i in range(40)]})
    assert [field["name"] for field in clamped["fields"]] == [f"n{i}" for i in range(25)]


def test_total_over_6000_is_cut_description_first_then_trailing_fields() -> None:
    embed = {
        "title": "T" * 256,
        "description": "D" * 4096,
        "fields": [{"name": f"n{i}", "value": "V" * 1024} for i in range(25)],
        "footer": {"text": "F" * 2048},
        "author": {"name": "A" * 256},
    }
    clamped = clamp_embed(embed)
    assert_within_limits(clamped)
    assert clamped["title"] == "T" * 256
    assert clamped["footer"]["text"] == "F" * 2048
    assert clamped["fields"][0]["value"] == "V" * 1024
    assert len(clamped["description"]) < 4096


def test_total_counts_emoji_as_two() -> None:
    clamped = clamp_embed({"description": "🚓" * 4000, "fields": [{"name": "x", "value": "🚓" * 1000}] * 5})
    assert_within_limits(clamped)


@pytest.mark.parametrize(
    "embed",
    [
        {"title": None, "description": "None", "url": None, "color": None},
        {"title": "null", "fields": [{"name": "a", "value": None}, {"name": "b", "value": ""}]},
        {
            "fields": [{"name": None, "value": "kept"}, {"name": "x", "value": "   "}],
            "footer": {"text": None},
        },
        {"author": {"name": ""}, "footer": "not a dict", "fields": "not a list", "timestamp": "garbage"},
        {"color": True, "timestamp": None, "thumbnail": {"url": None}, "image": "x"},
        {"color": 0x1000000, "url": "javascript:alert(1)"},
        {},
    ],
)
def test_clamp_never_emits_none_null_or_empty_parts(embed: dict[str, Any]) -> None:
    clamped = clamp_embed(embed)
    assert_within_limits(clamped)
    assert clamped, "an embed must always show something"
    for field in clamped.get("fields", []):
        assert field["value"].strip()


def test_blank_field_name_gets_an_invisible_name_and_value_is_kept() -> None:
    clamped = clamp_embed({"fields": [{"name": "", "value": "kept", "inline": "yes"}]})
    assert clamped["fields"] == [{"name": limits.BLANK_FIELD_NAME, "value": "kept", "inline": False}]


def test_clamp_keeps_valid_parts_and_formats_datetime() -> None:
    moment = datetime(2025, 3, 14, 21, 14, 5, tzinfo=UTC)
    embed = {
        "title": "t",
        "url": "https://example.com",
        "color": 0xD32F2F,
        "timestamp": moment,
        "thumbnail": {"url": "https://example.com/a.png"},
        "fields": [{"name": "n", "value": "v", "inline": True}],
    }
    clamped = clamp_embed(embed)
    assert clamped == {**embed, "timestamp": moment.isoformat()}


def test_clamp_does_not_mutate_its_input() -> None:
    embed = {"title": "T" * 300, "fields": [{"name": "n", "value": "V" * 2000}]}
    snapshot = json.dumps(embed)
    clamp_embed(embed)
    assert json.dumps(embed) == snapshot


def test_clamp_never_fails_on_non_mappings() -> None:
    assert clamp_embed("nope") == {"description": limits.BLANK_FIELD_NAME}  # type: ignore[arg-type]


def test_embed_size_counts_the_parts_discord_counts() -> None:
    embed = {
        "title": "abc",
        "description": "de",
        "fields": [{"name": "f", "value": "gh"}],
        "footer": {"text": "i"},
        "author": {"name": "jk"},
        "url": "https://not-counted.example",
    }
    assert embed_size(embed) == 11


def test_pack_at_most_10_per_message() -> None:
    packed = pack_embeds([{"title": f"e{i}"} for i in range(25)])
    assert [len(message) for message in packed] == [10, 10, 5]
    assert [embed["title"] for message in packed for embed in message] == [f"e{i}" for i in range(25)]


def test_pack_at_most_6000_characters_per_message() -> None:
    packed = pack_embeds([{"description": "x" * 2500} for _ in range(5)])
    assert [len(message) for message in packed] == [2, 2, 1]
    for message in packed:
        assert sum(embed_size(embed) for embed in message) <= limits.EMBED_TOTAL_LIMIT


def test_pack_oversized_single_embed_is_clamped_to_fit_alone() -> None:
    huge = {"description": "x" * 10_000, "fields": [{"name": "n" * 300, "value": "v" * 3000}] * 30}
    packed = pack_embeds([{"title": "small"}, huge, {"title": "after"}])
    assert len(packed) == 3
    assert_within_limits(packed[1][0])
    assert packed[2][0]["title"] == "after"


def test_pack_nothing() -> None:
    assert pack_embeds([]) == []
