"""Every Sonoran CAD push event as a model, and a parser that never raises.

The contract (``push-events.yaml``) is loose in known places: docs and official parsers disagree on
arrays vs objects, scalar vs list IDs, legacy field and type names, and where some fields live. The
models below accept every documented and observed variant and normalise them to one shape, so nothing
downstream has to care. The objects events carry (units, dispatch and 911 calls, notes, records) are the
same classes the API clients return (:mod:`bot.cad.models`); field names are snake_case and the CAD's
camelCase names are accepted as aliases.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from bot.cad.coerce import (
    AS_OBJECTS,
    Flag,
    IntList,
    OptFloat,
    OptInt,
    ReqInt,
    ReqText,
    Text,
    TextList,
    TextMap,
    coerce_int,
    coerce_int_list,
    coerce_mapping,
    coerce_object_list,
    coerce_text_list,
    first_present,
    merged_values,
    object_or_empty,
    repair_surrogates,
    sanitise_json,
)
from bot.cad.models import (
    CadModel,
    CustomRecord,
    DispatchCall,
    DispatchNote,
    EmergencyCall,
    Unit,
    UnitList,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Objects only events carry (units, calls, notes and records are the shared ones of bot.cad.models)


class SignData(CadModel):
    ids: IntList = []
    text1: Text = ""
    text2: Text = ""
    text3: Text = ""


class ToneTarget(CadModel):
    """Who a tone was played to: ``type`` is the tone_target_type enum, ``value`` the target (ID or name)."""

    type: OptInt = None
    value: Text = ""
    label: Text = ""


class CalloutLocation(CadModel):
    x: OptFloat = None
    y: OptFloat = None
    z: OptFloat = None


class Callout(CadModel):
    """An ERS callout. FiveM's ERS module reads ``callout.data.CalloutLocations``; both shapes merge here."""

    callout_locations: Annotated[list[CalloutLocation], AS_OBJECTS] = []
    ped_weapon_data: TextList = []
    ped_action_on_no_action_found: Text = ""
    ped_chance_to_flee_from_player: OptInt = None
    ped_chance_to_obtain_weapons: OptInt = None
    ped_chance_to_attack_player: OptInt = None
    ped_chance_to_surrender: OptInt = None

    @model_validator(mode="before")
    @classmethod
    def _lift_nested_data(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return object_or_empty(value)
        payload = dict(value)
        nested = payload.get("data")
        if isinstance(nested, Mapping):
            for key, item in nested.items():
                key = str(key)
                camel = key[:1].lower() + key[1:]
                if payload.get(camel) in (None, "", []):
                    payload[camel] = item
        return payload


class StationLocation(CadModel):
    name: Text = ""
    open: TextList = []
    close: TextList = []


# --------------------------------------------------------------------------------------------------
# Events


class PushEvent(CadModel):
    """Base of every push event. ``event_type`` is the type as received (upper-cased)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ()

    event_type: str = ""

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        payload = {str(key): item for key, item in value.items()}
        payload.pop("eventType", None)
        if not payload.get("event_type"):
            payload["event_type"] = cls.EVENT_TYPES[0] if cls.EVENT_TYPES else ""
        envelope = info.context.get("envelope") if isinstance(info.context, Mapping) else None
        return cls._normalise(payload, envelope if isinstance(envelope, Mapping) else {})

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        """Rewrite legacy/variant shapes of this event's payload into the model's shape."""
        return payload

    @property
    def canonical_type(self) -> str:
        """The documented name of this event's type (legacy names map to it)."""
        return self.EVENT_TYPES[0]


def _wrap_if_flat(payload: dict[str, Any], key: str, *markers: str) -> None:
    """Older shapes put an object's fields straight into ``data``; move them under ``key``."""
    if not isinstance(payload.get(key), Mapping) and any(
        payload.get(marker) is not None for marker in markers
    ):
        payload[key] = {name: item for name, item in payload.items() if name != "event_type"}


class Emergency911Event(PushEvent):
    """``EVENT_911``: a new 911 call. ``metadata`` merges the copies beside and inside ``call``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_911",)

    call: EmergencyCall
    caller_ids: TextList = []
    community_user_id: Text = ""
    metadata: TextMap = Field(default_factory=dict, alias="metaData")

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        _wrap_if_flat(payload, "call", "callId", "call_id", "caller", "location")
        call = payload.get("call")
        inner_meta = call.get("metaData") if isinstance(call, Mapping) else None
        payload["metaData"] = {**coerce_mapping(payload.get("metaData")), **coerce_mapping(inner_meta)}
        callers = coerce_text_list(merged_values(payload, "apiIds", "identities", "communityUserIds"))
        payload["callerIds"] = list(dict.fromkeys(callers))
        return payload

    @property
    def postal(self) -> str:
        for key in ("postal", "Postal", "postalCode"):
            text = self.metadata.get(key, "")
            if text.strip():
                return text
        return ""


class Remove911Event(PushEvent):
    """``EVENT_REMOVE_911``: 911 calls removed (legacy single ``callId`` accepted)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_REMOVE_911",)

    call_ids: IntList = []

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["callIds"] = merged_values(payload, "callIds", "callId")
        return payload


class UnitLoginEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_LOGIN",)

    unit: Unit
    is_dispatch: Flag = False
    self_dispatch: Flag = False

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        _wrap_if_flat(payload, "unit", "id", "identId")
        return payload


class UnitLogoutEvent(PushEvent):
    """``EVENT_UNIT_LOGOUT`` (the docs page calls it "Unit Logoff"; the type string is LOGOUT)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_LOGOUT",)

    ident_id: ReqInt

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        candidates = coerce_int_list(merged_values(payload, "identId", "identIds", "id"))
        payload["identId"] = candidates[0] if candidates else None
        return payload


def _unit_ids(units: object) -> list[Any]:
    return [
        unit.id if isinstance(unit, Unit) else first_present(unit, "id", "identId")
        for unit in coerce_object_list(units)
    ]


class UnitStatusEvent(PushEvent):
    """``EVENT_UNIT_STATUS``: ``{identIds, status}`` or the websocket/FiveM ``{units: [...]}`` shape."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_STATUS",)

    ident_ids: IntList = []
    status: OptInt = None
    units: UnitList = []

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        ids = merged_values(payload, "identIds", "identId")
        if not coerce_int_list(ids):
            ids = _unit_ids(payload.get("units"))
        payload["identIds"] = ids
        return payload

    def unit_statuses(self) -> list[tuple[int, int | None]]:
        """(identifier ID, new status) for every unit in the event, whichever shape it came in."""
        if self.units:
            return [(unit.id, unit.status if unit.status is not None else self.status) for unit in self.units]
        return [(ident, self.status) for ident in self.ident_ids]


class UnitPanicEvent(PushEvent):
    """``EVENT_UNIT_PANIC``: panic toggled in the CAD. A missing ``isPanic`` reads as a panic (safe side)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_PANIC",)

    ident_ids: IntList = []
    is_panic: Flag = True
    # Not on the wire: set by the bot for panics pressed through /panic, when the unit's ident is unknown
    # (the member is not logged in as a unit, or the plan can't list units) so the alert still says who.
    pressed_by: str = Field("", exclude=True)

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload.pop("pressed_by", None)  # never taken from a pushed payload
        payload.pop("pressedBy", None)
        payload["identIds"] = merged_values(payload, "identIds", "identId")
        if payload.get("isPanic") is None and payload.get("is_panic") is None:
            payload.pop("isPanic", None)
        return payload


def _group_ident_ids(payload: dict[str, Any], envelope: Mapping[str, Any]) -> list[Any]:
    ids = merged_values(payload, "identId", "identIds")
    if not coerce_int_list(ids):
        # FiveM reads these from the envelope's top level, not from data; accept them there too.
        ids = merged_values(envelope, "identId", "identIds")
    return ids


class _UnitGroupMembershipEvent(PushEvent):
    ident_ids: IntList = []
    group_name: Text = ""

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["identIds"] = _group_ident_ids(payload, envelope)
        return payload


class UnitGroupAddEvent(_UnitGroupMembershipEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_GROUP_ADD",)


class UnitGroupRemoveEvent(_UnitGroupMembershipEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_GROUP_REMOVE",)


class UnitGroupRenameEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_GROUP_CHANGE_NAME",)

    ident_ids: IntList = []
    old_name: Text = ""
    new_name: Text = ""

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["identIds"] = merged_values(payload, "identIds", "identId")
        return payload


class _DispatchCallEvent(PushEvent):
    event_origin_ident: OptInt = None
    dispatch: DispatchCall

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        _wrap_if_flat(payload, "dispatch", "callId", "call_id")
        return payload


class DispatchNewEvent(_DispatchCallEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_NEW",)


class DispatchEditEvent(_DispatchCallEvent):
    """``EVENT_DISPATCH_EDIT``: the full call after the edit."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_EDIT",)


class DispatchClosedEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_CLOSED",)

    event_origin_ident: OptInt = None
    call_ids: IntList = []

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["callIds"] = merged_values(payload, "callIds", "callId")
        return payload


class DispatchNoteEvent(PushEvent):
    """``EVENT_DISPATCH_NOTE``: ``note`` may be a note object or a bare string."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_NOTE",)

    call_id: ReqInt
    note: DispatchNote = DispatchNote()

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        note = payload.get("note")
        if not isinstance(note, Mapping | str | int | float) or isinstance(note, bool):
            payload.pop("note", None)
        return payload


class _UnitAttachmentEvent(PushEvent):
    event_origin_ident: OptInt = None
    call_id: ReqInt
    idents: IntList = []

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["idents"] = merged_values(payload, "idents", "ident", "identIds", "identId")
        return payload


class DispatchUnitAttachEvent(_UnitAttachmentEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_UNIT_ATTACH", "EVENT_UNIT_ATTACH")


class DispatchUnitDetachEvent(_UnitAttachmentEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_DISPATCH_UNIT_DETACH", "EVENT_UNIT_DETACH")


class DispatchBodycamEvent(PushEvent):
    """A unit's bodycam toggled. It names no call: it applies to whichever calls the unit is on."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = (
        "EVENT_DISPATCH_TOGGLE_BODYCAM",
        "EVENT_TOGGLE_BODYCAM",
        "TOGGLE_BODYCAM",
    )

    ident: ReqInt
    state: Flag = False

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        candidates = coerce_int_list(merged_values(payload, "ident", "identId", "idents", "identIds"))
        payload["ident"] = candidates[0] if candidates else None
        return payload


class _RecordEvent(PushEvent):
    record: CustomRecord

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        _wrap_if_flat(payload, "record", "id", "recordTypeId", "sections")
        return payload


class RecordAddEvent(_RecordEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_RECORD_ADD",)


class RecordEditEvent(_RecordEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_RECORD_EDIT",)


class RecordRemoveEvent(_RecordEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_RECORD_REMOVE",)


class StreetSignUpdatedEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_STREETSIGN_UPDATED",)

    sign_data: SignData = SignData()

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        _wrap_if_flat(payload, "signData", "ids", "text1")
        payload["signData"] = object_or_empty(payload.get("signData"))
        return payload


class ToneEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_TONE",)

    url: Text = ""
    play_tones_to: Annotated[list[ToneTarget], AS_OBJECTS] = []


class CharacterSelectedEvent(PushEvent):
    """``EVENT_CHAR_SELECTED``: ``id`` is a record ID or a DB-sync key, so it is kept as text."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_CHAR_SELECTED",)

    acc_id: Text = ""
    id: Text = ""


class NewCalloutEvent(PushEvent):
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_NEW_CALLOUT",)

    callout: Callout = Callout()

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        payload["callout"] = object_or_empty(payload.get("callout"))
        return payload


class StationAlertEvent(PushEvent):
    """``EVENT_STATION_ALERT``: ``message`` is TTS text or base64 audio (see :attr:`message_is_audio`)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_STATION_ALERT",)

    locations: Annotated[list[StationLocation], AS_OBJECTS] = []
    message: Text = ""
    colors: TextList = []
    tone: Text = ""

    @property
    def message_is_audio(self) -> bool:
        message = self.message.strip()
        if message.startswith("data:audio"):
            return True
        # Spoken text has spaces; a long unbroken base64 run is an audio clip.
        return len(message) > 200 and " " not in message


class PagerEvent(PushEvent):
    """``EVENT_PAGER_REBORN``: an Inferno pager page."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_PAGER_REBORN",)

    addresses: TextList = []
    ident_ids: IntList = []
    nature: Text = ""
    body: Text = ""


class CommunityLinkVerifiedEvent(PushEvent):
    """Sent after the v2 community-link flow. FiveM rejects it without ``communityUserId``; so do we."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_COMMUNITY_LINK_VERIFIED",)

    community_user_id: ReqText
    account_uuid: Text = ""


class UnitUpdateEvent(PushEvent):
    """Undocumented ``EVENT_UNIT_UPDATE`` (FiveM core handles it): full unit objects."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("EVENT_UNIT_UPDATE",)

    units: UnitList = []

    @classmethod
    def _normalise(cls, payload: dict[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
        if "units" not in payload and coerce_int(first_present(payload, "id", "identId")) is not None:
            payload["units"] = [dict(payload)]
        return payload


EVENT_CLASSES: tuple[type[PushEvent], ...] = (
    Emergency911Event,
    Remove911Event,
    UnitLoginEvent,
    UnitLogoutEvent,
    UnitStatusEvent,
    UnitPanicEvent,
    UnitGroupAddEvent,
    UnitGroupRemoveEvent,
    UnitGroupRenameEvent,
    DispatchNewEvent,
    DispatchEditEvent,
    DispatchClosedEvent,
    DispatchNoteEvent,
    DispatchUnitAttachEvent,
    DispatchUnitDetachEvent,
    DispatchBodycamEvent,
    RecordAddEvent,
    RecordEditEvent,
    RecordRemoveEvent,
    StreetSignUpdatedEvent,
    ToneEvent,
    CharacterSelectedEvent,
    NewCalloutEvent,
    StationAlertEvent,
    PagerEvent,
    CommunityLinkVerifiedEvent,
    UnitUpdateEvent,
)

EVENT_MODELS: Mapping[str, type[PushEvent]] = {
    type_name: event_class for event_class in EVENT_CLASSES for type_name in event_class.EVENT_TYPES
}
"""Every recognised type string (documented, undocumented and legacy names) to its model."""

IGNORED_EVENT_TYPES: frozenset[str] = frozenset({"GET_LOGS", "EVENT_PRINT_RECORD"})
"""Recognised types that carry nothing for a bot, acknowledged and never posted: GET_LOGS asks a game server for
its logs; the undocumented EVENT_PRINT_RECORD (FiveM recordPrinter) is an in-game printer handing a unit a PDF of
a record, an action inside the game, not news for a channel."""


# --------------------------------------------------------------------------------------------------
# Parser


@dataclass(frozen=True, slots=True)
class InvalidElement:
    """One payload element that could not be read even leniently. ``reason`` never quotes the input."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What one push envelope turned into. ``events`` holds one model per payload element."""

    event_type: str
    events: tuple[PushEvent, ...] = ()
    unknown: bool = False
    ignored: bool = False
    invalid: tuple[InvalidElement, ...] = field(default=())

    @property
    def invalid_count(self) -> int:
        return len(self.invalid)


def _short_reason(error: ValidationError) -> str:
    parts = []
    for detail in error.errors(include_url=False, include_input=False, include_context=False)[:3]:
        location = ".".join(str(part) for part in detail.get("loc", ())) or "payload"
        parts.append(f"{location}: {detail.get('msg', 'invalid')}")
    return "; ".join(parts)[:300]


def _elements(data: object) -> Iterable[object] | None:
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list | tuple):
        return data
    return None


def _normalise_type(type_: object) -> str:
    if not isinstance(type_, str):
        return ""
    return repair_surrogates(type_).strip().upper()[:100]


def parse_event(type_: str, data: object, envelope: Mapping[str, object] | None = None) -> ParseOutcome:
    """Turn one envelope's ``type`` and ``data`` into event models. Never raises.

    ``data`` may be an object (one event) or an array (one event per element); anything else yields no
    events. ``envelope`` is the whole body, used where a sender puts fields at the top level.
    """
    event_type = _normalise_type(type_)
    try:
        return _parse(event_type, data, envelope)
    except Exception:  # the contract is "never raises": a parser bug must not drop the whole batch
        log.exception("push event parser failed on a %s payload", event_type or "untyped")
        return ParseOutcome(event_type, invalid=(InvalidElement(0, "internal parser error"),))


def _parse(event_type: str, data: object, envelope: Mapping[str, object] | None) -> ParseOutcome:
    if event_type in IGNORED_EVENT_TYPES:
        return ParseOutcome(event_type, ignored=True)
    model = EVENT_MODELS.get(event_type)
    if model is None:
        return ParseOutcome(event_type, unknown=True)
    if data is None:
        return ParseOutcome(event_type)
    elements = _elements(data)
    if elements is None:
        reason = f"data is {type(data).__name__}, expected an object or an array"
        return ParseOutcome(event_type, invalid=(InvalidElement(0, reason),))
    # Only the envelope's own members are read from it (e.g. identIds beside data); ``data`` itself is
    # sanitised element by element below, so it is not walked twice.
    top_level = (
        {key: value for key, value in envelope.items() if key != "data"}
        if isinstance(envelope, Mapping)
        else {}
    )
    context = {"envelope": sanitise_json(top_level)}
    events: list[PushEvent] = []
    invalid: list[InvalidElement] = []
    for index, element in enumerate(elements):
        if not isinstance(element, Mapping):
            invalid.append(InvalidElement(index, f"element is {type(element).__name__}, expected an object"))
            continue
        payload = sanitise_json(element)
        payload["event_type"] = event_type
        try:
            events.append(model.model_validate(payload, context=context))
        except ValidationError as error:
            invalid.append(InvalidElement(index, _short_reason(error)))
    return ParseOutcome(event_type, events=tuple(events), invalid=tuple(invalid))


def event_class_for(type_: str) -> type[PushEvent] | None:
    """The model for a type string (case-insensitive, legacy names included), or None if unknown."""
    return EVENT_MODELS.get(_normalise_type(type_))
