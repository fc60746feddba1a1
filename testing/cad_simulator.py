"""A stateful loopback Sonoran CAD (v1, and v2 through ``cad_simulator_v2`` on the same state) for tests,
benchmarks and local development.

It answers the same contract as ``api.sonorancad.com`` for every type ``CadClient`` sends: the envelope checks
(community ID, then key, then type), per-community plan enforcement from ``MIN_TIER``, the documented bodies
(``EMERGENCY CALL ADDED ID: 1042``, ``NEW DISPATCH CREATED - ID: 7``, the JSON shapes, copy-paste bodies such
as ``REMOVE_911`` answering ``API ID(s) set!``), and ``Backend Service Reached`` for a path the CAD would not
route. Faults can be injected: latency, 5xx, 429 (optionally with ``Retry-After``) and dropped connections.

Where the docs say nothing (an unknown call ID, a unit that is not logged in) the simulator accepts the
request and changes nothing rather than inventing an error the real CAD may not send.

Requests under ``/v2/`` go to ``SimulatorV2`` (``sim.v2``), which serves the v2 API from the same communities.
Every request is recorded in ``requests`` without its API key. Run a dev server with
``python -m testing.cad_simulator [PORT]``; it seeds community ``dev`` whose key is ``$CAD_SIM_API_KEY``
(default ``dev-key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import sys
import time
import uuid as uuid_module
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from bot.cad.codes import RecordType
from bot.cad.endpoints import ENDPOINT_WORDING_TYPES, type_for_path
from bot.cad.tiers import MIN_TIER, Tier
from testing.cad_simulator_v2 import SimulatorV2

log = logging.getLogger(__name__)

NOT_LINKED = "API ID NOT LINKED TO AN ACCOUNT IN THIS COMMUNITY"
BACKEND_REACHED = "Backend Service Reached"
_TIER_WORDS = {0: "FREE", 1: "STARTER", 2: "STANDARD", 3: "PLUS", 4: "PRO", 6: "SONORAN ONE"}


# ----------------------------------------------------------------------------------------- records of state


@dataclass
class SimRequest:
    """One request as it arrived, without its key. ``status`` is what was answered (``None``: dropped)."""

    type: str
    community_id: str
    data: Any
    at: float
    path: str = ""
    status: int | None = None
    method: str = "POST"  # v2 requests are recorded under their operation id (``create_911_call``)


@dataclass
class SimAccount:
    uuid: str
    username: str
    secret: str
    api_ids: list[str] = field(default_factory=list)
    status: int = 1
    permissions: dict[str, bool] = field(default_factory=dict)
    joined: str = "2024-01-01T00:00:00"
    last_login: str = "2024-01-01T00:00:00"
    discord_id: str = ""  # the Discord account linked in the CAD (v2 `discord` target); "" = not linked
    community_user_id: str = ""  # the game's link (v2 `communityUserId`)

    def to_wire(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "username": self.username,
            "status": self.status,
            "joined": self.joined,
            "lastLogin": self.last_login,
            "permissions": dict(self.permissions),
            "apiIds": list(self.api_ids),
        }


@dataclass
class SimUnit:
    id: int
    account_uuid: str = ""
    unit_num: str = ""
    name: str = ""
    status: int = 2
    is_panic: bool = False
    location: str = ""
    aop: str = ""
    is_dispatch: bool = False
    online: bool = True
    district: str = ""
    department: str = ""
    subdivision: str = ""
    rank: str = ""
    group: str = ""
    page: int = 0
    community_user_id: str = ""
    server_id: int = 1
    api_ids: list[str] = field(default_factory=list)


@dataclass
class SimEmergencyCall:
    call_id: int
    server_id: int = 1
    is_emergency: bool = True
    caller: str = ""
    location: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "isEmergency": self.is_emergency,
            "caller": self.caller,
            "location": self.location,
            "description": self.description,
            "metaData": dict(self.metadata),
        }


@dataclass
class SimDispatch:
    call_id: int
    server_id: int = 1
    origin: int = 0
    status: int = 1
    priority: int = 2
    block: str = ""
    address: str = ""
    postal: str = ""
    title: str = ""
    code: str = ""
    description: str = ""
    notes: list[dict[str, str]] = field(default_factory=list)
    idents: list[int] = field(default_factory=list)
    primary: int = -1
    track_primary: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    closed_order: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "origin": self.origin,
            "status": self.status,
            "priority": self.priority,
            "block": self.block,
            "address": self.address,
            "postal": self.postal,
            "title": self.title,
            "code": self.code,
            "description": self.description,
            "notes": [dict(note) for note in self.notes],
            "idents": list(self.idents),
            "primary": self.primary,
            "trackPrimary": self.track_primary,
            "metaData": dict(self.metadata),
        }


@dataclass
class SimRecord:
    """A custom record (wire shape in ``record``) plus what ``LOOKUP_INT`` can search it by."""

    record: dict[str, Any]
    owner_account: str | None = None
    ident_id: int | None = None
    supervisor_status: int | None = None
    active_status: int | None = None

    @property
    def id(self) -> int:
        return int(self.record.get("id", -1))

    @property
    def type(self) -> int:
        return int(self.record.get("type", 0))

    def field_value(self, uid: str) -> str | None:
        for section in self.record.get("sections", []):
            for item in section.get("fields", []):
                if str(item.get("uid", "")).casefold() == uid.casefold():
                    return str(item.get("value", ""))
        return None


@dataclass
class _Fault:
    kind: Literal["drop", "fail", "rate_limit"]
    status: int = 500
    retry_after: float | None = None
    request_type: str | None = None


class _Refusal(Exception):
    """A handler's non-200 answer."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


# ------------------------------------------------------------------------------------------ community state


class SimCommunity:
    """Everything one simulated community holds. Seed it with the ``add_*`` methods."""

    def __init__(self, community_id: str, api_key: str, tier: Tier) -> None:
        self.community_id = community_id
        self._api_key = api_key
        self.tier = tier
        self.api_enabled = True
        # Ambiguities the real CAD resolves one way or the other; tests flip these to prove leniency.
        self.new_dispatch_answers_json = False
        self.servers_as_bare_array = False
        self.unit_api_ids_style: Literal["pair", "list"] = "pair"
        self.accounts: dict[str, SimAccount] = {}
        self.units: dict[int, SimUnit] = {}
        self.emergency_calls: dict[int, SimEmergencyCall] = {}
        self.dispatches: dict[int, SimDispatch] = {}
        self.blips: dict[int, dict[str, Any]] = {}
        self.blip_servers: dict[int, int] = {}
        self.records: list[SimRecord] = []
        self.servers: list[dict[str, Any]] = [_server_wire(1, "Server 1")]
        self._next_911 = 1042
        self._next_dispatch = 7
        self._next_ident = 100
        self._next_blip = 1
        self._next_record = 1
        self._closed_counter = 0

    def __repr__(self) -> str:
        return f"SimCommunity(community_id={self.community_id!r}, tier={self.tier!r})"

    def key_matches(self, key: object) -> bool:
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self._api_key.encode())

    def rotate_key(self, new_key: str) -> None:
        self._api_key = new_key

    # -------------------------------------------------------------------------------------- seeding

    def add_account(
        self,
        username: str,
        *,
        uuid: str | None = None,
        secret: str | None = None,
        api_ids: Iterable[str] = (),
        status: int = 1,
        permissions: Mapping[str, bool] | None = None,
        discord_id: int | str | None = None,
        community_user_id: str = "",
    ) -> SimAccount:
        """``discord_id`` links the account to a Discord user (what v2's ``discord`` target finds)."""
        account = SimAccount(
            uuid=uuid or str(uuid_module.uuid4()),
            username=username,
            secret=secret or str(uuid_module.uuid4()),
            api_ids=list(api_ids),
            status=status,
            permissions=dict(permissions or {"police": True}),
            discord_id=str(discord_id) if discord_id is not None else "",
            community_user_id=community_user_id,
        )
        self.accounts[account.uuid] = account
        return account

    def add_unit(
        self,
        *,
        account: SimAccount | str | None = None,
        unit_num: str = "",
        name: str = "",
        status: int = 2,
        online: bool = True,
        is_dispatch: bool = False,
        ident_id: int | None = None,
        api_ids: Iterable[str] = (),
        **details: Any,
    ) -> SimUnit:
        """Add a unit identifier; ``details`` sets any other ``SimUnit`` field (department, location...)."""
        account_uuid = account.uuid if isinstance(account, SimAccount) else (account or "")
        if ident_id is None:
            ident_id = self._next_ident
            self._next_ident += 1
        unit = SimUnit(
            id=ident_id,
            account_uuid=account_uuid,
            unit_num=unit_num,
            name=name,
            status=status,
            online=online,
            is_dispatch=is_dispatch,
            api_ids=list(api_ids),
            **details,
        )
        self.units[unit.id] = unit
        return unit

    def add_record(
        self,
        *,
        record_type: RecordType | int = RecordType.CHARACTER,
        fields: Mapping[str, str] | None = None,
        name: str = "",
        record_id: int | None = None,
        owner_account: SimAccount | str | None = None,
        ident_id: int | None = None,
        supervisor_status: int | None = None,
        active_status: int | None = None,
        raw: dict[str, Any] | None = None,
    ) -> SimRecord:
        """Add a record. ``fields`` maps field uid -> value (``first``, ``last``, ``plate``...);
        ``raw`` stores a complete custom_record as given instead."""
        if record_id is None:
            record_id = self._next_record
        self._next_record = max(self._next_record, record_id) + 1
        if raw is not None:
            record = {**raw, "id": raw.get("id", record_id)}
        else:
            record = _record_wire(record_id, int(record_type), name, fields or {})
        owner = owner_account.uuid if isinstance(owner_account, SimAccount) else owner_account
        stored = SimRecord(record, owner, ident_id, supervisor_status, active_status)
        self.records.append(stored)
        return stored

    def add_dispatch(
        self,
        *,
        title: str,
        address: str = "",
        units: Iterable[int] = (),
        status: int = 1,
        priority: int = 2,
        origin: int = 0,
        code: str = "",
        description: str = "",
        postal: str = "",
        notes: Iterable[str] = (),
        server_id: int = 1,
    ) -> SimDispatch:
        call = SimDispatch(
            call_id=self._next_dispatch,
            server_id=server_id,
            origin=origin,
            status=status,
            priority=priority,
            address=address,
            postal=postal,
            title=title,
            code=code,
            description=description,
            notes=[_note(text, "") for text in notes],
            idents=list(units),
        )
        if call.idents:
            call.primary = call.idents[0]
        self._next_dispatch += 1
        self.dispatches[call.call_id] = call
        if status == 2:
            self.close_dispatch(call)
        return call

    def add_emergency_call(
        self,
        *,
        caller: str,
        location: str,
        description: str,
        is_emergency: bool = True,
        server_id: int = 1,
        metadata: Mapping[str, str] | None = None,
    ) -> SimEmergencyCall:
        call = SimEmergencyCall(
            call_id=self._next_911,
            server_id=server_id,
            is_emergency=is_emergency,
            caller=caller,
            location=location,
            description=description,
            metadata=dict(metadata or {}),
        )
        self._next_911 += 1
        self.emergency_calls[call.call_id] = call
        return call

    def add_blip(self, blip: Mapping[str, Any], *, server_id: int = 1) -> dict[str, Any]:
        """Store a blip (wire shape) under a fresh ID and return the stored copy."""
        stored = {**blip, "id": self._next_blip}
        self._next_blip += 1
        self.blips[stored["id"]] = stored
        self.blip_servers[stored["id"]] = server_id
        return stored

    def add_server(self, server_id: int, name: str, **wire: Any) -> dict[str, Any]:
        server = {**_server_wire(server_id, name), **wire}
        self.servers = [s for s in self.servers if s["id"] != server_id] + [server]
        return server

    # -------------------------------------------------------------------------------------- lookups

    def account_for_api_id(self, api_id: str) -> SimAccount | None:
        for account in self.accounts.values():
            if api_id in account.api_ids:
                return account
        for unit in self.units.values():
            if api_id in unit.api_ids and unit.account_uuid in self.accounts:
                return self.accounts[unit.account_uuid]
        return None

    def unit_api_ids(self, unit: SimUnit) -> list[str]:
        account = self.accounts.get(unit.account_uuid)
        merged = list(unit.api_ids)
        for api_id in account.api_ids if account else []:
            if api_id and api_id not in merged:
                merged.append(api_id)
        return merged

    def units_of_account(self, account_uuid: str) -> list[SimUnit]:
        return [u for u in self.units.values() if u.account_uuid == account_uuid and u.online]

    def unit_wire(self, unit: SimUnit) -> dict[str, Any]:
        api_ids = self.unit_api_ids(unit)
        data: dict[str, Any] = {
            "communityUserId": unit.community_user_id,
            "unitNum": unit.unit_num,
            "name": unit.name,
            "district": unit.district,
            "department": unit.department,
            "subdivision": unit.subdivision,
            "rank": unit.rank,
            "group": unit.group,
            "page": unit.page,
        }
        if self.unit_api_ids_style == "list":
            data["apiIds"] = api_ids
        else:
            data["apiId1"] = api_ids[0] if api_ids else ""
            data["apiId2"] = api_ids[1] if len(api_ids) > 1 else ""
        return {
            "id": unit.id,
            "accId": unit.account_uuid,
            "status": unit.status,
            "isPanic": unit.is_panic,
            "location": unit.location,
            "aop": unit.aop,
            "isDispatch": unit.is_dispatch,
            "data": data,
        }

    def close_dispatch(self, call: SimDispatch) -> None:
        call.status = 2
        self._closed_counter += 1
        call.closed_order = self._closed_counter


def _server_wire(server_id: int, name: str) -> dict[str, Any]:
    return {
        "id": server_id,
        "name": name,
        "description": "",
        "signal": None,
        "mapUrl": "",
        "mapIp": "127.0.0.1",
        "mapPort": "30120",
        "listenerPort": "3232",
        "differingOutbound": False,
        "outboundIp": "",
        "enableMap": True,
        "mapType": "NORMAL",
        "isStatic": False,
    }


def _record_wire(record_id: int, record_type: int, name: str, fields: Mapping[str, str]) -> dict[str, Any]:
    try:
        default_name = RecordType(record_type).label
    except ValueError:
        default_name = "Record"
    return {
        "recordTypeId": record_type,
        "id": record_id,
        "syncId": "",
        "name": name or default_name,
        "type": record_type,
        "sections": [
            {
                "category": 0,
                "label": "Information",
                "searchCiv": record_type == RecordType.CHARACTER,
                "searchVeh": "plate" in fields,
                "enableDuplicate": False,
                "fields": [
                    {
                        "type": "input",
                        "label": uid.replace("_", " ").title(),
                        "value": value,
                        "uid": uid,
                        "size": 4,
                        "data": {},
                        "options": [],
                        "isPreviewed": True,
                        "isSupervisor": False,
                        "isRequired": False,
                        "unique": False,
                        "readOnly": False,
                        "mask": "",
                        "maskReverse": False,
                        "dbMap": False,
                        "isFromSync": False,
                    }
                    for uid, value in fields.items()
                ],
            }
        ],
    }


def _note(content: str, label: str, note_type: str = "text") -> dict[str, str]:
    return {
        "time": datetime.now().strftime("%H:%M:%S"),
        "label": label,
        "type": note_type,
        "content": content,
    }


# ------------------------------------------------------------------------------------------ request helpers


def _items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    return []


def _as_int(item: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or value is None:
        raise _Refusal(400, f"INVALID {key.upper()}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Refusal(400, f"INVALID {key.upper()}") from None


def _server_id(item: Mapping[str, Any]) -> int:
    return _as_int(item, "serverId", 1)


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


def _json(body: Any) -> web.Response:
    return web.json_response(body)


Handler = Callable[[SimCommunity, Any], web.Response]


# ----------------------------------------------------------------------------------------------- the server


class CadSimulator:
    """The loopback CAD. ``async with CadSimulator() as sim:`` starts it on a free port of 127.0.0.1."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_s
        self.communities: dict[str, SimCommunity] = {}
        self.requests: list[SimRequest] = []
        self._faults: deque[_Fault] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._base_url: str | None = None
        self.v2 = SimulatorV2(self)
        self._handlers: dict[str, Handler] = {
            "CALL_911": self._call_911,
            "REMOVE_911": self._remove_911,
            "GET_CALLS": self._get_calls,
            "NEW_DISPATCH": self._new_dispatch,
            "ATTACH_UNIT": self._attach_unit,
            "DETACH_UNIT": self._detach_unit,
            "ADD_CALL_NOTE": self._add_call_note,
            "CLOSE_CALL": self._close_call,
            "UNIT_PANIC": self._unit_panic,
            "UNIT_STATUS": self._unit_status,
            "GET_ACTIVE_UNITS": self._get_active_units,
            "GET_BLIPS": self._get_blips,
            "ADD_BLIP": self._add_blip,
            "MODIFY_BLIP": self._modify_blip,
            "REMOVE_BLIP": self._remove_blip,
            "LOOKUP": self._lookup,
            "LOOKUP_INT": self._lookup_int,
            "GET_ACCOUNT": self._get_account,
            "CHECK_APIID": self._check_apiid,
            "VERIFY_SECRET": self._verify_secret,
            "GET_VERSION": self._get_version,
            "GET_SERVERS": self._get_servers,
        }

    # -------------------------------------------------------------------------------------- setup

    def add_community(self, community_id: str, api_key: str, tier: Tier = Tier.PRO) -> SimCommunity:
        community = SimCommunity(community_id, api_key, tier)
        self.communities[community_id] = community
        return community

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._base_url

    async def start(self) -> str:
        """Start serving and return the base URL (``http://127.0.0.1:PORT``)."""
        if self._runner is not None:
            return self.base_url
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self._stopping.clear()
        port = runner.addresses[0][1]
        self._base_url = f"http://{self.host}:{port}"
        log.debug("CAD simulator listening on %s", self._base_url)
        return self._base_url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        self._base_url = None

    async def __aenter__(self) -> CadSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -------------------------------------------------------------------------------------- faults

    def fail_next(self, n: int = 1, status: int = 500, *, request_type: str | None = None) -> None:
        """Answer the next ``n`` requests (of ``request_type`` if given) with ``status`` without acting."""
        self._faults.extend(_Fault("fail", status=status, request_type=request_type) for _ in range(n))

    def rate_limit_next(
        self, n: int = 1, retry_after: float | None = None, *, request_type: str | None = None
    ) -> None:
        """Answer the next ``n`` requests with 429 (and ``Retry-After`` when given)."""
        self._faults.extend(
            _Fault("rate_limit", status=429, retry_after=retry_after, request_type=request_type)
            for _ in range(n)
        )

    def drop_next(self, n: int = 1, *, request_type: str | None = None) -> None:
        """Close the connection of the next ``n`` requests without answering (and without acting)."""
        self._faults.extend(_Fault("drop", request_type=request_type) for _ in range(n))

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, request_type: str) -> _Fault | None:
        for fault in self._faults:
            if fault.request_type in (None, request_type):
                self._faults.remove(fault)
                return fault
        return None

    # -------------------------------------------------------------------------------------- inspection

    def record_request(
        self, request_type: str, community_id: str, data: Any, path: str, method: str
    ) -> SimRequest:
        """Note a request as it arrived (no key); ``status`` is filled in once it is answered."""
        record = SimRequest(
            type=request_type, community_id=community_id, data=data, at=time.time(), path=path, method=method
        )
        self.requests.append(record)
        return record

    def requests_of(self, request_type: str) -> list[SimRequest]:
        return [r for r in self.requests if r.type == request_type]

    def clear_requests(self) -> None:
        self.requests.clear()

    # -------------------------------------------------------------------------------------- dispatching

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/v2/"):
            return await self.v2.handle(request)
        raw = await request.read()
        try:
            envelope = json.loads(raw) if raw else None
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            envelope = {}
        request_type = str(envelope.get("type", "")).upper()
        record = SimRequest(
            type=request_type,
            community_id=str(envelope.get("id", "")),
            data=envelope.get("data"),
            at=time.time(),
            path=request.path,
        )
        self.requests.append(record)

        if self.latency_s > 0:
            await self.sleep_unless_stopping(self.latency_s)

        fault = self.take_fault(request_type)
        if fault is not None and fault.kind == "drop":
            log.debug("CAD simulator dropping %s", request_type)
            if request.transport is not None:
                request.transport.abort()
            return _text(200, "")
        if fault is not None:
            response = _text(fault.status, HTTPStatus(fault.status).phrase.upper())
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
        else:
            response = self._answer(request, envelope, request_type)
        record.status = response.status
        log.debug("CAD simulator %s community=%s -> %s", request_type, record.community_id, response.status)
        return response

    async def sleep_unless_stopping(self, seconds: float) -> None:
        # Wakes early when the simulator stops, so shutdown never waits out an injected delay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _answer(self, request: web.Request, envelope: dict[str, Any], request_type: str) -> web.Response:
        path_type = type_for_path(request.path)
        if request.method != "POST" or path_type is None:
            return _text(200, BACKEND_REACHED)
        community = self.communities.get(str(envelope.get("id", "")))
        if community is None:
            return _text(400, "INVALID COMMUNITY ID")
        if not community.key_matches(envelope.get("key")):
            return _text(400, "INVALID API KEY")
        if request_type != path_type:
            return _text(400, "INVALID REQUEST TYPE")
        required = MIN_TIER.get(request_type, Tier.STANDARD)
        if community.tier < required or (not community.api_enabled and request_type != "GET_VERSION"):
            word = "API ENDPOINT" if request_type in ENDPOINT_WORDING_TYPES else "API"
            return _text(400, f"{word} IS NOT ENABLED FOR THIS COMMUNITY")
        handler = self._handlers.get(request_type)
        if handler is None:
            return _text(501, f"{request_type} IS NOT IMPLEMENTED BY THE SIMULATOR")
        try:
            return handler(community, envelope.get("data"))
        except _Refusal as refusal:
            return _text(refusal.status, refusal.body)

    # -------------------------------------------------------------------------------------- target resolution

    def _units_for(self, community: SimCommunity, item: Mapping[str, Any]) -> list[SimUnit]:
        """Units named by ``apiId``, ``account``, ``identIds`` or ``units`` (a list of API IDs).

        A single unlinked ``apiId`` is answered 404 (how the legacy integration learned "not linked"); unknown
        entries in a ``units`` list are skipped, as nothing documents an error for them.
        """
        found: list[SimUnit] = []
        if item.get("apiId"):
            account = community.account_for_api_id(str(item["apiId"]))
            if account is None:
                raise _Refusal(404, NOT_LINKED)
            found += community.units_of_account(account.uuid)
        for api_id in item.get("units") or []:
            account = community.account_for_api_id(str(api_id))
            if account is not None:
                found += community.units_of_account(account.uuid)
        if item.get("account"):
            found += community.units_of_account(str(item["account"]))
        for ident in item.get("identIds") or []:
            unit = community.units.get(_as_int({"identId": ident}, "identId"))
            if unit is not None:
                found.append(unit)
        unique: dict[int, SimUnit] = {unit.id: unit for unit in found}
        return list(unique.values())

    # -------------------------------------------------------------------------------------- 911

    def _call_911(self, community: SimCommunity, data: Any) -> web.Response:
        lines = []
        for item in _items(data):
            call = community.add_emergency_call(
                caller=str(item.get("caller", "")),
                location=str(item.get("location", "")),
                description=str(item.get("description", "")),
                is_emergency=bool(item.get("isEmergency", True)),
                server_id=_server_id(item),
                metadata={str(k): str(v) for k, v in (item.get("metaData") or {}).items()},
            )
            lines.append(f"EMERGENCY CALL ADDED ID: {call.call_id}")
        return _text(200, "\n".join(lines))

    def _remove_911(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            community.emergency_calls.pop(_as_int(item, "callId"), None)
        return _text(200, "API ID(s) set!")  # the documented body, copied from SET_API_ID

    # -------------------------------------------------------------------------------------- dispatch

    def _get_calls(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        server = _server_id(item)
        limit = max(0, min(100, _as_int(item, "closedLimit", 10)))
        offset = max(0, _as_int(item, "closedOffset", 0))
        calls = [c for c in community.dispatches.values() if c.server_id == server]
        closed = sorted((c for c in calls if c.status == 2), key=lambda c: -c.closed_order)
        return _json(
            {
                "activeCalls": [c.to_wire() for c in calls if c.status != 2],
                "emergencyCalls": [
                    c.to_wire() for c in community.emergency_calls.values() if c.server_id == server
                ],
                "closedCalls": [c.to_wire() for c in closed[offset : offset + limit]],
            }
        )

    def _new_dispatch(self, community: SimCommunity, data: Any) -> web.Response:
        created: list[SimDispatch] = []
        for item in _items(data):
            units = self._units_for(community, {"units": item.get("units") or [], "identIds": []}) + [
                u for acc in item.get("accounts") or [] for u in community.units_of_account(str(acc))
            ]
            call = community.add_dispatch(
                title=str(item.get("title", "")),
                address=str(item.get("address", "")),
                units=[u.id for u in units],
                status=_as_int(item, "status", 1),
                priority=_as_int(item, "priority", 2),
                origin=_as_int(item, "origin", 0),
                code=str(item.get("code", "")),
                description=str(item.get("description", "")),
                postal=str(item.get("postal", "")),
                server_id=_server_id(item),
            )
            call.block = str(item.get("block", ""))
            call.metadata = {str(k): str(v) for k, v in (item.get("metaData") or {}).items()}
            call.notes = [n if isinstance(n, dict) else _note(str(n), "") for n in item.get("notes") or []]
            if "primary" in item:
                call.primary = _as_int(item, "primary")
            call.track_primary = bool(item.get("trackPrimary", False))
            created.append(call)
        if community.new_dispatch_answers_json and len(created) == 1:
            return _json(created[0].to_wire())
        return _text(200, "\n".join(f"NEW DISPATCH CREATED - ID: {c.call_id}" for c in created))

    def _attach_unit(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            call = community.dispatches.get(_as_int(item, "callId"))
            units = self._units_for(community, item)
            if call is None:
                continue
            for unit in units:
                if unit.id not in call.idents:
                    call.idents.append(unit.id)
            if call.primary == -1 and call.idents:
                call.primary = call.idents[0]
        return _text(200, "UNITS ATTACHED")

    def _detach_unit(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            detached = {unit.id for unit in self._units_for(community, item)}
            for call in community.dispatches.values():
                call.idents = [ident for ident in call.idents if ident not in detached]
                if call.primary in detached:
                    call.primary = call.idents[0] if call.idents else -1
        return _text(200, "UNITS DETACHED")

    def _add_call_note(self, community: SimCommunity, data: Any) -> web.Response:
        lines = []
        for item in _items(data):
            call_id = _as_int(item, "callId")
            note = str(item.get("note", ""))
            call = community.dispatches.get(call_id)
            if call is not None:
                call.notes.append(_note(note, str(item.get("label", "")), str(item.get("noteType", "text"))))
            lines.append(f"NOTE '{note}' added to call #{call_id}")
        return _text(200, "\n".join(lines))

    def _close_call(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            call = community.dispatches.get(_as_int(item, "callId"))
            if call is not None and call.status != 2:
                community.close_dispatch(call)
        return _text(200, "UNITS ATTACHED")  # the documented body, copied from ATTACH_UNIT

    # -------------------------------------------------------------------------------------- units

    def _unit_panic(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            for unit in self._units_for(community, item):
                unit.is_panic = bool(item.get("isPanic", False))
        return _text(200, "UNIT PANIC UPDATED")

    def _unit_status(self, community: SimCommunity, data: Any) -> web.Response:
        for item in _items(data):
            status = _as_int(item, "status")
            for unit in self._units_for(community, item):
                unit.status = status
        return _text(200, "UNIT STATUS UPDATED")

    def _get_active_units(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        server = _server_id(item)
        only_units = bool(item.get("onlyUnits", item.get("unitsOnly", True)))
        include_offline = bool(item.get("includeOffline", False))
        limit = max(1, min(100, _as_int(item, "limit", 100)))
        offset = max(0, _as_int(item, "offset", 0))
        units = [
            u
            for u in sorted(community.units.values(), key=lambda u: u.id)
            if u.server_id == server and (u.online or include_offline) and not (only_units and u.is_dispatch)
        ]
        return _json([community.unit_wire(u) for u in units[offset : offset + limit]])

    # -------------------------------------------------------------------------------------- blips

    def _get_blips(self, community: SimCommunity, data: Any) -> web.Response:
        server = _server_id((_items(data) or [{}])[0])
        return _json([dict(b) for bid, b in community.blips.items() if community.blip_servers[bid] == server])

    def _add_blip(self, community: SimCommunity, data: Any) -> web.Response:
        added = []
        for item in _items(data):
            blip = item.get("blip")
            if not isinstance(blip, dict) or not isinstance(blip.get("coordinates"), dict):
                raise _Refusal(400, "INVALID BLIP")
            added.append(dict(community.add_blip(blip, server_id=_server_id(item))))
        return _json(added)

    def _modify_blip(self, community: SimCommunity, data: Any) -> web.Response:
        lines = []
        for item in _items(data):
            blip_id = _as_int(item, "id")
            blip = community.blips.get(blip_id)
            if blip is not None:
                blip.update({k: v for k, v in item.items() if k != "id"})
            lines.append(f"Blip {blip_id} modified!")
        return _text(200, "\n".join(lines))

    def _remove_blip(self, community: SimCommunity, data: Any) -> web.Response:
        lines = []
        for item in _items(data):
            listed = item.get("ids")
            # Sonoran.js sends a single `id`; the docs send `ids`.
            ids: list[Any] = listed if isinstance(listed, list) else [item.get("id")]
            for raw_id in ids:
                blip_id = _as_int({"id": raw_id}, "id")
                community.blips.pop(blip_id, None)
                community.blip_servers.pop(blip_id, None)
                lines.append(f"Blip {blip_id} removed!")
        return _text(200, "\n".join(lines))

    # -------------------------------------------------------------------------------------- lookups

    def _lookup(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        criteria = {key: str(item.get(key) or "").strip() for key in ("first", "last", "mi", "plate")}
        if not any(criteria.values()):
            raise _Refusal(400, "INVALID EMPTY SEARCH")
        partial = bool(item.get("partial", True))
        types = {int(t) for t in item.get("types") or []}
        matches = []
        for record in community.records:
            if types and record.type not in types and record.type != RecordType.CHARACTER:
                continue
            if all(
                _matches(record.field_value(uid), wanted, partial)
                for uid, wanted in criteria.items()
                if wanted
            ):
                matches.append(record.record)
        return _json({"records": matches})

    def _lookup_int(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        value = item.get("value")
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _Refusal(400, "INVALID EMPTY SEARCH")
        search_type = _as_int(item, "searchType")
        types = {int(t) for t in item.get("types") or []}
        limit = max(1, _as_int(item, "limit", 10))
        offset = max(0, _as_int(item, "offset", 0))

        def wanted(record: SimRecord) -> bool:
            if search_type == 0:
                return record.ident_id == _as_int(item, "value")
            if search_type == 1:
                return record.supervisor_status == _as_int(item, "value")
            if search_type == 2:
                return record.active_status == _as_int(item, "value")
            if search_type == 3:
                return record.id == _as_int(item, "value")
            if search_type == 4:
                owner = next((a for a in community.accounts.values() if a.secret == str(value)), None)
                return owner is not None and record.owner_account == owner.uuid
            if search_type == 5:
                return record.owner_account == str(value)
            raise _Refusal(400, "INVALID SEARCHTYPE")

        found = [r.record for r in community.records if (not types or r.type in types) and wanted(r)]
        return _json(found[offset : offset + limit])

    # -------------------------------------------------------------------------------------- accounts

    def _get_account(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        account: SimAccount | None = None
        if item.get("account"):
            account = community.accounts.get(str(item["account"]))
        elif item.get("username"):
            account = next(
                (
                    a
                    for a in community.accounts.values()
                    if a.username.casefold() == str(item["username"]).casefold()
                ),
                None,
            )
        elif item.get("apiId"):
            account = community.account_for_api_id(str(item["apiId"]))
        if account is None:
            # Undocumented for GET_ACCOUNT; answered like the other API-ID endpoints.
            raise _Refusal(404, NOT_LINKED)
        return _json(account.to_wire())

    def _check_apiid(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        account = community.account_for_api_id(str(item.get("apiId", "")))
        if account is None:
            raise _Refusal(404, NOT_LINKED)
        return _text(200, account.username)

    def _verify_secret(self, community: SimCommunity, data: Any) -> web.Response:
        item = (_items(data) or [{}])[0]
        secret = str(item.get("secret", ""))
        owner = next(
            (a for a in community.accounts.values() if secret and hmac.compare_digest(a.secret, secret)), None
        )
        return _json({owner.uuid: owner.secret} if owner else {})

    # -------------------------------------------------------------------------------------- community

    def _get_version(self, community: SimCommunity, data: Any) -> web.Response:
        tier = int(community.tier)
        word = _TIER_WORDS.get(tier)
        return _text(200, f"{tier} - {word}" if word else str(tier))

    def _get_servers(self, community: SimCommunity, data: Any) -> web.Response:
        servers = [dict(s) for s in community.servers]
        return _json(servers if community.servers_as_bare_array else {"servers": servers})


def _matches(value: str | None, wanted: str, partial: bool) -> bool:
    if value is None:
        return False
    have, want = value.strip().casefold(), wanted.casefold()
    return want in have if partial else have == want


# ----------------------------------------------------------------------------------------------- dev server


def seed_demo(community: SimCommunity) -> None:
    """A small, believable data set for local development and benchmarks."""
    # Alice linked Discord in the CAD (v2 finds her by `discord`); Bob did not.
    alice = community.add_account("alice", api_ids=["discord:1001", "STEAM:11000010a0b0c0d"], discord_id=1001)
    bob = community.add_account("bob", api_ids=["discord:1002"])
    a10 = community.add_unit(account=alice, unit_num="A-10", name="Alice Adams", department="LSPD")
    community.add_unit(account=bob, unit_num="M-2", name="Bob Brown", department="LSFD", status=3)
    community.add_record(fields={"first": "John", "last": "Smith", "dob": "1990-04-02"})
    community.add_record(
        record_type=RecordType.VEHICLE_REGISTRATION,
        fields={"plate": "ABC123", "first": "John", "last": "Smith"},
    )
    community.add_dispatch(title="Traffic stop", address="Route 68", code="10-38", units=[a10.id])
    community.add_emergency_call(caller="Jane Doe", location="Legion Square", description="Car fire")


async def _serve(port: int) -> None:
    simulator = CadSimulator(host="127.0.0.1", port=port)
    community = simulator.add_community("dev", os.environ.get("CAD_SIM_API_KEY", "dev-key"), Tier.PRO)
    seed_demo(community)
    simulator.v2.add_dispatch_template(community.community_id)
    base_url = await simulator.start()
    log.info("CAD simulator serving %s (community id 'dev', key from $CAD_SIM_API_KEY)", base_url)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 8787
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(port))
    except KeyboardInterrupt:
        log.info("CAD simulator stopped")


if __name__ == "__main__":
    main()
