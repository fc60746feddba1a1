"""Replies to slash commands: lookups, dispatch calls, active units and live-map blips.

Pure functions from CAD models to page embeds (``EmbedDict``) or one-line messages. Every piece of CAD text
goes through ``neutralise``; what members typed is neutralised too before it is echoed back. Lists come back
as pages ready for ``bot.ui.pagination``; each page is already clamped to Discord's limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from bot.cad.codes import CALL_PRIORITY, CALL_STATUS, CallStatus, RecordType
from bot.cad.models import (
    Blip,
    CallsSnapshot,
    CustomRecord,
    DispatchCall,
    EmergencyCall,
    RecordField,
    Unit,
)
from bot.formatting.context import Colour, unit_status_text
from bot.formatting.limits import EmbedDict, clamp_embed
from bot.formatting.text import neutralise, truncate

RECORDS_PER_PAGE = 5
CALLS_PER_PAGE = 6
UNITS_PER_PAGE = 15
BLIPS_PER_PAGE = 15

# How much of one record, call or line may take, so a page of them stays well inside the 6000 total.
_ENTRY_LIMIT = 900
_DESCRIPTION_EXCERPT = 160
_LINE_LIMIT = 250
_EXTRA_RECORD_FIELDS = 4

# Who the person is comes first, then what demands action, then everything else in the CAD's own order.
_RECORD_TYPE_ORDER: tuple[int, ...] = (
    RecordType.CHARACTER,
    RecordType.WARRANT,
    RecordType.BOLO,
    *(t for t in RecordType if t not in (RecordType.CHARACTER, RecordType.WARRANT, RecordType.BOLO)),
)
_ALERT_TYPES = frozenset({int(RecordType.WARRANT), int(RecordType.BOLO)})

_NAME_UIDS = ("first", "mi", "last")
# Key fields worth showing on every record, matched on the field's uid or label (communities rename them).
_KEY_FIELDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Plate", frozenset({"plate", "license plate", "licenseplate"})),
    ("Status", frozenset({"status", "warrant status", "license status"})),
    ("Flags", frozenset({"flags", "flag"})),
)

# What neutralise puts in front of a line-start-only marker (`#`, `>`, `-#`).
_LINE_START_ESCAPE = re.compile(r"\\(?:#|>|-#)")

_T = TypeVar("_T")
Field = dict[str, Any]


# ---------------------------------------------------------------------------------------------- helpers


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _chunks(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    size = max(1, size)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _safe(text: str | None, limit: int = _LINE_LIMIT) -> str:
    """CAD (or member) text made inert, on one line and kept short; empty when there is nothing to show.

    For text that starts a line of its own: a leading ``#`` or ``>`` stays escaped so it cannot restyle it.
    """
    return truncate(neutralise(" ".join(str(text or "").split())), limit)


def _inline(text: str | None, limit: int = _LINE_LIMIT) -> str:
    """Like :func:`_safe`, for text placed after other text on its line.

    Headers, quotes and subtext only take effect at the start of a line, so mid-line their escape would
    only show up as a stray backslash (``\\#ff0000``); everything else stays escaped.
    """
    safe = _safe(text, limit)
    return safe[1:] if _LINE_START_ESCAPE.match(safe) else safe


def _number(value: float) -> str:
    """``120.5``, ``-340``, ``0``: coordinates and radii without float noise."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _field(name: str, lines: Iterable[str]) -> Field:
    value = "\n".join(line for line in lines if line)
    return {"name": name, "value": truncate(value, _ENTRY_LIMIT) or "—", "inline": False}


def _pages(
    items: Sequence[_T],
    per_page: int,
    render: Callable[[Sequence[_T]], EmbedDict],
    footer: str,
) -> list[EmbedDict]:
    """One embed per chunk of ``items``; each footer says ``Page x/y`` and then ``footer``."""
    chunks = _chunks(items, per_page)
    pages: list[EmbedDict] = []
    for number, chunk in enumerate(chunks, start=1):
        page = render(chunk)
        parts = [f"Page {number}/{len(chunks)}", footer] if len(chunks) > 1 else [footer]
        page["footer"] = {"text": " · ".join(part for part in parts if part)}
        pages.append(clamp_embed(page))
    return pages


# ---------------------------------------------------------------------------------------------- lookups


def name_query(first: str, last: str, middle: str | None = None) -> str:
    """How a name search is described back to the member: ``name “Dale J Whitfield”``."""
    parts = [part.strip() for part in (first, middle or "", last) if part and part.strip()]
    return f"name “{_inline(' '.join(parts), 100)}”"


def plate_query(plate: str) -> str:
    return f"plate “{_inline(plate.strip(), 40)}”"


def record_query(number: int) -> str:
    return f"record #{number}"


def no_records_message(query: str) -> str:
    return f"No records found for {query}."


def _type_rank(record: CustomRecord) -> int:
    try:
        return _RECORD_TYPE_ORDER.index(record.type) if record.type is not None else len(_RECORD_TYPE_ORDER)
    except ValueError:
        return len(_RECORD_TYPE_ORDER)


def order_records(records: Iterable[CustomRecord]) -> list[CustomRecord]:
    """Characters first, then warrants and BOLOs, then the other types; the CAD's order within a type."""
    return sorted(records, key=_type_rank)


def _matches(field: RecordField, names: frozenset[str]) -> bool:
    return field.uid.strip().casefold() in names or field.label.strip().casefold() in names


def record_key_fields(record: CustomRecord) -> list[tuple[str, str]]:
    """``(label, value)`` pairs worth showing for ``record``: name, plate, status, flags, then what the CAD
    itself previews. Values are raw CAD text (callers neutralise); blanks are skipped."""
    shown: list[tuple[str, str]] = []
    used: set[int] = set()
    fields = list(record.iter_fields())
    name = record.person_name
    if name:
        shown.append(("Name", name))
        used.update(id(f) for f in fields if f.uid.strip().casefold() in _NAME_UIDS)
    for label, names in _KEY_FIELDS:
        for candidate in fields:
            if id(candidate) not in used and _matches(candidate, names) and candidate.value.strip():
                shown.append((label, candidate.value))
                used.add(id(candidate))
                break
    extras = 0
    for candidate in fields:
        if extras >= _EXTRA_RECORD_FIELDS:
            break
        if id(candidate) in used or not candidate.is_previewed or not candidate.value.strip():
            continue
        shown.append((candidate.label.strip() or candidate.uid.strip() or "Field", candidate.value))
        used.add(id(candidate))
        extras += 1
    return shown


def _record_heading(record: CustomRecord) -> str:
    marker = "⚠️ " if record.type in _ALERT_TYPES else ""
    label = _inline(record.type_label, 80) or "Record"
    number = f" #{record.id}" if record.id is not None else ""
    return f"{marker}{label}{number}"


def record_field(record: CustomRecord) -> Field:
    lines = [f"**{_inline(label, 60)}:** {_inline(value)}" for label, value in record_key_fields(record)]
    lines = [line for line in lines if not line.endswith(":** ")]
    if not lines:
        lines = ["No details on this record."]
    return _field(_record_heading(record), lines)


def _record_summary(records: Sequence[CustomRecord]) -> str:
    """``1 Character · 2 Warrants · 1 Vehicle Registration`` in display order."""
    counts: dict[str, int] = {}
    for record in records:
        label = record.record_type.label if record.record_type else "Other record"
        counts[label] = counts.get(label, 0) + 1
    return " · ".join(_plural(count, label) for label, count in counts.items())


def lookup_pages(
    records: Sequence[CustomRecord], query: str, *, per_page: int = RECORDS_PER_PAGE
) -> list[EmbedDict]:
    """Pages of lookup results for ``query`` (from :func:`name_query` and friends); ``[]`` when empty."""
    ordered = order_records(records)
    if not ordered:
        return []
    alert = any(record.type in _ALERT_TYPES for record in ordered)
    summary = _record_summary(ordered)

    def render(chunk: Sequence[CustomRecord]) -> EmbedDict:
        return {
            "title": truncate(f"Records for {query}", 256),
            "description": summary,
            "color": Colour.RED if alert else Colour.INFO,
            "fields": [record_field(record) for record in chunk],
        }

    return _pages(ordered, per_page, render, _plural(len(ordered), "record"))


# ---------------------------------------------------------------------------------------------- calls


def no_calls_message() -> str:
    return "No active dispatch calls or open 911 calls right now."


def _priority_key(call: DispatchCall) -> tuple[int, int]:
    return (call.priority if call.priority is not None else 99, call.call_id)


def dispatch_call_field(call: DispatchCall) -> Field:
    heading = " ".join(part for part in (_inline(call.code, 40), _inline(call.title, 120)) if part)
    name = f"Call #{call.call_id}"
    if call.priority is not None:
        name += f" · {CALL_PRIORITY.label(call.priority)}"
    if heading:
        name += f" · {heading}"
    place = _inline(call.address, 150)
    postal = _inline(call.postal, 20)
    if postal:
        place = f"{place} (postal {postal})" if place else f"Postal {postal}"
    units = len(call.idents)
    lines = [
        f"📍 {place}" if place else "📍 No location given",
        f"👮 {_plural(units, 'unit')} attached" if units else "👮 No units attached",
    ]
    if call.status is not None and call.status != CallStatus.ACTIVE:
        lines.append(f"Status: {CALL_STATUS.label(call.status)}")
    description = _safe(call.description, _DESCRIPTION_EXCERPT)
    if description:
        lines.append(description)
    return _field(name, lines)


def emergency_call_field(call: EmergencyCall) -> Field:
    kind = "Emergency" if call.is_emergency else "Civil"
    lines = [
        f"**Caller:** {_inline(call.caller, 100) or 'Unknown'}",
        f"**Location:** {_inline(call.location, 150) or 'Not given'}",
    ]
    description = _safe(call.description, _DESCRIPTION_EXCERPT)
    if description:
        lines.append(description)
    return _field(f"911 #{call.call_id} · {kind}", lines)


def calls_pages(
    snapshot: CallsSnapshot, *, age_s: float | None = None, per_page: int = CALLS_PER_PAGE
) -> list[EmbedDict]:
    """Active dispatch calls (highest priority first), then open 911 calls (emergencies first).
    ``age_s``: how old the snapshot is (cached)."""
    dispatch = sorted((c for c in snapshot.active_calls if not c.is_closed), key=_priority_key)
    emergencies = sorted(snapshot.emergency_calls, key=lambda c: (not c.is_emergency, c.call_id))
    entries: list[Field] = [dispatch_call_field(c) for c in dispatch]
    entries += [emergency_call_field(c) for c in emergencies]
    if not entries:
        return []
    summary = f"{_plural(len(dispatch), 'dispatch call')} · {_plural(len(emergencies), 'open 911 call')}"
    urgent = any(c.priority == 1 for c in dispatch) or any(c.is_emergency for c in emergencies)

    def render(chunk: Sequence[Field]) -> EmbedDict:
        return {
            "title": "Active calls",
            "description": summary,
            "color": Colour.RED if urgent else Colour.DISPATCH,
            "fields": list(chunk),
        }

    return _pages(entries, per_page, render, _age_text(age_s))


# ---------------------------------------------------------------------------------------------- units


def no_units_message() -> str:
    return "No units are on duty right now."


def unit_line(unit: Unit) -> str:
    name = _inline(unit.display_name, 100) or f"Unit #{unit.id}"
    department = _inline(unit.data.department, 40)
    if department:
        name += f" ({department})"
    parts = [unit_status_text(unit.status)]
    location = _inline(unit.location, 120)
    if location:
        parts.append(location)
    line = f"**{name}** — {' · '.join(parts)}"
    if unit.is_panic:
        line = f"🚨 {line} · **PANIC**"
    return truncate(line, _LINE_LIMIT + 60)


def _age_text(age_s: float | None) -> str:
    if age_s is None or age_s < 1:
        return ""
    return f"as of {round(age_s)} s ago"


def units_pages(
    units: Sequence[Unit], *, age_s: float | None = None, per_page: int = UNITS_PER_PAGE
) -> list[EmbedDict]:
    """Active units, panicking ones first, then by unit number. ``age_s``: how old the list is (cached)."""
    ordered = sorted(
        units, key=lambda u: (not u.is_panic, u.unit_num.strip().casefold() or "~", u.name.casefold(), u.id)
    )
    if not ordered:
        return []
    panics = sum(1 for u in ordered if u.is_panic)
    description_head = f"🚨 {_plural(panics, 'unit')} in panic\n\n" if panics else ""

    def render(chunk: Sequence[Unit]) -> EmbedDict:
        return {
            "title": f"Active units ({len(ordered)})",
            "description": description_head + "\n".join(unit_line(u) for u in chunk),
            "color": Colour.RED if panics else Colour.GREEN,
        }

    footer = " · ".join(part for part in (_plural(len(ordered), "unit"), _age_text(age_s)) if part)
    return _pages(ordered, per_page, render, footer)


# ---------------------------------------------------------------------------------------------- blips


def no_blips_message() -> str:
    return "There are no custom blips on the live map."


def blip_position(blip: Blip) -> str:
    return f"({_number(blip.coordinates.x)}, {_number(blip.coordinates.y)})"


def blip_line(blip: Blip) -> str:
    label = _inline(blip.tooltip, 100) or _inline(blip.sub_type, 50) or "Untitled blip"
    parts = [blip_position(blip)]
    if blip.radius is not None:
        parts.append(f"radius {_number(blip.radius)}")
    colour = _inline(blip.color, 20)
    if colour:
        parts.append(colour)
    icon = _inline(blip.icon, 60)
    if icon:
        parts.append(f"icon {icon}")
    return truncate(f"**#{blip.id}** {label} — {' · '.join(parts)}", _LINE_LIMIT)


def blips_pages(blips: Sequence[Blip], *, per_page: int = BLIPS_PER_PAGE) -> list[EmbedDict]:
    ordered = sorted(blips, key=lambda b: b.id)
    if not ordered:
        return []

    def render(chunk: Sequence[Blip]) -> EmbedDict:
        return {
            "title": f"Live-map blips ({len(ordered)})",
            "description": "\n".join(blip_line(b) for b in chunk),
            "color": Colour.INFO,
        }

    return _pages(ordered, per_page, render, _plural(len(ordered), "blip"))


def blip_added_message(blip: Blip) -> str:
    return f"Added blip #{blip.id} at {blip_position(blip)}."


def blip_changes_text(changes: dict[str, Any]) -> str:
    """``position (1, 2), colour #ff0000, tooltip “Roadblock”`` from the changes a member asked for."""
    parts: list[str] = []
    coordinates = changes.get("coordinates")
    if isinstance(coordinates, dict):
        parts.append(f"position ({_number(coordinates['x'])}, {_number(coordinates['y'])})")
    if changes.get("radius") is not None:
        parts.append(f"radius {_number(changes['radius'])}")
    for key, label in (
        ("color", "colour"),
        ("icon", "icon"),
        ("tooltip", "tooltip"),
        ("sub_type", "subtype"),
    ):
        if changes.get(key) is not None:
            parts.append(f"{label} “{_inline(str(changes[key]), 100)}”")
    return ", ".join(parts)


def blip_updated_message(blip_id: int, changes: dict[str, Any]) -> str:
    described = blip_changes_text(changes)
    return f"Updated blip #{blip_id}: {described}." if described else f"Updated blip #{blip_id}."


def blip_removed_message(blip_id: int) -> str:
    return f"Removed blip #{blip_id} from the live map."
