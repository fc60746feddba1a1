"""Text safety for anything that came from the CAD: no pings, no hidden text, no broken Unicode.

Discord counts embed limits in UTF-16 code units (an emoji outside the BMP costs two), so every length
here is measured with :func:`discord_len`; being conservative means a clamped embed is never rejected.
"""

from __future__ import annotations

import re
import unicodedata

from bot.cad.coerce import repair_surrogates

ELLIPSIS = "…"
ZERO_WIDTH_SPACE = "\u200b"

# Explicit bidi embeddings, overrides and isolates can make text read backwards ("gnp.exe" tricks).
# Arabic and Hebrew text needs none of them to display correctly, so dropping them loses nothing real.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# C0 controls other than tab/newline/carriage return have no business in a chat message.
_C0_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_EVERYONE_HERE = re.compile(r"@(everyone|here)", re.IGNORECASE)
# `<@123>`, `<@!123>`, `<@&123>` (users, nicknames, roles), `<#123>` (channels), `</cmd:123>` (slash
# commands) and `<id:customize>` (guild navigation) all render as live, clickable mentions.
_ANGLE_MENTION = re.compile(r"<(?=[@#/]|id:)", re.IGNORECASE)

# Bare URLs are left intact so they stay clickable and readable; escaping inside them would corrupt them.
_URL = re.compile(r"https?://[^\s<>\[\]()]+")
# Characters that start inline markdown (bold, italics, underline, strike, spoiler, code) or masked
# links. The backslash comes first so an escape in the source cannot cancel ours.
_INLINE_MARKDOWN = re.compile(r"([\\*_~|`\[\]])")
# Line-start markdown that restyles text so it could pass for something else: quotes, headers, subtext.
# (Lists only indent, so they are left alone.)
_LINE_START_MARKDOWN = re.compile(r"^([ \t]*)(>|#|-#)", re.MULTILINE)


def discord_len(text: str) -> int:
    """Length as Discord counts it (UTF-16 code units)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _escape_markdown(text: str) -> str:
    pieces: list[str] = []
    position = 0
    for url in _URL.finditer(text):
        pieces.append(_INLINE_MARKDOWN.sub(r"\\\1", text[position : url.start()]))
        pieces.append(url.group(0))
        position = url.end()
    pieces.append(_INLINE_MARKDOWN.sub(r"\\\1", text[position:]))
    return _LINE_START_MARKDOWN.sub(r"\1\\\2", "".join(pieces))


def neutralise(text: str | None) -> str:
    """Make CAD text inert on Discord: no mentions, no masked links, no markdown that hides or restyles text.

    Plain text (including any Unicode and emoji) comes back unchanged; markdown characters come back
    backslash-escaped so Discord shows them literally.
    """
    if not text:
        return ""
    cleaned = _C0_CONTROLS.sub("", _BIDI_CONTROLS.sub("", repair_surrogates(str(text))))
    cleaned = _EVERYONE_HERE.sub("@" + ZERO_WIDTH_SPACE + r"\1", cleaned)
    cleaned = _ANGLE_MENTION.sub("<" + ZERO_WIDTH_SPACE, cleaned)
    return _escape_markdown(cleaned)


def _continues_cluster(char: str) -> bool:
    """True when ``char`` attaches to the character before it (cutting before it would split a grapheme)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == 0x200D  # zero-width joiner inside emoji sequences
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (text/emoji presentation)
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _grapheme_safe_cut(text: str, cut: int) -> int:
    """Move ``cut`` left until it sits on a grapheme boundary; fall back to ``cut`` for one huge cluster."""
    position = cut
    while 0 < position < len(text):
        if _continues_cluster(text[position]) or text[position - 1] == "\u200d":
            position -= 1
            continue
        if _is_regional_indicator(text[position]) and _is_regional_indicator(text[position - 1]):
            run_start = position
            while run_start > 0 and _is_regional_indicator(text[run_start - 1]):
                run_start -= 1
            if (position - run_start) % 2:  # odd count before the cut: we would split a flag
                position -= 1
        break
    return position if position > 0 else cut


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` Discord characters, ending in "…" when anything was cut."""
    if limit <= 0:
        return ""
    if discord_len(text) <= limit:
        return text
    budget = limit - discord_len(ELLIPSIS)
    if budget <= 0:
        return ELLIPSIS[:limit]
    cut = 0
    used = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        cut += 1
    cut = _grapheme_safe_cut(text, cut)
    head = text[:cut].rstrip()
    # A trailing lone backslash would escape our ellipsis; harmless, but it reads as garbage.
    if head.endswith("\\") and not head.endswith("\\\\"):
        head = head[:-1]
    return head + ELLIPSIS


def none_if_blank(text: str | None) -> str | None:
    """``text`` stripped, or None when it is missing or only whitespace."""
    if text is None:
        return None
    stripped = str(text).strip()
    return stripped or None
