"""The processor: turns accepted events into per-guild deliveries, in the background.

For each inbox row it parses the envelope, learns unit names, and for every guild the event fans out to:
looks up the route of the event's category, then either changes that guild's live card for the call or
formats one embed, and queues the result in the outbox. One inbox row is one transaction, so a crash
never half-processes an event and never processes one twice.

Actions made through the CAD API produce no push event; the command layer feeds them in through
:meth:`PushProcessor.publish_local` and :meth:`PushProcessor.update_card`, which take the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.formatting.cards import render_911_card, render_dispatch_card
from bot.formatting.context import FormatContext
from bot.formatting.events import format_event
from bot.formatting.limits import EmbedDict, clamp_embed
from bot.push import events as ev
from bot.push.cards import (
    CardKind,
    DispatchCardState,
    Emergency911CardState,
    apply_911_event,
    apply_dispatch_event,
    card_key,
    is_card_event,
)
from bot.push.metrics import PushMetrics, type_label
from bot.push.routing import category_for
from bot.storage import Storage
from bot.storage.db import DatabaseError
from bot.storage.models import Category, RouteConfig
from bot.storage.push_store import CardRow, InboxRow, PushStore

log = logging.getLogger(__name__)

T = TypeVar("T")
IdleWait = Callable[[Awaitable[Any]], Awaitable[Any]]
CardState = DispatchCardState | Emergency911CardState
CardReducer = Callable[[Any], Any]
STORAGE_ERRORS = (DatabaseError, sqlite3.Error)

DEFAULT_COMMUNITY_LABEL = "Sonoran CAD"
_CARD_CATEGORY: Mapping[CardKind, Category] = {
    CardKind.DISPATCH: Category.DISPATCH,
    CardKind.EMERGENCY_911: Category.CALLS_911,
}


def _card_state(kind: str, stored: Mapping[str, Any]) -> CardState:
    if kind == CardKind.DISPATCH:
        return DispatchCardState.model_validate(stored)
    return Emergency911CardState.model_validate(stored)


def _is_finished(state: CardState) -> bool:
    return state.closed if isinstance(state, DispatchCardState) else state.removed


def _dump(state: CardState) -> dict[str, Any]:
    return state.model_dump(mode="json")


def pings_role(event: ev.PushEvent) -> bool:
    """Only a new 911 call and an activated panic may sound the route's ping role."""
    if isinstance(event, ev.UnitPanicEvent):
        return event.is_panic
    return isinstance(event, ev.Emergency911Event)


class UnitDirectory:
    """Per-community unit names ("1A-12 Jordan Reyes"), learnt from login/update/status events.

    Stored in SQLite so names survive a restart; cached in memory because every embed needs them.
    """

    def __init__(self, store: PushStore) -> None:
        self._store = store
        self._cache: dict[str, dict[int, str]] = {}

    async def names(self, community_id: str | None) -> Mapping[int, str]:
        if not community_id:
            return {}
        cached = self._cache.get(community_id)
        if cached is None:
            cached = await self._store.unit_names(community_id)
            self._cache[community_id] = cached
        return dict(cached)

    async def learn_from(self, community_id: str | None, event: ev.PushEvent) -> None:
        if not community_id:
            return
        units: list[ev.UnitPayload] = []
        if isinstance(event, ev.UnitLoginEvent):
            units.append(event.unit)
        elif isinstance(event, ev.UnitUpdateEvent | ev.UnitStatusEvent):
            units.extend(event.units)
        learnt = {unit.id: unit.display_name for unit in units if unit.display_name.strip()}
        known = await self.names(community_id)
        changed = {ident: label for ident, label in learnt.items() if known.get(ident) != label}
        if not changed:
            return
        await self._store.remember_unit_names(community_id, changed)
        self._cache.setdefault(community_id, {}).update(changed)


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
        storage_retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._store = store
        self._units = units
        self._metrics = metrics
        self._on_queued = on_queued
        self._idle_wait: IdleWait = idle_wait or _plain_await
        self._batch_size = batch_size
        self._storage_retry_s = storage_retry_s
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        # Card changes are read-modify-write; the inbox loop and API-made changes must not interleave them.
        self._lock = asyncio.Lock()

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
        """Process one batch of accepted events; returns how many inbox rows were handled."""
        rows = await self._store.unprocessed_inbox(self._batch_size)
        handled = 0
        for row in rows:
            if self._stopping:
                break
            await self._process_row(row)
            handled += 1
            # Wake delivery per event, not per batch: the first alert of a burst must not wait for the rest.
            self._on_queued()
        return handled

    async def _process_row(self, row: InboxRow) -> None:
        envelope = row.body
        outcome = ev.parse_event(row.event_type, envelope.get("data"), envelope)
        label = type_label(outcome.event_type)
        if outcome.unknown or outcome.ignored:
            result = "unknown_type" if outcome.unknown else "ignored"
            log.info("push event type %.60r acknowledged and not posted (%s)", row.event_type, result)
        elif not outcome.events:
            result = "invalid_data"
            reasons = "; ".join(item.reason for item in outcome.invalid) or "no data"
            log.info("push event %s had nothing usable (%s)", outcome.event_type, reasons)
        else:
            if outcome.invalid:
                log.info(
                    "push event %s: %d of its elements could not be read",
                    outcome.event_type,
                    outcome.invalid_count,
                )
            try:
                async with self._lock, self._store.atomic():
                    queued = 0
                    for event in outcome.events:
                        await self._units.learn_from(row.community_id, event)
                        for guild_id in row.guild_ids:
                            queued += await self._deliver_to_guild(
                                guild_id, row.community_id, event, row.received_at
                            )
                    result = "posted" if queued else "no_route"
                    await self._store.mark_inbox_processed(row.id, result)
            except STORAGE_ERRORS:
                raise
            except Exception:
                # A bug on one payload must not wedge the queue behind it: record it and move on.
                log.exception(
                    "push event %s (inbox row %s) could not be processed", outcome.event_type, row.id
                )
                result = "error"
                await self._store.mark_inbox_processed(row.id, result)
            self._metrics.processed(label, result)
            return
        await self._store.mark_inbox_processed(row.id, result)
        self._metrics.processed(label, result)

    # -- per guild ---------------------------------------------------------------------------------

    async def _context(self, community_id: str | None) -> FormatContext:
        return FormatContext(
            community_label=community_id or DEFAULT_COMMUNITY_LABEL,
            unit_names=await self._units.names(community_id),
            now=datetime.fromtimestamp(self._clock(), UTC),
        )

    async def _deliver_to_guild(
        self, guild_id: int, community_id: str | None, event: ev.PushEvent, accepted_at: float
    ) -> int:
        """Queue what ``event`` means for one guild; returns how many deliveries it queued or changed."""
        category = category_for(event)
        route = await self._storage.routes.get(guild_id, category)
        if not route.delivers or route.channel_id is None:
            return 0
        if is_card_event(event) and await self._apply_to_cards(
            guild_id, community_id, route, event, accepted_at
        ):
            return 1
        embed = format_event(event, await self._context(community_id))
        if embed is None:
            return 0
        await self._store.add_outbox(
            guild_id=guild_id,
            channel_id=route.channel_id,
            category=category.value,
            embed=embed,
            ping_role_id=route.ping_role_id if pings_role(event) else None,
            accepted_at=accepted_at,
        )
        return 1

    async def _apply_to_cards(
        self,
        guild_id: int,
        community_id: str | None,
        route: RouteConfig,
        event: ev.PushEvent,
        accepted_at: float,
    ) -> bool:
        """Change the live cards ``event`` concerns; False when no card took it (it is posted as an embed)."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        if isinstance(event, ev.DispatchBodycamEvent):
            shown = False
            for card in await self._store.open_cards(guild_id, CardKind.DISPATCH.value):
                state = DispatchCardState.model_validate(card.state)
                changed = apply_dispatch_event(state, event, now)
                if changed is None or changed == state:
                    continue
                # Tracked on every open call, but only a call the unit is attached to shows it (needs an edit).
                visible = event.ident in changed.attached
                await self._store.update_card_state(
                    card.id, _dump(changed), finished=changed.closed, visible=visible
                )
                shown = shown or visible
            return shown
        handled = False
        for kind, call_id in card_key(event):
            reducer: CardReducer = functools.partial(
                apply_dispatch_event if kind == CardKind.DISPATCH else apply_911_event, event=event, now=now
            )
            took = await self._change_card(
                guild_id,
                community_id,
                route,
                kind,
                call_id,
                reducer,
                accepted_at,
                ping=pings_role(event),
            )
            handled = handled or took
        return handled

    async def _change_card(
        self,
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
        existing = await self._store.get_card(guild_id, kind.value, call_id)
        state = _card_state(kind.value, existing.state) if existing is not None else None
        changed = reducer(state)
        if changed is None:
            return existing is not None
        if not isinstance(changed, DispatchCardState | Emergency911CardState):
            raise TypeError(f"a card reducer returned {type(changed).__name__}, not a card state")
        if existing is None:
            if route is None or not route.delivers or route.channel_id is None:
                return False
            card_id = await self._store.create_card(
                guild_id=guild_id,
                kind=kind.value,
                call_id=call_id,
                community_id=community_id,
                channel_id=route.channel_id,
                state=_dump(changed),
                finished=_is_finished(changed),
            )
            await self._store.add_outbox(
                guild_id=guild_id,
                channel_id=route.channel_id,
                category=_CARD_CATEGORY[kind].value,
                card_id=card_id,
                ping_role_id=route.ping_role_id if ping else None,
                accepted_at=accepted_at,
            )
            return True
        if changed != state:
            await self._store.update_card_state(existing.id, _dump(changed), finished=_is_finished(changed))
            if existing.message_id is None and not await self._store.card_post_pending(existing.id):
                # Its first post was given up on (e.g. the channel was broken then): post the card afresh.
                await self._store.add_outbox(
                    guild_id=guild_id,
                    channel_id=existing.channel_id,
                    category=_CARD_CATEGORY[kind].value,
                    card_id=existing.id,
                    accepted_at=accepted_at,
                )
        return True

    # -- API-made changes --------------------------------------------------------------------------

    async def _community_of(self, guild_id: int) -> str | None:
        config = await self._storage.guilds.get(guild_id)
        return config.community_id if config is not None else None

    async def publish_local(self, guild_id: int, event: ev.PushEvent) -> int:
        """Route, format and queue an event the bot made itself (no push event comes back for API actions),
        for one guild only. Returns how many deliveries it queued; 0 when the guild routes it nowhere."""
        community_id = await self._community_of(guild_id)
        async with self._lock, self._store.atomic():
            await self._units.learn_from(community_id, event)
            queued = await self._deliver_to_guild(guild_id, community_id, event, self._clock())
        self._metrics.processed(type_label(event.canonical_type), "local" if queued else "no_route")
        if queued:
            self._on_queued()
        return queued

    async def update_card(
        self, guild_id: int, kind: CardKind | str, call_id: int, reducer: Callable[[T | None], T | None]
    ) -> bool:
        """Apply ``reducer`` (current state or None -> new state or None) to one guild's live card.

        A reducer that returns a state for a call with no card starts one (if the category is routed).
        Returns False when there is no card and none was started.
        """
        card_kind = CardKind(kind)
        route = await self._storage.routes.get(guild_id, _CARD_CATEGORY[card_kind])
        community_id = await self._community_of(guild_id)
        async with self._lock, self._store.atomic():
            took = await self._change_card(
                guild_id,
                community_id,
                route,
                card_kind,
                call_id,
                reducer,
                self._clock(),
                ping=False,
            )
        if took:
            self._on_queued()
        return took

    # -- rendering ---------------------------------------------------------------------------------

    async def render_card(self, card: CardRow) -> EmbedDict:
        """The card's latest stored state as an embed (used by the delivery worker for posts and edits).

        Never raises: a card that cannot be drawn is shown as a plain placeholder rather than left unsent.
        """
        ctx = await self._context(card.community_id)
        try:
            state = _card_state(card.kind, card.state)
            if isinstance(state, DispatchCardState):
                return clamp_embed(render_dispatch_card(state, ctx))
            return clamp_embed(render_911_card(state, ctx))
        except Exception:  # a formatter bug or an unreadable stored state must not stall the channel
            log.exception("live card %s cannot be drawn", card.id)
            return clamp_embed(
                {"title": f"Call #{card.call_id}", "description": "This call card cannot be shown."}
            )


async def _plain_await(awaitable: Awaitable[T]) -> T:
    return await awaitable
