"""The push pipeline as one object the bot starts and stops: processor and delivery loops, the listener app.

Lifecycle: :meth:`PushPipeline.start` starts the background loops (and the listener, if one is attached);
:meth:`PushPipeline.stop` closes the listener first (no new events), lets the processor finish the event in
hand, lets in-flight Discord requests finish briefly, and cancels the rest. Nothing is lost by stopping:
everything pending is in SQLite and the next start picks it up.

``start(deliver=False)`` runs everything but delivery: the process starts it before logging in to Discord, so
the CAD's events are acknowledged, stored and processed while Discord is unreachable, and
:meth:`PushPipeline.start_delivery` sends them once logged in.

Typical wiring (the bot starts it before login and lets delivery go in ``setup_hook``; ``close`` calls
``stop``)::

    pipeline = PushPipeline(storage, DiscordPySender(bot.http))
    pipeline.attach_server(pipeline.create_server(settings.server, discord_connected=bot.is_ready))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from bot.cad import events as ev
from bot.cad.models import Unit
from bot.cards.buttons import card_components
from bot.cards.state import CardKind, CardState, load_state
from bot.config import ServerSettings
from bot.formatting.limits import EmbedDict
from bot.push.delivery import DeliveryConfig, DeliveryWorker
from bot.push.ingest import AuthThrottle, PushIngest, RejectionLog
from bot.push.metrics import PushMetrics
from bot.push.processor import PushProcessor
from bot.push.sender import DiscordSender
from bot.push.server import HealthReport, ListenerLimits, PushServer, create_push_app
from bot.push.unit_directory import UnitDirectory
from bot.storage import Storage
from bot.storage.cards import CardRow
from bot.storage.db import DatabaseError
from bot.storage.push_store import PushStore
from bot.timing import IdleWait, WallClock

if TYPE_CHECKING:
    from bot.push.hub_sessions import HubSessions

log = logging.getLogger(__name__)

T = TypeVar("T")

# An outbox whose oldest delivery waited longer than this is reported unhealthy (Discord or a channel stuck).
DEFAULT_STALE_AFTER_S = 300.0
# While writes fail and nothing else has tried one for this long, the health check tries a small write itself,
# so /healthz turns healthy again once the disk has room, without waiting for the next event.
DEFAULT_WRITE_PROBE_AFTER_S = 30.0


class PushPipeline:
    def __init__(
        self,
        storage: Storage,
        sender: DiscordSender,
        *,
        metrics: PushMetrics | None = None,
        idle_wait: IdleWait | None = None,
        delivery: DeliveryConfig | None = None,
        throttle: AuthThrottle | None = None,
        rejection_summary_s: float = 60.0,
        discord_connected: Callable[[], bool] | None = None,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        write_probe_after_s: float = DEFAULT_WRITE_PROBE_AFTER_S,
        stop_timeout_s: float = 5.0,
        clock: WallClock = time.time,
    ) -> None:
        self.storage = storage
        self.store = PushStore(storage.db, clock=clock)
        self.metrics = metrics or PushMetrics()
        self.units = UnitDirectory(self.store.unit_names)
        self._clock = clock
        self._stale_after_s = stale_after_s
        self._write_probe_after_s = write_probe_after_s
        self._stop_timeout_s = stop_timeout_s
        self._discord_connected = discord_connected or (lambda: True)
        self.delivery = DeliveryWorker(
            self.store,
            sender,
            storage.routes,
            self.metrics,
            self._render_card,
            config=delivery,
            idle_wait=idle_wait,
            clock=clock,
            card_components=self._card_components,
        )
        self.processor = PushProcessor(
            storage,
            self.store,
            self.units,
            self.metrics,
            on_queued=self.delivery.wake,
            idle_wait=idle_wait,
            storage_retry_s=(delivery or DeliveryConfig()).storage_retry_s,
            clock=clock,
        )
        self.ingest = PushIngest(
            storage,
            self.store.inbox,
            self.metrics,
            on_stored=self.processor.wake,
            throttle=throttle,
            rejections=RejectionLog(window_s=rejection_summary_s),
            clock=clock,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: PushServer | None = None
        self.hub: HubSessions | None = None
        self._running = False
        self._delivering = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def attach_hub(self, sessions: HubSessions) -> None:
        """Have :meth:`start`/:meth:`stop` also run the websocket sessions (opened after the loops, closed
        first); their events go through this pipeline's ingest."""
        self.hub = sessions

    def attach_server(self, server: PushServer) -> None:
        """Have :meth:`start`/:meth:`stop` also run this listener (started after the loops, stopped first)."""
        self._server = server

    @property
    def server(self) -> PushServer | None:
        return self._server

    def create_app(self, limits: ListenerLimits | None = None) -> web.Application:
        return create_push_app(self.ingest, self.health, self.metrics, limits=limits)

    def create_server(
        self, settings: ServerSettings, *, discord_connected: Callable[[], bool] | None = None
    ) -> PushServer:
        if discord_connected is not None:
            self._discord_connected = discord_connected
        if settings.trusted_proxies:
            log.info(
                "push listener trusts X-Forwarded-For from %s",
                ", ".join(str(network) for network in settings.trusted_proxies),
            )
        return PushServer(
            self.create_app(ListenerLimits.from_settings(settings)), settings.host, settings.port
        )

    async def start(self, *, deliver: bool = True) -> None:
        """Start processing and the listener; with ``deliver`` (or a later :meth:`start_delivery`) delivery too."""
        if self._running:
            if deliver:
                await self.start_delivery()
            return
        self._running = True
        self.processor.resume()
        self.delivery.resume()
        self._spawn("push-processor", self.processor.run)
        if deliver:
            await self.start_delivery()
        if self._server is not None:
            try:
                await self._server.start()
            except BaseException:
                await self.stop()
                raise
        if self.hub is not None:
            await self.hub.start()

    async def start_delivery(self) -> None:
        """Let the outbox go to Discord (the sender can reach it now); nothing if already delivering."""
        if not self._running or self._delivering:
            return
        self._delivering = True
        self._spawn("push-delivery", self.delivery.run)

    def _spawn(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(loop(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._loop_ended)

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._delivering = False
        if self.hub is not None:
            await self.hub.stop()
        if self._server is not None:
            await self._server.stop()
        self.processor.request_stop()
        await self.delivery.stop()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._stop_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._tasks.clear()

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.critical(
                "push loop %s crashed; pending events wait for a restart", task.get_name(), exc_info=error
            )

    def wake(self) -> None:
        """New work may exist (e.g. stored by another component): look now instead of at the next timer."""
        self.processor.wake()
        self.delivery.wake()

    # -- API-made events and card changes ----------------------------------------------------------

    async def publish_local(self, guild_id: int, event: ev.PushEvent) -> int:
        """Post an event the bot caused itself (panic via /panic, dispatch actions) to one guild, through the
        same routing, formatting and card path as push events. Returns how many deliveries were queued."""
        return await self.processor.publish_local(guild_id, event)

    async def update_card(
        self,
        guild_id: int,
        kind: CardKind | str,
        call_id: int,
        reducer: Callable[[T | None], T | None],
        *,
        ping: bool = False,
    ) -> bool:
        """Change one guild's live card with ``reducer`` (see :mod:`bot.cards.state` ``with_*`` helpers); a
        card it starts pings the route's role when ``ping`` (a /panic alert)."""
        return await self.processor.update_card(guild_id, kind, call_id, reducer, ping=ping)

    async def card_state(self, guild_id: int, kind: CardKind, call_id: int) -> CardState | None:
        """One guild's live card of ``kind`` for ``call_id`` as it stands, or None if it has none."""
        card = await self.store.cards.get(guild_id, kind.value, call_id)
        return load_state(card.kind, card.state) if card is not None else None

    async def open_card_states(self, guild_id: int, kind: CardKind) -> list[CardState]:
        """One guild's live cards of ``kind`` whose call is still open, oldest first."""
        return [
            load_state(card.kind, card.state)
            for card in await self.store.cards.unfinished(guild_id, kind.value)
        ]

    async def learn_units(self, community_id: str | None, units: Iterable[Unit]) -> None:
        """Teach the card and alert renderer the names the CAD just gave (a command that read the units on
        duty), so cards show "1A-12 Jordan Reyes"."""
        await self.units.learn_units(community_id, units)

    async def pending_deliveries(self, guild_id: int) -> tuple[int, float | None]:
        """How many deliveries this guild still owes Discord, and when the oldest was queued (Unix seconds)."""
        pending = await self.store.outbox.rows(guild_id=guild_id, status="pending")
        return len(pending), min((row.created_at for row in pending), default=None)

    # -- for /status and /setup ---------------------------------------------------------------------

    def invalidate_key_cache(self) -> None:
        """A guild's key changed or was removed: stop accepting events under the old key at once."""
        self.ingest.invalidate_key_cache()

    async def last_event_received_at(self, community_id: str) -> float | None:
        """When this community's events last reached the listener (Unix seconds), or None if not known."""
        seen = [self.ingest.last_seen(community_id), await self.store.inbox.last_received_at(community_id)]
        known = [moment for moment in seen if moment is not None]
        return max(known) if known else None

    # -- health ------------------------------------------------------------------------------------

    async def health(self) -> HealthReport:
        database_ok = True
        depth: int | None = None
        age: float | None = None
        inbox: int | None = None
        writes = self.storage.db.writes
        try:
            await self.store.ping()
            failure = writes.last_failure
            # Failing writes move failure.at, so this probes only when nothing has tried a write for a while.
            if (
                writes.failing
                and failure is not None
                and writes.seconds_since(failure.at) >= self._write_probe_after_s
            ):
                with contextlib.suppress(DatabaseError):  # recorded by the tracker; the report says so
                    await self.store.write_probe()
            stats = await self.store.outbox.stats()
            inbox = await self.store.inbox.depth()
            depth = stats.depth
            if stats.oldest_created_at is not None:
                age = max(0.0, self._clock() - stats.oldest_created_at)
        except (DatabaseError, OSError):
            database_ok = False
        connected = bool(self._discord_connected())
        if depth is not None:
            self.metrics.outbox_depth.set(depth)
            self.metrics.oldest_pending_age.set(age or 0.0)
        if inbox is not None:
            self.metrics.inbox_depth.set(inbox)
        failure = writes.last_failure
        down = tuple(
            f"community {status.community_id}, server {status.server_id}"
            for status in (self.hub.down() if self.hub is not None else [])
        )
        healthy = (
            database_ok
            and not writes.failing
            and connected
            and (age is None or age < self._stale_after_s)
            and not down
        )
        return HealthReport(
            database_ok=database_ok,
            discord_connected=connected,
            outbox_depth=depth,
            oldest_pending_age_s=age,
            inbox_depth=inbox,
            healthy=healthy,
            writes_failing=writes.failing,
            last_write_error=failure.error if failure is not None else None,
            last_write_failure_age_s=writes.seconds_since(failure.at) if failure is not None else None,
            websocket_down=down,
        )

    async def _render_card(self, card: CardRow) -> EmbedDict:
        # The processor is built after the worker (it wakes the worker), so the worker reaches it late-bound.
        return await self.processor.render_card(card)

    @staticmethod
    def _card_components(card: CardRow) -> list[dict[str, Any]] | None:
        return card_components(card.kind, card.call_id, finished=card.finished)

    async def wait_until_idle(self, timeout_s: float = 10.0, poll_s: float = 0.02) -> None:
        """Wait until nothing is owed to Discord: the inbox and outbox are empty and every live card shows its
        latest state (tests, benchmarks); raises TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while True:
                stats = await self.store.outbox.stats()
                if (
                    stats.depth == 0
                    and await self.store.inbox.depth() == 0
                    and await self.store.cards.edits_owed() == 0
                ):
                    return
                self.wake()
                await asyncio.sleep(poll_s)
