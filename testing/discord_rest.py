"""A loopback stand-in for the slice of Discord's REST API that message delivery uses.

It speaks enough of the real protocol for ``discord.http.HTTPClient`` to run unmodified against it:
``GET /users/@me`` (``static_login``), ``GET /channels/{id}``, ``POST /channels/{id}/messages`` and
``PATCH /channels/{id}/messages/{mid}``, with Discord's rate-limit headers on every answer.

What it lets a test check:

* every request, with its ``time.monotonic()`` arrival time and whether it landed in an already exhausted
  bucket (which real Discord would punish with a 429 and which a well-behaved client never does);
* per-channel buckets (``limit`` requests per ``window`` seconds; creating and editing messages are separate
  buckets, as on Discord) with real ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`` headers;
* injectable faults per channel, consumed one per request: 429 (JSON ``retry_after`` + ``Via`` header, the
  only kind discord.py retries by itself; or ``via=False``, a 429 from Cloudflare in front of Discord that
  discord.py hands to its caller), 500/502/503, 403 (code 50013), 404 (code 10003), or a channel that answers
  one status to everything; every 429 carries a ``Retry-After`` header, as Discord's do;
* ``nonce`` + ``enforce_nonce``: the same nonce in a channel within ``nonce_window`` returns the first message;
* ``hold_responses``: store the message but keep the answer back, to simulate a reply lost in a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
MAX_EMBEDS = 10
MAX_EMBED_TOTAL_CHARS = 6000
MAX_NONCE_CHARS = 25

_FAULT_BODIES: dict[int, dict[str, Any]] = {
    403: {"message": "Missing Permissions", "code": 50013},
    404: {"message": "Unknown Channel", "code": 10003},
    500: {"message": "Internal Server Error", "code": 0},
    502: {"message": "Bad Gateway", "code": 0},
    503: {"message": "Service Unavailable", "code": 0},
}


def embed_chars(embed: dict[str, Any]) -> int:
    """Characters Discord counts towards the 6000-per-message embed budget."""
    total = len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
    total += len(str((embed.get("footer") or {}).get("text") or ""))
    total += len(str((embed.get("author") or {}).get("name") or ""))
    for embed_field in embed.get("fields") or []:
        total += len(str(embed_field.get("name") or "")) + len(str(embed_field.get("value") or ""))
    return total


@dataclass
class RecordedRequest:
    method: str
    path: str
    channel_id: int | None
    message_id: int | None
    at: float
    into_exhausted_bucket: bool
    status: int = 0
    body: dict[str, Any] | None = None
    fault: int | None = None


@dataclass
class StoredMessage:
    id: int
    channel_id: int
    content: str | None
    embeds: list[dict[str, Any]]
    allowed_mentions: dict[str, Any] | None
    nonce: str | None
    created_at: float
    edits: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": 0,
            "content": self.content or "",
            "embeds": self.embeds,
            "nonce": self.nonce,
            "author": {"id": str(FAKE_BOT_USER["id"]), "username": "fakebot", "bot": True},
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "pinned": False,
            "tts": False,
            "mention_everyone": False,
            "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": None,
        }


FAKE_BOT_USER: dict[str, Any] = {
    "id": "100000000000000001",
    "username": "fakebot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}


@dataclass
class _Bucket:
    limit: int
    window: float
    remaining: int
    resets_at: float = 0.0

    def refresh(self, now: float) -> None:
        if now >= self.resets_at:
            self.remaining = self.limit
            self.resets_at = now + self.window

    def reset_after(self, now: float) -> float:
        # Rounded up so a client that sleeps exactly this long never arrives before the window turns.
        return math.ceil(max(self.resets_at - now, 0.0) * 1000) / 1000


@dataclass
class _Fault:
    status: int
    retry_after: float
    via: bool = True


class DiscordRestFake:
    """Start with ``async with DiscordRestFake() as fake`` and point ``Route.BASE`` at ``fake.api_base``."""

    def __init__(
        self,
        *,
        limit: int = 5,
        window: float = 0.5,
        nonce_window: float = 300.0,
        token: str | None = None,
        port: int = 0,
    ) -> None:
        self.limit = limit
        self.window = window
        self.nonce_window = nonce_window
        self.expected_token = token
        # Lower it to make Discord refuse packed messages (400, code 50035), as it does for invalid ones.
        self.max_embeds = MAX_EMBEDS
        self.requests: list[RecordedRequest] = []
        self._messages: dict[int, list[StoredMessage]] = defaultdict(list)
        self._by_id: dict[int, StoredMessage] = {}
        self._nonces: dict[tuple[int, str], StoredMessage] = {}
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._faults: dict[int, deque[_Fault]] = defaultdict(deque)
        self._sticky: dict[int, int] = {}
        self._held: dict[int, asyncio.Event] = {}
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._runner: web.AppRunner | None = None
        # 0 picks a free port at start; a fixed one lets a test point a process at Discord before it is up.
        self.port = port
        self.request_arrived = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(f"{API_PREFIX}/users/@me", self._get_me)
        app.router.add_get(f"{API_PREFIX}/oauth2/applications/@me", self._get_application)
        app.router.add_get(f"{API_PREFIX}/channels/{{channel_id}}", self._get_channel)
        app.router.add_post(f"{API_PREFIX}/channels/{{channel_id}}/messages", self._create_message)
        app.router.add_patch(
            f"{API_PREFIX}/channels/{{channel_id}}/messages/{{message_id}}", self._edit_message
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for event in self._held.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordRestFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    # -- test controls -----------------------------------------------------------------------------

    def inject(self, channel_id: int, *statuses: int, retry_after: float = 0.2, via: bool = True) -> None:
        """Answer the next requests to ``channel_id`` with these statuses, one per request, in order
        (``via=False``: 429s without the ``Via`` header, as Cloudflare sends them)."""
        for status in statuses:
            self._faults[channel_id].append(_Fault(status, retry_after, via))

    def fail_channel(self, channel_id: int, status: int | None) -> None:
        """Answer every request to ``channel_id`` with ``status`` (``None`` heals the channel)."""
        if status is None:
            self._sticky.pop(channel_id, None)
        else:
            self._sticky[channel_id] = status

    def hold_responses(self, channel_id: int) -> None:
        """Store created messages in ``channel_id`` but keep the answers back until :meth:`release`."""
        self._held.setdefault(channel_id, asyncio.Event())

    def release(self, channel_id: int) -> None:
        event = self._held.pop(channel_id, None)
        if event is not None:
            event.set()

    def delete_message(self, channel_id: int, message_id: int) -> None:
        """Delete a message as a moderator would (later edits of it answer 404, code 10008)."""
        message = self._by_id.pop(message_id)
        self._messages[channel_id].remove(message)

    def messages(self, channel_id: int) -> list[StoredMessage]:
        return list(self._messages.get(channel_id, []))

    def all_embeds(self, channel_id: int) -> list[dict[str, Any]]:
        return [embed for message in self.messages(channel_id) for embed in message.embeds]

    def requests_to(self, channel_id: int, method: str | None = None) -> list[RecordedRequest]:
        return [
            request
            for request in self.requests
            if request.channel_id == channel_id and (method is None or request.method == method)
        ]

    def bucket_state(self, channel_id: int, kind: str = "create") -> tuple[int, float] | None:
        """``(requests left, time.monotonic() when it resets)`` of a channel's bucket (``create`` for new
        messages, ``edit`` for edits) as it stands now; None before its first request."""
        bucket = self._buckets.get((kind, channel_id))
        if bucket is None:
            return None
        now = time.monotonic()
        if now >= bucket.resets_at:
            return bucket.limit, now
        return bucket.remaining, bucket.resets_at

    @property
    def exhausted_bucket_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.into_exhausted_bucket]

    # -- request handling --------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bot "):
            return False
        return self.expected_token is None or header == f"Bot {self.expected_token}"

    def _bucket(self, kind: str, channel_id: int, now: float) -> _Bucket:
        bucket = self._buckets.get((kind, channel_id))
        if bucket is None:
            bucket = _Bucket(limit=self.limit, window=self.window, remaining=self.limit)
            self._buckets[(kind, channel_id)] = bucket
        bucket.refresh(now)
        return bucket

    def _headers(self, kind: str, bucket: _Bucket, now: float) -> dict[str, str]:
        reset_after = bucket.reset_after(now)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"fake-{kind}-bucket",
        }

    async def _read_json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    async def _admit(
        self, request: web.Request, kind: str, channel_id: int, message_id: int | None
    ) -> tuple[RecordedRequest, web.Response | None, dict[str, str], dict[str, Any] | None]:
        """Record the request, apply its bucket and any fault; return an early answer if there is one."""
        now = time.monotonic()
        body = await self._read_json(request) if request.method in {"POST", "PATCH"} else None
        bucket = self._bucket(kind, channel_id, now)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            channel_id=channel_id,
            message_id=message_id,
            at=now,
            into_exhausted_bucket=bucket.remaining <= 0,
            body=body,
        )
        self.requests.append(record)
        self.request_arrived.set()
        headers = self._headers(kind, bucket, now)
        if not self._authorised(request):
            record.status = 401
            return (
                record,
                _json({"message": "401: Unauthorized", "code": 0}, status=401),
                {},
                body,
            )
        if record.into_exhausted_bucket:
            retry_after = bucket.reset_after(now)
            record.status = 429
            answer = _json(
                {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                status=429,
                headers={
                    **headers,
                    "Via": "1.1 google",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": f"{retry_after:g}",
                },
            )
            return record, answer, headers, body
        fault = self._next_fault(channel_id)
        if fault is not None and fault.status == 429:
            record.status = record.fault = 429
            limited_headers = {
                **headers,
                "X-RateLimit-Scope": "shared",
                "Retry-After": f"{fault.retry_after:g}",
            }
            if fault.via:
                limited_headers["Via"] = "1.1 google"
            answer = _json(
                {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": False},
                status=429,
                headers=limited_headers,
            )
            return record, answer, headers, body
        bucket.remaining -= 1
        headers = self._headers(kind, bucket, now)
        if fault is not None:
            record.status = record.fault = fault.status
            payload = _FAULT_BODIES.get(fault.status, {"message": "error", "code": 0})
            return record, _json(payload, status=fault.status, headers=headers), headers, body
        return record, None, headers, body

    def _next_fault(self, channel_id: int) -> _Fault | None:
        if channel_id in self._sticky:
            return _Fault(self._sticky[channel_id], 0.0)
        queue = self._faults.get(channel_id)
        if queue:
            return queue.popleft()
        return None

    async def _get_me(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(FAKE_BOT_USER)

    async def _get_application(self, request: web.Request) -> web.Response:
        """What ``Client.login`` reads after ``static_login`` (a whole bot process logs in against the fake)."""
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            {
                "id": str(FAKE_BOT_USER["id"]),
                "name": "fakebot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": {"id": "1", "username": "owner", "discriminator": "0", "avatar": None},
                "flags": 0,
            }
        )

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = _int_or_none(request.match_info["channel_id"])
        if channel_id is None:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        record, early, headers, _ = await self._admit(request, "channel", channel_id, None)
        if early is not None:
            return early
        record.status = 200
        return _json(
            {"id": str(channel_id), "type": 0, "name": f"channel-{channel_id}", "guild_id": "1"},
            headers=headers,
        )

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = _int_or_none(request.match_info["channel_id"])
        if channel_id is None:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        record, early, headers, body = await self._admit(request, "create", channel_id, None)
        if early is not None:
            return early
        problem = _invalid_message(body, max_embeds=self.max_embeds)
        if problem is not None or body is None:
            record.status = 400
            return _json(
                {"message": f"Invalid Form Body: {problem}", "code": 50035}, status=400, headers=headers
            )
        nonce = body.get("nonce")
        now = time.monotonic()
        existing = None
        if isinstance(nonce, str) and body.get("enforce_nonce"):
            existing = self._nonces.get((channel_id, nonce))
            if existing is not None and now - existing.created_at > self.nonce_window:
                existing = None
        if existing is not None:
            message = existing
        else:
            message = StoredMessage(
                id=next(self._ids),
                channel_id=channel_id,
                content=body.get("content"),
                embeds=list(body.get("embeds") or []),
                allowed_mentions=body.get("allowed_mentions"),
                nonce=nonce if isinstance(nonce, str) else None,
                created_at=now,
            )
            self._messages[channel_id].append(message)
            self._by_id[message.id] = message
            if message.nonce is not None and body.get("enforce_nonce"):
                self._nonces[(channel_id, message.nonce)] = message
        held = self._held.get(channel_id)
        if held is not None:
            await held.wait()
        record.status = 200
        return _json(message.as_json(), headers=headers)

    async def _edit_message(self, request: web.Request) -> web.Response:
        channel_id = _int_or_none(request.match_info["channel_id"])
        message_id = _int_or_none(request.match_info["message_id"])
        if channel_id is None or message_id is None:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        record, early, headers, body = await self._admit(request, "edit", channel_id, message_id)
        if early is not None:
            return early
        message = self._by_id.get(message_id)
        if message is None or message.channel_id != channel_id:
            record.status = 404
            return _json({"message": "Unknown Message", "code": 10008}, status=404, headers=headers)
        problem = _invalid_message(body, editing=True, max_embeds=self.max_embeds)
        if problem is not None or body is None:
            record.status = 400
            return _json(
                {"message": f"Invalid Form Body: {problem}", "code": 50035}, status=400, headers=headers
            )
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "content" in body:
            message.content = body["content"]
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        message.edits.append(body)
        record.status = 200
        return _json(message.as_json(), headers=headers)


def _json(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json", as Discord sends it: discord.py parses JSON only for that exact value.
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _int_or_none(text: str) -> int | None:
    with contextlib.suppress(ValueError):
        return int(text)
    return None


def _invalid_message(
    body: dict[str, Any] | None, *, editing: bool = False, max_embeds: int = MAX_EMBEDS
) -> str | None:
    """Mirror the checks Discord applies that a delivery worker could trip over."""
    if body is None:
        return "body is not a JSON object"
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list) or len(embeds) > max_embeds:
        return f"embeds: at most {max_embeds}"
    if sum(embed_chars(embed) for embed in embeds) > MAX_EMBED_TOTAL_CHARS:
        return "embeds: total size exceeds 6000"
    if not editing and not embeds and not body.get("content"):
        return "Cannot send an empty message"
    nonce = body.get("nonce")
    if nonce is not None and (not isinstance(nonce, str | int) or len(str(nonce)) > MAX_NONCE_CHARS):
        return "nonce: must be at most 25 characters"
    return None
