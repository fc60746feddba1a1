"""Pydantic models for what the Sonoran CAD API (v1 and v2) sends and accepts.

Reading is lenient on purpose: the docs, the official SDK and real payloads disagree (``apiIds`` vs
``apiId1``/``apiId2``, ``notes`` as ``""`` or a list or a bare string, numbers sent as strings, ``null``
where a string is documented). Unknown members are ignored, ``null`` falls back to the field default,
numeric strings become ints and numbers become strings. Python names are snake_case; wire names stay as
aliases (``Field(alias="callId")``) and either may be used to build a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import IntEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

# ---------------------------------------------------------------------------------------------- enums

_E = TypeVar("_E", bound=IntEnum)


class UnitStatus(IntEnum):
    """Default unit status codes; communities may relabel them, so keep unknown numbers as plain ints."""

    UNAVAILABLE = 0
    BUSY = 1
    AVAILABLE = 2
    ENROUTE = 3
    ON_SCENE = 4

    @property
    def label(self) -> str:
        return _UNIT_STATUS_LABELS[self.value]


_UNIT_STATUS_LABELS = {0: "Unavailable", 1: "Busy", 2: "Available", 3: "En route", 4: "On scene"}


def unit_status_label(code: int) -> str:
    """The default label for a status code, or ``Status 7`` for a code the community defined itself."""
    return _UNIT_STATUS_LABELS.get(code, f"Status {code}")


class CallOrigin(IntEnum):
    CALLER = 0
    RADIO_DISPATCH = 1
    OBSERVED = 2
    WALK_UP = 3

    @property
    def label(self) -> str:
        return {0: "Caller", 1: "Radio dispatch", 2: "Observed", 3: "Walk-up"}[self.value]


class CallStatus(IntEnum):
    PENDING = 0
    ACTIVE = 1
    CLOSED = 2

    @property
    def label(self) -> str:
        return {0: "Pending", 1: "Active", 2: "Closed"}[self.value]


class RecordType(IntEnum):
    WARRANT = 2
    BOLO = 3
    LICENSE = 4
    VEHICLE_REGISTRATION = 5
    CHARACTER = 7
    POLICE_RECORD = 8
    POLICE_REPORT = 9
    MEDICAL_RECORD = 10
    MEDICAL_REPORT = 11
    FIRE_RECORD = 12
    FIRE_REPORT = 13
    DMV_RECORD = 14
    LAW_RECORD = 15
    LAW_REPORT = 16

    @property
    def label(self) -> str:
        if self is RecordType.BOLO:
            return "BOLO"
        if self is RecordType.DMV_RECORD:
            return "DMV Record"
        return self.name.replace("_", " ").title()


class LookupSearchType(IntEnum):
    """``LOOKUP_INT`` ``searchType``: what ``value`` means."""

    IDENTIFIER = 0
    SUPERVISOR_STATUS = 1
    ACTIVE_STATUS = 2
    NUMBER = 3
    SECRET = 4
    ACCOUNT = 5


class AccountStatus(IntEnum):
    PENDING = 0
    ACTIVE = 1
    BANNED = 4


def _enum_or_none(enum: type[_E], value: int | None) -> _E | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- lenient types


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _as_list(value: Any) -> Any:
    if value is None or value == "":
        return []
    if isinstance(value, str | int | float | dict):
        return [value]
    return value


def _text_map(value: Any) -> Any:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(key): _as_text(item) for key, item in value.items() if item is not None}
    return value


def _non_blank_strings(value: Any) -> Any:
    items = _as_list(value)
    if isinstance(items, list):
        return [_as_text(item) for item in items if item is not None and _as_text(item).strip()]
    return items


Text = Annotated[str, BeforeValidator(_as_text)]
OptInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
IntList = Annotated[
    list[int], BeforeValidator(lambda v: [i for i in _as_list(v) if i is not None and i != ""])
]
StrList = Annotated[list[str], BeforeValidator(_non_blank_strings)]
TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]


class CadModel(BaseModel):
    """Base of every model read from the CAD."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # The CAD sends null for strings and lists it documents as always present; the default is the honest
        # reading of "nothing here".
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


# ---------------------------------------------------------------------------------------------- credentials


class CadCredentials(BaseModel):
    """What identifies one community to the CAD. ``repr``/``str`` show the key as ``**********``."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    community_id: str = Field(min_length=1, max_length=200)
    api_key: SecretStr
    server_id: int = Field(1, ge=0)

    @field_validator("community_id", mode="before")
    @classmethod
    def _strip_community(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_present(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("the CAD API key must be a non-empty string")
        return SecretStr(raw.strip())

    @field_validator("server_id", mode="before")
    @classmethod
    def _numeric_server_id(cls, value: Any) -> Any:
        # Legacy integrations stored the server ID as a string ("1"); a bool is never a server.
        if isinstance(value, bool):
            raise ValueError("the server ID must be a number")
        if isinstance(value, str):
            value = value.strip()
            if not value.isdigit():
                raise ValueError("the server ID must be a whole number such as 1")
            return int(value)
        return value


# ---------------------------------------------------------------------------------------------- member targets

TargetKind = Literal["discord", "account", "api_id"]


class MemberTarget(BaseModel):
    """Whom a CAD request acts for: exactly one of a Discord user ID, a CAD account UUID or an API ID.

    v2 sends it as ``discord`` / ``accountUuid`` / ``apiId``; v1 as ``account`` / ``apiId`` and cannot name a
    Discord user at all (``CadTargetUnsupportedError``). Build one with ``MemberTarget.discord(user.id)``,
    ``MemberTarget.account(uuid)`` or ``MemberTarget.api(api_id)``.
    """

    model_config = ConfigDict(frozen=True)

    discord_id: str | None = None
    account_uuid: str | None = None
    api_id: str | None = None

    @field_validator("discord_id", mode="before")
    @classmethod
    def _snowflake(cls, value: Any) -> Any:
        # Snowflakes exceed 2**53, so they travel as strings; a bool is never a user.
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("a Discord user ID is a number such as 123456789012345678")
        text = str(value).strip()
        if not text.isdigit() or int(text) <= 0:
            raise ValueError("a Discord user ID is a number such as 123456789012345678")
        return text

    @field_validator("account_uuid", "api_id", mode="before")
    @classmethod
    def _non_blank(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value.strip()

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberTarget:
        given = [v for v in (self.discord_id, self.account_uuid, self.api_id) if v is not None]
        if len(given) != 1:
            raise ValueError("name the member by exactly one of discord_id, account_uuid or api_id")
        return self

    @classmethod
    def discord(cls, user_id: int | str) -> MemberTarget:
        return cls(discord_id=str(user_id))

    @classmethod
    def account(cls, account_uuid: str) -> MemberTarget:
        return cls(account_uuid=account_uuid)

    @classmethod
    def api(cls, api_id: str) -> MemberTarget:
        return cls(api_id=api_id)

    @property
    def kind(self) -> TargetKind:
        if self.discord_id is not None:
            return "discord"
        return "account" if self.account_uuid is not None else "api_id"

    @property
    def value(self) -> str:
        return self.discord_id or self.account_uuid or self.api_id or ""


# ---------------------------------------------------------------------------------------------- calls


class CallNote(CadModel):
    time: Text = ""
    label: Text = ""
    type: Text = "text"
    content: Text = ""

    @model_validator(mode="before")
    @classmethod
    def _bare_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"content": data}
        return data


class EmergencyCall(CadModel):
    """A 911 call (``GET_CALLS.emergencyCalls``, ``EVENT_911.call``)."""

    call_id: int = Field(alias="callId")
    is_emergency: bool = Field(True, alias="isEmergency")
    caller: Text = ""
    location: Text = ""
    description: Text = ""
    metadata: TextMap = Field(default_factory=dict, alias="metaData")


class DispatchCall(CadModel):
    """A dispatch call (``GET_CALLS.activeCalls``/``closedCalls``, dispatch push events)."""

    call_id: int = Field(alias="callId")
    origin: int = 0
    status: int = 0
    priority: OptInt = None
    block: Text = ""
    address: Text = ""
    postal: Text = ""
    title: Text = ""
    code: Text = ""
    description: Text = ""
    notes: list[CallNote] = Field(default_factory=list)
    idents: IntList = Field(default_factory=list)
    primary: OptInt = None
    track_primary: bool = Field(False, alias="trackPrimary")
    metadata: TextMap = Field(default_factory=dict, alias="metaData")
    updated: str | None = None

    @field_validator("notes", mode="before")
    @classmethod
    def _notes_any_shape(cls, value: Any) -> Any:
        items = _as_list(value)
        return [item for item in items if item not in (None, "")] if isinstance(items, list) else items

    @property
    def origin_label(self) -> str:
        known = _enum_or_none(CallOrigin, self.origin)
        return known.label if known is not None else f"Origin {self.origin}"

    @property
    def status_label(self) -> str:
        known = _enum_or_none(CallStatus, self.status)
        return known.label if known is not None else f"Status {self.status}"

    @property
    def is_closed(self) -> bool:
        return self.status == CallStatus.CLOSED


class CallsSnapshot(CadModel):
    """``GET_CALLS``: active dispatch calls, active 911 calls and recently closed dispatch calls."""

    active_calls: list[DispatchCall] = Field(default_factory=list, alias="activeCalls")
    emergency_calls: list[EmergencyCall] = Field(default_factory=list, alias="emergencyCalls")
    closed_calls: list[DispatchCall] = Field(default_factory=list, alias="closedCalls")


class NewDispatch(BaseModel):
    """A dispatch call to create (``NEW_DISPATCH``); ``serverId`` comes from the credentials."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=200)
    origin: int = Field(int(CallOrigin.CALLER), ge=0)
    status: int = Field(int(CallStatus.ACTIVE), ge=0)
    priority: int = Field(2, ge=1, le=3)
    block: str = ""
    postal: str = ""
    code: str = ""
    description: str = ""
    primary: int | None = None
    track_primary: bool | None = Field(None, alias="trackPrimary")
    notes: list[CallNote] = Field(default_factory=list)
    metadata: dict[str, str] | None = Field(None, alias="metaData")
    units: list[str] = Field(default_factory=list, description="API IDs; the first becomes primary")
    accounts: list[str] = Field(default_factory=list, description="account UUIDs (Sonoran.js only)")
    delete_after_minutes: int | None = Field(None, alias="deleteAfterMinutes", ge=1)

    def to_wire(self, server_id: int) -> dict[str, Any]:
        body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        if not body["accounts"]:
            # Only the SDK documents `accounts`; leave it out unless it carries something.
            del body["accounts"]
        return {"serverId": server_id, **body}


class DispatchChanges(BaseModel):
    """The fields a dispatch call edit may change (v2 ``update_dispatch_call``); send only what changes.

    ``metadata`` replaces the stored object on the CAD, so resend the keys to keep.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    origin: int | None = Field(None, ge=0)
    status: int | None = Field(None, ge=0)
    priority: int | None = Field(None, ge=1)
    block: str | None = None
    address: str | None = None
    postal: str | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    code: str | None = None
    description: str | None = None
    primary: int | None = None
    track_primary: bool | None = Field(None, alias="trackPrimary")
    metadata: dict[str, str] | None = Field(None, alias="metaData")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ------------------------------------------------------------------------------------------ units, accounts


class UnitData(CadModel):
    """``unit.data``. ``api_ids`` merges the ``apiIds`` list and the ``apiId1``/``apiId2`` pair."""

    api_ids: list[str] = Field(default_factory=list, alias="apiIds")
    community_user_id: Text = Field("", alias="communityUserId")
    unit_num: Text = Field("", alias="unitNum")
    name: Text = ""
    district: Text = ""
    department: Text = ""
    subdivision: Text = ""
    rank: Text = ""
    group: Text = ""
    page: OptInt = None

    @model_validator(mode="before")
    @classmethod
    def _merge_api_ids(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged: list[str] = []
        listed = data.get("apiIds", data.get("api_ids"))
        for candidate in [*_as_list(listed), data.get("apiId1"), data.get("apiId2")]:
            text = _as_text(candidate).strip()
            if text and text not in merged:
                merged.append(text)
        rest = {k: v for k, v in data.items() if k not in ("apiIds", "api_ids", "apiId1", "apiId2")}
        return {**rest, "apiIds": merged}


class Unit(CadModel):
    """A unit identifier (``GET_ACTIVE_UNITS``, ``EVENT_UNIT_LOGIN.unit``). ``id`` is the identifier ID."""

    id: int
    acc_id: Text = Field("", alias="accId")
    status: int = 0
    is_panic: bool = Field(False, alias="isPanic")
    location: Text = ""
    aop: Text = ""
    is_dispatch: bool = Field(False, alias="isDispatch")
    data: UnitData = Field(default_factory=UnitData)

    @property
    def unit_num(self) -> str:
        return self.data.unit_num

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def api_ids(self) -> list[str]:
        return self.data.api_ids

    @property
    def status_label(self) -> str:
        return unit_status_label(self.status)

    @property
    def display_name(self) -> str:
        """``A-10 John Smith``, falling back to whichever part exists, then ``Unit 12``."""
        parts = [part for part in (self.data.unit_num.strip(), self.data.name.strip()) if part]
        return " ".join(parts) if parts else f"Unit {self.id}"


class Account(CadModel):
    """A community account (``GET_ACCOUNT``, ``GET_ACCOUNTS``)."""

    uuid: Text
    username: Text = ""
    status: int = int(AccountStatus.ACTIVE)
    joined: str | None = None
    last_login: str | None = Field(None, alias="lastLogin")
    permissions: dict[str, bool] = Field(default_factory=dict)
    api_ids: StrList = Field(default_factory=list, alias="apiIds")
    community_user_id: Text = Field("", alias="communityUserId")  # v2 only (the game's link)

    @property
    def is_banned(self) -> bool:
        return self.status == AccountStatus.BANNED


# ------------------------------------------------------------------------------------------ blips, servers


class BlipCoordinates(CadModel):
    x: float = 0.0
    y: float = 0.0


class BlipData(CadModel):
    """One ``{title, text}`` row shown in a blip's popup."""

    title: Text = ""
    text: Text = ""


class Blip(CadModel):
    """A live-map blip. ``id`` is -1 until the CAD assigns one."""

    id: int = -1
    sub_type: str | None = Field(None, alias="subType")
    coordinates: BlipCoordinates = Field(default_factory=BlipCoordinates)
    radius: float | None = None
    icon: Text = ""
    color: Text = ""
    tooltip: str | None = None
    data: list[BlipData] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class BlipChanges(BaseModel):
    """The fields ``MODIFY_BLIP`` may change; anything else is a caller mistake."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sub_type: str | None = Field(None, alias="subType")
    coordinates: BlipCoordinates | None = None
    radius: float | None = None
    icon: str | None = None
    color: str | None = None
    tooltip: str | None = None
    data: list[BlipData] | None = None


class Server(CadModel):
    """A CAD server (``GET_SERVERS``); ``map_ip``/``listener_port`` are where push events go over HTTP."""

    id: int
    name: Text = ""
    description: Text = ""
    signal: str | None = None
    map_url: Text = Field("", alias="mapUrl")
    map_ip: Text = Field("", alias="mapIp")
    map_port: Text = Field("", alias="mapPort")
    listener_port: Text = Field("", alias="listenerPort")
    differing_outbound: bool = Field(False, alias="differingOutbound")
    outbound_ip: Text = Field("", alias="outboundIp")
    enable_map: bool = Field(False, alias="enableMap")
    map_type: Text = Field("", alias="mapType")
    is_static: bool = Field(False, alias="isStatic")


# ---------------------------------------------------------------------------------------------- records


class RecordField(CadModel):
    type: Text = ""
    label: Text = ""
    value: Text = ""
    uid: Text = ""
    data: Any = None
    options: StrList = Field(default_factory=list)
    size: OptInt = None
    is_previewed: bool = Field(False, alias="isPreviewed")
    is_supervisor: bool = Field(False, alias="isSupervisor")
    is_required: bool = Field(False, alias="isRequired")
    unique: bool = False
    read_only: bool = Field(False, alias="readOnly")
    mask: Text = ""


class RecordSection(CadModel):
    category: int = 0
    label: Text = ""
    search_civ: bool = Field(False, alias="searchCiv")
    search_veh: bool = Field(False, alias="searchVeh")
    enable_duplicate: bool = Field(False, alias="enableDuplicate")
    fields: list[RecordField] = Field(default_factory=list)


class CustomRecord(CadModel):
    """A custom record or report (character, warrant, registration...)."""

    record_type_id: OptInt = Field(None, alias="recordTypeId")
    id: OptInt = None
    sync_id: Text = Field("", alias="syncId")
    name: Text = ""
    type: OptInt = None
    sections: list[RecordSection] = Field(default_factory=list)

    def iter_fields(self) -> Iterator[RecordField]:
        for section in self.sections:
            yield from section.fields

    def field_value(self, uid: str) -> str | None:
        """The value of the first field whose ``uid`` matches (case-insensitive), or ``None`` if none does."""
        wanted = uid.casefold()
        for field in self.iter_fields():
            if field.uid.casefold() == wanted:
                return field.value
        return None

    def previewed_fields(self) -> list[tuple[str, str]]:
        """``(label, value)`` of the fields the CAD shows in its own result preview, skipping blanks."""
        return [
            (field.label or field.uid, field.value)
            for field in self.iter_fields()
            if field.is_previewed and field.value.strip()
        ]

    @property
    def record_type(self) -> RecordType | None:
        return _enum_or_none(RecordType, self.type)

    @property
    def type_label(self) -> str:
        """The community's template name if it has one, else the standard type name."""
        if self.name.strip():
            return self.name.strip()
        known = self.record_type
        return known.label if known else "Record"

    @property
    def person_name(self) -> str:
        parts = [(self.field_value(uid) or "").strip() for uid in ("first", "mi", "last")]
        return " ".join(part for part in parts if part)

    @property
    def display_name(self) -> str:
        """``John Q Smith``, ``Vehicle Registration ABC123``, ``Warrant: John Smith`` or ``BOLO #12``."""
        person = self.person_name
        plate = (self.field_value("plate") or "").strip()
        if person and self.type == RecordType.CHARACTER:
            return person
        if plate:
            return f"{self.type_label} {plate}"
        if person:
            return f"{self.type_label}: {person}"
        return f"{self.type_label} #{self.id}" if self.id is not None else self.type_label


class LookupResult(CadModel):
    """``LOOKUP``: ``{records: [...]}``, a bare array, or the legacy per-kind arrays.

    The legacy shape (``warrantRecords``, ``bolos``, ``characters``...) is parsed best-effort into ``records``
    and kept raw in ``legacy_sections`` so nothing the CAD sent is lost.
    """

    records: list[CustomRecord] = Field(default_factory=list)
    legacy_sections: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _any_shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"records": data}
        if isinstance(data, dict) and "records" not in data and "legacy_sections" not in data:
            sections = {
                key: [item for item in value if isinstance(item, dict)]
                for key, value in data.items()
                if isinstance(value, list)
            }
            return {
                "records": [item for items in sections.values() for item in items],
                "legacy_sections": sections,
            }
        return data

    @property
    def characters(self) -> list[CustomRecord]:
        return [record for record in self.records if record.type == RecordType.CHARACTER]

    def of_type(self, record_type: RecordType | int) -> list[CustomRecord]:
        return [record for record in self.records if record.type == int(record_type)]


# ---------------------------------------------------------------------------------------------- v2 only


class TemplateStatusOption(CadModel):
    """One status a custom dispatch call may take: its own ``id`` (what the call's values carry), a label,
    and the standard call status (0 pending, 1 active, 2 closed) it stands for."""

    id: Text
    label: Text = ""
    status: int = int(CallStatus.ACTIVE)


class TemplateField(CadModel):
    """A field of a dispatch template. ``binding`` ties it to a standard call field (status, units, priority,
    description ...); bound status/units/description fields are locked and required."""

    uid: Text
    type: Text = ""
    label: Text = ""
    binding: Text = ""
    size: OptInt = None
    required: bool = False
    locked: bool = False
    placeholder: Text = ""
    options: StrList = Field(default_factory=list)


class TemplateSection(CadModel):
    uid: Text = ""
    label: Text = ""
    icon: Text = ""
    size: OptInt = None
    fields: list[TemplateField] = Field(default_factory=list)


class DispatchTemplate(CadModel):
    """A community's dispatch template (v2 ``/emergency/dispatch-templates``): the form a custom call fills."""

    template_id: int = Field(alias="templateId")
    name: Text = ""
    version: OptInt = None
    is_default: bool = Field(False, alias="isDefault")
    status_options: list[TemplateStatusOption] = Field(default_factory=list, alias="statusOptions")
    sections: list[TemplateSection] = Field(default_factory=list)

    def iter_fields(self) -> Iterator[TemplateField]:
        for section in self.sections:
            yield from section.fields

    def field(self, uid: str) -> TemplateField | None:
        return next((f for f in self.iter_fields() if f.uid == uid), None)

    def bound_field(self, binding: str) -> TemplateField | None:
        """The field bound to a standard call field (``status``, ``units``, ``priority`` ...), if any."""
        wanted = binding.casefold()
        return next((f for f in self.iter_fields() if f.binding.casefold() == wanted), None)

    @property
    def display_name(self) -> str:
        return self.name.strip() or f"Template {self.template_id}"


class CommunityInfo(CadModel):
    com_id: Text = Field("", alias="comId")
    name: Text = ""
    timezone: Text = ""
    custom_login_url: Text = Field("", alias="customLoginUrl")


class CadInfo(CadModel):
    """v2 ``/general/info``: the community behind the API key and its 10-codes."""

    uuid: Text = ""
    community: CommunityInfo = Field(default_factory=CommunityInfo)
    codes: StrList = Field(default_factory=list)
