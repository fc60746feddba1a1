"""How the v2 client talks to the CAD: one request, its budget, its retries and its typed error.

Limits. Every request first takes a slot of its endpoint's per-key budget (``v2_limits.KeyBudgets``, numbers
from ``v2_endpoints``); without one it fails at once with ``CadRateLimitedError.retry_after``. A 429 pauses the
endpoint for the time the gateway names (``Retry-After`` and kin) or ``default_pause_s``, and is not retried.

Retries. The official clients retry a 429 twice; this client does not, because the budget is shared with every
guild and the game server on the same key, and a member waiting on an interaction is better told "try again in
12 s" than kept waiting for a retry that spends the budget again. Only failures that cannot have changed the
CAD are repeated (up to ``max_retries``, with backoff, and only while the budget allows): reads (GETs, lookups,
secret checks) after a 5xx, a timeout or a lost connection; any operation whose connection never opened or
that got 502/503 from the gateway. A write that timed out or got a 500/504 may have happened, so it is
reported, not repeated.

Errors. problem+json (or any JSON body) becomes the same typed, member-facing errors as v1: 401 bad key, 404
unknown server / member not linked / item gone (told apart without matching the CAD's wording), 402/403 plan
refusals naming the plan the CAD reports, 429 from the gateway (``{message, request_id}``) or as problem+json
alike. The CAD's own text only reaches logs (with its ``traceId``), never a member.

The session is injected and never closed here. The key leaves this module only in the ``Authorization``
header; answers are redacted of it (and of account secrets) before anything can quote them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError

from bot.cad.errors import (
    NOT_LINKED_HOW_TO,
    CadCredentialsError,
    CadError,
    CadInvalidRequestError,
    CadNotFoundError,
    CadNotLinkedError,
    CadPlanRefusedError,
    CadRateLimitedError,
    CadRequestTypeError,
    CadTimeoutError,
    CadUnavailableError,
    CadUnexpectedResponseError,
    CadUnknownServerError,
    excerpt,
    feature_name,
    redact_secrets,
)
from bot.cad.models import CadCredentials, MemberTarget, Server, TargetKind
from bot.cad.tiers import Tier, tier_from_plan_name
from bot.cad.v2_endpoints import OPERATIONS, Operation
from bot.cad.v2_limits import DEFAULT_PAUSE_S, KeyBudgets, retry_delay
from bot.timing import MonotonicClock

log = logging.getLogger(__name__)

# The gateway answers these itself when the CAD behind it is down: the request never reached the CAD.
_RETRY_ANY_STATUSES = frozenset({502, 503})
_VERSION_REQUIRED = re.compile(r"VERSION\b.*\bREQUIRED", re.IGNORECASE | re.DOTALL)
_PLAN_NAME_TEXT = re.compile(r"[^A-Za-z0-9 +]")

# How each kind of member target is sent (the yaml's `discord` / `accountUuid`; `apiId` is the API-ID alias).
TARGET_KEYS: dict[TargetKind, str] = {"discord": "discord", "account": "accountUuid", "api_id": "apiId"}

_NOT_LINKED_BY_KIND: dict[TargetKind, str] = {
    "discord": NOT_LINKED_HOW_TO,
    "account": (
        "The CAD account linked to your Discord account is no longer in this community; run /link again "
        "with your Account Secret ID, or link Discord in your CAD account settings."
    ),
    "api_id": (
        "The API ID linked to your Discord account does not belong to a CAD account in this community; link "
        "Discord in your CAD account settings, or run /link with your Account Secret ID."
    ),
}
_NO_UNIT_ON_DUTY = (
    "The CAD found no unit on duty for you: sign in to the CAD as a unit first. If you have, link Discord in "
    "your CAD account settings, or run /link with your Account Secret ID."
)
NOT_FOUND_MESSAGES: dict[str, str] = {
    "call": "That call is no longer in the CAD; it may have been closed or removed.",
    "call_or_target": "That call is no longer in the CAD; it may have been closed or removed.",
    "blip": "That blip is no longer on the CAD map.",
    "template": "That dispatch template is not in the CAD any more; pick another one.",
}
UNKNOWN_ACCOUNT_ID_TEXT = (
    "That account secret does not match any account in this community's CAD; copy it again from your CAD "
    "account settings."
)
_CUSTOM_DISPATCH_REJECTED = (
    "The CAD did not accept those values for this dispatch template; check the required fields and choices, "
    "then try again."
)

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class V2Answer:
    """A 2xx answer: its status and body (parsed JSON, text, or ``None`` when empty), free of secrets."""

    operation: Operation
    status: int
    body: Any

    def json_body(self) -> Any:
        if isinstance(self.body, dict | list):
            return self.body
        raise CadUnexpectedResponseError(
            f"v2 {self.operation.id}: expected JSON, got {excerpt(str(self.body or ''))!r}",
            status=self.status,
            request_type=self.operation.request_type,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    tier: Tier
    label: str
    fetched_at: float


def _is_json(content_type: str) -> bool:
    content_type = content_type.lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _parse_body(text: str, content_type: str) -> Any:
    if not text.strip():
        return None
    if _is_json(content_type) or text.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def member(body: Any, *names: str) -> Any:
    """``body[name]`` for the first of ``names`` present, compared case-insensitively (``ActiveCalls``)."""
    if not isinstance(body, dict):
        return None
    folded = {str(key).casefold(): value for key, value in body.items()}
    for name in names:
        if name.casefold() in folded:
            return folded[name.casefold()]
    return None


def only_list(body: Any, *wrappers: str) -> Any:
    """A bare array, or the array an object wraps under one of ``wrappers`` (any case)."""
    if isinstance(body, dict):
        wrapped = member(body, *wrappers)
        if isinstance(wrapped, list):
            return wrapped
    return body


def _query(values: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as the contract encodes them: booleans ``true``/``false``, numbers in decimal."""
    encoded: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded


def _mentions(text: str, value: str) -> bool:
    """Whether ``value`` appears in ``text`` as a whole token (so server "7" is not API ID "7" by accident)."""
    return bool(value) and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def _seconds_text(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    if whole < 90:
        return f"{whole} s"
    return f"about {math.ceil(whole / 60)} minutes"


def plan_from_version(name: Any, version: Any) -> tuple[Tier, str] | None:
    """The plan the CAD reports: by ``name`` when it is one we know (v2's numbers do not follow v1's table),
    else the number read with v1's table, labelled with the CAD's own name when it gave one."""
    known = tier_from_plan_name(name)
    if known is not None:
        return known, known.display_name
    cleaned = " ".join(_PLAN_NAME_TEXT.sub(" ", name).split())[:40] if isinstance(name, str) else ""
    number = version if isinstance(version, int) and not isinstance(version, bool) else None
    if isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    if number is None or number < 0:
        return None
    tier = Tier(number)
    return tier, (cleaned.title() if cleaned else tier.display_name)


@dataclass(frozen=True, slots=True)
class _V2Exchange:
    """One v2 request as every attempt sends it (``secrets`` are scrubbed from anything the CAD echoes)."""

    creds: CadCredentials
    op: Operation
    url: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    secrets: list[str]
    target: MemberTarget | None


class V2Transport:
    """Sends v2 operations for many communities through one shared ``aiohttp.ClientSession``, and keeps what
    telling errors apart needs: the plan each community reported and the servers each key has."""

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
        self._servers_ttl_s = servers_ttl_s
        self._default_pause_s = default_pause_s
        self._max_pause_s = max_pause_s
        self._clock = clock
        self.budgets = budgets if budgets is not None else KeyBudgets(clock=clock)
        self._plans: dict[str, Plan] = {}
        self._servers: dict[str, tuple[frozenset[int], float]] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    # ------------------------------------------------------------------------------------------ plans, servers

    def cached_plan(self, community_id: str) -> Plan | None:
        """The plan the CAD reported within ``tier_ttl_s``; never touches the network."""
        plan = self._plans.get(community_id)
        if plan is not None and self._clock() - plan.fetched_at > self._tier_ttl_s:
            del self._plans[community_id]
            return None
        return plan

    def forget_plan(self, community_id: str) -> None:
        self._plans.pop(community_id, None)

    async def read_plan(self, creds: CadCredentials) -> Plan:
        """One ``/general/version`` (a good first call: a bad key answers 401); the plan is cached."""
        answer = await self.send(creds, "get_version")
        body = answer.body
        read = plan_from_version(member(body, "name"), member(body, "version", "apiVersion", "major"))
        if read is None:
            raise CadUnexpectedResponseError(
                f"v2 get_version: no plan in the answer {excerpt(json.dumps(body) if body else '')!r}",
                status=answer.status,
                request_type=answer.operation.request_type,
            )
        plan = Plan(read[0], read[1], self._clock())
        self._plans[creds.community_id] = plan
        return plan

    async def read_servers(self, creds: CadCredentials) -> list[Server]:
        """One ``/general/servers``; the IDs are kept to tell "wrong server ID" from other 404s."""
        answer = await self.send(creds, "get_servers")
        servers = validate_list(Server, only_list(answer.json_body(), "servers"), answer.operation)
        key_id = self.budgets.key_id(creds.api_key.get_secret_value())
        self._servers[key_id] = (frozenset(server.id for server in servers), self._clock())
        return servers

    # ------------------------------------------------------------------------------------------ transport

    async def send(
        self,
        creds: CadCredentials,
        operation_id: str,
        *,
        path: Mapping[str, object] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        target: MemberTarget | None = None,
        redact: Iterable[str] = (),
    ) -> V2Answer:
        """Send one v2 operation and return its 2xx answer, or raise a ``CadError`` subclass.

        ``path`` fills the route's parameters (``serverId`` comes from ``creds``); ``target`` is the member the
        request names, so a 404 can be told apart ("not linked" vs "no such call"); ``redact`` lists other
        secrets (account secrets) that must not survive into an error.
        """
        op = OPERATIONS[operation_id]
        api_key = creds.api_key.get_secret_value()
        url = self._base_url + op.url_path(serverId=creds.server_id, **(path or {}))
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        params = _query(query or {})
        secrets = [api_key, *(s for s in redact if s)]
        attempt = 0
        while True:
            wait = self.budgets.acquire(api_key, op)
            if wait > 0:
                raise self._over_budget(creds, op, wait)
            sent = _V2Exchange(creds, op, url, params, body, headers, secrets, target)
            outcome = await self._attempt(sent, attempt)
            if isinstance(outcome, V2Answer):
                return outcome
            failure, retry_safe = outcome
            log.debug(
                "CAD v2 %s community=%s attempt=%d failed: %s (%s)",
                op.id,
                creds.community_id,
                attempt + 1,
                type(failure).__name__,
                "will retry" if retry_safe and attempt < self._max_retries else "giving up",
            )
            if not retry_safe or attempt >= self._max_retries:
                raise failure
            await asyncio.sleep(self._backoff_s * (2**attempt))
            attempt += 1
            if self.budgets.remaining(api_key, op) == 0:
                # A retry must not spend a budget that members' next commands need.
                raise failure

    async def _attempt(self, sent: _V2Exchange, attempt: int) -> V2Answer | tuple[CadError, bool]:
        """One try: the 2xx answer, or the error and whether trying again is safe (a 429 is raised at once)."""
        op, creds = sent.op, sent.creds
        api_key = creds.api_key.get_secret_value()
        started = self._clock()
        try:
            async with self._session.request(
                op.method,
                sent.url,
                params=sent.params,
                json=sent.body,
                headers=sent.headers,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                status = response.status
                content_type = response.content_type or ""
                delay = retry_delay(response.headers) if status == 429 else None
        except aiohttp.ConnectionTimeoutError:
            self.budgets.release(api_key, op)
            return CadUnavailableError(
                f"v2 {op.id}: could not connect in time", request_type=op.request_type
            ), True
        except aiohttp.ClientConnectorError as exc:
            # The connection never opened, so the CAD never saw it: the slot goes back to the budget.
            self.budgets.release(api_key, op)
            error = CadUnavailableError(
                f"v2 {op.id}: could not connect ({type(exc).__name__})", request_type=op.request_type
            )
            return error, True
        except TimeoutError:
            timed_out = CadTimeoutError(
                f"v2 {op.id}: no answer within {self._timeout.total:g} s",
                request_type=op.request_type,
                user_message=CadTimeoutError.read_user_message if op.read else None,
            )
            return timed_out, op.read
        except aiohttp.ClientError as exc:
            # Sent, then lost: a write may have been applied.
            lost = CadUnavailableError(
                f"v2 {op.id}: connection failed ({type(exc).__name__})", request_type=op.request_type
            )
            return lost, op.read
        log.debug(
            "CAD v2 %s community=%s attempt=%d -> %s in %.0f ms",
            op.id,
            creds.community_id,
            attempt + 1,
            status,
            (self._clock() - started) * 1000,
        )
        text = redact_secrets(raw.decode("utf-8", errors="replace"), sent.secrets)
        if 200 <= status < 300:
            return V2Answer(op, status, _parse_body(text, content_type))
        if status == 429:
            raise self._rate_limited(creds, op, text, content_type, delay)
        failure = await self._failure(creds, op, status, text, content_type, sent.target)
        return failure, status >= 500 and (op.read or status in _RETRY_ANY_STATUSES)

    def _over_budget(self, creds: CadCredentials, op: Operation, wait: float) -> CadRateLimitedError:
        api_key = creds.api_key.get_secret_value()
        paused = self.budgets.paused_for(api_key, op) > 0
        feature = feature_name(op.request_type)
        if paused:
            message = f"The CAD asked the bot to slow down; try again in {_seconds_text(wait)}."
        else:
            what = feature or "These CAD requests"
            message = (
                f"{what} are limited by the CAD to {op.budget_per_minute} a minute for this community, and "
                f"those are used up; try again in {_seconds_text(wait)}."
            )
        log.info(
            "CAD v2 %s community=%s not sent: %s for %.1f s",
            op.id,
            creds.community_id,
            "paused after a 429" if paused else f"budget of {op.budget_per_minute}/min used",
            wait,
        )
        return CadRateLimitedError(
            f"v2 {op.id}: {'paused' if paused else 'per-key budget used'}; {wait:.1f} s left",
            request_type=op.request_type,
            retry_after=wait,
            user_message=message,
        )

    def _rate_limited(
        self, creds: CadCredentials, op: Operation, text: str, content_type: str, delay: float | None
    ) -> CadRateLimitedError:
        pause = self._default_pause_s if delay is None else min(delay, self._max_pause_s)
        api_key = creds.api_key.get_secret_value()
        self.budgets.pause(api_key, op, pause)
        body = _parse_body(text, content_type)
        # The gateway's body is {message, request_id}; a problem+json 429 carries traceId instead.
        reference = member(body, "traceId", "request_id") if isinstance(body, dict) else None
        log.warning(
            "CAD v2 %s community=%s rate-limited (reference %s); pausing that endpoint for %.0f s",
            op.id,
            creds.community_id,
            reference or "none",
            pause,
        )
        return CadRateLimitedError(
            f"v2 {op.id}: 429 {excerpt(text)}",
            status=429,
            request_type=op.request_type,
            retry_after=pause,
            user_message=f"The CAD asked the bot to slow down; try again in {_seconds_text(pause)}.",
        )

    async def _failure(
        self,
        creds: CadCredentials,
        op: Operation,
        status: int,
        text: str,
        content_type: str,
        target: MemberTarget | None,
    ) -> CadError:
        """The typed error for a non-2xx, non-429 answer (``text`` already redacted)."""
        body = _parse_body(text, content_type)
        problem = body if isinstance(body, dict) else {}
        problem_detail = str(member(problem, "detail") or "")
        trace = member(problem, "traceId") or "none"
        title = member(problem, "title") or ""
        detail = f"v2 {op.id}: {excerpt(problem_detail or str(title) or text)} (traceId {trace})"
        rt = op.request_type
        quiet = status in (400, 404, 409)
        (log.debug if quiet else log.warning)(
            "CAD v2 %s community=%s -> %s %s traceId=%s", op.id, creds.community_id, status, title, trace
        )
        if status >= 500:
            return CadUnavailableError(detail, status=status, request_type=rt)
        if status == 401:
            return CadCredentialsError(detail, status=status, request_type=rt)
        if status in (402, 403) or (status == 400 and _VERSION_REQUIRED.search(text)):
            return await self._plan_refusal(creds, op, status, detail)
        if status == 404:
            return await self._not_found(creds, op, detail, problem_detail, target)
        if status in (400, 409, 422):
            if op.id == "create_custom_dispatch_call":
                return CadInvalidRequestError(
                    detail, status=status, request_type=rt, user_message=_CUSTOM_DISPATCH_REJECTED
                )
            if op.bucket == "lookups":
                return CadInvalidRequestError(
                    detail,
                    status=status,
                    request_type=rt,
                    user_message="The CAD did not accept that search; check what you entered and try again.",
                )
            return CadInvalidRequestError(detail, status=status, request_type=rt)
        if status in (405, 415):
            return CadRequestTypeError(detail, status=status, request_type=rt)
        return CadUnexpectedResponseError(detail, status=status, request_type=rt)

    async def _plan_refusal(
        self, creds: CadCredentials, op: Operation, status: int, detail: str
    ) -> CadPlanRefusedError:
        plan = self.cached_plan(creds.community_id)
        if plan is None and op.id != "get_version":
            try:
                plan = await self.read_plan(creds)
            except CadError as exc:
                log.debug("could not read the plan of community %s: %s", creds.community_id, exc)
        return CadPlanRefusedError(
            detail,
            status=status,
            request_type=op.request_type,
            plan=plan.label if plan else None,
            current=plan.tier if plan else None,
        )

    async def _not_found(
        self,
        creds: CadCredentials,
        op: Operation,
        detail: str,
        problem_detail: str,
        target: MemberTarget | None,
    ) -> CadError:
        """A 404 means a wrong server ID, a member the CAD has no account (or unit) for, or a missing item.

        The CAD's wording is never matched; what decides is whether the answer names the target we sent,
        whether the configured server exists (one cached ``/general/servers``), and what the route names.
        """
        rt = op.request_type
        if target is not None and _mentions(problem_detail, target.value):
            return self._not_linked(op, target, detail)
        if op.server_scoped and await self._server_missing(creds):
            return CadUnknownServerError(detail, status=404, request_type=rt)
        meaning = op.not_found
        if meaning == "secret":
            return CadNotLinkedError(
                detail, status=404, request_type=rt, user_message=UNKNOWN_ACCOUNT_ID_TEXT
            )
        if meaning == "target":
            if target is None:
                return CadNotLinkedError(
                    detail,
                    status=404,
                    request_type=rt,
                    user_message="The CAD has no account by that name in this community.",
                )
            return self._not_linked(op, target, detail)
        if meaning is not None:
            return CadNotFoundError(
                detail, status=404, request_type=rt, user_message=NOT_FOUND_MESSAGES[meaning]
            )
        if target is not None:
            return self._not_linked(op, target, detail)
        return CadUnexpectedResponseError(detail, status=404, request_type=rt)

    @staticmethod
    def _not_linked(op: Operation, target: MemberTarget, detail: str) -> CadNotLinkedError:
        # Attaching needs a unit on duty, and the CAD answers "no such account" for both cases.
        message = _NO_UNIT_ON_DUTY if op.not_found == "call_or_target" else _NOT_LINKED_BY_KIND[target.kind]
        return CadNotLinkedError(detail, status=404, request_type=op.request_type, user_message=message)

    async def _server_missing(self, creds: CadCredentials) -> bool:
        """True only when the community's server list is known and lacks the configured server ID."""
        key_id = self.budgets.key_id(creds.api_key.get_secret_value())
        cached = self._servers.get(key_id)
        if cached is None or self._clock() - cached[1] > self._servers_ttl_s:
            try:
                servers = await self.read_servers(creds)
            except CadError as exc:
                log.debug("could not list the servers of community %s: %s", creds.community_id, exc)
                return False
            return creds.server_id not in {server.id for server in servers}
        return creds.server_id not in cached[0]


def validate(model: type[_M], body: Any, op: Operation) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise CadUnexpectedResponseError(
            f"v2 {op.id}: answer does not fit {model.__name__} ({exc.error_count()} problems)",
            request_type=op.request_type,
        ) from None


def validate_list(model: type[_M], body: Any, op: Operation) -> list[_M]:
    try:
        return TypeAdapter(list[model]).validate_python(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise CadUnexpectedResponseError(
            f"v2 {op.id}: answer does not fit a list of {model.__name__} ({exc.error_count()} problems)",
            request_type=op.request_type,
        ) from None


def created_id(answer: V2Answer, *keys: str) -> int:
    body = answer.body
    for key in keys:
        value = member(body, key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    raise CadUnexpectedResponseError(
        f"v2 {answer.operation.id}: no {'/'.join(keys)} in the answer",
        status=answer.status,
        request_type=answer.operation.request_type,
    )


def count_in(answer: V2Answer, key: str) -> int:
    value = member(answer.body, key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list):
        return len(value)
    raise CadUnexpectedResponseError(
        f"v2 {answer.operation.id}: no {key} in the answer",
        status=answer.status,
        request_type=answer.operation.request_type,
    )
