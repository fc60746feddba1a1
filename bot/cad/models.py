"""The CAD's data, once: what the Sonoran CAD API (v1 and v2) answers, what its push events carry, and what
the bot sends.

Reading is lenient on purpose: the docs, the official SDK, the official parsers and real payloads disagree
(``apiIds`` vs ``apiId1``/``apiId2``, ``notes`` as ``""`` or a list or a bare string, numbers sent as strings,
``null`` where a string is documented). Every model read from the CAD derives from :class:`CadModel`, whose
fields use the coercions of :mod:`bot.cad.coerce`: unknown members are ignored, ``null`` and odd shapes read as
the field's default, and only a missing ID makes a payload invalid. Python names are snake_case, wire names
camelCase; either builds a model. The models the bot *sends* (:class:`NewDispatch`, :class:`DispatchChanges`,
:class:`BlipChanges`, :class:`CadCredentials`, :class:`MemberTarget`) are strict instead: a mistake there is
ours and should fail loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bot.cad.codes import (
    CALL_ORIGIN,
    CALL_STATUS,
    RECORD_TYPE,
    UNIT_STATUS,
    CallOrigin,
    CallStatus,
    RecordType,
)
from bot.cad.coerce import (
    AS_OBJECT,
    AS_OBJECTS,
    Flag,
    FlagMap,
    Float,
    Int,
    IntList,
    OptFloat,
    OptInt,
    OptText,
    ReqInt,
    Text,
    TextList,
    TextMap,
    as_list,
    coerce_int,
    coerce_object_list,
    coerce_text,
    coerce_text_list,
    first_present,
    merged_values,
    object_or_empty,
)

# ---------------------------------------------------------------------------------------------- enums
# The codes with labels (unit status, call status/origin/priority, record type) are in bot.cad.codes.


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


# ---------------------------------------------------------------------------------------------- base


class CadModel(BaseModel):
    """Base of every model read from the CAD (API answers and push events alike).

    camelCase on the wire, snake_case attributes (either builds a model), unknown members ignored, immutable.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


def _with_id(*keys: str, text: bool = False) -> Callable[[object], list[Any]]:
    """A list validator keeping the objects that carry a usable ID (an integer, or non-blank ``text``) under
    one of ``keys``: an item the bot cannot name or track is dropped rather than failing the whole list."""

    def usable(item: Any) -> bool:
        if isinstance(item, BaseModel):
            return True
        found = first_present(item, *keys)
        return bool(coerce_text(found).strip()) if text else coerce_int(found) is not None

    def keep(value: object) -> list[Any]:
        return [item for item in coerce_object_list(value) if usable(item)]

    return keep


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


class DispatchNote(CadModel):
    """One note on a dispatch call (``call_note``). A bare string or number is read as the note's content."""

    time: Text = ""
    label: Text = ""
    type: Text = "text"
    content: Text = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_text(cls, value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return {"content": value}
        return value

    @field_validator("type")
    @classmethod
    def _text_unless_said(cls, value: str) -> str:
        return value if value.strip() else "text"


def _coerce_notes(value: object) -> list[Any]:
    # Push docs send "" for "no notes", other pages an array; a single note may come bare.
    notes: list[Any] = []
    for item in as_list(value):
        if isinstance(item, Mapping | BaseModel):
            notes.append(object_or_empty(item))
        elif isinstance(item, str) and item.strip():
            notes.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            notes.append(coerce_text(item))
    return notes


Notes = Annotated[list[DispatchNote], BeforeValidator(_coerce_notes)]


class EmergencyCall(CadModel):
    """A 911 call (``GET_CALLS.emergencyCalls``, ``EVENT_911.call``).

    ``isEmergency`` missing reads as a civil call, as the official parsers read it; dispatchnotify's
    ``emergency`` is the same flag. ``metadata`` is the call's ``metaData`` as text.
    """

    call_id: ReqInt
    is_emergency: Flag = False
    caller: Text = ""
    location: Text = ""
    description: Text = ""
    metadata: TextMap = Field(default_factory=dict, alias="metaData")

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        payload = dict(value)
        if payload.get("isEmergency") is None and payload.get("is_emergency") is None:
            payload["isEmergency"] = payload.get("emergency")
        return payload


class DispatchCall(CadModel):
    """A dispatch call (``GET_CALLS.activeCalls``/``closedCalls``, ``EVENT_DISPATCH_NEW``/``EDIT``, v2 answers).

    ``origin``, ``status`` and ``priority`` are None when the CAD did not say. ``primary`` is None when no
    unit is primary: the CAD writes that as -1 (the contract) or 0 (real payloads), and no identifier has
    an ID below 1.
    """

    call_id: ReqInt
    origin: OptInt = None
    status: OptInt = None
    priority: OptInt = None
    block: Text = ""
    address: Text = ""
    postal: Text = ""
    title: Text = ""
    code: Text = ""
    description: Text = ""
    notes: Notes = []
    idents: IntList = []
    primary: OptInt = None
    track_primary: Flag = False
    metadata: TextMap = Field(default_factory=dict, alias="metaData")
    updated: OptText = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        payload = dict(value)
        if payload.get("callId") in (None, "") and payload.get("call_id") in (None, ""):
            payload["callId"] = payload.get("id")
        return payload

    @field_validator("primary")
    @classmethod
    def _no_primary_below_one(cls, value: int | None) -> int | None:
        return value if value is not None and value > 0 else None

    @property
    def origin_label(self) -> str:
        return CALL_ORIGIN.label(self.origin)

    @property
    def status_label(self) -> str:
        return CALL_STATUS.label(self.status)

    @property
    def is_closed(self) -> bool:
        return self.status == CallStatus.CLOSED


CallList = Annotated[list[DispatchCall], BeforeValidator(_with_id("callId", "call_id", "id"))]
EmergencyCallList = Annotated[list[EmergencyCall], BeforeValidator(_with_id("callId", "call_id"))]


class CallsSnapshot(CadModel):
    """``GET_CALLS``: active dispatch calls, active 911 calls and recently closed dispatch calls."""

    active_calls: CallList = []
    emergency_calls: EmergencyCallList = []
    closed_calls: CallList = []


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
    notes: list[DispatchNote] = Field(default_factory=list)
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
    """``unit.data``: who the unit is. ``api_ids`` merges the ``apiIds`` list and the ``apiId1``/``apiId2``
    pair (the login event and GET_ACTIVE_UNITS disagree), without blanks or repeats."""

    api_ids: TextList = []
    community_user_id: Text = ""
    unit_num: Text = ""
    name: Text = ""
    district: Text = ""
    department: Text = ""
    subdivision: Text = ""
    rank: Text = ""
    group: Text = ""
    page: OptInt = None

    @model_validator(mode="before")
    @classmethod
    def _merge_api_ids(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return object_or_empty(value)
        payload = dict(value)
        merged = coerce_text_list(merged_values(payload, "apiIds", "api_ids", "apiId1", "apiId2"))
        payload["apiIds"] = list(dict.fromkeys(merged))
        for key in ("api_ids", "apiId1", "apiId2"):
            payload.pop(key, None)
        return payload


class Unit(CadModel):
    """A unit identifier (``GET_ACTIVE_UNITS``, ``EVENT_UNIT_LOGIN.unit``, the unit status/update events).

    ``id`` is the identifier ID (``identId`` in some payloads); ``status`` is None when the CAD did not say.
    """

    id: ReqInt
    acc_id: Text = ""
    status: OptInt = None
    is_panic: Flag = False
    location: Text = ""
    aop: Text = ""
    is_dispatch: Flag = False
    data: Annotated[UnitData, AS_OBJECT] = UnitData()

    @model_validator(mode="before")
    @classmethod
    def _ident_id(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or value.get("id") not in (None, ""):
            return value
        return {**value, "id": value.get("identId")}

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
        return UNIT_STATUS.label(self.status)

    @property
    def display_name(self) -> str:
        """What the unit calls itself: ``1A-12 Jordan Reyes``, whichever part exists, or "" when neither does
        (so a name learnt earlier is not overwritten by a placeholder)."""
        return " ".join(part for part in (self.data.unit_num.strip(), self.data.name.strip()) if part)

    @property
    def label(self) -> str:
        """:attr:`display_name`, else ``Unit #12``: never blank."""
        return self.display_name or f"Unit #{self.id}"


UnitList = Annotated[list[Unit], BeforeValidator(_with_id("id", "identId"))]
"""Units in a list; one without a usable ID cannot be named or tracked and is dropped."""


class Account(CadModel):
    """A community account (``GET_ACCOUNT``, ``GET_ACCOUNTS``)."""

    uuid: Text
    username: Text = ""
    status: Int = int(AccountStatus.ACTIVE)
    joined: OptText = None
    last_login: OptText = None
    permissions: FlagMap = {}
    api_ids: TextList = []
    community_user_id: Text = ""  # v2 only (the game's link)

    @property
    def is_banned(self) -> bool:
        return self.status == AccountStatus.BANNED


# ------------------------------------------------------------------------------------------ blips, servers


class BlipCoordinates(CadModel):
    x: Float = 0.0
    y: Float = 0.0


class BlipData(CadModel):
    """One ``{title, text}`` row shown in a blip's popup."""

    title: Text = ""
    text: Text = ""


class Blip(CadModel):
    """A live-map blip. ``id`` is -1 until the CAD assigns one."""

    id: Int = -1
    sub_type: OptText = None
    coordinates: Annotated[BlipCoordinates, AS_OBJECT] = BlipCoordinates()
    radius: OptFloat = None
    icon: Text = ""
    color: Text = ""
    tooltip: OptText = None
    data: Annotated[list[BlipData], AS_OBJECTS] = []

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

    id: ReqInt
    name: Text = ""
    description: Text = ""
    signal: OptText = None
    map_url: Text = ""
    map_ip: Text = ""
    map_port: Text = ""
    listener_port: Text = ""
    differing_outbound: Flag = False
    outbound_ip: Text = ""
    enable_map: Flag = False
    map_type: Text = ""
    is_static: Flag = False


# ---------------------------------------------------------------------------------------------- records


class RecordField(CadModel):
    """One field of a record. ``value`` is always text; premade sections keep structured values in ``data``."""

    type: Text = ""
    label: Text = ""
    value: Text = ""
    uid: Text = ""
    data: Any = None
    options: TextList = []
    size: OptInt = None
    is_previewed: Flag = False
    is_supervisor: Flag = False
    is_required: Flag = False
    unique: Flag = False
    read_only: Flag = False
    mask: Text = ""


class RecordSection(CadModel):
    category: OptInt = None
    label: Text = ""
    search_civ: Flag = False
    search_veh: Flag = False
    enable_duplicate: Flag = False
    fields: Annotated[list[RecordField], AS_OBJECTS] = []


class CustomRecord(CadModel):
    """A custom record or report (character, warrant, registration...): a typed header plus labelled
    sections of fields (``LOOKUP`` answers and the record push events)."""

    record_type_id: OptInt = None
    id: OptInt = None
    sync_id: Text = ""
    name: Text = ""
    type: OptInt = None
    sections: Annotated[list[RecordSection], AS_OBJECTS] = []

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
        return RecordType(self.type) if self.type is not None and self.type in RECORD_TYPE else None

    @property
    def type_label(self) -> str:
        """The community's template name if it has one, else the standard type name, else "Record"."""
        return self.name.strip() or RECORD_TYPE.label(self.type)

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


def _legacy_sections(value: object) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(value, Mapping):
        return {}
    return {
        str(key): [dict(item) for item in items if isinstance(item, Mapping)]
        for key, items in value.items()
        if isinstance(items, list)
    }


class LookupResult(CadModel):
    """``LOOKUP``: ``{records: [...]}``, a bare array, or the legacy per-kind arrays.

    The legacy shape (``warrantRecords``, ``bolos``, ``characters``...) is parsed best-effort into ``records``
    and kept raw in ``legacy_sections`` so nothing the CAD sent is lost.
    """

    records: Annotated[list[CustomRecord], AS_OBJECTS] = []
    legacy_sections: Annotated[dict[str, list[dict[str, Any]]], BeforeValidator(_legacy_sections)] = {}

    @model_validator(mode="before")
    @classmethod
    def _any_shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"records": data}
        if isinstance(data, Mapping) and not {"records", "legacy_sections", "legacySections"} & set(data):
            sections = _legacy_sections(data)
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
    status: Int = int(CallStatus.ACTIVE)


class TemplateField(CadModel):
    """A field of a dispatch template. ``binding`` ties it to a standard call field (status, units, priority,
    description ...); bound status/units/description fields are locked and required."""

    uid: Text
    type: Text = ""
    label: Text = ""
    binding: Text = ""
    size: OptInt = None
    required: Flag = False
    locked: Flag = False
    placeholder: Text = ""
    options: TextList = []


class TemplateSection(CadModel):
    uid: Text = ""
    label: Text = ""
    icon: Text = ""
    size: OptInt = None
    fields: Annotated[list[TemplateField], BeforeValidator(_with_id("uid", text=True))] = []


class DispatchTemplate(CadModel):
    """A community's dispatch template (v2 ``/emergency/dispatch-templates``): the form a custom call fills."""

    template_id: ReqInt
    name: Text = ""
    version: OptInt = None
    is_default: Flag = False
    status_options: Annotated[list[TemplateStatusOption], BeforeValidator(_with_id("id", text=True))] = []
    sections: Annotated[list[TemplateSection], AS_OBJECTS] = []

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
    com_id: Text = ""
    name: Text = ""
    timezone: Text = ""
    custom_login_url: Text = ""


class CadInfo(CadModel):
    """v2 ``/general/info``: the community behind the API key and its 10-codes."""

    uuid: Text = ""
    community: Annotated[CommunityInfo, AS_OBJECT] = CommunityInfo()
    codes: TextList = []
