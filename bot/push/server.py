"""The push-event listener: an aiohttp app factory and the server that runs it.

Routes: ``POST /sonorancad/event`` (and ``/event``, as FiveM accepts), optional ``?server_id=N``;
``GET /healthz``; ``GET /metrics``. Checks run as middlewares, in the order the contract promises:
size (413), JSON object (400), throttle (429), key (401); the handler then checks ``type`` (400) and stores
the event (200, or 503 if the database failed so the CAD retries). No input can produce a 500.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.push.ingest import Answer, PushIngest, rejected, storage_unavailable
from bot.push.metrics import NO_TYPE_LABEL, PushMetrics
from bot.storage.models import GuildConfig

log = logging.getLogger(__name__)

EVENT_PATHS = ("/sonorancad/event", "/event")
DEFAULT_MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class HealthReport:
    database_ok: bool
    discord_connected: bool
    outbox_depth: int | None
    oldest_pending_age_s: float | None
    inbox_depth: int | None
    healthy: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "database": "ok" if self.database_ok else "unavailable",
            "discord": "connected" if self.discord_connected else "disconnected",
            "outbox_depth": self.outbox_depth,
            "oldest_pending_age_s": None
            if self.oldest_pending_age_s is None
            else round(self.oldest_pending_age_s, 3),
            "inbox_depth": self.inbox_depth,
        }


HealthCheck = Callable[[], Awaitable[HealthReport]]


@dataclass(frozen=True)
class ListenerLimits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


INGEST_KEY = web.AppKey("push_ingest", PushIngest)
HEALTH_KEY: web.AppKey[HealthCheck] = web.AppKey("push_health")
METRICS_KEY = web.AppKey("push_metrics", PushMetrics)
LIMITS_KEY = web.AppKey("push_limits", ListenerLimits)
ENVELOPE_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("push_envelope")
GUILDS_KEY: web.RequestKey[tuple[GuildConfig, ...]] = web.RequestKey("push_guilds")


def _json_answer(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=dict(answer.headers))


def _is_event_request(request: web.Request) -> bool:
    return request.path in EVENT_PATHS and request.method == "POST"


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


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
    """413 for a body over the limit; 400 for an empty body, invalid JSON, or JSON that is not an object."""
    if not _is_event_request(request):
        return await handler(request)
    metrics = request.app[METRICS_KEY]
    limit = request.app[LIMITS_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        metrics.received(NO_TYPE_LABEL, "too_large")
        return _json_answer(rejected(413, "too_large", f"the body is larger than {limit} bytes"))
    try:
        raw = await _read_limited(request, limit)
    except _TooLargeError:
        metrics.received(NO_TYPE_LABEL, "too_large")
        return _json_answer(rejected(413, "too_large", f"the body is larger than {limit} bytes"))
    if not raw.strip():
        metrics.received(NO_TYPE_LABEL, "bad_request")
        return _json_answer(rejected(400, "bad_request", "the body is empty"))
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        metrics.received(NO_TYPE_LABEL, "bad_request")
        return _json_answer(rejected(400, "bad_request", "the body is not valid JSON"))
    if not isinstance(envelope, dict):
        metrics.received(NO_TYPE_LABEL, "bad_request")
        return _json_answer(rejected(400, "bad_request", "the body must be a JSON object"))
    request[ENVELOPE_KEY] = envelope
    return await handler(request)


class _TooLargeError(Exception):
    pass


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


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 while the address is throttled; 401 unless ``key`` matches a configured community."""
    if not _is_event_request(request):
        return await handler(request)
    ingest = request.app[INGEST_KEY]
    address = _address(request)
    throttled = ingest.check_throttle(address)
    if throttled is not None:
        return _json_answer(throttled)
    result = await ingest.authenticate(request[ENVELOPE_KEY].get("key"), address)
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
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """The listener's aiohttp application (state under ``web.AppKey``, checks in middlewares)."""
    app = web.Application(
        middlewares=[errors_middleware, body_middleware, auth_middleware],
        # Our middleware enforces the limit with a clear 413 before aiohttp's own check would.
        client_max_size=max_body_bytes + 1,
    )
    app[INGEST_KEY] = ingest
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = metrics
    app[LIMITS_KEY] = ListenerLimits(max_body_bytes=max_body_bytes)
    for path in EVENT_PATHS:
        app.router.add_post(path, receive_event)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)

    async def _drain_inbox(app: web.Application) -> None:
        await app[INGEST_KEY].drain()

    app.on_shutdown.append(_drain_inbox)
    return app


class PushServer:
    """Runs an app with ``AppRunner``/``TCPSite``; :attr:`port` is the bound port (useful with port 0)."""

    def __init__(
        self, app: web.Application, host: str, port: int, *, shutdown_timeout_s: float = 5.0
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None
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

    async def start(self) -> None:
        if self._runner is not None:
            return
        started = time.monotonic()
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=self._shutdown_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            log.error("the push listener cannot listen on %s:%s", self._host, self._requested_port)
            raise
        self._runner = runner
        self._port = _bound_port(runner, self._requested_port)
        log.info(
            "push listener on http://%s:%s%s (started in %.0f ms)",
            self._host,
            self._port,
            EVENT_PATHS[0],
            (time.monotonic() - started) * 1000,
        )

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("push listener stopped")
        self._port = None


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
