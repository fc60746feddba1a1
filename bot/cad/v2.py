"""The Sonoran CAD v2 client: the same typed methods and domain models as the v1 client (``CadApi``), over
Sonoran's current resource-style API (``/v2/...``, ``Authorization: Bearer <key>``, JSON bodies).

Members are named by a ``MemberTarget``: a Discord user ID goes out as ``discord`` (the CAD account the member
linked to Discord), an account UUID as ``accountUuid``, an API ID as ``apiId``. The bot never sends
``communityUserId``: that field is the game server's link. Where the CAD answers "no such account" for a
target, the member gets ``CadNotLinkedError`` with one sentence on how to link.

Sending, per-key limits, retries and the error mapping live in ``v2_transport``; this module only builds
requests and reads answers into ``bot.cad.models``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from bot.cad.codes import RecordType
from bot.cad.errors import (
    REDACTED,
    CadEmptySearchError,
    CadNotFoundError,
    CadNotLinkedError,
    CadPlanError,
    CadUnexpectedResponseError,
)
from bot.cad.models import (
    Account,
    Blip,
    BlipChanges,
    CadCredentials,
    CadInfo,
    CallsSnapshot,
    CustomRecord,
    DispatchCall,
    DispatchChanges,
    DispatchTemplate,
    LookupResult,
    LookupSearchType,
    MemberTarget,
    NewDispatch,
    Server,
    TargetKind,
    Unit,
)
from bot.cad.tiers import Tier
from bot.cad.v2_limits import DEFAULT_PAUSE_S, KeyBudgets
from bot.cad.v2_transport import (
    NOT_FOUND_MESSAGES,
    TARGET_KEYS,
    UNKNOWN_ACCOUNT_ID_TEXT,
    V2Answer,
    V2Transport,
    count_in,
    created_id,
    member,
    only_list,
    validate,
    validate_list,
)
from bot.timing import MonotonicClock

# Where a list is sent instead of one target (create dispatch takes lists of accounts and API IDs).
_TARGET_LIST_KEYS: dict[TargetKind, str] = {"account": "accounts", "api_id": "apiIds"}


class CadV2Client:
    """Typed access to the CAD's v2 API for many communities through one shared ``aiohttp.ClientSession``."""

    api_version = 2

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        tier_ttl_s: float = 600.0,
        servers_ttl_s: float = 300.0,
        default_pause_s: float = DEFAULT_PAUSE_S,
        max_pause_s: float = 600.0,
        budgets: KeyBudgets | None = None,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        """``timeout_s`` bounds every request; ``budgets`` is the process's one ``KeyBudgets`` (a fresh one
        when not given); ``default_pause_s`` is how long an endpoint rests after a 429 that named no time."""
        self.transport = V2Transport(
            session,
            base_url=base_url,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            tier_ttl_s=tier_ttl_s,
            servers_ttl_s=servers_ttl_s,
            default_pause_s=default_pause_s,
            max_pause_s=max_pause_s,
            budgets=budgets,
            clock=clock,
        )
        self._plan_locks: dict[str, asyncio.Lock] = {}

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def budgets(self) -> KeyBudgets:
        """The per-key budgets this client spends (share one ``KeyBudgets`` between clients of one process)."""
        return self.transport.budgets

    async def send(self, creds: CadCredentials, operation_id: str, **request: Any) -> V2Answer:
        """One raw v2 operation (see ``V2Transport.send``), for what has no typed method yet."""
        return await self.transport.send(creds, operation_id, **request)

    # ------------------------------------------------------------------------------------------ plans

    def cached_tier(self, community_id: str) -> Tier | None:
        """The plan the CAD reported within the plan TTL; never touches the network."""
        plan = self.transport.cached_plan(community_id)
        return plan.tier if plan else None

    def cached_plan_label(self, community_id: str) -> str | None:
        """The plan as the CAD names it (``Sonoran CAD Plus``), if read recently."""
        plan = self.transport.cached_plan(community_id)
        return plan.label if plan else None

    def invalidate_tier(self, community_id: str) -> None:
        self.transport.forget_plan(community_id)

    async def get_tier(self, creds: CadCredentials) -> Tier:
        """The plan, from cache or one ``/general/version`` (concurrent callers share that request)."""
        cached = self.cached_tier(creds.community_id)
        if cached is not None:
            return cached
        lock = self._plan_locks.setdefault(creds.community_id, asyncio.Lock())
        async with lock:
            cached = self.cached_tier(creds.community_id)
            if cached is not None:
                return cached
            return await self.get_version(creds)

    def explain_refusal(self, creds: CadCredentials, request_type: str) -> CadPlanError | None:
        """Always ``None``: no v2 page states a plan, so nothing is refused before the CAD decides."""
        return None

    async def ensure_allowed(self, creds: CadCredentials, request_type: str) -> None:
        """Does nothing and sends nothing: on v2 the CAD decides, and a refusal names the plan it reports."""

    # ------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def _unit_selector(
        target: MemberTarget | None, ident_ids: Sequence[int] | None, group_name: str | None = None
    ) -> dict[str, Any]:
        """Exactly one unit target, as the routes that say "exactly one of" want it."""
        given: dict[str, Any] = {}
        if target is not None:
            given[TARGET_KEYS[target.kind]] = target.value
        if ident_ids:
            given["identIds"] = [int(i) for i in ident_ids]
        if group_name and group_name.strip():
            given["groupName"] = group_name.strip()
        if len(given) != 1:
            raise ValueError("name the units exactly once: a member target, ident_ids or a group name")
        return given

    # ------------------------------------------------------------------------------------------ 911 calls

    async def call_911(
        self,
        creds: CadCredentials,
        *,
        caller: str,
        location: str,
        description: str,
        emergency: bool,
        metadata: dict[str, str] | None = None,
        delete_after_minutes: int | None = None,
    ) -> int:
        """Create a 911 call; returns its call ID."""
        body: dict[str, Any] = {
            "isEmergency": emergency,
            "caller": caller,
            "location": location,
            "description": description,
        }
        if metadata:
            body["metaData"] = {str(k): str(v) for k, v in metadata.items()}
        if delete_after_minutes is not None:
            body["deleteAfterMinutes"] = max(1, int(delete_after_minutes))
        answer = await self.transport.send(creds, "create_911_call", body=body)
        return created_id(answer, "callId", "id")

    async def remove_911(self, creds: CadCredentials, call_id: int) -> None:
        await self.transport.send(creds, "remove_911_call", path={"callId": int(call_id)})

    # ------------------------------------------------------------------------------------------ units

    async def unit_panic(
        self,
        creds: CadCredentials,
        *,
        is_panic: bool,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
    ) -> int:
        """Turn panic on or off for the member's active units; returns how many units changed (0: none on
        duty). The CAD sends no push event for this; post your own message."""
        body = {**self._unit_selector(target, ident_ids), "isPanic": is_panic}
        answer = await self.transport.send(creds, "set_unit_panic", body=body, target=target)
        return count_in(answer, "updated")

    async def unit_status(
        self,
        creds: CadCredentials,
        *,
        status: int,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
    ) -> int:
        """Set the status code of the member's active units; returns how many changed (0: none on duty)."""
        if status < 0:
            raise ValueError("a unit status code cannot be negative")
        body = {**self._unit_selector(target, ident_ids), "status": int(status)}
        answer = await self.transport.send(creds, "set_unit_status", body=body, target=target)
        return count_in(answer, "updated")

    async def get_active_units(
        self,
        creds: CadCredentials,
        *,
        include_offline: bool = False,
        only_units: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Unit]:
        query = {
            "includeOffline": include_offline,
            "onlyUnits": only_units,
            "limit": max(1, min(100, limit)),
            "offset": max(0, offset),
        }
        answer = await self.transport.send(creds, "get_active_units", query=query)
        op = answer.operation
        return validate_list(Unit, only_list(answer.json_body(), "units"), op)

    async def get_account_units(
        self,
        creds: CadCredentials,
        account_uuid: str,
        *,
        only_online: bool = True,
        only_units: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Unit]:
        """The unit identifiers of one account (``{Units: [...]}``)."""
        target = MemberTarget.account(account_uuid)
        query = {
            "onlyOnline": only_online,
            "onlyUnits": only_units,
            "limit": max(1, min(100, limit)),
            "offset": max(0, offset),
        }
        answer = await self.transport.send(
            creds, "get_account_units", path={"accountUuid": target.value}, query=query, target=target
        )
        return validate_list(Unit, only_list(answer.json_body(), "units"), answer.operation)

    # ------------------------------------------------------------------------------------------ calls

    async def get_calls(
        self, creds: CadCredentials, *, closed_limit: int = 10, closed_offset: int = 0
    ) -> CallsSnapshot:
        query = {"closedLimit": max(0, min(100, closed_limit)), "closedOffset": max(0, closed_offset)}
        answer = await self.transport.send(creds, "get_calls", query=query)
        body = answer.json_body()
        lists = {
            alias: member(body, alias)
            for alias in ("activeCalls", "emergencyCalls", "closedCalls")
            if isinstance(member(body, alias), list)
        }
        return validate(CallsSnapshot, lists, answer.operation)

    async def get_current_call(self, creds: CadCredentials, account_uuid: str) -> int | None:
        """The call the account's selected unit is attached to, or ``None`` when it is on no call."""
        target = MemberTarget.account(account_uuid)
        answer = await self.transport.send(
            creds, "get_current_call", path={"accountUuid": target.value}, target=target
        )
        value = member(answer.body, "CallId", "callId")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        return None

    async def new_dispatch(
        self, creds: CadCredentials, dispatch: NewDispatch, *, attach: MemberTarget | None = None
    ) -> int:
        """Create a dispatch call; returns its call ID. ``dispatch.units`` (API IDs), ``dispatch.accounts``
        and ``attach`` (a member whose unit responds) name the units; none of them makes an unassigned call.
        ``primary``/``trackPrimary`` are not create fields in v2, so they follow in one edit."""
        wire = dispatch.model_dump(by_alias=True, exclude_none=True, mode="json")
        api_ids: list[str] = list(wire.pop("units", []))
        accounts: list[str] = list(wire.pop("accounts", []))
        follow_up = {key: wire.pop(key) for key in ("primary", "trackPrimary") if key in wire}
        body: dict[str, Any] = dict(wire)
        if attach is not None and attach.kind == "discord":
            body["discord"] = attach.value
        elif attach is not None:
            (accounts if attach.kind == "account" else api_ids).append(attach.value)
        if api_ids:
            body[_TARGET_LIST_KEYS["api_id"]] = api_ids
        if accounts or (not api_ids and "discord" not in body):
            # An empty list is how the contract says "no units yet".
            body[_TARGET_LIST_KEYS["account"]] = accounts
        answer = await self.transport.send(creds, "create_dispatch_call", body=body, target=attach)
        call_id = created_id(answer, "callId", "id")
        if follow_up:
            await self.transport.send(creds, "update_dispatch_call", path={"callId": call_id}, body=follow_up)
        return call_id

    async def update_dispatch(self, creds: CadCredentials, call_id: int, **changes: Any) -> DispatchCall:
        """Change fields of a dispatch call (``status=1, postal="9002"``); returns the call after the change."""
        parsed = DispatchChanges.model_validate(changes)
        body = parsed.to_wire()
        if not body:
            raise ValueError("say what to change on the call")
        answer = await self.transport.send(
            creds, "update_dispatch_call", path={"callId": int(call_id)}, body=body
        )
        return validate(DispatchCall, answer.json_body(), answer.operation)

    async def attach_unit(
        self,
        creds: CadCredentials,
        call_id: int,
        *,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
        group_name: str | None = None,
    ) -> None:
        body = self._unit_selector(target, ident_ids, group_name)
        await self.transport.send(
            creds, "attach_units", path={"callId": int(call_id)}, body=body, target=target
        )

    async def detach_unit(
        self,
        creds: CadCredentials,
        *,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
        group_name: str | None = None,
    ) -> None:
        """Detach units from whatever call they are on (the route takes no call ID)."""
        body = self._unit_selector(target, ident_ids, group_name)
        await self.transport.send(creds, "detach_units", body=body, target=target)

    async def add_call_note(
        self, creds: CadCredentials, call_id: int, note: str, *, label: str | None = None, link: bool = False
    ) -> None:
        if not note.strip():
            raise ValueError("a call note cannot be empty")
        body: dict[str, Any] = {"note": note, "noteType": "link" if link else "text"}
        if label:
            body["label"] = label
        await self.transport.send(creds, "add_call_note", path={"callId": int(call_id)}, body=body)

    async def close_call(self, creds: CadCredentials, call_id: int) -> None:
        answer = await self.transport.send(creds, "close_dispatch_calls", body={"callIds": [int(call_id)]})
        closed = member(answer.body, "callIds")
        if isinstance(closed, list) and int(call_id) not in {i for i in closed if isinstance(i, int)}:
            raise CadNotFoundError(
                f"v2 close_dispatch_calls: call {int(call_id)} not among the closed {closed}",
                status=answer.status,
                request_type=answer.operation.request_type,
                user_message=NOT_FOUND_MESSAGES["call"],
            )

    # ------------------------------------------------------------------------------------------ templates

    async def get_dispatch_templates(self, creds: CadCredentials) -> list[DispatchTemplate]:
        answer = await self.transport.send(creds, "get_dispatch_templates")
        body = only_list(answer.json_body(), "templates", "dispatchTemplates")
        return validate_list(DispatchTemplate, body, answer.operation)

    async def get_dispatch_template(self, creds: CadCredentials, template_id: int) -> DispatchTemplate:
        if int(template_id) < 1:
            raise ValueError("a template ID is a whole number from 1")
        answer = await self.transport.send(
            creds, "get_dispatch_template", path={"templateId": int(template_id)}
        )
        return validate(DispatchTemplate, answer.json_body(), answer.operation)

    async def new_custom_dispatch(
        self,
        creds: CadCredentials,
        template_id: int,
        values: Mapping[str, Any],
        *,
        attach: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
        metadata: Mapping[str, str] | None = None,
        delete_after_minutes: int | None = None,
    ) -> int:
        """Create a call from a dispatch template; ``values`` maps field uid -> value (the status field takes
        a ``statusOptions[].id``). Returns the new call ID."""
        if int(template_id) < 1:
            raise ValueError("a template ID is a whole number from 1")
        body: dict[str, Any] = {"templateId": int(template_id), "values": dict(values)}
        if attach is not None:
            body[TARGET_KEYS[attach.kind]] = attach.value
        if ident_ids:
            body["identIds"] = [int(i) for i in ident_ids]
        if metadata:
            body["metaData"] = {str(k): str(v) for k, v in metadata.items()}
        if delete_after_minutes is not None:
            body["deleteAfterMinutes"] = max(0, int(delete_after_minutes))
        answer = await self.transport.send(creds, "create_custom_dispatch_call", body=body, target=attach)
        return created_id(answer, "callId", "id")

    # ------------------------------------------------------------------------------------------ blips

    async def get_blips(self, creds: CadCredentials) -> list[Blip]:
        answer = await self.transport.send(creds, "get_blips")
        return validate_list(Blip, only_list(answer.json_body(), "blips"), answer.operation)

    @staticmethod
    def _coordinates(wire: dict[str, Any]) -> None:
        coordinates = wire.get("coordinates")
        if isinstance(coordinates, dict):
            wire["coordinates"] = {"z": 0.0, "w": 0.0, **coordinates}

    async def add_blip(self, creds: CadCredentials, blip: Blip) -> Blip:
        """Add a blip; returns it with the ID the CAD assigned. v2 requires subType, icon, color and tooltip,
        so blanks get the contract's example values (a ``radius``/``scene`` subtype, a map pin, red)."""
        wire = blip.to_wire()
        wire.pop("id", None)
        self._coordinates(wire)
        wire.setdefault("subType", "radius" if blip.radius is not None else "scene")
        wire["icon"] = wire.get("icon") or "fa-location-dot"
        wire["color"] = wire.get("color") or "#ff0000"
        wire.setdefault("tooltip", "")
        answer = await self.transport.send(creds, "create_blip", body=wire)
        body = answer.body
        if isinstance(body, dict) and "coordinates" in body:
            return validate(Blip, body, answer.operation)
        return blip.model_copy(update={"id": created_id(answer, "id")})

    async def modify_blip(self, creds: CadCredentials, blip_id: int, **changes: Any) -> None:
        """Change fields of a blip, e.g. ``modify_blip(creds, 5, color="#ff0000", tooltip="Roadblock")``."""
        parsed = BlipChanges.model_validate(changes)
        fields = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
        if not fields:
            raise ValueError("say what to change on the blip")
        self._coordinates(fields)
        await self.transport.send(creds, "update_blip", path={"blipId": int(blip_id)}, body=fields)

    async def remove_blip(self, creds: CadCredentials, ids: Sequence[int]) -> None:
        if not ids:
            raise ValueError("give at least one blip ID to remove")
        await self.transport.send(creds, "delete_blips", body={"ids": [int(i) for i in ids]})

    # ------------------------------------------------------------------------------------------ lookups

    async def lookup(
        self,
        creds: CadCredentials,
        *,
        first: str = "",
        last: str = "",
        mi: str = "",
        plate: str = "",
        types: Iterable[RecordType | int] | None = None,
        partial: bool = True,
    ) -> LookupResult:
        """Search records by name and/or plate. All-blank searches are refused here, before any request."""
        fields = {"first": first.strip(), "last": last.strip(), "mi": mi.strip(), "plate": plate.strip()}
        if not any(fields.values()):
            raise CadEmptySearchError("every search field is blank", request_type="LOOKUP")
        wanted = [int(t) for t in (types if types is not None else RecordType)]
        answer = await self.transport.send(
            creds, "lookup_name_or_plate", body={**fields, "types": wanted, "partial": partial}
        )
        return validate(LookupResult, answer.json_body(), answer.operation)

    async def lookup_int(
        self,
        creds: CadCredentials,
        *,
        search_type: LookupSearchType | int,
        value: int | str,
        types: Iterable[RecordType | int] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[CustomRecord]:
        """Search records by identifier, status, record number, account secret or account UUID."""
        search = LookupSearchType(int(search_type))
        text = str(value).strip()
        if not text:
            raise CadEmptySearchError("the search value is blank", request_type="LOOKUP_INT")
        wanted = [int(t) for t in (types if types is not None else RecordType)]
        body = {
            "searchType": search.name,
            "value": text,
            "types": wanted,
            "limit": max(1, limit),
            "offset": max(0, offset),
        }
        secret = [text] if search == LookupSearchType.SECRET else []
        answer = await self.transport.send(creds, "lookup_by_value", body=body, redact=secret)
        return validate_list(CustomRecord, only_list(answer.json_body(), "records"), answer.operation)

    async def lookup_custom(
        self,
        creds: CadCredentials,
        *,
        map_name: str,
        value: str,
        types: Iterable[RecordType | int] | None = None,
        partial: bool = False,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[CustomRecord]:
        """Search by one of the community's custom lookup mappings (e.g. ``drivers_license``)."""
        if not map_name.strip():
            raise ValueError("name the custom lookup mapping")
        if not value.strip():
            raise CadEmptySearchError("the search value is blank", request_type="LOOKUP_CUSTOM")
        wanted = [int(t) for t in (types if types is not None else RecordType)]
        body: dict[str, Any] = {
            "map": map_name.strip(),
            "value": value.strip(),
            "types": wanted,
            "partial": partial,
        }
        if limit is not None:
            body["limit"] = max(1, limit)
        if offset is not None:
            body["offset"] = max(0, offset)
        answer = await self.transport.send(creds, "lookup_by_custom", body=body)
        return validate_list(CustomRecord, only_list(answer.json_body(), "records"), answer.operation)

    async def get_characters(self, creds: CadCredentials, target: MemberTarget) -> list[CustomRecord]:
        """The member's civilian characters (records of type 7)."""
        answer = await self.transport.send(
            creds, "get_characters", query={TARGET_KEYS[target.kind]: target.value}, target=target
        )
        return validate_list(
            CustomRecord, only_list(answer.json_body(), "characters", "records"), answer.operation
        )

    # ------------------------------------------------------------------------------------------ accounts

    async def get_account(
        self, creds: CadCredentials, *, target: MemberTarget | None = None, username: str | None = None
    ) -> Account:
        """The CAD account of a member (``target``), or by ``username``. ``CadNotLinkedError`` when the CAD
        has none, with a sentence on how to link."""
        if (target is None) == (not username or not username.strip()):
            raise ValueError("name the account once: a member target or a username")
        query = {TARGET_KEYS[target.kind]: target.value} if target else {"username": str(username).strip()}
        answer = await self.transport.send(creds, "get_account", query=query, target=target)
        body = answer.json_body()
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        return validate(Account, body, answer.operation)

    async def verify_secret(self, creds: CadCredentials, secret: str) -> str:
        """The account UUID that owns ``secret`` (the Account Secret ID a member copies from CAD settings).

        The v2 page answers ``{secret: accountUuid}``, the v1 page the other way round: the UUID is whichever
        side is not the secret. ``CadNotLinkedError`` when no account has it.
        """
        secret = secret.strip()
        if not secret:
            raise ValueError("the account secret is blank")
        answer = await self.transport.send(creds, "verify_secret", body={"secret": secret}, redact=[secret])
        body = answer.body
        rt = answer.operation.request_type
        if isinstance(body, dict):
            direct = member(body, "accountUuid")
            if isinstance(direct, str) and direct.strip():
                return direct.strip()
            sides = [str(side) for pair in body.items() for side in pair if isinstance(side, str)]
            owners = [side for side in sides if side.strip() and side not in (secret, REDACTED)]
            if owners:
                return owners[0].strip()
            if not body:
                raise CadNotLinkedError(
                    "v2 verify_secret: empty answer",
                    status=answer.status,
                    request_type=rt,
                    user_message=UNKNOWN_ACCOUNT_ID_TEXT,
                )
        raise CadUnexpectedResponseError("v2 verify_secret: no account UUID in the answer", request_type=rt)

    # ------------------------------------------------------------------------------------------ community

    async def get_version(self, creds: CadCredentials) -> Tier:
        """Read the plan (always a request; a good first call, as a bad key answers 401) and cache it.
        v2 names the plan; that name wins over its number, which does not follow v1's table."""
        return (await self.transport.read_plan(creds)).tier

    async def get_servers(self, creds: CadCredentials) -> list[Server]:
        return await self.transport.read_servers(creds)

    async def get_info(self, creds: CadCredentials) -> CadInfo:
        """The community behind the key (its ``comId`` is what the websocket authenticates with) and 10-codes."""
        answer = await self.transport.send(creds, "get_info")
        return validate(CadInfo, answer.json_body(), answer.operation)
