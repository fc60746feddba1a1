"""The websocket sessions the guilds need: one :class:`HubSession` per (hub, community, server id, key).

Every guild whose push transport is ``websocket`` needs a session for its community and CAD server id; guilds that
share one share the session (the hub routes an event to *a* session for that community and server id, so two
would compete for the same events). :meth:`HubSessions.reconcile` reads the guilds from storage and makes the
running sessions match: it opens the sessions that are missing (the first guild set up) and closes the ones
nobody needs any more (the last guild left, switched to HTTP, or changed its key or server id). It runs at
start, after ``/setup`` or ``/config reset`` in this process, and every ``reconcile_every_s`` for changes made
by the admin CLI in another process.

Every ``pushEvent`` goes to the same ingest as an HTTP POST (:meth:`bot.push.ingest.PushIngest.receive_pushed`:
the key compared in constant time with the configured keys, the same type rules, the same durable inbox),
restricted to the session's server id. The hub never sends an event twice, so an event storage refused (a
full disk, a locked database) is tried again for about a minute, the session's later events waiting behind it
in order, where an HTTP sender would have been told 503 and sent it again. After a reconnect, ``on_catch_up`` gets the gap that just ended, so the
live cards of calls that changed meanwhile can be refreshed over HTTP (events sent during a gap are gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from bot.cad.models import CadCredentials
from bot.push.hub_client import HubAuthenticated, HubCounters, HubSession, HubStatus, HubTiming
from bot.push.ingest import WEBSOCKET, PushIngest
from bot.push.metrics import PushMetrics
from bot.storage import Storage
from bot.storage.db import DatabaseError
from bot.storage.secrets import SecretKeyError
from bot.timing import IdleWait, MonotonicClock, plain_await

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 30.0
# The hub never sends an event again, so one that storage refused (disk full, database locked) is retried,
# holding the session's receive loop meanwhile (later events wait in order behind it): about a minute.
STORAGE_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# A session that has not authenticated this long after it started counts as down (a fresh start gets time).
START_GRACE_S = 20.0

STORAGE_UNAVAILABLE = 503
CatchUp = Callable[[CadCredentials, tuple[int, ...], HubAuthenticated], Awaitable[None]]
SessionFactory = Callable[..., HubSession]


def normalise_hub_url(url: str) -> str:
    """One spelling per hub: scheme and host lower-cased, no default port, no trailing slash, no query."""
    parsed = URL(url.strip())
    path = parsed.path.rstrip("/") or ""
    return str(parsed.with_query(None).with_fragment(None).with_path(path)).rstrip("/")


@dataclass(frozen=True)
class SessionKey:
    """What makes two guilds share a session. The key is kept as a digest only."""

    hub_url: str
    community_id: str
    server_id: int
    key_digest: str

    @classmethod
    def of(cls, hub_url: str, creds: CadCredentials) -> SessionKey:
        digest = hashlib.sha256(creds.api_key.get_secret_value().encode()).hexdigest()[:32]
        return cls(normalise_hub_url(hub_url), creds.community_id, creds.server_id, digest)


@dataclass
class _Entry:
    session: HubSession
    creds: CadCredentials
    guild_ids: tuple[int, ...]
    started_at: float
    exported: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GuildHubState:
    """What /status and /healthz say about one guild's websocket session."""

    status: HubStatus
    guilds_sharing: int
    down: bool


class HubSessions:
    """The registry (see the module docstring). ``http`` is the process's one ``ClientSession``."""

    def __init__(
        self,
        storage: Storage,
        ingest: PushIngest,
        http: aiohttp.ClientSession,
        hub_url: str,
        *,
        metrics: PushMetrics | None = None,
        on_catch_up: CatchUp | None = None,
        timing: HubTiming | None = None,
        session_factory: SessionFactory = HubSession,
        reconcile_every_s: float = RECONCILE_EVERY_S,
        storage_retry_s: Sequence[float] = STORAGE_RETRY_S,
        idle_wait: IdleWait | None = None,
        monotonic: MonotonicClock = time.monotonic,
    ) -> None:
        self._storage = storage
        self._ingest = ingest
        self._http = http
        self._hub_url = normalise_hub_url(hub_url)
        self._metrics = metrics
        self.on_catch_up = on_catch_up
        self.timing = timing  # None: the official client's intervals; tests shorten them before start
        self._factory = session_factory
        self._reconcile_every_s = reconcile_every_s
        self._storage_retry_s = tuple(storage_retry_s)
        self._idle_wait = idle_wait or plain_await
        self._monotonic = monotonic
        self._entries: dict[SessionKey, _Entry] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._reconcile_now = asyncio.Event()
        self._catch_ups: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reconcile()
        if self._loop is None:
            self._loop = asyncio.create_task(self._reconcile_forever(), name="hub-sessions-reconcile")

    async def stop(self) -> None:
        """Close every session cleanly (close frame 1000); nothing is reopened afterwards."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        for task in list(self._catch_ups):
            task.cancel()
        await asyncio.gather(*self._catch_ups, return_exceptions=True)
        async with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            await asyncio.gather(*(self._close(entry) for entry in entries), return_exceptions=True)
            self._ingest.dedupe.watch(())

    def reconcile_soon(self) -> None:
        """A guild's setup changed (/setup, /config reset): reconcile now, in the registry's own task (so the
        sessions it opens belong to the registry, not to the command that asked)."""
        self._reconcile_now.set()

    async def _nudged_or_due(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._reconcile_every_s):
                await self._reconcile_now.wait()

    async def _reconcile_forever(self) -> None:
        while True:
            await self._idle_wait(self._nudged_or_due())
            self._reconcile_now.clear()
            try:
                await self.reconcile()
            except Exception:  # the next round tries again; the sessions that run keep running
                log.exception("could not reconcile the websocket sessions")

    async def reconcile(self) -> None:
        """Open the sessions guilds need and close the ones nobody needs (see the module docstring)."""
        try:
            wanted = await self._wanted()
        except (DatabaseError, SecretKeyError) as exc:
            log.warning("websocket sessions not reconciled: %s", type(exc).__name__)
            return
        async with self._lock:
            for key in [key for key in self._entries if key not in wanted]:
                unused = self._entries.pop(key)
                log.info(
                    "closing the websocket session of community %s, server %s (no guild uses it)",
                    key.community_id,
                    key.server_id,
                )
                await self._close(unused)
            for key, (creds, guild_ids) in wanted.items():
                entry = self._entries.get(key)
                if entry is not None:
                    entry.guild_ids = guild_ids
                    continue
                self._entries[key] = await self._open(key, creds, guild_ids)
            self._ingest.dedupe.watch({key.community_id for key in self._entries})

    async def _wanted(self) -> dict[SessionKey, tuple[CadCredentials, tuple[int, ...]]]:
        wanted: dict[SessionKey, tuple[CadCredentials, tuple[int, ...]]] = {}
        for guild_id, creds in await self._storage.guilds.websocket_guilds():
            key = SessionKey.of(self._hub_url, creds)
            known = wanted.get(key)
            wanted[key] = (creds, (*known[1], guild_id) if known else (guild_id,))
        return wanted

    async def _open(self, key: SessionKey, creds: CadCredentials, guild_ids: tuple[int, ...]) -> _Entry:
        async def on_event(envelope: dict[str, Any]) -> None:
            await self._received(key, envelope)

        async def on_authenticated(info: HubAuthenticated) -> None:
            await self._authenticated(key, info)

        extra: dict[str, Any] = {"io_wait": self._idle_wait}
        if self.timing is not None:
            extra["timing"] = self.timing
        session = self._factory(
            self._http, self._hub_url, creds, on_event=on_event, on_authenticated=on_authenticated, **extra
        )
        log.info("opening the websocket session of community %s, server %s", key.community_id, key.server_id)
        await session.start()
        return _Entry(session, creds, guild_ids, self._monotonic())

    async def _close(self, entry: _Entry) -> None:
        await entry.session.stop()
        self._export(entry)

    # -- events -------------------------------------------------------------------------------------------

    async def _received(self, key: SessionKey, envelope: dict[str, Any]) -> None:
        for retry_after in (*self._storage_retry_s, None):
            answer = await self._ingest.receive_pushed(
                envelope,
                source=f"websocket:{key.community_id}/{key.server_id}",
                community_id=key.community_id,
                server_id=key.server_id,
                transport=WEBSOCKET,
            )
            if answer.status != STORAGE_UNAVAILABLE or retry_after is None:
                break
            # Over HTTP the sender would be told 503 and send again; the hub cannot, so the bot tries again.
            await self._idle_wait(asyncio.sleep(retry_after))
        if answer.status >= 400:
            # A wrong key inside a pushEvent, or storage that stayed down: nothing is posted; say so without
            # the key.
            log.warning(
                "a pushEvent for community %s was not stored: %s",
                key.community_id,
                answer.body.get("error", answer.status),
            )

    async def _authenticated(self, key: SessionKey, info: HubAuthenticated) -> None:
        entry = self._entries.get(key)
        if info.first or entry is None or self.on_catch_up is None:
            return
        log.info(
            "websocket session of community %s, server %s is back after %.1f s; refreshing open calls",
            key.community_id,
            key.server_id,
            info.gap_s or 0.0,
        )
        task = asyncio.create_task(self._catch_up(entry, info), name=f"hub-catch-up-{key.community_id}")
        self._catch_ups.add(task)
        task.add_done_callback(self._catch_ups.discard)

    async def _catch_up(self, entry: _Entry, info: HubAuthenticated) -> None:
        assert self.on_catch_up is not None
        try:
            await self.on_catch_up(entry.creds, entry.guild_ids, info)
        except Exception:  # a missed refresh leaves the cards as they were; the next event corrects them
            log.exception("catching up after a websocket gap failed (community %s)", entry.creds.community_id)

    # -- state --------------------------------------------------------------------------------------------

    def sessions(self) -> list[tuple[SessionKey, HubSession]]:
        return [(key, entry.session) for key, entry in self._entries.items()]

    def guild_state(self, guild_id: int) -> GuildHubState | None:
        """The session this guild receives its events through, or None (HTTP guild, or not reconciled yet)."""
        for entry in self._entries.values():
            if guild_id in entry.guild_ids:
                return GuildHubState(entry.session.status(), len(entry.guild_ids), self._is_down(entry))
        return None

    def down(self) -> list[HubStatus]:
        """Sessions guilds rely on that are not authenticated (after the start grace), for /healthz."""
        self.export_metrics()
        states = [entry.session.status() for entry in self._entries.values() if self._is_down(entry)]
        if self._metrics is not None:
            self._metrics.hub_sessions_down.set(len(states))
        return states

    def _is_down(self, entry: _Entry) -> bool:
        status = entry.session.status()
        if status.authenticated:
            return False
        was_up = status.down_since is not None or status.last_gap_s is not None
        return was_up or self._monotonic() - entry.started_at >= START_GRACE_S

    def export_metrics(self) -> None:
        """Add what each session counted since the last export to the process's Prometheus counters."""
        for entry in self._entries.values():
            self._export(entry)

    def _export(self, entry: _Entry) -> None:
        if self._metrics is None:
            return
        counters: HubCounters = entry.session.counters
        for name, metric in (
            ("connects", self._metrics.hub_connects),
            ("reconnects", self._metrics.hub_reconnects),
            ("auth_failures", self._metrics.hub_auth_failures),
            ("events_received", self._metrics.hub_events_received),
        ):
            now = int(getattr(counters, name))
            delta = now - entry.exported.get(name, 0)
            if delta > 0:
                metric.inc(delta)
            entry.exported[name] = now
