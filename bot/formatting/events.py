"""One embed per push event: what a dispatcher needs at a glance, coloured by urgency.

Every function is pure (event + context in, embed dict out). All CAD text goes through ``neutralise``;
the result of :func:`format_event` is always clamped to Discord's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from bot.cad import events as ev
from bot.cad.codes import (
    CALL_ORIGIN,
    CALL_PRIORITY,
    CALL_STATUS,
    RECORD_TYPE,
    TONE_TARGET,
    CallStatus,
    ToneTargetType,
)
from bot.cad.coerce import coerce_int
from bot.cad.models import CustomRecord, DispatchCall, Unit
from bot.formatting.context import Colour, FormatContext
from bot.formatting.limits import FIELD_VALUE_LIMIT, EmbedDict, clamp_embed
from bot.formatting.text import discord_len, neutralise, truncate

__all__ = ["FormatContext", "format_event"]

# Names listed in one field before the rest are summarised as "+N more".
_MAX_LISTED = 20
# Newest notes shown on a new/edited call event (the live card shows more).
_NOTES_ON_EVENT = 5

Field = dict[str, Any]


def field(name: str, value: str | None, inline: bool = True) -> Field | None:
    """An embed field, or None when there is nothing to show (callers drop Nones)."""
    if value is None or not value.strip():
        return None
    return {"name": name, "value": value, "inline": inline}


def embed(
    ctx: FormatContext,
    title: str,
    colour: int,
    description: str | None = None,
    fields: Iterable[Field | None] = (),
) -> EmbedDict:
    result: EmbedDict = {
        "title": title,
        "color": colour,
        "timestamp": ctx.timestamp,
        "footer": ctx.footer,
    }
    if description and description.strip():
        result["description"] = description
    kept = [item for item in fields if item is not None]
    if kept:
        result["fields"] = kept
    return result


def listing(items: Sequence[str], separator: str = "\n", limit: int = _MAX_LISTED) -> str:
    """Items joined, with "+N more" instead of the overflow."""
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append(f"+{len(items) - limit} more")
    return separator.join(shown)


def unit_list(ctx: FormatContext, idents: Sequence[int], separator: str = "\n") -> str:
    return listing([ctx.unit_label(ident) for ident in idents], separator)


def _title_for_units(ctx: FormatContext, idents: Sequence[int], own_name: str = "") -> str:
    if not idents:
        return ctx.unit_label(None, own_name)
    first = ctx.unit_label(idents[0], own_name)
    return first if len(idents) == 1 else f"{first} +{len(idents) - 1}"


def _call_ids(call_ids: Sequence[int]) -> str:
    return listing([f"#{call_id}" for call_id in call_ids], ", ")


def _by(ctx: FormatContext, ident: int | None) -> Field | None:
    return field("By", ctx.unit_label(ident)) if ident is not None else None


# ---------------------------------------------------------------------------------------------------
# 911


def format_911(event: ev.Emergency911Event, ctx: FormatContext) -> EmbedDict:
    call = event.call
    if call.is_emergency:
        title, colour = f"🚨 911 #{call.call_id} — EMERGENCY", Colour.RED
    else:
        title, colour = f"📞 911 #{call.call_id} — Civil", Colour.AMBER
    return embed(
        ctx,
        title,
        colour,
        neutralise(call.description),
        [
            field("Caller", neutralise(call.caller)),
            field("Location", neutralise(call.location)),
            field("Postal", neutralise(event.postal)),
        ],
    )


def format_remove_911(event: ev.Remove911Event, ctx: FormatContext) -> EmbedDict | None:
    if not event.call_ids:
        return None
    if len(event.call_ids) == 1:
        return embed(
            ctx, f"911 #{event.call_ids[0]} removed", Colour.GREY, "The call was removed from the CAD."
        )
    return embed(ctx, "911 calls removed", Colour.GREY, f"Removed from the CAD: {_call_ids(event.call_ids)}")


# ---------------------------------------------------------------------------------------------------
# Units


def format_unit_login(event: ev.UnitLoginEvent, ctx: FormatContext) -> EmbedDict:
    unit = event.unit
    data = unit.data
    return embed(
        ctx,
        f"🟢 On duty — {ctx.unit_label(unit.id, unit.display_name)}",
        Colour.NEUTRAL,
        fields=[
            field("Status", ctx.status_label(unit.status) if unit.status is not None else None),
            field("Role", "Dispatcher" if event.is_dispatch else None),
            field("Department", neutralise(data.department)),
            field("Subdivision", neutralise(data.subdivision)),
            field("Rank", neutralise(data.rank)),
            field("District", neutralise(data.district)),
            field("Group", neutralise(data.group)),
            field("Location", neutralise(unit.location)),
            field("AOP", neutralise(unit.aop)),
        ],
    )


def format_unit_logout(event: ev.UnitLogoutEvent, ctx: FormatContext) -> EmbedDict:
    return embed(ctx, f"⚪ Off duty — {ctx.unit_label(event.ident_id)}", Colour.NEUTRAL)


def format_unit_status(event: ev.UnitStatusEvent, ctx: FormatContext) -> EmbedDict | None:
    names = {unit.id: unit.display_name for unit in event.units}
    changes = event.unit_statuses()
    if not changes:
        return None
    if len(changes) == 1:
        ident, status = changes[0]
        name = ctx.unit_label(ident, names.get(ident, ""))
        return embed(ctx, f"🔄 {name} — {ctx.status_label(status)}", Colour.NEUTRAL)
    lines = [
        f"{ctx.unit_label(ident, names.get(ident, ''))} → **{ctx.status_label(status)}**"
        for ident, status in changes
    ]
    return embed(ctx, "🔄 Unit status changes", Colour.NEUTRAL, listing(lines))


def format_unit_panic(event: ev.UnitPanicEvent, ctx: FormatContext) -> EmbedDict:
    who = _title_for_units(ctx, event.ident_ids, event.pressed_by if not event.ident_ids else "")
    several = len(event.ident_ids) > 1
    units = field("Units", unit_list(ctx, event.ident_ids), inline=False) if several else None
    if event.is_panic:
        return embed(
            ctx,
            f"🚨 PANIC — {who}",
            Colour.RED,
            "**Panic button activated.** Check on the unit and send help.",
            [units],
        )
    return embed(ctx, f"✅ Panic cleared — {who}", Colour.GREEN, "The panic was cleared in the CAD.", [units])


def _group_name(name: str) -> str:
    return neutralise(name).strip() or "a unit group"


def format_unit_group_add(event: ev.UnitGroupAddEvent, ctx: FormatContext) -> EmbedDict:
    group = _group_name(event.group_name)
    return embed(
        ctx,
        f"👥 {_title_for_units(ctx, event.ident_ids)} joined {group}",
        Colour.NEUTRAL,
        fields=[field("Units", unit_list(ctx, event.ident_ids)) if len(event.ident_ids) > 1 else None],
    )


def format_unit_group_remove(event: ev.UnitGroupRemoveEvent, ctx: FormatContext) -> EmbedDict:
    group = _group_name(event.group_name)
    return embed(
        ctx,
        f"👥 {_title_for_units(ctx, event.ident_ids)} left {group}",
        Colour.NEUTRAL,
        fields=[field("Units", unit_list(ctx, event.ident_ids)) if len(event.ident_ids) > 1 else None],
    )


def format_unit_group_rename(event: ev.UnitGroupRenameEvent, ctx: FormatContext) -> EmbedDict:
    old = _group_name(event.old_name)
    new = _group_name(event.new_name)
    return embed(
        ctx,
        f"👥 Group renamed — {old} → {new}",
        Colour.NEUTRAL,
        fields=[field("Units", unit_list(ctx, event.ident_ids), inline=False)],
    )


def _unit_line(ctx: FormatContext, unit: Unit) -> str:
    parts = [f"{ctx.unit_label(unit.id, unit.display_name)} — **{ctx.status_label(unit.status)}**"]
    if unit.location.strip():
        parts.append(neutralise(unit.location))
    if unit.is_panic:
        parts.append("🚨 PANIC")
    return " · ".join(parts)


def format_unit_update(event: ev.UnitUpdateEvent, ctx: FormatContext) -> EmbedDict | None:
    if not event.units:
        return None
    if len(event.units) == 1:
        unit = event.units[0]
        return embed(
            ctx,
            f"🔄 {ctx.unit_label(unit.id, unit.display_name)} updated",
            Colour.NEUTRAL,
            fields=[
                field("Status", ctx.status_label(unit.status) if unit.status is not None else None),
                field("Location", neutralise(unit.location)),
                field("AOP", neutralise(unit.aop)),
                field("Panic", "🚨 Active" if unit.is_panic else None),
            ],
        )
    lines = [_unit_line(ctx, unit) for unit in event.units]
    return embed(ctx, f"🔄 {len(event.units)} units updated", Colour.NEUTRAL, listing(lines))


# ---------------------------------------------------------------------------------------------------
# Dispatch


def location_text(address: str, block: str) -> str:
    """Address and block, e.g. "Legion Square (block 12)", neutralised (postal is shown on its own)."""
    address = neutralise(address).strip()
    block = neutralise(block).strip()
    if address and block:
        return f"{address} (block {block})"
    return address or (f"Block {block}" if block else "")


def priority_text(priority: int | None) -> str | None:
    return CALL_PRIORITY.label(priority) if priority is not None else None


def note_line(time: str, label: str, content: str, limit: int = 400) -> str:
    """A note as one line, e.g. "`21:14:05` **1A-12:** Suspect in custody", neutralised, content cut."""
    parts = []
    if time.strip():
        parts.append(f"`{neutralise(time).replace('`', '')}`")
    if label.strip():
        parts.append(f"**{neutralise(label)}:**")
    parts.append(truncate(neutralise(content), limit) if content.strip() else "*(empty note)*")
    return " ".join(parts)


def call_name(title: str, code: str) -> str:
    """The call's title, else its code, neutralised ("" when it has neither)."""
    return neutralise(title).strip() or neutralise(code).strip()


def call_title(call_id: int, title: str, code: str, template: str = "#{id}") -> str:
    """``template`` filled with the call ID, then " — name" when the call has a title or code."""
    name = call_name(title, code)
    heading = template.format(id=call_id)
    return f"{heading} — {name}" if name else heading


def _dispatch_fields(dispatch: DispatchCall, ctx: FormatContext) -> list[Field | None]:
    units = [
        f"{ctx.unit_label(ident)}{' ★' if ident == dispatch.primary else ''}" for ident in dispatch.idents
    ]
    code = neutralise(dispatch.code).strip()
    notes = [note_line(n.time, n.label, n.content, 200) for n in dispatch.notes[-_NOTES_ON_EVENT:]]
    if len(dispatch.notes) > _NOTES_ON_EVENT:
        notes.insert(0, f"*({len(dispatch.notes) - _NOTES_ON_EVENT} earlier notes)*")
    return [
        field("Code", code if code and code != call_name(dispatch.title, dispatch.code) else None),
        field("Priority", priority_text(dispatch.priority)),
        field("Status", CALL_STATUS.label(dispatch.status) if dispatch.status is not None else None),
        field("Origin", CALL_ORIGIN.label(dispatch.origin) if dispatch.origin is not None else None),
        field("Location", location_text(dispatch.address, dispatch.block)),
        field("Postal", neutralise(dispatch.postal)),
        field("Units", listing(units), inline=False),
        field("Notes", _fit_lines(notes, FIELD_VALUE_LIMIT), inline=False),
    ]


def _fit_lines(lines: list[str], limit: int) -> str:
    """Newest (last) lines that fit in ``limit``, dropping the oldest first."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = discord_len(line) + 1
        if used + cost > limit:
            break
        kept.insert(0, line)
        used += cost
    return "\n".join(kept)


def _dispatch_call(
    event: ev.DispatchNewEvent | ev.DispatchEditEvent, ctx: FormatContext, heading: str
) -> EmbedDict:
    dispatch = event.dispatch
    closed = dispatch.status == CallStatus.CLOSED
    colour = Colour.GREY if closed else Colour.for_priority(dispatch.priority)
    return embed(
        ctx,
        call_title(dispatch.call_id, dispatch.title, dispatch.code, heading),
        colour,
        neutralise(dispatch.description),
        [*_dispatch_fields(dispatch, ctx), _by(ctx, event.event_origin_ident)],
    )


def format_dispatch_new(event: ev.DispatchNewEvent, ctx: FormatContext) -> EmbedDict:
    return _dispatch_call(event, ctx, "📟 New call #{id}")


def format_dispatch_edit(event: ev.DispatchEditEvent, ctx: FormatContext) -> EmbedDict:
    return _dispatch_call(event, ctx, "✏️ Call #{id} updated")


def format_dispatch_closed(event: ev.DispatchClosedEvent, ctx: FormatContext) -> EmbedDict | None:
    if not event.call_ids:
        return None
    if len(event.call_ids) == 1:
        title, description = f"✅ Call #{event.call_ids[0]} closed", None
    else:
        title, description = "✅ Calls closed", _call_ids(event.call_ids)
    return embed(ctx, title, Colour.GREY, description, [_by(ctx, event.event_origin_ident)])


def format_dispatch_note(event: ev.DispatchNoteEvent, ctx: FormatContext) -> EmbedDict:
    note = event.note
    content = neutralise(note.content) if note.content.strip() else "*(empty note)*"
    return embed(
        ctx,
        f"📝 Note on call #{event.call_id}",
        Colour.DISPATCH,
        content,
        [field("From", neutralise(note.label)), field("Time", neutralise(note.time))],
    )


def format_dispatch_attach(event: ev.DispatchUnitAttachEvent, ctx: FormatContext) -> EmbedDict:
    return embed(
        ctx,
        f"➕ Attached to call #{event.call_id}",
        Colour.DISPATCH,
        unit_list(ctx, event.idents) or "No units named.",
        [_by(ctx, event.event_origin_ident)],
    )


def format_dispatch_detach(event: ev.DispatchUnitDetachEvent, ctx: FormatContext) -> EmbedDict:
    return embed(
        ctx,
        f"➖ Detached from call #{event.call_id}",
        Colour.DISPATCH,
        unit_list(ctx, event.idents) or "No units named.",
        [_by(ctx, event.event_origin_ident)],
    )


def format_dispatch_bodycam(event: ev.DispatchBodycamEvent, ctx: FormatContext) -> EmbedDict:
    state = "on" if event.state else "off"
    return embed(ctx, f"📹 Bodycam {state} — {ctx.unit_label(event.ident)}", Colour.DISPATCH)


# ---------------------------------------------------------------------------------------------------
# Records


def record_title(record: CustomRecord) -> str:
    name = neutralise(record.name).strip() or RECORD_TYPE.label(record.type)
    return f"{name} #{record.id}" if record.id is not None else name


def record_fields(record: CustomRecord) -> list[Field | None]:
    fields: list[Field | None] = []
    type_label = RECORD_TYPE.known(record.type)
    if type_label and type_label != neutralise(record.name).strip():
        fields.append(field("Type", type_label))
    for section in record.sections:
        lines = [
            f"**{neutralise(item.label) or 'Field'}:** {neutralise(item.value)}"
            for item in section.fields
            if item.value.strip()
        ]
        fields.append(field(neutralise(section.label).strip() or "Details", "\n".join(lines), inline=False))
    return fields


def format_record_add(event: ev.RecordAddEvent, ctx: FormatContext) -> EmbedDict:
    record = event.record
    return embed(
        ctx, f"📁 Record added — {record_title(record)}", Colour.NEUTRAL, fields=record_fields(record)
    )


def format_record_edit(event: ev.RecordEditEvent, ctx: FormatContext) -> EmbedDict:
    record = event.record
    return embed(
        ctx, f"✏️ Record edited — {record_title(record)}", Colour.NEUTRAL, fields=record_fields(record)
    )


def format_record_remove(event: ev.RecordRemoveEvent, ctx: FormatContext) -> EmbedDict:
    return embed(ctx, f"🗑️ Record removed — {record_title(event.record)}", Colour.GREY)


# ---------------------------------------------------------------------------------------------------
# Other


def format_streetsign(event: ev.StreetSignUpdatedEvent, ctx: FormatContext) -> EmbedDict:
    sign = event.sign_data
    lines = [neutralise(text) for text in (sign.text1, sign.text2, sign.text3) if text.strip()]
    return embed(
        ctx,
        "🪧 Street signs updated",
        Colour.INFO,
        "\n".join(lines) or "Signs cleared.",
        [field("Signs", _call_ids(sign.ids))],
    )


def _tone_target(ctx: FormatContext, target: ev.ToneTarget) -> str:
    shown = neutralise(target.label).strip() or neutralise(target.value).strip()
    if target.type == ToneTargetType.ALL_UNITS:
        return TONE_TARGET.label(target.type)
    if target.type == ToneTargetType.CALL:
        return f"Call #{shown}" if shown else "A call"
    if target.type == ToneTargetType.UNIT:
        ident = coerce_int(target.value)
        return ctx.unit_label(ident, target.label) if ident is not None else shown or "A unit"
    kind = TONE_TARGET.label(target.type)
    return f"{kind}: {shown}" if shown else kind


def format_tone(event: ev.ToneEvent, ctx: FormatContext) -> EmbedDict:
    targets = [_tone_target(ctx, target) for target in event.play_tones_to]
    return embed(
        ctx,
        "🔔 Tone played",
        Colour.INFO,
        fields=[
            field("Played to", listing(targets), inline=False),
            field("Tone", neutralise(event.url), inline=False),
        ],
    )


def format_char_selected(event: ev.CharacterSelectedEvent, ctx: FormatContext) -> EmbedDict:
    return embed(
        ctx,
        "🧑 Character selected",
        Colour.NEUTRAL,
        fields=[field("Character", neutralise(event.id)), field("Account", neutralise(event.acc_id))],
    )


def _coordinates(location: ev.CalloutLocation) -> str:
    parts = [
        f"{axis} {value:.1f}" for axis, value in (("X", location.x), ("Y", location.y)) if value is not None
    ]
    return ", ".join(parts)


def format_new_callout(event: ev.NewCalloutEvent, ctx: FormatContext) -> EmbedDict:
    callout = event.callout
    locations = [text for text in (_coordinates(loc) for loc in callout.callout_locations) if text]
    chances = [
        f"{label} {value}%"
        for label, value in (
            ("Flee", callout.ped_chance_to_flee_from_player),
            ("Arm", callout.ped_chance_to_obtain_weapons),
            ("Attack", callout.ped_chance_to_attack_player),
            ("Surrender", callout.ped_chance_to_surrender),
        )
        if value is not None
    ]
    weapons = [neutralise(weapon) for weapon in callout.ped_weapon_data]
    return embed(
        ctx,
        "🗺️ ERS callout requested",
        Colour.INFO,
        fields=[
            field("Location", listing(locations)),
            field("Weapons", listing(weapons, ", ")),
            field("Otherwise", neutralise(callout.ped_action_on_no_action_found)),
            field("Suspect behaviour", " · ".join(chances), inline=False),
        ],
    )


def format_station_alert(event: ev.StationAlertEvent, ctx: FormatContext) -> EmbedDict:
    names = [neutralise(location.name).strip() or "Station" for location in event.locations]
    title = "🚒 Station alert"
    if names:
        title += f" — {names[0]}" + (f" +{len(names) - 1}" if len(names) > 1 else "")
    message = "🔊 Audio message" if event.message_is_audio else neutralise(event.message)
    doors: list[Field | None] = []
    for name, location in zip(names, event.locations, strict=True):
        lines = []
        if location.open:
            lines.append("Open: " + ", ".join(neutralise(door) for door in location.open))
        if location.close:
            lines.append("Close: " + ", ".join(neutralise(door) for door in location.close))
        doors.append(field(name, "\n".join(lines)))
    tone = event.tone.strip()
    return embed(
        ctx,
        title,
        Colour.AMBER,
        message,
        [
            *doors[:20],
            field("Tone", neutralise(tone) if tone else None),
            field("Lights", ", ".join(neutralise(colour) for colour in event.colors)),
        ],
    )


_PAGER_COLOURS: Mapping[str, int] = {"emergency": Colour.RED, "nonemergency": Colour.AMBER}


def format_pager(event: ev.PagerEvent, ctx: FormatContext) -> EmbedDict:
    nature = neutralise(event.nature).strip()
    colour = _PAGER_COLOURS.get(event.nature.strip().lower().replace("-", "").replace(" ", ""), Colour.INFO)
    return embed(
        ctx,
        f"📟 Page — {nature}" if nature else "📟 Page",
        colour,
        neutralise(event.body),
        [
            field("Pager addresses", listing([neutralise(a) for a in event.addresses], ", ")),
            field("Units paged", unit_list(ctx, event.ident_ids, ", ")),
        ],
    )


def format_community_link_verified(event: ev.CommunityLinkVerifiedEvent, ctx: FormatContext) -> EmbedDict:
    return embed(
        ctx,
        "🔗 Community account linked",
        Colour.NEUTRAL,
        fields=[
            field("Community user", neutralise(event.community_user_id)),
            field("Account", neutralise(event.account_uuid)),
        ],
    )


# ---------------------------------------------------------------------------------------------------

E = TypeVar("E", bound=ev.PushEvent)


def _formatter(function: Callable[[E, FormatContext], EmbedDict | None]) -> Callable[..., EmbedDict | None]:
    return function


FORMATTERS: Mapping[type[ev.PushEvent], Callable[..., EmbedDict | None]] = {
    ev.Emergency911Event: _formatter(format_911),
    ev.Remove911Event: _formatter(format_remove_911),
    ev.UnitLoginEvent: _formatter(format_unit_login),
    ev.UnitLogoutEvent: _formatter(format_unit_logout),
    ev.UnitStatusEvent: _formatter(format_unit_status),
    ev.UnitPanicEvent: _formatter(format_unit_panic),
    ev.UnitGroupAddEvent: _formatter(format_unit_group_add),
    ev.UnitGroupRemoveEvent: _formatter(format_unit_group_remove),
    ev.UnitGroupRenameEvent: _formatter(format_unit_group_rename),
    ev.UnitUpdateEvent: _formatter(format_unit_update),
    ev.DispatchNewEvent: _formatter(format_dispatch_new),
    ev.DispatchEditEvent: _formatter(format_dispatch_edit),
    ev.DispatchClosedEvent: _formatter(format_dispatch_closed),
    ev.DispatchNoteEvent: _formatter(format_dispatch_note),
    ev.DispatchUnitAttachEvent: _formatter(format_dispatch_attach),
    ev.DispatchUnitDetachEvent: _formatter(format_dispatch_detach),
    ev.DispatchBodycamEvent: _formatter(format_dispatch_bodycam),
    ev.RecordAddEvent: _formatter(format_record_add),
    ev.RecordEditEvent: _formatter(format_record_edit),
    ev.RecordRemoveEvent: _formatter(format_record_remove),
    ev.StreetSignUpdatedEvent: _formatter(format_streetsign),
    ev.ToneEvent: _formatter(format_tone),
    ev.CharacterSelectedEvent: _formatter(format_char_selected),
    ev.NewCalloutEvent: _formatter(format_new_callout),
    ev.StationAlertEvent: _formatter(format_station_alert),
    ev.PagerEvent: _formatter(format_pager),
    ev.CommunityLinkVerifiedEvent: _formatter(format_community_link_verified),
}


def format_event(event: ev.PushEvent, ctx: FormatContext) -> EmbedDict | None:
    """The embed for ``event``, clamped to Discord's limits; None when the event has nothing to show."""
    formatter = FORMATTERS.get(type(event))
    if formatter is None:
        return None
    result = formatter(event, ctx)
    return clamp_embed(result) if result is not None else None
