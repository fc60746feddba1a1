"""The Sonoran CAD v1 client: one typed method per request type the bot uses.

Every request is ``POST {base_url}/{category}/{type lower-cased}`` with ``{"id", "key", "type", "data"}``.
Success is HTTP 2xx, never a body text (several documented bodies are copy-paste errors); an ID is read with
``ID:\\s*(\\d+)`` and JSON is parsed when the answer says so or starts with ``[``/``{``.

Retries only where repeating cannot do harm: read types on 5xx, timeouts and dropped connections; any type
on 429 and on 502/503/504 or a refused connection (the CAD never applied those). A write that timed out or got
a 500 may already have happened, so it is reported, not repeated.

The session is injected and never closed here. The API key leaves this module only inside the request body.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError

from bot.cad.codes import RecordType
from bot.cad.endpoints import READ_TYPES, path_for
from bot.cad.errors import (
    REDACTED,
    CadEmptySearchError,
    CadError,
    CadNotEnabledError,
    CadNotLinkedError,
    CadPlanError,
    CadRateLimitedError,
    CadTargetUnsupportedError,
    CadTimeoutError,
    CadUnavailableError,
    CadUnexpectedResponseError,
    CadWrongEndpointError,
    error_from_response,
    excerpt,
    is_wrong_endpoint_body,
    redact_secrets,
)
from bot.cad.limiter import CommunityLimiter, TypePauses
from bot.cad.models import (
    Account,
    Blip,
    BlipChanges,
    CadCredentials,
    CallsSnapshot,
    CustomRecord,
    LookupResult,
    LookupSearchType,
    MemberTarget,
    NewDispatch,
    Server,
    Unit,
)
from bot.cad.tiers import MIN_TIER, Tier, parse_tier
from bot.timing import MonotonicClock

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"ID:\s*(\d+)")
_RETRY_ANY_STATUSES = frozenset({502, 503, 504})

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CadResponse:
    """A successful (2xx) answer, already free of the API key."""

    request_type: str
    status: int
    text: str
    content_type: str

    @property
    def looks_like_json(self) -> bool:
        return "json" in self.content_type or self.text.lstrip()[:1] in ("[", "{")

    def json(self) -> Any:
        """The body as JSON; ``CadUnexpectedResponseError`` when it is not JSON."""
        if not self.looks_like_json:
            raise CadUnexpectedResponseError(
                f"expected JSON, got text: {excerpt(self.text)}",
                status=self.status,
                request_type=self.request_type,
            )
        try:
            return json.loads(self.text)
        except ValueError:
            raise CadUnexpectedResponseError(
                "the answer is not valid JSON", status=self.status, request_type=self.request_type
            ) from None

    def created_id(self) -> int:
        """The ID a create call returned: ``... ID: 1042`` in text, or ``callId``/``id`` in a JSON object."""
        if self.looks_like_json:
            try:
                body = json.loads(self.text)
            except ValueError:
                body = None
            if isinstance(body, dict):
                for key in ("callId", "id"):
                    value = body.get(key)
                    if isinstance(value, int) and not isinstance(value, bool):
                        return value
                    if isinstance(value, str) and value.strip().isdigit():
                        return int(value)
        match = ID_PATTERN.search(self.text)
        if match is None:
            raise CadUnexpectedResponseError(
                f"no ID in the answer: {excerpt(self.text)}",
                status=self.status,
                request_type=self.request_type,
            )
        return int(match.group(1))


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds)


def _v1_member(
    target: MemberTarget | None, account: str | None, api_id: str | None, request_type: str
) -> tuple[str | None, str | None]:
    """``(account, api_id)`` for a ``MemberTarget``: v1 names members by account UUID or API ID only."""
    if target is None:
        return account, api_id
    if account or api_id:
        raise ValueError("name the member once: a target, or account/api_id")
    if target.kind == "discord":
        raise CadTargetUnsupportedError("v1 cannot target a Discord user ID", request_type=request_type)
    return target.account_uuid, target.api_id


def _only_list(body: Any, *wrappers: str) -> Any:
    """Accept a bare array or an object wrapping it under one of ``wrappers`` (sources disagree)."""
    if isinstance(body, dict):
        for key in wrappers:
            if isinstance(body.get(key), list):
                return body[key]
    return body


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request as every attempt sends it (``secrets`` are scrubbed from anything the CAD echoes)."""

    creds: CadCredentials
    request_type: str
    url: str
    payload: dict[str, Any]
    secrets: list[str]


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that failed: the error, whether sending again is safe, and how long the CAD asked to wait."""

    error: CadError
    retry_safe: bool
    delay: float | None = None


class CadClient:
    """Typed access to the CAD for many communities through one shared ``aiohttp.ClientSession``.

    Implements ``bot.cad.interface.CadApi``; members may be named by ``target`` (a ``MemberTarget``) or by the
    older ``account``/``api_id`` keywords.
    """

    api_version = 1

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        timeout_s: float = 30,
        rate_per_s: float = 1.0,
        burst: int = 5,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        tier_ttl_s: float = 600,
        rate_limit_pause_s: float = 60.0,
        max_retry_after_s: float = 10.0,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_retries < 0:
            raise ValueError("max_retries cannot be negative")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._tier_ttl_s = tier_ttl_s
        self._rate_limit_pause_s = rate_limit_pause_s
        self._max_retry_after_s = max_retry_after_s
        self._clock = clock
        self.limiter = CommunityLimiter(rate_per_s, burst, clock=clock)
        self.pauses = TypePauses(clock=clock)
        self._tiers: dict[str, tuple[Tier, float]] = {}
        self._tier_locks: dict[str, asyncio.Lock] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    # ------------------------------------------------------------------------------------------ plan tiers

    def cached_plan_label(self, community_id: str) -> str | None:
        """v1 reports the plan as a number only (see :meth:`cached_tier`); the name is the tier table's."""
        return None

    def cached_tier(self, community_id: str) -> Tier | None:
        """The community's plan if it was read within ``tier_ttl_s``; never touches the network."""
        entry = self._tiers.get(community_id)
        if entry is None:
            return None
        tier, fetched_at = entry
        if self._clock() - fetched_at > self._tier_ttl_s:
            del self._tiers[community_id]
            return None
        return tier

    def invalidate_tier(self, community_id: str) -> None:
        """Forget the cached plan (after /setup, or when an admin says the plan changed)."""
        self._tiers.pop(community_id, None)

    async def get_tier(self, creds: CadCredentials) -> Tier:
        """The community's plan, from cache or one ``GET_VERSION`` (concurrent callers share that request)."""
        cached = self.cached_tier(creds.community_id)
        if cached is not None:
            return cached
        lock = self._tier_locks.setdefault(creds.community_id, asyncio.Lock())
        async with lock:
            cached = self.cached_tier(creds.community_id)
            if cached is not None:
                return cached
            return await self.get_version(creds)

    def explain_refusal(self, creds: CadCredentials, request_type: str) -> CadPlanError | None:
        """Why ``request_type`` would be refused, judged from the cached plan only; ``None`` if not."""
        required = MIN_TIER.get(request_type.upper())
        current = self.cached_tier(creds.community_id)
        if required is None or current is None or current >= required:
            return None
        return CadPlanError(request_type.upper(), required, current)

    async def ensure_allowed(self, creds: CadCredentials, request_type: str) -> None:
        """Raise ``CadPlanError`` if the plan (fetched when unknown) is below what ``request_type`` needs."""
        required = MIN_TIER.get(request_type.upper())
        if required is None:
            return
        current = await self.get_tier(creds)
        if current < required:
            raise CadPlanError(request_type.upper(), required, current)

    # ------------------------------------------------------------------------------------------ transport

    async def request(
        self,
        creds: CadCredentials,
        request_type: str,
        data: Any,
        *,
        extra: Mapping[str, Any] | None = None,
        redact: Iterable[str] = (),
    ) -> CadResponse:
        """Send one v1 request and return its 2xx answer, or raise a ``CadError`` subclass.

        ``extra`` adds top-level members next to ``data`` (``GET_TEMPLATES`` ``recordTypeId``); ``redact``
        lists other secrets (account secrets) that must not survive into an exception message.
        """
        request_type = request_type.upper()
        path = self._sendable_path(creds, request_type)
        secrets = [creds.api_key.get_secret_value(), *(s for s in redact if s)]
        payload: dict[str, Any] = {
            "id": creds.community_id,
            "key": creds.api_key.get_secret_value(),
            "type": request_type,
            "data": data,
        }
        if extra:
            payload.update({k: v for k, v in extra.items() if k not in payload})
        exchange = _Exchange(creds, request_type, self._base_url + path, payload, secrets)
        attempt = 0
        while True:
            await self.limiter.acquire(creds.community_id)
            outcome = await self._attempt(exchange, attempt)
            if isinstance(outcome, CadResponse):
                return outcome
            will_retry = outcome.retry_safe and attempt < self._max_retries
            log.debug(
                "CAD %s community=%s attempt=%d failed: %s (%s)",
                request_type,
                creds.community_id,
                attempt + 1,
                type(outcome.error).__name__,
                "will retry" if will_retry else "giving up",
            )
            if not will_retry:
                raise self._given_up(creds, request_type, outcome.error)
            delay = outcome.delay if outcome.delay is not None else self._backoff_s * (2**attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _sendable_path(self, creds: CadCredentials, request_type: str) -> str:
        """The type's path, once nothing known says it would be refused (plan, or a rate-limit pause)."""
        try:
            path = path_for(request_type)
        except KeyError:
            raise ValueError(f"unknown CAD request type {request_type!r}") from None
        refusal = self.explain_refusal(creds, request_type)
        if refusal is not None:
            log.debug(
                "CAD %s community=%s refused before sending: %s", request_type, creds.community_id, refusal
            )
            raise refusal
        paused_for = self.pauses.remaining(creds.community_id, request_type)
        if paused_for > 0:
            raise CadRateLimitedError(
                f"paused for {paused_for:.0f} s after a rate limit",
                request_type=request_type,
                retry_after=paused_for,
            )
        return path

    async def _attempt(self, exchange: _Exchange, attempt: int) -> CadResponse | _Failure:
        """One try: the 2xx answer, or what went wrong and whether trying again is safe."""
        request_type = exchange.request_type
        is_read = request_type in READ_TYPES
        started = self._clock()
        try:
            async with self._session.post(
                exchange.url, json=exchange.payload, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
                content_type = response.content_type or ""
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        except aiohttp.ConnectionTimeoutError:
            # The connection never opened, so the CAD cannot have acted on it.
            return _Failure(CadUnavailableError("could not connect in time", request_type=request_type), True)
        except aiohttp.ClientConnectorError as exc:
            error = CadUnavailableError(
                f"could not connect ({type(exc).__name__})", request_type=request_type
            )
            return _Failure(error, True)
        except TimeoutError:
            error = CadTimeoutError(f"no answer within {self._timeout.total:g} s", request_type=request_type)
            return _Failure(error, is_read)
        except aiohttp.ClientError as exc:
            # Sent, then lost (reset, disconnect, broken payload): a write may have been applied.
            error = CadUnavailableError(
                f"connection failed ({type(exc).__name__})", request_type=request_type
            )
            return _Failure(error, is_read)
        log.debug(
            "CAD %s community=%s attempt=%d -> %s in %.0f ms",
            request_type,
            exchange.creds.community_id,
            attempt + 1,
            status,
            (self._clock() - started) * 1000,
        )
        text = redact_secrets(raw.decode("utf-8", errors="replace"), exchange.secrets)
        if 200 <= status < 300:
            if is_wrong_endpoint_body(text):
                raise CadWrongEndpointError(excerpt(text), status=status, request_type=request_type)
            return CadResponse(request_type, status, text, content_type)
        return self._judge_refusal(exchange, status, text, retry_after)

    def _judge_refusal(
        self, exchange: _Exchange, status: int, text: str, retry_after: float | None
    ) -> _Failure:
        """A non-2xx answer: worth trying again (rate limit, outage), or raised at once (the CAD said no)."""
        request_type = exchange.request_type
        failure = error_from_response(status, text, request_type=request_type, retry_after=retry_after)
        if status == 429:
            delay = min(retry_after, self._max_retry_after_s) if retry_after is not None else None
            return _Failure(failure, True, delay)
        if status in _RETRY_ANY_STATUSES:
            return _Failure(failure, True)
        if status >= 500:
            return _Failure(failure, request_type in READ_TYPES)
        self._note_refusal(exchange.creds, failure)
        raise failure

    def _given_up(self, creds: CadCredentials, request_type: str, failure: CadError) -> CadError:
        """The error to raise once no retry is left; an exhausted rate limit pauses the type first."""
        if isinstance(failure, CadRateLimitedError):
            pause = max(self._rate_limit_pause_s, failure.retry_after or 0.0)
            self.pauses.pause(creds.community_id, request_type, pause)
            failure.retry_after = pause
            log.warning(
                "CAD rate-limited %s for community %s; pausing that type for %.0f s",
                request_type,
                creds.community_id,
                pause,
            )
        return failure

    def _note_refusal(self, creds: CadCredentials, failure: CadError) -> None:
        if isinstance(failure, CadNotEnabledError):
            # The CAD is the authority; the cached plan stays as read, and the mismatch is made visible here.
            log.info(
                "CAD refused %s for community %s as not enabled (cached plan: %s)",
                failure.request_type,
                creds.community_id,
                self.cached_tier(creds.community_id),
            )

    def _validate(self, model: type[_M], body: Any, request_type: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise CadUnexpectedResponseError(
                f"answer does not fit {model.__name__} ({exc.error_count()} problems)",
                request_type=request_type,
            ) from None

    def _validate_list(self, model: type[_M], body: Any, request_type: str) -> list[_M]:
        try:
            return TypeAdapter(list[model]).validate_python(body)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise CadUnexpectedResponseError(
                f"answer does not fit a list of {model.__name__} ({exc.error_count()} problems)",
                request_type=request_type,
            ) from None

    @staticmethod
    def _target(
        *,
        account: str | None = None,
        api_id: str | None = None,
        ident_ids: Sequence[int] | None = None,
        api_id_key: str = "apiId",
    ) -> dict[str, Any]:
        target: dict[str, Any] = {}
        if account:
            target["account"] = account
        if api_id:
            target[api_id_key] = api_id
        if ident_ids:
            target["identIds"] = [int(i) for i in ident_ids]
        if not target:
            raise ValueError("name the unit: give account, api_id or ident_ids")
        return target

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
    ) -> int:
        """Create a 911 call; returns its call ID."""
        item: dict[str, Any] = {
            "serverId": creds.server_id,
            "isEmergency": emergency,
            "caller": caller,
            "location": location,
            "description": description,
        }
        if metadata:
            item["metaData"] = {str(k): str(v) for k, v in metadata.items()}
        response = await self.request(creds, "CALL_911", [item])
        return response.created_id()

    async def remove_911(self, creds: CadCredentials, call_id: int) -> None:
        await self.request(creds, "REMOVE_911", [{"serverId": creds.server_id, "callId": int(call_id)}])

    # ------------------------------------------------------------------------------------------ units

    async def unit_panic(
        self,
        creds: CadCredentials,
        *,
        is_panic: bool,
        account: str | None = None,
        api_id: str | None = None,
        ident_ids: Sequence[int] | None = None,
        target: MemberTarget | None = None,
    ) -> None:
        """Turn a unit's panic on or off. The CAD sends no push event for this; post your own message."""
        account, api_id = _v1_member(target, account, api_id, "UNIT_PANIC")
        item = {**self._target(account=account, api_id=api_id, ident_ids=ident_ids), "isPanic": is_panic}
        await self.request(creds, "UNIT_PANIC", [item])

    async def unit_status(
        self,
        creds: CadCredentials,
        *,
        status: int,
        account: str | None = None,
        api_id: str | None = None,
        ident_ids: Sequence[int] | None = None,
        target: MemberTarget | None = None,
    ) -> None:
        """Set a unit's status code (communities may define codes beyond 0-4, so any number >= 0 is sent)."""
        account, api_id = _v1_member(target, account, api_id, "UNIT_STATUS")
        if status < 0:
            raise ValueError("a unit status code cannot be negative")
        item = {
            **self._target(account=account, api_id=api_id, ident_ids=ident_ids),
            "status": int(status),
            "serverId": creds.server_id,
        }
        await self.request(creds, "UNIT_STATUS", [item])

    async def get_active_units(
        self,
        creds: CadCredentials,
        *,
        include_offline: bool = False,
        only_units: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Unit]:
        item = {
            "serverId": creds.server_id,
            "onlyUnits": only_units,
            "includeOffline": include_offline,
            "limit": max(1, min(100, limit)),
            "offset": max(0, offset),
        }
        response = await self.request(creds, "GET_ACTIVE_UNITS", [item])
        return self._validate_list(Unit, _only_list(response.json(), "units"), "GET_ACTIVE_UNITS")

    # ------------------------------------------------------------------------------------------ dispatch

    async def get_calls(
        self, creds: CadCredentials, *, closed_limit: int = 10, closed_offset: int = 0
    ) -> CallsSnapshot:
        item = {
            "serverId": creds.server_id,
            "closedLimit": max(0, min(100, closed_limit)),
            "closedOffset": max(0, closed_offset),
        }
        response = await self.request(creds, "GET_CALLS", [item])
        return self._validate(CallsSnapshot, response.json(), "GET_CALLS")

    async def new_dispatch(self, creds: CadCredentials, dispatch: NewDispatch) -> int:
        """Create a dispatch call; returns its call ID (the CAD answers in text or as a JSON call object)."""
        response = await self.request(creds, "NEW_DISPATCH", [dispatch.to_wire(creds.server_id)])
        return response.created_id()

    async def attach_unit(
        self,
        creds: CadCredentials,
        call_id: int,
        *,
        account: str | None = None,
        api_ids: Sequence[str] | None = None,
        ident_ids: Sequence[int] | None = None,
        target: MemberTarget | None = None,
    ) -> None:
        if target is not None:
            if api_ids:
                raise ValueError("name the member once: a target, or account/api_ids")
            account, api_id = _v1_member(target, account, None, "ATTACH_UNIT")
            api_ids = [api_id] if api_id else None
        item: dict[str, Any] = {"serverId": creds.server_id, "callId": int(call_id)}
        if api_ids:
            item["units"] = list(api_ids)
        if account:
            item["account"] = account
        if ident_ids:
            item["identIds"] = [int(i) for i in ident_ids]
        if len(item) == 2:
            raise ValueError("name the units to attach: give account, api_ids or ident_ids")
        await self.request(creds, "ATTACH_UNIT", [item])

    async def detach_unit(
        self,
        creds: CadCredentials,
        *,
        account: str | None = None,
        api_ids: Sequence[str] | None = None,
        target: MemberTarget | None = None,
    ) -> None:
        """Detach units from whatever call they are on (the API takes no call ID)."""
        if target is not None:
            if api_ids:
                raise ValueError("name the member once: a target, or account/api_ids")
            account, api_id = _v1_member(target, account, None, "DETACH_UNIT")
            api_ids = [api_id] if api_id else None
        item: dict[str, Any] = {"serverId": creds.server_id}
        if api_ids:
            item["units"] = list(api_ids)
        if account:
            item["account"] = account
        if len(item) == 1:
            raise ValueError("name the units to detach: give account or api_ids")
        await self.request(creds, "DETACH_UNIT", [item])

    async def add_call_note(
        self, creds: CadCredentials, call_id: int, note: str, *, label: str | None = None
    ) -> None:
        if not note.strip():
            raise ValueError("a call note cannot be empty")
        item: dict[str, Any] = {"serverId": creds.server_id, "callId": int(call_id), "note": note}
        if label:
            item["label"] = label
        await self.request(creds, "ADD_CALL_NOTE", [item])

    async def close_call(self, creds: CadCredentials, call_id: int) -> None:
        await self.request(creds, "CLOSE_CALL", [{"serverId": creds.server_id, "callId": int(call_id)}])

    # ------------------------------------------------------------------------------------------ blips

    async def get_blips(self, creds: CadCredentials) -> list[Blip]:
        response = await self.request(creds, "GET_BLIPS", [{"serverId": creds.server_id}])
        return self._validate_list(Blip, _only_list(response.json(), "blips"), "GET_BLIPS")

    async def add_blip(self, creds: CadCredentials, blip: Blip) -> Blip:
        """Add a blip; returns it with the ID the CAD assigned."""
        wire = {**blip.to_wire(), "id": -1}
        response = await self.request(creds, "ADD_BLIP", [{"serverId": creds.server_id, "blip": wire}])
        if response.looks_like_json:
            body = _only_list(response.json(), "blips")
            if isinstance(body, list) and body:
                body = body[0]
            return self._validate(Blip, body, "ADD_BLIP")
        return blip.model_copy(update={"id": response.created_id()})

    async def modify_blip(self, creds: CadCredentials, blip_id: int, **changes: Any) -> None:
        """Change fields of a blip, e.g. ``modify_blip(creds, 5, color="#ff0000", tooltip="Roadblock")``."""
        parsed = BlipChanges.model_validate(changes)
        fields = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
        if not fields:
            raise ValueError("say what to change on the blip")
        await self.request(creds, "MODIFY_BLIP", [{"id": int(blip_id), **fields}])

    async def remove_blip(self, creds: CadCredentials, ids: Sequence[int]) -> None:
        if not ids:
            raise ValueError("give at least one blip ID to remove")
        await self.request(creds, "REMOVE_BLIP", [{"ids": [int(i) for i in ids]}])

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
        response = await self.request(creds, "LOOKUP", [{"types": wanted, **fields, "partial": partial}])
        return self._validate(LookupResult, response.json(), "LOOKUP")

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
        search = int(search_type)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise CadEmptySearchError("the search value is blank", request_type="LOOKUP_INT")
            if search not in (LookupSearchType.SECRET, LookupSearchType.ACCOUNT) and value.isdigit():
                value = int(value)
        wanted = [int(t) for t in (types if types is not None else RecordType)]
        item = {
            "searchType": search,
            "value": value,
            "types": wanted,
            "limit": max(1, limit),
            "offset": max(0, offset),
        }
        # An account secret may be the search value; keep it out of any error text.
        secret = [value] if search == LookupSearchType.SECRET and isinstance(value, str) else []
        response = await self.request(creds, "LOOKUP_INT", [item], redact=secret)
        return self._validate_list(CustomRecord, _only_list(response.json(), "records"), "LOOKUP_INT")

    # ------------------------------------------------------------------------------------------ accounts

    async def get_account(
        self,
        creds: CadCredentials,
        *,
        account: str | None = None,
        api_id: str | None = None,
        username: str | None = None,
        target: MemberTarget | None = None,
    ) -> Account:
        account, api_id = _v1_member(target, account, api_id, "GET_ACCOUNT")
        item: dict[str, Any] = {}
        if account:
            item["account"] = account
        if api_id:
            item["apiId"] = api_id
        if username:
            item["username"] = username
        if not item:
            raise ValueError("name the account: give account, api_id or username")
        response = await self.request(creds, "GET_ACCOUNT", [item])
        body = response.json()
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        return self._validate(Account, body, "GET_ACCOUNT")

    async def check_apiid(self, creds: CadCredentials, api_id: str) -> str:
        """The username linked to ``api_id``; ``CadNotLinkedError`` when there is none."""
        if not api_id.strip():
            raise ValueError("the API ID is blank")
        response = await self.request(creds, "CHECK_APIID", [{"apiId": api_id.strip()}])
        username = response.text.strip()
        if not username:
            raise CadUnexpectedResponseError(
                "empty username", status=response.status, request_type="CHECK_APIID"
            )
        return username

    async def verify_secret(self, creds: CadCredentials, secret: str) -> str:
        """The account UUID that owns ``secret`` (the value a member copies from their CAD settings).

        The documented answer is ``{accountUuid: secret}``; an empty object means no account has it.
        """
        secret = secret.strip()
        if not secret:
            raise ValueError("the account secret is blank")
        response = await self.request(creds, "VERIFY_SECRET", [{"secret": secret}], redact=[secret])
        if not response.looks_like_json:
            text = response.text.strip()
            if text and " " not in text and text != REDACTED:
                return text
            raise CadUnexpectedResponseError("no account UUID in the answer", request_type="VERIFY_SECRET")
        body = response.json()
        if isinstance(body, dict):
            if isinstance(body.get("accountUuid"), str) and body["accountUuid"]:
                return str(body["accountUuid"])
            owners = [key for key, value in body.items() if value in (REDACTED, secret)]
            if not owners and len(body) == 1:
                owners = list(body)
            if owners:
                return str(owners[0])
            if not body:
                raise CadNotLinkedError(
                    "no account has this secret",
                    status=response.status,
                    request_type="VERIFY_SECRET",
                    user_message=(
                        "That account secret does not match any account in this community's CAD; "
                        "copy it again from your CAD account settings."
                    ),
                )
        raise CadUnexpectedResponseError("no account UUID in the answer", request_type="VERIFY_SECRET")

    # ------------------------------------------------------------------------------------------ community

    async def get_version(self, creds: CadCredentials) -> Tier:
        """Read the plan from the CAD (always a request) and cache it for ``tier_ttl_s``."""
        response = await self.request(creds, "GET_VERSION", [])
        try:
            tier = parse_tier(response.text)
        except ValueError:
            raise CadUnexpectedResponseError(
                f"no plan number in the answer: {excerpt(response.text)}",
                status=response.status,
                request_type="GET_VERSION",
            ) from None
        self._tiers[creds.community_id] = (tier, self._clock())
        return tier

    async def get_servers(self, creds: CadCredentials) -> list[Server]:
        response = await self.request(creds, "GET_SERVERS", [])
        return self._validate_list(Server, _only_list(response.json(), "servers"), "GET_SERVERS")
