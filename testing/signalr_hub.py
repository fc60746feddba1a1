"""A loopback Sonoran CAD API websocket hub (SignalR, JSON hub protocol) for tests and local development.

It follows ``cad-api/websocket.md`` (the checklist in its section 11):

- ``POST {hub}/negotiate``: version 1 when ``negotiateVersion>=1`` is asked for (``?id=`` is then the
  ``connectionToken``), otherwise version 0 (``?id=`` is the ``connectionId``); WebSockets only, no
  authentication, unknown query parameters ignored, every negotiated id usable once.
- ``GET {hub}`` upgrade with or without ``id``: an unknown (or already used) id gets 404, a second websocket for an
  id that has one gets 409.
- Handshake ``{}\\x1e``; input split on ``0x1E`` (batched and split frames both work); one message per frame out.
- Hub methods matched case-insensitively: ``authenticatev2`` and the legacy ``authenticate`` (2 or 3 arguments,
  ``null`` serverId allowed), ``unitLocation`` (1-25 updates, one target each, 200 ms apart per connection);
  anything else gets the Completion error ``Unknown hub method '{target}'``.
- ``push()`` routes a ``{key, type, data}`` envelope for a community + serverId to its authenticated sessions
  under a policy (``last-wins`` by default, ``first-wins``, ``fan-out``, ``round-robin``), as an object or as a
  JSON string; with no such session it POSTs the envelope to ``fallback_url`` when one is configured.
- Keep-alive: a ``{"type":6}`` ping after ``keepalive_s`` without sending; after ``client_timeout_s`` with nothing
  received, ``{"type":7,"error":"Client timeout."}`` and close 1000. Both are constructor arguments.
- Switches for tests: ``close_connection`` (clean ``{"type":7}``, ``{"type":7, "error": ..., "allowReconnect":
  true}``, or a killed TCP connection), ``stall`` (the connection goes silent: no pings, no replies, no events),
  ``refuse_auth``, ``refuse_negotiation``, ``send_raw`` (any frame text, for malformed input).

Counters (``counters``), every connection (``connections``, each with its own frames, auth calls and close
facts) and ``wait_for(predicate)`` let tests observe it without sleeping. API keys and connection tokens are
never logged and never kept on a connection.

Run a dev server with ``python -m testing.signalr_hub [PORT]``: community ``dev`` (key ``$CAD_SIM_API_KEY``,
default ``dev-key``), server 1; ``POST /_fake/push?communityId=dev&serverId=1`` with an envelope body injects an
event, ``GET /_fake/state`` shows the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal, cast, get_args

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

RS = "\x1e"
Policy = Literal["last-wins", "first-wins", "fan-out", "round-robin"]
POLICIES: tuple[str, ...] = get_args(Policy)
CloseMode = Literal["clean", "reconnect", "kill"]
RefusalForm = Literal["result", "error"]

INVALID_CREDENTIALS = "Invalid community ID or API key."
UNAUTHENTICATED = "Unauthenticated. Call authenticate first."
MISSING_UPDATES = "Missing unit location updates."
TOO_MANY_UPDATES = "Too many unit updates in one call. Max is 25."
UPDATES_TOO_FAST = "UNIT_LOCATION updates are limited to every 200ms."
UPDATE_NEEDS_TARGET = "Each unit update requires identId, apiId, communityUserId, or roblox, and location."
UNIT_TARGETS = ("communityUserId", "roblox", "apiId", "identId")
MAX_UNIT_UPDATES = 25

# SignalR message types (spec-hub); 2, 5, 8 and 9 are accepted and ignored.
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION, PING, CLOSE, ACK, SEQUENCE = range(
    1, 10
)


@dataclass
class HubCounters:
    """What the hub has seen and done since it was built. Plain integers, for tests to read."""

    negotiations: int = 0
    upgrades: int = 0  # websockets accepted
    upgrades_refused: int = 0  # 404 unknown id, 409 duplicate
    handshakes: int = 0
    auth_attempts: int = 0
    auth_failures: int = 0
    frames_in: int = 0
    frames_out: int = 0
    messages_in: int = 0
    pings_sent: int = 0
    client_timeouts: int = 0
    pushes: int = 0  # push() calls
    push_messages: int = 0  # pushEvent messages written (fan-out writes several per push)
    fallback_posts: int = 0
    pushes_dropped: int = 0  # no session and no fallback


@dataclass(frozen=True)
class AuthCall:
    """One authentication call, without its key."""

    method: str
    community_id: str
    server_id: int | None
    arity: int
    success: bool
    error: str


@dataclass
class HubCommunity:
    community_id: str
    api_key: str = field(repr=False)
    server_ids: set[int] = field(default_factory=lambda: {1})

    def key_matches(self, key: object) -> bool:
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self.api_key.encode())


@dataclass(eq=False)
class HubConnection:
    """One websocket connection as the hub sees it. Its repr holds no key and no connection token."""

    connection_id: str
    negotiate_version: int | None  # None: the client skipped negotiation
    community_id: str | None = None
    server_id: int | None = None
    authenticated: bool = False
    handshake_done: bool = False
    stalled: bool = False
    closed: bool = False
    close_code: int | None = None
    closed_by: Literal["client", "server", "timeout", "killed", "lost"] | None = None
    frames_in: int = 0
    frames_out: int = 0
    pings_received: int = 0
    auth_calls: list[AuthCall] = field(default_factory=list)
    client_completions: dict[str, dict[str, Any]] = field(default_factory=dict)
    unit_updates: list[dict[str, Any]] = field(default_factory=list)
    _ws: web.WebSocketResponse | None = field(default=None, repr=False)
    _transport: asyncio.Transport | None = field(default=None, repr=False)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _last_sent: float = field(default=0.0, repr=False)
    _last_received: float = field(default=0.0, repr=False)
    _last_unit_location: float | None = field(default=None, repr=False)
    _keep_alive: asyncio.Task[None] | None = field(default=None, repr=False)
    _id_key: str | None = field(default=None, repr=False)  # the negotiated id it used (secret for v1)
    _ending: bool = field(default=False, repr=False)  # the websocket is over; bookkeeping still running


@dataclass
class PushOutcome:
    """Where one injected event went."""

    delivered_to: list[str] = field(default_factory=list)  # connection ids it was written to
    fallback_status: int | None = None
    fallback_error: str | None = None
    swallowed_by: list[str] = field(default_factory=list)  # stalled connections it was "sent" to

    @property
    def dropped(self) -> bool:
        return not self.delivered_to and not self.swallowed_by and self.fallback_status is None


@dataclass
class _Negotiated:
    connection_id: str
    version: int
    created: float


class _ProtocolError(Exception):
    """The client broke the hub protocol; the connection is closed with this text as the Close error."""


def _encode(message: Mapping[str, Any]) -> str:
    # ensure_ascii: a lone surrogate leaves as a "\\ud83d" escape, as ASP.NET's encoder writes broken text.
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")) + RS


def _failure(error: str) -> dict[str, Any]:
    return {"success": False, "error": error, "count": 0}


def _server_id_of(value: Any) -> tuple[bool, int | None]:
    """(valid, server id) for an ``authenticatev2`` serverId argument: a number, a digit string, or null."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return False, None
    if isinstance(value, int):
        return True, value
    if isinstance(value, float) and value.is_integer():
        return True, int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return True, int(value.strip())
    return False, None


class FakeSignalRHub:
    """The loopback hub. ``async with FakeSignalRHub() as hub:`` serves ``hub.hub_url`` on a free port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/apiWsHub",
        keepalive_s: float = 15.0,
        client_timeout_s: float = 30.0,
        policy: Policy = "last-wins",
        fallback_url: str | None = None,
        push_as_string: bool = False,
        unit_location_interval_s: float = 0.2,
        negotiation_ttl_s: float = 60.0,
        max_message_bytes: int = 1024 * 1024,
        max_negotiate_version: int = 1,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        self.host = host
        self.port = port
        self.path = "/" + path.strip("/")
        self.keepalive_s = keepalive_s
        self.client_timeout_s = client_timeout_s
        self.policy: Policy = policy
        self.fallback_url = fallback_url
        self.push_as_string = push_as_string
        self.unit_location_interval_s = unit_location_interval_s
        self.negotiation_ttl_s = negotiation_ttl_s
        self.max_message_bytes = max_message_bytes
        self.max_negotiate_version = max_negotiate_version  # 0 plays a server that predates version 1
        self.negotiate_error: str | None = None  # set: every negotiation answers {"error": ...}
        self.communities: dict[str, HubCommunity] = {}
        self.counters = HubCounters()
        self.connections: list[HubConnection] = []
        self._negotiated: dict[str, _Negotiated] = {}
        self._active_ids: dict[str, HubConnection] = {}
        self._registry: dict[tuple[str, int], list[HubConnection]] = {}
        self._round_robin: dict[tuple[str, int], int] = {}
        self._refusals: int | None = 0  # None: refuse every authentication
        self._refusal_form: RefusalForm = "result"
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------------------------------------- setup

    def add_community(
        self, community_id: str, api_key: str, server_ids: Iterable[int] = (1,)
    ) -> HubCommunity:
        community = HubCommunity(community_id, api_key, set(server_ids))
        self.communities[community_id] = community
        return community

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the hub is not running; call start() first")
        return self._base_url

    @property
    def hub_url(self) -> str:
        """What a client is configured with: ``http://127.0.0.1:PORT/apiWsHub``."""
        return self.base_url + self.path

    async def start(self) -> str:
        """Start serving and return the hub URL."""
        if self._runner is not None:
            return self.hub_url
        app = web.Application()
        app.router.add_post(self.path + "/negotiate", self._negotiate)
        app.router.add_get(self.path, self._upgrade)
        app.router.add_post("/_fake/push", self._control_push)
        app.router.add_get("/_fake/state", self._control_state)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self._base_url = f"http://{self.host}:{runner.addresses[0][1]}"
        log.debug("fake SignalR hub listening on %s", self.hub_url)
        return self.hub_url

    async def stop(self) -> None:
        """Close every live connection cleanly (``{"type":7}`` then a close frame) and stop serving."""
        if self._runner is None:
            return
        for connection in self.live:
            await self.close_connection(connection, "clean")
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._base_url = None

    async def __aenter__(self) -> FakeSignalRHub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------------- inspection

    @property
    def live(self) -> list[HubConnection]:
        return [c for c in self.connections if not c.closed]

    def sessions_for(self, community_id: str, server_id: int) -> list[HubConnection]:
        """The authenticated, open connections for a community + serverId, oldest authentication first."""
        return list(self._registry.get((community_id, server_id), ()))

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever the hub's state changes); at most ``within_s``."""
        async with asyncio.timeout(within_s):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ----------------------------------------------------------------------------------------- switches

    def refuse_auth(self, count: int | None = None, *, form: RefusalForm = "result") -> None:
        """Refuse the next ``count`` authentications (all of them when ``None``) even with the right key.

        ``form="result"`` answers ``{"success": false, ...}``; ``form="error"`` answers a Completion error.
        """
        self._refusals = count
        self._refusal_form = form

    def accept_auth(self) -> None:
        self._refusals = 0

    def refuse_negotiation(self, error: str | None = "This connection is not allowed.") -> None:
        self.negotiate_error = error

    def stall(self, connection: HubConnection) -> None:
        """The connection goes silent: no pings, no replies, no events, no timeout close. It still reads."""
        connection.stalled = True
        self._notify()

    async def close_connection(
        self, connection: HubConnection, mode: CloseMode = "clean", *, error: str = "Server restarting."
    ) -> None:
        """End one connection: ``clean`` sends ``{"type":7}``, ``reconnect`` sends ``{"type":7, "error": error,
        "allowReconnect": true}`` (both then close the websocket), ``kill`` aborts the TCP connection."""
        if connection._ending or connection._ws is None:
            return
        if mode == "kill":
            connection.closed_by = "killed"
            if connection._transport is not None:
                connection._transport.abort()
            return
        message: dict[str, Any] = {"type": CLOSE}
        if mode == "reconnect":
            message.update(error=error, allowReconnect=True)
        await self._shut(connection, message, by="server")

    async def send_raw(self, connection: HubConnection, text: str) -> None:
        """Write ``text`` as one text frame exactly as given (no separator added): for malformed-input tests."""
        await self._write(connection, text)

    # -------------------------------------------------------------------------------------------- push

    async def push(
        self,
        community_id: str,
        server_id: int,
        envelope: Mapping[str, Any],
        *,
        as_string: bool | None = None,
        invocation_id: str | None = None,
    ) -> PushOutcome:
        """Route one event as the CAD would (websocket.md section 9) and say where it went.

        ``as_string`` sends the envelope as a JSON string argument (default: ``push_as_string``);
        ``invocation_id`` makes it an invocation that expects the client's Completion.
        """
        self.counters.pushes += 1
        outcome = PushOutcome()
        targets = self._route(community_id, server_id)
        if not targets:
            if self.fallback_url is None:
                self.counters.pushes_dropped += 1
            else:
                await self._post_fallback(envelope, outcome)
            self._notify()
            return outcome
        stringify = self.push_as_string if as_string is None else as_string
        argument: Any = json.dumps(envelope, ensure_ascii=True) if stringify else dict(envelope)
        message: dict[str, Any] = {"type": INVOCATION, "target": "pushEvent", "arguments": [argument]}
        if invocation_id is not None:
            message["invocationId"] = invocation_id
        for connection in targets:
            if connection.stalled:
                outcome.swallowed_by.append(connection.connection_id)
                continue
            if await self._send(connection, message):
                self.counters.push_messages += 1
                outcome.delivered_to.append(connection.connection_id)
        self._notify()
        return outcome

    def _route(self, community_id: str, server_id: int) -> list[HubConnection]:
        key = (community_id, server_id)
        sessions = self._registry.get(key, [])
        if not sessions:
            return []
        if self.policy == "fan-out":
            return list(sessions)
        if self.policy == "first-wins":
            return [sessions[0]]
        if self.policy == "round-robin":
            index = self._round_robin.get(key, 0) % len(sessions)
            self._round_robin[key] = index + 1
            return [sessions[index]]
        return [sessions[-1]]

    async def _post_fallback(self, envelope: Mapping[str, Any], outcome: PushOutcome) -> None:
        assert self.fallback_url is not None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0))
        self.counters.fallback_posts += 1
        try:
            async with self._http.post(self.fallback_url, json=dict(envelope)) as response:
                await response.read()
                outcome.fallback_status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome.fallback_error = type(exc).__name__

    # ------------------------------------------------------------------------------------ negotiation

    async def _negotiate(self, request: web.Request) -> web.Response:
        await request.read()
        self.counters.negotiations += 1
        if self.negotiate_error is not None:
            return web.json_response({"error": self.negotiate_error})
        loop = asyncio.get_running_loop()
        self._negotiated = {
            k: v for k, v in self._negotiated.items() if loop.time() - v.created < self.negotiation_ttl_s
        }
        try:
            asked = int(request.query.get("negotiateVersion", "0"))
        except ValueError:
            asked = 0
        version = 1 if asked >= 1 and self.max_negotiate_version >= 1 else 0
        connection_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "connectionId": connection_id,
            "negotiateVersion": version,
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
        if version == 1:
            token = str(uuid.uuid4())
            body["connectionToken"] = token
            self._negotiated[token] = _Negotiated(connection_id, version, loop.time())
        else:
            self._negotiated[connection_id] = _Negotiated(connection_id, version, loop.time())
        self._notify()
        return web.json_response(body)

    # ---------------------------------------------------------------------------------------- upgrade

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        id_param = request.query.get("id")
        ws = web.WebSocketResponse(
            autoping=True, timeout=2.0, max_msg_size=self.max_message_bytes, compress=False
        )
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="This hub accepts WebSockets only.")
        if id_param is not None:
            if id_param in self._active_ids:
                self.counters.upgrades_refused += 1
                return web.Response(status=409, text="Duplicate WebSockets connection.")
            negotiated = self._negotiated.pop(id_param, None)
            if negotiated is None:
                self.counters.upgrades_refused += 1
                return web.Response(status=404, text="No Connection with that ID")
            connection = HubConnection(negotiated.connection_id, negotiated.version, _id_key=id_param)
            self._active_ids[id_param] = connection
        else:
            connection = HubConnection(str(uuid.uuid4()), None)
        connection._ws = ws
        connection._transport = request.transport
        loop = asyncio.get_running_loop()
        connection._last_sent = connection._last_received = loop.time()
        await ws.prepare(request)
        self.counters.upgrades += 1
        self.connections.append(connection)
        self._notify()
        try:
            await self._serve(connection, ws)
        finally:
            await self._forget(connection, ws)
        return ws

    async def _forget(self, connection: HubConnection, ws: web.WebSocketResponse) -> None:
        connection._ending = True
        self._notify()  # wakes the keep-alive loop, which then ends by itself
        task = connection._keep_alive
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not ws.closed:
            await ws.close()
        if connection.close_code is None:
            connection.close_code = ws.close_code
        if connection.closed_by is None:
            connection.closed_by = "lost"
        self._deregister(connection)
        connection.authenticated = False
        if connection._id_key is not None:
            self._active_ids.pop(connection._id_key, None)
        connection.closed = True  # last, so a test that waits for it sees the hub's bookkeeping done
        self._notify()

    # ---------------------------------------------------------------------------------------- receive

    async def _serve(self, connection: HubConnection, ws: web.WebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        connection._keep_alive = asyncio.create_task(self._keep_alive_loop(connection))
        buffer = ""
        while True:
            msg = await ws.receive()
            if self._ended(connection, msg):
                return
            connection.frames_in += 1
            self.counters.frames_in += 1
            connection._last_received = loop.time()
            if msg.type is aiohttp.WSMsgType.BINARY:
                await self._shut(
                    connection, {"type": CLOSE, "error": "Binary frames are not used by the JSON protocol."}
                )
                return
            buffer += cast(str, msg.data)
            *records, buffer = buffer.split(RS)
            if not await self._take_records(connection, ws, records, buffer):
                return
            self._notify()
            if ws.closed:
                return

    @staticmethod
    def _ended(connection: HubConnection, msg: aiohttp.WSMessage) -> bool:
        """Whether ``msg`` ends the connection (a close frame from the client, or the socket gone)."""
        if msg.type is aiohttp.WSMsgType.CLOSE:
            if connection.closed_by is None:
                connection.closed_by = "client"
            connection.close_code = int(msg.data)
            return True
        return msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

    async def _take_records(
        self, connection: HubConnection, ws: web.WebSocketResponse, records: list[str], rest: str
    ) -> bool:
        """Handle the complete records of a frame; False when a protocol error closed the connection."""
        try:
            if len(rest) > self.max_message_bytes:
                raise _ProtocolError("The maximum message size was exceeded.")
            for record in records:
                if record and not ws.closed:
                    await self._handle_record(connection, record)
        except _ProtocolError as exc:
            if connection.handshake_done:
                error = f"Connection closed with an error. {exc}"
                await self._shut(connection, {"type": CLOSE, "error": error})
            else:  # nothing but a handshake response may precede the handshake response
                await self._write(connection, json.dumps({"error": str(exc)}) + RS)
                await self._shut(connection, None)
            return False
        return True

    async def _handle_record(self, connection: HubConnection, record: str) -> None:
        try:
            message = json.loads(record)
        except ValueError:
            raise _ProtocolError("InvalidDataException: Error reading JSON.") from None
        if not connection.handshake_done:
            await self._handshake(connection, message)
            return
        self.counters.messages_in += 1
        if not isinstance(message, dict) or not isinstance(message.get("type"), int):
            raise _ProtocolError("InvalidDataException: Missing required property 'type'.")
        if not connection.stalled:
            await self._dispatch(connection, message)

    async def _dispatch(self, connection: HubConnection, message: dict[str, Any]) -> None:
        kind = message["type"]
        invocation_id = message.get("invocationId")
        if kind == INVOCATION:
            await self._invocation(connection, message)
        elif kind == COMPLETION and isinstance(invocation_id, str):
            connection.client_completions[invocation_id] = message
        elif kind == STREAM_INVOCATION and isinstance(invocation_id, str):
            await self._complete(connection, invocation_id, error="Streaming is not supported by this hub.")
        elif kind == PING:
            connection.pings_received += 1
        elif kind == CLOSE:
            await self._shut(connection, None, by="client")
        # STREAM_ITEM, CANCEL_INVOCATION, ACK, SEQUENCE and unknown types are ignored.

    async def _handshake(self, connection: HubConnection, message: Any) -> None:
        if not isinstance(message, dict) or "protocol" not in message:
            raise _ProtocolError("InvalidDataException: The first message must be a handshake request.")
        protocol, version = message.get("protocol"), message.get("version")
        if protocol != "json" or version != 1 or isinstance(version, bool):
            raise _ProtocolError(f"Requested protocol '{protocol}' is not available.")
        connection.handshake_done = True
        self.counters.handshakes += 1
        await self._write(connection, "{}" + RS)

    # -------------------------------------------------------------------------------------- hub methods

    async def _invocation(self, connection: HubConnection, message: dict[str, Any]) -> None:
        target = message.get("target")
        invocation_id = message.get("invocationId")
        if invocation_id is not None and not isinstance(invocation_id, str):
            raise _ProtocolError("InvalidDataException: Expected 'invocationId' to be of type String.")
        if not isinstance(target, str):
            raise _ProtocolError("InvalidDataException: Missing required property 'target'.")
        arguments = message.get("arguments", [])
        if not isinstance(arguments, list):
            raise _ProtocolError("InvalidDataException: Expected 'arguments' to be of type Array.")
        handler = self._methods().get(target.casefold())
        if handler is None:
            if invocation_id is not None:
                await self._complete(connection, invocation_id, error=f"Unknown hub method '{target}'")
            return
        result, error = await handler(connection, target, arguments)
        if invocation_id is not None:
            await self._complete(connection, invocation_id, result=result, error=error)

    def _methods(
        self,
    ) -> dict[str, Callable[[HubConnection, str, list[Any]], Awaitable[tuple[Any, str | None]]]]:
        return {
            "authenticatev2": self._authenticate,
            "authenticate": self._authenticate,
            "unitlocation": self._unit_location,
        }

    async def _authenticate(
        self, connection: HubConnection, target: str, arguments: list[Any]
    ) -> tuple[Any, str | None]:
        self.counters.auth_attempts += 1
        arity = len(arguments)
        if arity not in (2, 3):
            self.counters.auth_failures += 1
            self._deauthenticate(connection)
            return None, _arity_error(target, arity, 3)
        community_id, key = arguments[0], arguments[1]
        valid_server, server_id = _server_id_of(arguments[2] if arity == 3 else None)
        community_text = str(community_id) if isinstance(community_id, str | int) else ""
        result: dict[str, Any] | None
        error: str | None = None
        community = self.communities.get(community_text)
        if self._refusals is None or self._refusals > 0:
            if self._refusals is not None:
                self._refusals -= 1
            if self._refusal_form == "error":
                result, error = None, "Failed to invoke 'authenticatev2' due to an error on the server."
            else:
                result = _failure(INVALID_CREDENTIALS)
        elif community is None or not community.key_matches(key):
            result = _failure(INVALID_CREDENTIALS)
        elif not valid_server or (server_id is not None and server_id not in community.server_ids):
            shown = server_id if valid_server else arguments[2]
            result = _failure(f"Server {shown} is not configured for this community.")
        else:
            result = {"success": True, "error": "", "count": 1}
        success = result is not None and result.get("success") is True
        connection.auth_calls.append(
            AuthCall(
                target, community_text, server_id, arity, success, error or (result or {}).get("error", "")
            )
        )
        if success:
            self._register(connection, community_text, server_id)
        else:
            self.counters.auth_failures += 1
            self._deauthenticate(connection)
        return result, error

    async def _unit_location(
        self, connection: HubConnection, target: str, arguments: list[Any]
    ) -> tuple[Any, str | None]:
        if len(arguments) != 1:
            return None, _arity_error(target, len(arguments), 1)
        updates = arguments[0]
        if not connection.authenticated:
            return _failure(UNAUTHENTICATED), None
        if not isinstance(updates, list) or not updates:
            return _failure(MISSING_UPDATES), None
        if len(updates) > MAX_UNIT_UPDATES:
            return _failure(TOO_MANY_UPDATES), None
        now = asyncio.get_running_loop().time()
        last = connection._last_unit_location
        if last is not None and now - last < self.unit_location_interval_s:
            return _failure(UPDATES_TOO_FAST), None
        for update in updates:
            if not isinstance(update, dict) or not isinstance(update.get("location"), str):
                return _failure(UPDATE_NEEDS_TARGET), None
            if sum(1 for name in UNIT_TARGETS if update.get(name) is not None) != 1:
                return _failure(UPDATE_NEEDS_TARGET), None
        connection._last_unit_location = now
        connection.unit_updates.extend(updates)
        return {"success": True, "error": "", "count": len(updates)}, None

    def _register(self, connection: HubConnection, community_id: str, server_id: int | None) -> None:
        self._deregister(connection)
        connection.authenticated = True
        connection.community_id = community_id
        connection.server_id = server_id
        if server_id is not None:  # a session without a serverId is never a push destination
            self._registry.setdefault((community_id, server_id), []).append(connection)

    def _deauthenticate(self, connection: HubConnection) -> None:
        # The last call wins: a failed re-authentication leaves the connection unauthenticated.
        self._deregister(connection)
        connection.authenticated = False

    def _deregister(self, connection: HubConnection) -> None:
        if connection.community_id is None or connection.server_id is None:
            return
        key = (connection.community_id, connection.server_id)
        sessions = self._registry.get(key, [])
        if connection in sessions:
            sessions.remove(connection)
        if not sessions:
            self._registry.pop(key, None)

    # ----------------------------------------------------------------------------------------- sending

    async def _complete(
        self, connection: HubConnection, invocation_id: str, *, result: Any = None, error: str | None = None
    ) -> None:
        message: dict[str, Any] = {"type": COMPLETION, "invocationId": invocation_id}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result
        await self._send(connection, message)

    async def _send(self, connection: HubConnection, message: Mapping[str, Any]) -> bool:
        if connection.stalled:
            return False
        return await self._write(connection, _encode(message))

    async def _write(self, connection: HubConnection, text: str) -> bool:
        ws = connection._ws
        if ws is None or ws.closed or connection._ending:
            return False
        async with connection._send_lock:
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                return False
        connection._last_sent = asyncio.get_running_loop().time()
        connection.frames_out += 1
        self.counters.frames_out += 1
        return True

    async def _shut(
        self,
        connection: HubConnection,
        message: Mapping[str, Any] | None,
        *,
        by: Literal["client", "server", "timeout"] = "server",
    ) -> None:
        """Send the Close message (if any), then close the websocket with 1000."""
        if connection.closed_by is None:
            connection.closed_by = by
        if message is not None:
            await self._write(connection, _encode(message))
        ws = connection._ws
        if ws is not None and not ws.closed:
            await ws.close(code=aiohttp.WSCloseCode.OK)
        if connection.close_code is None:
            connection.close_code = aiohttp.WSCloseCode.OK
        self._notify()

    async def _keep_alive_loop(self, connection: HubConnection) -> None:
        loop = asyncio.get_running_loop()
        while not connection._ending:
            if connection.stalled:
                await self._changed.wait()
                continue
            now = loop.time()
            timeout_at = connection._last_received + self.client_timeout_s
            ping_at = connection._last_sent + self.keepalive_s
            if now >= timeout_at:
                self.counters.client_timeouts += 1
                await self._shut(connection, {"type": CLOSE, "error": "Client timeout."}, by="timeout")
                return
            if now >= ping_at and connection.handshake_done:
                if await self._send(connection, {"type": PING}):
                    self.counters.pings_sent += 1
                continue
            wake = timeout_at if not connection.handshake_done else min(timeout_at, ping_at)
            with contextlib.suppress(TimeoutError):
                # Woken early by any state change (a stall, a sent message) so the next deadline is recomputed.
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, wake - now))

    # --------------------------------------------------------------------------------- dev control API

    async def _control_push(self, request: web.Request) -> web.Response:
        try:
            envelope = await request.json()
            server_id = int(request.query.get("serverId", "1"))
        except ValueError:
            return web.json_response({"error": "send a JSON envelope and a numeric serverId"}, status=400)
        if not isinstance(envelope, dict):
            return web.json_response({"error": "the envelope must be a JSON object"}, status=400)
        as_string = request.query.get("asString", "").lower() in {"1", "true", "yes"}
        outcome = await self.push(
            request.query.get("communityId", "dev"), server_id, envelope, as_string=as_string or None
        )
        return web.json_response(asdict(outcome) | {"dropped": outcome.dropped})

    async def _control_state(self, request: web.Request) -> web.Response:
        live = [
            {
                "connectionId": c.connection_id,
                "communityId": c.community_id,
                "serverId": c.server_id,
                "authenticated": c.authenticated,
                "stalled": c.stalled,
            }
            for c in self.live
        ]
        return web.json_response({"counters": asdict(self.counters), "policy": self.policy, "live": live})


def _arity_error(target: str, given: int, expected: int) -> str:
    return (
        f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: "
        f"Invocation provides {given} argument(s) but target expects {expected}."
    )


# ----------------------------------------------------------------------------------------------- dev server


async def _serve(args: argparse.Namespace) -> None:
    hub = FakeSignalRHub(
        host=args.host,
        port=args.port,
        keepalive_s=args.keepalive,
        client_timeout_s=args.client_timeout,
        policy=args.policy,
        fallback_url=args.fallback_url,
    )
    hub.add_community(args.community_id, os.environ.get("CAD_SIM_API_KEY", "dev-key"), args.server_id or [1])
    url = await hub.start()
    log.info("fake SignalR hub serving %s (community %r, key from $CAD_SIM_API_KEY)", url, args.community_id)
    log.info("inject an event: POST %s/_fake/push?communityId=%s&serverId=1", hub.base_url, args.community_id)
    try:
        await asyncio.Event().wait()
    finally:
        await hub.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m testing.signalr_hub", description="A loopback Sonoran CAD API websocket hub."
    )
    parser.add_argument("port", nargs="?", type=int, default=8788)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--community-id", default="dev")
    parser.add_argument("--server-id", type=int, action="append", help="a configured serverId (repeatable)")
    parser.add_argument("--policy", choices=POLICIES, default="last-wins")
    parser.add_argument("--fallback-url", help="POST events here when no session is authenticated")
    parser.add_argument("--keepalive", type=float, default=15.0, help="seconds idle before a ping")
    parser.add_argument(
        "--client-timeout", type=float, default=30.0, help="seconds of silence before closing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    log.info("fake SignalR hub stopped")


if __name__ == "__main__":
    main()
