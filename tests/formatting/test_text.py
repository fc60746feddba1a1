"""neutralise / truncate / none_if_blank: CAD text must never ping, hide text, or break Unicode."""

from __future__ import annotations

import json
import re

import pytest

from bot.formatting.text import (
    ELLIPSIS,
    ZERO_WIDTH_SPACE,
    discord_len,
    neutralise,
    none_if_blank,
    repair_surrogates,
    truncate,
)

ZWSP = ZERO_WIDTH_SPACE

# Anything Discord would turn into a ping, a live mention or a masked link.
LIVE_MENTION = re.compile(r"<(@[!&]?\d+|#\d+|/[\w -]+:\d+|id:\w+)>")
EVERYONE = re.compile(r"@(everyone|here)", re.IGNORECASE)
MASKED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def assert_inert(text: str) -> None:
    assert not LIVE_MENTION.search(text), text
    assert not EVERYONE.search(text), text
    assert not MASKED_LINK.search(text), text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@everyone units respond", f"@{ZWSP}everyone units respond"),
        ("@here", f"@{ZWSP}here"),
        ("@EVERYONE", f"@{ZWSP}EVERYONE"),
        ("<@123>", f"<{ZWSP}@123>"),
        ("<@!123>", f"<{ZWSP}@!123>"),
        ("<@&456>", f"<{ZWSP}@&456>"),
        ("<#789>", f"<{ZWSP}#789>"),
        ("</ban:1234>", f"<{ZWSP}/ban:1234>"),
        ("<id:customize>", f"<{ZWSP}id:customize>"),
        ("[click](https://evil.example)", r"\[click\](https://evil.example)"),
        ("[x](<https://evil>)", r"\[x\](<https://evil>)"),
        ("||spoiler||", r"\|\|spoiler\|\|"),
        ("**bold** __u__ ~~s~~ `code`", r"\*\*bold\*\* \_\_u\_\_ \~\~s\~\~ \`code\`"),
        ("```block```", r"\`\`\`block\`\`\`"),
        ("# Big\n> quote\n-# tiny\n  > indented", "\\# Big\n\\> quote\n\\-# tiny\n  \\> indented"),
        (r"already \*escaped", r"already \\\*escaped"),
        ("see https://a.example/x_y_z?q=*a*", "see https://a.example/x_y_z?q=*a*"),
        ("10-38 - Traffic Stop #2", "10-38 - Traffic Stop #2"),
        ("a\u202eevil\u202c b", "aevil b"),
        ("nul\x00bell\x07", "nulbell"),
        ("", ""),
        (None, ""),
    ],
)
def test_neutralise(raw: str | None, expected: str) -> None:
    assert neutralise(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Plain caller name",
        "Zoë Ñúñez — Café",
        "🚓🚒🚑 👩🏽‍🚒 👨‍👩‍👧‍👦 🇺🇸 🏴󠁧󠁢󠁳󠁣󠁴󠁿 ❤️ 1️⃣",
        "مرحبا بالعالم",
        "שלום",
        "日本語のテキスト",
        "e\u0301 a\u0308",
        "Line one\nLine two\twith tab",
        "Postal 7012, Alta St / Integrity Way (near 24/7)",
    ],
)
def test_plain_unicode_and_emoji_round_trip_unchanged(text: str) -> None:
    assert neutralise(text) == text


def test_lone_surrogates_are_repaired_and_encode() -> None:
    for raw in ("\ud800", "a\udfffb", "\ud83d", "x\ud83d\ude00y"):
        fixed = neutralise(raw)
        fixed.encode("utf-8")
        json.dumps(fixed)
    assert repair_surrogates("x\ud83d\ude00y") == "x😀y"
    assert repair_surrogates("a\ud800") == "a\ufffd"


def test_injection_combinations_are_inert() -> None:
    attack = "@everyone <@&1> <@1> <#1> </x:1> [x](https://evil) @here [a](http://b 'c')"
    assert_inert(neutralise(attack))
    # Escaping must not be defeated by text that already contains backslashes.
    assert_inert(neutralise("\\[x\\](https://evil) \\@everyone"))


@pytest.mark.parametrize("limit", [1, 2, 5, 10, 256])
def test_truncate_respects_limit_and_marks_the_cut(limit: int) -> None:
    text = "x" * 1000
    result = truncate(text, limit)
    assert discord_len(result) <= limit
    assert result.endswith(ELLIPSIS)


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("short", 5) == "short"
    assert truncate("", 5) == ""
    assert truncate("anything", 0) == ""


def test_truncate_counts_astral_characters_as_two() -> None:
    text = "😀" * 200
    result = truncate(text, 256)
    assert discord_len(result) <= 256
    assert result == "😀" * 127 + ELLIPSIS
    assert discord_len("😀") == 2
    assert discord_len("é") == 1


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("ab👨‍👩‍👧cd", 6, "ab…"),  # do not leave half a family
        ("ab👍🏽cd", 4, "ab…"),  # skin tone stays with its emoji
        ("🇺🇸🇬🇧🇫🇷", 6, "🇺🇸…"),  # never half a flag
        ("🇺🇸🇬🇧🇫🇷", 8, "🇺🇸…"),
        ("🇺🇸🇬🇧🇫🇷", 9, "🇺🇸🇬🇧…"),
        ("cafe\u0301s", 5, "caf…"),  # combining accent stays with its letter
        ("1️⃣2️⃣", 4, "1️⃣…"),
    ],
)
def test_truncate_never_splits_a_grapheme(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_truncate_one_giant_cluster_still_fits() -> None:
    zalgo = "a" + "\u0301" * 500
    result = truncate(zalgo, 100)
    assert discord_len(result) <= 100


def test_truncate_does_not_leave_a_dangling_escape() -> None:
    escaped = neutralise("a" * 8 + "*bold*")
    result = truncate(escaped, 10)
    assert not result.endswith("\\" + ELLIPSIS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, None), ("", None), ("   \n\t", None), (" x ", "x"), ("None", "None")],
)
def test_none_if_blank(text: str | None, expected: str | None) -> None:
    assert none_if_blank(text) == expected
