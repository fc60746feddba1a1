"""The push-event listener: an aiohttp app factory and the server that runs it.

Routes: ``POST /sonorancad/event`` (and ``/event``, as FiveM accepts), optional ``?server_id=N``;
``GET /healthz``; ``GET /metrics``. Checks run as middlewares, in the order the contract promises:
size (413), JSON object (400), throttle (429), key (401); the handler then checks ``type`` (400) and stores
the event (200, or 503 if the database failed so the CAD retries). No input can produce a 500, and a 503 always
means "the bot could not take it, send it again": input that can never succeed gets its 4xx.

Slow and hostile clients: :class:`PushServer` serves the app through a :class:`ConnectionGuard` (a cap on open
connections, a deadline for request heads), aiohttp's keep-alive timeout closes idle connections, and a body
that does not arrive within ``body_timeout_s`` gets 408. Behind a reverse proxy the client's address comes from
``X-Forwarded-For`` only when the proxy is listed in ``trusted_proxies`` (see :mod:`bot.push.forwarded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from bot.config import ServerSettings
from bot.push.connections import ConnectionGuard, GuardEvents
from bot.push.forwarded import IPNetwork, client_address
from bot.push.ingest import Answer, PushIngest, rejected, storage_unavailable
from bot.push.metrics import NO_TYPE_LABEL, PushMetrics
from bot.storage.models import GuildConfig

log = logging.getLogger(__name__)

EVENT_PATHS = ("/sonorancad/event", "/event")
DEFAULT_MAX_BODY_BYTES = 1_048_576
# Real events nest a handful of levels (envelope, data, call, units, ...). Deeper bodies are refused outright
# instead of finding, somewhere later, the depth at which the JSON encoder or a parser gives up.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class HealthReport:
    database_ok: bool
    discord_connected: bool
    outbox_depth: int | None
    oldest_pending_age_s: float | None
    inbox_depth: int | None
    healthy: bool
    # Writes fail (disk full, read-only file) although the database still answers reads.
    writes_failing: bool = False
    # The most recent failed write, even if writes succeed again since: SQLite's message and its age.
    last_write_error: str | None = None
    last_write_failure_age_s: float | None = None
    # Websocket sessions guilds rely on that are down now: "community 4711, server 1".
    websocket_down: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        if not self.database_ok:
            database = "unavailable"
        elif self.writes_failing:
            database = "writes_failing"
        else:
            database = "ok"
        last_failure = (
            None
            if self.last_write_error is None
            else {
                "error": self.last_write_error,
                "age_s": None
                if self.last_write_failure_age_s is None
                else round(self.last_write_failure_age_s, 3),
                "ongoing": self.writes_failing,
            }
        )
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "database": database,
            "discord": "connected" if self.discord_connected else "disconnected",
            "outbox_depth": self.outbox_depth,
            "oldest_pending_age_s": None
            if self.oldest_pending_age_s is None
            else round(self.oldest_pending_age_s, 3),
            "inbox_depth": self.inbox_depth,
            "last_write_failure": last_failure,
            "websocket_sessions_down": list(self.websocket_down),
        }


HealthCheck = Callable[[], Awaitable[HealthReport]]


_DEFAULTS = ServerSettings()


@dataclass(frozen=True)
class ListenerLimits:
    """The ``[server]`` settings the listener enforces (see :class:`bot.config.ServerSettings`)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    header_timeout_s: float = _DEFAULTS.header_timeout_s
    body_timeout_s: float = _DEFAULTS.body_timeout_s
    keepalive_timeout_s: float = _DEFAULTS.keepalive_timeout_s
    max_connections: int = _DEFAULTS.max_connections
    trusted_proxies: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ListenerLimits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            keepalive_timeout_s=settings.keepalive_timeout_s,
            max_connections=settings.max_connections,
            trusted_proxies=tuple(settings.trusted_proxies),
        )


@dataclass
class _ListenerNotes:
    """Things worth telling the self-hoster once per listener, not once per request."""

    untrusted_forwarding_logged: bool = False


INGEST_KEY = web.AppKey("push_ingest", PushIngest)
HEALTH_KEY: web.AppKey[HealthCheck] = web.AppKey("push_health")
METRICS_KEY = web.AppKey("push_metrics", PushMetrics)
LIMITS_KEY = web.AppKey("push_limits", ListenerLimits)
GUARD_KEY = web.AppKey("push_connection_guard", ConnectionGuard)
NOTES_KEY = web.AppKey("push_listener_notes", _ListenerNotes)
ENVELOPE_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("push_envelope")
GUILDS_KEY: web.RequestKey[tuple[GuildConfig, ...]] = web.RequestKey("push_guilds")


def _json_answer(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=dict(answer.headers))


def _is_event_request(request: web.Request) -> bool:
    return request.path in EVENT_PATHS and request.method == "POST"


def _address(request: web.Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (never a client's own claim)."""
    trusted = request.app[LIMITS_KEY].trusted_proxies
    forwarded = request.headers.getall("X-Forwarded-For", [])
    if forwarded and not trusted:
        _note_untrusted_forwarding(request.app[NOTES_KEY], request.remote)
    return client_address(request.remote, forwarded, trusted)


def _note_untrusted_forwarding(notes: _ListenerNotes, peer: str | None) -> None:
    if notes.untrusted_forwarding_logged:
        return
    notes.untrusted_forwarding_logged = True
    log.info(
        "push events from %s carry X-Forwarded-For, but [server] trusted_proxies is empty, so the header is "
        "ignored: if a reverse proxy runs in front of the bot, list its address in trusted_proxies, or every "
        "sender shares the proxy's address (and its throttle)",
        peer,
    )


@web.middleware
async def connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection guard a request head is complete (its deadline stops) and when it is answered."""
    guard = request.app[GUARD_KEY]
    transport = request.transport
    guard.request_started(transport)
    try:
        return await handler(request)
    finally:
        guard.request_finished(transport)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The last line of defence: a bug answers 503 (retry later, nothing was acknowledged), never a 500."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("push listener failed on %s %s", request.method, request.path)
        return _json_answer(
            storage_unavailable() if _is_event_request(request) else rejected(503, "error", "internal error")
        )


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """413 for a body over the limit, 408 for one too slow to arrive; 400 for an empty body, a body that cannot
    be decoded, invalid JSON, or JSON that is not an object."""
    if not _is_event_request(request):
        return await handler(request)
    metrics = request.app[METRICS_KEY]
    limits = request.app[LIMITS_KEY]
    limit = limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        metrics.received(NO_TYPE_LABEL, "too_large")
        return _closing(rejected(413, "too_large", f"the body is larger than {limit} bytes"))
    try:
        raw = await _read_body(request, limit, limits.body_timeout_s)
    except _TooLargeError:
        metrics.received(NO_TYPE_LABEL, "too_large")
        return _closing(rejected(413, "too_large", f"the body is larger than {limit} bytes"))
    except TimeoutError:
        metrics.received(NO_TYPE_LABEL, "timeout")
        metrics.slow_requests.labels(part="body").inc()
        log.debug("push event body from %s did not arrive within %g s", request.remote, limits.body_timeout_s)
        return await _answer_and_hang_up(
            request, rejected(408, "timeout", f"the body did not arrive within {limits.body_timeout_s:g} s")
        )
    except web.RequestPayloadError as exc:
        # aiohttp decodes Content-Encoding (gzip, deflate) while the body is read; a body that is not what
        # its header says fails here, and sending it again cannot help.
        metrics.received(NO_TYPE_LABEL, "bad_request")
        encoding = request.headers.get("Content-Encoding", "none")
        log.debug("push event body from %s could not be decoded (%s): %s", request.remote, encoding, exc)
        return _closing(
            rejected(400, "bad_request", f"the body could not be decoded (Content-Encoding: {encoding[:40]})")
        )
    except ConnectionError:
        # The client hung up mid-body: nobody is left to answer, and nothing was acknowledged.
        metrics.received(NO_TYPE_LABEL, "client_gone")
        log.debug("push event sender %s hung up before its body was complete", request.remote)
        return _closing(rejected(400, "bad_request", "the connection closed before the body was complete"))
    problem = _envelope_problem(raw)
    if isinstance(problem, str):
        metrics.received(NO_TYPE_LABEL, "bad_request")
        return _json_answer(rejected(400, "bad_request", problem))
    request[ENVELOPE_KEY] = problem
    return await handler(request)


def _closing(answer: Answer) -> web.Response:
    """An answer after which the connection is closed (the rest of the body may still be on its way)."""
    response = _json_answer(answer)
    response.force_close()
    return response


async def _answer_and_hang_up(request: web.Request, answer: Answer) -> web.StreamResponse:
    """Send the answer and close the connection at once, without aiohttp's usual lingering read of the rest
    of the body: a client that was too slow to send it gets no more time to trickle it in."""
    response = _closing(answer)
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # after the answer is flushed
    return response


class _TooLargeError(Exception):
    pass


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The body, within ``limit`` bytes and ``timeout_s`` seconds.

    A push event is small and usually arrives in the same packet as its headers, complete before the handler
    runs: then there is nothing to wait for, and no timer is set up (one per event is measurable at 1,000 events/s).
    """
    if request.content.is_eof():
        return await _read_limited(request, limit)
    async with asyncio.timeout(timeout_s):
        return await _read_limited(request, limit)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """Read the body without ever holding more than ``limit`` + one chunk (chunked bodies have no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)


class _NotJsonError(ValueError):
    pass


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJsonError(name)


# One decoder for every body: ``json.loads`` with any option builds a new decoder (and its scanner) per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _envelope_problem(raw: bytes) -> dict[str, Any] | str:
    """The body as a JSON object, or the sentence telling the sender what is wrong with it."""
    if not raw.strip():
        return "the body is empty"
    try:
        # As json.loads reads bytes: UTF-8, -16 or -32, detected from the first bytes.
        envelope = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except RecursionError:
        return f"the body is nested more than {MAX_JSON_DEPTH} levels deep"
    except _NotJsonError as exc:
        return f"the body is not valid JSON ({exc} is not a JSON number)"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the body is not valid JSON"
    except ValueError:
        # Python refuses to convert integers longer than sys.get_int_max_str_digits() (4,300 digits).
        return f"the body holds a number with more than {sys.get_int_max_str_digits()} digits"
    if not isinstance(envelope, dict):
        return "the body must be a JSON object"
    # Counting brackets is a C-speed upper bound on the depth; only a body that could be too deep is walked.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _nested_deeper_than(envelope, MAX_JSON_DEPTH):
        return f"the body is nested more than {MAX_JSON_DEPTH} levels deep"
    return envelope


def _nested_deeper_than(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 while the address is throttled; 401 unless ``key`` matches a configured community."""
    if not _is_event_request(request):
        return await handler(request)
    ingest = request.app[INGEST_KEY]
    address = _address(request)
    key = request[ENVELOPE_KEY].get("key")
    throttled = await ingest.check_throttle(address, key)
    if throttled is not None:
        return _json_answer(throttled)
    result = await ingest.authenticate(key, address)
    if isinstance(result, Answer):
        return _json_answer(result)
    request[GUILDS_KEY] = tuple(result)
    return await handler(request)


async def receive_event(request: web.Request) -> web.Response:
    ingest = request.app[INGEST_KEY]
    server_id: int | None = None
    raw_server_id = request.query.get("server_id")
    if raw_server_id is not None:
        try:
            server_id = int(raw_server_id)
        except ValueError:
            return _json_answer(rejected(400, "bad_request", "`server_id` must be a whole number"))
    envelope = request[ENVELOPE_KEY]
    guilds = request[GUILDS_KEY]
    answer = await ingest.accept(envelope, guilds, server_id)
    return _json_answer(answer)


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_KEY]()
    return web.json_response(report.as_json(), status=200 if report.healthy else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    # Refreshes the gauges (depth, age) through the health check, so a scrape shows the current queue.
    await request.app[HEALTH_KEY]()
    metrics = request.app[METRICS_KEY]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


def create_push_app(
    ingest: PushIngest,
    health: HealthCheck,
    metrics: PushMetrics,
    *,
    limits: ListenerLimits | None = None,
) -> web.Application:
    """The listener's aiohttp application (state under ``web.AppKey``, checks in middlewares).

    Serve it with :class:`PushServer`: the connection limits (``app[GUARD_KEY]``) apply only there.
    """
    limits = limits or ListenerLimits()
    app = web.Application(
        middlewares=[connection_middleware, errors_middleware, body_middleware, auth_middleware],
        # Our middleware enforces the limit with a clear 413 before aiohttp's own check would.
        client_max_size=limits.max_body_bytes + 1,
    )
    app[INGEST_KEY] = ingest
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = metrics
    app[LIMITS_KEY] = limits
    app[NOTES_KEY] = _ListenerNotes()
    app[GUARD_KEY] = ConnectionGuard(
        max_connections=limits.max_connections,
        header_timeout_s=limits.header_timeout_s,
        events=_ConnectionMetrics(metrics),
    )
    for path in EVENT_PATHS:
        app.router.add_post(path, receive_event)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)

    async def _drain_inbox(app: web.Application) -> None:
        await app[INGEST_KEY].drain()

    app.on_shutdown.append(_drain_inbox)
    return app


class _ConnectionMetrics(GuardEvents):
    def __init__(self, metrics: PushMetrics) -> None:
        self._metrics = metrics

    def opened(self, open_now: int) -> None:
        self._metrics.open_connections.set(open_now)

    def closed(self, open_now: int) -> None:
        self._metrics.open_connections.set(open_now)

    def refused(self) -> None:
        self._metrics.connections_refused.inc()

    def head_timed_out(self) -> None:
        self._metrics.slow_requests.labels(part="head").inc()


class _ClientErrorsAtDebug(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, minus tracebacks for requests that were malformed.

    aiohttp answers a request it cannot parse (bad request line or header, a Content-Encoding it cannot
    decode) with 400 itself and logs it as an error with a traceback; on a port open to the internet that is
    scanners' noise, not a fault of the bot. Those become one debug line; anything else is logged as before.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError | web.RequestPayloadError | ConnectionError):
            self.logger.debug("%s: %s", _formatted(msg, args), error)
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


def _formatted(msg: object, args: tuple[object, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return f"{msg} {args}"


_AIOHTTP_SERVER_LOGGER = _ClientErrorsAtDebug(logging.getLogger("aiohttp.server"), {})


class PushServer:
    """Runs the app on ``host:port`` behind the app's :class:`ConnectionGuard`; :attr:`port` is the bound port
    (useful with port 0)."""

    def __init__(
        self, app: web.Application, host: str, port: int, *, shutdown_timeout_s: float = 5.0
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the push listener is not running")
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}"

    @property
    def guard(self) -> ConnectionGuard:
        return self._app[GUARD_KEY]

    async def start(self) -> None:
        if self._runner is not None:
            return
        started = time.monotonic()
        limits = self._app[LIMITS_KEY]
        runner = web.AppRunner(
            self._app,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout_s,
            # Handler arguments: idle kept-alive connections close after this long; protocol errors log quietly.
            keepalive_timeout=limits.keepalive_timeout_s,
            logger=_AIOHTTP_SERVER_LOGGER,
        )
        await runner.setup()
        server = runner.server
        assert server is not None
        try:
            # Not a TCPSite: every connection must pass through the guard before aiohttp sees it.
            listener = await asyncio.get_running_loop().create_server(
                self.guard.wrap(server), self._host, self._requested_port, reuse_address=True
            )
        except OSError:
            await runner.cleanup()
            log.error("the push listener cannot listen on %s:%s", self._host, self._requested_port)
            raise
        self._runner = runner
        self._listener = listener
        self._port = _bound_port(listener, self._requested_port)
        log.info(
            "push listener on http://%s:%s%s (started in %.0f ms)",
            self._host,
            self._port,
            EVENT_PATHS[0],
            (time.monotonic() - started) * 1000,
        )

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections; the ones open finish below
        if runner is not None:
            await runner.cleanup()
        self.guard.close_all()
        if listener is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._shutdown_timeout_s):
                    await listener.wait_closed()
        if runner is not None:
            log.info("push listener stopped")
        self._port = None


def _bound_port(listener: asyncio.Server, requested: int) -> int:
    for sock in listener.sockets:
        address = sock.getsockname()
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
