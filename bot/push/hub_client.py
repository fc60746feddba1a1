"""Push events over the Sonoran CAD API websocket: one supervised SignalR session per community + serverId.

The bot opens the connection outward (TLS in production), so a community needs no open port and its API key
never crosses the internet in plain HTTP. :class:`HubSession` owns one such session for one
(hub URL, community ID, serverId, API key): it negotiates, opens the websocket, does the JSON-protocol handshake,
calls ``authenticatev2(communityId, apiKey, serverId)`` after every (re)connect and hands every ``pushEvent``
envelope to the injected ``on_event`` callback. The wire contract is ``cad-api/websocket.md``.

Why a small client of our own on aiohttp's websocket rather than ``pysignalr``: pysignalr 1.3.3, run against the
loopback hub (``testing/signalr_hub.py``) that follows the contract, ends its ``run()`` for good when the hub
sends a Close with an ``error`` (even with ``allowReconnect``), when a frame holds a lone-surrogate escape
(orjson refuses it: one broken emoji would drop the session), and after ten dropped connections (it reconnects
with its stale connection id, every 404 spends a retry, and the counter never resets); and it never notices a
hub that stops sending (it only checks websocket-level pings, which the hub's web server answers by itself).
It also opens a new ``ClientSession`` per negotiation and brings in ``websockets`` and ``orjson``. Wrapping it
would mean rebuilding the client on each of those paths, replacing its decoder and adding our own watchdog,
which is more code than the protocol itself: a handshake, ``0x1E``-separated JSON messages, pings, one
invocation and one handler.

What the session does, and why:

- **Negotiate** (``POST {hub}/negotiate?negotiateVersion=1``) on every connect, as the official FiveM client
  does, so each connection gets a fresh single-use id (a stale one gets 404). ``HubTiming.negotiate=False``
  skips it and opens ``{hub}`` directly, as the docs' Node examples do: for a proxy that does not pass
  ``/negotiate`` through, or to save a round trip.
- **Keep-alive**: a ``{"type":6}`` ping after ``keepalive_s`` (15 s) without sending; if nothing at all arrives
  for ``server_timeout_s`` (30 s), the connection is dead even if TCP looks alive, and it is replaced.
- **Authentication** succeeds only on a result with ``success`` exactly ``true``. A refusal (``success: false``
  or a Completion error) is remembered as the last error and retried on the same connection after the backoff
  (2, 10, 30, 30 ... s: never faster than the schedule, and never at once).
- **Supervisor**: reconnects forever after 0, 2, 10, 30, then every 30 s, each stretched by up to ``jitter``
  so many sessions do not reconnect in step. The schedule starts again only after a session stayed
  authenticated for ``stable_after_s``, so a hub that accepts and drops at once is not hammered.
- **Robust input**: frames may batch several messages or split one; a message with a lone-surrogate escape is
  kept, with U+FFFD in place of the broken character (counted in ``messages_repaired``); a message that is not
  JSON, or a payload that is not an envelope, is counted and skipped. None of them ends the session.
- **Visible state**: :meth:`HubSession.status` (connected, authenticated, since when, reconnects, last event,
  last error, the current or last gap) and :attr:`HubSession.counters`; ``on_authenticated`` runs after every
  successful (re)authentication with the gap that just ended, so the caller can catch up over HTTP.
- Never logged or put in an error: raw frames, the API key, the connection token (it rides in the URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import aiohttp
from pydantic import SecretStr
from yarl import URL

from bot.cad.models import CadCredentials
from bot.timing import DateTimeClock, IdleWait, plain_await, utc_now

log = logging.getLogger(__name__)

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS
PING_FRAME = '{"type":6}' + RS
AUTH_METHOD = "authenticatev2"
PUSH_TARGET = "pushevent"  # compared case-folded: pushEvent, pushevent, PushEvent all match
NO_CLIENT_RESULT = "Client didn't provide a result."
MAX_NEGOTIATE_REDIRECTS = 5
ERROR_TEXT_LIMIT = 300

INVOCATION, COMPLETION, PING, CLOSE = 1, 3, 6, 7

EventCallback = Callable[[dict[str, Any]], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
DelayKind = Literal["reconnect", "auth"]

# A JSON escape of a UTF-16 surrogate; only messages holding one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class HubTiming:
    """Every interval and limit of a session. The defaults are the official client's; tests shorten them."""

    keepalive_s: float = 15.0
    server_timeout_s: float = 30.0
    connect_timeout_s: float = 15.0  # the negotiate request, and the websocket upgrade
    handshake_timeout_s: float = 15.0
    invoke_timeout_s: float = 15.0
    send_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    backoff_s: tuple[float, ...] = (0.0, 2.0, 10.0, 30.0)  # the last step repeats forever
    jitter: float = 0.2  # each delay is stretched by a random 0..20 %, never shortened
    stable_after_s: float = 30.0
    negotiate: bool = True
    max_message_bytes: int = 4 * 1024 * 1024
    alert_after_failures: int = 5  # consecutive failures before the log goes from debug to warning

    def __post_init__(self) -> None:
        if not self.backoff_s or any(step < 0 for step in self.backoff_s):
            raise ValueError("backoff_s needs at least one step, none negative")
        if self.keepalive_s <= 0 or self.server_timeout_s <= 0:
            raise ValueError("keepalive_s and server_timeout_s must be positive")

    def step(self, index: int) -> float:
        return self.backoff_s[min(index, len(self.backoff_s) - 1)]


@dataclass(frozen=True)
class HubSessionKey:
    """What makes two sessions the same session. The key is a ``SecretStr``: compared, hashed, never shown."""

    hub_url: str
    community_id: str
    server_id: int | None
    api_key: SecretStr

    @classmethod
    def of(cls, hub_url: str, credentials: CadCredentials) -> HubSessionKey:
        return cls(hub_url, credentials.community_id, credentials.server_id, credentials.api_key)


@dataclass
class HubCounters:
    """Monotonic counts for metrics (connects, reconnects, auth failures, events received) and for tests."""

    connects: int = 0  # handshakes completed
    reconnects: int = 0  # of those, the ones after the first
    connect_failures: int = 0  # attempts that ended before a handshake
    auth_attempts: int = 0
    auth_failures: int = 0
    events_received: int = 0  # envelopes handed to on_event
    events_invalid: int = 0  # pushEvent payloads that were not an envelope
    frames_received: int = 0
    messages_undecodable: int = 0  # not JSON, or not a hub message: skipped
    messages_repaired: int = 0  # lone surrogates replaced by U+FFFD, then used
    pings_sent: int = 0
    server_timeouts: int = 0
    callback_errors: int = 0


@dataclass(frozen=True)
class HubAuthenticated:
    """Passed to ``on_authenticated``: ``first`` for the session's first authentication, otherwise the gap
    (not authenticated, so events may have gone elsewhere) that just ended."""

    first: bool
    gap_started_at: datetime | None
    gap_s: float | None
    reconnects: int


AuthenticatedCallback = Callable[[HubAuthenticated], Awaitable[None]]


@dataclass(frozen=True)
class HubStatus:
    """A snapshot for ``/status`` and ``/healthz``. Every text is safe to show: no key, no token."""

    community_id: str
    server_id: int | None
    running: bool
    connected: bool
    authenticated: bool
    connected_since: datetime | None
    authenticated_since: datetime | None
    reconnects: int
    consecutive_failures: int
    last_event_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    down_since: datetime | None  # set while a gap is open (was authenticated, is not now)
    last_gap_started_at: datetime | None
    last_gap_s: float | None  # how long the last closed gap lasted


class HubError(Exception):
    """A session-level failure; its text is safe to show (no key, no token, no frame)."""


class HubNotConnected(HubError):
    def __init__(self) -> None:
        super().__init__("the hub session is not connected")


class HubConnectionLost(HubError):
    def __init__(self) -> None:
        super().__init__("the connection to the hub was lost")


class HubInvocationError(HubError):
    """The hub answered an invocation with a Completion ``error``."""


class _ServerClosed(HubError):
    """The hub sent a Close message (type 7)."""


@dataclass
class _Gap:
    started_at: datetime
    started_mono: float


@dataclass
class _Live:
    """The current connection's moving parts, dropped as a whole when it ends."""

    ws: aiohttp.ClientWebSocketResponse
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_sent: float = 0.0
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class HubSession:
    """One websocket push session, supervised: ``await start()``, later ``await stop()``.

    ``http`` is the process's one ``aiohttp.ClientSession``; the session never closes it. ``on_event`` gets
    every ``pushEvent`` envelope as a ``dict``, in order, untouched (the caller checks its key and type).
    ``sleep`` and ``rng`` exist for tests: the backoff sleeps go through ``sleep`` and are also recorded in
    ``scheduled_delays``.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        hub_url: str,
        credentials: CadCredentials,
        *,
        on_event: EventCallback,
        on_authenticated: AuthenticatedCallback | None = None,
        timing: HubTiming | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        now: DateTimeClock = utc_now,
        io_wait: IdleWait = plain_await,
    ) -> None:
        self.key = HubSessionKey.of(hub_url, credentials)
        self.timing = timing or HubTiming()
        self.counters = HubCounters()
        self.scheduled_delays: deque[tuple[DelayKind, float]] = deque(maxlen=200)
        self._http = http
        self._hub_url = URL(hub_url)
        self._credentials = credentials
        self._on_event = on_event
        self._on_authenticated = on_authenticated
        self._sleep = sleep
        # Wraps every wait on the network or the clock (SimCord tests declare them as outside input).
        self._io_wait = io_wait
        self._rng = rng or random.Random()
        self._now = now
        self._ids = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._live: _Live | None = None
        self._stopping = False
        # What status() shows.
        self._connected_since: datetime | None = None
        self._authenticated_since: datetime | None = None
        self._authenticated_mono: float | None = None
        self._ever_connected = False
        self._ever_authenticated = False
        self._last_event_at: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._gap: _Gap | None = None
        self._last_gap: tuple[datetime, float] | None = None
        # Backoff bookkeeping.
        self._reconnect_step = 0
        self._consecutive_failures = 0
        self._auth_refusals = 0
        self._auth_not_before = 0.0

    def __repr__(self) -> str:
        return f"<HubSession community={self.key.community_id!r} server={self.key.server_id!r}>"

    # ---------------------------------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the supervisor; it connects in the background and keeps the session up until ``stop``."""
        if self.running:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name=f"hub-session-{self.key.community_id}")

    async def stop(self) -> None:
        """Close the websocket cleanly (close frame 1000), then end everything the session started."""
        self._stopping = True
        task, self._task = self._task, None
        live = self._live
        if live is not None and not live.ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timing.close_timeout_s):
                    await live.ws.close(code=aiohttp.WSCloseCode.OK)
            if task is not None:
                # The receive loop sees the close and the supervisor ends by itself; cancel only a straggler.
                await asyncio.wait({task}, timeout=self.timing.close_timeout_s)
        tasks = [t for t in (task, *self._hooks) if t is not None and not t.done()]
        for pending in tasks:
            pending.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._hooks.clear()
        self._live = None
        self._connected_since = None
        self._authenticated_since = None
        self._authenticated_mono = None

    # ------------------------------------------------------------------------------------------- state

    def status(self) -> HubStatus:
        gap_started, gap_s = self._last_gap if self._last_gap is not None else (None, None)
        return HubStatus(
            community_id=self.key.community_id,
            server_id=self.key.server_id,
            running=self.running,
            connected=self._live is not None and self._connected_since is not None,
            authenticated=self._authenticated_since is not None,
            connected_since=self._connected_since,
            authenticated_since=self._authenticated_since,
            reconnects=self.counters.reconnects,
            consecutive_failures=self._consecutive_failures,
            last_event_at=self._last_event_at,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            down_since=self._gap.started_at if self._gap is not None else None,
            last_gap_started_at=gap_started,
            last_gap_s=gap_s,
        )

    def _record_error(self, text: str) -> None:
        self._last_error = self._safe(text)
        self._last_error_at = self._now()

    def _safe(self, text: str) -> str:
        """Text from the hub or a library, made fit to show: the key masked, one line, bounded."""
        secret = self._credentials.api_key.get_secret_value()
        if secret:
            text = text.replace(secret, "[redacted]")
        text = _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text)).strip()
        return text[: ERROR_TEXT_LIMIT - 1] + "…" if len(text) > ERROR_TEXT_LIMIT else text

    # -------------------------------------------------------------------------------------- supervisor

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not end the session for good: every failure is a reconnect
                self._failed(self._why_it_ended(exc))
            if self._stopping:
                return
            stable = (
                self._authenticated_mono is not None
                and loop.time() - self._authenticated_mono >= self.timing.stable_after_s
            )
            self._mark_disconnected()
            if stable:
                self._reconnect_step = 0
            delay = self._jittered(self.timing.step(self._reconnect_step))
            self._reconnect_step += 1
            await self._pause("reconnect", delay)

    def _why_it_ended(self, exc: Exception) -> str:
        """A connection's end as a short, safe sentence for /status (never a key or a token)."""
        if isinstance(exc, HubError):
            return str(exc)
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            return f"the websocket upgrade was refused (HTTP {exc.status})"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or 'refused'})"
        if isinstance(exc, TimeoutError):  # before OSError, of which it is a kind
            return "the hub did not answer in time"
        if isinstance(exc, aiohttp.ClientError | OSError):
            return f"connection failed ({type(exc).__name__})"
        log.error("unexpected error in the hub session for community %s", self.key.community_id, exc_info=exc)
        return f"unexpected error ({type(exc).__name__})"

    def _failed(self, reason: str) -> None:
        if self._stopping:
            return
        if self._connected_since is None:
            self.counters.connect_failures += 1
        self._consecutive_failures += 1
        self._record_error(reason)
        if self._consecutive_failures == self.timing.alert_after_failures:
            log.warning(
                "hub session for community %s server %s: %d failures in a row, last: %s",
                self.key.community_id,
                self.key.server_id,
                self._consecutive_failures,
                self._last_error,
            )
        else:
            log.debug("hub session for community %s: %s", self.key.community_id, self._last_error)

    def _jittered(self, delay: float) -> float:
        return delay * (1.0 + self._rng.uniform(0.0, self.timing.jitter)) if delay > 0 else 0.0

    async def _pause(self, kind: DelayKind, delay: float) -> None:
        self.scheduled_delays.append((kind, delay))
        await self._io_wait(self._sleep(delay))

    def _mark_disconnected(self) -> None:
        self._live = None
        self._connected_since = None
        if self._authenticated_since is not None:
            self._authenticated_since = None
            self._authenticated_mono = None
            self._gap = _Gap(self._now(), asyncio.get_running_loop().time())

    # ------------------------------------------------------------------------------------- connection

    async def _connect_once(self) -> None:
        ws_url, headers = (
            await self._io_wait(self._negotiate())
            if self.timing.negotiate
            else (self._ws_url(self._hub_url), {})
        )
        async with asyncio.timeout(self.timing.connect_timeout_s):
            ws = await self._io_wait(
                self._http.ws_connect(
                    ws_url,
                    headers=headers,
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=self.timing.max_message_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.timing.close_timeout_s),
                )
            )
        live = _Live(ws)
        self._live = live
        background: list[asyncio.Task[None]] = []
        try:
            leftover = await self._handshake(live)
            self._connected(live)
            background.append(asyncio.create_task(self._keep_alive(live)))
            background.append(asyncio.create_task(self._authenticate(live)))
            await self._receive(live, leftover)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for future in live.pending.values():
                if not future.done():
                    future.set_exception(HubConnectionLost())
            live.pending.clear()
            if not ws.closed:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.timing.close_timeout_s):
                        await ws.close()

    @staticmethod
    def _ws_url(url: URL) -> URL:
        scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
        return url.with_scheme(scheme)

    async def _negotiate(self) -> tuple[URL, dict[str, str]]:
        url = self._hub_url
        headers: dict[str, str] = {}
        timeout = aiohttp.ClientTimeout(total=self.timing.connect_timeout_s)
        for _ in range(MAX_NEGOTIATE_REDIRECTS):
            negotiate_url = url.with_path(url.path.rstrip("/") + "/negotiate").update_query(
                negotiateVersion=1
            )
            async with self._http.post(negotiate_url, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    raise HubError(f"negotiation failed (HTTP {response.status})")
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    raise HubError("negotiation answered something that is not JSON") from None
            if not isinstance(body, dict):
                raise HubError("negotiation answered something that is not a JSON object")
            if body.get("error"):
                raise HubError(f"negotiation refused: {body['error']}")
            if isinstance(body.get("url"), str):  # a redirect (Azure SignalR style)
                url = URL(body["url"])
                token = body.get("accessToken")
                headers = {"Authorization": f"Bearer {token}"} if isinstance(token, str) and token else {}
                continue
            transports = body.get("availableTransports")
            if isinstance(transports, list) and transports:
                names = {t.get("transport") for t in transports if isinstance(t, dict)}
                if "WebSockets" not in names:
                    raise HubError("the hub offers no WebSockets transport")
            version = body.get("negotiateVersion", 0)
            versioned = isinstance(version, int) and version >= 1
            connection_id = body.get("connectionToken" if versioned else "connectionId")
            if not isinstance(connection_id, str) or not connection_id:
                raise HubError("negotiation returned no connection id")
            return self._ws_url(url).update_query(id=connection_id), headers
        raise HubError("too many negotiation redirects")

    async def _handshake(self, live: _Live) -> str:
        """Send the handshake, read the response; return whatever followed it in the same frame."""
        await self._send(live, HANDSHAKE)
        buffer = ""
        async with asyncio.timeout(self.timing.handshake_timeout_s):
            while RS not in buffer:
                text = self._frame_text(await self._io_wait(live.ws.receive()))
                if text is None:
                    raise HubError("the hub closed the connection during the handshake")
                buffer += text
                if len(buffer) > self.timing.max_message_bytes:
                    raise HubError("the handshake response is too large")
        head, _, rest = buffer.partition(RS)
        try:
            response = json.loads(head)
        except ValueError:
            raise HubError("the handshake response is not JSON") from None
        if not isinstance(response, dict):
            raise HubError("the handshake response is not a JSON object")
        if response.get("error"):
            raise HubError(f"the hub refused the handshake: {response['error']}")
        return rest

    def _frame_text(self, msg: aiohttp.WSMessage) -> str | None:
        """The text of a data frame; ``None`` when the connection is over."""
        if msg.type is aiohttp.WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return bytes(msg.data).decode("utf-8", errors="replace")
        return None

    def _connected(self, live: _Live) -> None:
        self.counters.connects += 1
        if self._ever_connected:
            self.counters.reconnects += 1
        self._ever_connected = True
        self._connected_since = self._now()
        log.debug("hub session for community %s connected", self.key.community_id)

    async def _receive(self, live: _Live, buffer: str) -> None:
        ws = live.ws
        records: list[str]
        *records, buffer = buffer.split(RS)
        while True:
            for record in records:
                if record:
                    await self._handle(live, record)
            try:
                msg = await self._io_wait(ws.receive(timeout=self.timing.server_timeout_s))
            except TimeoutError:
                self.counters.server_timeouts += 1
                raise HubError(
                    f"nothing from the hub for {self.timing.server_timeout_s:g} s; replacing the connection"
                ) from None
            text = self._frame_text(msg)
            if text is None:
                if msg.type is aiohttp.WSMsgType.ERROR:
                    raise HubError(f"websocket error ({type(msg.data).__name__})")
                raise HubError(f"the hub closed the websocket (code {ws.close_code})")
            self.counters.frames_received += 1
            *records, buffer = (buffer + text).split(RS)
            if len(buffer) > self.timing.max_message_bytes:
                self.counters.messages_undecodable += 1
                buffer = ""

    # ----------------------------------------------------------------------------------------- messages

    def _decode(self, text: str) -> Any:
        """JSON text to a value; lone surrogates (broken text the CAD encoded) become U+FFFD.

        Raises ``ValueError`` when the text is not JSON.
        """
        value = json.loads(text)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            repaired = _repair(value)
            if repaired != value:
                self.counters.messages_repaired += 1
            return repaired
        return value

    async def _handle(self, live: _Live, record: str) -> None:
        try:
            message = self._decode(record)
        except ValueError:
            self.counters.messages_undecodable += 1
            log.debug("skipped a message from the hub that is not JSON (%d characters)", len(record))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, int) or isinstance(kind, bool):
            self.counters.messages_undecodable += 1
            return
        if kind == INVOCATION:
            await self._on_invocation(live, message)
        elif kind == COMPLETION:
            future = live.pending.get(str(message.get("invocationId")))
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == CLOSE:
            error = message.get("error")
            if error:
                raise _ServerClosed(f"the hub closed the session: {error}")
            raise _ServerClosed("the hub closed the session")
        # PING only resets the server timeout, which any received frame does; other types are not used here.

    async def _on_invocation(self, live: _Live, message: dict[str, Any]) -> None:
        target = message.get("target")
        invocation_id = message.get("invocationId")
        arguments = message.get("arguments")
        if not isinstance(target, str) or target.casefold() != PUSH_TARGET:
            log.debug("the hub invoked %r, which this client does not handle", str(target)[:64])
            if invocation_id is not None:
                await self._reply(live, invocation_id, error=NO_CLIENT_RESULT)
            return
        payload = arguments[0] if isinstance(arguments, list) and arguments else None
        if isinstance(payload, str):
            try:
                payload = self._decode(payload)
            except ValueError:
                payload = None
        if isinstance(payload, dict):
            self.counters.events_received += 1
            self._last_event_at = self._now()
            try:
                await self._on_event(payload)
            except Exception:
                self.counters.callback_errors += 1
                event_type = payload.get("type")
                log.exception(
                    "the push-event callback failed on a %s event from community %s",
                    str(event_type)[:64] if isinstance(event_type, str) else "untyped",
                    self.key.community_id,
                )
        else:
            self.counters.events_invalid += 1
            log.debug("skipped a pushEvent whose payload is not an envelope")
        if invocation_id is not None:
            await self._reply(live, invocation_id, result=None)

    async def _reply(
        self, live: _Live, invocation_id: Any, *, result: Any = None, error: str | None = None
    ) -> None:
        message: dict[str, Any] = {"type": COMPLETION, "invocationId": str(invocation_id)}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result
        with contextlib.suppress(HubError):
            await self._send(live, _encode(message))

    # ------------------------------------------------------------------------------------------ sending

    async def _send(self, live: _Live, text: str) -> None:
        async with live.send_lock:
            try:
                async with asyncio.timeout(self.timing.send_timeout_s):
                    await live.ws.send_str(text)
            except (ConnectionError, RuntimeError, aiohttp.ClientError, TimeoutError):
                raise HubConnectionLost() from None
        live.last_sent = asyncio.get_running_loop().time()

    async def invoke(self, target: str, *arguments: Any, within_s: float | None = None) -> Any:
        """Call a hub method and return its Completion ``result``.

        Raises :class:`HubInvocationError` for a Completion ``error``, ``TimeoutError`` after ``within_s``
        (default ``invoke_timeout_s``), :class:`HubNotConnected` / :class:`HubConnectionLost` without a connection.
        """
        live = self._live
        if live is None or live.ws.closed:
            raise HubNotConnected()
        invocation_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        live.pending[invocation_id] = future
        message = {
            "type": INVOCATION,
            "invocationId": invocation_id,
            "target": target,
            "arguments": list(arguments),
        }
        try:
            await self._send(live, _encode(message))
            async with asyncio.timeout(self.timing.invoke_timeout_s if within_s is None else within_s):
                completion = await self._io_wait(future)
        finally:
            live.pending.pop(invocation_id, None)
        error = completion.get("error")
        if error is not None:
            raise HubInvocationError(self._safe(str(error)))
        return completion.get("result")

    async def _keep_alive(self, live: _Live) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = live.last_sent + self.timing.keepalive_s - loop.time()
            if wait > 0:
                await self._io_wait(asyncio.sleep(wait))
                continue
            try:
                await self._send(live, PING_FRAME)
            except HubError:
                return  # the receive loop sees the connection end
            self.counters.pings_sent += 1

    # ----------------------------------------------------------------------------------- authentication

    async def _authenticate(self, live: _Live) -> None:
        """Authenticate this connection, retrying after a refusal with the backoff; forever, until it works."""
        loop = asyncio.get_running_loop()
        try:
            remaining = self._auth_not_before - loop.time()
            if (
                remaining > 0
            ):  # a new connection in the middle of an authentication backoff waits out the rest
                await self._pause("auth", remaining)
            while not await self._authenticate_once():
                self._auth_refusals += 1
                delay = self._jittered(self.timing.step(max(1, self._auth_refusals)))
                self._auth_not_before = loop.time() + delay
                await self._pause("auth", delay)
                self._auth_not_before = 0.0
        except HubError:
            return  # the connection is ending; the next one authenticates afresh
        except Exception:
            # A connection that can never authenticate is useless: end it, and the supervisor starts over.
            log.exception("authenticating the hub session for community %s failed", self.key.community_id)
            await live.ws.close()

    async def _authenticate_once(self) -> bool:
        self.counters.auth_attempts += 1
        credentials = self._credentials
        try:
            result = await self.invoke(
                AUTH_METHOD,
                credentials.community_id,
                credentials.api_key.get_secret_value(),
                credentials.server_id,
            )
        except HubInvocationError as exc:
            reason = f"authentication failed: {exc}"
        except TimeoutError:
            reason = "authentication got no answer in time"
        else:
            if isinstance(result, dict) and result.get("success") is True:
                self._authenticated()
                return True
            error = result.get("error") if isinstance(result, dict) else None
            reason = f"authentication refused: {error}" if error else "authentication refused"
        self.counters.auth_failures += 1
        self._consecutive_failures += 1
        self._record_error(reason)
        first = self._auth_refusals == 0
        level = (
            logging.WARNING
            if first or self._consecutive_failures == self.timing.alert_after_failures
            else logging.DEBUG
        )
        log.log(
            level,
            "hub session for community %s server %s: %s",
            self.key.community_id,
            self.key.server_id,
            self._last_error,
        )
        return False

    def _authenticated(self) -> None:
        loop = asyncio.get_running_loop()
        now = self._now()
        first = not self._ever_authenticated
        self._ever_authenticated = True
        self._authenticated_since = now
        self._authenticated_mono = loop.time()
        self._consecutive_failures = 0
        self._auth_refusals = 0
        self._auth_not_before = 0.0
        gap, self._gap = self._gap, None
        gap_s = loop.time() - gap.started_mono if gap is not None else None
        if gap is not None and gap_s is not None:
            self._last_gap = (gap.started_at, gap_s)
            log.info(
                "hub session for community %s server %s is back after %.1f s",
                self.key.community_id,
                self.key.server_id,
                gap_s,
            )
        else:
            log.info(
                "hub session for community %s server %s authenticated",
                self.key.community_id,
                self.key.server_id,
            )
        if self._on_authenticated is not None:
            info = HubAuthenticated(
                first=first,
                gap_started_at=gap.started_at if gap is not None else None,
                gap_s=gap_s,
                reconnects=self.counters.reconnects,
            )
            task = asyncio.create_task(self._run_hook(info))
            self._hooks.add(task)
            task.add_done_callback(self._hooks.discard)

    async def _run_hook(self, info: HubAuthenticated) -> None:
        assert self._on_authenticated is not None
        try:
            await self._on_authenticated(info)
        except Exception:
            log.exception("the on_authenticated hook failed for community %s", self.key.community_id)


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":")) + RS


def _repair(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repair(item) for item in value]
    if isinstance(value, dict):
        return {_repair(k): _repair(v) for k, v in value.items()}
    return value
