"""Discord's embed limits, and helpers that make any embed dict fit them instead of being rejected.

Discord rejects a whole message (400) when one embed breaks a limit, so a live alert would be lost over
one long CAD description. Everything we post goes through :func:`clamp_embed` / :func:`pack_embeds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from bot.formatting.text import discord_len, repair_surrogates, truncate

EmbedDict = dict[str, Any]

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_COUNT_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_TEXT_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
CONTENT_LIMIT = 2000

# A field needs a non-empty name; this renders as nothing.
BLANK_FIELD_NAME = "\u200b"
# Values that only ever appear when None leaked through str(); they must never reach a user.
_NULLISH = frozenset({"none", "null", "undefined", "nan"})
# Below this many characters a shrunk description stops being useful, so fields shrink instead.
_MIN_USEFUL_DESCRIPTION = 200


def _clean_text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = repair_surrogates(value)
    if not text.strip() or text.strip().lower() in _NULLISH:
        return None
    return text


def _clean_url(value: object) -> str | None:
    text = _clean_text(value)
    if text is None:
        return None
    text = text.strip()
    return text if text.startswith(("http://", "https://", "attachment://")) else None


def _clean_color(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 0xFFFFFF else None


def _clean_timestamp(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    text = _clean_text(value)
    if text is None:
        return None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


def _clean_fields(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    fields: list[dict[str, Any]] = []
    for raw in value:
        if not isinstance(raw, Mapping):
            continue
        field_value = _clean_text(raw.get("value"))
        if field_value is None:
            continue
        name = _clean_text(raw.get("name")) or BLANK_FIELD_NAME
        fields.append(
            {
                "name": truncate(name, FIELD_NAME_LIMIT),
                "value": truncate(field_value, FIELD_VALUE_LIMIT),
                "inline": raw.get("inline") is True,
            }
        )
        if len(fields) == FIELD_COUNT_LIMIT:
            break
    return fields


def _clean_named_block(
    value: object, text_key: str, limit: int, url_keys: tuple[str, ...]
) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    text = _clean_text(value.get(text_key))
    if text is None:
        return None
    block: dict[str, Any] = {text_key: truncate(text, limit)}
    for key in url_keys:
        url = _clean_url(value.get(key))
        if url is not None:
            block[key] = url
    return block


def _clean_image(value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    url = _clean_url(value.get("url"))
    return {"url": url} if url else None


def embed_size(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts towards the 6000 total: title, description, fields, footer, author."""
    total = 0
    for key in ("title", "description"):
        if isinstance(embed.get(key), str):
            total += discord_len(embed[key])
    footer = embed.get("footer")
    if isinstance(footer, Mapping) and isinstance(footer.get("text"), str):
        total += discord_len(footer["text"])
    author = embed.get("author")
    if isinstance(author, Mapping) and isinstance(author.get("name"), str):
        total += discord_len(author["name"])
    fields = embed.get("fields")
    if isinstance(fields, list | tuple):
        for field in fields:
            if isinstance(field, Mapping):
                for key in ("name", "value"):
                    if isinstance(field.get(key), str):
                        total += discord_len(field[key])
    return total


def _shrink_to_total(embed: EmbedDict, limit: int) -> None:
    """Cut the embed down to ``limit`` counted characters, sacrificing the least important text first."""
    excess = embed_size(embed) - limit
    if excess <= 0:
        return
    description = embed.get("description")
    if description:
        keep = max(_MIN_USEFUL_DESCRIPTION, discord_len(description) - excess)
        embed["description"] = truncate(description, keep)
        excess = embed_size(embed) - limit
    excess = _shrink_fields(embed, limit, excess)
    # Only pathological input gets here (a huge description plus header text); cut in reading order.
    for key, text_key in (("description", None), ("footer", "text"), ("author", "name"), ("title", None)):
        if excess <= 0:
            break
        _shorten_part(embed, key, text_key, excess)
        excess = embed_size(embed) - limit


def _shrink_fields(embed: EmbedDict, limit: int, excess: int) -> int:
    """Shorten the last field's value, or drop it, until the embed fits; returns what is still over."""
    fields: list[dict[str, Any]] = embed.get("fields", [])
    while excess > 0 and fields:
        last = fields[-1]
        room = discord_len(last["value"]) - excess
        if room >= 16:
            last["value"] = truncate(last["value"], room)
        else:
            fields.pop()
        excess = embed_size(embed) - limit
    if not fields:
        embed.pop("fields", None)
    return excess


def _shorten_part(embed: EmbedDict, key: str, text_key: str | None, excess: int) -> None:
    """Take ``excess`` characters off one text part (``text_key``: the text inside a block such as the
    footer), dropping the part when nothing would be left."""
    holder: Any = embed.get(key) if text_key is not None else embed
    if not holder:
        return
    inner = text_key or key
    text = holder.get(inner)
    if not text:
        return
    shorter = truncate(text, max(0, discord_len(text) - excess))
    if shorter:
        holder[inner] = shorter
    else:
        embed.pop(key)


def _truncated(text: str | None, limit: int) -> str | None:
    return None if text is None else truncate(text, limit)


# Each part of an embed, in Discord's order, with what makes it acceptable (None: leave the part out).
_PART_CLEANERS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("title", lambda value: _truncated(_clean_text(value), TITLE_LIMIT)),
    ("description", lambda value: _truncated(_clean_text(value), DESCRIPTION_LIMIT)),
    ("url", _clean_url),
    ("color", _clean_color),
    ("timestamp", _clean_timestamp),
    ("author", lambda value: _clean_named_block(value, "name", AUTHOR_NAME_LIMIT, ("url", "icon_url"))),
    ("fields", _clean_fields),
    ("footer", lambda value: _clean_named_block(value, "text", FOOTER_TEXT_LIMIT, ("icon_url",))),
    ("thumbnail", _clean_image),
    ("image", _clean_image),
)


def clamp_embed(embed: Mapping[str, Any], total_limit: int = EMBED_TOTAL_LIMIT) -> EmbedDict:
    """A copy of ``embed`` that Discord will accept: every part truncated with "…", empty parts dropped.

    Never raises, and never emits None, "None" or "null": a part with no real content is left out.
    """
    source: Mapping[str, Any] = embed if isinstance(embed, Mapping) else {}
    clamped: EmbedDict = {}
    for key, clean in _PART_CLEANERS:
        value = clean(source.get(key))
        if value is not None and value != []:  # None, and an empty field list, leave the part out
            clamped[key] = value
    _shrink_to_total(clamped, max(0, min(total_limit, EMBED_TOTAL_LIMIT)))
    if not any(key in clamped for key in ("title", "description", "fields", "author", "footer", "image")):
        # Discord rejects an embed with nothing to show.
        clamped["description"] = BLANK_FIELD_NAME
    return clamped


def pack_embeds(embeds: Iterable[Mapping[str, Any]]) -> list[list[EmbedDict]]:
    """Group embeds into as few messages as Discord allows (<= 10 embeds and <= 6000 characters each).

    Order is kept. Each embed is clamped first, so an oversized one still fits a message on its own.
    """
    messages: list[list[EmbedDict]] = []
    current: list[EmbedDict] = []
    current_size = 0
    for raw in embeds:
        embed = clamp_embed(raw)
        size = embed_size(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or current_size + size > EMBED_TOTAL_LIMIT):
            messages.append(current)
            current, current_size = [], 0
        current.append(embed)
        current_size += size
    if current:
        messages.append(current)
    return messages
