"""The v2 API of the loopback CAD simulator, served from the same communities as v1 (``sim.v2``).

A 911 call made over v2 is in v1's ``GET_CALLS`` and the other way round: both read and write the
``SimCommunity`` objects of ``CadSimulator``. This module follows ``v2-endpoints.yaml``, including its
``simulator:`` rules where Sonoran's pages are silent:

- ``Authorization: Bearer <key>`` (scheme case-insensitive, key exact); 401 problem+json otherwise.
- problem+json errors (``type``, ``title``, ``status``, ``detail``, ``instance``, ``traceId``); 404 for a
  ``serverId`` the community has not configured; 400 for validation and for a wrong number of targets.
- The per-key, per-endpoint limits of ``v2_endpoints`` in fixed wall-clock minutes (``clock``), answered with
  the gateway's 429 body ``{message, request_id}`` and ``Retry-After``.
- Targets: ``discord`` finds the account whose ``discord_id`` is that user (none: 404 "Account ... was not
  found"), ``accountUuid`` the account, ``communityUserId`` (and the aliases ``apiId``/``apiIds``/``units``)
  the account's community user ID or one of its v1 API IDs.
- Faults as in v1 (``fail_next``, ``rate_limit_next``, ``drop_next``, ``latency_s``), matched by operation id;
  ``fail_next`` answers problem+json, ``rate_limit_next`` the gateway body. ``refuse_for_plan`` makes chosen
  operations answer 402 as a plan refusal.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.cad.codes import RecordType
from bot.cad.models import LookupSearchType
from bot.cad.v2_endpoints import OPERATIONS, WINDOW_S, Operation

if TYPE_CHECKING:
    from testing.cad_simulator import CadSimulator, SimAccount, SimCommunity, SimDispatch, SimRecord, SimUnit

PROBLEM_JSON = "application/problem+json"
TARGET_COUNT = "Provide exactly one of `accountUuid`, `communityUserId`, `roblox`, or `discord`."
UNIT_STATUS_NAMES = {0: "UNAVAILABLE", 1: "BUSY", 2: "AVAILABLE", 3: "ENROUTE", 4: "ON_SCENE", 100: "OFFLINE"}
PERMISSIONS = [
    "admin",
    "adminAccounts",
    "adminCustomization",
    "adminDepartments",
    "adminDiscordIntegration",
    "adminInGameIntegration",
    "adminLimits",
    "adminLogs",
    "adminPenalCodes",
    "adminPermissionKeys",
    "adminTenCodes",
    "civilian",
    "dispatch",
    "dmv",
    "dmvRecAdd",
    "dmvRecEdit",
    "dmvRecRemove",
    "dmvSuper",
    "ems",
    "fire",
    "fireRecAdd",
    "fireRecEdit",
    "fireRecRemove",
    "fireSuper",
    "lawRecAdd",
    "lawRecEdit",
    "lawRecRemove",
    "lawSuper",
    "lawyer",
    "liveMap",
    "medRecAdd",
    "medRecEdit",
    "medRecRemove",
    "medSuper",
    "modifyStreetSigns",
    "police",
    "polEditOtherUnit",
    "polEditUnit",
    "polRecAdd",
    "polRecEdit",
    "polRecRemove",
    "polSuper",
    "selfDispatch",
]
_TIER_WORDS = {0: "FREE", 1: "STARTER", 2: "STANDARD", 3: "PLUS", 4: "PRO", 6: "SONORAN ONE"}
# Aliases the official clients send (the simulator accepts them; the bot never relies on them).
_ALIASES = {"apiId": "communityUserId", "apiIds": "communityUserIds", "units": "communityUserIds"}
_BLIP_FIELDS = ("coordinates", "subType", "icon", "color", "tooltip", "radius", "data")
_DISPATCH_FIELDS = {
    "origin": int,
    "status": int,
    "priority": int,
    "block": str,
    "address": str,
    "postal": str,
    "title": str,
    "code": str,
    "description": str,
    "primary": int,
    "trackPrimary": bool,
}


class _Problem(Exception):
    """A handler's problem+json answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class _Call:
    """What a handler gets: the community, the operation, path parameters, query and JSON body."""

    community: SimCommunity
    op: Operation
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    server_id: int

    def field(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None


Handler = Callable[["SimulatorV2", _Call], web.Response]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trace_id() -> str:
    return f"00-{uuid_module.uuid4().hex}-{uuid_module.uuid4().hex[:16]}-01"


def problem(status: int, detail: str, instance: str) -> web.Response:
    body = {
        "type": f"https://httpstatuses.com/{status}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "traceId": _trace_id(),
    }
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)


def _ok(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _int(value: Any, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or value is None:
        raise _Problem(400, f"{name} is required." if value is None else f"{name} must be integer.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _Problem(400, f"{name} must be integer.") from None
    if minimum is not None and number < minimum:
        raise _Problem(400, f"{name} must be integer >= {minimum}.")
    return number


def _text(value: Any, name: str, *, required: bool = True) -> str:
    if value is None:
        if required:
            raise _Problem(400, f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise _Problem(400, f"{name} must be string.")
    return value


def _bool(value: Any, name: str, default: bool | None = None) -> bool:
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise _Problem(400, f"{name} is required." if value is None else f"{name} must be boolean.")
    return value


def _text_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Problem(400, f"{name} must be object.")
    # Scalars become strings (FiveM sends booleans that Sonoran.lua stringifies).
    return {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in value.items()}


def _id_list(value: Any, name: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if value is None or not items:
        raise _Problem(400, f"{name} is required.")
    return [_int(item, name) for item in items]


def _matches(value: str | None, wanted: str, partial: bool) -> bool:
    if value is None:
        return False
    have, want = value.strip().casefold(), wanted.strip().casefold()
    return want in have if partial else have == want


def _route(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


_ROUTES: list[tuple[re.Pattern[str], Operation]] = [(_route(op.path), op) for op in OPERATIONS.values()]


def _default_template(template_id: int) -> dict[str, Any]:
    """A template like the contract's example: a status bound to three options, a priority select, a
    required description, a caller name, and the locked units field."""
    return {
        "templateId": template_id,
        "name": "UK Control Room",
        "version": 2,
        "isDefault": template_id == 1,
        "statusOptions": [
            {"id": "awaiting_deployment", "label": "Awaiting Deployment", "status": 0},
            {"id": "deployed", "label": "Deployed", "status": 1},
            {"id": "resolved", "label": "Resolved", "status": 2},
        ],
        "sections": [
            {
                "uid": "call_source",
                "label": "Call Source",
                "icon": "fas fa-broadcast-tower",
                "size": 6,
                "fields": [
                    {"uid": "caller_name", "type": "text", "label": "Caller", "size": 6, "required": False},
                ],
            },
            {
                "uid": "details",
                "label": "Details",
                "icon": "fas fa-clipboard",
                "size": 12,
                "fields": [
                    {
                        "uid": "status",
                        "type": "select",
                        "label": "Status",
                        "binding": "status",
                        "required": True,
                        "locked": True,
                    },
                    {
                        "uid": "priority",
                        "type": "select",
                        "label": "Grade",
                        "binding": "priority",
                        "required": True,
                        "options": ["Immediate", "Priority", "Routine"],
                    },
                    {"uid": "code", "type": "text", "label": "Code", "binding": "code", "required": False},
                    {
                        "uid": "description",
                        "type": "textarea",
                        "label": "Description",
                        "binding": "description",
                        "required": True,
                        "locked": True,
                    },
                    {
                        "uid": "units",
                        "type": "units",
                        "label": "Units",
                        "binding": "units",
                        "required": True,
                        "locked": True,
                    },
                ],
            },
        ],
    }


class SimulatorV2:
    """The ``/v2/...`` routes of one ``CadSimulator``. Tests reach it as ``sim.v2``."""

    def __init__(self, sim: CadSimulator) -> None:
        self._sim = sim
        self.enforce_limits = True
        # Fixed windows of the wall clock, like the gateway's; tests may pin it.
        self.clock: Callable[[], float] = time.time
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}
        self._plan_refusals: dict[str, set[str]] = {}
        self.templates: dict[str, dict[int, dict[str, Any]]] = {}
        self._custom_calls: dict[tuple[str, int], dict[str, Any]] = {}
        self._handlers: dict[str, Handler] = {
            "create_911_call": SimulatorV2._create_911,
            "remove_911_call": SimulatorV2._remove_911,
            "set_unit_panic": SimulatorV2._unit_panic,
            "set_unit_status": SimulatorV2._unit_status,
            "get_active_units": SimulatorV2._active_units,
            "get_account_units": SimulatorV2._account_units,
            "get_calls": SimulatorV2._get_calls,
            "get_current_call": SimulatorV2._current_call,
            "create_dispatch_call": SimulatorV2._create_dispatch,
            "update_dispatch_call": SimulatorV2._update_dispatch,
            "attach_units": SimulatorV2._attach,
            "detach_units": SimulatorV2._detach,
            "add_call_note": SimulatorV2._add_note,
            "close_dispatch_calls": SimulatorV2._close_calls,
            "get_dispatch_templates": SimulatorV2._templates,
            "get_dispatch_template": SimulatorV2._template,
            "create_custom_dispatch_call": SimulatorV2._create_custom,
            "get_blips": SimulatorV2._get_blips,
            "create_blip": SimulatorV2._create_blip,
            "update_blip": SimulatorV2._update_blip,
            "delete_blips": SimulatorV2._delete_blips,
            "lookup_name_or_plate": SimulatorV2._lookup,
            "lookup_by_value": SimulatorV2._lookup_by_value,
            "lookup_by_custom": SimulatorV2._lookup_custom,
            "get_characters": SimulatorV2._characters,
            "get_account": SimulatorV2._get_account,
            "verify_secret": SimulatorV2._verify_secret,
            "get_servers": SimulatorV2._get_servers,
            "get_version": SimulatorV2._get_version,
            "get_info": SimulatorV2._get_info,
        }

    # -------------------------------------------------------------------------------------- setup

    def refuse_for_plan(self, community_id: str, *operation_ids: str) -> None:
        """Make these operations answer 402 for ``community_id`` (plan gating is off by default)."""
        unknown = [op for op in operation_ids if op not in OPERATIONS]
        if unknown:
            raise ValueError(f"unknown v2 operations: {unknown}")
        self._plan_refusals.setdefault(community_id, set()).update(operation_ids)

    def add_dispatch_template(
        self, community_id: str, template: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Store a dispatch template (wire shape; the contract's example form when none is given)."""
        stored = self.templates.setdefault(community_id, {})
        template_id = int(template["templateId"]) if template else max(stored, default=0) + 1
        stored[template_id] = dict(template) if template else _default_template(template_id)
        return stored[template_id]

    def custom_call_values(self, community_id: str, call_id: int) -> dict[str, Any] | None:
        """The template, values and status ID a custom dispatch call was made with."""
        return self._custom_calls.get((community_id, call_id))

    def requests_left(self, community_id: str, operation_id: str) -> int | None:
        """How many more requests the current minute allows (``None``: the page states no limit)."""
        limit = OPERATIONS[operation_id].per_minute
        if limit is None:
            return None
        window, count = self._windows.get((community_id, operation_id), (-1, 0))
        return limit - count if window == self._window() else limit

    def _window(self) -> int:
        return int(self.clock() // WINDOW_S)

    # -------------------------------------------------------------------------------------- dispatching

    async def handle(self, request: web.Request) -> web.StreamResponse:
        op, params = self._match(request.path, request.method)
        raw = await request.read()
        body: Any = None
        body_error = False
        if raw.strip():
            try:
                body = json.loads(raw)
            except (JSONDecodeError, UnicodeDecodeError):
                body_error = True
        community = self._community_for(request.headers.get("Authorization", ""))
        record = self._sim.record_request(
            op.id if op else "",
            community.community_id if community else "",
            body if body is not None else dict(request.query),
            request.path,
            request.method,
        )
        if self._sim.latency_s > 0:
            await self._sim.sleep_unless_stopping(self._sim.latency_s)
        fault = self._sim.take_fault(op.id) if op else None
        if fault is not None and fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=200, text="")
        if fault is not None and fault.kind == "rate_limit":
            response = self._rate_limited(fault.retry_after)
        elif fault is not None:
            response = problem(fault.status, "Injected failure.", request.path)
        else:
            response = self._answer(request, op, params, community, body, body_error)
        record.status = response.status
        return response

    def _match(self, path: str, method: str) -> tuple[Operation | None, dict[str, str]]:
        for pattern, op in _ROUTES:
            found = pattern.match(path)
            if found and op.method == method:
                return op, found.groupdict()
        return None, {}

    def _community_for(self, header: str) -> SimCommunity | None:
        scheme, _, key = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return next((c for c in self._sim.communities.values() if c.key_matches(key.strip())), None)

    def _answer(
        self,
        request: web.Request,
        op: Operation | None,
        params: dict[str, str],
        community: SimCommunity | None,
        body: Any,
        body_error: bool,
    ) -> web.Response:
        instance = request.path
        refused = self._refused_at_the_door(request, op, community)
        if refused is not None:
            return refused
        assert op is not None and community is not None
        if self.enforce_limits and not self._take_slot(community.community_id, op):
            return self._rate_limited(None)
        server_id = 0
        try:
            if op.server_scoped:
                server_id = self._server(community, params.get("serverId", ""))
            if op.id in self._plan_refusals.get(community.community_id, set()):
                return problem(402, "This feature is not available on your plan.", instance)
            if body_error:
                raise _Problem(400, "The request body must be JSON.")
            handler = self._handlers.get(op.id)
            if handler is None:
                return problem(501, f"{op.id} is not implemented by the simulator.", instance)
            return handler(self, _Call(community, op, params, request.query, body, server_id))
        except _Problem as refusal:
            return problem(refusal.status, refusal.detail, instance)

    @staticmethod
    def _refused_at_the_door(
        request: web.Request, op: Operation | None, community: SimCommunity | None
    ) -> web.Response | None:
        """The answer for a request no operation may see: an unknown route or method, or missing/bad auth."""
        instance = request.path
        if op is None:
            if any(pattern.match(request.path) for pattern, _ in _ROUTES):
                return problem(405, f"{request.method} is not allowed here.", instance)
            return problem(404, f"No route matches {request.path}.", instance)
        header = request.headers.get("Authorization")
        if not header:
            return problem(401, "Missing Authorization header.", instance)
        if header.strip().partition(" ")[0].lower() != "bearer":
            return problem(401, "Authorization header must use the Bearer scheme.", instance)
        if community is None:
            return problem(401, "Invalid API key.", instance)
        return None

    def _take_slot(self, community_id: str, op: Operation) -> bool:
        if op.per_minute is None:
            return True
        window = self._window()
        key = (community_id, op.id)
        current, count = self._windows.get(key, (window, 0))
        if current != window:
            count = 0
        if count >= op.per_minute:
            return False
        self._windows[key] = (window, count + 1)
        return True

    def _rate_limited(self, retry_after: float | None) -> web.Response:
        response = web.json_response(
            {"message": "API rate limit exceeded", "request_id": uuid_module.uuid4().hex}, status=429
        )
        if retry_after is None and self.enforce_limits:
            retry_after = max(1, math.ceil(WINDOW_S - self.clock() % WINDOW_S))
        if retry_after is not None:
            response.headers["Retry-After"] = f"{retry_after:g}"
        return response

    @staticmethod
    def _server(community: SimCommunity, raw: str) -> int:
        if not raw.isdigit():
            raise _Problem(400, "serverId must be integer.")
        server_id = int(raw)
        if server_id not in {int(s["id"]) for s in community.servers}:
            raise _Problem(404, f"Server {server_id} is not configured for this community.")
        return server_id

    # -------------------------------------------------------------------------------------- targets

    @staticmethod
    def _account(community: SimCommunity, key: str, value: Any) -> SimAccount | None:
        text = str(value).strip()
        if not text:
            return None
        if key == "discord":
            return next(
                (a for a in community.accounts.values() if a.discord_id and a.discord_id == text), None
            )
        if key == "accountUuid":
            return community.accounts.get(text)
        if key == "username":
            return next(
                (a for a in community.accounts.values() if a.username.casefold() == text.casefold()), None
            )
        if key == "communityUserId":
            linked = next((a for a in community.accounts.values() if a.community_user_id == text), None)
            return linked or community.account_for_api_id(text)
        return None  # roblox: no simulated account has a Roblox link

    def _targets(self, call: _Call, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The target keys present (aliases mapped), all from ``allowed``; none when nothing is named."""
        source = call.body if isinstance(call.body, dict) else dict(call.query)
        found: dict[str, Any] = {}
        for key, value in source.items():
            name = _ALIASES.get(key, key)
            if name in allowed and value is not None:
                if name in found:
                    raise _Problem(400, TARGET_COUNT)
                found[name] = value
        return found

    def _one_target(self, call: _Call, allowed: tuple[str, ...]) -> tuple[str, Any]:
        found = self._targets(call, allowed)
        if len(found) != 1:
            raise _Problem(400, TARGET_COUNT)
        return next(iter(found.items()))

    def _account_or_404(self, community: SimCommunity, key: str, value: Any) -> SimAccount:
        account = self._account(community, key, value)
        if account is None:
            raise _Problem(404, f"Account {value} was not found in this community.")
        return account

    def _units_of(self, community: SimCommunity, account: SimAccount, server_id: int) -> list[SimUnit]:
        return sorted(
            (u for u in community.units_of_account(account.uuid) if u.server_id == server_id),
            key=lambda u: u.id,
        )

    def _target_units(self, call: _Call, key: str, value: Any) -> list[SimUnit]:
        """The active units a target names (an account target that names no account: 404)."""
        community = call.community
        if key == "identIds":
            return [community.units[i] for i in _id_list(value, "identIds") if i in community.units]
        if key == "groupName":
            return [u for u in community.units.values() if u.online and u.group == str(value)]
        values = value if isinstance(value, list) else [value]
        single = "communityUserId" if key == "communityUserIds" else key
        units: list[SimUnit] = []
        for item in values:
            units += self._units_of(community, self._account_or_404(community, single, item), call.server_id)
        return units

    # -------------------------------------------------------------------------------------- wire shapes

    @staticmethod
    def _dispatch_wire(call: SimDispatch) -> dict[str, Any]:
        return {**call.to_wire(), "updated": _now_iso()}

    @staticmethod
    def _account_wire(account: SimAccount) -> dict[str, Any]:
        permissions = {name: False for name in PERMISSIONS}
        folded = {name.casefold(): name for name in PERMISSIONS}
        for name, granted in account.permissions.items():
            permissions[folded.get(name.casefold(), name)] = bool(granted)
        return {
            "uuid": account.uuid,
            "username": account.username,
            "communityUserId": account.community_user_id,
            "status": account.status,
            "joined": account.joined,
            "lastLogin": account.last_login,
            "permissions": permissions,
        }

    @staticmethod
    def _blip_wire(blip: Mapping[str, Any]) -> dict[str, Any]:
        raw = blip.get("coordinates")
        coordinates: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return {**blip, "coordinates": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 0.0, **coordinates}}

    @staticmethod
    def _note(content: str, label: str, note_type: str) -> dict[str, str]:
        return {"time": _now_iso(), "label": label, "type": note_type, "content": content}

    # -------------------------------------------------------------------------------------- 911

    def _create_911(self, call: _Call) -> web.Response:
        if call.field("deleteAfterMinutes") is not None:
            _int(call.field("deleteAfterMinutes"), "deleteAfterMinutes", minimum=0)
        created = call.community.add_emergency_call(
            caller=_text(call.field("caller"), "caller"),
            location=_text(call.field("location"), "location"),
            description=_text(call.field("description"), "description"),
            is_emergency=_bool(call.field("isEmergency"), "isEmergency"),
            server_id=call.server_id,
            metadata=_text_map(call.field("metaData"), "metaData"),
        )
        return _ok({**created.to_wire(), "updated": _now_iso()})

    def _remove_911(self, call: _Call) -> web.Response:
        call_id = _int(call.params["callId"], "callId", minimum=1)
        stored = call.community.emergency_calls.get(call_id)
        if stored is None or stored.server_id != call.server_id:
            raise _Problem(404, f"Emergency call {call_id} was not found.")
        del call.community.emergency_calls[call_id]
        return _ok({"callId": call_id, "serverId": call.server_id})

    # -------------------------------------------------------------------------------------- units

    _UNIT_TARGETS = ("communityUserId", "communityUserIds", "roblox", "discord", "accountUuid", "identIds")

    def _unit_panic(self, call: _Call) -> web.Response:
        is_panic = _bool(call.field("isPanic"), "isPanic")
        key, value = self._one_target(call, self._UNIT_TARGETS)
        units = self._target_units(call, key, value)
        for unit in units:
            unit.is_panic = is_panic
        return _ok({"updated": len(units), "isPanic": is_panic})

    def _unit_status(self, call: _Call) -> web.Response:
        raw = call.field("status")
        names = {name: code for code, name in UNIT_STATUS_NAMES.items()}
        status = names[raw.upper()] if isinstance(raw, str) and raw.upper() in names else _int(raw, "status")
        if status not in UNIT_STATUS_NAMES:
            raise _Problem(400, "status must be one of 0, 1, 2, 3, 4, 100.")
        key, value = self._one_target(call, self._UNIT_TARGETS)
        units = self._target_units(call, key, value)
        for unit in units:
            unit.status = status
        return _ok({"updated": len(units), "status": UNIT_STATUS_NAMES[status]})

    def _active_units(self, call: _Call) -> web.Response:
        include_offline = _bool(call.query.get("includeOffline"), "includeOffline", False)
        only_units = _bool(call.query.get("onlyUnits"), "onlyUnits", True)
        limit = _int(call.query.get("limit", 100), "limit", minimum=1)
        offset = _int(call.query.get("offset", 0), "offset", minimum=0)
        units = [
            u
            for u in sorted(call.community.units.values(), key=lambda u: u.id)
            if u.server_id == call.server_id
            and (u.online or include_offline)
            and not (only_units and u.is_dispatch)
        ]
        return _ok([call.community.unit_wire(u) for u in units[offset : offset + limit]])

    def _account_units(self, call: _Call) -> web.Response:
        account = self._account_or_404(call.community, "accountUuid", call.params["accountUuid"])
        only_online = _bool(call.query.get("onlyOnline"), "onlyOnline", True)
        only_units = _bool(call.query.get("onlyUnits"), "onlyUnits", True)
        limit = _int(call.query.get("limit", 100), "limit", minimum=1)
        offset = _int(call.query.get("offset", 0), "offset", minimum=0)
        units = [
            u
            for u in sorted(call.community.units.values(), key=lambda u: u.id)
            if u.account_uuid == account.uuid
            and u.server_id == call.server_id
            and (u.online or not only_online)
            and not (only_units and u.is_dispatch)
        ]
        return _ok({"Units": [call.community.unit_wire(u) for u in units[offset : offset + limit]]})

    # -------------------------------------------------------------------------------------- calls

    def _get_calls(self, call: _Call) -> web.Response:
        limit = min(100, _int(call.query.get("closedLimit", 10), "closedLimit", minimum=0))
        offset = _int(call.query.get("closedOffset", 0), "closedOffset", minimum=0)
        table = _int(call.query.get("type", 100), "type")
        if table not in (0, 1, 100):
            raise _Problem(400, "type must be one of 0, 1, 100.")
        calls = [c for c in call.community.dispatches.values() if c.server_id == call.server_id]
        closed = sorted((c for c in calls if c.status == 2), key=lambda c: -c.closed_order)
        emergency = [c for c in call.community.emergency_calls.values() if c.server_id == call.server_id]
        dispatch_wanted, emergency_wanted = table in (0, 100), table in (1, 100)
        return _ok(
            {
                "ActiveCalls": [self._dispatch_wire(c) for c in calls if c.status != 2]
                if dispatch_wanted
                else [],
                "EmergencyCalls": [{**c.to_wire(), "updated": _now_iso()} for c in emergency]
                if emergency_wanted
                else [],
                "ClosedCalls": [self._dispatch_wire(c) for c in closed[offset : offset + limit]]
                if dispatch_wanted
                else [],
                "ClosedCallCount": len(closed),
            }
        )

    def _current_call(self, call: _Call) -> web.Response:
        account = self._account_or_404(call.community, "accountUuid", call.params["accountUuid"])
        units = sorted(call.community.units_of_account(account.uuid), key=lambda u: u.id)
        if not units:
            return _ok({"IdentId": None, "CallId": None})
        ident = units[0].id
        on_call = next(
            (c.call_id for c in call.community.dispatches.values() if c.status != 2 and ident in c.idents),
            None,
        )
        return _ok({"IdentId": ident, "CallId": on_call})

    def _create_dispatch(self, call: _Call) -> web.Response:
        origin = _int(call.field("origin"), "origin", minimum=0)
        status = _int(call.field("status"), "status", minimum=0)
        priority = _int(call.field("priority"), "priority")
        title = _text(call.field("title"), "title")
        if not title.strip():
            raise _Problem(400, "title is required.")
        targets = self._targets(call, ("communityUserIds", "accounts", "roblox", "discord"))
        if not targets:
            raise _Problem(
                400, "Provide at least one unit target (communityUserIds, accounts, roblox, or discord)."
            )
        units: list[SimUnit] = []
        for key, value in targets.items():
            single = {"communityUserIds": "communityUserId", "accounts": "accountUuid"}.get(key, key)
            for item in value if isinstance(value, list) else [value]:
                account = self._account_or_404(call.community, single, item)
                units += self._units_of(call.community, account, call.server_id)[
                    :1
                ]  # the selected identifier
        created = call.community.add_dispatch(
            title=title,
            address=_text(call.field("address"), "address", required=False),
            units=list(dict.fromkeys(u.id for u in units)),
            status=status,
            priority=priority,
            origin=origin,
            code=_text(call.field("code"), "code", required=False),
            description=_text(call.field("description"), "description", required=False),
            postal=_text(call.field("postal"), "postal", required=False),
            server_id=call.server_id,
        )
        created.block = _text(call.field("block"), "block", required=False)
        created.metadata = _text_map(call.field("metaData"), "metaData")
        notes = call.field("notes") or []
        created.notes = [
            n if isinstance(n, dict) else self._note(str(n), "", "text")
            for n in (notes if isinstance(notes, list) else [notes])
        ]
        return _ok(self._dispatch_wire(created), status=201)

    def _dispatch_or_404(self, call: _Call) -> SimDispatch:
        call_id = _int(call.params["callId"], "callId", minimum=1)
        found = call.community.dispatches.get(call_id)
        if found is None or found.server_id != call.server_id:
            raise _Problem(404, f"Dispatch call {call_id} was not found.")
        return found

    def _update_dispatch(self, call: _Call) -> web.Response:
        dispatch = self._dispatch_or_404(call)
        changes = {k: v for k, v in (call.body or {}).items() if k in _DISPATCH_FIELDS or k == "metaData"}
        if not changes:
            raise _Problem(400, "Provide at least one field to update.")
        for key, value in changes.items():
            if key == "metaData":
                dispatch.metadata = _text_map(value, key)  # replaces the stored object
                continue
            kind = _DISPATCH_FIELDS[key]
            parsed = (
                _int(value, key) if kind is int else _bool(value, key) if kind is bool else _text(value, key)
            )
            if key == "trackPrimary":
                dispatch.track_primary = bool(parsed)
            elif key == "status" and parsed == 2 and dispatch.status != 2:
                call.community.close_dispatch(dispatch)
            else:
                setattr(dispatch, key, parsed)
        return _ok(self._dispatch_wire(dispatch))

    _ATTACH_TARGETS = ("groupName", *_UNIT_TARGETS)

    def _attach(self, call: _Call) -> web.Response:
        dispatch = self._dispatch_or_404(call)
        key, value = self._one_target(call, self._ATTACH_TARGETS)
        units = self._target_units(call, key, value)
        if not units:
            raise _Problem(404, f"Account {value} was not found in this community.")
        for unit in units:
            if unit.id not in dispatch.idents:
                dispatch.idents.append(unit.id)
        if dispatch.primary == -1 and dispatch.idents:
            dispatch.primary = dispatch.idents[0]
        return _ok({"callId": dispatch.call_id, "identIds": list(dispatch.idents)})

    def _detach(self, call: _Call) -> web.Response:
        key, value = self._one_target(call, self._ATTACH_TARGETS)
        detached = {unit.id for unit in self._target_units(call, key, value)}
        for dispatch in call.community.dispatches.values():
            if dispatch.server_id != call.server_id:
                continue
            dispatch.idents = [i for i in dispatch.idents if i not in detached]
            if dispatch.primary in detached:
                dispatch.primary = dispatch.idents[0] if dispatch.idents else -1
        return _ok({"identIds": sorted(detached)})

    def _add_note(self, call: _Call) -> web.Response:
        call_id = _int(call.params["callId"], "callId", minimum=1)
        note = _text(call.field("note"), "note")
        if not note.strip():
            raise _Problem(400, "note is required.")
        note_type = _text(call.field("noteType"), "noteType", required=False) or "text"
        if note_type not in ("text", "link"):
            raise _Problem(400, "noteType must be text or link.")
        dispatch = call.community.dispatches.get(call_id)
        emergency = call.community.emergency_calls.get(call_id)
        if dispatch is not None and dispatch.server_id == call.server_id:
            label = _text(call.field("label"), "label", required=False)
            dispatch.notes.append(self._note(note, label, note_type))
        elif emergency is None or emergency.server_id != call.server_id:
            raise _Problem(404, f"Call {call_id} was not found.")
        return _ok({"callId": call_id, "note": note})

    def _close_calls(self, call: _Call) -> web.Response:
        ids = _id_list(call.field("callIds"), "callIds")
        closed: list[int] = []
        known = False
        for call_id in ids:
            dispatch = call.community.dispatches.get(call_id)
            if dispatch is None or dispatch.server_id != call.server_id:
                continue
            known = True
            if dispatch.status != 2:
                call.community.close_dispatch(dispatch)
                closed.append(call_id)
        if not known:
            raise _Problem(404, f"Dispatch call {ids[0]} was not found.")
        return _ok({"callIds": closed})

    # -------------------------------------------------------------------------------------- custom dispatch

    def _templates(self, call: _Call) -> web.Response:
        return _ok(list(self.templates.get(call.community.community_id, {}).values()))

    def _template_or_404(self, community: SimCommunity, raw: Any) -> dict[str, Any]:
        template_id = _int(raw, "templateId", minimum=1)
        template = self.templates.get(community.community_id, {}).get(template_id)
        if template is None:
            raise _Problem(404, f"Template {template_id} was not found.")
        return template

    def _template(self, call: _Call) -> web.Response:
        return _ok(self._template_or_404(call.community, call.params["templateId"]))

    def _create_custom(self, call: _Call) -> web.Response:
        template = self._template_or_404(call.community, call.field("templateId"))
        values = call.field("values")
        if not isinstance(values, dict):
            raise _Problem(400, "values is required.")
        fields = {f["uid"]: f for s in template.get("sections", []) for f in s.get("fields", [])}
        by_binding = {str(f.get("binding", "")).lower(): uid for uid, f in fields.items() if f.get("binding")}
        _check_custom_values(template, fields, by_binding, values)
        options = {o["id"]: o for o in template.get("statusOptions", [])}
        status_uid = by_binding.get("status")
        status_id = str(values.get(status_uid, "")) if status_uid else ""
        priority_uid = by_binding.get("priority")
        priority = 2
        if priority_uid and values.get(priority_uid) is not None:
            priority = list(fields[priority_uid].get("options") or []).index(values[priority_uid]) + 1
        targets = self._targets(
            call,
            (
                "identIds",
                "accountUuid",
                "accounts",
                "communityUserId",
                "communityUserIds",
                "roblox",
                "discord",
            ),
        )
        units: list[SimUnit] = []
        for key, value in targets.items():
            single = "accountUuid" if key == "accounts" else key
            units += self._target_units(call, single, value)
        if not units:
            raise _Problem(400, "At least one valid unit target is required.")

        def bound(name: str) -> str:
            uid = by_binding.get(name)
            return str(values.get(uid, "")) if uid else ""

        created = call.community.add_dispatch(
            title=bound("title") or str(template.get("name", "")),
            address=bound("address"),
            units=list(dict.fromkeys(u.id for u in units)),
            status=int(options[status_id]["status"]) if status_id else 1,
            priority=priority,
            code=bound("code"),
            description=bound("description"),
            postal=bound("postal"),
            server_id=call.server_id,
        )
        created.metadata = _text_map(call.field("metaData"), "metaData")
        extra = {"template": template, "values": dict(values), "statusId": status_id}
        self._custom_calls[(call.community.community_id, created.call_id)] = extra
        return _ok({**self._dispatch_wire(created), **extra}, status=201)

    # -------------------------------------------------------------------------------------- blips

    def _server_blips(self, call: _Call) -> dict[int, dict[str, Any]]:
        community = call.community
        return {i: b for i, b in community.blips.items() if community.blip_servers.get(i) == call.server_id}

    def _get_blips(self, call: _Call) -> web.Response:
        return _ok([self._blip_wire(b) for b in self._server_blips(call).values()])

    def _create_blip(self, call: _Call) -> web.Response:
        coordinates = call.field("coordinates")
        if not isinstance(coordinates, dict) or not all(
            isinstance(coordinates.get(axis), int | float) for axis in ("x", "y")
        ):
            raise _Problem(400, "coordinates must be object.")
        blip: dict[str, Any] = {"coordinates": coordinates}
        for name in ("subType", "icon", "color", "tooltip"):
            blip[name] = _text(call.field(name), name)
        if call.field("radius") is not None:
            if not isinstance(call.field("radius"), int | float):
                raise _Problem(400, "radius must be number.")
            blip["radius"] = call.field("radius")
        if call.field("data") is not None:
            blip["data"] = call.field("data")
        stored = call.community.add_blip(blip, server_id=call.server_id)
        return _ok(self._blip_wire(stored))

    def _update_blip(self, call: _Call) -> web.Response:
        blip_id = _int(call.params["blipId"], "blipId", minimum=1)
        blip = self._server_blips(call).get(blip_id)
        if blip is None:
            raise _Problem(404, f"Blip {blip_id} was not found.")
        changes = {k: v for k, v in (call.body or {}).items() if k in _BLIP_FIELDS}
        if not changes:
            raise _Problem(400, "Provide at least one field to update.")
        blip.update(changes)
        return _ok({"id": blip_id})

    def _delete_blips(self, call: _Call) -> web.Response:
        ids = _id_list(call.field("ids"), "ids")
        mine = self._server_blips(call)
        deleted = [i for i in ids if i in mine]
        if not deleted:
            raise _Problem(404, f"Blip {ids[0]} was not found.")
        for blip_id in deleted:
            call.community.blips.pop(blip_id, None)
            call.community.blip_servers.pop(blip_id, None)
        return _ok({"ids": deleted})

    # -------------------------------------------------------------------------------------- lookups

    @staticmethod
    def _types(call: _Call) -> set[int]:
        raw = call.field("types")
        if raw is None:
            return set()
        return {_int(t, "types") for t in (raw if isinstance(raw, list) else [raw])}

    def _lookup(self, call: _Call) -> web.Response:
        criteria = {key: str(call.field(key) or "").strip() for key in ("first", "last", "mi", "plate")}
        if not any(criteria.values()):
            raise _Problem(400, "Provide a name or plate to search.")
        partial = _bool(call.field("partial"), "partial", False)
        types = self._types(call)
        found = [
            r.record
            for r in call.community.records
            if (not types or r.type in types)
            and all(_matches(r.field_value(uid), want, partial) for uid, want in criteria.items() if want)
        ]
        return _ok(found)

    def _lookup_by_value(self, call: _Call) -> web.Response:
        raw_type = call.field("searchType")
        names = {member.name: int(member) for member in LookupSearchType}
        if isinstance(raw_type, str) and raw_type.upper() in names:
            search = names[raw_type.upper()]
        else:
            search = _int(raw_type, "searchType")
        if search not in names.values():
            raise _Problem(400, "searchType must be one of " + ", ".join(names) + ".")
        value = str(call.field("value") if call.field("value") is not None else "").strip()
        if not value:
            raise _Problem(400, "value is required.")
        types = self._types(call)
        limit = _int(call.field("limit") or 10, "limit", minimum=1)
        offset = _int(call.field("offset") or 0, "offset", minimum=0)
        community = call.community

        def wanted(record: SimRecord) -> bool:
            number = int(value) if value.lstrip("-").isdigit() else None
            if search == LookupSearchType.IDENTIFIER:
                return record.ident_id == number
            if search == LookupSearchType.SUPERVISOR_STATUS:
                return record.supervisor_status == number
            if search == LookupSearchType.ACTIVE_STATUS:
                return record.active_status == number
            if search == LookupSearchType.NUMBER:
                return record.id == number
            if search == LookupSearchType.SECRET:
                owner = next((a for a in community.accounts.values() if a.secret == value), None)
                return owner is not None and record.owner_account == owner.uuid
            return record.owner_account == value

        found = [r.record for r in community.records if (not types or r.type in types) and wanted(r)]
        return _ok(found[offset : offset + limit])

    def _lookup_custom(self, call: _Call) -> web.Response:
        mapping = _text(call.field("map"), "map").strip()
        value = _text(call.field("value"), "value").strip()
        if not mapping or not value:
            raise _Problem(400, "map and value are required.")
        partial = _bool(call.field("partial"), "partial", False)
        types = self._types(call)
        # A mapping names a record field; an unknown mapping finds nothing.
        found = [
            r.record
            for r in call.community.records
            if (not types or r.type in types) and _matches(r.field_value(mapping), value, partial)
        ]
        return _ok(found)

    def _characters(self, call: _Call) -> web.Response:
        key, value = self._one_target(call, ("communityUserId", "roblox", "discord", "accountUuid"))
        account = self._account_or_404(call.community, key, value)
        return _ok(
            [
                r.record
                for r in call.community.records
                if r.type == RecordType.CHARACTER and r.owner_account == account.uuid
            ]
        )

    # -------------------------------------------------------------------------------------- accounts

    def _get_account(self, call: _Call) -> web.Response:
        key, value = self._one_target(
            call, ("communityUserId", "roblox", "discord", "accountUuid", "username")
        )
        return _ok(self._account_wire(self._account_or_404(call.community, key, value)))

    def _verify_secret(self, call: _Call) -> web.Response:
        secret = _text(call.field("secret"), "secret").strip()
        owner = next((a for a in call.community.accounts.values() if secret and a.secret == secret), None)
        if owner is None:
            raise _Problem(404, "Secret not found.")
        return _ok({secret: owner.uuid})

    # -------------------------------------------------------------------------------------- community

    def _get_servers(self, call: _Call) -> web.Response:
        servers = [dict(s) for s in call.community.servers]
        return _ok(servers if call.community.servers_as_bare_array else {"servers": servers})

    def _get_version(self, call: _Call) -> web.Response:
        tier = int(call.community.tier)
        return _ok({"version": tier, "name": _TIER_WORDS.get(tier, f"PLAN {tier}")})

    def _get_info(self, call: _Call) -> web.Response:
        community_id = call.community.community_id
        return _ok(
            {
                "uuid": str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"sim:{community_id}")),
                "community": {
                    "comId": community_id,
                    "name": f"Simulated {community_id}",
                    "timezone": "UTC",
                    "customLoginUrl": "",
                },
                "codes": ["10-4", "10-8", "10-23"],
            }
        )


def _check_custom_values(
    template: dict[str, Any], fields: dict[str, Any], by_binding: dict[str, str], values: dict[str, Any]
) -> None:
    """400 unless ``values`` fill the template: known fields only, required ones present, and the status and
    priority among their options."""
    for key in values:
        if key not in fields:
            raise _Problem(400, f"{key} is not a field of template {template['templateId']}.")
    for uid, spec in fields.items():
        if spec.get("required") and spec.get("binding") != "units" and not str(values.get(uid) or "").strip():
            raise _Problem(400, f"{uid} is required.")
    options = {o["id"]: o for o in template.get("statusOptions", [])}
    status_uid = by_binding.get("status")
    status_id = str(values.get(status_uid, "")) if status_uid else ""
    if status_uid and status_id not in options:
        raise _Problem(400, f"{status_uid} must be one of {', '.join(options)}.")
    priority_uid = by_binding.get("priority")
    if priority_uid and values.get(priority_uid) is not None:
        choices = list(fields[priority_uid].get("options") or [])
        if values[priority_uid] not in choices:
            raise _Problem(400, f"{priority_uid} must be one of {', '.join(choices)}.")
