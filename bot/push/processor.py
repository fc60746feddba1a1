"""The processor: turns accepted events into per-guild deliveries, in the background.

It takes the inbox a batch at a time, in order. For each row it parses the envelope, learns unit names, and
for every guild the event fans out to looks up the route of the event's category, then either changes that
guild's live card for the call or formats one embed for the outbox.

The work is split around the database's write lock, which the listener needs for every acknowledgement:

1. *Prepare*, without the lock: parse each row, learn unit names and format the embeds (the CPU-heavy part),
   yielding to the event loop after every row so acknowledgements are never stuck behind a batch.
2. *Commit*: read the routes and the cards the batch touches (one round trip), apply the card changes in
   memory (consecutive changes to one card become one write), then write the outbox rows, card states, unit
   names and the rows' outcomes in one transaction of three round trips (BEGIN, the writes together, COMMIT).

A batch is one transaction, so a crash never half-processes an event and never processes one twice. A row
whose processing raises (a bug) has its own changes undone and is marked ``error``; the rest of the batch
goes on. Routes are read for every batch, so a route changed meanwhile is honoured; the routes seen by the
last batch only decide which embeds are worth formatting ahead of time.

Acknowledgements come first, since the listener shares this event loop and database thread. The first event
after a quiet spell is processed at once. While events keep arriving, the processor waits for a quiet moment
(no inbox commit for ``quiet_s``), which also gathers them into larger batches, and between rows it lets
pending inbox commits go first; but an event never waits for the listener once it is ``max_lag_s`` old, so a
flood slows processing down and never stops it.

Urgent events (panic and 911 calls: :data:`URGENT_EVENT_TYPES`) never wait behind that. Each batch takes the
urgent events still in the inbox first, in order, ahead of older routine ones, and processes them without
waiting for a quiet moment; an urgent event stored (or published by a command) while a routine batch waits or
is being prepared cuts the waiting short, so it is processed right after that batch. Order within a category
is kept (every event type of the panic and 911 categories counts as urgent). A panic names its unit, so the
unit names carried by the events it overtakes (logins, updates, status changes) are learnt first.

Actions made through the CAD API produce no push event; the command layer feeds them in through
:meth:`PushProcessor.publish_local` and :meth:`PushProcessor.update_card`, which take the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.cad import events as ev
from bot.cards.book import CardBook
from bot.cards.render import render_card
from bot.cards.state import (
    CARD_CATEGORY,
    CardKind,
    DispatchCardState,
    Emergency911CardState,
    PanicCardState,
    apply_911_event,
    apply_dispatch_event,
    card_key,
    is_card_event,
    shows_change,
)
from bot.formatting.context import FormatContext
from bot.formatting.events import format_event
from bot.formatting.limits import EmbedDict
from bot.push.metrics import PushMetrics, type_label
from bot.push.routing import category_for
from bot.push.unit_directory import UnitDirectory, units_named_by
from bot.storage import Storage
from bot.storage.cards import CardRow, StaleCardError
from bot.storage.db import DatabaseError
from bot.storage.inbox import InboxEntry, InboxRow
from bot.storage.models import Category, RouteConfig, delivery_priority
from bot.storage.outbox import OutboxDraft
from bot.storage.push_store import PushChanges, PushStore
from bot.timing import IdleWait, WallClock, plain_await

log = logging.getLogger(__name__)

T = TypeVar("T")
CardReducer = Callable[[Any], Any]
GuildRoutes = Mapping[Category, RouteConfig]

DEFAULT_COMMUNITY_LABEL = "Sonoran CAD"
# The inbox's event types whose deliveries are urgent: processed ahead of a backlog of routine events.
URGENT_EVENT_TYPES: frozenset[str] = frozenset(
    event_type for event_type in ev.EVENT_MODELS if delivery_priority(category_for(event_type)).urgent
)
# Panic alerts name the unit; the events that teach unit names, read ahead when a panic overtakes them.
_PANIC_EVENT_TYPES = frozenset(ev.UnitPanicEvent.EVENT_TYPES)
_NAMING_EVENT_TYPES = frozenset(
    (*ev.UnitLoginEvent.EVENT_TYPES, *ev.UnitUpdateEvent.EVENT_TYPES, *ev.UnitStatusEvent.EVENT_TYPES)
)
# The most overtaken events read for names (the newest ones: a later rename wins).
_NAMES_LOOKAHEAD = 2_000


def pings_role(event: ev.PushEvent) -> bool:
    """Only a new 911 call and an activated panic may sound the route's ping role."""
    if isinstance(event, ev.UnitPanicEvent):
        return event.is_panic
    return isinstance(event, ev.Emergency911Event)


@dataclass(slots=True)
class _Work:
    """One inbox row (or one API-made event) on its way to the outbox."""

    inbox_id: int | None
    label: str
    community_id: str | None
    guild_ids: tuple[int, ...]
    accepted_at: float
    events: tuple[ev.PushEvent, ...] = ()
    # Embeds formatted ahead of the lock, by event index; an index missing here is formatted if needed.
    embeds: dict[int, EmbedDict | None] = field(default_factory=dict)
    # Settled before routing (ignored, unknown type, invalid data, error), else set when committed.
    result: str | None = None
    queued: int = 0


class PushProcessor:
    def __init__(
        self,
        storage: Storage,
        store: PushStore,
        units: UnitDirectory,
        metrics: PushMetrics,
        *,
        on_queued: Callable[[], None],
        idle_wait: IdleWait | None = None,
        batch_size: int = 50,
        max_lag_s: float = 1.0,
        quiet_s: float = 0.002,
        storage_retry_s: float = 5.0,
        clock: WallClock = time.time,
    ) -> None:
        self._storage = storage
        self._store = store
        self._units = units
        self._metrics = metrics
        self._on_queued = on_queued
        self._idle_wait: IdleWait = idle_wait or plain_await
        self._batch_size = batch_size
        # Alerts may trail a flood of events by about this much, never more.
        self._max_lag_s = max_lag_s
        # An acknowledgement takes about a millisecond: this long without one means no burst is under way.
        self._quiet_s = quiet_s
        # True after a batch that found work: more is probably on its way.
        self._in_stream = False
        self._storage_retry_s = storage_retry_s
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        # Card changes are read-modify-write, and a batch reads the inbox before it commits: the inbox loop
        # and API-made changes must not interleave.
        self._lock = asyncio.Lock()
        # Routes as the last commit read them: only a hint of which embeds to format ahead of the lock.
        self._route_hints: dict[int, GuildRoutes] = {}
        # Set when an urgent event is stored or published: a routine batch stops waiting for the listener.
        self._urgent_arrived = asyncio.Event()
        # Whether the inbox may hold urgent events (it may, at start: rows left by an earlier run).
        self._urgent_maybe_stored = True
        store.inbox.add_listener(self._inbox_stored)

    def _inbox_stored(self, entries: Iterable[InboxEntry]) -> None:
        if any(entry.event_type in URGENT_EVENT_TYPES for entry in entries):
            self._urgent_maybe_stored = True
            self._urgent_arrived.set()

    def wake(self) -> None:
        self._wakeup.set()

    def resume(self) -> None:
        """Allow :meth:`run` again after :meth:`request_stop`."""
        self._stopping = False

    def request_stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                processed = await self.process_pending()
            except StaleCardError:
                log.info("a live card was deleted while its batch was processed; processing the batch again")
                continue
            except Exception:  # the database failed (or a bug): keep the loop alive and try again shortly
                log.exception("push processor failed; retrying in %.0f s", self._storage_retry_s)
                await self._idle_wait(self._sleep_or_wake(self._storage_retry_s))
                continue
            if processed:
                continue
            if not self._stopping:
                await self._idle_wait(self._wakeup.wait())

    async def _sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    async def process_pending(self) -> int:
        """Process one batch of accepted events (urgent ones first); returns how many inbox rows were handled."""
        async with self._lock:
            rows, urgent = await self._next_batch()
            if (
                rows
                and not urgent
                and self._in_stream
                and await self._yield(self._lag_budget(rows[0]), quiet_s=self._quiet_s)
            ):
                # The listener was busy: the wait let more events gather into this batch (or an urgent one came).
                rows, urgent = await self._next_batch()
            self._in_stream = bool(rows)
            changes = PushChanges()
            if urgent:
                await self._learn_names_ahead(rows, changes)
            batch: list[_Work] = []
            for row in rows:
                if self._stopping:
                    break
                if not urgent:
                    await self._yield(self._lag_budget(row))
                batch.append(await self._prepare_row(row, changes))
            if not batch:
                return 0
            if not urgent:
                await self._yield(self._lag_budget(rows[0]))
            await self._commit(batch, changes, isolate_errors=True)
        for work in batch:
            self._metrics.processed(work.label, work.result or "error")
        self._on_queued()
        return len(batch)

    async def _next_batch(self) -> tuple[list[InboxRow], bool]:
        """The inbox rows to process next, and whether they are urgent ones taken ahead of the rest."""
        self._urgent_arrived.clear()
        if self._urgent_maybe_stored:
            # Cleared before the read: an urgent event stored while it runs sets it again.
            self._urgent_maybe_stored = False
            rows = await self._store.inbox.unprocessed(self._batch_size, event_types=URGENT_EVENT_TYPES)
            if len(rows) >= self._batch_size:
                self._urgent_maybe_stored = True
            if rows:
                return rows, True
        return await self._store.inbox.unprocessed(self._batch_size), False

    async def _learn_names_ahead(self, rows: list[InboxRow], changes: PushChanges) -> None:
        """Learn the unit names of the unprocessed events the panic alerts among ``rows`` overtake, into
        ``changes`` (committed with the batch), so an alert names a unit that logged in or was renamed just
        before it. The overtaken events are processed later as usual."""
        panics = [row for row in rows if row.event_type in _PANIC_EVENT_TYPES]
        communities = {row.community_id for row in panics if row.community_id}
        if not communities:
            return
        ahead = await self._store.inbox.unprocessed_before(
            panics[-1].id, _NAMING_EVENT_TYPES, _NAMES_LOOKAHEAD
        )
        known = {community_id: await self._units.names(community_id) for community_id in communities}
        for index, row in enumerate(ahead):
            if index % 100 == 99:
                await asyncio.sleep(0)  # parsing is CPU work: let acknowledgements through
            names = known.get(row.community_id or "")
            if names is None or row.community_id is None:
                continue
            learnt = changes.unit_names.setdefault(row.community_id, {})
            outcome = ev.parse_event(row.event_type, row.body.get("data"), row.body)
            for event in outcome.events:
                for ident, label in units_named_by(event).items():
                    if learnt.get(ident, names.get(ident)) != label:
                        learnt[ident] = label

    async def _yield(self, max_wait_s: float, *, quiet_s: float = 0.0) -> bool:
        """Let the listener's inbox commits go first (see :meth:`PushStore.yield_to_inbox`), but stop waiting
        when an urgent event arrives; True if it waited."""
        return await self._store.yield_to_inbox(max_wait_s, quiet_s=quiet_s, interrupt=self._urgent_arrived)

    def _lag_budget(self, row: InboxRow) -> float:
        """How much longer ``row`` may wait for acknowledgements to go first (0 once it is max_lag_s old)."""
        return min(self._max_lag_s, max(0.0, self._max_lag_s - (self._clock() - row.received_at)))

    # -- prepare: no database lock ---------------------------------------------------------------------

    async def _prepare_row(self, row: InboxRow, changes: PushChanges) -> _Work:
        envelope = row.body
        outcome = ev.parse_event(row.event_type, envelope.get("data"), envelope)
        work = _Work(
            inbox_id=row.id,
            label=type_label(outcome.event_type),
            community_id=row.community_id,
            guild_ids=row.guild_ids,
            accepted_at=row.received_at,
        )
        if outcome.unknown or outcome.ignored:
            work.result = "unknown_type" if outcome.unknown else "ignored"
            log.info("push event type %.60r acknowledged and not posted (%s)", row.event_type, work.result)
            return work
        if not outcome.events:
            work.result = "invalid_data"
            reasons = "; ".join(item.reason for item in outcome.invalid) or "no data"
            log.info("push event %s had nothing usable (%s)", outcome.event_type, reasons)
            return work
        if outcome.invalid:
            log.info(
                "push event %s: %d of its elements could not be read",
                outcome.event_type,
                outcome.invalid_count,
            )
        work.events = outcome.events
        try:
            await self._prepare_events(work, changes)
        except DatabaseError:
            raise
        except Exception:
            # A bug on one payload must not wedge the queue behind it: record it and move on.
            log.exception("push event %s (inbox row %s) could not be processed", outcome.event_type, row.id)
            work.result = "error"
        return work

    async def _prepare_events(self, work: _Work, changes: PushChanges) -> None:
        """Learn the unit names the events carry and format the embeds their routes will probably want."""
        learnt = changes.unit_names.setdefault(work.community_id, {}) if work.community_id else {}
        names = await self._units.with_learnt(work.community_id, learnt)
        for index, event in enumerate(work.events):
            if work.community_id:
                for ident, label in units_named_by(event).items():
                    if names.get(ident) != label:
                        learnt[ident] = label
            if not is_card_event(event) and self._may_deliver(work.guild_ids, category_for(event)):
                work.embeds[index] = format_event(event, self._context(work.community_id, names))

    def _may_deliver(self, guild_ids: Iterable[int], category: Category) -> bool:
        for guild_id in guild_ids:
            routes = self._route_hints.get(guild_id)
            if routes is None or routes[category].delivers:
                return True
        return False

    def _context(self, community_id: str | None, names: Mapping[int, str]) -> FormatContext:
        return FormatContext(
            community_label=community_id or DEFAULT_COMMUNITY_LABEL,
            unit_names=names,
            now=datetime.fromtimestamp(self._clock(), UTC),
        )

    # -- commit: one transaction -----------------------------------------------------------------------

    async def _commit(self, batch: list[_Work], changes: PushChanges, *, isolate_errors: bool) -> None:
        """Route every prepared row and write all it changes in one transaction."""
        guild_ids = list(dict.fromkeys(guild_id for work in batch for guild_id in work.guild_ids))
        card_keys = [
            (guild_id, kind.value, call_id)
            for work in batch
            if work.result is None
            for event in work.events
            for kind, call_id in card_key(event)
            for guild_id in work.guild_ids
        ]
        # Read before the transaction, so the write lock (which acknowledgements wait for) is held only for
        # the writes. Safe: a route read a moment before the write is one the event could have been processed
        # with a moment earlier; a card's state changes only under self._lock; delivery's changes to a card
        # (message, pending post) at worst cost a redundant post that delivery recognises; and a card deleted
        # meanwhile fails the write (StaleCardError) instead of being lost.
        cards = CardBook(self._store.cards)
        guild_routes, _ = await asyncio.gather(
            asyncio.gather(*(self._storage.routes.list(guild_id) for guild_id in guild_ids)),
            cards.load(card_keys),
        )
        routes: dict[int, GuildRoutes] = dict(zip(guild_ids, guild_routes, strict=True))
        self._route_hints.update(routes)
        for work in batch:
            if work.result is None:
                await self._route(work, routes, cards, changes, isolate_errors=isolate_errors)
            if work.inbox_id is not None:
                changes.processed.append((work.inbox_id, work.result or "error"))
        cards.write_into(changes)
        await self._store.apply_changes(changes)
        self._units.committed(changes.unit_names)

    async def _route(
        self,
        work: _Work,
        routes: Mapping[int, GuildRoutes],
        cards: CardBook,
        changes: PushChanges,
        *,
        isolate_errors: bool,
    ) -> None:
        checkpoint = cards.checkpoint()
        queued_before = len(changes.outbox)
        try:
            for index, event in enumerate(work.events):
                for guild_id in work.guild_ids:
                    work.queued += await self._deliver_to_guild(
                        work, index, event, guild_id, routes[guild_id], cards, changes
                    )
        except DatabaseError:
            raise
        except Exception:
            if not isolate_errors:
                raise
            # A bug on one payload must not wedge the queue behind it: undo its changes, record it, move on.
            log.exception("push event %s (inbox row %s) could not be processed", work.label, work.inbox_id)
            cards.restore(checkpoint)
            del changes.outbox[queued_before:]
            work.queued = 0
            work.result = "error"
            return
        work.result = "posted" if work.queued else "no_route"

    async def _deliver_to_guild(
        self,
        work: _Work,
        index: int,
        event: ev.PushEvent,
        guild_id: int,
        routes: GuildRoutes,
        cards: CardBook,
        changes: PushChanges,
    ) -> int:
        """Queue what ``event`` means for one guild; returns how many deliveries it queued or changed."""
        category = category_for(event)
        route = routes[category]
        if not route.delivers or route.channel_id is None:
            return 0
        to_post = event
        if is_card_event(event):
            left = await self._apply_to_cards(
                guild_id, work.community_id, route, event, work.accepted_at, cards, changes
            )
            if left is None:
                return 1
            to_post = left
        if to_post is event:
            carded = 0
            if index not in work.embeds:
                # Not formatted ahead: the route was off when the batch was prepared, or no card took it.
                work.embeds[index] = format_event(event, await self._format_context(work, changes))
            embed = work.embeds[index]
        else:
            # Cards here took some of the calls it names (and were changed): the post names only the others.
            carded = 1
            embed = format_event(to_post, await self._format_context(work, changes))
        if embed is None:
            return carded
        changes.outbox.append(
            OutboxDraft(
                guild_id=guild_id,
                channel_id=route.channel_id,
                category=category.value,
                accepted_at=work.accepted_at,
                embed=embed,
                ping_role_id=route.ping_role_id if pings_role(event) else None,
            )
        )
        return carded + 1

    async def _format_context(self, work: _Work, changes: PushChanges) -> FormatContext:
        names = await self._units.with_learnt(
            work.community_id, changes.unit_names.get(work.community_id or "", {})
        )
        return self._context(work.community_id, names)

    async def _apply_to_cards(
        self,
        guild_id: int,
        community_id: str | None,
        route: RouteConfig,
        event: ev.PushEvent,
        accepted_at: float,
        cards: CardBook,
        changes: PushChanges,
    ) -> ev.PushEvent | None:
        """Change the live cards ``event`` concerns; returns what is still to be posted as an embed: None when
        cards took all of it, ``event`` itself when none did, and for a close or removal of several calls of
        which only some have cards, the event narrowed to the calls without one (so every call is shown)."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        if isinstance(event, ev.DispatchBodycamEvent):
            shown = False
            for key, slot in await cards.open_cards(guild_id, CardKind.DISPATCH):
                state = slot.state
                assert isinstance(state, DispatchCardState)
                changed = apply_dispatch_event(state, event, now)
                if changed is None or changed == state:
                    continue
                # Tracked on every open call, but only a call the unit is attached to shows it (needs an edit).
                visible = event.ident in changed.attached
                cards.change(key, changed, visible=visible)
                shown = shown or visible
            return None if shown else event
        keys = card_key(event)
        without_card: list[int] = []
        for kind, call_id in keys:
            reducer: CardReducer = functools.partial(
                apply_dispatch_event if kind == CardKind.DISPATCH else apply_911_event, event=event, now=now
            )
            took = self._change_card(
                cards,
                changes,
                guild_id,
                community_id,
                route,
                kind,
                call_id,
                reducer,
                accepted_at,
                ping=pings_role(event),
            )
            if not took:
                without_card.append(call_id)
        if len(without_card) == len(keys):
            return event
        if without_card and isinstance(event, ev.DispatchClosedEvent | ev.Remove911Event):
            return event.model_copy(update={"call_ids": without_card})
        return None

    def _change_card(
        self,
        cards: CardBook,
        changes: PushChanges,
        guild_id: int,
        community_id: str | None,
        route: RouteConfig | None,
        kind: CardKind,
        call_id: int,
        reducer: CardReducer,
        accepted_at: float,
        *,
        ping: bool,
    ) -> bool:
        """Apply ``reducer`` to one card (creating it if the reducer starts one); False if there is no card."""
        key = (guild_id, kind.value, call_id)
        existing = cards.get(key)
        state = existing.state if existing is not None else None
        changed = reducer(state)
        if changed is None:
            return existing is not None
        if not isinstance(changed, DispatchCardState | Emergency911CardState | PanicCardState):
            raise TypeError(f"a card reducer returned {type(changed).__name__}, not a card state")
        if existing is None:
            if route is None or not route.delivers or route.channel_id is None:
                return False
            cards.create(key, changed, route.channel_id, community_id)
            changes.outbox.append(
                OutboxDraft(
                    guild_id=guild_id,
                    channel_id=route.channel_id,
                    category=CARD_CATEGORY[kind].value,
                    accepted_at=accepted_at,
                    new_card=key,
                    ping_role_id=route.ping_role_id if ping else None,
                )
            )
            return True
        if changed != state:
            cards.change(key, changed, visible=shows_change(state, changed))
            if existing.message_id is None and not existing.post_pending:
                # Its first post was given up on (e.g. the channel was broken then): post the card afresh.
                changes.outbox.append(
                    OutboxDraft(
                        guild_id=guild_id,
                        channel_id=existing.channel_id,
                        category=CARD_CATEGORY[kind].value,
                        accepted_at=accepted_at,
                        card_id=existing.card_id,
                        new_card=key if existing.card_id is None else None,
                    )
                )
                cards.post_queued(key)
        return True

    # -- API-made changes --------------------------------------------------------------------------

    async def _community_of(self, guild_id: int) -> str | None:
        config = await self._storage.guilds.get(guild_id)
        return config.community_id if config is not None else None

    async def publish_local(self, guild_id: int, event: ev.PushEvent) -> int:
        """Route, format and queue an event the bot made itself (no push event comes back for API actions),
        for one guild only. Returns how many deliveries it queued; 0 when the guild routes it nowhere."""
        if delivery_priority(category_for(event)).urgent:
            self._urgent_arrived.set()  # a routine batch in progress stops waiting for the listener
        community_id = await self._community_of(guild_id)
        work = _Work(
            inbox_id=None,
            label=type_label(event.canonical_type),
            community_id=community_id,
            guild_ids=(guild_id,),
            accepted_at=self._clock(),
            events=(event,),
        )
        async with self._lock:
            changes = PushChanges()
            await self._prepare_events(work, changes)
            await self._commit([work], changes, isolate_errors=False)
        self._metrics.processed(work.label, "local" if work.queued else "no_route")
        if work.queued:
            self._on_queued()
        return work.queued

    async def update_card(
        self,
        guild_id: int,
        kind: CardKind | str,
        call_id: int,
        reducer: Callable[[T | None], T | None],
        *,
        ping: bool = False,
    ) -> bool:
        """Apply ``reducer`` (current state or None -> new state or None) to one guild's live card.

        A reducer that returns a state for a call with no card starts one (if the category is routed); with
        ``ping`` its post sounds the route's ping role (a /panic alert). Returns False when there is no card
        and none was started.
        """
        card_kind = CardKind(kind)
        community_id = await self._community_of(guild_id)
        async with self._lock, self._store.atomic():
            route = await self._storage.routes.get(guild_id, CARD_CATEGORY[card_kind])
            cards = CardBook(self._store.cards)
            await cards.load([(guild_id, card_kind.value, call_id)])
            changes = PushChanges()
            took = self._change_card(
                cards,
                changes,
                guild_id,
                community_id,
                route,
                card_kind,
                call_id,
                reducer,
                self._clock(),
                ping=ping,
            )
            cards.write_into(changes)
            await self._store.apply_changes(changes)
        if took:
            self._on_queued()
        return took

    # -- rendering ---------------------------------------------------------------------------------

    async def render_card(self, card: CardRow) -> EmbedDict:
        """The card's latest stored state as an embed (used by the delivery worker for posts and edits);
        never raises (see :func:`bot.cards.render.render_card`)."""
        ctx = self._context(card.community_id, await self._units.names(card.community_id))
        return render_card(card, ctx)
